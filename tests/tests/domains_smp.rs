//! Several CPUs on our hypervisor (QEMU `-smp 2`): domUs pinned to the second CPU with
//! `cpus = 1` run at the same time as those on the first, and everything the one-CPU
//! scenarios check still holds across CPUs: an exchange through grants and an interdomain
//! event channel checked byte for byte (the event wakes a domain blocked on the other CPU,
//! through an IPI), a crash on the second CPU torn down while the first goes on, and dom0
//! destroying a domain at the moment it runs on the other CPU (its teardown waits until that
//! CPU has switched away from it, and the `destroydomain` call is continued until then).
//!
//! Ours only: Xen 4.17 cannot boot these bundles (its domUs need a toolstack in dom0).

mod domains_common;

use domains_common::{assert_crash_contained, assert_exchanged, attack_bundle, cfg, check_value};
use scenarios::{cpio_bundle, guest_kernel_image, Hv, Scenario, EXIT_SUCCESS};
use std::time::Duration;

/// A domU config pinned to CPU 1.
fn on_cpu1(name: &str, mib: u32, extra: &str) -> Vec<u8> {
    let mut c = cfg(name, mib, extra);
    c.extend_from_slice(b"cpus = 1\n");
    c
}

fn smp(name: &str, members: &[(&str, &[u8])]) -> Scenario {
    smp_bundle(name, cpio_bundle(name, members))
}

fn smp_bundle(name: &str, bundle: std::path::PathBuf) -> Scenario {
    Scenario::new(name, Hv::Ours)
        .module(&bundle)
        .qemu_args(&["-smp", "2"])
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("CPUs: 2 online")
        .forbid_line("FAIL")
        .forbid_line(scenarios::FRAMES_KEPT)
}

/// The domUs start paused and dom0 (CPU 0) unpauses them once it has listed them, so no
/// domU on CPU 1 can end before dom0 has seen it.
const DOMUS_PAUSED: &str = "console=com1 loglvl=info domu_start=paused";

#[test]
fn domus_on_two_cpus_exchange_data_through_grants_and_an_event_channel() {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    // The source and the bystander on CPU 1, the sink with dom0 on CPU 0.
    let src = on_cpu1("source", 16, "role=grant-source peer=2 gref=8 pages=4 seed=77 port=3");
    let sink = cfg("sink", 16, "role=grant-sink peer=1 port=3 gref=8 pages=4 seed=77");
    let by = on_cpu1("bystander", 16, "role=bystander pages=32 seed=9 ms=500");
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=3 names=source,sink,bystander unpause=1\"\n";
    let out = smp(
        "smp-exchange",
        &[("guest.elf", &guest), ("dom0.cfg", dom0), ("source.cfg", &src), ("sink.cfg", &sink), ("bystander.cfg", &by)],
    )
    .hv_options(DOMUS_PAUSED)
    .expect_line("d1 (source): created from source.cfg (guest.elf, 16 MiB, weight 256, CPU 1,")
    .expect_line("d2 (sink): created from sink.cfg (guest.elf, 16 MiB, weight 256, CPU 0,")
    .expect_line("control: xl list (after)")
    .expect_line("control: 7 passed, 0 failed")
    .expect_line("Hardware domain shut down")
    .run();
    let log = &out.log;
    // The domains end in any order: they run on two CPUs at once.
    for l in [
        "(d1) grant-source: 7 passed, 0 failed",
        "(d2) grant-sink: 7 passed, 0 failed",
        "(d3) bystander: 3 passed, 0 failed",
    ] {
        assert!(log.contains(l), "missing: {l}");
    }
    assert_exchanged(log);
    // dom0 on CPU 0 heard of every end, including those of the domains on CPU 1.
    assert!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").starts_with("3 gone, 0 left"));
}

