//! What happens when a guest enters the hypervisor: hypercalls, bounced exceptions and
//! software interrupts, emulated privileged instructions, timer ticks, blocking and yielding,
//! context switches and the idle loop, and domain death.
//!
//! Every path ends in [`Machine::leave_to_guest`], Xen's return-to-guest checks: pending
//! wake-ups, a reschedule if one is due, and the event upcall for the domain about to run.

use crate::arch::x86_64::paging::DirectMap;
use crate::arch::x86_64::{apic, cpu, fpu, gdt, guest_entry, idt::TrapFrame, syscall::SYSCALL_VECTOR};

/// `#NM`, device not available.
const VECTOR_NM: u8 = 7;
/// The `int $0x80` system-call vector, whose gate is DPL 3.
const SYSCALL_INT80: u8 = 0x80;
use crate::arch::x86_64::guest_copy::GuestStack;
use crate::domain::{
    lock_machine, GuestTables, Machine, MachineGuard, SHUTDOWN_CRASH, SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT, UPCALL_MASK,
    UPCALL_PENDING, VCPU_CR2,
};
use crate::machine_env::Hardware;
use hypervisor::emulate::{self, Context};
use hypervisor::exit_code;
use hypervisor::guest_access;
use hypervisor::hypercalls::{self, Outcome, Sleep};
use hypervisor::vcpu::{self, Delivery, DeliveryError, ModeChange};

/// Mnemonics of the architectural exception vectors.
pub const EXCEPTION_NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "res15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "res22", "res23", "res24", "res25", "res26", "res27", "#HV", "#VC",
    "#SX", "res31",
];

/// Vectors whose exceptions push an error code.
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// After a switch between guest kernel and guest user mode: the other root page table and GS
/// base (Xen's `toggle_guest_mode`).
#[inline(always)]
fn enter_mode(change: ModeChange, vcpu: &hypervisor::vcpu::VcpuState) {
    if change != ModeChange::None {
        guest_entry::load_page_tables(vcpu.current_l4());
        // The GS bases of the two modes trade places, as Xen's `toggle_guest_mode`: the
        // CPU holds the current values, whatever the guest loaded into %gs meanwhile.
        cpu::swap_guest_gs_bases();
    }
}

/// Reads the loaded vCPU's segment bases and data selectors back from the CPU (see
/// `cpu::capture_segment_state`): before the hypervisor reads or changes them, and when the
/// vCPU leaves the CPU.
pub fn refresh_segment_state(vcpu: &mut hypervisor::vcpu::VcpuState) {
    cpu::capture_segment_state(vcpu);
    vcpu.data_selectors = cpu::read_data_selectors();
}

/// Loads a vCPU's data selectors, then its segment bases (a selector load resets its base):
/// when it comes onto the CPU, and after the hypervisor changed them.
pub fn apply_segment_state(vcpu: &hypervisor::vcpu::VcpuState) {
    cpu::load_data_selectors(vcpu.data_selectors);
    cpu::load_segment_state(vcpu);
}

/// Re-executes the 2-byte `syscall` with the advanced arguments when the vCPU next runs
/// (Xen's continuation).
fn reissue(frame: &mut TrapFrame, next: [u64; 5]) {
    [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8] = next;
    frame.rip = frame.rip.wrapping_sub(2);
}

/// Builds the bounce frame for `d` on `dom`'s kernel stack and enters guest kernel mode, with
/// the vCPU's event mask read and written in place (the bounce path of every exception,
/// event and user system call).
#[inline(always)]
fn deliver_to(
    dom: &mut crate::domain::Domain,
    mem: &mut DirectMap,
    frame: &mut TrapFrame,
    d: Delivery,
) -> Result<(), DeliveryError> {
    let mask_at = (dom.shared_info_mfn << 12) + UPCALL_MASK;
    let mut mask = mem.read_u8(mask_at);
    let tlb_current = dom.vcpu.paging.effects.is_empty();
    let change = dom.vcpu.bounce(frame, d, &mut mask, &mut GuestStack::new(mem, tlb_current))?;
    mem.write_u8(mask_at, mask);
    enter_mode(change, &dom.vcpu);
    Ok(())
}

