//! The PV MMU hypercalls: `mmu_update` (#1), `update_va_mapping` (#14) and `mmuext_op` (#26)
//! with Xen's batch semantics (digest §2.1, §4.3-4.5). The checks live in `crate::mm`; this
//! file reads the requests from the guest, reports progress and resolves flush scopes.
//!
//! Batches stop at the first failing entry and return its error; `*done` (if the pointer is
//! not NULL) receives how many entries finished, counting earlier continuations. After
//! [`BATCH`] entries the call continues itself with `count - BATCH` and bit 31
//! (`MMU_UPDATE_PREEMPTED`) set, which tells the next run to add to the `done` already
//! stored, as Xen does.

use super::{Env, Outcome};
use crate::mm::{FlushRequest, FlushScope, MmuError};
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::{MmuUpdate, MmuextOp, DOMID_IO, DOMID_SELF, MMU_UPDATE_PREEMPTED};

/// Entries handled per hypercall entry before a continuation.
pub const BATCH: u64 = 64;
/// Page-table entries validated or released per hypervisor entry (`crate::mm::WORK_BUDGET`).
pub const WORK_BUDGET: u64 = crate::mm::WORK_BUDGET;
const PREEMPTED: u64 = MMU_UPDATE_PREEMPTED as u64;
/// Size of `struct mmu_update`.
const MMU_UPDATE_SIZE: u64 = 16;
/// Size of `struct mmuext_op`.
const MMUEXT_OP_SIZE: u64 = 24;

fn fail(env: &dyn Env, call: &str, e: MmuError) -> Outcome {
    log::warn!(target: crate::log_limit::GUEST_TARGET, "d{}: {call}: {} ({})", env.domain().id, e.reason, e.errno);
    Outcome::Return(e.errno.to_return())
}

fn read_words<const N: usize>(env: &dyn Env, va: u64) -> Result<[u64; N], MmuError> {
    let mut raw = [0u8; 24];
    let bytes = raw.get_mut(..N * 8).ok_or(MmuError::new(Errno::EINVAL, "request too large"))?;
    env.copy_from_guest(va, bytes).map_err(|e| MmuError::new(e, "request not readable"))?;
    let mut words = [0u64; N];
    for (w, chunk) in words.iter_mut().zip(raw.chunks_exact(8)) {
        *w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
    }
    Ok(words)
}

/// Checks `foreigndom`'s page owner (bits 0-15) and page-table owner (bits 16-31): only the
/// caller itself is supported (`DOMID_SELF`, or `DOMID_IO` for device frames, which the MMU
/// checks against the caller's I/O rights). Other domains are `-ESRCH` until foreign
/// mappings exist, and so is the caller's own id as page owner (Xen's `get_pg_owner`:
/// "Cannot specify itself as foreign domain"); as page-table owner (id + 1) it is allowed.
fn check_foreigndom(env: &dyn Env, foreigndom: u64) -> Result<(), MmuError> {
    let own = env.domain().id;
    let page_owner = (foreigndom & 0xffff) as u16;
    let table_owner = (foreigndom >> 16) & 0xffff;
    if ![DOMID_SELF, DOMID_IO].contains(&page_owner) {
        return Err(MmuError::new(Errno::ESRCH, "foreign page owner not supported"));
    }
    if table_owner != 0 && table_owner != u64::from(own) + 1 {
        return Err(MmuError::new(Errno::ESRCH, "foreign page-table owner not supported"));
    }
    Ok(())
}

/// Starts this entry's MMU budget ([`WORK_BUDGET`]) and releases the tables a preempted
/// earlier operation left on the vCPU's release stack: the vCPU's `VcpuPaging::work` then.
/// `Err(Continue(a))` (run this call again, nothing done) if they are not all released
/// within the budget, so no operation ever sees a release half done; `Err(-ENOSYS)` without
/// an MMU.
pub(super) fn start_mmu_entry(env: &mut dyn Env, a: [u64; 5]) -> Result<u64, Outcome> {
    let Some(mut mmu) = env.mmu() else {
        return Err(Outcome::Return(Errno::ENOSYS.to_return()));
    };
    if mmu.begin_entry() {
        Ok(mmu.paging.work)
    } else {
        Err(Outcome::Continue(a))
    }
}

