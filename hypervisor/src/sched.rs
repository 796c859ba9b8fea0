//! Credit scheduler for one physical CPU, in the spirit of Xen's (`xen/common/sched/credit.c`):
//! generic, deterministic and host-tested; the kernel feeds it timer ticks and guest events.
//!
//! The model, and where it follows or departs from Xen:
//! - One vCPU per domain (the only shape we build for now), keyed by domain id.
//! - Credit is kept in nanoseconds of CPU time (Xen uses 10 credits per ms). The running vCPU is
//!   charged the exact time it ran, at every tick and at every switch, so a guest that blocks
//!   between ticks still pays for what it used (Xen samples at ticks only).
//! - Every accounting period (one time slice, 30 ms by default, as Xen's three 10 ms ticks) the
//!   period's CPU time is handed out as credit to the *active* vCPUs in proportion to weight. A
//!   vCPU becomes active when it is charged; one whose credit exceeds a time slice (it has not been
//!   using its share, e.g. it is blocked) stops earning and has its credit halved, as in Xen.
//!   Credit never falls below minus one time slice (Xen's lower bound).
//! - Priority classes, best first: BOOST (woken from blocking while in credit, so I/O-bound
//!   guests respond promptly; lost at the first tick it runs through), UNDER (credit >= 0), OVER.
//!   Unlike Xen, which recomputes the class only at accounting, the class follows the credit at
//!   once, which makes the weight ratio tighter.
//! - Within a class the order is first-in first-out; a preempted or yielding vCPU goes to the back
//!   of its class. A yielding vCPU is, for that one decision, passed over for any other runnable
//!   vCPU, even of a lower class (Xen moves it behind one lower-priority vCPU): a guest calling
//!   `SCHEDOP_yield` expects someone else to run if anyone can.
//! - A time slice lasts until a tick finds it expired and another vCPU of the same or a better
//!   class waiting; a better class waiting preempts at the next tick. Blocked vCPUs are never
//!   picked; when nothing is runnable the decision is idle.
//!
//! How the kernel drives it: [`Scheduler::tick`] on every timer interrupt (guest or idle running);
//! [`Scheduler::pick_next`] whenever a decision says so, and after blocking, yielding or removing
//! the running domain; [`Scheduler::wake`] when an event makes a blocked domain runnable.

use alloc::vec::Vec;

/// Domain id (Xen's `domid_t`).
pub type DomId = u16;

/// Weight of a domain nobody configured (Xen's `CSCHED_DEFAULT_WEIGHT`).
pub const DEFAULT_WEIGHT: u16 = 256;
/// Default time slice and accounting period (Xen's `sched_credit_tslice_ms` default, 30 ms).
pub const DEFAULT_TIMESLICE_NS: u64 = 30_000_000;

/// Whether a vCPU wants the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Ready to run (running or waiting).
    Runnable,
    /// Waiting for an event (`SCHEDOP_block`); takes no CPU time.
    Blocked,
}

/// Scheduling class; the derived order is worst to best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Has used more than its share (credit < 0).
    Over,
    /// Within its share (credit >= 0).
    Under,
    /// Just woken while in credit.
    Boost,
}

/// What the kernel should do after a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep running what runs (guest or idle).
    Continue,
    /// Call [`Scheduler::pick_next`] and switch to its answer.
    Reschedule,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// Weight 0: Xen's legal weights are 1..=65535 (its domctl treats 0 as "unchanged").
    ZeroWeight,
    /// The domain is already scheduled.
    AlreadyPresent,
    /// The domain is not scheduled.
    NoSuchDomain,
}

impl core::fmt::Display for SchedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ZeroWeight => write!(f, "weight must be 1..=65535"),
            Self::AlreadyPresent => write!(f, "domain already scheduled"),
            Self::NoSuchDomain => write!(f, "no such domain"),
        }
    }
}

/// A snapshot of one domain's scheduling state (for `xl list` and debugging).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Weight.
    pub weight: u16,
    /// Runnable or blocked.
    pub state: RunState,
    /// Current class.
    pub priority: Priority,
    /// Credit in nanoseconds (negative when over its share).
    pub credit_ns: i64,
    /// CPU time consumed since it was added.
    pub cpu_time_ns: u64,
    /// Whether it is the one running.
    pub running: bool,
}

