//! `grant_table_op` (#20): `(u32 cmd, void *uop, u32 count)` (digest §5.3). Copies each
//! `gnttab_*` structure in through `Env`'s checked copies, runs it on [`crate::grant`] and
//! copies the result out, with Xen's batch semantics: every map, unmap and copy request gets
//! its own `status`; the call itself returns 0 unless the list cannot be read or written
//! (`-EFAULT`, requests before it stay done) or the arguments are bad. After [`BATCH`]
//! requests the call continues itself with the rest (Xen's `hypercall_create_continuation`
//! with `uop` advanced and `count` reduced).
//!
//! Implemented: `map_grant_ref`, `unmap_grant_ref`, `setup_table`, `copy`, `query_size`,
//! `set_version` (version 1 only: asking for 2 answers `-ENOSYS`, as Xen built with
//! `gnttab=max-ver:1`, and Linux then stays on v1), `get_version`. The others
//! (`dump_table`, `transfer`, `unmap_and_replace`, `get_status_frames`, `swap_grant_ref`,
//! `cache_flush`) answer `-ENOSYS`.

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;

use super::{Env, Outcome};
use crate::grant::{decode_copy_request, COPY_REQUEST_SIZE};
use core::mem::{offset_of, size_of};
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::*;

/// Requests handled per hypercall entry before a continuation.
pub const BATCH: u32 = 64;
/// Xen's `GNTTABOP_CMD_MASK`: the bits above carry continuation state (cache_flush only).
const CMD_MASK: u32 = (1 << 12) - 1;
/// `sizeof(struct gnttab_get_version)`: `u16 dom, u16 pad, u32 version`.
const GET_VERSION_SIZE: usize = 8;
/// Offset of `gnttab_get_version.version`.
const GET_VERSION_VERSION: usize = 4;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn put(b: &mut [u8], off: usize, bytes: &[u8]) {
    b[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Copies the `N`-byte structure in from `va` (`-EFAULT` if it is not all readable).
fn read<const N: usize>(env: &dyn Env, va: u64) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    env.copy_from_guest(va, &mut b)?;
    Ok(b)
}

fn ret(r: Result<(), Errno>) -> Outcome {
    Outcome::Return(match r {
        Ok(()) => 0,
        Err(e) => e.to_return(),
    })
}

/// `grant_table_op(cmd, uop, count)`.
pub fn grant_table_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's prototype takes `unsigned int` cmd and count: only the low 32 bits count.
    let (cmd, uop, count) = (a[0] as u32, a[1], a[2] as u32);
    if (count as i32) < 0 || cmd & !CMD_MASK != 0 {
        return ret(Err(Errno::EINVAL));
    }
    if !env.has_grants() {
        return ret(Err(Errno::ENOSYS));
    }
    if env.page_releases_pending() {
        // Tables the caller dropped keep typing their frames until released: finish first.
        if let Err(outcome) = super::mmu::start_mmu_entry(env, a) {
            return outcome;
        }
    }
    match cmd {
        GNTTABOP_MAP_GRANT_REF => batch(env, a, size_of::<GnttabMapGrantRef>(), map_one),
        GNTTABOP_UNMAP_GRANT_REF => batch(env, a, size_of::<GnttabUnmapGrantRef>(), unmap_one),
        GNTTABOP_COPY => copy(env, a),
        GNTTABOP_SETUP_TABLE => ret(setup_table(env, uop, count)),
        GNTTABOP_QUERY_SIZE => ret(query_size(env, uop, count)),
        GNTTABOP_SET_VERSION => ret(set_version(env, uop)),
        GNTTABOP_GET_VERSION => ret(get_version(env, uop)),
        _ => ret(Err(Errno::ENOSYS)),
    }
}

/// Runs up to [`BATCH`] requests of `size` bytes from `a[1]`, then continues with the rest.
fn batch(env: &mut dyn Env, a: [u64; 5], size: usize, one: fn(&mut dyn Env, u64) -> Result<(), Errno>) -> Outcome {
    let (uop, count) = (a[1], a[2] as u32);
    let this = count.min(BATCH);
    for i in 0..u64::from(this) {
        if let Err(e) = one(env, uop.wrapping_add(i * size as u64)) {
            return ret(Err(e));
        }
    }
    done_or_continue(a, this, size)
}

