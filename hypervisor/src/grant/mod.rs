//! Grant tables, version 1 (digest §5.2-5.3): the per-domain shared grant entries, the
//! active (pinned) entries, the mappers' maptrack, and the `GNTTABOP_*` operations, as
//! generic host-tested code. The hypercall layer is `crate::hypercalls::grant`.
//!
//! # Model
//!
//! Each domain has a [`DomainGrants`]: up to `max_frames` (default 64, Xen 4.17's
//! `max_grant_frames`) frames of `grant_entry_v1`, 512 per frame, that the hypervisor
//! allocates and shares with the domain (`FrameTable::share_with_guest`: Writable for good,
//! never a page table, never granted on); `setup_table` returns their MFNs for the guest to map.
//! One frame exists from the start (Xen's `INITIAL_NR_GRANT_FRAMES`), so the toolstack can
//! write grefs 0 and 1 before the guest runs ([`GrantTables::set_entry`]).
//!
//! While a grant is in use (mapped, or during a copy) its *active entry* pins it, with Xen's
//! four counters in `pin` (host/device × writable/read-only), and records the mapping domain
//! and the frame read from the shared entry when the first pin was taken. The hypervisor sets
//! `GTF_reading` (and `GTF_writing` for writable use) in the shared entry while pinned and
//! clears them when the last such pin goes, so the granter knows when it may revoke.
//!
//! References: a **host** mapping's references belong to its PTE (see `crate::mm`'s
//! `grant_map.rs`): a general reference on the granted frame, plus a Writable type reference
//! if it is writable. A **device** mapping holds the same pair itself. So while mapped the
//! frame cannot be freed (`free_domain_frame` answers `-EBUSY`), and while writably mapped it
//! cannot become a page table or descriptor table. A read-only mapping does not stop the
//! granter from using the frame as a page table: the mapper can only read it (as in Xen).
//!
//! # Revocation while mapped
//!
//! Version 1 has no forced revocation, and we do what Xen does: a granter that clears
//! `GTF_permit_access` (or rewrites the entry) while the grant is pinned changes nothing for
//! the existing mappings, which stay valid until the mapper unmaps them; the frame stays
//! referenced, so it cannot be freed or retyped under the mapper. While the entry stays
//! pinned, the active entry (mapper, frame) is what counts: the same mapper may map it again
//! (a writable map still checks `GTF_readonly`), any other domain is refused
//! (`GNTST_general_error`). The granter's protocol (§5.2: revoke only with a cmpxchg while
//! neither `GTF_reading` nor `GTF_writing` is set) is what makes reuse safe for the granter's
//! own data; the hypervisor only guarantees that nobody else's memory is reachable.
//!
//! # What the kernel must do
//!
//! 1. **State.** One [`GrantTables`] for the machine. When creating domain `id` (after its
//!    frames are assigned in the `FrameTable`), call
//!    `grants.add_domain(id, GrantConfig::default(), &mut frames, &mut mem, &mut pool)`; it
//!    allocates the first grant frame from `pool` ([`FramePool`]: hypervisor-owned,
//!    unreferenced frames from the frame allocator; the grant code zeroes and shares them).
//!    It refuses (`-EEXIST`) an id whose previous incarnation is still a zombie (below):
//!    do not reuse such an id yet.
//! 2. **Env method.** `Env::grants` returns a [`GrantAccess`] built like `Env::mmu`:
//!    ```text
//!    fn grants(&mut self) -> Option<GrantAccess<'_>> {
//!        let d = self.domains.get_mut(&self.current)?;
//!        let rights = DomainRights { id: d.id, io_capable: d.privileged };
//!        Some(GrantAccess {
//!            tables: &mut self.grants,
//!            mmu: Mmu::new(&mut self.frames, &mut self.mem, &self.hypervisor_slots, rights,
//!                          &mut d.vcpu.paging),
//!            pool: &mut self.grant_pool, // impl FramePool over the frame allocator
//!            privileged: d.privileged,
//!            running_elsewhere: RunningElsewhere::new(/* domains loaded on other CPUs */),
//!        })
//!    }
//!    ```
//! 3. **TLB flushes.** Unmaps (and maps that replace a present entry) record their flush in
//!    the vCPU's `PendingEffects`, as the MMU does. After every `grant_table_op` (whatever
//!    its outcome) take and apply the effects before *any* domain runs again: the unmap
//!    already dropped the frame's references, so the granter could free or retype the frame
//!    as soon as it runs. A vCPU runs on the one CPU it is pinned to, so the mapper's stale
//!    translations can only be on the CPU making the call: a local flush is enough.
//! 4. **Teardown** of domain `id`, before its MMU release:
//!    `while grants.release_domain(id, &mut frames, &mut mem, BUDGET) == MoreWork {}`.
//!    This drops what `id` holds as a mapper: its device-mapping references and every pin it
//!    holds in other tables (clearing their `GTF_reading/writing`); its host mappings'
//!    references go with its page tables in `Mmu::release_domain`, as in Xen PV. Its own
//!    table stops accepting maps and copies; its grant frames are queued for freeing.
//!    If other domains still map its frames, the table stays as a *zombie* holding only the
//!    active entries, so they can still unmap, and `free_domain_frame` keeps refusing those
//!    frames (`-EBUSY`, which the teardown logs): they are freed later by `reap`.
//! 5. **Reaping.** After the teardown's MMU release and frame frees, and after every
//!    `grant_table_op` when [`GrantTables::has_pending`] is true, call
//!    `grants.reap(&mut frames)` and return every MFN it gives to the frame allocator:
//!    dead domains' grant frames (once the MMU release gave them back to the hypervisor) and
//!    dead granters' frames whose last mapping went (already taken back from the domain).

