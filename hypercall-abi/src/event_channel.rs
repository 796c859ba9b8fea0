//! Event channels (`event_channel.h`) and virtual IRQ numbers (`xen.h`).

/// `evtchn_port_t`: an event-channel port.
pub type EvtchnPort = u32;

/// `EVTCHNOP_bind_interdomain` ([`EvtchnBindInterdomain`]).
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// `EVTCHNOP_bind_virq` ([`EvtchnBindVirq`]).
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// `EVTCHNOP_bind_pirq` ([`EvtchnBindPirq`]).
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// `EVTCHNOP_close` ([`EvtchnClose`]).
pub const EVTCHNOP_CLOSE: u32 = 3;
/// `EVTCHNOP_send` ([`EvtchnSend`]).
pub const EVTCHNOP_SEND: u32 = 4;
/// `EVTCHNOP_status` ([`EvtchnStatus`]).
pub const EVTCHNOP_STATUS: u32 = 5;
/// `EVTCHNOP_alloc_unbound` ([`EvtchnAllocUnbound`]).
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// `EVTCHNOP_bind_ipi` ([`EvtchnBindIpi`]).
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// `EVTCHNOP_bind_vcpu` ([`EvtchnBindVcpu`]).
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// `EVTCHNOP_unmask` ([`EvtchnUnmask`]).
pub const EVTCHNOP_UNMASK: u32 = 9;
/// `EVTCHNOP_reset` ([`EvtchnReset`]).
pub const EVTCHNOP_RESET: u32 = 10;
/// `EVTCHNOP_init_control`: switch to the FIFO ABI.
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
/// `EVTCHNOP_expand_array`: FIFO ABI.
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
/// `EVTCHNOP_set_priority`: FIFO ABI.
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;

/// `EVTCHNSTAT_closed`.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `struct evtchn_alloc_unbound` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN: the domain that gets the port (`DOMID_SELF` unless privileged).
    pub dom: u16,
    /// IN: the domain allowed to bind to it.
    pub remote_dom: u16,
    /// OUT: the new port.
    pub port: EvtchnPort,
}

/// `struct evtchn_bind_interdomain` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN: the remote domain.
    pub remote_dom: u16,
    /// IN: its unbound port.
    pub remote_port: EvtchnPort,
    /// OUT: our new port.
    pub local_port: EvtchnPort,
}

/// `struct evtchn_bind_virq` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: the vCPU to notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}

/// `struct evtchn_bind_pirq` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindPirq {
    /// IN: physical IRQ.
    pub pirq: u32,
    /// IN: `BIND_PIRQ__WILL_SHARE` (bit 0).
    pub flags: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}

/// `struct evtchn_bind_ipi` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    /// IN: the vCPU to notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: EvtchnPort,
}

/// `struct evtchn_close` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// Port to close.
    pub port: EvtchnPort,
}

/// `struct evtchn_send` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// Port to notify through.
    pub port: EvtchnPort,
}

/// `struct evtchn_status` (24 bytes). The meaning of `u` depends on `status`:
/// unbound: `u[0] & 0xffff` = remote dom; interdomain: `u[0] & 0xffff` = dom, `u[1]` = port;
/// pirq/virq: `u[0]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// IN: domain (`DOMID_SELF`).
    pub dom: u16,
    /// IN: port.
    pub port: EvtchnPort,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: vCPU notified.
    pub vcpu: u32,
    /// OUT: the status-dependent union, as two words.
    pub u: [u32; 2],
}

/// `struct evtchn_bind_vcpu` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// Port to rebind.
    pub port: EvtchnPort,
    /// New vCPU.
    pub vcpu: u32,
}

/// `struct evtchn_unmask` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// Port to unmask.
    pub port: EvtchnPort,
}

/// `struct evtchn_reset` (2 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnReset {
    /// Domain whose ports are all closed (`DOMID_SELF`).
    pub dom: u16,
}

/// `VIRQ_TIMER` (per vCPU): timer expiry.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG` (per vCPU): dump debug info.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE` (global, dom0): bytes on the emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC` (global, dom0): a domain needs attention.
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF` (global, dom0): trace buffer records.
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER` (global, dom0): a domain paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF` (per vCPU).
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING` (global, dom0): bytes in the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE` (global, dom0).
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT` (global, dom0).
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO` (global).
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM` (global, dom0).
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU` (per vCPU).
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_ARCH_0`, first architecture-specific VIRQ (up to `VIRQ_ARCH_0 + 7`).
pub const VIRQ_ARCH_0: u32 = 16;
/// `NR_VIRQS`.
pub const NR_VIRQS: u32 = 24;

const _: () = assert!(core::mem::size_of::<EvtchnAllocUnbound>() == 8);
const _: () = assert!(core::mem::size_of::<EvtchnBindInterdomain>() == 12);
const _: () = assert!(core::mem::size_of::<EvtchnBindVirq>() == 12);
const _: () = assert!(core::mem::size_of::<EvtchnStatus>() == 24);
const _: () = assert!(core::mem::size_of::<EvtchnReset>() == 2);
