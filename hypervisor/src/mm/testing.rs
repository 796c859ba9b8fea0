//! Test support shared by the MMU's unit tests and the hypercall tests: machine memory as a
//! hash map, a ready-made MMU state, and an audit that recounts every reference from scratch.

use super::frame_table::{FrameTable, Owner, PageType};
use super::pte_rules::{self, HYPERVISOR_SLOTS};
use super::{DomainRights, MachineMemory, Mmu, MmuAccess, VcpuPaging};
use hypercall_abi::mm::pte;
use std::collections::HashMap;
use std::vec::Vec;

/// Page-table memory: absent entries read as 0.
#[derive(Default, Clone)]
pub struct HashMapMemory(pub HashMap<(u64, usize), u64>, pub Option<RacingWrite>);

/// A write a guest on another CPU makes just before the hypervisor's next compare-and-exchange
/// of that entry (set with [`HashMapMemory::race`]): what lands between a check and its
/// update on a multiprocessor.
#[derive(Clone, Copy)]
pub struct RacingWrite {
    /// `(frame, index)` of the word.
    pub at: (u64, usize),
    /// What the guest writes there.
    pub value: u64,
}

impl HashMapMemory {
    /// Arms a [`RacingWrite`].
    pub fn race(&mut self, mfn: u64, index: usize, value: u64) {
        self.1 = Some(RacingWrite { at: (mfn, index), value });
    }
}

impl MachineMemory for HashMapMemory {
    fn compare_exchange_entry(&mut self, mfn: u64, index: usize, current: u64, new: u64) -> bool {
        if let Some(w) = self.1.take_if(|w| w.at == (mfn, index)) {
            self.write_entry(mfn, index, w.value);
        }
        if self.read_entry(mfn, index) != current {
            return false;
        }
        self.write_entry(mfn, index, new);
        true
    }
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) {
        assert!(index < 512, "entry index {index} out of a page");
        if value == 0 {
            self.0.remove(&(mfn, index));
        } else {
            self.0.insert((mfn, index), value);
        }
    }
    fn read_entry(&self, mfn: u64, index: usize) -> u64 {
        assert!(index < 512, "entry index {index} out of a page");
        self.0.get(&(mfn, index)).copied().unwrap_or(0)
    }
}

/// The domain under test.
pub const DOM: u16 = 1;
/// Another domain.
pub const OTHER: u16 = 2;
/// Frames of `DOM`.
pub const DOM_FRAMES: core::ops::Range<u64> = 0x100..0x600;
/// Frames of `OTHER`.
pub const OTHER_FRAMES: core::ops::Range<u64> = 0x600..0x620;
/// Device frames.
pub const IO_FRAMES: core::ops::Range<u64> = 0x800..0x810;
/// A hypervisor page shared with `DOM` (its shared_info).
pub const SHARED_INFO: u64 = 0x20;
/// Frames covered by the table.
pub const MAX_MFN: u64 = 0x1000;
/// The hypervisor's L4 template: recognisable values.
pub const SLOTS: [u64; 16] = {
    let mut s = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        s[i] = ((0x30 + i as u64) << 12) | 0x63;
        i += 1;
    }
    s
};
/// Flags of an ordinary RW user mapping / upper-level entry.
pub const RW: u64 = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED;
/// Flags of a read-only mapping.
pub const RO: u64 = pte::PRESENT | pte::USER | pte::ACCESSED;

/// A present entry to `mfn` with `flags`.
pub const fn e(mfn: u64, flags: u64) -> u64 {
    (mfn << 12) | flags
}

/// Everything an MMU needs, owned.
pub struct MockMmu {
    /// Frame table.
    pub frames: FrameTable,
    /// Page-table memory.
    pub mem: HashMapMemory,
    /// The vCPU's roots and effects.
    pub paging: VcpuPaging,
    /// Caller.
    pub rights: DomainRights,
}

