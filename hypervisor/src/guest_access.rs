//! Fault-safe access to guest virtual memory: a software walk of the guest's page tables.
//!
//! Hypercall arguments are guest virtual addresses. The walk checks them with the rights of
//! guest code (user bit, and write bit for writes) and reaches the frame through the
//! hypervisor's direct map, so a bad pointer yields `Err(Fault)` (`-EFAULT`) without any
//! fault. It works for any address space. When the running guest's tables are the ones in
//! CR3, the kernel instead copies through them with a fault fix-up
//! (`arch::x86_64::guest_copy`, Xen's exception-table route), for ranges that
//! [`guest_range_ok`] accepts; this module holds the generic half of that decision.

use crate::domain_layout::{pte, MachineMemory};
use crate::elf_image::{HYPERVISOR_VIRT_END, LOWER_HALF_END};

/// Machine memory the walker reads and copies through.
pub trait MachineAccess {
    /// Reads the 8-byte entry at machine address `maddr`; `None` if not RAM the hypervisor maps.
    fn read_u64(&self, maddr: u64) -> Option<u64>;
    /// Copies `out.len()` bytes from machine address `maddr` (within one frame).
    fn read_bytes(&self, maddr: u64, out: &mut [u8]) -> bool;
    /// Copies `bytes` to machine address `maddr` (within one frame).
    fn write_bytes(&mut self, maddr: u64, bytes: &[u8]) -> bool;
}

/// A guest address that cannot be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The first inaccessible address.
    pub va: u64,
}

/// Whether `[va, va + len)` lies wholly in the guest's part of the address space: below the
/// non-canonical hole, or above the hypervisor's range (which starts the upper half). Only
/// such a range may be touched through the guest's own page tables from ring 0.
pub fn guest_range_ok(va: u64, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    match va.checked_add(len as u64 - 1) {
        Some(last) => last < LOWER_HALF_END || va >= HYPERVISOR_VIRT_END,
        None => false,
    }
}

/// Whether `va` is canonical (bits 63-47 all equal).
pub const fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// Xen's `__addr_ok`: `va` lies in the guest's part of the address space (below the
/// non-canonical hole, or above the hypervisor's range).
pub fn guest_address_ok(va: u64) -> bool {
    !(LOWER_HALF_END..HYPERVISOR_VIRT_END).contains(&va)
}

/// Translates `va` to a machine address by walking from the L4 at `l4_maddr`, requiring
/// user access (guest code runs in ring 3) and, for `write`, writability at every level.
pub fn translate(mem: &impl MachineAccess, l4_maddr: u64, va: u64, write: bool) -> Result<u64, Fault> {
    let fault = Fault { va };
    if !guest_address_ok(va) {
        return Err(fault);
    }
    let need = pte::PRESENT | pte::USER | if write { pte::RW } else { 0 };
    let mut table = l4_maddr & pte::ADDR_MASK;
    for shift in [39u32, 30, 21, 12] {
        let entry = mem.read_u64(table + ((va >> shift) & 511) * 8).ok_or(fault)?;
        if entry & need != need {
            return Err(fault);
        }
        if shift != 12 && entry & pte::PSE != 0 {
            // PV guests cannot create superpage mappings; never trust one.
            return Err(fault);
        }
        table = entry & pte::ADDR_MASK;
    }
    Ok(table | (va & 0xfff))
}

/// Copies guest memory at `va` into `out`.
pub fn copy_from_guest(mem: &impl MachineAccess, l4: u64, va: u64, out: &mut [u8]) -> Result<(), Fault> {
    let mut done = 0;
    while done < out.len() {
        let cur = va.checked_add(done as u64).ok_or(Fault { va })?;
        let chunk = ((4096 - (cur & 0xfff)) as usize).min(out.len() - done);
        let ma = translate(mem, l4, cur, false)?;
        if !mem.read_bytes(ma, &mut out[done..done + chunk]) {
            return Err(Fault { va: cur });
        }
        done += chunk;
    }
    Ok(())
}

/// Copies `bytes` into guest memory at `va`. Every page is checked before any is written, so
/// a fault leaves guest memory unchanged.
pub fn copy_to_guest(mem: &mut impl MachineAccess, l4: u64, va: u64, bytes: &[u8]) -> Result<(), Fault> {
    let end = va.checked_add(bytes.len() as u64).ok_or(Fault { va })?;
    // Within one page (bounce frames, hypercall results) one walk both checks and locates.
    if !bytes.is_empty() && va >> 12 == (end - 1) >> 12 {
        let ma = translate(mem, l4, va, true)?;
        return if mem.write_bytes(ma, bytes) { Ok(()) } else { Err(Fault { va }) };
    }
    // Count pages rather than step an address: a copy that ends in the last page of the
    // address space would overflow `page + 4096` (and, wrapped, walk from 0 for ever).
    let first_page = va >> 12;
    for page in first_page..=(end - 1) >> 12 {
        translate(mem, l4, (page << 12).max(va), true)?;
    }
    let mut done = 0;
    while done < bytes.len() {
        let cur = va + done as u64;
        let chunk = ((4096 - (cur & 0xfff)) as usize).min(bytes.len() - done);
        let ma = translate(mem, l4, cur, true)?;
        if !mem.write_bytes(ma, &bytes[done..done + chunk]) {
            return Err(Fault { va: cur });
        }
        done += chunk;
    }
    Ok(())
}

