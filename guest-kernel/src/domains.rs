//! Generic logic of the multi-domain roles (host-tested): the data patterns domains exchange
//! and verify, the `xl list`-style table dom0 prints from `getdomaininfo`, the domain names
//! dom0 learns from its command line, the CPU-time ratio of the weighted scenario and the
//! names of Xen's `GNTST_*` codes.

use core::fmt;

use hypercall_abi::domctl::{
    XEN_DOMINF_BLOCKED, XEN_DOMINF_DYING, XEN_DOMINF_PAUSED, XEN_DOMINF_RUNNING, XEN_DOMINF_SHUTDOWN,
};
use hypercall_abi::sched::SHUTDOWN_CRASH;

/// Byte `offset` of page `page` of the pattern `seed` (a cheap 64-bit mix, so neighbouring
/// pages and seeds differ everywhere).
pub fn pattern_byte(seed: u64, page: u64, offset: u64) -> u8 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(page << 16 | offset);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x as u8
}

/// Fills `buf` with page `page` of pattern `seed`.
pub fn fill_pattern(buf: &mut [u8], seed: u64, page: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(seed, page, i as u64);
    }
}

/// How many bytes of `buf` equal page `page` of pattern `seed`.
pub fn count_matching(buf: &[u8], seed: u64, page: u64) -> usize {
    buf.iter().enumerate().filter(|&(i, &b)| b == pattern_byte(seed, page, i as u64)).count()
}

/// The seed of the reply a sink writes back for a source's `seed` (so a reply can never be
/// mistaken for an echo of the source's own pages).
pub const fn reply_seed(seed: u64) -> u64 {
    seed ^ 0x5a5a_0000_0000_a5a5
}

/// `xl list`'s six state letters (`r b p s c d`) from `XEN_DOMINF_*` flags; the shutdown
/// code is in bits 16-23 (crash = `c`, other reasons = `s`).
pub fn state_letters(flags: u32) -> [u8; 6] {
    let mut s = *b"------";
    let code = (flags >> 16) & 0xff;
    if flags & XEN_DOMINF_RUNNING != 0 {
        s[0] = b'r';
    }
    if flags & XEN_DOMINF_BLOCKED != 0 {
        s[1] = b'b';
    }
    if flags & XEN_DOMINF_PAUSED != 0 {
        s[2] = b'p';
    }
    if flags & XEN_DOMINF_SHUTDOWN != 0 {
        if code == SHUTDOWN_CRASH {
            s[4] = b'c';
        } else {
            s[3] = b's';
        }
    }
    if flags & XEN_DOMINF_DYING != 0 {
        s[5] = b'd';
    }
    s
}

/// The name of domain `id`: `Domain-0` for 0, else the `id`-th entry (from 1) of the
/// comma-separated `names` list dom0 got on its command line, else `None`.
pub fn name_of(names: Option<&str>, id: u16) -> Option<&str> {
    if id == 0 {
        return Some("Domain-0");
    }
    names?.split(',').nth(id as usize - 1).filter(|n| !n.is_empty())
}

/// The header of the table, as `xl list` prints it.
pub const XL_HEADER: &str = "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlRow<'a> {
    /// Domain name (or `domN` when unknown).
    pub name: Option<&'a str>,
    /// Domain id.
    pub id: u16,
    /// Memory in pages (shown in MiB).
    pub tot_pages: u64,
    /// Online vCPUs.
    pub vcpus: u32,
    /// `XEN_DOMINF_*` flags.
    pub flags: u32,
    /// CPU time in ns (shown in seconds with three decimals).
    pub cpu_time_ns: u64,
}

impl fmt::Display for XlRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut unnamed = [0u8; 8];
        let name = match self.name {
            Some(n) => n,
            None => {
                let mut w = crate::console::FixedWriter::new(&mut unnamed);
                let _ = fmt::write(&mut w, format_args!("dom{}", self.id));
                let len = w.as_bytes().len();
                core::str::from_utf8(&unnamed[..len]).unwrap_or("?")
            }
        };
        let state = state_letters(self.flags);
        let ms = self.cpu_time_ns / 1_000_000;
        write!(
            f,
            "{:<40} {:>5} {:>5} {:>5}     {}  {:>5}.{:03}",
            name,
            self.id,
            self.tot_pages * 4 / 1024,
            self.vcpus,
            core::str::from_utf8(&state).unwrap_or("??????"),
            ms / 1000,
            ms % 1000
        )
    }
}

