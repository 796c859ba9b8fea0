//! Crash containment on our hypervisor: a domU that dies of an unhandled page fault, or
//! asks for `SCHEDOP_shutdown(SHUTDOWN_crash)`, while it holds two event-channel ports, a
//! writable mapping of another domain's grant and a grant of its own, is torn down: every
//! frame returns to the allocator, the survivor's port goes back to unbound and its grant
//! is no longer in use (it can revoke it and finds the crasher's marker and its own data
//! intact), dom0 receives VIRQ_DOM_EXC, and the survivor and a bystander finish their work.
//!
//! Ours only: Xen 4.17 cannot boot this bundle (its domUs need a toolstack in dom0).

mod domains_common;

use domains_common::{assert_crash_contained, cfg, check_value, xl_rows};
use scenarios::{cpio_bundle, guest_kernel_image, Hv, Scenario, EXIT_SUCCESS};

fn crash(name: &str, role: &str, hv_says: &str) {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let survivor = cfg("survivor", 16, "role=survivor peer=2 gref=8 seed=5");
    let crasher = cfg("crasher", 16, &format!("role={role} peer=1 port=3 gref=8 self=2"));
    let by = cfg("bystander", 16, "role=bystander pages=32 seed=9 ms=1500");
    let dom0 =
        b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=3 names=survivor,crasher,bystander unpause=1\"\n";
    let bundle = cpio_bundle(
        name,
        &[("guest.elf", &guest), ("dom0.cfg", dom0), ("a.cfg", &survivor), ("b.cfg", &crasher), ("c.cfg", &by)],
    );
    let out = Scenario::new(name, Hv::Ours)
        .module(&bundle)
        .hv_options("console=com1 loglvl=info domu_start=paused")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("control: xl list (before)")
        .expect_line(hv_says)
        .expect_line("d2 (crasher): destroyed, ")
        .expect_line("control: 7 passed, 0 failed")
        .expect_line("Hardware domain shut down")
        .forbid_line("FAIL")
        .forbid_line(scenarios::FRAMES_KEPT)
        .run();
    let log = &out.log;
    // The domains end in any order after the crash.
    assert!(log.contains("control: d2 (crasher) is gone"));
    assert_eq!(xl_rows(log, "before").len(), 4);
    assert!(check_value(log, "d2", "bind the peer's port, map its grant writable, write, signal")
        .starts_with("port 3, map 0 handle "));
    // Torn down with all its frames: 16 MiB = 4096 pages, plus shared_info and its one grant
    // frame, which the hypervisor took for it.
    let frames: u64 = log
        .lines()
        .find_map(|l| l.split("d2 (crasher): destroyed, ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("destroyed line");
    assert_eq!(frames, 4096 + 1 + 1, "frames the crasher's teardown returned");
    assert_crash_contained(log);
    assert!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").starts_with("3 gone, 0 left"));
}

#[test]
fn a_domu_dying_of_an_unhandled_fault_is_torn_down_and_the_others_finish() {
    crash("domains-crash-fault", "crash-fault", "d2: #PF at rip=");
}

#[test]
fn a_domu_crashing_through_schedop_shutdown_is_torn_down_and_the_others_finish() {
    crash("domains-crash-shutdown", "crash-shutdown", "d2: shutdown requested: reason 3 (crash)");
}
