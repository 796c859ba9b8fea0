//! Host tests of the MMU hypercalls' batch semantics (done counts, first-error stop,
//! continuations, foreigndom, flush scopes) against a domain with a real frame table.

use super::super::testing::{env_boilerplate, flat_guest_deref, FlatGuest, BASE};
use super::super::{dispatch, DomainFacts, Env, Outcome};
use crate::mm::testing::{e, MockMmu, DOM, DOM_FRAMES, RO, RW};
use crate::mm::{MmuAccess, TlbFlush};
use crate::test_rng::Rng;
use hypercall_abi::errno::Errno;
use hypercall_abi::hypercall as nr;
use hypercall_abi::mm::*;

const L4: u64 = 0x100;
const L1: u64 = 0x103;
const DATA: u64 = 0x110;
const PLAIN: u64 = 0x180;

/// Guest memory `[BASE, BASE + 64 KiB)` and a real MMU with a pinned 4-level tree whose L1
/// maps `DATA + i` at VA `i * 4096` for i in 0..4.
struct MmuMock {
    guest: FlatGuest,
    mmu: MockMmu,
    mmu_available: bool,
    vcpu: crate::vcpu::VcpuState,
    /// Whether the caller is the control domain.
    privileged: bool,
    /// The other domains that exist.
    others: Vec<u16>,
}

impl MmuMock {
    fn new() -> Self {
        let mut mmu = MockMmu::new();
        mmu.poke(L4, 0, e(0x101, RW));
        mmu.poke(0x101, 0, e(0x102, RW));
        mmu.poke(0x102, 0, e(L1, RW));
        for i in 0..4 {
            mmu.poke(L1, i, e(DATA + i as u64, RW));
        }
        mmu.mmu().adopt_bootstrap_tables(L4).unwrap();
        Self {
            guest: FlatGuest::new(0x10000),
            mmu,
            mmu_available: true,
            vcpu: crate::vcpu::VcpuState::new(0x1000),
            privileged: false,
            others: Vec::new(),
        }
    }
}

flat_guest_deref!(MmuMock, guest);

impl Env for MmuMock {
    env_boilerplate!(guest: guest, vcpu: vcpu);
    fn domain(&self) -> DomainFacts {
        DomainFacts { id: DOM, nr_pages: 0x500, max_pages: 0x500, privileged: self.privileged, max_mfn: 0x1000 }
    }
    fn domain_facts_of(&self, id: u16) -> Option<DomainFacts> {
        let facts = DomainFacts { id, nr_pages: 1, max_pages: 1, privileged: false, max_mfn: 0x1000 };
        self.others.contains(&id).then_some(facts)
    }
    fn events(&mut self) -> Option<crate::evtchn::EventAccess<'_>> {
        None
    }
    fn mmu(&mut self) -> Option<MmuAccess<'_>> {
        self.mmu_available.then(|| self.mmu.access())
    }
    fn paging_work(&self) -> u64 {
        self.mmu.paging.work
    }
    fn page_releases_pending(&self) -> bool {
        !self.mmu.paging.releasing.is_empty()
    }
    fn limit_paging_work(&mut self, end: Option<u64>) {
        self.mmu.paging.batch_end = end;
    }
}

fn call_to_end(m: &mut MmuMock, number: u64, mut args: [u64; 5]) -> (Outcome, usize) {
    let mut runs = 1;
    loop {
        match dispatch(m, number, args) {
            Outcome::Continue(a) => {
                args = a;
                runs += 1;
            }
            o => return (o, runs),
        }
    }
}

const LIST: u64 = BASE + 0x100;
const DONE: u64 = BASE;
/// `foreigndom` = `DOMID_SELF`, as guests pass it.
const SELF: u64 = DOMID_SELF as u64;

#[test]
fn mmu_update_stops_at_the_first_failure_and_reports_done() {
    let mut m = MmuMock::new();
    m.put_words(
        LIST,
        &[(L1 << 12) + 4 * 8, e(PLAIN, RW), (L1 << 12) + 5 * 8, e(L1, RW), (L1 << 12) + 6 * 8, e(PLAIN, RO)],
    );
    let r = dispatch(&mut m, nr::MMU_UPDATE, [LIST, 3, DONE, DOMID_SELF as u64, 0]);
    assert_eq!(r, Outcome::Return(Errno::EBUSY.to_return()), "a writable mapping of the L1 itself");
    assert_eq!(m.u32_at(DONE), 1);
    assert_eq!(m.mmu.mem.0.get(&(L1, 6)), None, "entries after the failure are not run");
    m.mmu.audit();
}

