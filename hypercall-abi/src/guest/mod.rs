//! Guest-side hypercalls (cargo feature `guest`): the raw `syscall` convention and typed
//! wrappers for the common calls. Only meaningful inside a 64-bit PV guest kernel (guest kernel
//! mode, ring 3); on anything else `syscall` is an ordinary system call.
//!
//! * [`raw`]: `hypercall0`..`hypercall5`, `unsafe` because a hypercall can do anything the
//!   arguments say (remap memory, shut down).
//! * [`page::HypercallPage`]: the same calls through the hypercall page Xen fills (what Linux
//!   does), for kernels that declare `XEN_ELFNOTE_HYPERCALL_PAGE`.
//! * The functions in this module: safe wrappers whose arguments are Rust references the
//!   hypervisor only reads or writes within their bounds (a safe wrapper that takes a
//!   sub-op number checks that the buffer's type fits it, and refuses with `-EINVAL`,
//!   without calling the hypervisor, when it does not); sub-ops that remap memory, or that
//!   write through addresses inside their arguments, are `unsafe fn`. Each returns
//!   `Ok(value)` or `Err(Errno)` (see [`Errno::check`]).

pub mod page;
pub mod raw;

use crate::errno::Errno;
use crate::hypercall as nr;
use crate::memory::{E820Entry, XenMemoryMap};
use crate::mm::DomId;
use crate::multicall::MulticallEntry;
use crate::sched::{SchedRemoteShutdown, SchedShutdown};
use crate::vcpu::VcpuSetSingleshotTimer;
use crate::{console_io, event_channel as ev, memory, sched, vcpu, version};

/// `xen_version(XENVER_version)`: `(major << 16) | minor`.
pub fn xen_version() -> Result<u64, Errno> {
    // SAFETY: XENVER_version takes no buffer (NULL) and has no side effects.
    Errno::check(unsafe { raw::hypercall2(nr::XEN_VERSION, version::XENVER_VERSION as u64, 0) })
}

/// Buffers `xen_version` may fill: plain data of which every bit pattern is a value.
pub trait XenVersionBuffer: Copy + sealed::Sealed {}
impl<const N: usize> XenVersionBuffer for [u8; N] {}
impl XenVersionBuffer for version::XenCompileInfo {}
impl XenVersionBuffer for version::XenPlatformParameters {}
impl XenVersionBuffer for version::XenFeatureInfo {}

mod sealed {
    /// Keeps the buffer traits to this crate's plain-data types.
    pub trait Sealed {}
    impl<const N: usize> Sealed for [u8; N] {}
    impl Sealed for crate::version::XenCompileInfo {}
    impl Sealed for crate::version::XenPlatformParameters {}
    impl Sealed for crate::version::XenFeatureInfo {}
}

/// Bytes Xen writes for `xen_version` sub-op `cmd` (0: it takes no buffer), or `None` for
/// a sub-op whose size is not fixed (build id) or not known.
fn xen_version_size(cmd: u32) -> Option<usize> {
    Some(match cmd {
        version::XENVER_VERSION | version::XENVER_PAGESIZE => 0,
        version::XENVER_EXTRAVERSION => version::XEN_EXTRAVERSION_LEN,
        version::XENVER_COMPILE_INFO => core::mem::size_of::<version::XenCompileInfo>(),
        version::XENVER_CAPABILITIES => version::XEN_CAPABILITIES_INFO_LEN,
        version::XENVER_CHANGESET => version::XEN_CHANGESET_INFO_LEN,
        version::XENVER_PLATFORM_PARAMETERS => core::mem::size_of::<version::XenPlatformParameters>(),
        version::XENVER_GET_FEATURES => core::mem::size_of::<version::XenFeatureInfo>(),
        version::XENVER_GUEST_HANDLE => 16,
        version::XENVER_COMMANDLINE => version::XEN_COMMANDLINE_LEN,
        _ => return None,
    })
}

