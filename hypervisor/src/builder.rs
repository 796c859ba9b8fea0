//! The PV domain builder (Xen's `dom0_construct_pv` and libxenguest's PV builder): loads a
//! checked guest ELF into fresh frames and lays out P2M, start_info, (domU) xenstore and
//! console pages, bootstrap page tables, hypercall page and boot stack.
//!
//! The arithmetic lives in the host-tested `hypervisor::domain_layout`; this file allocates
//! and writes machine memory.

use crate::arch::x86_64::{gdt, idt::TrapFrame, paging};
use crate::domain::Domain;
use crate::memory::FRAMES;
use alloc::vec::Vec;
use hypercall_abi::hypercall::{hypercall_stub, HYPERCALL_STUB_SIZE, IRET, IRET_STUB};
use hypercall_abi::start_info::{
    StartInfo, StartInfoConsoleDom0, StartInfoConsoleDomU, SIF_INITDOMAIN, SIF_PRIVILEGED,
};
use hypervisor::domain_layout::{self, Layout, LayoutInput, MachineMemory, PageList, PAGE};
use hypervisor::elf_image::{self, GuestImage};
use hypervisor::guest_access::MachineAccess;
use hypervisor::vcpu::VcpuState;

/// Default dom0 size when `dom0_mem=` is not given.
pub const DEFAULT_DOM0_BYTES: u64 = 128 << 20;
/// Frames kept back for the hypervisor when sizing dom0 by default.
const HYPERVISOR_RESERVE_FRAMES: u64 = 2048;

/// What to build.
pub struct BuildRequest<'a> {
    /// Domain id (0 = dom0).
    pub id: u16,
    /// Name for logs and `xl list`.
    pub name: &'a str,
    /// The guest ELF.
    pub image: &'a [u8],
    /// The guest's command line.
    pub cmdline: &'a str,
    /// Memory in bytes (`None`: dom0's default).
    pub memory_bytes: Option<u64>,
    /// dom0: privileged, initial domain, no xenstore/console pages.
    pub privileged: bool,
    /// Event channel of the xenstore ring (domU; 0 for dom0).
    pub store_evtchn: u32,
    /// Event channel of the console ring (domU; 0 for dom0).
    pub console_evtchn: u32,
}

/// A built domain, ready to start.
pub struct Built {
    /// The domain.
    pub domain: Domain,
    /// Its initial register frame.
    pub frame: TrapFrame,
    /// A domU's xenstore and console ring frames (`start_info.store_mfn`, `console.domU.mfn`),
    /// which its grant table offers dom0 at the reserved references, as xl's toolstack does.
    pub ring_frames: Option<(u64, u64)>,
}

/// Why a domain could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The image was refused.
    Image(elf_image::ImageError),
    /// The layout does not fit.
    Layout(domain_layout::LayoutError),
    /// Not enough free memory.
    OutOfMemory {
        /// Frames wanted.
        wanted: u64,
        /// Frames free.
        free: u64,
    },
    /// Not enough hypervisor heap for the list of the page list's holder frames.
    HeapExhausted {
        /// Pages of the domain.
        pages: u64,
    },
    /// The command line does not fit `start_info.cmd_line` (its length in bytes).
    CmdlineTooLong(usize),
    /// The kernel requires `!dom0` but was to be a domU, or says it does not support dom0
    /// operation but was to be dom0 (`true`: as dom0).
    WrongPrivilege(bool),
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Image(e) => write!(f, "{e}"),
            Self::Layout(e) => write!(f, "{e}"),
            Self::HeapExhausted { pages } => {
                write!(f, "not enough hypervisor heap for the page-list holders of {pages} pages")
            }
            Self::OutOfMemory { wanted, free } => {
                write!(f, "not enough memory: {wanted} frames wanted, {free} free")
            }
            Self::CmdlineTooLong(n) => write!(f, "the command line is {n} bytes; start_info holds at most 1023"),
            Self::WrongPrivilege(true) => {
                write!(f, "the kernel does not support dom0 operation (SUPPORTED_FEATURES without XENFEAT_dom0)")
            }
            Self::WrongPrivilege(false) => {
                write!(f, "the kernel does not support unprivileged operation (FEATURES requires !dom0)")
            }
        }
    }
}

fn copy_into_domain(mem: &mut paging::DirectMap, p2m: &PageList, layout: &Layout, va: u64, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        let cur = va + done as u64;
        let chunk = ((PAGE - (cur % PAGE)) as usize).min(bytes.len() - done);
        let maddr = (p2m.get(mem, layout.pfn(cur)) << 12) + cur % PAGE;
        mem.write_bytes(maddr, &bytes[done..done + chunk]);
        done += chunk;
    }
}

