//! Domains and the machine that runs them: creation from a built image (registering its
//! frames with the PV MMU, its ports with the event channels, its vCPU with the scheduler),
//! context switching, timers, and teardown.
//!
//! The trap path (what a guest entry does) is in `guest_traps.rs`, the hypercall environment
//! in `machine_env.rs`. The policies themselves live in the host-tested library.

use crate::arch::x86_64::fpu::{self, FpuState};
use crate::arch::x86_64::gdt::MAX_CPUS;
use crate::arch::x86_64::{cpu, guest_entry, idt::TrapFrame, paging, smp};
use crate::memory::FRAMES;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::offset_of;
use core::sync::atomic::{compiler_fence, Ordering};
use hypercall_abi::event_channel::VIRQ_TIMER;
use hypercall_abi::shared_info::{SharedInfo, VcpuInfo};
use hypervisor::emulate::{DomainPolicy, PrivState};
use hypervisor::evtchn::{EventChannels, EvtchnHost};
use hypervisor::grant::{FramePool, GrantTables};
use hypervisor::guest_access::MachineAccess;
use hypervisor::mm::{FrameInfo, FrameTable};
use hypervisor::sched::Scheduler;
use hypervisor::vcpu::{self, VcpuState};

mod cpus;
mod create;
mod teardown;
pub use cpus::{lock_machine, MachineGuard};
pub use create::{inject_failure, InjectedFailure};

/// `SHUTDOWN_*` reasons.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;
/// The I/O APIC's register page (its architectural default address).
const IOAPIC_MFN: u64 = 0xfec00;
/// PV vCPUs start with a 10 ms periodic timer (raising VIRQ_TIMER once bound), as on Xen.
const DEFAULT_PERIOD_NS: u64 = 10_000_000;
/// Page-table entries released per teardown step (bounded work, as Xen's preemptible
/// `domain_relinquish_resources`).
const RELEASE_BUDGET: usize = 64;

/// Offsets in shared_info of the fields the hypervisor writes (vCPU 0's `vcpu_info`).
pub const UPCALL_PENDING: u64 = offset_of!(VcpuInfo, evtchn_upcall_pending) as u64;
/// `evtchn_upcall_mask`.
pub const UPCALL_MASK: u64 = offset_of!(VcpuInfo, evtchn_upcall_mask) as u64;
/// `arch.cr2`.
pub const VCPU_CR2: u64 = offset_of!(VcpuInfo, arch.cr2) as u64;
/// [`Machine::current`] of a CPU with no domain loaded (Xen's `DOMID_INVALID`).
pub const NO_DOMAIN: u16 = hypercall_abi::mm::DOMID_INVALID;

