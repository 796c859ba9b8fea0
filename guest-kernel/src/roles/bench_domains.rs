//! `role=bench-ping` / `role=bench-pong` (`peer=`, `iterations=N`, `pages=P`): benchmarks
//! between two domUs, printed as [`Measurement`] lines (rdtsc cycles) by the ping side:
//!
//! * `evtchn_roundtrip`: N × (send on the interdomain port, pong's poll wakes and sends
//!   back, ping's poll wakes);
//! * `grant_copy_4k`: one `GNTTABOP_copy` of 4096 bytes per call from pong's grants (P
//!   pages cycled) into a page of ours, `grant_copy_4k_batched`: the same copies, 16 per call
//!   (as backends batch them), and `local_copy_4k`: a plain 4096-byte copy between two of our
//!   pages. About N of each, timed in 10 interleaved rounds; each line gives its best round.
//!   Then `bench: grant_copy_vs_local ratio_milli=R` and
//!   `bench: grant_copy_batched_vs_local ratio_milli=R` (grant / local, per copy);
//! * `grant_map_unmap`: N × `map_grant_ref` + `unmap_grant_ref` of one grant;
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
//! Ping allocates the port (3) for pong; pong binds it, grants its pages and its counter
//! page, signals, answers N events, yields until the stop signal, waits for "finish" and
//! revokes its grants.

use hypercall_abi::grant_table::{GnttabCopy, GnttabCopyPtr, GNTST_OKAY};
use hypercall_abi::guest;
use hypercall_abi::mm::DOMID_SELF;
use hypercall_abi::start_info::StartInfo;

use crate::bench::Measurement;
use crate::cmdline::{number, Options, ShutdownRequest};
use crate::domains::{count_matching, fill_pattern, ratio_milli};
use crate::kernel::events;
use crate::kernel::inter::{self, page_bytes, OwnTable, MS};
use crate::kernel::mm::alloc_frame;
use crate::println;

/// Copies per `GNTTABOP_copy` hypercall in the batched measurement.
const BATCH: usize = 16;
/// Interleaved rounds of the copy measurements (each reports its best round).
const ROUNDS: u64 = 10;

const MAX_PAGES: u32 = 16;
const SEED: u64 = 42;
/// Grant reference of pong's yield counter page (after the at most 16 data pages from 8).
const COUNTER_REF: u32 = 8 + MAX_PAGES;

