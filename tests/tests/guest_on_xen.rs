//! The guest kernel on Debian's Xen 4.17 (the reference): the demo role prints the banner and
//! powers off; the abi-test role passes every check. Expected values are what Xen 4.17.7
//! answers for a PV dom0 (see guest-kernel's `roles/abi_test.rs`).

use scenarios::{guest_kernel_image, Hv, Scenario, XEN_DOM0_CRASHED, XEN_POWEROFF};

// The abi-test check lines (`ABI_TEST_CHECKS`), kept beside the role that prints them.
include!("../../guest-kernel/abi_test_expectations.rs");

#[test]
fn guest_demo_on_xen() {
    Scenario::new("guest-demo-xen", Hv::Xen)
        .module(guest_kernel_image())
        .append("role=demo shutdown=poweroff")
        .timeout_secs(60)
        .expect_exit(XEN_POWEROFF)
        .expect_line("Xen version 4.17")
        .expect_line("guest-kernel: PV guest kernel starting")
        .expect_line("guest-kernel: hypervisor version 4.17.")
        .expect_line("guest-kernel: start_info magic \"xen-3.0-x86_64p\"")
        .expect_line("guest-kernel: memory ")
        .expect_line("(initial domain)")
        .expect_line("guest-kernel: command line \" role=demo shutdown=poweroff\"")
        .expect_line("guest-kernel: role demo")
        .expect_line("guest-kernel: shutdown poweroff")
        .expect_line("Hardware Dom0 halted")
        .run();
}

#[test]
fn guest_crash_request_on_xen() {
    Scenario::new("guest-demo-crash-xen", Hv::Xen)
        .module(guest_kernel_image())
        .append("role=demo shutdown=crash")
        .timeout_secs(60)
        .expect_exit(XEN_DOM0_CRASHED)
        .expect_line("guest-kernel: shutdown crash")
        .expect_line("Hardware Dom0 crashed")
        .run();
}

#[test]
fn guest_abi_test_on_xen() {
    let mut s = Scenario::new("guest-abi-test-xen", Hv::Xen)
        .module(guest_kernel_image())
        .append("role=abi-test")
        .timeout_secs(120)
        .expect_exit(XEN_POWEROFF)
        .expect_line("guest-kernel: role abi-test");
    for line in ABI_TEST_CHECKS {
        s = s.expect_line(line);
    }
    let out = s
        .expect_line(&format!("abi-test: {} passed, 0 failed", ABI_TEST_CHECKS.len()))
        .expect_line("guest-kernel: shutdown poweroff")
        .forbid_line("FAIL")
        .run();
    // What Xen answers for dom0 (the facts our hypervisor reproduces).
    assert!(out.log.contains("check: memory_op memory_map -> -38 (ENOSYS) ok"), "{}", out.log);
    assert!(out.log.contains("check: xen_version version -> 4.17 ok"), "{}", out.log);
}