impl MockMmu {
    /// `DOM` owns `DOM_FRAMES`, `OTHER` owns `OTHER_FRAMES`, `IO_FRAMES` are device memory,
    /// `SHARED_INFO` is shared with `DOM`; nothing is typed yet.
    pub fn new() -> Self {
        let mut frames = FrameTable::new(MAX_MFN);
        for m in DOM_FRAMES {
            frames.assign_frame(m, DOM).unwrap();
        }
        for m in OTHER_FRAMES {
            frames.assign_frame(m, OTHER).unwrap();
        }
        frames.mark_io(IO_FRAMES.start, IO_FRAMES.end - IO_FRAMES.start).unwrap();
        frames.share_with_guest(SHARED_INFO, DOM).unwrap();
        Self {
            frames,
            mem: HashMapMemory::default(),
            paging: VcpuPaging::default(),
            rights: DomainRights { id: DOM, io_capable: false },
        }
    }

    /// The MMU over concrete memory.
    pub fn mmu(&mut self) -> Mmu<'_, HashMapMemory> {
        Mmu::new(&mut self.frames, &mut self.mem, &SLOTS, self.rights, &mut self.paging)
    }

    /// The MMU as hypercall handlers get it.
    pub fn access(&mut self) -> MmuAccess<'_> {
        Mmu::new(&mut self.frames, &mut self.mem, &SLOTS, self.rights, &mut self.paging)
    }

    /// Writes an entry directly, as the guest does to a page that is still writable.
    pub fn poke(&mut self, mfn: u64, index: usize, value: u64) {
        self.mem.write_entry(mfn, index, value);
    }

    /// Type and reference counts of `mfn`.
    pub fn counts(&self, mfn: u64) -> (PageType, u32, u32) {
        let f = self.frames.get(mfn).unwrap();
        (f.page_type, f.type_count, f.ref_count)
    }

    /// Recounts every reference from the tables, pins, roots and shared pages, and every
    /// domain's page count, and checks the safety invariants (freed frames pending only while
    /// referenced); panics with a description on the first violation.
    pub fn audit(&self) {
        let n = MAX_MFN as usize;
        let (mut refs, mut types) = (vec![0u32; n], vec![0u32; n]);
        for (mfn, f) in self.frames.iter() {
            let m = mfn as usize;
            if f.pinned || f.shared_by_hypervisor {
                refs[m] += 1;
                types[m] += 1;
            }
            if f.type_count > 0 && f.page_type.is_table() {
                assert!(f.validated, "live table {mfn:#x} not validated");
            }
            if let Owner::Domain(d) = f.owner {
                assert!(self.frames.span_of(d).contains(&mfn), "frame {mfn:#x} of d{d} outside its span");
            }
            if f.partial > 0 {
                assert!(!f.validated && f.type_count == 0, "partial table {mfn:#x} validated or typed");
            }
            recount_entries(&self.frames, &self.mem, mfn, f, |_| self.rights.io_capable, false, &mut refs, &mut types);
        }
        // The release stack: each frame once, the domain's own, flagged, with entries held
        // or about to be found done; and every flagged frame on it.
        let on_stack: std::collections::HashSet<u64> = self.paging.releasing.iter().copied().collect();
        assert_eq!(on_stack.len(), self.paging.releasing.len(), "a frame twice on the release stack");
        for (mfn, f) in self.frames.iter() {
            assert_eq!(f.on_release_stack, on_stack.contains(&mfn), "{mfn:#x}: release-stack flag");
            if f.on_release_stack {
                assert_eq!(f.owner, Owner::Domain(DOM), "{mfn:#x} of another domain on the stack");
            }
        }
        let roots = [self.paging.kernel_l4, self.paging.user_l4, self.paging.effects.old_root];
        for root in roots.into_iter().flatten() {
            refs[root as usize] += 1;
            types[root as usize] += 1;
            assert_eq!(self.frames.get(root).unwrap().page_type, PageType::L4, "root {root:#x} not an L4");
        }
        let mut owned: HashMap<u16, u64> = HashMap::new();
        for (mfn, f) in self.frames.iter() {
            match f.owner {
                Owner::Domain(d) if !f.shared_by_hypervisor => *owned.entry(d).or_default() += 1,
                Owner::Domain(_) => {}
                _ => assert_eq!((f.ref_count, f.type_count), (0, 0), "non-domain frame {mfn:#x} referenced"),
            }
            if f.freed_by_owner {
                assert!(matches!(f.owner, Owner::Domain(_)), "freed frame {mfn:#x} not pending");
                assert!(f.ref_count > 0 || f.partial > 0, "freed frame {mfn:#x} unreferenced but not released");
            }
        }
        assert_counts(&self.frames, &[DOM, OTHER], &owned, &refs, &types);
    }
}

