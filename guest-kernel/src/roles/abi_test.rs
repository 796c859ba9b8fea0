//! `role=abi-test`: exercises the hypercall ABI and prints one line per check (see
//! [`CheckLog`]), then `abi-test: N passed, M failed`; shuts down with poweroff if all passed,
//! crash otherwise. Every expectation is what Xen 4.17 does for a PV dom0 (xen-pv-abi.md).

use hypercall_abi::elfnote::xenfeat;
use hypercall_abi::event_channel::{self as ev, EvtchnPort};
use hypercall_abi::grant_table::{self as gt, GnttabQuerySize, GnttabSetVersion};
use hypercall_abi::guest::{self, page::HypercallPage, raw};
use hypercall_abi::memory::{self, E820Entry, E820_RAM};
use hypercall_abi::mm::DOMID_SELF;
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::{arch, console_io, hypercall, vcpu, version, Errno};

use crate::checks::{ret_of, CheckLog, Ret};
use crate::cmdline::{Options, ShutdownRequest};
use crate::console::CStr;
use crate::println;
use crate::pv::Shared;

/// An address in the guest half that the bootstrap region never maps.
const UNMAPPED_GUEST_ADDRESS: u64 = 0x0000_7000_0000_0000;
/// One millisecond in system-time units.
const MS: u64 = 1_000_000;

/// Runs every check group.
pub fn run(_opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    unknown_and_bad_calls(&mut log);
    let version = xen_version_subops(&mut log, si);
    memory_ops(&mut log, si);
    multicall(&mut log, version);
    hypercall_page(&mut log, version);
    let r = guest::sched_yield();
    check!(log, "sched_op yield", "0", r == Ok(0), "{}", ret_of(r));
    domain_info_of_dom0(&mut log);
    match Shared::map(si) {
        Ok(shared) => {
            check!(log, "update_va_mapping shared_info", "0", true, "0");
            timers_and_events(&mut log, &shared);
        }
        Err(e) => {
            check!(log, "update_va_mapping shared_info", "0", false, "{e}");
        }
    }
    grant_table(&mut log);
    // Last: it closes every port, the kernel's own bindings too.
    reset_of_a_full_port_table(&mut log);
    super::abi_refusals::run(&mut log);

    println!("abi-test: {} passed, {} failed", log.passed, log.failed);
    if log.all_passed() {
        ShutdownRequest::Poweroff
    } else {
        ShutdownRequest::Crash
    }
}

/// `XEN_DOMCTL_getdomaininfo` of dom0 with every byte of the request's union at 0xaa: Xen
/// clears the structure before it fills it, so the fields it does not fill come back 0; its
/// address width is the CPU's, and a PV dom0 has the emulated PIT.
fn domain_info_of_dom0(log: &mut CheckLog) {
    use hypercall_abi::domctl::{XEN_DOMCTL_GETDOMAININFO, XEN_X86_EMU_PIT};
    let mut op = crate::kernel::inter::Domctl::new(XEN_DOMCTL_GETDOMAININFO, 0);
    let i = &mut op.info;
    let aa = 0xaaaa_aaaa_aaaa_aaaa;
    (i.outstanding_pages, i.shr_pages, i.paged_pages) = (aa, aa, aa);
    (i.ssidref, i.handle, i.cpupool) = (0xaaaa_aaaa, [0xaa; 16], 0xaaaa_aaaa);
    (i.gpaddr_bits, i.pad2, i.arch_config) = (0xaa, [0xaa; 7], [0xaaaa_aaaa; 2]);
    let r = crate::kernel::inter::domctl_in_place(&mut op);
    let i = &op.info;
    let unfilled_zero = i.outstanding_pages == 0
        && i.shr_pages == 0
        && i.paged_pages == 0
        && i.ssidref == 0
        && i.handle == [0; 16]
        && i.cpupool == 0
        && i.pad2 == [0; 7];
    let ok = r.is_ok() && i.domain == 0 && unfilled_zero && i.arch_config == [XEN_X86_EMU_PIT, 0];
    check!(
        log,
        "domctl getdomaininfo dom0, request filled with 0xaa",
        "domain 0, unfilled fields 0, emulation_flags PIT",
        ok,
        "{} domain={} gpaddr_bits={} emulation_flags={:#x} misc_flags={:#x} unfilled fields zero={}",
        ret_of(r),
        i.domain,
        i.gpaddr_bits,
        i.arch_config[0],
        i.arch_config[1],
        unfilled_zero
    );
}