#[test]
fn a_domu_crashing_on_the_second_cpu_is_torn_down_and_the_others_finish() {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let survivor = cfg("survivor", 16, "role=survivor peer=2 gref=8 seed=5");
    let crasher = on_cpu1("crasher", 16, "role=crash-fault peer=1 port=3 gref=8 self=2");
    let by = on_cpu1("bystander", 16, "role=bystander pages=32 seed=9 ms=1500");
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=3 names=survivor,crasher,bystander unpause=1\"\n";
    let out = smp(
        "smp-crash",
        &[("guest.elf", &guest), ("dom0.cfg", dom0), ("a.cfg", &survivor), ("b.cfg", &crasher), ("c.cfg", &by)],
    )
    .hv_options(DOMUS_PAUSED)
    .expect_line("d2: #PF at rip=")
    .expect_line("d2 (crasher): destroyed, ")
    .expect_line("control: 7 passed, 0 failed")
    .expect_line("Hardware domain shut down")
    .run();
    let log = &out.log;
    assert!(log.contains("control: d2 (crasher) is gone"));
    assert_crash_contained(log);
    assert!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").starts_with("3 gone, 0 left"));
}

#[test]
fn host_nmis_on_both_cpus_are_ignored_and_every_domain_finishes() {
    // QEMU's `nmi` monitor command raises a host NMI (through the boot CPU's LINT1, which
    // the firmware sets up for NMIs; the other CPUs' stays masked, so CPU 0 takes them all):
    // in ring 0 (idling) or while dom0 or a domU runs in ring 3. It must neither stop the
    // machine (it used to: a fatal ring-0 exception) nor reach a guest (a domU without an
    // NMI handler would crash, one with it would see a spurious NMI).
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let by0 = cfg("by0", 16, "role=bystander pages=32 seed=9 ms=3000");
    let by1 = on_cpu1("by1", 16, "role=bystander pages=32 seed=11 ms=3000");
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=2 names=by0,by1 unpause=1\"\n";
    let commands = ["nmi"; 8];
    let sent = commands.len() as u64;
    let out = smp("smp-host-nmi", &[("guest.elf", &guest), ("dom0.cfg", dom0), ("a.cfg", &by0), ("b.cfg", &by1)])
        .hv_options(DOMUS_PAUSED)
        .monitor_after("d2 (by1): created", &commands, Duration::from_millis(250))
        .expect_line("host NMI(s) ignored")
        .expect_line("control: 7 passed, 0 failed")
        .expect_line("Hardware domain shut down")
        .run();
    let log = &out.log;
    assert!(log.contains("(d1) bystander: 3 passed, 0 failed"), "by0 summary");
    assert!(log.contains("(d2) bystander: 3 passed, 0 failed"), "by1 summary");
    let ignored: u64 = log
        .lines()
        .filter_map(|l| l.split("host NMI(s) ignored").next().filter(|_| l.contains("host NMI(s) ignored")))
        .map(|head| head.split_whitespace().last().and_then(|n| n.parse::<u64>().ok()).expect("a count"))
        .sum();
    assert_eq!(ignored, sent, "every NMI sent is taken, dropped and reported");
}

fn flood_on_cpu1(name: &str, dom0_extra: &str) -> scenarios::Outcome {
    let out = smp_bundle(name, attack_bundle(name, "attack-flood", "cpus = 1\n", dom0_extra, 1500))
        .hv_options(DOMUS_PAUSED)
        // Loaded on CPU 1 (running, or idle after the pause) when dom0's destroy arrives.
        .expect_line("d2: dying; torn down once CPU 1 switches away from it")
        .expect_line("d2 (attacker): destroyed, ")
        .expect_line("control: xl list (after)")
        .expect_line("Hardware domain shut down")
        .run();
    let log = &out.log;
    assert!(log.contains("(d2) attack-flood: 6 passed, 0 failed; flooding"), "flood phase not reached");
    assert!(log.contains("(d1) victim: 6 passed, 0 failed"), "victim summary");
    assert!(log.contains("(d3) bystander: 3 passed, 0 failed"), "bystander summary");
    assert!(log.contains("control: d2 (attacker) is gone"));
    assert!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").starts_with("3 gone, 0 left"));
    out
}

