//! `event_channel_op` (#32) and `event_channel_op_compat` (#16): copy the `EVTCHNOP_*`
//! structure in through `Env`'s checked copies, run the op on [`crate::evtchn`], copy the
//! result out (only on success, as Xen does).
//!
//! Kicks (events raised in some domain's `shared_info`) reach the kernel through
//! [`crate::evtchn::EvtchnHost::kick`] while the op runs; see `crate::evtchn` for the contract.

#[cfg(test)]
#[path = "evtchn_tests.rs"]
mod tests;

use super::{Env, Outcome};
use crate::evtchn::PortState;
use core::mem::{offset_of, size_of};
use hypercall_abi::errno::Errno;
use hypercall_abi::event_channel::*;

/// Size of `struct evtchn_op` (the compat form): `u32 cmd` plus the 24-byte union.
const EVTCHN_OP_COMPAT_SIZE: usize = 28;
/// Xen's hypervisor-internal `EVTCHNOP_reset_cont` (`#ifdef __XEN__` in its header): the
/// continuation of a reset that closed part of the ports. A guest may issue it too, as on Xen.
const EVTCHNOP_RESET_CONT: u32 = 14;
/// Size of `struct evtchn_expand_array` (`u64 array_gfn`).
const EXPAND_ARRAY_SIZE: usize = 8;
/// Size of `struct evtchn_init_control` (`u64 control_gfn`, `u32 offset`, `u32 vcpu`,
/// `u8 link_bits`, 7 bytes of padding).
const INIT_CONTROL_SIZE: usize = 24;
/// Size of `struct evtchn_set_priority` (`u32 port`, `u32 priority`).
const SET_PRIORITY_SIZE: usize = 8;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Copies the `N`-byte op structure in from `arg` (`-EFAULT` if it is not all readable).
fn read<const N: usize>(env: &dyn Env, arg: u64) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    env.copy_from_guest(arg, &mut b)?;
    Ok(b)
}

/// Runs `f` on the caller's event-channel state; `-ENOSYS` if this hypervisor has none.
fn with_events<R>(
    env: &mut dyn Env,
    f: impl FnOnce(&mut crate::evtchn::EventAccess<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let mut ev = env.events().ok_or(Errno::ENOSYS)?;
    f(&mut ev)
}

/// `event_channel_op(cmd, arg)`.
pub fn event_channel_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `int cmd`: only the low 32 bits of the register count.
    match op(env, a[0] as u32, a[1]) {
        Ok(()) => Outcome::Return(0),
        // Only a reset stops part way: its continuation, as Xen's `"ih", EVTCHNOP_reset_cont`.
        Err(Errno::ERESTART) => Outcome::Continue([u64::from(EVTCHNOP_RESET_CONT), a[1], a[2], a[3], a[4]]),
        Err(e) => Outcome::Return(e.to_return()),
    }
}

/// `event_channel_op_compat(op)`: `struct evtchn_op { u32 cmd; union u; }` (28 bytes). As in
/// Xen, the whole structure must be readable, and only the original ten ops (not `reset` or
/// the FIFO ones) are accepted; they run on the union at `op + 4`.
pub fn event_channel_op_compat(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let result = read::<EVTCHN_OP_COMPAT_SIZE>(env, a[0]).and_then(|b| match u32_at(&b, 0) {
        cmd @ EVTCHNOP_BIND_INTERDOMAIN..=EVTCHNOP_UNMASK => op(env, cmd, a[0].wrapping_add(4)),
        _ => Err(Errno::ENOSYS),
    });
    Outcome::Return(match result {
        Ok(()) => 0,
        Err(e) => e.to_return(),
    })
}

