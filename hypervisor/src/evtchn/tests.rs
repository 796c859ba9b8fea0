//! Host tests of the event-channel state machine: every op's success and refusals with Xen's
//! errno, interdomain set-up and teardown, and the §3.9 raising rules.

use super::*;
use hypercall_abi::event_channel::{VIRQ_CONSOLE, VIRQ_DEBUG};
use std::boxed::Box;
use std::collections::BTreeMap as Map;
use std::vec;

/// Shared-info pages in plain memory, and a log of kicks.
#[derive(Default)]
pub(crate) struct Host {
    pub pages: Map<DomId, Box<SharedInfo>>,
    pub kicks: Vec<(DomId, u32)>,
}

impl Host {
    pub fn with(doms: &[DomId]) -> Self {
        let mut h = Host::default();
        for &d in doms {
            h.pages.insert(d, Box::new(SharedInfo::zeroed()));
        }
        h
    }
    pub fn si(&self, d: DomId) -> &SharedInfo {
        &self.pages[&d]
    }
    pub fn pending(&self, d: DomId, port: u32) -> bool {
        self.si(d).evtchn_pending[(port / 64) as usize] & (1 << (port % 64)) != 0
    }
    pub fn mask(&mut self, d: DomId, port: u32) {
        self.pages.get_mut(&d).unwrap().evtchn_mask[(port / 64) as usize] |= 1 << (port % 64);
    }
    /// What a guest's upcall handler does: clear upcall_pending, pending_sel and all pending bits.
    pub fn drain(&mut self, d: DomId) {
        let si = self.pages.get_mut(&d).unwrap();
        for v in si.vcpu_info.iter_mut() {
            v.evtchn_upcall_pending = 0;
            v.evtchn_pending_sel = 0;
        }
        si.evtchn_pending = [0; 64];
    }
}

impl EvtchnHost for Host {
    fn shared_info(&mut self, dom: DomId) -> Option<&mut SharedInfo> {
        self.pages.get_mut(&dom).map(|b| &mut **b)
    }
    fn kick(&mut self, dom: DomId, vcpu: u32) {
        self.kicks.push((dom, vcpu));
    }
}

const DOM0: DomId = 0;
const DOMU: DomId = 1;
const OTHER: DomId = 2;

/// dom0 (privileged, 2 vCPUs), domU 1 and domU 2 (1 vCPU each).
fn setup() -> (EventChannels, Host) {
    let mut ev = EventChannels::new();
    ev.add_domain(DOM0, DomainConfig::new(2, true)).unwrap();
    ev.add_domain(DOMU, DomainConfig::new(1, false)).unwrap();
    ev.add_domain(OTHER, DomainConfig::new(1, false)).unwrap();
    (ev, Host::with(&[DOM0, DOMU, OTHER]))
}

/// An interdomain pair: domU's port bound to a dom0 port; returns (dom0 port, domU port).
fn pair(ev: &mut EventChannels, h: &mut Host) -> (u32, u32) {
    let p0 = ev.alloc_unbound(DOM0, DOMID_SELF, DOMU).unwrap();
    let pu = ev.bind_interdomain(h, DOMU, DOM0, p0).unwrap();
    h.drain(DOMU);
    h.kicks.clear();
    (p0, pu)
}

#[test]
fn add_domain_validates_and_reserves_port_0() {
    let mut ev = EventChannels::new();
    assert_eq!(ev.add_domain(DOMID_SELF, DomainConfig::new(1, false)), Err(Errno::EINVAL));
    assert_eq!(ev.add_domain(3, DomainConfig::new(0, false)), Err(Errno::EINVAL));
    assert_eq!(ev.add_domain(3, DomainConfig::new(33, false)), Err(Errno::EINVAL));
    assert_eq!(ev.add_domain(3, DomainConfig { max_ports: 4097, ..DomainConfig::new(1, false) }), Err(Errno::EINVAL));
    ev.add_domain(3, DomainConfig::new(1, false)).unwrap();
    assert_eq!(ev.port_state(3, 0), Some(PortState::Reserved));
    assert_eq!(ev.status(3, DOMID_SELF, 0), Ok(PortStatus { state: PortState::Reserved, vcpu: 0 }));
}