mod copy;
mod ops;
mod teardown;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_copy;
#[cfg(test)]
mod tests_copy_random;
#[cfg(test)]
mod tests_random;
#[cfg(test)]
mod tests_review;
#[cfg(test)]
mod tests_teardown;

pub use copy::{decode_copy_request, COPY_REQUEST_SIZE};
pub use ops::{MapDone, PIN_DEVR_INC, PIN_DEVW_INC, PIN_HSTR_INC, PIN_HSTW_INC};

use crate::domid_map::DomIdMap;
use crate::mm::{FrameTable, MachineMemory, Mmu};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::{GrantEntryV1, GrantHandle, GrantRef, GRANT_ENTRIES_V1_PER_FRAME};
use hypercall_abi::mm::DomId;

/// Xen 4.17's default `max_grant_frames` (xl keeps it unless the config sets it).
pub const DEFAULT_MAX_GRANT_FRAMES: u32 = 64;
/// Frames a table has from the start (Xen's `INITIAL_NR_GRANT_FRAMES`).
pub const INITIAL_NR_GRANT_FRAMES: u32 = 1;
/// Default bound on one domain's live mapping handles. Xen's default (1024 maptrack frames,
/// 262144 handles) would let one guest make the hypervisor allocate megabytes; this bound
/// is ample for the split drivers and keeps the heap use of a hostile guest small.
pub const DEFAULT_MAX_MAPTRACK_HANDLES: u32 = 16384;
/// Grant entries per grant frame.
pub const ENTRIES_PER_FRAME: u32 = GRANT_ENTRIES_V1_PER_FRAME as u32;

/// Where grant frames come from: the hypervisor's frame allocator.
pub trait FramePool {
    /// A hypervisor-owned, unreferenced frame (its contents need not be zero), or `None`.
    fn alloc_frame(&mut self) -> Option<u64>;
    /// Gives back a frame [`alloc_frame`](Self::alloc_frame) returned (only used to undo a
    /// failed grow, before the frame was shared).
    fn free_frame(&mut self, mfn: u64);
}

/// Per-domain limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantConfig {
    /// Most grant frames (`max_grant_frames`).
    pub max_frames: u32,
    /// Most live mapping handles.
    pub max_maptrack: u32,
}

impl Default for GrantConfig {
    fn default() -> Self {
        Self { max_frames: DEFAULT_MAX_GRANT_FRAMES, max_maptrack: DEFAULT_MAX_MAPTRACK_HANDLES }
    }
}

/// A pinned grant (Xen's `active_grant_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ActiveEntry {
    /// Xen's four 8-bit pin counters (see `PIN_*_INC`).
    pin: u32,
    /// The only domain that may use the grant while it is pinned.
    mapper: DomId,
    /// The frame read from the shared entry at the first pin.
    mfn: u64,
}

/// One mapping a domain made (Xen's `grant_mapping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MapTrack {
    granter: DomId,
    gref: GrantRef,
    /// The `GNTMAP_*` flags still in force (host/device, readonly, contains_pte).
    flags: u32,
}

