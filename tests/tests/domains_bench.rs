//! The inter-domain benchmark (`role=bench-ping` / `role=bench-pong`) completes on our
//! hypervisor and prints every figure: event-channel round trip between two domUs, grant
//! copy of 4 KiB against a plain in-domain copy (ratio), map+unmap of one grant, and the
//! yield ping-pong (two context switches per round, every yield checked to switch). The
//! longer run and the summary come from `scripts/bench-domains.sh`.
//!
//! Ours only: Xen 4.17 cannot boot this bundle (its domUs need a toolstack in dom0).

mod domains_common;

use domains_common::cfg;
use scenarios::{cpio_bundle, guest_kernel_image, Hv, Scenario, EXIT_SUCCESS};

#[test]
fn domain_bench_prints_every_figure() {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let ping = cfg("ping", 16, "role=bench-ping peer=2 pages=4 iterations=300");
    let pong = cfg("pong", 16, "role=bench-pong peer=1 port=3 pages=4 iterations=300");
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=2 names=ping,pong unpause=1\"\n";
    let bundle =
        cpio_bundle("domains-bench", &[("guest.elf", &guest), ("dom0.cfg", dom0), ("a.cfg", &ping), ("b.cfg", &pong)]);
    let out = Scenario::new("domains-bench", Hv::Ours)
        .module(&bundle)
        .hv_options("console=com1 loglvl=info domu_start=paused")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("(d1) bench: evtchn_roundtrip iterations=300 ")
        .expect_line("(d1) bench: sched_yield_roundtrip iterations=300 ")
        .expect_line("(d1) bench: yield_switches verified=")
        // The copies are timed in 10 interleaved rounds; each line is the best round.
        .expect_line("(d1) bench: grant_copy_4k iterations=32 ")
        .expect_line("(d1) bench: grant_copy_4k_batched iterations=32 ")
        .expect_line("(d1) bench: local_copy_4k iterations=32 ")
        .expect_line("(d1) bench: grant_copy_vs_local ratio_milli=")
        .expect_line("(d1) bench: grant_map_unmap iterations=300 ")
        .expect_line("(d1) bench: grant_map_unmap failures=0")
        .expect_line("control: 7 passed, 0 failed")
        .forbid_line("FAIL")
        .run();
    let log = &out.log;
    assert!(log.contains("(d1) guest-kernel: shutdown poweroff"), "ping verified its copies");
    // Ping's waits block in SCHEDOP_poll (at most a poll or two per round trip; none when pong,
    // boosted on waking, answers before ping waits), not spin through it.
    let polls: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("(d1) bench: evtchn_roundtrip polls="))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .expect("the poll count line");
    assert!(polls <= 600, "{polls} polls for 300 round trips");
    assert!(log.contains("(d2) bench-pong: 300 round trips answered, finish true, 4 of 4 grants revoked"));
    assert!(log.contains("(failed copies 0, last copy verified true)"));
    assert!(log.contains("yields, counter grant revoked true"), "pong yielded until ping's stop");
    let check = log.lines().find(|l| l.starts_with("(d1) bench: yield_switches ")).unwrap();
    assert!(check.ends_with(" ok=true"), "every yield switched (but for tick preemptions): {check}");
    let cycles = |name: &str| -> u64 {
        let l = log.lines().find(|l| l.starts_with(&format!("(d1) bench: {name} "))).unwrap();
        l.rsplit("cycles_per_call=").next().unwrap().trim().parse().unwrap()
    };
    for m in ["evtchn_roundtrip", "grant_copy_4k", "local_copy_4k", "grant_map_unmap", "sched_yield_roundtrip"] {
        assert!(cycles(m) > 0, "{m}");
    }
}
