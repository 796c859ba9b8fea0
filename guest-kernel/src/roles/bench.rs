//! `role=bench iterations=N`: times N null hypercalls (`xen_version(XENVER_version)`) and N
//! `console_io` writes of a short string with `rdtsc`, and prints one
//! [`Measurement`](crate::bench::Measurement) line each, then powers off.

use hypercall_abi::guest;

use crate::bench::Measurement;
use crate::cmdline::{Options, ShutdownRequest};
use crate::println;

/// The string the console benchmark writes (no newline, so the log stays one long line).
const BENCH_TEXT: &[u8] = b".";

/// Runs both measurements.
pub fn run(opts: &Options, _si: &hypercall_abi::start_info::StartInfo) -> ShutdownRequest {
    let n = opts.iterations;
    // Warm up caches and TLBs so the first iterations do not dominate short runs.
    for _ in 0..16 {
        let _ = guest::xen_version();
    }
    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = core::hint::black_box(guest::xen_version());
    }
    let null = Measurement::from_tsc("null_hypercall", n, start, guest::rdtsc());

    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = guest::console_write(BENCH_TEXT);
    }
    let console = Measurement::from_tsc("console_write", n, start, guest::rdtsc());
    println!();
    println!("{null}");
    println!("{console}");
    ShutdownRequest::Poweroff
}
