//! Killing a domain and tearing it down in bounded steps, as Xen's `domain_kill` with its
//! preemptible `domain_relinquish_resources`: the hypervisor entry that kills a domain does a
//! step of the work, and later entries (timer ticks, idle CPUs, the continued
//! `destroydomain` call, a switch away) do the rest, so the machine lock is never held for a
//! whole big domain's teardown.
//!
//! A dying domain stays in the domain table (paused, blocked, listed with
//! `XEN_DOMINF_dying`) until its last step: then it leaves the scheduler and the event
//! channels (dom0 gets `VIRQ_DOM_EXC`), and every frame returns to the allocator. Its
//! frames are only released while no CPU has it loaded, so no CPU can still use its page
//! tables.

use super::{free_to_allocator, Machine, NO_DOMAIN, RELEASE_BUDGET};
use crate::arch::x86_64::{guest_entry, paging};
use alloc::vec::Vec;
use hypercall_abi::event_channel::VIRQ_DOM_EXC;
use hypervisor::mm::{DomainRights, Mmu, ReleaseCursor, ReleaseProgress};

/// Release calls (of [`RELEASE_BUDGET`] frames or grant handles each) per teardown step:
/// about 0.3 ms under TCG, and a 16 MiB domain in about nine steps.
const STEP_ROUNDS: usize = 16;

/// How far a dying domain's teardown has gone.
#[derive(Default)]
pub struct Progress {
    /// When it was killed (system time), for the log.
    started_ns: Option<u64>,
    /// Its grant mappings and table are released.
    grants_done: bool,
    /// Where the page-table release is.
    cursor: ReleaseCursor,
    /// Steps taken so far.
    steps: u32,
    /// A `destroydomain` call waits for it (continued until the teardown ends).
    pub awaited: bool,
}

impl Machine {
    /// Kills domain `id`: it never runs again (paused, blocked) and is torn down in bounded
    /// steps ([`Self::progress_teardowns`]), the first one now if no CPU has it loaded. A
    /// domain running on another CPU is made to switch away first. dom0 must not be torn
    /// down this way: its death ends the machine.
    pub fn destroy_domain(&mut self, id: u16) {
        let now = self.now_ns();
        let Some(d) = self.domains.get_mut(&id) else { return };
        if d.dying {
            return;
        }
        d.dying = true;
        d.paused = true; // no wake-up may make it runnable again
        d.teardown.started_ns = Some(now);
        let cpu = d.cpu;
        self.scheds[cpu].block(id);
        self.dying.push(id);
        if let Some(other) = self.loaded_elsewhere(id) {
            log::info!("d{id}: dying; torn down once CPU {other} switches away from it");
            self.request_resched(other);
            return;
        }
        if id == self.current {
            // Off the dying domain's tables before any of them can return to the allocator;
            // the exit path finds no current domain and picks another, or idles.
            guest_entry::load_page_tables(paging::hypervisor_pml4_phys());
            self.set_current(NO_DOMAIN);
        }
        self.progress_teardowns();
    }

    /// Like [`Self::destroy_domain`], but returns only once the domain is gone: for boot,
    /// when no CPU runs a domain yet and the frames are wanted at once.
    pub fn destroy_domain_now(&mut self, id: u16) {
        self.destroy_domain(id);
        while self.domains.contains_key(&id) && self.dying.contains(&id) {
            if self.is_loaded(id) {
                break; // cannot happen at boot; never spin on another CPU's domain
            }
            self.progress_teardowns();
        }
    }

    /// Whether some dying domain could be worked on now (no CPU has it loaded).
    pub fn teardown_ready(&self) -> bool {
        self.dying.iter().any(|&id| !self.is_loaded(id))
    }

    /// Does one bounded step of the teardown of every dying domain no CPU has loaded, and
    /// finishes those with nothing left to release. Returns whether one finished.
    pub fn progress_teardowns(&mut self) -> bool {
        if self.dying.is_empty() {
            return false;
        }
        let ready: Vec<u16> = self.dying.iter().copied().filter(|&id| !self.is_loaded(id)).collect();
        let mut finished_any = false;
        for id in ready {
            if self.release_step(id) {
                self.dying.retain(|&d| d != id);
                self.finish_teardown(id);
                finished_any = true;
            }
        }
        // The teardown raised events (VIRQ_DOM_EXC, peers' closed ports): wake their
        // domains now, not at some CPU's next exit. A local wake-up is picked up by this
        // CPU's next decision (an idling CPU makes one at once, see `run_idle_cpu`).
        if !self.event_host.kicked.is_empty() {
            self.process_kicks();
        }
        finished_any
    }

    /// One step of releasing `id`'s grants, then its page-table references. Whether all
    /// is released.
    fn release_step(&mut self, id: u16) -> bool {
        let Some(d) = self.domains.get_mut(&id) else { return true };
        let rights = DomainRights { id, io_capable: d.privileged };
        d.teardown.steps += 1;
        for _ in 0..STEP_ROUNDS {
            if !d.teardown.grants_done {
                d.teardown.grants_done =
                    self.grants.release_domain(id, &mut self.frames, &mut self.mem, RELEASE_BUDGET)
                        == ReleaseProgress::Done;
                continue;
            }
            let mut mmu = Mmu::new(&mut self.frames, &mut self.mem, &self.hypervisor_slots, rights, &mut d.vcpu.paging);
            if mmu.release_domain(&mut d.teardown.cursor, RELEASE_BUDGET) == ReleaseProgress::Done {
                return true;
            }
        }
        false
    }

    /// The end of a teardown: the domain leaves the scheduler and the event channels (peers'
    /// ports return to Unbound, dom0 gets `VIRQ_DOM_EXC`), and every frame it had goes back
    /// to the allocator.
    fn finish_teardown(&mut self, id: u16) {
        let Some(d) = self.domains.remove(&id) else { return };
        if d.counted_poller {
            self.pollers = self.pollers.saturating_sub(1);
        }
        self.scheds[d.cpu].remove(id);
        self.events.domain_destroyed(&mut self.event_host, id);
        self.event_host.set_shared_info(id, None);
        // shared_info went back to the hypervisor with the release: it is freed as its page;
        // then the domain's frames (not its initial P2M: frames it freed may belong to
        // someone else since), then those its death released. (`free_to_allocator` flushes
        // every CPU's TLB first: no CPU may keep a translation to a frame handed back.)
        let mut unowned = alloc::vec![d.shared_info_mfn];
        let owned: Vec<u64> = self.frames.frames_of(id).collect();
        for mfn in owned {
            match self.frames.free_domain_frame(mfn) {
                Ok(()) => unowned.push(mfn),
                Err(e) => log::warn!("d{id}: frame {mfn:#x} kept: {}", e.reason),
            }
        }
        let mut freed = free_to_allocator(unowned);
        freed += self.return_released_frames();
        freed += self.reap_grant_frames();
        let took_us = self.now_ns().saturating_sub(d.teardown.started_ns.unwrap_or(0)) / 1000;
        log::info!(
            "d{id} ({}): destroyed, {freed} frames returned in {took_us} us ({} steps)",
            d.name,
            d.teardown.steps
        );
        if d.teardown.awaited {
            self.reaped.push(id);
        }
        self.events.send_global_virq(&mut self.event_host, VIRQ_DOM_EXC);
    }
}
