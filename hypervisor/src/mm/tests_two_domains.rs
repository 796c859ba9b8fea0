//! Randomised sequences of two domains sharing one frame table: page-table operations of both
//! at random budgets (operations preempted part way are abandoned or resumed), grant
//! mappings between them, frames freed and handed back to either, one domain dying part way
//! while the other goes on. Every count is recounted after every step, and a teardown of
//! both must bring every frame back to nothing. Plus the sequences that a review of the
//! preemptible MMU found with it, each of which broke an invariant before its fix.
use super::frame_table::{FrameTable, Owner, PageType};
use super::testing::{assert_counts, e, recount_entries, HashMapMemory, RO, RW, SLOTS};
use super::*;
use crate::test_rng::Rng;
use hypercall_abi::mm::*;
use std::collections::{HashMap, HashSet};

const IDS: [u16; 2] = [1, 2];
const POOLS: [core::ops::Range<u64>; 2] = [0x100..0x10c, 0x200..0x20c];
const IO: u64 = 0x800;
const SHARED: [u64; 2] = [0x20, 0x21];
const MAX: u64 = 0x1000;

pub(super) struct World {
    pub frames: FrameTable,
    pub mem: HashMapMemory,
    pub pag: [VcpuPaging; 2],
    pub io: [bool; 2],
    pub dev: Vec<(u64, bool)>,
    pub grants: Vec<(usize, u64, u64, bool)>,
}

impl World {
    pub fn new() -> Self {
        let mut frames = FrameTable::new(MAX);
        for d in 0..2 {
            for m in POOLS[d].clone() {
                frames.assign_frame(m, IDS[d]).unwrap();
            }
            frames.share_with_guest(SHARED[d], IDS[d]).unwrap();
        }
        frames.mark_io(IO, 4).unwrap();
        Self {
            frames,
            mem: HashMapMemory::default(),
            pag: Default::default(),
            io: [false; 2],
            dev: vec![],
            grants: vec![],
        }
    }
    pub fn mmu(&mut self, d: usize) -> Mmu<'_, HashMapMemory> {
        let rights = DomainRights { id: IDS[d], io_capable: self.io[d] };
        Mmu::new(&mut self.frames, &mut self.mem, &SLOTS, rights, &mut self.pag[d])
    }

    pub fn audit(&self) {
        let n = MAX as usize;
        let (mut refs, mut types) = (vec![0u32; n], vec![0u32; n]);
        for &(m, w) in &self.dev {
            refs[m as usize] += 1;
            if w {
                types[m as usize] += 1;
                let f = self.frames.get(m).unwrap();
                assert!(f.page_type == PageType::Writable && f.partial == 0, "dev-writable {m:#x} is {f:?}");
            }
        }
        for (mfn, f) in self.frames.iter() {
            let m = mfn as usize;
            if f.pinned || f.shared_by_hypervisor {
                refs[m] += 1;
                types[m] += 1;
            }
            if f.type_count > 0 && f.page_type.is_table() {
                assert!(f.validated, "live table {mfn:#x} not validated");
            }
            if f.partial > 0 {
                assert!(!f.validated && f.type_count == 0, "partial {mfn:#x} validated or typed");
                assert!(f.page_type.is_table(), "partial non-table {mfn:#x}");
            }
            if let Owner::Domain(d) = f.owner {
                assert!(self.frames.span_of(d).contains(&mfn));
            } else {
                assert!(!f.on_release_stack && f.partial == 0 && !f.pinned, "non-domain {mfn:#x}: {f:?}");
            }
            let io = |owner| IDS.iter().position(|&x| x == owner).is_some_and(|d| self.io[d]);
            recount_entries(&self.frames, &self.mem, mfn, f, io, true, &mut refs, &mut types);
        }
        let mut seen = HashSet::new();
        for (p, id) in self.pag.iter().zip(IDS) {
            for &m in &p.releasing {
                assert!(seen.insert(m), "{m:#x} twice on release stacks");
                let f = self.frames.get(m).unwrap();
                assert!(f.on_release_stack && f.owner == Owner::Domain(id), "stack {m:#x}: {f:?}");
            }
            for root in [p.kernel_l4, p.user_l4, p.effects.old_root].into_iter().flatten() {
                refs[root as usize] += 1;
                types[root as usize] += 1;
                let f = self.frames.get(root).unwrap();
                assert!(
                    f.page_type == PageType::L4 && f.validated && f.owner == Owner::Domain(id),
                    "root {root:#x}: {f:?}"
                );
            }
        }
        for (mfn, f) in self.frames.iter() {
            assert_eq!(f.on_release_stack, seen.contains(&mfn), "{mfn:#x} stack flag");
            if f.freed_by_owner {
                assert!(f.ref_count > 0 || f.partial > 0, "freed {mfn:#x} unreferenced, not released");
            }
        }
        let mut owned: HashMap<u16, u64> = HashMap::new();
        for (_, f) in self.frames.iter() {
            if let Owner::Domain(d) = f.owner {
                if !f.shared_by_hypervisor {
                    *owned.entry(d).or_default() += 1;
                }
            }
        }
        assert_counts(&self.frames, &IDS, &owned, &refs, &types);
    }
}