#[test]
fn long_batches_continue_and_accumulate_done() {
    let mut m = MmuMock::new();
    let words: Vec<u64> = (0..150u64).flat_map(|i| [(PLAIN << 12) + i * 8, i + 1]).collect();
    m.put_words(LIST, &words);
    let first = dispatch(&mut m, nr::MMU_UPDATE, [LIST, 150, DONE, SELF, 0]);
    let preempted = MMU_UPDATE_PREEMPTED as u64;
    assert_eq!(first, Outcome::Continue([LIST + 64 * 16, (150 - 64) | preempted, DONE, SELF, 0]));
    assert_eq!(m.u32_at(DONE), 64);
    m.put(DONE, &0u32.to_le_bytes());
    let (r, runs) = call_to_end(&mut m, nr::MMU_UPDATE, [LIST, 150, DONE, SELF, 0]);
    assert_eq!((r, runs), (Outcome::Return(0), 3));
    assert_eq!(m.u32_at(DONE), 150);
    use crate::mm::MachineMemory;
    assert!((0..150u64).all(|i| m.mmu.mem.read_entry(PLAIN, i as usize) == i + 1));
}

#[test]
fn foreign_owners_faults_and_a_missing_mmu() {
    let mut m = MmuMock::new();
    m.put_words(LIST, &[(PLAIN << 12), 5]);
    // No domain 0 or 4 here (page owner 0, page-table owner 4 + 1): get_pg_owner's -ESRCH.
    for foreigndom in [0, 5 << 16 | SELF] {
        assert_eq!(
            dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, 0, foreigndom, 0]),
            Outcome::Return(-3),
            "{foreigndom:#x}"
        );
    }
    // Xen's get_pg_owner: the caller's own id as page owner is -ESRCH ("Cannot specify
    // itself as foreign domain"); as page-table owner (id + 1) it is fine.
    assert_eq!(
        dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, 0, (DOM as u64 + 1) << 16 | DOM as u64, 0]),
        Outcome::Return(-3)
    );
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, 0, (DOM as u64 + 1) << 16 | SELF, 0]), Outcome::Return(0));
    // do_mmuext_op takes foreigndom as a domid_t: bits 16-31 do not count.
    m.put_words(LIST, &[MMUEXT_TLB_FLUSH_LOCAL as u64, 0, 0]);
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, DOM as u64, 0]), Outcome::Return(-3), "own id");
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, 5 << 16 | SELF, 0]), Outcome::Return(0), "high bits");
    m.put_words(LIST, &[(PLAIN << 12), 5]);
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [0xdead_0000, 1, DONE, SELF, 0]), Outcome::Return(-14));
    assert_eq!(m.u32_at(DONE), 0);
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 0, DONE, SELF, 0]), Outcome::Return(0));
    m.mmu_available = false;
    for n in [nr::MMU_UPDATE, nr::MMUEXT_OP, nr::UPDATE_VA_MAPPING] {
        assert_eq!(dispatch(&mut m, n, [LIST, 1, 0, 0, 0]), Outcome::Return(-38));
    }
}

