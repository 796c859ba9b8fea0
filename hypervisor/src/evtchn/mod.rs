//! Xen's 2-level event channels between domains: the port tables, the `EVTCHNOP_*` state
//! machine and the raising of events in `shared_info`, free of hardware and host-tested.
//!
//! # Model
//!
//! [`EventChannels`] holds one port table per domain (up to 4096 ports, port 0 reserved).
//! A domain exists for event channels from [`EventChannels::add_domain`] until
//! [`EventChannels::domain_destroyed`]; every other call naming a domain without a table
//! answers `-ESRCH`, as Xen does for a domain id it cannot find. The semantics and error
//! codes follow Xen 4.17's `xen/common/event_channel.c` and `event_2l.c` (with the dummy
//! XSM policy: a domain may act on itself, the privileged domain on anyone).
//!
//! The shared_info pages and the wake-ups are reached through [`EvtchnHost`], so host tests
//! use plain [`SharedInfo`] values and the kernel uses the real pages.
//!
//! # The kick contract (for the kernel)
//!
//! Raising port `p` of domain `d` for vCPU `v` follows `xen-pv-abi.md` §3.9 exactly: set the
//! pending bit; if it was clear, the mask bit is clear and bit `p / 64` of `v`'s
//! `evtchn_pending_sel` is newly set, then set `v`'s `evtchn_upcall_pending` and call
//! [`EvtchnHost::kick`]`(d, v)`. The implementation of `kick` must:
//! 1. make vCPU `v` of domain `d` runnable if it is blocked (`SCHEDOP_block`, idle), and
//! 2. make sure that vCPU passes through the "return to guest" event check before it next
//!    runs guest code, which bounces to its event callback when
//!    `upcall_pending != 0 && upcall_mask == 0` (§3.9). For the *calling* vCPU of a
//!    hypercall that check happens on the hypercall's own return path, so nothing more is
//!    needed; for another vCPU (another domain) being runnable is enough.
//!
//! `kick` must not call back into [`EventChannels`] (it runs while the table is borrowed).
//! Waking is idempotent, so `kick` may be called for a vCPU that is already runnable. Because
//! a kick is only issued when `upcall_pending` is *set*, the scheduler's `SCHEDOP_block` must
//! not put a vCPU to sleep while its `upcall_pending` is already non-zero and its
//! `upcall_mask` zero (Xen's `local_events_need_delivery` check): otherwise an event raised
//! before the block is lost.
//!
//! # Wiring (for the kernel)
//!
//! * One [`EventChannels`] for the machine. Call [`EventChannels::add_domain`] when a domain
//!   is created (before it runs), with its vCPU count and whether it is dom0.
//! * `Env::events` returns [`EventAccess::new`]`(table, host, caller_domid)`, where `host`
//!   implements [`EvtchnHost`] over every domain's shared_info page (the direct map) and the
//!   scheduler's wake-up.
//! * Timer expiry of vCPU `v` of `d`: [`EventChannels::raise_vcpu_virq`]`(host, d, v,
//!   VIRQ_TIMER)`. Console input for dom0: [`EventChannels::send_global_virq`]`(host,
//!   VIRQ_CONSOLE)`. A domain that shut down: `send_global_virq(host, VIRQ_DOM_EXC)` (Xen
//!   raises it at shutdown too, so dom0's toolstack notices).
//! * Teardown: [`EventChannels::domain_destroyed`]`(host, d)` once `d` no longer runs (its
//!   shared_info page may already be gone: events into a domain without a page are dropped).
//!
//! Concurrency: the guest owning a `shared_info` page may run on another CPU while the
//! hypervisor changes it, so every read-modify-write of a word the guest also writes is an
//! atomic (`lock`-prefixed) operation (`shared_word`), as Xen's `guest_test_and_set_bit`.

#[cfg(test)]
pub(crate) mod tests;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use hypercall_abi::errno::Errno;
use hypercall_abi::event_channel::{
    EvtchnPort, NR_VIRQS, VIRQ_DEBUG, VIRQ_DOM_EXC, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU,
};
pub use hypercall_abi::mm::DomId;
use hypercall_abi::mm::{DOMID_FIRST_RESERVED, DOMID_SELF};
use hypercall_abi::shared_info::{SharedInfo, EVTCHN_2L_NR_CHANNELS, XEN_LEGACY_MAX_VCPUS};

