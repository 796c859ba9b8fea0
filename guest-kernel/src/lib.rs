//! A 64-bit paravirtualized (PV) guest kernel for Xen-compatible hypervisors.
//!
//! One ELF serves every role. It starts from `start_info` (in `rsi`), prints a banner with the
//! hypervisor's version (`xen_version` VERSION + EXTRAVERSION), its memory size (`nr_pages`)
//! and its command line through `console_io`, runs the role its command line selects, and
//! shuts down with `SCHEDOP_shutdown`. The same image boots on Debian's Xen 4.17 and on this
//! project's hypervisor.
//!
//! # Command line (after ` -- ` on the hypervisor's command line)
//!
//! * `role=demo` (default): banner, then shutdown.
//! * `role=abi-test`: exercises the ABI (unknown hypercalls, bad pointers, every `xen_version`
//!   sub-op, memory reservations and `memory_map`, a multicall, the hypercall page, yield,
//!   shared_info and the PV clock, one-shot timers observed through `SCHEDOP_poll` on the
//!   VIRQ_TIMER port, loopback and IPI event channels, grant-table queries). Prints one line
//!   per check: `check: <what> -> <value> ok` or `... FAIL (expected <x>)`, then
//!   `abi-test: N passed, M failed`, and powers off if all passed, crashes otherwise.
//! * `role=bench iterations=N` (default 10000): prints
//!   `bench: null_hypercall iterations=N total_cycles=T cycles_per_call=C` and
//!   `bench: console_write iterations=N total_cycles=T cycles_per_call=C` (rdtsc cycles;
//!   null = `xen_version(XENVER_version)`, console = a 1-byte `console_io` write), then powers
//!   off.
//! * `shutdown=poweroff|reboot|crash` (default poweroff): how `demo` ends.
//!
//! # Structure
//!
//! * [`cmdline`], [`console`], [`checks`], [`bench`]: generic logic, host-tested.
//! * `arch::x86_64`: entry stub, ELF notes, hypercall page (the only asm).
//! * `start_of_day`, `pv`, `roles`: the kernel proper (bare-metal target only); hypercalls go
//!   through `hypercall_abi::guest`.
//!
//! Later: dom0 backends and xenstore, domU frontends (console ring, blkfront, netfront) and
//! user processes, each as a module beside `roles`.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod bench;
pub mod checks;
pub mod cmdline;
pub mod console;
pub mod evtchn;
pub mod pagepool;
pub mod sched;
pub mod trapframe;

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod arch;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod kernel;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod pv;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod roles;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod start_of_day;