fn unknown_and_bad_calls(log: &mut CheckLog) {
    let unknown = [
        (11u64, "unknown hypercall 11 (unused slot)"),
        (63, "unknown hypercall 63"),
        (hypercall::NR_HYPERCALLS, "unknown hypercall 64"),
        (0xffff_ffff, "unknown hypercall 0xffffffff"),
    ];
    for (nr, what) in unknown {
        // SAFETY: an unimplemented hypercall number has no effect besides the error.
        let r = unsafe { raw::hypercall0(nr) };
        let ok = r == Errno::ENOSYS.to_return();
        check!(log, what, "-38 (ENOSYS)", ok, "{}", Ret(r));
    }
    // SAFETY: Xen must refuse to read the unmapped buffer; nothing of ours is touched.
    let r = unsafe {
        raw::hypercall3(hypercall::CONSOLE_IO, console_io::CONSOLEIO_WRITE as u64, 16, UNMAPPED_GUEST_ADDRESS)
    };
    let ok = r == Errno::EFAULT.to_return();
    check!(log, "console_io bad pointer", "-14 (EFAULT)", ok, "{}", Ret(r));
    bad_pointers(log);
    let text = b"";
    // SAFETY: an unknown console_io command with a valid (empty) buffer.
    let r = unsafe { raw::hypercall3(hypercall::CONSOLE_IO, 99, 0, text.as_ptr() as u64) };
    let ok = r == Errno::ENOSYS.to_return();
    check!(log, "console_io unknown command", "-38 (ENOSYS)", ok, "{}", Ret(r));
    let r = guest::console_write(b"check: console_io write (this line itself)\n");
    check!(log, "console_io write", "0", r == Ok(0), "{}", ret_of(r));
}

