//! Randomised hostile grant-table use: four domains write their own grant entries, map,
//! unmap, copy, grow and query tables with arguments that are often wrong (other domains'
//! references, page tables and grant frames as targets, random handles, flags and extents),
//! while the set of domains "running elsewhere" changes. After every step, refused or not,
//! every frame's reference and type counts must match a recount from the live tables, roots
//! and grant mappings (`World::audit`). Then every domain dies, in a random order, and every
//! frame must come back.

use super::tests::{base, data, l1, World, A, B, C, D0, MAP_VA};
use super::*;
use crate::mm::{PageType, ReleaseCursor, ReleaseProgress};
use crate::test_rng::Rng;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::DOMID_SELF;

const DOMS: [DomId; 4] = [D0, A, B, C];
/// The grants each run starts from, `(granter, grantee)`: references 0..4 on the granter's
/// first four data frames, writable.
const STARTING_GRANTS: [(DomId, DomId); 5] = [(A, B), (B, A), (C, A), (A, D0), (B, C)];

/// A domain that granted to `d` at the start.
fn starting_granter_for(rng: &mut Rng, d: DomId) -> DomId {
    let granters: Vec<DomId> = STARTING_GRANTS.iter().filter(|g| g.1 == d).map(|g| g.0).collect();
    rng.pick(&granters)
}

/// A domain id as a hostile caller names it: mostly a real one, sometimes itself by
/// `DOMID_SELF`, sometimes nobody.
fn domid(rng: &mut Rng) -> DomId {
    match rng.below(10) {
        0 => DOMID_SELF,
        1 => rng.next() as u16,
        _ => rng.pick(&DOMS),
    }
}

/// A frame as a hostile caller names it: a data frame of some domain, a page table, a grant
/// frame, or anything.
fn frame(rng: &mut Rng, w: &World) -> u64 {
    let d = rng.pick(&DOMS);
    match rng.below(8) {
        0 => l1(d),
        1 => base(d),
        2 => w.tables.table_frames(d).map_or(0, |f| f[0]),
        3 => rng.next() >> rng.below(64),
        _ => data(d, rng.below(6)),
    }
}

fn gref(rng: &mut Rng) -> u32 {
    if rng.chance(10) {
        rng.next() as u32
    } else {
        rng.below(12) as u32
    }
}

fn flags_of(rng: &mut Rng, choices: &[u32]) -> u32 {
    choices.iter().filter(|_| rng.chance(2)).fold(0, |acc, f| acc | f)
}

/// Runs the grant and MMU teardown of `d` as the kernel does and frees what it can of its
/// frames.
fn destroy(w: &mut World, d: DomId) {
    while w.tables.release_domain(d, &mut w.frames, &mut w.mem, 3) == ReleaseProgress::MoreWork {}
    let mut cursor = ReleaseCursor::default();
    while w.mmu(d).release_domain(&mut cursor, 64) == ReleaseProgress::MoreWork {}
    w.paging.remove(&d);
    for m in base(d)..base(d) + 0x100 {
        let _ = w.frames.free_domain_frame(m);
    }
}

