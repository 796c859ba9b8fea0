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
//! * `role=bench iterations=N` (default 10000): prints one
//!   `bench: <name> iterations=N total_cycles=T cycles_per_call=C` line (rdtsc cycles) for
//!   `null_hypercall` (`xen_version(XENVER_version)`), `console_write` (a 1-byte `console_io`
//!   write), `user_syscall` (a user process's null `syscall` round trip, timed in user mode),
//!   `page_fault` (a bounced #PF in the kernel) and `mmu_update_512` (per batch of 512
//!   validated L1 updates, N/64 batches), then powers off.
//! * `role=traps`: installs the trap table and callbacks, raises each exception class and
//!   checks Xen's bounce frame (vector, error code, RIP, RPL-0 CS, saved mask in CS bits
//!   32-39, IF, SS, CR2 from `vcpu_info.arch.cr2`, registers kept across `iret`); one
//!   `check:` line each, then `traps: N passed, M failed`.
//! * `role=unhandled`: no #UD handler, executes `ud2`: the hypervisor must crash the domain.
//! * `role=emulate`: privileged instructions trapped and emulated (forced/plain `cpuid`,
//!   MSRs, port I/O with `PHYSDEVOP_set_iopl`, control registers, `hlt`, `wbinvd`, `cli`) and
//!   `popf` silently keeping IF; `emulate: N passed, M failed`.
//! * `role=events`: shared_info, PV clock and wall clock, VIRQ_TIMER, one-shot and periodic
//!   timers, `SCHEDOP_block`, upcalls, pending/mask/selector rules; `events: ...`.
//! * `role=mmu`: validated page-table updates and each refusal with Xen's errno; `mmu: ...`.
//! * `role=procs`: three user processes with their own user page tables, `syscall`s, timer
//!   preemption round-robin, the faulting one killed; `procs: ...`.
//!
//! * Multi-domain roles (rendezvous through command-line keys, not xenstore; see `roles`):
//!   `role=control` (dom0: `xl list` table from domctl getdomaininfo, VIRQ_DOM_EXC, the
//!   CPU-time ratio of two domains, pause+destroy of a domain that does not end),
//!   `grant-source`/`grant-sink` (data through grants and an interdomain port, checked
//!   byte for byte), `spin`, `bystander`, `survivor`, `crash-fault`, `crash-shutdown`,
//!   `victim`, `attack-map`, `attack-grant`, `attack-evtchn`, `attack-flood`, `heap-flood`, `segments`,
//!   `bench-ping`/`bench-pong`. Every domU role first checks that domctl answers -EPERM.
//!
//! Every checking role powers off if all its checks passed and crashes otherwise.
//! * `shutdown=poweroff|reboot|crash` (default poweroff): how `demo` ends.
//!
//! # Structure
//!
//! * [`cmdline`], [`console`], [`checks`], [`bench`], [`trapframe`], [`evtchn`],
//!   [`pagepool`], [`sched`], [`domains`]: generic logic, host-tested.
//! * `arch::x86_64` (the only asm): entry stub, ELF notes, hypercall page, trap/event/syscall
//!   entry and the `iret` exit (`traps`), exception triggers, privileged instructions with
//!   their fix-up table (`insn`), user programs (`user`).
//! * `kernel`: hypercall wrappers the ABI crate lacks (`hyp`), trap table and dispatch
//!   (`trap`), events (`events`), PV memory (`mm`), user address spaces (`uspace`),
//!   domctl, interdomain event channels and grant tables (`inter`).
//! * `start_of_day`, `pv`, `roles`: start of day and the roles (bare-metal target only).
//!
//! Later: dom0 backends and xenstore, domU frontends (console ring, blkfront, netfront), each
//! as a module beside `roles`.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod bench;
pub mod checks;
pub mod cmdline;
pub mod console;
pub mod domains;
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