/// A PV domain with one vCPU.
pub struct Domain {
    /// Domain id (0 for dom0).
    pub id: u16,
    /// Name (from the config; `Domain-0` for dom0).
    pub name: String,
    /// Whether this is the privileged control domain.
    pub privileged: bool,
    /// Pseudo-physical to machine frame map, while the domain is being created, in frames of
    /// its own (`PageList`); given back once the domain is registered (the guest keeps its
    /// own copy).
    pub p2m: hypervisor::domain_layout::PageList,
    /// Pages the domain was built with (`max_pages`).
    pub max_pages: u64,
    /// Its `console_io` output waiting for the end of its line (domUs only).
    pub console_line: hypervisor::guest_console::LineBuffer,
    /// The vCPU's virtual state (trap table, callbacks, mode, root page tables).
    pub vcpu: VcpuState,
    /// Emulated privileged state (virtual CR2/CR4, debug registers, IOPL).
    pub priv_state: PrivState,
    /// What the emulator allows this domain.
    pub policy: DomainPolicy,
    /// Machine frame of the shared_info page.
    pub shared_info_mfn: u64,
    /// One-shot timer deadline (system time, ns).
    pub singleshot_ns: Option<u64>,
    /// Periodic timer period (ns).
    pub periodic_ns: Option<u64>,
    /// Next periodic expiry.
    pub next_periodic_ns: u64,
    /// When the periodic timer last fired (or was first armed): its phase.
    pub periodic_last_ns: u64,
    /// Blocked in `SCHEDOP_block`, `SCHEDOP_poll` or `hlt` until an event.
    pub blocked: bool,
    /// While blocked in `SCHEDOP_poll`: wake at this system time even without an event.
    pub poll_deadline: Option<u64>,
    /// While blocked in `SCHEDOP_poll`: the ports it named (see [`Domain::watches`]).
    pub poll_ports: Vec<u32>,
    /// Blocked in `SCHEDOP_poll` and counted in [`Machine::pollers`]: the count is given
    /// back exactly once, whatever the port list held (it may be empty).
    pub counted_poller: bool,
    /// Pauses by the control domain (`XEN_DOMCTL_pausedomain`) not yet undone (Xen's
    /// `controller_pause_count`): while it is not 0 the domain is not scheduled.
    pub pause_count: u8,
    /// The shutdown reason recorded by `SCHEDOP_shutdown_code` or the first shutdown
    /// (Xen's `shutdown_code`): a later shutdown, a crash included, reports it instead.
    pub shutdown_code: Option<u8>,
    /// Destroyed: never scheduled again (paused, its scheduler entry blocked), listed with
    /// `XEN_DOMINF_dying`, and torn down in bounded steps once no CPU has it loaded
    /// ([`Machine::dying`], `domain/teardown.rs`).
    pub dying: bool,
    /// How far its teardown has gone.
    pub teardown: teardown::Progress,
    /// The physical CPU the vCPU is pinned to (`cpus` in its config): its scheduler entry
    /// lives in that CPU's scheduler, and only that CPU ever loads its context.
    pub cpu: usize,
    /// The guest's FPU/SSE registers while it is not running.
    pub fpu: alloc::boxed::Box<FpuState>,
    /// Registers while not running.
    pub saved: TrapFrame,
}

impl Domain {
    /// Not to be scheduled: paused by the control domain, or dying.
    pub fn is_paused(&self) -> bool {
        self.pause_count > 0 || self.dying
    }

    /// Whether a raised `port` wakes this domain's poll: Xen's `evtchn_check_pollers`, where
    /// a one-port poll watches that port and a poll of none or several watches every port
    /// (`poll_evtchn = -1`).
    pub fn watches(&self, port: u32) -> bool {
        match self.poll_ports.as_slice() {
            [only] => *only == port,
            _ => true,
        }
    }
}

/// Live domains, indexed by id (ids are small and dense: dom0 and domUs from 1), so the
/// lookups on every hypervisor entry are a bounds check and a load. Boxed: a `Domain` is
/// several KiB (its virtual IDT alone is 4 KiB).
#[derive(Default)]
pub struct DomainTable {
    slots: Vec<Option<alloc::boxed::Box<Domain>>>,
    live: usize,
}

impl DomainTable {
    /// The domain `id`, if live.
    pub fn get(&self, id: &u16) -> Option<&Domain> {
        self.slots.get(*id as usize)?.as_deref()
    }

    /// The domain `id`, if live, mutably.
    pub fn get_mut(&mut self, id: &u16) -> Option<&mut Domain> {
        self.slots.get_mut(*id as usize)?.as_deref_mut()
    }

    /// Whether `id` is live.
    pub fn contains_key(&self, id: &u16) -> bool {
        self.get(id).is_some()
    }

    /// Adds (or replaces) domain `id`.
    pub fn insert(&mut self, id: u16, d: alloc::boxed::Box<Domain>) {
        let i = id as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(d).is_none() {
            self.live += 1;
        }
    }

    /// Removes domain `id`.
    pub fn remove(&mut self, id: &u16) -> Option<alloc::boxed::Box<Domain>> {
        let d = self.slots.get_mut(*id as usize)?.take();
        if d.is_some() {
            self.live -= 1;
        }
        d
    }

    /// Whether no domain is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Live domains in id order.
    pub fn values(&self) -> impl Iterator<Item = &Domain> {
        self.slots.iter().filter_map(|s| s.as_deref())
    }

    /// Live domains in id order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Domain> {
        self.slots.iter_mut().filter_map(|s| s.as_deref_mut())
    }

    /// The live domain with the lowest id at or above `id`.
    pub fn first_from(&self, id: u16) -> Option<&Domain> {
        self.slots.iter().skip(id as usize).find_map(|s| s.as_deref())
    }
}

