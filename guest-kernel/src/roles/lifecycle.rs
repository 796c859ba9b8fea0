//! Domain life-cycle roles of the multi-domain scenarios:
//!
//! * `role=spin ms=T`: CPU-bound for T ms of system time (the weighted-scheduler scenario);
//!   prints how many loops it ran.
//! * `role=bystander pages=N seed=X ms=T`: fills N pages of its own memory, works for T ms
//!   (yielding now and then), then verifies every byte and that its own event channels
//!   still work (an IPI port: send, seen pending).
//! * `role=survivor peer=C gref=G seed=X`: grants a page read-write to C and allocates an
//!   unbound port for C, waits for C's event (C mapped the page and wrote a marker), then
//!   waits for C to die: its port must return to unbound, the grant must no longer be in
//!   use (revocable), the marker and the rest of the page must be as expected.
//! * `role=crash-fault` / `role=crash-shutdown` (`peer=S port=Q gref=G`): binds S's port,
//!   maps S's grant writable, writes the marker, allocates another port and grants a page of
//!   its own, signals S, then dies: an unhandled page fault (no trap table), or
//!   `SCHEDOP_shutdown(SHUTDOWN_crash)`.

use hypercall_abi::event_channel::{EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_UNBOUND};
use hypercall_abi::grant_table::GNTST_OKAY;
use hypercall_abi::guest;
use hypercall_abi::mm::DOMID_SELF;
use hypercall_abi::start_info::StartInfo;

use crate::arch::x86_64::triggers::Trig;
use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{number, ShutdownRequest};
use crate::domains::{count_matching, fill_pattern, pattern_byte};
use crate::kernel::events;
use crate::kernel::inter::{self, page_bytes, OwnTable, MS};
use crate::kernel::mm::{alloc_frame, Frame};
use crate::println;

/// The marker a crashing domain writes at offset 0 of the survivor's page (plus its id).
pub const MARKER: u64 = 0xdead_beef_0000_0000;