#[test]
fn alloc_unbound_rules() {
    let (mut ev, _h) = setup();
    assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Ok(1));
    assert_eq!(ev.alloc_unbound(DOMU, DOMU, DOM0), Ok(2));
    assert_eq!(ev.port_state(DOMU, 1), Some(PortState::Unbound { remote: DOM0 }));
    // Unprivileged callers may not allocate in other domains; nonexistent ones are ESRCH.
    assert_eq!(ev.alloc_unbound(DOMU, OTHER, DOM0), Err(Errno::EPERM));
    assert_eq!(ev.alloc_unbound(DOMU, 77, DOM0), Err(Errno::ESRCH));
    assert_eq!(ev.alloc_unbound(DOMU, 0x7ff1, DOM0), Err(Errno::ESRCH));
    // dom0 may allocate in a domU on the domU's behalf.
    assert_eq!(ev.alloc_unbound(DOM0, OTHER, DOMU), Ok(1));
    assert_eq!(ev.port_state(OTHER, 1), Some(PortState::Unbound { remote: DOMU }));
    // remote DOMID_SELF stores the caller's real id (loopback).
    let p = ev.alloc_unbound(DOMU, DOMID_SELF, DOMID_SELF).unwrap();
    assert_eq!(ev.port_state(DOMU, p), Some(PortState::Unbound { remote: DOMU }));
    // As in Xen, the remote domain need not exist.
    assert!(ev.alloc_unbound(DOMU, DOMID_SELF, 999).is_ok());
}

#[test]
fn bind_interdomain_connects_both_ends_and_sets_local_pending() {
    let (mut ev, mut h) = setup();
    let p0 = ev.alloc_unbound(DOM0, DOMID_SELF, DOMU).unwrap();
    let pu = ev.bind_interdomain(&mut h, DOMU, DOM0, p0).unwrap();
    assert_eq!(ev.port_state(DOMU, pu), Some(PortState::Interdomain { remote: DOM0, remote_port: p0 }));
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Interdomain { remote: DOMU, remote_port: pu }));
    assert!(h.pending(DOMU, pu), "the local port is set pending straight away");
    assert_eq!(h.si(DOMU).vcpu_info[0].evtchn_upcall_pending, 1);
    assert_eq!(h.kicks, vec![(DOMU, 0)]);
    let st = ev.status(DOM0, DOMU, pu).unwrap();
    assert_eq!(st.state, PortState::Interdomain { remote: DOM0, remote_port: p0 });
}

#[test]
fn bind_interdomain_refusals() {
    let (mut ev, mut h) = setup();
    let p0 = ev.alloc_unbound(DOM0, DOMID_SELF, DOMU).unwrap();
    assert_eq!(ev.bind_interdomain(&mut h, DOMU, 42, p0), Err(Errno::ESRCH));
    // Reserved for DOMU, not for OTHER.
    assert_eq!(ev.bind_interdomain(&mut h, OTHER, DOM0, p0), Err(Errno::EINVAL));
    // Invalid, free and reserved remote ports.
    for bad in [0, 5, 64, 4096, u32::MAX] {
        assert_eq!(ev.bind_interdomain(&mut h, DOMU, DOM0, bad), Err(Errno::EINVAL), "port {bad}");
    }
    ev.bind_interdomain(&mut h, DOMU, DOM0, p0).unwrap();
    // Already bound: no longer unbound.
    assert_eq!(ev.bind_interdomain(&mut h, DOMU, DOM0, p0), Err(Errno::EINVAL));
    // A VIRQ port is not unbound either.
    let v = ev.bind_virq(DOM0, VIRQ_DOM_EXC, 0).unwrap();
    assert_eq!(ev.bind_interdomain(&mut h, DOMU, DOM0, v), Err(Errno::EINVAL));
    // Failed binds leave no port allocated behind.
    assert_eq!(ev.port_state(DOMU, 2), Some(PortState::Free));
}

#[test]
fn a_dying_domain_gets_no_new_port_and_nobody_binds_to_it() {
    let (mut ev, mut h) = setup();
    let waiting = ev.alloc_unbound(OTHER, DOMID_SELF, DOMU).unwrap();
    ev.domain_dying(&mut h, OTHER);
    // Xen's `get_free_port` refuses a dying domain before looking for a port.
    assert_eq!(ev.alloc_unbound(DOM0, OTHER, DOMU), Err(Errno::EINVAL));
    assert_eq!(ev.alloc_unbound(OTHER, DOMID_SELF, DOMU), Err(Errno::EINVAL));
    assert_eq!(ev.bind_virq(OTHER, VIRQ_CONSOLE, 0), Err(Errno::EINVAL));
    assert_eq!(ev.bind_ipi(OTHER, 0), Err(Errno::EINVAL));
    // Its unbound port is closed in Xen by then: binding to it is refused, and the failed
    // bind leaves no port behind in the binder.
    assert_eq!(ev.bind_interdomain(&mut h, DOMU, OTHER, waiting), Err(Errno::EINVAL));
    assert_eq!(ev.port_state(DOMU, 1), Some(PortState::Free));
    // Other domains are not affected, and a new domain under the same id starts afresh.
    assert!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0).is_ok());
    ev.domain_destroyed(&mut h, OTHER);
    ev.add_domain(OTHER, DomainConfig::new(1, false)).unwrap();
    assert_eq!(ev.alloc_unbound(OTHER, DOMID_SELF, DOMU), Ok(1));
}

