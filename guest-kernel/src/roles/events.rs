//! `role=events`: event delivery through `shared_info`/`vcpu_info` and the event callback.
//! Maps `shared_info` with `update_va_mapping`, reads the PV clock and the wall clock with
//! their version protocols, binds VIRQ_TIMER, sleeps in `SCHEDOP_block` until a one-shot
//! timer (`set_timer_op`, then `VCPUOP_set_singleshot_timer`) raises it and the upcall is
//! delivered (frame: event pseudo-vector, saved mask 0 because block cleared it, handler
//! entered masked), counts periodic ticks (`VCPUOP_set_periodic_timer`) while spinning with
//! events unmasked (Xen stops the periodic timer of a blocked vCPU), and shows the
//! pending/mask/selector rules on an IPI port from `bind_ipi`: a masked port is pending
//! without an upcall until `EVTCHNOP_unmask`; with events masked (`evtchn_upcall_mask`) the
//! upcall waits until the kernel unmasks; a closed port refuses `send`.

use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::event_channel::VIRQ_TIMER;
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::{guest, vcpu, Errno};

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::ShutdownRequest;
use crate::evtchn::EventBits;
use crate::kernel::trap::{self, TrapSetup};
use crate::kernel::{events, hyp};
use crate::println;
use crate::trapframe::{TrapFrame, VECTOR_EVENT};

const MS: u64 = 1_000_000;

static UPCALLS: AtomicU64 = AtomicU64::new(0);
static PORTS_HANDLED: AtomicU64 = AtomicU64::new(0);
static LAST_PORT: AtomicU64 = AtomicU64::new(0);
static TIMER_PORT: AtomicU64 = AtomicU64::new(u64::MAX);
static TIMER_TICKS: AtomicU64 = AtomicU64::new(0);

fn handler(frame: &mut TrapFrame) -> u64 {
    if frame.vector == VECTOR_EVENT {
        trap::record(frame);
        UPCALLS.fetch_add(1, Ordering::SeqCst);
        events::bits().scan(|port| {
            PORTS_HANDLED.fetch_add(1, Ordering::SeqCst);
            LAST_PORT.store(port as u64, Ordering::SeqCst);
            if port as u64 == TIMER_PORT.load(Ordering::SeqCst) {
                TIMER_TICKS.fetch_add(1, Ordering::SeqCst);
            }
        });
        return 0;
    }
    super::traps::handler(frame)
}

/// Runs the role.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let b = events::init(si);
    let r = b.as_ref().map(|_| 0u64).map_err(|e| *e);
    check!(log, "update_va_mapping shared_info", "0", r.is_ok(), "{}", ret_of(r));
    let Ok(b) = b else {
        return super::summary("events", &log);
    };
    let mask = b.upcall_mask().load(Ordering::SeqCst);
    check!(log, "evtchn_upcall_mask at entry", "1", mask == 1, "{mask}");
    if let Err(e) = trap::install(&TrapSetup::ALL, handler) {
        println!("events: installing traps failed: {e}");
        return ShutdownRequest::Crash;
    }
    time(&mut log);
    timers(&mut log, &b);
    ipi(&mut log, &b);
    super::summary("events", &log)
}

fn time(log: &mut CheckLog) {
    let s = events::shared();
    let t1 = s.time_snapshot();
    let n1 = s.system_time_ns();
    let _ = guest::sched_yield();
    let n2 = s.system_time_ns();
    check!(
        log,
        "vcpu_time_info",
        "even version, tsc_to_system_mul != 0, system time advancing",
        t1.version & 1 == 0 && t1.tsc_to_system_mul != 0 && n2 > n1 && n1 > 0,
        "version even {}, mul nonzero {}, shift {}, advances {}",
        t1.version & 1 == 0,
        t1.tsc_to_system_mul != 0,
        t1.tsc_shift,
        n2 > n1
    );
    let (sec, nsec, version) = s.wallclock();
    // Between 2020-01-01 and 2100-01-01.
    let sane = (1_577_836_800..4_102_444_800).contains(&sec) && nsec < 1_000_000_000;
    check!(
        log,
        "wall clock (wc_sec, wc_nsec at system time 0)",
        "even wc_version, a date in 2020..2100",
        version & 1 == 0 && sane,
        "version even {}, sane {sane}",
        version & 1 == 0
    );
}

