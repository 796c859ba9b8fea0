//! Host tests of grant tables: setup/query, map and unmap with every refusal, read-only and
//! forged grants, reference counting against the PV MMU, revocation while mapped, teardown;
//! plus the [`World`] fixture the copy and hypercall tests share.

use super::*;
use crate::mm::testing::{e, HashMapMemory, RW, SLOTS};
use crate::mm::{DomainRights, Mmu, Owner, PageType, VcpuPaging};
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::{pte, DOMID_SELF};
use std::collections::HashMap;

/// The granter.
pub(crate) const A: DomId = 1;
/// The mapper.
pub(crate) const B: DomId = 2;
/// A third domain.
pub(crate) const C: DomId = 3;
/// The privileged domain.
pub(crate) const D0: DomId = 0;
/// Frames of the pool the grant tables grow from.
const POOL: core::ops::Range<u64> = 0x900..0x980;
/// Free L1 slot of every domain's tree: VA of grant mappings.
pub(crate) const MAP_VA: u64 = 0x8000;

/// First frame of domain `d` (each owns 0x100 frames).
pub(crate) const fn base(d: DomId) -> u64 {
    0x100 * (d as u64 + 1)
}
/// The L1 of `d`'s tree.
pub(crate) const fn l1(d: DomId) -> u64 {
    base(d) + 3
}
/// An ordinary data frame of `d` (mapped RW at VA `i * 4096` for i < 4).
pub(crate) const fn data(d: DomId, i: u64) -> u64 {
    base(d) + 0x10 + i
}

/// A pool over a range of hypervisor frames.
#[derive(Default)]
pub(crate) struct Pool(pub Vec<u64>);

impl FramePool for Pool {
    fn alloc_frame(&mut self) -> Option<u64> {
        self.0.pop()
    }
    fn free_frame(&mut self, mfn: u64) {
        self.0.push(mfn);
    }
}

/// Four domains (D0 privileged), each with a pinned 4-level tree whose L1 maps four data
/// frames RW at VA 0..0x4000, and a grant table.
pub(crate) struct World {
    pub frames: FrameTable,
    pub mem: HashMapMemory,
    pub tables: GrantTables,
    pub pool: Pool,
    pub paging: HashMap<DomId, VcpuPaging>,
    /// Domains the operations treat as running on other CPUs.
    pub running_elsewhere: RunningElsewhere,
}

impl World {
    pub fn new() -> Self {
        let mut w = World {
            frames: FrameTable::new(0x1000),
            mem: HashMapMemory::default(),
            tables: GrantTables::new(),
            pool: Pool(POOL.rev().collect()),
            paging: HashMap::new(),
            running_elsewhere: RunningElsewhere::default(),
        };
        for d in [D0, A, B, C] {
            for m in base(d)..base(d) + 0x100 {
                w.frames.assign_frame(m, d).unwrap();
            }
            w.mem.write_entry(base(d), 0, e(base(d) + 1, RW));
            w.mem.write_entry(base(d) + 1, 0, e(base(d) + 2, RW));
            w.mem.write_entry(base(d) + 2, 0, e(l1(d), RW));
            for i in 0..4 {
                w.mem.write_entry(l1(d), i, e(data(d, i as u64), RW));
            }
            let mut paging = VcpuPaging::default();
            Mmu::new(&mut w.frames, &mut w.mem, &SLOTS, rights(d), &mut paging)
                .adopt_bootstrap_tables(base(d))
                .unwrap();
            w.paging.insert(d, paging);
            w.tables.add_domain(d, GrantConfig::default(), &mut w.frames, &mut w.mem, &mut w.pool).unwrap();
        }
        w
    }

