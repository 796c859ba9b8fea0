//! Host tests of the reservation ops against a domain with a real frame table:
//! `XENMEM_decrease_reservation` (the done count, the first-failure stop, deferred frees, the
//! domid and flag rules, extent orders and continuations) and the growth ops
//! (`XENMEM_increase_reservation`, `XENMEM_populate_physmap`) up to the domain's limit.

use super::super::testing::{env_boilerplate, flat_guest_deref, FlatGuest, BASE};
use super::super::{dispatch, DomainControl, DomainFacts, DomainInfo, Env, Outcome};
use crate::mm::testing::{e, MockMmu, DOM, DOM_FRAMES, OTHER, OTHER_FRAMES, RW, SHARED_INFO};
use crate::mm::{MmuAccess, Owner, INVALID_M2P_ENTRY};
use hypercall_abi::errno::Errno;
use hypercall_abi::hypercall as nr;
use hypercall_abi::memory::{
    XENMEMF_EXACT_NODE_REQUEST, XENMEMF_VNODE, XENMEM_DECREASE_RESERVATION, XENMEM_INCREASE_RESERVATION,
    XENMEM_POPULATE_PHYSMAP,
};

const RESV: u64 = BASE;
const LIST: u64 = BASE + 0x100;
const L4: u64 = 0x100;
const L1: u64 = 0x103;
/// Mapped RW at VA 0 by `L1[0]`.
const DATA: u64 = 0x110;
/// Unmapped frames of `DOM`.
const SPARE: u64 = 0x180;
const DOMID_SELF: u16 = 0x7ff0;
const ALL: u64 = DOM_FRAMES.end - DOM_FRAMES.start;

/// Guest memory `[BASE, BASE + 64 KiB)`, a real MMU with a pinned tree mapping `DATA`, and a
/// domain list holding the caller and `OTHER`.
struct MemMock {
    guest: FlatGuest,
    mmu: MockMmu,
    privileged: bool,
    vcpu: crate::vcpu::VcpuState,
    /// The caller's page limit (`max_pages`).
    max_pages: u64,
}

/// Free frames the mock's allocator hands out for growing reservations.
const POOL: core::ops::Range<u64> = 0xa00..0x1000;

impl MemMock {
    fn new() -> Self {
        let mut mmu = MockMmu::new();
        mmu.poke(L4, 0, e(0x101, RW));
        mmu.poke(0x101, 0, e(0x102, RW));
        mmu.poke(0x102, 0, e(L1, RW));
        mmu.poke(L1, 0, e(DATA, RW));
        mmu.mmu().adopt_bootstrap_tables(L4).unwrap();
        Self {
            guest: FlatGuest::new(0x10000),
            mmu,
            privileged: false,
            vcpu: crate::vcpu::VcpuState::new(0x1000),
            max_pages: ALL,
        }
    }
    /// The reservation struct at `RESV` with its list at `LIST`.
    fn reservation(&mut self, frames: &[u64], order: u32, flags: u32, domid: u16) {
        let mut raw = [0u8; 32];
        raw[0..8].copy_from_slice(&LIST.to_le_bytes());
        raw[8..16].copy_from_slice(&(frames.len() as u64).to_le_bytes());
        raw[16..20].copy_from_slice(&order.to_le_bytes());
        raw[20..24].copy_from_slice(&flags.to_le_bytes());
        raw[24..26].copy_from_slice(&domid.to_le_bytes());
        self.put(RESV, &raw);
        let words: Vec<u8> = frames.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.put(LIST, &words);
    }
    fn decrease(&mut self, frames: &[u64]) -> Outcome {
        self.reservation(frames, 0, 0, DOMID_SELF);
        dispatch(self, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0])
    }
    fn owner(&self, mfn: u64) -> Owner {
        self.mmu.frames.get(mfn).unwrap().owner
    }
}

flat_guest_deref!(MemMock, guest);

impl DomainControl for MemMock {
    fn info_from(&self, id: u16) -> Option<DomainInfo> {
        [DOM, OTHER].into_iter().find(|&d| d >= id).map(|id| DomainInfo { id, ..DomainInfo::default() })
    }
    fn pause(&mut self, _id: u16) -> Result<(), Errno> {
        Ok(())
    }
    fn unpause(&mut self, _id: u16) -> Result<(), Errno> {
        Ok(())
    }
    fn destroy(&mut self, _id: u16) -> Result<(), Errno> {
        Ok(())
    }
    fn shut_down(&mut self, _id: u16, _reason: u32) -> Result<(), Errno> {
        Ok(())
    }
}

