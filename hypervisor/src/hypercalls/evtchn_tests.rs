//! Host tests of `event_channel_op` and its compat form through the hypercall table: structure
//! layouts in and out, `-EFAULT` on bad pointers, and the errno of every refusal.

use super::super::testing::{env_boilerplate, flat_guest_deref, FlatGuest, BASE};
use super::super::{dispatch, DomainFacts, Env, Outcome};
use crate::evtchn::tests::Host;
use crate::evtchn::{DomId, DomainConfig, EventAccess, EventChannels};
use hypercall_abi::event_channel::*;
use hypercall_abi::hypercall as nr;
use hypercall_abi::mm::DOMID_SELF;

const MEM: usize = 0x2000;
const DOM0: DomId = 0;
const DOMU: DomId = 1;

/// One flat guest memory shared by every "domain"; `caller` says who is calling.
struct Mock {
    guest: FlatGuest,
    ev: EventChannels,
    host: Host,
    caller: DomId,
    enabled: bool,
    vcpu: crate::vcpu::VcpuState,
    /// Whether domU counts as paused by dom0.
    domu_paused: bool,
}

impl Mock {
    fn new() -> Self {
        let mut ev = EventChannels::new();
        ev.add_domain(DOM0, DomainConfig::new(1, true)).unwrap();
        ev.add_domain(DOMU, DomainConfig::new(1, false)).unwrap();
        Self {
            guest: FlatGuest::new(MEM),
            ev,
            host: Host::with(&[DOM0, DOMU]),
            caller: DOM0,
            enabled: true,
            vcpu: crate::vcpu::VcpuState::new(0x1000),
            domu_paused: false,
        }
    }
    /// `event_channel_op(cmd, BASE)` with `words` (little-endian u32s) as the structure.
    fn op(&mut self, cmd: u64, words: &[u32]) -> i64 {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.put(BASE, &bytes);
        ret(dispatch(self, nr::EVENT_CHANNEL_OP, [cmd, BASE, 0, 0, 0]))
    }
}

fn ret(o: Outcome) -> i64 {
    match o {
        Outcome::Return(v) => v,
        other => panic!("unexpected outcome {other:?}"),
    }
}

flat_guest_deref!(Mock, guest);

impl Env for Mock {
    env_boilerplate!(guest: guest, vcpu: vcpu);
    fn paused_by_controller(&self, id: u16) -> bool {
        id == DOMU && self.domu_paused
    }
    fn domain(&self) -> DomainFacts {
        DomainFacts { id: self.caller, nr_pages: 1, max_pages: 1, privileged: self.caller == DOM0, max_mfn: 1 }
    }
    fn mmu(&mut self) -> Option<crate::mm::MmuAccess<'_>> {
        None
    }
    fn events(&mut self) -> Option<EventAccess<'_>> {
        if !self.enabled {
            return None;
        }
        Some(EventAccess::new(&mut self.ev, &mut self.host, self.caller))
    }
}

const SELF: u32 = DOMID_SELF as u32;

#[test]
fn interdomain_channel_through_hypercalls() {
    let mut m = Mock::new();
    // dom0 allocates a port in domU for dom0 to bind: dom = 1, remote_dom = 0 (u16 each).
    assert_eq!(m.op(EVTCHNOP_ALLOC_UNBOUND as u64, &[DOMU as u32, 0]), 0);
    let pu = m.u32_at(BASE + 4);
    assert_eq!(pu, 1);
    assert_eq!(m.get(BASE, 4), [1, 0, 0, 0], "IN fields copied back unchanged");
    // dom0 binds to it.
    assert_eq!(m.op(EVTCHNOP_BIND_INTERDOMAIN as u64, &[DOMU as u32, pu, 0xdead]), 0);
    let p0 = m.u32_at(BASE + 8);
    assert_eq!(p0, 1);
    assert_eq!(m.host.kicks, vec![(DOM0, 0)], "the new local port is set pending");
    // domU asks for the status of its port.
    m.caller = DOMU;
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, pu, 9, 9, 0xffff_ffff, 0xffff_ffff]), 0);
    assert_eq!(m.u32_at(BASE + 8), EVTCHNSTAT_INTERDOMAIN);
    assert_eq!(m.u32_at(BASE + 12), 0);
    assert_eq!(m.u32_at(BASE + 16), 0xffff_0000 | DOM0 as u32, "u16 dom; the pad keeps the guest's bytes");
    assert_eq!(m.u32_at(BASE + 20), p0);
    // domU notifies dom0.
    m.host.kicks.clear();
    assert_eq!(m.op(EVTCHNOP_SEND as u64, &[pu]), 0);
    assert!(m.host.pending(DOM0, p0));
    assert_eq!(m.host.si(DOM0).vcpu_info[0].evtchn_upcall_pending, 1);
    // domU closes; dom0's end reads unbound, naming domU.
    assert_eq!(m.op(EVTCHNOP_CLOSE as u64, &[pu]), 0);
    assert_eq!(m.op(EVTCHNOP_CLOSE as u64, &[pu]), -22);
    m.caller = DOM0;
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, p0, 0, 0, 0, 0]), 0);
    assert_eq!((m.u32_at(BASE + 8), m.u32_at(BASE + 16)), (EVTCHNSTAT_UNBOUND, DOMU as u32));
}