/// A domain other than the control domain naming an owner that exists (another domain,
/// `DOMID_XEN`, and for `mmuext_op` `DOMID_IO`) is refused by Xen's default XSM policy:
/// `mmuext_op` before any operation, `mmu_update` at its first request (an empty list still
/// succeeds); the control domain's `DOMID_IO` owner fails each `mmuext_op` as `dom_io` would.
#[test]
fn naming_another_owner_is_refused_as_xen_refuses_it() {
    let mut m = MmuMock::new();
    m.others = vec![0, 7];
    let l1_entry = (L1 << 12) + 4 * 8;
    let before = m.mmu.mem.0.get(&(L1, 4)).copied();
    m.put_words(LIST, &[l1_entry, e(PLAIN, RW)]);
    for (foreigndom, what) in
        [(0, "dom0"), (7, "domain 7"), (DOMID_XEN as u64, "DOMID_XEN"), (8 << 16 | SELF, "tables of 7")]
    {
        assert_eq!(
            dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, DONE, foreigndom, 0]),
            Outcome::Return(Errno::EPERM.to_return()),
            "mmu_update, {what}"
        );
        assert_eq!(m.u32_at(DONE), 0, "{what}");
        assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 0, 0, foreigndom, 0]), Outcome::Return(0), "{what}");
    }
    assert_eq!(m.mmu.mem.0.get(&(L1, 4)).copied(), before, "no request ran");
    // Xen checks the owners once the request is read and its command known: an unreadable
    // request is -EFAULT, an unknown command -ENOSYS, before any -EPERM.
    m.put_words(LIST, &[l1_entry | 5, 0]);
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, 0, 7, 0]), Outcome::Return(Errno::ENOSYS.to_return()));
    let unreadable = BASE + 0x10000 - 8;
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [unreadable, 1, 0, 7, 0]), Outcome::Return(Errno::EFAULT.to_return()));
    m.put_words(LIST, &[l1_entry, e(PLAIN, RW)]);
    // DOMID_IO stays the caller's own I/O frames for mmu_update (the MMU checks them).
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 0, 0, DOMID_IO as u64, 0]), Outcome::Return(0));
    m.put_words(LIST, &[MMUEXT_PIN_L1_TABLE as u64, PLAIN, 0]);
    for (foreigndom, what) in
        [(0, "dom0"), (7, "domain 7"), (DOMID_XEN as u64, "DOMID_XEN"), (DOMID_IO as u64, "DOMID_IO")]
    {
        for count in [1, 0] {
            assert_eq!(
                dispatch(&mut m, nr::MMUEXT_OP, [LIST, count, 0, foreigndom, 0]),
                Outcome::Return(Errno::EPERM.to_return()),
                "mmuext_op, {what}, {count} ops"
            );
        }
    }
    // The control domain: DOMID_IO owns no RAM (pins, clear and copy: -EINVAL), and the
    // operations on the caller's own state refuse a foreign owner (-EPERM).
    m.privileged = true;
    let io = DOMID_IO as u64;
    for (cmd, errno) in [
        (MMUEXT_PIN_L1_TABLE, Errno::EINVAL),
        (MMUEXT_UNPIN_TABLE, Errno::EINVAL),
        (MMUEXT_CLEAR_PAGE, Errno::EINVAL),
        (MMUEXT_NEW_BASEPTR, Errno::EPERM),
        (MMUEXT_TLB_FLUSH_LOCAL, Errno::EPERM),
        (MMUEXT_SET_LDT, Errno::EPERM),
        (MMUEXT_FLUSH_CACHE_GLOBAL, Errno::EPERM),
        (MMUEXT_MARK_SUPER, Errno::EOPNOTSUPP),
        (14, Errno::ENOSYS),
    ] {
        m.put_words(LIST, &[cmd as u64, PLAIN, 0]);
        assert_eq!(
            dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, DONE, io, 0]),
            Outcome::Return(errno.to_return()),
            "command {cmd}"
        );
        assert_eq!(m.u32_at(DONE), 0);
    }
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 0, 0, io, 0]), Outcome::Return(0), "nothing to fail");
    assert_eq!(m.mmu.counts(PLAIN).2, 0, "nothing was typed or pinned");
    m.mmu.audit();
}

#[test]
fn mmuext_batch_switches_roots_and_records_effects() {
    let mut m = MmuMock::new();
    let next = DOM_FRAMES.start + 0x90;
    m.put_words(
        LIST,
        &[
            MMUEXT_PIN_L4_TABLE as u64,
            next,
            0,
            MMUEXT_NEW_BASEPTR as u64,
            next,
            0,
            MMUEXT_UNPIN_TABLE as u64,
            L4,
            0,
            MMUEXT_INVLPG_LOCAL as u64,
            0x5000,
            0,
            MMUEXT_UNPIN_TABLE as u64,
            next,
            0,
            MMUEXT_UNPIN_TABLE as u64,
            next,
            0,
        ],
    );
    let r = dispatch(&mut m, nr::MMUEXT_OP, [LIST, 6, DONE, DOMID_SELF as u64, 0]);
    assert_eq!(r, Outcome::Return(Errno::EINVAL.to_return()), "the root's pin went: not pinned any more");
    assert_eq!(m.u32_at(DONE), 5, "unpinning the root succeeds, as Xen: the root keeps it an L4");
    assert_eq!(m.mmu.counts(next).1, 1, "only the root's type reference is left");
    assert_eq!(m.mmu.paging.effects.old_root, Some(L4), "CR3 still holds the old root");
    // The exit path: CR3 loaded, then the old root's reference goes.
    m.mmu.mmu().put_old_root();
    let fx = m.mmu.paging.effects.take();
    assert_eq!(fx.load_cr3, Some(next << 12));
    assert_eq!(fx.flush_pages.as_slice(), &[0x5000], "the CR3 load flushes everything anyway");
    assert_eq!(m.mmu.paging.kernel_l4, Some(next));
    m.mmu.audit();
}