impl Env for MemMock {
    env_boilerplate!(guest: guest, vcpu: vcpu);
    fn domain(&self) -> DomainFacts {
        let nr_pages = self.mmu.frames.pages_of(DOM);
        DomainFacts { id: DOM, nr_pages, max_pages: self.max_pages, privileged: self.privileged, max_mfn: 0x1000 }
    }
    /// The production rules (`give_new_frames`) over a frame source that hands out the first
    /// aligned run of free `POOL` frames; `OTHER`'s limit is the frames it was made with.
    fn take_new_frames(&mut self, id: u16, order: u32) -> Option<u64> {
        let max = if id == DOM { self.max_pages } else { OTHER_FRAMES.end - OTHER_FRAMES.start };
        let frames = &self.mmu.frames;
        let free = |f: u64| frames.get(f).is_some_and(|i| i.owner == Owner::Hypervisor);
        let alloc =
            |count: u64| POOL.step_by(count as usize).find(|&f| f + count <= POOL.end && (f..f + count).all(free));
        let first = alloc(1 << order);
        super::give_new_frames(&mut self.mmu.frames, &mut self.mmu.mem, id, max, order, |_| first, |_| {})
    }
    fn domain_control(&mut self) -> Option<&mut dyn DomainControl> {
        Some(self)
    }
    fn events(&mut self) -> Option<crate::evtchn::EventAccess<'_>> {
        None
    }
    fn mmu(&mut self) -> Option<MmuAccess<'_>> {
        Some(self.mmu.access())
    }
}

#[test]
fn unmapped_frames_return_to_the_hypervisor_at_once() {
    let mut m = MemMock::new();
    m.mmu.frames.set_m2p(SPARE, 3).unwrap();
    assert_eq!(m.decrease(&[SPARE, SPARE + 1]), Outcome::Return(2));
    assert_eq!((m.owner(SPARE), m.owner(SPARE + 1)), (Owner::Hypervisor, Owner::Hypervisor));
    assert_eq!(m.mmu.frames.m2p(SPARE), Some(INVALID_M2P_ENTRY));
    assert_eq!(m.mmu.frames.take_released(), vec![SPARE, SPARE + 1]);
    assert!(m.mmu.paging.effects.flush_all, "flushed before the frames can be reused");
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL - 2, "tot_pages for current_reservation");
    // Freeing it again stops: it is not the domain's any more.
    assert_eq!(m.decrease(&[SPARE]), Outcome::Return(0), "not ours any more");
    m.mmu.audit();
}

#[test]
fn a_frame_still_mapped_is_freed_when_its_mapping_goes() {
    let mut m = MemMock::new();
    assert_eq!(m.decrease(&[DATA]), Outcome::Return(1), "counted as done, as Xen");
    assert_eq!(m.owner(DATA), Owner::Domain(DOM), "the mapping keeps it alive");
    assert!(m.mmu.frames.take_released().is_empty());
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL, "Xen's tot_pages drops at the real free");
    m.mmu.mmu().update_va_mapping(0, 0, 0).unwrap();
    assert_eq!((m.owner(DATA), m.mmu.frames.take_released()), (Owner::Hypervisor, vec![DATA]));
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL - 1);
    m.mmu.audit();
}

#[test]
fn freeing_a_pinned_table_drops_its_pin_as_xen() {
    // Xen's `guest_remove_page` clears `_PGT_pinned` of a frame it frees: a pinned,
    // otherwise unused table is released at once, and a later unpin is -EINVAL.
    let mut m = MemMock::new();
    m.mmu.mmu().pin_table(SPARE, 1).unwrap();
    assert_eq!(m.decrease(&[SPARE]), Outcome::Return(1));
    assert_eq!(m.owner(SPARE), Owner::Hypervisor, "pin dropped and the frame released");
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL - 1, "current_reservation drops");
    assert_eq!(m.mmu.mmu().unpin_table(SPARE).map_err(|e| e.errno), Err(Errno::EINVAL));
    assert_eq!(m.mmu.frames.take_released(), vec![SPARE]);
    m.mmu.audit();
}