/// `xen_version(cmd, buf)` for sub-ops that fill a plain-data buffer `T` (extraversion,
/// capabilities, changeset, platform parameters, features, compile info, guest handle,
/// command line), e.g. [`version::XenExtraversion`] for `XENVER_extraversion`. A `T` smaller
/// than what Xen writes for `cmd`, or a `cmd` of no fixed size (`XENVER_build_id`: use
/// [`raw`]), is refused with `-EINVAL` without a hypercall.
pub fn xen_version_into<T: XenVersionBuffer>(cmd: u32, buf: &mut T) -> Result<u64, Errno> {
    if xen_version_size(cmd).is_none_or(|need| core::mem::size_of::<T>() < need) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `buf` is an exclusive buffer at least as large as what Xen writes for `cmd`
    // (checked above), of a type every bit pattern is a value of.
    Errno::check(unsafe { raw::hypercall2(nr::XEN_VERSION, cmd as u64, buf as *mut T as u64) })
}

/// `console_io(CONSOLEIO_write, bytes)`: print on Xen's console (dom0, or any domain on a
/// debug Xen). Returns 0 on success.
pub fn console_write(bytes: &[u8]) -> Result<u64, Errno> {
    // SAFETY: Xen only reads `bytes.len()` bytes from the slice.
    Errno::check(unsafe {
        raw::hypercall3(nr::CONSOLE_IO, console_io::CONSOLEIO_WRITE as u64, bytes.len() as u64, bytes.as_ptr() as u64)
    })
}

/// `console_io(CONSOLEIO_read, buf)`: takes up to `buf.len()` bytes of console input that
/// are waiting (the control domain only: `-EPERM` for others). Returns how many it took.
pub fn console_read(buf: &mut [u8]) -> Result<u64, Errno> {
    // SAFETY: Xen writes at most `buf.len()` bytes into the slice.
    Errno::check(unsafe {
        raw::hypercall3(nr::CONSOLE_IO, console_io::CONSOLEIO_READ as u64, buf.len() as u64, buf.as_mut_ptr() as u64)
    })
}

/// `sched_op(SCHEDOP_yield)`.
pub fn sched_yield() -> Result<u64, Errno> {
    // SAFETY: yield takes no argument and only reschedules.
    Errno::check(unsafe { raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_YIELD as u64, 0) })
}

/// `sched_op(SCHEDOP_shutdown, reason)`: returns only if Xen refuses. Not for
/// `SHUTDOWN_suspend`, which a PV guest must make with its start_info MFN in `rdx` (see
/// `sched.h`; use [`raw::hypercall3`]): refused here with `-EINVAL` without a hypercall.
pub fn sched_shutdown(reason: u32) -> Result<u64, Errno> {
    if reason == sched::SHUTDOWN_SUSPEND {
        return Err(Errno::EINVAL);
    }
    let arg = SchedShutdown { reason };
    // SAFETY: `arg` is a valid sched_shutdown Xen only reads.
    Errno::check(unsafe { raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_SHUTDOWN as u64, &arg as *const _ as u64) })
}

/// `sched_op(SCHEDOP_shutdown_code, reason)`: records the reason a later shutdown reports
/// whatever reason it is made with, a crash included (the first recorded one stays; Xen
/// keeps the low byte). Used before a kexec or a crash dump to tell the toolstack what to do.
pub fn sched_shutdown_code(reason: u32) -> Result<u64, Errno> {
    let arg = SchedShutdown { reason };
    // SAFETY: `arg` is a valid sched_shutdown Xen only reads.
    Errno::check(unsafe { raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_SHUTDOWN_CODE as u64, &arg as *const _ as u64) })
}

/// `sched_op(SCHEDOP_remote_shutdown, {domain, reason})`: shuts another domain down
/// (the control domain only: `-EPERM` for others, `-ESRCH` for a domain that does not exist).
pub fn sched_remote_shutdown(domain_id: u16, reason: u32) -> Result<u64, Errno> {
    let arg = SchedRemoteShutdown { domain_id, reason };
    // SAFETY: `arg` is a valid sched_remote_shutdown Xen only reads.
    Errno::check(unsafe {
        raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_REMOTE_SHUTDOWN as u64, &arg as *const _ as u64)
    })
}

