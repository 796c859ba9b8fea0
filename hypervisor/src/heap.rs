//! The hypervisor heap's accounting, and the rule that keeps guests from exhausting it.
//!
//! Everything a guest can make the hypervisor allocate (event-channel buckets, grant-mapping
//! handles, active grant entries, grant-table frame lists) is bounded per domain by Xen's
//! limits, but not in sum: a few dozen domains at their limits would take more than the
//! heap, and a failed allocation in the hypervisor is a panic. So growth a guest asks for is
//! allowed only while it leaves [`RESERVE_FRACTION`] of the heap for the hypervisor's own
//! needs (teardown lists, wake-up queues), and is refused otherwise with Xen's code for an
//! allocation failure (`-ENOMEM`, `GNTST_no_device_space`), as Xen's `xmalloc` failures are.
//! This makes one domain's growth able to refuse another's (as on Xen, whose heap is shared
//! too), but never the hypervisor's.
//!
//! [`Accounted`] wraps the global allocator and counts the bytes in use; the boot code tells
//! [`set_capacity`] the heap's size. Until it does (host tests), nothing is refused.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes handed out by the global allocator and not yet given back.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
/// The heap's size in bytes; 0 until [`set_capacity`] (no limit).
static CAPACITY: AtomicUsize = AtomicUsize::new(0);

/// The share of the heap guests' growth may not take (one eighth).
pub const RESERVE_FRACTION: usize = 8;

/// A global allocator that counts the bytes it hands out.
pub struct Accounted<A>(pub A);

impl<A> Accounted<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self(inner)
    }
}

// SAFETY: every call is forwarded unchanged to `A`, which upholds `GlobalAlloc`'s contract;
// the counting only reads the layouts.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Accounted<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { self.0.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_add(new_size, Ordering::Relaxed);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Records the heap's size (once it exists).
pub fn set_capacity(bytes: usize) {
    CAPACITY.store(bytes, Ordering::Relaxed);
}

/// Bytes of heap in use (for the boot and shutdown reports).
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

/// Whether a guest's request may make the hypervisor allocate `bytes` more: the heap must
/// keep its reserve afterwards. Refusals are logged (rate-limited) by the callers' errors.
pub fn guest_may_take(bytes: usize) -> bool {
    let capacity = testing::capacity().unwrap_or_else(|| CAPACITY.load(Ordering::Relaxed));
    if capacity == 0 {
        return true;
    }
    let in_use = testing::in_use().unwrap_or_else(in_use);
    let allowed = capacity - capacity / RESERVE_FRACTION;
    in_use.saturating_add(bytes) <= allowed
}

/// What host tests make [`guest_may_take`] see, per test thread (tests run in parallel and
/// share the real counters).
#[cfg(test)]
pub mod testing {
    use core::cell::Cell;

    std::thread_local! {
        static FAKE: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
    }

    /// Until [`clear`], this thread's heap has `capacity` bytes of which `in_use` are used.
    pub fn pretend(capacity: usize, in_use: usize) {
        FAKE.with(|f| f.set(Some((capacity, in_use))));
    }

    /// Back to the real counters.
    pub fn clear() {
        FAKE.with(|f| f.set(None));
    }

    pub(super) fn capacity() -> Option<usize> {
        FAKE.with(|f| f.get()).map(|(c, _)| c)
    }

    pub(super) fn in_use() -> Option<usize> {
        FAKE.with(|f| f.get()).map(|(_, u)| u)
    }
}

#[cfg(not(test))]
mod testing {
    pub(super) fn capacity() -> Option<usize> {
        None
    }

    pub(super) fn in_use() -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_keeps_the_reserve() {
        testing::pretend(16 << 20, 0);
        assert!(guest_may_take(14 << 20), "up to seven eighths");
        assert!(!guest_may_take((14 << 20) + 1), "not into the reserve");
        testing::pretend(16 << 20, 14 << 20);
        assert!(guest_may_take(0));
        assert!(!guest_may_take(1));
        testing::pretend(16 << 20, 15 << 20);
        assert!(!guest_may_take(0), "already in the reserve");
        assert!(!guest_may_take(usize::MAX), "no overflow");
        testing::pretend(0, 15 << 20);
        assert!(guest_may_take(usize::MAX >> 1), "no capacity known: no limit");
        testing::clear();
    }

    #[test]
    fn the_wrapper_counts_what_it_hands_out() {
        struct Plain;
        // SAFETY: forwards to the system allocator.
        unsafe impl GlobalAlloc for Plain {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                // SAFETY: forwarded.
                unsafe { std::alloc::System.alloc(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: forwarded.
                unsafe { std::alloc::System.dealloc(ptr, layout) }
            }
        }
        let heap = Accounted::new(Plain);
        let before = in_use();
        let layout = Layout::from_size_align(4096, 8).unwrap();
        // SAFETY: a valid layout; the block is given back below with the same layout.
        let p = unsafe { heap.alloc(layout) };
        assert!(!p.is_null());
        // Other test threads do not use this wrapper, so the counter moved by our blocks.
        assert_eq!(in_use() - before, 4096);
        // SAFETY: `p` came from `alloc` with `layout`.
        let q = unsafe { heap.realloc(p, layout, 8192) };
        assert!(!q.is_null());
        assert_eq!(in_use() - before, 8192);
        // SAFETY: `q` holds 8192 bytes with `layout`'s alignment.
        unsafe { heap.dealloc(q, Layout::from_size_align(8192, 8).unwrap()) };
        assert_eq!(in_use(), before);
    }
}