/// Ports a domain can have with the 2-level ABI on x86_64 (`EVTCHN_2L_NR_CHANNELS`).
pub const MAX_PORTS: u32 = EVTCHN_2L_NR_CHANNELS as u32;

/// Ports are allocated in buckets of this many, as Xen does (`EVTCHNS_PER_BUCKET` on
/// x86_64): a port is *valid* (`port_is_valid`) once its bucket exists, and some answers
/// (`status`, `close`, `unmask` of an unallocated port) depend on that.
const BUCKET: u32 = 64;

/// Ports [`EventChannels::reset`] closes in one hypervisor entry before it continues itself
/// (Xen's `evtchn_reset` asks every 64 ports whether it should yield; here a fixed count
/// bounds the entry instead): a full table is four entries.
pub const RESET_PORTS_PER_ENTRY: u32 = 1024;

/// The domain that receives global VIRQs (`VIRQ_DOM_EXC`, ...): the hardware domain, dom0
/// (Xen's default `global_virq_handlers` entry).
pub const GLOBAL_VIRQ_DOMAIN: DomId = 0;

/// Services the event-channel core needs from the rest of the hypervisor.
pub trait EvtchnHost {
    /// The domain's shared_info page, or `None` if it has none (yet). Events raised in a
    /// domain without a page are dropped, as there is nowhere to record them.
    fn shared_info(&mut self, dom: DomId) -> Option<&mut SharedInfo>;
    /// Wake vCPU `vcpu` of `dom`: see the module's kick contract.
    fn kick(&mut self, dom: DomId, vcpu: u32);
    /// `port` of `dom` has just become pending (upcall or not): where Xen's
    /// `evtchn_2l_set_pending` calls `evtchn_check_pollers`, so a host can wake a domain
    /// polling that port without scanning its pollers on every exit.
    fn port_raised(&mut self, _dom: DomId, _port: EvtchnPort) {}
}

/// How a domain is set up for event channels (fixed for its life, as in Xen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// Number of vCPUs (at most 32: their `vcpu_info` lives inside `shared_info`).
    pub nr_vcpus: u32,
    /// The control domain (may act on other domains' ports), Xen's `is_control_domain`.
    pub privileged: bool,
    /// Most ports the domain may have (the toolstack's `max_event_channels`), at most 4096.
    pub max_ports: u32,
}

impl DomainConfig {
    /// `nr_vcpus` vCPUs, the full 4096 ports.
    pub const fn new(nr_vcpus: u32, privileged: bool) -> Self {
        Self { nr_vcpus, privileged, max_ports: MAX_PORTS }
    }
}

/// The state of one port (Xen's `ECS_*` with their data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated (`ECS_FREE`).
    Free,
    /// Never allocated: port 0 (`ECS_RESERVED`).
    Reserved,
    /// Waiting for `remote` to bind to it (`ECS_UNBOUND`).
    Unbound {
        /// The only domain allowed to bind.
        remote: DomId,
    },
    /// Connected to `remote_port` of `remote` (`ECS_INTERDOMAIN`).
    Interdomain {
        /// The peer domain (may be the domain itself: loopback).
        remote: DomId,
        /// The peer's port.
        remote_port: EvtchnPort,
    },
    /// Bound to a virtual IRQ (`ECS_VIRQ`).
    Virq(u32),
    /// Bound for inter-processor interrupts to its own domain (`ECS_IPI`).
    Ipi,
}

/// What `EVTCHNOP_status` reports about a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// The port's state ([`PortState::Free`] and [`PortState::Reserved`] read as closed).
    pub state: PortState,
    /// The vCPU it notifies.
    pub vcpu: u32,
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    state: PortState,
    vcpu: u32,
}

const FREE: Channel = Channel { state: PortState::Free, vcpu: 0 };

