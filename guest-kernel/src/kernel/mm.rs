//! PV memory management for the kernel: the P2M list the builder left, the read-only M2P,
//! a pool of page-aligned frames from our image for page tables and user pages, and changing
//! the kernel's own mapping of such a frame (read-only before it becomes a page table,
//! writable again after) with `update_va_mapping`.

use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::arch::MACH2PHYS_VIRT_START;
use hypercall_abi::mm::{pte, UVMF_INVLPG};
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::Errno;

use crate::kernel::hyp;
use crate::pagepool::PagePool;

static P2M: AtomicU64 = AtomicU64::new(0);
static NR_PAGES: AtomicU64 = AtomicU64::new(0);

/// Records where the P2M list is (call once at start of day).
pub fn init(si: &StartInfo) {
    P2M.store(si.mfn_list, Ordering::SeqCst);
    NR_PAGES.store(si.nr_pages, Ordering::SeqCst);
}

/// The MFN backing guest PFN `pfn` (from the builder's P2M list).
pub fn pfn_to_mfn(pfn: u64) -> u64 {
    assert!(pfn < NR_PAGES.load(Ordering::SeqCst), "pfn {pfn:#x} out of range");
    let p2m = P2M.load(Ordering::SeqCst) as *const u64;
    // SAFETY: the builder maps the P2M list (nr_pages u64s) read-write for our lifetime.
    unsafe { p2m.add(pfn as usize).read_volatile() }
}

/// The MFN behind a virtual address of the bootstrap region (where VA = PFN << 12).
pub fn va_to_mfn(va: u64) -> u64 {
    pfn_to_mfn(va >> 12)
}

/// The PFN Xen's read-only M2P table records for `mfn`, or `None` if reading it faulted
/// (a trap handler that resumes `insn` fix-ups must be installed).
pub fn m2p(mfn: u64) -> Option<u64> {
    let before = crate::kernel::trap::traps_seen();
    // SAFETY: the M2P is read-only memory Xen maps into every PV address space; if it is
    // missing, the load faults and is resumed.
    let v = unsafe { crate::arch::x86_64::insn::peek(MACH2PHYS_VIRT_START + mfn * 8) };
    (crate::kernel::trap::traps_seen() == before).then_some(v)
}

/// A present, writable, accessed+dirty PTE for `mfn` with `extra` flags.
pub const fn pte_rw(mfn: u64, extra: u64) -> u64 {
    (mfn << 12) | pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY | extra
}

/// A present, read-only, accessed PTE for `mfn` with `extra` flags.
pub const fn pte_ro(mfn: u64, extra: u64) -> u64 {
    (mfn << 12) | pte::PRESENT | pte::ACCESSED | extra
}

/// Remaps our own page at `va` read-only (before Xen may use it as a page table).
pub fn make_readonly(va: u64) -> Result<u64, Errno> {
    // SAFETY: `va` is a pool page we own; only its write permission changes.
    unsafe { hyp::update_va_mapping(va, pte_ro(va_to_mfn(va), 0), UVMF_INVLPG) }
}

/// Remaps our own page at `va` writable again.
pub fn make_writable(va: u64) -> Result<u64, Errno> {
    // SAFETY: as in `make_readonly`.
    unsafe { hyp::update_va_mapping(va, pte_rw(va_to_mfn(va), 0), UVMF_INVLPG) }
}

/// Pages in the pool.
pub const POOL_PAGES: usize = 128;

/// The pool's backing memory: ordinary pages of our image, mapped writable at start.
#[repr(C, align(4096))]
struct Pool([[u8; 4096]; POOL_PAGES]);
static mut POOL: Pool = Pool([[0; 4096]; POOL_PAGES]);
static mut ALLOC: PagePool<2> = PagePool::new(POOL_PAGES);

/// A pool page: its virtual address in the kernel's mapping and its MFN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Kernel virtual address (page aligned).
    pub va: u64,
    /// Machine frame number.
    pub mfn: u64,
}

impl Frame {
    /// The page as 512 entries (only while it is mapped writable).
    ///
    /// # Safety
    /// The page must be mapped writable and not aliased by another live reference.
    pub unsafe fn entries(&self) -> &'static mut [u64; 512] {
        // SAFETY: the caller's contract; pool pages are 4096-byte aligned.
        unsafe { &mut *(self.va as *mut [u64; 512]) }
    }

    /// Reads entry `i` (also fine while the page is mapped read-only).
    pub fn read(&self, i: usize) -> u64 {
        // SAFETY: the page is mapped (RO or RW) for the kernel's lifetime; i < 512.
        unsafe { (self.va as *const u64).add(i % 512).read_volatile() }
    }
}

/// Takes a zeroed, writable pool page.
pub fn alloc_frame() -> Option<Frame> {
    // SAFETY: the kernel is single-threaded and the allocator is only touched here and in
    // `free_frame`, never from trap context.
    let i = unsafe { (*core::ptr::addr_of_mut!(ALLOC)).alloc()? };
    let va = core::ptr::addr_of!(POOL) as u64 + 4096 * i as u64;
    let frame = Frame { va, mfn: va_to_mfn(va) };
    // SAFETY: a freshly allocated pool page is mapped writable and owned by the caller.
    unsafe { frame.entries().fill(0) };
    Some(frame)
}

/// Returns a pool page (it must be mapped writable again and unused by Xen).
pub fn free_frame(frame: Frame) {
    let i = ((frame.va - core::ptr::addr_of!(POOL) as u64) / 4096) as usize;
    // SAFETY: as in `alloc_frame`.
    unsafe {
        (*core::ptr::addr_of_mut!(ALLOC)).free(i);
    }
}