/// Where the vCPU's page-table work stands after one entry of a batch.
struct Progress {
    /// `VcpuPaging::work`.
    work: u64,
    /// Tables wait on the release stack.
    releases_pending: bool,
}

impl Progress {
    fn of(mmu: &crate::mm::MmuAccess<'_>) -> Self {
        Self { work: mmu.paging.work, releases_pending: !mmu.paging.releasing.is_empty() }
    }
}

/// Runs one batch of a list hypercall `(list, count, done*, foreigndom)`. `one` runs an
/// entry and says where the page-table work stands after it.
fn run_batch(
    env: &mut dyn Env,
    call: &str,
    a: [u64; 5],
    entry_size: u64,
    mut one: impl FnMut(&mut dyn Env, u64) -> Result<Progress, MmuError>,
) -> Outcome {
    let (list, raw_count, pdone) = (a[0], a[1] & 0xffff_ffff, a[2]);
    let work_at_start = match start_mmu_entry(env, a) {
        Ok(work) => work,
        Err(outcome) => return outcome,
    };
    let count = raw_count & !PREEMPTED;
    let mut done = 0u32;
    if raw_count & PREEMPTED != 0 && pdone != 0 {
        // A continuation: add to what earlier runs reported (unreadable counts as 0, as Xen).
        let mut b = [0u8; 4];
        if env.copy_from_guest(pdone, &mut b).is_ok() {
            done = u32::from_le_bytes(b);
        }
    }
    let mut this = count.min(BATCH);
    let mut failure = check_foreigndom(env, a[3]).err();
    let mut finished = 0u64;
    while failure.is_none() && finished < this {
        let entry = list.wrapping_add(finished * entry_size);
        match one(env, entry) {
            Ok(progress) => {
                finished += 1;
                if progress.work.wrapping_sub(work_at_start) >= WORK_BUDGET || progress.releases_pending {
                    // The rest in the next entry (which first finishes the releases).
                    this = finished;
                }
            }
            // Part way through a validation: this entry again, in the next hypervisor entry.
            Err(e) if e.is_preempted() => this = finished,
            Err(e) => failure = Some(e),
        }
    }
    done = done.wrapping_add(finished as u32);
    if pdone != 0 {
        // Xen ignores a fault here too: the entries are done either way.
        let _ = env.copy_to_guest(pdone, &done.to_le_bytes());
    }
    match failure {
        Some(e) => fail(env, call, e),
        // Tables the batch dropped are still being released: the call is not over until
        // they are (the continuation finishes them first), even with no entries left.
        None if count > this || env.page_releases_pending() => {
            Outcome::Continue([list.wrapping_add(this * entry_size), (count - this) | PREEMPTED, pdone, a[3], a[4]])
        }
        None => Outcome::Return(0),
    }
}

/// Adds a guest-requested flush to the pending effects, reading a vCPU mask if it names one
/// (`mask_fault` is what an unreadable mask gives: `-EINVAL` for mmuext, `-EFAULT` for
/// update_va_mapping). One vCPU per domain: "all" is this vCPU, a mask concerns us if bit 0
/// is set.
fn apply_flush(env: &mut dyn Env, request: FlushRequest, mask_fault: Errno) -> Result<(), MmuError> {
    let concerns_us = match request.scope {
        FlushScope::Local | FlushScope::AllVcpus => true,
        FlushScope::VcpuMask(va) => {
            let [mask] = read_words::<1>(env, va).map_err(|_| MmuError::new(mask_fault, "vCPU mask not readable"))?;
            mask & 1 != 0
        }
    };
    if concerns_us {
        let mmu = env.mmu().ok_or(MmuError::new(Errno::ENOSYS, "no MMU"))?;
        mmu.paging.effects.request(request.flush);
    }
    Ok(())
}

