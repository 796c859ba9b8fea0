//! Helpers shared by the `domains_*` scenarios: guest-kernel domU configs and parsers for
//! the guests' `check:` lines and dom0's `xl list` table.
#![allow(dead_code)]

/// A domU config for the guest kernel.
pub fn cfg(name: &str, mib: u32, extra: &str) -> Vec<u8> {
    format!("name = \"{name}\"\nmemory = {mib}\nkernel = \"guest.elf\"\nextra = \"{extra}\"\n").into_bytes()
}

/// The check line `check: <what> -> <value> ok` of domain `dom` ("" for dom0): its value.
pub fn check_value<'a>(log: &'a str, dom: &str, what: &str) -> &'a str {
    let prefix = if dom.is_empty() { String::new() } else { format!("({dom}) ") };
    let head = format!("{prefix}check: {what} -> ");
    let line = log
        .lines()
        // dom0's lines have no "(dN) " prefix: only a line that starts with the check (or
        // follows a timestamp) is dom0's, not a domU line with the same words.
        .find(|l| l.starts_with(&head) || l.contains(&format!("] {head}")) || (!dom.is_empty() && l.contains(&head)))
        .unwrap_or_else(|| panic!("no check line '{head}'"));
    let v = &line[line.find(&head).unwrap() + head.len()..];
    assert!(v.ends_with(" ok"), "check failed: {line}");
    &v[..v.len() - 3]
}

/// The rows of the `xl list` table printed after `control: xl list (<when>)`:
/// (name, id, mem MiB, state, cpu seconds).
pub fn xl_rows(log: &str, when: &str) -> Vec<(String, u16, u64, String, f64)> {
    let mut lines = log.lines().skip_while(|l| !l.contains(&format!("control: xl list ({when})")));
    lines.next();
    assert!(lines.next().is_some_and(|h| h.starts_with("Name") && h.contains("Time(s)")), "no header");
    let mut rows = Vec::new();
    // Lines of other domains and of the hypervisor ("(d2) ...", "(hv) ...") may interleave.
    for l in lines.filter(|l| !l.starts_with('(')) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 6 || f[1].parse::<u16>().is_err() {
            break;
        }
        rows.push((
            f[0].to_string(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[4].to_string(),
            f[5].parse().unwrap(),
        ));
    }
    rows
}

/// The grant-source (d1) and grant-sink (d2) exchange, byte for byte in both directions, and
/// the bystander (d3, `ms=500`) finding its memory intact.
pub fn assert_exchanged(log: &str) {
    assert_eq!(check_value(log, "d1", "alloc_unbound for the sink"), "3");
    assert!(check_value(log, "d2", "bind_interdomain, then status").starts_with("local port 3, status Ok((2, 1, 3))"));
    assert_eq!(
        check_value(log, "d2", "map each grant read-only, compare byte for byte, unmap"),
        "statuses sum 0, 16384 of 16384 bytes equal"
    );
    assert_eq!(check_value(log, "d2", "writable map of a read-only grant"), "-1 (GNTST_general_error)");
    assert_eq!(
        check_value(log, "d2", "GNTTABOP_copy of each grant, compare"),
        "statuses sum 0, 16384 of 16384 bytes equal"
    );
    assert_eq!(check_value(log, "d1", "event from the sink"), "true");
    assert_eq!(
        check_value(log, "d1", "map the sink's reply grant, compare, unmap"),
        "status 0, 4096 of 4096 bytes equal, unmap 0"
    );
    assert_eq!(check_value(log, "d1", "GNTTABOP_copy of the sink's reply"), "status 0, 4096 of 4096 bytes equal");
    assert_eq!(check_value(log, "d1", "revoke our grants (the sink unmapped them all)"), "4 of 4");
    assert_eq!(check_value(log, "d3", "own memory after the others ran"), "131072 of 131072 bytes equal after 500 ms");
}

/// After the crasher (d2) died holding the survivor's (d1) port and a writable mapping of its
/// grant: the port is unbound again, the grant no longer in use, the page holds the
/// crasher's marker and nothing else changed; the bystander (d3, `ms=1500`) is intact.
pub fn assert_crash_contained(log: &str) {
    for l in ["(d1) survivor: 6 passed, 0 failed", "(d3) bystander: 3 passed, 0 failed"] {
        assert!(log.contains(l), "missing: {l}");
    }
    assert_eq!(
        check_value(log, "d1", "the peer bound our port and mapped our grant"),
        "event true, status Ok(2), flags 0x19"
    );
    assert_eq!(check_value(log, "d1", "our port after the peer died"), "Ok(1)");
    assert_eq!(check_value(log, "d1", "our grant after the peer died"), "flags 0x1, revoke Ok(1)");
    assert_eq!(
        check_value(log, "d1", "our page: the peer's marker, the rest untouched"),
        "marker 0xdeadbeef00000002, 4088 of 4088 bytes equal"
    );
    assert_eq!(check_value(log, "d3", "own memory after the others ran"), "131072 of 131072 bytes equal after 1500 ms");
}

/// The isolation bundle: dom0 (`role=control`, unpausing the domUs, plus `dom0_extra`), a
/// victim (d1), an attacker (d2, `role=ROLE`, its config ending with `attacker_cfg_extra`)
/// and a bystander (d3) working for `bystander_ms`.
pub fn attack_bundle(
    name: &str,
    role: &str,
    attacker_cfg_extra: &str,
    dom0_extra: &str,
    bystander_ms: u32,
) -> std::path::PathBuf {
    let guest = std::fs::read(scenarios::guest_kernel_image()).unwrap();
    let victim = cfg("victim", 16, "role=victim attacker=2 friend=3 seed=11 pages=4");
    let mut attacker = cfg("attacker", 16, &format!("role={role} victim=1 port=3 seed=11"));
    attacker.extend_from_slice(attacker_cfg_extra.as_bytes());
    let by = cfg("bystander", 16, &format!("role=bystander pages=32 seed=9 ms={bystander_ms}"));
    let dom0 = format!(
        "memory = 32\nkernel = \"guest.elf\"\nextra = \"role=control expect=3 names=victim,attacker,bystander unpause=1 {dom0_extra}\"\n"
    );
    scenarios::cpio_bundle(
        name,
        &[
            ("guest.elf", &guest),
            ("dom0.cfg", dom0.as_bytes()),
            ("a.cfg", &victim),
            ("b.cfg", &attacker),
            ("c.cfg", &by),
        ],
    )
}