#[test]
fn the_root_in_cr3_cannot_be_rewritten_before_the_new_one_is_loaded() {
    // Unpin the root, switch to another, then write the old root (still in CR3 until the
    // hypercall ends): its hypervisor slots must stay out of the guest's reach.
    let mut m = MmuMock::new();
    let next = DOM_FRAMES.start + 0x90;
    let evil = DOM_FRAMES.start + 0x91;
    m.mmu.poke(evil, 261, 0xdead_b000 | 0x63);
    m.put_words(
        LIST,
        &[
            MMUEXT_PIN_L4_TABLE as u64,
            next,
            0,
            MMUEXT_UNPIN_TABLE as u64,
            L4,
            0,
            MMUEXT_NEW_BASEPTR as u64,
            next,
            0,
            MMUEXT_COPY_PAGE as u64,
            L4,
            evil,
            MMUEXT_CLEAR_PAGE as u64,
            L4,
            0,
        ],
    );
    let r = dispatch(&mut m, nr::MMUEXT_OP, [LIST, 5, DONE, DOMID_SELF as u64, 0]);
    assert_eq!(r, Outcome::Return(Errno::EINVAL.to_return()), "the old root is still an L4");
    assert_eq!(m.u32_at(DONE), 3);
    assert_ne!(crate::domain_layout::MachineMemory::read_entry(&m.mmu.mem, L4, 261), 0xdead_b000 | 0x63);
    let (_, types, _) = m.mmu.counts(L4);
    assert_eq!(types, 1, "the old root's reference until CR3 moves");
    m.mmu.mmu().put_old_root();
    assert_eq!(m.mmu.counts(L4).1, 0, "then it goes");
    m.mmu.audit();
}

#[test]
fn flush_scopes_with_vcpu_masks() {
    let mut m = MmuMock::new();
    let mask = BASE + 0x80;
    m.put_words(mask, &[1]);
    m.put_words(LIST, &[MMUEXT_INVLPG_MULTI as u64, 0x3000, mask]);
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, SELF, 0]), Outcome::Return(0));
    assert_eq!(m.mmu.paging.effects.take().flush_pages.as_slice(), &[0x3000]);
    m.put_words(mask, &[2]);
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, SELF, 0]), Outcome::Return(0));
    assert!(m.mmu.paging.effects.take().is_empty(), "a mask without us flushes nothing here");
    m.put_words(LIST, &[MMUEXT_TLB_FLUSH_MULTI as u64, 0, 0xdead_0000]);
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, SELF, 0]), Outcome::Return(-22), "bad mask");
}

#[test]
fn update_va_mapping_applies_its_flush_flags() {
    let mut m = MmuMock::new();
    let r = dispatch(&mut m, nr::UPDATE_VA_MAPPING, [0x2000, e(PLAIN, RW), UVMF_INVLPG | UVMF_LOCAL, 0, 0]);
    assert_eq!(r, Outcome::Return(0));
    let fx = m.mmu.paging.effects.take();
    assert_eq!((fx.flush_all, fx.flush_pages.as_slice()), (false, &[0x2000u64][..]));
    let r = dispatch(&mut m, nr::UPDATE_VA_MAPPING, [0x2000, e(PLAIN, RO), UVMF_TLB_FLUSH | UVMF_ALL, 0, 0]);
    assert_eq!(r, Outcome::Return(0));
    assert!(m.mmu.paging.effects.take().flush_all);
    let r = dispatch(&mut m, nr::UPDATE_VA_MAPPING, [0x2000, 0, UVMF_TLB_FLUSH | 0xdead_0000, 0, 0]);
    assert_eq!(r, Outcome::Return(-14), "unreadable vCPU mask: the entry is changed, the flush fails");
    assert_eq!(m.mmu.counts(PLAIN).2, 0);
    let r = dispatch(&mut m, nr::UPDATE_VA_MAPPING, [0x1000, e(L4, RW), UVMF_TLB_FLUSH, 0, 0]);
    assert_eq!(r, Outcome::Return(Errno::EBUSY.to_return()));
    assert!(m.mmu.paging.effects.take().flush_all, "the flush asked for is done after a refusal too, as Xen");
    m.request_none_check();
}