#[test]
fn the_batch_stops_at_the_first_frame_not_owned() {
    let mut m = MemMock::new();
    let r = m.decrease(&[SPARE, DATA, OTHER_FRAMES.start, SPARE + 1]);
    assert_eq!(r, Outcome::Return(2), "SPARE and DATA done, OTHER's frame stops it");
    assert_eq!(m.owner(SPARE + 1), Owner::Domain(DOM), "never reached");
    assert_eq!(m.owner(OTHER_FRAMES.start), Owner::Domain(OTHER));
    for bad in [0x30, 0x1000, u64::MAX] {
        assert_eq!(m.decrease(&[bad]), Outcome::Return(0), "{bad:#x}");
    }
    assert_eq!(m.decrease(&[SHARED_INFO]), Outcome::Return(1), "Xen answers success; the page stays");
    assert_eq!(m.owner(SHARED_INFO), Owner::Domain(DOM));
    // The start extent from `cmd >> 6`: extents before it are skipped, and counted.
    m.reservation(&[0x30, SPARE + 2, SPARE + 3], 0, 0, DOMID_SELF);
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION | (1 << 6), RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(3));
    assert_eq!(m.owner(SPARE + 2), Owner::Hypervisor);
    // An unreadable list entry stops the batch too.
    m.reservation(&[SPARE + 4], 0, 0, DOMID_SELF);
    m.put(RESV + 8, &3u64.to_le_bytes());
    m.put(RESV, &(BASE + 0x10000 - 16).to_le_bytes());
    m.put(BASE + 0x10000 - 16, &(SPARE + 4).to_le_bytes());
    m.put(BASE + 0x10000 - 8, &(SPARE + 5).to_le_bytes());
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(2));
    m.mmu.audit();
}

#[test]
fn whole_request_refusals_answer_the_start_extent() {
    let mut m = MemMock::new();
    let call = |m: &mut MemMock, cmd: u64, arg: u64| dispatch(m, nr::MEMORY_OP, [cmd, arg, 0, 0, 0]);
    let dec = XENMEM_DECREASE_RESERVATION;
    assert_eq!(call(&mut m, dec, 0xdead_0000), Outcome::Return(0), "unreadable struct");
    assert_eq!(call(&mut m, dec | (5 << 6), 0xdead_0000), Outcome::Return(5));
    m.reservation(&[SPARE], 0, 0, DOMID_SELF);
    assert_eq!(call(&mut m, dec | (1 << 6), RESV), Outcome::Return(1), "start beyond the list");
    m.put(RESV + 8, &(1u64 << 26).to_le_bytes());
    assert_eq!(call(&mut m, dec, RESV), Outcome::Return(0), "too many extents to encode");
    for (flags, why) in [(12, "address bits"), (1, "address bits"), (XENMEMF_EXACT_NODE_REQUEST | (1 << 8), "node")] {
        m.reservation(&[SPARE], 0, flags, DOMID_SELF);
        assert_eq!(call(&mut m, dec, RESV), Outcome::Return(0), "{why}");
    }
    m.reservation(&[SPARE], 10, 0, DOMID_SELF);
    assert_eq!(call(&mut m, dec, RESV), Outcome::Return(0), "order above a domU's 9");
    assert_eq!(m.owner(SPARE), Owner::Domain(DOM), "nothing freed so far");
    m.put(RESV, &0xffff_8000_0000_0000u64.to_le_bytes());
    m.put(RESV + 16, &0u32.to_le_bytes());
    assert_eq!(call(&mut m, dec, RESV), Outcome::Return(0), "handle in the hypervisor's range");
    // Flags that only steer allocation are accepted: address bits above 12, any vnode, a
    // plain node hint.
    for flags in [32, XENMEMF_VNODE | (7 << 8), 2 << 8, XENMEMF_EXACT_NODE_REQUEST] {
        m.reservation(&[SPARE], 0, flags, DOMID_SELF);
        assert_eq!(call(&mut m, dec, RESV), Outcome::Return(1), "{flags:#x}");
        m.mmu.frames.assign_frame(SPARE, DOM).unwrap();
    }
}

