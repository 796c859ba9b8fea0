//! Layout proof, continued: `xen_version`, `memory_op`, `vcpu_op`, callbacks, event channels
//! and grant tables, and the values that exist only for the hypervisor or the toolstack.

use core::mem::{offset_of, size_of};

use hypercall_abi::{callback as cb, event_channel as ev, grant_table as gt, memory as mem, vcpu, version as ver};

use super::{common, Probe};

#[test]
fn version_memory_vcpu_callback() {
    let mut p = Probe::default();
    k!(p, ver::XENVER_VERSION, "XENVER_version");
    k!(p, ver::XENVER_EXTRAVERSION, "XENVER_extraversion");
    k!(p, ver::XENVER_COMPILE_INFO, "XENVER_compile_info");
    k!(p, ver::XENVER_CAPABILITIES, "XENVER_capabilities");
    k!(p, ver::XENVER_CHANGESET, "XENVER_changeset");
    k!(p, ver::XENVER_PLATFORM_PARAMETERS, "XENVER_platform_parameters");
    k!(p, ver::XENVER_GET_FEATURES, "XENVER_get_features");
    k!(p, ver::XENVER_PAGESIZE, "XENVER_pagesize");
    k!(p, ver::XENVER_GUEST_HANDLE, "XENVER_guest_handle");
    k!(p, ver::XENVER_COMMANDLINE, "XENVER_commandline");
    k!(p, ver::XENVER_BUILD_ID, "XENVER_build_id");
    k!(p, ver::XEN_EXTRAVERSION_LEN, "XEN_EXTRAVERSION_LEN");
    k!(p, ver::XEN_CAPABILITIES_INFO_LEN, "XEN_CAPABILITIES_INFO_LEN");
    k!(p, ver::XEN_CHANGESET_INFO_LEN, "XEN_CHANGESET_INFO_LEN");
    size!(p, ver::XenExtraversion, "xen_extraversion_t");
    size!(p, ver::XenCapabilitiesInfo, "xen_capabilities_info_t");
    size!(p, ver::XenChangesetInfo, "xen_changeset_info_t");
    size!(p, ver::XenCommandline, "xen_commandline_t");
    size!(p, ver::XenDomainHandle, "xen_domain_handle_t");
    size!(p, ver::XenCompileInfo, "struct xen_compile_info");
    off!(p, ver::XenCompileInfo, compile_by, "struct xen_compile_info", "compile_by");
    off!(p, ver::XenCompileInfo, compile_domain, "struct xen_compile_info", "compile_domain");
    off!(p, ver::XenCompileInfo, compile_date, "struct xen_compile_info", "compile_date");
    size!(p, ver::XenPlatformParameters, "struct xen_platform_parameters");
    size!(p, ver::XenFeatureInfo, "struct xen_feature_info");
    off!(p, ver::XenFeatureInfo, submap, "struct xen_feature_info", "submap");

    k!(p, mem::XENMEM_INCREASE_RESERVATION, "XENMEM_increase_reservation");
    k!(p, mem::XENMEM_DECREASE_RESERVATION, "XENMEM_decrease_reservation");
    k!(p, mem::XENMEM_MAXIMUM_RAM_PAGE, "XENMEM_maximum_ram_page");
    k!(p, mem::XENMEM_CURRENT_RESERVATION, "XENMEM_current_reservation");
    k!(p, mem::XENMEM_MAXIMUM_RESERVATION, "XENMEM_maximum_reservation");
    k!(p, mem::XENMEM_MACHPHYS_MFN_LIST, "XENMEM_machphys_mfn_list");
    k!(p, mem::XENMEM_POPULATE_PHYSMAP, "XENMEM_populate_physmap");
    k!(p, mem::XENMEM_ADD_TO_PHYSMAP, "XENMEM_add_to_physmap");
    k!(p, mem::XENMEM_MEMORY_MAP, "XENMEM_memory_map");
    k!(p, mem::XENMEM_MACHINE_MEMORY_MAP, "XENMEM_machine_memory_map");
    k!(p, mem::XENMEM_EXCHANGE, "XENMEM_exchange");
    k!(p, mem::XENMEM_MACHPHYS_MAPPING, "XENMEM_machphys_mapping");
    k!(p, mem::XENMEM_SET_MEMORY_MAP, "XENMEM_set_memory_map");
    k!(p, mem::XENMEM_MAXIMUM_GPFN, "XENMEM_maximum_gpfn");
    k!(p, mem::XENMEM_REMOVE_FROM_PHYSMAP, "XENMEM_remove_from_physmap");
    k!(p, mem::XENMEM_GET_VNUMAINFO, "XENMEM_get_vnumainfo");
    k!(p, mem::XENMEM_ACQUIRE_RESOURCE, "XENMEM_acquire_resource");
    k!(p, mem::XENMEMF_POPULATE_ON_DEMAND, "XENMEMF_populate_on_demand");
    k!(p, mem::XENMEMF_EXACT_NODE_REQUEST, "XENMEMF_exact_node_request");
    k!(p, mem::XENMEMF_VNODE, "XENMEMF_vnode");
    size!(p, mem::XenMemoryReservation, "struct xen_memory_reservation");
    off!(p, mem::XenMemoryReservation, extent_start, "struct xen_memory_reservation", "extent_start");
    off!(p, mem::XenMemoryReservation, nr_extents, "struct xen_memory_reservation", "nr_extents");
    off!(p, mem::XenMemoryReservation, extent_order, "struct xen_memory_reservation", "extent_order");
    off!(p, mem::XenMemoryReservation, mem_flags, "struct xen_memory_reservation", "mem_flags");
    off!(p, mem::XenMemoryReservation, domid, "struct xen_memory_reservation", "domid");
    size!(p, mem::XenMemoryMap, "struct xen_memory_map");
    off!(p, mem::XenMemoryMap, nr_entries, "struct xen_memory_map", "nr_entries");
    off!(p, mem::XenMemoryMap, buffer, "struct xen_memory_map", "buffer");
    size!(p, mem::XenMachphysMapping, "struct xen_machphys_mapping");
    off!(p, mem::XenMachphysMapping, v_end, "struct xen_machphys_mapping", "v_end");
    off!(p, mem::XenMachphysMapping, max_mfn, "struct xen_machphys_mapping", "max_mfn");

    for (r, c) in [
        (vcpu::VCPUOP_INITIALISE, "VCPUOP_initialise"),
        (vcpu::VCPUOP_UP, "VCPUOP_up"),
        (vcpu::VCPUOP_DOWN, "VCPUOP_down"),
        (vcpu::VCPUOP_IS_UP, "VCPUOP_is_up"),
        (vcpu::VCPUOP_GET_RUNSTATE_INFO, "VCPUOP_get_runstate_info"),
        (vcpu::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA, "VCPUOP_register_runstate_memory_area"),
        (vcpu::VCPUOP_SET_PERIODIC_TIMER, "VCPUOP_set_periodic_timer"),
        (vcpu::VCPUOP_STOP_PERIODIC_TIMER, "VCPUOP_stop_periodic_timer"),
        (vcpu::VCPUOP_SET_SINGLESHOT_TIMER, "VCPUOP_set_singleshot_timer"),
        (vcpu::VCPUOP_STOP_SINGLESHOT_TIMER, "VCPUOP_stop_singleshot_timer"),
        (vcpu::VCPUOP_REGISTER_VCPU_INFO, "VCPUOP_register_vcpu_info"),
        (vcpu::VCPUOP_SEND_NMI, "VCPUOP_send_nmi"),
        (vcpu::VCPUOP_GET_PHYSID, "VCPUOP_get_physid"),
        (vcpu::VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA, "VCPUOP_register_vcpu_time_memory_area"),
        (vcpu::VCPU_SSHOTTMR_FUTURE, "VCPU_SSHOTTMR_future"),
    ] {
        p.add(c, r as u64, c);
    }
    k!(p, vcpu::RUNSTATE_RUNNING, "RUNSTATE_running");
    k!(p, vcpu::RUNSTATE_RUNNABLE, "RUNSTATE_runnable");
    k!(p, vcpu::RUNSTATE_BLOCKED, "RUNSTATE_blocked");
    k!(p, vcpu::RUNSTATE_OFFLINE, "RUNSTATE_offline");
    size!(p, vcpu::VcpuRunstateInfo, "struct vcpu_runstate_info");
    off!(p, vcpu::VcpuRunstateInfo, state_entry_time, "struct vcpu_runstate_info", "state_entry_time");
    off!(p, vcpu::VcpuRunstateInfo, time, "struct vcpu_runstate_info", "time");
    size!(p, vcpu::VcpuSetPeriodicTimer, "struct vcpu_set_periodic_timer");
    size!(p, vcpu::VcpuSetSingleshotTimer, "struct vcpu_set_singleshot_timer");
    off!(p, vcpu::VcpuSetSingleshotTimer, flags, "struct vcpu_set_singleshot_timer", "flags");
    size!(p, vcpu::VcpuRegisterVcpuInfo, "struct vcpu_register_vcpu_info");
    off!(p, vcpu::VcpuRegisterVcpuInfo, offset, "struct vcpu_register_vcpu_info", "offset");
    off!(p, vcpu::VcpuRegisterVcpuInfo, rsvd, "struct vcpu_register_vcpu_info", "rsvd");

    k!(p, cb::CALLBACKOP_REGISTER, "CALLBACKOP_register");
    k!(p, cb::CALLBACKOP_UNREGISTER, "CALLBACKOP_unregister");
    k!(p, cb::CALLBACKTYPE_EVENT, "CALLBACKTYPE_event");
    k!(p, cb::CALLBACKTYPE_FAILSAFE, "CALLBACKTYPE_failsafe");
    k!(p, cb::CALLBACKTYPE_SYSCALL, "CALLBACKTYPE_syscall");
    k!(p, cb::CALLBACKTYPE_SYSENTER_DEPRECATED, "CALLBACKTYPE_sysenter_deprecated");
    k!(p, cb::CALLBACKTYPE_NMI, "CALLBACKTYPE_nmi");
    k!(p, cb::CALLBACKTYPE_SYSENTER, "CALLBACKTYPE_sysenter");
    k!(p, cb::CALLBACKTYPE_SYSCALL32, "CALLBACKTYPE_syscall32");
    k!(p, cb::CALLBACKF_MASK_EVENTS, "CALLBACKF_mask_events");
    size!(p, cb::CallbackRegister, "struct callback_register");
    off!(p, cb::CallbackRegister, kind, "struct callback_register", "type");
    off!(p, cb::CallbackRegister, flags, "struct callback_register", "flags");
    off!(p, cb::CallbackRegister, address, "struct callback_register", "address");
    size!(p, cb::CallbackUnregister, "struct callback_unregister");
    p.run("version_memory_vcpu");
}