/// Allocates `count` zeroed frames, listed in a [`PageList`] whose holder frames come from
/// the allocator too, or none at all.
fn alloc_zeroed(count: u64, mem: &mut paging::DirectMap) -> Result<PageList, BuildError> {
    let mut guard = FRAMES.lock();
    let frames = guard.as_mut().expect("frame allocator initialised at boot");
    let free = frames.free_frames();
    let holders_needed = PageList::holders_for(count);
    let wanted = count + holders_needed;
    if wanted > free {
        return Err(BuildError::OutOfMemory { wanted, free });
    }
    // Only the holders' numbers are on the heap: 8 bytes per 512 pages.
    let mut holders = Vec::new();
    holders.try_reserve_exact(holders_needed as usize).map_err(|_| BuildError::HeapExhausted { pages: count })?;
    // From the top of memory, so that the domain's frames are where they would be without the
    // list (cannot fail: the free count was checked under the same lock).
    holders.extend((0..holders_needed).map(|_| frames.alloc_high().expect("free frames counted above")));
    let mut list = PageList::new(holders);
    for _ in 0..count {
        let mfn = frames.alloc().expect("free frames counted above");
        mem.zero_frame(mfn);
        list.push(mem, mfn);
    }
    Ok(list)
}

/// Default dom0 size: `DEFAULT_DOM0_BYTES`, or less on a small machine.
fn default_dom0_pages() -> u64 {
    let free = FRAMES.lock().as_ref().map_or(0, |f| f.free_frames());
    (DEFAULT_DOM0_BYTES / PAGE).min(free.saturating_sub(HYPERVISOR_RESERVE_FRAMES))
}

