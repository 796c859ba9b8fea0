//! The hypervisor's own address space: its image in PML4 slot 261 and a direct map of
//! physical memory from slot 262, both inside Xen's reserved range (slots 256-271), which
//! later appears in every guest address space, supervisor-only.

use super::boot::IMAGE_VIRT_OFFSET;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU64, Ordering};

/// Virtual address of physical address 0 in the direct map (Xen's `DIRECTMAP_VIRT_START`).
pub const DIRECTMAP_BASE: u64 = 0xffff_8300_0000_0000;
/// Most physical memory the direct map covers (static tables: one PD per GiB).
pub const DIRECTMAP_MAX: u64 = 64 << 30;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const GLOBAL: u64 = 1 << 8;
const NO_EXECUTE: u64 = 1 << 63;
const TWO_MIB: u64 = 2 << 20;

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut PML4: Table = Table([0; 512]);
static mut DIRECTMAP_PDPT: Table = Table([0; 512]);
static mut DIRECTMAP_PDS: [Table; (DIRECTMAP_MAX >> 30) as usize] =
    [const { Table([0; 512]) }; (DIRECTMAP_MAX >> 30) as usize];

extern "C" {
    static boot_pml4: u64;
    /// The image mapping's page directory (boot.rs): the first GiB of physical memory in
    /// 2 MiB pages, at `IMAGE_VIRT_OFFSET` (and identity-mapped while the boot tables live).
    /// Linked at its physical address.
    static mut boot_pd: [u64; 512];
}

/// 4 KiB tables for the 2 MiB image pages that hold guard pages: one, the ring-0 stacks'
/// own page (`linker.ld`).
static mut GUARD_TABLES: [Table; 1] = [const { Table([0; 512]) }; 1];

/// Physical address of a hypervisor-image object.
fn image_phys(va: u64) -> u64 {
    va - IMAGE_VIRT_OFFSET
}

/// Virtual address, in the direct map, of physical address `pa`.
pub fn phys_to_virt(pa: u64) -> u64 {
    DIRECTMAP_BASE + pa
}

/// Builds the direct map of `[0, top)` (rounded up to 2 MiB, capped at [`DIRECTMAP_MAX`]),
/// keeps the image mapping, drops the boot identity map, and switches to the new tables.
/// `is_ram(pa)` tells which 2 MiB pages hold RAM; the rest (device memory such as the LAPIC)
/// is mapped uncached. Returns the top actually mapped.
pub fn init(top: u64, is_ram: impl Fn(u64, u64) -> bool) -> u64 {
    let top = top.next_multiple_of(TWO_MIB).min(DIRECTMAP_MAX);
    // SAFETY: single-threaded boot; these tables are not in use until CR3 is loaded below.
    let (pml4, pdpt, pds) =
        unsafe { (&mut *addr_of_mut!(PML4), &mut *addr_of_mut!(DIRECTMAP_PDPT), &mut *addr_of_mut!(DIRECTMAP_PDS)) };
    let mut pa = 0;
    while pa < top {
        let (gib, index) = ((pa >> 30) as usize, ((pa >> 21) & 511) as usize);
        let cache = if is_ram(pa, TWO_MIB) { 0 } else { CACHE_DISABLE | WRITE_THROUGH };
        pds[gib].0[index] = pa | PRESENT | WRITABLE | HUGE | GLOBAL | NO_EXECUTE | cache;
        pa += TWO_MIB;
    }
    for (entry, pd) in pdpt.0.iter_mut().zip(pds.iter()).take(top.div_ceil(1 << 30) as usize) {
        *entry = image_phys(addr_of!(*pd) as u64) | PRESENT | WRITABLE;
    }
    let slot = ((DIRECTMAP_BASE >> 39) & 511) as usize;
    pml4.0[slot] = image_phys(addr_of!(*pdpt) as u64) | PRESENT | WRITABLE;
    // The image slot keeps the boot PDPT (first GiB in 2 MiB pages, see boot.rs).
    let image_slot = ((IMAGE_VIRT_OFFSET >> 39) & 511) as usize;
    // SAFETY: boot_pml4 is the boot table in .boot.data, identity-mapped and still live.
    let boot = unsafe { &*(addr_of!(boot_pml4) as *const [u64; 512]) };
    pml4.0[image_slot] = boot[image_slot];

    // Enable global pages and NX before switching (EFER.NXE was set at boot).
    // SAFETY: CR4.PGE only changes TLB retention; the new tables map everything we touch.
    unsafe {
        use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
        use x86_64::structures::paging::PhysFrame;
        use x86_64::PhysAddr;
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
        let frame = PhysFrame::containing_address(PhysAddr::new(image_phys(addr_of!(*pml4) as u64)));
        Cr3::write(frame, Cr3Flags::empty());
    }
    top
}

