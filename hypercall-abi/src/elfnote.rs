//! ELF note types a PV kernel uses to describe itself to the domain builder (`elfnote.h`).
//!
//! Every note has the name `"Xen"` ([`XEN_NOTE_NAME`]); string notes hold NUL-terminated
//! text, numeric ones an unsigned integer of 1, 2, 4 or 8 bytes.

/// The note name (`namesz` = 4, including the NUL).
pub const XEN_NOTE_NAME: &[u8; 4] = b"Xen\0";

/// `INFO`: not parsed.
pub const XEN_ELFNOTE_INFO: u32 = 0;
/// `ENTRY`: virtual entry point (numeric).
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// `HYPERCALL_PAGE`: virtual address of the page Xen fills with hypercall stubs (numeric).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// `VIRT_BASE`: virtual address of pseudo-physical 0 (numeric, default 0).
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// `PADDR_OFFSET`: subtracted from `p_paddr` (numeric).
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// `XEN_VERSION`: must start with `"xen-3.0"` (string, required).
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// `GUEST_OS`: free text (string).
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// `GUEST_VERSION`: free text (string).
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
/// `LOADER`: must start with `"generic"` unless GUEST_OS is `"linux"` (string).
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// `PAE_MODE`: `"yes"`, `"bimodal"` or `"no"` (string).
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
/// `FEATURES`: `|`-separated XENFEAT names, `!` marks a required one (string).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
/// `BSD_SYMTAB`: `"yes"` to load the symbol table (string).
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
/// `HV_START_LOW`: 32-bit guests only (numeric).
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
/// `L1_MFN_VALID`: defined but ignored by 4.17.
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
/// `SUSPEND_CANCEL`: the guest supports suspend cancellation (numeric).
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
/// `INIT_P2M`: virtual address for the initial P2M list (numeric).
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
/// `MOD_START_PFN`: the guest accepts an unmapped module given by PFN (numeric).
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// `SUPPORTED_FEATURES`: bitmap of supported XENFEAT bits (numeric).
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
/// `PHYS32_ENTRY`: PVH 32-bit entry point (numeric; ignored for PV).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The highest builder note number (`XEN_ELFNOTE_MAX`).
pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_ENTRY;
/// `CRASH_INFO`: crash dumps only.
pub const XEN_ELFNOTE_CRASH_INFO: u32 = 0x100_0001;
/// `CRASH_REGS`: crash dumps only.
pub const XEN_ELFNOTE_CRASH_REGS: u32 = 0x100_0002;
/// `DUMPCORE_NONE`: core files only.
pub const XEN_ELFNOTE_DUMPCORE_NONE: u32 = 0x200_0000;
/// `DUMPCORE_HEADER`: core files only.
pub const XEN_ELFNOTE_DUMPCORE_HEADER: u32 = 0x200_0001;
/// `DUMPCORE_XEN_VERSION`: core files only.
pub const XEN_ELFNOTE_DUMPCORE_XEN_VERSION: u32 = 0x200_0002;
/// `DUMPCORE_FORMAT_VERSION`: core files only.
pub const XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION: u32 = 0x200_0003;

/// XENFEAT bit numbers (`features.h`), used by the FEATURES note and `XENVER_get_features`.
pub mod xenfeat {
    /// Guest page tables may be written directly (emulated).
    pub const WRITABLE_PAGE_TABLES: u32 = 0;
    /// Guest descriptor tables may be written directly.
    pub const WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
    /// The physmap is auto-translated (not for PV).
    pub const AUTO_TRANSLATED_PHYSMAP: u32 = 2;
    /// The kernel runs in ring 0 (not supported).
    pub const SUPERVISOR_MODE_KERNEL: u32 = 3;
    /// Page directories may live above 4 GiB.
    pub const PAE_PGDIR_ABOVE_4GB: u32 = 4;
    /// `MMU_PT_UPDATE_PRESERVE_AD` is available.
    pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
    /// The highmem assist is available.
    pub const HIGHMEM_ASSIST: u32 = 6;
    /// Grant maps may use the available PTE bits.
    pub const GNTTAB_MAP_AVAIL_BITS: u32 = 7;
    /// HVM callback vector.
    pub const HVM_CALLBACK_VECTOR: u32 = 8;
    /// HVM safe pvclock.
    pub const HVM_SAFE_PVCLOCK: u32 = 9;
    /// HVM PIRQs.
    pub const HVM_PIRQS: u32 = 10;
    /// The domain is the hardware/initial domain.
    pub const DOM0: u32 = 11;
    // Bit 12 (`XENFEAT_grant_map_identity`) is deprecated and commented out in the header.
    /// `memory_op` understands vNUMA nodes.
    pub const MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
    /// ARM SMCCC is supported.
    pub const ARM_SMCCC_SUPPORTED: u32 = 14;
    /// Linux may use any RSDP.
    pub const LINUX_RSDP_UNRESTRICTED: u32 = 15;
    /// The domain is not direct-mapped.
    pub const NOT_DIRECT_MAPPED: u32 = 16;
    /// The domain is direct-mapped.
    pub const DIRECT_MAPPED: u32 = 17;
    /// Number of 32-bit feature submaps (`XENFEAT_NR_SUBMAPS`).
    pub const NR_SUBMAPS: u32 = 1;
}
