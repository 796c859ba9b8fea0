//! Many domains on our hypervisor: dom0 (`role=control`) lists the domains `xl list`-style
//! from `XEN_DOMCTL_getdomaininfo`, every domU gets -EPERM from `domctl`, and two domUs
//! exchange data through grants and an interdomain event channel and check it byte for byte,
//! while a third domU works on its own memory. dom0 learns of each domU's end through
//! VIRQ_DOM_EXC.
//!
//! Ours only: Xen 4.17 cannot boot this bundle (a cpio of xl.cfg files is this project's
//! boot format; Xen creates domUs only through a toolstack in dom0).

mod domains_common;

use domains_common::{assert_exchanged, cfg, check_value, xl_rows};
use scenarios::{cpio_bundle, guest_kernel_image, Hv, Outcome, Scenario, EXIT_SUCCESS};

fn boot(name: &str, members: &[(&str, &[u8])]) -> Scenario {
    let bundle = cpio_bundle(name, members);
    Scenario::new(name, Hv::Ours)
        .module(&bundle)
        .hv_options("console=com1 loglvl=info domu_start=paused")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
}

#[test]
fn two_domus_exchange_data_through_grants_and_an_event_channel() {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let src = cfg("source", 16, "role=grant-source peer=2 gref=8 pages=4 seed=77 port=3");
    let sink = cfg("sink", 16, "role=grant-sink peer=1 port=3 gref=8 pages=4 seed=77");
    let by = cfg("bystander", 16, "role=bystander pages=32 seed=9 ms=500");
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=3 names=source,sink,bystander unpause=1\"\n";
    let out: Outcome = boot(
        "domains-exchange",
        &[("guest.elf", &guest), ("dom0.cfg", dom0), ("source.cfg", &src), ("sink.cfg", &sink), ("bystander.cfg", &by)],
    )
    .expect_line("d1 (source): created")
    .expect_line("d3 (bystander): created")
    .expect_line("control: xl list (before)")
    .expect_line("control: xl list (after)")
    .expect_line("control: 7 passed, 0 failed")
    .expect_line("Hardware domain shut down")
    .forbid_line("FAIL")
    .run();
    let log = &out.log;

    // dom0's table: dom0 and the three domUs with their configured memory, then only dom0.
    let before = xl_rows(log, "before");
    let ids: Vec<(String, u16, u64)> = before.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
    assert_eq!(
        ids,
        vec![("Domain-0".into(), 0, 32), ("source".into(), 1, 16), ("sink".into(), 2, 16), ("bystander".into(), 3, 16)]
    );
    assert!(before[0].3.starts_with('r'), "dom0 runs while it lists: {:?}", before[0]);
    let after = xl_rows(log, "after");
    assert_eq!(after.len(), 1, "only dom0 is left: {after:?}");
    assert!(after[0].4 >= before[0].4, "dom0's CPU time does not go backwards");
    assert_eq!(check_value(log, "", "domctl with interface version 0x14"), "-13 (EACCES)");
    assert_eq!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").split(',').next(), Some("3 gone"));

    // Every domU is refused domctl with -EPERM.
    for d in ["d1", "d2", "d3"] {
        assert_eq!(
            check_value(log, d, "domctl getdomaininfo(0) and pausedomain(0) from a domU"),
            "-1 (EPERM), -1 (EPERM)"
        );
    }
    // The exchange, byte for byte in both directions.
    assert_exchanged(log);
    for d in ["d1", "d2", "d3"] {
        assert!(log.contains(&format!("{d}: shutdown requested: reason 0 (poweroff)")), "{d} did not power off");
    }
    assert!(!log.contains(scenarios::FRAMES_KEPT), "every frame of a dead domain returns to the allocator");
}
