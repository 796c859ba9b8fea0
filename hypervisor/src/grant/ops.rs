//! The `GNTTABOP_*` operations on [`GrantAccess`]: setup_table, query_size, get_version,
//! map_grant_ref, unmap_grant_ref and copy, with Xen's checks and `GNTST_*` answers
//! (xen/common/grant_table.c, 4.17), and the pin/unpin of active entries they share.

use super::{
    clear_flags, read_shared, set_flags_if_unchanged, ActiveEntry, DomainGrants, GrantAccess, GrantTables, MapTrack,
};
use crate::mm::{FrameTable, GrantPteSlot, MachineMemory, Owner};
use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::{pte, DomId, DOMID_SELF};

/// Pin increment of a writable host mapping (or a copy to the grant).
pub const PIN_HSTW_INC: u32 = 1 << 0;
/// Pin increment of a read-only host mapping (or a copy from the grant).
pub const PIN_HSTR_INC: u32 = 1 << 8;
/// Pin increment of a writable device mapping.
pub const PIN_DEVW_INC: u32 = 1 << 16;
/// Pin increment of a read-only device mapping.
pub const PIN_DEVR_INC: u32 = 1 << 24;
/// The writable counters.
const PIN_WRITE_MASK: u32 = 0xff * (PIN_HSTW_INC | PIN_DEVW_INC);
/// A counter about to overflow (Xen refuses new pins then).
const PIN_OVERFLOW: u32 = 0x8080_8080;

/// Map flags the maptrack keeps.
const KEPT_MAP_FLAGS: u32 = GNTMAP_DEVICE_MAP | GNTMAP_HOST_MAP | GNTMAP_READONLY | GNTMAP_CONTAINS_PTE;

/// What a successful `map_grant_ref` returns to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapDone {
    /// The handle to unmap with.
    pub handle: GrantHandle,
    /// Machine address of the frame (Xen returns it for every map).
    pub dev_bus_addr: u64,
}

/// The pin increments of a mapping with `GNTMAP_*` `flags`.
fn pin_incs(flags: u32) -> u32 {
    let ro = flags & GNTMAP_READONLY != 0;
    let mut inc = 0;
    if flags & GNTMAP_DEVICE_MAP != 0 {
        inc += if ro { PIN_DEVR_INC } else { PIN_DEVW_INC };
    }
    if flags & GNTMAP_HOST_MAP != 0 {
        inc += if ro { PIN_HSTR_INC } else { PIN_HSTW_INC };
    }
    inc
}

/// What pinning an entry takes, as [`check_pin`] found it. (`repr(C)`: with Rust's layout
/// the grant copy loop, which inlines the check, passed it through the stack piecewise.)
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct PinCheck {
    /// The granted frame.
    pub mfn: u64,
    /// The entry has no pin yet: the active entry is to be created.
    pub first: bool,
    /// `GTF_*` flags the pin sets in the shared entry (0: none).
    pub set_flags: u16,
    /// The shared entry as the checks read it (when `set_flags` is not 0): the flags are set
    /// only if it still holds this.
    pub seen: u64,
}

impl PinCheck {
    /// The frame was read from the shared entry for a new pin (its owner is still to be
    /// checked after [`check_pin_entry`]).
    #[inline(always)]
    pub(super) fn reads_new_frame(&self) -> bool {
        self.first && self.set_flags != 0
    }
}

/// Xen's checks for pinning `granter`'s entry `gref` (table `t`) for `user`, without
/// changing anything: the shared entry is read when the pin is new or a new kind of writable
/// use. `held` is added to the active entry's pins, wrapping: a pin the caller holds on top
/// of them (a copy whose source is the same grant: the destination is checked as if the
/// source's pin were taken), or, negated, pins of the caller's already among them (a copy
/// that pinned first is checked as Xen checks before pinning). A
/// `mapping` (not a copy) may not use a `GTF_sub_page` entry (Xen's `_set_status_v1`
/// with `mapflag`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn check_pin<M: MachineMemory + ?Sized>(
    t: &DomainGrants,
    frames: &FrameTable,
    mem: &M,
    granter: DomId,
    gref: GrantRef,
    user: DomId,
    readonly: bool,
    held: u32,
    mapping: bool,
) -> Result<PinCheck, i16> {
    let check = check_pin_entry(t, mem, gref, user, readonly, held, mapping)?;
    // Xen's get_paged_frame: a new pin's frame must be the granter's own (never a page the
    // hypervisor shares with it, see `FrameTable::get_grant_ref`).
    if check.reads_new_frame()
        && !frames.get(check.mfn).is_some_and(|f| f.owner == Owner::Domain(granter) && !f.shared_by_hypervisor)
    {
        return Err(GNTST_BAD_PAGE);
    }
    Ok(check)
}

