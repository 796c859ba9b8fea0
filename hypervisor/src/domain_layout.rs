//! The initial virtual layout of a PV domain and its bootstrap page tables, computed as Xen's
//! PV builder does (digest §1.2-1.3): kernel, optional module, P2M list, start_info, (domU:
//! xenstore and console pages), page tables, boot stack, then padding up to a 4 MiB boundary.
//!
//! Everything here is arithmetic over guest addresses and a memory trait, so it runs on the
//! host in tests.

use alloc::vec::Vec;

/// Page size.
pub const PAGE: u64 = 4096;
const FOUR_MIB: u64 = 4 << 20;
const MIN_PADDING: u64 = 512 << 10;

/// PTE bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User-accessible (PV kernels run in ring 3).
    pub const USER: u64 = 1 << 2;
    /// Accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty.
    pub const DIRTY: u64 = 1 << 6;
    /// Large page (L2/L3).
    pub const PSE: u64 = 1 << 7;
    /// Physical-address bits of an entry.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// What the layout depends on.
#[derive(Clone, Copy, Debug)]
pub struct LayoutInput {
    /// `VIRT_BASE` of the image.
    pub virt_base: u64,
    /// First virtual byte of the kernel.
    pub kernel_start: u64,
    /// One past the kernel's last byte.
    pub kernel_end: u64,
    /// Bytes of the module placed after the kernel (0 for none).
    pub module_len: u64,
    /// Pages given to the domain.
    pub nr_pages: u64,
    /// dom0 gets no xenstore/console pages.
    pub is_dom0: bool,
}

/// Where everything goes. All addresses are guest virtual; `pfn(va) = (va - v_start) / PAGE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the bootstrap region (VIRT_BASE).
    pub v_start: u64,
    /// Module start, if any.
    pub module: Option<u64>,
    /// P2M list start.
    pub p2m: u64,
    /// start_info page.
    pub start_info: u64,
    /// xenstore ring page (domU).
    pub xenstore: Option<u64>,
    /// console ring page (domU).
    pub console: Option<u64>,
    /// First page-table page (the L4).
    pub pt_base: u64,
    /// Number of page-table pages.
    pub nr_pt_frames: u64,
    /// Boot stack page; `rsp` starts at its end.
    pub stack: u64,
    /// End of the mapped region.
    pub v_end: u64,
}

/// Why a layout is impossible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The bootstrap region needs more pages than the domain has.
    TooLarge {
        /// Pages needed.
        needed: u64,
        /// Pages the domain has.
        available: u64,
    },
    /// An address computation overflowed.
    Overflow,
    /// The bootstrap region (kernel, start info, page tables, stack and padding) would run
    /// into the hypervisor's range or out of canonical space.
    OutsideGuestRange {
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge { needed, available } => {
                write!(f, "image needs {needed} pages of bootstrap region but the domain has only {available}")
            }
            Self::Overflow => write!(f, "layout overflows the address space"),
            Self::OutsideGuestRange { start, end } => write!(
                f,
                "bootstrap region {start:#x}-{end:#x} overlaps the hypervisor's reserved range or is not canonical"
            ),
        }
    }
}

fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_next_multiple_of(to)
}

/// Page-table pages needed to map `[start, end)` with 4 KiB pages: one L4 plus the L3s, L2s
/// and L1s covering the range.
pub fn count_tables(start: u64, end: u64) -> u64 {
    if end <= start {
        return 1;
    }
    let span = |shift: u32| ((end - 1) >> shift) - (start >> shift) + 1;
    1 + span(39) + span(30) + span(21)
}

