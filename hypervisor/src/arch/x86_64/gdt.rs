//! The GDT with Xen's reserved selectors, and the TSS with its IST stacks.
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
/// The TSS selector (Xen-internal slot).
pub const TSS_SELECTOR: u16 = 0xe040;

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

#[repr(C, align(16))]
struct Stack<const N: usize>([u8; N]);

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut IST_STACKS: [Stack<IST_STACK_SIZE>; 3] = [const { Stack([0; IST_STACK_SIZE]) }; 3];
/// The stack the CPU switches to on an interrupt or trap from ring 3 (TSS.RSP0).
static mut RING0_STACK: Stack<RING0_STACK_SIZE> = Stack([0; RING0_STACK_SIZE]);

/// Written at the bottom of the ring-0 stack: found changed, the stack overflowed.
const STACK_CANARY: u64 = 0x5354_4143_4b21_2121;

/// Places the canary at the bottom of the ring-0 stack.
pub fn arm_stack_canary() {
    // SAFETY: the lowest word of the ring-0 stack is only reached by an overflow.
    unsafe { (core::ptr::addr_of_mut!(RING0_STACK) as *mut u64).write_volatile(STACK_CANARY) };
}

/// Whether the ring-0 stack's canary is intact (no overflow so far).
pub fn stack_canary_intact() -> bool {
    // SAFETY: as above; a plain read of a word of our own static.
    unsafe { (core::ptr::addr_of!(RING0_STACK) as *const u64).read_volatile() == STACK_CANARY }
}

/// Top of the ring-0 stack used on entry from guest context.
pub fn ring0_stack_top() -> u64 {
    addr_of!(RING0_STACK) as u64 + RING0_STACK_SIZE as u64
}

fn set(index: usize, value: u64) {
    // SAFETY: called only from `init`, on the single boot CPU, before the GDT is loaded.
    unsafe { (*core::ptr::addr_of_mut!(GDT)).0[index] = value };
}

/// Builds and loads the GDT and TSS, reloading every segment register.
pub fn init() {
    // SAFETY: single-threaded boot; the statics are not yet in use by the CPU.
    let tss = unsafe { &mut *core::ptr::addr_of_mut!(TSS) };
    for (i, stack) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].into_iter().enumerate() {
        // SAFETY: only the address of the stack is taken.
        let base = unsafe { addr_of!(IST_STACKS[i]) as u64 };
        tss.interrupt_stack_table[stack as usize - 1] = VirtAddr::new(base + IST_STACK_SIZE as u64);
    }
    tss.privilege_stack_table[0] = VirtAddr::new(ring0_stack_top());

    set(FIRST_RESERVED_ENTRY + 1, 0x00af_9b00_0000_ffff); // 0xe008 ring-0 CS64
    set(FIRST_RESERVED_ENTRY + 2, 0x00cf_9300_0000_ffff); // 0xe010 ring-0 DS
    set(FIRST_RESERVED_ENTRY + 4, 0x00cf_fb00_0000_ffff); // 0xe023 ring-3 CS32
    set(FIRST_RESERVED_ENTRY + 5, 0x00cf_f300_0000_ffff); // 0xe02b ring-3 DS/SS
    set(FIRST_RESERVED_ENTRY + 6, 0x00af_fb00_0000_ffff); // 0xe033 ring-3 CS64
    let tss_base = tss as *const _ as u64;
    let tss_limit = (core::mem::size_of::<TaskStateSegment>() - 1) as u64;
    let low = (tss_limit & 0xffff)
        | (tss_base & 0xff_ffff) << 16
        | 0x89 << 40 // present, DPL0, available 64-bit TSS
        | ((tss_limit >> 16) & 0xf) << 48
        | ((tss_base >> 24) & 0xff) << 56;
    set(FIRST_RESERVED_ENTRY + 8, low);
    set(FIRST_RESERVED_ENTRY + 9, tss_base >> 32);

    let ptr = DescriptorTablePointer { limit: (GDT_ENTRIES * 8 - 1) as u16, base: VirtAddr::new(addr_of!(GDT) as u64) };
    // SAFETY: the table is fully built, 'static, and holds the selectors reloaded below.
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
        load_tss(x86_64::structures::gdt::SegmentSelector(TSS_SELECTOR));
    }
}
