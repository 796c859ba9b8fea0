//! The reference-counting core: taking and dropping general and type references, validating
//! a table when its type count goes 0 -> 1 and devalidating it when the count returns to 0,
//! and the checked update of one entry (Xen's `get_page_from_lNe`, `promote_lN_table`,
//! `mod_lN_entry`).

use super::frame_table::{FrameTable, Owner, PageType};
use super::pte_rules::{self, CACHE_ATTRS};
use super::{DomainRights, MachineMemory, MmuError, TlbFlush, VcpuPaging, WORK_BUDGET};
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::pte;

/// Entries per page-table page.
pub(super) const ENTRIES: usize = 512;

/// The PV MMU at work for one domain and one of its vCPUs.
///
/// Built per operation from the hypervisor's state; it owns nothing.
pub struct Mmu<'a, M: MachineMemory + ?Sized> {
    /// Per-frame accounting and the M2P.
    pub frames: &'a mut FrameTable,
    /// Machine memory holding the page tables.
    pub mem: &'a mut M,
    /// The hypervisor's L4 entries 256-271, installed in every L4 when it is validated.
    pub hypervisor_slots: &'a [u64; 16],
    /// The calling domain and its rights.
    pub domain: DomainRights,
    /// The calling vCPU's roots and pending CPU work.
    pub paging: &'a mut VcpuPaging,
}

/// What hypercall handlers get from [`Env::mmu`](crate::hypercalls::Env::mmu): the MMU over
/// type-erased machine memory.
pub type MmuAccess<'a> = Mmu<'a, dyn MachineMemory + 'a>;

const fn refused(errno: Errno, reason: &'static str) -> MmuError {
    MmuError::new(errno, reason)
}

impl<'a, M: MachineMemory + 'a> Mmu<'a, M> {
    /// The same MMU over type-erased memory ([`MmuAccess`]).
    pub fn erase(self) -> MmuAccess<'a> {
        let Self { frames, mem, hypervisor_slots, domain, paging } = self;
        Mmu { frames, mem, hypervisor_slots, domain, paging }
    }
}

impl<'a, M: MachineMemory + ?Sized> Mmu<'a, M> {
    /// Bundles the state for one operation.
    pub fn new(
        frames: &'a mut FrameTable,
        mem: &'a mut M,
        hypervisor_slots: &'a [u64; 16],
        domain: DomainRights,
        paging: &'a mut VcpuPaging,
    ) -> Self {
        Self { frames, mem, hypervisor_slots, domain, paging }
    }

    /// Takes a general reference on `mfn`, which the calling domain must own (Xen's
    /// `get_page`). `Err(())` lets each caller answer with Xen's code for its context.
    pub(super) fn get_page(&mut self, mfn: u64) -> Result<(), ()> {
        let domain = self.domain.id;
        let f = self.frames.get_mut(mfn).ok_or(())?;
        if f.owner != Owner::Domain(domain) {
            return Err(());
        }
        f.ref_count = f.ref_count.checked_add(1).ok_or(())?;
        Ok(())
    }

    /// Drops a general reference taken by [`get_page`](Self::get_page).
    /// The last reference of a frame its owner freed releases it to the hypervisor
    /// ([`FrameTable::take_released`]); a TLB flush is then requested, since the entry just
    /// removed may still be cached.
    pub(super) fn put_page(&mut self, mfn: u64) {
        if let Some(f) = self.frames.get_mut(mfn) {
            debug_assert!(f.ref_count > 0, "general reference underflow on {mfn:#x}");
            f.ref_count = f.ref_count.saturating_sub(1);
            if f.ref_count == 0 && self.frames.release_if_unused(mfn) {
                self.paging.effects.flush_all = true;
            }
        }
    }

