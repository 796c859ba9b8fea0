//! The frame table: Xen's per-frame `page_info` (digest §4.6) and the M2P.
//!
//! Every machine frame has an owner, a type with a type count, a general reference count and
//! the pinned/validated bits. The counting rules that use these fields live in `mmu.rs`; this
//! file holds the data and the operations the hypervisor itself performs on frames (giving a
//! frame to a domain, sharing a hypervisor page, freeing a frame), the per-domain page count
//! (Xen's `tot_pages`) and the frames released to the hypervisor since the kernel last
//! collected them.

use super::MmuError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::ops::Range;
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::DomId;

/// M2P value of a frame that has no pseudo-physical number (Xen's `INVALID_M2P_ENTRY`).
pub const INVALID_M2P_ENTRY: u64 = u64::MAX;

/// Who a machine frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The hypervisor: its own memory and every free frame. No guest may map it.
    Hypervisor,
    /// A domain: it may map the frame and use it as a page table.
    Domain(DomId),
    /// Device memory (MMIO): mappable only by domains with I/O rights, never reference-counted.
    Io,
}

/// The type of a frame: what its contents are currently trusted to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageType {
    /// Never typed since it was assigned.
    None,
    /// Ordinary data, possibly mapped writable (Xen's `PGT_writable_page`).
    Writable,
    /// Level-1 page table (maps 4 KiB pages).
    L1,
    /// Level-2 page table.
    L2,
    /// Level-3 page table.
    L3,
    /// Level-4 page table (a root).
    L4,
}

impl PageType {
    /// The page-table type of `level` (1-4).
    pub const fn table(level: u8) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            _ => PageType::L4,
        }
    }

    /// The level (1-4) of a page-table type, `None` for data types.
    pub const fn level(self) -> Option<u8> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            PageType::None | PageType::Writable => None,
        }
    }

    /// Whether this is one of the page-table types.
    pub const fn is_table(self) -> bool {
        self.level().is_some()
    }
}

/// Xen's `struct page_info` for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Owner. A frame becomes a domain's only through `FrameTable::assign_frame` or
    /// `share_with_guest`, which keep the domain's span (`span_of`) covering it; other code
    /// may only give frames back to the hypervisor.
    pub owner: Owner,
    /// Current type; kept when `type_count` drops to 0 so a re-use as the same table type
    /// is recognised, but meaningless while the count is 0.
    pub page_type: PageType,
    /// References to the type: RW mappings (Writable), higher-level entries, pins, roots.
    pub type_count: u32,
    /// General references: every mapping, entry, pin and root holds one.
    pub ref_count: u32,
    /// A pin holds one type and one general reference.
    pub pinned: bool,
    /// The contents were checked as `page_type` (always true for Writable).
    pub validated: bool,
    /// A table being validated or released in steps (Xen's `PGT_partial` with
    /// `nr_validated_ptes`): its entries `0..partial` hold their references, the rest do
    /// not. 0 for every other frame. Such a frame has no type references and is not
    /// `validated`; it keeps its `page_type`, so it cannot be mapped writable, granted
    /// writable or freed until a later validation finishes it or its release is done.
    pub partial: u16,
    /// On its owner's vCPU's release stack (`VcpuPaging::releasing`), which holds a frame
    /// at most once.
    pub on_release_stack: bool,
    /// A hypervisor page shared with its domain (shared_info): permanently Writable-typed,
    /// never a page table, never freed by the guest, mapped with write-back caching only.
    pub shared_by_hypervisor: bool,
    /// The owner freed the frame (`decrease_reservation`; Xen's `PGC_allocated` cleared) while
    /// something still referenced it: it still belongs to the owner, and is released to the
    /// hypervisor when its last reference goes.
    pub freed_by_owner: bool,
}

// One per machine frame, in the hypervisor's heap: 20 bytes is 10 MiB for 2 GiB of RAM.
const _: () = assert!(core::mem::size_of::<FrameInfo>() <= 20, "FrameInfo grew");

impl FrameInfo {
    const HYPERVISOR: FrameInfo = FrameInfo {
        owner: Owner::Hypervisor,
        page_type: PageType::None,
        type_count: 0,
        ref_count: 0,
        pinned: false,
        validated: false,
        partial: 0,
        on_release_stack: false,
        shared_by_hypervisor: false,
        freed_by_owner: false,
    };