    /// The grant operations as domain `d` calls them.
    pub fn access(&mut self, d: DomId) -> GrantAccess<'_> {
        let paging = self.paging.get_mut(&d).unwrap();
        GrantAccess {
            tables: &mut self.tables,
            mmu: Mmu::new(&mut self.frames, &mut self.mem, &SLOTS, rights(d), paging),
            pool: &mut self.pool,
            privileged: d == D0,
            running_elsewhere: self.running_elsewhere,
        }
    }

    /// The MMU of domain `d`.
    pub fn mmu(&mut self, d: DomId) -> Mmu<'_, HashMapMemory> {
        let paging = self.paging.get_mut(&d).unwrap();
        Mmu::new(&mut self.frames, &mut self.mem, &SLOTS, rights(d), paging)
    }

    /// `granter` writes entry `gref`: `flags` for `to` on frame `mfn`.
    pub fn grant(&mut self, granter: DomId, gref: GrantRef, to: DomId, mfn: u64, flags: u16) {
        let entry = GrantEntryV1 { flags, domid: to, frame: mfn as u32 };
        self.tables.set_entry(&mut self.mem, granter, gref, entry).unwrap();
    }

    pub fn flags(&self, granter: DomId, gref: GrantRef) -> u16 {
        self.tables.entry(&self.mem, granter, gref).unwrap().flags
    }

    /// `(type, type count, ref count)` of `mfn`.
    pub fn counts(&self, mfn: u64) -> (PageType, u32, u32) {
        let f = self.frames.get(mfn).unwrap();
        (f.page_type, f.type_count, f.ref_count)
    }

    /// Host-maps `granter`'s `gref` into `mapper` at `MAP_VA` with extra `flags`.
    pub fn map(&mut self, mapper: DomId, granter: DomId, gref: GrantRef, flags: u32) -> Result<MapDone, i16> {
        let op = GnttabMapGrantRef {
            host_addr: MAP_VA,
            flags: GNTMAP_HOST_MAP | flags,
            r#ref: gref,
            dom: granter,
            ..Default::default()
        };
        self.access(mapper).map_grant_ref(&op)
    }

    /// Recounts every frame's references from the live tables, roots, pins, shared pages and
    /// device mappings (grant PTEs may point at other domains' frames) and compares.
    pub fn audit(&self) {
        let mut want: HashMap<u64, (u32, u32)> = HashMap::new();
        for (mfn, f) in self.frames.iter() {
            if f.pinned || f.shared_by_hypervisor {
                let w = want.entry(mfn).or_default();
                w.0 += 1;
                w.1 += 1;
            }
            let Some(level) = f.page_type.level().filter(|_| f.validated && f.type_count > 0) else {
                continue;
            };
            for i in 0..512 {
                if level == 4 && (256..272).contains(&i) {
                    continue;
                }
                let entry = self.mem.read_entry(mfn, i);
                if entry & pte::PRESENT == 0 {
                    continue;
                }
                let target = (entry & pte::ADDR_MASK) >> 12;
                let w = want.entry(target).or_default();
                w.0 += 1;
                if level > 1 || entry & pte::RW != 0 {
                    w.1 += 1;
                }
            }
        }
        for p in self.paging.values() {
            for root in [p.kernel_l4, p.user_l4].into_iter().flatten() {
                let w = want.entry(root).or_default();
                w.0 += 1;
                w.1 += 1;
            }
        }
        for t in self.tables.tables.values() {
            for m in t.maptrack.iter().flatten() {
                if m.flags & GNTMAP_DEVICE_MAP != 0 {
                    let mfn = self.tables.tables[&m.granter].active[&m.gref].mfn;
                    let w = want.entry(mfn).or_default();
                    w.0 += 1;
                    if m.flags & GNTMAP_READONLY == 0 {
                        w.1 += 1;
                    }
                }
            }
        }
        for (mfn, f) in self.frames.iter() {
            if let Owner::Domain(d) = f.owner {
                assert!(self.frames.span_of(d).contains(&mfn), "frame {mfn:#x} of d{d} outside its span");
            }
            let (refs, types) = want.get(&mfn).copied().unwrap_or_default();
            assert_eq!((f.ref_count, f.type_count), (refs, types), "frame {mfn:#x} (refs, types)");
        }
    }
}

pub(crate) fn rights(d: DomId) -> DomainRights {
    DomainRights { id: d, io_capable: d == D0 }
}

pub(crate) const GRANT_RW: u16 = GTF_PERMIT_ACCESS;
pub(crate) const GRANT_RO: u16 = GTF_PERMIT_ACCESS | GTF_READONLY;