/// The event-channel core's view of the machine: shared_info pages and wake-ups.
#[derive(Default)]
pub struct EventHost {
    /// Each domain's shared_info frame, indexed by id (ids are small and dense, as in
    /// [`DomainTable`]): every send and poll looks one up.
    shared_info: Vec<Option<u64>>,
    /// Domains kicked since the last check (woken by the trap path).
    pub kicked: Vec<u16>,
    /// Ports that became pending since the last pollers check, as (domain, port): only a
    /// poller of that domain watching that port can have been woken (Xen's
    /// `evtchn_check_pollers(d, port)`, from `evtchn_set_pending`), so the check looks up
    /// those domains rather than every one.
    raised: heapless::Vec<(u16, u32), RAISED_SLOTS>,
    /// More ports were raised than `raised` holds: the next check looks at every poller.
    raised_overflow: bool,
}

/// Raised ports remembered one by one between two pollers checks (one hypercall's worth in
/// practice: a send raises one port; a global VIRQ or a teardown may raise a few more).
const RAISED_SLOTS: usize = 8;

impl EventHost {
    /// Records `dom`'s shared_info frame (or forgets it with `None`).
    pub fn set_shared_info(&mut self, dom: u16, mfn: Option<u64>) {
        let i = dom as usize;
        if self.shared_info.len() <= i {
            self.shared_info.resize(i + 1, None);
        }
        self.shared_info[i] = mfn;
    }

    /// Whether a port became pending since the last pollers check.
    pub fn any_raised(&self) -> bool {
        !self.raised.is_empty() || self.raised_overflow
    }

    fn forget_raised(&mut self) {
        self.raised.clear();
        self.raised_overflow = false;
    }
}

impl EvtchnHost for EventHost {
    fn shared_info(&mut self, dom: u16) -> Option<&mut SharedInfo> {
        let mfn = (*self.shared_info.get(dom as usize)?)?;
        // SAFETY: the frame is a hypervisor-owned page in the direct map, shared only with
        // its domain. That domain may be running on another CPU meanwhile: the event-channel
        // code changes the words it shares with the guest only with atomic operations
        // (`evtchn::shared_word`), as the guest does; SharedInfo is plain data of at most
        // one page.
        Some(unsafe { &mut *(paging::phys_to_virt(mfn << 12) as *mut SharedInfo) })
    }

    fn kick(&mut self, dom: u16, _vcpu: u32) {
        if !self.kicked.contains(&dom) {
            self.kicked.push(dom);
        }
    }

    fn port_raised(&mut self, dom: u16, port: u32) {
        if self.raised.push((dom, port)).is_err() {
            self.raised_overflow = true;
        }
    }
}

/// Whether one of `ports` is pending in the shared_info page at `shared_info_mfn`.
fn any_pending(mem: &paging::DirectMap, shared_info_mfn: u64, ports: &[u32]) -> bool {
    let base = (shared_info_mfn << 12) + offset_of!(SharedInfo, evtchn_pending) as u64;
    // A port beyond the bitmap is never read (the callers pass checked ports only).
    ports.iter().filter(|&&p| p < 4096).any(|&p| {
        let word = mem.read_u64(base + (p as u64 / 64) * 8).unwrap_or(0);
        word & (1 << (p % 64)) != 0
    })
}

/// What a hypercall may assume about the running guest's page tables.
///
/// At entry every flush an earlier hypercall asked for has been applied, so the TLB agrees
/// with the tables until this hypercall changes them. Reaching the MMU, the grant tables,
/// the vCPU or domain control may change them, with the flush deferred to the end of the
/// hypercall: from then on the CPU may hold stale translations (a writable one to a frame
/// just validated as a page table, say), and copies take the software walk, which reads the
/// tables as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestTables {
    /// No hypercall is running.
    Outside,
    /// Nothing changed yet; whether CR3 holds the tables is asked at the first copy.
    Unchanged,
    /// Nothing changed, CR3 holds the guest's current tables and no paging work is pending:
    /// copies may go through them.
    Loaded,
    /// Copies walk the tables, and the exit runs the paging epilogue: the hypercall reached
    /// something that may change page tables, or CR3 did not hold them at the first copy.
    Walk,
}

