//! Host tests from an adversarial review of grant tables against Xen 4.17: the TLB flush on
//! unmap (aliases of a grant PTE), copy statuses wherever the granter runs, `GTF_sub_page`
//! entries, and copies of pinned grants whose frame left the granter.

use super::tests::{data, World, A, B, C, MAP_VA};
use super::tests_copy::{frame_side, gref_side, op};
use super::*;
use hypercall_abi::grant_table::*;

/// A frame side naming `dom` (only `DOMID_SELF` may name a frame).
fn frame_of(mfn: u64, dom: DomId) -> GnttabCopyPtr {
    GnttabCopyPtr { domid: dom, ..frame_side(mfn, 0) }
}

/// Xen's `_set_status_v1` with `mapflag` checks `flags & (GTF_type_mask | GTF_sub_page)
/// == GTF_permit_access`: a v1 entry with bit 8 set cannot be mapped (a copy may use it).
#[test]
fn a_sub_page_entry_cannot_be_mapped() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS | GTF_SUB_PAGE);
    assert_eq!(w.map(B, A, 8, 0), Err(GNTST_GENERAL_ERROR));
    assert_eq!(w.tables.pin(A, 8), 0);
    assert_eq!(w.flags(A, 8), GTF_PERMIT_ACCESS | GTF_SUB_PAGE);
    // Copies ignore GTF_sub_page in v1 (mapflag 0).
    let o = op(gref_side(8, A, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY);
    w.audit();
}

/// Xen's `gnttab_copy_one` locks both domains first, then claims the source, then the
/// destination: the status of a request must not depend on where the granter runs.
#[test]
fn copy_status_does_not_depend_on_the_granter_running_elsewhere() {
    let mut w = World::new();
    let bad_src = op(frame_side(data(A, 0), 0), gref_side(99_999, A, 0), 8, GNTCOPY_DEST_GREF);
    let bad_dst_dom = op(gref_side(99_999, A, 0), frame_of(data(B, 0), C), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(w.access(B).copy(&bad_src), GNTST_BAD_PAGE);
    assert_eq!(w.access(B).copy(&bad_dst_dom), GNTST_PERMISSION_DENIED);
    w.running_elsewhere = RunningElsewhere::new([A]);
    let got = (w.access(B).copy(&bad_src), w.access(B).copy(&bad_dst_dom));
    assert_eq!(got, (GNTST_BAD_PAGE, GNTST_PERMISSION_DENIED), "A running on another CPU");
    w.audit();
}

/// Xen's `acquire_grant_for_copy` (pinned branch, page owner is not the granter):
/// `GNTST_bad_domain`.
#[test]
fn copy_of_a_pinned_grant_whose_frame_left_the_granter_is_bad_domain() {
    let mut w = World::new();
    let f = data(A, 3);
    w.mmu(A).update_va_mapping(3 * 0x1000, 0, 0).unwrap(); // A's own mapping of f goes
    w.grant(A, 8, B, f, GTF_PERMIT_ACCESS | GTF_READONLY);
    let _done = w.map(B, A, 8, GNTMAP_READONLY).unwrap();
    w.mmu(B).update_va_mapping(MAP_VA, 0, 0).unwrap(); // B zaps the grant PTE: the pin stays
    w.frames.free_by_owner(f, A).unwrap(); // A frees f: unreferenced, released at once
    assert!(w.frames.take_released().contains(&f));
    assert_ne!(w.tables.pin(A, 8), 0);
    let o = op(gref_side(8, A, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_BAD_DOMAIN);
}

/// A same-grant copy with 126 read-only pins: Xen succeeds (127 < 128 when the destination
/// is checked), wherever the granter runs.
#[test]
fn same_grant_copy_with_126_read_pins_succeeds_wherever_the_granter_runs() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS);
    for _ in 0..126 {
        w.map(B, A, 8, GNTMAP_READONLY).unwrap(); // same slot each time: one PTE, 126 pins
    }
    let o = op(gref_side(8, A, 0), gref_side(8, A, 100), 8, GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY, "granter not running");
    w.running_elsewhere = RunningElsewhere::new([A]);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY, "granter running elsewhere");
}

/// B hooks its L1 a second time (L2 slot 1): the grant PTE at MAP_VA is also reachable at
/// MAP_VA + 2 MiB. Unmapping through MAP_VA must flush B's whole TLB, not only MAP_VA, or
/// the alias keeps a writable translation while A makes the frame a page table. Xen
/// flushes the mapper's TLB on unmap (`gnttab_flush_tlb`); a grant PTE overwritten with
/// `update_va_mapping` is flushed the same way.
#[test]
fn dropping_a_grant_mapping_flushes_every_alias() {
    use super::tests::{base, l1};
    use crate::mm::testing::{e, RW};
    use crate::mm::PageType;
    use hypercall_abi::mm::MmuUpdate;
    let mut w = World::new();
    let l2 = base(B) + 2;
    w.mmu(B).mmu_update(MmuUpdate { ptr: (l2 << 12) + 8, val: e(l1(B), RW) }).unwrap();
    let f = data(A, 3);
    w.mmu(A).update_va_mapping(3 * 0x1000, 0, 0).unwrap(); // only the grant will hold f
    w.grant(A, 8, B, f, GTF_PERMIT_ACCESS);
    let done = w.map(B, A, 8, 0).unwrap();
    w.paging.get_mut(&B).unwrap().effects.take();
    // (B now writes through MAP_VA + 2 MiB: its TLB holds that alias -> f, RW.)
    assert_eq!(w.access(B).unmap_grant_ref(MAP_VA, 0, done.handle), GNTST_OKAY);
    let fx = w.paging.get_mut(&B).unwrap().effects.take();
    assert_eq!(w.counts(f), (PageType::Writable, 0, 0));
    assert!(fx.flush_all, "the unmap flushes B's whole TLB: {fx:?}");
    // The same through an implicit unmap: B overwrites its grant PTE by hand.
    let done = w.map(B, A, 8, 0).unwrap();
    w.paging.get_mut(&B).unwrap().effects.take();
    w.mmu(B).update_va_mapping(MAP_VA, 0, 0).unwrap();
    let fx = w.paging.get_mut(&B).unwrap().effects.take();
    assert!(fx.flush_all, "overwriting a grant PTE flushes B's whole TLB: {fx:?}");
    let _ = done;
    // B's own frame unmapped by hand stays the guest's business (an invlpg at most).
    w.mmu(B).update_va_mapping(0, 0, 0).unwrap();
    assert!(!w.paging.get_mut(&B).unwrap().effects.take().flush_all);
}

/// The write-pin twin: a same-grant copy with 127 host write pins succeeds wherever the
/// granter runs (Xen checks the source at 127, before its own pins).
#[test]
fn same_grant_copy_with_127_write_pins_succeeds_wherever_the_granter_runs() {
    let mut w = World::new();
    w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS);
    for _ in 0..127 {
        w.map(B, A, 8, 0).unwrap();
    }
    let o = op(gref_side(8, A, 0), gref_side(8, A, 100), 8, GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY, "granter not running");
    w.running_elsewhere = RunningElsewhere::new([A]);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY, "granter running elsewhere");
}