#[test]
fn refusals_carry_xen_errnos_and_leave_the_structure_alone() {
    let mut m = Mock::new();
    m.caller = DOMU;
    // Unprivileged allocation in dom0: -EPERM; unknown domain: -ESRCH.
    assert_eq!(m.op(EVTCHNOP_ALLOC_UNBOUND as u64, &[0, 0x1234_5678]), -1);
    assert_eq!(m.get(BASE, 8), [0, 0, 0, 0, 0x78, 0x56, 0x34, 0x12], "nothing copied out on failure");
    assert_eq!(m.op(EVTCHNOP_ALLOC_UNBOUND as u64, &[9, 0]), -3);
    assert_eq!(m.op(EVTCHNOP_BIND_INTERDOMAIN as u64, &[0, 5, 0]), -22);
    assert_eq!(m.op(EVTCHNOP_BIND_INTERDOMAIN as u64, &[77, 1, 0]), -3);
    // VIRQs: bad number, global on vCPU 1, missing vCPU, double bind.
    assert_eq!(m.op(EVTCHNOP_BIND_VIRQ as u64, &[NR_VIRQS, 0, 0]), -22);
    assert_eq!(m.op(EVTCHNOP_BIND_VIRQ as u64, &[VIRQ_CONSOLE, 1, 0]), -22);
    assert_eq!(m.op(EVTCHNOP_BIND_VIRQ as u64, &[VIRQ_TIMER, 1, 0]), -2);
    assert_eq!(m.op(EVTCHNOP_BIND_VIRQ as u64, &[VIRQ_TIMER, 0, 0]), 0);
    let t = m.u32_at(BASE + 8);
    assert_eq!(m.op(EVTCHNOP_BIND_VIRQ as u64, &[VIRQ_TIMER, 0, 0]), -17);
    assert_eq!(m.op(EVTCHNOP_SEND as u64, &[t]), -22, "send on a VIRQ port");
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, t, 0, 0, 0, 0]), 0);
    assert_eq!((m.u32_at(BASE + 8), m.u32_at(BASE + 16)), (EVTCHNSTAT_VIRQ, VIRQ_TIMER));
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[0, 1, 0, 0, 0, 0]), -1, "other domain, unprivileged");
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, 4096, 0, 0, 0, 0]), -22);
    // IPI, bind_vcpu, unmask.
    assert_eq!(m.op(EVTCHNOP_BIND_IPI as u64, &[3, 0]), -2);
    assert_eq!(m.op(EVTCHNOP_BIND_IPI as u64, &[0, 0]), 0);
    let ipi = m.u32_at(BASE + 4);
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, ipi, 0, 0, 7, 7]), 0);
    assert_eq!(m.get(BASE + 8, 16), [5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 7, 0, 0, 0]);
    assert_eq!(m.op(EVTCHNOP_BIND_VCPU as u64, &[ipi, 0]), -22);
    assert_eq!(m.op(EVTCHNOP_BIND_VCPU as u64, &[ipi, 1]), -2);
    assert_eq!(m.op(EVTCHNOP_UNMASK as u64, &[u32::MAX]), -22);
    assert_eq!(m.op(EVTCHNOP_UNMASK as u64, &[ipi]), 0);
    assert_eq!(m.op(EVTCHNOP_SEND as u64, &[ipi]), 0);
    assert_eq!(m.host.kicks, vec![(DOMU, 0)]);
    // No physical IRQs.
    assert_eq!(m.op(EVTCHNOP_BIND_PIRQ as u64, &[1, 0, 0]), -22);
    // Reset: another domain is -EPERM for domU, own is fine and closes everything.
    assert_eq!(m.op(EVTCHNOP_RESET as u64, &[0]), -1);
    assert_eq!(m.op(EVTCHNOP_RESET as u64, &[SELF]), 0);
    assert_eq!(m.op(EVTCHNOP_STATUS as u64, &[SELF, ipi, 0, 0, 0, 0]), 0);
    assert_eq!(m.u32_at(BASE + 8), EVTCHNSTAT_CLOSED);
}

