//! `role=mmu`: the PV MMU with validation. Successful operations: an L1 built in a pool page,
//! mapped read-only and pinned, hooked into the boot L2 with `mmu_update`, a page mapped
//! through it with `update_va_mapping(UVMF_INVLPG)` and used, an `MMU_MACHPHYS_UPDATE`, pin
//! and unpin of an L4 and `new_user_baseptr`, pin and unpin of a tree bigger than one
//! hypervisor entry's work. Refusals, each with the errno Xen 4.17 returns
//!
//! | operation | Xen 4.17 |
//! |---|---|
//! | pin a table already pinned | -EINVAL |
//! | writable mapping of a page-table page (`update_va_mapping` or an L1 entry) | -EBUSY |
//! | `update_va_mapping` in, or `mmu_update` of an L4 slot of, Xen's range | -EINVAL |
//! | pin an L2 with a PSE entry | -EINVAL |
//! | pin an L1 with a writable entry for a page table | -EBUSY |
//! | unpin a table still in use | 0: the use keeps the type (a writable mapping is then -EBUSY) |
//! | unpin a table not pinned | -EINVAL |
//! | `new_user_baseptr` of a writable page | -EINVAL |
//! | `decrease_reservation` of a frame still mapped | 1: freed when the last mapping goes |
//! | map a frame freed with `decrease_reservation` (not ours any more) | -EINVAL |
//! | `populate_physmap` of one page after freeing some | 1, the M2P set, the frame ours |

use hypercall_abi::mm::{pte, MmuUpdate, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, UVMF_INVLPG};
use hypercall_abi::mm::{MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE};
use hypercall_abi::mm::{MMUEXT_PIN_L4_TABLE, MMUEXT_UNPIN_TABLE};
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::{memory, Errno};

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::ShutdownRequest;
use crate::kernel::mm::{self, alloc_frame, pte_rw, Frame};
use crate::kernel::trap::{self, TrapSetup};
use crate::kernel::{events, hyp};
use crate::println;

/// The L2 slot (2 MiB each) we hook our own L1 into: VA 16 MiB, above the bootstrap region.
pub const SLOT: usize = 8;
/// The virtual address our L1 covers.
pub const WINDOW: u64 = (SLOT as u64) << 21;
/// What the data page holds at offset 0 while the window is checked.
const WINDOW_MARKER: u64 = 0x6d6d_755f_7769_6e64;

/// The boot page-table frame with machine frame `mfn` (the builder maps them all, read-only,
/// at `pt_base + i * 4096`; found through the P2M).
fn boot_table(si: &StartInfo, mfn: u64) -> Option<Frame> {
    (0..si.nr_pt_frames).map(|i| si.pt_base + 4096 * i).find(|&va| mm::va_to_mfn(va) == mfn).map(|va| Frame { va, mfn })
}

/// The boot page tables' L2 that maps VA 0..1 GiB.
pub fn boot_l2(si: &StartInfo) -> Option<Frame> {
    let l4 = Frame { va: si.pt_base, mfn: mm::va_to_mfn(si.pt_base) };
    let l3 = boot_table(si, (l4.read(0) & pte::ADDR_MASK) >> 12)?;
    boot_table(si, (l3.read(0) & pte::ADDR_MASK) >> 12)
}

/// One `MMU_NORMAL_PT_UPDATE` of entry `index` of the table `table`.
pub fn set_entry(table: u64, index: usize, val: u64) -> Result<u64, Errno> {
    let req = MmuUpdate { ptr: ((table << 12) + 8 * index as u64) | MMU_NORMAL_PT_UPDATE, val };
    // SAFETY: callers only change entries of tables they built or unused slots.
    unsafe { hyp::mmu_update(&[req]).0 }
}

fn pin(cmd: u32, mfn: u64) -> Result<u64, Errno> {
    // SAFETY: pinning only adds a type reference.
    unsafe { hyp::mmuext1(cmd, mfn) }
}

