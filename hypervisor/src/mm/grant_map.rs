//! What grant tables (`crate::grant`) need from the PV MMU: references on frames another
//! domain owns, and host mappings of them written into the mapper's own L1 tables.
//!
//! # Who holds the references
//!
//! As in Xen for PV guests, the references of a grant *host* mapping belong to its PTE: a
//! present L1 entry to a granted frame holds a general reference, plus a Writable type
//! reference if it is RW, exactly like any other L1 entry. So everything the MMU already does
//! with L1 entries stays correct for grant PTEs: a table that is devalidated or torn down
//! (`release_domain`) drops them, and a guest that overwrites a grant PTE by hand
//! (`mmu_update`) drops them too (the grant then stays "in use" until the mapper dies, as
//! in Xen, but the frame is no longer reachable through it). What differs is only how such
//! an entry is *created*: never through `mmu_update`/validation, whose foreign-frame check
//! still refuses every frame the domain does not own (`foreign_mapping_permitted` stays
//! `false`), but only through [`Mmu::install_grant_mapping`], called by the grant code after
//! it checked the grant.
//!
//! Device mappings and grant copies hold references of their own, taken with
//! [`FrameTable::get_grant_ref`] and dropped with [`FrameTable::put_grant_ref`].

use super::frame_table::{FrameTable, Owner, PageType};
use super::pte_rules::{self, table_index};
use super::{MachineMemory, Mmu, MmuError, TlbFlush};
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::DomId;

/// Where the L1 entry of a grant host mapping is (`GNTMAP_contains_pte` or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantPteSlot {
    /// A guest virtual address: the entry that maps it in the current kernel root, whose L1
    /// must exist (as `update_va_mapping`).
    Va(u64),
    /// The machine address of the 8-byte entry itself, in one of the caller's L1 tables.
    Machine(u64),
}

impl FrameTable {
    /// Takes a general reference on `mfn`, which `owner` must own, plus a Writable type
    /// reference if `writable` (a grant's device mapping, a copy, or a grant PTE).
    ///
    /// Refused with `-EINVAL` if `owner` does not own the frame or it is a page the hypervisor
    /// shares with its domain (shared_info, grant-table frames: never granted on, so that they
    /// return to the hypervisor cleanly when their domain dies), and with `-EBUSY` if it
    /// cannot be Writable now (it is a page table or a descriptor table).
    pub fn get_grant_ref(&mut self, mfn: u64, owner: DomId, writable: bool) -> Result<(), MmuError> {
        self.check_grant_ref(mfn, owner, writable)?;
        let Some(f) = self.get_mut(mfn) else {
            return Err(MmuError::new(Errno::EINVAL, "granted frame not owned by the granter"));
        };
        if writable {
            if f.type_count == 0 {
                // Same transition as `Mmu::get_page_type(Writable)`: no validation needed.
                f.page_type = PageType::Writable;
                f.validated = true;
            }
            f.type_count += 1;
        }
        f.ref_count += 1;
        Ok(())
    }

    /// Whether [`get_grant_ref`](Self::get_grant_ref) would succeed now, with its error if
    /// not; changes nothing. A grant copy, which holds its frames only while the hypervisor
    /// runs it (see `crate::grant`'s copy), checks with this instead of taking references.
    #[inline]
    pub fn check_grant_ref(&self, mfn: u64, owner: DomId, writable: bool) -> Result<(), MmuError> {
        let f = self
            .get(mfn)
            .filter(|f| f.owner == Owner::Domain(owner) && !f.shared_by_hypervisor)
            .ok_or(MmuError::new(Errno::EINVAL, "granted frame not owned by the granter"))?;
        if f.ref_count == u32::MAX {
            return Err(MmuError::new(Errno::EBUSY, "reference count overflow"));
        }
        if writable {
            if f.type_count > 0 && f.page_type != PageType::Writable {
                return Err(MmuError::new(Errno::EBUSY, "could not get Writable type: frame is a page table"));
            }
            if f.partial > 0 {
                // Its owner is part way through validating or releasing it as a table.
                return Err(MmuError::new(Errno::EBUSY, "could not get Writable type: table work under way"));
            }
            if f.type_count == u32::MAX {
                return Err(MmuError::new(Errno::EBUSY, "type count overflow"));
            }
        }
        Ok(())
    }

    /// Undoes [`share_with_guest`](Self::share_with_guest) for a frame nobody has mapped
    /// (a grant-table grow that failed half-way): it returns to the hypervisor. `-EBUSY`
    /// (nothing changed) if it is not such a frame.
    pub fn unshare_fresh_frame(&mut self, mfn: u64) -> Result<(), MmuError> {
        let f = self
            .get_mut(mfn)
            .filter(|f| f.shared_by_hypervisor && f.ref_count == 1 && f.type_count == 1)
            .ok_or(MmuError::new(Errno::EBUSY, "not a fresh shared frame"))?;
        f.owner = Owner::Hypervisor;
        f.page_type = PageType::None;
        f.type_count = 0;
        f.ref_count = 0;
        f.validated = false;
        f.shared_by_hypervisor = false;
        Ok(())
    }

