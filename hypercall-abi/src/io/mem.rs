//! The memory under a shared ring, reached through a small trait so that the same ring code runs
//! on a real granted page in a kernel and on plain memory in host tests.
//!
//! Every access the ring code makes to shared memory goes through [`SharedMemory`]: 32-bit index
//! loads and stores (single, untorn accesses) and byte copies of ring entries. Ordering between
//! those accesses is *not* the trait's job: the ring code places `core::sync::atomic::fence`s
//! exactly where Xen's `io/ring.h` places `xen_wmb`/`xen_rmb`/`xen_mb`, so the trait's accesses
//! only need to be relaxed (untorn, never elided or duplicated by the compiler).
//!
//! Out-of-range offsets never panic: a read outside the memory yields zeroes and a write outside
//! it is dropped. The ring code checks its geometry once at attach time, so this only matters
//! for a buggy caller, and it keeps "no panics on peer data" true by construction.

use core::sync::atomic::{AtomicU32, Ordering};

/// Shared memory as seen by one end of a ring. Offsets are in bytes from the start of the area.
///
/// Implementations must make [`load_u32`](Self::load_u32)/[`store_u32`](Self::store_u32)
/// single untorn accesses (an atomic or a volatile aligned 32-bit access) and must never let the
/// compiler merge, elide or repeat any access: the other end may change the memory at any time.
pub trait SharedMemory {
    /// Size of the area in bytes.
    fn size(&self) -> usize;
    /// Loads the naturally aligned 32-bit little-endian word at `offset` (relaxed).
    fn load_u32(&self, offset: usize) -> u32;
    /// Stores the naturally aligned 32-bit word at `offset` (relaxed).
    fn store_u32(&self, offset: usize, value: u32);
    /// Copies `dst.len()` bytes starting at `offset` out of the shared area.
    fn read_bytes(&self, offset: usize, dst: &mut [u8]);
    /// Copies `src` into the shared area starting at `offset`.
    fn write_bytes(&self, offset: usize, src: &[u8]);
}

impl<T: SharedMemory + ?Sized> SharedMemory for &T {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn load_u32(&self, offset: usize) -> u32 {
        (**self).load_u32(offset)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        (**self).store_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        (**self).read_bytes(offset, dst)
    }
    fn write_bytes(&self, offset: usize, src: &[u8]) {
        (**self).write_bytes(offset, src)
    }
}

/// Plain memory made of atomic words: the host-side (and in-kernel loopback) backing for rings.
///
/// Every access is a relaxed atomic, so two threads (or a hostile test peer) racing on it are
/// well defined in Rust's memory model, while the ring code's fences provide the ordering.
/// Words hold little-endian bytes, matching x86 shared memory.
impl SharedMemory for [AtomicU32] {
    fn size(&self) -> usize {
        self.len() * 4
    }
    fn load_u32(&self, offset: usize) -> u32 {
        match self.get(offset / 4) {
            Some(w) if offset.is_multiple_of(4) => w.load(Ordering::Relaxed),
            _ => 0,
        }
    }
    fn store_u32(&self, offset: usize, value: u32) {
        if let Some(w) = self.get(offset / 4) {
            if offset.is_multiple_of(4) {
                w.store(value, Ordering::Relaxed);
            }
        }
    }
    fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        if offset.is_multiple_of(4) && dst.len().is_multiple_of(4) {
            // Fast path: whole words.
            for (i, chunk) in dst.chunks_exact_mut(4).enumerate() {
                let w = self.get(offset / 4 + i).map_or(0, |w| w.load(Ordering::Relaxed));
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            return;
        }
        for (i, b) in dst.iter_mut().enumerate() {
            let at = offset.wrapping_add(i);
            let w = self.get(at / 4).map_or(0, |w| w.load(Ordering::Relaxed));
            *b = w.to_le_bytes()[at % 4];
        }
    }
    fn write_bytes(&self, offset: usize, src: &[u8]) {
        if offset.is_multiple_of(4) && src.len().is_multiple_of(4) {
            for (i, chunk) in src.chunks_exact(4).enumerate() {
                if let Some(w) = self.get(offset / 4 + i) {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(chunk);
                    w.store(u32::from_le_bytes(b), Ordering::Relaxed);
                }
            }
            return;
        }
        for (i, &b) in src.iter().enumerate() {
            let at = offset.wrapping_add(i);
            if let Some(w) = self.get(at / 4) {
                let shift = (at % 4) * 8;
                // A CAS loop keeps the neighbouring bytes of the word intact even if the other
                // end writes them concurrently.
                let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some((old & !(0xff << shift)) | (u32::from(b) << shift))
                });
            }
        }
    }
}