fn any_frame(rng: &mut Rng) -> u64 {
    let d = rng.below(2) as usize;
    POOLS[d].start + rng.below(POOLS[d].end - POOLS[d].start)
}

fn random_entry(rng: &mut Rng) -> u64 {
    let target = match rng.below(12) {
        0 => IO,
        1 => SHARED[rng.below(2) as usize],
        _ => any_frame(rng),
    };
    let flags = rng.pick(&[0, RO, RW, RW, RW | pte::DIRTY, RO | pte::PCD, RW | pte::PAT_OR_PSE]);
    e(target, flags)
}

fn reassign(w: &mut World, rng: &mut Rng) {
    for mfn in w.frames.take_released() {
        let f = *w.frames.get(mfn).unwrap();
        assert!(f.owner == Owner::Hypervisor && f.ref_count == 0 && f.type_count == 0, "{mfn:#x} {f:?}");
        assert!(!f.on_release_stack && f.partial == 0);
        // Only frames of the pools: give to a random domain.
        let d = rng.below(2) as usize;
        w.frames.assign_frame(mfn, IDS[d]).unwrap();
    }
}

fn step(w: &mut World, d: usize, rng: &mut Rng) {
    let frame = any_frame(rng);
    let index = rng.pick(&[0usize, 1, 2, 255, 256, 300, 511]) as u64;
    let op = rng.below(17);
    let _refused_or_done: Result<(), MmuError> = match op {
        0..=2 => {
            let cmd = rng.pick(&[MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD]);
            let val = random_entry(rng);
            w.mmu(d).mmu_update(MmuUpdate { ptr: (frame << 12) + index * 8 + cmd, val }).map(|_| ())
        }
        3 => {
            let level = rng.below(4) as u32;
            w.mmu(d).mmuext_op(&MmuextOp { cmd: MMUEXT_PIN_L1_TABLE + level, arg1: frame, arg2: 0 }).map(|_| ())
        }
        4 => w.mmu(d).mmuext_op(&MmuextOp { cmd: MMUEXT_UNPIN_TABLE, arg1: frame, arg2: 0 }).map(|_| ()),
        5 => w.mmu(d).mmuext_op(&MmuextOp { cmd: MMUEXT_NEW_BASEPTR, arg1: frame, arg2: 0 }).map(|_| ()),
        6 => {
            let f = if rng.chance(3) { 0 } else { frame };
            w.mmu(d).mmuext_op(&MmuextOp { cmd: MMUEXT_NEW_USER_BASEPTR, arg1: f, arg2: 0 }).map(|_| ())
        }
        7 => {
            let va = rng.below(4) << 12 | rng.below(2) << 21 | rng.below(2) << 30 | rng.below(2) << 39;
            w.mmu(d).update_va_mapping(va, random_entry(rng), 0).map(|_| ())
        }
        8 => {
            let cmd = rng.pick(&[MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE]);
            w.mmu(d).mmuext_op(&MmuextOp { cmd, arg1: frame, arg2: any_frame(rng) }).map(|_| ())
        }
        9 | 10 => {
            let r = w.frames.free_by_owner(frame, IDS[d]);
            reassign(w, rng);
            r
        }
        11 => {
            let r = if w.mmu(d).begin_entry() { w.mmu(d).new_baseptr(frame) } else { Err(MmuError::PREEMPTED) };
            w.mmu(d).put_old_root();
            r
        }
        12 | 13 => {
            // Grant map of any domain's frame (own included) into an entry of d's L1s.
            let mfn = any_frame(rng);
            let Owner::Domain(granter) = w.frames.get(mfn).unwrap().owner else { return };
            let wr = rng.chance(2);
            let maddr = (frame << 12) + index * 8;
            let flags = if wr { RW } else { RO };
            let r = w.mmu(d).install_grant_mapping(GrantPteSlot::Machine(maddr), mfn, granter, flags);
            if r.is_ok() {
                w.grants.push((d, maddr, mfn, wr));
            }
            r
        }
        14 => {
            if w.grants.is_empty() {
                return;
            }
            let k = rng.below(w.grants.len() as u64) as usize;
            let (gd, maddr, mfn, wr) = w.grants.swap_remove(k);
            let r = w.mmu(gd).remove_grant_mapping(GrantPteSlot::Machine(maddr), mfn, wr);
            if r.is_ok() {
                reassign(w, rng);
            }
            r
        }
        15 => {
            let mfn = any_frame(rng);
            let Owner::Domain(granter) = w.frames.get(mfn).unwrap().owner else { return };
            let wr = rng.chance(2);
            let r = w.frames.get_grant_ref(mfn, granter, wr);
            if r.is_ok() {
                w.dev.push((mfn, wr));
            }
            r
        }
        _ => {
            if let Some((mfn, wr)) = w.dev.pop() {
                w.frames.put_grant_ref(mfn, wr);
                reassign(w, rng);
            }
            Ok(())
        }
    };
    // Frames released by drains (of either domain) go back to the pool.
    reassign(w, rng);
}