/// One domain's ports and VIRQ bindings.
struct DomainPorts {
    config: DomainConfig,
    /// Allocated buckets; `ports.len()` is Xen's `valid_evtchns`.
    ports: Vec<Channel>,
    /// `virq_to_evtchn` of each vCPU (0 = unbound).
    virqs: Vec<[EvtchnPort; NR_VIRQS as usize]>,
    /// The next port an `EVTCHNOP_reset` in progress closes; 0 when none is (Xen's
    /// `next_evtchn`).
    reset_next: EvtchnPort,
    /// The domain is being torn down ([`EventChannels::domain_dying`]): no new port.
    dying: bool,
}

impl DomainPorts {
    fn channel(&self, port: EvtchnPort) -> Result<&Channel, Errno> {
        self.ports.get(port as usize).ok_or(Errno::EINVAL)
    }

    fn channel_mut(&mut self, port: EvtchnPort) -> Result<&mut Channel, Errno> {
        self.ports.get_mut(port as usize).ok_or(Errno::EINVAL)
    }

    fn vcpu_exists(&self, vcpu: u32) -> bool {
        vcpu < self.config.nr_vcpus
    }

    /// Xen's `get_free_port`: the lowest free port, growing the table by a bucket when all
    /// existing ports are in use. `-EINVAL` in a dying domain, `-ENOSPC` beyond
    /// `max_ports`, `-ENOMEM` if growing fails or would eat into the heap's reserve.
    fn get_free_port(&mut self) -> Result<EvtchnPort, Errno> {
        if self.dying {
            return Err(Errno::EINVAL);
        }
        let max = self.config.max_ports;
        if let Some(p) = self.ports.iter().take(max as usize).position(|c| c.state == PortState::Free) {
            return Ok(p as EvtchnPort);
        }
        let port = self.ports.len() as u32;
        if port >= max {
            return Err(Errno::ENOSPC);
        }
        // Allocation failure is a guest-visible error, never a hypervisor panic; and the
        // growth must leave the heap's reserve (`heap`), as Xen's bucket `xzalloc` may fail.
        if !crate::heap::guest_may_take(BUCKET as usize * core::mem::size_of::<Channel>()) {
            return Err(Errno::ENOMEM);
        }
        self.ports.try_reserve_exact(BUCKET as usize).map_err(|_| Errno::ENOMEM)?;
        self.ports.extend(core::iter::repeat_n(FREE, BUCKET as usize));
        Ok(port)
    }
}

/// Everything the `event_channel_op` hypercall needs, for one calling domain: what
/// [`crate::hypercalls::Env::events`] hands out.
pub struct EventAccess<'a> {
    /// Every domain's event channels.
    pub table: &'a mut EventChannels,
    /// The shared_info pages and wake-ups.
    pub host: &'a mut dyn EvtchnHost,
    /// The calling domain's id (what `DOMID_SELF` means).
    pub caller: DomId,
}

impl<'a> EventAccess<'a> {
    /// Bundles the table, the host and the caller's id.
    pub fn new(table: &'a mut EventChannels, host: &'a mut dyn EvtchnHost, caller: DomId) -> Self {
        Self { table, host, caller }
    }
}

/// Whether `virq` is delivered to the domain as a whole (bound on vCPU 0, re-targetable with
/// `bind_vcpu`) rather than per vCPU (Xen's `virq_is_global`; x86's arch VIRQs are global).
pub fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// Port tables by domain id, in a slot per id: domain ids are small and dense (dom0, then
/// domUs from 1), and every send looks up two tables, which a tree walk made costly.
#[derive(Default)]
struct PortTables {
    slots: Vec<Option<DomainPorts>>,
}

impl PortTables {
    fn get(&self, dom: &DomId) -> Option<&DomainPorts> {
        self.slots.get(*dom as usize)?.as_ref()
    }

    fn get_mut(&mut self, dom: &DomId) -> Option<&mut DomainPorts> {
        self.slots.get_mut(*dom as usize)?.as_mut()
    }

    fn contains_key(&self, dom: &DomId) -> bool {
        self.get(dom).is_some()
    }