fn xen_version_subops(log: &mut CheckLog, si: &StartInfo) -> u64 {
    let v = guest::xen_version();
    let (major, minor) = version::split_version(*v.as_ref().unwrap_or(&0));
    check!(log, "xen_version version", "major >= 3", major >= 3, "{major}.{minor}");

    let mut extra: version::XenExtraversion = [0; 16];
    let r = guest::xen_version_into(version::XENVER_EXTRAVERSION, &mut extra);
    let ok = r == Ok(0) && extra.contains(&0);
    check!(log, "xen_version extraversion", "0 and a NUL-terminated string", ok, "{} \"{}\"", ret_of(r), CStr(&extra));

    let mut caps: version::XenCapabilitiesInfo = [0; 1024];
    let r = guest::xen_version_into(version::XENVER_CAPABILITIES, &mut caps);
    let text = version::c_str_bytes(&caps);
    let ok = r == Ok(0) && text.windows(14).any(|w| w == b"xen-3.0-x86_64");
    check!(log, "xen_version capabilities", "contains xen-3.0-x86_64", ok, "\"{}\"", CStr(&caps));

    let mut changeset: version::XenChangesetInfo = [0; 64];
    let r = guest::xen_version_into(version::XENVER_CHANGESET, &mut changeset);
    let ok = r == Ok(0) && changeset.contains(&0);
    check!(log, "xen_version changeset", "0 and a string", ok, "\"{}\"", CStr(&changeset));

    let mut params = version::XenPlatformParameters::default();
    let r = guest::xen_version_into(version::XENVER_PLATFORM_PARAMETERS, &mut params);
    let ok = r == Ok(0) && params.virt_start == arch::HYPERVISOR_VIRT_START;
    check!(
        log,
        "xen_version platform_parameters",
        "virt_start 0xffff800000000000",
        ok,
        "virt_start={:#x}",
        params.virt_start
    );

    let mut features = version::XenFeatureInfo::default();
    let r = guest::xen_version_into(version::XENVER_GET_FEATURES, &mut features);
    let dom0_bit = features.submap & (1 << xenfeat::DOM0) != 0;
    let ok = r == Ok(0) && dom0_bit == si.is_initdomain();
    check!(
        log,
        "xen_version get_features submap 0",
        "XENFEAT_dom0 set iff SIF_INITDOMAIN",
        ok,
        "{:#x}",
        features.submap
    );

    let mut features = version::XenFeatureInfo { submap_idx: 1, submap: 0 };
    let r = guest::xen_version_into(version::XENVER_GET_FEATURES, &mut features);
    check!(log, "xen_version get_features submap 1", "-22 (EINVAL)", r == Err(Errno::EINVAL), "{}", ret_of(r));

    // SAFETY: XENVER_pagesize takes no buffer.
    let r = unsafe { raw::hypercall2(hypercall::XEN_VERSION, version::XENVER_PAGESIZE as u64, 0) };
    check!(log, "xen_version pagesize", "4096", r == 4096, "{}", Ret(r));
    // SAFETY: as above; the buffer, which it must not have, is never written.
    let r = unsafe { raw::hypercall2(hypercall::XEN_VERSION, version::XENVER_PAGESIZE as u64, 0x1000) };
    let want = Errno::EINVAL.to_return();
    check!(log, "xen_version pagesize with a buffer", "-22 (EINVAL)", r == want, "{}", Ret(r));

    // SAFETY: an unknown sub-op with a NULL buffer.
    let r = unsafe { raw::hypercall2(hypercall::XEN_VERSION, 0x1000, 0) };
    check!(log, "xen_version unknown sub-op", "-38 (ENOSYS)", r == Errno::ENOSYS.to_return(), "{}", Ret(r));
    v.unwrap_or(0)
}

fn memory_ops(log: &mut CheckLog, si: &StartInfo) {
    let cur = guest::memory_op_domid(memory::XENMEM_CURRENT_RESERVATION, DOMID_SELF);
    let ok = cur == Ok(si.nr_pages);
    check!(
        log,
        "memory_op current_reservation",
        "== start_info.nr_pages",
        ok,
        "{} (nr_pages {})",
        ret_of(cur),
        si.nr_pages
    );
    let max = guest::memory_op_domid(memory::XENMEM_MAXIMUM_RESERVATION, DOMID_SELF);
    let ok = matches!((max, cur), (Ok(m), Ok(c)) if m >= c);
    check!(log, "memory_op maximum_reservation", ">= current_reservation", ok, "{}", ret_of(max));

    let mut entries = [E820Entry::default(); 16];
    match guest::memory_map(&mut entries) {
        Ok(n) => {
            let mut ram_pages = 0u64;
            for e in &entries[..n.min(entries.len())] {
                let (addr, size, kind) = (e.addr, e.size, e.kind);
                println!("abi-test: e820 {addr:#x} +{size:#x} type {kind}");
                if kind == E820_RAM {
                    ram_pages += size / 4096;
                }
            }
            let ok = n > 0 && ram_pages >= si.nr_pages;
            check!(
                log,
                "memory_op memory_map",
                "a map whose RAM covers nr_pages, or -38 (ENOSYS) as Xen gives dom0",
                ok,
                "{n} entries, {ram_pages} RAM pages"
            );
        }
        Err(e) => {
            let ok = e == Errno::ENOSYS;
            check!(
                log,
                "memory_op memory_map",
                "a map whose RAM covers nr_pages, or -38 (ENOSYS) as Xen gives dom0",
                ok,
                "{e}"
            );
        }
    }
}

