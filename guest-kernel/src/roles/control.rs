//! `role=control` (dom0): the control domain of the multi-domain scenarios.
//!
//! Binds `VIRQ_DOM_EXC`, prints an `xl list`-style table from `XEN_DOMCTL_getdomaininfo`
//! (walking ids upwards; names come from `names=a,b,...` for ids 1, 2, ... since domctl has
//! no name field), optionally samples the CPU time of two domains over a window
//! (`ratio=A,B window_ms=W settle_ms=S expect_ratio_milli=R`: prints the ratio B/A), then
//! waits in `SCHEDOP_poll` on the VIRQ port until every domU is gone, reporting each one
//! that disappears. With `kill=N`, domain N is paused (and seen paused) and destroyed with
//! `XEN_DOMCTL_destroydomain` once it is the only domU left (a domain that never ends by
//! itself, such as a hypercall flooder). `kill_running=N` destroys it without pausing it
//! first, so on a multiprocessor it is running on its CPU at that moment (the call returns
//! once that CPU has let go of it and it is torn down); `kill_shutdown=N` shuts it down with
//! `SCHEDOP_remote_shutdown` instead. `unpause=1` unpauses every domU
//! after the first listing (for domUs created paused: the hypervisor's `domu_start=paused`,
//! as `xl create -p`), so none can end before dom0 has seen it. `expect=N`: how many domUs
//! must go. Prints the table again and powers off (crashes if a check failed). `timeout_ms=`
//! bounds the wait.

use hypercall_abi::domctl::{
    GetDomainInfo, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_PAUSEDOMAIN,
    XEN_DOMCTL_UNPAUSEDOMAIN, XEN_DOMINF_DYING, XEN_DOMINF_PAUSED,
};
use hypercall_abi::event_channel::VIRQ_DOM_EXC;
use hypercall_abi::guest::raw;
use hypercall_abi::hypercall as nr;
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::Errno;

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{self, ShutdownRequest};
use crate::domains::{name_of, ratio_milli, within_percent, XlRow, XL_HEADER};
use crate::kernel::events;
use crate::kernel::inter::{self, MS};
use crate::println;

/// Calls `f` for every domain, in id order; returns the bit set of live domU ids (< 64).
fn walk(mut f: impl FnMut(&GetDomainInfo)) -> u64 {
    let mut live = 0u64;
    let mut id = 0u16;
    while let Ok(info) = inter::domain_info(id) {
        f(&info);
        if info.domain > 0 && info.domain < 64 {
            live |= 1 << info.domain;
        }
        id = info.domain + 1;
    }
    live
}

/// Prints the table; returns the live domU set.
fn xl_list(when: &str, names: Option<&str>) -> u64 {
    println!("control: xl list ({when})");
    println!("{XL_HEADER}");
    walk(|i| {
        let row = XlRow {
            name: name_of(names, i.domain),
            id: i.domain,
            tot_pages: i.tot_pages,
            vcpus: i.nr_online_vcpus,
            flags: i.flags,
            cpu_time_ns: i.cpu_time,
        };
        println!("{row}");
    })
}

fn cpu_time(id: u16) -> Option<u64> {
    inter::domain_info(id).ok().filter(|i| i.domain == id).map(|i| i.cpu_time)
}