/// One domain's grant table, and the mappings it made in others'.
#[derive(Debug)]
pub struct DomainGrants {
    /// The shared grant frames (empty once the domain died).
    frames: Vec<u64>,
    config: GrantConfig,
    /// Pinned entries of this table, by reference.
    active: BTreeMap<GrantRef, ActiveEntry>,
    /// This domain's mappings, indexed by handle.
    maptrack: Vec<Option<MapTrack>>,
    /// Handles free for reuse, oldest first (so a stale handle stays invalid a while).
    free_handles: VecDeque<GrantHandle>,
    /// The domain is being torn down (no new maps or copies against its table).
    dying: bool,
    /// Teardown progress through `maptrack`.
    release_next: usize,
    /// After teardown: frames of this (dead) domain still mapped by others when it died,
    /// with how many active entries still use each.
    orphan_uses: BTreeMap<u64, u32>,
    /// Orphans no active entry uses any more: [`GrantTables::reap`] takes them back. Filled
    /// by the unpin that ends an orphan's last use, so reaping never searches for them.
    orphans_ready: Vec<u64>,
}

impl DomainGrants {
    fn new(config: GrantConfig) -> Self {
        Self {
            frames: Vec::new(),
            config,
            active: BTreeMap::new(),
            maptrack: Vec::new(),
            free_handles: VecDeque::new(),
            dying: false,
            release_next: 0,
            orphan_uses: BTreeMap::new(),
            orphans_ready: Vec::new(),
        }
    }

    /// Number of grant entries (`nr_grant_entries`).
    fn nr_entries(&self) -> u32 {
        (self.frames.len() as u32).saturating_mul(ENTRIES_PER_FRAME)
    }

    /// A free mapping handle: a fresh one while under `max_maptrack` and the heap allows
    /// the growth, else the oldest freed one; `None` when there is neither.
    fn alloc_handle(&mut self) -> Option<GrantHandle> {
        // Fresh handles first; reuse only when the bound is reached.
        if self.maptrack.len() < self.config.max_maptrack as usize && self.reserve_handle() {
            self.maptrack.push(None);
            return Some((self.maptrack.len() - 1) as GrantHandle);
        }
        self.free_handles.pop_front()
    }

    /// Room for one more handle, in `maptrack` and in `free_handles` (which can then take
    /// every handle back without allocating: freeing never fails), if the heap's share for
    /// guests allows the growth ([`crate::heap`]).
    fn reserve_handle(&mut self) -> bool {
        let len = self.maptrack.len();
        let grow_tracks = if len < self.maptrack.capacity() { 0 } else { len.max(4) };
        let grow_free = if len < self.free_handles.capacity() { 0 } else { len.max(4) };
        let bytes =
            grow_tracks * core::mem::size_of::<Option<MapTrack>>() + grow_free * core::mem::size_of::<GrantHandle>();
        bytes == 0
            || (crate::heap::guest_may_take(bytes)
                && self.maptrack.try_reserve(grow_tracks.max(1)).is_ok()
                && self.free_handles.try_reserve((len + 1).saturating_sub(self.free_handles.len())).is_ok())
    }

    fn free_handle(&mut self, handle: GrantHandle) {
        if let Some(slot) = self.maptrack.get_mut(handle as usize) {
            *slot = None;
            self.free_handles.push_back(handle);
        }
    }
}

/// The grant tables of every domain.
#[derive(Debug, Default)]
pub struct GrantTables {
    tables: DomIdMap<DomainGrants>,
    /// Dead domains' grant frames, to be freed once the hypervisor owns them again.
    dead_table_frames: Vec<u64>,
    /// The batched copy's request buffer (`copy.rs`), kept from one call to the next so that
    /// no call has to zero one: every byte of it a call uses is first read from the guest.
    copy_list: RequestBuffer,
}

/// Guest bytes kept between calls: their `Debug` shows only the size, so that printing the
/// tables cannot show one domain's last requests.
#[derive(Default)]
struct RequestBuffer(Vec<u8>);

impl core::fmt::Debug for RequestBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RequestBuffer({} bytes)", self.0.len())
    }
}

impl GrantTables {
    /// No domains.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates `id`'s table with its first frame (see the module documentation, step 1).
    /// `-EEXIST` if `id` has a table (live or zombie), `-EINVAL` for a config with fewer
    /// than one frame, `-ENOMEM` if `pool` has no frame.
    pub fn add_domain<M: MachineMemory + ?Sized>(
        &mut self,
        id: DomId,
        config: GrantConfig,
        frames: &mut FrameTable,
        mem: &mut M,
        pool: &mut dyn FramePool,
    ) -> Result<(), Errno> {
        if self.tables.contains_key(&id) {
            return Err(Errno::EEXIST);
        }
        if config.max_frames < INITIAL_NR_GRANT_FRAMES {
            return Err(Errno::EINVAL);
        }
        let mut t = DomainGrants::new(config);
        grow(&mut t, id, INITIAL_NR_GRANT_FRAMES, frames, mem, pool)?;
        self.tables.insert(id, t);
        Ok(())
    }

