//! `domctl` (#36): the control domain's domain-management interface (`domctl.h`), the subset
//! this hypervisor offers: get information, pause, unpause, destroy.

/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17: a caller with another version gets `-EACCES`.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x15;
/// `XEN_DOMCTL_destroydomain`.
pub const XEN_DOMCTL_DESTROYDOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`.
pub const XEN_DOMCTL_PAUSEDOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`.
pub const XEN_DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`.
pub const XEN_DOMCTL_GETDOMAININFO: u32 = 5;

/// `XEN_DOMINF_dying`.
pub const XEN_DOMINF_DYING: u32 = 1 << 0;
/// `XEN_DOMINF_shutdown`.
pub const XEN_DOMINF_SHUTDOWN: u32 = 1 << 2;
/// `XEN_DOMINF_paused`.
pub const XEN_DOMINF_PAUSED: u32 = 1 << 3;
/// `XEN_DOMINF_blocked`.
pub const XEN_DOMINF_BLOCKED: u32 = 1 << 4;
/// `XEN_DOMINF_running`.
pub const XEN_DOMINF_RUNNING: u32 = 1 << 5;

/// Size of `struct xen_domctl` (the union is padded to 128 bytes).
pub const XEN_DOMCTL_SIZE: usize = 144;
/// Offset of the union `u` in `struct xen_domctl`.
pub const XEN_DOMCTL_U_OFFSET: usize = 16;

/// The header of `struct xen_domctl`: `cmd`, `interface_version`, `domain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomctlHeader {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// Must be [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The target domain.
    pub domain: u16,
    /// Padding.
    pub pad: [u16; 3],
}

/// `struct xen_domctl_getdomaininfo` (112 bytes) in the union of `struct xen_domctl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetDomainInfo {
    /// The domain described (the first existing id at or above the one asked for).
    pub domain: u16,
    /// Padding.
    pub pad1: u16,
    /// `XEN_DOMINF_*`, plus the shutdown code in bits 16-23.
    pub flags: u32,
    /// Pages the domain has.
    pub tot_pages: u64,
    /// Pages it may have.
    pub max_pages: u64,
    /// Pages claimed but not yet allocated.
    pub outstanding_pages: u64,
    /// Pages shared with other domains.
    pub shr_pages: u64,
    /// Pages paged out.
    pub paged_pages: u64,
    /// Machine frame of its shared_info page.
    pub shared_info_frame: u64,
    /// CPU time used, in nanoseconds.
    pub cpu_time: u64,
    /// Online vCPUs.
    pub nr_online_vcpus: u32,
    /// Highest vCPU id.
    pub max_vcpu_id: u32,
    /// XSM security id.
    pub ssidref: u32,
    /// The domain's UUID.
    pub handle: [u8; 16],
    /// CPU pool.
    pub cpupool: u32,
    /// Guest physical address bits.
    pub gpaddr_bits: u8,
    /// Padding.
    pub pad2: [u8; 7],
    /// `struct xen_arch_domainconfig` (x86: `emulation_flags`, `misc_flags`).
    pub arch_config: [u32; 2],
}

/// `XEN_X86_EMU_PIT` (`arch-x86/xen.h`): the domain has an emulated PIT. Xen gives it to a
/// PV hardware domain, and `getdomaininfo` reports it in `arch_config[0]`.
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;

const _: () = assert!(core::mem::size_of::<DomctlHeader>() == XEN_DOMCTL_U_OFFSET);
const _: () = assert!(core::mem::size_of::<GetDomainInfo>() == 112);
