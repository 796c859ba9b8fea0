//! Host tests of frames freed by their owner (`FrameTable::free_by_owner`, Xen's deferred
//! free behind `XENMEM_decrease_reservation`), the per-domain page count and the M2P storage
//! the kernel provides.

use super::testing::*;
use super::*;
use hypercall_abi::mm::*;

const L4: u64 = 0x100;
const L3: u64 = 0x101;
const L2: u64 = 0x102;
const L1: u64 = 0x103;
/// Mapped RW at VA 0 by `L1[0]`.
const DATA: u64 = 0x110;
/// Spare frames of the domain, never mapped by the tree.
const SPARE: u64 = 0x180;
const ALL: u64 = DOM_FRAMES.end - DOM_FRAMES.start;

/// L4 -> L3 -> L2[0] -> L1, `L1[0]` maps `DATA` RW and `L1[1]` maps the L1 read-only; the L4
/// is pinned and the kernel root.
fn tree() -> MockMmu {
    let mut m = MockMmu::new();
    m.poke(L4, 0, e(L3, RW));
    m.poke(L3, 0, e(L2, RW));
    m.poke(L2, 0, e(L1, RW));
    m.poke(L1, 0, e(DATA, RW));
    m.poke(L1, 1, e(L1, RO));
    m.mmu().adopt_bootstrap_tables(L4).unwrap();
    m.audit();
    m
}

fn update(m: &mut MockMmu, mfn: u64, index: u64, val: u64) -> Result<(), MmuError> {
    m.mmu().mmu_update(MmuUpdate { ptr: (mfn << 12) + index * 8, val })
}

fn ext(m: &mut MockMmu, cmd: u32, arg1: u64) -> Result<FlushRequest, MmuError> {
    m.mmu().mmuext_op(&MmuextOp { cmd, arg1, arg2: 0 })
}

fn pending(m: &MockMmu, mfn: u64) -> bool {
    let f = m.frames.get(mfn).unwrap();
    f.owner == Owner::Domain(DOM) && f.freed_by_owner
}

fn released(m: &MockMmu, mfn: u64) -> bool {
    let f = *m.frames.get(mfn).unwrap();
    f.owner == Owner::Hypervisor
        && (f.type_count, f.ref_count) == (0, 0)
        && m.frames.m2p(mfn) == Some(INVALID_M2P_ENTRY)
}

#[test]
fn an_unreferenced_frame_is_released_at_once() {
    let mut m = tree();
    m.frames.set_m2p(SPARE, 0x42).unwrap();
    assert_eq!(m.frames.pages_of(DOM), ALL);
    m.frames.free_by_owner(SPARE, DOM).unwrap();
    assert!(released(&m, SPARE));
    assert_eq!(m.frames.pages_of(DOM), ALL - 1);
    assert!(m.frames.has_released());
    assert_eq!(m.frames.take_released(), vec![SPARE]);
    assert!(m.frames.take_released().is_empty(), "taken once");
    // Not the domain's any more: no mapping, pin, M2P update or second free.
    assert_eq!(update(&mut m, L1, 20, e(SPARE, RO)).unwrap_err().errno, Errno::EBUSY);
    assert_eq!(ext(&mut m, MMUEXT_PIN_L1_TABLE, SPARE).unwrap_err().errno, Errno::EINVAL);
    let machphys = MmuUpdate { ptr: (SPARE << 12) | MMU_MACHPHYS_UPDATE, val: 1 };
    assert_eq!(m.mmu().mmu_update(machphys).unwrap_err().errno, Errno::EINVAL);
    assert_eq!(m.frames.free_by_owner(SPARE, DOM).unwrap_err().errno, Errno::ENXIO);
    // The allocator may give it to anyone again.
    m.frames.assign_frame(SPARE, OTHER).unwrap();
    m.audit();
}

#[test]
fn a_mapped_frame_is_released_when_its_last_mapping_goes() {
    let mut m = tree();
    m.frames.set_m2p(DATA, 7).unwrap();
    m.frames.free_by_owner(DATA, DOM).unwrap();
    assert!(pending(&m, DATA), "the mapping keeps it alive");
    assert_eq!(m.counts(DATA), (PageType::Writable, 1, 1));
    assert_eq!(m.mem.read_entry(L1, 0), e(DATA, RW), "still mapped: readable and writable");
    assert_eq!((m.frames.m2p(DATA), m.frames.pages_of(DOM)), (Some(7), ALL), "as Xen: until released");
    assert!(m.frames.take_released().is_empty());
    m.frames.free_by_owner(DATA, DOM).unwrap();
    assert!(pending(&m, DATA), "freeing twice changes nothing");
    // Xen keeps the frame its owner's until then: a second mapping is allowed.
    update(&mut m, L1, 20, e(DATA, RO)).unwrap();
    assert_eq!(m.counts(DATA).2, 2);
    m.audit();
    m.mmu().update_va_mapping(0, 0, UVMF_NONE).unwrap();
    assert!(pending(&m, DATA));
    m.paging.effects.take();
    update(&mut m, L1, 20, 0).unwrap();
    assert!(released(&m, DATA));
    assert!(m.paging.effects.flush_all, "the removed entry may still be cached");
    assert_eq!((m.frames.take_released(), m.frames.pages_of(DOM)), (vec![DATA], ALL - 1));
    assert_eq!(update(&mut m, L1, 0, e(DATA, RW)).unwrap_err().errno, Errno::EBUSY, "not ours");
    m.audit();
}