    /// Whether `id` has a live table (not dying or dead).
    pub fn is_live(&self, id: DomId) -> bool {
        self.tables.get(&id).is_some_and(|t| !t.dying)
    }

    /// Whether `id` has any table, including a zombie left by a dead domain.
    pub fn has_table(&self, id: DomId) -> bool {
        self.tables.contains_key(&id)
    }

    /// The MFNs of `id`'s grant frames.
    pub fn table_frames(&self, id: DomId) -> Option<&[u64]> {
        self.tables.get(&id).map(|t| t.frames.as_slice())
    }

    /// Writes grant entry `gref` of `id` as the toolstack does (grefs 0 and 1 for the
    /// console and xenstore rings of a domU). `-EINVAL` if out of the table.
    pub fn set_entry<M: MachineMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        id: DomId,
        gref: GrantRef,
        entry: GrantEntryV1,
    ) -> Result<(), Errno> {
        let t = self.tables.get(&id).ok_or(Errno::EINVAL)?;
        let (mfn, index) = entry_location(&t.frames, gref).ok_or(Errno::EINVAL)?;
        mem.write_entry(mfn, index, encode(entry));
        Ok(())
    }

    /// Reads grant entry `gref` of `id`.
    pub fn entry<M: MachineMemory + ?Sized>(&self, mem: &M, id: DomId, gref: GrantRef) -> Option<GrantEntryV1> {
        read_shared(mem, &self.tables.get(&id)?.frames, gref).map(|(e, _)| e)
    }

    /// The pin counters of `id`'s entry `gref` (0: not in use).
    pub fn pin(&self, id: DomId, gref: GrantRef) -> u32 {
        self.tables.get(&id).and_then(|t| t.active.get(&gref)).map_or(0, |a| a.pin)
    }

    /// How many live mapping handles `id` holds.
    pub fn mapping_count(&self, id: DomId) -> usize {
        self.tables.get(&id).map_or(0, |t| t.maptrack.iter().filter(|m| m.is_some()).count())
    }

    #[inline]
    fn live(&self, id: DomId) -> Option<&DomainGrants> {
        self.tables.get(&id).filter(|t| !t.dying)
    }

    fn live_mut(&mut self, id: DomId) -> Option<&mut DomainGrants> {
        self.tables.get_mut(&id).filter(|t| !t.dying)
    }
}

/// Grows `t` (of domain `id`) to `want` frames: each new frame is allocated, zeroed and
/// shared with the domain. Nothing changes on failure (`-ENOMEM`, also when the frame list
/// would eat into the heap's reserve).
fn grow<M: MachineMemory + ?Sized>(
    t: &mut DomainGrants,
    id: DomId,
    want: u32,
    frames: &mut FrameTable,
    mem: &mut M,
    pool: &mut dyn FramePool,
) -> Result<(), Errno> {
    let have = t.frames.len();
    let more = (want as usize).saturating_sub(have);
    if !crate::heap::guest_may_take(more * core::mem::size_of::<u64>()) || t.frames.try_reserve_exact(more).is_err() {
        return Err(Errno::ENOMEM);
    }
    while t.frames.len() < want as usize {
        let shared = pool.alloc_frame().and_then(|mfn| {
            if frames.share_with_guest(mfn, id).is_ok() {
                Some(mfn)
            } else {
                pool.free_frame(mfn);
                None
            }
        });
        let Some(mfn) = shared else {
            for mfn in t.frames.drain(have..) {
                // Freshly shared and never mapped: only the permanent reference to undo.
                if frames.unshare_fresh_frame(mfn).is_ok() {
                    pool.free_frame(mfn);
                }
            }
            return Err(Errno::ENOMEM);
        };
        for i in 0..GRANT_ENTRIES_V1_PER_FRAME {
            mem.write_entry(mfn, i, 0);
        }
        t.frames.push(mfn);
    }
    Ok(())
}

