//! Boot-time memory set-up: the frame allocator over the PVH memory map and the kernel heap.

use crate::arch::x86_64::{paging, smp};
use hypervisor::frame_alloc::{self, FrameAllocator, PhysRange, FRAME_SIZE};
use hypervisor::heap::{self, Accounted};
use hypervisor::pvh::{BootInfo, MEMMAP_TYPE_RAM};
use linked_list_allocator::LockedHeap;
use spin::Mutex;

/// Size of the hypervisor heap.
const HEAP_BYTES: u64 = 16 << 20;

/// The heap, counted so that guests' growth can be held to its share ([`hypervisor::heap`]).
#[global_allocator]
static HEAP: Accounted<LockedHeap> = Accounted::new(LockedHeap::empty());

/// The machine's free frames.
pub static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

extern "C" {
    static __image_phys_start: u8;
    static __image_phys_end: u8;
}

/// What `init` set up, for the boot report.
pub struct MemoryReport {
    /// Bytes of RAM in the memory map.
    pub ram_bytes: u64,
    /// Frames free after the heap was carved out.
    pub free_frames: u64,
    /// Heap size in bytes.
    pub heap_bytes: u64,
}

/// Why memory could not be set up.
pub enum MemoryError {
    /// The allocator could not be built.
    Build(frame_alloc::BuildError),
    /// No room for the allocator's bitmap or the heap.
    OutOfMemory(&'static str),
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Build(e) => write!(f, "frame allocator: {e:?}"),
            Self::OutOfMemory(what) => write!(f, "no room for the {what}"),
        }
    }
}

fn ram_ranges(info: &BootInfo) -> heapless::Vec<PhysRange, 128> {
    info.memmap.iter().filter(|r| r.kind == MEMMAP_TYPE_RAM).map(|r| PhysRange::with_len(r.addr, r.size)).collect()
}

/// Builds the frame allocator from everything usable that is not the image, a module or a
/// loader structure, then carves the heap out of it.
pub fn init(info: &BootInfo, mapped_top: u64) -> Result<MemoryReport, MemoryError> {
    // Only RAM the direct map covers can be handed out.
    let usable: heapless::Vec<PhysRange, 128> = ram_ranges(info)
        .iter()
        .map(|r| PhysRange { start: r.start, end: r.end.min(mapped_top) })
        .filter(|r| !r.is_empty())
        .collect();
    let mut reserved: heapless::Vec<PhysRange, 32> = heapless::Vec::new();
    // SAFETY: only the addresses of the linker symbols are taken.
    let (img_start, img_end) =
        unsafe { (&__image_phys_start as *const u8 as u64, &__image_phys_end as *const u8 as u64) };
    let too_many = |_| MemoryError::OutOfMemory("reserved-range list");
    reserved.push(PhysRange { start: img_start, end: img_end }).map_err(too_many)?;
    for m in &info.modules {
        reserved.push(PhysRange::with_len(m.paddr, m.size)).map_err(too_many)?;
    }
    for &(pa, len) in &info.structure_ranges {
        reserved.push(PhysRange::with_len(pa, len)).map_err(too_many)?;
    }
    // The application processors' start-up page (real mode needs it below 1 MiB).
    reserved.push(PhysRange::with_len(smp::TRAMPOLINE_PA, FRAME_SIZE)).map_err(too_many)?;

    let managed = frame_alloc::managed_ranges(&usable, &reserved).map_err(MemoryError::Build)?;
    let words = frame_alloc::bitmap_words_for(&managed);
    let bitmap_bytes = (words * 8) as u64;
    let bitmap_pa = frame_alloc::find_run(&managed, bitmap_bytes).ok_or(MemoryError::OutOfMemory("frame bitmap"))?;
    reserved.push(PhysRange::with_len(bitmap_pa, bitmap_bytes)).map_err(too_many)?;
    let managed = frame_alloc::managed_ranges(&usable, &reserved).map_err(MemoryError::Build)?;
    // SAFETY: the bitmap run is RAM inside the direct map, now excluded from allocation, and
    // this is its only reference.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(paging::phys_to_virt(bitmap_pa) as *mut u64, words) };
    let mut frames = FrameAllocator::new(bitmap, &managed).map_err(MemoryError::Build)?;

    let heap_start = frames.alloc_contiguous(HEAP_BYTES / FRAME_SIZE, 1).ok_or(MemoryError::OutOfMemory("heap"))?;
    // SAFETY: the frames were just taken from the allocator and are mapped by the direct map.
    unsafe { HEAP.0.lock().init(paging::phys_to_virt(heap_start * FRAME_SIZE) as *mut u8, HEAP_BYTES as usize) };
    heap::set_capacity(HEAP_BYTES as usize);
    let report = MemoryReport {
        ram_bytes: ram_ranges(info).iter().map(|r| r.end - r.start).sum(),
        free_frames: frames.free_frames(),
        heap_bytes: HEAP_BYTES,
    };
    *FRAMES.lock() = Some(frames);
    Ok(report)
}