#[test]
fn reset_of_a_full_table_continues_itself() {
    let mut m = Mock::new();
    m.caller = DOMU;
    while m.op(EVTCHNOP_BIND_IPI as u64, &[0, 0]) == 0 {}
    m.put(BASE, &SELF.to_le_bytes());
    let mut a = [EVTCHNOP_RESET as u64, BASE, 7, 8, 9];
    let mut entries = 0;
    let result = loop {
        entries += 1;
        match dispatch(&mut m, nr::EVENT_CHANNEL_OP, a) {
            // Xen's continuation: `EVTCHNOP_reset_cont` (14) on the same structure.
            Outcome::Continue(next) => {
                assert_eq!(next, [14, BASE, 7, 8, 9]);
                a = next;
            }
            Outcome::Return(v) => break v,
            other => panic!("unexpected outcome {other:?}"),
        }
    };
    assert_eq!((result, entries), (0, 4), "4095 ports, 1024 per entry");
    assert!((1..64).all(|p| m.ev.port_state(DOMU, p) == Some(crate::evtchn::PortState::Free)));
    // A continuation with no reset in progress: -EBUSY, as Xen.
    assert_eq!(m.op(14, &[SELF]), -16);
}

#[test]
fn dom0_resets_a_domu_only_while_it_has_paused_it() {
    let mut m = Mock::new();
    m.caller = DOMU;
    assert_eq!(m.op(EVTCHNOP_BIND_IPI as u64, &[0, 0]), 0);
    m.caller = DOM0;
    assert_eq!(m.op(EVTCHNOP_RESET as u64, &[DOMU as u32]), -22, "not paused");
    m.domu_paused = true;
    assert_eq!(m.op(EVTCHNOP_RESET as u64, &[DOMU as u32]), 0);
    assert_eq!(m.ev.port_state(DOMU, 1), Some(crate::evtchn::PortState::Free));
}

#[test]
fn bad_pointers_are_efault_for_every_op() {
    let mut m = Mock::new();
    for cmd in [0u64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12] {
        assert_eq!(ret(dispatch(&mut m, nr::EVENT_CHANNEL_OP, [cmd, 0x10, 0, 0, 0])), -14, "cmd {cmd}");
        // The structure straddles the end of guest memory by one byte.
        let end = BASE + MEM as u64 - 1;
        assert_eq!(ret(dispatch(&mut m, nr::EVENT_CHANNEL_OP, [cmd, end, 0, 0, 0])), -14, "cmd {cmd}");
    }
    // A good struct whose result cannot be written back is still -EFAULT: not possible with
    // this mock's memory, so check that reads happen before any state change instead.
    assert_eq!(m.ev.port_state(DOM0, 1), Some(crate::evtchn::PortState::Free));
}

