//! `role=bench-ping` / `role=bench-pong` (`peer=`, `iterations=N`, `pages=P`): benchmarks
//! between two domUs, printed as [`Measurement`] lines (rdtsc cycles) by the ping side:
//!
//! * `evtchn_roundtrip`: N × (send on the interdomain port, pong's poll wakes and sends
//!   back, ping's poll wakes);
//! * `grant_copy_4k`, `grant_copy_4k_batched`, `local_copy_4k` and `grant_map_unmap` from
//!   pong's grants (P pages cycled): see [`bench_grants`];
//! * `sched_yield_roundtrip`: N × `SCHEDOP_yield` while pong, the only other runnable domain,
//!   yields back in a loop: each round is two context switches (ping → pong → ping). Pong
//!   counts its yields in a page granted to ping, and ping checks after every yield that the
//!   count moved (`bench: yield_switches verified=V unswitched=U extra=E`), so a yield that
//!   did not hand the CPU over cannot pass for a cheap switch. A timer tick can preempt
//!   either side: preempting ping shows as `extra` (pong ran twice), preempting pong between
//!   its count and its yield as one `unswitched` round although pong did run. So the check
//!   allows one unswitched round per 10 ms hypervisor tick of the phase (a few in
//!   thousands); yields that never switch would make nearly every round unswitched.
//!
//! With the two on different CPUs (`cpus=` in their configs), `spin=1` makes both wait for
//! the other's event by spinning on the pending bit rather than in `SCHEDOP_poll`, and
//! `yield=0` skips the yield ping-pong (see `wait_mode`).
//!
//! Ping allocates the port (3) for pong; pong binds it, grants its pages and its counter
//! page, signals, answers N events, yields until the stop signal, waits for "finish" and
//! revokes its grants.

use hypercall_abi::grant_table::GNTST_OKAY;
use hypercall_abi::guest;
use hypercall_abi::start_info::StartInfo;

use super::bench_grants::{self, GrantedPages, SEED};
use crate::bench::Measurement;
use crate::cmdline::{number, Options, ShutdownRequest};
use crate::domains::fill_pattern;
use crate::kernel::events;
use crate::kernel::inter::{self, page_bytes, OwnTable, MS};
use crate::kernel::mm::alloc_frame;
use crate::println;

const MAX_PAGES: u32 = 16;
/// Grant reference of pong's yield counter page (after the at most 16 data pages from 8).
const COUNTER_REF: u32 = 8 + MAX_PAGES;

/// How both sides wait for the other's event, and whether the yield ping-pong runs:
/// `spin=1` spins on the pending bit instead of `SCHEDOP_poll` (the peer runs on another
/// CPU); `yield=0` skips the yield ping-pong (it measures switches between two domains
/// sharing a CPU, meaningless when each has its own).
fn wait_mode(line: &str) -> (fn(u32, u64) -> bool, bool) {
    let wait: fn(u32, u64) -> bool = if number(line, "spin") == Some(1) { inter::spin_port } else { inter::wait_port };
    (wait, number(line, "yield") != Some(0))
}

/// Runs the ping side (it prints the figures).
pub fn ping(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let peer = number(line, "peer").unwrap_or(2) as u16;
    let pages = (number(line, "pages").unwrap_or(4) as u32).clamp(1, MAX_PAGES);
    let n = opts.iterations;
    let (wait, measure_yields) = wait_mode(line);
    if events::init(si).is_err() {
        return ShutdownRequest::Crash;
    }
    let Ok(port) = inter::alloc_unbound(peer) else {
        return ShutdownRequest::Crash;
    };
    if !inter::wait_port(port, events::now() + 20_000 * MS) {
        println!("bench-ping: pong never signalled");
        return ShutdownRequest::Crash;
    }
    let (start, polls_before) = (guest::rdtsc(), inter::polls());
    for _ in 0..n {
        let _ = events::send(port);
        wait(port, u64::MAX);
    }
    println!("{}", Measurement::from_tsc("evtchn_roundtrip", n, start, guest::rdtsc()));
    // A blocking wait polls at most once or twice per round trip; thousands mean it spun.
    println!("bench: evtchn_roundtrip polls={} (for {n} round trips)", inter::polls() - polls_before);
    let yields_ok = if measure_yields {
        let Some(ok) = yield_roundtrips(peer, port, n) else {
            return ShutdownRequest::Crash;
        };
        ok
    } else {
        true
    };

    let copies_ok = bench_grants::copy_rounds(GrantedPages { domid: peer, first_ref: 8, pages }, n);
    let maps_ok = bench_grants::map_unmap(peer, 8, n);
    let _ = events::send(port);
    if copies_ok && maps_ok && yields_ok {
        ShutdownRequest::Poweroff
    } else {
        ShutdownRequest::Crash
    }
}

