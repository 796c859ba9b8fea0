//! Hypercall dispatch: one table of every hypercall, decoding raw registers into typed
//! requests and answering with Xen's return values (negative errno on failure).
//!
//! The handlers are generic over [`Env`], the services of the calling domain (guest memory,
//! console, timers), so the whole dispatcher is tested on the host against a mock domain.

pub mod domctl;
mod evtchn;
mod grant;
mod handlers;
pub mod memory;
mod mmu;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod vcpu_ctx;

pub use domctl::{DomainControl, DomainInfo};

/// Xen's `d->shutdown_code` rule, for `SCHEDOP_shutdown_code` and every shutdown: the first
/// reason given is recorded (255 is Xen's `SHUTDOWN_CODE_INVALID`: recording it records
/// nothing), and a shutdown reports the recorded reason, not its own. Returns the reason
/// to report.
pub fn shutdown_reason(recorded: &mut Option<u8>, reason: u8) -> u8 {
    if recorded.is_none() && reason != u8::MAX {
        *recorded = Some(reason);
    }
    recorded.unwrap_or(reason)
}
use hypercall_abi::errno::Errno;
use hypercall_abi::hypercall as nr;

/// Sub-operation numbers used by the handlers (Xen's public headers; the names follow them).
pub mod op {
    /// `CONSOLEIO_write`.
    pub const CONSOLEIO_WRITE: u64 = 0;
    /// `CONSOLEIO_read`.
    pub const CONSOLEIO_READ: u64 = 1;
    /// `XENVER_version`.
    pub const XENVER_VERSION: u64 = 0;
    /// `XENVER_extraversion`.
    pub const XENVER_EXTRAVERSION: u64 = 1;
    /// `XENVER_compile_info`.
    pub const XENVER_COMPILE_INFO: u64 = 2;
    /// `XENVER_capabilities`.
    pub const XENVER_CAPABILITIES: u64 = 3;
    /// `XENVER_changeset`.
    pub const XENVER_CHANGESET: u64 = 4;
    /// `XENVER_platform_parameters`.
    pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
    /// `XENVER_get_features`.
    pub const XENVER_GET_FEATURES: u64 = 6;
    /// `XENVER_pagesize`.
    pub const XENVER_PAGESIZE: u64 = 7;
    /// `XENVER_guest_handle`.
    pub const XENVER_GUEST_HANDLE: u64 = 8;
    /// `XENVER_commandline`.
    pub const XENVER_COMMANDLINE: u64 = 9;
    /// `XENVER_build_id`.
    pub const XENVER_BUILD_ID: u64 = 10;
    /// `SCHEDOP_yield`.
    pub const SCHEDOP_YIELD: u64 = 0;
    /// `SCHEDOP_block`.
    pub const SCHEDOP_BLOCK: u64 = 1;
    /// `SCHEDOP_shutdown`.
    pub const SCHEDOP_SHUTDOWN: u64 = 2;
    /// `SCHEDOP_poll`.
    pub const SCHEDOP_POLL: u64 = 3;
    /// `SCHEDOP_remote_shutdown`.
    pub const SCHEDOP_REMOTE_SHUTDOWN: u64 = hypercall_abi::sched::SCHEDOP_REMOTE_SHUTDOWN as u64;
    /// `SCHEDOP_shutdown_code`.
    pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
    /// Most ports one `SCHEDOP_poll` may name (Xen's limit).
    pub const MAX_POLL_PORTS: u64 = 128;
    /// `XENMEM_increase_reservation`.
    pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
    /// `XENMEM_populate_physmap`.
    pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
    /// `XENMEM_maximum_ram_page`.
    pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
    /// `XENMEM_current_reservation`.
    pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
    /// `XENMEM_maximum_reservation`.
    pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
    /// `XENMEM_memory_map`.
    pub const XENMEM_MEMORY_MAP: u64 = 9;
    /// `MEMOP_CMD_MASK`: the low bits of `memory_op`'s command.
    pub const MEMOP_CMD_MASK: u64 = 0x3f;
    /// `VCPUOP_is_up`.
    pub const VCPUOP_IS_UP: u64 = 3;
    /// `VCPUOP_set_periodic_timer`.
    pub const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
    /// `VCPUOP_stop_periodic_timer`.
    pub const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
    /// `VCPUOP_set_singleshot_timer`.
    pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
    /// `VCPUOP_stop_singleshot_timer`.
    pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
    /// `VCPU_SSHOTTMR_future`.
    pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;
    /// `DOMID_SELF`.
    pub const DOMID_SELF: u16 = 0x7ff0;
}

