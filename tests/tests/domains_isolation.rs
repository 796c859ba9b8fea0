//! Isolation on our hypervisor, one scenario per attack: a victim domU (d1), an attacker
//! (d2) and a bystander (d3), with dom0 (`role=control`) watching them go. Each attack
//! prints the errno or `GNTST_*` code it observed; the victim then checks its secret pages
//! byte for byte, its grants and its ports, and the bystander its own memory.
//!
//! * map: the attacker maps the victim's frames (their MFNs "leaked" through a grant) with
//!   `update_va_mapping`, `mmu_update`, `MMUEXT_PIN_L1_TABLE`, and copies them by frame
//!   number with `GNTTABOP_copy`;
//! * grant: forged and reused grant references and handles;
//! * evtchn: ports the attacker does not own, the victim's ports meant for others;
//! * flood: the attacker exhausts its own ports and asks for more grant frames and memory,
//!   then floods hypercalls forever; the others finish and dom0 pauses and destroys it.
//!
//! Ours only: Xen 4.17 cannot boot this bundle (its domUs need a toolstack in dom0).

mod domains_common;

use domains_common::{attack_bundle, check_value, xl_rows};
use scenarios::{Hv, Outcome, Scenario, EXIT_SUCCESS};

fn attack(name: &str, role: &str, dom0_extra: &str, bystander_ms: u32, attacker_passed: u32) -> Outcome {
    let bundle = attack_bundle(name, role, "", dom0_extra, bystander_ms);
    let s = Scenario::new(name, Hv::Ours)
        .module(&bundle)
        .hv_options("console=com1 loglvl=info domu_start=paused")
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .forbid_line("FAIL")
        .forbid_line(scenarios::FRAMES_KEPT)
        .expect_line("control: xl list (before)");
    let out = s.expect_line("control: xl list (after)").expect_line("Hardware domain shut down").run();
    let log = &out.log;
    // The domUs end in any order.
    if attacker_passed > 0 {
        assert!(log.contains(&format!("(d2) {role}: {attacker_passed} passed, 0 failed")), "attacker summary");
    }
    assert!(log.contains("(d1) victim: 6 passed, 0 failed"), "victim summary");
    assert!(log.contains("(d3) bystander: 3 passed, 0 failed"), "bystander summary");
    assert_eq!(xl_rows(log, "before").len(), 4);
    assert_eq!(
        check_value(log, "d1", "attacker's phase 1 over: revoke ref 9, acknowledge"),
        "event true, revoke Ok(5), send 0"
    );
    assert_eq!(
        check_value(log, "d1", "secret pages after the attack"),
        "attacker done true, 16384 of 16384 bytes equal"
    );
    assert_eq!(check_value(log, "d1", "our grants 8 and 10 after the attack"), "flags 0x5 0x5, revoke Ok(5) Ok(5)");
    assert_eq!(check_value(log, "d1", "the friend's port after the attack"), "Ok((1, 3))");
    assert_eq!(
        check_value(log, "d3", "own memory after the others ran"),
        format!("131072 of 131072 bytes equal after {bystander_ms} ms")
    );
    assert!(check_value(log, "", "domUs gone (VIRQ_DOM_EXC received)").starts_with("3 gone, 0 left"));
    out
}

#[test]
fn a_domu_cannot_map_or_copy_another_domains_frames() {
    let out = attack("domains-attack-map", "attack-map", "", 500, 10);
    let log = &out.log;
    assert_eq!(check_value(log, "d2", "copy the victim's directory grant (legitimate)"), "status 0, 4 frames");
    assert_eq!(
        check_value(log, "d2", "update_va_mapping of the victim's frames (RW and RO)"),
        "8 tries, 8 refused with -16 (EBUSY), first -16 (EBUSY)"
    );
    assert_eq!(
        check_value(log, "d2", "mmu_update of a PTE to each victim frame"),
        "our L1 pinned 0, 4 tries, first -16 (EBUSY)"
    );
    assert_eq!(check_value(log, "d2", "MMUEXT_PIN_L1_TABLE of each victim frame"), "4 tries, first -22 (EINVAL)");
    assert_eq!(check_value(log, "d2", "mmu_update naming the victim as page owner"), "-1 (EPERM), 0 done");
    assert_eq!(
        check_value(log, "d2", "mmuext_op naming the victim or DOMID_IO as page owner"),
        "-1 (EPERM) and -1 (EPERM)"
    );
    assert_eq!(
        check_value(log, "d2", "GNTTABOP_copy from a victim frame number, naming the victim"),
        "4 tries, first -8 (GNTST_permission_denied)"
    );
    assert_eq!(
        check_value(log, "d2", "GNTTABOP_copy from a victim frame number as DOMID_SELF"),
        "4 tries, first -9 (GNTST_bad_page)"
    );
}

