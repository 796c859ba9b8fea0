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
        t.orphans = t.active.values().map(|a| a.mfn).collect();
        t.orphans.sort_unstable();
        t.orphans.dedup();
        if t.active.is_empty() {
            self.tables.remove(&id);
        }
        ReleaseProgress::Done
    }

    /// Whether [`reap`](Self::reap) may have work: frames to give back, or a dead domain's
    /// zombie table still to drop (true as long as one exists, so its id gets free).
    pub fn has_pending(&self) -> bool {
        !self.dead_table_frames.is_empty()
            || self.tables.values().any(|t| t.dying && t.maptrack.is_empty() && t.frames.is_empty())
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
            let active = &t.active;
            t.orphans.retain(|&mfn| {
                if !frames.owned_by(mfn, id) {
                    // Already freed by the domain's teardown (it was unmapped in time).
                    return false;
                }
                if active.values().any(|a| a.mfn == mfn) {
                    return true;
                }
                match frames.free_domain_frame(mfn) {
                    Ok(()) => {
                        out.push(mfn);
                        false
                    }
                    // Still referenced: a PTE the mapper changed by hand keeps nothing,
                    // so this only lasts until the pins above are gone.
                    Err(_) => true,
                }
            });
        }
        self.tables.retain(|_, t| {
            !(t.dying && t.frames.is_empty() && t.active.is_empty() && t.orphans.is_empty() && t.maptrack.is_empty())
        });
        out
    }
}
