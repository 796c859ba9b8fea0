//! Isolation roles: a victim domU and attackers that try to reach it, each printing one
//! `check:` line per attack with the errno or `GNTST_*` code observed and Xen's expectation.
//!
//! Protocol (command lines, no xenstore): the victim (`attacker=A friend=F seed=X pages=N`)
//! fills N secret pages, grants A a read-only directory page at ref 8 listing their MFNs
//! (as if leaked), grants A secret page 0 read-only at ref 9 and F secret page 1 at ref 10,
//! allocates port 3 for A and port 4 for F. The attacker (`victim=V port=3`) binds port 3,
//! runs phase 1, signals; the victim revokes ref 9 and signals back; the attacker runs
//! phase 2 and signals "done". The victim then checks its secret pages byte for byte, that
//! its grants are not in use, and that port 4 is still unbound for F.
//!
//! * `attack-map`: maps the victim's frames directly (`update_va_mapping` RW and RO,
//!   `mmu_update` into a pinned L1 of its own, `MMUEXT_PIN_L1_TABLE`), names the victim as
//!   page owner in `mmu_update` and `mmuext_op` (and `DOMID_IO` in the latter), and copies them by
//!   frame number with `GNTTABOP_copy` (as the victim's domain and as DOMID_SELF).
//! * `attack-grant`: forges grant references (RW of a RO grant, a ref granted to F, a ref
//!   never granted, a ref beyond the table, a domain that does not exist, a forged handle)
//!   and reuses one after revocation (map, stale handle, copy).
//! * `attack-evtchn`: sends on, closes and unmasks ports it does not have, binds the
//!   victim's ports meant for others or already bound, and names the victim's domain in
//!   alloc_unbound, status and reset.
//! * `attack-flood`: exhausts its own ports, asks for too many grant frames and more memory,
//!   balloons a page out and back in (it must come back zeroed), then floods the victim's port and the hypervisor with hypercalls forever, refused ones
//!   among them (dom0 destroys it with `kill=`).

use hypercall_abi::event_channel::{self as ev, EVTCHNSTAT_UNBOUND};
use hypercall_abi::grant_table::{self as gt, GnttabCopy, GnttabCopyPtr};
use hypercall_abi::guest;
use hypercall_abi::mm::{
    DomId, MmuUpdate, DOMID_IO, DOMID_SELF, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE, UVMF_INVLPG,
};
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::Errno;

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{number, ShutdownRequest};
use crate::domains::{count_matching, fill_pattern};
use crate::kernel::events;
use crate::kernel::hyp;
use crate::kernel::inter::{self, gntst_name, page_bytes, OwnTable, MS};
use crate::kernel::mm::{self, alloc_frame, Frame};
use crate::println;

const MAX_SECRETS: usize = 8;

