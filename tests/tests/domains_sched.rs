//! The credit scheduler's weights on our hypervisor: two CPU-bound domUs (`role=spin`) with
//! `cpu_weight` 256 and 512 run side by side; dom0 (`role=control ratio=1,2`) samples both
//! domains' `getdomaininfo.cpu_time` at two points a few seconds apart while both are
//! runnable and prints the ratio of the deltas, which must be 2.0 within 10%. dom0 also
//! prints the `xl list` table while both run.
//!
//! Ours only: Xen 4.17 cannot boot this bundle (its domUs need a toolstack in dom0).

mod domains_common;

use domains_common::xl_rows;
use scenarios::{cpio_bundle, guest_kernel_image, Hv, Scenario, EXIT_SUCCESS};

#[test]
fn cpu_time_follows_the_weights_256_and_512() {
    let guest = std::fs::read(guest_kernel_image()).unwrap();
    let light =
        b"name = \"light\"\nmemory = 16\nkernel = \"guest.elf\"\ncpu_weight = 256\nextra = \"role=spin ms=6000\"\n";
    let heavy =
        b"name = \"heavy\"\nmemory = 16\nkernel = \"guest.elf\"\ncpu_weight = 512\nextra = \"role=spin ms=6000\"\n";
    let dom0 = b"memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=2 names=light,heavy ratio=1,2 settle_ms=500 window_ms=3000 expect_ratio_milli=2000 unpause=1\"\n";
    let bundle = cpio_bundle(
        "domains-sched",
        &[("guest.elf", &guest), ("dom0.cfg", dom0), ("light.cfg", light), ("heavy.cfg", heavy)],
    );
    let out = Scenario::new("domains-sched", Hv::Ours)
        .module(&bundle)
        .hv_options("console=com1 loglvl=info domu_start=paused")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("d1 (light): created from light.cfg (guest.elf, 16 MiB, weight 256")
        .expect_line("d2 (heavy): created from heavy.cfg (guest.elf, 16 MiB, weight 512")
        .expect_line("control: xl list (both running)")
        .expect_line("control: cpu time over ")
        .expect_line("control: 8 passed, 0 failed")
        .expect_line("Hardware domain shut down")
        .forbid_line("FAIL")
        .run();
    let log = &out.log;
    let line = log.lines().find(|l| l.starts_with("control: cpu time over ")).unwrap();
    // "control: cpu time over W ms: d1 +A ns, d2 +B ns, ratio d2/d1 = R"
    let num = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap().parse().unwrap()
    };
    let (window_ms, a, b) = (num("over "), num("d1 +"), num("d2 +"));
    let ratio = b / a;
    println!("window {window_ms} ms: light {a} ns, heavy {b} ns, ratio {ratio:.3}");
    assert!(window_ms >= 2900.0, "window of {window_ms} ms");
    assert!((1.8..=2.2).contains(&ratio), "CPU time ratio {ratio:.3} is not 2.0 within 10% ({line})");
    // Together the two spinners used nearly the whole window (dom0 sleeps in SCHEDOP_poll).
    let used = (a + b) / (window_ms * 1e6);
    assert!(used > 0.9, "spinners used only {:.0}% of the CPU", used * 100.0);
    assert!((num("ratio d2/d1 = ") - ratio).abs() < 0.002, "printed ratio matches the deltas");
    let rows = xl_rows(log, "both running");
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["Domain-0", "light", "heavy"]);
}
