//! Layout proof for the core ABI: compiles a C probe against Xen's public headers and checks
//! every size, offset and constant of this crate's core modules against it.

mod common;

use core::mem::{offset_of, size_of};

use hypercall_abi::{
    arch, console_io, elfnote as en, hypercall as hc, mm, multicall, sched, shared_info as sh, start_info as si,
    vm_assist as va, Errno,
};

const HEADERS: &[&str] = &[
    "xen/xen.h",
    "xen/errno.h",
    "xen/elfnote.h",
    "xen/features.h",
    "xen/event_channel.h",
    "xen/grant_table.h",
    "xen/sched.h",
    "xen/memory.h",
    "xen/vcpu.h",
    "xen/version.h",
    "xen/callback.h",
];

/// Collects `(name, Rust value, C expression)` triples.
#[derive(Default)]
struct Probe {
    items: Vec<(String, u64, String)>,
}

impl Probe {
    fn add(&mut self, name: impl Into<String>, rust: u64, c: impl Into<String>) {
        self.items.push((name.into(), rust, c.into()));
    }

    fn run(&self, probe_name: &str) {
        let exprs: Vec<(&str, &str)> = self.items.iter().map(|(n, _, c)| (n.as_str(), c.as_str())).collect();
        let c = common::c_values(probe_name, HEADERS, &exprs);
        let rust: Vec<(&str, u64)> = self.items.iter().map(|(n, r, _)| (n.as_str(), *r)).collect();
        common::assert_all_equal(&c, &rust);
        assert!(self.items.len() > 10, "probe {probe_name} checked too little");
    }
}

/// `size!(p, RustType, "c_type")`
macro_rules! size {
    ($p:expr, $t:ty, $c:literal) => {
        $p.add(concat!("sizeof ", $c), size_of::<$t>() as u64, concat!("sizeof(", $c, ")"))
    };
}

/// `off!(p, RustType, rust_field, "c_type", "c.field")`
macro_rules! off {
    ($p:expr, $t:ty, $f:ident, $c:literal, $cf:literal) => {
        $p.add(concat!("offsetof ", $c, ".", $cf), offset_of!($t, $f) as u64, concat!("offsetof(", $c, ", ", $cf, ")"))
    };
}

/// `k!(p, RUST_CONST, "C_CONST")`: constants, compared as their 64-bit two's complement.
macro_rules! k {
    ($p:expr, $r:expr, $c:literal) => {
        $p.add($c, ($r) as i64 as u64, $c)
    };
}

#[path = "layout_core/services.rs"]
mod services;

use services::c_values_with_define;