/// [`check_pin`] but for its last check: when the frame comes from the shared entry
/// ([`PinCheck::reads_new_frame`]), whether it is the granter's is left to the caller, which
/// must answer `GNTST_bad_page` if not. A grant copy folds that check into the frame check it makes
/// anyway ([`FrameTable::check_grant_ref`], whose `-EINVAL` is exactly that condition), so
/// the frame's accounting is looked up once.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn check_pin_entry<M: MachineMemory + ?Sized>(
    t: &DomainGrants,
    mem: &M,
    gref: GrantRef,
    user: DomId,
    readonly: bool,
    held: u32,
    mapping: bool,
) -> Result<PinCheck, i16> {
    if gref >= t.nr_entries() {
        return Err(GNTST_BAD_GNTREF);
    }
    // Most tables have no pinned entry while they are copied from: skip the search then.
    let active = if t.active.is_empty() { None } else { t.active.get(&gref) };
    if let Some(a) = active {
        // Only the domain that holds the pin may use the entry until it is unpinned.
        if a.mapper != user || a.pin.wrapping_add(held) & PIN_OVERFLOW != 0 {
            return Err(GNTST_GENERAL_ERROR);
        }
    }
    let pinned = active.map_or(held, |a| a.pin.wrapping_add(held));
    let mut check = PinCheck { mfn: active.map_or(0, |a| a.mfn), first: active.is_none(), set_flags: 0, seen: 0 };
    if pinned == 0 || (!readonly && pinned & PIN_WRITE_MASK == 0) {
        let (e, seen) = read_shared(mem, &t.frames, gref).ok_or(GNTST_GENERAL_ERROR)?;
        check.seen = seen;
        let type_mask = if mapping { GTF_TYPE_MASK | GTF_SUB_PAGE } else { GTF_TYPE_MASK };
        if pinned == 0 && !grants_to(&e, user, type_mask) {
            return Err(GNTST_GENERAL_ERROR);
        }
        if !readonly && !lets_write(&e) {
            return Err(GNTST_GENERAL_ERROR);
        }
        if active.is_none() {
            check.mfn = u64::from(e.frame);
        }
        check.set_flags = GTF_READING | if readonly { 0 } else { GTF_WRITING };
    }
    Ok(check)
}

/// Whether entry `e` grants `user` access, its type under `type_mask` (`GTF_TYPE_MASK`; a
/// mapping adds `GTF_SUB_PAGE`, which it cannot honour) being `GTF_permit_access`.
#[inline(always)]
pub(super) fn grants_to(e: &GrantEntryV1, user: DomId, type_mask: u16) -> bool {
    e.flags & type_mask == GTF_PERMIT_ACCESS && e.domid == user
}

/// Whether entry `e` lets its grantee write the frame.
#[inline(always)]
pub(super) fn lets_write(e: &GrantEntryV1) -> bool {
    e.flags & GTF_READONLY == 0
}

/// Most heap one new active entry can take: a node split at every level of the tree.
const ACTIVE_INSERT_BYTES: usize = 2048;

