//! The roles selected by `role=` on the command line.

/// Prints one check line (see [`CheckLog`](crate::checks::CheckLog)) and evaluates to
/// whether it passed: `check!(log, what, expected, ok, "value format", args...)`.
macro_rules! check {
    ($log:expr, $what:expr, $expected:expr, $ok:expr, $($value:tt)*) => {{
        let ok: bool = $ok;
        $crate::println!("{}", $log.record($what, format_args!($($value)*), $expected, ok));
        ok
    }};
}

pub mod abi_test;
pub mod bench;
pub mod demo;
pub mod emulate;
pub mod events;
pub mod mmu;
pub mod procs;
pub mod traps;
pub mod unhandled;

use hypercall_abi::start_info::StartInfo;

use crate::checks::CheckLog;
use crate::cmdline::{Options, Role, ShutdownRequest};
use crate::println;

/// Runs the selected role and returns how the kernel should shut down.
pub fn run(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    crate::kernel::mm::init(si);
    match opts.role {
        Role::Demo => demo::run(opts),
        Role::AbiTest => abi_test::run(opts, si),
        Role::Bench => bench::run(opts, si),
        Role::Traps => traps::run(si),
        Role::Unhandled => unhandled::run(si),
        Role::Emulate => emulate::run(si),
        Role::Events => events::run(si),
        Role::Mmu => mmu::run(si),
        Role::Procs => procs::run(opts, si),
    }
}

/// Prints `<role>: N passed, M failed` and picks poweroff (all passed) or crash.
pub fn summary(role: &str, log: &CheckLog) -> ShutdownRequest {
    println!("{role}: {} passed, {} failed", log.passed, log.failed);
    if log.all_passed() {
        ShutdownRequest::Poweroff
    } else {
        ShutdownRequest::Crash
    }
}