#[test]
fn hypercall_numbers_match_xen_h() {
    let mut p = Probe::default();
    k!(p, hc::SET_TRAP_TABLE, "__HYPERVISOR_set_trap_table");
    k!(p, hc::MMU_UPDATE, "__HYPERVISOR_mmu_update");
    k!(p, hc::SET_GDT, "__HYPERVISOR_set_gdt");
    k!(p, hc::STACK_SWITCH, "__HYPERVISOR_stack_switch");
    k!(p, hc::SET_CALLBACKS, "__HYPERVISOR_set_callbacks");
    k!(p, hc::FPU_TASKSWITCH, "__HYPERVISOR_fpu_taskswitch");
    k!(p, hc::SCHED_OP_COMPAT, "__HYPERVISOR_sched_op_compat");
    k!(p, hc::PLATFORM_OP, "__HYPERVISOR_platform_op");
    k!(p, hc::SET_DEBUGREG, "__HYPERVISOR_set_debugreg");
    k!(p, hc::GET_DEBUGREG, "__HYPERVISOR_get_debugreg");
    k!(p, hc::UPDATE_DESCRIPTOR, "__HYPERVISOR_update_descriptor");
    k!(p, hc::MEMORY_OP, "__HYPERVISOR_memory_op");
    k!(p, hc::MULTICALL, "__HYPERVISOR_multicall");
    k!(p, hc::UPDATE_VA_MAPPING, "__HYPERVISOR_update_va_mapping");
    k!(p, hc::SET_TIMER_OP, "__HYPERVISOR_set_timer_op");
    k!(p, hc::EVENT_CHANNEL_OP_COMPAT, "__HYPERVISOR_event_channel_op_compat");
    k!(p, hc::XEN_VERSION, "__HYPERVISOR_xen_version");
    k!(p, hc::CONSOLE_IO, "__HYPERVISOR_console_io");
    k!(p, hc::PHYSDEV_OP_COMPAT, "__HYPERVISOR_physdev_op_compat");
    k!(p, hc::GRANT_TABLE_OP, "__HYPERVISOR_grant_table_op");
    k!(p, hc::VM_ASSIST, "__HYPERVISOR_vm_assist");
    k!(p, hc::UPDATE_VA_MAPPING_OTHERDOMAIN, "__HYPERVISOR_update_va_mapping_otherdomain");
    k!(p, hc::IRET, "__HYPERVISOR_iret");
    k!(p, hc::VCPU_OP, "__HYPERVISOR_vcpu_op");
    k!(p, hc::SET_SEGMENT_BASE, "__HYPERVISOR_set_segment_base");
    k!(p, hc::MMUEXT_OP, "__HYPERVISOR_mmuext_op");
    k!(p, hc::XSM_OP, "__HYPERVISOR_xsm_op");
    k!(p, hc::NMI_OP, "__HYPERVISOR_nmi_op");
    k!(p, hc::SCHED_OP, "__HYPERVISOR_sched_op");
    k!(p, hc::CALLBACK_OP, "__HYPERVISOR_callback_op");
    k!(p, hc::XENOPROF_OP, "__HYPERVISOR_xenoprof_op");
    k!(p, hc::EVENT_CHANNEL_OP, "__HYPERVISOR_event_channel_op");
    k!(p, hc::PHYSDEV_OP, "__HYPERVISOR_physdev_op");
    k!(p, hc::HVM_OP, "__HYPERVISOR_hvm_op");
    k!(p, hc::SYSCTL, "__HYPERVISOR_sysctl");
    k!(p, hc::DOMCTL, "__HYPERVISOR_domctl");
    k!(p, hc::KEXEC_OP, "__HYPERVISOR_kexec_op");
    k!(p, hc::TMEM_OP, "__HYPERVISOR_tmem_op");
    k!(p, hc::ARGO_OP, "__HYPERVISOR_argo_op");
    k!(p, hc::XENPMU_OP, "__HYPERVISOR_xenpmu_op");
    k!(p, hc::DM_OP, "__HYPERVISOR_dm_op");
    k!(p, hc::HYPFS_OP, "__HYPERVISOR_hypfs_op");
    k!(p, hc::ARCH_0, "__HYPERVISOR_arch_0");
    k!(p, hc::ARCH_1, "__HYPERVISOR_arch_1");
    k!(p, hc::ARCH_7, "__HYPERVISOR_arch_7");
    for (i, name) in (0..hc::NR_HYPERCALLS).filter_map(|n| hc::name(n).map(|s| (n, s))) {
        p.add(format!("name {name}"), i, format!("__HYPERVISOR_{name}"));
    }
    p.run("hypercalls");
}

#[test]
fn errno_values_match_errno_h() {
    let mut p = Probe::default();
    for (name, value) in hypercall_abi::errno::ALL {
        // EINTR and ERESTART are Xen-internal (`#ifdef __XEN__`): checked below.
        if !matches!(*name, "EINTR" | "ERESTART") {
            p.add(format!("XEN_{name}"), *value as u64, format!("XEN_{name}"));
        }
    }
    assert_eq!(Errno::ENOSYS.to_return(), -38);
    p.run("errno");

    let internal = c_values_with_define(
        "errno_internal",
        "__XEN__",
        &["xen/errno.h"],
        &[("XEN_EINTR", "XEN_EINTR"), ("XEN_ERESTART", "XEN_ERESTART")],
    );
    common::assert_all_equal(
        &internal,
        &[("XEN_EINTR", Errno::EINTR.0 as u64), ("XEN_ERESTART", Errno::ERESTART.0 as u64)],
    );
}