fn multicall(log: &mut CheckLog, version: u64) {
    let mut params = version::XenPlatformParameters::default();
    let mut batch = [
        MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_VERSION as u64, 0]),
        MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_PAGESIZE as u64, 0]),
        MulticallEntry::new(63, &[]),
        MulticallEntry::new(
            hypercall::XEN_VERSION,
            &[version::XENVER_PLATFORM_PARAMETERS as u64, &mut params as *mut _ as u64],
        ),
    ];
    // SAFETY: the entries are harmless queries; `params` outlives the call.
    let r = unsafe { guest::multicall(&mut batch) };
    let res: [i64; 4] = core::array::from_fn(|i| batch[i].result_signed());
    let ok = r == Ok(0)
        && res == [version as i64, 4096, Errno::ENOSYS.to_return(), 0]
        && params.virt_start == arch::HYPERVISOR_VIRT_START;
    check!(
        log,
        "multicall 4 entries",
        "0; results [version, 4096, -38, 0] and virt_start filled",
        ok,
        "{}; results [{:#x}, {}, {}, {}], virt_start={:#x}",
        ret_of(r),
        res[0],
        res[1],
        res[2],
        res[3],
        params.virt_start
    );
}

fn hypercall_page(log: &mut CheckLog, version: u64) {
    // SAFETY: the HYPERCALL_PAGE note names this page; the hypervisor filled it before entry.
    let page = unsafe { HypercallPage::new(crate::arch::x86_64::hypercall_page_address()) };
    let stub = page.stub_bytes(hypercall::XEN_VERSION);
    let ok = page.stub_is_standard(hypercall::XEN_VERSION as u32);
    check!(
        log,
        "hypercall page stub 17",
        "push rcx; push r11; mov $17,eax; syscall; pop r11; pop rcx; ret",
        ok,
        "{:02x?}",
        &stub[..16]
    );
    let ok = page.stub_is_standard(hypercall::IRET as u32);
    check!(
        log,
        "hypercall page stub 23 (iret)",
        "push rcx; push r11; push rax; mov $23,eax; syscall",
        ok,
        "{:02x?}",
        &page.stub_bytes(hypercall::IRET)[..12]
    );
    // SAFETY: xen_version(XENVER_version, NULL) through the stub has no side effects.
    let r = unsafe { page.call5(hypercall::XEN_VERSION, version::XENVER_VERSION as u64, 0, 0, 0, 0) };
    check!(log, "xen_version through hypercall page", "same as syscall", r == version as i64, "{:#x}", r);
}