/// Xen's `domain_kill` closes a dying domain's ports (`evtchn_destroy`) before it releases
/// its memory: from then on its peers' ports are unbound and their sends dropped, for the
/// whole teardown, not only once it ends.
#[test]
fn a_dying_domains_ports_are_closed_at_once() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    let ipi = ev.bind_ipi(DOMU, 0).unwrap();
    ev.domain_dying(&mut h, DOMU);
    assert_eq!(ev.status(DOM0, DOMID_SELF, p0).unwrap().state, PortState::Unbound { remote: DOMU });
    assert_eq!(ev.send(&mut h, DOM0, p0), Ok(()));
    assert!(!h.pending(DOMU, pu), "a send into a dying domain is dropped");
    assert_eq!(ev.port_state(DOMU, pu), Some(PortState::Free));
    assert_eq!(ev.port_state(DOMU, ipi), Some(PortState::Free));
    assert!(h.kicks.is_empty(), "nobody was notified: {:?}", h.kicks);
    // The end of the teardown still tells dom0 (VIRQ_DOM_EXC) and drops the table.
    let dom_exc = ev.bind_virq(DOM0, VIRQ_DOM_EXC, 0).unwrap();
    ev.domain_destroyed(&mut h, DOMU);
    assert!(h.pending(DOM0, dom_exc));
    assert!(!ev.has_domain(DOMU));
}

#[test]
fn a_new_bucket_must_leave_the_heaps_reserve() {
    let (mut ev, _h) = setup();
    // The first bucket (64 ports, port 0 reserved) fills without growing.
    for p in 1..BUCKET {
        assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Ok(p));
    }
    crate::heap::testing::pretend(16 << 20, 14 << 20);
    assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Err(Errno::ENOMEM));
    assert_eq!(ev.port_state(DOMU, BUCKET), None, "the table did not grow");
    crate::heap::testing::clear();
    assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Ok(BUCKET));
}

#[test]
fn loopback_interdomain() {
    let (mut ev, mut h) = setup();
    let a = ev.alloc_unbound(DOMU, DOMID_SELF, DOMID_SELF).unwrap();
    let b = ev.bind_interdomain(&mut h, DOMU, DOMID_SELF, a).unwrap();
    assert_ne!(a, b);
    h.drain(DOMU);
    ev.send(&mut h, DOMU, b).unwrap();
    assert!(h.pending(DOMU, a) && !h.pending(DOMU, b));
    ev.close(&mut h, DOMU, a).unwrap();
    assert_eq!(ev.port_state(DOMU, b), Some(PortState::Unbound { remote: DOMU }));
}

#[test]
fn send_raises_the_peer_port_with_upcall_semantics() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    ev.send(&mut h, DOMU, pu).unwrap();
    assert!(h.pending(DOM0, p0));
    assert!(!h.pending(DOMU, pu));
    let vi = &h.si(DOM0).vcpu_info[0];
    assert_eq!((vi.evtchn_upcall_pending, vi.evtchn_pending_sel), (1, 1 << (p0 / 64)));
    assert_eq!(h.kicks, vec![(DOM0, 0)]);
    // Already pending: nothing more happens.
    ev.send(&mut h, DOMU, pu).unwrap();
    assert_eq!(h.kicks.len(), 1);
    // Pending cleared by the guest but pending_sel still set: no new kick (step 2 needs a
    // newly set selector bit).
    h.pages.get_mut(&DOM0).unwrap().evtchn_pending = [0; 64];
    ev.send(&mut h, DOMU, pu).unwrap();
    assert!(h.pending(DOM0, p0));
    assert_eq!(h.kicks.len(), 1);
    // The other direction.
    h.drain(DOM0);
    ev.send(&mut h, DOM0, p0).unwrap();
    assert!(h.pending(DOMU, pu));
    assert_eq!(h.kicks, vec![(DOM0, 0), (DOMU, 0)]);
}

#[test]
fn send_notifies_the_vcpu_the_port_is_bound_to() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    ev.bind_vcpu(DOM0, p0, 1).unwrap();
    ev.send(&mut h, DOMU, pu).unwrap();
    assert_eq!(h.kicks, vec![(DOM0, 1)]);
    assert_eq!(h.si(DOM0).vcpu_info[1].evtchn_upcall_pending, 1);
    assert_eq!(h.si(DOM0).vcpu_info[0].evtchn_upcall_pending, 0);
}