/// A range of guest virtual memory that guest code may write, resolved to the machine frames
/// behind it. It stays valid while the guest's page tables do not change: within one
/// hypercall that writes no page table (a grant copy never does: its destinations cannot be
/// typed as tables). It lets a batch hypercall read its requests and write their results
/// without a page walk each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestSpan {
    /// Offset of the first byte within the first frame.
    first_offset: usize,
    len: usize,
    /// The backing frames, in order; slots past the last page repeat the first frame, so
    /// that [`holds`](Self::holds) can compare every slot.
    frames: [u64; GuestSpan::MAX_FRAMES],
}

impl GuestSpan {
    /// Most frames a span may cover.
    pub const MAX_FRAMES: usize = 3;

    /// Walks every page of `[va, va + len)` for writing from the L4 at `l4`. Refused (the
    /// first address that cannot be written) if any page cannot be written by guest code or
    /// is not RAM, or if the range is empty or covers more than [`MAX_FRAMES`](Self::MAX_FRAMES)
    /// pages.
    pub fn resolve_for_write(mem: &impl MachineAccess, l4: u64, va: u64, len: usize) -> Result<Self, Fault> {
        let end = va.checked_add(len as u64).filter(|_| len > 0).ok_or(Fault { va })?;
        let (first, last) = (va >> 12, (end - 1) >> 12);
        if last - first >= Self::MAX_FRAMES as u64 {
            return Err(Fault { va });
        }
        let mut frames = [0u64; Self::MAX_FRAMES];
        for (slot, page) in frames.iter_mut().zip(first..=last) {
            let at = (page << 12).max(va);
            let maddr = translate(mem, l4, at, true)?;
            // The walk checks the tables, not the leaf: a guest may map a frame that is not
            // RAM (dom0's MMIO), which the frame accessors would silently skip.
            mem.read_u64(maddr & !0xfff).ok_or(Fault { va: at })?;
            *slot = maddr >> 12;
        }
        for page in (last - first + 1) as usize..Self::MAX_FRAMES {
            frames[page] = frames[0];
        }
        Ok(Self { first_offset: (va & 0xfff) as usize, len, frames })
    }

