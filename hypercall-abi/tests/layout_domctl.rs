//! Layout of the domctl subset against Xen's `domctl.h` (a tools-only header).

mod common;

use core::mem::{offset_of, size_of};
use hypercall_abi::domctl::*;

#[test]
fn domctl_layout_matches_xen() {
    let c = common::c_values_with_defines(
        "domctl",
        &["__XEN_TOOLS__"],
        &["xen/xen.h", "xen/domctl.h"],
        &[
            ("sizeof_domctl", "sizeof(struct xen_domctl)"),
            ("off_u", "offsetof(struct xen_domctl, u)"),
            ("off_domain", "offsetof(struct xen_domctl, domain)"),
            ("sizeof_gdi", "sizeof(struct xen_domctl_getdomaininfo)"),
            ("off_flags", "offsetof(struct xen_domctl_getdomaininfo, flags)"),
            ("off_tot", "offsetof(struct xen_domctl_getdomaininfo, tot_pages)"),
            ("off_sif", "offsetof(struct xen_domctl_getdomaininfo, shared_info_frame)"),
            ("off_cpu", "offsetof(struct xen_domctl_getdomaininfo, cpu_time)"),
            ("off_nrv", "offsetof(struct xen_domctl_getdomaininfo, nr_online_vcpus)"),
            ("off_handle", "offsetof(struct xen_domctl_getdomaininfo, handle)"),
            ("off_cpupool", "offsetof(struct xen_domctl_getdomaininfo, cpupool)"),
            ("off_arch", "offsetof(struct xen_domctl_getdomaininfo, arch_config)"),
            ("version", "XEN_DOMCTL_INTERFACE_VERSION"),
            ("destroy", "XEN_DOMCTL_destroydomain"),
            ("pause", "XEN_DOMCTL_pausedomain"),
            ("unpause", "XEN_DOMCTL_unpausedomain"),
            ("getinfo", "XEN_DOMCTL_getdomaininfo"),
            ("dying", "XEN_DOMINF_dying"),
            ("shutdown", "XEN_DOMINF_shutdown"),
            ("paused", "XEN_DOMINF_paused"),
            ("blocked", "XEN_DOMINF_blocked"),
            ("running", "XEN_DOMINF_running"),
        ],
    );
    common::assert_all_equal(
        &c,
        &[
            ("sizeof_domctl", XEN_DOMCTL_SIZE as u64),
            ("off_u", XEN_DOMCTL_U_OFFSET as u64),
            ("off_domain", offset_of!(DomctlHeader, domain) as u64),
            ("sizeof_gdi", size_of::<GetDomainInfo>() as u64),
            ("off_flags", offset_of!(GetDomainInfo, flags) as u64),
            ("off_tot", offset_of!(GetDomainInfo, tot_pages) as u64),
            ("off_sif", offset_of!(GetDomainInfo, shared_info_frame) as u64),
            ("off_cpu", offset_of!(GetDomainInfo, cpu_time) as u64),
            ("off_nrv", offset_of!(GetDomainInfo, nr_online_vcpus) as u64),
            ("off_handle", offset_of!(GetDomainInfo, handle) as u64),
            ("off_cpupool", offset_of!(GetDomainInfo, cpupool) as u64),
            ("off_arch", offset_of!(GetDomainInfo, arch_config) as u64),
            ("version", XEN_DOMCTL_INTERFACE_VERSION as u64),
            ("destroy", XEN_DOMCTL_DESTROYDOMAIN as u64),
            ("pause", XEN_DOMCTL_PAUSEDOMAIN as u64),
            ("unpause", XEN_DOMCTL_UNPAUSEDOMAIN as u64),
            ("getinfo", XEN_DOMCTL_GETDOMAININFO as u64),
            ("dying", XEN_DOMINF_DYING as u64),
            ("shutdown", XEN_DOMINF_SHUTDOWN as u64),
            ("paused", XEN_DOMINF_PAUSED as u64),
            ("blocked", XEN_DOMINF_BLOCKED as u64),
            ("running", XEN_DOMINF_RUNNING as u64),
        ],
    );
}