/// Runs the role.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    if events::init(si).is_err() || trap::install(&TrapSetup::ALL, super::traps::handler).is_err() {
        println!("mmu: set-up failed");
        return ShutdownRequest::Crash;
    }
    let (Some(l1), Some(data), Some(bad), Some(l4)) = (alloc_frame(), alloc_frame(), alloc_frame(), alloc_frame())
    else {
        println!("mmu: out of pool pages");
        return ShutdownRequest::Crash;
    };
    let Some(l2) = boot_l2(si) else {
        println!("mmu: boot L2 not found among the boot page tables");
        return ShutdownRequest::Crash;
    };

    // --- An L1 of our own, pinned and hooked in.
    // SAFETY: `l1` is a fresh writable pool page.
    unsafe { l1.entries()[0] = pte_rw(data.mfn, 0) };
    let ro = mm::make_readonly(l1.va);
    let p = pin(MMUEXT_PIN_L1_TABLE, l1.mfn);
    let again = pin(MMUEXT_PIN_L1_TABLE, l1.mfn);
    check!(
        log,
        "remap an L1 read-only, pin it, pin it again",
        "0, 0, -22 (EINVAL)",
        ro == Ok(0) && p == Ok(0) && again == Err(Errno::EINVAL),
        "{}, {}, {}",
        ret_of(ro),
        ret_of(p),
        ret_of(again)
    );
    // A marker in the data page, so that the window is seen to map that page, not any zeroed one.
    // SAFETY: `data` is our own pool page, mapped writable.
    unsafe { (data.va as *mut u64).write_volatile(WINDOW_MARKER) };
    let hook = set_entry(l2.mfn, SLOT, pte_rw(l1.mfn, pte::USER));
    // SAFETY: WINDOW maps `data` now (entry 0 of our L1); it is ours.
    let via = unsafe { (WINDOW as *mut u64).read_volatile() };
    check!(
        log,
        "mmu_update: hook the L1 into the boot L2",
        "0 and the window maps the data page",
        hook == Ok(0) && via == WINDOW_MARKER,
        "{}",
        ret_of(hook)
    );
    // SAFETY: maps `data` (ours) at WINDOW + 4 KiB.
    let r = unsafe { hyp::update_va_mapping(WINDOW + 0x1000, pte_rw(data.mfn, 0), UVMF_INVLPG) };
    // SAFETY: both addresses map `data` now.
    let seen = unsafe {
        ((WINDOW + 0x1000) as *mut u64).write_volatile(0x1234_5678);
        (data.va as *const u64).read_volatile()
    };
    let entry = l1.read(1) & pte::ADDR_MASK;
    check!(
        log,
        "update_va_mapping(UVMF_INVLPG) through the new L1",
        "0, the L1 entry holds the frame, a store through it lands in the frame",
        r == Ok(0) && entry == data.mfn << 12 && seen == 0x1234_5678,
        "{}, entry {}, store {}",
        ret_of(r),
        if entry == data.mfn << 12 { "ok" } else { "wrong" },
        if seen == 0x1234_5678 { "seen" } else { "lost" }
    );
    let pfn = mm::m2p(data.mfn).unwrap_or(u64::MAX);
    check!(
        log,
        "read the M2P entry of our frame (read-only at 0xffff800000000000)",
        "the frame's PFN",
        pfn == data.va >> 12,
        "{}",
        if pfn == data.va >> 12 {
            "= its PFN"
        } else if pfn == u64::MAX {
            "#PF"
        } else {
            "other"
        }
    );
    let m2p = |val: u64| {
        let req = MmuUpdate { ptr: (data.mfn << 12) | MMU_MACHPHYS_UPDATE, val };
        // SAFETY: the M2P entry of our own frame; restored below.
        unsafe { hyp::mmu_update(&[req]).0 }
    };
    let r1 = m2p(0x7_7777);
    let now = mm::m2p(data.mfn).unwrap_or(u64::MAX);
    let r2 = m2p(pfn);
    check!(
        log,
        "mmu_update MMU_MACHPHYS_UPDATE",
        "0, the M2P shows the new PFN, 0 restoring it",
        r1 == Ok(0) && now == 0x7_7777 && r2 == Ok(0) && mm::m2p(data.mfn) == Some(pfn),
        "{}, m2p {now:#x}, {}",
        ret_of(r1),
        ret_of(r2)
    );

    // --- Refusals.
    // SAFETY: refused: the L4 is a page table.
    let r = unsafe { hyp::update_va_mapping(si.pt_base, pte_rw(mm::va_to_mfn(si.pt_base), 0), UVMF_INVLPG) };
    check!(
        log,
        "writable mapping of a page-table page (the boot L4)",
        "-16 (EBUSY)",
        r == Err(Errno::EBUSY),
        "{}",
        ret_of(r)
    );
    let r = set_entry(l1.mfn, 2, pte_rw(mm::va_to_mfn(si.pt_base), 0));
    check!(
        log,
        "mmu_update: writable L1 entry for the boot L4",
        "-16 (EBUSY)",
        r == Err(Errno::EBUSY),
        "{}",
        ret_of(r)
    );
    // SAFETY: refused: the address is in Xen's range.
    let r = unsafe { hyp::update_va_mapping(0xffff_8000_0000_0000, pte_rw(data.mfn, 0), UVMF_INVLPG) };
    check!(
        log,
        "update_va_mapping in the hypervisor's range",
        "-22 (EINVAL)",
        r == Err(Errno::EINVAL),
        "{}",
        ret_of(r)
    );
    let r = set_entry(mm::va_to_mfn(si.pt_base), 256, pte_rw(l1.mfn, 0));
    check!(
        log,
        "mmu_update of L4 slot 256 (hypervisor's range)",
        "-22 (EINVAL)",
        r == Err(Errno::EINVAL),
        "{}",
        ret_of(r)
    );

    // A table whose entries are invalid: an L2 with a superpage (PSE) entry, an L1 mapping
    // a page table writable.
    // SAFETY: `bad` is a fresh writable pool page.
    unsafe { bad.entries()[0] = pte_rw(data.mfn, pte::PAT_OR_PSE) };
    let _ = mm::make_readonly(bad.va);
    let r = pin(MMUEXT_PIN_L2_TABLE, bad.mfn);
    check!(log, "pin an L2 with a PSE entry", "-22 (EINVAL)", r == Err(Errno::EINVAL), "{}", ret_of(r));
    let _ = mm::make_writable(bad.va);
    // SAFETY: as above (writable again).
    unsafe { bad.entries()[0] = pte_rw(l1.mfn, 0) };
    let _ = mm::make_readonly(bad.va);
    let r = pin(MMUEXT_PIN_L1_TABLE, bad.mfn);
    check!(log, "pin an L1 that maps a page table writable", "-16 (EBUSY)", r == Err(Errno::EBUSY), "{}", ret_of(r));
    let _ = mm::make_writable(bad.va);

    // Unpinning: in use (hooked into the L2) it still succeeds, the use keeps the type.
    let r1 = pin(MMUEXT_UNPIN_TABLE, l1.mfn);
    let w = mm::make_writable(l1.va);
    let r2 = pin(MMUEXT_UNPIN_TABLE, l1.mfn);
    check!(
        log,
        "unpin the L1 still hooked into the L2, map it writable, unpin again",
        "0 (the L2 entry keeps it an L1), -16 (EBUSY), -22 (EINVAL: not pinned)",
        r1 == Ok(0) && w == Err(Errno::EBUSY) && r2 == Err(Errno::EINVAL),
        "{}, {}, {}",
        ret_of(r1),
        ret_of(w),
        ret_of(r2)
    );
    let un = set_entry(l2.mfn, SLOT, 0);
    let w = mm::make_writable(l1.va);
    check!(
        log,
        "unhook the L1, then map it writable",
        "0, 0",
        un == Ok(0) && w == Ok(0),
        "{}, {}",
        ret_of(un),
        ret_of(w)
    );

    // L4 pin and new_user_baseptr.
    let _ = mm::make_readonly(l4.va);
    let p = pin(MMUEXT_PIN_L4_TABLE, l4.mfn);
    // SAFETY: an empty validated L4 as user root; we never enter user mode in this role.
    let u = unsafe { hyp::mmuext1(MMUEXT_NEW_USER_BASEPTR, l4.mfn) };
    // SAFETY: a writable data page cannot be an L4: refused.
    let bad_u = unsafe { hyp::mmuext1(MMUEXT_NEW_USER_BASEPTR, data.mfn) };
    // SAFETY: clears the user root.
    let clear = unsafe { hyp::mmuext1(MMUEXT_NEW_USER_BASEPTR, 0) };
    let unpin = pin(MMUEXT_UNPIN_TABLE, l4.mfn);
    check!(
        log,
        "pin an L4, new_user_baseptr it, new_user_baseptr a writable page, clear, unpin",
        "0, 0, -22 (EINVAL), 0, 0",
        p == Ok(0) && u == Ok(0) && bad_u == Err(Errno::EINVAL) && clear == Ok(0) && unpin == Ok(0),
        "{}, {}, {}, {}, {}",
        ret_of(p),
        ret_of(u),
        ret_of(bad_u),
        ret_of(clear),
        ret_of(unpin)
    );

    // Freeing frames: one still mapped (our kernel's own mapping of `bad`), and one we
    // unmapped first, which then no longer belongs to us.
    let mut f = [bad.mfn];
    let r = hyp::memory_reservation(memory::XENMEM_DECREASE_RESERVATION, &mut f);
    // SAFETY: `bad` is still mapped: reading it is fine whatever Xen did with the frame.
    let readable = unsafe { (bad.va as *const u64).read_volatile() } == pte_rw(l1.mfn, 0);
    check!(
        log,
        "decrease_reservation of a frame still mapped",
        "1 (Xen frees it once the last mapping goes: the mapping keeps it alive)",
        r == Ok(1) && readable,
        "{}, still readable {readable}",
        ret_of(r)
    );
    // SAFETY: unmaps the spare pool page `l4` from our own mapping (never used again).
    let un = unsafe { hyp::update_va_mapping(l4.va, 0, UVMF_INVLPG) };
    let mut f = [l4.mfn];
    let r = hyp::memory_reservation(memory::XENMEM_DECREASE_RESERVATION, &mut f);
    // SAFETY: refused: the frame is no longer ours.
    let m = unsafe { hyp::update_va_mapping(WINDOW + 0x2000, pte_rw(l4.mfn, 0), UVMF_INVLPG) };
    check!(
        log,
        "unmap a frame, free it (decrease_reservation), map it again",
        "0, 1 extent, -22 (EINVAL: not our frame)",
        un == Ok(0) && r == Ok(1) && m == Err(Errno::EINVAL),
        "{}, {}, {}",
        ret_of(un),
        ret_of(r),
        ret_of(m)
    );
    // Taking a page back (a balloon driver's populate_physmap): one new frame, its MFN in the
    // list, the M2P naming the gpfn we asked for, mappable writable.
    let mut list = [0x1_2345u64];
    let r = hyp::memory_reservation(memory::XENMEM_POPULATE_PHYSMAP, &mut list);
    let given = list[0];
    let m2p_ok = r == Ok(1) && mm::m2p(given) == Some(0x1_2345);
    let slot = alloc_frame().expect("pool page");
    // SAFETY: maps the frame just given to us in place of a pool page of ours, then puts
    // the pool page back.
    let m = unsafe { hyp::update_va_mapping(slot.va, pte_rw(given, 0), UVMF_INVLPG) };
    // SAFETY: as above.
    let _ = unsafe { hyp::update_va_mapping(slot.va, pte_rw(slot.mfn, 0), UVMF_INVLPG) };
    check!(
        log,
        "populate_physmap one page back, map it",
        "1, M2P = the gpfn asked for, 0",
        m2p_ok && m == Ok(0),
        "{}, M2P ok {m2p_ok}, {}",
        ret_of(r),
        ret_of(m)
    );
    big_tree(&mut log, data.mfn);
    super::summary("mmu", &log)
}

