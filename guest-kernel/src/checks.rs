//! Bookkeeping for the abi-test role: each check prints one line
//! `check: <what> -> <value> ok|FAIL (expected <expectation>)` and is counted.

use core::fmt;

/// Counts passed and failed checks and formats their lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckLog {
    /// Checks that met their expectation.
    pub passed: u32,
    /// Checks that did not.
    pub failed: u32,
}

impl CheckLog {
    /// Records one check and returns its report line (without the newline).
    pub fn record<'a>(
        &mut self,
        what: &'a str,
        value: fmt::Arguments<'a>,
        expected: &'a str,
        ok: bool,
    ) -> CheckLine<'a> {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        CheckLine { what, value, expected, ok }
    }

    /// Whether every check so far passed (and at least one ran).
    pub fn all_passed(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

/// One formatted check result.
pub struct CheckLine<'a> {
    what: &'a str,
    value: fmt::Arguments<'a>,
    expected: &'a str,
    ok: bool,
}

impl fmt::Display for CheckLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok {
            write!(f, "check: {} -> {} ok", self.what, self.value)
        } else {
            write!(f, "check: {} -> {} FAIL (expected {})", self.what, self.value, self.expected)
        }
    }
}

/// Formats a raw hypercall return value as `0`, `4096` or `-38 (ENOSYS)`.
pub struct Ret(pub i64);

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match hypercall_abi::Errno::check(self.0) {
            Ok(v) => write!(f, "{v}"),
            Err(e) => write!(f, "{e}"),
        }
    }
}

/// Formats a wrapper's `Result` the same way as [`Ret`].
pub fn ret_of(r: Result<u64, hypercall_abi::Errno>) -> Ret {
    Ret(match r {
        Ok(v) => v as i64,
        Err(e) => e.to_return(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn lines_and_counts() {
        let mut log = CheckLog::default();
        let l = format!("{}", log.record("unknown hypercall", format_args!("{}", Ret(-38)), "-38", true));
        assert_eq!(l, "check: unknown hypercall -> -38 (ENOSYS) ok");
        let l = format!("{}", log.record("pagesize", format_args!("{}", Ret(8192)), "4096", false));
        assert_eq!(l, "check: pagesize -> 8192 FAIL (expected 4096)");
        assert_eq!((log.passed, log.failed), (1, 1));
        assert!(!log.all_passed());
    }

    #[test]
    fn empty_log_is_not_a_pass() {
        assert!(!CheckLog::default().all_passed());
    }
}
