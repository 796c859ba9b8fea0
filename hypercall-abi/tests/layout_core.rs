//! Layout proof for the core ABI: compiles a C probe against Xen's public headers and checks
//! every size, offset and constant of this crate's core modules against it.

mod common;

use core::mem::{offset_of, size_of};

use hypercall_abi::{
    arch, callback as cb, console_io, elfnote as en, event_channel as ev, grant_table as gt,
    hypercall as hc, memory as mem, mm, multicall, sched, shared_info as sh, start_info as si,
    vcpu, version as ver, vm_assist as va, Errno,
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
        let exprs: Vec<(&str, &str)> = self
            .items
            .iter()
            .map(|(n, _, c)| (n.as_str(), c.as_str()))
            .collect();
        let c = common::c_values(probe_name, HEADERS, &exprs);
        let rust: Vec<(&str, u64)> = self
            .items
            .iter()
            .map(|(n, r, _)| (n.as_str(), *r))
            .collect();
        common::assert_all_equal(&c, &rust);
        assert!(
            self.items.len() > 10,
            "probe {probe_name} checked too little"
        );
    }
}

/// `size!(p, RustType, "c_type")`
macro_rules! size {
    ($p:expr, $t:ty, $c:literal) => {
        $p.add(
            concat!("sizeof ", $c),
            size_of::<$t>() as u64,
            concat!("sizeof(", $c, ")"),
        )
    };
}

/// `off!(p, RustType, rust_field, "c_type", "c.field")`
macro_rules! off {
    ($p:expr, $t:ty, $f:ident, $c:literal, $cf:literal) => {
        $p.add(
            concat!("offsetof ", $c, ".", $cf),
            offset_of!($t, $f) as u64,
            concat!("offsetof(", $c, ", ", $cf, ")"),
        )
    };
}

/// `k!(p, RUST_CONST, "C_CONST")`: constants, compared as their 64-bit two's complement.
macro_rules! k {
    ($p:expr, $r:expr, $c:literal) => {
        $p.add($c, ($r) as i64 as u64, $c)
    };
}

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
    k!(
        p,
        hc::EVENT_CHANNEL_OP_COMPAT,
        "__HYPERVISOR_event_channel_op_compat"
    );
    k!(p, hc::XEN_VERSION, "__HYPERVISOR_xen_version");
    k!(p, hc::CONSOLE_IO, "__HYPERVISOR_console_io");
    k!(p, hc::PHYSDEV_OP_COMPAT, "__HYPERVISOR_physdev_op_compat");
    k!(p, hc::GRANT_TABLE_OP, "__HYPERVISOR_grant_table_op");
    k!(p, hc::VM_ASSIST, "__HYPERVISOR_vm_assist");
    k!(
        p,
        hc::UPDATE_VA_MAPPING_OTHERDOMAIN,
        "__HYPERVISOR_update_va_mapping_otherdomain"
    );
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
        &[
            ("XEN_EINTR", Errno::EINTR.0 as u64),
            ("XEN_ERESTART", Errno::ERESTART.0 as u64),
        ],
    );
}

#[test]
fn toolstack_only_memory_ops() {
    let c = c_values_with_define(
        "memory_tools",
        "__XEN_TOOLS__",
        &["xen/xen.h", "xen/memory.h"],
        &[
            ("XENMEM_claim_pages", "XENMEM_claim_pages"),
            (
                "XENMEM_reserved_device_memory_map",
                "XENMEM_reserved_device_memory_map",
            ),
        ],
    );
    common::assert_all_equal(
        &c,
        &[
            ("XENMEM_claim_pages", mem::XENMEM_CLAIM_PAGES),
            (
                "XENMEM_reserved_device_memory_map",
                mem::XENMEM_RESERVED_DEVICE_MEMORY_MAP,
            ),
        ],
    );
}