/// Pins `granter`'s entry `gref` for `user` (Xen's `_set_status_v1` plus the first-pin
/// setup of the active entry): [`check_pin`], then creates the active entry if new, sets
/// `GTF_reading`/`GTF_writing` and adds `inc`; returns the granted frame.
#[allow(clippy::too_many_arguments)]
pub(super) fn pin<M: MachineMemory + ?Sized>(
    tables: &mut GrantTables,
    frames: &FrameTable,
    mem: &mut M,
    granter: DomId,
    gref: GrantRef,
    user: DomId,
    readonly: bool,
    inc: u32,
    mapping: bool,
) -> Result<u64, i16> {
    let t = tables.live_mut(granter).ok_or(GNTST_BAD_DOMAIN)?;
    let check = check_pin(t, frames, &*mem, granter, gref, user, readonly, 0, mapping)?;
    // A new active entry must leave the heap's reserve (`heap`); Xen allocates its active
    // entries with the table instead, so this refusal has no exact Xen twin: it is the
    // "no room" status a mapping gets when Xen cannot allocate tracking for it.
    if check.first && !crate::heap::guest_may_take(ACTIVE_INSERT_BYTES) {
        log::warn!(target: crate::log_limit::GUEST_TARGET, "d{user}: pin of d{granter} gref {gref} refused: the hypervisor heap is at its guests' share");
        return Err(GNTST_NO_DEVICE_SPACE);
    }
    // Xen's `_set_status_v1` cmpxchg: the granter may be running on another CPU and end the
    // grant (or change it) between the checks and this write. The flags are set only on
    // the entry the checks accepted; one that changed meanwhile is refused (Xen retries a
    // few times, then refuses an entry that keeps changing), so the grant can never be used
    // after its owner saw it end.
    if check.set_flags != 0 && !set_flags_if_unchanged(mem, &t.frames, gref, check.seen, check.set_flags) {
        return Err(GNTST_GENERAL_ERROR);
    }
    if check.first {
        t.active.insert(gref, ActiveEntry { pin: 0, mapper: user, mfn: check.mfn });
    }
    let a = t.active.get_mut(&gref).ok_or(GNTST_GENERAL_ERROR)?;
    a.pin += inc;
    Ok(a.mfn)
}

/// Drops the pins `dec` (a sum of `PIN_*_INC`) from `granter`'s entry `gref` and clears
/// `GTF_writing` when no writable pin is left (if `writable` use ended) and `GTF_reading`
/// when no pin is left; the entry stops being active then.
pub(super) fn unpin<M: MachineMemory + ?Sized>(
    tables: &mut GrantTables,
    mem: &mut M,
    granter: DomId,
    gref: GrantRef,
    writable: bool,
    dec: u32,
) {
    let Some(t) = tables.tables.get_mut(&granter) else {
        return;
    };
    let Some(a) = t.active.get_mut(&gref) else {
        return;
    };
    for inc in [PIN_HSTW_INC, PIN_HSTR_INC, PIN_DEVW_INC, PIN_DEVR_INC] {
        let n = (dec / inc) & 0xff;
        let have = (a.pin / inc) & 0xff;
        debug_assert!(n <= have, "pin underflow on d{granter} gref {gref}");
        // Never borrow from the next counter, whatever the bookkeeping says.
        a.pin -= n.min(have) * inc;
    }
    let mut clear = 0;
    if writable && a.pin & PIN_WRITE_MASK == 0 {
        clear |= GTF_WRITING;
    }
    if a.pin == 0 {
        clear |= GTF_READING;
        let mfn = a.mfn;
        t.active.remove(&gref);
        t.orphan_unused_by_one(mfn);
    }
    if clear != 0 {
        clear_flags(mem, &t.frames, gref, clear);
    }
}