/// Gives `mfns` back to the frame allocator, after a flush of every CPU's TLB if there are
/// any (see [`Machine::return_released_frames`]). Returns how many it took.
fn free_to_allocator(mfns: impl IntoIterator<Item = u64>) -> usize {
    let mut mfns = mfns.into_iter().peekable();
    if mfns.peek().is_none() {
        return 0;
    }
    smp::flush_all_tlbs();
    let mut frames = FRAMES.lock();
    mfns.filter(|&mfn| frames.as_mut().is_some_and(|f| f.free(mfn).is_ok())).count()
}

/// Everything the hypervisor keeps about the running machine.
pub struct Machine {
    /// Live domains by id.
    pub domains: DomainTable,
    /// Free frames once the machine was set up, before any domain: when the last domain is
    /// gone every frame must be back (the shutdown line compares the two).
    pub frames_free_at_start: u64,
    /// Heap bytes in use at the same moment (reported beside the heap in use at shutdown).
    pub heap_in_use_at_start: usize,
    /// Domains blocked in `SCHEDOP_poll` (those with `counted_poller`, whatever their port
    /// list): 0 lets every exit skip the pollers check.
    pub pollers: u32,
    /// The domain whose context is loaded on the CPU holding the machine lock ([`NO_DOMAIN`]
    /// if none), copied from `cpu_current` by [`Machine::enter_cpu`]; only
    /// [`Machine::set_current`] changes it, keeping both in step.
    pub current: u16,
    /// The CPU holding the machine lock.
    pub cpu: usize,
    /// Each CPU's loaded domain.
    cpu_current: [u16; MAX_CPUS],
    /// CPUs asked to re-run their scheduling decision at their next entry (a domain of theirs
    /// woke, or their running domain was paused or is dying); an IPI makes that entry soon.
    resched_pending: [bool; MAX_CPUS],
    /// CPUs executing guest code of `cpu_current` (Xen's `is_running`): set as a CPU leaves
    /// for its guest, cleared as it enters. An idle CPU's loaded domain is not running.
    guest_running: [bool; MAX_CPUS],
    /// Destroyed domains whose teardown has not finished (in the order they died).
    dying: Vec<u16>,
    /// Domains torn down since a `destroydomain` call began waiting for them, until that
    /// call sees it ([`Machine::take_reaped`]).
    reaped: Vec<u16>,
    /// By CPU: the domains `pausedomain` calls of its current hypercall (a multicall may
    /// hold several) wait for: each was running on another CPU, and the hypercall returns
    /// once none of them runs while still paused. At most one per other CPU can be running.
    pub pause_waits: [heapless::Vec<u16, MAX_CPUS>; MAX_CPUS],
    /// By CPU: its current hypercall left work for its exit path (`pause_waits`, a
    /// reschedule of its own CPU): one test on every exit instead of one per kind.
    pub exit_work: [bool; MAX_CPUS],
    /// Direct-map accessor.
    pub mem: paging::DirectMap,
    /// What the running hypercall may assume about the guest's page tables: whether guest
    /// copies may go through them (`guest_copy`), and whether the hypercall left paging work.
    pub guest_tables: core::cell::Cell<GuestTables>,
    /// The PV MMU's per-frame state.
    pub frames: FrameTable,
    /// Event channels of every domain.
    pub events: EventChannels,
    /// shared_info pages and wake-ups for `events`.
    pub event_host: EventHost,
    /// One credit scheduler per online CPU: domains are pinned (`Domain::cpu`).
    pub scheds: Vec<Scheduler>,
    /// Grant tables of every domain.
    pub grants: GrantTables,
    /// Where grant tables get their frames.
    pub grant_pool: AllocatorPool,
    /// The hypervisor's L4 slots 256-271, installed in every guest L4.
    pub hypervisor_slots: [u64; 16],
    /// TSC frequency for system time.
    pub tsc_hz: u64,
    /// TSC at boot (system time 0).
    pub tsc_boot: u64,
    /// `vcpu::tsc_scale(tsc_hz)`, published on every switch: computed once.
    tsc_scale: (u32, i8),
    /// The hypervisor's command line (for `XENVER_commandline`).
    pub cmdline: heapless::String<1024>,
    /// Unix time at system time 0, from the CMOS clock.
    pub wallclock_at_boot: u64,
}

