//! `memory_op`: the reservation operations (a PV domain giving frames back and taking new
//! ones, as a balloon driver does), the memory statistics and a domU's memory map, with
//! Xen's answers for every refusal.

use super::handlers::{err, read_u64, ret};
use super::op::*;
use super::{Env, Outcome};
use crate::elf_image::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use hypercall_abi::errno::Errno;
use hypercall_abi::memory::{XENMEMF_EXACT_NODE_REQUEST, XENMEMF_VNODE, XENMEM_DECREASE_RESERVATION};

/// The domain a `xen_memory_domain` argument names, as Xen's memory-statistics ops find it:
/// `-EFAULT` unreadable, `-ESRCH` no such domain, then `-EPERM` unless it is the caller or
/// the caller is the control domain (dummy XSM's `XSM_TARGET`).
fn stat_domain(env: &dyn Env, va: u64) -> Result<super::DomainFacts, Errno> {
    let mut b = [0u8; 2];
    env.copy_from_guest(va, &mut b)?;
    let caller = env.domain();
    let domid = u16::from_le_bytes(b);
    let target = if domid == DOMID_SELF || domid == caller.id {
        caller
    } else {
        env.domain_facts_of(domid).ok_or(Errno::ESRCH)?
    };
    if target.id == caller.id || caller.privileged {
        Ok(target)
    } else {
        Err(Errno::EPERM)
    }
}

/// `memory_op(cmd, arg)`.
pub fn memory_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let facts = env.domain();
    let op = a[0] & MEMOP_CMD_MASK;
    // The statistics ops have no extents to continue from: Xen refuses a start extent.
    let stats_op = matches!(op, XENMEM_MAXIMUM_RAM_PAGE | XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION);
    if stats_op && a[0] >> MEMOP_EXTENT_SHIFT != 0 {
        return err(Errno::EINVAL);
    }
    let result = match op {
        XENMEM_DECREASE_RESERVATION => return decrease_reservation(env, a),
        XENMEM_INCREASE_RESERVATION => return grow_reservation(env, a, Growth::Increase),
        XENMEM_POPULATE_PHYSMAP => return grow_reservation(env, a, Growth::Populate),
        XENMEM_MAXIMUM_RAM_PAGE => return ret(facts.max_mfn as i64),
        XENMEM_CURRENT_RESERVATION => stat_domain(env, a[1]).map(|d| d.nr_pages),
        // dom0 has no memory limit on Xen: its max_pages is ~0U.
        XENMEM_MAXIMUM_RESERVATION => {
            stat_domain(env, a[1]).map(|d| if d.privileged { u32::MAX as u64 } else { d.max_pages })
        }
        XENMEM_MEMORY_MAP => memory_map(env, a[1], facts).map(|()| 0),
        _ => Err(Errno::ENOSYS),
    };
    match result {
        Ok(v) => ret(v as i64),
        Err(e) => err(e),
    }
}

/// `MEMOP_EXTENT_SHIFT`: a reservation command carries the extent to start from above it.
const MEMOP_EXTENT_SHIFT: u64 = 6;
/// Frames freed or given per hypercall entry before a continuation (Xen checks for
/// preemption between extents).
const RESERVATION_BATCH: u64 = 512;
/// `XENMEMF_populate_on_demand`: a mark for translated (HVM) guests only.
const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// Xen's largest `extent_order` for a domU (`CONFIG_DOMU_MAX_ORDER`) and for the control or
/// hardware domain (`CONFIG_CTLDOM_MAX_ORDER`, `CONFIG_HWDOM_MAX_ORDER`).
const DOMU_MAX_ORDER: u32 = 9;
const CTLDOM_MAX_ORDER: u32 = 12;
/// `MAX_NUMNODES` of Xen 4.17's default build (`CONFIG_NR_NUMA_NODES`).
const MAX_NUMNODES: u32 = 64;

/// A `struct xen_memory_reservation` (`extent_start` @0, `nr_extents` @8, `extent_order`
/// @16, `mem_flags` @20, `domid` @24) that passed Xen's whole-request checks.
struct Reservation {
    /// The extent to start from (`cmd >> 6`).
    start: u64,
    /// The list of MFNs (decrease), of gpfns (populate), or for the MFNs given (increase;
    /// NULL for none).
    list: u64,
    nr_extents: u64,
    order: u32,
    flags: u32,
    /// The domain whose reservation changes (the caller, or one the control domain names).
    target: u16,
}

