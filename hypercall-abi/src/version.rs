//! `xen_version` (`version.h`): version string, capabilities, features.

/// `XENVER_version`: returns `(major << 16) | minor` (argument NULL).
pub const XENVER_VERSION: u32 = 0;
/// `XENVER_extraversion`: fills [`XenExtraversion`].
pub const XENVER_EXTRAVERSION: u32 = 1;
/// `XENVER_compile_info`: fills [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u32 = 2;
/// `XENVER_capabilities`: fills [`XenCapabilitiesInfo`].
pub const XENVER_CAPABILITIES: u32 = 3;
/// `XENVER_changeset`: fills [`XenChangesetInfo`].
pub const XENVER_CHANGESET: u32 = 4;
/// `XENVER_platform_parameters`: fills [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// `XENVER_get_features`: fills [`XenFeatureInfo`] for the submap it names.
pub const XENVER_GET_FEATURES: u32 = 6;
/// `XENVER_pagesize`: returns the page size (argument NULL).
pub const XENVER_PAGESIZE: u32 = 7;
/// `XENVER_guest_handle`: fills a 16-byte domain handle (UUID).
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// `XENVER_commandline`: fills [`XenCommandline`] (Xen's own command line; privileged).
pub const XENVER_COMMANDLINE: u32 = 9;
/// `XENVER_build_id`: fills a `xen_build_id` (privileged).
pub const XENVER_BUILD_ID: u32 = 10;

/// `XEN_EXTRAVERSION_LEN`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `XEN_CAPABILITIES_INFO_LEN`.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `XEN_CHANGESET_INFO_LEN`.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// Length of `xen_commandline_t`.
pub const XEN_COMMANDLINE_LEN: usize = 1024;

/// `xen_extraversion_t`: e.g. `".7"` for 4.17.7 (NUL-terminated).
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];
/// `xen_capabilities_info_t`: e.g. `"xen-3.0-x86_64 hvm-3.0-x86_32 ..."`.
pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN];
/// `xen_changeset_info_t`: the source revision Xen was built from.
pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN];
/// `xen_commandline_t`.
pub type XenCommandline = [u8; XEN_COMMANDLINE_LEN];
/// `xen_domain_handle_t`: a 16-byte UUID.
pub type XenDomainHandle = [u8; 16];

/// `struct xen_compile_info` (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenCompileInfo {
    /// Compiler version string.
    pub compiler: [u8; 64],
    /// Who compiled Xen.
    pub compile_by: [u8; 16],
    /// Their domain.
    pub compile_domain: [u8; 32],
    /// When.
    pub compile_date: [u8; 32],
}

/// `struct xen_platform_parameters` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenPlatformParameters {
    /// Start of the hypervisor's virtual range (0xFFFF800000000000 for PV64).
    pub virt_start: u64,
}

/// `struct xen_feature_info` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit submap (0 = XENFEAT bits 0-31).
    pub submap_idx: u32,
    /// OUT: the submap.
    pub submap: u32,
}

/// The bytes of a fixed-size, NUL-terminated version string up to the NUL.
pub fn c_str_bytes(buf: &[u8]) -> &[u8] {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..len]
}

/// Splits a `XENVER_version` result into `(major, minor)`.
pub const fn split_version(v: u64) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

const _: () = assert!(core::mem::size_of::<XenCompileInfo>() == 144);
const _: () = assert!(core::mem::size_of::<XenPlatformParameters>() == 8);
const _: () = assert!(core::mem::size_of::<XenFeatureInfo>() == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_split_and_strings() {
        assert_eq!(split_version(0x4_0011), (4, 17));
        let mut ev: XenExtraversion = [0; 16];
        ev[..2].copy_from_slice(b".7");
        assert_eq!(c_str_bytes(&ev), b".7");
    }
}