/// What a hypercall asks of the caller's scheduler after it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put this value in `rax` and resume the guest.
    Return(i64),
    /// Re-issue the same hypercall with these argument registers (Xen's continuation): the
    /// guest's `rip` moves back over the `syscall` so the next run continues the work.
    Continue([u64; 5]),
    /// `rax = 0`, then let other work run.
    Yield,
    /// `rax = 0`, then sleep until an event (timer) is pending.
    Block,
    /// `SCHEDOP_poll` found nothing pending: `rax = 0`, then sleep (leaving the event mask
    /// alone) until an event is raised or system time reaches the deadline, if any.
    Poll(Option<u64>),
    /// The domain asked to shut down with this `SHUTDOWN_*` reason.
    Shutdown(u32),
    /// A multicall entry yielded, blocked or polled with entries left: do as `Sleep` says,
    /// and when the vCPU next runs, re-issue the multicall with these argument registers
    /// (Xen's `hypercall_preempt_check` after such an entry makes a continuation).
    SleepThenContinue(Sleep, [u64; 5]),
}

/// The outcomes that give up the CPU with the domain alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// As [`Outcome::Yield`].
    Yield,
    /// As [`Outcome::Block`].
    Block,
    /// As [`Outcome::Poll`].
    Poll(Option<u64>),
}

impl Outcome {
    /// The outcome as a [`Sleep`], if it is one.
    pub fn as_sleep(self) -> Option<Sleep> {
        match self {
            Outcome::Yield => Some(Sleep::Yield),
            Outcome::Block => Some(Sleep::Block),
            Outcome::Poll(deadline) => Some(Sleep::Poll(deadline)),
            _ => None,
        }
    }
}

impl From<Sleep> for Outcome {
    fn from(s: Sleep) -> Self {
        match s {
            Sleep::Yield => Outcome::Yield,
            Sleep::Block => Outcome::Block,
            Sleep::Poll(deadline) => Outcome::Poll(deadline),
        }
    }
}

/// Facts about the calling domain.
#[derive(Clone, Copy, Debug)]
pub struct DomainFacts {
    /// Domain id.
    pub id: u16,
    /// Pages the domain has.
    pub nr_pages: u64,
    /// Pages it may have.
    pub max_pages: u64,
    /// Whether it is the privileged control domain (dom0).
    pub privileged: bool,
    /// Highest machine frame number.
    pub max_mfn: u64,
}

