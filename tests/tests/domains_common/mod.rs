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
        .find(|l| l.starts_with(&head) || l.contains(&format!("] {head}")) || l.contains(&head))
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