    /// Whether the frame is a page table in use (typed as a table with references).
    pub fn is_live_table(&self) -> bool {
        self.page_type.is_table() && self.type_count > 0
    }
}

/// Memory for one of the table's per-frame arrays: the heap (tests), or memory the kernel
/// provides: frames taken from its allocator at boot, so that neither the table's size nor
/// the machine's RAM is bounded by the heap (the M2P is also mapped for guests).
enum Storage<T: 'static> {
    Owned(Vec<T>),
    Provided(&'static mut [T]),
}

impl<T> core::ops::Deref for Storage<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Storage::Owned(v) => v,
            Storage::Provided(s) => s,
        }
    }
}

impl<T> core::ops::DerefMut for Storage<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Storage::Owned(v) => v,
            Storage::Provided(s) => s,
        }
    }
}

/// Per-frame accounting for every machine frame below `max_mfn`, the M2P, the per-domain
/// page counts and the frames released since the last [`take_released`](Self::take_released).
pub struct FrameTable {
    frames: Storage<FrameInfo>,
    m2p: Storage<u64>,
    /// Frames owned per domain, shared hypervisor pages excluded (Xen's `tot_pages`).
    pages: BTreeMap<DomId, u64>,
    /// Per domain, a range of frames holding every frame it has been given (it only grows):
    /// a teardown walks this range instead of all of memory, as Xen walks `d->page_list`.
    spans: BTreeMap<DomId, Range<u64>>,
    /// Frames that returned to the hypervisor because their owner freed them.
    released: Vec<u64>,
    /// Device frames outside RAM that the hypervisor itself drives (the local APIC, the
    /// I/O APIC): no domain may map them, not even one with I/O rights, as on Xen.
    hypervisor_io: Vec<u64>,
}

impl FrameTable {
    /// A table for frames `0..max_mfn`, all owned by the hypervisor, M2P all invalid, with
    /// the M2P on the heap (tests, or a kernel that does not show the M2P to guests).
    pub fn new(max_mfn: u64) -> Self {
        let n = usize::try_from(max_mfn).unwrap_or(usize::MAX);
        let mut m2p = Vec::new();
        m2p.resize(n, INVALID_M2P_ENTRY);
        Self::with_storage(n, Storage::Owned(m2p), Self::heap_frames(n))
    }

    fn heap_frames(n: usize) -> Storage<FrameInfo> {
        let mut frames = Vec::new();
        frames.resize(n, FrameInfo::HYPERVISOR);
        Storage::Owned(frames)
    }

    /// As [`new`](Self::new), with the M2P in `storage`, which the kernel provides so that it
    /// can map it into every guest read-only and user-readable at `0xFFFF800000000000`
    /// (L4 slot 256, `MACH2PHYS_VIRT_START`): it should be page-aligned and a whole number of
    /// pages. Entry `mfn` is `storage[mfn]`, one little-endian u64 per frame, exactly Xen's
    /// layout. The whole of `storage` is filled with [`INVALID_M2P_ENTRY`] here; afterwards
    /// only this table writes it (`set_m2p`, `MMU_MACHPHYS_UPDATE`, and releases, which
    /// invalidate the entry of a freed frame).
    ///
    /// # Panics
    ///
    /// If `storage.len() < max_mfn`: a kernel configuration error at boot (never guest input).
    pub fn with_m2p_storage(max_mfn: u64, storage: &'static mut [u64]) -> Self {
        let n = usize::try_from(max_mfn).unwrap_or(usize::MAX);
        assert!(storage.len() >= n, "M2P storage of {} entries for {max_mfn:#x} frames", storage.len());
        storage.fill(INVALID_M2P_ENTRY);
        Self::with_storage(n, Storage::Provided(storage), Self::heap_frames(n))
    }