/// Like `common::c_values`, for the parts of the headers that only exist when `define` is set
/// (`__XEN__` for hypervisor-internal values, `__XEN_TOOLS__` for toolstack-only ones): the
/// helper's header list goes through unchanged, with the define inserted before it.
fn c_values_with_define(
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
        src.push_str(&format!(
            "  printf(\"%s=%llu\\n\", \"{name}\", (unsigned long long)({expr}));\n"
        ));
    }
    src.push_str("  return 0;\n}\n");
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("layout-{probe_name}"));
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
    assert!(
        out.status.success(),
        "probe failed:\n{}\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe)
        .output()
        .expect("running the layout probe");
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
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
    off!(
        p,
        si::StartInfo,
        store_evtchn,
        "start_info_t",
        "store_evtchn"
    );
    off!(p, si::StartInfo, console, "start_info_t", "console");
    off!(p, si::StartInfo, pt_base, "start_info_t", "pt_base");
    off!(
        p,
        si::StartInfo,
        nr_pt_frames,
        "start_info_t",
        "nr_pt_frames"
    );
    off!(p, si::StartInfo, mfn_list, "start_info_t", "mfn_list");
    off!(p, si::StartInfo, mod_start, "start_info_t", "mod_start");
    off!(p, si::StartInfo, mod_len, "start_info_t", "mod_len");
    off!(p, si::StartInfo, cmd_line, "start_info_t", "cmd_line");
    off!(
        p,
        si::StartInfo,
        first_p2m_pfn,
        "start_info_t",
        "first_p2m_pfn"
    );
    off!(
        p,
        si::StartInfo,
        nr_p2m_frames,
        "start_info_t",
        "nr_p2m_frames"
    );
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
    off!(
        p,
        sh::VcpuTimeInfo,
        version,
        "struct vcpu_time_info",
        "version"
    );
    off!(
        p,
        sh::VcpuTimeInfo,
        tsc_timestamp,
        "struct vcpu_time_info",
        "tsc_timestamp"
    );
    off!(
        p,
        sh::VcpuTimeInfo,
        system_time,
        "struct vcpu_time_info",
        "system_time"
    );
    off!(
        p,
        sh::VcpuTimeInfo,
        tsc_to_system_mul,
        "struct vcpu_time_info",
        "tsc_to_system_mul"
    );
    off!(
        p,
        sh::VcpuTimeInfo,
        tsc_shift,
        "struct vcpu_time_info",
        "tsc_shift"
    );
    off!(p, sh::VcpuTimeInfo, flags, "struct vcpu_time_info", "flags");
    size!(p, sh::ArchVcpuInfo, "struct arch_vcpu_info");
    off!(p, sh::ArchVcpuInfo, cr2, "struct arch_vcpu_info", "cr2");
    size!(p, sh::VcpuInfo, "struct vcpu_info");
    off!(
        p,
        sh::VcpuInfo,
        evtchn_upcall_pending,
        "struct vcpu_info",
        "evtchn_upcall_pending"
    );
    off!(
        p,
        sh::VcpuInfo,
        evtchn_upcall_mask,
        "struct vcpu_info",
        "evtchn_upcall_mask"
    );
    off!(
        p,
        sh::VcpuInfo,
        evtchn_pending_sel,
        "struct vcpu_info",
        "evtchn_pending_sel"
    );
    off!(p, sh::VcpuInfo, arch, "struct vcpu_info", "arch");
    off!(p, sh::VcpuInfo, time, "struct vcpu_info", "time");
    size!(p, sh::ArchSharedInfo, "struct arch_shared_info");
    off!(
        p,
        sh::ArchSharedInfo,
        max_pfn,
        "struct arch_shared_info",
        "max_pfn"
    );
    off!(
        p,
        sh::ArchSharedInfo,
        pfn_to_mfn_frame_list_list,
        "struct arch_shared_info",
        "pfn_to_mfn_frame_list_list"
    );
    off!(
        p,
        sh::ArchSharedInfo,
        nmi_reason,
        "struct arch_shared_info",
        "nmi_reason"
    );
    off!(
        p,
        sh::ArchSharedInfo,
        p2m_cr3,
        "struct arch_shared_info",
        "p2m_cr3"
    );
    off!(
        p,
        sh::ArchSharedInfo,
        p2m_vaddr,
        "struct arch_shared_info",
        "p2m_vaddr"
    );
    off!(
        p,
        sh::ArchSharedInfo,
        p2m_generation,
        "struct arch_shared_info",
        "p2m_generation"
    );
    size!(p, sh::SharedInfo, "struct shared_info");
    off!(
        p,
        sh::SharedInfo,
        vcpu_info,
        "struct shared_info",
        "vcpu_info"
    );
    off!(
        p,
        sh::SharedInfo,
        evtchn_pending,
        "struct shared_info",
        "evtchn_pending"
    );
    off!(
        p,
        sh::SharedInfo,
        evtchn_mask,
        "struct shared_info",
        "evtchn_mask"
    );
    off!(
        p,
        sh::SharedInfo,
        wc_version,
        "struct shared_info",
        "wc_version"
    );
    off!(p, sh::SharedInfo, wc_sec, "struct shared_info", "wc_sec");
    off!(p, sh::SharedInfo, wc_nsec, "struct shared_info", "wc_nsec");
    off!(
        p,
        sh::SharedInfo,
        wc_sec_hi,
        "struct shared_info",
        "wc_sec_hi"
    );
    off!(p, sh::SharedInfo, arch, "struct shared_info", "arch");
    k!(p, sh::XEN_LEGACY_MAX_VCPUS, "XEN_LEGACY_MAX_VCPUS");
    k!(
        p,
        sh::EVTCHN_WORDS,
        "sizeof(((struct shared_info *)0)->evtchn_pending) / 8"
    );
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
    k!(
        p,
        arch::FIRST_RESERVED_GDT_ENTRY,
        "FIRST_RESERVED_GDT_ENTRY"
    );
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
    off!(
        p,
        arch::IretContext,
        rflags,
        "struct iret_context",
        "rflags"
    );
    off!(p, arch::IretContext, rsp, "struct iret_context", "rsp");
    off!(p, arch::IretContext, ss, "struct iret_context", "ss");
    // The TI_* helpers: DPL in bits 0-1, "mask events" in bit 2.
    p.add(
        "TI_SET_DPL(3)",
        arch::TI_DPL_MASK as u64,
        "({ struct trap_info t = {0}; TI_SET_DPL(&t, 3); t.flags; })",
    );
    p.add(
        "TI_SET_IF(1)",
        arch::TI_MASK_EVENTS as u64,
        "({ struct trap_info t = {0}; TI_SET_IF(&t, 1); t.flags; })",
    );
    p.run("arch");
}