/// The yield ping-pong (module comment): maps pong's counter page, signals the start on
/// `port`, times `n` yields checking each one let pong run exactly once, signals the stop.
/// Prints the measurement and the check; `Some(all verified)`, `None` if the map failed.
fn yield_roundtrips(peer: u16, port: u32, n: u64) -> Option<bool> {
    let slot = alloc_frame()?;
    let (st, handle) = inter::map_grant(peer, COUNTER_REF, &slot, true);
    if st != GNTST_OKAY {
        println!("bench-ping: mapping pong's yield counter failed: {st}");
        return None;
    }
    let counter = slot.va as *const u64;
    // Start: pong leaves its wait and yields in a loop.
    let _ = events::send(port);
    // SAFETY: `counter` is pong's counter page mapped read-only at our pool page; pong writes
    // it while we do not run (one CPU), volatile so every read sees its last write.
    let read = || unsafe { counter.read_volatile() };
    let mut last = read();
    let (mut unswitched, mut extra) = (0u64, 0u64);
    let phase_start = events::now();
    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = guest::sched_yield();
        let now = read();
        match now.wrapping_sub(last) {
            0 => unswitched += 1,
            1 => {}
            _ => extra += 1,
        }
        last = now;
    }
    let m = Measurement::from_tsc("sched_yield_roundtrip", n, start, guest::rdtsc());
    let ticks = events::now().saturating_sub(phase_start) / (10 * MS) + 1;
    // Stop, and wait for pong's acknowledgement: a port is a flag, not a counter, so a later
    // "finish" sent before pong has seen "stop" would be lost in it.
    let _ = events::send(port);
    let acked = inter::wait_port(port, events::now() + 20_000 * MS);
    let unmapped = inter::unmap_grant(&slot, handle, true) == GNTST_OKAY;
    println!("{m}");
    let ok = unswitched <= ticks;
    println!(
        "bench: yield_switches verified={} unswitched={unswitched} extra={extra} ticks={ticks} ok={ok}",
        n - unswitched
    );
    if !acked {
        println!("bench-ping: pong never acknowledged the end of the yield phase");
    }
    Some(ok && unmapped && acked)
}

/// Pong's half of the yield ping-pong: yields until `port` is pending (ping's stop signal),
/// counting each yield in `counter` for ping to check, then acknowledges the stop. Returns
/// the count.
fn yield_until_signalled(port: u32, counter: *mut u64) -> u64 {
    let s = events::shared();
    let mut yields = 0u64;
    while !s.is_pending(port) {
        yields += 1;
        // SAFETY: `counter` is our own pool page, mapped writable; ping only reads it.
        unsafe { counter.write_volatile(yields) };
        let _ = guest::sched_yield();
    }
    s.clear_pending(port);
    let _ = events::send(port);
    yields
}

/// Runs the pong side.
pub fn pong(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let peer = number(line, "peer").unwrap_or(1) as u16;
    let remote = number(line, "port").unwrap_or(3) as u32;
    let pages = (number(line, "pages").unwrap_or(4) as u32).clamp(1, MAX_PAGES);
    let (wait, measure_yields) = wait_mode(line);
    if events::init(si).is_err() {
        return ShutdownRequest::Crash;
    }
    let Ok(table) = OwnTable::setup() else {
        return ShutdownRequest::Crash;
    };
    for i in 0..pages {
        let f = alloc_frame().expect("pool page");
        // SAFETY: our own pool page.
        fill_pattern(unsafe { page_bytes(&f) }, SEED, i as u64);
        table.grant(8 + i, peer, f.mfn, true);
    }
    let counter = alloc_frame().expect("pool page");
    // SAFETY: our own pool page.
    unsafe { (counter.va as *mut u64).write_volatile(0) };
    table.grant(COUNTER_REF, peer, counter.mfn, true);
    let Ok(port) = inter::bind_when_ready(peer, remote, events::now() + 10_000 * MS) else {
        return ShutdownRequest::Crash;
    };
    events::shared().clear_pending(port);
    let _ = events::send(port);
    for _ in 0..opts.iterations {
        wait(port, u64::MAX);
        let _ = events::send(port);
    }
    let started = measure_yields && inter::wait_port(port, events::now() + 600_000 * MS);
    let yields = if started { yield_until_signalled(port, counter.va as *mut u64) } else { 0 };
    // Spinning, pong stays loaded on its CPU while ping copies from its grants: those
    // copies take the hypervisor's pinned route (grants of a domain running elsewhere).
    let finished = wait(port, events::now() + 600_000 * MS);
    let revoked = (0..pages).filter(|&i| table.revoke(8 + i).is_ok()).count();
    let counter_revoked = table.revoke(COUNTER_REF).is_ok();
    println!(
        "bench-pong: {} round trips answered, finish {finished}, {revoked} of {pages} grants revoked",
        opts.iterations
    );
    println!("bench-pong: {yields} yields, counter grant revoked {counter_revoked}");
    ShutdownRequest::Poweroff
}
