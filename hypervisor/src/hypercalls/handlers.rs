//! The handlers behind the hypercall table. Every guest pointer goes through `Env`'s checked
//! copies; every number a guest passes is validated before use.

use super::op::*;
use super::{dispatch, Env, Outcome};
use crate::elf_image::HYPERVISOR_VIRT_START;
use crate::evtchn::PortState;
use hypercall_abi::errno::Errno;
use hypercall_abi::hypercall as nr;

/// Version this hypervisor reports: the Xen interface it implements (4.17).
pub const VERSION_MAJOR: u64 = 4;
/// Minor version.
pub const VERSION_MINOR: u64 = 17;
/// `XENVER_extraversion`: marks this implementation apart from Xen's own builds.
pub const EXTRAVERSION: &str = ".0-rusthv";
/// `XENVER_capabilities`.
pub const CAPABILITIES: &str = "xen-3.0-x86_64";
/// `XENVER_changeset`.
pub const CHANGESET: &str = concat!("rust-hypervisor ", env!("CARGO_PKG_VERSION"));
/// `XENFEAT_dom0`.
const XENFEAT_DOM0: u32 = 11;
/// Most console bytes written per hypercall entry before a continuation: the serial output
/// is synchronous (a byte can cost a microsecond or more, three with the `\n` and DEL
/// expansions), and any domain may write. Xen copies 128 bytes at a time.
const CONSOLE_CHUNK: u64 = 256;
/// Most multicall entries run per hypercall entry before a continuation.
const MULTICALL_BATCH: u64 = 64;
/// A multicall continues itself between entries once it has run this long in one hypervisor
/// entry (Xen's `hypercall_preempt_check` between entries): each entry is bounded, but 64
/// heavy ones (grant copies, port resets) would not be.
const MULTICALL_SLICE_NS: u64 = 100_000;
/// Size of `multicall_entry_t`.
const MULTICALL_ENTRY_SIZE: u64 = 64;

pub(super) fn ret(v: i64) -> Outcome {
    Outcome::Return(v)
}

pub(super) fn err(e: Errno) -> Outcome {
    Outcome::Return(e.to_return())
}

/// The address of the field `off` bytes into a guest structure at `va`; `-EFAULT` past the
/// top of the address space (a wrapped address would name the guest's memory at 0).
pub(super) fn field(va: u64, off: u64) -> Result<u64, Errno> {
    va.checked_add(off).ok_or(Errno::EFAULT)
}