#[test]
fn two_domains_in_random_small_steps_keep_every_invariant() {
    let seeds: u64 = std::env::var("SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let steps: usize = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let (mut partial_seen, mut grants_seen, mut skipped) = (0u64, 0u64, 0u64);
    let from: u64 = std::env::var("FROM").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for seed in from..=seeds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut w = World::new();
        w.io = [seed % 3 == 0, seed % 5 == 0];
        let kill_at = if seed % 2 == 0 { rng.below(steps as u64) as usize } else { usize::MAX };
        let mut dead: Option<usize> = None;
        for s in 0..steps {
            if s == kill_at {
                let k = rng.below(2) as usize;
                let mut cursor = ReleaseCursor::default();
                while w.mmu(k).release_domain(&mut cursor, 1 + rng.below(9) as usize) == ReleaseProgress::MoreWork {}
                w.grants.retain(|g| g.0 != k);
                dead = Some(k);
                reassign(&mut w, &mut rng);
            }
            if let Some(k) = dead {
                // Reap what the dead domain no longer has referenced; give it to the survivor.
                let owned: Vec<u64> = w.frames.frames_of(IDS[k]).collect();
                for mfn in owned {
                    if rng.chance(3) && w.frames.free_domain_frame(mfn).is_ok() {
                        w.frames.assign_frame(mfn, IDS[1 - k]).unwrap();
                    }
                }
            }
            let d = match dead {
                Some(k) => 1 - k,
                None => rng.below(2) as usize,
            };
            let budget = match rng.below(4) {
                0 => WORK_BUDGET,
                1 => 1 + rng.below(20),
                _ => 1 + rng.below(1200),
            };
            w.mmu(d).start_budget(budget);
            if !w.mmu(d).drain_releases() {
                skipped += 1;
                // What runs without draining first: decrease_reservation.
                if rng.chance(2) {
                    let _ = w.frames.free_by_owner(any_frame(&mut rng), IDS[d]);
                }
                reassign(&mut w, &mut rng);
            } else {
                step(&mut w, d, &mut rng);
            }
            if rng.chance(3) {
                w.mmu(d).put_old_root();
                reassign(&mut w, &mut rng);
            }
            partial_seen += w.frames.iter().filter(|(_, f)| f.partial > 0).count() as u64;
            grants_seen += w.grants.len() as u64;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.audit()))
                .unwrap_or_else(|_| panic!("seed {seed} step {s}"));
        }
        // Teardown of both, in random order, small budgets.
        let order = if rng.chance(2) { [0, 1] } else { [1, 0] };
        for d in order {
            if dead == Some(d) {
                continue;
            }
            let mut cursor = ReleaseCursor::default();
            while w.mmu(d).release_domain(&mut cursor, 1 + rng.below(9) as usize) == ReleaseProgress::MoreWork {}
        }
        for (m, wr) in core::mem::take(&mut w.dev) {
            w.frames.put_grant_ref(m, wr);
        }
        let _ = w.frames.take_released();
        for (mfn, f) in w.frames.iter() {
            assert_eq!((f.type_count, f.ref_count), (0, 0), "seed {seed}: {mfn:#x} {f:?}");
            assert!(!f.validated || !f.page_type.is_table(), "seed {seed}: {mfn:#x} validated");
            assert!(f.partial == 0 && !f.on_release_stack && !f.pinned, "seed {seed}: {mfn:#x} {f:?}");
            assert!(!f.freed_by_owner, "seed {seed}: {mfn:#x} freed not released");
        }
        for d in IDS {
            let owned: Vec<u64> = w.frames.frames_of(d).collect();
            for mfn in owned {
                w.frames.free_domain_frame(mfn).unwrap();
            }
            assert_eq!(w.frames.pages_of(d), 0);
        }
    }
    // The sequences reached what they are for: tables left part way, grants, skipped steps.
    assert!(
        partial_seen > 1000 && grants_seen > 100 && skipped > 100,
        "partial {partial_seen}, grants {grants_seen}, skipped {skipped}"
    );
}

