//! The guest command line (`start_info.cmd_line`): space-separated `key=value` words.
//!
//! Keys this kernel understands:
//! `role=demo|abi-test|bench|traps|unhandled|emulate|events|mmu|procs|control|grant-source|`
//! `grant-sink|spin|bystander|survivor|crash-fault|crash-shutdown|victim|attack-map|`
//! `attack-grant|attack-evtchn|attack-flood|heap-flood|segments|bench-ping|bench-pong` (default `demo`),
//! `shutdown=poweroff|reboot|crash` (default `poweroff`), `iterations=N` (bench, default
//! [`DEFAULT_ITERATIONS`]). Unknown words are ignored (Xen or a toolstack may add their own);
//! known keys with bad values are reported as [`CmdlineError`]s. The multi-domain roles read
//! their own keys (`peer=`, `port=`, `gref=`, `pages=`, `seed=`, ...) with [`value`] and
//! [`number`].

use hypercall_abi::sched;

/// Bench iterations when `iterations=` is absent.
pub const DEFAULT_ITERATIONS: u64 = 10_000;

/// What the kernel does after the banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Banner and shutdown.
    Demo,
    /// Exercise the hypercall ABI and report each check.
    AbiTest,
    /// Time null hypercalls, console writes, user syscalls, bounced faults, mmu_update.
    Bench,
    /// Exceptions bounced to the guest's trap table, checked frame by frame.
    Traps,
    /// An exception without a handler: the domain must be crashed.
    Unhandled,
    /// Privileged instructions trapped and emulated (and popf's silent IF).
    Emulate,
    /// Event channels, upcalls, timers, blocking and time.
    Events,
    /// The PV MMU: validated updates and Xen's refusals.
    Mmu,
    /// User processes with their own page tables, syscalls and preemption.
    Procs,
    /// dom0: `xl list`, VIRQ_DOM_EXC, CPU-time ratio, destroying domains.
    Control,
    /// domU: grants pages and an unbound port to a peer, checks its reply.
    GrantSource,
    /// domU: binds the source's port, maps and copies its grants, replies.
    GrantSink,
    /// domU: CPU-bound for a fixed wall time.
    Spin,
    /// domU: fills its own memory, works, verifies it.
    Bystander,
    /// domU: shares a port and a grant with a domain that crashes, checks the release.
    Survivor,
    /// domU: takes a port and a grant mapping, then dies of an unhandled fault.
    CrashFault,
    /// domU: takes a port and a grant mapping, then `SCHEDOP_shutdown(crash)`.
    CrashShutdown,
    /// domU: the attacked domain of the isolation scenarios.
    Victim,
    /// domU: maps another domain's frames directly.
    AttackMap,
    /// domU: forges and reuses grants.
    AttackGrant,
    /// domU: uses event-channel ports it does not own.
    AttackEvtchn,
    /// domU: exhausts its own resources, then floods hypercalls forever.
    AttackFlood,
    /// domU: takes all the hypervisor bookkeeping its limits allow (ports, grants, mappings).
    HeapFlood,
    /// domU: keeps its own segment selectors and bases while another domain runs.
    Segments,
    /// domU bench: event ping-pong, grant copy and map+unmap timing against a pong.
    BenchPing,
    /// domU bench: the pong side.
    BenchPong,
}

/// Every role, for parsing and listing.
pub const ROLES: [Role; 26] = [
    Role::Demo,
    Role::AbiTest,
    Role::Bench,
    Role::Traps,
    Role::Unhandled,
    Role::Emulate,
    Role::Events,
    Role::Mmu,
    Role::Procs,
    Role::Control,
    Role::GrantSource,
    Role::GrantSink,
    Role::Spin,
    Role::Bystander,
    Role::Survivor,
    Role::CrashFault,
    Role::CrashShutdown,
    Role::Victim,
    Role::AttackMap,
    Role::AttackGrant,
    Role::AttackEvtchn,
    Role::AttackFlood,
    Role::HeapFlood,
    Role::Segments,
    Role::BenchPing,
    Role::BenchPong,
];

impl Role {
    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Demo => "demo",
            Role::AbiTest => "abi-test",
            Role::Bench => "bench",
            Role::Traps => "traps",
            Role::Unhandled => "unhandled",
            Role::Emulate => "emulate",
            Role::Events => "events",
            Role::Mmu => "mmu",
            Role::Procs => "procs",
            Role::Control => "control",
            Role::GrantSource => "grant-source",
            Role::GrantSink => "grant-sink",
            Role::Spin => "spin",
            Role::Bystander => "bystander",
            Role::Survivor => "survivor",
            Role::CrashFault => "crash-fault",
            Role::CrashShutdown => "crash-shutdown",
            Role::Victim => "victim",
            Role::AttackMap => "attack-map",
            Role::AttackGrant => "attack-grant",
            Role::AttackEvtchn => "attack-evtchn",
            Role::AttackFlood => "attack-flood",
            Role::HeapFlood => "heap-flood",
            Role::Segments => "segments",
            Role::BenchPing => "bench-ping",
            Role::BenchPong => "bench-pong",
        }
    }
}