/// `sched_op(SCHEDOP_poll)` on `ports`, until one is pending or system time `timeout_ns`
/// (absolute, 0 = no timeout) passes. Xen returns at once while an event upcall is due
/// (`evtchn_upcall_pending` set and events unmasked), so poll with events masked. Xen's system time is signed: a `timeout_ns` of 2^63 or
/// more (`u64::MAX` included) is in the past and ends the poll at once, so pass 0 to wait
/// without a deadline.
pub fn sched_poll(ports: &[ev::EvtchnPort], timeout_ns: u64) -> Result<u64, Errno> {
    let arg = sched::SchedPoll { ports: ports.as_ptr() as u64, nr_ports: ports.len() as u32, timeout: timeout_ns };
    // SAFETY: `arg` and the port array it points at stay valid during the call; Xen reads them.
    Errno::check(unsafe { raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_POLL as u64, &arg as *const _ as u64) })
}

/// `memory_op(XENMEM_current_reservation | XENMEM_maximum_reservation |
/// XENMEM_maximum_gpfn, &domid)`: the sub-ops that take a pointer to a domain id and return a
/// page count. Any other `cmd` reads a larger structure: refused with `-EINVAL` without a
/// hypercall.
pub fn memory_op_domid(cmd: u64, domid: DomId) -> Result<u64, Errno> {
    let stats = [memory::XENMEM_CURRENT_RESERVATION, memory::XENMEM_MAXIMUM_RESERVATION, memory::XENMEM_MAXIMUM_GPFN];
    if !stats.contains(&cmd) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the argument is a valid domid_t Xen only reads.
    Errno::check(unsafe { raw::hypercall2(nr::MEMORY_OP, cmd, &domid as *const _ as u64) })
}

/// `memory_op(XENMEM_memory_map)`: fills `entries`, returns how many were written.
pub fn memory_map(entries: &mut [E820Entry]) -> Result<usize, Errno> {
    let mut map = XenMemoryMap { nr_entries: entries.len() as u32, buffer: entries.as_mut_ptr() as u64 };
    // SAFETY: `map` describes a writable buffer of `entries.len()` entries that Xen fills.
    Errno::check(unsafe { raw::hypercall2(nr::MEMORY_OP, memory::XENMEM_MEMORY_MAP, &mut map as *mut _ as u64) })?;
    Ok(map.nr_entries as usize)
}

/// `set_timer_op(timeout)`: one-shot timer at absolute system time (ns; 0 cancels).
pub fn set_timer_op(timeout_abs_ns: u64) -> Result<u64, Errno> {
    // SAFETY: takes a plain integer; the timer only raises VIRQ_TIMER.
    Errno::check(unsafe { raw::hypercall1(nr::SET_TIMER_OP, timeout_abs_ns) })
}

/// `vcpu_op(VCPUOP_set_singleshot_timer, vcpu, {timeout, flags})`. Xen refuses (`-EINVAL`)
/// a `vcpu_id` other than the calling vCPU's.
pub fn vcpu_set_singleshot_timer(vcpu_id: u32, timeout_abs_ns: u64, flags: u32) -> Result<u64, Errno> {
    let arg = VcpuSetSingleshotTimer { timeout_abs_ns, flags };
    // SAFETY: `arg` is a valid structure Xen only reads.
    Errno::check(unsafe {
        raw::hypercall3(nr::VCPU_OP, vcpu::VCPUOP_SET_SINGLESHOT_TIMER as u64, vcpu_id as u64, &arg as *const _ as u64)
    })
}

/// `vcpu_op(cmd, vcpu, arg)` for the vCPU sub-ops whose argument is a plain-data `T`
/// (or NULL when `arg` is `None`), e.g. `VCPUOP_set_periodic_timer`, `VCPUOP_stop_*`.
///
/// # Safety
/// `T` must be the structure `cmd` takes (Xen reads and writes that many bytes), and the
/// sub-op's effects are the caller's: `register_vcpu_info` and
/// `register_runstate_memory_area` make Xen write to the memory named after the call
/// returns, `initialise` and `up` start a vCPU wherever the context says.
pub unsafe fn vcpu_op<T: Copy>(cmd: u32, vcpu_id: u32, arg: Option<&mut T>) -> Result<u64, Errno> {
    let ptr = arg.map_or(0, |a| a as *mut T as u64);
    // SAFETY: `ptr` is NULL or an exclusive buffer of the type the caller matched to `cmd`.
    Errno::check(unsafe { raw::hypercall3(nr::VCPU_OP, cmd as u64, vcpu_id as u64, ptr) })
}