impl Layout {
    /// Computes the layout.
    pub fn compute(input: &LayoutInput) -> Result<Self, LayoutError> {
        let o = LayoutError::Overflow;
        let v_start = input.virt_base;
        let mut cursor = round_up(input.kernel_end, PAGE).ok_or(o)?;
        let module = (input.module_len > 0).then_some(cursor);
        cursor = cursor.checked_add(round_up(input.module_len, PAGE).ok_or(o)?).ok_or(o)?;
        let p2m = cursor;
        let p2m_bytes = input.nr_pages.checked_mul(8).ok_or(o)?;
        cursor = cursor.checked_add(round_up(p2m_bytes, PAGE).ok_or(o)?).ok_or(o)?;
        let start_info = cursor;
        cursor = cursor.checked_add(PAGE).ok_or(o)?;
        let (xenstore, console) = if input.is_dom0 {
            (None, None)
        } else {
            cursor = cursor.checked_add(2 * PAGE).ok_or(o)?;
            (Some(cursor - 2 * PAGE), Some(cursor - PAGE))
        };
        let pt_base = cursor;
        let mut nr_pt_frames = 1;
        loop {
            let stack = pt_base.checked_add(nr_pt_frames * PAGE).ok_or(o)?;
            let stack_end = stack.checked_add(PAGE).ok_or(o)?;
            let mut v_end = round_up(stack_end, FOUR_MIB).ok_or(o)?;
            if v_end - stack_end < MIN_PADDING {
                v_end = v_end.checked_add(FOUR_MIB).ok_or(o)?;
            }
            let needed = count_tables(v_start, v_end);
            if needed <= nr_pt_frames {
                if !crate::guest_access::guest_range_ok(v_start, (v_end - v_start) as usize) {
                    return Err(LayoutError::OutsideGuestRange { start: v_start, end: v_end });
                }
                let pages = (v_end - v_start) / PAGE;
                if pages > input.nr_pages {
                    return Err(LayoutError::TooLarge { needed: pages, available: input.nr_pages });
                }
                return Ok(Layout {
                    v_start,
                    module,
                    p2m,
                    start_info,
                    xenstore,
                    console,
                    pt_base,
                    nr_pt_frames,
                    stack,
                    v_end,
                });
            }
            nr_pt_frames = needed;
        }
    }

    /// Pseudo-physical frame of a bootstrap address.
    pub fn pfn(&self, va: u64) -> u64 {
        (va - self.v_start) / PAGE
    }

    /// Whether `va` is one of the page-table pages (mapped read-only).
    pub fn is_page_table(&self, va: u64) -> bool {
        (self.pt_base..self.pt_base + self.nr_pt_frames * PAGE).contains(&va)
    }
}

/// Machine memory as the builder sees it.
pub trait MachineMemory {
    /// Writes entry `index` (0..512) of the page-table frame `mfn`.
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64);
    /// Reads entry `index` of frame `mfn`.
    fn read_entry(&self, mfn: u64, index: usize) -> u64;

    /// Replaces entry `index` of frame `mfn` with `new` if it still holds `current`, and says
    /// whether it did. Where a guest on another CPU may write the word meanwhile (a grant
    /// entry), the implementation must make this one atomic compare-and-exchange; the
    /// default, for memory nobody else writes, reads and writes.
    fn compare_exchange_entry(&mut self, mfn: u64, index: usize, current: u64, new: u64) -> bool {
        if self.read_entry(mfn, index) != current {
            return false;
        }
        self.write_entry(mfn, index, new);
        true
    }

    /// Clears `bits` of entry `index` of frame `mfn`, keeping whatever else it holds (atomic
    /// where guests on other CPUs may write the word, as for
    /// [`Self::compare_exchange_entry`]).
    fn clear_entry_bits(&mut self, mfn: u64, index: usize, bits: u64) {
        let value = self.read_entry(mfn, index);
        self.write_entry(mfn, index, value & !bits);
    }

    /// Reads `out.len()` bytes at byte `offset` of frame `mfn` (within the frame). The default
    /// works a word at a time; an implementation with the frame mapped should copy directly.
    fn read_frame_bytes(&self, mfn: u64, offset: usize, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let at = offset + i;
            let (word, lane) = (at / 8, at % 8);
            let n = (8 - lane).min(out.len() - i);
            out[i..i + n].copy_from_slice(&self.read_entry(mfn, word).to_le_bytes()[lane..lane + n]);
            i += n;
        }
    }

    /// Copies `len` bytes from `src_offset` of frame `src` to `dst_offset` of frame `dst`
    /// (each range within its frame; the ranges may overlap, as with `memmove`).
    fn copy_frame_bytes(&mut self, src: u64, src_offset: usize, dst: u64, dst_offset: usize, len: usize) {
        let mut buf = [0u8; 4096];
        let len = len.min(buf.len());
        self.read_frame_bytes(src, src_offset, &mut buf[..len]);
        self.write_frame_bytes(dst, dst_offset, &buf[..len]);
    }

    /// Writes `bytes` at byte `offset` of frame `mfn` (within the frame): whole words where it
    /// can, read-modify-write at the edges. Implementations may copy directly.
    fn write_frame_bytes(&mut self, mfn: u64, offset: usize, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let at = offset + i;
            let (word, lane) = (at / 8, at % 8);
            let n = (8 - lane).min(bytes.len() - i);
            let mut w = if n == 8 { [0u8; 8] } else { self.read_entry(mfn, word).to_le_bytes() };
            w[lane..lane + n].copy_from_slice(&bytes[i..i + n]);
            self.write_entry(mfn, word, u64::from_le_bytes(w));
            i += n;
        }
    }
}

