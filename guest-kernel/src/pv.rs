//! PV platform services built on hypercalls: mapping `shared_info`, reading the PV clock and
//! the 2-level event-channel bits.

use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::guest::raw;
use hypercall_abi::mm::{pte, UVMF_INVLPG};
use hypercall_abi::shared_info::SharedInfo;
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::{hypercall, Errno};

use crate::arch::x86_64 as arch;

/// The mapped `shared_info` page.
#[derive(Clone, Copy)]
pub struct Shared {
    page: *mut SharedInfo,
}

impl Shared {
    /// Maps `start_info.shared_info` (a machine address) over the kernel's reserved slot with
    /// `update_va_mapping(slot, maddr | P|RW|A|D, UVMF_INVLPG)`.
    pub fn map(si: &StartInfo) -> Result<Self, Errno> {
        let slot = arch::shared_info_slot_address();
        let new_pte = (si.shared_info & pte::ADDR_MASK) | pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY;
        // SAFETY: the slot is a page of our own image reserved for this mapping and never
        // used as ordinary memory; replacing its PTE affects nothing else.
        let ret = unsafe { raw::hypercall3(hypercall::UPDATE_VA_MAPPING, slot, new_pte, UVMF_INVLPG) };
        Errno::check(ret)?;
        Ok(Self { page: slot as *mut SharedInfo })
    }

    /// Wraps an already mapped page.
    ///
    /// # Safety
    /// `page` must be the mapped `shared_info`, kept mapped while the value is used.
    pub unsafe fn from_raw(page: *mut SharedInfo) -> Self {
        Self { page }
    }

    /// The mapped page.
    pub fn raw(&self) -> *mut SharedInfo {
        self.page
    }

    /// The wall clock (`wc_sec` with `wc_sec_hi`, `wc_nsec`) at system time 0, read with the
    /// `wc_version` protocol; also returns the version seen.
    pub fn wallclock(&self) -> (u64, u32, u32) {
        loop {
            // SAFETY: see `upcall_mask`; fields read volatile and re-validated below.
            let v1 = unsafe { core::ptr::addr_of!((*self.page).wc_version).read_volatile() };
            // Acquire: the version read happens before the data reads.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let (lo, hi, ns) = unsafe {
                (
                    core::ptr::addr_of!((*self.page).wc_sec).read_volatile(),
                    core::ptr::addr_of!((*self.page).wc_sec_hi).read_volatile(),
                    core::ptr::addr_of!((*self.page).wc_nsec).read_volatile(),
                )
            };
            // Acquire: the data reads happen before the version re-read.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let v2 = unsafe { core::ptr::addr_of!((*self.page).wc_version).read_volatile() };
            if v1 == v2 && v1 & 1 == 0 {
                return (((hi as u64) << 32) | lo as u64, ns, v1);
            }
        }
    }

    /// A consistent snapshot of vCPU 0's `vcpu_time_info` (seqlock read).
    pub fn time_snapshot(&self) -> hypercall_abi::shared_info::VcpuTimeInfo {
        loop {
            // SAFETY: see `upcall_mask`.
            let time = unsafe { core::ptr::addr_of!((*self.page).vcpu_info[0].time) };
            // SAFETY: as above.
            let v1 = unsafe { core::ptr::addr_of!((*time).version).read_volatile() };
            // Acquire: the version read happens before the data reads.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let snap = unsafe { time.read_volatile() };
            // Acquire: the data reads happen before the version re-read.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let v2 = unsafe { core::ptr::addr_of!((*time).version).read_volatile() };
            if v1 == v2 && v1 & 1 == 0 {
                return snap;
            }
        }
    }

    /// vCPU 0's `evtchn_upcall_mask`.
    pub fn upcall_mask(&self) -> u8 {
        // SAFETY: `page` maps the shared_info frame for the kernel's lifetime; volatile
        // because Xen writes it.
        unsafe { core::ptr::addr_of!((*self.page).vcpu_info[0].evtchn_upcall_mask).read_volatile() }
    }

    /// Current system time (ns since boot) from vCPU 0's `vcpu_time_info`, read as a seqlock.
    pub fn system_time_ns(&self) -> u64 {
        loop {
            // SAFETY: see `upcall_mask`; the record is read volatile and re-validated below.
            let time = unsafe { core::ptr::addr_of!((*self.page).vcpu_info[0].time) };
            // SAFETY: as above.
            let v1 = unsafe { core::ptr::addr_of!((*time).version).read_volatile() };
            // Acquire: the version read happens before the data reads.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let snap = unsafe { time.read_volatile() };
            let tsc = hypercall_abi::guest::rdtsc();
            // Acquire: the data reads happen before the version re-read.
            core::sync::atomic::fence(Ordering::Acquire);
            // SAFETY: as above.
            let v2 = unsafe { core::ptr::addr_of!((*time).version).read_volatile() };
            if v1 == v2 && v1 & 1 == 0 {
                return snap.system_time_at(tsc);
            }
        }
    }

    fn pending_word(&self, port: u32) -> &AtomicU64 {
        // SAFETY: the word is inside the mapped page, 8-byte aligned, and shared with Xen,
        // which also updates it atomically; port / 64 < 64 for every 2-level port.
        unsafe { AtomicU64::from_ptr(core::ptr::addr_of_mut!((*self.page).evtchn_pending[(port as usize / 64) % 64])) }
    }

    /// Whether `port`'s pending bit is set.
    pub fn is_pending(&self, port: u32) -> bool {
        self.pending_word(port).load(Ordering::SeqCst) & (1 << (port % 64)) != 0
    }

    /// Clears `port`'s pending bit (atomically: Xen may set other bits concurrently).
    pub fn clear_pending(&self, port: u32) {
        self.pending_word(port).fetch_and(!(1 << (port % 64)), Ordering::SeqCst);
    }
}
