//! Boot-time creation of several domains from a cpio bundle of xl.cfg configs, with the
//! assembly guest fixture as every domain.

use scenarios::{assert_every_frame_returned, cpio_bundle, mini_guest_image, Hv, Scenario, EXIT_FAILURE, EXIT_SUCCESS};

#[test]
fn domus_from_a_bundle_run_and_a_bad_config_is_refused_by_file_and_line() {
    let mini = std::fs::read(mini_guest_image()).unwrap();
    let bundle = cpio_bundle(
        "bundle-domus",
        &[
            ("mini.elf", &mini),
            ("alpha.cfg", b"name = \"alpha\"\nmemory = 16\nkernel = \"mini.elf\"\nextra = \"hello alpha\"\n"),
            ("beta.cfg", b"# a comment\nname = 'beta'\nmemory = 24\nkernel = \"mini.elf\"\ncpu_weight = 512\n"),
            ("broken.cfg", b"name = \"broken\"\nmemory = lots\nkernel = \"mini.elf\"\n"),
            ("missing.cfg", b"name = \"missing\"\nkernel = \"nowhere.elf\"\n"),
        ],
    );
    let out = Scenario::new("bundle-domus", Hv::Ours)
        .module(&bundle)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("Module 0: cpio archive, 5 members")
        .expect_line(
            "d1 (alpha): created from alpha.cfg (mini.elf, 16 MiB, weight 256, CPU 0, command line \"hello alpha\")",
        )
        .expect_line("d2 (beta): created from beta.cfg (mini.elf, 24 MiB, weight 512")
        .expect_line("domain config refused: broken.cfg:2:")
        .expect_line("domain config refused: missing.cfg")
        .expect_line("No domains left: shutting down.")
        .run();
    for (d, name) in [("d1", "alpha"), ("d2", "beta")] {
        assert!(out.log.contains(&format!("({d}) mini guest: ENOSYS and EFAULT checks passed")), "{d} did not finish");
        assert!(out.log.contains(&format!("{d}: shutdown requested: reason 0 (poweroff)")));
        assert!(out.log.contains(&format!("{d} ({name}): destroyed, ")), "{d} not torn down");
    }
    assert!(!out.log.contains(scenarios::FRAMES_KEPT), "every frame of a dead domain must return to the allocator");
    assert_every_frame_returned(&out.log);
}

#[test]
fn dom0_from_a_bundle_is_the_privileged_domain() {
    let mini = std::fs::read(mini_guest_image()).unwrap();
    let bundle = cpio_bundle(
        "bundle-dom0",
        &[("mini.elf", &mini), ("dom0.cfg", b"memory = 32\nkernel = \"mini.elf\"\nextra = \"i am dom0\"\n")],
    );
    Scenario::new("bundle-dom0", Hv::Ours)
        .module(&bundle)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("d0 (Domain-0): created from dom0.cfg (mini.elf, 32 MiB")
        .expect_line("mini guest: ENOSYS and EFAULT checks passed")
        .expect_line("Hardware domain shut down: ending the machine (success).")
        .run();
}

#[test]
fn a_bundle_without_any_usable_config_fails() {
    let bundle = cpio_bundle("bundle-empty", &[("readme.txt", b"no configs here")]);
    Scenario::new("bundle-empty", Hv::Ours)
        .module(&bundle)
        .expect_exit(EXIT_FAILURE)
        .expect_line("boot bundle holds no *.cfg domain configuration")
        .run();
}

/// Two 64 MiB domUs on a 128 MiB machine, the first made to fail registering by `fault`:
/// only one fits at a time, so the second starts only if the first gave every frame back.
fn half_made_domain_gives_every_frame_back(fault: &str, failed_step: &str, freed_at_failure: u32) {
    let mini = std::fs::read(mini_guest_image()).unwrap();
    let name = format!("bundle-half-made-{fault}");
    let bundle = cpio_bundle(
        &name,
        &[
            ("mini.elf", &mini),
            ("a.cfg", b"name = \"big1\"\nmemory = 64\nkernel = \"mini.elf\"\n"),
            ("b.cfg", b"name = \"big2\"\nmemory = 64\nkernel = \"mini.elf\"\n"),
        ],
    );
    let out = Scenario::new(&name, Hv::Ours)
        .module(&bundle)
        .memory_mib(128)
        .hv_options(&format!("console=com1 loglvl=info hv_debug={fault}"))
        .expect_exit(EXIT_SUCCESS)
        .expect_line("(injected)")
        .expect_line(&format!("d1 (big1): destroyed, {freed_at_failure} frames returned"))
        .expect_line(&format!("d1 (big1) from a.cfg: {failed_step}"))
        .expect_line("d2 (big2): created from b.cfg (mini.elf, 64 MiB")
        .expect_line("(d2) mini guest: ENOSYS and EFAULT checks passed")
        .expect_line("d2 (big2): destroyed, 16386 frames returned")
        .expect_line("No domains left: shutting down.")
        .run();
    assert!(!out.log.contains(scenarios::FRAMES_KEPT), "every frame of the half-made domain must return");
    // Including the frames never assigned and the builder's page-list holders.
    assert_every_frame_returned(&out.log);
    // A 64 MiB domain is torn down in bounded steps, not in one go.
    let steps = out
        .log
        .lines()
        .find_map(|l| l.split("d2 (big2): destroyed, ").nth(1)?.split(" us (").nth(1)?.strip_suffix(" steps)"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .expect("d2's teardown line gives its steps");
    assert!(steps >= 8, "a 64 MiB teardown in {steps} steps");
}

#[test]
fn a_domain_refused_at_its_grant_table_gives_every_frame_back() {
    // Every frame assigned and its page tables validated before the failure; 16 384 frames
    // and shared_info come back through the teardown.
    half_made_domain_gives_every_frame_back("fail_domain_grants", "grant table (-12 (ENOMEM))", 16385);
}

#[test]
fn a_domain_refused_half_way_through_its_frames_gives_every_frame_back() {
    // Half its frames assigned: those (and shared_info, not yet shared) come back through the
    // teardown, the other half straight to the allocator.
    half_made_domain_gives_every_frame_back("fail_domain_frames", "frame assignment (-12 (ENOMEM))", 8193);
}

#[test]
fn a_domain_on_an_offline_cpu_is_refused_before_it_is_built_and_the_others_start() {
    // A 5 GiB domU pinned to a CPU the machine lacks: refused before the build takes its
    // frames (its page list alone is 10 MiB of the 16 MiB heap, which once had to be copied
    // to refuse it), and the small domain after it still starts.
    let mini = std::fs::read(mini_guest_image()).unwrap();
    let bundle = cpio_bundle(
        "bundle-offline-cpu",
        &[
            ("mini.elf", &mini),
            ("a.cfg", b"name = \"big\"\nmemory = 5120\nkernel = \"mini.elf\"\ncpus = 1\n"),
            ("b.cfg", b"name = \"small\"\nmemory = 16\nkernel = \"mini.elf\"\n"),
        ],
    );
    let out = Scenario::new("bundle-offline-cpu", Hv::Ours)
        .module(&bundle)
        .memory_mib(8192)
        .qemu_args(&["-smp", "1"])
        .expect_exit(EXIT_SUCCESS)
        .expect_line("d1 (big) from a.cfg: cpus = 1, but 1 CPU(s) are online")
        .expect_line("d2 (small): created from b.cfg")
        .expect_line("(d2) mini guest: ENOSYS and EFAULT checks passed")
        .forbid_line("PANIC")
        .run();
    assert!(!out.log.contains("d1 (big): created"));
    assert_every_frame_returned(&out.log);
}