    /// Takes a type reference of type `ty` on `mfn` (the caller holds a general reference).
    /// When the count goes 0 -> 1 the frame takes the type, and a table is validated, which
    /// recursively takes references for its entries (Xen's `_get_page_type`), resuming where
    /// an earlier, preempted validation of it stopped. Refused with `-EINVAL` if the frame
    /// currently has another type; [`MmuError::PREEMPTED`] if the budget ran out first.
    pub(super) fn get_page_type(&mut self, mfn: u64, ty: PageType) -> Result<(), MmuError> {
        let f = self.frames.get_mut(mfn).ok_or(refused(Errno::EINVAL, "frame outside RAM"))?;
        if f.type_count > 0 {
            if f.page_type != ty {
                return Err(refused(Errno::EINVAL, "frame already has another type"));
            }
            if !f.validated {
                // Only reachable through a cycle, which level and type checks exclude.
                return Err(refused(Errno::EINVAL, "frame is being validated"));
            }
            f.type_count = f.type_count.checked_add(1).ok_or(refused(Errno::EINVAL, "type count overflow"))?;
            return Ok(());
        }
        if f.partial > 0 && f.page_type != ty {
            // Entries of its use as another table still hold references: drop them first.
            self.release_now(mfn)?;
        }
        let Some(f) = self.frames.get_mut(mfn) else {
            return Err(refused(Errno::EINVAL, "frame outside RAM"));
        };
        if f.page_type != ty {
            if f.page_type == PageType::Writable && ty.is_table() {
                // A writable TLB entry may survive the last RW mapping until a flush: flush
                // before the guest runs on a table it could otherwise still write.
                self.paging.effects.flush_all = true;
            }
            f.page_type = ty;
            f.validated = false;
        }
        f.type_count = 1;
        let Some(level) = ty.level() else {
            f.validated = true;
            return Ok(());
        };
        if f.validated {
            return Ok(());
        }
        let resume_at = usize::from(f.partial);
        let result = self.validate_table(mfn, level, resume_at);
        if let Some(f) = self.frames.get_mut(mfn) {
            if result.is_ok() {
                f.validated = true;
                f.partial = 0;
            } else {
                f.type_count = 0;
            }
        }
        result
    }

    /// Drops a type reference. A table whose count reaches 0 is devalidated: it goes on the
    /// release stack, all its entries still holding their references, for
    /// [`drain_releases`](Self::drain_releases) (which the caller runs).
    pub(super) fn put_page_type(&mut self, mfn: u64) {
        let Some(f) = self.frames.get_mut(mfn) else {
            return;
        };
        debug_assert!(f.type_count > 0, "type reference underflow on {mfn:#x}");
        f.type_count = f.type_count.saturating_sub(1);
        if f.type_count > 0 || !f.validated || !f.page_type.is_table() {
            return;
        }
        f.validated = false;
        f.partial = ENTRIES as u16;
        self.push_release(mfn);
    }

    /// Puts `mfn`, a table of this domain with entries to release, on the release stack
    /// (once: a frame already there is released when the drain reaches it).
    fn push_release(&mut self, mfn: u64) {
        if let Some(f) = self.frames.get_mut(mfn).filter(|f| !f.on_release_stack) {
            f.on_release_stack = true;
            self.paging.releasing.push(mfn);
        }
    }

    /// Takes the top frame off the release stack.
    fn pop_release(&mut self) {
        if let Some(mfn) = self.paging.releasing.pop() {
            if let Some(f) = self.frames.get_mut(mfn) {
                f.on_release_stack = false;
            }
        }
    }

    /// Starts a hypervisor entry's MMU work: a budget of [`WORK_BUDGET`] entries, spent
    /// first on the tables left on the release stack. False if they are not all released
    /// within it: the entry must then do nothing else and be run again (a continuation, or
    /// the instruction re-executed), so no operation ever sees a release half done.
    pub fn begin_entry(&mut self) -> bool {
        let work = self.paging.work;
        let own = work.wrapping_add(WORK_BUDGET);
        // Inside a multicall, the calls share the multicall's budget (whichever ends first).
        let end = self.paging.batch_end.filter(|&end| end.wrapping_sub(work) < own.wrapping_sub(work)).unwrap_or(own);
        self.paging.budget_end = Some(end);
        self.drain_releases()
    }