/// Runs the role.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let line = cmdline::as_text(si.cmd_line_bytes());
    let names = cmdline::value(line, "names");
    let expect = cmdline::number(line, "expect").unwrap_or(0);
    let kill = cmdline::number(line, "kill").map(|k| (k as u16, Kill::PauseDestroy));
    let kill = kill.or(cmdline::number(line, "kill_running").map(|k| (k as u16, Kill::DestroyRunning)));
    let kill = kill.or(cmdline::number(line, "kill_shutdown").map(|k| (k as u16, Kill::RemoteShutdown)));
    let timeout = cmdline::number(line, "timeout_ms").unwrap_or(60_000) * MS;
    let mut log = CheckLog::default();

    if events::init(si).is_err() {
        println!("control: mapping shared_info failed");
        return ShutdownRequest::Crash;
    }
    let start = events::now();
    let virq = events::bind_virq(VIRQ_DOM_EXC);
    check!(log, "bind VIRQ_DOM_EXC in dom0", "a port", virq.is_ok(), "{}", ret_of(virq.map(u64::from)));
    let Ok(virq) = virq else {
        return super::summary("control", &log);
    };
    bad_version(&mut log);

    let mut live = xl_list("before", names);
    let domus = live.count_ones() as u64;
    check!(
        log,
        "getdomaininfo walk: domUs present at start",
        "at least expect=",
        domus >= expect,
        "{domus} (expect={expect})"
    );
    if cmdline::number(line, "unpause") == Some(1) {
        nested_pauses(&mut log, live);
        // The domUs were created paused (the hypervisor's `domu_start=paused`, as after
        // `xl create -p`): they start now that we have listed them and wait for their end.
        let unpaused = (1..64u16)
            .filter(|&id| live & (1 << id) != 0)
            .map(|id| inter::domctl(XEN_DOMCTL_UNPAUSEDOMAIN, id))
            .filter(|r| r.is_ok())
            .count();
        check!(log, "unpause the domUs", "every one", unpaused as u64 == domus, "{unpaused} of {domus}");
        if let Some(k) = (1..64u16).find(|&id| live & (1 << id) != 0) {
            // A woken domain may preempt us (and even end) before this call: then it is
            // -ESRCH, as in Xen, provided it is really gone.
            let again = inter::domctl(XEN_DOMCTL_UNPAUSEDOMAIN, k).map(|_| 0);
            let gone = again == Err(Errno::ESRCH) && inter::domain_info(k).map(|i| i.domain) != Ok(k);
            check!(
                log,
                "one unpausedomain more",
                "-EINVAL (-ESRCH if the domain has ended)",
                again == Err(Errno::EINVAL) || gone,
                "{}",
                ret_of(again)
            );
        }
    }

    if let Some(pair) = cmdline::value(line, "ratio") {
        ratio(&mut log, line, pair, names);
    }

    let (mut gone, mut virqs, mut killed) = (0u64, 0u64, false);
    while live != 0 && events::now() < start + timeout {
        if inter::wait_port(virq, events::now() + 100 * MS) {
            virqs += 1;
            println!("control: VIRQ_DOM_EXC #{virqs}");
        }
        let now_live = walk(|_| {});
        for id in 1..64u16 {
            if live & (1 << id) != 0 && now_live & (1 << id) == 0 {
                gone += 1;
                println!("control: d{id} ({}) is gone", name_of(names, id).unwrap_or("?"));
            }
        }
        live = now_live;
        if let Some((k, how)) = kill.filter(|&(k, _)| !killed && live == 1 << k) {
            killed = true;
            match how {
                Kill::PauseDestroy => destroy(&mut log, k, names),
                Kill::DestroyRunning => destroy_running(&mut log, k, names),
                Kill::RemoteShutdown => shut_down(&mut log, k, names),
            }
        }
    }
    xl_list("after", names);
    check!(
        log,
        "domUs gone (VIRQ_DOM_EXC received)",
        "expect= gone, none left, at least one VIRQ",
        gone == expect && live == 0 && virqs >= 1,
        "{gone} gone, {} left, {virqs} VIRQs",
        live.count_ones()
    );
    super::summary("control", &log)
}

/// How `kill=`, `kill_running=` and `kill_shutdown=` end the last domU.
#[derive(Clone, Copy)]
enum Kill {
    PauseDestroy,
    DestroyRunning,
    RemoteShutdown,
}

/// Shuts domain `k` down with `SCHEDOP_remote_shutdown` (reason poweroff): the call returns
/// at once, and the wait loop sees the domain go.
fn shut_down(log: &mut CheckLog, k: u16, names: Option<&str>) {
    let name = name_of(names, k).unwrap_or("?");
    println!("control: d{k} ({name}) is the last domU and does not end: shutting it down");
    let r = hypercall_abi::guest::sched_remote_shutdown(k, hypercall_abi::sched::SHUTDOWN_POWEROFF);
    check!(log, "sched_op remote_shutdown", "0", r == Ok(0), "{}", ret_of(r));
}

/// A wrong interface version is refused with -EACCES before anything else.
fn bad_version(log: &mut CheckLog) {
    let mut op = inter::Domctl::default();
    op.hdr.cmd = XEN_DOMCTL_GETDOMAININFO;
    op.hdr.interface_version = 0x14;
    // SAFETY: a valid xen_domctl buffer Xen reads (and would write back).
    let r = Errno::check(unsafe { raw::hypercall1(nr::DOMCTL, &mut op as *mut _ as u64) });
    check!(log, "domctl with interface version 0x14", "-13 (EACCES)", r == Err(Errno::EACCES), "{}", ret_of(r));
}

/// Samples the CPU time of domains A and B (`ratio=A,B`) over the window and prints B/A.
fn ratio(log: &mut CheckLog, line: &str, pair: &str, names: Option<&str>) {
    let mut ids = pair.split(',').filter_map(|s| s.parse::<u16>().ok());
    let (Some(a), Some(b)) = (ids.next(), ids.next()) else {
        println!("control: bad ratio={pair}");
        return;
    };
    let window = cmdline::number(line, "window_ms").unwrap_or(3000);
    let settle = cmdline::number(line, "settle_ms").unwrap_or(300);
    inter::sleep_until(events::now() + settle * MS);
    let (a0, b0, t0) = (cpu_time(a), cpu_time(b), events::now());
    xl_list("both running", names);
    inter::sleep_until(t0 + window * MS);
    let (a1, b1, t1) = (cpu_time(a), cpu_time(b), events::now());
    let (Some(a0), Some(b0), Some(a1), Some(b1)) = (a0, b0, a1, b1) else {
        check!(log, "cpu time sampled", "both domains alive", false, "one is gone");
        return;
    };
    let (da, db) = (a1.saturating_sub(a0), b1.saturating_sub(b0));
    let r = ratio_milli(da, db);
    println!(
        "control: cpu time over {} ms: d{a} +{da} ns, d{b} +{db} ns, ratio d{b}/d{a} = {}.{:03}",
        (t1 - t0) / MS,
        r / 1000,
        r % 1000
    );
    if let Some(want) = cmdline::number(line, "expect_ratio_milli") {
        check!(
            log,
            "cpu time ratio (thousandths)",
            "within 10% of expect_ratio_milli",
            within_percent(r, want, 10),
            "{r} (expected {want})"
        );
    }
}

