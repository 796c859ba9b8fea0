//! The guest-visible operations (`mmu_update`, `update_va_mapping`, `mmuext_op`, one
//! request each; digest §4.3-4.5) and the hypervisor's own: adopting the bootstrap tables and
//! tearing down a dying domain.

use super::frame_table::{Owner, PageType};
use super::mmu::ENTRIES;
use super::pte_rules::{self, table_index};
use super::{FlushRequest, FlushScope, MachineMemory, Mmu, MmuError, TlbFlush};
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::*;

/// Most entries a `SET_LDT` may name.
const MAX_LDT_ENTRIES: u64 = 8192;

const fn refused(errno: Errno, reason: &'static str) -> MmuError {
    MmuError::new(errno, reason)
}

/// `refusal` in place of `e`, unless `e` is a preemption, which must reach the handler as
/// it is (to be continued, not refused).
fn keep_preempted(e: MmuError, refusal: MmuError) -> MmuError {
    if e.is_preempted() {
        e
    } else {
        refusal
    }
}

/// Where a budgeted [`Mmu::release_domain`] stopped; start with `ReleaseCursor::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleaseCursor {
    phase: u8,
    next_mfn: u64,
}

/// What tearing down one validated table counts against `release_domain`'s budget, in
/// frames looked at: its 512 entries are each a reference to drop.
const TABLE_TEARDOWN_COST: usize = 32;

/// Whether a teardown finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseProgress {
    /// Every reference the domain held is gone.
    Done,
    /// The budget ran out: call again with the same cursor.
    MoreWork,
}