#[test]
fn a_pinned_or_hooked_table_is_released_when_unpinned_and_unhooked() {
    let mut m = tree();
    // A pinned empty L1: released by the unpin.
    ext(&mut m, MMUEXT_PIN_L1_TABLE, SPARE).unwrap();
    m.frames.free_by_owner(SPARE, DOM).unwrap();
    assert!(pending(&m, SPARE));
    ext(&mut m, MMUEXT_UNPIN_TABLE, SPARE).unwrap();
    assert!(released(&m, SPARE));
    // The tree's L1, pinned and hooked into the L2, mapping itself read-only.
    ext(&mut m, MMUEXT_PIN_L1_TABLE, L1).unwrap();
    m.frames.free_by_owner(L1, DOM).unwrap();
    ext(&mut m, MMUEXT_UNPIN_TABLE, L1).unwrap();
    assert!(pending(&m, L1), "still hooked into the L2");
    assert_eq!(update(&mut m, L1, 20, e(DATA, RO)), Ok(()), "still a validated L1 of the domain");
    m.audit();
    update(&mut m, L2, 0, 0).unwrap();
    assert!(released(&m, L1), "unhooked: devalidated, its own mapping went with its entries");
    assert_eq!(m.counts(DATA), (PageType::Writable, 0, 0), "its entries' references went");
    assert_eq!(m.frames.take_released(), vec![SPARE, L1]);
    m.audit();
}

#[test]
fn the_kernel_root_is_released_when_replaced() {
    let mut m = tree();
    m.frames.free_by_owner(L4, DOM).unwrap();
    ext(&mut m, MMUEXT_UNPIN_TABLE, L4).unwrap();
    assert!(pending(&m, L4), "the root keeps it");
    ext(&mut m, MMUEXT_PIN_L4_TABLE, SPARE).unwrap();
    m.mmu().new_baseptr(SPARE).unwrap();
    assert!(pending(&m, L4), "CR3 still holds it: kept until the new root is loaded");
    m.mmu().put_old_root();
    assert!(released(&m, L4));
    assert_eq!((m.counts(L3).1, m.counts(L1).1), (0, 0), "the old tree was devalidated");
    assert_eq!(m.frames.take_released(), vec![L4]);
    m.audit();
}

#[test]
fn a_grant_reference_keeps_a_freed_frame() {
    let mut m = tree();
    m.frames.get_grant_ref(SPARE, DOM, true).unwrap();
    m.frames.free_by_owner(SPARE, DOM).unwrap();
    assert!(pending(&m, SPARE));
    m.frames.put_grant_ref(SPARE, true);
    assert!(released(&m, SPARE));
    assert_eq!(m.frames.take_released(), vec![SPARE]);
}

#[test]
fn frees_of_frames_not_owned_are_refused_and_shared_pages_stay() {
    let mut m = tree();
    let refused = |m: &mut MockMmu, mfn| m.frames.free_by_owner(mfn, DOM).unwrap_err().errno;
    assert_eq!(refused(&mut m, OTHER_FRAMES.start), Errno::ENXIO, "another domain's");
    assert_eq!(refused(&mut m, 0x30), Errno::ENXIO, "the hypervisor's");
    assert_eq!(refused(&mut m, IO_FRAMES.start), Errno::ENXIO, "device memory");
    assert_eq!(refused(&mut m, MAX_MFN), Errno::EINVAL, "outside RAM");
    assert_eq!(refused(&mut m, u64::MAX), Errno::EINVAL);
    m.frames.free_by_owner(SHARED_INFO, DOM).unwrap();
    let f = *m.frames.get(SHARED_INFO).unwrap();
    assert!(f.shared_by_hypervisor && !f.freed_by_owner && f.owner == Owner::Domain(DOM), "a no-op");
    assert!(m.frames.take_released().is_empty());
    assert_eq!(m.frames.pages_of(DOM), ALL, "shared pages never counted");
    m.audit();
}

