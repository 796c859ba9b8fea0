//! A fixed pool of page slots handed out one at a time (a bitmap allocator). The kernel uses
//! it over a page-aligned array in its image for page tables and user pages; the logic is
//! plain and host-tested.

/// Up to `64 * W` slots; `len` of them are usable.
#[derive(Clone, Debug)]
pub struct PagePool<const W: usize> {
    used: [u64; W],
    len: usize,
}

impl<const W: usize> PagePool<W> {
    /// A pool of `len` free slots (`len <= 64 * W`).
    pub const fn new(len: usize) -> Self {
        assert!(len <= 64 * W);
        Self { used: [0; W], len }
    }

    /// Takes the lowest free slot.
    pub fn alloc(&mut self) -> Option<usize> {
        for (w, word) in self.used.iter_mut().enumerate() {
            let free = !*word;
            if free != 0 {
                let i = w * 64 + free.trailing_zeros() as usize;
                if i >= self.len {
                    return None;
                }
                *word |= 1 << (i % 64);
                return Some(i);
            }
        }
        None
    }

    /// Returns slot `i`; false if it was not allocated.
    pub fn free(&mut self, i: usize) -> bool {
        if i >= self.len || self.used[i / 64] & (1 << (i % 64)) == 0 {
            return false;
        }
        self.used[i / 64] &= !(1 << (i % 64));
        true
    }

    /// Number of slots in use.
    pub fn in_use(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_and_exhaustion() {
        let mut p = PagePool::<2>::new(70);
        for want in 0..70 {
            assert_eq!(p.alloc(), Some(want));
        }
        assert_eq!(p.alloc(), None);
        assert_eq!(p.in_use(), 70);
        assert!(p.free(65));
        assert!(!p.free(65), "double free refused");
        assert!(!p.free(70), "out of range refused");
        assert_eq!(p.alloc(), Some(65));
    }
}
