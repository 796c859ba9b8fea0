//! Host tests of page-table work in bounded steps where it meets the paths outside the
//! hypercall handlers' own loop: the emulated `mov %cr3` (its own MMU entry), a validation
//! abandoned part way and then used otherwise, and tables of another domain.

use super::testing::*;
use super::*;
use hypercall_abi::mm::*;

/// What `guest_traps` does for an emulated `mov %reg, %cr3`: an MMU entry of its own (the
/// release stack first), `new_baseptr`, then the effects: the old root's reference dropped.
fn emulated_mov_cr3(m: &mut MockMmu, mfn: u64) -> Result<(), MmuError> {
    let r = if m.mmu().begin_entry() { m.mmu().new_baseptr(mfn) } else { Err(MmuError::PREEMPTED) };
    m.mmu().put_old_root();
    m.paging.effects = Default::default();
    r
}

/// An L2 at `l2` over `l1s` L1s from `first_l1`, each mapping `DATA` read-only 512 times.
fn big_l2(m: &mut MockMmu, l2: u64, first_l1: u64, l1s: u64) {
    for i in 0..l1s {
        m.poke(l2, i as usize, e(first_l1 + i, RW));
        for k in 0..512 {
            m.poke(first_l1 + i, k, e(DATA, RO));
        }
    }
}

const DATA: u64 = 0x110;

#[test]
fn root_switches_between_continuations_neither_grow_the_release_stack_nor_skip_the_budget() {
    let mut m = MockMmu::new();
    let (a, b, w) = (0x180, 0x181, 0x182);
    big_l2(&mut m, w, 0x190, 20);
    assert!(m.mmu().begin_entry());
    m.mmu().new_baseptr(a).unwrap();
    m.mmu().put_old_root();
    // A hypercall [NEW_BASEPTR(B), PIN_L2(W)]: the pin runs out of budget; afterwards the
    // old root A goes on the release stack with no budget left to release it.
    assert!(m.mmu().begin_entry());
    m.mmu().mmuext_op(&MmuextOp { cmd: MMUEXT_NEW_BASEPTR, arg1: b, arg2: 0 }).unwrap();
    let pin = m.mmu().mmuext_op(&MmuextOp { cmd: MMUEXT_PIN_L2_TABLE, arg1: w, arg2: 0 });
    assert!(pin.unwrap_err().is_preempted());
    m.mmu().put_old_root();
    assert_eq!(m.paging.releasing, vec![a]);
    // Before the guest runs the hypercall again, its event handler switches roots in a
    // loop. Each switch is an MMU entry of its own: A's release first, with a fresh budget.
    for _ in 0..1000 {
        emulated_mov_cr3(&mut m, a).unwrap();
        emulated_mov_cr3(&mut m, b).unwrap();
        assert!(m.paging.releasing.len() <= 1, "{:x?}", m.paging.releasing);
    }
    m.audit();
    // A root switch right after an entry that spent its budget still has one of its own.
    m.mmu().start_budget(1);
    m.paging.work += 1;
    emulated_mov_cr3(&mut m, a).unwrap();
    m.audit();
}

#[test]
fn an_abandoned_partial_table_of_another_domain_is_never_released_by_this_one() {
    let mut m = MockMmu::new();
    // OTHER's L1 X maps its data frame 300 times; OTHER's pin of X stops at entry 100.
    let (x, odata) = (OTHER_FRAMES.start, OTHER_FRAMES.start + 1);
    for j in 0..300 {
        m.poke(x, j, e(odata, RO));
    }
    let mut other_paging = VcpuPaging::default();
    {
        let rights = DomainRights { id: OTHER, io_capable: false };
        let mut other = Mmu::new(&mut m.frames, &mut m.mem, &SLOTS, rights, &mut other_paging);
        other.start_budget(100);
        assert!(other.pin_table(x, 1).unwrap_err().is_preempted());
    }
    assert_eq!((m.frames.get(x).unwrap().partial, m.counts(odata).2), (100, 100));
    // DOM's L2 T names X in its entry 5, where DOM's own pin of T stops (entries 0-4 are
    // empty): the entry is never checked, since the pin does not get that far.
    let t = 0x180;
    m.poke(t, 5, e(x, RW));
    m.mmu().start_budget(5);
    assert!(m.mmu().pin_table(t, 2).unwrap_err().is_preempted());
    assert_eq!(m.frames.get(t).unwrap().partial, 5);
    // DOM writes T as data: T's own entries go, X is OTHER's and stays as it was.
    assert!(m.mmu().begin_entry());
    m.mmu().mmu_update(MmuUpdate { ptr: t << 12, val: 0 }).unwrap();
    assert_eq!((m.frames.get(x).unwrap().partial, m.counts(odata).2), (100, 100));
    assert!(m.paging.releasing.is_empty());
    assert_eq!(m.counts(t).0, PageType::Writable);
}

#[test]
fn retyping_an_abandoned_partial_table_is_continued_not_refused() {
    let mut m = MockMmu::new();
    let (t, l1) = (0x180, 0x181);
    m.poke(t, 0, e(l1, RW));
    for j in 0..512 {
        m.poke(l1, j, e(DATA, RO));
    }
    m.mmu().start_budget(300);
    assert!(m.mmu().pin_table(t, 2).unwrap_err().is_preempted());
    let held = m.frames.get(l1).unwrap().partial;
    assert!(held > 0);
    // Written as data with too little budget to release it first: to be continued.
    m.mmu().start_budget(10);
    let r = m.mmu().mmu_update(MmuUpdate { ptr: l1 << 12, val: 0 });
    assert!(r.unwrap_err().is_preempted(), "not -EINVAL");
    m.audit();
    // The same for a pin of an L1 with an entry that maps it writable.
    let l1b = 0x182;
    m.poke(l1b, 1, e(l1, RW));
    m.mmu().start_budget(10);
    let r = m.mmu().pin_table(l1b, 1);
    assert!(r.unwrap_err().is_preempted(), "not -EBUSY");
    m.audit();
    // With a budget, each runs to the end.
    assert!(m.mmu().begin_entry());
    m.mmu().mmu_update(MmuUpdate { ptr: l1 << 12, val: 0 }).unwrap();
    assert_eq!((m.counts(DATA).2, m.frames.get(l1).unwrap().partial), (0, 0));
    m.audit();
}