#[test]
fn start_info_and_shared_info_layouts() {
    let mut p = Probe::default();
    size!(p, si::StartInfo, "start_info_t");
    off!(p, si::StartInfo, magic, "start_info_t", "magic");
    off!(p, si::StartInfo, nr_pages, "start_info_t", "nr_pages");
    off!(p, si::StartInfo, shared_info, "start_info_t", "shared_info");
    off!(p, si::StartInfo, flags, "start_info_t", "flags");
    off!(p, si::StartInfo, store_mfn, "start_info_t", "store_mfn");
    off!(p, si::StartInfo, store_evtchn, "start_info_t", "store_evtchn");
    off!(p, si::StartInfo, console, "start_info_t", "console");
    off!(p, si::StartInfo, pt_base, "start_info_t", "pt_base");
    off!(p, si::StartInfo, nr_pt_frames, "start_info_t", "nr_pt_frames");
    off!(p, si::StartInfo, mfn_list, "start_info_t", "mfn_list");
    off!(p, si::StartInfo, mod_start, "start_info_t", "mod_start");
    off!(p, si::StartInfo, mod_len, "start_info_t", "mod_len");
    off!(p, si::StartInfo, cmd_line, "start_info_t", "cmd_line");
    off!(p, si::StartInfo, first_p2m_pfn, "start_info_t", "first_p2m_pfn");
    off!(p, si::StartInfo, nr_p2m_frames, "start_info_t", "nr_p2m_frames");
    let console = offset_of!(si::StartInfo, console) as u64;
    p.add(
        "console.domU.mfn",
        console + offset_of!(si::StartInfoConsoleDomU, mfn) as u64,
        "offsetof(start_info_t, console.domU.mfn)",
    );
    p.add(
        "console.domU.evtchn",
        console + offset_of!(si::StartInfoConsoleDomU, evtchn) as u64,
        "offsetof(start_info_t, console.domU.evtchn)",
    );
    p.add(
        "console.dom0.info_off",
        console + offset_of!(si::StartInfoConsoleDom0, info_off) as u64,
        "offsetof(start_info_t, console.dom0.info_off)",
    );
    p.add(
        "console.dom0.info_size",
        console + offset_of!(si::StartInfoConsoleDom0, info_size) as u64,
        "offsetof(start_info_t, console.dom0.info_size)",
    );
    k!(p, si::MAX_GUEST_CMDLINE, "MAX_GUEST_CMDLINE");
    k!(p, si::SIF_PRIVILEGED, "SIF_PRIVILEGED");
    k!(p, si::SIF_INITDOMAIN, "SIF_INITDOMAIN");
    k!(p, si::SIF_MULTIBOOT_MOD, "SIF_MULTIBOOT_MOD");
    k!(p, si::SIF_MOD_START_PFN, "SIF_MOD_START_PFN");
    k!(p, si::SIF_VIRT_P2M_4TOOLS, "SIF_VIRT_P2M_4TOOLS");
    k!(p, si::SIF_PM_MASK, "SIF_PM_MASK");

    size!(p, sh::VcpuTimeInfo, "struct vcpu_time_info");
    off!(p, sh::VcpuTimeInfo, version, "struct vcpu_time_info", "version");
    off!(p, sh::VcpuTimeInfo, tsc_timestamp, "struct vcpu_time_info", "tsc_timestamp");
    off!(p, sh::VcpuTimeInfo, system_time, "struct vcpu_time_info", "system_time");
    off!(p, sh::VcpuTimeInfo, tsc_to_system_mul, "struct vcpu_time_info", "tsc_to_system_mul");
    off!(p, sh::VcpuTimeInfo, tsc_shift, "struct vcpu_time_info", "tsc_shift");
    off!(p, sh::VcpuTimeInfo, flags, "struct vcpu_time_info", "flags");
    size!(p, sh::ArchVcpuInfo, "struct arch_vcpu_info");
    off!(p, sh::ArchVcpuInfo, cr2, "struct arch_vcpu_info", "cr2");
    size!(p, sh::VcpuInfo, "struct vcpu_info");
    off!(p, sh::VcpuInfo, evtchn_upcall_pending, "struct vcpu_info", "evtchn_upcall_pending");
    off!(p, sh::VcpuInfo, evtchn_upcall_mask, "struct vcpu_info", "evtchn_upcall_mask");
    off!(p, sh::VcpuInfo, evtchn_pending_sel, "struct vcpu_info", "evtchn_pending_sel");
    off!(p, sh::VcpuInfo, arch, "struct vcpu_info", "arch");
    off!(p, sh::VcpuInfo, time, "struct vcpu_info", "time");
    size!(p, sh::ArchSharedInfo, "struct arch_shared_info");
    off!(p, sh::ArchSharedInfo, max_pfn, "struct arch_shared_info", "max_pfn");
    off!(p, sh::ArchSharedInfo, pfn_to_mfn_frame_list_list, "struct arch_shared_info", "pfn_to_mfn_frame_list_list");
    off!(p, sh::ArchSharedInfo, nmi_reason, "struct arch_shared_info", "nmi_reason");
    off!(p, sh::ArchSharedInfo, p2m_cr3, "struct arch_shared_info", "p2m_cr3");
    off!(p, sh::ArchSharedInfo, p2m_vaddr, "struct arch_shared_info", "p2m_vaddr");
    off!(p, sh::ArchSharedInfo, p2m_generation, "struct arch_shared_info", "p2m_generation");
    size!(p, sh::SharedInfo, "struct shared_info");
    off!(p, sh::SharedInfo, vcpu_info, "struct shared_info", "vcpu_info");
    off!(p, sh::SharedInfo, evtchn_pending, "struct shared_info", "evtchn_pending");
    off!(p, sh::SharedInfo, evtchn_mask, "struct shared_info", "evtchn_mask");
    off!(p, sh::SharedInfo, wc_version, "struct shared_info", "wc_version");
    off!(p, sh::SharedInfo, wc_sec, "struct shared_info", "wc_sec");
    off!(p, sh::SharedInfo, wc_nsec, "struct shared_info", "wc_nsec");
    off!(p, sh::SharedInfo, wc_sec_hi, "struct shared_info", "wc_sec_hi");
    off!(p, sh::SharedInfo, arch, "struct shared_info", "arch");
    k!(p, sh::XEN_LEGACY_MAX_VCPUS, "XEN_LEGACY_MAX_VCPUS");
    k!(p, sh::EVTCHN_WORDS, "sizeof(((struct shared_info *)0)->evtchn_pending) / 8");
    p.run("start_shared_info");
}

