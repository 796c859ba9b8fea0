//! The guest kernel on our hypervisor: the same two scenarios as on Xen 4.17
//! (`guest_on_xen.rs`), judged by the guest's own lines, which do not depend on the
//! hypervisor's version string, and by our exit protocol (33 on dom0 poweroff, 35 on crash).

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_FAILURE, EXIT_SUCCESS};

// The abi-test check lines (`ABI_TEST_CHECKS`), kept beside the role that prints them.
include!("../../guest-kernel/abi_test_expectations.rs");

#[test]
fn guest_demo_on_ours() {
    Scenario::new("guest-demo-ours", Hv::Ours)
        .module(guest_kernel_image())
        .append("role=demo shutdown=poweroff")
        .timeout_secs(60)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("guest-kernel: PV guest kernel starting")
        .expect_line("guest-kernel: hypervisor version ")
        .expect_line("guest-kernel: start_info magic \"xen-3.0-x86_64p\"")
        .expect_line("guest-kernel: memory ")
        .expect_line("(initial domain)")
        // Xen's dom0 command line keeps the space after " --" (" role=demo ..."); only the
        // words are checked here.
        .expect_line("role=demo shutdown=poweroff\"")
        .expect_line("guest-kernel: role demo")
        .expect_line("guest-kernel: shutdown poweroff")
        .forbid_line("hypervisor version unknown")
        .run();
}

#[test]
fn guest_crash_request_on_ours() {
    Scenario::new("guest-demo-crash-ours", Hv::Ours)
        .module(guest_kernel_image())
        .append("role=demo shutdown=crash")
        .timeout_secs(60)
        .expect_exit(EXIT_FAILURE)
        .expect_line("guest-kernel: shutdown crash")
        .run();
}

#[test]
fn guest_abi_test_on_ours() {
    let mut s = Scenario::new("guest-abi-test-ours", Hv::Ours)
        .module(guest_kernel_image())
        .append("role=abi-test")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("guest-kernel: role abi-test");
    for line in ABI_TEST_CHECKS {
        s = s.expect_line(line);
    }
    s.expect_line(&format!("abi-test: {} passed, 0 failed", ABI_TEST_CHECKS.len()))
        .expect_line("guest-kernel: shutdown poweroff")
        .forbid_line("FAIL")
        .run();
}