fn timers_and_events(log: &mut CheckLog, shared: &Shared) {
    let mask = shared.upcall_mask();
    check!(log, "vcpu_info[0].evtchn_upcall_mask at entry", "1 (events masked)", mask == 1, "{mask}");
    let t1 = shared.system_time_ns();
    let _ = guest::sched_yield();
    let t2 = shared.system_time_ns();
    check!(log, "system time advances", "t2 > t1 > 0", t2 > t1 && t1 > 0, "t1={t1} t2={t2}");

    // Xen 4.17.7 ignores VCPU_SSHOTTMR_future (a 2023 stable fix, because Linux misused it):
    // a past deadline is accepted (the timer fires at once) instead of the -ETIME the header
    // documents.
    let r = guest::vcpu_set_singleshot_timer(0, 1, vcpu::VCPU_SSHOTTMR_FUTURE);
    check!(
        log,
        "vcpu_op set_singleshot_timer in the past, flag future (ignored)",
        "0 (Xen 4.17.7 ignores the flag)",
        r == Ok(0),
        "{}",
        ret_of(r)
    );
    // SAFETY: stop_periodic_timer takes no argument and only stops a timer.
    let r = unsafe { guest::vcpu_op::<u64>(vcpu::VCPUOP_STOP_PERIODIC_TIMER, 0, None) };
    check!(log, "vcpu_op stop_periodic_timer", "0", r == Ok(0), "{}", ret_of(r));

    let mut bind = ev::EvtchnBindVirq { virq: ev::VIRQ_TIMER, vcpu: 0, port: 0 };
    let r = guest::event_channel_op(ev::EVTCHNOP_BIND_VIRQ, &mut bind);
    let port = bind.port;
    check!(
        log,
        "evtchn bind_virq VIRQ_TIMER",
        "0 and a port >= 1",
        r == Ok(0) && port >= 1,
        "{} port {port}",
        ret_of(r)
    );
    if r.is_err() {
        return;
    }
    let mut status = ev::EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() };
    let r = guest::event_channel_op(ev::EVTCHNOP_STATUS, &mut status);
    let ok = r == Ok(0) && status.status == ev::EVTCHNSTAT_VIRQ && status.u[0] == ev::VIRQ_TIMER;
    check!(
        log,
        "evtchn status of the VIRQ port",
        "virq (4), VIRQ_TIMER",
        ok,
        "{} status {} virq {}",
        ret_of(r),
        status.status,
        status.u[0]
    );

    // A deadline already past fires before the call returns (Xen's `set_timer` runs the
    // timer softirq on the way out), not at some later tick; Xen's times are signed, so a
    // deadline of 2^63 is long past, not far ahead.
    fires_at_once(log, shared, port, "set_timer_op in the past", || guest::set_timer_op(1));
    fires_at_once(log, shared, port, "vcpu_op set_singleshot_timer at 2^63 (a negative time)", || {
        guest::vcpu_set_singleshot_timer(0, 1 << 63, 0)
    });
    timer_fires(log, shared, port, "set_timer_op", guest::set_timer_op);
    timer_fires(log, shared, port, "vcpu_op set_singleshot_timer", |deadline| {
        guest::vcpu_set_singleshot_timer(0, deadline, vcpu::VCPU_SSHOTTMR_FUTURE)
    });
    poll_timeout_in_the_past(log, shared, port);

    let r = guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port });
    check!(log, "evtchn close VIRQ port", "0", r == Ok(0), "{}", ret_of(r));
    loopback_channels(log, shared);
}

/// `SCHEDOP_poll` of the idle VIRQ_TIMER `port` with a timeout of 2^63: Xen's times are
/// signed, so that timeout is long past and the poll returns at once, the port not pending.
/// A one-shot timer 300 ms ahead ends the poll should the timeout never fire.
fn poll_timeout_in_the_past(log: &mut CheckLog, shared: &Shared, port: EvtchnPort) {
    shared.clear_pending(port);
    let start = shared.system_time_ns();
    let armed = guest::set_timer_op(start + 300 * MS);
    let polled = guest::sched_poll(&[port], 1 << 63);
    let end = shared.system_time_ns();
    let pending = shared.is_pending(port);
    let _ = guest::set_timer_op(0);
    shared.clear_pending(port);
    let prompt = end - start < 100 * MS;
    check!(
        log,
        "SCHEDOP_poll with a timeout of 2^63 (a negative time)",
        "0 at once, the port not pending",
        armed == Ok(0) && polled == Ok(0) && prompt && !pending,
        "{}, within 100 ms {prompt}, pending {pending}",
        ret_of(polled)
    );
}

/// Arms a one-shot timer whose deadline has passed with `arm` and checks that the VIRQ_TIMER
/// `port` is pending when the call returns.
fn fires_at_once(
    log: &mut CheckLog,
    shared: &Shared,
    port: EvtchnPort,
    what: &str,
    arm: impl FnOnce() -> Result<u64, Errno>,
) {
    shared.clear_pending(port);
    let r = arm();
    let pending = shared.is_pending(port);
    check!(log, what, "0, VIRQ_TIMER pending on return", r == Ok(0) && pending, "{}, pending {pending}", ret_of(r));
}

