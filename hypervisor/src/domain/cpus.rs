//! The machine on several CPUs: the lock every hypervisor entry holds, which domain each CPU
//! has loaded and whether it runs it, waking domains on their CPUs (reschedule requests
//! between CPUs), and lazy idling (the teardown of dying domains is in `teardown.rs`).

use super::{any_pending, Domain, Machine, NO_DOMAIN};
use crate::arch::x86_64::fpu;
use crate::arch::x86_64::gdt::MAX_CPUS;
use crate::arch::x86_64::{guest_entry, idt::TrapFrame, paging, smp};
use hypervisor::sched::Scheduler;
use spin::mutex::{TicketMutex, TicketMutexGuard};

/// The machine state, reached from the trap path: one lock for all of it (interrupts are off
/// while it is held, and it is held for a whole hypervisor entry). A ticket lock: CPUs get it
/// in the order they asked, so none starves, and a `pausedomain` or `destroydomain` that
/// re-issues itself until another CPU has acted (see `machine_env.rs`) always lets that CPU
/// in first.
static MACHINE: TicketMutex<Option<Machine>, ServeFlushes> = TicketMutex::new(None);

/// How a CPU waits for the machine lock: serving TLB-flush requests, since the holder may be
/// waiting for them (`smp::flush_all_tlbs`) and interrupts are off here.
pub struct ServeFlushes;

impl spin::RelaxStrategy for ServeFlushes {
    fn relax() {
        smp::serve_flush();
        core::hint::spin_loop();
    }
}

/// The machine lock, held.
pub type MachineGuard = TicketMutexGuard<'static, Option<Machine>>;

/// Takes the machine lock.
pub fn lock_machine() -> MachineGuard {
    MACHINE.lock()
}

impl Machine {
    /// The calling CPU takes over the machine: `current` becomes its loaded domain.
    #[inline(always)]
    pub fn enter_cpu(&mut self, cpu: usize) {
        self.cpu = cpu % MAX_CPUS;
        self.current = self.cpu_current[self.cpu];
        self.guest_running[self.cpu] = false;
    }

    /// The calling CPU is about to resume `current` in guest mode (the lock is released next).
    #[inline(always)]
    pub fn leave_for_guest(&mut self) {
        self.guest_running[self.cpu] = true;
    }

    /// Whether `id` is executing on another CPU right now (for the lock holder: until that
    /// CPU's next entry).
    pub fn running_on_other_cpu(&self, id: u16) -> bool {
        self.loaded_elsewhere(id).is_some_and(|c| self.guest_running[c])
    }

    /// The calling CPU now has `id` loaded (or nothing: [`NO_DOMAIN`]).
    pub(super) fn set_current(&mut self, id: u16) {
        self.current = id;
        self.cpu_current[self.cpu] = id;
    }

    /// Whether `id` was torn down since a `destroydomain` call began waiting for it, and not
    /// yet reported.
    pub fn was_reaped(&self, id: u16) -> bool {
        self.reaped.contains(&id)
    }

    /// Whether the teardown of `id` ended while a `destroydomain` of it waited, and forgets it.
    pub fn take_reaped(&mut self, id: u16) -> bool {
        let found = self.was_reaped(id);
        self.reaped.retain(|&r| r != id);
        found
    }

    /// Whether a reschedule was asked of the calling CPU since its last entry (and forgets it).
    pub fn take_resched_request(&mut self) -> bool {
        core::mem::take(&mut self.resched_pending[self.cpu])
    }

    /// The calling CPU's scheduler.
    pub fn sched(&mut self) -> &mut Scheduler {
        &mut self.scheds[self.cpu]
    }

    /// The CPU other than the caller's that has `id` loaded, if any.
    pub fn loaded_elsewhere(&self, id: u16) -> Option<usize> {
        (0..self.scheds.len()).find(|&c| c != self.cpu && self.cpu_current[c] == id)
    }