/// Blocks (events unmasked by `SCHEDOP_block`) until the timer port has been handled or
/// 1 s passes; returns the elapsed ns and whether it fired.
fn block_until_tick(start: u64) -> (u64, bool) {
    let ticks = TIMER_TICKS.load(Ordering::SeqCst);
    while TIMER_TICKS.load(Ordering::SeqCst) == ticks && events::now() < start + 1000 * MS {
        let _ = hyp::sched_block();
        let _ = events::mask_events();
    }
    (events::now() - start, TIMER_TICKS.load(Ordering::SeqCst) > ticks)
}

fn timers(log: &mut CheckLog, b: &EventBits) {
    let port = match events::bind_virq(VIRQ_TIMER) {
        Ok(p) => p,
        Err(e) => {
            check!(log, "bind_virq VIRQ_TIMER", "a port", false, "{e}");
            return;
        }
    };
    TIMER_PORT.store(port as u64, Ordering::SeqCst);
    let r = events::stop_periodic_timer();
    check!(
        log,
        "bind_virq VIRQ_TIMER, stop the default periodic timer",
        "a port, 0",
        port > 0 && r == Ok(0),
        "port>0 {}, {}",
        port > 0,
        ret_of(r)
    );
    b.clear_pending(port);

    let start = events::now();
    let r = guest::set_timer_op(start + 5 * MS);
    let (dt, fired) = block_until_tick(start);
    let seen = trap::last_seen();
    check!(
        log,
        "set_timer_op +5ms, SCHEDOP_block",
        "0, woken by the VIRQ_TIMER upcall after >= 5ms",
        r == Ok(0) && fired && dt >= 5 * MS,
        "{}, upcall {fired}, after >= 5ms {}",
        ret_of(r),
        dt >= 5 * MS
    );
    let f = seen.frame;
    check!(
        log,
        "upcall frame",
        "event callback, kernel cs 0xe030, saved mask 0 (block unmasked), handler entered masked",
        f.vector == VECTOR_EVENT && f.selector() == 0xe030 && f.saved_mask() == 0 && seen.mask_in_handler == 1,
        "cs {:#x} saved mask {} mask in handler {}",
        f.selector(),
        f.saved_mask(),
        seen.mask_in_handler
    );

    let start = events::now();
    let r = guest::vcpu_set_singleshot_timer(0, start + 5 * MS, 0);
    let (dt, fired) = block_until_tick(start);
    check!(
        log,
        "vcpu_op set_singleshot_timer +5ms, SCHEDOP_block",
        "0, woken by the upcall after >= 5ms",
        r == Ok(0) && fired && dt >= 5 * MS,
        "{}, upcall {fired}, after >= 5ms {}",
        ret_of(r),
        dt >= 5 * MS
    );

    // Xen stops a vCPU's periodic timer while it is descheduled (blocked): the periodic
    // timer never wakes SCHEDOP_block. So spin with events unmasked: upcalls arrive in
    // kernel mode.
    let r = events::set_periodic_timer(2 * MS);
    let start = events::now();
    let first = TIMER_TICKS.load(Ordering::SeqCst);
    events::unmask_events();
    while TIMER_TICKS.load(Ordering::SeqCst) < first + 5 && events::now() < start + 2000 * MS {
        core::hint::spin_loop();
    }
    let _ = events::mask_events();
    let ticks = TIMER_TICKS.load(Ordering::SeqCst) - first;
    let dt = events::now() - start;
    let r2 = events::stop_periodic_timer();
    check!(
        log,
        "vcpu_op set_periodic_timer 2ms: 5 ticks while running",
        "0, 5 upcalls taking >= 8ms, stop 0",
        r == Ok(0) && ticks >= 5 && dt >= 8 * MS && r2 == Ok(0),
        "{}, ticks {}, >= 8ms {}, stop {}",
        ret_of(r),
        ticks.min(5),
        dt >= 8 * MS,
        ret_of(r2)
    );
    // Set again before each period ends, the periodic timer keeps its phase (Xen 4.17's
    // `vcpu_set_periodic_timer`): re-arming every 4 ms cannot keep a 10 ms one from firing.
    let start = events::now();
    let first = TIMER_TICKS.load(Ordering::SeqCst);
    let mut rearmed_ok = true;
    events::unmask_events();
    // 60 ms, longer (up to 300 ms) while fewer than 3 ticks came: a host stall of the
    // emulator can swallow ticks, while a timer that lost its phase at each re-arm never
    // ticks at all, however long.
    let ticks_so_far = || TIMER_TICKS.load(Ordering::SeqCst) - first;
    while events::now() < start + 60 * MS || (ticks_so_far() < 3 && events::now() < start + 300 * MS) {
        rearmed_ok &= events::set_periodic_timer(10 * MS) == Ok(0);
        let next = events::now() + 4 * MS;
        while events::now() < next {
            core::hint::spin_loop();
        }
    }
    let _ = events::mask_events();
    let ticks = TIMER_TICKS.load(Ordering::SeqCst) - first;
    let _ = events::stop_periodic_timer();
    check!(
        log,
        "set_periodic_timer 10ms again every 4ms for 60ms",
        "0 each time, at least 3 ticks (the window grows to 300 ms if the host stalls)",
        rearmed_ok && ticks >= 3,
        "{}, at least 3 ticks {}",
        if rearmed_ok { "0" } else { "refused" },
        ticks >= 3
    );
    let mut arg = vcpu::VcpuSetPeriodicTimer { period_ns: 1 };
    // SAFETY: a timer sub-op with its own structure; it only arms or stops a timer.
    let r = unsafe { guest::vcpu_op(vcpu::VCPUOP_SET_PERIODIC_TIMER, 0, Some(&mut arg)) };
    check!(
        log,
        "vcpu_op set_periodic_timer 1ns (below Xen's minimum)",
        "-22 (EINVAL)",
        r == Err(Errno::EINVAL),
        "{}",
        ret_of(r)
    );
    let _ = events::stop_periodic_timer();
    let r = events::close(port);
    check!(log, "close the VIRQ_TIMER port", "0", r == Ok(0), "{}", ret_of(r));
}