fn step(w: &mut World, rng: &mut Rng, handles: &mut Vec<(DomId, GrantHandle, u64, u64)>, done: &mut [u32; 4]) {
    let d = rng.pick(&DOMS);
    match rng.below(8) {
        0 | 1 => {
            // The granter writes one of its own entries (as the guest does, in the shared
            // frame): any flags, including clearing GTF_reading/GTF_writing under a pin.
            let flags = match rng.below(5) {
                0 => rng.next() as u16,
                1 => GTF_PERMIT_ACCESS | GTF_READONLY,
                2 => 0,
                _ => GTF_PERMIT_ACCESS,
            };
            let entry = GrantEntryV1 { flags, domid: domid(rng), frame: frame(rng, w) as u32 };
            let _ = w.tables.set_entry(&mut w.mem, d, gref(rng), entry);
        }
        2 => {
            let host_addr = if rng.chance(4) { rng.below(0x10) * 0x1000 } else { MAP_VA };
            let (flags, r#ref, dom) = if rng.chance(2) {
                // Well-formed: a grant made to `d` at the start (which may have changed since).
                let granter = starting_granter_for(rng, d);
                let flags = GNTMAP_HOST_MAP
                    | if rng.chance(2) { GNTMAP_READONLY } else { 0 }
                    | if rng.chance(4) { GNTMAP_DEVICE_MAP } else { 0 };
                (flags, rng.below(4) as u32, granter)
            } else {
                (
                    flags_of(rng, &[GNTMAP_HOST_MAP, GNTMAP_DEVICE_MAP, GNTMAP_READONLY, GNTMAP_CONTAINS_PTE]),
                    gref(rng),
                    domid(rng),
                )
            };
            let op = GnttabMapGrantRef { host_addr, flags, r#ref, dom, ..Default::default() };
            if let Ok(m) = w.access(d).map_grant_ref(&op) {
                handles.push((d, m.handle, host_addr, m.dev_bus_addr));
                done[0] += 1;
            }
        }
        3 => {
            // Unmap a handle of ours, someone else's, or a made-up one, at the right address
            // or not.
            let (caller, handle, host_addr, dev_bus_addr) = match handles.len() {
                0 => (d, rng.below(4) as GrantHandle, MAP_VA, 0),
                n => handles[rng.below(n as u64) as usize],
            };
            let caller = if rng.chance(4) { d } else { caller };
            let host_addr = match rng.below(6) {
                0 => rng.below(0x10) * 0x1000,
                1 => 0,
                _ => host_addr,
            };
            let dev_bus_addr = match rng.below(6) {
                0 => rng.next(),
                1 => 0,
                _ => dev_bus_addr,
            };
            if w.access(caller).unmap_grant_ref(host_addr, dev_bus_addr, handle) == GNTST_OKAY {
                handles.retain(|&(c, h, ..)| (c, h) != (caller, handle));
                done[1] += 1;
            }
        }
        4 if rng.chance(2) => {
            // Well-formed: from a grant made to `d` at the start into `d`'s own data frame.
            let source = GnttabCopyPtr {
                ref_or_gmfn: rng.below(4),
                domid: starting_granter_for(rng, d),
                offset: rng.below(8) as u16 * 512,
            };
            let dest = GnttabCopyPtr { ref_or_gmfn: data(d, rng.below(4)), domid: DOMID_SELF, offset: 0 };
            let len = (4096 - source.offset).min(rng.below(9) as u16 * 512);
            let op = GnttabCopy { source, dest, len, flags: GNTCOPY_SOURCE_GREF, status: 0 };
            if w.access(d).copy(&op) == GNTST_OKAY {
                done[2] += 1;
            }
        }
        4 | 5 => {
            let side = |rng: &mut Rng, is_gref: bool| GnttabCopyPtr {
                ref_or_gmfn: if is_gref { u64::from(gref(rng)) } else { frame(rng, w) },
                domid: if is_gref {
                    domid(rng)
                } else if rng.chance(6) {
                    rng.pick(&DOMS)
                } else {
                    DOMID_SELF
                },
                offset: if rng.chance(4) { rng.next() as u16 } else { rng.below(8) as u16 * 512 },
            };
            let flags = flags_of(rng, &[u32::from(GNTCOPY_SOURCE_GREF), u32::from(GNTCOPY_DEST_GREF)]) as u16;
            let source = side(rng, flags & GNTCOPY_SOURCE_GREF != 0);
            let dest = side(rng, flags & GNTCOPY_DEST_GREF != 0);
            let len = if rng.chance(4) { rng.next() as u16 } else { rng.below(9) as u16 * 512 };
            let op = GnttabCopy { source, dest, len, flags, status: 0 };
            if w.access(d).copy(&op) == GNTST_OKAY {
                done[2] += 1;
            }
        }
        6 => {
            let nr = if rng.chance(4) { rng.next() as u32 } else { rng.below(6) as u32 };
            if w.access(d).setup_table(domid(rng), nr).is_ok() {
                done[3] += 1;
            }
            let _ = w.access(d).query_size(domid(rng));
            let _ = w.access(d).get_version(domid(rng));
        }
        _ => {
            w.running_elsewhere = RunningElsewhere::new(DOMS.iter().copied().filter(|_| rng.chance(3)));
        }
    }
}

#[test]
fn random_hostile_grant_use_keeps_every_count_and_returns_every_frame() {
    let mut done = [0u32; 4];
    for seed in 1..=6u64 {
        let mut w = World::new();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut handles = Vec::new();
        // Some valid grants to start from, so that maps and copies often succeed.
        for (granter, to) in STARTING_GRANTS {
            for i in 0..4u32 {
                w.grant(granter, i, to, data(granter, u64::from(i)), super::tests::GRANT_RW);
            }
        }
        for _ in 0..1500 {
            step(&mut w, &mut rng, &mut handles, &mut done);
            w.audit();
        }
        let mut order = DOMS;
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for d in order {
            destroy(&mut w, d);
            w.audit();
        }
        let _ = w.tables.reap(&mut w.frames);
        assert!(!w.tables.has_pending(), "seed {seed}: a dead table is still pending");
        for d in DOMS {
            for m in base(d)..base(d) + 0x100 {
                let f = w.frames.get(m).unwrap();
                assert_eq!(
                    (f.owner, f.ref_count, f.type_count, f.page_type == PageType::None || f.type_count == 0),
                    (crate::mm::Owner::Hypervisor, 0, 0, true),
                    "seed {seed}: frame {m:#x} of d{d} not returned"
                );
            }
        }
    }
    // The test means something only if the hostile mix also let real work through.
    assert!(done.iter().all(|&n| n > 50), "maps, unmaps, copies, setups done: {done:?}");
}
