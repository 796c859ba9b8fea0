//! Trap-and-emulate of privileged instructions from the guest kernel (`role=emulate`) on
//! Xen 4.17 (the reference) and on our hypervisor, same ELF, same expected lines. What the
//! lines pin down is Xen 4.17's behaviour for a PV dom0:
//! * forced-emulation `cpuid` answers from the policy ("XenVMMXenVMM", leaf 0x40000001 =
//!   the version, hypervisor bit in leaf 1); plain `cpuid` is not intercepted (no CPUID
//!   faulting for dom0 under QEMU TCG), so it returns the CPU's own leaves;
//! * FS/GS base MSRs read and write; unknown MSRs and non-canonical bases are #GP(0);
//! * port I/O is #GP(0) at virtual IOPL 0; after `PHYSDEVOP_set_iopl(1)` the CMOS ports and
//!   0x80 are emulated and Xen's own UART reads 0xff; `cli` is #GP(0) at IOPL 0 and a no-op
//!   at IOPL 1;
//! * `mov` from CR0/CR2/CR3/CR4 and to CR3 (same root) are emulated;
//! * `hlt` is NOT emulated for PV in 4.17 (#GP(0)): idling is `SCHEDOP_block`, which the
//!   role shows waking on the timer that was armed before the `hlt`;
//! * `wbinvd` is emulated (no fault); `popf` with IF cleared neither traps nor changes
//!   RFLAGS.IF or the event mask.

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_SUCCESS, XEN_POWEROFF};

/// The lines of `role=emulate`, in order (cut before hypervisor-specific values).
const EMULATE_LINES: &[&str] = &[
    "check: forced cpuid 0x40000000 -> \"XenVMMXenVMM\" max leaf 0x",
    // Xen answers its own version (0x40011); ours answers its own: both equal xen_version.
    "check: forced cpuid 0x40000001 (version) -> eax 0x",
    "check: plain cpuid 0x40000000 (native: not intercepted) -> ",
    "check: forced cpuid 1: hypervisor bit (ecx bit 31) -> 1 ok",
    "check: wrmsr/rdmsr MSR_FS_BASE -> 0xaaabbbbc000, no trap, no trap ok",
    "check: wrmsr/rdmsr MSR_SHADOW_GS_BASE (the user GS base in kernel mode), rdmsr MSR_GS_BASE -> 0xaaabbbbd000 gs 0x0, no trap, no trap, no trap ok",
    "check: rdmsr of an unknown MSR 0x2345 -> #GP error 0x0 (value 0x0) ok",
    "check: wrmsr of an unknown MSR 0x2345 -> #GP error 0x0 ok",
    "check: wrmsr MSR_FS_BASE non-canonical -> #GP error 0x0 ok",
    "check: cli with virtual IOPL 0 -> #GP error 0x0 ok",
    "check: out 0x70 with virtual IOPL 0 -> #GP error 0x0 ok",
    "check: physdev_op set_iopl 1 -> 0 ok",
    "check: out 0x70 / in 0x71 (CMOS status A) with IOPL 1 -> divider 0b010, no trap ok",
    "check: out 0x80 (POST code) with IOPL 1 -> no trap ok",
    "check: in 0x3fd (Xen's own serial port) with IOPL 1 -> 0xff, no trap ok",
    "check: cli with IOPL 1 -> no trap, mask 0 -> 0 ok",
    "check: mov %cr0 -> pe 1 pg 1 ts 0, no trap ok",
    "check: mov %cr4 -> pae 1, no trap ok",
    "check: mov %cr3 -> = p2m[pt_base] << 12, no trap ok",
    "check: mov to %cr3 with the current root -> no trap, unchanged ok",
    "check: mov %cr2 after a #PF -> 0x500000000000, no trap ok",
    "check: hlt (not emulated for PV) -> 0, #GP error 0x0 ok",
    "check: the timer armed before hlt wakes SCHEDOP_block -> after ",
    "check: wbinvd -> no trap ok",
    "check: popf with IF cleared -> no trap, IF before 1 after 1, mask 0 -> 0 ok",
    "check: single step over a forced cpuid: the #DB, DR6 before and after -> #DB error 0x0 at the next instruction true, DR6 0xffff0ff0 then 0xffff4ff0 ok",
    "emulate: 26 passed, 0 failed",
    "guest-kernel: shutdown poweroff",
];

fn emulate(name: &str, hv: Hv, exit: i32) {
    let mut s = Scenario::new(name, hv)
        .module(guest_kernel_image())
        .append("role=emulate")
        .timeout_secs(120)
        .expect_exit(exit)
        .expect_line("guest-kernel: role emulate");
    for l in EMULATE_LINES {
        s = s.expect_line(l);
    }
    s.forbid_line("FAIL").forbid_line("giving up").run();
}

#[test]
fn guest_emulate_on_xen() {
    emulate("guest-emulate-xen", Hv::Xen, XEN_POWEROFF);
}

#[test]
fn guest_emulate_on_ours() {
    emulate("guest-emulate-ours", Hv::Ours, EXIT_SUCCESS);
}