/// `mmu_update(list, count, done*, foreigndom)`.
pub fn mmu_update(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // The batch's requests are read with one copy (one walk of the guest's tables instead of
    // one per request); if that copy faults, each request is read on its own so the ones
    // before the bad address still run, as Xen does. (Xen rereads each request as it goes, so
    // a batch that remaps the page holding its own list would see the new page there; here
    // it sees the list as it was when the batch started. Either way the values are the
    // guest's own, so no check depends on it.)
    let list = a[0];
    let n = (a[1] & 0xffff_ffff & !PREEMPTED).min(BATCH) as usize;
    let mut prefetched = [0u8; BATCH as usize * MMU_UPDATE_SIZE as usize];
    let prefetched_ok = n > 0 && env.copy_from_guest(list, &mut prefetched[..n * MMU_UPDATE_SIZE as usize]).is_ok();
    run_batch(env, "mmu_update", a, MMU_UPDATE_SIZE, |env, va| {
        let index = (va.wrapping_sub(list) / MMU_UPDATE_SIZE) as usize;
        let [ptr, val] = if prefetched_ok && index < n {
            let at = index * MMU_UPDATE_SIZE as usize;
            let word = |o: usize| u64::from_le_bytes(prefetched[at + o..at + o + 8].try_into().unwrap_or_default());
            [word(0), word(8)]
        } else {
            read_words::<2>(env, va)?
        };
        let mut mmu = env.mmu().ok_or(MmuError::new(Errno::ENOSYS, "no MMU"))?;
        mmu.mmu_update(MmuUpdate { ptr, val })?;
        Ok(Progress::of(&mmu))
    })
}

/// `mmuext_op(ops, count, done*, foreigndom)`.
pub fn mmuext_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    // Xen's `do_mmuext_op` takes `foreigndom` as a `domid_t`: a page owner only.
    let mut a = a;
    a[3] &= 0xffff;
    run_batch(env, "mmuext_op", a, MMUEXT_OP_SIZE, |env, va| {
        let [cmd, arg1, arg2] = read_words::<3>(env, va)?;
        let op = MmuextOp { cmd: cmd as u32, arg1, arg2 };
        let (request, progress) = {
            let mut mmu = env.mmu().ok_or(MmuError::new(Errno::ENOSYS, "no MMU"))?;
            (mmu.mmuext_op(&op)?, Progress::of(&mmu))
        };
        apply_flush(env, request, Errno::EINVAL)?;
        Ok(progress)
    })
}

/// `update_va_mapping(va, new_pte, flags)`.
pub fn update_va_mapping(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let (va, new_pte, flags) = (a[0], a[1], a[2]);
    let result = match env.mmu() {
        Some(mut mmu) => {
            // Its own MMU entry: the release stack first (as `start_mmu_entry`).
            if !mmu.begin_entry() {
                return Outcome::Continue(a);
            }
            mmu.update_va_mapping(va, new_pte, flags)
        }
        None => return Outcome::Return(Errno::ENOSYS.to_return()),
    };
    match result.and_then(|request| apply_flush(env, request, Errno::EFAULT)) {
        Ok(()) => Outcome::Return(0),
        // Releasing an old table use of the new target ran out of budget: again, later.
        Err(e) if e.is_preempted() => Outcome::Continue(a),
        Err(e) => {
            // Xen's `__do_update_va_mapping` flushes as asked even when the update failed.
            let _ = apply_flush(env, FlushRequest::of_update_va_mapping(va, flags), Errno::EFAULT);
            fail(env, "update_va_mapping", e)
        }
    }
}

#[cfg(test)]
#[path = "mmu_tests.rs"]
mod mmu_tests;