impl MmuMock {
    fn request_none_check(&mut self) {
        self.mmu.paging.effects.request(TlbFlush::None);
        assert!(self.mmu.paging.effects.is_empty());
        self.mmu.audit();
    }
}

#[test]
fn mmu_updates_run_inside_multicalls() {
    let mut m = MmuMock::new();
    m.put_words(LIST, &[(PLAIN << 12), 9]);
    let entry = BASE + 0x400;
    m.put_words(entry, &[nr::MMU_UPDATE, 0xffff, LIST, 1, 0, DOMID_SELF as u64, 0, 0]);
    assert_eq!(dispatch(&mut m, nr::MULTICALL, [entry, 1, 0, 0, 0]), Outcome::Return(0));
    use crate::mm::MachineMemory;
    assert_eq!(m.mmu.mem.read_entry(PLAIN, 0), 9);
    let _ = RO;
}

/// Dispatches `number(args)` and its continuations to the end, checking that no hypervisor
/// entry does more than `bound` entries of page-table work and that the counts are
/// consistent after each (partial tables included). The outcome and the number of entries.
fn call_to_end_bounded(m: &mut MmuMock, number: u64, mut args: [u64; 5], bound: u64) -> (Outcome, usize) {
    let mut runs = 0;
    loop {
        let before = m.paging_work();
        let outcome = dispatch(m, number, args);
        runs += 1;
        let work = m.paging_work().wrapping_sub(before);
        assert!(work <= bound, "entry {runs} did {work} entries of work");
        m.mmu.audit();
        match outcome {
            Outcome::Continue(a) => args = a,
            o => return (o, runs),
        }
    }
}

/// A spare tree at `DOM_FRAMES.start + 0x90..`: an L4, L3 and L2, and `l1s` L1s each
/// mapping `DATA` read-only 512 times. Returns (L4, L2, first L1).
fn big_tree(m: &mut MmuMock, l1s: u64) -> (u64, u64, u64) {
    let (l4, l3, l2, first_l1) =
        (DOM_FRAMES.start + 0x90, DOM_FRAMES.start + 0x91, DOM_FRAMES.start + 0x92, DOM_FRAMES.start + 0xa0);
    m.mmu.poke(l4, 0, e(l3, RW));
    m.mmu.poke(l3, 0, e(l2, RW));
    for i in 0..l1s {
        m.mmu.poke(l2, i as usize, e(first_l1 + i, RW));
        for k in 0..512 {
            m.mmu.poke(first_l1 + i, k, e(DATA, RO));
        }
    }
    (l4, l2, first_l1)
}

fn mmuext(m: &mut MmuMock, cmd: u32, mfn: u64) -> [u64; 5] {
    m.put_words(LIST, &[cmd as u64, mfn, 0]);
    [LIST, 1, DONE, SELF, 0]
}