#[test]
fn masked_ports_do_not_kick_until_unmask() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    h.mask(DOM0, p0);
    ev.send(&mut h, DOMU, pu).unwrap();
    assert!(h.pending(DOM0, p0));
    assert_eq!(h.si(DOM0).vcpu_info[0].evtchn_upcall_pending, 0);
    assert_eq!(h.si(DOM0).vcpu_info[0].evtchn_pending_sel, 0);
    assert!(h.kicks.is_empty());
    ev.unmask(&mut h, DOM0, p0).unwrap();
    assert_eq!(h.si(DOM0).evtchn_mask[0], 0);
    assert_eq!(h.si(DOM0).vcpu_info[0].evtchn_upcall_pending, 1);
    assert_eq!(h.kicks, vec![(DOM0, 0)]);
    // Unmasking an unmasked port, or a masked one that is not pending, raises nothing.
    ev.unmask(&mut h, DOM0, p0).unwrap();
    h.drain(DOM0);
    h.mask(DOM0, p0);
    ev.unmask(&mut h, DOM0, p0).unwrap();
    assert_eq!(h.kicks.len(), 1);
    // Invalid ports.
    assert_eq!(ev.unmask(&mut h, DOM0, 64), Err(Errno::EINVAL));
    assert_eq!(ev.unmask(&mut h, DOM0, u32::MAX), Err(Errno::EINVAL));
    // A free but valid port is fine (it only clears the mask bit).
    h.mask(DOM0, 9);
    assert_eq!(ev.unmask(&mut h, DOM0, 9), Ok(()));
    assert_eq!(h.si(DOM0).evtchn_mask[0], 0);
}

#[test]
fn send_by_state() {
    let (mut ev, mut h) = setup();
    let ipi = ev.bind_ipi(DOM0, 1).unwrap();
    ev.send(&mut h, DOM0, ipi).unwrap();
    assert!(h.pending(DOM0, ipi));
    assert_eq!(h.kicks, vec![(DOM0, 1)]);
    let unbound = ev.alloc_unbound(DOM0, DOMID_SELF, DOMU).unwrap();
    assert_eq!(ev.send(&mut h, DOM0, unbound), Ok(()), "unbound: silently dropped");
    assert!(!h.pending(DOM0, unbound));
    let virq = ev.bind_virq(DOM0, VIRQ_DOM_EXC, 0).unwrap();
    assert_eq!(ev.send(&mut h, DOM0, virq), Err(Errno::EINVAL));
    assert_eq!(ev.send(&mut h, DOM0, 0), Err(Errno::EINVAL), "reserved");
    assert_eq!(ev.send(&mut h, DOM0, 20), Err(Errno::EINVAL), "free");
    assert_eq!(ev.send(&mut h, DOM0, 5000), Err(Errno::EINVAL), "out of range");
    assert_eq!(h.kicks.len(), 1);
}

#[test]
fn close_interdomain_returns_the_peer_to_unbound_and_allows_rebind() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    ev.send(&mut h, DOM0, p0).unwrap();
    assert!(h.pending(DOMU, pu));
    ev.close(&mut h, DOMU, pu).unwrap();
    assert!(!h.pending(DOMU, pu), "close clears the pending bit");
    assert_eq!(ev.port_state(DOMU, pu), Some(PortState::Free));
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Unbound { remote: DOMU }));
    // Sending into the now-unbound end is dropped.
    assert_eq!(ev.send(&mut h, DOM0, p0), Ok(()));
    // The domU binds again, getting the lowest free port (the same one).
    let again = ev.bind_interdomain(&mut h, DOMU, DOM0, p0).unwrap();
    assert_eq!(again, pu);
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Interdomain { remote: DOMU, remote_port: again }));
    // Closing the dom0 end instead.
    ev.close(&mut h, DOM0, p0).unwrap();
    assert_eq!(ev.port_state(DOMU, again), Some(PortState::Unbound { remote: DOM0 }));
}

#[test]
fn close_refusals_and_other_states() {
    let (mut ev, mut h) = setup();
    for bad in [0, 3, 64, 4095, u32::MAX] {
        assert_eq!(ev.close(&mut h, DOMU, bad), Err(Errno::EINVAL), "port {bad}");
    }
    let ipi = ev.bind_ipi(DOMU, 0).unwrap();
    let unbound = ev.alloc_unbound(DOMU, DOMID_SELF, DOM0).unwrap();
    ev.close(&mut h, DOMU, ipi).unwrap();
    ev.close(&mut h, DOMU, unbound).unwrap();
    assert_eq!(ev.close(&mut h, DOMU, ipi), Err(Errno::EINVAL), "double close");
}

#[test]
fn bind_virq_rules() {
    let (mut ev, mut h) = setup();
    let t = ev.bind_virq(DOM0, VIRQ_TIMER, 1).unwrap();
    assert_eq!(ev.status(DOM0, DOMID_SELF, t), Ok(PortStatus { state: PortState::Virq(VIRQ_TIMER), vcpu: 1 }));
    assert_eq!(ev.bind_virq(DOM0, VIRQ_TIMER, 1), Err(Errno::EEXIST));
    assert!(ev.bind_virq(DOM0, VIRQ_TIMER, 0).is_ok(), "per-vCPU VIRQs bind once per vCPU");
    assert_eq!(ev.bind_virq(DOM0, VIRQ_TIMER, 2), Err(Errno::ENOENT));
    assert_eq!(ev.bind_virq(DOM0, VIRQ_TIMER, u32::MAX), Err(Errno::ENOENT));
    assert_eq!(ev.bind_virq(DOM0, NR_VIRQS, 0), Err(Errno::EINVAL));
    assert_eq!(ev.bind_virq(DOM0, u32::MAX, 0), Err(Errno::EINVAL));
    assert_eq!(ev.bind_virq(DOM0, VIRQ_CONSOLE, 1), Err(Errno::EINVAL), "global VIRQs only on vCPU 0");
    let c = ev.bind_virq(DOM0, VIRQ_CONSOLE, 0).unwrap();
    assert_eq!(ev.bind_virq(DOM0, VIRQ_CONSOLE, 0), Err(Errno::EEXIST));
    // Closing frees the VIRQ for binding again.
    ev.close(&mut h, DOM0, c).unwrap();
    assert_eq!(ev.bind_virq(DOM0, VIRQ_CONSOLE, 0), Ok(c));
}