    /// Drops what [`get_grant_ref`](Self::get_grant_ref) took. The last reference of a frame
    /// its owner freed releases it ([`take_released`](Self::take_released)).
    pub fn put_grant_ref(&mut self, mfn: u64, writable: bool) {
        if let Some(f) = self.get_mut(mfn) {
            debug_assert!(f.ref_count > 0, "grant reference underflow on {mfn:#x}");
            if writable {
                // A Writable type has nothing to devalidate when its count reaches 0.
                f.type_count = f.type_count.saturating_sub(1);
            }
            f.ref_count = f.ref_count.saturating_sub(1);
            self.release_if_unused(mfn);
        }
    }
}

impl<M: MachineMemory + ?Sized> Mmu<'_, M> {
    /// The `(l1 frame, index)` of the entry `slot` names, which must be in a validated, live
    /// L1 table of the calling domain. `-EINVAL` otherwise (the grant code answers
    /// `GNTST_general_error`, as Xen's `create_grant_pv_mapping`).
    pub fn grant_pte_location(&self, slot: GrantPteSlot) -> Result<(u64, usize), MmuError> {
        let (l1, index) = match slot {
            GrantPteSlot::Machine(maddr) => {
                if maddr & 7 != 0 {
                    return Err(MmuError::new(Errno::EINVAL, "misaligned PTE address"));
                }
                (maddr >> 12, ((maddr & 0xfff) / 8) as usize)
            }
            GrantPteSlot::Va(va) => {
                if !pte_rules::is_canonical(va) || !pte_rules::is_guest_l4_slot(table_index(va, 4)) {
                    return Err(MmuError::new(Errno::EINVAL, "address is not a guest address"));
                }
                let mut table = self.paging.kernel_l4.ok_or(MmuError::new(Errno::EINVAL, "no page-table root"))?;
                for level in [4u8, 3, 2] {
                    let entry = self.mem.read_entry(table, table_index(va, level));
                    if !pte_rules::is_present(entry) || entry & hypercall_abi::mm::pte::PAT_OR_PSE != 0 {
                        return Err(MmuError::new(Errno::EINVAL, "no L1 table maps this address"));
                    }
                    table = pte_rules::entry_mfn(entry);
                }
                (table, table_index(va, 1))
            }
        };
        let own_l1 = self.frames.get(l1).is_some_and(|f| {
            f.owner == Owner::Domain(self.domain.id) && f.page_type == PageType::L1 && f.type_count > 0 && f.validated
        });
        if !own_l1 {
            return Err(MmuError::new(Errno::EINVAL, "grant PTE is not in a validated L1 of the domain"));
        }
        Ok((l1, index))
    }

    /// Writes a grant host mapping of `mfn` (owned by `granter`) with the L1 flags `flags`
    /// into the entry at `slot`, taking the references the entry holds (general, plus
    /// Writable type if `flags` has RW) and dropping those of the entry it replaces. The
    /// entry gets the usual guest adjustment (U, kernel marker). A replaced present entry
    /// asks for an `invlpg` (VA slot) or a full flush (machine slot).
    pub fn install_grant_mapping(
        &mut self,
        slot: GrantPteSlot,
        mfn: u64,
        granter: DomId,
        flags: u64,
    ) -> Result<(), MmuError> {
        let (l1, index) = self.grant_pte_location(slot)?;
        let new = pte_rules::adjust(1, (mfn << 12) | (flags & !hypercall_abi::mm::pte::ADDR_MASK));
        let bad = new & pte_rules::disallowed_flags(1, self.domain.io_capable);
        if bad != 0 {
            return Err(MmuError::new(Errno::EINVAL, "disallowed grant PTE flags"));
        }
        self.frames.get_grant_ref(mfn, granter, pte_rules::is_writable(new))?;
        let old = self.mem.read_entry(l1, index);
        self.mem.write_entry(l1, index, new);
        if pte_rules::is_present(old) {
            self.put_entry_references(1, old, true);
            self.flush_slot(slot);
        }
        Ok(())
    }

    /// Clears the grant host mapping of `mfn` at `slot`: the entry must be present, map `mfn`
    /// and be RW exactly if `writable` (`-EINVAL` otherwise, nothing changed, as Xen's "PTE
    /// doesn't match frame"). Its references are dropped and a flush of the slot is
    /// requested; the caller must see it done before another domain runs (see the module
    /// documentation of `crate::grant`).
    pub fn remove_grant_mapping(&mut self, slot: GrantPteSlot, mfn: u64, writable: bool) -> Result<(), MmuError> {
        let (l1, index) = self.grant_pte_location(slot)?;
        let old = self.mem.read_entry(l1, index);
        if !pte_rules::is_present(old) || pte_rules::entry_mfn(old) != mfn || pte_rules::is_writable(old) != writable {
            return Err(MmuError::new(Errno::EINVAL, "PTE does not match the grant mapping"));
        }
        self.mem.write_entry(l1, index, 0);
        // Dropping the reference of a foreign frame flushes the whole TLB: the entry may be
        // reachable at other addresses than `slot`'s (an L1 hooked under two L2 entries).
        self.put_entry_references(1, old, true);
        Ok(())
    }

    /// The TLB work after replacing the entry at `slot`: its page (a foreign frame's
    /// reference dropped asks for a full flush on its own, see `put_entry_references`).
    fn flush_slot(&mut self, slot: GrantPteSlot) {
        let flush = match slot {
            GrantPteSlot::Va(va) => TlbFlush::Page(va),
            // The virtual address the entry maps is unknown.
            GrantPteSlot::Machine(_) => TlbFlush::All,
        };
        self.paging.effects.request(flush);
    }
}