#[test]
fn one_pin_of_a_large_tree_is_validated_and_released_in_bounded_steps() {
    let mut m = MmuMock::new();
    let data_refs = m.mmu.counts(DATA).2;
    let (l4, l2, first_l1) = big_tree(&mut m, 24);
    // 27 tables, 13 824 entries: one pin is more than one entry's budget.
    let pin = mmuext(&mut m, MMUEXT_PIN_L4_TABLE, l4);
    let r = dispatch(&mut m, nr::MMUEXT_OP, pin);
    let again = [LIST, 1 | MMU_UPDATE_PREEMPTED as u64, DONE, SELF, 0];
    assert_eq!(r, Outcome::Continue(again), "the same operation again, nothing counted done");
    assert_eq!(m.u32_at(DONE), 0);
    assert_eq!(m.mmu.counts(l4).1, 0, "not typed until the whole tree is validated");
    let partial = m.mmu.frames.get(l2).unwrap().partial;
    assert!(partial > 0 && partial < 24, "the L2 stopped part way: {partial}");
    m.mmu.audit();
    let (r, runs) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, again, super::super::mmu::WORK_BUDGET);
    assert_eq!((r, runs), (Outcome::Return(0), 1), "the second entry finishes it");
    assert_eq!(m.u32_at(DONE), 1);
    assert_eq!(m.mmu.counts(l4).1, 1);
    assert_eq!(m.mmu.counts(DATA).2, data_refs + 24 * 512);
    let unpin = mmuext(&mut m, MMUEXT_UNPIN_TABLE, l4);
    let (r, runs) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, unpin, super::super::mmu::WORK_BUDGET);
    assert_eq!(r, Outcome::Return(0));
    assert!(runs >= 2, "the release went in steps: {runs} entries");
    assert_eq!(m.u32_at(DONE), 1, "counted once, in the entry that unpinned");
    assert_eq!(m.mmu.counts(DATA).2, data_refs);
    for mfn in [l4, l2, first_l1, first_l1 + 23] {
        let f = m.mmu.frames.get(mfn).unwrap();
        assert_eq!((f.type_count, f.partial, f.validated), (0, 0, false), "{mfn:#x}");
    }
    assert!(m.mmu.paging.releasing.is_empty());
}

#[test]
fn a_pin_abandoned_part_way_gives_its_tables_back_when_they_are_used_otherwise() {
    let mut m = MmuMock::new();
    let data_refs = m.mmu.counts(DATA).2;
    let (l4, l2, first_l1) = big_tree(&mut m, 24);
    let pin = mmuext(&mut m, MMUEXT_PIN_L4_TABLE, l4);
    assert!(matches!(dispatch(&mut m, nr::MMUEXT_OP, pin), Outcome::Continue(_)));
    assert!(m.mmu.frames.get(l2).unwrap().partial > 0);
    // Instead of continuing, the guest maps the half-validated L2 writable: its L1s are
    // released first (in steps), then the mapping is made.
    m.put_words(LIST, &[(L1 << 12) + 5 * 8, e(l2, RW)]);
    let (r, _) = call_to_end_bounded(&mut m, nr::MMU_UPDATE, [LIST, 1, DONE, SELF, 0], super::super::mmu::WORK_BUDGET);
    assert_eq!(r, Outcome::Return(0));
    assert_eq!(m.mmu.counts(l2), (crate::mm::PageType::Writable, 1, 1));
    assert_eq!(m.mmu.counts(DATA).2, data_refs, "every L1 entry's reference went");
    assert_eq!(m.mmu.counts(first_l1).1, 0);
    // Unmapped again, the same pin now runs to the end from the start.
    m.put_words(LIST, &[(L1 << 12) + 5 * 8, 0]);
    assert_eq!(dispatch(&mut m, nr::MMU_UPDATE, [LIST, 1, DONE, SELF, 0]), Outcome::Return(0));
    let pin = mmuext(&mut m, MMUEXT_PIN_L4_TABLE, l4);
    let (r, _) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, pin, super::super::mmu::WORK_BUDGET);
    assert_eq!(r, Outcome::Return(0));
    assert_eq!(m.mmu.counts(DATA).2, data_refs + 24 * 512);
}

#[test]
fn a_pin_refused_after_a_preemption_releases_everything_it_took() {
    let mut m = MmuMock::new();
    let data_refs = m.mmu.counts(DATA).2;
    let (l4, l2, first_l1) = big_tree(&mut m, 24);
    // The last L1's last entry maps the L2 writable: refused (-EBUSY) once all else is taken.
    m.mmu.poke(first_l1 + 23, 511, e(l2, RW));
    let pin = mmuext(&mut m, MMUEXT_PIN_L4_TABLE, l4);
    let (r, runs) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, pin, super::super::mmu::WORK_BUDGET);
    assert_eq!(r, Outcome::Return(Errno::EBUSY.to_return()));
    assert!(runs >= 2, "refused in the entry that reached the bad entry");
    assert_eq!(m.u32_at(DONE), 0);
    // Whatever release is left runs first in the domain's next MMU hypercall.
    let flush = mmuext(&mut m, MMUEXT_TLB_FLUSH_LOCAL, 0);
    let (r, _) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, flush, super::super::mmu::WORK_BUDGET);
    assert_eq!(r, Outcome::Return(0));
    assert!(m.mmu.paging.releasing.is_empty());
    assert_eq!(m.mmu.counts(DATA).2, data_refs);
    for mfn in [l4, l2, first_l1, first_l1 + 22] {
        let f = m.mmu.frames.get(mfn).unwrap();
        assert_eq!((f.type_count, f.ref_count, f.partial), (0, 0, 0), "{mfn:#x}");
    }
}