/// What a grant operation works with: every domain's tables, the MMU of the calling vCPU
/// (frame table, machine memory, its roots and pending flushes; `mmu.domain` is the caller)
/// and the frame pool for growing tables. Built per hypercall by `Env::grants`, over
/// type-erased memory; `Env::copy_grants` builds it over the machine's own memory type, so
/// that the batched copy's memory accesses are direct calls the compiler can inline. (Under
/// QEMU's TCG every call and return is a translation-block lookup: the four a request made
/// through `dyn MachineMemory` were about a tenth of a batched 4 KiB copy's overhead.)
pub struct GrantAccess<'a, M: MachineMemory + ?Sized + 'a = dyn MachineMemory + 'a> {
    /// Every domain's grant state.
    pub tables: &'a mut GrantTables,
    /// The caller's MMU (its `domain.id` is the calling domain).
    pub mmu: Mmu<'a, M>,
    /// Frames for `setup_table` to grow tables with.
    pub pool: &'a mut dyn FramePool,
    /// The caller is the control domain: it may set up and query other domains' tables.
    pub privileged: bool,
    /// Domains that may run on other CPUs while this operation runs: they can change their
    /// grant entries under it, so a copy from or to their grants pins them (see `copy.rs`).
    pub running_elsewhere: RunningElsewhere,
}

impl<'a, M: MachineMemory + 'a> GrantAccess<'a, M> {
    /// The same access over type-erased memory (what `Env::grants` hands out).
    pub fn erase(self) -> GrantAccess<'a> {
        let Self { tables, mmu, pool, privileged, running_elsewhere } = self;
        GrantAccess { tables, mmu: mmu.erase(), pool, privileged, running_elsewhere }
    }
}

/// A few domain ids (at most [`RunningElsewhere::CAPACITY`]): those loaded on other CPUs.
#[derive(Clone, Copy, Default, Debug)]
pub struct RunningElsewhere {
    ids: [DomId; Self::CAPACITY],
    len: usize,
}

impl RunningElsewhere {
    /// How many ids it holds at most (one per other CPU).
    pub const CAPACITY: usize = 8;

    /// The set of `ids` (those beyond the capacity are dropped: callers have fewer CPUs).
    pub fn new(ids: impl IntoIterator<Item = DomId>) -> Self {
        let mut set = Self::default();
        for id in ids {
            if set.len < Self::CAPACITY && !set.contains(id) {
                set.ids[set.len] = id;
                set.len += 1;
            }
        }
        set
    }

    /// Whether `id` is one of them.
    #[inline(always)]
    pub fn contains(&self, id: DomId) -> bool {
        self.ids[..self.len].contains(&id)
    }

    /// Whether no domain runs elsewhere (always so with one CPU).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// `(frame, index)` of entry `gref` in a table made of `frames`.
fn entry_location(frames: &[u64], gref: GrantRef) -> Option<(u64, usize)> {
    let frame = *frames.get((gref / ENTRIES_PER_FRAME) as usize)?;
    Some((frame, (gref % ENTRIES_PER_FRAME) as usize))
}

/// The 8-byte little-endian word of an entry: flags (bits 0-15), domid (16-31), frame (32-63).
fn encode(e: GrantEntryV1) -> u64 {
    u64::from(e.flags) | u64::from(e.domid) << 16 | u64::from(e.frame) << 32
}

fn decode(w: u64) -> GrantEntryV1 {
    GrantEntryV1 { flags: w as u16, domid: (w >> 16) as u16, frame: (w >> 32) as u32 }
}

fn read_shared<M: MachineMemory + ?Sized>(mem: &M, frames: &[u64], gref: GrantRef) -> Option<(GrantEntryV1, u64)> {
    let (mfn, index) = entry_location(frames, gref)?;
    let word = mem.read_entry(mfn, index);
    Some((decode(word), word))
}

/// Sets `set` in entry `gref`'s flags if the entry still holds `seen` (one atomic
/// compare-and-exchange: its granter may write it from another CPU). Returns whether it did.
fn set_flags_if_unchanged<M: MachineMemory + ?Sized>(
    mem: &mut M,
    frames: &[u64],
    gref: GrantRef,
    seen: u64,
    set: u16,
) -> bool {
    entry_location(frames, gref)
        .is_some_and(|(mfn, index)| mem.compare_exchange_entry(mfn, index, seen, seen | u64::from(set)))
}

/// Clears `clear` in entry `gref`'s flags, keeping the guest's own fields (atomically, as the
/// granter may write them meanwhile). No-op for an entry outside `frames` (a dead domain's
/// table has none).
fn clear_flags<M: MachineMemory + ?Sized>(mem: &mut M, frames: &[u64], gref: GrantRef, clear: u16) {
    if let Some((mfn, index)) = entry_location(frames, gref) {
        mem.clear_entry_bits(mfn, index, u64::from(clear));
    }
}