/// Runs the ping side (it prints the figures).
pub fn ping(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let peer = number(line, "peer").unwrap_or(2) as u16;
    let pages = (number(line, "pages").unwrap_or(4) as u32).clamp(1, MAX_PAGES);
    let n = opts.iterations;
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
    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = events::send(port);
        inter::wait_port(port, u64::MAX);
    }
    println!("{}", Measurement::from_tsc("evtchn_roundtrip", n, start, guest::rdtsc()));
    let Some(yields_ok) = yield_roundtrips(peer, port, n) else {
        return ShutdownRequest::Crash;
    };

    let (src, dst) = (alloc_frame().expect("pool page"), alloc_frame().expect("pool page"));
    // SAFETY: our own pool page.
    fill_pattern(unsafe { page_bytes(&src) }, SEED, 0);
    // The three copies are timed in interleaved rounds and each keeps its best round, so a
    // burst of load from the host (a shared 2-core machine) cannot land on one side of the
    // ratio only: all three see the same conditions, round by round.
    let per_round = n.div_ceil(ROUNDS).div_ceil(BATCH as u64) * BATCH as u64;
    let (mut grant, mut batched, mut local) = (None, None, None);
    let mut bad = 0u64;
    let mut last_ok = true;
    for round in 0..ROUNDS {
        let first = round * per_round;
        let start = guest::rdtsc();
        // The grant cycles through pong's pages (a counter, not `%`: a division is a slow
        // helper call under TCG and no part of what is measured).
        let mut page = (first % u64::from(pages)) as u32;
        for _ in 0..per_round {
            bad += (inter::copy_from_grant(peer, 8 + page, 0, dst.mfn, 0, 4096) != GNTST_OKAY) as u64;
            page = if page + 1 == pages { 0 } else { page + 1 };
        }
        keep_best(&mut grant, Measurement::from_tsc("grant_copy_4k", per_round, start, guest::rdtsc()));
        // SAFETY: our own pool page.
        let dst_bytes = unsafe { page_bytes(&dst) };
        last_ok &= count_matching(dst_bytes, SEED, (first + per_round - 1) % pages as u64) == 4096;
        // The same copies in batches of 16 per hypercall, as a backend issues them (netback
        // and blkback batch their GNTTABOP_copy requests): the hypercall's fixed cost is shared.
        let start = guest::rdtsc();
        let mut page = (first % u64::from(pages)) as u32;
        for _ in 0..per_round / BATCH as u64 {
            let mut ops: [GnttabCopy; BATCH] = core::array::from_fn(|_| GnttabCopy {
                source: GnttabCopyPtr {
                    ref_or_gmfn: {
                        let this = page;
                        page = if page + 1 == pages { 0 } else { page + 1 };
                        8 + u64::from(this)
                    },
                    domid: peer,
                    offset: 0,
                },
                dest: GnttabCopyPtr { ref_or_gmfn: dst.mfn, domid: DOMID_SELF, offset: 0 },
                len: 4096,
                flags: hypercall_abi::grant_table::GNTCOPY_SOURCE_GREF,
                status: 0,
            });
            let ok = inter::copy_batch(&mut ops).is_ok();
            bad += ops.iter().filter(|op| !ok || op.status != GNTST_OKAY).count() as u64;
        }
        keep_best(&mut batched, Measurement::from_tsc("grant_copy_4k_batched", per_round, start, guest::rdtsc()));
        // SAFETY: our own pool page.
        let dst_bytes = unsafe { page_bytes(&dst) };
        last_ok &= count_matching(dst_bytes, SEED, (first + per_round - 1) % pages as u64) == 4096;
        let start = guest::rdtsc();
        for _ in 0..per_round {
            // SAFETY: two distinct pool pages of ours, 4096 bytes each.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    core::hint::black_box(src.va as *const u8),
                    core::hint::black_box(dst.va as *mut u8),
                    4096,
                )
            };
        }
        keep_best(&mut local, Measurement::from_tsc("local_copy_4k", per_round, start, guest::rdtsc()));
    }
    let (grant, batched, local) =
        (grant.expect("ROUNDS > 0"), batched.expect("ROUNDS > 0"), local.expect("ROUNDS > 0"));
    println!("{grant}");
    println!("{batched}");
    println!("{local}");
    println!(
        "bench: grant_copy_vs_local ratio_milli={} (failed copies {bad}, last copy verified {last_ok})",
        ratio_milli(local.cycles_per_call(), grant.cycles_per_call())
    );
    println!(
        "bench: grant_copy_batched_vs_local ratio_milli={}",
        ratio_milli(local.cycles_per_call(), batched.cycles_per_call())
    );

    let slot = alloc_frame().expect("pool page");
    let mut failed = 0u64;
    let start = guest::rdtsc();
    for _ in 0..n {
        let (st, h) = inter::map_grant(peer, 8, &slot, true);
        failed += (st != GNTST_OKAY || inter::unmap_grant(&slot, h, false) != GNTST_OKAY) as u64;
    }
    let mapm = Measurement::from_tsc("grant_map_unmap", n, start, guest::rdtsc());
    let _ = crate::kernel::mm::make_writable(slot.va);
    println!("{mapm}");
    println!("bench: grant_map_unmap failures={failed}");
    let _ = events::send(port);
    if bad == 0 && failed == 0 && last_ok && yields_ok {
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
    let _ = events::send(port); // start: pong leaves its wait and yields in a loop
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
        inter::wait_port(port, u64::MAX);
        let _ = events::send(port);
    }
    let started = inter::wait_port(port, events::now() + 600_000 * MS);
    let yields = if started { yield_until_signalled(port, counter.va as *mut u64) } else { 0 };
    let finished = inter::wait_port(port, events::now() + 600_000 * MS);
    let revoked = (0..pages).filter(|&i| table.revoke(8 + i).is_ok()).count();
    let counter_revoked = table.revoke(COUNTER_REF).is_ok();
    println!(
        "bench-pong: {} round trips answered, finish {finished}, {revoked} of {pages} grants revoked",
        opts.iterations
    );
    println!("bench-pong: {yields} yields, counter grant revoked {counter_revoked}");
    ShutdownRequest::Poweroff
}

/// Keeps in `best` the measurement with the fewest cycles per call.
fn keep_best(best: &mut Option<Measurement>, m: Measurement) {
    if best.is_none_or(|b| m.cycles_per_call() < b.cycles_per_call()) {
        *best = Some(m);
    }
}
