//! Event channels in the kernel: the mapped `shared_info` as [`EventBits`], the virtual
//! interrupt flag (`evtchn_upcall_mask`) and the event-channel hypercalls the roles use.

use core::sync::atomic::{AtomicPtr, Ordering};

use hypercall_abi::event_channel as ev;
use hypercall_abi::guest;
use hypercall_abi::shared_info::SharedInfo;
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::Errno;

use crate::evtchn::EventBits;
use crate::pv::Shared;

static PAGE: AtomicPtr<SharedInfo> = AtomicPtr::new(core::ptr::null_mut());

/// Maps `shared_info` (once) and returns vCPU 0's event bits.
pub fn init(si: &StartInfo) -> Result<EventBits, Errno> {
    if PAGE.load(Ordering::SeqCst).is_null() {
        let shared = Shared::map(si)?;
        PAGE.store(shared.raw(), Ordering::SeqCst);
    }
    Ok(bits())
}

/// vCPU 0's event bits; [`init`] must have run.
pub fn bits() -> EventBits {
    let page = PAGE.load(Ordering::SeqCst);
    assert!(!page.is_null(), "shared_info not mapped yet");
    // SAFETY: `page` is the shared_info mapping made by `init`, kept for the kernel's life.
    unsafe { EventBits::new(page, 0) }
}

/// The `Shared` view (PV clock) of the mapped page; [`init`] must have run.
pub fn shared() -> Shared {
    let page = PAGE.load(Ordering::SeqCst);
    assert!(!page.is_null(), "shared_info not mapped yet");
    // SAFETY: as in `bits`.
    unsafe { Shared::from_raw(page) }
}

/// Masks events (the PV `cli`); returns the previous mask.
pub fn mask_events() -> u8 {
    bits().upcall_mask().swap(1, Ordering::SeqCst)
}

/// Unmasks events (the PV `sti`): clears the mask, then, if an upcall is already pending,
/// makes a trivial hypercall so Xen's return path delivers it (as Linux does).
pub fn unmask_events() {
    let b = bits();
    b.upcall_mask().store(0, Ordering::SeqCst);
    if b.upcall_pending().load(Ordering::SeqCst) != 0 {
        let _ = guest::xen_version();
    }
}

/// `EVTCHNOP_bind_virq(virq, vcpu 0)`: the new port.
pub fn bind_virq(virq: u32) -> Result<u32, Errno> {
    let mut b = ev::EvtchnBindVirq { virq, vcpu: 0, port: 0 };
    guest::event_channel_op(ev::EVTCHNOP_BIND_VIRQ, &mut b)?;
    Ok(b.port)
}

/// `EVTCHNOP_bind_ipi(vcpu 0)`: the new port.
pub fn bind_ipi() -> Result<u32, Errno> {
    let mut b = ev::EvtchnBindIpi { vcpu: 0, port: 0 };
    guest::event_channel_op(ev::EVTCHNOP_BIND_IPI, &mut b)?;
    Ok(b.port)
}

/// `EVTCHNOP_send(port)`.
pub fn send(port: u32) -> Result<u64, Errno> {
    guest::event_channel_op(ev::EVTCHNOP_SEND, &mut ev::EvtchnSend { port })
}

/// `EVTCHNOP_unmask(port)`.
pub fn unmask(port: u32) -> Result<u64, Errno> {
    guest::event_channel_op(ev::EVTCHNOP_UNMASK, &mut ev::EvtchnUnmask { port })
}

/// `EVTCHNOP_close(port)`.
pub fn close(port: u32) -> Result<u64, Errno> {
    guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port })
}

/// `VCPUOP_set_periodic_timer(vcpu 0, period)`.
pub fn set_periodic_timer(period_ns: u64) -> Result<u64, Errno> {
    let mut arg = hypercall_abi::vcpu::VcpuSetPeriodicTimer { period_ns };
    // SAFETY: the VCPUOP_*_periodic_timer sub-ops with their own structure (or none); they only arm or stop a timer.
    unsafe { guest::vcpu_op(hypercall_abi::vcpu::VCPUOP_SET_PERIODIC_TIMER, 0, Some(&mut arg)) }
}

/// `VCPUOP_stop_periodic_timer(vcpu 0)`.
pub fn stop_periodic_timer() -> Result<u64, Errno> {
    // SAFETY: stop_periodic_timer takes no argument and only stops a timer.
    unsafe { guest::vcpu_op::<u64>(hypercall_abi::vcpu::VCPUOP_STOP_PERIODIC_TIMER, 0, None) }
}

/// Current system time in ns.
pub fn now() -> u64 {
    shared().system_time_ns()
}

/// vCPU 0's event bits if `shared_info` is mapped.
pub fn try_bits() -> Option<EventBits> {
    let page = PAGE.load(Ordering::SeqCst);
    // SAFETY: as in `bits`.
    (!page.is_null()).then(|| unsafe { EventBits::new(page, 0) })
}