/// After `this` of the `a[2]` requests of `size` bytes at `a[1]`: 0, or Xen's continuation
/// with `uop` advanced past them and `count` reduced.
fn done_or_continue(a: [u64; 5], this: u32, size: usize) -> Outcome {
    let (uop, count) = (a[1], a[2] as u32);
    if count > this {
        let next = uop.wrapping_add(u64::from(this) * size as u64);
        return Outcome::Continue([a[0], next, u64::from(count - this), a[3], a[4]]);
    }
    Outcome::Return(0)
}

/// One `gnttab_map_grant_ref`; the whole structure is written back, as in Xen (`handle`
/// and `dev_bus_addr` only change on success).
fn map_one(env: &mut dyn Env, va: u64) -> Result<(), Errno> {
    const N: usize = size_of::<GnttabMapGrantRef>();
    let mut b = read::<N>(env, va)?;
    let op = GnttabMapGrantRef {
        host_addr: u64_at(&b, offset_of!(GnttabMapGrantRef, host_addr)),
        flags: u32_at(&b, offset_of!(GnttabMapGrantRef, flags)),
        r#ref: u32_at(&b, offset_of!(GnttabMapGrantRef, r#ref)),
        dom: u16_at(&b, offset_of!(GnttabMapGrantRef, dom)),
        ..GnttabMapGrantRef::default()
    };
    let result = env.grants().ok_or(Errno::ENOSYS)?.map_grant_ref(&op);
    let status = match result {
        Ok(done) => {
            put(&mut b, offset_of!(GnttabMapGrantRef, handle), &done.handle.to_le_bytes());
            put(&mut b, offset_of!(GnttabMapGrantRef, dev_bus_addr), &done.dev_bus_addr.to_le_bytes());
            GNTST_OKAY
        }
        Err(status) => status,
    };
    put(&mut b, offset_of!(GnttabMapGrantRef, status), &status.to_le_bytes());
    env.copy_to_guest(va, &b)
}

/// One `gnttab_unmap_grant_ref`; only `status` is written back.
fn unmap_one(env: &mut dyn Env, va: u64) -> Result<(), Errno> {
    let b = read::<{ size_of::<GnttabUnmapGrantRef>() }>(env, va)?;
    let host_addr = u64_at(&b, offset_of!(GnttabUnmapGrantRef, host_addr));
    let dev_bus_addr = u64_at(&b, offset_of!(GnttabUnmapGrantRef, dev_bus_addr));
    let handle = u32_at(&b, offset_of!(GnttabUnmapGrantRef, handle));
    let status = env.grants().ok_or(Errno::ENOSYS)?.unmap_grant_ref(host_addr, dev_bus_addr, handle);
    env.copy_to_guest(va + offset_of!(GnttabUnmapGrantRef, status) as u64, &status.to_le_bytes())
}

/// One `gnttab_copy`; only `status` is written back.
fn copy_one(env: &mut dyn Env, va: u64) -> Result<(), Errno> {
    let op = decode_copy_request(&read::<COPY_REQUEST_SIZE>(env, va)?);
    let status = env.grants().ok_or(Errno::ENOSYS)?.copy(&op);
    env.copy_to_guest(va + offset_of!(GnttabCopy, status) as u64, &status.to_le_bytes())
}

/// `GNTTABOP_copy`. When the guest can write the whole chunk of up to [`BATCH`] requests
/// (the usual case), the chunk is resolved once and run by `GrantAccess::copy_span`, which
/// reads each request and writes each status through the resolved frames; otherwise, request
/// by request through [`copy_one`], which gives `-EFAULT` at the exact request that cannot
/// be read or written. The results are the same either way.
fn copy(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let (uop, count) = (a[1], a[2] as u32);
    let this = count.min(BATCH);
    let span = if this == 0 { None } else { env.guest_span_for_write(uop, this as usize * COPY_REQUEST_SIZE) };
    let Some(span) = span else {
        return batch(env, a, COPY_REQUEST_SIZE, copy_one);
    };
    if env.copy_grants(&span, this as usize).is_none() {
        return ret(Err(Errno::ENOSYS));
    }
    done_or_continue(a, this, COPY_REQUEST_SIZE)
}