    /// A span over `frames` from `first_offset` in the first (for tests of its users, whose
    /// machine memory has no guest page tables).
    #[cfg(test)]
    pub(crate) fn from_frames(first_offset: usize, len: usize, frames: &[u64]) -> Self {
        let pages = (first_offset + len).div_ceil(4096);
        assert!(first_offset < 4096 && pages <= frames.len());
        let mut all = [frames[0]; Self::MAX_FRAMES];
        all[..pages].copy_from_slice(&frames[..pages]);
        Self { first_offset, len, frames: all }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether frame `mfn` backs part of the span. (Unused slots repeat the first frame:
    /// three compares and no loop, as a grant copy asks this for every frame it checks.)
    pub fn holds(&self, mfn: u64) -> bool {
        let [a, b, c] = self.frames;
        (mfn == a) | (mfn == b) | (mfn == c)
    }

    /// Whether the span is empty (never: resolution refuses an empty range).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `each(mfn, offset in frame, range of the caller's buffer)` for the pieces of
    /// `[offset, offset + n)`; `false` (nothing called) if that is not within the span.
    fn pieces(&self, offset: usize, n: usize, mut each: impl FnMut(u64, usize, core::ops::Range<usize>)) -> bool {
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return false;
        }
        let mut done = 0;
        while done < n {
            let at = self.first_offset + offset + done;
            let in_frame = at % 4096;
            let chunk = (4096 - in_frame).min(n - done);
            each(self.frames[at / 4096], in_frame, done..done + chunk);
            done += chunk;
        }
        true
    }

    /// Copies `out.len()` bytes from `offset` of the span; `false` if outside it.
    pub fn read<M: MachineMemory + ?Sized>(&self, mem: &M, offset: usize, out: &mut [u8]) -> bool {
        let n = out.len();
        self.pieces(offset, n, |mfn, at, r| mem.read_frame_bytes(mfn, at, &mut out[r]))
    }

    /// Copies `bytes` to `offset` of the span; `false` (nothing written) if outside it.
    pub fn write<M: MachineMemory + ?Sized>(&self, mem: &mut M, offset: usize, bytes: &[u8]) -> bool {
        self.pieces(offset, bytes.len(), |mfn, at, r| mem.write_frame_bytes(mfn, at, &bytes[r]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf_image::HYPERVISOR_VIRT_START;

    use crate::guest_access_testing::{tree, FrameMap as Frames, L4, U};

    /// VA 0x400000.. maps mfn 10 (rw), 11 (ro), 12 (no user); each frame is filled with its mfn.
    fn setup() -> Frames {
        tree(&[(10, U), (11, pte::PRESENT | pte::USER), (12, pte::PRESENT | pte::RW)], |f| f as u8)
    }

    #[test]
    fn guest_range_excludes_the_hole_and_the_hypervisor() {
        assert!(guest_range_ok(0, 0) && guest_range_ok(u64::MAX, 0), "empty ranges touch nothing");
        assert!(guest_range_ok(0, 4096));
        assert!(guest_range_ok((1 << 47) - 8, 8), "ends at the last lower-half byte");
        assert!(!guest_range_ok((1 << 47) - 8, 9), "runs into the non-canonical hole");
        assert!(!guest_range_ok(1 << 47, 1));
        assert!(!guest_range_ok(HYPERVISOR_VIRT_START, 8));
        assert!(!guest_range_ok(HYPERVISOR_VIRT_END - 8, 16), "starts in the hypervisor's range");
        assert!(guest_range_ok(HYPERVISOR_VIRT_END, 4096));
        assert!(guest_range_ok(u64::MAX - 7, 8), "ends at the top of the address space");
        assert!(!guest_range_ok(u64::MAX - 7, 9), "wraps to address 0");
        assert!(!guest_range_ok(0x1000, usize::MAX), "wraps");
        assert!(guest_address_ok(0) && guest_address_ok((1 << 47) - 1) && guest_address_ok(HYPERVISOR_VIRT_END));
        assert!(!guest_address_ok(1 << 47) && !guest_address_ok(HYPERVISOR_VIRT_START));
        assert!(!guest_address_ok(HYPERVISOR_VIRT_END - 1));
    }

    #[test]
    fn reads_across_pages_and_respects_rights() {
        let mut m = setup();
        let mut buf = [0u8; 8];
        copy_from_guest(&m, 1 << 12, 0x400ffc, &mut buf).unwrap();
        assert_eq!(buf, [10, 10, 10, 10, 11, 11, 11, 11]);
        assert_eq!(copy_from_guest(&m, 1 << 12, 0x402000, &mut buf), Err(Fault { va: 0x402000 }), "supervisor page");
        assert_eq!(copy_from_guest(&m, 1 << 12, 0x403000, &mut buf), Err(Fault { va: 0x403000 }), "unmapped");
        assert!(copy_to_guest(&mut m, 1 << 12, 0x400010, b"hi").is_ok());
        assert_eq!(m.frames[&10][0x10..0x12], *b"hi");
    }

    #[test]
    fn a_write_that_would_fault_changes_nothing() {
        let mut m = setup();
        let before = m.frames[&10].clone();
        assert_eq!(copy_to_guest(&mut m, 1 << 12, 0x400ffe, b"abcd"), Err(Fault { va: 0x401000 }));
        assert_eq!(m.frames[&10], before, "read-only second page must stop the whole copy");
    }

    #[test]
    fn hostile_addresses_fault() {
        let m = setup();
        let mut b = [0u8; 1];
        for va in [0xffff_8000_0000_0000, 0xffff_8300_0000_1000, 0x0000_8000_0000_0000, u64::MAX - 1] {
            assert!(copy_from_guest(&m, 1 << 12, va, &mut b).is_err(), "{va:#x}");
        }
        let mut big = [0u8; 16];
        assert!(copy_from_guest(&m, 1 << 12, u64::MAX - 4, &mut big).is_err());
    }

    #[test]
    fn a_write_ending_in_the_last_page_of_the_address_space_terminates() {
        // L4 slot 511 -> L3 slot 511 -> L2 slot 511 -> L1 entries 510 and 511 map the top
        // 8 KiB of the address space (mfns 20 and 21).
        let mut m = setup();
        m.set(1, 511, 5 << 12 | U);
        m.set(5, 511, 6 << 12 | U);
        m.set(6, 511, 7 << 12 | U);
        m.set(7, 510, 20 << 12 | U);
        m.set(7, 511, 21 << 12 | U);
        for f in [20, 21] {
            m.frames.insert(f, Box::new([0; 4096]));
        }
        let va = 0xffff_ffff_ffff_e800;
        assert!(copy_to_guest(&mut m, 1 << 12, va, &[7u8; 0x1000]).is_ok());
        assert_eq!(m.frames[&20][0x800..], [7u8; 0x800]);
        assert_eq!(m.frames[&21][..0x800], [7u8; 0x800]);
        // Up to the last byte an exclusive 64-bit end can describe.
        assert!(copy_to_guest(&mut m, 1 << 12, u64::MAX - 0x1000, &[9u8; 0x1000]).is_ok());
        assert_eq!(m.frames[&21][4094], 9);
    }

    #[test]
    fn superpage_entries_are_not_followed() {
        let mut m = setup();
        m.set(3, 3, 0x4000_0000 | U | pte::PSE);
        let mut b = [0u8; 1];
        assert!(copy_from_guest(&m, 1 << 12, 0x600000, &mut b).is_err());
    }

    #[test]
    fn faults_name_the_first_bad_address_and_crossing_reads_check_both_pages() {
        let m = setup();
        let mut b = [0u8; 8];
        assert_eq!(copy_from_guest(&m, L4, 0x402000, &mut b), Err(Fault { va: 0x402000 }), "supervisor");
        assert_eq!(copy_from_guest(&m, L4, 0x402008, &mut b), Err(Fault { va: 0x402008 }));
        copy_from_guest(&m, L4, 0x400ffc, &mut b).unwrap();
        assert_eq!(b, [10, 10, 10, 10, 11, 11, 11, 11]);
        assert_eq!(copy_from_guest(&m, L4, 0x401ffc, &mut b), Err(Fault { va: 0x402000 }));
        for va in [0xffff_8000_0000_0000, 0x0000_8000_0000_0000, u64::MAX - 1] {
            assert!(copy_from_guest(&m, L4, va, &mut b[..1]).is_err(), "{va:#x}");
        }
        assert!(copy_from_guest(&m, L4, 0x400000, &mut []).is_ok(), "an empty read");
    }

    /// `setup()` plus VA 0x403000 -> mfn 13 and 0x404000 -> mfn 14 (both rw), and
    /// 0x405000 -> mfn 99, which is not RAM.
    fn span_setup() -> Frames {
        let mut m = setup();
        m.map_leaf(3, 13, U, 13);
        m.map_leaf(4, 14, U, 14);
        m.set(4, 5, 99 << 12 | U);
        m
    }

    #[test]
    fn span_writes_and_reads_across_its_frames() {
        let mut m = span_setup();
        let span = GuestSpan::resolve_for_write(&m, 1 << 12, 0x403ffa, 12).unwrap();
        assert_eq!(span.len(), 12);
        assert!(span.write(&mut m, 2, &[1, 2, 3, 4, 5, 6]));
        assert_eq!(m.frames[&13][4092..], [1, 2, 3, 4]);
        assert_eq!(m.frames[&14][..3], [5, 6, 14]);
        let mut back = [0u8; 12];
        assert!(span.read(&m, 0, &mut back));
        assert!(span.holds(13) && span.holds(14) && !span.holds(10));
        assert_eq!(back, [13, 13, 1, 2, 3, 4, 5, 6, 14, 14, 14, 14]);
    }

    #[test]
    fn span_refuses_what_guest_code_could_not_write() {
        let m = span_setup();
        let l4 = 1 << 12;
        let refused = |va, len| GuestSpan::resolve_for_write(&m, l4, va, len).map(|_| ()).unwrap_err();
        assert_eq!(refused(0x400ff0, 32), Fault { va: 0x401000 }, "read-only second page");
        assert_eq!(refused(0x402000, 8), Fault { va: 0x402000 }, "supervisor page");
        assert_eq!(refused(0x405000, 8), Fault { va: 0x405000 }, "a leaf that is not RAM");
        assert_eq!(refused(0x406000, 8), Fault { va: 0x406000 }, "unmapped");
        assert_eq!(refused(0x403000, 0), Fault { va: 0x403000 }, "empty");
        assert_eq!(refused(0x400800, 3 * 4096), Fault { va: 0x400800 }, "four pages");
        assert_eq!(refused(u64::MAX - 3, 8), Fault { va: u64::MAX - 3 }, "wraps");
        assert_eq!(refused(HYPERVISOR_VIRT_START, 8), Fault { va: HYPERVISOR_VIRT_START });
    }

    #[test]
    fn span_access_outside_it_is_refused_and_writes_nothing() {
        let mut m = span_setup();
        let span = GuestSpan::resolve_for_write(&m, 1 << 12, 0x403000, 16).unwrap();
        assert!(span.holds(13) && !span.holds(14) && !span.holds(0), "only its one frame");
        assert!(!span.write(&mut m, 10, &[0xee; 8]));
        assert!(!span.write(&mut m, usize::MAX, &[0xee; 2]));
        assert!(m.frames[&13].iter().all(|&b| b == 13));
        assert!(!span.read(&m, 16, &mut [0u8; 1]));
        assert!(span.read(&m, 16, &mut []), "an empty read at the end is within");
    }
}