/// The end of every audit: each domain of `ids` has in the frame table the pages `owned`
/// counted (frames it owns, those shared by the hypervisor aside), and every frame's
/// reference and type counts equal the recount in `refs` and `types`.
pub fn assert_counts(frames: &FrameTable, ids: &[u16], owned: &HashMap<u16, u64>, refs: &[u32], types: &[u32]) {
    for &d in ids {
        assert_eq!(frames.pages_of(d), owned.get(&d).copied().unwrap_or(0), "pages_of(d{d})");
    }
    let mismatches: Vec<_> = frames
        .iter()
        .filter(|(m, f)| f.ref_count != refs[*m as usize] || f.type_count != types[*m as usize])
        .map(|(m, f)| (m, f.ref_count, refs[m as usize], f.type_count, types[m as usize]))
        .collect();
    assert!(mismatches.is_empty(), "(mfn, refs, recounted, types, recounted): {mismatches:x?}");
}

/// Adds to `refs` and `types` the references the entries of table `mfn` (record `f`) hold:
/// all 512 if it is a live validated table, the first `partial` if it is part way through
/// a validation or release, none otherwise. Checks each entry as the rules require: a target
/// owned by the table's owner (or, in an L1 when `foreign_l1`, by another domain: a grant
/// mapping), never a hypervisor frame; an I/O frame only from an L1 of an owner that
/// `io_capable` allows; upper entries naming a table of the level below; RW L1 entries a
/// Writable frame that is not partial; the user bit set; a validated L4's hypervisor slots.
#[allow(clippy::too_many_arguments)]
pub fn recount_entries(
    frames: &FrameTable,
    mem: &HashMapMemory,
    mfn: u64,
    f: &super::FrameInfo,
    io_capable: impl Fn(u16) -> bool,
    foreign_l1: bool,
    refs: &mut [u32],
    types: &mut [u32],
) {
    let held = if f.validated && f.type_count > 0 { 512 } else { usize::from(f.partial) };
    let Some(level) = f.page_type.level().filter(|_| held > 0) else {
        return;
    };
    let Owner::Domain(owner) = f.owner else { panic!("table {mfn:#x} not owned by a domain") };
    for i in 0..held {
        let entry = mem.read_entry(mfn, i);
        if level == 4 && HYPERVISOR_SLOTS.contains(&i) {
            // Written when the validation finishes (a partial L4 is never loaded).
            if f.validated {
                assert_eq!(entry, SLOTS[i - 256], "L4 {mfn:#x} slot {i} is not the template");
            }
            continue;
        }
        if !pte_rules::is_present(entry) {
            continue;
        }
        let target = pte_rules::entry_mfn(entry);
        let t = frames.get(target);
        match t.map(|t| t.owner) {
            Some(Owner::Domain(d)) => {
                assert!(d == owner || (foreign_l1 && level == 1), "{mfn:#x}[{i}] maps a foreign frame")
            }
            Some(Owner::Hypervisor) => panic!("{mfn:#x}[{i}] maps hypervisor frame {target:#x}"),
            _ => {
                assert_eq!(level, 1, "upper entry {mfn:#x}[{i}] to a non-domain frame");
                assert!(io_capable(owner), "I/O mapping without rights");
                continue;
            }
        }
        let t = t.unwrap();
        refs[target as usize] += 1;
        if level > 1 {
            types[target as usize] += 1;
            assert_eq!(t.page_type, PageType::table(level - 1), "{mfn:#x}[{i}] wrong target type");
        } else if pte_rules::is_writable(entry) {
            types[target as usize] += 1;
            assert_eq!(t.page_type, PageType::Writable, "RW mapping of a non-writable frame {target:#x}: {t:?}");
            assert_eq!(t.partial, 0, "RW mapping of partial {target:#x}");
        }
        assert_eq!(entry & pte::USER, pte::USER, "{mfn:#x}[{i}] not adjusted");
    }
}