/// The services a hypercall needs from the hypervisor, for one calling vCPU.
pub trait Env {
    /// Copies guest memory at `va`; `Err(EFAULT)` if any byte is inaccessible.
    fn copy_from_guest(&self, va: u64, out: &mut [u8]) -> Result<(), Errno>;
    /// Copies into guest memory at `va`; writes nothing on `Err(EFAULT)`.
    fn copy_to_guest(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno>;
    /// Writes guest console output.
    fn console_write(&mut self, bytes: &[u8]);
    /// Reads pending console input; returns bytes read.
    fn console_read(&mut self, out: &mut [u8]) -> usize;
    /// Facts about the caller.
    fn domain(&self) -> DomainFacts;
    /// Xen system time in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Arms (`Some(deadline)`) or cancels the one-shot timer.
    fn set_singleshot_timer(&mut self, deadline_ns: Option<u64>);
    /// Arms (`Some(period)`) or stops the periodic timer.
    fn set_periodic_timer(&mut self, period_ns: Option<u64>);
    /// The hypervisor's own command line.
    fn hypervisor_cmdline(&self) -> &str;
    /// The calling vCPU's virtual CPU state.
    fn vcpu(&mut self) -> &mut crate::vcpu::VcpuState;
    /// Reads the running vCPU's segment bases and data selectors back from the CPU into
    /// [`vcpu`](Self::vcpu) (the guest changes them itself), before they are read or changed.
    fn refresh_segment_state(&mut self) {}
    /// Loads the vCPU's data selectors and segment bases into the CPU after a hypercall
    /// changed them (see [`refresh_segment_state`](Self::refresh_segment_state)).
    fn apply_segment_bases(&mut self);
    /// `SCHEDOP_shutdown_code`: the caller's next shutdown reports `code`, whatever reason
    /// it is made with, unless a code was recorded already (see [`shutdown_reason`]).
    fn record_shutdown_code(&mut self, _code: u8) {}
    /// The machine's domain management, for `domctl` (`None`: not offered).
    fn domain_control(&mut self) -> Option<&mut dyn DomainControl> {
        None
    }
    /// Whether domain `id` (not `DOMID_SELF`) is paused by the control domain (its pause count
    /// is not 0), which lets the control domain reset its event channels.
    fn paused_by_controller(&self, _id: u16) -> bool {
        false
    }
    /// What the memory-statistics ops report of domain `id` (not the caller), if it exists.
    fn domain_facts_of(&self, _id: u16) -> Option<DomainFacts> {
        None
    }
    /// Records the ports a `SCHEDOP_poll` waits on, so that an event on one of them wakes the
    /// vCPU even when it raises no upcall (Xen's pollers check).
    fn set_poll_ports(&mut self, _ports: &[u32]) {}
    /// The caller's `VcpuPaging::work` (table entries validated or released so far), which
    /// a multicall reads between entries to bound one hypervisor entry's work.
    fn paging_work(&self) -> u64 {
        0
    }
    /// Whether the caller's vCPU has tables waiting on its release stack
    /// (`VcpuPaging::releasing`), which MMU and grant hypercalls finish first.
    fn page_releases_pending(&self) -> bool {
        false
    }
    /// Makes page-table work inside the calls that follow stop when the caller's
    /// `VcpuPaging::work` reaches `end` (`VcpuPaging::batch_end`); `None` lifts the limit.
    /// A multicall sets it so that its calls share one budget.
    fn limit_paging_work(&mut self, _end: Option<u64>) {}
    /// Sets the vCPU's virtual IOPL (`PHYSDEVOP_set_iopl`); `false` if not supported here.
    fn set_virtual_iopl(&mut self, _iopl: u8) -> bool {
        false
    }
    /// The event channels, shared_info access and wake-ups for the calling domain, or `None`
    /// if event channels are unavailable (then `event_channel_op` answers `-ENOSYS`).
    fn events(&mut self) -> Option<crate::evtchn::EventAccess<'_>>;
    /// The PV MMU for the calling domain and vCPU (frame table, page-table memory, the
    /// vCPU's roots and pending TLB/CR3 work, see `crate::mm`), or `None` if it is
    /// unavailable (then the MMU hypercalls answer `-ENOSYS`).
    fn mmu(&mut self) -> Option<crate::mm::MmuAccess<'_>>;
    /// `[va, va + len)` resolved for writing by the current domain (see
    /// [`crate::guest_access::GuestSpan`]), or `None` if it cannot be (or the environment
    /// has no machine frames behind guest memory): callers then go through
    /// [`copy_to_guest`](Self::copy_to_guest) piece by piece.
    fn guest_span_for_write(&self, _va: u64, _len: usize) -> Option<crate::guest_access::GuestSpan> {
        None
    }
    /// Gives domain `id` (the caller, or one the control domain names) `2^order` new frames,
    /// contiguous, aligned to their size and zeroed, for a reservation that grows (Xen's
    /// `alloc_domheap_pages` and `assign_pages`): the first one, or `None` if that would take
    /// the domain past its `max_pages`, it is dying, or no such run is free.
    fn take_new_frames(&mut self, _id: u16, _order: u32) -> Option<u64> {
        None
    }
    /// The caller's virtual privileged state (control and debug registers, virtual IOPL), or
    /// `None` if unavailable (then the debug-register hypercalls answer `-ENOSYS`).
    fn priv_state(&mut self) -> Option<&mut crate::emulate::PrivState> {
        None
    }
    /// The grant tables with the calling domain's MMU (see `crate::grant` for what the kernel
    /// must build), or `None` if unavailable (then `grant_table_op` answers `-ENOSYS`).
    fn grants(&mut self) -> Option<crate::grant::GrantAccess<'_>> {
        None
    }
    /// Whether [`Self::grants`] would give the grant tables (without building the access).
    fn has_grants(&mut self) -> bool {
        self.grants().is_some()
    }
    /// Runs the `count` `gnttab_copy` requests `span` holds
    /// ([`GrantAccess::copy_span`](crate::grant::GrantAccess::copy_span)); `None` if the grant
    /// tables are unavailable. The machine overrides it to run the batch over its own memory
    /// type, so that the per-request memory accesses need no indirect call.
    fn copy_grants(&mut self, span: &crate::guest_access::GuestSpan, count: usize) -> Option<bool> {
        self.grants().map(|mut grants| grants.copy_span(span, count))
    }
}

