//! Events and time (`role=events`) on Xen 4.17 (the reference) and on our hypervisor, same
//! ELF, same expected lines: `shared_info` mapped with `update_va_mapping`, the PV clock and
//! wall clock with their version protocols, VIRQ_TIMER through `bind_virq`, one-shot timers
//! (`set_timer_op`, `VCPUOP_set_singleshot_timer`) waking `SCHEDOP_block` with an upcall
//! (frame: kernel CS 0xe030, saved mask 0, handler entered masked), periodic ticks, and the
//! pending/mask/selector rules on a `bind_ipi` port (masked port: pending without upcall until
//! `EVTCHNOP_unmask`; events masked: selector and `evtchn_upcall_pending` set, delivery when
//! the kernel unmasks), `close`, and `send` on a closed port (-EINVAL).
//!
//! Xen behaviour the role relies on (our hypervisor must match): a blocked vCPU's periodic
//! timer is stopped (Xen only runs it while the vCPU is scheduled), so the periodic ticks are
//! counted while spinning with events unmasked; periods below 1 ms are -EINVAL.

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_SUCCESS, XEN_POWEROFF};

/// The lines of `role=events`, in order.
const EVENTS_LINES: &[&str] = &[
    "check: update_va_mapping shared_info -> 0 ok",
    "check: evtchn_upcall_mask at entry -> 1 ok",
    "check: vcpu_time_info -> version even true, mul nonzero true, shift ",
    "advances true ok",
    "check: wall clock (wc_sec, wc_nsec at system time 0) -> version even true, sane true ok",
    "check: bind_virq VIRQ_TIMER, stop the default periodic timer -> port>0 true, 0 ok",
    "check: set_timer_op +5ms, SCHEDOP_block -> 0, upcall true, after >= 5ms true ok",
    "check: upcall frame -> cs 0xe030 saved mask 0 mask in handler 1 ok",
    "check: vcpu_op set_singleshot_timer +5ms, SCHEDOP_block -> 0, upcall true, after >= 5ms true ok",
    "check: vcpu_op set_periodic_timer 2ms: 5 ticks while running -> 0, ticks 5, >= 8ms true, stop 0 ok",
    "check: set_periodic_timer 10ms again every 4ms for 60ms -> 0, at least 3 ticks true ok",
    "check: vcpu_op set_periodic_timer 1ns (below Xen's minimum) -> -22 (EINVAL) ok",
    "check: close the VIRQ_TIMER port -> 0 ok",
    "check: send on a masked IPI port -> 0, pending true, sel false, upcall_pending 0, delivered false ok",
    "check: EVTCHNOP_unmask of the pending port -> 0, delivered true ok",
    "check: send with evtchn_upcall_mask set -> 0, pending true, sel true, upcall_pending 1, delivered false ok",
    "check: clearing evtchn_upcall_mask (then a hypercall) -> delivered true ok",
    "check: close the IPI port, then send on it -> 0, -22 (EINVAL) ok",
    "events: 17 passed, 0 failed",
    "guest-kernel: shutdown poweroff",
];

fn events(name: &str, hv: Hv, exit: i32) {
    let mut s = Scenario::new(name, hv)
        .module(guest_kernel_image())
        .append("role=events")
        .timeout_secs(120)
        .expect_exit(exit)
        .expect_line("guest-kernel: role events");
    for l in EVENTS_LINES {
        s = s.expect_line(l);
    }
    s.forbid_line("FAIL").forbid_line("giving up").run();
}

#[test]
fn guest_events_on_xen() {
    events("guest-events-xen", Hv::Xen, XEN_POWEROFF);
}

#[test]
fn guest_events_on_ours() {
    events("guest-events-ours", Hv::Ours, EXIT_SUCCESS);
}