#[test]
fn domid_rules() {
    let mut m = MemMock::new();
    let dec = |m: &mut MemMock, frame: u64, domid: u16| {
        m.reservation(&[frame], 0, 0, domid);
        dispatch(m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0])
    };
    assert_eq!(dec(&mut m, SPARE, DOM), Outcome::Return(1), "own id");
    assert_eq!(dec(&mut m, OTHER_FRAMES.start, OTHER), Outcome::Return(0), "a domU may not (Xen: XSM)");
    assert_eq!(m.owner(OTHER_FRAMES.start), Owner::Domain(OTHER));
    m.privileged = true;
    assert_eq!(dec(&mut m, OTHER_FRAMES.start, 9), Outcome::Return(0), "no such domain");
    assert_eq!(dec(&mut m, SPARE + 1, OTHER), Outcome::Return(0), "the frames must be the target's");
    assert_eq!(dec(&mut m, OTHER_FRAMES.start, OTHER), Outcome::Return(1), "the control domain may");
    assert_eq!(m.owner(OTHER_FRAMES.start), Owner::Hypervisor);
    assert_eq!(m.mmu.frames.pages_of(OTHER), OTHER_FRAMES.end - OTHER_FRAMES.start - 1);
    m.mmu.audit();
}

#[test]
fn extent_orders_and_continuations() {
    let mut m = MemMock::new();
    // Order 2: four frames per extent. The third extent starts with two frames of ours and
    // then reaches OTHER's first frame, which stops it.
    m.reservation(&[SPARE, SPARE + 4, OTHER_FRAMES.start - 2], 2, 0, DOMID_SELF);
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(2));
    assert!((SPARE..SPARE + 8).all(|f| m.owner(f) == Owner::Hypervisor));
    assert_eq!(m.owner(OTHER_FRAMES.start - 2), Owner::Hypervisor, "as Xen: a partial extent stays freed");
    assert_eq!(m.owner(OTHER_FRAMES.start - 1), Owner::Hypervisor);
    assert_eq!(m.owner(OTHER_FRAMES.start), Owner::Domain(OTHER));
    // 600 single frames: one batch, then a continuation carrying the next extent in `cmd`.
    let frames: Vec<u64> = (0x200..0x200 + 600).collect();
    m.reservation(&frames, 0, 0, DOMID_SELF);
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Continue([XENMEM_DECREASE_RESERVATION | (512 << 6), RESV, 0, 0, 0]));
    let Outcome::Continue(next) = r else { unreachable!() };
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, next), Outcome::Return(600));
    assert!(frames.iter().all(|&f| m.owner(f) == Owner::Hypervisor));
    assert_eq!(m.mmu.frames.take_released().len(), 8 + 2 + 600);
    // Orders above a domU's 9 (up to 12) for the control domain.
    m.privileged = true;
    m.reservation(&[0x480], 7, 0, DOMID_SELF);
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(1));
    assert_eq!(m.mmu.frames.take_released(), (0x480..0x500).collect::<Vec<_>>());
    m.reservation(&[0], 13, 0, DOMID_SELF);
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(0), "order 13 is too large even for dom0");
    m.mmu.audit();
}