/// Everything that enters the hypervisor from guest context comes here.
pub fn on_guest_entry(frame: &mut TrapFrame) {
    let cpu = gdt::this_cpu();
    let mut guard = lock_machine();
    let Some(m) = guard.as_mut() else {
        drop(guard);
        log::error!("entry from ring 3 with no domain running");
        crate::fatal_stop();
    };
    m.enter_cpu(cpu);
    let mut resched = m.take_resched_request();
    match frame.vector {
        SYSCALL_VECTOR => resched |= m.on_syscall(frame),
        v if v == apic::TIMER_VECTOR as u64 => {
            apic::on_timer_interrupt();
            report_ignored_nmis();
            // Up to a millisecond of any teardown waiting for steps (a domain killed while
            // this CPU runs others is torn down across ticks).
            if m.teardown_ready() {
                resched |= m.progress_teardowns_for_a_tick();
            }
            m.run_timers();
            let now = m.now_ns();
            resched |= m.sched().tick(now) == hypervisor::sched::Decision::Reschedule;
        }
        // Another CPU asked for a new scheduling decision (`take_resched_request` above) or
        // an upcall check (done on every exit), or a TLB flush (served at trap entry).
        v if v == apic::RESCHEDULE_VECTOR as u64 || v == apic::FLUSH_VECTOR as u64 => apic::end_of_interrupt(),
        v if v == apic::SPURIOUS_VECTOR as u64 => {}
        // The common exception goes straight to its bounce: #PF has none of the emulation
        // or software-interrupt cases `on_exception` sorts out first.
        v if v == u64::from(vcpu::VECTOR_PF) => {
            resched |= m.bounce_exception(frame, vcpu::VECTOR_PF, Some(frame.error_code));
        }
        v if v < 32 || v == SYSCALL_INT80 as u64 => {
            let v = v as u8;
            let code = has_error_code(v).then_some(frame.error_code);
            resched |= m.on_exception(frame, v, code);
        }
        v => {
            log::warn!("d{}: unexpected interrupt vector {v} in guest context", m.current);
            apic::end_of_interrupt();
        }
    }
    let mut m = m;
    if m.exit_work[m.cpu] {
        // Rare: what the hypercall left for the way out (`Machine::exit_work`).
        m.exit_work[m.cpu] = false;
        resched |= m.take_resched_request();
        if !m.pause_waits[m.cpu].is_empty() {
            guard = wait_for_pauses(guard, cpu);
            let Some(again) = guard.as_mut() else { crate::fatal_stop() };
            m = again;
        }
    }
    if m.leave_to_guest(frame, resched) && m.ensure_returnable(frame) {
        m.leave_for_guest();
        return; // to the trap exit, which resumes `frame`
    }
    // `run_idle_cpu` decides once more before it waits (a teardown step it takes may wake a
    // domain of this CPU).
    m.go_idle(frame);
    drop(guard);
    run_idle_cpu()
}

/// Xen's `vcpu_sleep_sync` for the `pausedomain` calls of this CPU's hypercall, at its
/// end: waits until no domain they paused executes on another CPU, before the caller
/// resumes. Such a CPU must take the machine lock to stop (its entry clears
/// `guest_running`), so the lock is let go between checks (taking it again serves TLB-flush
/// requests while it spins); the pause sent it an IPI, so the wait is one entry of it. A
/// domain unpaused meanwhile (the same multicall may unpause it) is not waited for: it may
/// run on for good.
fn wait_for_pauses(mut guard: MachineGuard, cpu: usize) -> MachineGuard {
    loop {
        let Some(m) = guard.as_mut() else { return guard };
        let mut waits = core::mem::take(&mut m.pause_waits[cpu]);
        waits.retain(|id| m.running_on_other_cpu(*id) && m.domains.get(id).is_some_and(|d| d.is_paused()));
        if waits.is_empty() {
            return guard;
        }
        m.pause_waits[cpu] = waits;
        drop(guard);
        core::hint::spin_loop();
        guard = lock_machine();
        if let Some(m) = guard.as_mut() {
            // Another CPU held the machine meanwhile: this CPU takes it over again.
            m.enter_cpu(cpu);
        }
    }
}