impl<M: MachineMemory + ?Sized> GrantAccess<'_, M> {
    /// The calling domain.
    pub fn caller(&self) -> DomId {
        self.mmu.domain.id
    }

    /// The domain `dom` names: `DOMID_SELF` is the caller.
    #[inline(always)]
    pub(super) fn resolve_self(&self, dom: DomId) -> DomId {
        if dom == DOMID_SELF {
            self.caller()
        } else {
            dom
        }
    }

    /// `rcu_lock_domain_by_any_id`: `DOMID_SELF` or a live domain.
    fn any_domain(&self, dom: DomId) -> Option<DomId> {
        let d = self.resolve_self(dom);
        self.tables.is_live(d).then_some(d)
    }

    /// Xen's `XSM_TARGET` rule: a domain may act on itself; the control domain on anyone.
    fn may_target(&self, d: DomId) -> bool {
        d == self.caller() || self.privileged
    }

    /// `GNTTABOP_setup_table`: grows `dom`'s table to `nr_frames` if it is smaller and
    /// returns the MFNs of its first `nr_frames` frames for the guest's `frame_list`.
    /// `GNTST_bad_domain` (no such domain), `GNTST_permission_denied` (another domain,
    /// unprivileged), `GNTST_general_error` (more than `max_frames`, or out of memory).
    pub fn setup_table(&mut self, dom: DomId, nr_frames: u32) -> Result<Vec<u64>, i16> {
        let d = self.any_domain(dom).ok_or(GNTST_BAD_DOMAIN)?;
        if !self.may_target(d) {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let t = self.tables.live_mut(d).ok_or(GNTST_BAD_DOMAIN)?;
        if nr_frames > t.config.max_frames {
            return Err(GNTST_GENERAL_ERROR);
        }
        if nr_frames as usize > t.frames.len() {
            super::grow(t, d, nr_frames, self.mmu.frames, &mut *self.mmu.mem, &mut *self.pool)
                .map_err(|_| GNTST_GENERAL_ERROR)?;
        }
        Ok(t.frames[..nr_frames as usize].to_vec())
    }

    /// `GNTTABOP_query_size`: `(nr_frames, max_nr_frames)` of `dom`, with the refusals of
    /// `setup_table` for the domain.
    pub fn query_size(&self, dom: DomId) -> Result<(u32, u32), i16> {
        let d = self.any_domain(dom).ok_or(GNTST_BAD_DOMAIN)?;
        if !self.may_target(d) {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let t = self.tables.tables.get(&d).ok_or(GNTST_BAD_DOMAIN)?;
        Ok((t.frames.len() as u32, t.config.max_frames))
    }

    /// `GNTTABOP_get_version`: always 1. `-ESRCH` for no such domain, `-EPERM` for another
    /// domain's table without privilege.
    pub fn get_version(&self, dom: DomId) -> Result<u32, Errno> {
        let d = self.any_domain(dom).ok_or(Errno::ESRCH)?;
        if !self.may_target(d) {
            return Err(Errno::EPERM);
        }
        Ok(1)
    }

    /// `GNTTABOP_map_grant_ref` for one request (Xen's `map_grant_ref`). Refusals:
    /// * `GNTST_bad_gntref`: neither `GNTMAP_host_map` nor `GNTMAP_device_map`, or `ref`
    ///   outside the granter's table;
    /// * `GNTST_bad_domain`: `dom` is not a live domain (`DOMID_SELF` is not accepted);
    /// * `GNTST_no_device_space`: the caller has no free mapping handle;
    /// * `GNTST_general_error`: the entry is not `GTF_permit_access` for the caller, a
    ///   writable map of a `GTF_readonly` grant, the entry is pinned by another domain, the
    ///   frame cannot be pinned (no longer the granter's; a page table for a writable map),
    ///   or the PTE slot is not in one of the caller's validated L1 tables;
    /// * `GNTST_bad_page`: the granted frame is not an ordinary frame of the granter.
    pub fn map_grant_ref(&mut self, op: &GnttabMapGrantRef) -> Result<MapDone, i16> {
        if op.flags & (GNTMAP_DEVICE_MAP | GNTMAP_HOST_MAP) == 0 {
            return Err(GNTST_BAD_GNTREF);
        }
        if !self.tables.is_live(op.dom) {
            return Err(GNTST_BAD_DOMAIN);
        }
        let caller = self.caller();
        let handle =
            self.tables.live_mut(caller).ok_or(GNTST_GENERAL_ERROR)?.alloc_handle().ok_or(GNTST_NO_DEVICE_SPACE)?;
        let result = self.map_with_handle(op, caller);
        let t = self.tables.tables.get_mut(&caller);
        match (result, t) {
            (Ok(mfn), Some(t)) => {
                t.maptrack[handle as usize] =
                    Some(MapTrack { granter: op.dom, gref: op.r#ref, flags: op.flags & KEPT_MAP_FLAGS });
                Ok(MapDone { handle, dev_bus_addr: mfn << 12 })
            }
            (Err(status), Some(t)) => {
                t.free_handle(handle);
                Err(status)
            }
            (_, None) => Err(GNTST_GENERAL_ERROR),
        }
    }

    /// Pins the grant and takes the references of `op`'s device and host mappings; on
    /// failure everything taken is given back. Returns the frame.
    fn map_with_handle(&mut self, op: &GnttabMapGrantRef, caller: DomId) -> Result<u64, i16> {
        let ro = op.flags & GNTMAP_READONLY != 0;
        let inc = pin_incs(op.flags);
        let mfn = pin(self.tables, self.mmu.frames, &mut *self.mmu.mem, op.dom, op.r#ref, caller, ro, inc, true)?;
        let device = op.flags & GNTMAP_DEVICE_MAP != 0;
        let mut result = Ok(());
        if device {
            result = self.mmu.frames.get_grant_ref(mfn, op.dom, !ro).map_err(|_| GNTST_GENERAL_ERROR);
        }
        if result.is_ok() && op.flags & GNTMAP_HOST_MAP != 0 {
            let slot = pte_slot(op.flags, op.host_addr);
            result = self.mmu.install_grant_mapping(slot, mfn, op.dom, grant_pte_flags(op.flags)).map_err(|e| {
                log::warn!(target: crate::log_limit::GUEST_TARGET, "d{caller}: grant map of d{} gref {}: {}", op.dom, op.r#ref, e.reason);
                GNTST_GENERAL_ERROR
            });
            if result.is_err() && device {
                self.mmu.frames.put_grant_ref(mfn, !ro);
            }
        }
        if let Err(status) = result {
            unpin(self.tables, &mut *self.mmu.mem, op.dom, op.r#ref, !ro, inc);
            return Err(status);
        }
        Ok(mfn)
    }

    /// `GNTTABOP_unmap_grant_ref` for one request (Xen's `unmap_common` and
    /// `unmap_common_complete`). With `host_addr != 0` the host mapping is removed (the PTE
    /// at `host_addr` must still map the frame with the mapping's rights, else
    /// `GNTST_general_error` and nothing changes); with `dev_bus_addr != 0` the device
    /// mapping (it must equal the frame's address, else `GNTST_general_error`). The handle is
    /// freed once neither is left. `GNTST_bad_handle` for a handle that maps nothing.
    pub fn unmap_grant_ref(&mut self, host_addr: u64, dev_bus_addr: u64, handle: GrantHandle) -> i16 {
        let caller = self.caller();
        let map = self.tables.tables.get(&caller).and_then(|t| t.maptrack.get(handle as usize).copied().flatten());
        let Some(map) = map else {
            return GNTST_BAD_HANDLE;
        };
        let act = self.tables.tables.get(&map.granter).and_then(|t| t.active.get(&map.gref).copied());
        let Some(act) = act else {
            return GNTST_BAD_HANDLE;
        };
        if dev_bus_addr != 0 && dev_bus_addr != act.mfn << 12 {
            return GNTST_GENERAL_ERROR;
        }
        let ro = map.flags & GNTMAP_READONLY != 0;
        let mut done = 0;
        if host_addr != 0 && map.flags & GNTMAP_HOST_MAP != 0 {
            let slot = pte_slot(map.flags, host_addr);
            if let Err(e) = self.mmu.remove_grant_mapping(slot, act.mfn, !ro) {
                log::warn!(target: crate::log_limit::GUEST_TARGET, "d{caller}: grant unmap of handle {handle}: {}", e.reason);
                return GNTST_GENERAL_ERROR;
            }
            done |= GNTMAP_HOST_MAP;
        }
        if dev_bus_addr != 0 && map.flags & GNTMAP_DEVICE_MAP != 0 {
            self.mmu.frames.put_grant_ref(act.mfn, !ro);
            done |= GNTMAP_DEVICE_MAP;
        }
        if done == 0 {
            return GNTST_OKAY;
        }
        if let Some(t) = self.tables.tables.get_mut(&caller) {
            let left = map.flags & !done;
            if left & (GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP) == 0 {
                t.free_handle(handle);
            } else if let Some(Some(m)) = t.maptrack.get_mut(handle as usize) {
                m.flags = left;
            }
        }
        let dec = pin_incs(done | (map.flags & GNTMAP_READONLY));
        unpin(self.tables, &mut *self.mmu.mem, map.granter, map.gref, !ro, dec);
        GNTST_OKAY
    }
}

/// Where a mapping's PTE is, from its `GNTMAP_contains_pte` flag.
fn pte_slot(flags: u32, host_addr: u64) -> GrantPteSlot {
    if flags & GNTMAP_CONTAINS_PTE != 0 {
        GrantPteSlot::Machine(host_addr)
    } else {
        GrantPteSlot::Va(host_addr)
    }
}

/// The L1 flags of a host mapping (Xen's `grant_to_pte_flags`): present, accessed, dirty,
/// NX; RW unless read-only; U for `GNTMAP_application_map`; the guest-available map bits
/// 16-18 into PTE bits 9-11. RAM grants never get cache attributes.
fn grant_pte_flags(flags: u32) -> u64 {
    let mut f = pte::PRESENT | pte::ACCESSED | pte::DIRTY | pte::NX;
    if flags & GNTMAP_READONLY == 0 {
        f |= pte::RW;
    }
    if flags & GNTMAP_APPLICATION_MAP != 0 {
        f |= pte::USER;
    }
    f | u64::from((flags >> 16) & 7) << 9
}