#[test]
fn raise_virq_follows_the_binding() {
    let (mut ev, mut h) = setup();
    ev.raise_virq(&mut h, DOMU, VIRQ_TIMER);
    assert!(h.kicks.is_empty(), "unbound VIRQs are dropped");
    let t = ev.bind_virq(DOMU, VIRQ_TIMER, 0).unwrap();
    ev.raise_virq(&mut h, DOMU, VIRQ_TIMER);
    assert!(h.pending(DOMU, t));
    assert_eq!(h.kicks, vec![(DOMU, 0)]);
    // Per-vCPU VIRQ on vCPU 1 of dom0.
    let t1 = ev.bind_virq(DOM0, VIRQ_DEBUG, 1).unwrap();
    ev.raise_vcpu_virq(&mut h, DOM0, 1, VIRQ_DEBUG);
    assert!(h.pending(DOM0, t1));
    assert_eq!(h.kicks.last(), Some(&(DOM0, 1)));
    ev.raise_vcpu_virq(&mut h, DOM0, 0, VIRQ_DEBUG);
    ev.raise_vcpu_virq(&mut h, DOM0, 7, VIRQ_DEBUG);
    ev.raise_vcpu_virq(&mut h, 99, 0, VIRQ_DEBUG);
    ev.raise_vcpu_virq(&mut h, DOM0, 0, 1000);
    assert_eq!(h.kicks.len(), 2, "nothing bound there: nothing raised");
    // A global VIRQ moved to vCPU 1 notifies vCPU 1.
    let exc = ev.bind_virq(DOM0, VIRQ_DOM_EXC, 0).unwrap();
    ev.bind_vcpu(DOM0, exc, 1).unwrap();
    h.drain(DOM0);
    ev.send_global_virq(&mut h, VIRQ_DOM_EXC);
    assert!(h.pending(DOM0, exc));
    assert_eq!(h.kicks.last(), Some(&(DOM0, 1)));
    // A domain without a shared_info page yet: dropped, no panic.
    h.pages.remove(&OTHER);
    let o = ev.bind_virq(OTHER, VIRQ_TIMER, 0).unwrap();
    ev.raise_virq(&mut h, OTHER, VIRQ_TIMER);
    assert_eq!(ev.port_state(OTHER, o), Some(PortState::Virq(VIRQ_TIMER)));
}

#[test]
fn bind_ipi_and_bind_vcpu_rules() {
    let (mut ev, mut h) = setup();
    assert_eq!(ev.bind_ipi(DOMU, 1), Err(Errno::ENOENT));
    let ipi = ev.bind_ipi(DOMU, 0).unwrap();
    assert_eq!(ev.status(DOMU, DOMID_SELF, ipi), Ok(PortStatus { state: PortState::Ipi, vcpu: 0 }));
    assert_eq!(ev.bind_vcpu(DOMU, ipi, 0), Err(Errno::EINVAL), "IPI ports cannot move");
    assert_eq!(ev.bind_vcpu(DOMU, ipi, 1), Err(Errno::ENOENT), "vCPU checked first");
    let timer = ev.bind_virq(DOM0, VIRQ_TIMER, 1).unwrap();
    assert_eq!(ev.bind_vcpu(DOM0, timer, 0), Err(Errno::EINVAL), "per-vCPU VIRQ ports cannot move");
    let (p0, _) = pair(&mut ev, &mut h);
    assert_eq!(ev.bind_vcpu(DOM0, p0, 1), Ok(()));
    let unbound = ev.alloc_unbound(DOM0, DOMID_SELF, OTHER).unwrap();
    assert_eq!(ev.bind_vcpu(DOM0, unbound, 1), Ok(()));
    assert_eq!(ev.status(DOM0, DOMID_SELF, unbound).unwrap().vcpu, 1);
    for bad in [0, 30, 64, u32::MAX] {
        assert_eq!(ev.bind_vcpu(DOM0, bad, 0), Err(Errno::EINVAL), "port {bad}");
    }
}

