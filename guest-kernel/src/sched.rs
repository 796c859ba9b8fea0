//! Round-robin choice among user processes (generic, host-tested): which process runs next
//! after a timer tick, a yield, an exit or a kill.

/// A process's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Can run.
    Runnable,
    /// Called `exit(code)`.
    Exited(u64),
    /// Killed by the kernel after a fault (the vector).
    Killed(u64),
}

/// The round-robin run queue over a fixed table of processes.
#[derive(Clone, Debug)]
pub struct RoundRobin<const N: usize> {
    states: [State; N],
    len: usize,
    current: usize,
}

impl<const N: usize> RoundRobin<N> {
    /// `len` runnable processes (`len <= N`), the first one current.
    pub const fn new(len: usize) -> Self {
        assert!(len <= N && len > 0);
        Self { states: [State::Runnable; N], len, current: 0 }
    }

    /// The current process.
    pub fn current(&self) -> usize {
        self.current
    }

    /// State of process `i`.
    pub fn state(&self, i: usize) -> State {
        self.states[i]
    }

    /// Ends the current process with `state`.
    pub fn end_current(&mut self, state: State) {
        self.states[self.current] = state;
    }

    /// The next runnable process after the current one (the current one itself if it is the
    /// only runnable one), made current; `None` when nothing can run.
    pub fn pick_next(&mut self) -> Option<usize> {
        for step in 1..=self.len {
            let i = (self.current + step) % self.len;
            if self.states[i] == State::Runnable {
                self.current = i;
                return Some(i);
            }
        }
        None
    }

    /// Whether every process has ended.
    pub fn all_done(&self) -> bool {
        self.states[..self.len].iter().all(|s| *s != State::Runnable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_skips_ended_processes() {
        let mut rr = RoundRobin::<4>::new(3);
        assert_eq!(rr.current(), 0);
        assert_eq!(rr.pick_next(), Some(1));
        assert_eq!(rr.pick_next(), Some(2));
        rr.end_current(State::Killed(14));
        assert_eq!(rr.pick_next(), Some(0));
        assert_eq!(rr.pick_next(), Some(1));
        assert_eq!(rr.pick_next(), Some(0));
        rr.end_current(State::Exited(0));
        assert_eq!(rr.pick_next(), Some(1));
        assert_eq!(rr.pick_next(), Some(1), "the only runnable one keeps running");
        rr.end_current(State::Exited(0));
        assert_eq!(rr.pick_next(), None);
        assert!(rr.all_done());
        assert_eq!(rr.state(2), State::Killed(14));
    }
}