/// Logs the host NMIs the trap handler counted and dropped (it cannot log itself: an NMI may
/// interrupt the console's lock holder).
fn report_ignored_nmis() {
    let n = crate::arch::x86_64::traps::take_ignored_nmis();
    if n > 0 {
        log::warn!("{n} host NMI(s) ignored (the hypervisor sends none; not passed to any guest)");
    }
}

/// A CPU with nothing loaded: halts (without the machine lock) until one of its domains can
/// run, then resumes it. Every CPU starts here once the machine exists. Never returns.
pub fn run_idle_cpu() -> ! {
    let cpu = gdt::this_cpu();
    loop {
        {
            let mut guard = lock_machine();
            let Some(m) = guard.as_mut() else {
                drop(guard);
                crate::fatal_stop();
            };
            m.enter_cpu(cpu);
            if m.domains.is_empty() {
                let free = crate::memory::FRAMES.lock().as_ref().map_or(0, |f| f.free_frames());
                log::info!(
                    "No domains left: shutting down. Free frames: {free} (before the domains: {}).",
                    m.frames_free_at_start
                );
                log::info!(
                    "Heap in use: {} KiB (before the domains: {} KiB).",
                    hypervisor::heap::in_use() >> 10,
                    m.heap_in_use_at_start >> 10
                );
                cpu::qemu_exit(exit_code::SUCCESS);
            }
            m.take_resched_request();
            report_ignored_nmis();
            m.run_timers();
            let now = m.now_ns();
            m.sched().tick(now);
            let mut frame = m.idle_frame();
            if m.leave_to_guest(&mut frame, true) && m.ensure_returnable(&mut frame) {
                m.leave_for_guest();
                drop(guard);
                guest_entry::resume(&frame, gdt::ring0_stack_top(cpu));
            }
            m.go_idle(&frame);
            if m.teardown_ready() {
                // An idle CPU does the teardowns' steps one after another (the lock is let go
                // between them), looking for work again after each: a step may wake a domain.
                m.progress_teardowns();
                continue;
            }
        }
        crate::arch::x86_64::smp::wait_for_work();
    }
}

impl Machine {
    /// The return-to-guest path: wake kicked domains, switch if the scheduler says so (idling
    /// while nothing can run), then deliver a pending event upcall.
    ///
    /// Inline, because nearly every exit finds nothing to do: no reschedule, no kicked domain,
    /// no port raised while a poller waits, the current domain runnable and no upcall due.
    /// That case costs one domain lookup; anything else takes the full path, which repeats
    /// these checks.
    ///
    /// Returns whether `frame` is ready to resume; `false` when nothing on this CPU can run
    /// (the caller idles).
    #[inline(always)]
    fn leave_to_guest(&mut self, frame: &mut TrapFrame, resched: bool) -> bool {
        if !resched && self.event_host.kicked.is_empty() && (self.pollers == 0 || !self.event_host.any_raised()) {
            if let Some(d) = self.domains.get(&self.current) {
                if !d.blocked && !self.upcall_due(d.vcpu.event_callback, d.shared_info_mfn) {
                    return true;
                }
            }
        }
        self.leave_to_guest_slow(frame, resched)
    }

    /// Whether an event upcall must be delivered: a callback is registered, and the vCPU has
    /// an upcall pending and not masked.
    #[inline(always)]
    fn upcall_due(&self, callback: u64, shared_info_mfn: u64) -> bool {
        let base = shared_info_mfn << 12;
        callback != 0 && self.mem.read_u8(base + UPCALL_PENDING) != 0 && self.mem.read_u8(base + UPCALL_MASK) == 0
    }