/// Reads and checks a reservation request as Xen's `do_memory_op` does before any extent:
/// an unreadable struct, too many extents or a start past them, a domain that does not
/// exist or that the caller may not change, bad `mem_flags`, too large an order or a list
/// in the hypervisor's range are all answered with the start extent, never an error code.
fn reservation(env: &mut dyn Env, a: [u64; 5]) -> Result<Reservation, Outcome> {
    let start = a[0] >> MEMOP_EXTENT_SHIFT;
    let refused = || ret(start as i64);
    let mut raw = [0u8; 32];
    env.copy_from_guest(a[1], &mut raw).map_err(|_| refused())?;
    let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap_or_default());
    let (list, nr_extents, order, flags) = (word(0), word(8), half(16), half(20));
    let domid = u16::from_le_bytes([raw[24], raw[25]]);
    let caller = env.domain();
    if nr_extents > u64::from(u32::MAX >> MEMOP_EXTENT_SHIFT) || start >= nr_extents {
        return Err(refused());
    }
    let target = if domid == DOMID_SELF || domid == caller.id {
        caller.id
    } else if caller.privileged
        && env.domain_control().is_some_and(|c| c.info_from(domid).is_some_and(|i| i.id == domid))
    {
        domid
    } else {
        // Xen: no such domain, or XSM refuses an unprivileged caller: nothing done.
        return Err(refused());
    };
    let max_order = if caller.privileged { CTLDOM_MAX_ORDER } else { DOMU_MAX_ORDER };
    let first = list.wrapping_add(start.wrapping_mul(8));
    let handle_ok = !(HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&first);
    if !reservation_flags_ok(flags, caller.privileged) || order > max_order || !handle_ok {
        return Err(refused());
    }
    Ok(Reservation { start, list, nr_extents, order, flags, target })
}

/// `XENMEM_decrease_reservation` (Xen's `decrease_reservation` for a PV domain): frees each
/// extent, `2^order` machine frames from the MFN in the list, with
/// `FrameTable::free_by_owner` (a frame still referenced stays the domain's until its last
/// reference goes). Returns how many extents were done, counting from the start extent,
/// stopping at the first frame that is not the domain's or an unreadable list entry. Long
/// lists continue (`Outcome::Continue`) between extents.
fn decrease_reservation(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let r = match reservation(env, a) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let caller = env.domain().id;
    if let Some(mut mmu) = env.mmu() {
        // Dropping a pin releases tables in bounded steps: this entry's budget first (and the
        // releases an earlier operation left), as every MMU entry.
        if !mmu.begin_entry() {
            return Outcome::Continue(a);
        }
    }
    let mut budget = RESERVATION_BATCH;
    for i in r.start..r.nr_extents {
        if i != r.start && budget == 0 {
            let cmd = XENMEM_DECREASE_RESERVATION | (i << MEMOP_EXTENT_SHIFT);
            return Outcome::Continue([cmd, a[1], a[2], a[3], a[4]]);
        }
        let Ok(gmfn) = read_u64(env, r.list.wrapping_add(i.wrapping_mul(8))) else { return ret(i as i64) };
        let Some(mut mmu) = env.mmu() else { return err(Errno::ENOSYS) };
        for j in 0..1u64 << r.order {
            let freed = gmfn.checked_add(j).is_some_and(|mfn| {
                let freed = mmu.frames.free_by_owner(mfn, r.target).is_ok();
                // Xen's `guest_remove_page` drops the pin of a table it frees, so an
                // otherwise unused one goes at once (and a later unpin is -EINVAL). Only the
                // domain's own pins: its release stack is the one this vCPU drains.
                if freed && r.target == caller && mmu.frames.get(mfn).is_some_and(|f| f.pinned) {
                    let _ = mmu.unpin_table(mfn);
                }
                freed
            });
            if mmu.frames.has_released() {
                // A frame released now may still be cached from an entry removed earlier.
                mmu.paging.effects.flush_all = true;
            }
            if !freed {
                return ret(i as i64);
            }
        }
        budget = budget.saturating_sub(1 << r.order);
    }
    ret(r.nr_extents as i64)
}

/// Which reservation a domain grows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Growth {
    /// `XENMEM_increase_reservation`: new extents, their MFNs written to the list unless it
    /// is NULL; the M2P says nothing of them yet (the guest sets it, as on Xen).
    Increase,
    /// `XENMEM_populate_physmap`: the list names the gpfn of each extent; the M2P records it,
    /// and the list entry is replaced by the MFN (a PV guest's view of its new memory).
    Populate,
}

