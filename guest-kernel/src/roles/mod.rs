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

pub mod abi_refusals;
pub mod abi_test;
pub mod attacks;
pub mod bench;
pub mod bench_domains;
pub mod bench_grants;
pub mod control;
pub mod demo;
pub mod emulate;
pub mod events;
pub mod exchange;
pub mod heap_flood;
pub mod lifecycle;
pub mod mmu;
pub mod procs;
pub mod segments;
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
        Role::Control => control::run(si),
        Role::GrantSource => exchange::source(si),
        Role::GrantSink => exchange::sink(si),
        Role::Spin => lifecycle::spin(si),
        Role::Bystander => lifecycle::bystander(si),
        Role::Survivor => lifecycle::survivor(si),
        Role::CrashFault => lifecycle::crash(si, false),
        Role::CrashShutdown => lifecycle::crash(si, true),
        Role::Victim => attacks::victim(si),
        Role::AttackMap => attacks::attack_map(si),
        Role::AttackGrant => attacks::attack_grant(si),
        Role::AttackEvtchn => attacks::attack_evtchn(si),
        Role::AttackFlood => attacks::attack_flood(si),
        Role::HeapFlood => heap_flood::run(si),
        Role::Segments => segments::run(si),
        Role::BenchPing => bench_domains::ping(opts, si),
        Role::BenchPong => bench_domains::pong(opts, si),
    }
}

/// Start of a domU role: maps `shared_info` and checks that `domctl` is refused with
/// -EPERM (getdomaininfo of dom0 and pausedomain of dom0; in a bundle without dom0 the
/// pause is -ESRCH, as Xen looks the domain up before the caller's right). False if set-up
/// failed.
pub fn domu_start(role: &str, log: &mut CheckLog, si: &StartInfo) -> bool {
    if crate::kernel::events::init(si).is_err() {
        println!("{role}: mapping shared_info failed");
        return false;
    }
    let info = crate::kernel::inter::domain_info(0).map(|_| 0);
    let pause = crate::kernel::inter::domctl(hypercall_abi::domctl::XEN_DOMCTL_PAUSEDOMAIN, 0).map(|_| 0);
    check!(
        log,
        "domctl getdomaininfo(0) and pausedomain(0) from a domU",
        "-1 (EPERM) twice (the pause -3 (ESRCH) without a dom0)",
        info == Err(hypercall_abi::Errno::EPERM)
            && (pause == Err(hypercall_abi::Errno::EPERM) || pause == Err(hypercall_abi::Errno::ESRCH)),
        "{}, {}",
        crate::checks::ret_of(info),
        crate::checks::ret_of(pause)
    )
}

/// The command line of this domain.
pub fn line(si: &StartInfo) -> &str {
    crate::cmdline::as_text(si.cmd_line_bytes())
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