#[test]
fn setup_table_grows_and_query_size_reports() {
    let mut w = World::new();
    assert_eq!(w.access(A).query_size(DOMID_SELF), Ok((1, 64)));
    let frames = w.access(A).setup_table(DOMID_SELF, 4).unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!(&frames[..], w.tables.table_frames(A).unwrap());
    for &f in &frames {
        let info = w.frames.get(f).unwrap();
        assert!(info.owner == Owner::Domain(A) && info.shared_by_hypervisor, "{f:#x}");
    }
    assert_eq!(w.access(A).query_size(A), Ok((4, 64)));
    assert_eq!(w.access(A).setup_table(A, 2).unwrap(), frames[..2], "no shrink");
    assert_eq!(w.access(A).setup_table(A, 65), Err(GNTST_GENERAL_ERROR));
    assert_eq!(w.access(A).setup_table(B, 1), Err(GNTST_PERMISSION_DENIED));
    assert_eq!(w.access(A).query_size(B), Err(GNTST_PERMISSION_DENIED));
    assert_eq!(w.access(A).setup_table(77, 1), Err(GNTST_BAD_DOMAIN));
    assert_eq!(w.access(A).query_size(77), Err(GNTST_BAD_DOMAIN));
    assert_eq!(w.access(D0).setup_table(B, 2).map(|f| f.len()), Ok(2), "privileged");
    assert_eq!(w.access(A).get_version(DOMID_SELF), Ok(1));
    assert_eq!(w.access(A).get_version(B), Err(Errno::EPERM));
    assert_eq!(w.access(A).get_version(77), Err(Errno::ESRCH));
    w.audit();
}

#[test]
fn setup_table_out_of_memory_changes_nothing() {
    let mut w = World::new();
    let spare = core::mem::take(&mut w.pool.0);
    w.pool.0 = spare[..2].to_vec();
    assert_eq!(w.access(A).setup_table(A, 8), Err(GNTST_GENERAL_ERROR));
    assert_eq!(w.access(A).query_size(A), Ok((1, 64)));
    assert_eq!(w.pool.0.len(), 2, "frames given back");
    for &f in &spare[..2] {
        assert_eq!(w.frames.get(f).unwrap().owner, Owner::Hypervisor);
    }
    w.audit();
}

#[test]
fn map_and_unmap_a_writable_grant() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let done = w.map(B, A, 8, 0).unwrap();
    assert_eq!(done.dev_bus_addr, f << 12);
    let entry = w.mem.read_entry(l1(B), 8);
    assert_eq!(entry >> 12 & 0xfffffff, f);
    assert_eq!(entry & (pte::PRESENT | pte::RW | pte::NX | pte::USER), pte::PRESENT | pte::RW | pte::NX | pte::USER);
    assert_eq!(w.flags(A, 8), GRANT_RW | GTF_READING | GTF_WRITING);
    assert_eq!(w.tables.pin(A, 8), PIN_HSTW_INC);
    // A's own RW mapping plus B's.
    assert_eq!(w.counts(f), (PageType::Writable, 2, 2));
    w.audit();
    w.paging.get_mut(&B).unwrap().effects.take();
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    assert_eq!(w.mem.read_entry(l1(B), 8), 0);
    assert_eq!(w.flags(A, 8), GRANT_RW, "reading and writing cleared");
    assert_eq!(w.tables.pin(A, 8), 0);
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1));
    assert!(w.paging[&B].effects.flush_all, "unmap flushes the whole TLB (aliases of the entry)");
    assert_eq!(w.tables.mapping_count(B), 0);
    w.audit();
}

#[test]
fn read_only_grants_map_read_only_only() {
    let mut w = World::new();
    let f = data(A, 1);
    w.grant(A, 9, B, f, GRANT_RO);
    assert_eq!(w.map(B, A, 9, 0), Err(GNTST_GENERAL_ERROR), "writable map of a r/o grant");
    assert_eq!(w.flags(A, 9), GRANT_RO, "nothing left set");
    let done = w.map(B, A, 9, GNTMAP_READONLY).unwrap();
    assert_eq!(w.mem.read_entry(l1(B), 8) & pte::RW, 0);
    assert_eq!(w.flags(A, 9), GRANT_RO | GTF_READING);
    assert_eq!(w.counts(f), (PageType::Writable, 1, 2), "a general reference only");
    // A second, writable map of the same (still pinned) r/o grant is refused too.
    assert_eq!(w.map(B, A, 9, 0), Err(GNTST_GENERAL_ERROR));
    w.audit();
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    assert_eq!(w.flags(A, 9), GRANT_RO);
    w.audit();
}