/// Why a built domain could not be brought up.
#[derive(Debug)]
pub struct CreateError(pub &'static str, pub hypercall_abi::errno::Errno);

impl core::fmt::Display for CreateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.0, self.1)
    }
}

impl Machine {
    /// An empty machine.
    pub fn new(
        mem: paging::DirectMap,
        ram_top: u64,
        tsc_hz: u64,
        cmdline: heapless::String<1024>,
        wallclock_at_boot: u64,
        cpus: usize,
    ) -> Self {
        // First the frame table: it maps the M2P into the hypervisor's slot 256, which the
        // template read below carries into every guest L4.
        let mut frames = guest_visible_frame_table(ram_top >> 12);
        // The local APIC (the hypervisor's timer) and the I/O APIC are the hypervisor's, as on
        // Xen: even dom0 may not map them.
        frames.reserve_hypervisor_io(crate::arch::x86_64::apic::base_mfn());
        frames.reserve_hypervisor_io(IOAPIC_MFN);
        let hv_l4 = paging::hypervisor_pml4_phys();
        let mut hypervisor_slots = [0u64; 16];
        for (i, s) in hypervisor_slots.iter_mut().enumerate() {
            *s = mem.read_u64(hv_l4 + (256 + i as u64) * 8).unwrap_or(0);
        }
        let frames_free_at_start = FRAMES.lock().as_ref().map_or(0, |f| f.free_frames());
        Self {
            domains: DomainTable::default(),
            frames_free_at_start,
            heap_in_use_at_start: hypervisor::heap::in_use(),
            pollers: 0,
            current: NO_DOMAIN,
            cpu: 0,
            cpu_current: [NO_DOMAIN; MAX_CPUS],
            resched_pending: [false; MAX_CPUS],
            guest_running: [false; MAX_CPUS],
            dying: Vec::new(),
            reaped: Vec::new(),
            pause_waits: Default::default(),
            exit_work: [false; MAX_CPUS],
            guest_tables: core::cell::Cell::new(GuestTables::Outside),
            frames,
            mem,
            events: EventChannels::default(),
            event_host: EventHost::default(),
            scheds: (0..cpus.clamp(1, MAX_CPUS)).map(|_| Scheduler::new(1_000_000_000 / crate::TICK_HZ)).collect(),
            grants: GrantTables::default(),
            grant_pool: AllocatorPool,
            hypervisor_slots,
            tsc_hz,
            tsc_boot: cpu::rdtsc(),
            tsc_scale: vcpu::tsc_scale(tsc_hz),
            cmdline,
            wallclock_at_boot,
        }
    }

    pub(crate) fn ns_at(&self, tsc: u64) -> u64 {
        vcpu::tsc_ticks_to_ns(tsc.wrapping_sub(self.tsc_boot), self.tsc_hz)
    }