#[test]
fn current_reservation_reports_the_page_count() {
    let mut m = MemMock::new();
    assert_eq!(m.decrease(&[SPARE, SPARE + 1, SPARE + 2]), Outcome::Return(3));
    m.put(RESV, &DOMID_SELF.to_le_bytes());
    let r = dispatch(&mut m, nr::MEMORY_OP, [super::XENMEM_CURRENT_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return((ALL - 3) as i64));
}

fn grow(m: &mut MemMock, op: u64, list: &[u64], order: u32, flags: u32, domid: u16) -> Outcome {
    m.reservation(list, order, flags, domid);
    dispatch(m, nr::MEMORY_OP, [op, RESV, 0, 0, 0])
}

fn list_word(m: &MemMock, i: u64) -> u64 {
    m.u64_at(LIST + i * 8)
}

/// A balloon driver's round trip: frames given back with decrease_reservation come back with
/// populate_physmap, new and zeroed, the M2P naming the gpfns asked for and the list holding
/// their MFNs, up to the domain's limit and no further.
#[test]
fn populate_regrows_a_ballooned_domain_up_to_its_limit() {
    let mut m = MemMock::new();
    assert_eq!(grow(&mut m, XENMEM_POPULATE_PHYSMAP, &[7], 0, 0, DOMID_SELF), Outcome::Return(0), "at its limit");
    assert_eq!(m.decrease(&[SPARE, SPARE + 1, SPARE + 2]), Outcome::Return(3));
    m.mmu.mem.0.insert((POOL.start, 5), 0xdead);
    let r = grow(&mut m, XENMEM_POPULATE_PHYSMAP, &[100, 200], 0, 0, DOMID_SELF);
    assert_eq!(r, Outcome::Return(2));
    let (a, b) = (list_word(&m, 0), list_word(&m, 1));
    assert!(POOL.contains(&a) && POOL.contains(&b) && a != b, "MFNs written back: {a:#x} {b:#x}");
    assert_eq!((m.owner(a), m.owner(b)), (Owner::Domain(DOM), Owner::Domain(DOM)));
    assert_eq!((m.mmu.frames.m2p(a), m.mmu.frames.m2p(b)), (Some(100), Some(200)));
    use crate::mm::MachineMemory;
    assert_eq!(m.mmu.mem.read_entry(a, 5), 0, "a new frame holds nothing of its past");
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL - 1);
    // One page left below the limit: of three extents, one is given.
    assert_eq!(grow(&mut m, XENMEM_POPULATE_PHYSMAP, &[1, 2, 3], 0, 0, DOMID_SELF), Outcome::Return(1));
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL);
    assert_eq!(list_word(&m, 1), 2, "entries not reached stay as they were");
    m.mmu.audit();
}

#[test]
fn increase_reservation_writes_mfns_unless_the_list_is_null() {
    let mut m = MemMock::new();
    assert_eq!(m.decrease(&[SPARE, SPARE + 1, SPARE + 2, SPARE + 3]), Outcome::Return(4));
    assert_eq!(grow(&mut m, XENMEM_INCREASE_RESERVATION, &[0, 0], 0, 0, DOMID_SELF), Outcome::Return(2));
    let given = list_word(&m, 0);
    assert!(POOL.contains(&given) && m.owner(given) == Owner::Domain(DOM));
    assert_eq!(m.mmu.frames.m2p(given), Some(INVALID_M2P_ENTRY), "the guest sets the M2P");
    // A NULL list: the frames are given, nothing is written.
    m.reservation(&[0x55, 0x66], 0, 0, DOMID_SELF);
    m.put(RESV, &0u64.to_le_bytes());
    let r = dispatch(&mut m, nr::MEMORY_OP, [XENMEM_INCREASE_RESERVATION, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(2));
    assert_eq!((list_word(&m, 0), list_word(&m, 1)), (0x55, 0x66));
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL);
    m.mmu.audit();
}