#[test]
fn status_rules() {
    let (mut ev, _h) = setup();
    let p = ev.alloc_unbound(DOMU, DOMID_SELF, DOM0).unwrap();
    assert_eq!(ev.status(DOMU, DOMID_SELF, p), Ok(PortStatus { state: PortState::Unbound { remote: DOM0 }, vcpu: 0 }));
    assert_eq!(ev.status(DOMU, DOMID_SELF, 5), Ok(PortStatus { state: PortState::Free, vcpu: 0 }));
    assert_eq!(ev.status(DOMU, DOMID_SELF, 64), Err(Errno::EINVAL));
    assert_eq!(ev.status(DOMU, 55, 1), Err(Errno::ESRCH));
    assert_eq!(ev.status(DOMU, OTHER, 1), Err(Errno::EPERM));
    assert_eq!(ev.status(DOM0, DOMU, p).unwrap().state, PortState::Unbound { remote: DOM0 });
}

#[test]
fn port_exhaustion_at_4095_ports() {
    let (mut ev, mut h) = setup();
    for i in 1..MAX_PORTS {
        assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Ok(i));
    }
    assert_eq!(ev.alloc_unbound(DOMU, DOMID_SELF, DOM0), Err(Errno::ENOSPC));
    assert_eq!(ev.bind_ipi(DOMU, 0), Err(Errno::ENOSPC));
    assert_eq!(ev.bind_virq(DOMU, VIRQ_TIMER, 0), Err(Errno::ENOSPC));
    let p0 = ev.alloc_unbound(DOM0, DOMID_SELF, DOMU).unwrap();
    assert_eq!(ev.bind_interdomain(&mut h, DOMU, DOM0, p0), Err(Errno::ENOSPC));
    // The top port works like any other, and freeing one makes room.
    assert_eq!(ev.status(DOMU, DOMID_SELF, 4095).unwrap().state, PortState::Unbound { remote: DOM0 });
    assert_eq!(ev.status(DOMU, DOMID_SELF, 4096), Err(Errno::EINVAL));
    ev.close(&mut h, DOMU, 777).unwrap();
    assert_eq!(ev.bind_ipi(DOMU, 0), Ok(777));
    ev.send(&mut h, DOMU, 777).unwrap();
    assert!(h.pending(DOMU, 777));
    assert_eq!(h.si(DOMU).vcpu_info[0].evtchn_pending_sel, 1 << 12);
}

#[test]
fn max_ports_limit_is_honoured() {
    let mut ev = EventChannels::new();
    ev.add_domain(5, DomainConfig { max_ports: 100, ..DomainConfig::new(1, false) }).unwrap();
    for i in 1..100 {
        assert_eq!(ev.bind_ipi(5, 0), Ok(i));
    }
    assert_eq!(ev.bind_ipi(5, 0), Err(Errno::ENOSPC));
}

#[test]
fn reset_closes_everything() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    let t = ev.bind_virq(DOMU, VIRQ_TIMER, 0).unwrap();
    ev.bind_ipi(DOMU, 0).unwrap();
    ev.alloc_unbound(DOMU, DOMID_SELF, DOM0).unwrap();
    ev.send(&mut h, DOM0, p0).unwrap();
    assert_eq!(ev.reset(&mut h, DOMU, OTHER, false, false), Err(Errno::EPERM));
    assert_eq!(ev.reset(&mut h, DOMU, 300, false, false), Err(Errno::ESRCH));
    assert_eq!(ev.reset(&mut h, DOM0, DOMU, false, false), Err(Errno::EINVAL), "another domain must be paused");
    assert_eq!(ev.reset(&mut h, DOMU, OTHER, false, true), Err(Errno::EPERM), "paused, but not the caller's to reset");
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, true, false), Err(Errno::EBUSY), "no reset to continue");
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, false, false), Ok(()));
    for p in 1..64 {
        assert_eq!(ev.port_state(DOMU, p), Some(PortState::Free), "port {p}");
    }
    assert_eq!(ev.port_state(DOMU, 0), Some(PortState::Reserved));
    assert!(!h.pending(DOMU, pu));
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Unbound { remote: DOMU }));
    // The VIRQ can be bound again.
    assert_eq!(ev.bind_virq(DOMU, VIRQ_TIMER, 0), Ok(1));
    let _ = t;
}

#[test]
fn dom0_resets_a_domain_it_has_paused() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    assert_eq!(ev.reset(&mut h, DOM0, DOMU, false, true), Ok(()));
    assert_eq!(ev.port_state(DOMU, pu), Some(PortState::Free));
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Unbound { remote: DOMU }));
    check_invariants(&ev);
}

