//! Killing a domain and tearing it down in bounded steps, as Xen's `domain_kill` with its
//! preemptible `domain_relinquish_resources`: the hypervisor entry that kills a domain does a
//! step of the work, and later entries (timer ticks, idle CPUs, the continued
//! `destroydomain` call, a switch away) do the rest, so the machine lock is never held for a
//! whole big domain's teardown.
//!
//! A dying domain stays in the domain table (paused, its scheduler entry blocked, listed with
//! `XEN_DOMINF_dying`) until its last step: then it leaves the scheduler and the event
//! channels (dom0 gets `VIRQ_DOM_EXC`), and every frame returns to the allocator. Its
//! frames are only released while no CPU has it loaded, so no CPU can still use its page
//! tables.

use super::{free_to_allocator, Machine, NO_DOMAIN, RELEASE_BUDGET};
use crate::arch::x86_64::{guest_entry, paging};
use alloc::vec::Vec;
use hypercall_abi::event_channel::VIRQ_DOM_EXC;
use hypervisor::mm::{DomainRights, Mmu, ReleaseCursor, ReleaseProgress};

/// Release calls (of [`RELEASE_BUDGET`] units of work each: grant handles, frames looked at,
/// tables torn down) per teardown step: well under a millisecond of TCG time.
const STEP_ROUNDS: usize = 16;
/// Frames of the domain's span looked at (and freed) per step once all is released.
const FREE_BATCH: u64 = 1024;
/// Teardown work a timer tick does on a busy CPU (the steps stop once this much time went).
const TICK_TEARDOWN_NS: u64 = 1_000_000;

/// How far a dying domain's teardown has gone.
#[derive(Default)]
pub struct Progress {
    /// When it was killed (system time), for the log.
    started_ns: u64,
    /// Its grant mappings and table are released.
    grants_done: bool,
    /// Where the page-table release is.
    cursor: ReleaseCursor,
    /// Once every reference is released: the next frame of the domain's span to free.
    free_next: Option<u64>,
    /// Frames returned to the allocator so far.
    freed: usize,
    /// Steps taken so far.
    steps: u32,
    /// A `destroydomain` call waits for it (continued until the teardown ends).
    pub awaited: bool,
}

impl Machine {
    /// Kills domain `id`: it never runs again (paused, its scheduler entry blocked) and is
    /// torn down in bounded steps ([`Self::progress_teardowns`]), the first one now if no CPU
    /// has it loaded. A domain running on another CPU is made to switch away first. dom0
    /// must not be torn down this way: its death ends the machine.
    pub fn destroy_domain(&mut self, id: u16) {
        let now = self.now_ns();
        let Some(d) = self.domains.get_mut(&id) else { return };
        if d.dying {
            return;
        }
        d.dying = true; // no wake-up may make it runnable again (`is_paused`)
        d.teardown.started_ns = now;
        let cpu = d.cpu;
        self.scheds[cpu].block(id);
        self.events.domain_dying(&mut self.event_host, id);
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
        self.progress_teardowns_from_a_call();
    }

    /// [`Self::progress_teardowns`] from a hypercall, which cannot act on its answer: a
    /// domain of this CPU a step woke (VIRQ_DOM_EXC, a peer's closed port) runs at this
    /// CPU's exit, not at its next tick.
    pub fn progress_teardowns_from_a_call(&mut self) {
        if self.progress_teardowns() {
            let cpu = self.cpu;
            self.resched_soon(cpu);
        }
    }

