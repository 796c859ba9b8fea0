//! Physical frame allocator: a bitmap over the usable RAM of the boot memory map.
//!
//! Built once from the firmware's memory map minus everything that must never be handed out
//! (the low 1 MiB, the hypervisor image, boot modules, boot structures, the bitmap itself).
//! The bitmap lives in memory the caller provides, so this code needs no heap and runs on the
//! host in tests.

use heapless::Vec;

/// Size of a frame.
pub const FRAME_SIZE: u64 = 4096;
/// Memory below this is never handed out: real-mode structures, BIOS data, option ROMs.
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Upper bound on the number of disjoint managed ranges.
pub const MAX_RANGES: usize = 64;

/// A half-open physical byte range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// `[start, start + len)`, saturating at the top of the address space.
    pub const fn with_len(start: u64, len: u64) -> Self {
        Self { start, end: start.saturating_add(len) }
    }
    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    fn frames_inward(&self) -> (u64, u64) {
        (self.start.div_ceil(FRAME_SIZE), self.end / FRAME_SIZE)
    }
}

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is already free.
    DoubleFree,
    /// The frame was never allocatable (reserved, outside RAM).
    NotManaged,
}

/// Why construction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The bitmap is too small for the highest usable frame.
    BitmapTooSmall {
        /// Words the bitmap needs.
        needed_words: usize,
    },
    /// The memory map is fragmented into more than [`MAX_RANGES`] pieces.
    TooManyRanges,
}

/// Subtracts every `reserved` range from every `usable` range and the low 1 MiB, and aligns the
/// result inward to whole frames. The result is sorted and disjoint.
pub fn managed_ranges(usable: &[PhysRange], reserved: &[PhysRange]) -> Result<Vec<PhysRange, MAX_RANGES>, BuildError> {
    let mut out: Vec<PhysRange, MAX_RANGES> = Vec::new();
    for u in usable {
        let (s, e) = u.frames_inward();
        let r = PhysRange { start: (s * FRAME_SIZE).max(LOW_MEMORY_END), end: e * FRAME_SIZE };
        if !r.is_empty() {
            out.push(r).map_err(|_| BuildError::TooManyRanges)?;
        }
    }
    for res in reserved {
        // Align the hole outward: a frame partly reserved is wholly reserved.
        let hole = PhysRange {
            start: res.start / FRAME_SIZE * FRAME_SIZE,
            end: res.end.div_ceil(FRAME_SIZE).saturating_mul(FRAME_SIZE),
        };
        if hole.is_empty() {
            continue;
        }
        let mut next: Vec<PhysRange, MAX_RANGES> = Vec::new();
        for r in &out {
            let left = PhysRange { start: r.start, end: r.end.min(hole.start) };
            let right = PhysRange { start: r.start.max(hole.end), end: r.end };
            for piece in [left, right] {
                if !piece.is_empty() {
                    next.push(piece).map_err(|_| BuildError::TooManyRanges)?;
                }
            }
        }
        out = next;
    }
    out.sort_unstable_by_key(|r| r.start);
    // Merge overlaps from overlapping usable entries in a sloppy firmware map.
    let mut merged: Vec<PhysRange, MAX_RANGES> = Vec::new();
    for r in out {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r).map_err(|_| BuildError::TooManyRanges)?,
        }
    }
    Ok(merged)
}

/// Finds the lowest frame-aligned run of `bytes` inside the managed ranges: used to place the
/// bitmap itself before the allocator exists.
pub fn find_run(managed: &[PhysRange], bytes: u64) -> Option<u64> {
    let need = bytes.div_ceil(FRAME_SIZE) * FRAME_SIZE;
    managed.iter().find(|r| r.end - r.start >= need).map(|r| r.start)
}

/// Number of `u64` bitmap words needed to cover frames below the highest managed byte.
pub fn bitmap_words_for(managed: &[PhysRange]) -> usize {
    let top_frame = managed.iter().map(|r| r.end / FRAME_SIZE).max().unwrap_or(0);
    top_frame.div_ceil(64) as usize
}