    /// Xen system time: nanoseconds since boot.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(cpu::rdtsc())
    }

    /// The current domain. Panics only if the hypervisor's own bookkeeping is broken.
    pub fn cur(&mut self) -> &mut Domain {
        self.domains.get_mut(&self.current).expect("the current domain is live")
    }

    /// Reads a byte of `dom`'s shared_info.
    pub fn shared_byte(&self, dom: u16, offset: u64) -> u8 {
        let mut b = [0u8];
        if let Some(d) = self.domains.get(&dom) {
            self.mem.read_bytes((d.shared_info_mfn << 12) + offset, &mut b);
        }
        b[0]
    }

    /// Writes bytes into `dom`'s shared_info.
    pub fn set_shared_bytes(&mut self, dom: u16, offset: u64, bytes: &[u8]) {
        if let Some(d) = self.domains.get(&dom) {
            let at = (d.shared_info_mfn << 12) + offset;
            self.mem.write_bytes(at, bytes);
        }
    }

    /// Publishes system time and the wall clock in `dom`'s shared_info (digest §3.9), with
    /// the seqlock-style version bumps guests rely on.
    pub fn update_time(&mut self, dom: u16) {
        let (mul, shift) = self.tsc_scale;
        let tsc = cpu::rdtsc();
        let now = self.ns_at(tsc);
        let wallclock = self.wallclock_at_boot;
        // Through the page's fields, not byte copies: this runs on every context switch.
        let Some(si) = self.event_host.shared_info(dom) else { return };
        let time = &mut si.vcpu_info[0].time;
        let odd = time.version | 1;
        // Odd: update in progress. The guest may be reading on another CPU: the stores stay
        // in this order (x86 keeps stores in order; the fences keep the compiler from
        // reordering), so it sees an odd or changed version around a torn read and retries.
        time.version = odd;
        compiler_fence(Ordering::Release);
        time.tsc_timestamp = tsc;
        time.system_time = now;
        time.tsc_to_system_mul = mul;
        time.tsc_shift = shift;
        // XEN_PVCLOCK_TSC_STABLE_BIT: the TSCs of all CPUs are taken to be synchronised (as
        // QEMU's are, and invariant TSCs on one board): this page may be stamped on another
        // CPU than the one the guest reads it on.
        time.flags = 1;
        time.pad1 = [0; 2];
        compiler_fence(Ordering::Release);
        time.version = odd.wrapping_add(1); // even: consistent
        si.wc_version = 2;
        si.wc_sec = wallclock as u32;
        si.wc_nsec = 0;
        si.wc_sec_hi = (wallclock >> 32) as u32;
    }

    /// Raises VIRQ_TIMER in every domain whose one-shot or periodic timer expired.
    pub fn run_timers(&mut self) {
        let now = self.now_ns();
        // Not a bounded list: a domain whose timer fired must get its VIRQ this tick, however
        // many fire (a bound that broke out of the loop would starve the domains after it).
        let mut expired: Vec<u16> = Vec::new();
        for d in self.domains.values_mut() {
            let mut fire = false;
            if d.singleshot_ns.is_some_and(|t| hypervisor::vcpu::deadline_passed(t, now)) {
                d.singleshot_ns = None;
                fire = true;
            }
            if let Some(period) = d.periodic_ns {
                if d.next_periodic_ns <= now {
                    // Catch up without a burst: the next expiry is one period from now.
                    d.next_periodic_ns = now.saturating_add(period); // guest-chosen period
                    d.periodic_last_ns = now;
                    fire = true;
                }
            }
            // Xen's times are signed: a timeout of 2^63 or more is long past.
            if d.blocked && d.poll_deadline.is_some_and(|t| hypervisor::vcpu::deadline_passed(t, now)) {
                // A poll timed out: wake the domain without an event.
                d.poll_deadline = None;
                if !self.event_host.kicked.contains(&d.id) {
                    self.event_host.kicked.push(d.id);
                }
            }
            if fire {
                expired.push(d.id);
            }
        }
        for id in expired {
            self.fire_timer(id);
        }
    }

    /// Stamps `dom`'s time and raises its VIRQ_TIMER (dropped if unbound, as in Xen).
    pub fn fire_timer(&mut self, dom: u16) {
        self.update_time(dom);
        self.events.raise_vcpu_virq(&mut self.event_host, dom, 0, VIRQ_TIMER);
    }

    /// Switches the CPU to `next`: saves the current domain's registers (if it still lives)
    /// and loads `next`'s. Staying on the same domain changes nothing.
    pub fn switch_to(&mut self, frame: &mut TrapFrame, next: u16) {
        if next == self.current && self.domains.contains_key(&next) {
            return;
        }
        if let Some(cur) = self.domains.get_mut(&self.current) {
            cur.saved = frame.clone();
            crate::guest_traps::refresh_segment_state(&mut cur.vcpu);
            fpu::save(&mut cur.fpu);
        }
        self.set_current(next);
        self.load_context(frame);
        let _ = self.progress_teardowns();
    }

    /// Loads the current domain's saved registers into `frame`, with its page tables and
    /// segment bases, and refreshes its time.
    pub fn load_context(&mut self, frame: &mut TrapFrame) {
        let d = self.cur();
        *frame = d.saved.clone();
        guest_entry::load_page_tables(d.vcpu.current_l4());
        crate::guest_traps::apply_segment_state(&d.vcpu);
        fpu::restore(&d.fpu);
        fpu::set_task_switched(d.vcpu.cr0_ts);
        cpu::set_guest_tsd(d.priv_state.cr4 & hypervisor::emulate::cr4::TSD != 0);
        let id = self.current;
        self.update_time(id);
    }

    /// Returns to the allocator every frame a guest freed whose last reference has gone (the
    /// PV MMU's deferred free). Returns how many. The TLB is flushed first: not every path
    /// that drops a last reference asks for a flush (a grant unmap does not, and a guest may
    /// still hold a translation it removed without one), and no frame may reach the allocator
    /// while this CPU could still reach it.
    pub fn return_released_frames(&mut self) -> usize {
        if !self.frames.has_released() {
            return 0;
        }
        let released = self.frames.take_released();
        free_to_allocator(released)
    }

    /// Returns to the allocator every frame the grant tables no longer need (dead domains'
    /// table frames, dead granters' frames whose last mapping went). Returns how many.
    pub fn reap_grant_frames(&mut self) -> usize {
        let reaped = self.grants.reap(&mut self.frames);
        free_to_allocator(reaped)
    }
}