    /// As [`with_m2p_storage`](Self::with_m2p_storage), with the per-frame records in
    /// `records` as well (any memory: they are initialised here), so that nothing the table
    /// needs per frame comes from the heap: 28 bytes per frame of RAM, 28 MiB for 4 GiB.
    ///
    /// # Panics
    ///
    /// If either is shorter than `max_mfn` entries: a kernel configuration error at boot.
    pub fn with_provided_storage(
        max_mfn: u64,
        m2p: &'static mut [u64],
        records: &'static mut [MaybeUninit<FrameInfo>],
    ) -> Self {
        let n = usize::try_from(max_mfn).unwrap_or(usize::MAX);
        assert!(m2p.len() >= n, "M2P storage of {} entries for {max_mfn:#x} frames", m2p.len());
        assert!(records.len() >= n, "frame storage of {} records for {max_mfn:#x} frames", records.len());
        m2p.fill(INVALID_M2P_ENTRY);
        for record in records.iter_mut() {
            record.write(FrameInfo::HYPERVISOR);
        }
        // SAFETY: every element was just written; `MaybeUninit<T>` has `T`'s layout.
        let records = unsafe { &mut *(records as *mut [MaybeUninit<FrameInfo>] as *mut [FrameInfo]) };
        let records = &mut records[..n];
        Self::with_storage(n, Storage::Provided(m2p), Storage::Provided(records))
    }

    fn with_storage(n: usize, m2p: Storage<u64>, frames: Storage<FrameInfo>) -> Self {
        debug_assert!(frames.len() == n && m2p.len() >= n);
        Self {
            frames,
            m2p,
            pages: BTreeMap::new(),
            spans: BTreeMap::new(),
            released: Vec::new(),
            hypervisor_io: Vec::new(),
        }
    }

    /// Reserves device frame `mfn` for the hypervisor: mappings of it are refused to every
    /// domain (`-EPERM`), I/O rights or not.
    pub fn reserve_hypervisor_io(&mut self, mfn: u64) {
        if !self.hypervisor_io.contains(&mfn) {
            self.hypervisor_io.push(mfn);
        }
    }

    /// Whether `mfn` is a device frame the hypervisor keeps for itself.
    pub fn is_hypervisor_io(&self, mfn: u64) -> bool {
        self.hypervisor_io.contains(&mfn)
    }

    /// Number of frames covered (frames at or above are outside RAM: treated as I/O).
    pub fn max_mfn(&self) -> u64 {
        self.frames.len() as u64
    }

    /// The record of `mfn`, if the table covers it.
    pub fn get(&self, mfn: u64) -> Option<&FrameInfo> {
        self.frames.get(usize::try_from(mfn).ok()?)
    }

    pub(super) fn get_mut(&mut self, mfn: u64) -> Option<&mut FrameInfo> {
        self.frames.get_mut(usize::try_from(mfn).ok()?)
    }

    /// Whether `mfn` is covered and owned by `domain`.
    pub fn owned_by(&self, mfn: u64, domain: DomId) -> bool {
        self.get(mfn).is_some_and(|f| f.owner == Owner::Domain(domain))
    }

    /// The M2P entry of `mfn` (the pseudo-physical frame the owner gave it).
    pub fn m2p(&self, mfn: u64) -> Option<u64> {
        self.m2p.get(usize::try_from(mfn).ok()?).copied()
    }

    /// The whole M2P, one u64 per frame (for the caller to expose read-only to guests).
    pub fn m2p_entries(&self) -> &[u64] {
        &self.m2p
    }

    /// Sets the M2P entry of `mfn` (the builder records `pfn` for each frame it gives).
    pub fn set_m2p(&mut self, mfn: u64, pfn: u64) -> Result<(), MmuError> {
        let slot = usize::try_from(mfn).ok().and_then(|i| self.m2p.get_mut(i));
        let slot = slot.ok_or(MmuError::new(Errno::EINVAL, "M2P update of a frame outside RAM"))?;
        *slot = pfn;
        Ok(())
    }

    /// Gives the hypervisor-owned, unreferenced frame `mfn` to `domain`, untyped.
    /// Refused with `-EBUSY` if another owner has it or it is still referenced, `-EINVAL`
    /// if the table does not cover it.
    pub fn assign_frame(&mut self, mfn: u64, domain: DomId) -> Result<(), MmuError> {
        let f = self.get_mut(mfn).ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        if f.owner != Owner::Hypervisor || f.ref_count != 0 || f.type_count != 0 {
            return Err(MmuError::new(Errno::EBUSY, "frame already owned or referenced"));
        }
        *f = FrameInfo { owner: Owner::Domain(domain), ..FrameInfo::HYPERVISOR };
        *self.pages.entry(domain).or_insert(0) += 1;
        self.widen_span(domain, mfn);
        Ok(())
    }