#[test]
fn unknown_and_fifo_commands() {
    let mut m = Mock::new();
    assert_eq!(m.op(EVTCHNOP_INIT_CONTROL as u64, &[0; 6]), -38);
    assert_eq!(m.op(EVTCHNOP_EXPAND_ARRAY as u64, &[0; 2]), -95);
    assert_eq!(m.op(EVTCHNOP_SET_PRIORITY as u64, &[1, 7]), -38, "a valid port: 2-level has no priorities");
    assert_eq!(m.op(EVTCHNOP_SET_PRIORITY as u64, &[0, 7]), -38, "port 0 is valid (reserved)");
    for bad in [4095, 4096, 0x8000_0000] {
        assert_eq!(m.op(EVTCHNOP_SET_PRIORITY as u64, &[bad, 7]), -22, "port {bad}");
    }
    // Both read their structure first, as Xen: a bad pointer is -EFAULT.
    let beyond = BASE + MEM as u64;
    for cmd in [EVTCHNOP_INIT_CONTROL, EVTCHNOP_SET_PRIORITY] {
        assert_eq!(ret(dispatch(&mut m, nr::EVENT_CHANNEL_OP, [cmd as u64, beyond, 0, 0, 0])), -14, "cmd {cmd}");
    }
    // Xen's internal `EVTCHNOP_reset_cont` is accepted from guests too: with no reset in
    // progress it is -EBUSY.
    assert_eq!(m.op(14, &[0]), -16);
    assert_eq!(m.op(15, &[0]), -38);
    assert_eq!(m.op(u64::MAX, &[0]), -38);
    // Only the low 32 bits of cmd count (Xen's `int cmd`): this is EVTCHNOP_bind_ipi.
    assert_eq!(m.op((1 << 32) | EVTCHNOP_BIND_IPI as u64, &[0, 0]), 0);
    assert_eq!(m.u32_at(BASE + 4), 1);
    m.enabled = false;
    assert_eq!(m.op(EVTCHNOP_BIND_IPI as u64, &[0, 0]), -38);
    assert_eq!(m.op(EVTCHNOP_SEND as u64, &[1]), -38);
}

#[test]
fn compat_form_runs_on_the_union() {
    let mut m = Mock::new();
    let compat = |m: &mut Mock, words: &[u32]| {
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.resize(28, 0);
        m.put(BASE, &bytes);
        ret(dispatch(m, nr::EVENT_CHANNEL_OP_COMPAT, [BASE, 0, 0, 0, 0]))
    };
    assert_eq!(compat(&mut m, &[EVTCHNOP_BIND_IPI, 0]), 0);
    let ipi = m.u32_at(BASE + 8);
    assert_eq!(ipi, 1);
    assert_eq!(compat(&mut m, &[EVTCHNOP_SEND, ipi]), 0);
    assert!(m.host.pending(DOM0, ipi));
    assert_eq!(compat(&mut m, &[EVTCHNOP_STATUS, SELF, ipi]), 0);
    assert_eq!(m.u32_at(BASE + 12), EVTCHNSTAT_IPI);
    // reset and the FIFO ops are not part of the compat interface.
    assert_eq!(compat(&mut m, &[EVTCHNOP_RESET, SELF]), -38);
    assert_eq!(compat(&mut m, &[EVTCHNOP_INIT_CONTROL]), -38);
    // The whole 28-byte structure must be readable, even for a 4-byte op.
    let end = BASE + MEM as u64 - 24;
    m.put(end, &EVTCHNOP_SEND.to_le_bytes());
    assert_eq!(ret(dispatch(&mut m, nr::EVENT_CHANNEL_OP_COMPAT, [end, 0, 0, 0, 0])), -14);
    assert_eq!(ret(dispatch(&mut m, nr::EVENT_CHANNEL_OP_COMPAT, [u64::MAX - 2, 0, 0, 0, 0])), -14);
}

#[test]
fn hostile_inputs_never_panic() {
    let mut m = Mock::new();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let cmd = next() % 16;
        let words: Vec<u32> = (0..6)
            .map(|_| match next() % 4 {
                0 => (next() % 70) as u32,
                1 => SELF,
                2 => u32::MAX,
                _ => next() as u32,
            })
            .collect();
        m.caller = (next() % 3) as DomId;
        let r = m.op(cmd, &words);
        assert!((-95..=0).contains(&r), "cmd {cmd} {words:?} gave {r}");
    }
}

/// `SCHEDOP_poll` of `ports` (stored at `BASE + 0x200`, or the given array address) as DOM0;
/// the outcome, and the port list the poll would watch.
fn poll(m: &mut Mock, ports_va: u64, ports: &[u32], nr_ports: u64) -> Outcome {
    poll_until(m, ports_va, ports, nr_ports, 0)
}

/// As [`poll`], with a timeout (absolute system time; the mock's clock reads 0).
fn poll_until(m: &mut Mock, ports_va: u64, ports: &[u32], nr_ports: u64, timeout: u64) -> Outcome {
    if !ports.is_empty() {
        let words: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
        m.put(ports_va, &words);
    }
    let mut sp = Vec::new();
    for w in [ports_va, nr_ports, timeout] {
        sp.extend_from_slice(&w.to_le_bytes());
    }
    m.put(BASE + 0x100, &sp);
    dispatch(m, nr::SCHED_OP, [hypercall_abi::sched::SCHEDOP_POLL as u64, BASE + 0x100, 0, 0, 0])
}