    /// Makes the work of this hypervisor entry stop after `entries` more table entries
    /// (validated or released); see the module documentation.
    pub fn start_budget(&mut self, entries: u64) {
        self.paging.budget_end = Some(self.paging.work.wrapping_add(entries));
    }

    /// Whether this entry's budget is spent.
    fn out_of_budget(&self) -> bool {
        self.paging.budget_end.is_some_and(|end| self.paging.work.wrapping_sub(end) < u64::MAX / 2)
    }

    /// Releases the entries of the tables on the release stack, last pushed first, until it
    /// is empty (true) or the budget is spent (false: call again). A table whose entries are
    /// all released leaves the stack (and the domain, if its owner had freed it).
    #[inline]
    pub fn drain_releases(&mut self) -> bool {
        // Every MMU operation ends here, nearly always with nothing to do.
        self.paging.releasing.is_empty() || self.drain_release_stack()
    }

    fn drain_release_stack(&mut self) -> bool {
        while let Some(&mfn) = self.paging.releasing.last() {
            if self.out_of_budget() {
                return false;
            }
            // Every step counts, a table leaving the stack included.
            self.paging.work = self.paging.work.wrapping_add(1);
            let (level, held) = match self.frames.get(mfn) {
                Some(f) => (f.page_type.level(), usize::from(f.partial)),
                None => (None, 0),
            };
            let Some(level) = level.filter(|_| held > 0) else {
                // Validated again meanwhile, or nothing held: done with it.
                self.pop_release();
                if self.frames.release_if_unused(mfn) {
                    self.paging.effects.flush_all = true;
                }
                continue;
            };
            // The last held entry first, so that `partial` stays "entries below it hold".
            let index = held - 1;
            if let Some(f) = self.frames.get_mut(mfn) {
                f.partial = index as u16;
            }
            let last = index == 0;
            if last {
                // Done once this entry goes (before it can push a table below onto the stack).
                self.pop_release();
            }
            if level != 4 || pte_rules::is_guest_l4_slot(index) {
                let entry = self.mem.read_entry(mfn, index);
                // May push a table below: it is released before this one goes on.
                self.put_entry_references(level, entry, true);
            }
            if last && self.frames.release_if_unused(mfn) {
                self.paging.effects.flush_all = true;
            }
        }
        true
    }

    /// Releases `mfn`, a `partial` table, now: whatever is on the release stack, then it.
    /// [`MmuError::PREEMPTED`] if the budget runs out first.
    ///
    /// A validation that was preempted and never resumed left a chain of `partial` tables:
    /// the entry where each stopped names the next one down. They go too, since nothing
    /// else would ever release them while the domain lives.
    fn release_now(&mut self, mfn: u64) -> Result<(), MmuError> {
        let own = Owner::Domain(self.domain.id);
        let mut table = mfn;
        while let Some(f) = self.frames.get(table).filter(|f| f.owner == own && !f.on_release_stack) {
            let (level, index) = (f.page_type.level(), usize::from(f.partial));
            self.push_release(table);
            let Some(level) = level.filter(|&l| l > 1 && index < ENTRIES) else { break };
            let entry = self.mem.read_entry(table, index);
            let below = pte_rules::entry_mfn(entry);
            // The entry was never checked: only a partial table of our own is followed.
            let stopped_there = pte_rules::is_present(entry)
                && self.frames.get(below).is_some_and(|b| {
                    b.owner == own && b.partial > 0 && b.type_count == 0 && b.page_type == PageType::table(level - 1)
                });
            if !stopped_there {
                break;
            }
            table = below;
        }
        if self.drain_releases() {
            Ok(())
        } else {
            Err(MmuError::PREEMPTED)
        }
    }

    /// General plus type reference (Xen's `get_page_and_type`), with `-EINVAL` for a frame
    /// the domain does not own.
    pub(super) fn get_page_and_type(&mut self, mfn: u64, ty: PageType) -> Result<(), MmuError> {
        self.get_page(mfn).map_err(|()| refused(Errno::EINVAL, "frame not owned by the domain"))?;
        self.get_page_type(mfn, ty).inspect_err(|_| self.put_page(mfn))
    }