    /// Frames `domain` owns, hypervisor pages shared with it excluded: Xen's `tot_pages`,
    /// what `XENMEM_current_reservation` and `getdomaininfo` report. A frame the domain freed
    /// while still referenced counts until it is released, as in Xen.
    pub fn pages_of(&self, domain: DomId) -> u64 {
        self.pages.get(&domain).copied().unwrap_or(0)
    }

    /// Every frame `domain` owns (including shared hypervisor pages and frames it freed that
    /// are still referenced), in frame order: what a teardown must take back. A walk over
    /// the domain's [`span`](Self::span_of); not for hot paths.
    pub fn frames_of(&self, domain: DomId) -> impl Iterator<Item = u64> + '_ {
        self.owned_in(domain, self.span_of(domain))
    }

    /// The frames of `range` that `domain` owns, in frame order (a teardown frees its
    /// span a batch at a time).
    pub fn owned_in(&self, domain: DomId, range: Range<u64>) -> impl Iterator<Item = u64> + '_ {
        range.filter(move |&m| self.get(m).is_some_and(|f| f.owner == Owner::Domain(domain)))
    }

    /// A range of frames that holds every frame `domain` owns (empty if it never owned one).
    /// Frames only become a domain's through [`assign_frame`](Self::assign_frame) and
    /// [`share_with_guest`](Self::share_with_guest), which widen it.
    pub fn span_of(&self, domain: DomId) -> Range<u64> {
        self.spans.get(&domain).cloned().unwrap_or(0..0)
    }

    fn widen_span(&mut self, domain: DomId, mfn: u64) {
        let span = self.spans.entry(domain).or_insert(mfn..mfn + 1);
        *span = span.start.min(mfn)..span.end.max(mfn + 1);
    }

    /// The owner `domain` frees `mfn` (`XENMEM_decrease_reservation`, Xen's
    /// `guest_remove_page` for a PV guest). The free succeeds whatever still references the
    /// frame (mappings, table uses, pins, roots, grant mappings): the frame then stays the
    /// domain's, usable through those references (and even mappable again, as in Xen), and is
    /// released to the hypervisor when its last reference goes. An unreferenced frame is
    /// released at once. Released frames lose their M2P entry ([`INVALID_M2P_ENTRY`]), leave
    /// [`pages_of`](Self::pages_of) and wait in [`take_released`](Self::take_released).
    ///
    /// Freeing a frame already freed, or a hypervisor page shared with the domain
    /// (shared_info, grant-table frames), succeeds and changes nothing (Xen answers success
    /// for both; a shared page stays until the domain dies).
    ///
    /// Refused with `-EINVAL` for a frame outside RAM and `-ENXIO` for a frame `domain` does
    /// not own (Xen's "Bad page free"), nothing changed.
    pub fn free_by_owner(&mut self, mfn: u64, domain: DomId) -> Result<(), MmuError> {
        let f = self.get_mut(mfn).ok_or(MmuError::new(Errno::EINVAL, "freed frame outside RAM"))?;
        if f.owner != Owner::Domain(domain) {
            return Err(MmuError::new(Errno::ENXIO, "freed frame not owned by the domain"));
        }
        if !f.shared_by_hypervisor {
            f.freed_by_owner = true;
            self.release_if_unused(mfn);
        }
        Ok(())
    }

    /// Releases `mfn` to the hypervisor if its owner freed it and nothing references it any
    /// more; returns whether it did. A table whose entries still hold references (validated
    /// during a teardown, or `partial`) waits: its release calls again once they are dropped.
    pub(super) fn release_if_unused(&mut self, mfn: u64) -> bool {
        let Some(f) = self.get_mut(mfn) else { return false };
        let Owner::Domain(domain) = f.owner else { return false };
        let holds_entries = f.page_type.is_table() && (f.validated || f.partial > 0);
        if !f.freed_by_owner || f.ref_count != 0 || f.type_count != 0 || f.pinned || holds_entries {
            return false;
        }
        *f = FrameInfo::HYPERVISOR;
        self.invalidate_m2p(mfn);
        self.uncount(domain);
        self.released.push(mfn);
        true
    }

    /// Takes the frames released to the hypervisor since the last call: frames their owner
    /// freed whose last reference went (immediately, or later through an unmap, unpin,
    /// unhook, grant unmap or teardown). Each is owned by the hypervisor, unreferenced, with
    /// an invalid M2P entry; the kernel returns them to its frame allocator, after a TLB
    /// flush (see the module documentation).
    pub fn take_released(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.released)
    }

    /// Whether frames wait in [`take_released`](Self::take_released).
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    fn uncount(&mut self, domain: DomId) {
        if let Some(n) = self.pages.get_mut(&domain) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pages.remove(&domain);
            }
        }
    }

    fn invalidate_m2p(&mut self, mfn: u64) {
        if let Some(e) = usize::try_from(mfn).ok().and_then(|i| self.m2p.get_mut(i)) {
            *e = INVALID_M2P_ENTRY;
        }
    }

    /// Shares the hypervisor page `mfn` (shared_info) with `domain`, as Xen's
    /// `share_xen_page_with_guest`: the domain may map it (even writable) but it holds a
    /// permanent Writable type reference, so it can never become a page table, and the domain
    /// cannot free it. [`release_domain`](super::Mmu::release_domain) gives it back.
    pub fn share_with_guest(&mut self, mfn: u64, domain: DomId) -> Result<(), MmuError> {
        let f = self.get_mut(mfn).ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        if f.owner != Owner::Hypervisor || f.ref_count != 0 || f.type_count != 0 {
            return Err(MmuError::new(Errno::EBUSY, "frame already owned or referenced"));
        }
        *f = FrameInfo {
            owner: Owner::Domain(domain),
            page_type: PageType::Writable,
            type_count: 1,
            ref_count: 1,
            validated: true,
            shared_by_hypervisor: true,
            ..FrameInfo::HYPERVISOR
        };
        self.widen_span(domain, mfn);
        Ok(())
    }

    /// Marks `[first, first + count)` as device memory that I/O-capable domains may map.
    /// Refused with `-EBUSY` (nothing changed) if any of them is owned by a domain or referenced.
    pub fn mark_io(&mut self, first: u64, count: u64) -> Result<(), MmuError> {
        let end = first.saturating_add(count).min(self.max_mfn());
        let busy = (first..end).any(|m| self.get(m).is_some_and(|f| f.owner != Owner::Hypervisor || f.ref_count != 0));
        if busy {
            return Err(MmuError::new(Errno::EBUSY, "frame in use cannot become I/O memory"));
        }
        for m in first..end {
            if let Some(f) = self.get_mut(m) {
                f.owner = Owner::Io;
            }
        }
        Ok(())
    }

    /// Takes `mfn` back from whichever domain owns it, at once (domain death, after
    /// [`release_domain`](super::Mmu::release_domain)). Guest frees use
    /// [`free_by_owner`](Self::free_by_owner) instead, which defers the release.
    ///
    /// Refused with `-EBUSY` while the frame is mapped, typed, pinned, used as a root or
    /// shared by the hypervisor. `-EINVAL` if no domain owns it. The caller must check that
    /// the domain it tears down still owns `mfn` ([`owned_by`](Self::owned_by),
    /// [`frames_of`](Self::frames_of)): a frame the domain freed earlier may belong to
    /// another domain by now.
    ///
    /// After success the caller must flush every TLB that may still hold a stale mapping of
    /// the frame (any CPU that ran the domain) before giving it to anyone else.
    pub fn free_domain_frame(&mut self, mfn: u64) -> Result<(), MmuError> {
        let f = self.get_mut(mfn).ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        let Owner::Domain(domain) = f.owner else {
            return Err(MmuError::new(Errno::EINVAL, "frame not owned by a domain"));
        };
        // A table whose entries still hold references (validated, or partial) waits for them
        // to go: a dying domain's tables are torn down while other domains run.
        let holds_entries = f.page_type.is_table() && (f.validated || f.partial > 0);
        if f.ref_count != 0 || f.type_count != 0 || f.pinned || f.shared_by_hypervisor || holds_entries {
            return Err(MmuError::new(Errno::EBUSY, "frame still mapped, typed or pinned"));
        }
        *f = FrameInfo::HYPERVISOR;
        self.invalidate_m2p(mfn);
        self.uncount(domain);
        Ok(())
    }

    /// Every frame number with its record (for audits and teardown).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &FrameInfo)> {
        self.frames.iter().enumerate().map(|(i, f)| (i as u64, f))
    }
}
