//! Randomised operation sequences: after every step, successful or refused, a recount of all
//! references must match the frame table, no page table may be writable, and every live L4
//! must carry the hypervisor slots (`MockMmu::audit`), and frames the owner freed must be
//! pending exactly while referenced. Finally a teardown must bring every count back to zero
//! and release every freed frame.

use super::testing::*;
use super::*;
use crate::test_rng::Rng;
use hypercall_abi::mm::*;

/// A small pool so collisions (same frame as table and data, shared subtrees) are frequent.
const POOL: u64 = 12;

fn random_entry(rng: &mut Rng) -> u64 {
    let target = match rng.below(10) {
        0 => OTHER_FRAMES.start,
        1 => IO_FRAMES.start,
        2 => SHARED_INFO,
        _ => DOM_FRAMES.start + rng.below(POOL),
    };
    let flags = rng.pick(&[0, RO, RW, RW, RW | pte::DIRTY, RO | pte::PCD, RW | pte::PAT_OR_PSE, RW | pte::GLOBAL]);
    e(target, flags)
}

fn random_step(m: &mut MockMmu, rng: &mut Rng) {
    let frame = DOM_FRAMES.start + rng.below(POOL);
    let index = rng.pick(&[0usize, 1, 2, 255, 256, 300, 511]) as u64;
    let _ = match rng.below(12) {
        0..=2 => {
            let cmd = rng.pick(&[MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD]);
            let val = random_entry(rng);
            m.mmu().mmu_update(MmuUpdate { ptr: (frame << 12) + index * 8 + cmd, val }).map(|_| ())
        }
        3 => {
            let level = rng.below(4) as u32;
            m.mmu().mmuext_op(&MmuextOp { cmd: MMUEXT_PIN_L1_TABLE + level, arg1: frame, arg2: 0 }).map(|_| ())
        }
        4 => m.mmu().mmuext_op(&MmuextOp { cmd: MMUEXT_UNPIN_TABLE, arg1: frame, arg2: 0 }).map(|_| ()),
        5 => m.mmu().new_baseptr(frame),
        6 => m.mmu().new_user_baseptr(if rng.below(3) == 0 { 0 } else { frame }),
        7 => {
            let va = rng.below(4) << 12 | rng.below(2) << 21 | rng.below(2) << 39;
            m.mmu().update_va_mapping(va, random_entry(rng), rng.below(8)).map(|_| ())
        }
        8 => m.frames.free_domain_frame(frame).map(|()| m.frames.assign_frame(frame, DOM).unwrap()),
        11 => {
            // An emulated `mov %cr3` (guest_traps): an MMU entry of its own, no matter what
            // the step's budget left, then the old root dropped as after any entry.
            let r = if m.mmu().begin_entry() { m.mmu().new_baseptr(frame) } else { Err(MmuError::PREEMPTED) };
            m.mmu().put_old_root();
            r
        }
        _ => {
            // decrease_reservation, then the allocator gives released frames back (populate).
            let r = m.frames.free_by_owner(frame, DOM);
            for mfn in m.frames.take_released() {
                assert_eq!(m.frames.m2p(mfn), Some(INVALID_M2P_ENTRY));
                m.frames.assign_frame(mfn, DOM).unwrap();
            }
            r
        }
    };
}

#[test]
fn random_sequences_keep_every_invariant() {
    run_random_sequences(false);
}

/// The same with a random, often tiny, budget per step, as hypercall handlers give one
/// (`hypercalls::mmu::start_mmu_entry`): tables left released part way are finished before
/// the step's operation runs, or the step does nothing (the handler's continuation);
/// validations stop part way and are resumed by a later step, or abandoned, leaving
/// `partial` tables that later steps reuse, retype or free, and the teardown must clear.
#[test]
fn random_sequences_in_small_steps_keep_every_invariant() {
    run_random_sequences(true);
}

fn run_random_sequences(budgeted: bool) {
    let mut pending_seen = 0;
    let (mut partial_seen, mut preempted_steps) = (0, 0);
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut m = MockMmu::new();
        m.rights.io_capable = seed % 3 == 0;
        for step in 0..400 {
            if budgeted {
                m.mmu().start_budget(1 + rng.below(1200));
                if !m.mmu().drain_releases() {
                    preempted_steps += 1;
                    m.audit();
                    continue;
                }
            }
            random_step(&mut m, &mut rng);
            if rng.below(3) == 0 {
                // The entry's end: the root CR3 held goes (`apply_paging_effects`), and what
                // its release leaves waits on the stack for the next entry.
                m.mmu().put_old_root();
            }
            partial_seen += DOM_FRAMES.filter(|&f| m.frames.get(f).unwrap().partial > 0).count();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.audit()))
                .unwrap_or_else(|_| panic!("invariant broken at seed {seed} step {step}"));
            pending_seen += DOM_FRAMES.filter(|&f| m.frames.get(f).unwrap().freed_by_owner).count();
        }
        let mut cursor = ReleaseCursor::default();
        while m.mmu().release_domain(&mut cursor, 7) == ReleaseProgress::MoreWork {}
        for mfn in DOM_FRAMES {
            let f = *m.frames.get(mfn).unwrap();
            assert_eq!((f.type_count, f.ref_count), (0, 0), "seed {seed}: {mfn:#x} after teardown");
            assert!(!f.freed_by_owner, "seed {seed}: {mfn:#x} freed but not released by the teardown");
        }
        m.audit();
        let released = m.frames.take_released();
        let owned: Vec<u64> = m.frames.frames_of(DOM).collect();
        for mfn in owned {
            m.frames.free_domain_frame(mfn).unwrap();
        }
        assert_eq!(m.frames.pages_of(DOM), 0, "seed {seed}");
        assert!(released.iter().all(|&f| m.frames.get(f).unwrap().owner == Owner::Hypervisor));
    }
    assert!(pending_seen > 100, "deferred frees exercised: {pending_seen}");
    if budgeted {
        assert!(partial_seen > 1000 && preempted_steps > 40, "partial {partial_seen}, preempted {preempted_steps}");
    }
}
