//! The GDT with Xen's reserved selectors, and each CPU's TSS with its ring-0 and IST stacks.
//!
//! Guests rely on the exact selector values of Xen's reserved GDT page (digest §1.7): the first
//! 14 pages (entries 0..7168) belong to a guest's own GDT, and entries from 7168 (byte 0xe000)
//! hold the flat hypervisor and ring-3 descriptors. SYSCALL/SYSRET derive their selectors
//! from STAR, which is why the layout is fixed.

use core::ptr::addr_of;
use x86_64::instructions::tables::{lgdt, load_tss};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

/// Hypervisor 64-bit code selector (ring 0).
pub const HYPERVISOR_CS: u16 = 0xe008;
/// Hypervisor data selector (ring 0).
pub const HYPERVISOR_DS: u16 = 0xe010;
/// `FLAT_RING3_CS32`.
pub const FLAT_RING3_CS32: u16 = 0xe023;
/// `FLAT_RING3_SS64` / `FLAT_KERNEL_SS`.
pub const FLAT_RING3_SS64: u16 = 0xe02b;
/// `FLAT_RING3_CS64` / `FLAT_KERNEL_CS`.
pub const FLAT_RING3_CS64: u16 = 0xe033;
/// CPU 0's TSS selector (Xen-internal slot); CPU `i` uses the 16-byte slot `i` after it.
pub const TSS_SELECTOR: u16 = 0xe040;
/// CPUs the hypervisor can run on: the reserved GDT area has room for this many TSS
/// descriptors (two entries each, from entry 8 of the 16).
pub const MAX_CPUS: usize = 4;

/// IST index (1-based, as in IDT entries) of the double-fault stack.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST index of the NMI stack.
pub const IST_NMI: u8 = 2;
/// IST index of the machine-check stack.
pub const IST_MACHINE_CHECK: u8 = 3;

const FIRST_RESERVED_ENTRY: usize = 0xe000 / 8;
const GDT_ENTRIES: usize = FIRST_RESERVED_ENTRY + 16;
const IST_STACK_SIZE: usize = 16 * 1024;
const RING0_STACK_SIZE: usize = 128 * 1024;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// Page-aligned, so that a stack's lowest page can be its guard page.
#[repr(C, align(4096))]
struct Stack<const N: usize>([u8; N]);

/// Bytes of the unmapped page at the bottom of each ring-0 stack.
pub const GUARD_PAGE_SIZE: u64 = 4096;

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static mut TSS: [TaskStateSegment; MAX_CPUS] = [const { TaskStateSegment::new() }; MAX_CPUS];
static mut IST_STACKS: [[Stack<IST_STACK_SIZE>; 3]; MAX_CPUS] =
    [const { [const { Stack([0; IST_STACK_SIZE]) }; 3] }; MAX_CPUS];
/// The stacks the CPUs switch to on an interrupt or trap from ring 3 (TSS.RSP0), one per CPU
/// and contiguous: a CPU tells which it is from its stack pointer ([`this_cpu`]). The lowest
/// page of each is a guard page, unmapped at boot (`paging::unmap_guard_pages`): a stack that
/// overflows faults there (a double fault, reported as such) instead of running into the
/// stack of the CPU below.
/// They have a 2 MiB page of their own (`linker.ld`): only that page is split.
#[link_section = ".ring0_stacks"]
static mut RING0_STACKS: [Stack<RING0_STACK_SIZE>; MAX_CPUS] = [const { Stack([0; RING0_STACK_SIZE]) }; MAX_CPUS];

fn ring0_stack_bottom(cpu: usize) -> u64 {
    addr_of!(RING0_STACKS) as u64 + (cpu * RING0_STACK_SIZE) as u64
}

/// The guard page of each CPU's ring-0 stack (its address in the image mapping).
pub fn ring0_stack_guards() -> [u64; MAX_CPUS] {
    core::array::from_fn(ring0_stack_bottom)
}

/// The CPU whose ring-0 stack overflowed, if a fault at `fault_address` (CR2) with the stack
/// pointer at `rsp` is that: both inside the same guard page. (CR2 alone could be stale, left
/// by an earlier fault a guest took there.)
pub fn overflowed_stack(fault_address: u64, rsp: u64) -> Option<usize> {
    let in_guard = |va: u64, guard: u64| va.wrapping_sub(guard) < GUARD_PAGE_SIZE;
    ring0_stack_guards().iter().position(|&guard| in_guard(fault_address, guard) && in_guard(rsp, guard))
}