/// Publishes the machine and lets every CPU run its domains. Never returns.
pub fn start(machine: Machine) -> ! {
    if machine.domains.is_empty() {
        log::info!("No domain to run: shutting down.");
        cpu::qemu_exit(hypervisor::exit_code::SUCCESS);
    }
    *lock_machine() = Some(machine);
    smp::release_aps();
    crate::guest_traps::run_idle_cpu()
}

/// The PV MMU's frame table with its M2P in page-aligned frames mapped read-only for guests
/// at `MACH2PHYS_VIRT_START` (Linux-style guests read it directly), and its per-frame
/// records in frames too (the heap is 16 MiB; the records of 4 GiB of RAM are 20 MiB). If
/// that memory cannot be had, the table falls back to the heap and the M2P stays private to
/// the hypervisor (guests then fault reading it), and we say so.
fn guest_visible_frame_table(max_mfn: u64) -> FrameTable {
    let m2p_frames = (max_mfn * 8).div_ceil(4096);
    let record_frames = (max_mfn * core::mem::size_of::<FrameInfo>() as u64).div_ceil(4096);
    let take = |n| FRAMES.lock().as_mut().and_then(|f| f.alloc_contiguous(n, 1));
    let (m2p_first, records_first) = (take(m2p_frames), take(record_frames));
    let (Some(m2p_first), Some(records_first)) = (m2p_first, records_first) else {
        // Whichever block was had goes back (never used, never mapped: no flush needed).
        let mut frames = FRAMES.lock();
        for (first, n) in [(m2p_first, m2p_frames), (records_first, record_frames)] {
            for mfn in first.into_iter().flat_map(|first| first..first + n) {
                let _ = frames.as_mut().map(|f| f.free(mfn));
            }
        }
        log::warn!("no room for a guest-visible M2P and the frame records: both on the heap instead");
        return FrameTable::new(max_mfn);
    };
    // SAFETY: the frames were just taken from the allocator, are contiguous, page-aligned and
    // inside the direct map; the frame table becomes their only user for the machine's life.
    let m2p = unsafe {
        core::slice::from_raw_parts_mut(paging::phys_to_virt(m2p_first << 12) as *mut u64, (m2p_frames * 512) as usize)
    };
    // SAFETY: as above; `MaybeUninit` records may hold any bytes, and FrameInfo's alignment
    // (at most 8) divides a page.
    let records = unsafe {
        core::slice::from_raw_parts_mut(
            paging::phys_to_virt(records_first << 12) as *mut core::mem::MaybeUninit<FrameInfo>,
            (record_frames * 4096) as usize / core::mem::size_of::<FrameInfo>(),
        )
    };
    let table = FrameTable::with_provided_storage(max_mfn, m2p, records);
    if !paging::map_m2p(m2p_first, m2p_frames, || FRAMES.lock().as_mut().and_then(|f| f.alloc())) {
        log::warn!("could not map the M2P for guests");
    }
    table
}

/// Grant-table frames come straight from the frame allocator (they are hypervisor pages
/// shared with their domain).
pub struct AllocatorPool;

impl FramePool for AllocatorPool {
    fn alloc_frame(&mut self) -> Option<u64> {
        FRAMES.lock().as_mut()?.alloc()
    }

    fn free_frame(&mut self, mfn: u64) {
        if let Some(f) = FRAMES.lock().as_mut() {
            let _ = f.free(mfn);
        }
    }
}