#[test]
fn elf_notes_and_features() {
    let mut p = Probe::default();
    k!(p, en::XEN_ELFNOTE_INFO, "XEN_ELFNOTE_INFO");
    k!(p, en::XEN_ELFNOTE_ENTRY, "XEN_ELFNOTE_ENTRY");
    k!(
        p,
        en::XEN_ELFNOTE_HYPERCALL_PAGE,
        "XEN_ELFNOTE_HYPERCALL_PAGE"
    );
    k!(p, en::XEN_ELFNOTE_VIRT_BASE, "XEN_ELFNOTE_VIRT_BASE");
    k!(p, en::XEN_ELFNOTE_PADDR_OFFSET, "XEN_ELFNOTE_PADDR_OFFSET");
    k!(p, en::XEN_ELFNOTE_XEN_VERSION, "XEN_ELFNOTE_XEN_VERSION");
    k!(p, en::XEN_ELFNOTE_GUEST_OS, "XEN_ELFNOTE_GUEST_OS");
    k!(
        p,
        en::XEN_ELFNOTE_GUEST_VERSION,
        "XEN_ELFNOTE_GUEST_VERSION"
    );
    k!(p, en::XEN_ELFNOTE_LOADER, "XEN_ELFNOTE_LOADER");
    k!(p, en::XEN_ELFNOTE_PAE_MODE, "XEN_ELFNOTE_PAE_MODE");
    k!(p, en::XEN_ELFNOTE_FEATURES, "XEN_ELFNOTE_FEATURES");
    k!(p, en::XEN_ELFNOTE_BSD_SYMTAB, "XEN_ELFNOTE_BSD_SYMTAB");
    k!(p, en::XEN_ELFNOTE_HV_START_LOW, "XEN_ELFNOTE_HV_START_LOW");
    k!(p, en::XEN_ELFNOTE_L1_MFN_VALID, "XEN_ELFNOTE_L1_MFN_VALID");
    k!(
        p,
        en::XEN_ELFNOTE_SUSPEND_CANCEL,
        "XEN_ELFNOTE_SUSPEND_CANCEL"
    );
    k!(p, en::XEN_ELFNOTE_INIT_P2M, "XEN_ELFNOTE_INIT_P2M");
    k!(
        p,
        en::XEN_ELFNOTE_MOD_START_PFN,
        "XEN_ELFNOTE_MOD_START_PFN"
    );
    k!(
        p,
        en::XEN_ELFNOTE_SUPPORTED_FEATURES,
        "XEN_ELFNOTE_SUPPORTED_FEATURES"
    );
    k!(p, en::XEN_ELFNOTE_PHYS32_ENTRY, "XEN_ELFNOTE_PHYS32_ENTRY");
    k!(p, en::XEN_ELFNOTE_MAX, "XEN_ELFNOTE_MAX");
    k!(p, en::XEN_ELFNOTE_CRASH_INFO, "XEN_ELFNOTE_CRASH_INFO");
    k!(p, en::XEN_ELFNOTE_CRASH_REGS, "XEN_ELFNOTE_CRASH_REGS");
    k!(
        p,
        en::XEN_ELFNOTE_DUMPCORE_NONE,
        "XEN_ELFNOTE_DUMPCORE_NONE"
    );
    k!(
        p,
        en::XEN_ELFNOTE_DUMPCORE_HEADER,
        "XEN_ELFNOTE_DUMPCORE_HEADER"
    );
    k!(
        p,
        en::XEN_ELFNOTE_DUMPCORE_XEN_VERSION,
        "XEN_ELFNOTE_DUMPCORE_XEN_VERSION"
    );
    k!(
        p,
        en::XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION,
        "XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION"
    );
    use en::xenfeat as f;
    k!(p, f::WRITABLE_PAGE_TABLES, "XENFEAT_writable_page_tables");
    k!(
        p,
        f::WRITABLE_DESCRIPTOR_TABLES,
        "XENFEAT_writable_descriptor_tables"
    );
    k!(
        p,
        f::AUTO_TRANSLATED_PHYSMAP,
        "XENFEAT_auto_translated_physmap"
    );
    k!(
        p,
        f::SUPERVISOR_MODE_KERNEL,
        "XENFEAT_supervisor_mode_kernel"
    );
    k!(p, f::PAE_PGDIR_ABOVE_4GB, "XENFEAT_pae_pgdir_above_4gb");
    k!(
        p,
        f::MMU_PT_UPDATE_PRESERVE_AD,
        "XENFEAT_mmu_pt_update_preserve_ad"
    );
    k!(p, f::HIGHMEM_ASSIST, "XENFEAT_highmem_assist");
    k!(p, f::GNTTAB_MAP_AVAIL_BITS, "XENFEAT_gnttab_map_avail_bits");
    k!(p, f::HVM_CALLBACK_VECTOR, "XENFEAT_hvm_callback_vector");
    k!(p, f::HVM_SAFE_PVCLOCK, "XENFEAT_hvm_safe_pvclock");
    k!(p, f::HVM_PIRQS, "XENFEAT_hvm_pirqs");
    k!(p, f::DOM0, "XENFEAT_dom0");
    k!(
        p,
        f::MEMORY_OP_VNODE_SUPPORTED,
        "XENFEAT_memory_op_vnode_supported"
    );
    k!(p, f::ARM_SMCCC_SUPPORTED, "XENFEAT_ARM_SMCCC_supported");
    k!(
        p,
        f::LINUX_RSDP_UNRESTRICTED,
        "XENFEAT_linux_rsdp_unrestricted"
    );
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
    k!(
        p,
        mm::MMU_PT_UPDATE_PRESERVE_AD,
        "MMU_PT_UPDATE_PRESERVE_AD"
    );
    k!(
        p,
        mm::MMU_PT_UPDATE_NO_TRANSLATE,
        "MMU_PT_UPDATE_NO_TRANSLATE"
    );
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
    k!(
        p,
        va::VMASST_TYPE_4GB_SEGMENTS_NOTIFY,
        "VMASST_TYPE_4gb_segments_notify"
    );
    k!(
        p,
        va::VMASST_TYPE_WRITABLE_PAGETABLES,
        "VMASST_TYPE_writable_pagetables"
    );
    k!(
        p,
        va::VMASST_TYPE_PAE_EXTENDED_CR3,
        "VMASST_TYPE_pae_extended_cr3"
    );
    k!(
        p,
        va::VMASST_TYPE_ARCHITECTURAL_IOPL,
        "VMASST_TYPE_architectural_iopl"
    );
    k!(
        p,
        va::VMASST_TYPE_RUNSTATE_UPDATE_FLAG,
        "VMASST_TYPE_runstate_update_flag"
    );
    k!(p, va::VMASST_TYPE_M2P_STRICT, "VMASST_TYPE_m2p_strict");
    size!(p, multicall::MulticallEntry, "struct multicall_entry");
    off!(
        p,
        multicall::MulticallEntry,
        op,
        "struct multicall_entry",
        "op"
    );
    off!(
        p,
        multicall::MulticallEntry,
        result,
        "struct multicall_entry",
        "result"
    );
    off!(
        p,
        multicall::MulticallEntry,
        args,
        "struct multicall_entry",
        "args"
    );

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
    off!(
        p,
        sched::SchedPoll,
        nr_ports,
        "struct sched_poll",
        "nr_ports"
    );
    off!(p, sched::SchedPoll, timeout, "struct sched_poll", "timeout");
    size!(
        p,
        sched::SchedRemoteShutdown,
        "struct sched_remote_shutdown"
    );
    off!(
        p,
        sched::SchedRemoteShutdown,
        domain_id,
        "struct sched_remote_shutdown",
        "domain_id"
    );
    off!(
        p,
        sched::SchedRemoteShutdown,
        reason,
        "struct sched_remote_shutdown",
        "reason"
    );
    size!(p, sched::SchedWatchdog, "struct sched_watchdog");
    off!(
        p,
        sched::SchedWatchdog,
        timeout,
        "struct sched_watchdog",
        "timeout"
    );
    size!(p, sched::SchedPinOverride, "struct sched_pin_override");
    p.run("mmu_sched");
}