#[test]
fn forged_and_malformed_maps_are_refused() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    assert_eq!(w.map(C, A, 8, 0), Err(GNTST_GENERAL_ERROR), "grant for B used by C");
    assert_eq!(w.map(B, A, 512, 0), Err(GNTST_BAD_GNTREF), "beyond the table");
    assert_eq!(w.map(B, A, u32::MAX, 0), Err(GNTST_BAD_GNTREF));
    assert_eq!(w.map(B, A, 10, 0), Err(GNTST_GENERAL_ERROR), "invalid entry");
    assert_eq!(w.map(B, 77, 8, 0), Err(GNTST_BAD_DOMAIN));
    assert_eq!(w.map(B, DOMID_SELF, 8, 0), Err(GNTST_BAD_DOMAIN));
    let op = GnttabMapGrantRef { host_addr: MAP_VA, flags: 0, r#ref: 8, dom: A, ..Default::default() };
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_BAD_GNTREF), "neither host nor device");
    w.grant(A, 11, B, data(C, 0), GRANT_RW);
    assert_eq!(w.map(B, A, 11, 0), Err(GNTST_BAD_PAGE), "A granting C's frame");
    let table_frame = w.tables.table_frames(A).unwrap()[0];
    w.grant(A, 12, B, table_frame, GRANT_RO);
    assert_eq!(w.map(B, A, 12, GNTMAP_READONLY), Err(GNTST_BAD_PAGE), "a grant-table frame");
    w.grant(A, 13, B, 0xfff_ffff, GRANT_RW);
    assert_eq!(w.map(B, A, 13, 0), Err(GNTST_BAD_PAGE), "outside RAM");
    for gref in [8, 11, 12, 13] {
        assert_eq!(w.tables.pin(A, gref), 0);
        assert_eq!(w.flags(A, gref) & (GTF_READING | GTF_WRITING), 0);
    }
    assert_eq!(w.mem.read_entry(l1(B), 8), 0);
    assert_eq!(w.tables.mapping_count(B), 0, "failed maps free their handle");
    w.audit();
}

#[test]
fn bad_pte_slots_are_refused_and_undone() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GRANT_RW);
    let mut op =
        GnttabMapGrantRef { host_addr: 0x40_0000_0000, flags: GNTMAP_HOST_MAP, r#ref: 8, dom: A, ..Default::default() };
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_GENERAL_ERROR), "no L1 there");
    op.host_addr = 0xffff_8000_0000_0000;
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_GENERAL_ERROR), "hypervisor area");
    op.flags |= GNTMAP_CONTAINS_PTE;
    op.host_addr = (l1(B) << 12) + 8 * 8 + 4;
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_GENERAL_ERROR), "misaligned PTE");
    op.host_addr = data(B, 0) << 12;
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_GENERAL_ERROR), "not an L1");
    op.host_addr = l1(C) << 12;
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_GENERAL_ERROR), "another domain's L1");
    assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, GRANT_RW));
    w.audit();
}

#[test]
fn contains_pte_maps_by_machine_address() {
    let mut w = World::new();
    let f = data(A, 2);
    w.grant(A, 8, B, f, GRANT_RW);
    let pte_at = (l1(B) << 12) + 9 * 8;
    let op = GnttabMapGrantRef {
        host_addr: pte_at,
        flags: GNTMAP_HOST_MAP | GNTMAP_CONTAINS_PTE | GNTMAP_APPLICATION_MAP,
        r#ref: 8,
        dom: A,
        ..Default::default()
    };
    let done = w.access(B).map_grant_ref(&op).unwrap();
    assert_eq!(w.mem.read_entry(l1(B), 9) & pte::ADDR_MASK, f << 12);
    w.audit();
    assert_eq!(w.access(B).unmap_grant_ref(pte_at, 0, done.handle), GNTST_OKAY);
    assert!(w.paging[&B].effects.flush_all, "PTE address: whole flush");
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1));
    w.audit();
}

#[test]
fn device_maps_hold_their_own_references() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let op = GnttabMapGrantRef { flags: GNTMAP_DEVICE_MAP, r#ref: 8, dom: A, ..Default::default() };
    let done = w.access(B).map_grant_ref(&op).unwrap();
    assert_eq!(w.tables.pin(A, 8), PIN_DEVW_INC);
    assert_eq!(w.counts(f), (PageType::Writable, 2, 2));
    w.audit();
    assert_eq!(w.access(B).unmap_grant_ref(0, 0x1000, done.handle), GNTST_GENERAL_ERROR, "wrong bus address");
    assert_eq!(w.access(B).unmap_grant_ref(0, 0, done.handle), GNTST_OKAY, "nothing named: nothing done");
    assert_eq!(w.tables.pin(A, 8), PIN_DEVW_INC);
    assert_eq!(w.access(B).unmap_grant_ref(0, f << 12, done.handle), GNTST_OKAY);
    assert_eq!((w.tables.pin(A, 8), w.counts(f)), (0, (PageType::Writable, 1, 1)));
    assert_eq!(w.access(B).unmap_grant_ref(0, f << 12, done.handle), GNTST_BAD_HANDLE);
    w.audit();
}

