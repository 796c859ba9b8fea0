//! The guest-measured benchmark (`role=bench`) completes on Xen 4.17 and on our hypervisor
//! and prints every measurement: null hypercall, console write, user-process syscall round
//! trip, bounced page fault, a 512-entry `mmu_update` batch, an event-channel send + poll on
//! a loopback port, grant copies from dom0's own grants (every copy succeeded and delivered
//! the right bytes) against an in-domain copy, and grant map + unmap (none failed). The figures themselves and
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
        .expect_line("bench: evtchn_send_poll iterations=500 ")
        .expect_line("bench: grant_copy_4k iterations=")
        .expect_line("bench: grant_copy_4k_batched iterations=")
        .expect_line("bench: local_copy_4k iterations=")
        .expect_line("bench: grant_copy_vs_local ratio_milli=")
        .expect_line("(failed copies 0, last copy verified true)")
        .expect_line("bench: grant_map_unmap iterations=500 ")
        .expect_line("bench: grant_map_unmap failures=0")
        .expect_line("guest-kernel: shutdown poweroff")
        // Each failure line of the role ends in " failed" (the copy line's "(failed copies 0"
        // is checked above).
        .forbid_line(" failed")
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
