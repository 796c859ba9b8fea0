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
use hypercall_abi::mm::{
    MmuUpdate, MmuextOp, DOMID_IO, DOMID_SELF, DOMID_XEN, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE,
    MMUEXT_FLUSH_CACHE_GLOBAL, MMUEXT_MARK_SUPER, MMUEXT_NEW_BASEPTR, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L1_TABLE,
    MMUEXT_SET_LDT, MMUEXT_UNMARK_SUPER, MMUEXT_UNPIN_TABLE, MMU_UPDATE_PREEMPTED,
};

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

/// Which MMU list hypercall a `foreigndom` is checked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListCall {
    MmuUpdate,
    MmuextOp,
}

/// What `foreigndom` allows, as Xen's `get_pg_owner` and the default XSM policy judge it.
#[derive(Debug, PartialEq, Eq)]
enum ForeignDom {
    /// The caller's own frames (`DOMID_SELF`; for `mmu_update`, also `DOMID_IO`: device
    /// frames, which the MMU checks against the caller's I/O rights).
    Own,
    /// The control domain naming `DOMID_IO` for `mmuext_op`: Xen's page owner is then
    /// `dom_io`, which owns no RAM, so each operation fails as [`io_owner_refusal`] says.
    IoOwner,
    /// The whole call is refused (`get_pg_owner` found no owner: `-ESRCH`; the caller may
    /// not name that owner: `-EPERM`, checked by `do_mmuext_op` before any operation).
    Refused(MmuError),
    /// `mmu_update` refuses each request it would run (Xen's `xsm_mmu_update` runs per
    /// request, after the request is read and its command known, so an empty list still
    /// succeeds and an unknown command is still `-ENOSYS`): a domain other than the control
    /// domain naming another domain as page or page-table owner.
    RefusedPerRequest(MmuError),
}

/// Checks `foreigndom`'s page owner (bits 0-15) and, for `mmu_update`, its page-table owner
/// (bits 16-31, domain id + 1; 0 is the caller), in Xen's order: an owner that does not
/// exist is `-ESRCH`, and so is the caller's own id as page owner (`get_pg_owner`: "Cannot
/// specify itself as foreign domain"; as page-table owner it is fine); a domain other than
/// the control domain naming another domain, `DOMID_XEN`, or for `mmuext_op` `DOMID_IO`, is
/// refused `-EPERM` by the default XSM policy. The control domain naming another domain is
/// `-ESRCH` here: foreign mappings are not supported (README, limits).
fn check_foreigndom(env: &dyn Env, foreigndom: u64, call: ListCall) -> ForeignDom {
    let me = env.domain();
    let page_owner = (foreigndom & 0xffff) as u16;
    let table_owner = (foreigndom >> 16) & 0xffff;
    let exists = |id: u16| id != me.id && env.domain_facts_of(id).is_some();
    let denied = MmuError::new(Errno::EPERM, "only the control domain may name another owner");
    let unsupported = MmuError::new(Errno::ESRCH, "foreign owners are not supported");
    let mut per_request = None;
    match page_owner {
        DOMID_SELF => {}
        DOMID_IO if call == ListCall::MmuUpdate => {}
        DOMID_IO if me.privileged => return ForeignDom::IoOwner,
        DOMID_IO => return ForeignDom::Refused(denied),
        id if id == me.id => return ForeignDom::Refused(MmuError::new(Errno::ESRCH, "own id as foreign domain")),
        id if id == DOMID_XEN || exists(id) => {
            if me.privileged {
                return ForeignDom::Refused(unsupported);
            }
            if call == ListCall::MmuextOp {
                return ForeignDom::Refused(denied);
            }
            per_request = Some(denied);
        }
        _ => return ForeignDom::Refused(MmuError::new(Errno::ESRCH, "no such page owner")),
    }
    if call == ListCall::MmuUpdate && table_owner != 0 && table_owner != u64::from(me.id) + 1 {
        let id = (table_owner - 1) as u16;
        if !exists(id) {
            return ForeignDom::Refused(MmuError::new(Errno::ESRCH, "no such page-table owner"));
        }
        if me.privileged {
            return ForeignDom::Refused(unsupported);
        }
        per_request.get_or_insert(denied);
    }
    match per_request {
        Some(e) => ForeignDom::RefusedPerRequest(e),
        None => ForeignDom::Own,
    }
}

