//! The guest-measured benchmark (`role=bench`) completes on Xen 4.17 and on our hypervisor
//! and prints every measurement: null hypercall, console write, user-process syscall round
//! trip, bounced page fault and a 512-entry `mmu_update` batch. The figures themselves and
//! the ratios ours/Xen come from `scripts/bench-guest.sh`.

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_SUCCESS, XEN_POWEROFF};

fn bench(name: &str, hv: Hv, exit: i32) {
    Scenario::new(name, hv)
        .module(guest_kernel_image())
        .append("role=bench iterations=500")
        .timeout_secs(180)
        .expect_exit(exit)
        .expect_line("bench: null_hypercall iterations=500 ")
        .expect_line("bench: console_write iterations=500 ")
        .expect_line("bench: user_syscall iterations=500 ")
        .expect_line("bench: page_fault iterations=500 ")
        .expect_line("bench: mmu_update_512 iterations=8 ")
        .expect_line("guest-kernel: shutdown poweroff")
        .forbid_line("failed")
        .run();
}

#[test]
fn guest_bench_on_xen() {
    bench("guest-bench-xen", Hv::Xen, XEN_POWEROFF);
}

#[test]
fn guest_bench_on_ours() {
    bench("guest-bench-ours", Hv::Ours, EXIT_SUCCESS);
}
