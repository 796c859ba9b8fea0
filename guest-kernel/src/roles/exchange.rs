//! `role=grant-source` and `role=grant-sink`: two domUs exchange data through grants and an
//! interdomain event channel, rendezvousing through their command lines (no xenstore).
//!
//! * Source (`peer=S gref=G pages=N seed=X`): fills N pages with pattern X, grants them
//!   read-only to S at refs G..G+N, allocates an unbound port for S (a fresh domU's first:
//!   3), waits for S's event, then reads S's reply (page 0 of the reply pattern, which S
//!   granted back at its own ref G) by mapping it and by `GNTTABOP_copy`, checks it byte for
//!   byte, revokes its grants (none may still be in use) and sends "done".
//! * Sink (`peer=P port=Q gref=G pages=N seed=X`): binds P's port Q, maps each grant
//!   read-only and compares it byte for byte, checks that a writable map of a read-only
//!   grant is refused, copies every page again with `GNTTABOP_copy` and compares, grants
//!   its reply back at G, sends an event, waits for "done" and revokes its grant.
//!
//! Each side prints `check:` lines with the byte counts and statuses it observed.

use hypercall_abi::event_channel::EVTCHNSTAT_INTERDOMAIN;
use hypercall_abi::grant_table::{GNTST_GENERAL_ERROR, GNTST_OKAY};
use hypercall_abi::start_info::StartInfo;

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{number, ShutdownRequest};
use crate::domains::{count_matching, fill_pattern, reply_seed};
use crate::kernel::events;
use crate::kernel::inter::{self, page_bytes, OwnTable, MS};
use crate::kernel::mm::{alloc_frame, Frame};
use crate::println;

/// Most pages one exchange grants.
pub const MAX_PAGES: usize = 16;

/// The parameters both sides read.
struct Params {
    peer: u16,
    gref: u32,
    pages: usize,
    seed: u64,
}

fn params(si: &StartInfo) -> Params {
    let line = super::line(si);
    Params {
        peer: number(line, "peer").unwrap_or(1) as u16,
        gref: number(line, "gref").unwrap_or(8) as u32,
        pages: (number(line, "pages").unwrap_or(4) as usize).clamp(1, MAX_PAGES),
        seed: number(line, "seed").unwrap_or(1),
    }
}