    #[inline(never)]
    fn leave_to_guest_slow(&mut self, frame: &mut TrapFrame, mut resched: bool) -> bool {
        // Only when something was kicked, or a port fired while a poller waits.
        if !self.event_host.kicked.is_empty() || (self.pollers != 0 && self.event_host.any_raised()) {
            resched |= self.process_kicks();
        }
        if resched || self.domains.get(&self.current).is_none_or(|d| d.blocked) {
            let now = self.now_ns();
            let Some(next) = self.sched().pick_next(now) else {
                return false;
            };
            self.switch_to(frame, next);
        }
        self.deliver_pending_events(frame)
    }

    /// The exit path's `iretq` to a non-canonical `rip`, or in compatibility mode to one beyond
    /// 4 GiB, would fault in ring 0 (SYSRET is already avoided for one). Such a `rip` is
    /// reachable: a `syscall` in the last two bytes below the canonical hole returns to
    /// `0x800000000000`. As on Xen, whose failing IRET is reported to the guest, the guest
    /// gets #GP(0) with that `rip` in its frame (delivered as it is, never emulated). Each round
    /// either moves `rip` to a handler (`bounce` refuses a non-canonical one) or crashes the
    /// domain and runs another, so the loop ends.
    /// Returns whether `frame` is ready to resume (`false`: nothing can run, idle).
    #[inline(always)]
    fn ensure_returnable(&mut self, frame: &mut TrapFrame) -> bool {
        vcpu::is_returnable(frame) || self.make_returnable(frame)
    }

    #[inline(never)]
    fn make_returnable(&mut self, frame: &mut TrapFrame) -> bool {
        while !vcpu::is_returnable(frame) {
            log::warn!(target: hypervisor::log_limit::GUEST_TARGET, "d{}: return to rip {:#x} (cs {:#x}) impossible: #GP to the guest", self.current, frame.rip, frame.cs);
            let resched = self.bounce_exception(frame, vcpu::VECTOR_GP, Some(0));
            if !self.leave_to_guest(frame, resched) {
                return false;
            }
        }
        true
    }

    /// Delivers `d` to the current domain's kernel, or crashes the domain. Returns whether
    /// the CPU must be rescheduled (the domain died).
    fn deliver(&mut self, frame: &mut TrapFrame, d: Delivery, what: &str) -> bool {
        match self.try_deliver(frame, d) {
            Ok(()) => false,
            Err(e) => self.crash(frame, what, e),
        }
    }

    /// [`deliver_to`] on the current domain.
    #[inline(always)]
    fn try_deliver(&mut self, frame: &mut TrapFrame, d: Delivery) -> Result<(), DeliveryError> {
        let Machine { domains, mem, current, .. } = self;
        deliver_to(domains.get_mut(current).expect("current domain is live"), mem, frame, d)
    }

    /// Bounces exception `vector` to the guest's handler (for #PF with CR2 recorded where
    /// Xen keeps it), or crashes the domain. Returns whether to reschedule.
    #[inline(always)]
    fn bounce_exception(&mut self, frame: &mut TrapFrame, vector: u8, error_code: Option<u64>) -> bool {
        let name = EXCEPTION_NAMES.get(vector as usize).copied().unwrap_or("interrupt");
        // One domain lookup for the whole bounce: this is every guest page fault's path.
        let Machine { domains, mem, current, .. } = self;
        let dom = domains.get_mut(current).expect("current domain is live");
        if vector == vcpu::VECTOR_PF {
            let cr2 = cpu::read_cr2();
            dom.priv_state.cr2 = cr2;
            mem.write_u64((dom.shared_info_mfn << 12) + VCPU_CR2, cr2);
        }
        let delivered = match dom.vcpu.exception(vector, error_code) {
            Ok(d) => deliver_to(dom, mem, frame, d),
            Err(e) => Err(e),
        };
        match delivered {
            Ok(()) => false,
            Err(e) => self.crash(frame, name, e),
        }
    }