/// Unmaps the 4 KiB pages at `guards` (addresses in the image, page-aligned) so that a
/// stack running into one faults. The 2 MiB page holding each is first split into 4 KiB
/// pages with the same translation and attributes. The image mapping is shared by every
/// address space (guests' L4s carry the hypervisor's slots), so the guards hold in all of
/// them. Boot CPU only, before the other CPUs start. `false` if a guard is not a page of the
/// image's first GiB or more 2 MiB pages need splitting than there are tables for.
pub fn unmap_guard_pages(guards: &[u64]) -> bool {
    // SAFETY: single-threaded boot (no other CPU runs yet); splitting a 2 MiB page into 512
    // pages with the same translation changes no address's meaning, and the guard pages are
    // only ever reached by a stack overflow. The TLB is flushed below.
    // `boot_pd` is linked at its physical address (boot.rs), no longer mapped there: it is
    // reached through the direct map.
    let (pd, tables) = unsafe {
        (&mut *(phys_to_virt(addr_of_mut!(boot_pd) as u64) as *mut [u64; 512]), &mut *addr_of_mut!(GUARD_TABLES))
    };
    let mut used = 0;
    let mut ok = true;
    for &va in guards {
        let pa = va.wrapping_sub(IMAGE_VIRT_OFFSET);
        if pa >= 1 << 30 || va % 4096 != 0 {
            ok = false;
            continue;
        }
        let slot = &mut pd[(pa >> 21) as usize];
        if *slot & HUGE != 0 {
            let Some(table) = tables.get_mut(used) else {
                ok = false;
                continue;
            };
            used += 1;
            let (base, attributes) = (*slot & 0x000f_ffff_ffe0_0000, *slot & (NO_EXECUTE | 0xfff) & !HUGE);
            for (i, entry) in table.0.iter_mut().enumerate() {
                *entry = (base + i as u64 * 4096) | attributes;
            }
            *slot = image_phys(addr_of!(*table) as u64) | PRESENT | WRITABLE;
        }
        let table_pa = *slot & 0x000f_ffff_ffff_f000;
        // SAFETY: `table_pa` is one of `GUARD_TABLES` (installed above), which the image maps.
        let table = unsafe { &mut *((table_pa + IMAGE_VIRT_OFFSET) as *mut [u64; 512]) };
        table[((pa >> 12) & 511) as usize] = 0;
    }
    x86_64::instructions::tlb::flush_all();
    ok
}

/// Switches an application processor from the boot page table to the hypervisor's (with
/// global pages enabled, as the boot CPU has them).
pub fn load_hypervisor_tables() {
    // SAFETY: the hypervisor's tables map the image, stacks and direct map exactly as the
    // boot CPU uses them; CR4.PGE only changes TLB retention.
    unsafe {
        use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
        use x86_64::structures::paging::PhysFrame;
        use x86_64::PhysAddr;
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
        Cr3::write(PhysFrame::containing_address(PhysAddr::new(hypervisor_pml4_phys())), Cr3Flags::empty());
    }
}

/// Physical address of the hypervisor's root table (guest L4s copy its slots 256-271).
pub fn hypervisor_pml4_phys() -> u64 {
    image_phys(addr_of!(PML4) as u64)
}

/// Reads physical memory through the direct map; `false` outside it.
pub fn read_phys(pa: u64, out: &mut [u8], mapped_top: u64) -> bool {
    match pa.checked_add(out.len() as u64) {
        Some(end) if end <= mapped_top => {
            // SAFETY: [pa, end) lies inside the direct map, which maps it readable.
            unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(pa) as *const u8, out.as_mut_ptr(), out.len()) };
            true
        }
        _ => false,
    }
}

/// Machine memory reached through the direct map, for the generic builder and guest walker.
pub struct DirectMap {
    /// Top of the mapped physical range.
    pub top: u64,
}

impl DirectMap {
    fn ok(&self, maddr: u64, len: usize) -> bool {
        maddr.checked_add(len as u64).is_some_and(|end| end <= self.top)
    }

    /// Reads one byte (shared_info flags on the exit path): a bounds check and a load.
    pub fn read_u8(&self, maddr: u64) -> u8 {
        if !self.ok(maddr, 1) {
            return 0;
        }
        // SAFETY: the byte lies inside the direct map (checked).
        unsafe { (phys_to_virt(maddr) as *const u8).read() }
    }

    /// Writes one byte, if inside the direct map.
    pub fn write_u8(&mut self, maddr: u64, value: u8) {
        if self.ok(maddr, 1) {
            // SAFETY: inside the direct map (checked); callers write pages of the running domain.
            unsafe { (phys_to_virt(maddr) as *mut u8).write(value) }
        }
    }