#[derive(Clone, Debug)]
struct Vcpu {
    domid: DomId,
    weight: u16,
    state: RunState,
    credit_ns: i64,
    boosted: bool,
    /// Earns credit at accounting (see the module comment).
    active: bool,
    yielded: bool,
    cpu_time_ns: u64,
    /// Position in its class: lower runs first.
    queue_seq: u64,
}

impl Vcpu {
    fn priority(&self) -> Priority {
        if self.boosted {
            Priority::Boost
        } else if self.credit_ns >= 0 {
            Priority::Under
        } else {
            Priority::Over
        }
    }

    fn runnable(&self) -> bool {
        self.state == RunState::Runnable
    }
}

/// The credit scheduler of one physical CPU.
#[derive(Clone, Debug)]
pub struct Scheduler {
    timeslice_ns: u64,
    vcpus: Vec<Vcpu>,
    current: Option<DomId>,
    /// Index of `current` in `vcpus`, kept with it: charging, ticks and picks all start from
    /// the running vCPU, and this runs on every switch.
    current_index: Option<usize>,
    slice_end_ns: u64,
    /// Time up to which CPU time has been charged; `None` before the first call.
    charged_until_ns: Option<u64>,
    next_accounting_ns: Option<u64>,
    next_seq: u64,
    idle_time_ns: u64,
}

impl Scheduler {
    /// A scheduler for a timer ticking every `tick_ns`: time slice and accounting period are the
    /// default 30 ms rounded down to whole ticks (at least one tick; a zero tick counts as 1 ns).
    pub fn new(tick_ns: u64) -> Self {
        let tick_ns = tick_ns.max(1);
        let timeslice = (DEFAULT_TIMESLICE_NS / tick_ns).max(1).saturating_mul(tick_ns);
        Self::with_timeslice(timeslice)
    }

    /// A scheduler with an explicit time slice (also the accounting period); 0 counts as 1 ns.
    pub fn with_timeslice(timeslice_ns: u64) -> Self {
        Self {
            timeslice_ns: timeslice_ns.max(1),
            vcpus: Vec::new(),
            current: None,
            current_index: None,
            slice_end_ns: 0,
            charged_until_ns: None,
            next_accounting_ns: None,
            next_seq: 0,
            idle_time_ns: 0,
        }
    }

    /// The time slice, which is also the accounting period.
    pub fn timeslice_ns(&self) -> u64 {
        self.timeslice_ns
    }

    /// Adds a domain's vCPU, runnable, with no credit. Refuses weight 0 and known domains.
    pub fn add(&mut self, domid: DomId, weight: u16) -> Result<(), SchedError> {
        if weight == 0 {
            return Err(SchedError::ZeroWeight);
        }
        if self.index(domid).is_some() {
            return Err(SchedError::AlreadyPresent);
        }
        let queue_seq = self.take_seq();
        self.vcpus.push(Vcpu {
            domid,
            weight,
            state: RunState::Runnable,
            credit_ns: 0,
            boosted: false,
            active: false,
            yielded: false,
            cpu_time_ns: 0,
            queue_seq,
        });
        Ok(())
    }

    /// Changes a domain's weight (from the next accounting period on). Refuses weight 0.
    pub fn set_weight(&mut self, domid: DomId, weight: u16) -> Result<(), SchedError> {
        if weight == 0 {
            return Err(SchedError::ZeroWeight);
        }
        let i = self.index(domid).ok_or(SchedError::NoSuchDomain)?;
        self.vcpus[i].weight = weight;
        Ok(())
    }

    /// Removes a domain. Returns whether it was known. If it was running, nothing runs until
    /// [`Self::pick_next`]; its last uncharged moments are counted as idle time.
    pub fn remove(&mut self, domid: DomId) -> bool {
        let Some(i) = self.index(domid) else {
            return false;
        };
        self.vcpus.remove(i);
        if self.current == Some(domid) {
            self.current = None;
        }
        // Later vCPUs moved down by one.
        self.current_index = self.current.and_then(|d| self.index(d));
        true
    }

    /// Marks a domain blocked (`SCHEDOP_block` with no event pending). Returns whether it is the
    /// running one, in which case the kernel must call [`Self::pick_next`].
    pub fn block(&mut self, domid: DomId) -> bool {
        let Some(i) = self.index(domid) else {
            return false;
        };
        let vcpu = &mut self.vcpus[i];
        vcpu.state = RunState::Blocked;
        vcpu.boosted = false;
        self.current == Some(domid)
    }