impl<M: MachineMemory + ?Sized> Mmu<'_, M> {
    /// One `mmu_update` request (digest §4.3) on the caller's own tables and frames.
    ///
    /// * `MMU_NORMAL_PT_UPDATE` / `MMU_PT_UPDATE_PRESERVE_AD` / `MMU_PT_UPDATE_NO_TRANSLATE`:
    ///   `ptr` is the machine address of an 8-byte entry. In a validated table the new value
    ///   is checked for that level; in an ordinary page it is simply written. `-EINVAL` for a
    ///   frame the domain does not own. The command is `ptr & 7`, as in Xen: 4-7 are `-ENOSYS`.
    /// * `MMU_MACHPHYS_UPDATE`: `M2P[ptr >> 12] = val` for a frame the domain owns
    ///   (`-EINVAL` otherwise).
    ///
    /// Tables this drops are released before it returns, as far as the budget goes (see the
    /// module documentation); the same holds for the other operations below.
    pub fn mmu_update(&mut self, req: MmuUpdate) -> Result<(), MmuError> {
        let result = self.mmu_update_request(req);
        self.drain_releases();
        result
    }

    fn mmu_update_request(&mut self, req: MmuUpdate) -> Result<(), MmuError> {
        // Xen takes the command from the three bits below an entry's alignment.
        let cmd = req.ptr & 7;
        match cmd {
            MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE => {
                // Aligned: the command was the three low bits.
                let maddr = req.ptr - cmd;
                let (mfn, index) = (maddr >> 12, ((maddr & 0xfff) / 8) as usize);
                self.update_entry_at(mfn, index, req.val, cmd == MMU_PT_UPDATE_PRESERVE_AD)
            }
            MMU_MACHPHYS_UPDATE => {
                let mfn = req.ptr >> 12;
                if !self.frames.owned_by(mfn, self.domain.id) {
                    return Err(refused(Errno::EINVAL, "M2P update of a frame the domain does not own"));
                }
                self.frames.set_m2p(mfn, req.val)
            }
            _ => Err(refused(Errno::ENOSYS, "unknown mmu_update command")),
        }
    }

    fn update_entry_at(&mut self, mfn: u64, index: usize, val: u64, preserve_ad: bool) -> Result<(), MmuError> {
        let frame = *self.frames.get(mfn).ok_or(refused(Errno::EINVAL, "page-table update outside RAM"))?;
        if frame.owner != Owner::Domain(self.domain.id) {
            return Err(refused(Errno::EINVAL, "page-table update in a frame the domain does not own"));
        }
        if frame.is_live_table() && frame.validated {
            let level = frame.page_type.level().unwrap_or(1);
            // Hold the table while its entry changes (Xen's `page_lock`): taking the new
            // entry's references may release other tables (a partial one being retyped), and
            // with them this table's last type reference, after which it could be retyped
            // under the entry being written.
            // (A type reference is enough: a typed frame is neither freed nor retyped.)
            let held = self.frames.get_mut(mfn).and_then(|f| f.type_count.checked_add(1).map(|n| f.type_count = n));
            held.ok_or(refused(Errno::EINVAL, "type count overflow"))?;
            let result = self.modify_entry(mfn, level, index, val, preserve_ad);
            self.put_page_type(mfn);
            return result;
        }
        // An ordinary page: allowed if it can be writable right now (Xen writes it as data).
        // The general reference keeps it ours while a release it needs first runs.
        self.get_page_and_type(mfn, PageType::Writable).map_err(|e| {
            keep_preempted(e, refused(Errno::EINVAL, "frame is neither a validated table nor writable"))
        })?;
        self.mem.write_entry(mfn, index, val);
        self.put_page_and_type(mfn);
        Ok(())
    }

    /// `update_va_mapping` (digest §4.4): writes `new_pte` into the L1 entry that maps `va`
    /// in the current kernel root, with the checks of a normal update. The path down to the
    /// L1 must exist and the L1 must be a validated L1 of the domain (`-EINVAL` otherwise, and
    /// for a non-canonical or hypervisor `va`). On success returns the flush `flags` ask
    /// for, which the caller resolves and adds to the pending effects.
    pub fn update_va_mapping(&mut self, va: u64, new_pte: u64, flags: u64) -> Result<FlushRequest, MmuError> {
        let result = self.update_va_mapping_request(va, new_pte, flags);
        self.drain_releases();
        result
    }

    fn update_va_mapping_request(&mut self, va: u64, new_pte: u64, flags: u64) -> Result<FlushRequest, MmuError> {
        if !pte_rules::is_canonical(va) || !pte_rules::is_guest_l4_slot(table_index(va, 4)) {
            return Err(refused(Errno::EINVAL, "address is not a guest address"));
        }
        let mut table = self.paging.kernel_l4.ok_or(refused(Errno::EINVAL, "no page-table root"))?;
        for level in [4u8, 3, 2] {
            let entry = self.mem.read_entry(table, table_index(va, level));
            if !pte_rules::is_present(entry) || entry & pte::PAT_OR_PSE != 0 {
                return Err(refused(Errno::EINVAL, "no L1 table maps this address"));
            }
            table = pte_rules::entry_mfn(entry);
        }
        let l1 = self.frames.get(table).copied();
        let is_own_l1 = l1.is_some_and(|f| {
            f.owner == Owner::Domain(self.domain.id) && f.page_type == PageType::L1 && f.type_count > 0 && f.validated
        });
        if !is_own_l1 {
            return Err(refused(Errno::EINVAL, "the table mapping this address is not a validated L1"));
        }
        self.modify_entry(table, 1, table_index(va, 1), new_pte, false)?;
        Ok(FlushRequest::of_update_va_mapping(va, flags))
    }

    /// One `mmuext_op` (digest §4.5) on the caller's own frames. Returns the flush the
    /// command asks for (resolve its scope, then add it to the pending effects); root changes
    /// and cache flushes are recorded in the pending effects directly.
    pub fn mmuext_op(&mut self, op: &MmuextOp) -> Result<FlushRequest, MmuError> {
        let result = self.mmuext_request(op);
        self.drain_releases();
        result
    }

    fn mmuext_request(&mut self, op: &MmuextOp) -> Result<FlushRequest, MmuError> {
        let local = |flush| Ok(FlushRequest { flush, scope: FlushScope::Local });
        let all = |flush| Ok(FlushRequest { flush, scope: FlushScope::AllVcpus });
        let mask = |flush| Ok(FlushRequest { flush, scope: FlushScope::VcpuMask(op.arg2) });
        let page = |va: u64| {
            if pte_rules::is_canonical(va) {
                TlbFlush::Page(va)
            } else {
                TlbFlush::None
            }
        };
        match op.cmd {
            MMUEXT_PIN_L1_TABLE..=MMUEXT_PIN_L4_TABLE => {
                self.pin_table(op.arg1, (op.cmd - MMUEXT_PIN_L1_TABLE + 1) as u8).map(|()| FlushRequest::NONE)
            }
            MMUEXT_UNPIN_TABLE => self.unpin_table(op.arg1).map(|()| FlushRequest::NONE),
            MMUEXT_NEW_BASEPTR => self.new_baseptr(op.arg1).map(|()| FlushRequest::NONE),
            MMUEXT_NEW_USER_BASEPTR => self.new_user_baseptr(op.arg1).map(|()| FlushRequest::NONE),
            MMUEXT_TLB_FLUSH_LOCAL => local(TlbFlush::All),
            MMUEXT_INVLPG_LOCAL => local(page(op.arg1)),
            MMUEXT_TLB_FLUSH_MULTI => mask(TlbFlush::All),
            MMUEXT_INVLPG_MULTI => mask(page(op.arg1)),
            MMUEXT_TLB_FLUSH_ALL => all(TlbFlush::All),
            MMUEXT_INVLPG_ALL => all(page(op.arg1)),
            MMUEXT_FLUSH_CACHE | MMUEXT_FLUSH_CACHE_GLOBAL => {
                if !self.domain.io_capable {
                    let errno = if op.cmd == MMUEXT_FLUSH_CACHE { Errno::EACCES } else { Errno::EINVAL };
                    return Err(refused(errno, "cache flush needs I/O rights"));
                }
                self.paging.effects.flush_caches = true;
                Ok(FlushRequest::NONE)
            }
            MMUEXT_SET_LDT => {
                // `nr_ents` is an `unsigned int` in Xen's `struct mmuext_op`.
                let (base, entries) = (op.arg1, op.arg2 & 0xffff_ffff);
                let bad_base = base & 0xfff != 0 || !pte_rules::is_canonical(base);
                if entries > MAX_LDT_ENTRIES || (entries != 0 && bad_base) {
                    return Err(refused(Errno::EINVAL, "bad SET_LDT arguments"));
                }
                if entries != 0 {
                    return Err(refused(Errno::ENOSYS, "LDTs are not supported yet"));
                }
                Ok(FlushRequest::NONE)
            }
            MMUEXT_CLEAR_PAGE => self.clear_page(op.arg1).map(|()| FlushRequest::NONE),
            MMUEXT_COPY_PAGE => self.copy_page(op.arg1, op.arg2).map(|()| FlushRequest::NONE),
            MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => {
                Err(refused(Errno::EOPNOTSUPP, "PV superpages were removed from Xen"))
            }
            _ => Err(refused(Errno::ENOSYS, "unknown mmuext_op command")),
        }
    }

    /// `MMUEXT_PIN_Ln_TABLE`: types (validating if needed) and pins `mfn` as a `level` table.
    /// `-EINVAL` if the domain does not own it, it cannot take the type (it has writable
    /// mappings, another type, or invalid entries) or it is already pinned.
    pub fn pin_table(&mut self, mfn: u64, level: u8) -> Result<(), MmuError> {
        let result = self.pin(mfn, level);
        self.drain_releases();
        result
    }

    fn pin(&mut self, mfn: u64, level: u8) -> Result<(), MmuError> {
        self.get_page_and_type(mfn, PageType::table(level))?;
        let Some(f) = self.frames.get_mut(mfn) else {
            return Err(refused(Errno::EINVAL, "frame outside RAM"));
        };
        if f.pinned {
            self.put_page_and_type(mfn);
            return Err(refused(Errno::EINVAL, "table already pinned"));
        }
        f.pinned = true;
        Ok(())
    }

    /// `MMUEXT_UNPIN_TABLE`: drops the pin's type and general references, as Xen. A table
    /// still in use (hooked into a higher table, a root) keeps its type and validation through
    /// those other references, so it stays unwritable; it is devalidated when the last of them
    /// goes. `-EINVAL` if the domain does not own `mfn` or it is not pinned.
    pub fn unpin_table(&mut self, mfn: u64) -> Result<(), MmuError> {
        let domain = self.domain.id;
        let f = self.frames.get_mut(mfn).filter(|f| f.owner == Owner::Domain(domain));
        let f = f.ok_or(refused(Errno::EINVAL, "unpin of a frame the domain does not own"))?;
        if !f.pinned {
            return Err(refused(Errno::EINVAL, "table not pinned"));
        }
        f.pinned = false;
        self.put_page_and_type(mfn);
        self.drain_releases();
        Ok(())
    }

    /// `MMUEXT_NEW_BASEPTR`: makes `mfn` the kernel root, taking an L4 type reference
    /// (validating it if needed, `-EINVAL` on failure) and dropping the old root's. Records
    /// the CR3 load in the pending effects.
    pub fn new_baseptr(&mut self, mfn: u64) -> Result<(), MmuError> {
        if self.paging.kernel_l4 != Some(mfn) {
            if let Err(e) = self.get_page_and_type(mfn, PageType::L4) {
                self.drain_releases();
                return Err(e);
            }
            if let Some(old) = self.paging.kernel_l4.replace(mfn) {
                // The first root replaced in a hypercall is the one CR3 holds until the caller
                // loads the new root (see `old_root`); a later one was never loaded. (Keyed
                // on the stash alone: a `NEW_BASEPTR` naming the current root sets
                // `load_cr3` without replacing anything.)
                if self.paging.effects.old_root.is_none() {
                    self.paging.effects.old_root = Some(old);
                } else {
                    self.put_page_and_type(old);
                    self.drain_releases();
                }
            }
        }
        self.paging.effects.load_cr3 = Some(mfn << 12);
        Ok(())
    }

    /// Drops the reference [`new_baseptr`](Self::new_baseptr) kept on the root CR3 held
    /// (`PendingEffects::old_root`); the caller has loaded the new root.
    pub fn put_old_root(&mut self) {
        if let Some(old) = self.paging.effects.old_root.take() {
            self.put_page_and_type(old);
            // What the budget leaves waits for the vCPU's next MMU hypercall.
            self.drain_releases();
        }
    }

    /// `MMUEXT_NEW_USER_BASEPTR`: makes `mfn` (0: none) the user root, as
    /// [`new_baseptr`](Self::new_baseptr). The caller loads it on the next switch to user mode.
    pub fn new_user_baseptr(&mut self, mfn: u64) -> Result<(), MmuError> {
        let new = (mfn != 0).then_some(mfn);
        if self.paging.user_l4 == new {
            return Ok(());
        }
        if mfn != 0 {
            if let Err(e) = self.get_page_and_type(mfn, PageType::L4) {
                self.drain_releases();
                return Err(e);
            }
        }
        if let Some(old) = core::mem::replace(&mut self.paging.user_l4, new) {
            self.put_page_and_type(old);
            self.drain_releases();
        }
        Ok(())
    }

    fn clear_page(&mut self, mfn: u64) -> Result<(), MmuError> {
        self.get_page_and_type(mfn, PageType::Writable)
            .map_err(|e| keep_preempted(e, refused(Errno::EINVAL, "clear of a frame that cannot be writable")))?;
        // A page's worth of work, counted as a table's entries are (a batch of them is bounded
        // by the same budget).
        self.paging.work = self.paging.work.wrapping_add(ENTRIES as u64);
        for i in 0..ENTRIES {
            self.mem.write_entry(mfn, i, 0);
        }
        self.put_page_and_type(mfn);
        Ok(())
    }

    fn copy_page(&mut self, dst: u64, src: u64) -> Result<(), MmuError> {
        self.get_page(src).map_err(|()| refused(Errno::EINVAL, "copy from a frame the domain does not own"))?;
        if let Err(e) = self.get_page_and_type(dst, PageType::Writable) {
            self.put_page(src);
            return Err(keep_preempted(e, refused(Errno::EINVAL, "copy to a frame that cannot be writable")));
        }
        self.paging.work = self.paging.work.wrapping_add(ENTRIES as u64);
        for i in 0..ENTRIES {
            let v = self.mem.read_entry(src, i);
            self.mem.write_entry(dst, i, v);
        }
        self.put_page_and_type(dst);
        self.put_page(src);
        Ok(())
    }

    /// Types, validates and pins the bootstrap L4 the domain builder made
    /// (`domain_layout::build_page_tables`, after every frame was given to the domain with
    /// `assign_frame`) and installs it as the kernel root: type count 2 (pin + root), as Xen
    /// does for dom0. The L4's slots 256-271 are (re)written from the template.
    pub fn adopt_bootstrap_tables(&mut self, l4_mfn: u64) -> Result<(), MmuError> {
        if self.paging.kernel_l4.is_some() {
            return Err(refused(Errno::EINVAL, "the vCPU already has a root"));
        }
        self.pin_table(l4_mfn, 4)?;
        if let Err(e) = self.new_baseptr(l4_mfn) {
            let _ = self.unpin_table(l4_mfn);
            return Err(e);
        }
        self.paging.effects.load_cr3 = None;
        Ok(())
    }

    /// Drops every reference the dying domain `self.domain` holds: the vCPU's roots, every
    /// pin, every validated table's entries, then the permanent reference on pages the
    /// hypervisor shared with it (which return to the hypervisor). Walks the domain's span
    /// (`FrameTable::span_of`), not all of memory, twice; does at most about `budget` units
    /// of work per call (a frame looked at is one, a table torn down `TABLE_TEARDOWN_COST`
    /// more) and reports whether to call again with the same `cursor`. The domain must not run meanwhile.
    /// Afterwards `FrameTable::free_domain_frame` succeeds for each frame the domain still
    /// owns that no other domain maps (`FrameTable::frames_of`); frames it had freed itself
    /// (`free_by_owner`) are released during the walk instead, for `take_released`.
    pub fn release_domain(&mut self, cursor: &mut ReleaseCursor, budget: usize) -> ReleaseProgress {
        if cursor.phase == 0 {
            // Tables waiting for release are `partial`: the frame walk tears them down too.
            for mfn in core::mem::take(&mut self.paging.releasing) {
                if let Some(f) = self.frames.get_mut(mfn) {
                    f.on_release_stack = false;
                }
            }
            // Dropped without devalidating: every table is torn down by the frame walk.
            let old_root = self.paging.effects.old_root.take();
            for root in [self.paging.kernel_l4.take(), self.paging.user_l4.take(), old_root].into_iter().flatten() {
                self.drop_reference_without_cascade(root);
            }
            self.paging.effects.load_cr3 = None;
            *cursor = ReleaseCursor { phase: 1, next_mfn: 0 };
        }
        let domain = Owner::Domain(self.domain.id);
        // Only the frames the domain could own: its span, not all of memory.
        let span = self.frames.span_of(self.domain.id);
        cursor.next_mfn = cursor.next_mfn.max(span.start);
        let mut work = 0;
        while cursor.phase <= 2 {
            while cursor.next_mfn < span.end {
                if work >= budget {
                    return ReleaseProgress::MoreWork;
                }
                work += 1;
                let mfn = cursor.next_mfn;
                cursor.next_mfn += 1;
                let Some(f) = self.frames.get_mut(mfn) else {
                    continue;
                };
                if f.owner != domain {
                    continue;
                }
                if cursor.phase == 1 {
                    if f.pinned {
                        f.pinned = false;
                        self.drop_reference_without_cascade(mfn);
                    }
                    // A table's 512 entries cost more than a look at a frame: they count
                    // against the budget too, so a step stays bounded however many tables
                    // the domain built.
                    if self.tear_down_table(mfn) {
                        work += TABLE_TEARDOWN_COST;
                    }
                } else if f.shared_by_hypervisor {
                    // Every mapping of it went in phase 1: only the permanent reference is left.
                    f.type_count = f.type_count.saturating_sub(1);
                    f.ref_count = f.ref_count.saturating_sub(1);
                    f.shared_by_hypervisor = false;
                    f.owner = Owner::Hypervisor;
                    f.page_type = PageType::None;
                }
            }
            *cursor = ReleaseCursor { phase: cursor.phase + 1, next_mfn: span.start };
        }
        ReleaseProgress::Done
    }

    fn drop_reference_without_cascade(&mut self, mfn: u64) {
        if let Some(f) = self.frames.get_mut(mfn) {
            f.type_count = f.type_count.saturating_sub(1);
            f.ref_count = f.ref_count.saturating_sub(1);
            // A table still validated waits for its own tear-down (see `release_if_unused`).
            self.frames.release_if_unused(mfn);
        }
    }

    /// Drops the references a validated or `partial` table's entries hold; whether it was one.
    fn tear_down_table(&mut self, mfn: u64) -> bool {
        let Some(f) = self.frames.get_mut(mfn) else {
            return false;
        };
        let Some(level) = f.page_type.level() else {
            return false;
        };
        let held = if f.validated { ENTRIES } else { usize::from(f.partial) };
        if held == 0 {
            return false;
        }
        f.validated = false;
        f.partial = 0;
        self.release_entries_without_cascade(mfn, level, held);
        // A freed table whose last reference went before its entries did.
        self.frames.release_if_unused(mfn);
        true
    }
}