/// A domain's machine frames in pseudo-physical order while it is built, kept in machine
/// frames of their own ("holders", 512 entries each) rather than on the hypervisor's heap:
/// 8 bytes a page is 20 MiB for a 10 GiB domain, more than the whole heap. Only the list of
/// holders (8 bytes per 512 pages) is on the heap.
#[derive(Debug, Default)]
pub struct PageList {
    holders: Vec<u64>,
    len: u64,
}

/// Entries of a page-list holder frame.
const ENTRIES_PER_HOLDER: u64 = 512;

impl PageList {
    /// An empty list stored in `holders` (frames the caller owns; their old content is
    /// irrelevant), with room for `holders.len() * 512` entries.
    pub fn new(holders: Vec<u64>) -> Self {
        Self { holders, len: 0 }
    }

    /// Holder frames needed for `entries` entries.
    pub const fn holders_for(entries: u64) -> u64 {
        entries.div_ceil(ENTRIES_PER_HOLDER)
    }

    /// Appends `mfn`; false (nothing changed) if the holders are full.
    pub fn push(&mut self, mem: &mut impl MachineMemory, mfn: u64) -> bool {
        let Some(&holder) = self.holders.get((self.len / ENTRIES_PER_HOLDER) as usize) else { return false };
        mem.write_entry(holder, (self.len % ENTRIES_PER_HOLDER) as usize, mfn);
        self.len += 1;
        true
    }

    /// Entry `i` (`i < len`).
    pub fn get(&self, mem: &impl MachineMemory, i: u64) -> u64 {
        debug_assert!(i < self.len);
        mem.read_entry(self.holders[(i / ENTRIES_PER_HOLDER) as usize], (i % ENTRIES_PER_HOLDER) as usize)
    }

    /// Removes and returns the last entry.
    pub fn pop(&mut self, mem: &impl MachineMemory) -> Option<u64> {
        let last = self.len.checked_sub(1)?;
        let mfn = self.get(mem, last);
        self.len = last;
        Some(mfn)
    }

    /// How many entries it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frames holding the list, in order (entry `i` is word `i % 512` of holder `i / 512`),
    /// to give back once the list is no longer needed.
    pub fn holders(&self) -> &[u64] {
        &self.holders
    }
}

