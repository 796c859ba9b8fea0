//! Copies to and from the running guest's memory through its own page tables, recovering from
//! a fault with a fix-up (Xen's `copy_from_user` with exception tables).
//!
//! The software walk in [`guest_access`](crate::guest_access) works for any address space
//! but costs a page walk in code for every access (about 90 instructions, and under TCG each
//! of its loads is itself a soft-TLB lookup). When the tables in CR3 are the ones the walk
//! would use (a hypercall from guest kernel mode), the MMU does the same checks for free:
//! every guest mapping outside the hypervisor's range is a user mapping of a frame the guest
//! may access (the PV MMU validates each entry and forces the user bit), CR0.WP makes a
//! read-only mapping refuse ring-0 writes, and SMAP is off. The caller has checked that the
//! range lies outside the hypervisor's range ([`crate::guest_access::guest_range_ok`]), so
//! the copy can only touch guest mappings. A fault (not present, read-only) inside the copy
//! resumes at the fix-up, which reports it; the fault never reaches the guest. (A buffer in
//! device memory that an I/O-capable dom0 mapped is read as such, as on Xen; the walk
//! refuses it, since the direct map covers RAM only.)
//!
//! The route is only taken while the TLB agrees with the guest's tables: see
//! `domain::GuestTables`.
//!
//! The same fix-up serves [`rdmsr_safe`]: an MSR the host CPU lacks faults (#GP) in ring 0,
//! and a guest must never be able to make the hypervisor do that (Xen's `rdmsr_safe`).

use core::arch::global_asm;

use super::cpu;
use super::idt::TrapFrame;
use super::paging::DirectMap;
use hypervisor::guest_access::guest_range_ok;
use hypervisor::guest_stack::{within_one_page, StackAccess, MAX_WORDS};
use hypervisor::vcpu::GuestMemory;

global_asm!(
    r#"
    .section .text.guest_copy, "ax"
    // guest_copy_bytes(dst: rdi, src: rsi, len: rdx) -> rax: 0 copied, 1 faulted.
    // Words, then the remaining bytes, with `rep movs` (about 5 cycles a word under TCG, by
    // the local-copy benchmark). Only the two string instructions (between guest_copy_start
    // and guest_copy_end) touch the guest.
    .global guest_copy_bytes
guest_copy_bytes:
    mov rcx, rdx
    shr rcx, 3
    and rdx, 7
guest_copy_start:
    rep movsq
    mov rcx, rdx
    rep movsb
guest_copy_end:
    xor eax, eax
    ret
guest_copy_fault:
    mov eax, 1
    ret

    // rdmsr_checked(msr: edi, out: rsi) -> rax: 0 read (the value at [rsi]), 1 faulted.
    .global rdmsr_checked
rdmsr_checked:
    mov ecx, edi
rdmsr_start:
    rdmsr
rdmsr_end:
    shl rdx, 32
    or rax, rdx
    mov [rsi], rax
    xor eax, eax
    ret
rdmsr_fault:
    mov eax, 1
    ret

    .section .rodata.guest_copy, "a"
    .balign 8
    .global ring0_fixups
ring0_fixups:
    .quad guest_copy_start, guest_copy_end, guest_copy_fault
    .quad rdmsr_start, rdmsr_end, rdmsr_fault
"#
);