#[test]
fn a_teardown_releases_every_frame_the_owner_freed() {
    let mut m = tree();
    ext(&mut m, MMUEXT_PIN_L1_TABLE, L1).unwrap();
    for f in [L4, L2, L1, DATA] {
        m.frames.free_by_owner(f, DOM).unwrap();
        assert!(pending(&m, f), "{f:#x}");
    }
    let mut cursor = ReleaseCursor::default();
    while m.mmu().release_domain(&mut cursor, 3) == ReleaseProgress::MoreWork {}
    let mut got = m.frames.take_released();
    got.sort_unstable();
    assert_eq!(got, vec![L4, L2, L1, DATA]);
    assert!(got.iter().all(|&f| released(&m, f)));
    assert_eq!(m.frames.pages_of(DOM), ALL - 4);
    m.audit();
    let owned: Vec<u64> = m.frames.frames_of(DOM).collect();
    assert_eq!(owned.len() as u64, ALL - 4, "shared_info went back with the release");
    for f in owned {
        m.frames.free_domain_frame(f).unwrap();
    }
    assert_eq!(m.frames.pages_of(DOM), 0);
    assert!(m.frames.take_released().is_empty(), "free_domain_frame frees directly");
}

#[test]
fn page_counts_follow_assignment_and_teardown_frees() {
    let mut t = FrameTable::new(0x40);
    for f in 0..0x10 {
        t.assign_frame(f, 3).unwrap();
    }
    t.share_with_guest(0x20, 3).unwrap();
    assert_eq!((t.pages_of(3), t.pages_of(4)), (0x10, 0));
    t.free_domain_frame(5).unwrap();
    assert_eq!(t.pages_of(3), 0xf);
    assert_eq!(t.free_domain_frame(0x20).unwrap_err().errno, Errno::EBUSY, "shared: never by this path");
    assert_eq!(t.frames_of(3).count(), 0x10, "15 frames and the shared page");
}

#[test]
fn the_m2p_lives_in_the_storage_the_kernel_provides() {
    let storage: &'static mut [u64] = Vec::leak(vec![0u64; 0x1000]);
    let at = storage.as_ptr();
    let mut m = MockMmu::new();
    m.frames = FrameTable::with_m2p_storage(MAX_MFN, storage);
    for f in DOM_FRAMES {
        m.frames.assign_frame(f, DOM).unwrap();
    }
    assert_eq!(m.frames.m2p_entries().as_ptr(), at, "the kernel maps this memory for guests");
    assert!(m.frames.m2p_entries().iter().all(|&e| e == INVALID_M2P_ENTRY), "filled as Xen's");
    m.frames.set_m2p(SPARE, 9).unwrap();
    let machphys = MmuUpdate { ptr: (DATA << 12) | MMU_MACHPHYS_UPDATE, val: 0x77 };
    m.mmu().mmu_update(machphys).unwrap();
    assert_eq!((m.frames.m2p_entries()[SPARE as usize], m.frames.m2p_entries()[DATA as usize]), (9, 0x77));
    m.frames.free_by_owner(SPARE, DOM).unwrap();
    assert_eq!(m.frames.m2p_entries()[SPARE as usize], INVALID_M2P_ENTRY, "a released frame's entry");
    let longer: &'static mut [u64] = Vec::leak(vec![5u64; 0x30]);
    let t = FrameTable::with_m2p_storage(0x20, longer);
    assert_eq!((t.max_mfn(), t.m2p_entries().len()), (0x20, 0x30));
    assert!(t.m2p_entries().iter().all(|&e| e == INVALID_M2P_ENTRY), "all of it");
}

#[test]
#[should_panic(expected = "M2P storage")]
fn m2p_storage_shorter_than_ram_is_a_boot_error() {
    let short: &'static mut [u64] = Vec::leak(vec![0u64; 0x10]);
    let _ = FrameTable::with_m2p_storage(0x20, short);
}

#[test]
fn the_frame_records_can_live_in_provided_storage_too() {
    let m2p: &'static mut [u64] = Vec::leak(vec![0u64; 0x1000]);
    let records = Vec::leak(vec![core::mem::MaybeUninit::<FrameInfo>::uninit(); 0x1001]);
    let mut m = MockMmu::new();
    m.frames = FrameTable::with_provided_storage(MAX_MFN, m2p, records);
    assert_eq!(m.frames.max_mfn(), MAX_MFN, "the records past max_mfn are not frames");
    assert!(m.frames.iter().all(|(_, f)| f.owner == Owner::Hypervisor && f.ref_count == 0));
    for f in DOM_FRAMES {
        m.frames.assign_frame(f, DOM).unwrap();
    }
    m.poke(SPARE, 0, e(DATA, RW));
    m.mmu().pin_table(SPARE, 1).unwrap();
    assert_eq!(m.counts(DATA), (PageType::Writable, 1, 1));
    m.audit();
}

#[test]
#[should_panic(expected = "frame storage")]
fn frame_record_storage_shorter_than_ram_is_a_boot_error() {
    let m2p: &'static mut [u64] = Vec::leak(vec![0u64; 0x20]);
    let records = Vec::leak(vec![core::mem::MaybeUninit::<FrameInfo>::uninit(); 0x10]);
    let _ = FrameTable::with_provided_storage(0x20, m2p, records);
}