/// `GNTTABOP_setup_table` (count must be 1). The frames go to `frame_list` (a write fault
/// makes the status `GNTST_bad_virt_addr`); only `status` is written back.
fn setup_table(env: &mut dyn Env, uop: u64, count: u32) -> Result<(), Errno> {
    if count != 1 {
        return Err(Errno::EINVAL);
    }
    let b = read::<{ size_of::<GnttabSetupTable>() }>(env, uop)?;
    let dom = u16_at(&b, offset_of!(GnttabSetupTable, dom));
    let nr_frames = u32_at(&b, offset_of!(GnttabSetupTable, nr_frames));
    let frame_list = u64_at(&b, offset_of!(GnttabSetupTable, frame_list));
    // Xen's `guest_handle_okay(frame_list, nr_frames)`, before anything is done: a list
    // that reaches into the hypervisor's range is `-EFAULT` (one that merely faults later
    // gives `GNTST_bad_virt_addr` below).
    if !crate::guest_access::guest_range_ok(frame_list, nr_frames as usize * 8) {
        return Err(Errno::EFAULT);
    }
    let result = env.grants().ok_or(Errno::ENOSYS)?.setup_table(dom, nr_frames);
    let status = match result {
        Ok(frames) => {
            let mut status = GNTST_OKAY;
            for (i, mfn) in frames.iter().enumerate() {
                let at = frame_list.wrapping_add(8 * i as u64);
                if env.copy_to_guest(at, &mfn.to_le_bytes()).is_err() {
                    status = GNTST_BAD_VIRT_ADDR;
                }
            }
            status
        }
        Err(status) => status,
    };
    env.copy_to_guest(uop + offset_of!(GnttabSetupTable, status) as u64, &status.to_le_bytes())
}

/// `GNTTABOP_query_size` (count must be 1); the whole structure is written back.
fn query_size(env: &mut dyn Env, uop: u64, count: u32) -> Result<(), Errno> {
    if count != 1 {
        return Err(Errno::EINVAL);
    }
    let mut b = read::<{ size_of::<GnttabQuerySize>() }>(env, uop)?;
    let dom = u16_at(&b, offset_of!(GnttabQuerySize, dom));
    let result = env.grants().ok_or(Errno::ENOSYS)?.query_size(dom);
    let status = match result {
        Ok((nr, max)) => {
            put(&mut b, offset_of!(GnttabQuerySize, nr_frames), &nr.to_le_bytes());
            put(&mut b, offset_of!(GnttabQuerySize, max_nr_frames), &max.to_le_bytes());
            GNTST_OKAY
        }
        Err(status) => status,
    };
    put(&mut b, offset_of!(GnttabQuerySize, status), &status.to_le_bytes());
    env.copy_to_guest(uop, &b)
}

/// `GNTTABOP_set_version`: 1 is the version in force (0); 2 is `-ENOSYS` (v2 is not
/// offered, as Xen with `max-ver:1`); anything else `-EINVAL`. The version in force is
/// written back in every case, as Xen does.
fn set_version(env: &mut dyn Env, uop: u64) -> Result<(), Errno> {
    let version = u32_at(&read::<{ size_of::<GnttabSetVersion>() }>(env, uop)?, 0);
    let result = match version {
        1 => Ok(()),
        2 => Err(Errno::ENOSYS),
        _ => Err(Errno::EINVAL),
    };
    env.copy_to_guest(uop, &1u32.to_le_bytes())?;
    result
}

/// `GNTTABOP_get_version`: writes 1 into `version` (`-ESRCH`/`-EPERM` for a domain the
/// caller may not ask about).
fn get_version(env: &mut dyn Env, uop: u64) -> Result<(), Errno> {
    let dom = u16_at(&read::<GET_VERSION_SIZE>(env, uop)?, 0);
    let version = env.grants().ok_or(Errno::ENOSYS)?.get_version(dom)?;
    env.copy_to_guest(uop + GET_VERSION_VERSION as u64, &version.to_le_bytes())
}