    /// Stores `dom`'s table, replacing any; `-ENOMEM` if the slots cannot grow to `dom`.
    fn insert(&mut self, dom: DomId, table: DomainPorts) -> Result<(), Errno> {
        let i = dom as usize;
        if self.slots.len() <= i {
            self.slots.try_reserve(i + 1 - self.slots.len()).map_err(|_| Errno::ENOMEM)?;
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some(table);
        Ok(())
    }

    /// Live tables in id order (for the tests' invariant checks).
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (DomId, &DomainPorts)> {
        self.slots.iter().enumerate().filter_map(|(i, t)| Some((i as DomId, t.as_ref()?)))
    }

    fn remove(&mut self, dom: &DomId) {
        if let Some(slot) = self.slots.get_mut(*dom as usize) {
            *slot = None;
        }
    }
}

/// Every domain's event channels.
#[derive(Default)]
pub struct EventChannels {
    domains: PortTables,
}

impl EventChannels {
    /// No domains yet.
    pub const fn new() -> Self {
        Self { domains: PortTables { slots: Vec::new() } }
    }

    /// Creates `dom`'s table (Xen's `evtchn_init`): one bucket, port 0 reserved. Replaces any
    /// table left for the same id. `-EINVAL` for a reserved id or a bad config.
    pub fn add_domain(&mut self, dom: DomId, config: DomainConfig) -> Result<(), Errno> {
        let vcpus_ok = config.nr_vcpus >= 1 && config.nr_vcpus as usize <= XEN_LEGACY_MAX_VCPUS;
        if dom >= DOMID_FIRST_RESERVED || !vcpus_ok || config.max_ports < 1 || config.max_ports > MAX_PORTS {
            return Err(Errno::EINVAL);
        }
        let mut ports = Vec::new();
        ports.try_reserve_exact(BUCKET as usize).map_err(|_| Errno::ENOMEM)?;
        ports.extend(core::iter::repeat_n(FREE, BUCKET as usize));
        ports[0].state = PortState::Reserved;
        let mut virqs = Vec::new();
        virqs.try_reserve_exact(config.nr_vcpus as usize).map_err(|_| Errno::ENOMEM)?;
        virqs.resize(config.nr_vcpus as usize, [0; NR_VIRQS as usize]);
        self.domains.insert(dom, DomainPorts { config, ports, virqs, reset_next: 0, dying: false })
    }

    /// Marks `dom` as dying (Xen's `is_dying`, set by `domain_kill`) and closes every port
    /// it has, as `domain_kill` does with `evtchn_destroy` before the domain's memory is
    /// released: its interdomain peers become unbound (still naming `dom`) at once, so their
    /// sends are dropped and their `status` says so for the whole teardown. From now on no
    /// port can be allocated in it (`-EINVAL`) and nobody can bind to it. Its (empty) table
    /// stays until [`Self::domain_destroyed`], at the end of the teardown.
    pub fn domain_dying(&mut self, host: &mut dyn EvtchnHost, dom: DomId) {
        let Some(t) = self.domains.get_mut(&dom) else { return };
        t.dying = true;
        self.close_all(host, dom);
    }

    /// Whether `dom` has a table.
    pub fn has_domain(&self, dom: DomId) -> bool {
        self.domains.contains_key(&dom)
    }

    /// The state of `port` in `dom`, if both exist (for diagnostics and tests).
    pub fn port_state(&self, dom: DomId, port: EvtchnPort) -> Option<PortState> {
        self.domains.get(&dom)?.ports.get(port as usize).map(|c| c.state)
    }

    /// Resolves `DOMID_SELF` and looks the domain up: `-ESRCH` if it has no table.
    fn resolve(&self, caller: DomId, dom: DomId) -> Result<DomId, Errno> {
        let d = if dom == DOMID_SELF { caller } else { dom };
        if self.domains.contains_key(&d) {
            Ok(d)
        } else {
            Err(Errno::ESRCH)
        }
    }

    fn table(&mut self, dom: DomId) -> Result<&mut DomainPorts, Errno> {
        self.domains.get_mut(&dom).ok_or(Errno::ESRCH)
    }