pub(super) fn read_u64(env: &dyn Env, va: u64) -> Result<u64, Errno> {
    let mut b = [0; 8];
    env.copy_from_guest(va, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

pub(super) fn read_u32(env: &dyn Env, va: u64) -> Result<u32, Errno> {
    let mut b = [0; 4];
    env.copy_from_guest(va, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Writes `s` NUL-padded into a fixed-size guest char array of `size` bytes.
fn write_cstr(env: &mut dyn Env, va: u64, s: &str, size: usize) -> Result<(), Errno> {
    let mut buf = [0u8; 1024];
    let n = s.len().min(size - 1);
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    env.copy_to_guest(va, &buf[..size])
}

/// `console_io(cmd, count, buffer)`. Xen 4.17's dummy XSM lets only the control domain
/// read the console, or issue anything but a write (`-EPERM`); a domU's writes are printed as
/// a debug build of Xen does (`CONFIG_VERBOSE_DEBUG`), line by line with its `(dN)` prefix
/// (`guest_console`), for there is no PV console backend yet to carry them.
pub fn console_io(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `unsigned int cmd, unsigned int count`.
    let (cmd, count, buf) = (a[0] & 0xffff_ffff, a[1] & 0xffff_ffff, a[2]);
    if cmd != CONSOLEIO_WRITE && !env.domain().privileged {
        return err(Errno::EPERM);
    }
    match cmd {
        CONSOLEIO_WRITE => {
            let this = count.min(CONSOLE_CHUNK);
            let mut chunk = [0u8; CONSOLE_CHUNK as usize];
            if let Err(e) = env.copy_from_guest(buf, &mut chunk[..this as usize]) {
                return err(e);
            }
            env.console_write(&chunk[..this as usize]);
            if count > this {
                // The rest starts past the top of the address space: unreadable.
                let Some(next) = buf.checked_add(this) else { return err(Errno::EFAULT) };
                return Outcome::Continue([cmd, count - this, next, a[3], a[4]]);
            }
            ret(0)
        }
        // The result is a count or an error: counts that would read as negative are refused.
        CONSOLEIO_READ if count > i32::MAX as u64 => err(Errno::E2BIG),
        CONSOLEIO_READ => {
            let mut chunk = [0u8; 256];
            let want = (count as usize).min(chunk.len());
            let got = env.console_read(&mut chunk[..want]);
            match env.copy_to_guest(buf, &chunk[..got]) {
                Ok(()) => ret(got as i64),
                Err(e) => err(e),
            }
        }
        _ => err(Errno::ENOSYS), // as Xen 4.17 answers an unknown console_io command
    }
}

/// `xen_version(cmd, arg)`.
pub fn xen_version(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `int cmd`: only the low 32 bits count.
    let (cmd, arg) = (a[0] & 0xffff_ffff, a[1]);
    let result = match cmd {
        XENVER_VERSION => return ret(((VERSION_MAJOR << 16) | VERSION_MINOR) as i64),
        XENVER_EXTRAVERSION => write_cstr(env, arg, EXTRAVERSION, 16),
        XENVER_COMPILE_INFO => {
            let mut info = [0u8; 144];
            for (s, off, len) in [("rustc", 0, 64), ("hv", 64, 16), ("localdomain", 80, 32), ("", 112, 32)] {
                info[off..off + s.len().min(len - 1)].copy_from_slice(s.as_bytes());
            }
            env.copy_to_guest(arg, &info)
        }
        XENVER_CAPABILITIES => write_cstr(env, arg, CAPABILITIES, 1024),
        XENVER_CHANGESET => write_cstr(env, arg, CHANGESET, 64),
        XENVER_PLATFORM_PARAMETERS => env.copy_to_guest(arg, &HYPERVISOR_VIRT_START.to_le_bytes()),
        XENVER_GET_FEATURES => {
            // `xen_feature_info_t` is read whole (index and map) before it is filled in.
            let mut info = [0u8; 8];
            match env.copy_from_guest(arg, &mut info) {
                // Xen has one submap (XENFEAT_NR_SUBMAPS = 1): other indices are invalid.
                Ok(()) if info[..4] != [0; 4] => Err(Errno::EINVAL),
                Ok(()) => {
                    // Only features this hypervisor really provides are advertised (see
                    // docs/ARCHITECTURE.md): for now, just `dom0` for the control domain.
                    let map = if env.domain().privileged { 1u32 << XENFEAT_DOM0 } else { 0 };
                    field(arg, 4).and_then(|at| env.copy_to_guest(at, &map.to_le_bytes()))
                }
                Err(e) => Err(e),
            }
        }
        // Xen: `!guest_handle_is_null(arg) ? -EINVAL : PAGE_SIZE`.
        XENVER_PAGESIZE if arg != 0 => Err(Errno::EINVAL),
        XENVER_PAGESIZE => return ret(4096),
        XENVER_GUEST_HANDLE => env.copy_to_guest(arg, &[0u8; 16]),
        // Xen's default XSM policy denies the command line and build id to domUs: the
        // command line then reads "<denied>" (and succeeds), the build id is -EPERM.
        XENVER_COMMANDLINE if !env.domain().privileged => env.copy_to_guest(arg, b"<denied>\0"),
        XENVER_COMMANDLINE => {
            let mut line = [0u8; 1024];
            let cl = env.hypervisor_cmdline().as_bytes();
            let n = cl.len().min(1023);
            line[..n].copy_from_slice(&cl[..n]);
            env.copy_to_guest(arg, &line)
        }
        XENVER_BUILD_ID if !env.domain().privileged => Err(Errno::EPERM),
        XENVER_BUILD_ID => {
            // The buffer's length is checked before Xen finds it has no build id to give.
            match if arg == 0 { Ok(1) } else { read_u32(env, arg) } {
                Ok(0) => Err(Errno::EINVAL),
                Ok(_) => Err(Errno::ENODATA),
                Err(e) => Err(e),
            }
        }
        _ => Err(Errno::ENOSYS),
    };
    match result {
        Ok(()) => ret(0),
        Err(e) => err(e),
    }
}

/// `sched_op(cmd, arg)`.
pub fn sched_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `int cmd`: only the low 32 bits count.
    match a[0] & 0xffff_ffff {
        SCHEDOP_YIELD => Outcome::Yield,
        SCHEDOP_BLOCK => Outcome::Block,
        // Xen: `domain_shutdown(d, (u8)reason)`.
        SCHEDOP_SHUTDOWN => match read_u32(env, a[1]) {
            Ok(reason) => Outcome::Shutdown(u32::from(reason as u8)),
            Err(e) => err(e),
        },
        SCHEDOP_POLL => match poll(env, a[1]) {
            Ok(o) => o,
            Err(e) => err(e),
        },
        // Recorded once; a later shutdown of any reason reports it (Xen's `shutdown_code`).
        SCHEDOP_SHUTDOWN_CODE => match read_u32(env, a[1]) {
            Ok(reason) => {
                env.record_shutdown_code(reason as u8);
                ret(0)
            }
            Err(e) => err(e),
        },
        SCHEDOP_REMOTE_SHUTDOWN => remote_shutdown(env, a[1]).unwrap_or_else(err),
        _ => err(Errno::ENOSYS),
    }
}

/// `SCHEDOP_remote_shutdown {domain_id, reason}`, in Xen's order: `-EFAULT` unreadable,
/// `-ESRCH` no such domain, `-EPERM` unless the caller is the control domain (dummy XSM's
/// `XSM_DM_PRIV`; a domU may not name even itself). The control domain naming itself shuts
/// down as with `SCHEDOP_shutdown`; another domain is shut down (torn down, as every domU
/// that shuts down here: there is no toolstack to keep it) and the call returns at once.
fn remote_shutdown(env: &mut dyn Env, arg: u64) -> Result<Outcome, Errno> {
    let mut b = [0u8; 8];
    env.copy_from_guest(arg, &mut b)?;
    let id = u16::from_le_bytes([b[0], b[1]]);
    // Xen: `domain_shutdown(d, (u8)reason)`.
    let reason = u32::from(b[4]);
    let caller = env.domain();
    if id != caller.id && env.domain_facts_of(id).is_none() {
        return Err(Errno::ESRCH);
    }
    if !caller.privileged {
        return Err(Errno::EPERM);
    }
    if id == caller.id {
        return Ok(Outcome::Shutdown(reason));
    }
    let ctl = env.domain_control().ok_or(Errno::ENOSYS)?;
    ctl.shut_down(id, reason)?;
    Ok(ret(0))
}

/// `sched_op_compat(cmd, arg)`: the legacy form, whose shutdown reason is passed by value.
pub fn sched_op_compat(_env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    match a[0] & 0xffff_ffff {
        SCHEDOP_YIELD => Outcome::Yield,
        SCHEDOP_BLOCK => Outcome::Block,
        SCHEDOP_SHUTDOWN => Outcome::Shutdown(u32::from(a[1] as u8)),
        _ => err(Errno::ENOSYS),
    }
}

/// `set_timer_op(timeout)`: absolute system time; 0 cancels.
pub fn set_timer_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let timeout = a[0];
    let deadline = if timeout == 0 {
        None
    } else if (timeout as i64) < 0 || timeout.saturating_sub(env.now_ns()) >> 50 != 0 {
        // Xen's guard against wrapped jiffies: a negative time or one more than 2^50 ns
        // (13 days) ahead fires in 100 ms instead.
        Some(env.now_ns().saturating_add(HUGE_TIMEOUT_DELAY_NS))
    } else {
        Some(timeout)
    };
    env.set_singleshot_timer(deadline);
    ret(0)
}

/// What `set_timer_op` sets for a huge or negative timeout (Xen's `MILLISECS(100)`).
const HUGE_TIMEOUT_DELAY_NS: u64 = 100_000_000;

/// Xen's `STIME_DELTA_MAX`: the longest interval its signed system time can express.
const STIME_DELTA_MAX: u64 = (1 << 62) - 1;

/// `vcpu_op(cmd, vcpuid, arg)`.
pub fn vcpu_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `int cmd, unsigned int vcpuid`.
    let (cmd, vcpu, arg) = (a[0] & 0xffff_ffff, a[1] & 0xffff_ffff, a[2]);
    if vcpu != 0 {
        return err(Errno::ENOENT); // one vCPU per domain for now
    }
    let result = match cmd {
        VCPUOP_IS_UP => return ret(1),
        VCPUOP_SET_PERIODIC_TIMER => read_u64(env, arg).and_then(|period| {
            // Xen refuses periods under 1 ms, and beyond its signed time (`STIME_DELTA_MAX`).
            if !(1_000_000..=STIME_DELTA_MAX).contains(&period) {
                return Err(Errno::EINVAL);
            }
            env.set_periodic_timer(Some(period));
            Ok(())
        }),
        VCPUOP_STOP_PERIODIC_TIMER => {
            env.set_periodic_timer(None);
            Ok(())
        }
        VCPUOP_SET_SINGLESHOT_TIMER => read_u64(env, arg).and_then(|deadline| {
            // The whole 16-byte structure (deadline, flags, padding) must be readable, but
            // Xen 4.17.7 ignores VCPU_SSHOTTMR_future (observed on Debian's build: a past
            // deadline with the flag returns 0 and fires at once), so we do too.
            env.copy_from_guest(field(arg, 8)?, &mut [0u8; 8])?;
            env.set_singleshot_timer(Some(deadline));
            Ok(())
        }),
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            env.set_singleshot_timer(None);
            Ok(())
        }
        _ => Err(Errno::ENOSYS),
    };
    match result {
        Ok(()) => ret(0),
        Err(e) => err(e),
    }
}