/// Top of `cpu`'s ring-0 stack, used on entry from guest context.
pub fn ring0_stack_top(cpu: usize) -> u64 {
    ring0_stack_bottom(cpu) + RING0_STACK_SIZE as u64
}

/// The index of the CPU running this code (0 is the boot CPU), from the stack it runs on (its
/// ring-0 stack, or one of its IST stacks for an NMI, #DF or #MC): cheaper than reading the
/// LAPIC and needs no per-CPU segment base, which guests own. Only the boot CPU runs on any
/// other stack (the boot stack).
#[inline(always)]
pub fn this_cpu() -> usize {
    let rsp: u64;
    // SAFETY: reads the stack pointer only.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let offset = rsp.wrapping_sub(addr_of!(RING0_STACKS) as u64) as usize;
    let cpu = offset / RING0_STACK_SIZE;
    if cpu < MAX_CPUS {
        return cpu;
    }
    let offset = rsp.wrapping_sub(addr_of!(IST_STACKS) as u64) as usize;
    let cpu = offset / (3 * IST_STACK_SIZE);
    if cpu < MAX_CPUS {
        cpu
    } else {
        0
    }
}

fn set(index: usize, value: u64) {
    // SAFETY: called only from `init`, on the boot CPU, before any other CPU starts.
    unsafe { (*core::ptr::addr_of_mut!(GDT)).0[index] = value };
}

/// Builds the GDT with every CPU's TSS descriptor, then loads it on the boot CPU.
pub fn init() {
    set(FIRST_RESERVED_ENTRY + 1, 0x00af_9b00_0000_ffff); // 0xe008 ring-0 CS64
    set(FIRST_RESERVED_ENTRY + 2, 0x00cf_9300_0000_ffff); // 0xe010 ring-0 DS
    set(FIRST_RESERVED_ENTRY + 4, 0x00cf_fb00_0000_ffff); // 0xe023 ring-3 CS32
    set(FIRST_RESERVED_ENTRY + 5, 0x00cf_f300_0000_ffff); // 0xe02b ring-3 DS/SS
    set(FIRST_RESERVED_ENTRY + 6, 0x00af_fb00_0000_ffff); // 0xe033 ring-3 CS64
                                                          // SAFETY: single-threaded boot; no CPU uses these TSSs yet, and of the IST stacks only
                                                          // the addresses are taken.
    let (tsss, ists) = unsafe { (&mut *core::ptr::addr_of_mut!(TSS), &*addr_of!(IST_STACKS)) };
    for (cpu, (tss, stacks)) in tsss.iter_mut().zip(ists).enumerate() {
        for (stack, ist) in stacks.iter().zip([IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]) {
            let top = stack as *const Stack<IST_STACK_SIZE> as u64 + IST_STACK_SIZE as u64;
            tss.interrupt_stack_table[ist as usize - 1] = VirtAddr::new(top);
        }
        tss.privilege_stack_table[0] = VirtAddr::new(ring0_stack_top(cpu));
        let tss_base = tss as *const _ as u64;
        let tss_limit = (core::mem::size_of::<TaskStateSegment>() - 1) as u64;
        let low = (tss_limit & 0xffff)
            | (tss_base & 0xff_ffff) << 16
            | 0x89 << 40 // present, DPL0, available 64-bit TSS
            | ((tss_limit >> 16) & 0xf) << 48
            | ((tss_base >> 24) & 0xff) << 56;
        set(FIRST_RESERVED_ENTRY + 8 + 2 * cpu, low);
        set(FIRST_RESERVED_ENTRY + 9 + 2 * cpu, tss_base >> 32);
    }
    load(0);
}

/// Loads the GDT and `cpu`'s TSS on the calling CPU, reloading every segment register.
pub fn load(cpu: usize) {
    let ptr = DescriptorTablePointer { limit: (GDT_ENTRIES * 8 - 1) as u16, base: VirtAddr::new(addr_of!(GDT) as u64) };
    // SAFETY: the table is fully built, 'static, and holds the selectors reloaded below;
    // each CPU loads its own TSS descriptor, so none is found busy.
    unsafe {
        lgdt(&ptr);
        core::arch::asm!(
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ss, {ds:x}",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            cs = const HYPERVISOR_CS as u64,
            ds = in(reg) HYPERVISOR_DS,
            tmp = out(reg) _,
        );
        load_tss(x86_64::structures::gdt::SegmentSelector(TSS_SELECTOR + 16 * cpu as u16));
    }
}