    /// The current domain cannot go on: report it and shut it down as crashed.
    fn crash(&mut self, frame: &TrapFrame, what: &str, e: DeliveryError) -> bool {
        log::error!(
            "d{}: {what} at rip={:#x} cannot be delivered: {e}: crashing domain (vector {}, error_code={:#x}, cr2={:#x})",
            self.current,
            frame.rip,
            frame.vector,
            frame.error_code,
            cpu::read_cr2()
        );
        self.shutdown_current(SHUTDOWN_CRASH)
    }

    /// Xen's check on every return to the guest: an upcall is pending and not masked.
    /// Returns whether `frame` is ready to resume (as [`Self::leave_to_guest`]).
    fn deliver_pending_events(&mut self, frame: &mut TrapFrame) -> bool {
        let d = self.cur();
        let (callback, shared_info) = (d.vcpu.event_callback, d.shared_info_mfn);
        if self.upcall_due(callback, shared_info) {
            let d = Delivery { handler: callback, error_code: None, mask_events: true };
            if self.deliver(frame, d, "event upcall") {
                // The domain died delivering its own upcall: run someone else.
                return self.leave_to_guest(frame, true);
            }
        }
        true
    }

    /// Applies the TLB/CR3 work the PV MMU queued during a hypercall.
    fn apply_paging_effects(&mut self) {
        if self.cur().vcpu.paging.effects.is_empty() {
            return;
        }
        if self.cur().vcpu.paging.effects.old_root.is_some() {
            // Off the old root first; only then may its reference go (Xen's
            // `old_guest_table`). What dropping it asks for joins the work below.
            guest_entry::load_page_tables(self.cur().vcpu.current_l4());
            // That load did the CR3 and TLB work asked so far: only what dropping the old
            // root asks for (a flush after releasing tables) is left below.
            let fx = &mut self.cur().vcpu.paging.effects;
            fx.load_cr3 = None;
            fx.flush_all = false;
            fx.flush_pages.clear();
            if let Some(mut mmu) = self.current_mmu() {
                mmu.put_old_root();
            }
        }
        let fx = self.cur().vcpu.paging.effects.take();
        if fx.load_cr3.is_some() || fx.flush_all {
            // A CR3 write flushes every non-global entry; guest mappings are never global.
            guest_entry::load_page_tables(self.cur().vcpu.current_l4());
        } else {
            for va in fx.flush_pages {
                x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(va));
            }
        }
        if fx.flush_caches {
            x86_64::instructions::interrupts::without_interrupts(|| {
                // SAFETY: wbinvd only writes back caches; only dom0 can ask for it.
                unsafe { core::arch::asm!("wbinvd", options(nostack)) }
            });
        }
    }

    /// A `SYSCALL`: from guest kernel mode a hypercall, from guest user mode a system call
    /// bounced to the guest's syscall callback. Returns whether to reschedule.
    fn on_syscall(&mut self, frame: &mut TrapFrame) -> bool {
        // From compatibility mode (entered through CSTAR) a `syscall` is never a hypercall:
        // Xen's `cstar_enter` bounces it to the syscall32 callback in either guest mode.
        let compat = frame.cs == u64::from(hypercall_abi::arch::FLAT_RING3_CS32);
        if compat || !self.cur().vcpu.kernel_mode {
            let vcpu = &self.cur().vcpu;
            let cb = if compat { vcpu.syscall32_callback } else { vcpu.syscall_callback };
            if cb.address == 0 {
                // Xen injects #UD at the `syscall` instruction.
                frame.rip = frame.rip.wrapping_sub(2);
                return self.on_exception(frame, vcpu::VECTOR_UD, None);
            }
            let d = Delivery { handler: cb.address, error_code: None, mask_events: cb.mask_events };
            return match self.try_deliver(frame, d) {
                Ok(()) => {
                    // The kernel's syscall entry runs with DF clear, as after a real SYSCALL
                    // (Xen's `switch_to_kernel`); the frame saved for it keeps the user's DF.
                    frame.rflags &= !vcpu::rflags::DF;
                    false
                }
                Err(e) => self.crash(frame, "syscall", e),
            };
        }
        if frame.rax == hypercall_abi::hypercall::IRET {
            return self.on_iret(frame);
        }
        let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8];
        self.guest_tables.set(GuestTables::Unchanged);
        let outcome = hypercalls::dispatch(self, frame.rax, args);
        // Unchanged: the call never reached the MMU, the grant tables, the vCPU or domain
        // control, so it left no paging work, grant frames or released frames behind.
        let tables = self.guest_tables.replace(GuestTables::Outside);
        if !matches!(tables, GuestTables::Unchanged | GuestTables::Loaded) {
            self.apply_paging_effects();
            let may_unpin = [hypercall_abi::hypercall::GRANT_TABLE_OP, hypercall_abi::hypercall::MULTICALL];
            if may_unpin.contains(&frame.rax) && self.grants.has_pending() {
                self.reap_grant_frames();
            }
            self.return_released_frames();
        }
        // A multicall may hold an `fpu_taskswitch` too.
        if matches!(frame.rax, hypercall_abi::hypercall::FPU_TASKSWITCH | hypercall_abi::hypercall::MULTICALL) {
            if let Some(d) = self.domains.get(&self.current) {
                fpu::set_task_switched(d.vcpu.cr0_ts);
            }
        }
        match outcome {
            Outcome::Return(v) => {
                frame.rax = v as u64;
                // SYSCALL/SYSRET clobber RCX and R11 (the hypercall page saves them): leaving
                // them as SYSRET would load them lets the exit path use the fast SYSRET.
                frame.rcx = frame.rip;
                frame.r11 = frame.rflags;
                false
            }
            Outcome::Continue(next) => {
                reissue(frame, next);
                false
            }
            Outcome::Yield => self.sleep(frame, Sleep::Yield),
            Outcome::Block => self.sleep(frame, Sleep::Block),
            Outcome::Poll(deadline) => self.sleep(frame, Sleep::Poll(deadline)),
            Outcome::Shutdown(reason) => self.shutdown_current(reason),
            Outcome::SleepThenContinue(sleep, next) => {
                let hypercall = frame.rax;
                let resched = self.sleep(frame, sleep);
                // The rest of the multicall: the same `syscall` again once the vCPU runs.
                frame.rax = hypercall;
                reissue(frame, next);
                resched
            }
        }
    }

    /// Yields, blocks or polls the current vCPU after a hypercall (`rax = 0`); returns
    /// whether to reschedule.
    fn sleep(&mut self, frame: &mut TrapFrame, sleep: Sleep) -> bool {
        frame.rax = 0;
        let cur = self.current;
        match sleep {
            Sleep::Yield => self.sched().yield_now(cur),
            Sleep::Block => {
                // Ports of an earlier poll that never blocked must not select this block's
                // wake-ups.
                self.cur().poll_ports.clear();
                self.set_shared_bytes(cur, UPCALL_MASK, &[0]);
                self.block_current()
            }
            Sleep::Poll(deadline) => {
                self.cur().poll_deadline = deadline;
                let blocked = self.block_current();
                if blocked {
                    self.pollers += 1;
                    self.cur().counted_poller = true;
                } else {
                    // Something is already deliverable: no poll, so no ports to watch.
                    let d = self.cur();
                    d.poll_ports.clear();
                    d.poll_deadline = None;
                }
                blocked
            }
        }
    }

    /// Blocks the current domain unless an event is already deliverable (Xen's
    /// `local_events_need_delivery` check, so an event raised just before is not lost).
    fn block_current(&mut self) -> bool {
        let cur = self.current;
        if self.shared_byte(cur, UPCALL_PENDING) != 0 && self.shared_byte(cur, UPCALL_MASK) == 0 {
            return false;
        }
        self.cur().blocked = true;
        self.sched().block(cur);
        true
    }

    fn on_iret(&mut self, frame: &mut TrapFrame) -> bool {
        let Machine { domains, mem, current, .. } = self;
        let dom = domains.get_mut(current).expect("current domain is live");
        let mask_at = (dom.shared_info_mfn << 12) + UPCALL_MASK;
        let mut mask = mem.read_u8(mask_at);
        let tlb_current = dom.vcpu.paging.effects.is_empty();
        match dom.vcpu.iret(frame, &mut mask, &GuestStack::new(mem, tlb_current)) {
            Ok(Ok(change)) => {
                mem.write_u8(mask_at, mask);
                enter_mode(change, &dom.vcpu);
                false
            }
            // A frame the CPU could not return to: #GP(0), as Xen's failed IRET (delivered,
            // never taken for an instruction to emulate).
            Ok(Err(())) => self.bounce_exception(frame, vcpu::VECTOR_GP, Some(0)),
            Err(e) => self.crash(frame, "iret", e),
        }
    }

    /// Reads the instruction bytes at the guest's `rip` (fewer at the end of a mapping).
    fn instruction_bytes(&self, rip: u64, out: &mut [u8; 15]) -> usize {
        let l4 = self.domains.get(&self.current).map_or(0, |d| d.vcpu.current_l4());
        (1..=15).rev().find(|&n| guest_access::copy_from_guest(&self.mem, l4, rip, &mut out[..n]).is_ok()).unwrap_or(0)
    }

    /// Runs the privileged-instruction emulator on a #GP(0) or #UD; `None` if the fault
    /// must be delivered to the guest after all, else whether to reschedule and whether the
    /// instruction retired (it may have to run again, or the vCPU blocked in it).
    fn emulate(&mut self, frame: &mut TrapFrame, vector: u8) -> Option<(bool, bool)> {
        // Retired, and nothing to reschedule for.
        const RETIRED: Option<(bool, bool)> = Some((false, true));
        let mut bytes = [0u8; 15];
        let n = self.instruction_bytes(frame.rip, &mut bytes);
        let d = self.domains.get_mut(&self.current).expect("current domain is live");
        let mut ctx = Context { vcpu: &mut d.vcpu, state: &mut d.priv_state, policy: &d.policy, vcpu_id: 0 };
        let outcome = if vector == vcpu::VECTOR_GP {
            emulate::emulate_privileged(&mut ctx, &mut Hardware, frame, &bytes[..n])
        } else {
            emulate::emulate_invalid_op(&mut ctx, &mut Hardware, frame, &bytes[..n])
        };
        match outcome {
            emulate::Outcome::Emulated => RETIRED,
            emulate::Outcome::Cr4Changed(cr4) => {
                cpu::set_guest_tsd(cr4 & emulate::cr4::TSD != 0);
                RETIRED
            }
            emulate::Outcome::ReflectGp(_) | emulate::Outcome::ReflectUd => None,
            emulate::Outcome::Block => Some((self.block_current(), false)),
            emulate::Outcome::FpuTaskSwitch(ts) => {
                fpu::set_task_switched(ts);
                RETIRED
            }
            emulate::Outcome::SegmentBases => {
                apply_segment_state(&self.cur().vcpu);
                RETIRED
            }
            emulate::Outcome::SwitchKernelRoot { mfn, len } => {
                // An MMU entry of its own, as a hypercall's: a budget, pending releases first.
                let result = self.current_mmu().map(|mut m| {
                    if m.begin_entry() {
                        m.new_baseptr(mfn)
                    } else {
                        Err(hypervisor::mm::MmuError::PREEMPTED)
                    }
                });
                self.apply_paging_effects();
                match result {
                    Some(Ok(())) => {
                        emulate::advance(frame, len as usize);
                        RETIRED
                    }
                    // Out of budget: the instruction runs again, resuming where this stopped
                    // (Xen's X86EMUL_RETRY).
                    Some(Err(e)) if e.is_preempted() => Some((false, false)),
                    _ => None,
                }
            }
            // The hypercall-page MSR: not offered yet (the ELF note is the way in).
            emulate::Outcome::HypercallPage { .. } => None,
        }
    }

    /// An exception raised by the guest: emulate, bounce to its handler, or crash it.
    fn on_exception(&mut self, frame: &mut TrapFrame, vector: u8, error_code: Option<u64>) -> bool {
        // `int n` on a DPL-0 gate arrives as #GP with the IDT bit (2) in its error code. The
        // vector is taken from the instruction itself (`CD nn`): TCG encodes the error code's
        // index differently from hardware, and the bytes are what the guest executed.
        if vector == vcpu::VECTOR_GP && error_code.is_some_and(|c| c & 3 == 2) {
            let mut insn = [0u8; 15];
            let n = self.instruction_bytes(frame.rip, &mut insn);
            if n >= 2 && insn[0] == 0xcd {
                if let Some(d) = self.cur().vcpu.software_interrupt(insn[1]) {
                    frame.rip += 2;
                    return self.deliver(frame, d, "software interrupt");
                }
            }
        }
        // `int $0x80` has a DPL-3 gate, as Xen's fast path: straight to the guest's slot 0x80,
        // or #GP(0x402) if it registered none.
        if vector == SYSCALL_INT80 {
            return match self.cur().vcpu.software_interrupt(SYSCALL_INT80) {
                Some(d) => self.deliver(frame, d, "int $0x80"),
                None => {
                    // At the `int $0x80` itself, as Xen's `int80_slow_path`.
                    frame.rip = frame.rip.wrapping_sub(2);
                    self.bounce_exception(frame, vcpu::VECTOR_GP, Some(0x402))
                }
            };
        }
        if vector == VECTOR_NM {
            // The FPU is the guest's; #NM only comes from its virtual CR0.TS. Xen clears the
            // virtual TS and bounces the #NM to the guest's handler.
            fpu::set_task_switched(false);
            if !core::mem::replace(&mut self.cur().vcpu.cr0_ts, false) {
                return false; // a stale hardware TS: nothing for the guest to see
            }
        }
        if vector == vcpu::VECTOR_DB {
            // Where the guest's debugger finds why it stopped (Xen's `do_debug`).
            let hw = cpu::take_debug_status();
            let dr6 = &mut self.cur().priv_state.debugreg[6];
            *dr6 = emulate::merge_dr6(*dr6, hw);
        }
        let emulable = (vector == vcpu::VECTOR_GP && error_code == Some(0)) || vector == vcpu::VECTOR_UD;
        if emulable {
            let single_step = frame.rflags & vcpu::rflags::TF != 0;
            if let Some((resched, retired)) = self.emulate(frame, vector) {
                if single_step && retired {
                    // The #DB the CPU would have raised after the instruction, as Xen's
                    // emulators do (`retire.singlestep`): DR6.BS, then the guest's handler.
                    self.cur().priv_state.debugreg[6] |= emulate::DR6_BS;
                    return self.bounce_exception(frame, vcpu::VECTOR_DB, None) || resched;
                }
                return resched;
            }
        }
        self.bounce_exception(frame, vector, error_code)
    }

    /// The current domain shut down with `reason`. dom0's shutdown ends the machine, as Xen
    /// does with its hardware domain; a domU is torn down and the others go on. A reason
    /// recorded earlier (`SCHEDOP_shutdown_code`) is the one reported, as in Xen's
    /// `domain_shutdown`.
    fn shutdown_current(&mut self, reason: u32) -> bool {
        let id = self.current;
        let reason = u32::from(hypercalls::shutdown_reason(&mut self.cur().shutdown_code, reason as u8));
        let what = match reason {
            SHUTDOWN_POWEROFF => "poweroff",
            SHUTDOWN_REBOOT => "reboot",
            SHUTDOWN_CRASH => "crash",
            _ => "other",
        };
        log::info!("d{id}: shutdown requested: reason {reason} ({what})");
        if self.cur().privileged {
            let code = match reason {
                SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => exit_code::SUCCESS,
                _ => exit_code::FAILURE,
            };
            log::info!(
                "Hardware domain shut down: ending the machine ({}).",
                if code == exit_code::SUCCESS { "success" } else { "failure" }
            );
            cpu::qemu_exit(code);
        }
        self.destroy_domain(id);
        true
    }
}