#[test]
fn handles_are_per_domain_and_die_with_the_unmap() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GRANT_RW);
    let done = w.map(B, A, 8, 0).unwrap();
    assert_eq!(w.access(C).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_BAD_HANDLE, "C has no such handle");
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA + 0x1000, 0, done.handle), GNTST_GENERAL_ERROR, "wrong address");
    assert_eq!(w.tables.pin(A, 8), PIN_HSTW_INC, "still mapped");
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_BAD_HANDLE, "reused handle");
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, 12345), GNTST_BAD_HANDLE);
    let again = w.map(B, A, 8, 0).unwrap();
    assert_ne!(again.handle, done.handle, "a freed handle is not reused at once");
    w.audit();
}

#[test]
fn maptrack_exhaustion_is_no_device_space() {
    let mut w = World::new();
    w.tables.tables.get_mut(&B).unwrap().config.max_maptrack = 2;
    w.grant(A, 8, B, data(A, 0), GRANT_RO);
    let op = GnttabMapGrantRef { flags: GNTMAP_DEVICE_MAP | GNTMAP_READONLY, r#ref: 8, dom: A, ..Default::default() };
    let first = w.access(B).map_grant_ref(&op).unwrap();
    w.access(B).map_grant_ref(&op).unwrap();
    assert_eq!(w.access(B).map_grant_ref(&op), Err(GNTST_NO_DEVICE_SPACE));
    assert_eq!(w.access(B).unmap_grant_ref(0, data(A, 0) << 12, first.handle), GNTST_OKAY);
    assert_eq!(w.access(B).map_grant_ref(&op).map(|d| d.handle), Ok(first.handle), "reused once all are taken");
    w.audit();
}

#[test]
fn growth_into_the_heaps_reserve_is_refused_and_changes_nothing() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GRANT_RO);
    w.grant(A, 9, B, data(A, 1), GRANT_RO);
    let op =
        |r| GnttabMapGrantRef { flags: GNTMAP_DEVICE_MAP | GNTMAP_READONLY, r#ref: r, dom: A, ..Default::default() };
    // One mapping while the heap has room: B now has handle storage for a few more.
    let first = w.access(B).map_grant_ref(&op(8)).unwrap();
    // The heap at its guests' share: a fresh handle that needs no growth and a pin of an
    // entry already active still work; a new active entry does not, and nothing of it
    // stays (no flags, no pin, the handle back).
    crate::heap::testing::pretend(16 << 20, 14 << 20);
    let second = w.access(B).map_grant_ref(&op(8)).unwrap();
    assert_eq!(w.access(B).map_grant_ref(&op(9)), Err(GNTST_NO_DEVICE_SPACE));
    assert_eq!(w.flags(A, 9), GRANT_RO, "no GTF_reading left behind");
    assert_eq!(w.tables.pin(A, 9), 0);
    assert_eq!(w.tables.mapping_count(B), 2);
    // Handle storage that must grow is refused too (B has used up what it had).
    let mut held = vec![first.handle, second.handle];
    let refused = loop {
        match w.access(B).map_grant_ref(&op(8)) {
            Ok(done) => held.push(done.handle),
            Err(status) => break status,
        }
        assert!(held.len() < 64, "handle storage grew into the reserve");
    };
    assert_eq!(refused, GNTST_NO_DEVICE_SPACE);
    // A bigger grant table is refused as well (its frame list would grow).
    assert_eq!(w.access(A).setup_table(A, 4), Err(GNTST_GENERAL_ERROR));
    assert_eq!(w.access(A).query_size(A), Ok((1, 64)));
    crate::heap::testing::clear();
    for h in held {
        assert_eq!(w.access(B).unmap_grant_ref(0, data(A, 0) << 12, h), GNTST_OKAY);
    }
    assert_eq!(w.access(B).map_grant_ref(&op(9)).map(|_| ()), Ok(()), "room again");
    w.audit();
}