#[test]
fn page_table_work_bounds_one_entry() {
    // A spare tree of eleven tables (L4, L3, L2, eight L1s), 5 632 entries: each pin
    // validates all of it and each unpin releases it, so 32 pin/unpin pairs would be
    // 360 448 entries of work.
    let mut m = MmuMock::new();
    let (l4, l3, l2) = (DOM_FRAMES.start + 0x90, DOM_FRAMES.start + 0x91, DOM_FRAMES.start + 0x92);
    m.mmu.poke(l4, 0, e(l3, RW));
    m.mmu.poke(l3, 0, e(l2, RW));
    for i in 0..8 {
        m.mmu.poke(l2, i, e(DOM_FRAMES.start + 0xa0 + i as u64, RW));
    }
    let ops: Vec<u64> =
        (0..32).flat_map(|_| [MMUEXT_PIN_L4_TABLE as u64, l4, 0, MMUEXT_UNPIN_TABLE as u64, l4, 0]).collect();
    m.put_words(LIST, &ops);
    let budget = super::super::mmu::WORK_BUDGET;
    let (r, runs) = call_to_end_bounded(&mut m, nr::MMUEXT_OP, [LIST, 64, DONE, SELF, 0], budget);
    assert_eq!(r, Outcome::Return(0));
    assert_eq!(m.u32_at(DONE), 64);
    assert!(runs as u64 >= 32 * 2 * 5632 / budget, "{runs} entries");
    // The same work spread over multicall entries: the multicall stops between them, and
    // its calls share its budget, so an entry that starts just under it stops there too.
    let mc = BASE + 0x800;
    let per_entry = 4 * 24; // 4 ops = 2 pairs per multicall entry
    for k in 0..8u64 {
        let mut raw = vec![];
        for w in [nr::MMUEXT_OP, 0, LIST + k * per_entry, 4, 0, SELF, 0, 0] {
            raw.extend_from_slice(&w.to_le_bytes());
        }
        m.put(mc + k * 64, &raw);
    }
    let (r, runs) = call_to_end_bounded(&mut m, nr::MULTICALL, [mc, 8, 0, 0, 0], budget);
    assert_eq!(r, Outcome::Return(0));
    assert!(runs as u64 >= 8 * 2 * 2 * 5632 / budget, "{runs} entries");
    assert_eq!(m.mmu.paging.batch_end, None, "the limit ends with the multicall");
}

#[test]
fn switching_to_the_current_root_first_does_not_release_it_early() {
    // NEW_BASEPTR naming the current root asks for a CR3 load without replacing anything; a
    // later switch in the same batch still replaces the root CR3 holds.
    let mut m = MmuMock::new();
    let (next, evil) = (DOM_FRAMES.start + 0x90, DOM_FRAMES.start + 0x91);
    m.mmu.poke(evil, 261, 0xdead_b000 | 0x63);
    let ops = [
        [MMUEXT_NEW_BASEPTR as u64, L4, 0],
        [MMUEXT_PIN_L4_TABLE as u64, next, 0],
        [MMUEXT_UNPIN_TABLE as u64, L4, 0],
        [MMUEXT_NEW_BASEPTR as u64, next, 0],
        [MMUEXT_COPY_PAGE as u64, L4, evil],
    ];
    m.put_words(LIST, ops.as_flattened());
    let r = dispatch(&mut m, nr::MMUEXT_OP, [LIST, 5, DONE, DOMID_SELF as u64, 0]);
    assert_eq!(r, Outcome::Return(Errno::EINVAL.to_return()), "the old root is still an L4");
    assert_ne!(crate::domain_layout::MachineMemory::read_entry(&m.mmu.mem, L4, 261), 0xdead_b000 | 0x63);
    assert_eq!(m.mmu.paging.effects.old_root, Some(L4));
    m.mmu.mmu().put_old_root();
    m.mmu.audit();
}