#[test]
fn arch_selectors_and_traps() {
    let mut p = Probe::default();
    k!(p, arch::HYPERVISOR_VIRT_START, "HYPERVISOR_VIRT_START");
    k!(p, arch::HYPERVISOR_VIRT_END, "HYPERVISOR_VIRT_END");
    k!(p, arch::MACH2PHYS_VIRT_START, "MACH2PHYS_VIRT_START");
    k!(p, arch::MACH2PHYS_VIRT_END, "MACH2PHYS_VIRT_END");
    k!(p, arch::MACH2PHYS_NR_ENTRIES, "MACH2PHYS_NR_ENTRIES");
    k!(p, arch::FIRST_RESERVED_GDT_PAGE, "FIRST_RESERVED_GDT_PAGE");
    k!(p, arch::FIRST_RESERVED_GDT_BYTE, "FIRST_RESERVED_GDT_BYTE");
    k!(p, arch::FIRST_RESERVED_GDT_ENTRY, "FIRST_RESERVED_GDT_ENTRY");
    k!(p, arch::FLAT_RING3_CS32, "FLAT_RING3_CS32");
    k!(p, arch::FLAT_RING3_CS64, "FLAT_RING3_CS64");
    k!(p, arch::FLAT_RING3_DS32, "FLAT_RING3_DS32");
    k!(p, arch::FLAT_RING3_DS64, "FLAT_RING3_DS64");
    k!(p, arch::FLAT_RING3_SS32, "FLAT_RING3_SS32");
    k!(p, arch::FLAT_RING3_SS64, "FLAT_RING3_SS64");
    k!(p, arch::FLAT_KERNEL_CS, "FLAT_KERNEL_CS");
    k!(p, arch::FLAT_KERNEL_CS32, "FLAT_KERNEL_CS32");
    k!(p, arch::FLAT_KERNEL_DS, "FLAT_KERNEL_DS");
    k!(p, arch::FLAT_KERNEL_DS32, "FLAT_KERNEL_DS32");
    k!(p, arch::FLAT_KERNEL_SS, "FLAT_KERNEL_SS");
    k!(p, arch::FLAT_KERNEL_SS32, "FLAT_KERNEL_SS32");
    k!(p, arch::FLAT_USER_CS, "FLAT_USER_CS");
    k!(p, arch::FLAT_USER_CS32, "FLAT_USER_CS32");
    k!(p, arch::FLAT_USER_DS, "FLAT_USER_DS");
    k!(p, arch::FLAT_USER_DS32, "FLAT_USER_DS32");
    k!(p, arch::FLAT_USER_SS, "FLAT_USER_SS");
    k!(p, arch::FLAT_USER_SS32, "FLAT_USER_SS32");
    k!(p, arch::SEGBASE_FS, "SEGBASE_FS");
    k!(p, arch::SEGBASE_GS_USER, "SEGBASE_GS_USER");
    k!(p, arch::SEGBASE_GS_KERNEL, "SEGBASE_GS_KERNEL");
    k!(p, arch::SEGBASE_GS_USER_SEL, "SEGBASE_GS_USER_SEL");
    k!(p, arch::VGCF_IN_SYSCALL, "VGCF_in_syscall");
    size!(p, arch::TrapInfo, "struct trap_info");
    off!(p, arch::TrapInfo, vector, "struct trap_info", "vector");
    off!(p, arch::TrapInfo, flags, "struct trap_info", "flags");
    off!(p, arch::TrapInfo, cs, "struct trap_info", "cs");
    off!(p, arch::TrapInfo, address, "struct trap_info", "address");
    size!(p, arch::IretContext, "struct iret_context");
    off!(p, arch::IretContext, rax, "struct iret_context", "rax");
    off!(p, arch::IretContext, r11, "struct iret_context", "r11");
    off!(p, arch::IretContext, rcx, "struct iret_context", "rcx");
    off!(p, arch::IretContext, flags, "struct iret_context", "flags");
    off!(p, arch::IretContext, rip, "struct iret_context", "rip");
    off!(p, arch::IretContext, cs, "struct iret_context", "cs");
    off!(p, arch::IretContext, rflags, "struct iret_context", "rflags");
    off!(p, arch::IretContext, rsp, "struct iret_context", "rsp");
    off!(p, arch::IretContext, ss, "struct iret_context", "ss");
    // The TI_* helpers: DPL in bits 0-1, "mask events" in bit 2.
    p.add("TI_SET_DPL(3)", arch::TI_DPL_MASK as u64, "({ struct trap_info t = {0}; TI_SET_DPL(&t, 3); t.flags; })");
    p.add("TI_SET_IF(1)", arch::TI_MASK_EVENTS as u64, "({ struct trap_info t = {0}; TI_SET_IF(&t, 1); t.flags; })");
    p.run("arch");
}