/// L1s in [`big_tree`]'s table: 24 x 512 entries is more page-table work than one entry of
/// our hypervisor does (8 192 entries), so the pin and the unpin go in several.
const BIG_TREE_L1S: usize = 24;

/// Pins an L2 over [`BIG_TREE_L1S`] L1s that each map `data` 512 times, checks that an L1 is
/// then a page table (a writable mapping of it is refused), unpins it and checks that every
/// L1 can be mapped writable again: the release was complete when the unpin returned.
fn big_tree(log: &mut CheckLog, data: u64) {
    let l2 = alloc_frame();
    let mut l1s = [Frame { va: 0, mfn: 0 }; BIG_TREE_L1S];
    let allocated = l1s.iter_mut().all(|slot| alloc_frame().map(|f| *slot = f).is_some());
    let Some(l2) = l2.filter(|_| allocated) else {
        println!("mmu: out of pool pages for the big tree");
        log.failed += 1;
        return;
    };
    for (i, l1) in l1s.iter().enumerate() {
        // SAFETY: fresh writable pool pages of ours.
        unsafe {
            l1.entries().fill(mm::pte_ro(data, 0));
            l2.entries()[i] = pte_rw(l1.mfn, 0);
        }
    }
    let read_only = l1s.iter().chain([&l2]).all(|f| mm::make_readonly(f.va).is_ok());
    let p = pin(MMUEXT_PIN_L2_TABLE, l2.mfn);
    let busy = mm::make_writable(l1s[BIG_TREE_L1S - 1].va);
    let u = pin(MMUEXT_UNPIN_TABLE, l2.mfn);
    let writable = l1s.iter().chain([&l2]).filter(|f| mm::make_writable(f.va).is_ok()).count();
    check!(
        log,
        "pin an L2 over 24 L1s mapping a page 512 times each, map its last L1 writable, unpin, map all writable",
        "0, -16 (EBUSY), 0, 25 writable",
        read_only && p == Ok(0) && busy == Err(Errno::EBUSY) && u == Ok(0) && writable == BIG_TREE_L1S + 1,
        "{}, {}, {}, {writable} writable",
        ret_of(p),
        ret_of(busy),
        ret_of(u)
    );
}