    /// Makes a blocked domain runnable (an event arrived). A domain in credit is boosted, so it
    /// runs ahead of CPU hogs. Returns whether the kernel should reschedule now because the woken
    /// domain outranks what runs (or the CPU is idle).
    pub fn wake(&mut self, domid: DomId) -> bool {
        let Some(i) = self.index(domid) else {
            return false;
        };
        if self.vcpus[i].runnable() {
            return false;
        }
        let is_current = self.current == Some(domid);
        let queue_seq = self.take_seq();
        let vcpu = &mut self.vcpus[i];
        vcpu.state = RunState::Runnable;
        if is_current {
            // Blocked and woken before the kernel switched away: it simply keeps running.
            return false;
        }
        vcpu.boosted = vcpu.credit_ns >= 0;
        vcpu.queue_seq = queue_seq;
        let woken = vcpu.priority();
        match self.current_vcpu() {
            Some(current) => !current.runnable() || woken > current.priority(),
            None => true,
        }
    }

    /// `SCHEDOP_yield`: the running domain offers the CPU. Returns whether it is the running one,
    /// in which case the kernel should call [`Self::pick_next`] (which may pick it again if
    /// nothing else is runnable).
    pub fn yield_now(&mut self, domid: DomId) -> bool {
        if self.current != Some(domid) {
            return false;
        }
        if let Some(i) = self.index(domid) {
            self.vcpus[i].yielded = true;
        }
        true
    }

    /// Timer tick: charges what ran, runs accounting when due, and says whether to reschedule.
    pub fn tick(&mut self, now_ns: u64) -> Decision {
        self.charge(now_ns);
        self.account_if_due(now_ns);
        if let Some(i) = self.current_index() {
            // Boost lasts until the first tick the vCPU runs through, as in Xen's csched_tick.
            self.vcpus[i].boosted = false;
        }
        let waiting = self.best_runnable(self.current).map(|i| self.vcpus[i].priority());
        let Some(current) = self.current_vcpu() else {
            return if waiting.is_some() { Decision::Reschedule } else { Decision::Continue };
        };
        if !current.runnable() || current.yielded {
            return Decision::Reschedule;
        }
        match waiting {
            Some(w) if w > current.priority() => Decision::Reschedule,
            Some(w) if w == current.priority() && now_ns >= self.slice_end_ns => Decision::Reschedule,
            _ => Decision::Continue,
        }
    }

    /// Chooses what runs from `now_ns`: `Some(domid)` (possibly the same one) or `None` for the
    /// idle loop. Charges the outgoing domain and starts a new time slice.
    pub fn pick_next(&mut self, now_ns: u64) -> Option<DomId> {
        self.charge(now_ns);
        self.account_if_due(now_ns);
        let mut passed_over = None;
        if let Some(i) = self.current_index() {
            // The outgoing vCPU goes to the back of its class.
            let queue_seq = self.take_seq();
            let vcpu = &mut self.vcpus[i];
            vcpu.queue_seq = queue_seq;
            if core::mem::take(&mut vcpu.yielded) {
                passed_over = Some(vcpu.domid);
            }
        }
        let chosen = self.best_runnable(passed_over).or_else(|| self.best_runnable(None));
        self.current = chosen.map(|i| self.vcpus[i].domid);
        self.current_index = chosen;
        self.slice_end_ns = now_ns.saturating_add(self.timeslice_ns);
        self.current
    }

    /// Whether some domain could run (the next [`Self::pick_next`] would not idle).
    pub fn has_runnable(&self) -> bool {
        self.vcpus.iter().any(|v| v.runnable())
    }

    /// The running domain (`None` when idle).
    pub fn current(&self) -> Option<DomId> {
        self.current
    }

    /// CPU time a domain has consumed, in nanoseconds.
    pub fn cpu_time_ns(&self, domid: DomId) -> Option<u64> {
        self.index(domid).map(|i| self.vcpus[i].cpu_time_ns)
    }

    /// Time spent with nothing to run, in nanoseconds.
    pub fn idle_time_ns(&self) -> u64 {
        self.idle_time_ns
    }

    /// A snapshot of a domain's scheduling state.
    pub fn info(&self, domid: DomId) -> Option<VcpuInfo> {
        let vcpu = &self.vcpus[self.index(domid)?];
        Some(VcpuInfo {
            weight: vcpu.weight,
            state: vcpu.state,
            priority: vcpu.priority(),
            credit_ns: vcpu.credit_ns,
            cpu_time_ns: vcpu.cpu_time_ns,
            running: self.current == Some(domid),
        })
    }

