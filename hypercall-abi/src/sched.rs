//! `sched_op` (`sched.h`): yield, block, shutdown, poll.

/// `SCHEDOP_yield`: give up the CPU (argument NULL).
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: unmask events and block until one is pending.
pub const SCHEDOP_BLOCK: u32 = 1;
/// `SCHEDOP_shutdown`: stop the domain ([`SchedShutdown`]).
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`: wait for one of several ports ([`SchedPoll`]).
pub const SCHEDOP_POLL: u32 = 3;
/// `SCHEDOP_remote_shutdown`: shut another domain down ([`SchedRemoteShutdown`]).
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
/// `SCHEDOP_shutdown_code`: record a shutdown code without shutting down.
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
/// `SCHEDOP_watchdog`: arm or disarm a domain watchdog ([`SchedWatchdog`]).
pub const SCHEDOP_WATCHDOG: u32 = 6;
/// `SCHEDOP_pin_override`: temporarily pin to a physical CPU.
pub const SCHEDOP_PIN_OVERRIDE: u32 = 7;

/// `SHUTDOWN_poweroff`: the domain exited normally.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`: restart the domain.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_suspend`: save and stop (the call may return).
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// `SHUTDOWN_crash`: the domain crashed.
pub const SHUTDOWN_CRASH: u32 = 3;
/// `SHUTDOWN_watchdog`: the watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// `SHUTDOWN_soft_reset`: soft reset.
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// Highest valid shutdown reason (`SHUTDOWN_MAX`).
pub const SHUTDOWN_MAX: u32 = 5;

/// `struct sched_shutdown` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `struct sched_poll` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// Guest pointer to an array of `u32` ports.
    pub ports: u64,
    /// Number of ports (at most 128).
    pub nr_ports: u32,
    /// Absolute system time in ns to give up at (0 = never).
    pub timeout: u64,
}

/// `struct sched_remote_shutdown` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedRemoteShutdown {
    /// Domain to shut down.
    pub domain_id: u16,
    /// `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `struct sched_watchdog` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedWatchdog {
    /// Watchdog id (0 allocates a new one).
    pub id: u32,
    /// Timeout in seconds (0 disarms).
    pub timeout: u32,
}

/// `struct sched_pin_override` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPinOverride {
    /// Physical CPU, or -1 to drop the override.
    pub pcpu: i32,
}

const _: () = assert!(core::mem::size_of::<SchedShutdown>() == 4);
const _: () = assert!(core::mem::size_of::<SchedPoll>() == 24);
const _: () = assert!(core::mem::size_of::<SchedRemoteShutdown>() == 8);
const _: () = assert!(core::mem::size_of::<SchedWatchdog>() == 8);