    /// The domains that may be executing on other CPUs while the caller holds the lock,
    /// writing their shared pages: loaded there and not blocked (a blocked domain's CPU is
    /// idle or waiting for the lock, and only the lock holder can wake it).
    pub fn running_elsewhere(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.scheds.len())
            .filter(move |&c| c != self.cpu)
            .map(|c| self.cpu_current[c])
            .filter(|d| self.domains.get(d).is_some_and(|d| !d.blocked))
    }

    /// Whether `id` is loaded on some CPU (the caller's included).
    pub fn is_loaded(&self, id: u16) -> bool {
        self.current == id || self.loaded_elsewhere(id).is_some()
    }

    /// Makes `cpu` re-run its scheduling decision soon: at once if it is the caller (the
    /// returned value), else at the entry an IPI forces.
    pub fn request_resched(&mut self, cpu: usize) -> bool {
        if cpu == self.cpu {
            return true;
        }
        if let Some(flag) = self.resched_pending.get_mut(cpu) {
            *flag = true;
            smp::kick_cpu(cpu);
        }
        false
    }

    /// As [`Self::request_resched`], for a caller that cannot act on the answer itself (a
    /// hypercall waking a domain of its own CPU): the calling CPU's request is left for its
    /// exit path ([`Machine::exit_work`]), so a boosted domain preempts at once, not at the
    /// next tick (Xen's `vcpu_wake` tickles the scheduler).
    pub fn resched_soon(&mut self, cpu: usize) {
        if self.request_resched(cpu) {
            if let Some(flag) = self.resched_pending.get_mut(cpu) {
                *flag = true;
                self.exit_work[cpu] = true;
            }
        }
    }

    /// The calling CPU stops running its domain and idles. Lazily, as Xen's idle vCPU: the
    /// domain stays loaded (its page tables in CR3, its FPU registers live), and only its
    /// register frame is kept ([`Self::idle_frame`]), so waking the same domain costs no
    /// switch. A dying domain is unloaded for real (saved, the hypervisor's own tables loaded),
    /// so that its teardown can go on (`run_idle_cpu` takes the steps): a teardown never frees
    /// tables a CPU still points at.
    pub fn go_idle(&mut self, frame: &TrapFrame) {
        let Some(cur) = self.domains.get_mut(&self.current) else {
            self.set_current(NO_DOMAIN);
            return;
        };
        cur.saved = frame.clone();
        if cur.dying {
            fpu::save(&mut cur.fpu);
            self.set_current(NO_DOMAIN);
            guest_entry::load_page_tables(paging::hypervisor_pml4_phys());
        }
    }

    /// The register frame an idle CPU resumes from: its loaded domain's, kept by
    /// [`Self::go_idle`] (if the scheduler picks another domain, the switch saves this same
    /// frame back and loads the other's).
    pub fn idle_frame(&self) -> TrapFrame {
        self.domains.get(&self.current).map(|d| d.saved.clone()).unwrap_or_default()
    }

    /// Wakes every kicked domain that was blocked; returns whether the scheduler wants the
    /// CPU reassigned.
    pub fn process_kicks(&mut self) -> bool {
        let check_pollers = self.pollers != 0 && self.event_host.any_raised();
        if self.event_host.kicked.is_empty() && !check_pollers {
            return false; // the common case on every hypervisor exit
        }
        // Xen's pollers check: a port a blocked poller waits on became pending, even if it
        // raised no upcall (masked vCPU, or its selector bit was already set). With nobody
        // polling, raised ports matter to no one (a poll that starts later checks its ports
        // itself): they are forgotten either way.
        if check_pollers {
            let host = &mut self.event_host;
            if host.raised_overflow {
                for d in self.domains.values() {
                    let woken = match d.poll_ports.as_slice() {
                        [_] => any_pending(&self.mem, d.shared_info_mfn, &d.poll_ports),
                        // Watching any port: woken by whichever was raised (a spurious wake
                        // is allowed; the guest re-checks).
                        _ => true,
                    };
                    if d.blocked && d.counted_poller && woken && !host.kicked.contains(&d.id) {
                        host.kicked.push(d.id);
                    }
                }
            } else {
                for &(dom, port) in &host.raised {
                    // Still pending: a port raised while nobody polled is remembered until
                    // the next check, and its guest may have cleared it since (as Xen, which
                    // checks pollers at the raise, a poll is woken by a port pending now).
                    let wakes = |d: &Domain| {
                        d.blocked
                            && d.counted_poller
                            && d.watches(port)
                            && any_pending(&self.mem, d.shared_info_mfn, &[port])
                    };
                    if self.domains.get(&dom).is_some_and(&wakes) && !host.kicked.contains(&dom) {
                        host.kicked.push(dom);
                    }
                }
            }
        }
        self.event_host.forget_raised();
        let mut resched = false;
        // Taken and given back with its capacity: no heap traffic on every wake-up.
        let mut kicked = core::mem::take(&mut self.event_host.kicked);
        for &id in &kicked {
            let Some(d) = self.domains.get_mut(&id) else { continue };
            let cpu = d.cpu;
            if d.blocked {
                d.blocked = false;
                d.poll_deadline = None;
                d.poll_ports.clear();
                if core::mem::take(&mut d.counted_poller) {
                    self.pollers = self.pollers.saturating_sub(1);
                }
                if !d.is_paused() && self.scheds[cpu].wake(id) {
                    resched |= self.request_resched(cpu);
                }
            } else if cpu != self.cpu && self.cpu_current[cpu] == id {
                // Running on another CPU: interrupt it so that its exit path delivers the
                // upcall (Xen's `vcpu_kick`).
                smp::kick_cpu(cpu);
            }
        }
        kicked.clear();
        // Waking touches only the scheduler and the domains, never the list: it is empty.
        self.event_host.kicked = kicked;
        resched
    }
}