/// Builds the bootstrap page tables for `layout` in the frames that `p2m` gives, mapping every
/// page of `[v_start, v_end)` and the tables themselves read-only; `hypervisor_slots` (L4
/// entries 256..272) are installed as they are. The tables' frames must be zeroed. Returns
/// the L4's machine frame. Dom0's L1 entries carry `USER` as Xen's do.
pub fn build_page_tables(
    layout: &Layout,
    p2m: &PageList,
    hypervisor_slots: &[u64; 16],
    mem: &mut impl MachineMemory,
) -> u64 {
    let first_table = layout.pfn(layout.pt_base);
    let l4 = p2m.get(mem, first_table);
    let mut next_table = 1;
    let upper_flags = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED | pte::DIRTY;
    let mut va = layout.v_start;
    while va < layout.v_end {
        // Walk down from the L4, allocating the next table page in order when an entry is empty.
        let mut table = l4;
        for shift in [39u32, 30, 21] {
            let index = ((va >> shift) & 511) as usize;
            let e = mem.read_entry(table, index);
            table = if e & pte::PRESENT != 0 {
                (e & pte::ADDR_MASK) >> 12
            } else {
                let t = p2m.get(mem, first_table + next_table);
                next_table += 1;
                mem.write_entry(table, index, (t << 12) | upper_flags);
                t
            };
        }
        let mfn = p2m.get(mem, layout.pfn(va));
        let rw = if layout.is_page_table(va) { 0 } else { pte::RW };
        let flags = pte::PRESENT | rw | pte::USER | pte::ACCESSED;
        mem.write_entry(table, ((va >> 12) & 511) as usize, (mfn << 12) | flags);
        va += PAGE;
    }
    debug_assert!(next_table <= layout.nr_pt_frames);
    for (i, &e) in hypervisor_slots.iter().enumerate() {
        mem.write_entry(l4, 256 + i, e);
    }
    l4
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reproduces_xens_worked_example() {
        // Digest §1.2: a 0x100000-0x111000 kernel as dom0 with 120444 pages.
        let l = Layout::compute(&LayoutInput {
            virt_base: 0,
            kernel_start: 0x100000,
            kernel_end: 0x111000,
            module_len: 0,
            nr_pages: 0x1d67c,
            is_dom0: true,
        })
        .unwrap();
        assert_eq!(l.p2m, 0x111000);
        assert_eq!(l.start_info, 0x1fd000);
        assert_eq!((l.pt_base, l.nr_pt_frames), (0x1fe000, 5));
        assert_eq!(l.stack, 0x203000);
        assert_eq!(l.v_end, 0x400000);
    }

    #[test]
    fn domu_gets_store_and_console_pages_and_padding() {
        let l = Layout::compute(&LayoutInput {
            virt_base: 0,
            kernel_start: 0x100000,
            kernel_end: 0x111000,
            module_len: 0,
            nr_pages: 8192,
            is_dom0: false,
        })
        .unwrap();
        assert_eq!(l.start_info, 0x111000 + 0x10000);
        assert_eq!(l.xenstore, Some(l.start_info + PAGE));
        assert_eq!(l.console, Some(l.start_info + 2 * PAGE));
        assert_eq!(l.pt_base, l.start_info + 3 * PAGE);
        assert!(l.v_end - (l.stack + PAGE) >= MIN_PADDING);
        assert_eq!(l.v_end % FOUR_MIB, 0);
    }

    #[test]
    fn padding_rule_adds_four_mib_when_short() {
        // Kernel ending just below a 4 MiB boundary leaves under 512 KiB: another 4 MiB is added.
        let l = Layout::compute(&LayoutInput {
            virt_base: 0,
            kernel_start: 0x100000,
            kernel_end: 0x3c0000,
            module_len: 0,
            nr_pages: 4096,
            is_dom0: true,
        })
        .unwrap();
        assert_eq!(l.v_end, 0x800000);
    }

    #[test]
    fn a_region_that_would_leave_the_guest_range_or_wrap_is_refused() {
        let input = |virt_base, kernel_end| LayoutInput {
            virt_base,
            kernel_start: virt_base,
            kernel_end,
            module_len: 0,
            nr_pages: 8192,
            is_dom0: false,
        };
        // Start info, page tables and stack would run past the lower half.
        let top = (1u64 << 47) - 0x1000;
        let e = Layout::compute(&input(top - 0x100_0000, top)).unwrap_err();
        assert!(matches!(e, LayoutError::OutsideGuestRange { .. }), "{e:?}");
        // Near the top of the address space every step must be checked, not wrap.
        let e = Layout::compute(&input(0, u64::MAX - 5 * PAGE)).unwrap_err();
        assert_eq!(e, LayoutError::Overflow);
    }

    #[test]
    fn refuses_images_larger_than_the_domain() {
        let e = Layout::compute(&LayoutInput {
            virt_base: 0,
            kernel_start: 0x100000,
            kernel_end: 0x2000000,
            module_len: 0,
            nr_pages: 1024,
            is_dom0: true,
        })
        .unwrap_err();
        assert!(matches!(e, LayoutError::TooLarge { available: 1024, .. }));
    }

    #[test]
    fn table_count_for_a_high_kernel_crossing_boundaries() {
        // Linux-style base: one L4, one L3, one L2, and an L1 per 2 MiB.
        assert_eq!(count_tables(0xffff_ffff_8000_0000, 0xffff_ffff_8040_0000), 1 + 1 + 1 + 2);
        // Crossing a 1 GiB boundary needs a second L2.
        assert_eq!(count_tables(0x3fe0_0000, 0x4020_0000), 1 + 1 + 2 + 2);
    }

    struct Fake(HashMap<(u64, usize), u64>);
    impl MachineMemory for Fake {
        fn write_entry(&mut self, mfn: u64, index: usize, value: u64) {
            self.0.insert((mfn, index), value);
        }
        fn read_entry(&self, mfn: u64, index: usize) -> u64 {
            *self.0.get(&(mfn, index)).unwrap_or(&0)
        }
    }

    fn walk(mem: &Fake, l4: u64, va: u64) -> Option<u64> {
        let mut t = l4;
        for shift in [39u32, 30, 21, 12] {
            let e = mem.read_entry(t, ((va >> shift) & 511) as usize);
            if e & pte::PRESENT == 0 {
                return None;
            }
            if shift == 12 {
                return Some(e);
            }
            t = (e & pte::ADDR_MASK) >> 12;
        }
        None
    }

    #[test]
    fn page_tables_map_the_region_and_protect_themselves() {
        let input = LayoutInput {
            virt_base: 0,
            kernel_start: 0x100000,
            kernel_end: 0x120000,
            module_len: 0,
            nr_pages: 4096,
            is_dom0: true,
        };
        let l = Layout::compute(&input).unwrap();
        // A scrambled P2M: machine frames are not contiguous.
        let p2m: Vec<u64> = (0..4096u64).map(|p| 0x10000 + (p * 7919) % 4096).collect();
        let mut mem = Fake(HashMap::new());
        // The list in holder frames of its own, as the builder keeps it.
        let mut list = PageList::new((0x9000..0x9000 + PageList::holders_for(4096)).collect());
        assert!(p2m.iter().all(|&mfn| list.push(&mut mem, mfn)));
        assert!(!list.push(&mut mem, 1), "full");
        assert_eq!(list.len(), 4096);
        assert_eq!(list.holders(), [0x9000, 0x9001, 0x9002, 0x9003, 0x9004, 0x9005, 0x9006, 0x9007]);
        assert_eq!(mem.read_entry(0x9001, 3), p2m[512 + 3], "entry i is word i % 512 of holder i / 512");
        let slots = [0xabc0_0003u64; 16];
        let l4 = build_page_tables(&l, &list, &slots, &mut mem);
        assert_eq!(l4, p2m[l.pfn(l.pt_base) as usize]);
        let mut va = l.v_start;
        while va < l.v_end {
            let e = walk(&mem, l4, va).unwrap_or_else(|| panic!("{va:#x} unmapped"));
            assert_eq!((e & pte::ADDR_MASK) >> 12, p2m[l.pfn(va) as usize]);
            assert_ne!(e & pte::USER, 0);
            assert_eq!(e & pte::RW != 0, !l.is_page_table(va), "RW wrong at {va:#x}");
            va += PAGE;
        }
        assert!(walk(&mem, l4, l.v_end).is_none());
        assert_eq!(mem.read_entry(l4, 256), 0xabc0_0003);
        assert_eq!(mem.read_entry(l4, 271), 0xabc0_0003);
    }
}