#[test]
fn reset_of_a_full_table_runs_in_bounded_steps() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    while ev.bind_ipi(DOMU, 0).is_ok() {}
    assert_eq!(ev.port_state(DOMU, MAX_PORTS - 1), Some(PortState::Ipi), "table full");
    // 4095 ports from port 1: three entries stop part way, the fourth finishes.
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, false, false), Err(Errno::ERESTART));
    assert_eq!(ev.port_state(DOMU, RESET_PORTS_PER_ENTRY), Some(PortState::Free));
    assert_eq!(ev.port_state(DOMU, RESET_PORTS_PER_ENTRY + 1), Some(PortState::Ipi), "stopped after one step");
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Unbound { remote: DOMU }), "peer told at once");
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, false, false), Err(Errno::EBUSY), "one reset at a time");
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, true, false), Err(Errno::ERESTART));
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, true, false), Err(Errno::ERESTART));
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, true, false), Ok(()));
    assert!((1..MAX_PORTS).all(|p| ev.port_state(DOMU, p) == Some(PortState::Free)));
    assert!(!h.pending(DOMU, pu));
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, true, false), Err(Errno::EBUSY), "finished: nothing to continue");
    check_invariants(&ev);

    // A port opened between the steps (the guest's event handler ran) survives, and the
    // reset says so, as Xen's re-check under its lock does.
    while ev.bind_ipi(DOMU, 0).is_ok() {}
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, false, false), Err(Errno::ERESTART));
    let reopened = ev.bind_ipi(DOMU, 0).unwrap();
    assert!(reopened < RESET_PORTS_PER_ENTRY);
    let continue_reset = |ev: &mut EventChannels, h: &mut Host| {
        let mut steps = 0;
        loop {
            steps += 1;
            match ev.reset(h, DOMU, DOMID_SELF, true, false) {
                Err(Errno::ERESTART) => continue,
                other => break (other, steps),
            }
        }
    };
    assert_eq!(continue_reset(&mut ev, &mut h), (Err(Errno::EAGAIN), 3));
    assert_eq!(ev.port_state(DOMU, reopened), Some(PortState::Ipi));
    // A new reset may start; it walks every valid port again.
    assert_eq!(ev.reset(&mut h, DOMU, DOMID_SELF, false, false), Err(Errno::ERESTART));
    assert_eq!(continue_reset(&mut ev, &mut h), (Ok(()), 3));
    assert_eq!(ev.port_state(DOMU, reopened), Some(PortState::Free));
    check_invariants(&ev);
}

#[test]
fn domain_destroyed_closes_ports_and_notifies_dom0() {
    let (mut ev, mut h) = setup();
    let (p0, pu) = pair(&mut ev, &mut h);
    let exc = ev.bind_virq(DOM0, VIRQ_DOM_EXC, 0).unwrap();
    // A port domU reserved in OTHER (allocated there by dom0) and OTHER's pair with domU.
    let po = ev.alloc_unbound(OTHER, DOMID_SELF, DOMU).unwrap();
    let pu2 = ev.bind_interdomain(&mut h, DOMU, OTHER, po).unwrap();
    h.kicks.clear();
    ev.domain_destroyed(&mut h, DOMU);
    assert!(!ev.has_domain(DOMU));
    assert_eq!(ev.port_state(DOM0, p0), Some(PortState::Unbound { remote: DOMU }));
    assert_eq!(ev.port_state(OTHER, po), Some(PortState::Unbound { remote: DOMU }));
    assert!(h.pending(DOM0, exc));
    assert_eq!(h.kicks, vec![(DOM0, 0)]);
    // The dead domain is gone for every op; sends to its old peers' ports are dropped.
    assert_eq!(ev.send(&mut h, DOMU, pu), Err(Errno::ESRCH));
    assert_eq!(ev.bind_interdomain(&mut h, DOM0, DOMU, pu2), Err(Errno::ESRCH));
    assert_eq!(ev.send(&mut h, DOM0, p0), Ok(()));
    // Destroying twice, or an unknown domain, is harmless.
    ev.domain_destroyed(&mut h, DOMU);
    ev.domain_destroyed(&mut h, 1234);
    assert_eq!(h.kicks.len(), 1);
    // A new domain with the same id starts fresh.
    ev.add_domain(DOMU, DomainConfig::new(1, false)).unwrap();
    assert_eq!(ev.status(DOMU, DOMID_SELF, pu).unwrap().state, PortState::Free);
    // Without VIRQ_DOM_EXC bound in dom0, destruction notifies nobody.
    ev.close(&mut h, DOM0, exc).unwrap();
    h.kicks.clear();
    ev.domain_destroyed(&mut h, OTHER);
    assert!(h.kicks.is_empty());
}

#[test]
fn ops_from_an_unknown_caller_are_esrch() {
    let (mut ev, mut h) = setup();
    assert_eq!(ev.bind_ipi(9, 0), Err(Errno::ESRCH));
    assert_eq!(ev.bind_virq(9, VIRQ_TIMER, 0), Err(Errno::ESRCH));
    assert_eq!(ev.send(&mut h, 9, 1), Err(Errno::ESRCH));
    assert_eq!(ev.close(&mut h, 9, 1), Err(Errno::ESRCH));
    assert_eq!(ev.unmask(&mut h, 9, 1), Err(Errno::ESRCH));
    assert_eq!(ev.bind_vcpu(9, 1, 0), Err(Errno::ESRCH));
    assert_eq!(ev.alloc_unbound(9, DOMID_SELF, 0), Err(Errno::ESRCH));
}

