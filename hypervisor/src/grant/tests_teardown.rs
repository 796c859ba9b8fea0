//! Host tests of grant teardown: a dying mapper releases its pins and references, a dying
//! granter leaves a zombie table until the last unmap, and `reap` returns every frame.

use super::tests::{base, data, World, A, B, C, GRANT_RO, GRANT_RW, MAP_VA};
use super::*;
use crate::mm::{Owner, PageType, ReleaseCursor, ReleaseProgress};
use hypercall_abi::grant_table::*;

/// Runs the grant and MMU teardown of `d` as the kernel does, then frees its frames.
fn destroy(w: &mut World, d: DomId) -> Vec<u64> {
    while w.tables.release_domain(d, &mut w.frames, &mut w.mem, 3) == ReleaseProgress::MoreWork {}
    let mut cursor = ReleaseCursor::default();
    while w.mmu(d).release_domain(&mut cursor, 64) == ReleaseProgress::MoreWork {}
    w.paging.remove(&d);
    let mut kept = Vec::new();
    for m in base(d)..base(d) + 0x100 {
        if w.frames.free_domain_frame(m).is_err() {
            kept.push(m);
        }
    }
    kept
}

#[test]
fn a_dying_mapper_releases_everything() {
    let mut w = World::new();
    let (f, g) = (data(A, 0), data(A, 1));
    w.grant(A, 8, B, f, GRANT_RW);
    w.grant(A, 9, B, g, GRANT_RO);
    w.map(B, A, 8, 0).unwrap();
    let dev = GnttabMapGrantRef { flags: GNTMAP_DEVICE_MAP | GNTMAP_READONLY, r#ref: 9, dom: A, ..Default::default() };
    for _ in 0..5 {
        w.access(B).map_grant_ref(&dev).unwrap();
    }
    assert_eq!(destroy(&mut w, B), Vec::<u64>::new(), "all of B's frames freed");
    assert_eq!((w.tables.pin(A, 8), w.tables.pin(A, 9)), (0, 0));
    assert_eq!((w.flags(A, 8), w.flags(A, 9)), (GRANT_RW, GRANT_RO));
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1), "only A's own mapping left");
    assert_eq!(w.counts(g), (PageType::Writable, 1, 1));
    let table_frames = w.tables.reap(&mut w.frames);
    assert_eq!(table_frames.len(), 1, "B's grant frame back to the allocator");
    assert!(!w.tables.has_table(B) && !w.tables.has_pending());
    w.audit();
}

#[test]
fn a_dying_granter_leaves_a_zombie_until_the_last_unmap() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GRANT_RW);
    let done = w.map(B, A, 8, 0).unwrap();
    w.grant(A, 9, C, data(A, 1), GRANT_RO);
    assert_eq!(destroy(&mut w, A), vec![f], "the mapped frame is kept");
    assert!(w.tables.has_table(A) && !w.tables.is_live(A));
    assert_eq!(w.map(C, A, 9, GNTMAP_READONLY), Err(GNTST_BAD_DOMAIN), "dead granter");
    assert_eq!(w.tables.reap(&mut w.frames).len(), 1, "A's grant frame only");
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1), "B's mapping still valid");
    assert_eq!(
        w.tables.add_domain(A, GrantConfig::default(), &mut w.frames, &mut w.mem, &mut w.pool),
        Err(Errno::EEXIST),
        "id busy while the zombie lives"
    );
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    assert!(w.tables.has_pending());
    assert_eq!(w.tables.reap(&mut w.frames), vec![f]);
    assert_eq!(w.frames.get(f).unwrap().owner, Owner::Hypervisor);
    assert!(!w.tables.has_table(A) && !w.tables.has_pending());
    w.audit();
}

#[test]
fn a_granter_and_mapper_dying_together_release_everything() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GRANT_RW);
    w.grant(B, 8, A, data(B, 0), GRANT_RW);
    w.map(B, A, 8, 0).unwrap();
    w.map(A, B, 8, 0).unwrap();
    let kept_a = destroy(&mut w, A);
    let kept_b = destroy(&mut w, B);
    assert_eq!(kept_a, vec![data(A, 0)], "B still mapped it when A died");
    assert!(kept_b.is_empty());
    let mut freed = w.tables.reap(&mut w.frames);
    freed.sort_unstable();
    assert_eq!(freed.len(), 3, "two grant frames and A's orphan: {freed:x?}");
    assert!(freed.contains(&data(A, 0)));
    assert!(!w.tables.has_table(A) && !w.tables.has_table(B));
    w.audit();
}

#[test]
fn a_zombie_waiting_for_its_mappers_costs_nothing_until_one_unmaps() {
    // A reap used to look at every orphan against every active entry on every grant call
    // while a zombie lived (quadratic in the grants a dead domain left mapped).
    let mut w = World::new();
    let mut handles = Vec::new();
    for i in 0..32u32 {
        w.grant(A, 8 + i, B, data(A, i as u64), GRANT_RO);
        let op = GnttabMapGrantRef {
            flags: GNTMAP_DEVICE_MAP | GNTMAP_READONLY,
            r#ref: 8 + i,
            dom: A,
            ..Default::default()
        };
        handles.push(w.access(B).map_grant_ref(&op).unwrap().handle);
    }
    destroy(&mut w, A);
    let _ = w.tables.reap(&mut w.frames);
    assert!(w.tables.has_table(A) && !w.tables.has_pending(), "nothing to do while all are mapped");
    for (i, &h) in handles.iter().enumerate() {
        let status = w.access(B).unmap_grant_ref(0, data(A, i as u64) << 12, h);
        assert_eq!(status, GNTST_OKAY, "handle {i}");
        assert!(w.tables.has_pending(), "the frame it freed is ready");
        let freed = w.tables.reap(&mut w.frames);
        assert_eq!(freed, vec![data(A, i as u64)]);
        assert!(!w.tables.has_pending() || i + 1 == handles.len());
    }
    let _ = w.tables.reap(&mut w.frames);
    assert!(!w.tables.has_table(A) && !w.tables.has_pending(), "the zombie went with its last use");
    w.audit();
}

#[test]
fn a_dead_domains_table_is_not_reaped_while_its_entries_hold_references() {
    // A grants its L3 read-only to B, which maps it. A dies: its grants go (a zombie, since
    // B maps the L3), then one step of its MMU teardown, which leaves the L3 validated with
    // no type reference. B unmaps between steps: the reap must not free the L3 while its
    // entries still hold the L2 below, or the L2 would stay A's for good.
    let mut w = World::new();
    let (l3, l2) = (base(A) + 1, base(A) + 2);
    w.grant(A, 8, B, l3, GRANT_RO);
    let done = w.map(B, A, 8, GNTMAP_READONLY).unwrap();
    while w.tables.release_domain(A, &mut w.frames, &mut w.mem, 3) == ReleaseProgress::MoreWork {}
    let mut cursor = ReleaseCursor::default();
    assert_eq!(w.mmu(A).release_domain(&mut cursor, 33), ReleaseProgress::MoreWork);
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    assert!(!w.tables.reap(&mut w.frames).contains(&l3), "reaped with its entries held");
    while w.mmu(A).release_domain(&mut cursor, 64) == ReleaseProgress::MoreWork {}
    let kept: Vec<u64> = (base(A)..base(A) + 0x100)
        .filter(|&m| w.frames.owned_by(m, A) && w.frames.free_domain_frame(m).is_err())
        .collect();
    assert!(kept.is_empty(), "frames kept for good: {kept:x?}");
    assert_eq!(w.counts(l2).1, 0);
}