/// `b / a` in thousandths (0 if `a` is 0).
pub fn ratio_milli(a: u64, b: u64) -> u64 {
    if a == 0 {
        return 0;
    }
    ((b as u128 * 1000) / a as u128) as u64
}

/// Whether `milli` (a ratio in thousandths) is within `percent` % of `target_milli`.
pub fn within_percent(milli: u64, target_milli: u64, percent: u64) -> bool {
    milli.abs_diff(target_milli) * 100 <= target_milli * percent
}

/// `GNTST_*` as a name, for check lines.
pub fn gntst_name(st: i16) -> &'static str {
    match st {
        0 => "GNTST_okay",
        -1 => "GNTST_general_error",
        -2 => "GNTST_bad_domain",
        -3 => "GNTST_bad_gntref",
        -4 => "GNTST_bad_handle",
        -5 => "GNTST_bad_virt_addr",
        -6 => "GNTST_bad_dev_addr",
        -7 => "GNTST_no_device_space",
        -8 => "GNTST_permission_denied",
        -9 => "GNTST_bad_page",
        -10 => "GNTST_bad_copy_arg",
        -11 => "GNTST_address_too_big",
        -12 => "GNTST_eagain",
        -13 => "GNTST_no_space",
        _ => "hypercall error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn patterns_differ_by_seed_page_and_offset_and_verify() {
        let mut a = [0u8; 4096];
        fill_pattern(&mut a, 7, 0);
        assert_eq!(count_matching(&a, 7, 0), 4096);
        assert!(count_matching(&a, 7, 1) < 64, "page 1 differs");
        assert!(count_matching(&a, 8, 0) < 64, "seed 8 differs");
        assert!(count_matching(&a, reply_seed(7), 0) < 64, "reply differs");
        a[100] ^= 1;
        assert_eq!(count_matching(&a, 7, 0), 4095);
        let distinct = a.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 200, "bytes are spread ({distinct})");
    }

    #[test]
    fn state_letters_follow_xl() {
        assert_eq!(&state_letters(XEN_DOMINF_RUNNING), b"r-----");
        assert_eq!(&state_letters(XEN_DOMINF_BLOCKED), b"-b----");
        assert_eq!(&state_letters(XEN_DOMINF_PAUSED | XEN_DOMINF_BLOCKED), b"-bp---");
        assert_eq!(&state_letters(XEN_DOMINF_SHUTDOWN), b"---s--");
        assert_eq!(&state_letters(XEN_DOMINF_SHUTDOWN | XEN_DOMINF_DYING | (3 << 16)), b"----cd");
    }

    #[test]
    fn names_from_the_command_line() {
        assert_eq!(name_of(None, 0), Some("Domain-0"));
        assert_eq!(name_of(Some("alpha,beta"), 1), Some("alpha"));
        assert_eq!(name_of(Some("alpha,beta"), 2), Some("beta"));
        assert_eq!(name_of(Some("alpha,beta"), 3), None);
        assert_eq!(name_of(Some("alpha,,gamma"), 2), None);
        assert_eq!(name_of(None, 4), None);
    }

    #[test]
    fn rows_look_like_xl_list() {
        let row = XlRow {
            name: Some("Domain-0"),
            id: 0,
            tot_pages: 8192,
            vcpus: 1,
            flags: XEN_DOMINF_RUNNING,
            cpu_time_ns: 1_234_567_890,
        };
        assert_eq!(format!("{row}"), format!("{:<40}     0    32     1     r-----      1.234", "Domain-0"));
        let anon = XlRow { name: None, id: 3, ..row };
        assert!(format!("{anon}").starts_with("dom3 "));
    }

    #[test]
    fn grant_status_names() {
        assert_eq!(gntst_name(0), "GNTST_okay");
        assert_eq!(gntst_name(-8), "GNTST_permission_denied");
        assert_eq!(gntst_name(-13), "GNTST_no_space");
        assert_eq!(gntst_name(-38), "hypercall error");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio_milli(100, 200), 2000);
        assert_eq!(ratio_milli(0, 5), 0);
        assert_eq!(ratio_milli(3, 7), 2333);
        assert!(within_percent(2150, 2000, 10));
        assert!(within_percent(1800, 2000, 10));
        assert!(!within_percent(2201, 2000, 10));
        assert!(!within_percent(1799, 2000, 10));
    }
}