unsafe extern "C" {
    fn guest_copy_bytes(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn rdmsr_checked(msr: u32, out: *mut u64) -> u64;
    /// `[start, end, resume]`: a #PF or #GP in ring 0 at `start..end` resumes at `resume`.
    static ring0_fixups: [[u64; 3]; 2];
}

/// Reads MSR `msr`, or `None` if this CPU does not have it (the #GP is recovered).
pub fn rdmsr_safe(msr: u32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: the routine only reads the MSR and writes `value`; a #GP resumes at its fix-up.
    (unsafe { rdmsr_checked(msr, &mut value) } == 0).then_some(value)
}

/// Checks, once per CPU at start, the CPU state the direct route relies on: CR0.WP (a
/// read-only guest mapping must refuse ring-0 writes: page tables are mapped read-only into
/// guests) and CR4.SMAP clear (ring-0 accesses to user pages allowed). Turns SMEP on where
/// the CPU has it, as Xen does: the hypervisor never runs code from a guest page, and a bug
/// that jumped to one then faults instead of running guest-chosen code in ring 0.
pub fn check_cpu_state() {
    let has_leaf_7 = core::arch::x86_64::__cpuid(0).eax >= 7;
    if has_leaf_7 && core::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 7) != 0 {
        // SAFETY: SMEP only forbids ring 0 to execute user pages, which it never does.
        unsafe {
            x86_64::registers::control::Cr4::update(|f| {
                f.insert(x86_64::registers::control::Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION)
            })
        };
    }
    let (cr0, cr4) = (x86_64::registers::control::Cr0::read(), x86_64::registers::control::Cr4::read());
    assert!(
        cr0.contains(x86_64::registers::control::Cr0Flags::WRITE_PROTECT),
        "CR0.WP must be set for guest copies through guest tables"
    );
    assert!(
        !cr4.contains(x86_64::registers::control::Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
        "CR4.SMAP must be clear for guest copies through guest tables"
    );
}

/// Whether the page tables in CR3 are those at `l4_maddr` (so guest addresses resolve as
/// they would for the guest now).
pub fn tables_loaded(l4_maddr: u64) -> bool {
    cpu::read_cr3() == l4_maddr & !0xfff
}

/// Copies `out.len()` bytes from the running guest's address `va`. The caller guarantees
/// that CR3 holds the guest's tables ([`tables_loaded`]) and that `[va, va + len)` lies in
/// the guest's part of the address space. `false` if any byte was inaccessible (`out` may
/// then be partly written).
pub fn read_loaded(va: u64, out: &mut [u8]) -> bool {
    // SAFETY: `out` is valid for writes of its length; the source is a guest address outside
    // the hypervisor's range (the caller's contract), so the loads can only fault (recovered
    // by `fixup`) or read guest memory.
    unsafe { guest_copy_bytes(out.as_mut_ptr(), va as *const u8, out.len()) == 0 }
}

/// Copies `bytes` to the running guest's address `va`, under the same contract as
/// [`read_loaded`] and with the range within one page, so that a fault (the page is
/// read-only or absent) comes at the first byte and leaves guest memory unchanged.
pub fn write_loaded_in_page(va: u64, bytes: &[u8]) -> bool {
    debug_assert!(bytes.is_empty() || va >> 12 == (va + bytes.len() as u64 - 1) >> 12);
    // SAFETY: the destination is a guest address outside the hypervisor's range (the
    // caller's contract): the stores can only fault (recovered) or write guest memory the
    // guest could write itself (CR0.WP makes read-only mappings fault in ring 0 too).
    unsafe { guest_copy_bytes(va as *mut u8, bytes.as_ptr(), bytes.len()) == 0 }
}

/// The guest stack for bounce frames and `iret` contexts: whole words through the loaded
/// tables when they are the guest's and the TLB agrees with them (no page-table change of
/// this vCPU awaits its flush), else through the software walk ([`StackAccess`]). A run
/// that crosses a page always takes the walk, which writes nothing unless every page can
/// take it.
pub struct GuestStack<'a> {
    walk: StackAccess<'a, DirectMap>,
    tlb_current: bool,
}

impl<'a> GuestStack<'a> {
    /// Access through `mem`; `tlb_current`: the vCPU has no TLB work pending.
    pub fn new(mem: &'a mut DirectMap, tlb_current: bool) -> Self {
        Self { walk: StackAccess(mem), tlb_current }
    }

    /// Whether `len` bytes at `va` may go through the tables loaded for `l4`.
    fn direct(&self, l4: u64, va: u64, len: usize) -> bool {
        self.tlb_current && within_one_page(va, len as u64) && guest_range_ok(va, len) && tables_loaded(l4)
    }
}

impl GuestMemory for GuestStack<'_> {
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool {
        self.walk.write(l4, va, bytes)
    }

    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool {
        self.walk.read(l4, va, out)
    }

    #[inline]
    fn write_words(&mut self, l4: u64, va: u64, words: &[u64]) -> bool {
        if words.len() <= MAX_WORDS && self.direct(l4, va, words.len() * 8) {
            // SAFETY: the destination is a guest range outside the hypervisor's, within one
            // page (checked above): the stores fault at the first byte (recovered, nothing
            // written) or write guest memory the guest could write itself.
            return unsafe { guest_copy_bytes(va as *mut u8, words.as_ptr().cast(), words.len() * 8) == 0 };
        }
        self.walk.write_words(l4, va, words)
    }

    #[inline]
    fn read_words(&self, l4: u64, va: u64, out: &mut [u64]) -> bool {
        if out.len() <= MAX_WORDS && self.direct(l4, va, out.len() * 8) {
            // SAFETY: `out` is valid for its length in bytes; the source is a guest range
            // outside the hypervisor's: the loads fault (recovered) or read guest memory.
            return unsafe { guest_copy_bytes(out.as_mut_ptr().cast(), va as *const u8, out.len() * 8) == 0 };
        }
        self.walk.read_words(l4, va, out)
    }
}

/// If `frame` is a fault inside the guest copy loops or a checked MSR read, resumes it at
/// its fix-up and returns `true`.
pub fn fixup(frame: &mut TrapFrame) -> bool {
    // SAFETY: a constant table the assembler filled in.
    let table = unsafe { ring0_fixups };
    match table.iter().find(|[start, end, _]| (*start..*end).contains(&frame.rip)) {
        Some(&[_, _, resume]) => {
            frame.rip = resume;
            true
        }
        None => false,
    }
}