/// Arms a one-shot timer 2 ms ahead with `arm`, polls the VIRQ_TIMER port with a 1 s
/// timeout, and checks that the port became pending no earlier than the deadline.
fn timer_fires(
    log: &mut CheckLog,
    shared: &Shared,
    port: EvtchnPort,
    what: &str,
    arm: impl Fn(u64) -> Result<u64, Errno>,
) {
    shared.clear_pending(port);
    let start = shared.system_time_ns();
    let deadline = start + 2 * MS;
    let r = arm(deadline);
    let armed = r == Ok(0);
    let polled = guest::sched_poll(&[port], start + 1000 * MS);
    let end = shared.system_time_ns();
    let pending = shared.is_pending(port);
    let ok = armed && polled == Ok(0) && pending && end >= deadline && end < start + 1000 * MS;
    check!(
        log,
        what,
        "0, then SCHEDOP_poll wakes with the VIRQ_TIMER port pending 2ms..1s later",
        ok,
        "{}, poll {}, pending {pending} after {} us",
        ret_of(r),
        ret_of(polled),
        (end - start) / 1000
    );
}

fn loopback_channels(log: &mut CheckLog, shared: &Shared) {
    let mut alloc = ev::EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 };
    let r = guest::event_channel_op(ev::EVTCHNOP_ALLOC_UNBOUND, &mut alloc);
    let unbound = alloc.port;
    check!(
        log,
        "evtchn alloc_unbound (self)",
        "0 and a port",
        r == Ok(0) && unbound >= 1,
        "{} port {unbound}",
        ret_of(r)
    );
    let mut status = ev::EvtchnStatus { dom: DOMID_SELF, port: unbound, ..Default::default() };
    let r = guest::event_channel_op(ev::EVTCHNOP_STATUS, &mut status);
    check!(
        log,
        "evtchn status of it",
        "unbound (1)",
        r == Ok(0) && status.status == ev::EVTCHNSTAT_UNBOUND,
        "{} status {}",
        ret_of(r),
        status.status
    );

    let mut bind = ev::EvtchnBindInterdomain { remote_dom: DOMID_SELF, remote_port: unbound, local_port: 0 };
    let r = guest::event_channel_op(ev::EVTCHNOP_BIND_INTERDOMAIN, &mut bind);
    let local = bind.local_port;
    check!(
        log,
        "evtchn bind_interdomain (loopback)",
        "0 and a new port",
        r == Ok(0) && local >= 1 && local != unbound,
        "{} port {local}",
        ret_of(r)
    );
    shared.clear_pending(unbound);
    let r = guest::event_channel_op(ev::EVTCHNOP_SEND, &mut ev::EvtchnSend { port: local });
    let pending = shared.is_pending(unbound);
    check!(
        log,
        "evtchn send over loopback",
        "0 and the peer port pending",
        r == Ok(0) && pending,
        "{} pending {pending}",
        ret_of(r)
    );
    let r = guest::event_channel_op(ev::EVTCHNOP_UNMASK, &mut ev::EvtchnUnmask { port: unbound });
    check!(log, "evtchn unmask", "0", r == Ok(0), "{}", ret_of(r));
    let r1 = guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port: local });
    let r2 = guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port: unbound });
    check!(log, "evtchn close both ends", "0, 0", r1 == Ok(0) && r2 == Ok(0), "{}, {}", ret_of(r1), ret_of(r2));
    let r = guest::event_channel_op(ev::EVTCHNOP_STATUS, &mut status);
    check!(
        log,
        "evtchn status after close",
        "closed (0)",
        r == Ok(0) && status.status == ev::EVTCHNSTAT_CLOSED,
        "{} status {}",
        ret_of(r),
        status.status
    );

    let mut ipi = ev::EvtchnBindIpi { vcpu: 0, port: 0 };
    let r = guest::event_channel_op(ev::EVTCHNOP_BIND_IPI, &mut ipi);
    let port = ipi.port;
    shared.clear_pending(port);
    let s = guest::event_channel_op(ev::EVTCHNOP_SEND, &mut ev::EvtchnSend { port });
    let pending = shared.is_pending(port);
    let c = guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port });
    let ok = r == Ok(0) && s == Ok(0) && pending && c == Ok(0);
    check!(
        log,
        "evtchn bind_ipi, send to self, close",
        "0, pending, 0",
        ok,
        "{} port {port}, send {}, pending {pending}, close {}",
        ret_of(r),
        ret_of(s),
        ret_of(c)
    );
}