/// Runs the victim.
pub fn victim(si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let attacker = number(line, "attacker").unwrap_or(2) as u16;
    let friend = number(line, "friend").unwrap_or(3) as u16;
    let seed = number(line, "seed").unwrap_or(11);
    let pages = (number(line, "pages").unwrap_or(4) as usize).clamp(2, MAX_SECRETS);
    let mut log = CheckLog::default();
    if !super::domu_start("victim", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let Ok(table) = OwnTable::setup() else {
        return ShutdownRequest::Crash;
    };
    // What xl's toolstack leaves in a new domU's table: references 0 and 1 grant dom0 the
    // console and xenstore ring frames (writable), for its backends.
    let (console, store) = (table.entry(gt::GNTTAB_RESERVED_CONSOLE), table.entry(gt::GNTTAB_RESERVED_XENSTORE));
    // SAFETY: a union of two u32/u64 layouts; the domU member is the one a domU's start_info holds.
    let console_mfn = unsafe { si.console.dom_u.mfn };
    check!(
        log,
        "grant references 0 and 1 at start",
        "dom0 may use the console and xenstore rings",
        console.flags == gt::GTF_PERMIT_ACCESS
            && console.domid == 0
            && u64::from(console.frame) == console_mfn
            && store.flags == gt::GTF_PERMIT_ACCESS
            && store.domid == 0
            && u64::from(store.frame) == si.store_mfn,
        "console {console:?} (ring {console_mfn:#x}), xenstore {store:?} (ring {:#x})",
        si.store_mfn
    );
    let mut secrets = [None::<Frame>; MAX_SECRETS];
    let dir = alloc_frame().expect("pool page");
    // SAFETY: our own pool page.
    let list = unsafe { dir.entries() };
    list[0] = pages as u64;
    for (i, s) in secrets.iter_mut().take(pages).enumerate() {
        let f = alloc_frame().expect("pool page");
        // SAFETY: our own pool page.
        fill_pattern(unsafe { page_bytes(&f) }, seed, i as u64);
        list[1 + i] = f.mfn;
        *s = Some(f);
    }
    let secret = |i: usize| secrets[i].expect("secret page");
    table.grant(8, attacker, dir.mfn, true);
    table.grant(9, attacker, secret(0).mfn, true);
    table.grant(10, friend, secret(1).mfn, true);
    let (Ok(p_att), Ok(p_friend)) = (inter::alloc_unbound(attacker), inter::alloc_unbound(friend)) else {
        return ShutdownRequest::Crash;
    };
    println!("victim: {pages} secret pages; ref 8 (directory) and 9 to d{attacker}, 10 to d{friend}; ports {p_att} (d{attacker}) {p_friend} (d{friend})");
    let phase1 = inter::wait_port(p_att, events::now() + 30_000 * MS);
    let revoked = table.revoke(9);
    let ack = events::send(p_att);
    check!(
        log,
        "attacker's phase 1 over: revoke ref 9, acknowledge",
        "event, revoked (not in use), send 0",
        phase1 && revoked.is_ok() && ack == Ok(0),
        "event {phase1}, revoke {revoked:?}, send {}",
        ret_of(ack)
    );
    let done = inter::wait_port(p_att, events::now() + 30_000 * MS);
    let mut equal = 0;
    for i in 0..pages {
        // SAFETY: our own pool page.
        equal += count_matching(unsafe { page_bytes(&secret(i)) }, seed, i as u64);
    }
    check!(
        log,
        "secret pages after the attack",
        "every byte as written",
        done && equal == pages * 4096,
        "attacker done {done}, {equal} of {} bytes equal",
        pages * 4096
    );
    let (f8, f10) = (table.flags(8), table.flags(10));
    let (r8, r10) = (table.revoke(8), table.revoke(10));
    check!(
        log,
        "our grants 8 and 10 after the attack",
        "not in use (GTF_permit_access|GTF_readonly only), both revoked",
        r8.is_ok() && r10.is_ok(),
        "flags {f8:#x} {f10:#x}, revoke {r8:?} {r10:?}"
    );
    let st = inter::status(DOMID_SELF, p_friend).map(|s| (s.status, s.u[0] as u16));
    check!(
        log,
        "the friend's port after the attack",
        "still unbound for the friend",
        st == Ok((EVTCHNSTAT_UNBOUND, friend)),
        "{st:?}"
    );
    super::summary("victim", &log)
}

/// Binds the victim's port 3 (`victim=`, `port=`); `None` if that fails.
fn attacker_start(role: &str, log: &mut CheckLog, si: &StartInfo) -> Option<(u16, u32)> {
    let line = super::line(si);
    let victim = number(line, "victim").unwrap_or(1) as u16;
    let remote = number(line, "port").unwrap_or(3) as u32;
    if !super::domu_start(role, log, si) {
        return None;
    }
    let port = inter::bind_when_ready(victim, remote, events::now() + 10_000 * MS).ok()?;
    events::shared().clear_pending(port);
    Some((victim, port))
}

/// Ends phase 1: signals the victim and waits for its acknowledgement.
fn phase_two(port: u32) -> bool {
    events::send(port).is_ok() && inter::wait_port(port, events::now() + 30_000 * MS)
}

fn all_eq<T: PartialEq + Copy>(v: &[T], want: T) -> bool {
    !v.is_empty() && v.iter().all(|&x| x == want)
}

/// Runs `attack-map`.
pub fn attack_map(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let Some((victim, port)) = attacker_start("attack-map", &mut log, si) else {
        return ShutdownRequest::Crash;
    };
    let dir = alloc_frame().expect("pool page");
    let st = inter::copy_from_grant(victim, 8, 0, dir.mfn, 0, 4096);
    let n = (dir.read(0) as usize).min(MAX_SECRETS);
    check!(
        log,
        "copy the victim's directory grant (legitimate)",
        "status 0, some frame numbers",
        st == 0 && n > 0,
        "status {st}, {n} frames"
    );
    let ok2 = phase_two(port);
    let mut mfns = [0u64; MAX_SECRETS];
    for (i, m) in mfns.iter_mut().take(n).enumerate() {
        *m = dir.read(1 + i);
    }
    let mfns = &mfns[..n];
    let slot = alloc_frame().expect("pool page");
    let mut uva = [Ok(0u64); 2 * MAX_SECRETS];
    for (i, &m) in mfns.iter().enumerate() {
        // SAFETY: our own pool page's PTE; the hypervisor must refuse the foreign frame.
        uva[2 * i] = unsafe { hyp::update_va_mapping(slot.va, mm::pte_rw(m, 0), UVMF_INVLPG) };
        // SAFETY: as above.
        uva[2 * i + 1] = unsafe { hyp::update_va_mapping(slot.va, mm::pte_ro(m, 0), UVMF_INVLPG) };
    }
    let _ = mm::make_writable(slot.va);
    check!(
        log,
        "update_va_mapping of the victim's frames (RW and RO)",
        "-16 (EBUSY) for every one (Xen's get_page_from_l1e: could_not_pin)",
        all_eq(&uva[..2 * n], Err(Errno::EBUSY)),
        "{} tries, {} refused with -16 (EBUSY), first {}",
        2 * n,
        uva[..2 * n].iter().filter(|r| **r == Err(Errno::EBUSY)).count(),
        ret_of(uva[0])
    );
    let l1 = alloc_frame().expect("pool page");
    let pinned = mm::make_readonly(l1.va).and_then(|_| {
        // SAFETY: pinning a zeroed page of ours as an L1 only adds a type reference.
        unsafe { hyp::mmuext1(MMUEXT_PIN_L1_TABLE, l1.mfn) }
    });
    let mut mu = [Ok(0u64); MAX_SECRETS];
    let mut pin = [Ok(0u64); MAX_SECRETS];
    for (i, &m) in mfns.iter().enumerate() {
        let req = [MmuUpdate { ptr: ((l1.mfn << 12) + 8 * i as u64) | MMU_NORMAL_PT_UPDATE, val: mm::pte_ro(m, 0) }];
        // SAFETY: an entry of our own pinned L1, hooked into no address space.
        mu[i] = unsafe { hyp::mmu_update(&req).0 };
        // SAFETY: the hypervisor must refuse to type a frame we do not own.
        pin[i] = unsafe { hyp::mmuext1(MMUEXT_PIN_L1_TABLE, m) };
    }
    // SAFETY: our own L1, now unpinned and made writable again.
    unsafe {
        let _ = hyp::mmuext1(MMUEXT_UNPIN_TABLE, l1.mfn);
    }
    let _ = mm::make_writable(l1.va);
    check!(
        log,
        "mmu_update of a PTE to each victim frame",
        "-16 (EBUSY) for every one (as update_va_mapping)",
        pinned.is_ok() && all_eq(&mu[..n], Err(Errno::EBUSY)),
        "our L1 pinned {}, {n} tries, first {}",
        ret_of(pinned),
        ret_of(mu[0])
    );
    check!(
        log,
        "MMUEXT_PIN_L1_TABLE of each victim frame",
        "-22 (EINVAL) for every one",
        all_eq(&pin[..n], Err(Errno::EINVAL)),
        "{n} tries, first {}",
        ret_of(pin[0])
    );
    // Naming the victim (or DOMID_IO) as page owner, as only the control domain may: our
    // own zeroed pool page as the target, so a wrong answer would change nothing of theirs.
    let own_entry = [MmuUpdate { ptr: ((l1.mfn << 12) + 8 * 8) | MMU_NORMAL_PT_UPDATE, val: 0 }];
    // SAFETY: an entry of a page of ours that is not a table (refused either way).
    let (as_victim, done) = unsafe { hyp::mmu_update_as(&own_entry, u64::from(victim)) };
    check!(
        log,
        "mmu_update naming the victim as page owner",
        "-1 (EPERM), none done (xsm_mmu_update)",
        as_victim == Err(Errno::EPERM) && done == 0,
        "{}, {done} done",
        ret_of(as_victim)
    );
    let pin_own = [hypercall_abi::mm::MmuextOp { cmd: MMUEXT_PIN_L1_TABLE, arg1: l1.mfn, arg2: 0 }];
    // SAFETY: pinning a zeroed page of ours; refused before it runs.
    let ext = [victim, DOMID_IO].map(|owner| unsafe { hyp::mmuext_op_as(&pin_own, u64::from(owner)) });
    check!(
        log,
        "mmuext_op naming the victim or DOMID_IO as page owner",
        "-1 (EPERM) for both, none done (xsm_mmuext_op)",
        ext.iter().all(|&(r, done)| r == Err(Errno::EPERM) && done == 0),
        "{} and {}",
        ret_of(ext[0].0),
        ret_of(ext[1].0)
    );
    let buf = alloc_frame().expect("pool page");
    let mut by_dom = [0i16; MAX_SECRETS];
    let mut by_self = [0i16; MAX_SECRETS];
    for (i, &m) in mfns.iter().enumerate() {
        by_dom[i] = copy_gmfn(m, victim, buf.mfn);
        by_self[i] = copy_gmfn(m, DOMID_SELF, buf.mfn);
    }
    check!(
        log,
        "GNTTABOP_copy from a victim frame number, naming the victim",
        "-8 (GNTST_permission_denied) for every one",
        all_eq(&by_dom[..n], gt::GNTST_PERMISSION_DENIED),
        "{n} tries, first {} ({})",
        by_dom[0],
        gntst_name(by_dom[0])
    );
    check!(
        log,
        "GNTTABOP_copy from a victim frame number as DOMID_SELF",
        "-9 (GNTST_bad_page) for every one",
        all_eq(&by_self[..n], gt::GNTST_BAD_PAGE),
        "{n} tries, first {} ({})",
        by_self[0],
        gntst_name(by_self[0])
    );
    let done = events::send(port);
    check!(log, "phase 2 and \"done\"", "acknowledged, send 0", ok2 && done == Ok(0), "{ok2}, {}", ret_of(done));
    super::summary("attack-map", &log)
}

fn copy_gmfn(gmfn: u64, dom: DomId, dst_mfn: u64) -> i16 {
    let mut op = [GnttabCopy {
        source: GnttabCopyPtr { ref_or_gmfn: gmfn, domid: dom, offset: 0 },
        dest: GnttabCopyPtr { ref_or_gmfn: dst_mfn, domid: DOMID_SELF, offset: 0 },
        len: 4096,
        flags: 0,
        status: 0,
    }];
    match inter::copy_batch(&mut op) {
        Ok(_) => op[0].status,
        Err(e) => e.to_return() as i16,
    }
}

/// Prints a check of one grant status against Xen's.
fn gnt_check(log: &mut CheckLog, what: &str, got: i16, want: i16) {
    check!(log, what, gntst_name(want), got == want, "{got} ({})", gntst_name(got));
}

/// Runs `attack-grant`.
pub fn attack_grant(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let Some((victim, port)) = attacker_start("attack-grant", &mut log, si) else {
        return ShutdownRequest::Crash;
    };
    let seed = number(super::line(si), "seed").unwrap_or(11);
    let slot = alloc_frame().expect("pool page");
    let (st, h) = inter::map_grant(victim, 9, &slot, true);
    // SAFETY: the slot maps the victim's granted page read-only; we only read it.
    let seen = if st == 0 { count_matching(unsafe { page_bytes(&slot) }, seed, 0) } else { 0 };
    let un = if st == 0 { inter::unmap_grant(&slot, h, true) } else { st };
    check!(
        log,
        "map ref 9 read-only (legitimate), read, unmap",
        "status 0, 4096 bytes of the victim's page 0, unmap 0",
        st == 0 && seen == 4096 && un == 0,
        "status {st}, {seen} bytes, unmap {un}"
    );
    let try_map = |dom: DomId, gref: u32, ro: bool| {
        let (st, h) = inter::map_grant(dom, gref, &slot, ro);
        if st == 0 {
            inter::unmap_grant(&slot, h, true);
        }
        st
    };
    gnt_check(&mut log, "map ref 9 writable (granted read-only)", try_map(victim, 9, false), gt::GNTST_GENERAL_ERROR);
    gnt_check(&mut log, "map ref 10 (granted to another domain)", try_map(victim, 10, true), gt::GNTST_GENERAL_ERROR);
    gnt_check(&mut log, "map ref 12 (never granted)", try_map(victim, 12, true), gt::GNTST_GENERAL_ERROR);
    gnt_check(&mut log, "map ref 100000 (beyond the table)", try_map(victim, 100_000, true), gt::GNTST_BAD_GNTREF);
    gnt_check(&mut log, "map ref 9 of domain 77 (no such domain)", try_map(77, 9, true), gt::GNTST_BAD_DOMAIN);
    let buf = alloc_frame().expect("pool page");
    gnt_check(
        &mut log,
        "copy from ref 10 (granted to another domain)",
        inter::copy_from_grant(victim, 10, 0, buf.mfn, 0, 4096),
        gt::GNTST_GENERAL_ERROR,
    );
    gnt_check(
        &mut log,
        "copy from ref 100000 (beyond the table)",
        inter::copy_from_grant(victim, 100_000, 0, buf.mfn, 0, 4096),
        gt::GNTST_BAD_GNTREF,
    );
    gnt_check(&mut log, "unmap a forged handle 777", inter::unmap_grant(&slot, 777, true), gt::GNTST_BAD_HANDLE);
    let ok2 = phase_two(port);
    check!(log, "the victim revoked ref 9", "acknowledged", ok2, "{ok2}");
    gnt_check(&mut log, "reuse: map ref 9 after its revocation", try_map(victim, 9, true), gt::GNTST_GENERAL_ERROR);
    gnt_check(&mut log, "reuse: unmap with the stale handle", inter::unmap_grant(&slot, h, true), gt::GNTST_BAD_HANDLE);
    gnt_check(
        &mut log,
        "reuse: copy from ref 9 after its revocation",
        inter::copy_from_grant(victim, 9, 0, buf.mfn, 0, 4096),
        gt::GNTST_GENERAL_ERROR,
    );
    let done = events::send(port);
    check!(log, "send \"done\"", "0", done == Ok(0), "{}", ret_of(done));
    super::summary("attack-grant", &log)
}

fn errno_check(log: &mut CheckLog, what: &str, got: Result<u64, Errno>, want: Errno) {
    check!(log, what, "the Xen errno", got == Err(want), "{} (Xen: {want})", ret_of(got));
}

/// Runs `attack-evtchn`.
pub fn attack_evtchn(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let Some((victim, port)) = attacker_start("attack-evtchn", &mut log, si) else {
        return ShutdownRequest::Crash;
    };
    let friend_port = number(super::line(si), "friend_port").unwrap_or(4) as u32;
    errno_check(&mut log, "send on port 5 (not allocated)", events::send(5), Errno::EINVAL);
    errno_check(&mut log, "send on port 5000 (beyond the 2-level ABI)", events::send(5000), Errno::EINVAL);
    errno_check(&mut log, "close port 5 (not allocated)", events::close(5), Errno::EINVAL);
    errno_check(&mut log, "unmask port 5000", events::unmask(5000), Errno::EINVAL);
    let b = inter::bind_interdomain(victim, friend_port).map(u64::from);
    errno_check(&mut log, "bind the victim's port meant for another domain", b, Errno::EINVAL);
    let b = inter::bind_interdomain(victim, 3).map(u64::from);
    errno_check(&mut log, "bind the victim's port 3 a second time", b, Errno::EINVAL);
    let b = inter::bind_interdomain(victim, 1).map(u64::from);
    errno_check(&mut log, "bind the victim's xenstore port 1 (for dom0)", b, Errno::EINVAL);
    let mut a = ev::EvtchnAllocUnbound { dom: victim, remote_dom: 0, port: 0 };
    let r = guest::event_channel_op(ev::EVTCHNOP_ALLOC_UNBOUND, &mut a);
    errno_check(&mut log, "alloc_unbound in the victim's table", r, Errno::EPERM);
    let r = inter::status(victim, 3).map(|s| s.status as u64);
    errno_check(&mut log, "status of the victim's port 3", r, Errno::EPERM);
    let r = guest::event_channel_op(ev::EVTCHNOP_RESET, &mut ev::EvtchnReset { dom: victim });
    errno_check(&mut log, "reset of the victim's ports", r, Errno::EPERM);
    // The console: its input is the operator's, and a line of ours cannot pass for the
    // hypervisor's (the scenario looks for this one in the log).
    errno_check(&mut log, "read the console", guest::console_read(&mut [0u8; 16]), Errno::EPERM);
    let r = guest::console_write(b"\r(hv) d0 (Domain-0): forged by d2\x1b[2J\n");
    check!(log, "print a forged hypervisor line", "0", r == Ok(0), "{}", ret_of(r));
    let ok2 = phase_two(port);
    let done = events::send(port);
    check!(
        log,
        "our own port 3 still works (phase 2, \"done\")",
        "acknowledged, send 0",
        ok2 && done == Ok(0),
        "{ok2}, {}",
        ret_of(done)
    );
    super::summary("attack-evtchn", &log)
}

/// A balloon driver's round trip: a page written with a pattern is unmapped and given back
/// (`decrease_reservation`), then one is taken back (`populate_physmap`) and mapped where it
/// was. Whatever frame comes back must read as zeroes (the hypervisor zeroes what it hands
/// out: nothing of another domain, or of our own past, may show through), and the page count
/// must go down and up again.
fn balloon_round_trip(log: &mut CheckLog) {
    let current = || guest::memory_op_domid(hypercall_abi::memory::XENMEM_CURRENT_RESERVATION, DOMID_SELF);
    let page = alloc_frame().expect("pool page");
    // SAFETY: our own pool page, never handed out again (it leaves our memory below).
    fill_pattern(unsafe { page_bytes(&page) }, 77, 0);
    let before = current();
    // SAFETY: unmaps our pool page; nothing else uses it.
    let unmapped = unsafe { hyp::update_va_mapping(page.va, 0, UVMF_INVLPG) };
    let freed = hyp::memory_reservation(hypercall_abi::memory::XENMEM_DECREASE_RESERVATION, &mut [page.mfn]);
    let ballooned = current();
    let mut list = [0x7_7777u64];
    let given = hyp::memory_reservation(hypercall_abi::memory::XENMEM_POPULATE_PHYSMAP, &mut list);
    // SAFETY: maps the frame just given to us where the pool page was.
    let mapped = unsafe { hyp::update_va_mapping(page.va, mm::pte_rw(list[0], 0), UVMF_INVLPG) };
    // SAFETY: mapped (checked) and ours.
    let zeroed = mapped == Ok(0) && unsafe { page_bytes(&page) }.iter().all(|&b| b == 0);
    let after = current();
    check!(
        log,
        "balloon out a page written with a pattern, populate one back, map it",
        "0, 1 freed, 1 given, zero-filled, pages N -> N-1 -> N",
        unmapped == Ok(0)
            && freed == Ok(1)
            && given == Ok(1)
            && zeroed
            && before.is_ok_and(|n| ballooned == Ok(n - 1) && after == Ok(n)),
        "{}, {} freed, {} given, zero-filled {zeroed}, pages {} -> {} -> {}",
        ret_of(unmapped),
        ret_of(freed),
        ret_of(given),
        ret_of(before),
        ret_of(ballooned),
        ret_of(after)
    );
}

/// Runs `attack-flood`: never returns (dom0 destroys it).
pub fn attack_flood(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let Some((_victim, port)) = attacker_start("attack-flood", &mut log, si) else {
        return ShutdownRequest::Crash;
    };
    let (mut ports, mut last) = (0u32, Ok(0u32));
    while last.is_ok() && ports < 10_000 {
        last = inter::alloc_unbound(0);
        if last.is_ok() {
            ports += 1;
        }
    }
    check!(
        log,
        "alloc_unbound until refused",
        "-28 (ENOSPC) before 4096 ports",
        last == Err(Errno::ENOSPC) && ports < 4096,
        "{ports} ports, then {}",
        ret_of(last.map(u64::from))
    );
    let mut frames = [0u64; 1];
    let mut op =
        [gt::GnttabSetupTable { dom: DOMID_SELF, nr_frames: 4096, status: 0, frame_list: frames.as_mut_ptr() as u64 }];
    // SAFETY: setup_table's frame list is the local array of its length.
    let r = unsafe { guest::grant_table_op(gt::GNTTABOP_SETUP_TABLE, &mut op) };
    gnt_check(
        &mut log,
        "setup_table of 4096 grant frames",
        if r.is_ok() { op[0].status } else { -100 },
        gt::GNTST_GENERAL_ERROR,
    );
    let current = || guest::memory_op_domid(hypercall_abi::memory::XENMEM_CURRENT_RESERVATION, DOMID_SELF);
    let before = current();
    let mut extents = [0u64; 64];
    let r = hyp::memory_reservation(hypercall_abi::memory::XENMEM_INCREASE_RESERVATION, &mut extents);
    let after = current();
    check!(
        log,
        "increase_reservation of 64 pages beyond our allocation",
        "no page gained (Xen: 0 extents)",
        before.is_ok() && before == after && !matches!(r, Ok(n) if n > 0),
        "{}, pages {} -> {}",
        ret_of(r),
        ret_of(before),
        ret_of(after)
    );
    balloon_round_trip(&mut log);
    let ok2 = phase_two(port);
    let done = events::send(port);
    check!(log, "phase 2 and \"done\"", "acknowledged, send 0", ok2 && done == Ok(0), "{ok2}, {}", ret_of(done));
    println!(
        "attack-flood: {} passed, {} failed; flooding the victim's port and the hypervisor now",
        log.passed, log.failed
    );
    let mut calls = [hypercall_abi::multicall::MulticallEntry::new(hypercall_abi::hypercall::XEN_VERSION, &[0, 0]); 32];
    // An update of an entry in frame 0, which is not ours: refused, and logged by the
    // hypervisor each time (the log is rate-limited).
    let refused = MmuUpdate { ptr: MMU_NORMAL_PT_UPDATE, val: 0 };
    loop {
        let _ = events::send(port);
        let _ = guest::xen_version();
        // SAFETY: 32 xen_version(XENVER_version, NULL) calls, which only read a number.
        let _ = unsafe { guest::multicall(&mut calls) };
        // SAFETY: refused (the frame is not ours); nothing changes.
        let _ = unsafe { crate::kernel::hyp::mmu_update(&[refused]) };
    }
}