#[test]
fn a_frame_written_as_data_stays_its_owners_while_its_partial_use_is_released() {
    use super::testing::*;
    let mut m = MockMmu::new();
    let (x, data) = (0x180u64, 0x110u64);
    for j in 0..512 {
        m.poke(x, j, e(data, RO));
    }
    // A pin of L1 X stops part way: X partial, held by nothing (the pin's refs dropped).
    m.mmu().start_budget(100);
    assert!(m.mmu().pin_table(x, 1).unwrap_err().is_preempted());
    assert_eq!(m.counts(x), (PageType::L1, 0, 0));
    // decrease_reservation(X): stays the domain's (its entries still hold references).
    m.frames.free_by_owner(x, DOM).unwrap();
    assert_eq!(m.frames.get(x).unwrap().owner, Owner::Domain(DOM));
    // mmu_update writing X as data: releases X's entries, X goes to the hypervisor... and
    // then the write lands in it anyway, and succeeds.
    assert!(m.mmu().begin_entry());
    let r = m.mmu().mmu_update(MmuUpdate { ptr: (x << 12) + 8, val: 0xdead_b000 });
    let f = *m.frames.get(x).unwrap();
    assert!(
        !(r.is_ok() && f.owner == Owner::Hypervisor && f.page_type == PageType::Writable),
        "typed and written after its release to the hypervisor"
    );
}

#[test]
fn a_table_is_held_while_its_entry_changes_so_a_release_cannot_retype_it() {
    use super::testing::*;
    let mut m = MockMmu::new();
    let (p, x) = (0x180u64, 0x181u64);
    // P, written as data, names X in entry 1; a pin of P as L4 stops part way after X was
    // validated as an (empty) L3: X's only type reference is P's partial entry 1.
    m.poke(p, 1, e(x, RW));
    m.mmu().start_budget(600);
    assert!(m.mmu().pin_table(p, 4).unwrap_err().is_preempted());
    assert_eq!(m.counts(x), (PageType::L3, 1, 1));
    assert!(m.frames.get(p).unwrap().partial > 1);
    // mmu_update X[1] = P (RW) as an L3 entry: taking P as L2 releases P's partial L4 use,
    // which drops a type reference of X. Unless the update holds X, that was X's last, and
    // P's validation as L2 then retyped X as an L1, into which the L3 entry was written: an
    // RW mapping of the validated L2 P, counted nowhere. Held, X stays an L3 and P, an L2
    // naming X (an L3) in its entry 1, is refused.
    assert!(m.mmu().begin_entry());
    let r = m.mmu().mmu_update(MmuUpdate { ptr: (x << 12) + 8, val: e(p, RW) });
    assert_eq!(r.unwrap_err().errno, Errno::EINVAL);
    m.audit();
    let (xf, pf) = (*m.frames.get(x).unwrap(), *m.frames.get(p).unwrap());
    let unsafe_state = xf.page_type == PageType::L1
        && xf.validated
        && pf.page_type == PageType::L2
        && pf.validated
        && m.mem.read_entry(x, 1) & (pte::PRESENT | pte::RW) == (pte::PRESENT | pte::RW);
    assert!(!unsafe_state, "validated L1 {x:#x} maps validated L2 {p:#x} writable");
}

#[test]
fn a_table_released_while_its_entry_changes_leaks_nothing() {
    use super::testing::*;
    let mut m = MockMmu::new();
    let (p, x) = (0x180u64, 0x181u64);
    m.poke(p, 0, e(x, RW));
    m.mmu().start_budget(600);
    assert!(m.mmu().pin_table(p, 2).unwrap_err().is_preempted());
    assert_eq!(m.counts(x), (PageType::L1, 1, 1));
    assert!(m.mmu().begin_entry());
    // An RW entry naming P in the L1 X: P must become Writable, which releases its partial
    // L2 use first, and with it the only type reference X had besides the update's own.
    let r = m.mmu().mmu_update(MmuUpdate { ptr: (x << 12) + 5 * 8, val: e(p, RW) });
    assert!(r.is_ok(), "{r:?}");
    m.audit();
    let mut cursor = ReleaseCursor::default();
    while m.mmu().release_domain(&mut cursor, 64) == ReleaseProgress::MoreWork {}
    assert_eq!(m.counts(p).1 + m.counts(p).2, 0, "P after teardown: {:?}", m.counts(p));
}