    /// Like [`Self::destroy_domain`], but returns only once the domain is gone: for boot,
    /// when no CPU runs a domain yet and the frames are wanted at once.
    pub fn destroy_domain_now(&mut self, id: u16) {
        self.destroy_domain(id);
        while self.dying.contains(&id) {
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
    /// finishes those with nothing left to release. Returns whether one finished or a
    /// domain of this CPU woke (either may change what this CPU should run).
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
        let woke_here = !self.event_host.kicked.is_empty() && self.process_kicks();
        finished_any || woke_here
    }

    /// One step of releasing `id`'s grants, then its page-table references, then freeing its
    /// frames. Whether all is done.
    fn release_step(&mut self, id: u16) -> bool {
        let span = self.frames.span_of(id);
        let Some(d) = self.domains.get_mut(&id) else { return true };
        let rights = DomainRights { id, io_capable: d.privileged };
        let t = &mut d.teardown;
        t.steps += 1;
        if let Some(first) = t.free_next {
            // The domain's frames (not its initial P2M: frames it freed may belong to someone
            // else since), a batch per step. `free_to_allocator` flushes every CPU's TLB
            // first: no CPU may keep a translation to a frame handed back.
            let end = span.end.min(first.saturating_add(FREE_BATCH));
            let owned: Vec<u64> = self.frames.owned_in(id, first..end).collect();
            let mut unowned = Vec::with_capacity(owned.len());
            let (mut kept, mut first_kept) = (0, None);
            for mfn in owned {
                match self.frames.free_domain_frame(mfn) {
                    Ok(()) => unowned.push(mfn),
                    Err(e) => {
                        kept += 1;
                        first_kept.get_or_insert((mfn, e.reason));
                    }
                }
            }
            if let Some((mfn, why)) = first_kept {
                // One line a step: another domain can keep thousands of them mapped.
                // The scenarios forbid this line (`scenarios::FRAMES_KEPT`): keep its words.
                log::warn!("d{id}: {kept} frame(s) kept, from {mfn:#x}: {why}");
            }
            t.free_next = Some(end);
            t.freed += free_to_allocator(unowned);
            return end >= span.end;
        }
        for _ in 0..STEP_ROUNDS {
            if !t.grants_done {
                t.grants_done = self.grants.release_domain(id, &mut self.frames, &mut self.mem, RELEASE_BUDGET)
                    == ReleaseProgress::Done;
                continue;
            }
            let mut mmu = Mmu::new(&mut self.frames, &mut self.mem, &self.hypervisor_slots, rights, &mut d.vcpu.paging);
            if mmu.release_domain(&mut t.cursor, RELEASE_BUDGET) == ReleaseProgress::Done {
                t.free_next = Some(span.start);
                break;
            }
        }
        false
    }

    /// Teardown steps for up to [`TICK_TEARDOWN_NS`]: what a timer tick does for the
    /// teardowns while its CPU runs domains. Returns whether to reschedule.
    pub fn progress_teardowns_for_a_tick(&mut self) -> bool {
        let start = self.now_ns();
        let mut resched = false;
        while self.teardown_ready() {
            resched |= self.progress_teardowns();
            if self.now_ns().saturating_sub(start) >= TICK_TEARDOWN_NS {
                break;
            }
        }
        resched
    }

    /// The end of a teardown: the domain leaves the scheduler, its port table (closed at the
    /// kill) is dropped and dom0 gets `VIRQ_DOM_EXC`, and every frame it had goes back to the
    /// allocator.
    fn finish_teardown(&mut self, id: u16) {
        let Some(d) = self.domains.remove(&id) else { return };
        if d.counted_poller {
            self.pollers = self.pollers.saturating_sub(1);
        }
        self.scheds[d.cpu].remove(id);
        // Closing its ports raises VIRQ_DOM_EXC for dom0; a domain refused half made may have
        // none, and dom0 hears of it below instead.
        let had_ports = self.events.has_domain(id);
        self.events.domain_destroyed(&mut self.event_host, id);
        self.event_host.set_shared_info(id, None);
        // shared_info went back to the hypervisor with the release: it is freed as its page,
        // with the frames the domain's death released.
        let mut freed = d.teardown.freed + free_to_allocator(alloc::vec![d.shared_info_mfn]);
        freed += self.return_released_frames();
        freed += self.reap_grant_frames();
        let took_us = self.now_ns().saturating_sub(d.teardown.started_ns) / 1000;
        log::info!(
            "d{id} ({}): destroyed, {freed} frames returned in {took_us} us ({} steps)",
            d.name,
            d.teardown.steps
        );
        if d.teardown.awaited {
            self.reaped.push(id);
        }
        if !had_ports {
            self.events.send_global_virq(&mut self.event_host, VIRQ_DOM_EXC);
        }
    }
}