#[test]
fn version_memory_vcpu_callback() {
    let mut p = Probe::default();
    k!(p, ver::XENVER_VERSION, "XENVER_version");
    k!(p, ver::XENVER_EXTRAVERSION, "XENVER_extraversion");
    k!(p, ver::XENVER_COMPILE_INFO, "XENVER_compile_info");
    k!(p, ver::XENVER_CAPABILITIES, "XENVER_capabilities");
    k!(p, ver::XENVER_CHANGESET, "XENVER_changeset");
    k!(
        p,
        ver::XENVER_PLATFORM_PARAMETERS,
        "XENVER_platform_parameters"
    );
    k!(p, ver::XENVER_GET_FEATURES, "XENVER_get_features");
    k!(p, ver::XENVER_PAGESIZE, "XENVER_pagesize");
    k!(p, ver::XENVER_GUEST_HANDLE, "XENVER_guest_handle");
    k!(p, ver::XENVER_COMMANDLINE, "XENVER_commandline");
    k!(p, ver::XENVER_BUILD_ID, "XENVER_build_id");
    k!(p, ver::XEN_EXTRAVERSION_LEN, "XEN_EXTRAVERSION_LEN");
    k!(
        p,
        ver::XEN_CAPABILITIES_INFO_LEN,
        "XEN_CAPABILITIES_INFO_LEN"
    );
    k!(p, ver::XEN_CHANGESET_INFO_LEN, "XEN_CHANGESET_INFO_LEN");
    size!(p, ver::XenExtraversion, "xen_extraversion_t");
    size!(p, ver::XenCapabilitiesInfo, "xen_capabilities_info_t");
    size!(p, ver::XenChangesetInfo, "xen_changeset_info_t");
    size!(p, ver::XenCommandline, "xen_commandline_t");
    size!(p, ver::XenDomainHandle, "xen_domain_handle_t");
    size!(p, ver::XenCompileInfo, "struct xen_compile_info");
    off!(
        p,
        ver::XenCompileInfo,
        compile_by,
        "struct xen_compile_info",
        "compile_by"
    );
    off!(
        p,
        ver::XenCompileInfo,
        compile_domain,
        "struct xen_compile_info",
        "compile_domain"
    );
    off!(
        p,
        ver::XenCompileInfo,
        compile_date,
        "struct xen_compile_info",
        "compile_date"
    );
    size!(
        p,
        ver::XenPlatformParameters,
        "struct xen_platform_parameters"
    );
    size!(p, ver::XenFeatureInfo, "struct xen_feature_info");
    off!(
        p,
        ver::XenFeatureInfo,
        submap,
        "struct xen_feature_info",
        "submap"
    );

    k!(
        p,
        mem::XENMEM_INCREASE_RESERVATION,
        "XENMEM_increase_reservation"
    );
    k!(
        p,
        mem::XENMEM_DECREASE_RESERVATION,
        "XENMEM_decrease_reservation"
    );
    k!(p, mem::XENMEM_MAXIMUM_RAM_PAGE, "XENMEM_maximum_ram_page");
    k!(
        p,
        mem::XENMEM_CURRENT_RESERVATION,
        "XENMEM_current_reservation"
    );
    k!(
        p,
        mem::XENMEM_MAXIMUM_RESERVATION,
        "XENMEM_maximum_reservation"
    );
    k!(p, mem::XENMEM_MACHPHYS_MFN_LIST, "XENMEM_machphys_mfn_list");
    k!(p, mem::XENMEM_POPULATE_PHYSMAP, "XENMEM_populate_physmap");
    k!(p, mem::XENMEM_ADD_TO_PHYSMAP, "XENMEM_add_to_physmap");
    k!(p, mem::XENMEM_MEMORY_MAP, "XENMEM_memory_map");
    k!(
        p,
        mem::XENMEM_MACHINE_MEMORY_MAP,
        "XENMEM_machine_memory_map"
    );
    k!(p, mem::XENMEM_EXCHANGE, "XENMEM_exchange");
    k!(p, mem::XENMEM_MACHPHYS_MAPPING, "XENMEM_machphys_mapping");
    k!(p, mem::XENMEM_SET_MEMORY_MAP, "XENMEM_set_memory_map");
    k!(p, mem::XENMEM_MAXIMUM_GPFN, "XENMEM_maximum_gpfn");
    k!(
        p,
        mem::XENMEM_REMOVE_FROM_PHYSMAP,
        "XENMEM_remove_from_physmap"
    );
    k!(p, mem::XENMEM_GET_VNUMAINFO, "XENMEM_get_vnumainfo");
    k!(p, mem::XENMEM_ACQUIRE_RESOURCE, "XENMEM_acquire_resource");
    k!(
        p,
        mem::XENMEMF_POPULATE_ON_DEMAND,
        "XENMEMF_populate_on_demand"
    );
    k!(
        p,
        mem::XENMEMF_EXACT_NODE_REQUEST,
        "XENMEMF_exact_node_request"
    );
    k!(p, mem::XENMEMF_VNODE, "XENMEMF_vnode");
    size!(
        p,
        mem::XenMemoryReservation,
        "struct xen_memory_reservation"
    );
    off!(
        p,
        mem::XenMemoryReservation,
        extent_start,
        "struct xen_memory_reservation",
        "extent_start"
    );
    off!(
        p,
        mem::XenMemoryReservation,
        nr_extents,
        "struct xen_memory_reservation",
        "nr_extents"
    );
    off!(
        p,
        mem::XenMemoryReservation,
        extent_order,
        "struct xen_memory_reservation",
        "extent_order"
    );
    off!(
        p,
        mem::XenMemoryReservation,
        mem_flags,
        "struct xen_memory_reservation",
        "mem_flags"
    );
    off!(
        p,
        mem::XenMemoryReservation,
        domid,
        "struct xen_memory_reservation",
        "domid"
    );
    size!(p, mem::XenMemoryMap, "struct xen_memory_map");
    off!(
        p,
        mem::XenMemoryMap,
        nr_entries,
        "struct xen_memory_map",
        "nr_entries"
    );
    off!(
        p,
        mem::XenMemoryMap,
        buffer,
        "struct xen_memory_map",
        "buffer"
    );
    size!(p, mem::XenMachphysMapping, "struct xen_machphys_mapping");
    off!(
        p,
        mem::XenMachphysMapping,
        v_end,
        "struct xen_machphys_mapping",
        "v_end"
    );
    off!(
        p,
        mem::XenMachphysMapping,
        max_mfn,
        "struct xen_machphys_mapping",
        "max_mfn"
    );

    for (r, c) in [
        (vcpu::VCPUOP_INITIALISE, "VCPUOP_initialise"),
        (vcpu::VCPUOP_UP, "VCPUOP_up"),
        (vcpu::VCPUOP_DOWN, "VCPUOP_down"),
        (vcpu::VCPUOP_IS_UP, "VCPUOP_is_up"),
        (vcpu::VCPUOP_GET_RUNSTATE_INFO, "VCPUOP_get_runstate_info"),
        (
            vcpu::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
            "VCPUOP_register_runstate_memory_area",
        ),
        (vcpu::VCPUOP_SET_PERIODIC_TIMER, "VCPUOP_set_periodic_timer"),
        (
            vcpu::VCPUOP_STOP_PERIODIC_TIMER,
            "VCPUOP_stop_periodic_timer",
        ),
        (
            vcpu::VCPUOP_SET_SINGLESHOT_TIMER,
            "VCPUOP_set_singleshot_timer",
        ),
        (
            vcpu::VCPUOP_STOP_SINGLESHOT_TIMER,
            "VCPUOP_stop_singleshot_timer",
        ),
        (vcpu::VCPUOP_REGISTER_VCPU_INFO, "VCPUOP_register_vcpu_info"),
        (vcpu::VCPUOP_SEND_NMI, "VCPUOP_send_nmi"),
        (vcpu::VCPUOP_GET_PHYSID, "VCPUOP_get_physid"),
        (
            vcpu::VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA,
            "VCPUOP_register_vcpu_time_memory_area",
        ),
        (vcpu::VCPU_SSHOTTMR_FUTURE, "VCPU_SSHOTTMR_future"),
    ] {
        p.add(c, r as u64, c);
    }
    k!(p, vcpu::RUNSTATE_RUNNING, "RUNSTATE_running");
    k!(p, vcpu::RUNSTATE_RUNNABLE, "RUNSTATE_runnable");
    k!(p, vcpu::RUNSTATE_BLOCKED, "RUNSTATE_blocked");
    k!(p, vcpu::RUNSTATE_OFFLINE, "RUNSTATE_offline");
    size!(p, vcpu::VcpuRunstateInfo, "struct vcpu_runstate_info");
    off!(
        p,
        vcpu::VcpuRunstateInfo,
        state_entry_time,
        "struct vcpu_runstate_info",
        "state_entry_time"
    );
    off!(
        p,
        vcpu::VcpuRunstateInfo,
        time,
        "struct vcpu_runstate_info",
        "time"
    );
    size!(
        p,
        vcpu::VcpuSetPeriodicTimer,
        "struct vcpu_set_periodic_timer"
    );
    size!(
        p,
        vcpu::VcpuSetSingleshotTimer,
        "struct vcpu_set_singleshot_timer"
    );
    off!(
        p,
        vcpu::VcpuSetSingleshotTimer,
        flags,
        "struct vcpu_set_singleshot_timer",
        "flags"
    );
    size!(
        p,
        vcpu::VcpuRegisterVcpuInfo,
        "struct vcpu_register_vcpu_info"
    );
    off!(
        p,
        vcpu::VcpuRegisterVcpuInfo,
        offset,
        "struct vcpu_register_vcpu_info",
        "offset"
    );
    off!(
        p,
        vcpu::VcpuRegisterVcpuInfo,
        rsvd,
        "struct vcpu_register_vcpu_info",
        "rsvd"
    );

    k!(p, cb::CALLBACKOP_REGISTER, "CALLBACKOP_register");
    k!(p, cb::CALLBACKOP_UNREGISTER, "CALLBACKOP_unregister");
    k!(p, cb::CALLBACKTYPE_EVENT, "CALLBACKTYPE_event");
    k!(p, cb::CALLBACKTYPE_FAILSAFE, "CALLBACKTYPE_failsafe");
    k!(p, cb::CALLBACKTYPE_SYSCALL, "CALLBACKTYPE_syscall");
    k!(
        p,
        cb::CALLBACKTYPE_SYSENTER_DEPRECATED,
        "CALLBACKTYPE_sysenter_deprecated"
    );
    k!(p, cb::CALLBACKTYPE_NMI, "CALLBACKTYPE_nmi");
    k!(p, cb::CALLBACKTYPE_SYSENTER, "CALLBACKTYPE_sysenter");
    k!(p, cb::CALLBACKTYPE_SYSCALL32, "CALLBACKTYPE_syscall32");
    k!(p, cb::CALLBACKF_MASK_EVENTS, "CALLBACKF_mask_events");
    size!(p, cb::CallbackRegister, "struct callback_register");
    off!(
        p,
        cb::CallbackRegister,
        kind,
        "struct callback_register",
        "type"
    );
    off!(
        p,
        cb::CallbackRegister,
        flags,
        "struct callback_register",
        "flags"
    );
    off!(
        p,
        cb::CallbackRegister,
        address,
        "struct callback_register",
        "address"
    );
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
    off!(
        p,
        ev::EvtchnAllocUnbound,
        remote_dom,
        "struct evtchn_alloc_unbound",
        "remote_dom"
    );
    off!(
        p,
        ev::EvtchnAllocUnbound,
        port,
        "struct evtchn_alloc_unbound",
        "port"
    );
    size!(
        p,
        ev::EvtchnBindInterdomain,
        "struct evtchn_bind_interdomain"
    );
    off!(
        p,
        ev::EvtchnBindInterdomain,
        remote_port,
        "struct evtchn_bind_interdomain",
        "remote_port"
    );
    off!(
        p,
        ev::EvtchnBindInterdomain,
        local_port,
        "struct evtchn_bind_interdomain",
        "local_port"
    );
    size!(p, ev::EvtchnBindVirq, "struct evtchn_bind_virq");
    off!(
        p,
        ev::EvtchnBindVirq,
        vcpu,
        "struct evtchn_bind_virq",
        "vcpu"
    );
    off!(
        p,
        ev::EvtchnBindVirq,
        port,
        "struct evtchn_bind_virq",
        "port"
    );
    size!(p, ev::EvtchnBindPirq, "struct evtchn_bind_pirq");
    off!(
        p,
        ev::EvtchnBindPirq,
        port,
        "struct evtchn_bind_pirq",
        "port"
    );
    size!(p, ev::EvtchnBindIpi, "struct evtchn_bind_ipi");
    off!(p, ev::EvtchnBindIpi, port, "struct evtchn_bind_ipi", "port");
    size!(p, ev::EvtchnClose, "struct evtchn_close");
    size!(p, ev::EvtchnSend, "struct evtchn_send");
    size!(p, ev::EvtchnStatus, "struct evtchn_status");
    off!(p, ev::EvtchnStatus, port, "struct evtchn_status", "port");
    off!(
        p,
        ev::EvtchnStatus,
        status,
        "struct evtchn_status",
        "status"
    );
    off!(p, ev::EvtchnStatus, vcpu, "struct evtchn_status", "vcpu");
    off!(p, ev::EvtchnStatus, u, "struct evtchn_status", "u");
    let u = offset_of!(ev::EvtchnStatus, u) as u64;
    p.add(
        "evtchn_status.u.interdomain.port",
        u + 4,
        "offsetof(struct evtchn_status, u.interdomain.port)",
    );
    p.add(
        "evtchn_status.u.virq",
        u,
        "offsetof(struct evtchn_status, u.virq)",
    );
    size!(p, ev::EvtchnBindVcpu, "struct evtchn_bind_vcpu");
    off!(
        p,
        ev::EvtchnBindVcpu,
        vcpu,
        "struct evtchn_bind_vcpu",
        "vcpu"
    );
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
    off!(
        p,
        gt::GnttabMapGrantRef,
        flags,
        "struct gnttab_map_grant_ref",
        "flags"
    );
    off!(
        p,
        gt::GnttabMapGrantRef,
        r#ref,
        "struct gnttab_map_grant_ref",
        "ref"
    );
    off!(
        p,
        gt::GnttabMapGrantRef,
        dom,
        "struct gnttab_map_grant_ref",
        "dom"
    );
    off!(
        p,
        gt::GnttabMapGrantRef,
        status,
        "struct gnttab_map_grant_ref",
        "status"
    );
    off!(
        p,
        gt::GnttabMapGrantRef,
        handle,
        "struct gnttab_map_grant_ref",
        "handle"
    );
    off!(
        p,
        gt::GnttabMapGrantRef,
        dev_bus_addr,
        "struct gnttab_map_grant_ref",
        "dev_bus_addr"
    );
    size!(p, gt::GnttabUnmapGrantRef, "struct gnttab_unmap_grant_ref");
    off!(
        p,
        gt::GnttabUnmapGrantRef,
        dev_bus_addr,
        "struct gnttab_unmap_grant_ref",
        "dev_bus_addr"
    );
    off!(
        p,
        gt::GnttabUnmapGrantRef,
        handle,
        "struct gnttab_unmap_grant_ref",
        "handle"
    );
    off!(
        p,
        gt::GnttabUnmapGrantRef,
        status,
        "struct gnttab_unmap_grant_ref",
        "status"
    );
    size!(p, gt::GnttabSetupTable, "struct gnttab_setup_table");
    off!(
        p,
        gt::GnttabSetupTable,
        nr_frames,
        "struct gnttab_setup_table",
        "nr_frames"
    );
    off!(
        p,
        gt::GnttabSetupTable,
        status,
        "struct gnttab_setup_table",
        "status"
    );
    off!(
        p,
        gt::GnttabSetupTable,
        frame_list,
        "struct gnttab_setup_table",
        "frame_list"
    );
    size!(p, gt::GnttabCopy, "struct gnttab_copy");
    off!(p, gt::GnttabCopy, source, "struct gnttab_copy", "source");
    off!(p, gt::GnttabCopy, dest, "struct gnttab_copy", "dest");
    off!(p, gt::GnttabCopy, len, "struct gnttab_copy", "len");
    off!(p, gt::GnttabCopy, flags, "struct gnttab_copy", "flags");
    off!(p, gt::GnttabCopy, status, "struct gnttab_copy", "status");
    size!(p, gt::GnttabCopyPtr, "struct gnttab_copy_ptr");
    off!(
        p,
        gt::GnttabCopyPtr,
        domid,
        "struct gnttab_copy_ptr",
        "domid"
    );
    off!(
        p,
        gt::GnttabCopyPtr,
        offset,
        "struct gnttab_copy_ptr",
        "offset"
    );
    size!(p, gt::GnttabQuerySize, "struct gnttab_query_size");
    off!(
        p,
        gt::GnttabQuerySize,
        nr_frames,
        "struct gnttab_query_size",
        "nr_frames"
    );
    off!(
        p,
        gt::GnttabQuerySize,
        max_nr_frames,
        "struct gnttab_query_size",
        "max_nr_frames"
    );
    off!(
        p,
        gt::GnttabQuerySize,
        status,
        "struct gnttab_query_size",
        "status"
    );
    size!(p, gt::GnttabSetVersion, "struct gnttab_set_version");
    p.run("evtchn_gnttab");
}

#[test]
fn hypercall_page_stub_bytes_are_xens() {
    // Independent of the headers: the documented PV64 stub encoding (xen-pv-abi.md §2.2),
    // decoded by hand: push %rcx (51); push %r11 (41 53); mov $n,%eax (b8 imm32);
    // syscall (0f 05); pop %r11 (41 5b); pop %rcx (59); ret (c3).
    let stub = hc::hypercall_stub(0x1d);
    assert_eq!(
        stub,
        [0x51, 0x41, 0x53, 0xb8, 0x1d, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]
    );
    assert_eq!(hc::IRET_STUB[4..9], [0xb8, 23, 0, 0, 0]);
}