#[test]
fn elf_notes_and_features() {
    let mut p = Probe::default();
    k!(p, en::XEN_ELFNOTE_INFO, "XEN_ELFNOTE_INFO");
    k!(p, en::XEN_ELFNOTE_ENTRY, "XEN_ELFNOTE_ENTRY");
    k!(p, en::XEN_ELFNOTE_HYPERCALL_PAGE, "XEN_ELFNOTE_HYPERCALL_PAGE");
    k!(p, en::XEN_ELFNOTE_VIRT_BASE, "XEN_ELFNOTE_VIRT_BASE");
    k!(p, en::XEN_ELFNOTE_PADDR_OFFSET, "XEN_ELFNOTE_PADDR_OFFSET");
    k!(p, en::XEN_ELFNOTE_XEN_VERSION, "XEN_ELFNOTE_XEN_VERSION");
    k!(p, en::XEN_ELFNOTE_GUEST_OS, "XEN_ELFNOTE_GUEST_OS");
    k!(p, en::XEN_ELFNOTE_GUEST_VERSION, "XEN_ELFNOTE_GUEST_VERSION");
    k!(p, en::XEN_ELFNOTE_LOADER, "XEN_ELFNOTE_LOADER");
    k!(p, en::XEN_ELFNOTE_PAE_MODE, "XEN_ELFNOTE_PAE_MODE");
    k!(p, en::XEN_ELFNOTE_FEATURES, "XEN_ELFNOTE_FEATURES");
    k!(p, en::XEN_ELFNOTE_BSD_SYMTAB, "XEN_ELFNOTE_BSD_SYMTAB");
    k!(p, en::XEN_ELFNOTE_HV_START_LOW, "XEN_ELFNOTE_HV_START_LOW");
    k!(p, en::XEN_ELFNOTE_L1_MFN_VALID, "XEN_ELFNOTE_L1_MFN_VALID");
    k!(p, en::XEN_ELFNOTE_SUSPEND_CANCEL, "XEN_ELFNOTE_SUSPEND_CANCEL");
    k!(p, en::XEN_ELFNOTE_INIT_P2M, "XEN_ELFNOTE_INIT_P2M");
    k!(p, en::XEN_ELFNOTE_MOD_START_PFN, "XEN_ELFNOTE_MOD_START_PFN");
    k!(p, en::XEN_ELFNOTE_SUPPORTED_FEATURES, "XEN_ELFNOTE_SUPPORTED_FEATURES");
    k!(p, en::XEN_ELFNOTE_PHYS32_ENTRY, "XEN_ELFNOTE_PHYS32_ENTRY");
    k!(p, en::XEN_ELFNOTE_MAX, "XEN_ELFNOTE_MAX");
    k!(p, en::XEN_ELFNOTE_CRASH_INFO, "XEN_ELFNOTE_CRASH_INFO");
    k!(p, en::XEN_ELFNOTE_CRASH_REGS, "XEN_ELFNOTE_CRASH_REGS");
    k!(p, en::XEN_ELFNOTE_DUMPCORE_NONE, "XEN_ELFNOTE_DUMPCORE_NONE");
    k!(p, en::XEN_ELFNOTE_DUMPCORE_HEADER, "XEN_ELFNOTE_DUMPCORE_HEADER");
    k!(p, en::XEN_ELFNOTE_DUMPCORE_XEN_VERSION, "XEN_ELFNOTE_DUMPCORE_XEN_VERSION");
    k!(p, en::XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION, "XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION");
    use en::xenfeat as f;
    k!(p, f::WRITABLE_PAGE_TABLES, "XENFEAT_writable_page_tables");
    k!(p, f::WRITABLE_DESCRIPTOR_TABLES, "XENFEAT_writable_descriptor_tables");
    k!(p, f::AUTO_TRANSLATED_PHYSMAP, "XENFEAT_auto_translated_physmap");
    k!(p, f::SUPERVISOR_MODE_KERNEL, "XENFEAT_supervisor_mode_kernel");
    k!(p, f::PAE_PGDIR_ABOVE_4GB, "XENFEAT_pae_pgdir_above_4gb");
    k!(p, f::MMU_PT_UPDATE_PRESERVE_AD, "XENFEAT_mmu_pt_update_preserve_ad");
    k!(p, f::HIGHMEM_ASSIST, "XENFEAT_highmem_assist");
    k!(p, f::GNTTAB_MAP_AVAIL_BITS, "XENFEAT_gnttab_map_avail_bits");
    k!(p, f::HVM_CALLBACK_VECTOR, "XENFEAT_hvm_callback_vector");
    k!(p, f::HVM_SAFE_PVCLOCK, "XENFEAT_hvm_safe_pvclock");
    k!(p, f::HVM_PIRQS, "XENFEAT_hvm_pirqs");
    k!(p, f::DOM0, "XENFEAT_dom0");
    k!(p, f::MEMORY_OP_VNODE_SUPPORTED, "XENFEAT_memory_op_vnode_supported");
    k!(p, f::ARM_SMCCC_SUPPORTED, "XENFEAT_ARM_SMCCC_supported");
    k!(p, f::LINUX_RSDP_UNRESTRICTED, "XENFEAT_linux_rsdp_unrestricted");
    k!(p, f::NOT_DIRECT_MAPPED, "XENFEAT_not_direct_mapped");
    k!(p, f::DIRECT_MAPPED, "XENFEAT_direct_mapped");
    k!(p, f::NR_SUBMAPS, "XENFEAT_NR_SUBMAPS");
    p.run("elfnote");
}