/// Builds a domain from `req`.
pub fn build_domain(req: &BuildRequest, mem: &mut paging::DirectMap) -> Result<Built, BuildError> {
    // In place, at whatever alignment the cpio member has (4 bytes): the ELF reader is built
    // for unaligned data (`object`'s `unaligned` feature), so no copy of the image is made.
    let img: GuestImage = elf_image::parse(req.image).map_err(BuildError::Image)?;
    let wrong_privilege = if req.privileged { img.lacks_dom0_support } else { img.requires_dom0 };
    if wrong_privilege {
        return Err(BuildError::WrongPrivilege(req.privileged));
    }
    // Refused, never cut: an option at its end would be lost without a word.
    if req.cmdline.len() >= hypercall_abi::start_info::MAX_GUEST_CMDLINE {
        return Err(BuildError::CmdlineTooLong(req.cmdline.len()));
    }
    let nr_pages = match req.memory_bytes {
        Some(bytes) => bytes.div_ceil(PAGE),
        None => default_dom0_pages(),
    };
    let layout = Layout::compute(&LayoutInput {
        virt_base: img.virt_base,
        kernel_start: img.kernel_start,
        kernel_end: img.kernel_end,
        module_len: 0,
        nr_pages,
        is_dom0: req.privileged,
    })
    .map_err(BuildError::Layout)?;

    // One extra frame: shared_info, which is the hypervisor's page shared with the guest.
    let mut p2m = alloc_zeroed(nr_pages + 1, mem)?;
    let shared_info_mfn = p2m.pop(mem).expect("nr_pages + 1 frames allocated");
    // Every legacy vcpu_info slot's evtchn_upcall_mask = 1: events start masked (digest
    // §1.3; Xen's builders mask all XEN_LEGACY_MAX_VCPUS slots, not only vCPU 0's).
    let vcpu_info_size = core::mem::size_of::<hypercall_abi::shared_info::VcpuInfo>() as u64;
    for v in 0..hypercall_abi::shared_info::XEN_LEGACY_MAX_VCPUS as u64 {
        mem.write_bytes((shared_info_mfn << 12) + v * vcpu_info_size + 1, &[1]);
    }

    for s in &img.segments {
        let bytes = &req.image[s.file_offset as usize..(s.file_offset + s.file_size) as usize];
        copy_into_domain(mem, &p2m, &layout, s.vaddr, bytes);
        // The tail up to mem_size is already zero: every frame was zeroed.
    }
    // The guest's P2M list: the holders' contents, a page at a time.
    for (i, &holder) in p2m.holders().iter().enumerate() {
        let entries = (p2m.len() - i as u64 * 512).min(512) as usize;
        let mut page = [0u8; 4096];
        mem.read_frame_bytes(holder, 0, &mut page[..entries * 8]);
        let va = layout.p2m + i as u64 * PAGE;
        copy_into_domain(mem, &p2m, &layout, va, &page[..entries * 8]);
    }

    if let Some(hp) = img.hypercall_page {
        let mut page = [0xccu8; 4096];
        for n in 0..(4096 / HYPERCALL_STUB_SIZE) as u32 {
            let at = n as usize * HYPERCALL_STUB_SIZE;
            if n as u64 == IRET {
                page[at..at + IRET_STUB.len()].copy_from_slice(&IRET_STUB);
            } else {
                let stub = hypercall_stub(n);
                page[at..at + stub.len()].copy_from_slice(&stub);
            }
        }
        copy_into_domain(mem, &p2m, &layout, hp, &page);
    }

    let store_mfn = layout.xenstore.map(|va| p2m.get(mem, layout.pfn(va)));
    let console_mfn = layout.console.map(|va| p2m.get(mem, layout.pfn(va)));
    let mut si = StartInfo::zeroed();
    // dom0 gets a 'p' for PAE_MODE (digest §1.1); a domU gets the plain guest type.
    let magic: &[u8] = if req.privileged && img.pae_mode { b"xen-3.0-x86_64p" } else { b"xen-3.0-x86_64" };
    si.magic[..magic.len()].copy_from_slice(magic);
    si.nr_pages = nr_pages;
    si.shared_info = shared_info_mfn << 12;
    if req.privileged {
        si.flags = SIF_PRIVILEGED | SIF_INITDOMAIN;
        // No VGA or EFI console information to give: Xen then leaves both fields 0.
        si.console.dom0 = StartInfoConsoleDom0 { info_off: 0, info_size: 0 };
    } else {
        si.store_mfn = store_mfn.unwrap_or(0);
        si.store_evtchn = req.store_evtchn;
        si.console.dom_u = StartInfoConsoleDomU { mfn: console_mfn.unwrap_or(0), evtchn: req.console_evtchn };
    }
    si.pt_base = layout.pt_base;
    si.nr_pt_frames = layout.nr_pt_frames;
    si.mfn_list = layout.p2m;
    let cl = req.cmdline.as_bytes(); // fits: checked above
    si.cmd_line[..cl.len()].copy_from_slice(cl);
    // SAFETY: StartInfo is a repr(C) struct of integers and byte arrays: viewing it as bytes
    // is defined (padding bytes are zero because it was built from `zeroed`).
    let si_bytes =
        unsafe { core::slice::from_raw_parts(&si as *const StartInfo as *const u8, core::mem::size_of::<StartInfo>()) };
    copy_into_domain(mem, &p2m, &layout, layout.start_info, si_bytes);

    let hv_l4 = paging::hypervisor_pml4_phys();
    let mut slots = [0u64; 16];
    for (i, s) in slots.iter_mut().enumerate() {
        *s = mem.read_entry(hv_l4 >> 12, 256 + i);
    }
    let l4_mfn = domain_layout::build_page_tables(&layout, &p2m, &slots, mem);

    log::info!(
        "d{}: kernel {:#x}-{:#x} entry {:#x}, {} pages ({} MiB), p2m {:#x}, start_info {:#x}, page tables {:#x} ({} frames), stack {:#x}, v_end {:#x}",
        req.id,
        img.kernel_start,
        img.kernel_end,
        img.entry,
        nr_pages,
        (nr_pages * PAGE) >> 20,
        layout.p2m,
        layout.start_info,
        layout.pt_base,
        layout.nr_pt_frames,
        layout.stack,
        layout.v_end
    );
    let frame = TrapFrame {
        rip: img.entry,
        cs: gdt::FLAT_RING3_CS64 as u64,
        rflags: 0x200,
        rsp: layout.stack + PAGE,
        ss: gdt::FLAT_RING3_SS64 as u64,
        rsi: layout.start_info,
        ..TrapFrame::default()
    };
    let mut vcpu = VcpuState::new(l4_mfn << 12);
    if !req.privileged {
        // A domU's initial kernel stack for user-to-kernel transitions is its boot stack
        // (digest §1.4); dom0's is 0 until stack_switch.
        vcpu.kernel_ss = gdt::FLAT_RING3_SS64 as u64;
        vcpu.kernel_sp = layout.stack + PAGE;
    }
    let domain = crate::domain::Machine::domain_record(
        req.id,
        req.name,
        req.privileged,
        p2m,
        vcpu,
        shared_info_mfn,
        crate::arch::x86_64::cpu::read_cr4(),
    );
    let ring_frames = store_mfn.zip(console_mfn);
    Ok(Built { domain, frame, ring_frames })
}