/// Runs `spin`.
pub fn spin(si: &StartInfo) -> ShutdownRequest {
    let ms = number(super::line(si), "ms").unwrap_or(4000);
    if events::init(si).is_err() {
        return ShutdownRequest::Crash;
    }
    let s = events::shared();
    let end = s.system_time_ns() + ms * MS;
    let mut loops = 0u64;
    let mut x = 1u64;
    while s.system_time_ns() < end {
        for _ in 0..1000 {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        loops += 1;
    }
    println!("spin: {loops} loops of 1000 in {ms} ms");
    ShutdownRequest::Poweroff
}

/// Runs `bystander`.
pub fn bystander(si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let pages = (number(line, "pages").unwrap_or(32) as usize).min(64);
    let seed = number(line, "seed").unwrap_or(3);
    let ms = number(line, "ms").unwrap_or(1000);
    let mut log = CheckLog::default();
    if !super::domu_start("bystander", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let mut frames = [None::<Frame>; 64];
    for (i, f) in frames.iter_mut().take(pages).enumerate() {
        let fr = alloc_frame().expect("pool page");
        // SAFETY: a fresh pool page of ours.
        fill_pattern(unsafe { page_bytes(&fr) }, seed, i as u64);
        *f = Some(fr);
    }
    let start = events::now();
    let mut rounds = 0u64;
    while events::now() < start + ms * MS {
        for _ in 0..10_000 {
            rounds = core::hint::black_box(rounds + 1);
        }
        let _ = guest::sched_yield();
    }
    let mut equal = 0;
    for (i, f) in frames.iter().take(pages).enumerate() {
        if let Some(f) = f {
            // SAFETY: our own pool page.
            equal += count_matching(unsafe { page_bytes(f) }, seed, i as u64);
        }
    }
    check!(
        log,
        "own memory after the others ran",
        "every byte of every page as written",
        equal == pages * 4096,
        "{equal} of {} bytes equal after {ms} ms",
        pages * 4096
    );
    let ipi = events::bind_ipi();
    let sent = ipi.and_then(events::send);
    let seen = ipi.is_ok_and(|p| events::shared().is_pending(p));
    check!(
        log,
        "own event channel (bind_ipi, send, pending)",
        "a port, 0, pending",
        sent == Ok(0) && seen,
        "port {}, send {}, pending {seen}",
        ret_of(ipi.map(u64::from)),
        ret_of(sent)
    );
    super::summary("bystander", &log)
}

/// Runs `survivor`.
pub fn survivor(si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let peer = number(line, "peer").unwrap_or(2) as u16;
    let gref = number(line, "gref").unwrap_or(8) as u32;
    let seed = number(line, "seed").unwrap_or(5);
    let mut log = CheckLog::default();
    if !super::domu_start("survivor", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let Ok(table) = OwnTable::setup() else {
        return ShutdownRequest::Crash;
    };
    let page = alloc_frame().expect("pool page");
    // SAFETY: our own pool page.
    fill_pattern(unsafe { page_bytes(&page) }, seed, 0);
    table.grant(gref, peer, page.mfn, false);
    let Ok(port) = inter::alloc_unbound(peer) else {
        return ShutdownRequest::Crash;
    };
    println!("survivor: granted ref {gref} read-write and port {port} to d{peer}; waiting");
    let fired = inter::wait_port(port, events::now() + 20_000 * MS);
    let bound = inter::status(DOMID_SELF, port).map(|s| s.status);
    let in_use = table.flags(gref);
    check!(
        log,
        "the peer bound our port and mapped our grant",
        "event, interdomain (2), GTF_writing set",
        fired && bound == Ok(EVTCHNSTAT_INTERDOMAIN) && in_use & 0x10 != 0,
        "event {fired}, status {bound:?}, flags {in_use:#x}"
    );
    // The peer dies now: wait until its end of the channel is gone.
    let deadline = events::now() + 20_000 * MS;
    let mut st = bound;
    while st == Ok(EVTCHNSTAT_INTERDOMAIN) && events::now() < deadline {
        inter::sleep_until(events::now() + 20 * MS);
        st = inter::status(DOMID_SELF, port).map(|s| s.status);
    }
    check!(log, "our port after the peer died", "unbound (1)", st == Ok(EVTCHNSTAT_UNBOUND), "{st:?}");
    let flags = table.flags(gref);
    let rv = table.revoke(gref);
    check!(
        log,
        "our grant after the peer died",
        "no GTF_reading/GTF_writing left, revoked",
        rv.is_ok(),
        "flags {flags:#x}, revoke {rv:?}"
    );
    // SAFETY: our own pool page, no longer granted.
    let bytes = unsafe { page_bytes(&page) };
    let marker = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let rest = bytes[8..].iter().enumerate().filter(|&(i, &b)| b == pattern_byte(seed, 0, i as u64 + 8)).count();
    check!(
        log,
        "our page: the peer's marker, the rest untouched",
        "marker | peer id, 4088 bytes equal",
        marker == MARKER | peer as u64 && rest == 4088,
        "marker {marker:#x}, {rest} of 4088 bytes equal"
    );
    let again = inter::alloc_unbound(peer + 100);
    check!(log, "our own work goes on (alloc_unbound)", "a port", again.is_ok(), "{}", ret_of(again.map(u64::from)));
    super::summary("survivor", &log)
}

/// Runs `crash-fault` (`by_shutdown` false) or `crash-shutdown`.
pub fn crash(si: &StartInfo, by_shutdown: bool) -> ShutdownRequest {
    let name = if by_shutdown { "crash-shutdown" } else { "crash-fault" };
    let line = super::line(si);
    let peer = number(line, "peer").unwrap_or(1) as u16;
    let remote_port = number(line, "port").unwrap_or(3) as u32;
    let gref = number(line, "gref").unwrap_or(8) as u32;
    let mut log = CheckLog::default();
    if !super::domu_start(name, &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let Ok(table) = OwnTable::setup() else {
        return ShutdownRequest::Crash;
    };
    let port = inter::bind_when_ready(peer, remote_port, events::now() + 10_000 * MS);
    let slot = alloc_frame().expect("pool page");
    let (st, handle) = inter::map_grant(peer, gref, &slot, false);
    if st == GNTST_OKAY {
        // SAFETY: the slot maps the peer's page writable (granted to us for this).
        unsafe { (slot.va as *mut u64).write_volatile(MARKER | si_domid_hint(line)) };
    }
    let extra = inter::alloc_unbound(peer);
    let own = alloc_frame().expect("pool page");
    table.grant(gref, peer, own.mfn, false);
    let sent = port.and_then(events::send);
    check!(
        log,
        "bind the peer's port, map its grant writable, write, signal",
        "a port, status 0, an extra port, send 0",
        port.is_ok() && st == GNTST_OKAY && extra.is_ok() && sent == Ok(0),
        "port {}, map {st} handle {handle}, extra port {}, send {}",
        ret_of(port.map(u64::from)),
        ret_of(extra.map(u64::from)),
        ret_of(sent)
    );
    // Let the peer see the mapping in use before we die.
    inter::sleep_until(events::now() + 200 * MS);
    if by_shutdown {
        println!("{name}: holding 2 ports, a grant mapping and a grant; SCHEDOP_shutdown(crash)");
        return ShutdownRequest::Crash;
    }
    println!("{name}: holding 2 ports, a grant mapping and a grant; unhandled page fault now");
    // SAFETY: no trap table is installed: the hypervisor must crash this domain here.
    let _ = unsafe { Trig::PageFaultRead.run(super::traps::UNMAPPED) };
    println!("{name}: FAIL: still running after an unhandled page fault");
    ShutdownRequest::Poweroff
}

/// Our domain id, from `self=` on the command line (domUs do not learn it otherwise).
fn si_domid_hint(line: &str) -> u64 {
    number(line, "self").unwrap_or(0)
}