/// How the kernel asks to be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// `SHUTDOWN_poweroff`.
    Poweroff,
    /// `SHUTDOWN_reboot`.
    Reboot,
    /// `SHUTDOWN_crash`.
    Crash,
}

impl ShutdownRequest {
    /// The `SHUTDOWN_*` reason code for `SCHEDOP_shutdown`.
    pub const fn reason(self) -> u32 {
        match self {
            ShutdownRequest::Poweroff => sched::SHUTDOWN_POWEROFF,
            ShutdownRequest::Reboot => sched::SHUTDOWN_REBOOT,
            ShutdownRequest::Crash => sched::SHUTDOWN_CRASH,
        }
    }

    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            ShutdownRequest::Poweroff => "poweroff",
            ShutdownRequest::Reboot => "reboot",
            ShutdownRequest::Crash => "crash",
        }
    }
}

/// A known key with a value this kernel does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// `role=` with an unknown role.
    UnknownRole(&'a str),
    /// `shutdown=` with an unknown reason.
    UnknownShutdown(&'a str),
    /// `iterations=` that is not a positive decimal number.
    BadIterations(&'a str),
}

/// The parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Selected role.
    pub role: Role,
    /// How to shut down at the end (the abi-test role overrides it with crash on failures).
    pub shutdown: ShutdownRequest,
    /// Bench iterations.
    pub iterations: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { role: Role::Demo, shutdown: ShutdownRequest::Poweroff, iterations: DEFAULT_ITERATIONS }
    }
}

/// Parses `line`; on a bad value, returns the first error (the caller reports it and uses
/// the defaults for that key, so a typo never silently runs the wrong test).
pub fn parse(line: &str) -> Result<Options, CmdlineError<'_>> {
    let mut opts = Options::default();
    for word in line.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "role" => {
                opts.role = match ROLES.iter().find(|r| r.name() == value) {
                    Some(&r) => r,
                    None => return Err(CmdlineError::UnknownRole(value)),
                }
            }
            "shutdown" => {
                opts.shutdown = match value {
                    "poweroff" => ShutdownRequest::Poweroff,
                    "reboot" => ShutdownRequest::Reboot,
                    "crash" => ShutdownRequest::Crash,
                    _ => return Err(CmdlineError::UnknownShutdown(value)),
                }
            }
            "iterations" => {
                opts.iterations = match value.parse::<u64>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(CmdlineError::BadIterations(value)),
                }
            }
            _ => {}
        }
    }
    Ok(opts)
}

/// The value of the last `key=value` word of `line`, if any.
pub fn value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|&(k, _)| k == key)
        .map(|(_, v)| v)
        .next_back()
}

/// [`value`] as a number: decimal, or hexadecimal with `0x`.
pub fn number(line: &str, key: &str) -> Option<u64> {
    let v = value(line, key)?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The command line bytes as text: invalid UTF-8 is cut at the first bad byte.
pub fn as_text(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        // The prefix up to `valid_up_to` is valid UTF-8 by definition.
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    #[test]
    fn defaults_when_empty() {
        assert_eq!(parse("").unwrap(), Options::default());
        assert_eq!(parse("   ").unwrap().role, Role::Demo);
    }

    #[test]
    fn parses_every_key_and_ignores_others() {
        let o = parse("console=hvc0 role=bench iterations=500 shutdown=reboot quiet").unwrap();
        assert_eq!(o.role, Role::Bench);
        assert_eq!(o.iterations, 500);
        assert_eq!(o.shutdown, ShutdownRequest::Reboot);
        assert_eq!(o.shutdown.reason(), 1);
        assert_eq!(parse("role=abi-test shutdown=crash").unwrap().shutdown.reason(), 3);
    }

    #[test]
    fn every_role_round_trips() {
        for r in ROLES {
            let line = std::format!("role={}", r.name());
            assert_eq!(parse(&line).unwrap().role, r);
        }
        assert_eq!(parse("role=procs").unwrap().role, Role::Procs);
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(parse("role=nope"), Err(CmdlineError::UnknownRole("nope")));
        assert_eq!(parse("shutdown=halt"), Err(CmdlineError::UnknownShutdown("halt")));
        assert_eq!(parse("iterations=0"), Err(CmdlineError::BadIterations("0")));
        assert_eq!(parse("iterations=x1"), Err(CmdlineError::BadIterations("x1")));
    }

    #[test]
    fn role_keys() {
        let line = "role=grant-sink peer=1 port=3 gref=0x8 names=a,b peer=2 bad=x";
        assert_eq!(parse(line).unwrap().role, Role::GrantSink);
        assert_eq!(number(line, "peer"), Some(2), "the last one wins");
        assert_eq!(number(line, "gref"), Some(8));
        assert_eq!(number(line, "bad"), None);
        assert_eq!(number(line, "pages"), None);
        assert_eq!(value(line, "names"), Some("a,b"));
    }

    #[test]
    fn text_is_cut_at_invalid_utf8() {
        assert_eq!(as_text(b"role=demo\xffzz"), "role=demo");
        assert_eq!(as_text(b"ok"), "ok");
    }
}