#[test]
fn random_hypercalls_never_panic_and_keep_the_counts_consistent() {
    // Any hypercall number with arguments that point into guest memory (random bytes, often
    // shaped like MMU requests on the domain's own frames) or anywhere at all. After each
    // call the exit path's work is modelled (old root dropped, effects taken) and the MMU's
    // reference counts must still add up.
    let mut m = MmuMock::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let frame = |rng: &mut Rng| match rng.below(8) {
        0 => rng.next() >> rng.below(64),
        1 => L4,
        _ => DOM_FRAMES.start + rng.below(0x40),
    };
    let mut successes = [0u32; 64];
    for round in 0..20_000 {
        // Refill part of the guest page: random words, or `mmu_update` pairs, or `mmuext_op`
        // triples on the domain's own frames (and sometimes others).
        let shape = rng.below(3);
        for k in 0..64u64 {
            let word = match (shape, k % if shape == 1 { 2 } else { 3 }) {
                (1, 0) => (frame(&mut rng) << 12) | (rng.below(512) * 8) | rng.pick(&[0, 0, 1, 2, 3]),
                (1, _) => match rng.below(4) {
                    0 => 0,
                    1 => rng.next(),
                    _ => e(frame(&mut rng), if rng.below(2) == 0 { RW } else { RO }),
                },
                (2, 0) => rng.below(24),
                (2, 1) => frame(&mut rng),
                (2, _) => {
                    if rng.below(2) == 0 {
                        frame(&mut rng)
                    } else {
                        BASE + rng.below(0x1000)
                    }
                }
                _ => match rng.below(3) {
                    0 => rng.next(),
                    1 => frame(&mut rng),
                    _ => BASE + rng.below(0x10000),
                },
            };
            m.put_words(BASE + 0x100 + k * 8, &[word]);
        }
        let nr = match rng.below(10) {
            0 => rng.next(),
            1..=3 => 1,
            4..=6 => 26,
            _ => rng.below(48),
        };
        let arg = |rng: &mut Rng| match rng.below(5) {
            0 => rng.next(),
            1 => rng.below(70),
            2 => DOMID_SELF as u64,
            _ => BASE + 0x100 + rng.below(0x200),
        };
        let mut args = [arg(&mut rng), arg(&mut rng), arg(&mut rng), arg(&mut rng), arg(&mut rng)];
        if rng.below(2) == 0 {
            // A well-formed batch call over the request-shaped words.
            let list = BASE + 0x100;
            args = [list, 1 + rng.below(6), if rng.below(2) == 0 { 0 } else { BASE }, DOMID_SELF as u64, 0];
        }
        for _ in 0..8 {
            let out = dispatch(&mut m, nr, args);
            if out == Outcome::Return(0) && (nr as usize) < successes.len() {
                successes[nr as usize] += 1;
            }
            m.mmu.mmu().put_old_root();
            m.mmu.paging.effects.take();
            match out {
                Outcome::Continue(next) => args = next,
                _ => break,
            }
        }
        if round % 2000 == 0 {
            m.mmu.audit();
        }
    }
    m.mmu.audit();
    // The test means something only if the batches did work.
    assert!(successes[1] > 100 && successes[26] > 20, "successes: {:?}", &successes[..27]);
}

/// Xen's `__do_update_va_mapping` does the requested flush at `out:` whether or not the
/// update succeeded.
#[test]
fn update_va_mapping_flushes_even_when_the_update_fails() {
    let mut m = MmuMock::new();
    m.mmu.paging.effects = Default::default();
    // A writable mapping of the L1 itself: -EBUSY.
    let r = dispatch(&mut m, nr::UPDATE_VA_MAPPING, [4 << 12, e(L1, RW), UVMF_TLB_FLUSH | UVMF_LOCAL, 0, 0]);
    assert_eq!(r, Outcome::Return(Errno::EBUSY.to_return()));
    assert!(m.mmu.paging.effects.flush_all, "Xen flushes the TLB anyway");
}

/// `nr_ents` is an `unsigned int` in Xen's `struct mmuext_op`: only its low 32 bits count,
/// so 1 << 32 is 0 entries (no LDT), which succeeds.
#[test]
fn set_ldt_takes_32_bit_nr_ents() {
    let mut m = MmuMock::new();
    m.put_words(LIST, &[MMUEXT_SET_LDT as u64, 0x1234_5000, 1 << 32]);
    assert_eq!(dispatch(&mut m, nr::MMUEXT_OP, [LIST, 1, 0, SELF, 0]), Outcome::Return(0));
}