/// `multicall(list, nr_calls)`: runs each 64-byte entry (`op`, `result`, `args[6]`) and
/// stores its result. Works in batches with continuations so a huge list cannot monopolise
/// the CPU; a nested multicall fails with `-EINVAL` in its entry. An entry that yields, blocks
/// or polls stops the batch after storing its result, and the entries after it run when the
/// vCPU runs again; a shutdown ends it. An entry that asks for a
/// continuation gets its advanced arguments written back into the list and the multicall
/// continues from that entry, as Xen's `do_multicall` does: finishing it here instead would
/// let one entry (a 4 GiB `console_io`, a long `mmu_update` list) run unbounded.
pub fn multicall(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // The calls share one page-table budget: the work of one hypervisor entry stays within
    // it even when a call starts just before it is spent.
    let work_at_start = env.paging_work();
    env.limit_paging_work(Some(work_at_start.wrapping_add(super::mmu::WORK_BUDGET)));
    let outcome = run_multicall(env, a, work_at_start);
    env.limit_paging_work(None);
    outcome
}

fn run_multicall(env: &mut dyn Env, a: [u64; 5], work_at_start: u64) -> Outcome {
    // `nr_calls` is a plain `uint32_t`; Xen's `guest_handle_okay` checks the list's start
    // (`__addr_ok`) even for no entries, and each entry is then read as it comes.
    let (list, count) = (a[0], a[1] & 0xffff_ffff);
    if !crate::guest_access::guest_address_ok(list) {
        return err(Errno::EFAULT);
    }
    let started_ns = env.now_ns();
    for i in 0..count.min(MULTICALL_BATCH) {
        let entry = list.wrapping_add(i * MULTICALL_ENTRY_SIZE);
        let enough = || {
            env.paging_work().wrapping_sub(work_at_start) >= super::mmu::WORK_BUDGET
                || env.now_ns().wrapping_sub(started_ns) >= MULTICALL_SLICE_NS
        };
        if i > 0 && enough() {
            // Enough work for one entry (Xen's preemption check between entries).
            return Outcome::Continue([entry, count - i, a[2], a[3], a[4]]);
        }
        let mut raw = [0u8; 64];
        if let Err(e) = env.copy_from_guest(entry, &mut raw) {
            return err(e);
        }
        let word = |k: usize| u64::from_le_bytes(raw[k * 8..k * 8 + 8].try_into().unwrap_or_default());
        let op = word(0);
        let args = [word(2), word(3), word(4), word(5), word(6)];
        let outcome = if op == nr::MULTICALL { err(Errno::EINVAL) } else { dispatch(env, op, args) };
        let (result, stop) = match outcome {
            Outcome::Return(v) => (v, None),
            Outcome::Continue(next) => {
                let mut bytes = [0u8; 40];
                for (chunk, w) in bytes.chunks_exact_mut(8).zip(next) {
                    chunk.copy_from_slice(&w.to_le_bytes());
                }
                if let Err(e) = env.copy_to_guest(entry.wrapping_add(16), &bytes) {
                    return err(e);
                }
                return Outcome::Continue([entry, count - i, a[2], a[3], a[4]]);
            }
            other => (0, Some(other)),
        };
        let stored = env.copy_to_guest(entry.wrapping_add(8), &result.to_le_bytes());
        if let Some(o) = stop {
            // Xen has already blocked, yielded or shut the domain down by the time it stores
            // the result, so the outcome stands even if the store failed (Xen then ends the
            // multicall with -EFAULT; here the guest sees 0). Otherwise the entries left run
            // when the vCPU runs again, as after Xen's preemption check.
            let left = count - i - 1;
            return match o.as_sleep() {
                Some(sleep) if left > 0 && stored.is_ok() => {
                    let next = entry.wrapping_add(MULTICALL_ENTRY_SIZE);
                    Outcome::SleepThenContinue(sleep, [next, left, a[2], a[3], a[4]])
                }
                _ => o,
            };
        }
        if let Err(e) = stored {
            return err(e);
        }
    }
    if count > MULTICALL_BATCH {
        return Outcome::Continue([
            list.wrapping_add(MULTICALL_BATCH * MULTICALL_ENTRY_SIZE),
            count - MULTICALL_BATCH,
            a[2],
            a[3],
            a[4],
        ]);
    }
    ret(0)
}