#[test]
fn a_domu_cannot_forge_or_reuse_grants() {
    let out = attack("domains-attack-grant", "attack-grant", "", 500, 15);
    let log = &out.log;
    let want = [
        ("map ref 9 read-only (legitimate), read, unmap", "status 0, 4096 bytes, unmap 0"),
        ("map ref 9 writable (granted read-only)", "-1 (GNTST_general_error)"),
        ("map ref 10 (granted to another domain)", "-1 (GNTST_general_error)"),
        ("map ref 12 (never granted)", "-1 (GNTST_general_error)"),
        ("map ref 100000 (beyond the table)", "-3 (GNTST_bad_gntref)"),
        ("map ref 9 of domain 77 (no such domain)", "-2 (GNTST_bad_domain)"),
        ("copy from ref 10 (granted to another domain)", "-1 (GNTST_general_error)"),
        ("copy from ref 100000 (beyond the table)", "-3 (GNTST_bad_gntref)"),
        ("unmap a forged handle 777", "-4 (GNTST_bad_handle)"),
        ("reuse: map ref 9 after its revocation", "-1 (GNTST_general_error)"),
        ("reuse: unmap with the stale handle", "-4 (GNTST_bad_handle)"),
        ("reuse: copy from ref 9 after its revocation", "-1 (GNTST_general_error)"),
    ];
    for (what, value) in want {
        assert_eq!(check_value(log, "d2", what), value, "{what}");
    }
}

#[test]
fn a_domu_cannot_use_ports_it_does_not_own() {
    let out = attack("domains-attack-evtchn", "attack-evtchn", "", 500, 14);
    let log = &out.log;
    let want = [
        ("send on port 5 (not allocated)", "-22 (EINVAL)"),
        ("send on port 5000 (beyond the 2-level ABI)", "-22 (EINVAL)"),
        ("close port 5 (not allocated)", "-22 (EINVAL)"),
        ("unmask port 5000", "-22 (EINVAL)"),
        ("bind the victim's port meant for another domain", "-22 (EINVAL)"),
        ("bind the victim's port 3 a second time", "-22 (EINVAL)"),
        ("bind the victim's xenstore port 1 (for dom0)", "-22 (EINVAL)"),
        ("alloc_unbound in the victim's table", "-1 (EPERM)"),
        ("status of the victim's port 3", "-1 (EPERM)"),
        ("reset of the victim's ports", "-1 (EPERM)"),
        ("read the console", "-1 (EPERM)"),
    ];
    for (what, value) in want {
        let got = check_value(log, "d2", what);
        assert!(got.starts_with(value), "{what}: {got}");
    }
    // The forged line came out as one of d2's, its control characters dropped (the harness
    // drops carriage returns from the log, so the escape byte is what shows).
    assert!(log.contains("\n(d2) (hv) d0 (Domain-0): forged by d2[2J\n"), "forged line not contained");
    assert!(
        !log.contains("\n(hv) d0 (Domain-0): forged") && !log.contains('\x1b'),
        "raw control bytes reached the console"
    );
}

#[test]
fn a_hypercall_flood_is_contained_and_dom0_destroys_the_flooder() {
    let out = attack("domains-attack-flood", "attack-flood", "kill=2", 1500, 0);
    let log = &out.log;
    assert!(log.contains("(d2) attack-flood: 6 passed, 0 failed; flooding"), "flood phase not reached");
    let ports = check_value(log, "d2", "alloc_unbound until refused");
    assert!(ports.ends_with("ports, then -28 (ENOSPC)"), "{ports}");
    assert_eq!(check_value(log, "d2", "setup_table of 4096 grant frames"), "-1 (GNTST_general_error)");
    // At its limit (maxmem = memory): 0 extents, as Xen answers, and no page gained.
    let inc = check_value(log, "d2", "increase_reservation of 64 pages beyond our allocation");
    assert_eq!(inc, "0, pages 4096 -> 4096");
    let balloon = check_value(log, "d2", "balloon out a page written with a pattern, populate one back, map it");
    assert_eq!(balloon, "0, 1 freed, 1 given, zero-filled true, pages 4096 -> 4095 -> 4096");
    assert!(check_value(log, "", "domctl pausedomain, then getdomaininfo flags").starts_with("0, flags 0x"));
    assert!(check_value(log, "", "domctl destroydomain, then getdomaininfo").starts_with("0, next listed"));
    assert!(log.contains("control: d2 (attacker) is gone"));
    // Each refused mmu_update of the flood would log a line; the console lets 10 through
    // per 5 s (Xen's printk_ratelimit) and counts the rest.
    let refusals = log.matches("WARNING: d2: mmu_update: page-table update in a frame the domain does not own").count();
    assert!((1..=2 * 10).contains(&refusals), "{refusals} refusal lines");
}

#[test]
fn dom0_shuts_a_flooder_down_with_remote_shutdown() {
    // As the flood above, but dom0 ends the flooder with SCHEDOP_remote_shutdown (xl shutdown's
    // hypercall): the call returns at once and the domain is torn down.
    let out = attack("domains-attack-flood-shutdown", "attack-flood", "kill_shutdown=2", 1500, 0);
    let log = &out.log;
    assert!(log.contains("(d2) attack-flood: 6 passed, 0 failed; flooding"), "flood phase not reached");
    assert_eq!(check_value(log, "", "sched_op remote_shutdown"), "0");
    assert!(log.contains("d2: shut down by d0: reason 0"));
    assert!(log.contains("control: d2 (attacker) is gone"));
}

