//! x86_64 PV architecture facts (`arch-x86/xen.h`, `arch-x86/xen-x86_64.h`): the reserved
//! virtual range, the flat ring-3 selectors, the virtual trap table and the `iret` frame.

/// Start of Xen's reserved virtual range (L4 slot 256).
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// End (exclusive) of Xen's reserved virtual range (L4 slot 272).
pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
/// Start of the read-only machine-to-phys table mapped into every PV guest.
pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// End (exclusive) of the read-only machine-to-phys table.
pub const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;
/// Number of `u64` entries in the M2P table.
pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;
/// First L4 slot Xen reserves (256).
pub const HYPERVISOR_FIRST_L4_SLOT: usize = 256;
/// Last L4 slot Xen reserves (271).
pub const HYPERVISOR_LAST_L4_SLOT: usize = 271;

/// First GDT page reserved for Xen; guest GDTs may have at most this many frames.
pub const FIRST_RESERVED_GDT_PAGE: u64 = 14;
/// First byte of the reserved GDT area.
pub const FIRST_RESERVED_GDT_BYTE: u64 = FIRST_RESERVED_GDT_PAGE * 4096;
/// First reserved GDT entry (7168); also the maximum number of guest GDT entries.
pub const FIRST_RESERVED_GDT_ENTRY: u64 = FIRST_RESERVED_GDT_BYTE / 8;

/// `FLAT_RING3_CS32`: 32-bit user code (GDT entry 7172, the fifth of Xen's reserved page;
/// `xen-x86_64.h`'s "index 260" comment is stale).
pub const FLAT_RING3_CS32: u16 = 0xe023;
/// `FLAT_RING3_CS64`: 64-bit code, DPL 3 (GDT entry 7174).
pub const FLAT_RING3_CS64: u16 = 0xe033;
/// `FLAT_RING3_DS32`: flat data, DPL 3 (GDT entry 7173).
pub const FLAT_RING3_DS32: u16 = 0xe02b;
/// `FLAT_RING3_DS64`: the NULL selector (legal as a data selector in long mode).
pub const FLAT_RING3_DS64: u16 = 0x0000;
/// `FLAT_RING3_SS32`.
pub const FLAT_RING3_SS32: u16 = 0xe02b;
/// `FLAT_RING3_SS64`.
pub const FLAT_RING3_SS64: u16 = 0xe02b;
/// `FLAT_KERNEL_CS` (= `FLAT_KERNEL_CS64`): the guest kernel's code selector.
pub const FLAT_KERNEL_CS: u16 = FLAT_RING3_CS64;
/// `FLAT_KERNEL_CS32`.
pub const FLAT_KERNEL_CS32: u16 = FLAT_RING3_CS32;
/// `FLAT_KERNEL_DS` (= `FLAT_KERNEL_DS64`, NULL).
pub const FLAT_KERNEL_DS: u16 = FLAT_RING3_DS64;
/// `FLAT_KERNEL_DS32`.
pub const FLAT_KERNEL_DS32: u16 = FLAT_RING3_DS32;
/// `FLAT_KERNEL_SS` (= `FLAT_KERNEL_SS64`): the guest kernel's stack selector.
pub const FLAT_KERNEL_SS: u16 = FLAT_RING3_SS64;
/// `FLAT_KERNEL_SS32`.
pub const FLAT_KERNEL_SS32: u16 = FLAT_RING3_SS32;
/// `FLAT_USER_CS` (= `FLAT_USER_CS64`).
pub const FLAT_USER_CS: u16 = FLAT_RING3_CS64;
/// `FLAT_USER_CS32`.
pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
/// `FLAT_USER_DS` (= `FLAT_USER_DS64`, NULL).
pub const FLAT_USER_DS: u16 = FLAT_RING3_DS64;
/// `FLAT_USER_DS32`.
pub const FLAT_USER_DS32: u16 = FLAT_RING3_DS32;
/// `FLAT_USER_SS` (= `FLAT_USER_SS64`).
pub const FLAT_USER_SS: u16 = FLAT_RING3_SS64;
/// `FLAT_USER_SS32`.
pub const FLAT_USER_SS32: u16 = FLAT_RING3_SS32;

/// The raw descriptors Xen puts at the flat selectors, as `(selector, descriptor)`; a
/// compatible hypervisor's GDT must hold exactly these (plus its own ring-0 CS 0xe008 and
/// DS 0xe010).
pub const FLAT_DESCRIPTORS: [(u16, u64); 5] = [
    (0xe008, 0x00af_9b00_0000_ffff),
    (0xe010, 0x00cf_9300_0000_ffff),
    (FLAT_RING3_CS32, 0x00cf_fb00_0000_ffff),
    (FLAT_RING3_DS32, 0x00cf_f300_0000_ffff),
    (FLAT_RING3_CS64, 0x00af_fb00_0000_ffff),
];

/// `set_segment_base` selector: FS base.
pub const SEGBASE_FS: u32 = 0;
/// `set_segment_base` selector: user GS base.
pub const SEGBASE_GS_USER: u32 = 1;
/// `set_segment_base` selector: kernel GS base.
pub const SEGBASE_GS_KERNEL: u32 = 2;
/// `set_segment_base` selector: load the user `%gs` selector from `base[15:0]`.
pub const SEGBASE_GS_USER_SEL: u32 = 3;

/// `iret` frame flag: return through `sysret`, discarding RCX/R11 (`VGCF_in_syscall`).
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// `trap_info.flags` bits 0-1: the DPL needed to raise the vector with `int n`.
pub const TI_DPL_MASK: u8 = 3;
/// `trap_info.flags` bit 2: mask events on entry (like an interrupt gate).
pub const TI_MASK_EVENTS: u8 = 4;

/// `struct trap_info` (16 bytes): one virtual IDT entry for `set_trap_table`. An array of
/// these ends at the first entry whose `address` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// Exception/interrupt vector.
    pub vector: u8,
    /// DPL in bits 0-1, [`TI_MASK_EVENTS`] in bit 2.
    pub flags: u8,
    /// Code selector (RPL raised to 3; PV64 handlers always run on `FLAT_KERNEL_CS`).
    pub cs: u16,
    /// Handler address (must be canonical).
    pub address: u64,
}

/// `struct iret_context` (72 bytes): what is on the stack when the `iret` hypercall runs
/// (the guest pushes `flags..ss`, the stub pushes `rcx`, `r11`, `rax`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IretContext {
    /// Saved RAX.
    pub rax: u64,
    /// Saved R11.
    pub r11: u64,
    /// Saved RCX.
    pub rcx: u64,
    /// `VGCF_IN_SYSCALL` or 0.
    pub flags: u64,
    /// Return RIP.
    pub rip: u64,
    /// Return CS (RPL 3 means return to user mode).
    pub cs: u64,
    /// Return RFLAGS (IF is the new virtual interrupt flag).
    pub rflags: u64,
    /// Return RSP.
    pub rsp: u64,
    /// Return SS.
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);
const _: () = assert!(core::mem::offset_of!(TrapInfo, address) == 8);
const _: () = assert!(core::mem::size_of::<IretContext>() == 72);