/// One entry of the hypercall table.
struct Entry {
    name: &'static str,
    handler: fn(&mut dyn Env, [u64; 5]) -> Outcome,
}

const fn entry(name: &'static str, handler: fn(&mut dyn Env, [u64; 5]) -> Outcome) -> Option<Entry> {
    Some(Entry { name, handler })
}

/// The hypercall table: every number we implement, once. Absent numbers answer `-ENOSYS`.
static TABLE: [Option<Entry>; nr::NR_HYPERCALLS as usize] = {
    let mut t = [const { None }; nr::NR_HYPERCALLS as usize];
    t[nr::SET_TRAP_TABLE as usize] = entry("set_trap_table", vcpu_ctx::set_trap_table);
    t[nr::STACK_SWITCH as usize] = entry("stack_switch", vcpu_ctx::stack_switch);
    t[nr::SET_CALLBACKS as usize] = entry("set_callbacks", vcpu_ctx::set_callbacks);
    t[nr::FPU_TASKSWITCH as usize] = entry("fpu_taskswitch", vcpu_ctx::fpu_taskswitch);
    t[nr::SET_SEGMENT_BASE as usize] = entry("set_segment_base", vcpu_ctx::set_segment_base);
    t[nr::CALLBACK_OP as usize] = entry("callback_op", vcpu_ctx::callback_op);
    t[nr::SET_DEBUGREG as usize] = entry("set_debugreg", vcpu_ctx::set_debugreg);
    t[nr::GET_DEBUGREG as usize] = entry("get_debugreg", vcpu_ctx::get_debugreg);
    t[nr::SCHED_OP_COMPAT as usize] = entry("sched_op_compat", handlers::sched_op_compat);
    t[nr::MEMORY_OP as usize] = entry("memory_op", memory::memory_op);
    t[nr::MULTICALL as usize] = entry("multicall", handlers::multicall);
    t[nr::SET_TIMER_OP as usize] = entry("set_timer_op", handlers::set_timer_op);
    t[nr::XEN_VERSION as usize] = entry("xen_version", handlers::xen_version);
    t[nr::CONSOLE_IO as usize] = entry("console_io", handlers::console_io);
    t[nr::VCPU_OP as usize] = entry("vcpu_op", handlers::vcpu_op);
    t[nr::SCHED_OP as usize] = entry("sched_op", handlers::sched_op);
    t[nr::PHYSDEV_OP as usize] = entry("physdev_op", handlers::physdev_op);
    t[nr::DOMCTL as usize] = entry("domctl", domctl::domctl);
    t[nr::MMU_UPDATE as usize] = entry("mmu_update", mmu::mmu_update);
    t[nr::UPDATE_VA_MAPPING as usize] = entry("update_va_mapping", mmu::update_va_mapping);
    t[nr::MMUEXT_OP as usize] = entry("mmuext_op", mmu::mmuext_op);
    t[nr::EVENT_CHANNEL_OP_COMPAT as usize] = entry("event_channel_op_compat", evtchn::event_channel_op_compat);
    t[nr::EVENT_CHANNEL_OP as usize] = entry("event_channel_op", evtchn::event_channel_op);
    t[nr::GRANT_TABLE_OP as usize] = entry("grant_table_op", grant::grant_table_op);
    t
};

/// Name of hypercall `number`, if we implement it.
pub fn implemented_name(number: u64) -> Option<&'static str> {
    TABLE.get(number as usize).and_then(|e| e.as_ref()).map(|e| e.name)
}

/// Runs hypercall `number` with the five argument registers (rdi, rsi, rdx, r10, r8).
pub fn dispatch(env: &mut dyn Env, number: u64, args: [u64; 5]) -> Outcome {
    match TABLE.get(number as usize).and_then(|e| e.as_ref()) {
        Some(e) => (e.handler)(env, args),
        None => Outcome::Return(Errno::ENOSYS.to_return()),
    }
}