/// Extents of order > 0 are aligned runs; refusals of the whole request answer the start
/// extent as for decrease; populate-on-demand is refused (a PV domain has no p2m to mark);
/// the control domain may grow another domain; long requests continue.
#[test]
fn growth_orders_refusals_targets_and_continuations() {
    let mut m = MemMock::new();
    m.max_pages = ALL + 2048;
    assert_eq!(grow(&mut m, XENMEM_POPULATE_PHYSMAP, &[0x40, 0x80], 2, 0, DOMID_SELF), Outcome::Return(2));
    let first = list_word(&m, 0);
    assert_eq!(first % 4, 0, "aligned to its size");
    assert_eq!(
        (first..first + 4).map(|f| m.mmu.frames.m2p(f).unwrap()).collect::<Vec<_>>(),
        vec![0x40, 0x41, 0x42, 0x43]
    );
    let pop = XENMEM_POPULATE_PHYSMAP;
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, [pop | (7 << 6), 0xdead_0000, 0, 0, 0]), Outcome::Return(7));
    assert_eq!(grow(&mut m, pop, &[1], 10, 0, DOMID_SELF), Outcome::Return(0), "order above a domU's 9");
    assert_eq!(grow(&mut m, pop, &[1], 0, 1 << 16, DOMID_SELF), Outcome::Return(0), "populate on demand");
    assert_eq!(grow(&mut m, pop, &[1], 0, 0, OTHER), Outcome::Return(0), "a domU may not grow another");
    let before = m.mmu.frames.pages_of(DOM);
    // An unreadable gpfn ends populate at that extent.
    m.reservation(&[9], 0, 0, DOMID_SELF);
    m.put(RESV, &(BASE + 0x10000 - 8).to_le_bytes());
    m.put(BASE + 0x10000 - 8, &9u64.to_le_bytes());
    m.put(RESV + 8, &2u64.to_le_bytes());
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, [pop, RESV, 0, 0, 0]), Outcome::Return(1));
    assert_eq!(m.mmu.frames.pages_of(DOM), before + 1);
    // 600 single frames: one batch of 512, then a continuation from extent 512.
    let gpfns: Vec<u64> = (0..600).collect();
    let r = grow(&mut m, pop, &gpfns, 0, 0, DOMID_SELF);
    assert_eq!(r, Outcome::Continue([pop | (512 << 6), RESV, 0, 0, 0]));
    let Outcome::Continue(next) = r else { unreachable!() };
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, next), Outcome::Return(600));
    assert_eq!(m.mmu.frames.pages_of(DOM), before + 601);
    // The control domain grows OTHER back after freeing one of its frames.
    m.privileged = true;
    m.reservation(&[OTHER_FRAMES.start], 0, 0, OTHER);
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, [XENMEM_DECREASE_RESERVATION, RESV, 0, 0, 0]), Outcome::Return(1));
    assert_eq!(grow(&mut m, pop, &[5, 6], 0, 0, OTHER), Outcome::Return(1), "back to its limit");
    assert_eq!(m.owner(list_word(&m, 0)), Owner::Domain(OTHER));
    m.mmu.audit();
}

/// A domU's memory map covers the pages it may have, not the pages it has now (ballooning
/// does not shrink it); the control domain has none (-ENOSYS), once the structure is read.
#[test]
fn the_memory_map_covers_max_pages_and_dom0_has_none() {
    let mut m = MemMock::new();
    assert_eq!(m.decrease(&[SPARE, SPARE + 1]), Outcome::Return(2));
    let mut map = [0u8; 16];
    map[0..4].copy_from_slice(&4u32.to_le_bytes());
    map[8..16].copy_from_slice(&LIST.to_le_bytes());
    m.put(RESV, &map);
    let r = dispatch(&mut m, nr::MEMORY_OP, [super::XENMEM_MEMORY_MAP, RESV, 0, 0, 0]);
    assert_eq!(r, Outcome::Return(0));
    assert_eq!(m.u32_at(RESV), 1);
    assert_eq!(m.u64_at(LIST + 8), ALL * 4096);
    m.privileged = true;
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, [super::XENMEM_MEMORY_MAP, RESV, 0, 0, 0]), Outcome::Return(-38));
    let end = BASE + 0x10000 - 8;
    assert_eq!(dispatch(&mut m, nr::MEMORY_OP, [super::XENMEM_MEMORY_MAP, end, 0, 0, 0]), Outcome::Return(-14));
}

/// A run whose frame the frame table does not have free (a hypervisor bug): nothing is given,
/// the frames assigned so far go back, and every frame of the run but that one is released.
#[test]
fn a_run_with_a_frame_in_use_gives_nothing_and_releases_the_rest() {
    let mut m = MemMock::new();
    m.max_pages = ALL + 16;
    let run = 0xa08;
    m.mmu.frames.assign_frame(run + 2, OTHER).unwrap();
    let mut released = Vec::new();
    let got = super::give_new_frames(
        &mut m.mmu.frames,
        &mut m.mmu.mem,
        DOM,
        ALL + 16,
        2,
        |_| Some(run),
        |back| released.extend(back),
    );
    assert_eq!(got, None);
    assert_eq!(released, vec![run, run + 1, run + 3]);
    assert!((run..run + 2).all(|f| m.owner(f) == Owner::Hypervisor), "the frames given back");
    assert_eq!(m.owner(run + 2), Owner::Domain(OTHER));
    assert_eq!(m.mmu.frames.pages_of(DOM), ALL, "nothing given");
    // Past the limit, the source is never asked.
    let got = super::give_new_frames(&mut m.mmu.frames, &mut m.mmu.mem, DOM, ALL, 0, |_| panic!("asked"), |_| {});
    assert_eq!(got, None);
}