impl<const N: usize> SharedMemory for [AtomicU32; N] {
    fn size(&self) -> usize {
        self.as_slice().size()
    }
    fn load_u32(&self, offset: usize) -> u32 {
        self.as_slice().load_u32(offset)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        self.as_slice().store_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        self.as_slice().read_bytes(offset, dst)
    }
    fn write_bytes(&self, offset: usize, src: &[u8]) {
        self.as_slice().write_bytes(offset, src)
    }
}

/// One 4 KiB page of plain atomic memory (see the `[AtomicU32]` implementation).
///
/// `const`-constructible, so a kernel can place one in a `static` for a loopback device.
pub struct Page(pub [AtomicU32; 1024]);

impl Page {
    /// A zeroed page.
    pub const fn new() -> Self {
        Page([const { AtomicU32::new(0) }; 1024])
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedMemory for Page {
    fn size(&self) -> usize {
        4096
    }
    fn load_u32(&self, offset: usize) -> u32 {
        self.0.load_u32(offset)
    }
    fn store_u32(&self, offset: usize, value: u32) {
        self.0.store_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        self.0.read_bytes(offset, dst)
    }
    fn write_bytes(&self, offset: usize, src: &[u8]) {
        self.0.write_bytes(offset, src)
    }
}

/// A real shared mapping (a granted page mapped into this address space), accessed with
/// volatile byte copies and atomic 32-bit index accesses.
///
/// The peer is another domain, outside this program's memory model; volatile accesses make the
/// compiler perform every access exactly once, and the ring code's fences order them.
pub struct MappedMemory {
    base: *mut u8,
    len: usize,
}

// SAFETY: `MappedMemory` is only a pointer and length to memory that `new`'s caller promised is
// valid for the lifetime of the value and may be accessed from any CPU; every access is volatile
// or atomic, so sharing it between threads introduces no data race the protocol does not expect.
unsafe impl Send for MappedMemory {}
// SAFETY: as for `Send`: all access paths are `&self` volatile/atomic operations.
unsafe impl Sync for MappedMemory {}

impl MappedMemory {
    /// Wraps `len` bytes of mapped shared memory at `base`.
    ///
    /// # Safety
    /// `base` must be 4-byte aligned, and `base..base+len` must stay mapped, readable and
    /// writable for as long as the returned value (or any ring built on it) lives. Nothing in
    /// this program may hold a Rust reference to that memory meanwhile.
    pub const unsafe fn new(base: *mut u8, len: usize) -> Self {
        MappedMemory { base, len }
    }

    fn word(&self, offset: usize) -> Option<&AtomicU32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4).is_none_or(|end| end > self.len) {
            return None;
        }
        // SAFETY: `offset + 4 <= len` and `offset` is 4-aligned on a 4-aligned base (contract of
        // `new`), so the pointer is in bounds and aligned for `AtomicU32`; the memory stays valid
        // while `self` lives, and the peer's concurrent writes are what atomics are for.
        Some(unsafe { AtomicU32::from_ptr(self.base.add(offset).cast::<u32>()) })
    }
}

impl SharedMemory for MappedMemory {
    fn size(&self) -> usize {
        self.len
    }
    fn load_u32(&self, offset: usize) -> u32 {
        self.word(offset).map_or(0, |w| w.load(Ordering::Relaxed))
    }
    fn store_u32(&self, offset: usize, value: u32) {
        if let Some(w) = self.word(offset) {
            w.store(value, Ordering::Relaxed);
        }
    }
    fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            let at = offset.saturating_add(i);
            *b = if at < self.len {
                // SAFETY: `at < len`, so the pointer is inside the mapping promised by `new`.
                unsafe { core::ptr::read_volatile(self.base.add(at)) }
            } else {
                0
            };
        }
    }
    fn write_bytes(&self, offset: usize, src: &[u8]) {
        for (i, &b) in src.iter().enumerate() {
            let at = offset.saturating_add(i);
            if at < self.len {
                // SAFETY: `at < len`, so the pointer is inside the writable mapping of `new`.
                unsafe { core::ptr::write_volatile(self.base.add(at), b) };
            }
        }
    }
}