    /// Writes one little-endian `u64`, if inside the direct map.
    pub fn write_u64(&mut self, maddr: u64, value: u64) {
        if self.ok(maddr, 8) {
            // SAFETY: as for `write_u8`; unaligned stores are allowed on x86.
            unsafe { (phys_to_virt(maddr) as *mut u64).write_unaligned(value) }
        }
    }

    /// Entry `index` (0..512) of frame `mfn` as an atomic word, if the direct map holds it.
    fn entry_word(&self, mfn: u64, index: usize) -> Option<&AtomicU64> {
        let pa = (mfn << 12) + (index as u64 % 512) * 8;
        // SAFETY: the word lies inside the direct map (checked), is 8-aligned, and atomics
        // are how every CPU (and guest) that shares it writes it concurrently.
        self.ok(pa, 8).then(|| unsafe { AtomicU64::from_ptr(phys_to_virt(pa) as *mut u64) })
    }

    /// Zeroes the frame `mfn`.
    pub fn zero_frame(&mut self, mfn: u64) {
        assert!(self.ok(mfn << 12, 4096), "zeroing an unmapped frame {mfn:#x}");
        // SAFETY: the frame lies inside the direct map and the caller owns it.
        unsafe { core::ptr::write_bytes(phys_to_virt(mfn << 12) as *mut u8, 0, 4096) };
    }
}

impl hypervisor::domain_layout::MachineMemory for DirectMap {
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) {
        let _ = hypervisor::guest_access::MachineAccess::write_bytes(
            self,
            (mfn << 12) + index as u64 * 8,
            &value.to_le_bytes(),
        );
    }
    #[inline]
    fn read_entry(&self, mfn: u64, index: usize) -> u64 {
        hypervisor::guest_access::MachineAccess::read_u64(self, (mfn << 12) + index as u64 * 8).unwrap_or(0)
    }
    fn compare_exchange_entry(&mut self, mfn: u64, index: usize, current: u64, new: u64) -> bool {
        match self.entry_word(mfn, index) {
            Some(word) => word.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst).is_ok(),
            None => false,
        }
    }
    fn clear_entry_bits(&mut self, mfn: u64, index: usize, bits: u64) {
        if let Some(word) = self.entry_word(mfn, index) {
            word.fetch_and(!bits, Ordering::SeqCst);
        }
    }
    #[inline]
    fn read_frame_bytes(&self, mfn: u64, offset: usize, out: &mut [u8]) {
        // Outside the direct map (callers check first): zeros, never what `out` held before.
        if !hypervisor::guest_access::MachineAccess::read_bytes(self, (mfn << 12) + offset as u64, out) {
            out.fill(0);
        }
    }
    #[inline]
    fn copy_frame_bytes(&mut self, src: u64, src_offset: usize, dst: u64, dst_offset: usize, len: usize) {
        let (from, to) = ((src << 12) + src_offset as u64, (dst << 12) + dst_offset as u64);
        // Both ranges end inside the direct map exactly if the higher one does (one check
        // instead of two: this runs for every grant copy).
        if !self.ok(from.max(to), len) {
            return;
        }
        let (src_ptr, dst_ptr) = (phys_to_virt(from), phys_to_virt(to));
        if src != dst && from.is_multiple_of(8) && to.is_multiple_of(8) && len.is_multiple_of(8) {
            // Whole quadwords between different frames (the usual 4 KiB grant copy): one
            // `rep movsq`, which QEMU's TCG runs far faster than a generic byte-wise memmove.
            // SAFETY: both ranges are inside the direct map (checked), in distinct frames so
            // they cannot overlap, and DF is clear in the hypervisor (cld on every entry).
            unsafe {
                core::arch::asm!("rep movsq", inout("rcx") len / 8 => _, inout("rsi") src_ptr => _,
                    inout("rdi") dst_ptr => _, options(nostack, preserves_flags));
            }
        } else {
            // SAFETY: both ranges lie inside the direct map (checked) and within the frames the
            // grant code pinned for this copy; `copy` tolerates overlap.
            unsafe { core::ptr::copy(src_ptr as *const u8, dst_ptr as *mut u8, len) };
        }
    }
    #[inline]
    fn write_frame_bytes(&mut self, mfn: u64, offset: usize, bytes: &[u8]) {
        let _ = hypervisor::guest_access::MachineAccess::write_bytes(self, (mfn << 12) + offset as u64, bytes);
    }
}