#[test]
fn a_poll_whose_timeout_has_passed_returns_at_once() {
    let mut m = Mock::new();
    let list = BASE + 0x200;
    assert_eq!(m.op(EVTCHNOP_ALLOC_UNBOUND as u64, &[SELF, DOMU as u32]), 0);
    assert_eq!(poll_until(&mut m, list, &[1], 1, 5), Outcome::Poll(Some(5)), "ahead: sleep until then");
    // Xen's signed time: 2^63 and u64::MAX are in the past; the timer fires on the way out.
    for past in [1 << 63, u64::MAX] {
        assert_eq!(ret(poll_until(&mut m, list, &[1], 1, past)), 0, "timeout {past:#x}");
    }
    // The ports are checked first, as in Xen.
    assert_eq!(ret(poll_until(&mut m, list, &[7], 1, u64::MAX)), -22);
}

#[test]
fn poll_checks_in_xens_order() {
    let mut m = Mock::new();
    let list = BASE + 0x200;
    let set_pending = |m: &mut Mock, port: u32| {
        m.host.pages.get_mut(&DOM0).unwrap().evtchn_pending[(port / 64) as usize] |= 1 << (port % 64);
    };
    // Ports 1-10 of dom0, unbound (usable: Xen polls any port in use).
    for _ in 0..10 {
        assert_eq!(m.op(EVTCHNOP_ALLOC_UNBOUND as u64, &[SELF, DOMU as u32]), 0);
    }
    // Nothing pending: the vCPU is to sleep (watching the ports).
    assert!(matches!(poll(&mut m, list, &[5, 9], 2), Outcome::Poll(None)));
    assert!(matches!(poll(&mut m, list, &[], 0), Outcome::Poll(None)), "no ports: any event");
    assert_eq!(ret(poll(&mut m, list, &[0], 1)), -22, "port 0 is reserved");
    assert_eq!(ret(poll(&mut m, list, &[11], 1)), -22, "a free port");
    assert_eq!(ret(poll(&mut m, list, &[2000], 1)), -22, "beyond the allocated ports");
    assert_eq!(ret(poll(&mut m, 0xffff_8000_0000_0000, &[], 0)), -14, "array in the hypervisor's range");
    assert_eq!(ret(poll(&mut m, list, &[5], 129)), -22, "more than 128 ports");
    assert_eq!(ret(poll(&mut m, list, &[5, 4096], 2)), -22, "a port beyond the 2-level range");
    set_pending(&mut m, 9);
    assert_eq!(ret(poll(&mut m, list, &[9, 4096], 2)), 0, "a pending port before a bad one wins");
    assert_eq!(ret(poll(&mut m, list, &[4096, 9], 2)), -22, "a bad port before a pending one");
    // The array runs off the end of guest memory after its first port.
    let edge = BASE + MEM as u64 - 4;
    assert_eq!(ret(poll(&mut m, edge, &[9], 2)), 0, "a readable pending port before an unreadable one");
    assert_eq!(ret(poll(&mut m, edge, &[5], 2)), -14, "then the unreadable one");
    // Seventeen ports: a whole readable chunk of 16, then the unreadable 17th.
    let sixteen_left = BASE + MEM as u64 - 64;
    let mut ports = [5u32; 16];
    assert_eq!(ret(poll(&mut m, sixteen_left, &ports, 17)), -14);
    ports[15] = 9;
    assert_eq!(ret(poll(&mut m, sixteen_left, &ports, 17)), 0, "the 16th is pending");
    // An upcall already due returns before any port is looked at.
    let vi = &mut m.host.pages.get_mut(&DOM0).unwrap().vcpu_info[0];
    (vi.evtchn_upcall_pending, vi.evtchn_upcall_mask) = (1, 0);
    assert_eq!(ret(poll(&mut m, list, &[4096], 1)), 0);
    m.host.pages.get_mut(&DOM0).unwrap().vcpu_info[0].evtchn_upcall_mask = 1;
    assert_eq!(ret(poll(&mut m, list, &[4096], 1)), -22, "masked: not due");
}