    /// Drops what [`get_page_and_type`](Self::get_page_and_type) took.
    pub(super) fn put_page_and_type(&mut self, mfn: u64) {
        self.put_page_type(mfn);
        self.put_page(mfn);
    }

    /// Checks every present entry of the table at `mfn` from `start` on (the entries before
    /// it hold their references already) and takes its references; L4 tables get the
    /// hypervisor slots. If the budget runs out, the frame is left `partial` at the entry
    /// reached and [`MmuError::PREEMPTED`] returned. On a refusal, the references taken so
    /// far are queued for release (the caller drains the stack) and the error returned.
    fn validate_table(&mut self, mfn: u64, level: u8, start: usize) -> Result<(), MmuError> {
        for index in start..ENTRIES {
            // Every entry looked at counts, present or not: a tree of empty tables costs too.
            let outcome = if self.out_of_budget() {
                Err(MmuError::PREEMPTED)
            } else {
                self.paging.work = self.paging.work.wrapping_add(1);
                if level == 4 && !pte_rules::is_guest_l4_slot(index) {
                    continue;
                }
                let entry = self.mem.read_entry(mfn, index);
                if !pte_rules::is_present(entry) {
                    continue;
                }
                self.get_entry_references(level, entry).map(|()| entry)
            };
            let entry = match outcome {
                Ok(entry) => entry,
                Err(e) => {
                    if let Some(f) = self.frames.get_mut(mfn) {
                        f.partial = index as u16;
                    }
                    if !e.is_preempted() && index > 0 {
                        self.push_release(mfn);
                    }
                    return Err(e);
                }
            };
            let adjusted = pte_rules::adjust(level, entry);
            if adjusted != entry {
                self.mem.write_entry(mfn, index, adjusted);
            }
        }
        if level == 4 {
            for (i, &e) in self.hypervisor_slots.iter().enumerate() {
                self.mem.write_entry(mfn, pte_rules::HYPERVISOR_SLOTS.start + i, e);
            }
        }
        Ok(())
    }

    /// Drops the references held by the present guest entries `0..held` of the table at
    /// `mfn`, at once (a dying domain's teardown: lower tables are not devalidated from
    /// here, each is torn down by the walk).
    pub(super) fn release_entries_without_cascade(&mut self, mfn: u64, level: u8, held: usize) {
        self.paging.work = self.paging.work.wrapping_add(held as u64);
        for index in 0..held.min(ENTRIES) {
            if level == 4 && !pte_rules::is_guest_l4_slot(index) {
                continue;
            }
            let entry = self.mem.read_entry(mfn, index);
            self.put_entry_references(level, entry, false);
        }
    }

    /// Takes the references a present entry of a `level` table needs, after checking its
    /// flags (Xen's `get_page_from_l1e` / `get_page_from_lNe`).
    pub(super) fn get_entry_references(&mut self, level: u8, entry: u64) -> Result<(), MmuError> {
        let bad = entry & pte_rules::disallowed_flags(level, self.domain.io_capable);
        if bad != 0 {
            return Err(refused(
                Errno::EINVAL,
                if level == 1 {
                    "reserved or disallowed L1 flags"
                } else {
                    "PSE, G or cache bits in an upper-level entry"
                },
            ));
        }
        let target = pte_rules::entry_mfn(entry);
        if level > 1 {
            return self.get_page_and_type(target, PageType::table(level - 1));
        }
        let owner = self.frames.get(target).map(|f| f.owner);
        match owner {
            None | Some(Owner::Io) => {
                // Device memory: never counted, only for domains with I/O rights, and never
                // the devices the hypervisor drives itself.
                if self.frames.is_hypervisor_io(target) {
                    return Err(refused(Errno::EPERM, "mapping of a device the hypervisor owns"));
                }
                return if self.domain.io_capable {
                    Ok(())
                } else {
                    Err(refused(Errno::EPERM, "non-privileged attempt to map I/O memory"))
                };
            }
            Some(Owner::Domain(d)) if d == self.domain.id => {}
            Some(_) => {
                if !self.foreign_mapping_permitted(target) {
                    return Err(refused(Errno::EBUSY, "frame not owned by the domain"));
                }
            }
        }
        self.get_page(target).map_err(|()| refused(Errno::EBUSY, "reference count overflow"))?;
        if pte_rules::is_writable(entry) {
            if let Err(e) = self.get_page_type(target, PageType::Writable) {
                self.put_page(target);
                return Err(if e.is_preempted() {
                    e
                } else {
                    refused(Errno::EBUSY, "could not get Writable type: frame is a page table")
                });
            }
        }
        let shared = self.frames.get(target).is_some_and(|f| f.shared_by_hypervisor);
        if shared && entry & CACHE_ATTRS != 0 {
            self.put_entry_references(1, entry, true);
            return Err(refused(Errno::EACCES, "non-write-back mapping of a hypervisor page"));
        }
        Ok(())
    }

