//! A dying domain's grants (Xen's `gnttab_release_mappings` and the zombie table that lives
//! while others still map the dead domain's frames), and reaping frames once free.

use super::ops::{unpin, PIN_DEVR_INC, PIN_DEVW_INC, PIN_HSTR_INC, PIN_HSTW_INC};
use super::GrantTables;
use crate::mm::{FrameTable, MachineMemory, Owner, ReleaseProgress};
use alloc::vec::Vec;
use hypercall_abi::grant_table::{GNTMAP_DEVICE_MAP, GNTMAP_HOST_MAP, GNTMAP_READONLY};
use hypercall_abi::mm::DomId;

impl GrantTables {
    /// Releases the grants of the dying domain `id` (module documentation, step 4), at most
    /// `budget` mapping handles per call; call again while it answers `MoreWork`. The domain
    /// must not run meanwhile. From the first call on, its table refuses new maps and copies.
    ///
    /// For each mapping `id` made: the pins go (clearing the granter's `GTF_reading` and
    /// `GTF_writing` when they were the last), and a device mapping's references are
    /// dropped. A host mapping's references are its PTE's: `Mmu::release_domain` drops them
    /// with `id`'s page tables, whichever of the two runs first.
    ///
    /// When done, `id`'s grant frames are queued for [`reap`](Self::reap); if other domains
    /// still have pins on its table, the table stays as a zombie (only its active entries)
    /// until they unmap, and the frames they map are queued too.
    pub fn release_domain<M: MachineMemory + ?Sized>(
        &mut self,
        id: DomId,
        frames: &mut FrameTable,
        mem: &mut M,
        budget: usize,
    ) -> ReleaseProgress {
        let Some(t) = self.tables.get_mut(&id) else {
            return ReleaseProgress::Done;
        };
        t.dying = true;
        let mut work = 0;
        loop {
            let Some(t) = self.tables.get_mut(&id) else {
                return ReleaseProgress::Done;
            };
            let handle = t.release_next;
            if handle >= t.maptrack.len() {
                break;
            }
            if work == budget {
                return ReleaseProgress::MoreWork;
            }
            work += 1;
            t.release_next += 1;
            let Some(map) = t.maptrack[handle].take() else {
                continue;
            };
            let ro = map.flags & GNTMAP_READONLY != 0;
            let mut dec = 0;
            if map.flags & GNTMAP_DEVICE_MAP != 0 {
                dec += if ro { PIN_DEVR_INC } else { PIN_DEVW_INC };
                let mfn = self.tables.get(&map.granter).and_then(|g| g.active.get(&map.gref)).map(|a| a.mfn);
                if let Some(mfn) = mfn {
                    frames.put_grant_ref(mfn, !ro);
                }
            }
            if map.flags & GNTMAP_HOST_MAP != 0 {
                dec += if ro { PIN_HSTR_INC } else { PIN_HSTW_INC };
            }
            unpin(self, mem, map.granter, map.gref, !ro, dec);
        }
        let Some(t) = self.tables.get_mut(&id) else {
            return ReleaseProgress::Done;
        };
        t.maptrack.clear();
        t.free_handles.clear();
        self.dead_table_frames.append(&mut t.frames);
        t.orphan_uses.clear();
        for a in t.active.values() {
            *t.orphan_uses.entry(a.mfn).or_default() += 1;
        }
        if t.active.is_empty() {
            self.tables.remove(&id);
        }
        ReleaseProgress::Done
    }

    /// Whether [`reap`](Self::reap) has work: grant frames of dead domains to give back,
    /// orphans whose last use went, or a zombie table with nothing left to drop. (Not while
    /// a zombie merely waits for its mappers: a reap would find nothing, however large it is.)
    pub fn has_pending(&self) -> bool {
        !self.dead_table_frames.is_empty()
            || self.tables.values().any(|t| t.dying && (!t.orphans_ready.is_empty() || t.is_spent()))
    }

    /// Frames the kernel must now give back to the frame allocator (module documentation,
    /// step 5): dead domains' grant frames once the hypervisor owns them again (after
    /// `Mmu::release_domain`), and dead granters' frames whose last reference went, which
    /// this takes back from the dead domain (`free_domain_frame`). Zombie tables with
    /// nothing left are dropped, so their domain id becomes free.
    pub fn reap(&mut self, frames: &mut FrameTable) -> Vec<u64> {
        let mut out = Vec::new();
        self.dead_table_frames.retain(|&mfn| {
            let free =
                frames.get(mfn).is_some_and(|f| f.owner == Owner::Hypervisor && f.ref_count == 0 && f.type_count == 0);
            if free {
                out.push(mfn);
            }
            !free
        });
        for (id, t) in self.tables.iter_mut().filter(|(_, t)| t.dying) {
            t.orphans_ready.retain(|&mfn| {
                if !frames.owned_by(mfn, id) {
                    return false; // freed by the domain's teardown already (unmapped in time)
                }
                match frames.free_domain_frame(mfn) {
                    Ok(()) => {
                        out.push(mfn);
                        false
                    }
                    // The dead domain's own tables, still being torn down, map it: its
                    // teardown frees it, or the next reap does.
                    Err(_) => true,
                }
            });
        }
        self.tables.retain(|_, t| !(t.dying && t.is_spent()));
        out
    }
}

impl super::DomainGrants {
    /// One active entry using `mfn` went: if this is a dead domain's zombie table and that
    /// was the frame's last use, it is ready for [`GrantTables::reap`].
    pub(super) fn orphan_unused_by_one(&mut self, mfn: u64) {
        let Some(uses) = self.orphan_uses.get_mut(&mfn) else {
            return;
        };
        *uses = uses.saturating_sub(1);
        if *uses == 0 {
            self.orphan_uses.remove(&mfn);
            self.orphans_ready.push(mfn);
        }
    }

    /// A dead domain's table with nothing left: no frames, pins, mappings or orphans.
    fn is_spent(&self) -> bool {
        self.frames.is_empty()
            && self.active.is_empty()
            && self.maptrack.is_empty()
            && self.orphan_uses.is_empty()
            && self.orphans_ready.is_empty()
    }
}