/// Destroys domain `k` while it runs: answered 0 once it is torn down, so it is gone.
fn destroy_running(log: &mut CheckLog, k: u16, names: Option<&str>) {
    let name = name_of(names, k).unwrap_or("?");
    println!("control: d{k} ({name}) is the last domU and does not end: destroying it as it runs");
    let d = inter::domctl(XEN_DOMCTL_DESTROYDOMAIN, k).map(|_| 0);
    let state = match inter::domain_info(k).map(|i| (i.domain, i.flags)) {
        Ok((id, flags)) if id == k && flags & XEN_DOMINF_DYING != 0 => "listed dying",
        Ok((id, _)) if id == k => "still listed",
        _ => "gone",
    };
    check!(
        log,
        "domctl destroydomain of a running domain, then getdomaininfo",
        "0, then gone",
        d == Ok(0) && state == "gone",
        "{}, {state}",
        ret_of(d)
    );
}

/// Pauses count, as Xen's `controller_pause_count`: on the first domU (paused once since
/// its creation), one more pause and one unpause leave it paused; the unpause of all domUs
/// then starts it, and one unpause more is `-EINVAL`.
fn nested_pauses(log: &mut CheckLog, live: u64) {
    let Some(k) = (1..64u16).find(|&id| live & (1 << id) != 0) else { return };
    let p = inter::domctl(XEN_DOMCTL_PAUSEDOMAIN, k).map(|_| 0);
    let u = inter::domctl(XEN_DOMCTL_UNPAUSEDOMAIN, k).map(|_| 0);
    let flags = inter::domain_info(k).map(|i| i.flags).unwrap_or(0);
    check!(
        log,
        "domctl pausedomain then unpausedomain of a paused domU",
        "0, 0, still paused",
        p == Ok(0) && u == Ok(0) && flags & XEN_DOMINF_PAUSED != 0,
        "{}, {}, paused {}",
        ret_of(p),
        ret_of(u),
        flags & XEN_DOMINF_PAUSED != 0
    );
}

/// Pauses domain `k` (checks the paused flag), then destroys it.
fn destroy(log: &mut CheckLog, k: u16, names: Option<&str>) {
    let name = name_of(names, k).unwrap_or("?");
    println!("control: d{k} ({name}) is the last domU and does not end: pausing and destroying it");
    // A pause undone in the same multicall: the call must not wait for the domain (which
    // may be running on another CPU, and runs on) to stop.
    let (mut pause, mut unpause) =
        (inter::Domctl::new(XEN_DOMCTL_PAUSEDOMAIN, k), inter::Domctl::new(XEN_DOMCTL_UNPAUSEDOMAIN, k));
    let mut batch = [
        MulticallEntry::new(nr::DOMCTL, &[&mut pause as *mut inter::Domctl as u64]),
        MulticallEntry::new(nr::DOMCTL, &[&mut unpause as *mut inter::Domctl as u64]),
    ];
    // SAFETY: both entries name valid xen_domctl buffers that outlive the call.
    let r = unsafe { hypercall_abi::guest::multicall(&mut batch) };
    let res = [batch[0].result_signed(), batch[1].result_signed()];
    let running_on = inter::domain_info(k).map(|i| i.domain == k && i.flags & XEN_DOMINF_PAUSED == 0);
    check!(
        log,
        "multicall pausedomain + unpausedomain of a running domain",
        "returns 0, results [0, 0], the domain not paused",
        r == Ok(0) && res == [0, 0] && running_on == Ok(true),
        "{}, results {res:?}, not paused {running_on:?}",
        ret_of(r)
    );
    let p = inter::domctl(XEN_DOMCTL_PAUSEDOMAIN, k).map(|_| 0);
    let flags = inter::domain_info(k).map(|i| i.flags).unwrap_or(0);
    check!(
        log,
        "domctl pausedomain, then getdomaininfo flags",
        "0, paused flag set",
        p == Ok(0) && flags & XEN_DOMINF_PAUSED != 0,
        "{}, flags {flags:#x}",
        ret_of(p)
    );
    let d = inter::domctl(XEN_DOMCTL_DESTROYDOMAIN, k).map(|_| 0);
    let after = inter::domain_info(k).map(|i| i.domain);
    check!(
        log,
        "domctl destroydomain, then getdomaininfo",
        "0, the domain no longer listed",
        d == Ok(0) && after != Ok(k),
        "{}, next listed {:?}",
        ret_of(d),
        after
    );
}