/// How an `mmuext_op` fails for the control domain with `DOMID_IO` as page owner (Xen's
/// `do_mmuext_op` with `pg_owner = dom_io`): operations on a frame look it up as `dom_io`'s
/// and find none (`-EINVAL`); the others act on the caller only and refuse a foreign owner
/// (`-EPERM`); superpage marks are `-EOPNOTSUPP` and unknown commands `-ENOSYS` either way.
fn io_owner_refusal(cmd: u32) -> MmuError {
    match cmd {
        MMUEXT_PIN_L1_TABLE..=MMUEXT_UNPIN_TABLE | MMUEXT_CLEAR_PAGE | MMUEXT_COPY_PAGE => {
            MmuError::new(Errno::EINVAL, "no frame of DOMID_IO")
        }
        MMUEXT_NEW_BASEPTR..=MMUEXT_SET_LDT | MMUEXT_NEW_USER_BASEPTR | MMUEXT_FLUSH_CACHE_GLOBAL => {
            MmuError::new(Errno::EPERM, "foreign page owner")
        }
        MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => MmuError::new(Errno::EOPNOTSUPP, "superpages"),
        _ => MmuError::new(Errno::ENOSYS, "unknown mmuext command"),
    }
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
/// entry (given the refusal `foreigndom` imposes on every request, if any) and says where
/// the page-table work stands after it.
fn run_batch(
    env: &mut dyn Env,
    call: ListCall,
    a: [u64; 5],
    entry_size: u64,
    mut one: impl FnMut(&mut dyn Env, u64, Option<MmuError>) -> Result<Progress, MmuError>,
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
    let foreign = check_foreigndom(env, a[3], call);
    let mut failure = match &foreign {
        ForeignDom::Refused(e) => Some(*e),
        _ => None,
    };
    let per_request = match foreign {
        ForeignDom::RefusedPerRequest(e) => Some(e),
        _ => None,
    };
    let mut finished = 0u64;
    while failure.is_none() && finished < this {
        let entry = list.wrapping_add(finished * entry_size);
        let result = if foreign == ForeignDom::IoOwner {
            // Each operation fails (the first one ends the batch): unreadable, or as Xen
            // fails it for `dom_io`.
            read_words::<1>(env, entry).and_then(|[cmd]| Err(io_owner_refusal(cmd as u32)))
        } else {
            one(env, entry, per_request)
        };
        match result {
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
        Some(e) => fail(env, if call == ListCall::MmuUpdate { "mmu_update" } else { "mmuext_op" }, e),
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
    run_batch(env, ListCall::MmuUpdate, a, MMU_UPDATE_SIZE, |env, va, refused| {
        let index = (va.wrapping_sub(list) / MMU_UPDATE_SIZE) as usize;
        let [ptr, val] = if prefetched_ok && index < n {
            let at = index * MMU_UPDATE_SIZE as usize;
            let word = |o: usize| u64::from_le_bytes(prefetched[at + o..at + o + 8].try_into().unwrap_or_default());
            [word(0), word(8)]
        } else {
            read_words::<2>(env, va)?
        };
        // The owners' check comes once the command is known (`ptr & 7`: the page-table and
        // M2P updates, 0-3; another command is -ENOSYS from the MMU below).
        if let Some(e) = refused.filter(|_| ptr & 7 <= 3) {
            return Err(e);
        }
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
    run_batch(env, ListCall::MmuextOp, a, MMUEXT_OP_SIZE, |env, va, _| {
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
