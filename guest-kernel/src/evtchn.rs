//! The guest side of 2-level event delivery (xen-pv-abi.md §3.9), over a `shared_info`
//! reached through a raw pointer (the mapped page in the kernel, a heap copy in host tests):
//! the upcall scan (clear `evtchn_upcall_pending`, swap `evtchn_pending_sel` to 0, take the
//! unmasked pending bits of each selected word, clear each one and hand the port on, repeat
//! while `evtchn_upcall_pending` is set again) and the per-port mask and pending bits.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hypercall_abi::shared_info::SharedInfo;

/// Access to one `shared_info` page and one vCPU's `vcpu_info` in it.
#[derive(Clone, Copy, Debug)]
pub struct EventBits {
    page: *mut SharedInfo,
    vcpu: usize,
}

// SAFETY: the page is shared memory accessed only through atomics and volatile accesses.
unsafe impl Send for EventBits {}
// SAFETY: as above.
unsafe impl Sync for EventBits {}

impl EventBits {
    /// Wraps `page` for vCPU `vcpu`.
    ///
    /// # Safety
    /// `page` must point at a `shared_info` that stays mapped and 8-byte aligned while the
    /// value is used.
    pub const unsafe fn new(page: *mut SharedInfo, vcpu: usize) -> Self {
        Self { page, vcpu }
    }

    /// The `shared_info` pointer.
    pub fn page(&self) -> *mut SharedInfo {
        self.page
    }

    fn word(&self, field: *mut u64) -> &AtomicU64 {
        // SAFETY: `field` points into the page (`new`'s contract), aligned, shared with Xen
        // which updates it atomically.
        unsafe { AtomicU64::from_ptr(field) }
    }

    fn byte(&self, field: *mut u8) -> &AtomicU8 {
        // SAFETY: as in `word`.
        unsafe { AtomicU8::from_ptr(field) }
    }

    fn pending_word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: in-bounds field of the page (`i % 64`).
        self.word(unsafe { core::ptr::addr_of_mut!((*self.page).evtchn_pending[i % 64]) })
    }

    fn mask_word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: in-bounds field of the page.
        self.word(unsafe { core::ptr::addr_of_mut!((*self.page).evtchn_mask[i % 64]) })
    }

    /// `evtchn_upcall_pending` of our vCPU.
    pub fn upcall_pending(&self) -> &AtomicU8 {
        // SAFETY: in-bounds field of the page.
        self.byte(unsafe { core::ptr::addr_of_mut!((*self.page).vcpu_info[self.vcpu].evtchn_upcall_pending) })
    }

    /// `evtchn_upcall_mask` of our vCPU (the virtual interrupt flag, inverted).
    pub fn upcall_mask(&self) -> &AtomicU8 {
        // SAFETY: in-bounds field of the page.
        self.byte(unsafe { core::ptr::addr_of_mut!((*self.page).vcpu_info[self.vcpu].evtchn_upcall_mask) })
    }

    /// `evtchn_pending_sel` of our vCPU.
    pub fn pending_sel(&self) -> &AtomicU64 {
        // SAFETY: in-bounds field of the page.
        self.word(unsafe { core::ptr::addr_of_mut!((*self.page).vcpu_info[self.vcpu].evtchn_pending_sel) })
    }

    /// `vcpu_info.arch.cr2` of our vCPU (the address of the last #PF delivered).
    pub fn cr2(&self) -> u64 {
        // SAFETY: in-bounds field of the page.
        self.word(unsafe { core::ptr::addr_of_mut!((*self.page).vcpu_info[self.vcpu].arch.cr2) }).load(Ordering::SeqCst)
    }

    /// Whether `port` is pending.
    pub fn is_pending(&self, port: u32) -> bool {
        self.pending_word(port as usize / 64).load(Ordering::SeqCst) & (1 << (port % 64)) != 0
    }

    /// Whether `port` is masked.
    pub fn is_masked(&self, port: u32) -> bool {
        self.mask_word(port as usize / 64).load(Ordering::SeqCst) & (1 << (port % 64)) != 0
    }

    /// Clears `port`'s pending bit.
    pub fn clear_pending(&self, port: u32) {
        self.pending_word(port as usize / 64).fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
    }

    /// Sets `port`'s mask bit (the guest may do this itself; unmasking goes through
    /// `EVTCHNOP_unmask` so that Xen re-raises a pending port).
    pub fn mask(&self, port: u32) {
        self.mask_word(port as usize / 64).fetch_or(1 << (port % 64), Ordering::SeqCst);
    }

    /// The upcall scan: calls `handle(port)` for every pending, unmasked port (clearing its
    /// pending bit first) and returns how many ports were handled.
    pub fn scan(&self, mut handle: impl FnMut(u32)) -> u32 {
        let mut handled = 0;
        loop {
            self.upcall_pending().store(0, Ordering::SeqCst);
            let sel = self.pending_sel().swap(0, Ordering::SeqCst);
            let mut words = sel;
            while words != 0 {
                let i = words.trailing_zeros() as usize;
                words &= words - 1;
                let mut bits = self.pending_word(i).load(Ordering::SeqCst) & !self.mask_word(i).load(Ordering::SeqCst);
                while bits != 0 {
                    let j = bits.trailing_zeros();
                    bits &= bits - 1;
                    let port = (i as u32) * 64 + j;
                    self.clear_pending(port);
                    handled += 1;
                    handle(port);
                }
            }
            if self.upcall_pending().load(Ordering::SeqCst) == 0 {
                return handled;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    fn raise(si: &mut SharedInfo, port: u32) {
        si.evtchn_pending[port as usize / 64] |= 1 << (port % 64);
        if si.evtchn_mask[port as usize / 64] & (1 << (port % 64)) == 0 {
            si.vcpu_info[0].evtchn_pending_sel |= 1 << (port / 64);
            si.vcpu_info[0].evtchn_upcall_pending = 1;
        }
    }

    #[test]
    fn scan_handles_unmasked_pending_ports_in_order() {
        let mut si = Box::new(SharedInfo::zeroed());
        raise(&mut si, 3);
        raise(&mut si, 70);
        si.evtchn_mask[0] |= 1 << 5;
        raise(&mut si, 5);
        let page: *mut SharedInfo = &mut *si;
        // SAFETY: the box outlives `ev`.
        let ev = unsafe { EventBits::new(page, 0) };
        let mut got = Vec::new();
        assert_eq!(ev.scan(|p| got.push(p)), 2);
        assert_eq!(got, [3, 70]);
        assert!(!ev.is_pending(3) && !ev.is_pending(70));
        assert!(ev.is_pending(5) && ev.is_masked(5), "masked port stays pending");
        assert_eq!(ev.upcall_pending().load(Ordering::SeqCst), 0);
        assert_eq!(ev.pending_sel().load(Ordering::SeqCst), 0);
        ev.clear_pending(5);
        assert!(!ev.is_pending(5));
        ev.mask(9);
        assert!(ev.is_masked(9));
        assert_eq!(ev.cr2(), 0);
    }

    #[test]
    fn scan_with_nothing_pending_is_empty() {
        let mut si = Box::new(SharedInfo::zeroed());
        let page: *mut SharedInfo = &mut *si;
        // SAFETY: as above.
        let ev = unsafe { EventBits::new(page, 0) };
        assert_eq!(ev.scan(|_| panic!("no port")), 0);
    }
}