impl hypervisor::guest_access::MachineAccess for DirectMap {
    fn read_u64(&self, maddr: u64) -> Option<u64> {
        // Every level of every guest page walk comes here: one bounds check and one load.
        if !self.ok(maddr, 8) {
            return None;
        }
        // SAFETY: the 8 bytes lie inside the direct map (checked); unaligned is allowed.
        Some(unsafe { (phys_to_virt(maddr) as *const u64).read_unaligned() })
    }
    fn read_bytes(&self, maddr: u64, out: &mut [u8]) -> bool {
        read_phys(maddr, out, self.top)
    }
    fn write_bytes(&mut self, maddr: u64, bytes: &[u8]) -> bool {
        if !self.ok(maddr, bytes.len()) {
            return false;
        }
        // SAFETY: the range lies inside the direct map; callers write only frames they own.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), phys_to_virt(maddr) as *mut u8, bytes.len()) };
        true
    }
}

impl hypervisor::guest_stack::WordAccess for DirectMap {
    // Inlined so that the callers' constant lengths (a bounce frame, an `iret_context`) turn
    // the copies into a few moves: a `memcpy` call would use `rep movs`, which QEMU's TCG
    // runs one iteration at a time.
    #[inline]
    fn write_u64s(&mut self, maddr: u64, words: &[u64]) -> bool {
        if !self.ok(maddr, words.len() * 8) {
            return false;
        }
        // SAFETY: the run lies inside the direct map (checked) and the caller translated it
        // from a guest address with write rights; byte copies need no alignment, and x86 is
        // little-endian, as the guest expects.
        unsafe {
            core::ptr::copy_nonoverlapping(words.as_ptr().cast::<u8>(), phys_to_virt(maddr) as *mut u8, words.len() * 8)
        };
        true
    }
    #[inline]
    fn read_u64s(&self, maddr: u64, out: &mut [u64]) -> bool {
        if !self.ok(maddr, out.len() * 8) {
            return false;
        }
        // SAFETY: the run lies inside the direct map (checked); as for `write_u64s`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(maddr) as *const u8,
                out.as_mut_ptr().cast::<u8>(),
                out.len() * 8,
            )
        };
        true
    }
}

/// Where guests read the machine-to-physical table (Xen's `MACH2PHYS_VIRT_START`, slot 256).
pub const M2P_VIRT_START: u64 = 0xffff_8000_0000_0000;
const USER: u64 = 1 << 2;

/// Maps `nr_frames` machine frames from `first_mfn` (the M2P array) read-only and
/// user-readable at [`M2P_VIRT_START`] in the hypervisor's L4, from where the PV MMU copies
/// slot 256 into every guest L4 (PV guest kernels run in ring 3 and read the M2P directly).
/// Table frames come from `alloc`, zeroed here. Returns `false` if `alloc` ran dry or the
/// array exceeds one slot (512 GiB of M2P).
pub fn map_m2p(first_mfn: u64, nr_frames: u64, mut alloc: impl FnMut() -> Option<u64>) -> bool {
    if nr_frames > 512 * 512 * 512 {
        return false;
    }
    let mut new_table = || -> Option<u64> {
        let mfn = alloc()?;
        // SAFETY: a fresh frame from the allocator, inside the direct map, owned by us.
        unsafe { core::ptr::write_bytes(phys_to_virt(mfn << 12) as *mut u8, 0, 4096) };
        Some(mfn << 12)
    };
    let entry = |table: u64, index: u64| (phys_to_virt(table) + index * 8) as *mut u64;
    let Some(pdpt) = new_table() else { return false };
    let mut pd = 0;
    let mut pt = 0;
    for i in 0..nr_frames {
        let va = M2P_VIRT_START + i * 4096;
        if i % (512 * 512) == 0 {
            let Some(t) = new_table() else { return false };
            pd = t;
            // SAFETY: `pdpt` is our fresh table; the index is below 512.
            unsafe { entry(pdpt, (va >> 30) & 511).write(pd | PRESENT | USER) };
        }
        if i % 512 == 0 {
            let Some(t) = new_table() else { return false };
            pt = t;
            // SAFETY: as above, for `pd`.
            unsafe { entry(pd, (va >> 21) & 511).write(pt | PRESENT | USER) };
        }
        // Read-only (no WRITABLE) and never executable.
        // SAFETY: as above, for `pt`.
        unsafe { entry(pt, (va >> 12) & 511).write(((first_mfn + i) << 12) | PRESENT | USER | NO_EXECUTE) };
    }
    // SAFETY: single-threaded set-up before any guest runs; slot 256 was empty.
    let pml4 = unsafe { &mut *addr_of_mut!(PML4) };
    pml4.0[((M2P_VIRT_START >> 39) & 511) as usize] = pdpt | PRESENT | USER;
    true
}