#[test]
fn dom0_destroys_a_flooder_while_it_runs_on_the_other_cpu() {
    let out = flood_on_cpu1("smp-destroy-running", "kill_running=2");
    // `destroydomain` is continued until CPU 1 has let go of the domain and it is torn down.
    assert_eq!(check_value(&out.log, "", "domctl destroydomain of a running domain, then getdomaininfo"), "0, gone");
}

#[test]
fn dom0_pauses_then_destroys_a_flooder_on_the_other_cpu() {
    let out = flood_on_cpu1("smp-pause-destroy", "kill=2");
    // The pause returns once CPU 1 has stopped running it: paused, neither running nor
    // blocked (flags 0x8); the destroy then waits for the idle CPU 1 to let go of it.
    assert_eq!(check_value(&out.log, "", "domctl pausedomain, then getdomaininfo flags"), "0, flags 0x8");
    assert!(check_value(&out.log, "", "domctl destroydomain, then getdomaininfo").starts_with("0, next listed"));
}

#[test]
fn the_domain_bench_runs_across_cpus_with_spinning_waits() {
    // Ping (CPU 0) and pong (CPU 1) spin on their pending bits: events cross CPUs without
    // any blocking, and pong stays loaded while ping copies from its grants, so the copies
    // are the pinned kind (a granter running elsewhere). Every figure is produced and the
    // copies verify.
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let ping = cfg("ping", 16, "role=bench-ping peer=2 pages=4 iterations=300 yield=0 spin=1");
    let pong = on_cpu1("pong", 16, "role=bench-pong peer=1 port=3 pages=4 iterations=300 yield=0 spin=1");
    // No dom0: ping spins on CPU 0 from the start, and a dom0 there could list the domains
    // only after they are gone.
    let out = smp("smp-bench", &[("guest.elf", &guest), ("a.cfg", &ping), ("b.cfg", &pong)])
        .expect_line("(d1) bench: evtchn_roundtrip iterations=300 ")
        .expect_line("(d1) bench: grant_copy_4k_batched iterations=32 ")
        .expect_line("(d1) bench: grant_map_unmap failures=0")
        .expect_line("No domains left: shutting down.")
        .run();
    let log = &out.log;
    assert!(log.contains("(d2) bench-pong: 300 round trips answered, finish true, 4 of 4 grants revoked"));
    assert!(log.contains("(failed copies 0, last copy verified true)"));
    assert!(log.contains("(d1) guest-kernel: shutdown poweroff"), "ping verified its copies");
    assert!(!log.contains("sched_yield_roundtrip"), "no yield phase with a CPU each");
}

#[test]
fn maxcpus_limits_the_cpus_and_a_domain_pinned_beyond_them_is_refused() {
    // Two virtual CPUs, `maxcpus=1`: only CPU 0 is used; a domU with `cpus = 1` is refused
    // with its reason and the other domU still runs to its end.
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let pinned = on_cpu1("pinned", 16, "role=bystander pages=4 seed=3 ms=100");
    let by = cfg("bystander", 16, "role=bystander pages=32 seed=9 ms=200");
    let bundle = cpio_bundle("smp-maxcpus", &[("guest.elf", &guest), ("a.cfg", &pinned), ("b.cfg", &by)]);
    Scenario::new("smp-maxcpus", Hv::Ours)
        .module(&bundle)
        .qemu_args(&["-smp", "2"])
        .hv_options("maxcpus=1")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("CPUs: 1 online")
        .expect_line("d1 (pinned) from a.cfg: cpus = 1, but 1 CPU(s) are online")
        .expect_line("(d2) bystander: 3 passed, 0 failed")
        .expect_line("No domains left: shutting down.")
        .forbid_line("FAIL")
        .run();
}