/// The `evtchn_*` structures and the sub-op each belongs to.
pub trait EvtchnOp: Copy + sealed::Sealed {
    /// The `EVTCHNOP_*` number that takes this structure.
    const CMD: u32;
}
/// Ties each `evtchn_*` structure to its sub-op (and seals it).
macro_rules! evtchn_ops {
    ($($ty:ident => $cmd:ident),* $(,)?) => {
        $(
            impl sealed::Sealed for ev::$ty {}
            impl EvtchnOp for ev::$ty {
                const CMD: u32 = ev::$cmd;
            }
        )*
    };
}

evtchn_ops! {
    EvtchnAllocUnbound => EVTCHNOP_ALLOC_UNBOUND,
    EvtchnBindInterdomain => EVTCHNOP_BIND_INTERDOMAIN,
    EvtchnBindVirq => EVTCHNOP_BIND_VIRQ,
    EvtchnBindPirq => EVTCHNOP_BIND_PIRQ,
    EvtchnBindIpi => EVTCHNOP_BIND_IPI,
    EvtchnClose => EVTCHNOP_CLOSE,
    EvtchnSend => EVTCHNOP_SEND,
    EvtchnStatus => EVTCHNOP_STATUS,
    EvtchnBindVcpu => EVTCHNOP_BIND_VCPU,
    EvtchnUnmask => EVTCHNOP_UNMASK,
    EvtchnReset => EVTCHNOP_RESET,
}

/// `event_channel_op(cmd, arg)` with the `evtchn_*` structure of `cmd` (e.g.
/// [`ev::EvtchnAllocUnbound`] for `EVTCHNOP_alloc_unbound`); OUT fields are filled in. A
/// structure of another sub-op is refused with `-EINVAL` without a hypercall. The FIFO
/// sub-ops (`init_control`, `expand_array`) make Xen write to a frame they name: use [`raw`].
pub fn event_channel_op<T: EvtchnOp>(cmd: u32, arg: &mut T) -> Result<u64, Errno> {
    if cmd != T::CMD {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `arg` is an exclusive buffer of the structure `cmd` takes (checked above),
    // plain integers Xen reads and writes within.
    Errno::check(unsafe { raw::hypercall2(nr::EVENT_CHANNEL_OP, cmd as u64, arg as *mut T as u64) })
}

/// `grant_table_op(cmd, ops, count)` with an array of the `gnttab_*` structure matching `cmd`.
///
/// # Safety
/// `T` must be the structure `cmd` takes, and what the requests name is the caller's: a map
/// or unmap changes the page-table entry at its `host_addr`, `setup_table` writes
/// `nr_frames` words at its `frame_list`, and a copy writes to whatever frame it names.
pub unsafe fn grant_table_op<T: Copy>(cmd: u32, ops: &mut [T]) -> Result<u64, Errno> {
    // SAFETY: `ops` is an exclusive array of `ops.len()` structures matched to `cmd`.
    Errno::check(unsafe { raw::hypercall3(nr::GRANT_TABLE_OP, cmd as u64, ops.as_mut_ptr() as u64, ops.len() as u64) })
}

/// `multicall(entries)`: runs each entry and stores its result in `entry.result`.
///
/// # Safety
/// Each entry is an arbitrary hypercall with raw arguments; the caller must uphold whatever
/// every one of them requires (as for [`raw::hypercall5`]).
pub unsafe fn multicall(entries: &mut [MulticallEntry]) -> Result<u64, Errno> {
    // SAFETY: the array is valid and exclusive; the entries' own safety is the caller's.
    Errno::check(unsafe { raw::hypercall2(nr::MULTICALL, entries.as_mut_ptr() as u64, entries.len() as u64) })
}

/// Reads the time-stamp counter (`rdtsc`; not trapped for PV guests unless CR4.TSD is set).
pub fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: rdtsc only reads the TSC into edx:eax.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    ((hi as u64) << 32) | lo as u64
}