#[test]
fn mmu_sched_console_vm_assist_multicall() {
    let mut p = Probe::default();
    k!(p, mm::DOMID_FIRST_RESERVED, "DOMID_FIRST_RESERVED");
    k!(p, mm::DOMID_SELF, "DOMID_SELF");
    k!(p, mm::DOMID_IO, "DOMID_IO");
    k!(p, mm::DOMID_XEN, "DOMID_XEN");
    k!(p, mm::DOMID_COW, "DOMID_COW");
    k!(p, mm::DOMID_INVALID, "DOMID_INVALID");
    k!(p, mm::DOMID_IDLE, "DOMID_IDLE");
    k!(p, mm::DOMID_MASK, "DOMID_MASK");
    k!(p, mm::MMU_NORMAL_PT_UPDATE, "MMU_NORMAL_PT_UPDATE");
    k!(p, mm::MMU_MACHPHYS_UPDATE, "MMU_MACHPHYS_UPDATE");
    k!(p, mm::MMU_PT_UPDATE_PRESERVE_AD, "MMU_PT_UPDATE_PRESERVE_AD");
    k!(p, mm::MMU_PT_UPDATE_NO_TRANSLATE, "MMU_PT_UPDATE_NO_TRANSLATE");
    size!(p, mm::MmuUpdate, "struct mmu_update");
    off!(p, mm::MmuUpdate, ptr, "struct mmu_update", "ptr");
    off!(p, mm::MmuUpdate, val, "struct mmu_update", "val");
    for (r, c) in [
        (mm::MMUEXT_PIN_L1_TABLE, "MMUEXT_PIN_L1_TABLE"),
        (mm::MMUEXT_PIN_L2_TABLE, "MMUEXT_PIN_L2_TABLE"),
        (mm::MMUEXT_PIN_L3_TABLE, "MMUEXT_PIN_L3_TABLE"),
        (mm::MMUEXT_PIN_L4_TABLE, "MMUEXT_PIN_L4_TABLE"),
        (mm::MMUEXT_UNPIN_TABLE, "MMUEXT_UNPIN_TABLE"),
        (mm::MMUEXT_NEW_BASEPTR, "MMUEXT_NEW_BASEPTR"),
        (mm::MMUEXT_TLB_FLUSH_LOCAL, "MMUEXT_TLB_FLUSH_LOCAL"),
        (mm::MMUEXT_INVLPG_LOCAL, "MMUEXT_INVLPG_LOCAL"),
        (mm::MMUEXT_TLB_FLUSH_MULTI, "MMUEXT_TLB_FLUSH_MULTI"),
        (mm::MMUEXT_INVLPG_MULTI, "MMUEXT_INVLPG_MULTI"),
        (mm::MMUEXT_TLB_FLUSH_ALL, "MMUEXT_TLB_FLUSH_ALL"),
        (mm::MMUEXT_INVLPG_ALL, "MMUEXT_INVLPG_ALL"),
        (mm::MMUEXT_FLUSH_CACHE, "MMUEXT_FLUSH_CACHE"),
        (mm::MMUEXT_SET_LDT, "MMUEXT_SET_LDT"),
        (mm::MMUEXT_NEW_USER_BASEPTR, "MMUEXT_NEW_USER_BASEPTR"),
        (mm::MMUEXT_CLEAR_PAGE, "MMUEXT_CLEAR_PAGE"),
        (mm::MMUEXT_COPY_PAGE, "MMUEXT_COPY_PAGE"),
        (mm::MMUEXT_FLUSH_CACHE_GLOBAL, "MMUEXT_FLUSH_CACHE_GLOBAL"),
        (mm::MMUEXT_MARK_SUPER, "MMUEXT_MARK_SUPER"),
        (mm::MMUEXT_UNMARK_SUPER, "MMUEXT_UNMARK_SUPER"),
    ] {
        p.add(c, r as u64, c);
    }
    size!(p, mm::MmuextOp, "struct mmuext_op");
    off!(p, mm::MmuextOp, cmd, "struct mmuext_op", "cmd");
    off!(p, mm::MmuextOp, arg1, "struct mmuext_op", "arg1");
    off!(p, mm::MmuextOp, arg2, "struct mmuext_op", "arg2");
    k!(p, mm::UVMF_NONE, "UVMF_NONE");
    k!(p, mm::UVMF_TLB_FLUSH, "UVMF_TLB_FLUSH");
    k!(p, mm::UVMF_INVLPG, "UVMF_INVLPG");
    k!(p, mm::UVMF_FLUSHTYPE_MASK, "UVMF_FLUSHTYPE_MASK");
    k!(p, mm::UVMF_MULTI, "UVMF_MULTI");
    k!(p, mm::UVMF_LOCAL, "UVMF_LOCAL");
    k!(p, mm::UVMF_ALL, "UVMF_ALL");
    k!(p, console_io::CONSOLEIO_WRITE, "CONSOLEIO_write");
    k!(p, console_io::CONSOLEIO_READ, "CONSOLEIO_read");
    k!(p, va::VMASST_CMD_ENABLE, "VMASST_CMD_enable");
    k!(p, va::VMASST_CMD_DISABLE, "VMASST_CMD_disable");
    k!(p, va::VMASST_TYPE_4GB_SEGMENTS, "VMASST_TYPE_4gb_segments");
    k!(p, va::VMASST_TYPE_4GB_SEGMENTS_NOTIFY, "VMASST_TYPE_4gb_segments_notify");
    k!(p, va::VMASST_TYPE_WRITABLE_PAGETABLES, "VMASST_TYPE_writable_pagetables");
    k!(p, va::VMASST_TYPE_PAE_EXTENDED_CR3, "VMASST_TYPE_pae_extended_cr3");
    k!(p, va::VMASST_TYPE_ARCHITECTURAL_IOPL, "VMASST_TYPE_architectural_iopl");
    k!(p, va::VMASST_TYPE_RUNSTATE_UPDATE_FLAG, "VMASST_TYPE_runstate_update_flag");
    k!(p, va::VMASST_TYPE_M2P_STRICT, "VMASST_TYPE_m2p_strict");
    size!(p, multicall::MulticallEntry, "struct multicall_entry");
    off!(p, multicall::MulticallEntry, op, "struct multicall_entry", "op");
    off!(p, multicall::MulticallEntry, result, "struct multicall_entry", "result");
    off!(p, multicall::MulticallEntry, args, "struct multicall_entry", "args");

    k!(p, sched::SCHEDOP_YIELD, "SCHEDOP_yield");
    k!(p, sched::SCHEDOP_BLOCK, "SCHEDOP_block");
    k!(p, sched::SCHEDOP_SHUTDOWN, "SCHEDOP_shutdown");
    k!(p, sched::SCHEDOP_POLL, "SCHEDOP_poll");
    k!(p, sched::SCHEDOP_REMOTE_SHUTDOWN, "SCHEDOP_remote_shutdown");
    k!(p, sched::SCHEDOP_SHUTDOWN_CODE, "SCHEDOP_shutdown_code");
    k!(p, sched::SCHEDOP_WATCHDOG, "SCHEDOP_watchdog");
    k!(p, sched::SCHEDOP_PIN_OVERRIDE, "SCHEDOP_pin_override");
    k!(p, sched::SHUTDOWN_POWEROFF, "SHUTDOWN_poweroff");
    k!(p, sched::SHUTDOWN_REBOOT, "SHUTDOWN_reboot");
    k!(p, sched::SHUTDOWN_SUSPEND, "SHUTDOWN_suspend");
    k!(p, sched::SHUTDOWN_CRASH, "SHUTDOWN_crash");
    k!(p, sched::SHUTDOWN_WATCHDOG, "SHUTDOWN_watchdog");
    k!(p, sched::SHUTDOWN_SOFT_RESET, "SHUTDOWN_soft_reset");
    k!(p, sched::SHUTDOWN_MAX, "SHUTDOWN_MAX");
    size!(p, sched::SchedShutdown, "struct sched_shutdown");
    size!(p, sched::SchedPoll, "struct sched_poll");
    off!(p, sched::SchedPoll, ports, "struct sched_poll", "ports");
    off!(p, sched::SchedPoll, nr_ports, "struct sched_poll", "nr_ports");
    off!(p, sched::SchedPoll, timeout, "struct sched_poll", "timeout");
    size!(p, sched::SchedRemoteShutdown, "struct sched_remote_shutdown");
    off!(p, sched::SchedRemoteShutdown, domain_id, "struct sched_remote_shutdown", "domain_id");
    off!(p, sched::SchedRemoteShutdown, reason, "struct sched_remote_shutdown", "reason");
    size!(p, sched::SchedWatchdog, "struct sched_watchdog");
    off!(p, sched::SchedWatchdog, timeout, "struct sched_watchdog", "timeout");
    size!(p, sched::SchedPinOverride, "struct sched_pin_override");
    p.run("mmu_sched");
}

#[test]
fn hypercall_page_stub_bytes_are_xens() {
    // Independent of the headers: the documented PV64 stub encoding (xen-pv-abi.md §2.2),
    // decoded by hand: push %rcx (51); push %r11 (41 53); mov $n,%eax (b8 imm32);
    // syscall (0f 05); pop %r11 (41 5b); pop %rcx (59); ret (c3).
    let stub = hc::hypercall_stub(0x1d);
    assert_eq!(stub, [0x51, 0x41, 0x53, 0xb8, 0x1d, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
    assert_eq!(hc::IRET_STUB[4..9], [0xb8, 23, 0, 0, 0]);
}