/// The allocator. Bit set = frame free.
pub struct FrameAllocator<'a> {
    bitmap: &'a mut [u64],
    managed: Vec<PhysRange, MAX_RANGES>,
    free_frames: u64,
    total_frames: u64,
    /// Word index where the last search succeeded; searches resume there (next-fit).
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Builds an allocator whose free frames are exactly `managed` (see [`managed_ranges`]).
    pub fn new(bitmap: &'a mut [u64], managed: &[PhysRange]) -> Result<Self, BuildError> {
        let needed_words = bitmap_words_for(managed);
        if bitmap.len() < needed_words {
            return Err(BuildError::BitmapTooSmall { needed_words });
        }
        bitmap.fill(0);
        let mut total = 0;
        for r in managed {
            for f in r.start / FRAME_SIZE..r.end / FRAME_SIZE {
                bitmap[(f / 64) as usize] |= 1 << (f % 64);
                total += 1;
            }
        }
        let managed = Vec::from_slice(managed).map_err(|_| BuildError::TooManyRanges)?;
        Ok(Self { bitmap, managed, free_frames: total, total_frames: total, hint: 0 })
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames the allocator manages in all.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// Allocates one frame; returns its frame number.
    pub fn alloc(&mut self) -> Option<u64> {
        let n = self.bitmap.len();
        for i in 0..n {
            let w = (self.hint + i) % n;
            let word = self.bitmap[w];
            if word != 0 {
                let bit = word.trailing_zeros() as u64;
                self.bitmap[w] &= !(1 << bit);
                self.free_frames -= 1;
                self.hint = w;
                return Some(w as u64 * 64 + bit);
            }
        }
        None
    }

    /// Allocates the highest free frame: for the hypervisor's own short-lived frames (a
    /// domain builder's page list), so that taking them does not move the frames that
    /// [`Self::alloc`] hands out from the bottom up to the domains.
    pub fn alloc_high(&mut self) -> Option<u64> {
        let w = self.bitmap.iter().rposition(|&word| word != 0)?;
        let bit = 63 - u64::from(self.bitmap[w].leading_zeros());
        self.bitmap[w] &= !(1 << bit);
        self.free_frames -= 1;
        Some(w as u64 * 64 + bit)
    }

    /// Allocates `count` physically contiguous frames starting at a multiple of `align` frames
    /// (a power of two); returns the first frame number.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() {
            return None;
        }
        for r in &self.managed {
            let mut start = (r.start / FRAME_SIZE).next_multiple_of(align);
            let end = r.end / FRAME_SIZE;
            while start + count <= end {
                // A word with no free frame from `start` on is skipped whole: a scan over
                // memory the domains fill costs a word per 64 frames, not a test per frame.
                let word = self.bitmap.get((start / 64) as usize).copied().unwrap_or(0);
                if word >> (start % 64) == 0 {
                    start = ((start / 64 + 1) * 64).next_multiple_of(align);
                    continue;
                }
                match (start..start + count).find(|&f| !self.is_free(f)) {
                    None => {
                        for f in start..start + count {
                            self.bitmap[(f / 64) as usize] &= !(1 << (f % 64));
                        }
                        self.free_frames -= count;
                        return Some(start);
                    }
                    Some(busy) => start = (busy + 1).next_multiple_of(align),
                }
            }
        }
        None
    }

    /// Returns `frame` to the pool.
    pub fn free(&mut self, frame: u64) -> Result<(), FreeError> {
        if !self.is_managed(frame) {
            return Err(FreeError::NotManaged);
        }
        if self.is_free(frame) {
            return Err(FreeError::DoubleFree);
        }
        self.bitmap[(frame / 64) as usize] |= 1 << (frame % 64);
        self.free_frames += 1;
        Ok(())
    }

    /// Whether `frame` is one this allocator may hand out.
    pub fn is_managed(&self, frame: u64) -> bool {
        let addr = frame.saturating_mul(FRAME_SIZE);
        self.managed.iter().any(|r| r.start <= addr && addr < r.end)
    }

    fn is_free(&self, frame: u64) -> bool {
        self.bitmap.get((frame / 64) as usize).is_some_and(|w| w & (1 << (frame % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange { start, end }
    }

    #[test]
    fn reserved_and_low_memory_are_excluded() {
        let usable = [r(0, 640 << 10), r(MIB, 16 * MIB)];
        let reserved = [r(2 * MIB, 3 * MIB + 1), r(8 * MIB, 9 * MIB)];
        let m = managed_ranges(&usable, &reserved).unwrap();
        assert_eq!(m.as_slice(), &[r(MIB, 2 * MIB), r(3 * MIB + FRAME_SIZE, 8 * MIB), r(9 * MIB, 16 * MIB)]);
    }

    #[test]
    fn unaligned_usable_ranges_shrink_inward_and_overlaps_merge() {
        let usable = [r(MIB + 1, 2 * MIB - 1), r(4 * MIB, 6 * MIB), r(5 * MIB, 7 * MIB)];
        let m = managed_ranges(&usable, &[]).unwrap();
        assert_eq!(m.as_slice(), &[r(MIB + FRAME_SIZE, 2 * MIB - FRAME_SIZE), r(4 * MIB, 7 * MIB)]);
    }

    #[test]
    fn high_allocations_come_from_the_top_and_leave_the_bottom_alone() {
        let m = managed_ranges(&[r(MIB, 2 * MIB), r(3 * MIB, 4 * MIB)], &[]).unwrap();
        let mut bitmap = vec![0u64; bitmap_words_for(&m)];
        let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
        let top = 4 * MIB / FRAME_SIZE - 1;
        assert_eq!((a.alloc_high(), a.alloc_high()), (Some(top), Some(top - 1)));
        assert_eq!(a.alloc(), Some(MIB / FRAME_SIZE), "the bottom is where it was");
        assert_eq!(a.free_frames(), a.total_frames() - 3);
        a.free(top).unwrap();
        assert_eq!(a.alloc_high(), Some(top), "a freed top frame is the next high one");
        while a.alloc_high().is_some() {}
        assert_eq!((a.free_frames(), a.alloc()), (0, None));
    }

    #[test]
    fn never_hands_out_reserved_frames_in_a_fragmented_map() {
        let usable = [r(MIB, 2 * MIB), r(3 * MIB, 3 * MIB + 3 * FRAME_SIZE), r(10 * MIB, 11 * MIB)];
        let reserved = [r(MIB, MIB + 5 * FRAME_SIZE), r(10 * MIB + 7, 10 * MIB + 9)];
        let m = managed_ranges(&usable, &reserved).unwrap();
        let mut bitmap = vec![0u64; bitmap_words_for(&m)];
        let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
        let total = a.total_frames();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(f) = a.alloc() {
            let addr = f * FRAME_SIZE;
            assert!(usable.iter().any(|u| u.start <= addr && addr + FRAME_SIZE <= u.end));
            assert!(!reserved.iter().any(|x| x.start < addr + FRAME_SIZE && addr < x.end));
            assert!(addr >= LOW_MEMORY_END);
            assert!(seen.insert(f), "frame {f} handed out twice");
        }
        assert_eq!(seen.len() as u64, total);
        assert_eq!(a.free_frames(), 0);
    }

    #[test]
    fn exhaustion_then_free_then_reuse() {
        let m = managed_ranges(&[r(MIB, MIB + 4 * FRAME_SIZE)], &[]).unwrap();
        let mut bitmap = vec![0u64; bitmap_words_for(&m)];
        let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
        let frames: Vec<u64, 8> = (0..4).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(a.alloc(), None);
        a.free(frames[2]).unwrap();
        assert_eq!(a.alloc(), Some(frames[2]));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn double_free_and_foreign_frames_are_detected() {
        let m = managed_ranges(&[r(MIB, 2 * MIB)], &[r(MIB, MIB + FRAME_SIZE)]).unwrap();
        let mut bitmap = vec![0u64; bitmap_words_for(&m)];
        let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
        let f = a.alloc().unwrap();
        assert_eq!(a.free(f), Ok(()));
        assert_eq!(a.free(f), Err(FreeError::DoubleFree));
        assert_eq!(a.free(MIB / FRAME_SIZE), Err(FreeError::NotManaged), "reserved frame");
        assert_eq!(a.free(0), Err(FreeError::NotManaged), "low memory");
        assert_eq!(a.free(u64::MAX), Err(FreeError::NotManaged), "beyond RAM");
    }

    #[test]
    fn contiguous_allocation_respects_alignment_and_holes() {
        let m = managed_ranges(&[r(MIB, 8 * MIB)], &[r(2 * MIB, 2 * MIB + FRAME_SIZE)]).unwrap();
        let mut bitmap = vec![0u64; bitmap_words_for(&m)];
        let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
        let start = a.alloc_contiguous(512, 512).unwrap();
        assert_eq!(start % 512, 0);
        // The 2 MiB block holds the reserved frame, so the first aligned run is at 4 MiB.
        assert_eq!(start * FRAME_SIZE, 4 * MIB);
        let before = a.free_frames();
        assert_eq!(a.alloc_contiguous(1 << 20, 1), None);
        assert_eq!(a.free_frames(), before, "a failed request takes nothing");
        assert_eq!(a.alloc_contiguous(0, 1), None);
        assert_eq!(a.alloc_contiguous(1, 3), None);
    }

    /// Against a frame-by-frame search, on memory filled in random patterns (mostly used,
    /// as when domains hold it): the same first aligned run, or none, every time.
    #[test]
    fn contiguous_allocation_skips_used_words_and_finds_the_first_run() {
        let mut rng = crate::test_rng::Rng(7);
        for round in 0..200 {
            let m = managed_ranges(&[r(MIB, 9 * MIB + 64 * FRAME_SIZE), r(12 * MIB, 13 * MIB)], &[]).unwrap();
            let mut bitmap = vec![0u64; bitmap_words_for(&m)];
            let mut a = FrameAllocator::new(&mut bitmap, &m).unwrap();
            let used_percent = rng.below(100);
            let all: std::vec::Vec<u64> = m.iter().flat_map(|r| r.start / FRAME_SIZE..r.end / FRAME_SIZE).collect();
            for &f in &all {
                if rng.below(100) < used_percent {
                    let word = f / 64;
                    a.bitmap[word as usize] &= !(1 << (f % 64));
                    a.free_frames -= 1;
                }
            }
            let (count, align) = [(1, 1), (3, 1), (64, 64), (8, 8), (512, 512), (100, 4)][round % 6];
            let naive = m.iter().find_map(|r| {
                let (lo, hi) = (r.start / FRAME_SIZE, r.end / FRAME_SIZE);
                (lo.next_multiple_of(align)..hi)
                    .step_by(align as usize)
                    .find(|&s| s + count <= hi && (s..s + count).all(|f| a.is_free(f)))
            });
            assert_eq!(a.alloc_contiguous(count, align), naive, "round {round}: {count} frames aligned {align}");
        }
    }

    #[test]
    fn small_bitmap_is_refused() {
        let m = managed_ranges(&[r(MIB, 64 * MIB)], &[]).unwrap();
        let mut bitmap = [0u64; 2];
        assert!(matches!(FrameAllocator::new(&mut bitmap, &m), Err(BuildError::BitmapTooSmall { .. })));
    }

    #[test]
    fn find_run_places_the_bitmap_in_free_memory() {
        let m = managed_ranges(&[r(MIB, MIB + 2 * FRAME_SIZE), r(4 * MIB, 8 * MIB)], &[]).unwrap();
        assert_eq!(find_run(&m, 3 * FRAME_SIZE), Some(4 * MIB));
        assert_eq!(find_run(&m, 100 * MIB), None);
    }
}