/// Runs the source.
pub fn source(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let p = params(si);
    let want_port = number(super::line(si), "port");
    if !super::domu_start("grant-source", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let table = match OwnTable::setup() {
        Ok(t) => t,
        Err(e) => {
            println!("grant-source: {e}");
            return ShutdownRequest::Crash;
        }
    };
    let mut frames = [None::<Frame>; MAX_PAGES];
    for (i, slot) in frames.iter_mut().take(p.pages).enumerate() {
        let f = alloc_frame().expect("pool page");
        // SAFETY: a fresh pool page, mapped writable and ours alone.
        fill_pattern(unsafe { page_bytes(&f) }, p.seed, i as u64);
        table.grant(p.gref + i as u32, p.peer, f.mfn, true);
        *slot = Some(f);
    }
    let port = inter::alloc_unbound(p.peer);
    check!(
        log,
        "alloc_unbound for the sink",
        "the port= given (a fresh domU's first port: 3)",
        port.is_ok() && want_port.is_none_or(|w| port == Ok(w as u32)),
        "{}",
        ret_of(port.map(u64::from))
    );
    let Ok(port) = port else {
        return super::summary("grant-source", &log);
    };
    println!(
        "grant-source: granted {} pages (refs {}..{}) to d{}, port {port}; waiting",
        p.pages,
        p.gref,
        p.gref + p.pages as u32 - 1,
        p.peer
    );
    let fired = inter::wait_port(port, events::now() + 20_000 * MS);
    check!(log, "event from the sink", "received", fired, "{fired}");

    let (slot, buf) = (alloc_frame().expect("pool page"), alloc_frame().expect("pool page"));
    let (st, handle) = inter::map_grant(p.peer, p.gref, &slot, true);
    // SAFETY: the slot now maps the peer's granted page read-only; we only read it.
    let mapped = if st == GNTST_OKAY { count_matching(unsafe { page_bytes(&slot) }, reply_seed(p.seed), 0) } else { 0 };
    let un = if st == GNTST_OKAY { inter::unmap_grant(&slot, handle, true) } else { st };
    check!(
        log,
        "map the sink's reply grant, compare, unmap",
        "status 0, 4096 of 4096 bytes equal, unmap 0",
        st == GNTST_OKAY && mapped == 4096 && un == GNTST_OKAY,
        "status {st}, {mapped} of 4096 bytes equal, unmap {un}"
    );
    let cst = inter::copy_from_grant(p.peer, p.gref, 0, buf.mfn, 0, 4096);
    // SAFETY: `buf` is our own writable pool page.
    let copied = count_matching(unsafe { page_bytes(&buf) }, reply_seed(p.seed), 0);
    check!(
        log,
        "GNTTABOP_copy of the sink's reply",
        "status 0, 4096 of 4096 bytes equal",
        cst == GNTST_OKAY && copied == 4096,
        "status {cst}, {copied} of 4096 bytes equal"
    );
    let mut revoked = 0;
    for i in 0..p.pages as u32 {
        if table.revoke(p.gref + i).is_ok() {
            revoked += 1;
        }
    }
    check!(
        log,
        "revoke our grants (the sink unmapped them all)",
        "every one",
        revoked == p.pages,
        "{revoked} of {}",
        p.pages
    );
    let s = events::send(port);
    check!(log, "send \"done\"", "0", s == Ok(0), "{}", ret_of(s));
    super::summary("grant-source", &log)
}

/// Runs the sink.
pub fn sink(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let p = params(si);
    let remote_port = number(super::line(si), "port").unwrap_or(3) as u32;
    if !super::domu_start("grant-sink", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let Ok(table) = OwnTable::setup() else {
        println!("grant-sink: grant table set-up failed");
        return ShutdownRequest::Crash;
    };
    let port = inter::bind_when_ready(p.peer, remote_port, events::now() + 10_000 * MS);
    let Ok(port) = port else {
        check!(log, "bind_interdomain", "a port", false, "{}", ret_of(port.map(u64::from)));
        return super::summary("grant-sink", &log);
    };
    events::shared().clear_pending(port);
    let st = inter::status(hypercall_abi::mm::DOMID_SELF, port);
    let ok = st.is_ok_and(|s| s.status == EVTCHNSTAT_INTERDOMAIN && s.u[0] as u16 == p.peer && s.u[1] == remote_port);
    check!(
        log,
        "bind_interdomain, then status",
        "interdomain to the source's port",
        ok,
        "local port {port}, status {:?}",
        st.map(|s| (s.status, s.u[0] as u16, s.u[1]))
    );

    let (slot, buf) = (alloc_frame().expect("pool page"), alloc_frame().expect("pool page"));
    let (mut statuses, mut equal) = (0i32, 0usize);
    for i in 0..p.pages {
        let (st, handle) = inter::map_grant(p.peer, p.gref + i as u32, &slot, true);
        if st == GNTST_OKAY {
            // SAFETY: the slot maps the granted page read-only; we only read it.
            equal += count_matching(unsafe { page_bytes(&slot) }, p.seed, i as u64);
            statuses += inter::unmap_grant(&slot, handle, true) as i32;
        }
        statuses += st as i32;
    }
    let total = p.pages * 4096;
    check!(
        log,
        "map each grant read-only, compare byte for byte, unmap",
        "all statuses 0, every byte equal",
        statuses == 0 && equal == total,
        "statuses sum {statuses}, {equal} of {total} bytes equal"
    );
    let (rw, h) = inter::map_grant(p.peer, p.gref, &slot, false);
    if rw == GNTST_OKAY {
        inter::unmap_grant(&slot, h, true);
    }
    check!(
        log,
        "writable map of a read-only grant",
        "-1 (GNTST_general_error)",
        rw == GNTST_GENERAL_ERROR,
        "{rw} ({})",
        inter::gntst_name(rw)
    );
    let (mut cst, mut cequal) = (0i32, 0usize);
    for i in 0..p.pages {
        cst += inter::copy_from_grant(p.peer, p.gref + i as u32, 0, buf.mfn, 0, 4096) as i32;
        // SAFETY: our own writable pool page.
        cequal += count_matching(unsafe { page_bytes(&buf) }, p.seed, i as u64);
    }
    check!(
        log,
        "GNTTABOP_copy of each grant, compare",
        "all statuses 0, every byte equal",
        cst == 0 && cequal == total,
        "statuses sum {cst}, {cequal} of {total} bytes equal"
    );

    // SAFETY: our own writable pool page.
    fill_pattern(unsafe { page_bytes(&buf) }, reply_seed(p.seed), 0);
    table.grant(p.gref, p.peer, buf.mfn, true);
    let s = events::send(port);
    check!(log, "send the reply event", "0", s == Ok(0), "{}", ret_of(s));
    let done = inter::wait_port(port, events::now() + 20_000 * MS);
    let rv = table.revoke(p.gref);
    check!(
        log,
        "\"done\" from the source, then revoke our reply grant",
        "received, revoked (not in use)",
        done && rv.is_ok(),
        "received {done}, revoke {rv:?}"
    );
    let _ = events::close(port);
    super::summary("grant-sink", &log)
}