/// Fills the port table with IPI bindings, then resets it: the hypervisor closes them in
/// several entries (continuations the guest never sees) and the lowest port is free again.
fn reset_of_a_full_port_table(log: &mut CheckLog) {
    let (mut bound, mut last) = (0u32, 0);
    let full = loop {
        let mut ipi = ev::EvtchnBindIpi { vcpu: 0, port: 0 };
        match guest::event_channel_op(ev::EVTCHNOP_BIND_IPI, &mut ipi) {
            Ok(_) => {
                bound += 1;
                last = ipi.port;
            }
            Err(e) => break e,
        }
    };
    check!(
        log,
        "evtchn bind_ipi until the 2-level table is full",
        "-ENOSPC at port 4095",
        full == Errno::ENOSPC && last == 4095,
        "{}, last port {last}, after {bound} new ports",
        full.name().unwrap_or("?")
    );
    let r = guest::event_channel_op(ev::EVTCHNOP_RESET, &mut ev::EvtchnReset { dom: DOMID_SELF });
    let mut status = ev::EvtchnStatus { dom: DOMID_SELF, port: last, ..Default::default() };
    let s = guest::event_channel_op(ev::EVTCHNOP_STATUS, &mut status);
    let mut ipi = ev::EvtchnBindIpi { vcpu: 0, port: 0 };
    let b = guest::event_channel_op(ev::EVTCHNOP_BIND_IPI, &mut ipi);
    check!(
        log,
        "evtchn reset of the full table",
        "0, the last port closed, port 1 free again",
        r == Ok(0) && s == Ok(0) && status.status == ev::EVTCHNSTAT_CLOSED && b == Ok(0) && ipi.port == 1,
        "{}, status {} of port {last}, bind_ipi {} port {}",
        ret_of(r),
        status.status,
        ret_of(b),
        ipi.port
    );
}

fn grant_table(log: &mut CheckLog) {
    let mut q = [GnttabQuerySize { dom: DOMID_SELF, ..Default::default() }];
    // SAFETY: each structure is the one its GNTTABOP_* takes (query_size and setup_table of our own table, its frame list a local array of its length).
    let r = unsafe { guest::grant_table_op(gt::GNTTABOP_QUERY_SIZE, &mut q) };
    let q = q[0];
    let ok = r == Ok(0) && q.status == gt::GNTST_OKAY && q.max_nr_frames >= 1 && q.nr_frames <= q.max_nr_frames;
    check!(
        log,
        "grant_table_op query_size",
        "0, status 0, nr <= max",
        ok,
        "{} status {} nr_frames {} max_nr_frames {}",
        ret_of(r),
        q.status,
        q.nr_frames,
        q.max_nr_frames
    );
    let mut v = [GnttabSetVersion { version: 1 }];
    // SAFETY: each structure is the one its GNTTABOP_* takes (query_size and setup_table of our own table, its frame list a local array of its length).
    let r = unsafe { guest::grant_table_op(gt::GNTTABOP_SET_VERSION, &mut v) };
    check!(
        log,
        "grant_table_op set_version 1",
        "0, version 1",
        r == Ok(0) && v[0].version == 1,
        "{} version {}",
        ret_of(r),
        v[0].version
    );
}