/// `PHYSDEVOP_set_iopl`.
const PHYSDEVOP_SET_IOPL: u64 = 6;

/// `physdev_op(cmd, arg)`: only `set_iopl` for now (what a PV kernel needs for port I/O).
pub fn physdev_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    match a[0] & 0xffff_ffff {
        PHYSDEVOP_SET_IOPL => match read_u32(env, a[1]) {
            Ok(iopl) if iopl > 3 => err(Errno::EINVAL),
            Ok(iopl) if env.set_virtual_iopl(iopl as u8) => ret(0),
            Ok(_) => err(Errno::ENOSYS),
            Err(e) => err(e),
        },
        _ => err(Errno::ENOSYS),
    }
}

/// `SCHEDOP_poll`, in the order of Xen's `do_poll`: more than 128 ports is `-EINVAL`; an
/// event upcall already due (pending and not masked) returns 0 at once; then port by port, an
/// unreadable one is `-EFAULT`, one beyond the 2-level range `-EINVAL`, and a pending one
/// returns 0 (so a pending port before a bad one wins). Otherwise the scheduler sleeps the
/// vCPU until an event or the absolute deadline. As in Xen, a poll of exactly one port is
/// woken by that port only, a poll of none or several by any port of the domain (the guest
/// re-checks its ports after any return).
fn poll(env: &mut dyn Env, arg: u64) -> Result<Outcome, Errno> {
    let mut sp = [0u8; 24];
    env.copy_from_guest(arg, &mut sp)?;
    let word = |o: usize| {
        u64::from_le_bytes([sp[o], sp[o + 1], sp[o + 2], sp[o + 3], sp[o + 4], sp[o + 5], sp[o + 6], sp[o + 7]])
    };
    // `nr_ports` is an `unsigned int` followed by padding.
    let (ports_va, nr_ports, timeout) = (word(0), word(8) & 0xffff_ffff, word(16));
    if nr_ports > MAX_POLL_PORTS {
        return Err(Errno::EINVAL);
    }
    // Xen's `guest_handle_okay`: the array must start in the guest's part of the address
    // space (and, here, not wrap: stricter than Xen, which would fault on reading it).
    if !crate::guest_access::guest_address_ok(ports_va) {
        return Err(Errno::EFAULT);
    }
    field(ports_va, nr_ports * 4)?;
    // The ports up to the first unreadable one (Xen reads them one by one, so those before
    // it are still checked), then Xen's checks in its order. Reading first changes nothing
    // a guest can see: reads have no effect, and the answers come in Xen's order.
    // Not a zeroed array: clearing room for 128 ports costs more than the usual one-port poll.
    let mut ports = heapless::Vec::<u32, { MAX_POLL_PORTS as usize }>::new();
    let mut chunk = [0u8; 64]; // 16 ports per copy: one copy for any usual list
    let mut unreadable = false;
    while ports.len() < nr_ports as usize && !unreadable {
        let first = ports.len();
        let count = (nr_ports as usize - first).min(16);
        let bytes = &mut chunk[..count * 4];
        let mut readable = count;
        // No overflow: the whole array's range was checked above.
        if env.copy_from_guest(ports_va + first as u64 * 4, bytes).is_err() {
            readable = (0..count)
                .take_while(|&k| {
                    env.copy_from_guest(ports_va + (first + k) as u64 * 4, &mut bytes[k * 4..][..4]).is_ok()
                })
                .count();
            unreadable = true;
        }
        for b in bytes[..readable * 4].chunks_exact(4) {
            // Cannot fail: `nr_ports` is at most the capacity.
            let _ = ports.push(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
    }
    let Some(access) = env.events() else { return Err(Errno::ENOSYS) };
    let caller = access.caller;
    let Some(shared) = access.host.shared_info(caller) else { return Err(Errno::EINVAL) };
    let vcpu0 = &shared.vcpu_info[0];
    if vcpu0.evtchn_upcall_pending != 0 && vcpu0.evtchn_upcall_mask == 0 {
        return Ok(ret(0)); // Xen's `local_events_need_delivery`
    }
    for &port in &ports {
        // Xen's `evtchn_port_poll`: a port outside the allocated ones, free, or reserved
        // (port 0) is `-EINVAL`.
        if matches!(access.table.port_state(caller, port), None | Some(PortState::Free | PortState::Reserved)) {
            return Err(Errno::EINVAL);
        }
        if shared.evtchn_pending[port as usize / 64] & (1 << (port % 64)) != 0 {
            return Ok(ret(0));
        }
    }
    if unreadable {
        return Err(Errno::EFAULT);
    }
    // A timeout already past (Xen's times are signed: 2^63 and more included) fires before
    // the call returns, as Xen's `set_timer` runs the expired timer on the way out.
    if timeout != 0 && crate::vcpu::deadline_passed(timeout, env.now_ns()) {
        return Ok(ret(0));
    }
    env.set_poll_ports(&ports);
    Ok(Outcome::Poll((timeout != 0).then_some(timeout)))
}