/// The table's structural invariants: port 0 reserved, interdomain ends mirror each other,
/// VIRQ maps and VIRQ ports agree one-to-one, notified vCPUs exist.
fn check_invariants(ev: &EventChannels) {
    for (d, t) in ev.domains.iter() {
        assert_eq!(t.ports[0].state, PortState::Reserved);
        assert!(t.ports.len() as u32 <= MAX_PORTS && t.ports.len() % BUCKET as usize == 0);
        for (p, c) in t.ports.iter().enumerate() {
            assert!(c.vcpu < t.config.nr_vcpus, "dom {d} port {p}");
            match c.state {
                PortState::Interdomain { remote, remote_port } => {
                    let peer = ev.domains.get(&remote).unwrap().ports[remote_port as usize].state;
                    assert_eq!(peer, PortState::Interdomain { remote: d, remote_port: p as u32 });
                }
                PortState::Virq(virq) => {
                    let binder = if virq_is_global(virq) { 0 } else { c.vcpu as usize };
                    assert_eq!(t.virqs[binder][virq as usize], p as u32, "dom {d} virq {virq}");
                }
                _ => {}
            }
        }
        for (v, map) in t.virqs.iter().enumerate() {
            for (virq, &p) in map.iter().enumerate() {
                if p != 0 {
                    assert_eq!(t.ports[p as usize].state, PortState::Virq(virq as u32), "dom {d} vcpu {v}");
                }
            }
        }
    }
}

#[test]
fn random_op_sequences_keep_the_invariants() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _round in 0..20 {
        let (mut ev, mut h) = setup();
        for _ in 0..3000 {
            let caller = (next() % 4) as DomId; // 3 is unknown
            let dom = [DOM0, DOMU, OTHER, DOMID_SELF, 9][(next() % 5) as usize];
            let port = match next() % 3 {
                0 => (next() % 12) as u32,
                1 => (next() % 80) as u32,
                _ => next() as u32,
            };
            let small = (next() % 3) as u32;
            match next() % 12 {
                0 => drop(ev.alloc_unbound(caller, dom, dom)),
                1 => drop(ev.bind_interdomain(&mut h, caller, dom, port)),
                2 => drop(ev.bind_virq(caller, (next() % 26) as u32, small)),
                3 => drop(ev.bind_ipi(caller, small)),
                4 => drop(ev.close(&mut h, caller, port)),
                5 => drop(ev.send(&mut h, caller, port)),
                6 => drop(ev.status(caller, dom, port)),
                7 => drop(ev.bind_vcpu(caller, port, small)),
                8 => drop(ev.unmask(&mut h, caller, port)),
                9 => drop(ev.reset(&mut h, caller, dom, next() % 2 == 0, next() % 2 == 0)),
                10 => ev.raise_vcpu_virq(&mut h, caller, small, (next() % 26) as u32),
                _ => match next() % 8 {
                    0 => {
                        ev.domain_destroyed(&mut h, caller);
                        let nr_vcpus = if caller == DOM0 { 2 } else { 1 };
                        ev.add_domain(caller, DomainConfig::new(nr_vcpus, caller == DOM0)).unwrap();
                    }
                    1 if caller != 3 => h.drain(caller),
                    _ => h.mask(DOMU, port % 64),
                },
            }
            check_invariants(&ev);
        }
    }
}

#[test]
fn tables_live_in_slots_by_id_sparse_ids_included() {
    // Tables sit in a slot per domain id: ids with gaps between them, the largest legal id,
    // lookups past the last slot and removal all behave as with a map.
    let mut ev = EventChannels::new();
    let top = DOMID_FIRST_RESERVED - 1;
    for d in [3, 1, top] {
        ev.add_domain(d, DomainConfig::new(1, false)).unwrap();
    }
    assert!(ev.has_domain(1) && ev.has_domain(3) && ev.has_domain(top));
    assert!(!ev.has_domain(0) && !ev.has_domain(2) && !ev.has_domain(top - 1));
    assert_eq!(ev.send(&mut Host::default(), DOMID_FIRST_RESERVED, 1), Err(Errno::ESRCH));
    let mut h = Host::default();
    let p = ev.alloc_unbound(3, DOMID_SELF, top).unwrap();
    let q = ev.bind_interdomain(&mut h, top, 3, p).unwrap();
    assert_eq!(ev.port_state(top, q), Some(PortState::Interdomain { remote: 3, remote_port: p }));
    ev.domain_destroyed(&mut h, top);
    assert!(!ev.has_domain(top));
    assert_eq!(ev.port_state(3, p), Some(PortState::Unbound { remote: top }), "the peer end survives");
    ev.domain_destroyed(&mut h, top); // a second time: nothing left to do
    ev.add_domain(top, DomainConfig::new(1, false)).unwrap();
    assert_eq!(ev.port_state(top, q), Some(PortState::Free), "a re-added domain starts afresh");
    check_invariants(&ev);
}