fn ipi(log: &mut CheckLog, b: &EventBits) {
    let port = match events::bind_ipi() {
        Ok(p) => p,
        Err(e) => {
            check!(log, "bind_ipi", "a port", false, "{e}");
            return;
        }
    };
    // 1. Masked port, events unmasked: pending, but no selector bit and no upcall.
    b.mask(port);
    events::unmask_events();
    let handled = PORTS_HANDLED.load(Ordering::SeqCst);
    let r = events::send(port);
    let pending = b.is_pending(port);
    let sel = b.pending_sel().load(Ordering::SeqCst) & (1 << (port / 64)) != 0;
    let up = b.upcall_pending().load(Ordering::SeqCst);
    let none = PORTS_HANDLED.load(Ordering::SeqCst) == handled;
    check!(
        log,
        "send on a masked IPI port",
        "0, pending, no selector bit, no upcall",
        r == Ok(0) && pending && !sel && up == 0 && none,
        "{}, pending {pending}, sel {sel}, upcall_pending {up}, delivered {}",
        ret_of(r),
        !none
    );
    let r = events::unmask(port);
    let got = PORTS_HANDLED.load(Ordering::SeqCst) > handled && LAST_PORT.load(Ordering::SeqCst) == port as u64;
    check!(
        log,
        "EVTCHNOP_unmask of the pending port",
        "0, the upcall delivers it",
        r == Ok(0) && got && !b.is_pending(port),
        "{}, delivered {got}",
        ret_of(r)
    );
    // 2. Events masked: selector and upcall_pending set, delivery waits for the unmask.
    let _ = events::mask_events();
    let handled = PORTS_HANDLED.load(Ordering::SeqCst);
    let r = events::send(port);
    let sel = b.pending_sel().load(Ordering::SeqCst) & (1 << (port / 64)) != 0;
    let up = b.upcall_pending().load(Ordering::SeqCst);
    let none = PORTS_HANDLED.load(Ordering::SeqCst) == handled;
    check!(
        log,
        "send with evtchn_upcall_mask set",
        "0, pending, selector bit and upcall_pending set, not delivered",
        r == Ok(0) && b.is_pending(port) && sel && up == 1 && none,
        "{}, pending {}, sel {sel}, upcall_pending {up}, delivered {}",
        ret_of(r),
        b.is_pending(port),
        !none
    );
    events::unmask_events();
    let got = PORTS_HANDLED.load(Ordering::SeqCst) > handled;
    let _ = events::mask_events();
    check!(
        log,
        "clearing evtchn_upcall_mask (then a hypercall)",
        "the upcall delivers the port",
        got,
        "delivered {got}"
    );
    let r = events::close(port);
    let r2 = events::send(port);
    check!(
        log,
        "close the IPI port, then send on it",
        "0, -22 (EINVAL)",
        r == Ok(0) && r2 == Err(Errno::EINVAL),
        "{}, {}",
        ret_of(r),
        ret_of(r2)
    );
}