/// Hypercall buffers Xen must refuse with `-EFAULT` without touching anything: in the
/// hypervisor's range, running off the lower half into the non-canonical hole, and a
/// destination the guest may only read (Xen's `copy_to_guest` obeys CR0.WP; the page must
/// be left unchanged).
fn bad_pointers(log: &mut CheckLog) {
    let read_cases = [
        (0xffff_8000_0010_0000u64, 16u64, "console_io buffer in the hypervisor's range"),
        ((1u64 << 47) - 8, 16, "console_io buffer running into the non-canonical hole"),
    ];
    for (va, len, what) in read_cases {
        // SAFETY: the hypervisor must refuse the buffer; nothing of ours is touched.
        let r = unsafe { raw::hypercall3(hypercall::CONSOLE_IO, console_io::CONSOLEIO_WRITE as u64, len, va) };
        check!(log, what, "-14 (EFAULT)", r == Errno::EFAULT.to_return(), "{}", Ret(r));
    }
    let Some(page) = crate::kernel::mm::alloc_frame() else {
        check!(log, "a pool page for the read-only destination", "one", false, "none left");
        return;
    };
    // SAFETY: our own pool page, still writable.
    unsafe { core::ptr::write_bytes(page.va as *mut u8, 0x5a, 4096) };
    let made_ro = crate::kernel::mm::make_readonly(page.va).is_ok();
    // SAFETY: XENVER_extraversion writes 16 bytes at the pointer, which is read-only to us:
    // the hypervisor must refuse it.
    let r = unsafe { raw::hypercall2(hypercall::XEN_VERSION, version::XENVER_EXTRAVERSION as u64, page.va + 64) };
    // SAFETY: our own pool page, mapped (read-only) for reads.
    let untouched = unsafe { core::slice::from_raw_parts(page.va as *const u8, 4096) }.iter().all(|&b| b == 0x5a);
    let ok = made_ro && r == Errno::EFAULT.to_return() && untouched;
    check!(
        log,
        "xen_version into a read-only page",
        "-14 (EFAULT), page unchanged",
        ok,
        "{} unchanged={untouched}",
        Ret(r)
    );
    let _ = crate::kernel::mm::make_writable(page.va);
    read_only_within_a_multicall(log, &page);
}

/// A page an earlier multicall entry made read-only (with a flush of its address) refuses
/// a later entry's write, although the CPU held a writable translation of it: Xen flushes
/// before the next entry runs, and a hypervisor that defers its flushes must not write
/// through the stale translation.
fn read_only_within_a_multicall(log: &mut CheckLog, page: &crate::kernel::mm::Frame) {
    let target = page.va + 64;
    // SAFETY: the hypervisor writes XENVER_extraversion's 16 bytes into our own writable
    // page: it now holds a writable translation of it.
    let first = unsafe { raw::hypercall2(hypercall::XEN_VERSION, version::XENVER_EXTRAVERSION as u64, target) };
    // SAFETY: our own pool page, writable again.
    unsafe { core::ptr::write_bytes(page.va as *mut u8, 0x6b, 4096) };
    let mut batch = [
        MulticallEntry::new(
            hypercall::UPDATE_VA_MAPPING,
            &[page.va, crate::kernel::mm::pte_ro(page.mfn, 0), hypercall_abi::mm::UVMF_INVLPG],
        ),
        MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_EXTRAVERSION as u64, target]),
    ];
    // SAFETY: the first entry maps our own page read-only in place; the second must then be
    // refused.
    let r = unsafe { guest::multicall(&mut batch) };
    let res = [batch[0].result_signed(), batch[1].result_signed()];
    // SAFETY: our own pool page, mapped (read-only) for reads.
    let untouched = unsafe { core::slice::from_raw_parts(page.va as *const u8, 4096) }.iter().all(|&b| b == 0x6b);
    let ok = first == 0 && r == Ok(0) && res == [0, Errno::EFAULT.to_return()] && untouched;
    check!(
        log,
        "multicall: read-only by an earlier entry, a later write refused",
        "results [0, -14], page unchanged",
        ok,
        "warm-up {}; {}; results [{}, {}] unchanged={untouched}",
        Ret(first),
        ret_of(r),
        res[0],
        res[1]
    );
    let _ = crate::kernel::mm::make_writable(page.va);
}