    /// The scheduled domains, in the order they were added.
    pub fn domains(&self) -> impl Iterator<Item = DomId> + '_ {
        self.vcpus.iter().map(|v| v.domid)
    }

    fn index(&self, domid: DomId) -> Option<usize> {
        self.vcpus.iter().position(|v| v.domid == domid)
    }

    fn current_index(&self) -> Option<usize> {
        self.current_index
    }

    fn current_vcpu(&self) -> Option<&Vcpu> {
        self.current_index().map(|i| &self.vcpus[i])
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The best runnable vCPU other than `except`: best class, then first in its class.
    fn best_runnable(&self, except: Option<DomId>) -> Option<usize> {
        self.vcpus
            .iter()
            .enumerate()
            .filter(|(_, v)| v.runnable() && Some(v.domid) != except)
            .max_by(|(_, a), (_, b)| a.priority().cmp(&b.priority()).then(b.queue_seq.cmp(&a.queue_seq)))
            .map(|(i, _)| i)
    }

    /// Charges the time since the last charge to the running vCPU, or to idle.
    fn charge(&mut self, now_ns: u64) {
        let since = *self.charged_until_ns.get_or_insert(now_ns);
        // A clock that steps back charges nothing rather than wrapping.
        let elapsed = now_ns.saturating_sub(since);
        self.charged_until_ns = Some(since.max(now_ns));
        match self.current_index() {
            Some(i) => {
                let vcpu = &mut self.vcpus[i];
                vcpu.cpu_time_ns = vcpu.cpu_time_ns.saturating_add(elapsed);
                let cost = i64::try_from(elapsed).unwrap_or(i64::MAX);
                vcpu.credit_ns = vcpu.credit_ns.saturating_sub(cost);
                if elapsed > 0 {
                    vcpu.active = true;
                }
            }
            None => self.idle_time_ns = self.idle_time_ns.saturating_add(elapsed),
        }
    }

    /// Runs at most one accounting period per call: after a long gap (a stalled timer) catching
    /// up period by period would only hand out credit nobody could use.
    fn account_if_due(&mut self, now_ns: u64) {
        let due = *self.next_accounting_ns.get_or_insert(now_ns.saturating_add(self.timeslice_ns));
        if now_ns < due {
            return;
        }
        let next = due.saturating_add(self.timeslice_ns);
        self.next_accounting_ns = Some(if next <= now_ns { now_ns.saturating_add(self.timeslice_ns) } else { next });
        self.account();
    }

    /// Xen's csched_acct for one CPU: the period's time becomes credit for the active vCPUs in
    /// proportion to weight; bounds keep credit within one time slice either way.
    fn account(&mut self) {
        let total_weight: u64 = self.vcpus.iter().filter(|v| v.active).map(|v| u64::from(v.weight)).sum();
        if total_weight == 0 {
            return;
        }
        let period = self.timeslice_ns;
        let bound = i64::try_from(self.timeslice_ns).unwrap_or(i64::MAX);
        for vcpu in self.vcpus.iter_mut().filter(|v| v.active) {
            // 64-bit arithmetic whenever it cannot overflow (any slice below 3.2 days at the
            // heaviest weight): a 128-bit division is a `__udivti3` call per vCPU.
            let share = match period.checked_mul(u64::from(vcpu.weight)) {
                Some(p) => u128::from(p / total_weight),
                None => u128::from(period) * u128::from(vcpu.weight) / u128::from(total_weight),
            };
            let share = i64::try_from(share).unwrap_or(i64::MAX);
            vcpu.credit_ns = vcpu.credit_ns.saturating_add(share);
            // Xen's csched_acct puts every active vCPU back to UNDER or OVER: a wake-up boost
            // lasts at most one period, even for a vCPU that is never running at a tick (one
            // that yields just before each would otherwise keep it, and outrank its weight).
            vcpu.boosted = false;
            if vcpu.credit_ns > bound {
                // Not using its share: stop earning, and keep half as a head start.
                vcpu.active = false;
                vcpu.credit_ns /= 2;
            }
            vcpu.credit_ns = vcpu.credit_ns.max(-bound);
        }
    }
}

#[cfg(test)]
#[path = "sched_tests.rs"]
mod tests;