/// `XENMEM_increase_reservation` and `XENMEM_populate_physmap` for a PV domain (Xen's
/// `increase_reservation` and `populate_physmap`): each extent is `2^order` new, zeroed,
/// contiguous frames, as long as the domain stays within the pages it was built with (its
/// `max_pages`: maxmem = memory) and free memory lasts. Returns how many extents were done,
/// counting from the start extent; an unreadable gpfn or an MFN that cannot be written back
/// ends the call there (the extent already given stays the domain's, as in Xen). What a
/// balloon driver uses to take back memory it gave up with `decrease_reservation`.
fn grow_reservation(env: &mut dyn Env, a: [u64; 5], growth: Growth) -> Outcome {
    let r = match reservation(env, a) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    // Populate-on-demand marks only translated guests' memory (Xen's
    // `guest_physmap_mark_populate_on_demand` refuses a PV domain at the first extent).
    if growth == Growth::Populate && r.flags & XENMEMF_POPULATE_ON_DEMAND != 0 {
        return ret(r.start as i64);
    }
    let op = a[0] & MEMOP_CMD_MASK;
    let mut budget = RESERVATION_BATCH;
    for i in r.start..r.nr_extents {
        if i != r.start && budget == 0 {
            return Outcome::Continue([op | (i << MEMOP_EXTENT_SHIFT), a[1], a[2], a[3], a[4]]);
        }
        let slot = r.list.wrapping_add(i.wrapping_mul(8));
        let gpfn = match growth {
            Growth::Populate => match read_u64(env, slot) {
                Ok(gpfn) => gpfn,
                Err(_) => return ret(i as i64),
            },
            Growth::Increase => 0,
        };
        let Some(mfn) = env.take_new_frames(r.target, r.order) else { return ret(i as i64) };
        if let Some(mmu) = env.mmu() {
            for j in 0..1u64 << r.order {
                let pfn = match growth {
                    Growth::Populate => gpfn.wrapping_add(j),
                    Growth::Increase => crate::mm::INVALID_M2P_ENTRY,
                };
                let _ = mmu.frames.set_m2p(mfn + j, pfn);
            }
        }
        let write_back = growth == Growth::Populate || r.list != 0;
        if write_back && env.copy_to_guest(slot, &mfn.to_le_bytes()).is_err() {
            return ret(i as i64);
        }
        budget = budget.saturating_sub(1 << r.order);
    }
    ret(r.nr_extents as i64)
}

/// Xen's `construct_memop_from_reservation` checks of `mem_flags`: address bits that no
/// frame can satisfy (1-12), and a NUMA node (bits 8-15 hold node + 1) a privileged caller
/// names beyond `MAX_NUMNODES`, or an exact-node request from an unprivileged one.
fn reservation_flags_ok(flags: u32, privileged: bool) -> bool {
    let address_bits = flags & 0xff;
    if (1..=12).contains(&address_bits) {
        return false;
    }
    if flags & XENMEMF_VNODE != 0 {
        return true; // no virtual NUMA topology: nothing to check
    }
    let node = (flags >> 8).wrapping_sub(1) & 0xff;
    if node == 0xff {
        return true;
    }
    if privileged {
        node < MAX_NUMNODES
    } else {
        flags & XENMEMF_EXACT_NODE_REQUEST == 0
    }
}

/// `XENMEM_memory_map`: a domU's pseudo-physical map, one RAM entry covering the pages it
/// may have (the map xl sets for a PV guest: its maxmem, which is its memory here, so
/// ballooning does not shrink it). The control domain has no map set by a toolstack: Xen
/// answers it -ENOSYS, once the structure (`nr_entries`, `buffer`) has been read.
fn memory_map(env: &mut dyn Env, arg: u64, caller: super::DomainFacts) -> Result<(), Errno> {
    let mut map = [0u8; 16];
    env.copy_from_guest(arg, &mut map)?;
    if caller.privileged {
        return Err(Errno::ENOSYS);
    }
    let nr_entries = u32::from_le_bytes([map[0], map[1], map[2], map[3]]);
    let buffer = u64::from_le_bytes(map[8..16].try_into().unwrap_or_default());
    if nr_entries == 0 {
        // Xen copies min(nr_entries, its count) entries: none, and says so.
        return env.copy_to_guest(arg, &0u32.to_le_bytes());
    }
    let mut e820 = [0u8; 20];
    e820[8..16].copy_from_slice(&(caller.max_pages * 4096).to_le_bytes());
    e820[16..20].copy_from_slice(&1u32.to_le_bytes());
    env.copy_to_guest(buffer, &e820)?;
    env.copy_to_guest(arg, &1u32.to_le_bytes())
}

/// The rules of [`Env::take_new_frames`], for any frame source: `2^order` frames from
/// `alloc(count)` (contiguous, aligned to their size) go to domain `id` unless that would take
/// it past `max_pages`; they are assigned in the frame table, then zeroed (whatever they held,
/// a dead domain's data or a page another domain gave up, must not reach this one). A frame
/// the frame table does not have free is a hypervisor bug: the frames given so far go back,
/// `release` gets every frame of the run but that one, and nothing is given.
pub fn give_new_frames<M: crate::domain_layout::MachineMemory + ?Sized>(
    frames: &mut crate::mm::FrameTable,
    mem: &mut M,
    id: u16,
    max_pages: u64,
    order: u32,
    alloc: impl FnOnce(u64) -> Option<u64>,
    release: impl FnOnce(&mut dyn Iterator<Item = u64>),
) -> Option<u64> {
    let count = 1u64 << order;
    if frames.pages_of(id).saturating_add(count) > max_pages {
        return None;
    }
    let first = alloc(count)?;
    for mfn in first..first + count {
        if frames.assign_frame(mfn, id).is_err() {
            log::error!("d{id}: free frame {mfn:#x} is not the hypervisor's; reservation refused");
            for given in first..mfn {
                let _ = frames.free_domain_frame(given);
            }
            release(&mut (first..first + count).filter(|&f| f != mfn));
            return None;
        }
    }
    for mfn in first..first + count {
        mem.write_frame_bytes(mfn, 0, &[0u8; 4096]);
    }
    Some(first)
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod memory_tests;
