//! Arithmetic of the bench role: cycles per call from TSC readings.
//!
//! Output format (one line per measurement, parsed by `scripts/bench-guest.sh`):
//! `bench: <name> iterations=<N> total_cycles=<T> cycles_per_call=<T/N>`.

/// The result of timing `iterations` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// What was timed (`null_hypercall`, `console_write`).
    pub name: &'static str,
    /// Number of calls.
    pub iterations: u64,
    /// TSC cycles for all of them.
    pub total_cycles: u64,
}

impl Measurement {
    /// From TSC readings before and after the loop (wrapping-safe).
    pub fn from_tsc(name: &'static str, iterations: u64, start: u64, end: u64) -> Self {
        Self { name, iterations, total_cycles: end.wrapping_sub(start) }
    }

    /// Average cycles per call, rounded down (0 iterations gives 0).
    pub fn cycles_per_call(&self) -> u64 {
        self.total_cycles.checked_div(self.iterations).unwrap_or(0)
    }
}

impl core::fmt::Display for Measurement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "bench: {} iterations={} total_cycles={} cycles_per_call={}",
            self.name,
            self.iterations,
            self.total_cycles,
            self.cycles_per_call()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn per_call_and_format() {
        let m = Measurement::from_tsc("null_hypercall", 1000, 10, 250_010);
        assert_eq!(m.cycles_per_call(), 250);
        assert_eq!(format!("{m}"), "bench: null_hypercall iterations=1000 total_cycles=250000 cycles_per_call=250");
        assert_eq!(Measurement::from_tsc("x", 0, 0, 5).cycles_per_call(), 0);
        assert_eq!(Measurement::from_tsc("x", 1, u64::MAX, 4).total_cycles, 5);
    }
}
