//! Page-table hypercalls (`xen.h`): `mmu_update`, `mmuext_op`, `update_va_mapping` flags and
//! the special domain ids used as `foreigndom`.

/// `domid_t`: a domain id.
pub type DomId = u16;

/// `DOMID_FIRST_RESERVED`: ids from here up are special.
pub const DOMID_FIRST_RESERVED: DomId = 0x7FF0;
/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: DomId = 0x7FF0;
/// `DOMID_IO`: I/O memory (for mapping device frames).
pub const DOMID_IO: DomId = 0x7FF1;
/// `DOMID_XEN`: frames owned by Xen.
pub const DOMID_XEN: DomId = 0x7FF2;
/// `DOMID_COW`: copy-on-write shared frames.
pub const DOMID_COW: DomId = 0x7FF3;
/// `DOMID_INVALID`: no domain.
pub const DOMID_INVALID: DomId = 0x7FF4;
/// `DOMID_IDLE`: the idle domain.
pub const DOMID_IDLE: DomId = 0x7FFF;
/// `DOMID_MASK`: mask of valid domain-id bits.
pub const DOMID_MASK: DomId = 0x7FFF;

/// `mmu_update` command in `ptr[1:0]`: checked `*ptr = val` into a page-table frame.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `mmu_update` command: `M2P[ptr >> 12] = val`.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
/// `mmu_update` command: like normal, keeping the existing A and D bits.
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
/// `mmu_update` command: like normal, `val` never translated.
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;
/// Bit 31 of `count`: set by Xen's continuations, never by a guest.
pub const MMU_UPDATE_PREEMPTED: u32 = 0x8000_0000;

/// `struct mmu_update` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Machine address of the entry, command in bits 0-1.
    pub ptr: u64,
    /// New value.
    pub val: u64,
}

/// `MMUEXT_PIN_L1_TABLE`: give a frame the L1 type and pin it.
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
/// `MMUEXT_PIN_L2_TABLE`.
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
/// `MMUEXT_PIN_L3_TABLE`.
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
/// `MMUEXT_PIN_L4_TABLE`.
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `MMUEXT_UNPIN_TABLE`.
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `MMUEXT_NEW_BASEPTR`: load a new kernel root (arg1 = MFN).
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// `MMUEXT_TLB_FLUSH_LOCAL`.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `MMUEXT_INVLPG_LOCAL` (arg1 = linear address).
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
/// `MMUEXT_TLB_FLUSH_MULTI` (arg2 = vCPU mask pointer).
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
/// `MMUEXT_INVLPG_MULTI`.
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
/// `MMUEXT_TLB_FLUSH_ALL`.
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
/// `MMUEXT_INVLPG_ALL`.
pub const MMUEXT_INVLPG_ALL: u32 = 11;
/// `MMUEXT_FLUSH_CACHE`.
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
/// `MMUEXT_SET_LDT` (arg1 = linear address, arg2 = entries).
pub const MMUEXT_SET_LDT: u32 = 13;
/// `MMUEXT_NEW_USER_BASEPTR`: set the user root (arg1 = MFN, 0 = none).
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// `MMUEXT_CLEAR_PAGE`.
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
/// `MMUEXT_COPY_PAGE` (arg1 = destination MFN, arg2 = source MFN).
pub const MMUEXT_COPY_PAGE: u32 = 17;
/// `MMUEXT_FLUSH_CACHE_GLOBAL`.
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
/// `MMUEXT_MARK_SUPER` (removed in modern Xen).
pub const MMUEXT_MARK_SUPER: u32 = 19;
/// `MMUEXT_UNMARK_SUPER` (removed in modern Xen).
pub const MMUEXT_UNMARK_SUPER: u32 = 20;

/// `struct mmuext_op` (24 bytes). `arg1` is `mfn` or `linear_addr`; `arg2` is `nr_ents`,
/// a `vcpumask` pointer or `src_mfn`, depending on `cmd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    /// `MMUEXT_*` command.
    pub cmd: u32,
    /// First argument.
    pub arg1: u64,
    /// Second argument.
    pub arg2: u64,
}

/// `update_va_mapping` flush: none.
pub const UVMF_NONE: u64 = 0;
/// `update_va_mapping` flush: the whole TLB.
pub const UVMF_TLB_FLUSH: u64 = 1;
/// `update_va_mapping` flush: only the one entry.
pub const UVMF_INVLPG: u64 = 2;
/// Mask of the flush-type bits.
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
/// Scope: a vCPU bitmap (the rest of `flags` is a pointer to it).
pub const UVMF_MULTI: u64 = 0;
/// Scope: this vCPU.
pub const UVMF_LOCAL: u64 = 0;
/// Scope: every vCPU of the domain.
pub const UVMF_ALL: u64 = 1 << 2;

/// Page-table entry bits Xen cares about (native x86-64 layout).
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User-accessible.
    pub const USER: u64 = 1 << 2;
    /// Write-through.
    pub const PWT: u64 = 1 << 3;
    /// Cache disable.
    pub const PCD: u64 = 1 << 4;
    /// Accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty.
    pub const DIRTY: u64 = 1 << 6;
    /// PAT (L1) / page size (L2-L4; refused by Xen for PV).
    pub const PAT_OR_PSE: u64 = 1 << 7;
    /// Global.
    pub const GLOBAL: u64 = 1 << 8;
    /// No-execute.
    pub const NX: u64 = 1 << 63;
    /// Machine-address bits 12-51.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

const _: () = assert!(core::mem::size_of::<MmuUpdate>() == 16);
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);
const _: () = assert!(core::mem::offset_of!(MmuextOp, arg1) == 8);
