//! Test fixtures for code that walks guest page tables: machine memory as a map of frames,
//! and a four-level tree mapping a few pages, shared by the tests of `guest_access` and
//! `guest_stack`.

use crate::domain_layout::{pte, MachineMemory};
use crate::guest_access::MachineAccess;
use std::collections::HashMap;

/// Flags of a present, user, writable entry.
pub(crate) const U: u64 = pte::PRESENT | pte::USER | pte::RW;
/// Machine address of the tree's L4 (mfn 1).
pub(crate) const L4: u64 = 1 << 12;

/// Machine memory as a map of frames; `word_runs` counts word-run stores (for tests that
/// tell which path ran).
#[derive(Default)]
pub(crate) struct FrameMap {
    pub frames: HashMap<u64, Box<[u8; 4096]>>,
    pub word_runs: usize,
}

impl FrameMap {
    /// Writes entry `index` of frame `mfn` (creating the frame, zeroed).
    pub fn set(&mut self, mfn: u64, index: u64, v: u64) {
        let f = self.frames.entry(mfn).or_insert_with(|| Box::new([0; 4096]));
        f[(index * 8) as usize..(index * 8 + 8) as usize].copy_from_slice(&v.to_le_bytes());
    }

    /// The little-endian word at byte `offset` of frame `mfn`.
    pub fn word(&self, mfn: u64, offset: usize) -> u64 {
        u64::from_le_bytes(self.frames[&mfn][offset..offset + 8].try_into().unwrap())
    }

    /// Maps leaf `index` of the tree's L1 (VA `0x400000 + 4096 * index`) to a new frame
    /// `mfn` filled with `fill`, with entry flags `flags`.
    pub fn map_leaf(&mut self, index: u64, mfn: u64, flags: u64, fill: u8) {
        self.set(4, index, mfn << 12 | flags);
        self.frames.insert(mfn, Box::new([fill; 4096]));
    }
}

impl MachineAccess for FrameMap {
    fn read_u64(&self, ma: u64) -> Option<u64> {
        let mut b = [0; 8];
        self.read_bytes(ma, &mut b).then(|| u64::from_le_bytes(b))
    }
    fn read_bytes(&self, ma: u64, out: &mut [u8]) -> bool {
        let Some(f) = self.frames.get(&(ma >> 12)) else { return false };
        let o = (ma & 0xfff) as usize;
        out.copy_from_slice(&f[o..o + out.len()]);
        true
    }
    fn write_bytes(&mut self, ma: u64, bytes: &[u8]) -> bool {
        let Some(f) = self.frames.get_mut(&(ma >> 12)) else { return false };
        let o = (ma & 0xfff) as usize;
        f[o..o + bytes.len()].copy_from_slice(bytes);
        true
    }
}

impl MachineMemory for FrameMap {
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) {
        self.set(mfn, index as u64, value);
    }
    fn read_entry(&self, mfn: u64, index: usize) -> u64 {
        self.read_u64((mfn << 12) | ((index as u64) * 8)).unwrap_or(0)
    }
}

/// L4 at mfn 1 -> L3 2 -> L2 3 -> L1 4 (all user, writable) for VA 0x400000; leaf `i` maps
/// `leaves[i] = (mfn, flags)` and that frame is filled with `fill(mfn)`.
pub(crate) fn tree(leaves: &[(u64, u64)], fill: impl Fn(u64) -> u8) -> FrameMap {
    let mut m = FrameMap::default();
    m.set(1, 0, 2 << 12 | U);
    m.set(2, 0, 3 << 12 | U);
    m.set(3, 2, 4 << 12 | U);
    for (i, &(mfn, flags)) in leaves.iter().enumerate() {
        m.map_leaf(i as u64, mfn, flags, fill(mfn));
    }
    m
}