#[test]
fn a_mapped_frame_cannot_be_freed_or_become_a_page_table() {
    let mut w = World::new();
    let f = data(A, 3);
    // A drops its own mapping so that only the grant holds the frame.
    w.mmu(A).update_va_mapping(3 * 0x1000, 0, 0).unwrap();
    assert_eq!(w.counts(f), (PageType::Writable, 0, 0));
    w.grant(A, 8, B, f, GRANT_RW);
    let done = w.map(B, A, 8, 0).unwrap();
    assert_eq!(w.frames.free_domain_frame(f).unwrap_err().errno, Errno::EBUSY);
    assert!(w.mmu(A).pin_table(f, 1).is_err(), "writably mapped: cannot be an L1");
    w.audit();
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    w.mmu(A).pin_table(f, 1).unwrap();
    // Now a page table: a writable map is refused, a read-only one allowed.
    assert_eq!(w.map(B, A, 8, 0), Err(GNTST_GENERAL_ERROR));
    assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, GRANT_RW));
    let ro = w.map(B, A, 8, GNTMAP_READONLY).unwrap();
    w.audit();
    w.mmu(A).unpin_table(f).unwrap();
    assert_eq!(w.frames.free_domain_frame(f).unwrap_err().errno, Errno::EBUSY, "r/o mapped");
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, ro.handle), GNTST_OKAY);
    w.frames.free_domain_frame(f).unwrap();
}

#[test]
fn revoking_while_mapped_leaves_the_mapping_until_unmap() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let first = w.map(B, A, 8, 0).unwrap();
    // The granter ignores the protocol and wipes the entry (or re-grants it to C).
    w.grant(A, 8, C, data(A, 1), GRANT_RW);
    assert_eq!(w.mem.read_entry(l1(B), 8) & pte::ADDR_MASK, f << 12, "mapping kept");
    assert_eq!(w.frames.free_domain_frame(f).unwrap_err().errno, Errno::EBUSY);
    assert_eq!(w.map(C, A, 8, 0), Err(GNTST_GENERAL_ERROR), "pinned for B");
    // B may map the pinned entry again; it gets the frame pinned at first, not the new one.
    let op = GnttabMapGrantRef { flags: GNTMAP_DEVICE_MAP, r#ref: 8, dom: A, ..Default::default() };
    let second = w.access(B).map_grant_ref(&op).unwrap();
    assert_eq!(second.dev_bus_addr, f << 12);
    w.audit();
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, first.handle), GNTST_OKAY);
    assert_eq!(w.access(B).unmap_grant_ref(0, f << 12, second.handle), GNTST_OKAY);
    assert_eq!(w.tables.pin(A, 8), 0);
    assert_eq!(w.map(B, A, 8, 0), Err(GNTST_GENERAL_ERROR), "now checked afresh: for C");
    assert!(w.map(C, A, 8, 0).is_ok());
    w.audit();
}

#[test]
fn a_hand_cleared_grant_pte_drops_its_references() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let done = w.map(B, A, 8, 0).unwrap();
    // B overwrites the grant PTE with update_va_mapping: its references go with it.
    w.mmu(B).update_va_mapping(MAP_VA, 0, 0).unwrap();
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1));
    w.audit();
    // The grant stays in use (as in Xen) and the unmap no longer matches.
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_GENERAL_ERROR);
    assert_eq!(w.tables.pin(A, 8), PIN_HSTW_INC);
    // A guest cannot recreate a foreign mapping by hand.
    let forged = (f << 12) | RW;
    assert!(w.mmu(B).update_va_mapping(MAP_VA, forged, 0).is_err());
}

#[test]
fn a_grant_ended_by_its_owner_during_the_checks_is_not_used() {
    // On a multiprocessor the granter runs meanwhile: it ends the grant (clears the entry,
    // seeing neither GTF_reading nor GTF_writing) after the map's checks passed and before
    // the flags are set. The map must fail and leave the entry as the owner wrote it, or the
    // grantee would map a page its owner has taken back.
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let frame = w.tables.table_frames(A).unwrap()[0];
    w.mem.race(frame, 8, 0);
    assert_eq!(w.map(B, A, 8, 0), Err(GNTST_GENERAL_ERROR));
    assert_eq!(w.flags(A, 8), 0, "the owner's write stands, no GTF_reading/writing added");
    assert_eq!(w.tables.pin(A, 8), 0, "no pin left behind");
    assert_eq!(w.mem.read_entry(l1(B), 8), 0, "nothing mapped");
    assert_eq!(w.tables.mapping_count(B), 0);
    w.audit();
    // Without a race the same grant maps.
    w.grant(A, 8, B, f, GRANT_RW);
    assert!(w.map(B, A, 8, 0).is_ok());
}