#[test]
fn many_domus_taking_all_their_bookkeeping_cannot_exhaust_the_hypervisor_heap() {
    // Each domU allocates ports until refused, sets up a 64-frame grant table and maps
    // its own grants for devices until refused: about a megabyte of the hypervisor's heap
    // each if nothing stopped them, and 24 of them are more than its 16 MiB. The
    // hypervisor refuses growth with Xen's codes once its heap would fall below its own
    // reserve; nothing panics, and every domU unmaps and ends.
    let guest = std::fs::read(scenarios::guest_kernel_image()).unwrap();
    const DOMUS: u16 = 24;
    let configs: Vec<(String, Vec<u8>)> = (1..=DOMUS)
        .map(|id| {
            (
                format!("f{id:02}.cfg"),
                domains_common::cfg(&format!("f{id:02}"), 12, &format!("role=heap-flood self={id}")),
            )
        })
        .collect();
    let mut members: Vec<(&str, &[u8])> = vec![("guest.elf", &guest)];
    members.extend(configs.iter().map(|(f, c)| (f.as_str(), c.as_slice())));
    let bundle = scenarios::cpio_bundle("heap-flood", &members);
    let out = Scenario::new("heap-flood", Hv::Ours)
        .module(&bundle)
        .memory_mib(512)
        .timeout_secs(240)
        .expect_exit(EXIT_SUCCESS)
        .forbid_line("FAIL")
        .expect_line("No domains left")
        .run();
    let log = &out.log;
    // No dom0 here: a domU's pausedomain(0) finds no domain before its right is checked.
    assert_eq!(
        check_value(log, "d1", "domctl getdomaininfo(0) and pausedomain(0) from a domU"),
        "-1 (EPERM), -3 (ESRCH)"
    );
    let mut mapped = Vec::new();
    for id in 1..=DOMUS {
        assert!(log.contains(&format!("(d{id}) heap-flood: 6 passed, 0 failed")), "d{id} summary");
        let head = format!("(d{id}) heap-flood: ");
        let line = log.lines().find(|l| l.starts_with(&head) && l.contains("grant device mappings")).expect("count");
        mapped.push(line[head.len()..].split(' ').next().unwrap().parse::<u32>().unwrap());
    }
    // The heap's share for guests, not only each domain's own limit (16 384 handles),
    // stopped some of them.
    assert!(mapped.iter().any(|&n| n < 16384), "no domain was held to the heap's share: {mapped:?}");
    assert!(log.contains("the hypervisor heap is at its guests' share"));
    scenarios::assert_every_frame_returned(log);
    // The ~14 MiB of bookkeeping went back with the domains (what stays is the capacity of
    // tables indexed by domain id).
    let heap = log.lines().find_map(|l| l.split("Heap in use: ").nth(1)).expect("heap line");
    let kib: u64 = heap.split(' ').next().unwrap().parse().unwrap();
    assert!(kib < 256, "heap still in use after the domains: {heap}");
}

#[test]
fn each_domain_keeps_its_own_segment_selectors_and_bases() {
    // Two domUs on one CPU, no dom0: each starts with null data selectors, loads its own
    // (they differ) and points %fs and %gs at words of its own, then yields to the other
    // 200 times, checking all of it after each yield.
    let guest = std::fs::read(scenarios::guest_kernel_image()).unwrap();
    let a = domains_common::cfg("seg1", 16, "role=segments self=1 rounds=200");
    let b = domains_common::cfg("seg2", 16, "role=segments self=2 rounds=200");
    let bundle = scenarios::cpio_bundle("segments", &[("guest.elf", &guest), ("seg1.cfg", &a), ("seg2.cfg", &b)]);
    let out = Scenario::new("segments", Hv::Ours)
        .module(&bundle)
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .forbid_line("FAIL")
        .expect_line("No domains left")
        .run();
    let log = &out.log;
    // The yields did switch between them: both had started before either finished its rounds.
    let at = |line: &str| log.find(line).unwrap_or_else(|| panic!("no '{line}'"));
    let started = at("(d1) check: data selectors").max(at("(d2) check: data selectors"));
    let finished = at("(d1) check: own selectors").min(at("(d2) check: own selectors"));
    assert!(started < finished, "one domain ran all its rounds before the other started");
    for d in ["d1", "d2"] {
        assert!(log.contains(&format!("({d}) segments: 3 passed, 0 failed")), "{d} summary");
        assert_eq!(check_value(log, d, "data selectors of a new domain"), "0x0 0x0 0x0 0x0");
        let kept = check_value(log, d, "own selectors and FS/GS bases across yields to other domains");
        assert!(kept.starts_with("0, 0, 200 of 200 rounds intact"), "{d}: {kept}");
    }
}