#[test]
fn event_channels_and_grant_tables() {
    let mut p = Probe::default();
    for (r, c) in [
        (ev::EVTCHNOP_BIND_INTERDOMAIN, "EVTCHNOP_bind_interdomain"),
        (ev::EVTCHNOP_BIND_VIRQ, "EVTCHNOP_bind_virq"),
        (ev::EVTCHNOP_BIND_PIRQ, "EVTCHNOP_bind_pirq"),
        (ev::EVTCHNOP_CLOSE, "EVTCHNOP_close"),
        (ev::EVTCHNOP_SEND, "EVTCHNOP_send"),
        (ev::EVTCHNOP_STATUS, "EVTCHNOP_status"),
        (ev::EVTCHNOP_ALLOC_UNBOUND, "EVTCHNOP_alloc_unbound"),
        (ev::EVTCHNOP_BIND_IPI, "EVTCHNOP_bind_ipi"),
        (ev::EVTCHNOP_BIND_VCPU, "EVTCHNOP_bind_vcpu"),
        (ev::EVTCHNOP_UNMASK, "EVTCHNOP_unmask"),
        (ev::EVTCHNOP_RESET, "EVTCHNOP_reset"),
        (ev::EVTCHNOP_INIT_CONTROL, "EVTCHNOP_init_control"),
        (ev::EVTCHNOP_EXPAND_ARRAY, "EVTCHNOP_expand_array"),
        (ev::EVTCHNOP_SET_PRIORITY, "EVTCHNOP_set_priority"),
        (ev::EVTCHNSTAT_CLOSED, "EVTCHNSTAT_closed"),
        (ev::EVTCHNSTAT_UNBOUND, "EVTCHNSTAT_unbound"),
        (ev::EVTCHNSTAT_INTERDOMAIN, "EVTCHNSTAT_interdomain"),
        (ev::EVTCHNSTAT_PIRQ, "EVTCHNSTAT_pirq"),
        (ev::EVTCHNSTAT_VIRQ, "EVTCHNSTAT_virq"),
        (ev::EVTCHNSTAT_IPI, "EVTCHNSTAT_ipi"),
        (ev::VIRQ_TIMER, "VIRQ_TIMER"),
        (ev::VIRQ_DEBUG, "VIRQ_DEBUG"),
        (ev::VIRQ_CONSOLE, "VIRQ_CONSOLE"),
        (ev::VIRQ_DOM_EXC, "VIRQ_DOM_EXC"),
        (ev::VIRQ_TBUF, "VIRQ_TBUF"),
        (ev::VIRQ_DEBUGGER, "VIRQ_DEBUGGER"),
        (ev::VIRQ_XENOPROF, "VIRQ_XENOPROF"),
        (ev::VIRQ_CON_RING, "VIRQ_CON_RING"),
        (ev::VIRQ_PCPU_STATE, "VIRQ_PCPU_STATE"),
        (ev::VIRQ_MEM_EVENT, "VIRQ_MEM_EVENT"),
        (ev::VIRQ_ARGO, "VIRQ_ARGO"),
        (ev::VIRQ_ENOMEM, "VIRQ_ENOMEM"),
        (ev::VIRQ_XENPMU, "VIRQ_XENPMU"),
        (ev::VIRQ_ARCH_0, "VIRQ_ARCH_0"),
        (ev::NR_VIRQS, "NR_VIRQS"),
    ] {
        p.add(c, r as u64, c);
    }
    size!(p, ev::EvtchnAllocUnbound, "struct evtchn_alloc_unbound");
    off!(p, ev::EvtchnAllocUnbound, remote_dom, "struct evtchn_alloc_unbound", "remote_dom");
    off!(p, ev::EvtchnAllocUnbound, port, "struct evtchn_alloc_unbound", "port");
    size!(p, ev::EvtchnBindInterdomain, "struct evtchn_bind_interdomain");
    off!(p, ev::EvtchnBindInterdomain, remote_port, "struct evtchn_bind_interdomain", "remote_port");
    off!(p, ev::EvtchnBindInterdomain, local_port, "struct evtchn_bind_interdomain", "local_port");
    size!(p, ev::EvtchnBindVirq, "struct evtchn_bind_virq");
    off!(p, ev::EvtchnBindVirq, vcpu, "struct evtchn_bind_virq", "vcpu");
    off!(p, ev::EvtchnBindVirq, port, "struct evtchn_bind_virq", "port");
    size!(p, ev::EvtchnBindPirq, "struct evtchn_bind_pirq");
    off!(p, ev::EvtchnBindPirq, port, "struct evtchn_bind_pirq", "port");
    size!(p, ev::EvtchnBindIpi, "struct evtchn_bind_ipi");
    off!(p, ev::EvtchnBindIpi, port, "struct evtchn_bind_ipi", "port");
    size!(p, ev::EvtchnClose, "struct evtchn_close");
    size!(p, ev::EvtchnSend, "struct evtchn_send");
    size!(p, ev::EvtchnStatus, "struct evtchn_status");
    off!(p, ev::EvtchnStatus, port, "struct evtchn_status", "port");
    off!(p, ev::EvtchnStatus, status, "struct evtchn_status", "status");
    off!(p, ev::EvtchnStatus, vcpu, "struct evtchn_status", "vcpu");
    off!(p, ev::EvtchnStatus, u, "struct evtchn_status", "u");
    let u = offset_of!(ev::EvtchnStatus, u) as u64;
    p.add("evtchn_status.u.interdomain.port", u + 4, "offsetof(struct evtchn_status, u.interdomain.port)");
    p.add("evtchn_status.u.virq", u, "offsetof(struct evtchn_status, u.virq)");
    size!(p, ev::EvtchnBindVcpu, "struct evtchn_bind_vcpu");
    off!(p, ev::EvtchnBindVcpu, vcpu, "struct evtchn_bind_vcpu", "vcpu");
    size!(p, ev::EvtchnUnmask, "struct evtchn_unmask");
    size!(p, ev::EvtchnReset, "struct evtchn_reset");

    for (r, c) in [
        (gt::GNTTABOP_MAP_GRANT_REF, "GNTTABOP_map_grant_ref"),
        (gt::GNTTABOP_UNMAP_GRANT_REF, "GNTTABOP_unmap_grant_ref"),
        (gt::GNTTABOP_SETUP_TABLE, "GNTTABOP_setup_table"),
        (gt::GNTTABOP_DUMP_TABLE, "GNTTABOP_dump_table"),
        (gt::GNTTABOP_TRANSFER, "GNTTABOP_transfer"),
        (gt::GNTTABOP_COPY, "GNTTABOP_copy"),
        (gt::GNTTABOP_QUERY_SIZE, "GNTTABOP_query_size"),
        (gt::GNTTABOP_UNMAP_AND_REPLACE, "GNTTABOP_unmap_and_replace"),
        (gt::GNTTABOP_SET_VERSION, "GNTTABOP_set_version"),
        (gt::GNTTABOP_GET_STATUS_FRAMES, "GNTTABOP_get_status_frames"),
        (gt::GNTTABOP_GET_VERSION, "GNTTABOP_get_version"),
        (gt::GNTTABOP_SWAP_GRANT_REF, "GNTTABOP_swap_grant_ref"),
        (gt::GNTTABOP_CACHE_FLUSH, "GNTTABOP_cache_flush"),
        (gt::GNTTAB_RESERVED_CONSOLE, "GNTTAB_RESERVED_CONSOLE"),
        (gt::GNTTAB_RESERVED_XENSTORE, "GNTTAB_RESERVED_XENSTORE"),
        (gt::GNTMAP_DEVICE_MAP, "GNTMAP_device_map"),
        (gt::GNTMAP_HOST_MAP, "GNTMAP_host_map"),
        (gt::GNTMAP_READONLY, "GNTMAP_readonly"),
        (gt::GNTMAP_APPLICATION_MAP, "GNTMAP_application_map"),
        (gt::GNTMAP_CONTAINS_PTE, "GNTMAP_contains_pte"),
    ] {
        p.add(c, r as u64, c);
    }
    for (r, c) in [
        (gt::GTF_INVALID, "GTF_invalid"),
        (gt::GTF_PERMIT_ACCESS, "GTF_permit_access"),
        (gt::GTF_ACCEPT_TRANSFER, "GTF_accept_transfer"),
        (gt::GTF_TRANSITIVE, "GTF_transitive"),
        (gt::GTF_TYPE_MASK, "GTF_type_mask"),
        (gt::GTF_READONLY, "GTF_readonly"),
        (gt::GTF_READING, "GTF_reading"),
        (gt::GTF_WRITING, "GTF_writing"),
        (gt::GTF_PWT, "GTF_PWT"),
        (gt::GTF_PCD, "GTF_PCD"),
        (gt::GTF_PAT, "GTF_PAT"),
        (gt::GTF_SUB_PAGE, "GTF_sub_page"),
        (gt::GTF_TRANSFER_COMMITTED, "GTF_transfer_committed"),
        (gt::GTF_TRANSFER_COMPLETED, "GTF_transfer_completed"),
        (gt::GNTCOPY_SOURCE_GREF, "GNTCOPY_source_gref"),
        (gt::GNTCOPY_DEST_GREF, "GNTCOPY_dest_gref"),
    ] {
        p.add(c, r as u64, c);
    }
    for (r, c) in [
        (gt::GNTST_OKAY, "GNTST_okay"),
        (gt::GNTST_GENERAL_ERROR, "GNTST_general_error"),
        (gt::GNTST_BAD_DOMAIN, "GNTST_bad_domain"),
        (gt::GNTST_BAD_GNTREF, "GNTST_bad_gntref"),
        (gt::GNTST_BAD_HANDLE, "GNTST_bad_handle"),
        (gt::GNTST_BAD_VIRT_ADDR, "GNTST_bad_virt_addr"),
        (gt::GNTST_BAD_DEV_ADDR, "GNTST_bad_dev_addr"),
        (gt::GNTST_NO_DEVICE_SPACE, "GNTST_no_device_space"),
        (gt::GNTST_PERMISSION_DENIED, "GNTST_permission_denied"),
        (gt::GNTST_BAD_PAGE, "GNTST_bad_page"),
        (gt::GNTST_BAD_COPY_ARG, "GNTST_bad_copy_arg"),
        (gt::GNTST_ADDRESS_TOO_BIG, "GNTST_address_too_big"),
        (gt::GNTST_EAGAIN, "GNTST_eagain"),
        (gt::GNTST_NO_SPACE, "GNTST_no_space"),
    ] {
        p.add(c, r as i64 as u64, format!("(long long)({c})"));
    }
    size!(p, gt::GrantEntryV1, "struct grant_entry_v1");
    off!(p, gt::GrantEntryV1, flags, "struct grant_entry_v1", "flags");
    off!(p, gt::GrantEntryV1, domid, "struct grant_entry_v1", "domid");
    off!(p, gt::GrantEntryV1, frame, "struct grant_entry_v1", "frame");
    size!(p, gt::GnttabMapGrantRef, "struct gnttab_map_grant_ref");
    off!(p, gt::GnttabMapGrantRef, flags, "struct gnttab_map_grant_ref", "flags");
    off!(p, gt::GnttabMapGrantRef, r#ref, "struct gnttab_map_grant_ref", "ref");
    off!(p, gt::GnttabMapGrantRef, dom, "struct gnttab_map_grant_ref", "dom");
    off!(p, gt::GnttabMapGrantRef, status, "struct gnttab_map_grant_ref", "status");
    off!(p, gt::GnttabMapGrantRef, handle, "struct gnttab_map_grant_ref", "handle");
    off!(p, gt::GnttabMapGrantRef, dev_bus_addr, "struct gnttab_map_grant_ref", "dev_bus_addr");
    size!(p, gt::GnttabUnmapGrantRef, "struct gnttab_unmap_grant_ref");
    off!(p, gt::GnttabUnmapGrantRef, dev_bus_addr, "struct gnttab_unmap_grant_ref", "dev_bus_addr");
    off!(p, gt::GnttabUnmapGrantRef, handle, "struct gnttab_unmap_grant_ref", "handle");
    off!(p, gt::GnttabUnmapGrantRef, status, "struct gnttab_unmap_grant_ref", "status");
    size!(p, gt::GnttabSetupTable, "struct gnttab_setup_table");
    off!(p, gt::GnttabSetupTable, nr_frames, "struct gnttab_setup_table", "nr_frames");
    off!(p, gt::GnttabSetupTable, status, "struct gnttab_setup_table", "status");
    off!(p, gt::GnttabSetupTable, frame_list, "struct gnttab_setup_table", "frame_list");
    size!(p, gt::GnttabCopy, "struct gnttab_copy");
    off!(p, gt::GnttabCopy, source, "struct gnttab_copy", "source");
    off!(p, gt::GnttabCopy, dest, "struct gnttab_copy", "dest");
    off!(p, gt::GnttabCopy, len, "struct gnttab_copy", "len");
    off!(p, gt::GnttabCopy, flags, "struct gnttab_copy", "flags");
    off!(p, gt::GnttabCopy, status, "struct gnttab_copy", "status");
    size!(p, gt::GnttabCopyPtr, "struct gnttab_copy_ptr");
    off!(p, gt::GnttabCopyPtr, domid, "struct gnttab_copy_ptr", "domid");
    off!(p, gt::GnttabCopyPtr, offset, "struct gnttab_copy_ptr", "offset");
    size!(p, gt::GnttabQuerySize, "struct gnttab_query_size");
    off!(p, gt::GnttabQuerySize, nr_frames, "struct gnttab_query_size", "nr_frames");
    off!(p, gt::GnttabQuerySize, max_nr_frames, "struct gnttab_query_size", "max_nr_frames");
    off!(p, gt::GnttabQuerySize, status, "struct gnttab_query_size", "status");
    size!(p, gt::GnttabSetVersion, "struct gnttab_set_version");
    p.run("evtchn_gnttab");
}

#[test]
fn toolstack_only_memory_ops() {
    let c = c_values_with_define(
        "memory_tools",
        "__XEN_TOOLS__",
        &["xen/xen.h", "xen/memory.h"],
        &[
            ("XENMEM_claim_pages", "XENMEM_claim_pages"),
            ("XENMEM_reserved_device_memory_map", "XENMEM_reserved_device_memory_map"),
        ],
    );
    common::assert_all_equal(
        &c,
        &[
            ("XENMEM_claim_pages", mem::XENMEM_CLAIM_PAGES),
            ("XENMEM_reserved_device_memory_map", mem::XENMEM_RESERVED_DEVICE_MEMORY_MAP),
        ],
    );
}

/// Like `common::c_values`, for the parts of the headers that only exist when `define` is set
/// (`__XEN__` for hypervisor-internal values, `__XEN_TOOLS__` for toolstack-only ones): the
/// helper's header list goes through unchanged, with the define inserted before it.
pub(crate) fn c_values_with_define(
    probe_name: &str,
    define: &str,
    headers: &[&str],
    exprs: &[(&str, &str)],
) -> std::collections::BTreeMap<String, u64> {
    use std::process::Command;
    let inc = common::xen_include_dir();
    let mut src = format!(
        "#include <stdio.h>\n#include <stdint.h>\n#define __XEN_INTERFACE_VERSION__ 0x00040d00\n#define {define} 1\n"
    );
    for h in headers {
        src.push_str(&format!("#include <{h}>\n"));
    }
    src.push_str("int main(void) {\n");
    for (name, expr) in exprs {
        src.push_str(&format!("  printf(\"%s=%llu\\n\", \"{name}\", (unsigned long long)({expr}));\n"));
    }
    src.push_str("  return 0;\n}\n");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("layout-{probe_name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (c_file, exe) = (dir.join("probe.c"), dir.join("probe"));
    std::fs::write(&c_file, &src).unwrap();
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-I")
        .arg(&inc)
        .arg("-o")
        .arg(&exe)
        .arg(&c_file)
        .output()
        .expect("running the C compiler (cc) for the layout probe");
    assert!(out.status.success(), "probe failed:\n{}\n{src}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().expect("running the layout probe");
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}