    /// The hook for mappings of frames the domain does not own (privileged foreign
    /// mappings). None are permitted. Grant mappings never pass here: the grant code writes
    /// them with `Mmu::install_grant_mapping` (`grant_map.rs`) after checking the grant, so a
    /// guest can never create one through `mmu_update` or table validation.
    fn foreign_mapping_permitted(&self, _mfn: u64) -> bool {
        false
    }

    /// Drops the references a present entry holds (Xen's `put_page_from_lNe`).
    pub(super) fn put_entry_references(&mut self, level: u8, entry: u64, cascade: bool) {
        if !pte_rules::is_present(entry) {
            return;
        }
        let target = pte_rules::entry_mfn(entry);
        let Some(Owner::Domain(owner)) = self.frames.get(target).map(|f| f.owner) else {
            return;
        };
        if owner != self.domain.id {
            // A mapping of another domain's frame (a grant) goes: once the reference is
            // dropped, the owner may retype or reuse the frame, so no translation of it may
            // survive in our TLB, under any alias of the entry (another L2 may hook the same
            // L1). Xen flushes the mapper's TLB on grant unmap (`gnttab_flush_tlb`).
            self.paging.effects.request(TlbFlush::All);
        }
        if level > 1 || pte_rules::is_writable(entry) {
            if cascade {
                self.put_page_type(target);
            } else if let Some(f) = self.frames.get_mut(target) {
                f.type_count = f.type_count.saturating_sub(1);
            }
        }
        self.put_page(target);
    }

    /// Replaces entry `index` of the validated `level` table at `table` by `new`, checked
    /// (Xen's `mod_lN_entry`). `preserve_ad` keeps the old A and D bits. Changes to L2-L4
    /// request a TLB flush, as Xen's `flush_linear_pt`.
    pub(super) fn modify_entry(
        &mut self,
        table: u64,
        level: u8,
        index: usize,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), MmuError> {
        if level == 4 && !pte_rules::is_guest_l4_slot(index) {
            return Err(refused(Errno::EINVAL, "L4 slots 256-271 belong to the hypervisor"));
        }
        let old = self.mem.read_entry(table, index);
        let mut new = new;
        if preserve_ad {
            new |= old & (pte::ACCESSED | pte::DIRTY);
        }
        if pte_rules::is_present(new) {
            let new = pte_rules::adjust(level, new);
            if pte_rules::is_present(old) && !pte_rules::changes_reference(level, old, new) {
                let bad = new & pte_rules::disallowed_flags(level, self.domain.io_capable);
                if bad != 0 {
                    return Err(refused(Errno::EINVAL, "reserved or disallowed flags"));
                }
                self.mem.write_entry(table, index, new);
            } else {
                self.get_entry_references(level, new)?;
                self.mem.write_entry(table, index, new);
                self.put_entry_references(level, old, true);
            }
        } else {
            self.mem.write_entry(table, index, new);
            self.put_entry_references(level, old, true);
        }
        if level > 1 {
            self.paging.effects.flush_all = true;
        }
        Ok(())
    }
}
