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
/// 16 KiB of stack above a guard page.
const IST_STACK_SIZE: usize = 20 * 1024;
const RING0_STACK_SIZE: usize = 128 * 1024;
/// The stack `hv_entry` starts on (boot.rs): the boot CPU builds the domains on it.
const BOOT_STACK_SIZE: usize = 128 * 1024;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// Page-aligned, so that a stack's lowest page can be its guard page.
#[repr(C, align(4096))]
struct Stack<const N: usize>([u8; N]);

/// Bytes of the unmapped page at the bottom of each hypervisor stack.
pub const GUARD_PAGE_SIZE: u64 = 4096;

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static mut TSS: [TaskStateSegment; MAX_CPUS] = [const { TaskStateSegment::new() }; MAX_CPUS];
/// Each CPU's stacks for a double fault, an NMI and a machine check (TSS IST 1-3), each with a
/// guard page at its bottom as the ring-0 stacks below.
#[link_section = ".ring0_stacks"]
static mut IST_STACKS: [[Stack<IST_STACK_SIZE>; 3]; MAX_CPUS] =
    [const { [const { Stack([0; IST_STACK_SIZE]) }; 3] }; MAX_CPUS];
/// The boot CPU's first stack (boot.rs loads its top), with a guard page at its bottom.
#[link_section = ".ring0_stacks"]
#[no_mangle]
static mut HV_BOOT_STACK: Stack<BOOT_STACK_SIZE> = Stack([0; BOOT_STACK_SIZE]);
/// `HV_BOOT_STACK`'s size, for boot.rs.
pub const BOOT_STACK_BYTES: usize = BOOT_STACK_SIZE;
/// The stacks the CPUs switch to on an interrupt or trap from ring 3 (TSS.RSP0), one per CPU
/// and contiguous: a CPU tells which it is from its stack pointer ([`this_cpu`]). The lowest
/// page of each is a guard page, unmapped at boot (`paging::unmap_guard_pages`): a stack that
/// overflows faults there (a double fault, reported as such) instead of running into the
/// stack of the CPU below.
/// They share a 2 MiB page with the IST and boot stacks (`linker.ld`): only that page is split.
#[link_section = ".ring0_stacks"]
static mut RING0_STACKS: [Stack<RING0_STACK_SIZE>; MAX_CPUS] = [const { Stack([0; RING0_STACK_SIZE]) }; MAX_CPUS];

fn ring0_stack_bottom(cpu: usize) -> u64 {
    addr_of!(RING0_STACKS) as u64 + (cpu * RING0_STACK_SIZE) as u64
}

/// A hypervisor stack, as a fault report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvStack {
    /// A CPU's ring-0 stack (TSS.RSP0: guest entries, the scheduler).
    Ring0(usize),
    /// A CPU's IST stack (1-based index, as [`IST_DOUBLE_FAULT`] and the others).
    Ist(usize, u8),
    /// The boot CPU's first stack.
    Boot,
}

impl core::fmt::Display for HvStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Ring0(cpu) => write!(f, "ring-0 stack of CPU {cpu}"),
            Self::Ist(cpu, IST_DOUBLE_FAULT) => write!(f, "double-fault stack of CPU {cpu}"),
            Self::Ist(cpu, IST_NMI) => write!(f, "NMI stack of CPU {cpu}"),
            Self::Ist(cpu, ist) => write!(f, "IST {ist} stack of CPU {cpu}"),
            Self::Boot => write!(f, "boot stack"),
        }
    }
}

/// How many hypervisor stacks there are (each with a guard page).
pub const STACKS: usize = MAX_CPUS * 4 + 1;

/// Every hypervisor stack with its guard page (the lowest page, its address in the image
/// mapping), unmapped at boot (`paging::unmap_guard_pages`).
pub fn stack_guards() -> [(HvStack, u64); STACKS] {
    let ist = |cpu: usize, ist: u8| {
        // SAFETY: only the address is taken.
        let stack = unsafe { &(*addr_of!(IST_STACKS))[cpu][ist as usize - 1] };
        (HvStack::Ist(cpu, ist), stack as *const Stack<IST_STACK_SIZE> as u64)
    };
    core::array::from_fn(|i| match i {
        _ if i < MAX_CPUS => (HvStack::Ring0(i), ring0_stack_bottom(i)),
        _ if i < MAX_CPUS * 4 => {
            let k = i - MAX_CPUS;
            ist(k / 3, [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK][k % 3])
        }
        _ => (HvStack::Boot, addr_of!(HV_BOOT_STACK) as u64),
    })
}

/// The stack that overflowed, if a fault at `fault_address` (CR2) with the stack pointer at
/// `rsp` is that: both inside the same guard page. (CR2 alone could be stale, left by an
/// earlier fault.)
pub fn overflowed_stack(fault_address: u64, rsp: u64) -> Option<HvStack> {
    let in_guard = |va: u64, guard: u64| va.wrapping_sub(guard) < GUARD_PAGE_SIZE;
    stack_guards()
        .into_iter()
        .find(|&(_, guard)| in_guard(fault_address, guard) && in_guard(rsp, guard))
        .map(|(s, _)| s)
}

/// Top of `cpu`'s `ist` stack (1-based index), for the test of its guard page.
pub fn ist_stack_top(cpu: usize, ist: u8) -> u64 {
    stack_guards().into_iter().find(|&(s, _)| s == HvStack::Ist(cpu, ist)).map_or(0, |(_, g)| g + IST_STACK_SIZE as u64)
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