    /// The dummy-XSM `XSM_TARGET` rule: a domain may act on itself; the privileged one on any.
    fn may_target(&self, caller: DomId, target: DomId) -> Result<(), Errno> {
        let privileged = self.domains.get(&caller).is_some_and(|d| d.config.privileged);
        if caller == target || privileged {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `EVTCHNOP_alloc_unbound`: a new port in `dom` (`DOMID_SELF` or the caller, unless the
    /// caller is privileged) that `remote_dom` may bind to; `remote_dom = DOMID_SELF` means
    /// the caller. As in Xen, `remote_dom` need not exist (yet): nobody else can bind to it.
    /// Errors: `-ESRCH` no such `dom`, `-ENOSPC` no free port, `-EPERM` not allowed.
    pub fn alloc_unbound(&mut self, caller: DomId, dom: DomId, remote_dom: DomId) -> Result<EvtchnPort, Errno> {
        let d = self.resolve(caller, dom)?;
        let port = self.table(d)?.get_free_port()?;
        self.may_target(caller, d)?;
        let remote = if remote_dom == DOMID_SELF { caller } else { remote_dom };
        self.table(d)?.ports[port as usize] = Channel { state: PortState::Unbound { remote }, vcpu: 0 };
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain`: connects a new local port of `caller` to `remote_port` of
    /// `remote_dom`, which must be unbound and reserved for `caller`. The local port is set
    /// pending straight away (events sent while the remote end was unbound were dropped).
    /// Errors: `-ESRCH` no such domain, `-ENOSPC` no free local port, `-EINVAL` the remote
    /// port is invalid, not unbound, or reserved for someone else.
    pub fn bind_interdomain(
        &mut self,
        host: &mut dyn EvtchnHost,
        caller: DomId,
        remote_dom: DomId,
        remote_port: EvtchnPort,
    ) -> Result<EvtchnPort, Errno> {
        let rd = self.resolve(caller, remote_dom)?;
        let lport = self.table(caller)?.get_free_port()?;
        let remote = self.table(rd)?;
        let rchn = *remote.channel(remote_port)?;
        // A dying domain's ports are closed in Xen (`evtchn_destroy`): none is unbound.
        if remote.dying || rchn.state != (PortState::Unbound { remote: caller }) {
            return Err(Errno::EINVAL);
        }
        self.table(caller)?.ports[lport as usize] =
            Channel { state: PortState::Interdomain { remote: rd, remote_port }, vcpu: 0 };
        self.table(rd)?.ports[remote_port as usize].state =
            PortState::Interdomain { remote: caller, remote_port: lport };
        set_pending(host, caller, 0, lport);
        Ok(lport)
    }

    /// `EVTCHNOP_bind_virq`: binds `virq` on `vcpu` of `caller`. Global VIRQs only on vCPU 0.
    /// Errors: `-EINVAL` bad VIRQ or a global one on another vCPU, `-ENOENT` no such vCPU,
    /// `-EEXIST` already bound on that vCPU, `-ENOSPC` no free port.
    pub fn bind_virq(&mut self, caller: DomId, virq: u32, vcpu: u32) -> Result<EvtchnPort, Errno> {
        let t = self.table(caller)?;
        if virq >= NR_VIRQS || (virq_is_global(virq) && vcpu != 0) {
            return Err(Errno::EINVAL);
        }
        if !t.vcpu_exists(vcpu) {
            return Err(Errno::ENOENT);
        }
        if t.virqs[vcpu as usize][virq as usize] != 0 {
            return Err(Errno::EEXIST);
        }
        let port = t.get_free_port()?;
        t.ports[port as usize] = Channel { state: PortState::Virq(virq), vcpu };
        t.virqs[vcpu as usize][virq as usize] = port;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: a port whose `send` notifies `vcpu` of the caller itself.
    /// Errors: `-ENOENT` no such vCPU, `-ENOSPC` no free port.
    pub fn bind_ipi(&mut self, caller: DomId, vcpu: u32) -> Result<EvtchnPort, Errno> {
        let t = self.table(caller)?;
        if !t.vcpu_exists(vcpu) {
            return Err(Errno::ENOENT);
        }
        let port = t.get_free_port()?;
        t.ports[port as usize] = Channel { state: PortState::Ipi, vcpu };
        Ok(port)
    }

    /// `EVTCHNOP_close`: frees `port` of `caller` and clears its pending bit; the peer of an
    /// interdomain port goes back to unbound, still reserved for `caller`.
    /// Errors: `-EINVAL` invalid, free or reserved port.
    pub fn close(&mut self, host: &mut dyn EvtchnHost, caller: DomId, port: EvtchnPort) -> Result<(), Errno> {
        let chn = *self.table(caller)?.channel(port)?;
        match chn.state {
            PortState::Free | PortState::Reserved => return Err(Errno::EINVAL),
            PortState::Unbound { .. } | PortState::Ipi => {}
            PortState::Virq(virq) => {
                for per_vcpu in self.table(caller)?.virqs.iter_mut() {
                    if per_vcpu[virq as usize] == port {
                        per_vcpu[virq as usize] = 0;
                    }
                }
            }
            PortState::Interdomain { remote, remote_port } => {
                // The peer's entry always mirrors ours; check anyway rather than trust it.
                if let Some(peer) = self.domains.get_mut(&remote).and_then(|d| d.ports.get_mut(remote_port as usize)) {
                    if peer.state == (PortState::Interdomain { remote: caller, remote_port: port }) {
                        peer.state = PortState::Unbound { remote: caller };
                    }
                }
            }
        }
        self.table(caller)?.ports[port as usize] = FREE;
        clear_pending(host, caller, port);
        Ok(())
    }

    /// `EVTCHNOP_send`: raises the peer's port of an interdomain channel, or the port itself
    /// for an IPI. A send on an unbound port is dropped silently (success).
    /// Errors: `-EINVAL` invalid port, or a free, reserved or VIRQ port.
    pub fn send(&mut self, host: &mut dyn EvtchnHost, caller: DomId, port: EvtchnPort) -> Result<(), Errno> {
        let chn = *self.table(caller)?.channel(port)?;
        match chn.state {
            PortState::Interdomain { remote, remote_port } => {
                if let Ok(peer) = self.table(remote).and_then(|t| t.channel(remote_port).copied()) {
                    set_pending(host, remote, peer.vcpu, remote_port);
                }
                Ok(())
            }
            PortState::Ipi => {
                set_pending(host, caller, chn.vcpu, port);
                Ok(())
            }
            PortState::Unbound { .. } => Ok(()),
            PortState::Free | PortState::Reserved | PortState::Virq(_) => Err(Errno::EINVAL),
        }
    }

    /// `EVTCHNOP_status` of `port` in `dom` (`DOMID_SELF`, or any domain if privileged).
    /// Errors: `-ESRCH` no such domain, `-EINVAL` invalid port, `-EPERM` not allowed.
    pub fn status(&self, caller: DomId, dom: DomId, port: EvtchnPort) -> Result<PortStatus, Errno> {
        let d = self.resolve(caller, dom)?;
        let chn = *self.domains.get(&d).ok_or(Errno::ESRCH)?.channel(port)?;
        self.may_target(caller, d)?;
        Ok(PortStatus { state: chn.state, vcpu: chn.vcpu })
    }

    /// `EVTCHNOP_bind_vcpu`: makes `port` notify `vcpu`. Allowed for unbound, interdomain and
    /// global-VIRQ ports. Errors: `-ENOENT` no such vCPU, `-EINVAL` invalid port or a state
    /// that cannot move (free, reserved, IPI, per-vCPU VIRQ).
    pub fn bind_vcpu(&mut self, caller: DomId, port: EvtchnPort, vcpu: u32) -> Result<(), Errno> {
        let t = self.table(caller)?;
        if !t.vcpu_exists(vcpu) {
            return Err(Errno::ENOENT);
        }
        let chn = t.channel_mut(port)?;
        match chn.state {
            PortState::Virq(virq) if virq_is_global(virq) => chn.vcpu = vcpu,
            PortState::Unbound { .. } | PortState::Interdomain { .. } => chn.vcpu = vcpu,
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// `EVTCHNOP_unmask`: clears the mask bit; if it was set and the port is pending, repeats
    /// step 2 of raising (pending_sel, upcall_pending, kick). Errors: `-EINVAL` invalid port.
    pub fn unmask(&mut self, host: &mut dyn EvtchnHost, caller: DomId, port: EvtchnPort) -> Result<(), Errno> {
        let vcpu = self.table(caller)?.channel(port)?.vcpu;
        let (w, bit) = word_bit(port);
        let kick = host.shared_info(caller).is_some_and(|si| {
            let was_masked = shared_word(&mut si.evtchn_mask[w]).fetch_and(!bit, Ordering::SeqCst) & bit != 0;
            was_masked
                && shared_word(&mut si.evtchn_pending[w]).load(Ordering::SeqCst) & bit != 0
                && mark_selector(si, vcpu, w)
        });
        if kick {
            host.kick(caller, vcpu);
        }
        Ok(())
    }

    /// `EVTCHNOP_reset` (`resuming = false`) and its continuation `EVTCHNOP_reset_cont`
    /// (`resuming = true`), as Xen 4.17's `evtchn_reset`: closes every port of `dom`,
    /// [`RESET_PORTS_PER_ENTRY`] per call. `Err(ERESTART)` means ports are left: the caller
    /// makes the continuation, which resumes where this call stopped. Another domain may only
    /// be reset by the privileged domain while it has paused it (`target_paused`: its
    /// controller pause count is not 0, Xen's `controller_pause_count`).
    /// Errors: `-ESRCH` no such domain, `-EPERM` not allowed, `-EINVAL` not paused, `-EBUSY` a
    /// reset is already in progress (or a continuation names none), `-EAGAIN` a port was
    /// opened between the continuations (the guest ran its event handler in between).
    pub fn reset(
        &mut self,
        host: &mut dyn EvtchnHost,
        caller: DomId,
        dom: DomId,
        resuming: bool,
        target_paused: bool,
    ) -> Result<(), Errno> {
        let d = self.resolve(caller, dom)?;
        self.may_target(caller, d)?;
        if d != caller && !target_paused {
            return Err(Errno::EINVAL);
        }
        let t = self.table(d)?;
        // Port 0 is reserved, so 0 can mean "no reset in progress".
        let first = match (resuming, t.reset_next) {
            (false, 0) => 1,
            (true, next) if next != 0 => next,
            _ => return Err(Errno::EBUSY),
        };
        let valid = t.ports.len() as EvtchnPort;
        let end = valid.min(first.saturating_add(RESET_PORTS_PER_ENTRY));
        self.close_ports(host, d, first..end);
        let t = self.table(d)?;
        if end < valid {
            t.reset_next = end;
            return Err(Errno::ERESTART);
        }
        t.reset_next = 0;
        if t.ports.iter().any(|c| !matches!(c.state, PortState::Free | PortState::Reserved)) {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    fn close_all(&mut self, host: &mut dyn EvtchnHost, dom: DomId) {
        let n = self.domains.get(&dom).map_or(0, |t| t.ports.len() as u32);
        self.close_ports(host, dom, 0..n);
    }

    /// Closes `dom`'s `ports`, as the domain itself would.
    fn close_ports(&mut self, host: &mut dyn EvtchnHost, dom: DomId, ports: core::ops::Range<EvtchnPort>) {
        for port in ports {
            // Free and reserved ports refuse with -EINVAL; that is expected and ignored.
            let _ = self.close(host, dom, port);
        }
    }

    /// Raises `virq` in `dom` as Xen's `send_guest_vcpu_virq` (per-vCPU VIRQ, on `vcpu`) or
    /// `send_guest_global_virq` (global VIRQ: the port bound on vCPU 0, notifying the vCPU the
    /// port is bound to). Nothing happens if it is not bound or anything does not exist.
    pub fn raise_vcpu_virq(&mut self, host: &mut dyn EvtchnHost, dom: DomId, vcpu: u32, virq: u32) {
        if virq >= NR_VIRQS {
            return;
        }
        let Some(t) = self.domains.get(&dom) else { return };
        let binder = if virq_is_global(virq) { 0 } else { vcpu };
        let Some(&port) = t.virqs.get(binder as usize).map(|v| &v[virq as usize]) else { return };
        let Some(chn) = t.ports.get(port as usize).filter(|_| port != 0) else { return };
        let target = if virq_is_global(virq) { chn.vcpu } else { vcpu };
        set_pending(host, dom, target, port);
    }

    /// Raises `virq` in `dom` for vCPU 0 (see [`Self::raise_vcpu_virq`]); for a global VIRQ
    /// the vCPU it was bound to is notified.
    pub fn raise_virq(&mut self, host: &mut dyn EvtchnHost, dom: DomId, virq: u32) {
        self.raise_vcpu_virq(host, dom, 0, virq);
    }

    /// Xen's `send_global_virq`: raises a global VIRQ in [`GLOBAL_VIRQ_DOMAIN`] (dom0).
    pub fn send_global_virq(&mut self, host: &mut dyn EvtchnHost, virq: u32) {
        if virq_is_global(virq) {
            self.raise_virq(host, GLOBAL_VIRQ_DOMAIN, virq);
        }
    }

    /// Tears down `dom`'s event channels (Xen's `evtchn_destroy`): closes every port, so its
    /// interdomain peers become unbound (still naming `dom`), drops its table, then raises
    /// `VIRQ_DOM_EXC` in dom0 if dom0 bound it. Call it once the domain can no longer run,
    /// before its id can be reused (a later [`Self::add_domain`] starts from a fresh table).
    pub fn domain_destroyed(&mut self, host: &mut dyn EvtchnHost, dom: DomId) {
        if !self.domains.contains_key(&dom) {
            return;
        }
        self.close_all(host, dom);
        self.domains.remove(&dom);
        self.send_global_virq(host, VIRQ_DOM_EXC);
    }
}

/// Word index and bit mask of `port` in the 2-level bitmaps.
fn word_bit(port: EvtchnPort) -> (usize, u64) {
    ((port / 64) as usize, 1u64 << (port % 64))
}

/// A word of a shared_info page as the guest sees it: its vCPUs may run on other CPUs and
/// change bits of the same word with atomic operations meanwhile, so every read-modify-write
/// here is atomic too (Xen's `guest_test_and_set_bit` and friends), or a bit the guest
/// cleared or set at the same moment would be lost.
fn shared_word(word: &mut u64) -> &AtomicU64 {
    // SAFETY: `word` is valid, 8-aligned (shared_info's bitmaps are u64 arrays) and borrowed
    // for the returned lifetime; AtomicU64 has u64's size and layout. (`AtomicU64::from_mut`
    // says the same safely but is not stable yet.)
    unsafe { AtomicU64::from_ptr(word) }
}

/// Step 2's tail: newly sets bit `w` of `vcpu`'s `evtchn_pending_sel`; if it was clear, sets
/// `evtchn_upcall_pending` and returns true (kick). A vCPU without a `vcpu_info` slot in
/// `shared_info` is never notified.
fn mark_selector(si: &mut SharedInfo, vcpu: u32, w: usize) -> bool {
    let Some(vi) = si.vcpu_info.get_mut(vcpu as usize) else { return false };
    let sel = 1u64 << w;
    if shared_word(&mut vi.evtchn_pending_sel).fetch_or(sel, Ordering::SeqCst) & sel != 0 {
        return false;
    }
    // A byte store: the guest only ever clears this byte, and does so before it scans.
    // SAFETY: as in `shared_word`, for a byte.
    unsafe { AtomicU8::from_ptr(&mut vi.evtchn_upcall_pending) }.store(1, Ordering::SeqCst);
    true
}

/// Raises `port` of `dom` for `vcpu` (`evtchn_2l_set_pending`, §3.9).
fn set_pending(host: &mut dyn EvtchnHost, dom: DomId, vcpu: u32, port: EvtchnPort) {
    let (w, bit) = word_bit(port);
    let mut raised = false;
    let kick = host.shared_info(dom).is_some_and(|si| {
        let Some(pending) = si.evtchn_pending.get_mut(w) else { return false };
        if shared_word(pending).fetch_or(bit, Ordering::SeqCst) & bit != 0 {
            return false;
        }
        raised = true;
        shared_word(&mut si.evtchn_mask[w]).load(Ordering::SeqCst) & bit == 0 && mark_selector(si, vcpu, w)
    });
    if kick {
        host.kick(dom, vcpu);
    }
    if raised {
        host.port_raised(dom, port);
    }
}

/// Clears the pending bit of a port being freed, so a re-bound port starts quiet.
fn clear_pending(host: &mut dyn EvtchnHost, dom: DomId, port: EvtchnPort) {
    let (w, bit) = word_bit(port);
    if let Some(word) = host.shared_info(dom).and_then(|si| si.evtchn_pending.get_mut(w)) {
        shared_word(word).fetch_and(!bit, Ordering::SeqCst);
    }
}
