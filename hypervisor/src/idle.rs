//! How an idle CPU waits for work (`idle=` on the command line), and for the default mode,
//! halt-polling, how long it polls before it halts: Linux's `haltpoll` cpuidle governor
//! (`drivers/cpuidle/governors/haltpoll.c`), with its defaults.
//!
//! Why poll at all: waking a halted CPU costs an interrupt and, under a hypervisor or an
//! emulator, the host's wake-up of a sleeping vCPU thread, which under QEMU is tens of
//! microseconds, more than an event round trip between two domains on two CPUs. Why not
//! always poll (`idle=poll`): a polling CPU burns its host CPU for as long as it idles. The
//! governor polls only as long as recent idle periods suggest work comes back soon, and
//! stops polling when it does not.

/// How an idle CPU waits for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleMode {
    /// `idle=halt`: halts at once; a kick is an interrupt.
    Halt,
    /// `idle=poll`: spins until a kick or a timer tick (Linux's option of that name).
    Poll,
    /// `idle=haltpoll` (the default): polls for the governor's window, then halts.
    HaltPoll,
}

impl IdleMode {
    /// The mode `idle=<value>` names, if any.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "halt" => Some(Self::Halt),
            "poll" => Some(Self::Poll),
            "haltpoll" => Some(Self::HaltPoll),
            _ => None,
        }
    }

    /// The name `idle=` takes for this mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Poll => "poll",
            Self::HaltPoll => "haltpoll",
        }
    }
}

/// The governor's tunables (Linux's `guest_halt_poll_*` module parameters).
#[derive(Clone, Copy, Debug)]
pub struct HaltPollTuning {
    /// The longest window, and the longest idle period that makes it grow
    /// (`guest_halt_poll_ns`).
    pub max_ns: u64,
    /// The first window after polling was off (`guest_halt_poll_grow_start`).
    pub grow_start_ns: u64,
    /// Factor by which the window grows (`guest_halt_poll_grow`).
    pub grow: u64,
    /// Divisor by which it shrinks after a long idle period; 0 turns polling off at once
    /// (`guest_halt_poll_shrink`).
    pub shrink: u64,
}

/// Linux's defaults: up to 200 µs, starting at 50 µs, doubling and halving.
pub const LINUX_TUNING: HaltPollTuning = HaltPollTuning { max_ns: 200_000, grow_start_ns: 50_000, grow: 2, shrink: 2 };

impl HaltPollTuning {
    /// The poll window after an idle period of `idle_ns` (polling and halting together)
    /// spent with window `window_ns` (Linux's `adjust_poll_limit`):
    /// * work came back while polling (`idle_ns <= window_ns`): keep the window;
    /// * it came back after the window but within `max_ns`: polling a little longer would
    ///   have caught it, so grow (to at least `grow_start_ns`, at most `max_ns`);
    /// * it came back after `max_ns`: polling was wasted, so shrink, and stop polling once
    ///   the window falls below `grow_start_ns` (as Linux: "reset value to 0 if shrunk below
    ///   grow_start"), so a CPU that keeps idling long halts at once after a few periods.
    pub fn next_window(&self, window_ns: u64, idle_ns: u64) -> u64 {
        if idle_ns > window_ns && idle_ns <= self.max_ns {
            window_ns.saturating_mul(self.grow).max(self.grow_start_ns).min(self.max_ns)
        } else if idle_ns > self.max_ns {
            match window_ns.checked_div(self.shrink) {
                Some(shrunk) if shrunk >= self.grow_start_ns => shrunk,
                _ => 0,
            }
        } else {
            window_ns
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_their_names() {
        for mode in [IdleMode::Halt, IdleMode::Poll, IdleMode::HaltPoll] {
            assert_eq!(IdleMode::parse(mode.name()), Some(mode));
        }
        assert_eq!(IdleMode::parse("mwait"), None);
        assert_eq!(IdleMode::parse(""), None);
    }

    #[test]
    fn a_short_wake_after_the_window_grows_it_from_grow_start_up_to_the_maximum() {
        let t = LINUX_TUNING;
        // Polling off: a wake-up 20 µs after halting starts the window at 50 µs.
        assert_eq!(t.next_window(0, 20_000), 50_000);
        // Missed by a 50 µs window: 100 µs, then 200 µs, and never beyond.
        assert_eq!(t.next_window(50_000, 70_000), 100_000);
        assert_eq!(t.next_window(100_000, 150_000), 200_000);
        assert_eq!(t.next_window(200_000, 200_000), 200_000);
    }

    #[test]
    fn a_wake_within_the_window_keeps_it() {
        let t = LINUX_TUNING;
        assert_eq!(t.next_window(100_000, 10_000), 100_000);
        assert_eq!(t.next_window(100_000, 100_000), 100_000);
        assert_eq!(t.next_window(0, 0), 0);
    }

    #[test]
    fn long_idle_periods_halve_the_window_then_stop_polling_below_grow_start() {
        let t = LINUX_TUNING;
        let mut window = 200_000;
        for expected in [100_000, 50_000, 0] {
            window = t.next_window(window, 10_000_000); // a 10 ms tick with nothing to do
            assert_eq!(window, expected);
        }
        assert_eq!(t.next_window(60_000, 200_001), 0, "30 us is below grow_start: off");
        assert_eq!(t.next_window(0, u64::MAX), 0);
        let off_at_once = HaltPollTuning { shrink: 0, ..t };
        assert_eq!(off_at_once.next_window(200_000, 300_000), 0);
    }

    #[test]
    fn extreme_tunings_do_not_overflow() {
        let t = HaltPollTuning { max_ns: u64::MAX, grow_start_ns: 1, grow: u64::MAX, shrink: 2 };
        assert_eq!(t.next_window(u64::MAX / 2, u64::MAX), u64::MAX);
    }
}
