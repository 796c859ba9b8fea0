//! Whole-word access to the guest stack for bounce frames and `HYPERVISOR_iret`.
//!
//! Both paths move a handful of 8-byte words at a 16-byte-aligned (bounce) or 8-byte-aligned
//! (`iret`) stack address, almost always inside one page. There one software walk of the
//! guest's tables (the same `guest_access::translate`, with ring-3 rights) locates the page,
//! and the words go straight to or from the direct map: no byte staging buffer and no
//! library copy. A run that crosses a page takes the general byte path, which checks every
//! page before it writes any.

use crate::guest_access::{self, MachineAccess};
use crate::vcpu::GuestMemory;

/// Machine memory that can move runs of words after a single bounds check.
pub trait WordAccess: MachineAccess {
    /// Stores `words` (little-endian) at machine address `maddr` (within one frame); `false`,
    /// with nothing written, if the run is not memory the hypervisor maps.
    fn write_u64s(&mut self, maddr: u64, words: &[u64]) -> bool;
    /// Loads `out.len()` words from machine address `maddr` (within one frame).
    fn read_u64s(&self, maddr: u64, out: &mut [u64]) -> bool;
}

/// Guest memory through `M`, with the one-walk word paths the bounce and `iret` code use.
pub struct StackAccess<'a, M>(pub &'a mut M);

/// Whether `len` bytes at `va` stay inside the page holding `va`.
pub fn within_one_page(va: u64, len: u64) -> bool {
    len != 0 && len <= 4096 && (va & 0xfff) <= 4096 - len
}

impl<M: WordAccess> GuestMemory for StackAccess<'_, M> {
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool {
        guest_access::copy_to_guest(self.0, l4, va, bytes).is_ok()
    }

    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool {
        guest_access::copy_from_guest(&*self.0, l4, va, out).is_ok()
    }

    #[inline]
    fn write_words(&mut self, l4: u64, va: u64, words: &[u64]) -> bool {
        if words.len() > MAX_WORDS || !within_one_page(va, words.len() as u64 * 8) {
            return write_words_bytewise(self, l4, va, words);
        }
        match guest_access::translate(&*self.0, l4, va, true) {
            Ok(ma) => self.0.write_u64s(ma, words),
            Err(_) => false,
        }
    }

    #[inline]
    fn read_words(&self, l4: u64, va: u64, out: &mut [u64]) -> bool {
        if out.len() > MAX_WORDS || !within_one_page(va, out.len() as u64 * 8) {
            return read_words_bytewise(self, l4, va, out);
        }
        match guest_access::translate(&*self.0, l4, va, false) {
            Ok(ma) => self.0.read_u64s(ma, out),
            Err(_) => false,
        }
    }
}

/// Most words one call moves: an `iret_context` (9; a bounce frame is at most 8). Longer
/// runs are refused, so a copy stays all-or-nothing through one staging buffer.
pub const MAX_WORDS: usize = 9;

/// [`GuestMemory::write_words`] through the byte interface (page-crossing runs, and every
/// memory without a faster way).
pub fn write_words_bytewise<G: GuestMemory + ?Sized>(mem: &mut G, l4: u64, va: u64, words: &[u64]) -> bool {
    if words.len() > MAX_WORDS {
        return false;
    }
    let mut bytes = [0u8; MAX_WORDS * 8];
    for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    mem.write(l4, va, &bytes[..words.len() * 8])
}

/// [`GuestMemory::read_words`] through the byte interface.
pub fn read_words_bytewise<G: GuestMemory + ?Sized>(mem: &G, l4: u64, va: u64, out: &mut [u64]) -> bool {
    if out.len() > MAX_WORDS {
        return false;
    }
    let mut bytes = [0u8; MAX_WORDS * 8];
    let n = out.len() * 8;
    if !mem.read(l4, va, &mut bytes[..n]) {
        return false;
    }
    for (w, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *w = u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
    }
    true
}

#[cfg(test)]
#[path = "guest_stack_tests.rs"]
mod tests;