fn op(env: &mut dyn Env, cmd: u32, arg: u64) -> Result<(), Errno> {
    match cmd {
        EVTCHNOP_ALLOC_UNBOUND => {
            let mut b = read::<{ size_of::<EvtchnAllocUnbound>() }>(env, arg)?;
            let dom = u16_at(&b, offset_of!(EvtchnAllocUnbound, dom));
            let remote = u16_at(&b, offset_of!(EvtchnAllocUnbound, remote_dom));
            let port = with_events(env, |ev| ev.table.alloc_unbound(ev.caller, dom, remote))?;
            put_u32(&mut b, offset_of!(EvtchnAllocUnbound, port), port);
            env.copy_to_guest(arg, &b)
        }
        EVTCHNOP_BIND_INTERDOMAIN => {
            let mut b = read::<{ size_of::<EvtchnBindInterdomain>() }>(env, arg)?;
            let rdom = u16_at(&b, offset_of!(EvtchnBindInterdomain, remote_dom));
            let rport = u32_at(&b, offset_of!(EvtchnBindInterdomain, remote_port));
            let port = with_events(env, |ev| ev.table.bind_interdomain(ev.host, ev.caller, rdom, rport))?;
            put_u32(&mut b, offset_of!(EvtchnBindInterdomain, local_port), port);
            env.copy_to_guest(arg, &b)
        }
        EVTCHNOP_BIND_VIRQ => {
            let mut b = read::<{ size_of::<EvtchnBindVirq>() }>(env, arg)?;
            let virq = u32_at(&b, offset_of!(EvtchnBindVirq, virq));
            let vcpu = u32_at(&b, offset_of!(EvtchnBindVirq, vcpu));
            let port = with_events(env, |ev| ev.table.bind_virq(ev.caller, virq, vcpu))?;
            put_u32(&mut b, offset_of!(EvtchnBindVirq, port), port);
            env.copy_to_guest(arg, &b)
        }
        EVTCHNOP_BIND_PIRQ => {
            // No physical IRQs are routed to guests: every pirq is out of range
            // (Xen's answer for `pirq >= d->nr_pirqs`).
            read::<{ size_of::<EvtchnBindPirq>() }>(env, arg)?;
            with_events(env, |_| Err(Errno::EINVAL))
        }
        EVTCHNOP_BIND_IPI => {
            let mut b = read::<{ size_of::<EvtchnBindIpi>() }>(env, arg)?;
            let vcpu = u32_at(&b, offset_of!(EvtchnBindIpi, vcpu));
            let port = with_events(env, |ev| ev.table.bind_ipi(ev.caller, vcpu))?;
            put_u32(&mut b, offset_of!(EvtchnBindIpi, port), port);
            env.copy_to_guest(arg, &b)
        }
        EVTCHNOP_CLOSE => {
            let port = u32_at(&read::<{ size_of::<EvtchnClose>() }>(env, arg)?, 0);
            with_events(env, |ev| ev.table.close(ev.host, ev.caller, port))
        }
        EVTCHNOP_SEND => {
            let port = u32_at(&read::<{ size_of::<EvtchnSend>() }>(env, arg)?, 0);
            with_events(env, |ev| ev.table.send(ev.host, ev.caller, port))
        }
        EVTCHNOP_STATUS => status(env, arg),
        EVTCHNOP_BIND_VCPU => {
            let b = read::<{ size_of::<EvtchnBindVcpu>() }>(env, arg)?;
            let port = u32_at(&b, offset_of!(EvtchnBindVcpu, port));
            let vcpu = u32_at(&b, offset_of!(EvtchnBindVcpu, vcpu));
            with_events(env, |ev| ev.table.bind_vcpu(ev.caller, port, vcpu))
        }
        EVTCHNOP_UNMASK => {
            let port = u32_at(&read::<{ size_of::<EvtchnUnmask>() }>(env, arg)?, 0);
            with_events(env, |ev| ev.table.unmask(ev.host, ev.caller, port))
        }
        EVTCHNOP_RESET | EVTCHNOP_RESET_CONT => {
            let dom = u16_at(&read::<{ size_of::<EvtchnReset>() }>(env, arg)?, 0);
            let resuming = cmd == EVTCHNOP_RESET_CONT;
            let paused = env.paused_by_controller(dom);
            with_events(env, |ev| ev.table.reset(ev.host, ev.caller, dom, resuming, paused))
        }
        EVTCHNOP_EXPAND_ARRAY => {
            // Xen's answer before `init_control` switched the domain to FIFO, which we never do.
            read::<EXPAND_ARRAY_SIZE>(env, arg)?;
            Err(Errno::EOPNOTSUPP)
        }
        EVTCHNOP_INIT_CONTROL => {
            // The FIFO ABI is not implemented: guests (Linux) fall back to the 2-level ABI
            // on any failure. Xen reads the structure first, so a bad pointer is -EFAULT.
            read::<INIT_CONTROL_SIZE>(env, arg)?;
            Err(Errno::ENOSYS)
        }
        EVTCHNOP_SET_PRIORITY => {
            // Xen's `evtchn_set_priority`: an invalid port is -EINVAL, a valid one gets the
            // 2-level ABI's answer (it has no priorities): -ENOSYS.
            let port = u32_at(&read::<SET_PRIORITY_SIZE>(env, arg)?, 0);
            with_events(env, |ev| match ev.table.port_state(ev.caller, port) {
                None => Err(Errno::EINVAL),
                Some(_) => Err(Errno::ENOSYS),
            })
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `EVTCHNOP_status`: fills `status`, `vcpu` and the union member that belongs to the state.
/// Like Xen, it leaves the union bytes it does not own as the guest passed them.
fn status(env: &mut dyn Env, arg: u64) -> Result<(), Errno> {
    let mut b = read::<{ size_of::<EvtchnStatus>() }>(env, arg)?;
    let dom = u16_at(&b, offset_of!(EvtchnStatus, dom));
    let port = u32_at(&b, offset_of!(EvtchnStatus, port));
    let st = with_events(env, |ev| ev.table.status(ev.caller, dom, port))?;
    let u = offset_of!(EvtchnStatus, u);
    let code = match st.state {
        PortState::Free | PortState::Reserved => EVTCHNSTAT_CLOSED,
        PortState::Unbound { remote } => {
            put_u16(&mut b, u, remote);
            EVTCHNSTAT_UNBOUND
        }
        PortState::Interdomain { remote, remote_port } => {
            put_u16(&mut b, u, remote);
            put_u32(&mut b, u + 4, remote_port);
            EVTCHNSTAT_INTERDOMAIN
        }
        PortState::Virq(virq) => {
            put_u32(&mut b, u, virq);
            EVTCHNSTAT_VIRQ
        }
        PortState::Ipi => EVTCHNSTAT_IPI,
    };
    put_u32(&mut b, offset_of!(EvtchnStatus, status), code);
    put_u32(&mut b, offset_of!(EvtchnStatus, vcpu), st.vcpu);
    env.copy_to_guest(arg, &b)
}
