//! Rate limiting of the log lines guests can cause (Xen's `printk_ratelimit`): a refused
//! hypercall logs why, and a guest can refuse itself thousands of times a second, each
//! line a few hundred bytes of synchronous serial output under the machine lock.

/// The `log` target of lines a guest can cause at will (a refused hypercall, a bad `iret`):
/// the console rate-limits them (Xen's `XENLOG_GUEST`).
pub const GUEST_TARGET: &str = "guest";

/// Lines per window, and the window in seconds: Xen's `printk_ratelimit_burst` and
/// `printk_ratelimit_ms` defaults.
pub const BURST: u32 = 10;
/// See [`BURST`].
pub const WINDOW_SECONDS: u64 = 5;

/// What to do with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it, after a note that `suppressed_before` lines were dropped (if any).
    Print { suppressed_before: u32 },
    /// Drop it (counted for the next note).
    Drop,
}

/// At most `burst` lines per window of `window` clock units; the lines dropped are counted
/// and reported with the first line of the next window.
#[derive(Debug)]
pub struct RateLimit {
    window: u64,
    burst: u32,
    start: Option<u64>,
    used: u32,
    suppressed: u32,
}

impl RateLimit {
    /// A limit not yet configured: it lets every line through until [`configure`]d.
    ///
    /// [`configure`]: Self::configure
    pub const fn unconfigured() -> Self {
        Self { window: 0, burst: BURST, start: None, used: 0, suppressed: 0 }
    }

    /// `burst` lines per `window` clock units (the clock is whatever `admit` is given).
    pub fn configure(&mut self, window: u64, burst: u32) {
        *self = Self { window, burst, start: None, used: 0, suppressed: 0 };
    }

    /// The verdict on a line at time `now`.
    pub fn admit(&mut self, now: u64) -> Verdict {
        if self.window == 0 {
            return Verdict::Print { suppressed_before: 0 };
        }
        let expired = self.start.is_none_or(|start| now.wrapping_sub(start) >= self.window);
        if expired {
            let suppressed_before = core::mem::take(&mut self.suppressed);
            self.start = Some(now);
            self.used = 1;
            return Verdict::Print { suppressed_before };
        }
        if self.used < self.burst {
            self.used += 1;
            return Verdict::Print { suppressed_before: 0 };
        }
        self.suppressed = self.suppressed.saturating_add(1);
        Verdict::Drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_then_a_count_of_what_was_dropped() {
        let mut limit = RateLimit::unconfigured();
        assert!((0..100).all(|t| limit.admit(t) == Verdict::Print { suppressed_before: 0 }), "unconfigured");
        limit.configure(1000, 3);
        let first: Vec<Verdict> = (0..6).map(|t| limit.admit(100 + t)).collect();
        let print = Verdict::Print { suppressed_before: 0 };
        assert_eq!(first, [print, print, print, Verdict::Drop, Verdict::Drop, Verdict::Drop]);
        assert_eq!(limit.admit(999), Verdict::Drop, "still the first window");
        assert_eq!(limit.admit(1100), Verdict::Print { suppressed_before: 4 });
        assert_eq!(limit.admit(1101), print, "the count was reported once");
        assert_eq!(limit.admit(u64::MAX), Verdict::Print { suppressed_before: 0 }, "a clock far ahead");
        assert_eq!(limit.admit(5), Verdict::Print { suppressed_before: 0 }, "a wrapped clock starts anew");
    }
}
