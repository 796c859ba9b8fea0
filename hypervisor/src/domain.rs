//! The running domain: building dom0 from its ELF image (Xen's PV builder), the hypercall
//! environment, and what happens when the guest traps, shuts down or crashes.
//!
//! One domain with one vCPU runs for now; the scheduler and domUs come with the multi-domain
//! work. The generic pieces (ELF checks, layout, page tables, hypercalls, guest access) live
//! in the `hypervisor` library and are host-tested.

use crate::arch::x86_64::{apic, cpu, gdt, guest_entry, idt::TrapFrame, paging, serial};
use crate::memory::FRAMES;
use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::start_info::{StartInfo, SIF_INITDOMAIN, SIF_PRIVILEGED};
use hypervisor::domain_layout::{self, Layout, LayoutInput, MachineMemory, PAGE};
use hypervisor::elf_image::{self, GuestImage};
use hypervisor::exit_code;
use hypervisor::guest_access;
use hypervisor::hypercalls::{self, DomainFacts, Env, Outcome};
use spin::Mutex;

/// Default dom0 size when `dom0_mem=` is not given.
const DEFAULT_DOM0_BYTES: u64 = 128 << 20;
/// Frames kept back for the hypervisor when sizing dom0.
const HYPERVISOR_RESERVE_FRAMES: u64 = 2048;
/// `SHUTDOWN_*` reasons.
const SHUTDOWN_POWEROFF: u32 = 0;
const SHUTDOWN_REBOOT: u32 = 1;
const SHUTDOWN_CRASH: u32 = 3;

/// A PV domain.
pub struct Domain {
    /// Domain id (0 for dom0).
    pub id: u16,
    /// Whether this is the privileged control domain.
    pub privileged: bool,
    /// Pseudo-physical to machine frame map.
    pub p2m: Vec<u64>,
    /// Machine address of the current kernel L4 (guest CR3).
    pub l4_maddr: u64,
    /// Machine frame of the shared_info page.
    pub shared_info_mfn: u64,
    /// One-shot timer deadline (system time, ns).
    pub singleshot_ns: Option<u64>,
    /// Periodic timer period (ns).
    pub periodic_ns: Option<u64>,
}

/// The running domain and the machine facts its hypercalls need.
pub struct Machine {
    /// The domain.
    pub domain: Domain,
    /// Direct-map accessor.
    pub mem: paging::DirectMap,
    /// TSC frequency for system time.
    pub tsc_hz: u64,
    /// TSC at boot (system time 0).
    pub tsc_boot: u64,
    /// The hypervisor's command line (for `XENVER_commandline`).
    pub cmdline: heapless::String<1024>,
}

/// The machine state, reached from the trap path (single CPU, interrupts off: never contended).
pub static MACHINE: Mutex<Option<Machine>> = Mutex::new(None);

/// Why dom0 could not be built.
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
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Image(e) => write!(f, "{e}"),
            Self::Layout(e) => write!(f, "{e}"),
            Self::OutOfMemory { wanted, free } => {
                write!(f, "not enough memory: {wanted} frames wanted, {free} free")
            }
        }
    }
}

fn copy_into_domain(mem: &mut paging::DirectMap, p2m: &[u64], layout: &Layout, va: u64, bytes: &[u8]) {
    use hypervisor::guest_access::MachineAccess;
    let mut done = 0;
    while done < bytes.len() {
        let cur = va + done as u64;
        let chunk = ((PAGE - (cur % PAGE)) as usize).min(bytes.len() - done);
        let maddr = (p2m[layout.pfn(cur) as usize] << 12) + cur % PAGE;
        mem.write_bytes(maddr, &bytes[done..done + chunk]);
        done += chunk;
    }
}

/// Builds dom0 from `image` and returns the frame to start it with.
pub fn build_dom0(
    image: &[u8],
    cmdline: &str,
    dom0_mem: Option<u64>,
    mem: &mut paging::DirectMap,
) -> Result<(Domain, TrapFrame), BuildError> {
    let img: GuestImage = elf_image::parse(image).map_err(BuildError::Image)?;
    let mut frames_guard = FRAMES.lock();
    let frames = frames_guard.as_mut().expect("frame allocator initialised at boot");
    let free = frames.free_frames();
    let nr_pages = match dom0_mem {
        Some(bytes) => bytes.div_ceil(PAGE),
        None => (DEFAULT_DOM0_BYTES / PAGE).min(free.saturating_sub(HYPERVISOR_RESERVE_FRAMES)),
    };
    // Keep one frame for shared_info.
    if nr_pages + 1 > free {
        return Err(BuildError::OutOfMemory { wanted: nr_pages + 1, free });
    }
    let layout = Layout::compute(&LayoutInput {
        virt_base: img.virt_base,
        kernel_start: img.kernel_start,
        kernel_end: img.kernel_end,
        module_len: 0,
        nr_pages,
        is_dom0: true,
    })
    .map_err(BuildError::Layout)?;

    let mut p2m = Vec::with_capacity(nr_pages as usize);
    for _ in 0..nr_pages {
        // Cannot fail: we checked the free count under the same lock.
        let mfn = frames.alloc().expect("free frames counted above");
        mem.zero_frame(mfn);
        p2m.push(mfn);
    }
    let shared_info_mfn = frames.alloc().expect("free frames counted above");
    drop(frames_guard);
    mem.zero_frame(shared_info_mfn);
    // vcpu_info[0].evtchn_upcall_mask = 1: events start masked (digest §1.3).
    hypervisor::guest_access::MachineAccess::write_bytes(mem, (shared_info_mfn << 12) + 1, &[1]);

    for s in &img.segments {
        let bytes = &image[s.file_offset as usize..(s.file_offset + s.file_size) as usize];
        copy_into_domain(mem, &p2m, &layout, s.vaddr, bytes);
        // The tail up to mem_size is already zero: every frame was zeroed above.
    }
    let p2m_bytes: Vec<u8> = p2m.iter().flat_map(|m| m.to_le_bytes()).collect();
    copy_into_domain(mem, &p2m, &layout, layout.p2m, &p2m_bytes);

    if let Some(hp) = img.hypercall_page {
        let mut page = [0xccu8; 4096];
        for n in 0..128u32 {
            let at = n as usize * hypercall_abi::hypercall::HYPERCALL_STUB_SIZE;
            if n == hypercall_abi::hypercall::IRET as u32 {
                page[at..at + 11].copy_from_slice(&hypercall_abi::hypercall::IRET_STUB);
            } else {
                page[at..at + 14].copy_from_slice(&hypercall_abi::hypercall::hypercall_stub(n));
            }
        }
        copy_into_domain(mem, &p2m, &layout, hp, &page);
    }

    let mut si = StartInfo::zeroed();
    let magic: &[u8] = if img.pae_mode { b"xen-3.0-x86_64p" } else { b"xen-3.0-x86_64" };
    si.magic[..magic.len()].copy_from_slice(magic);
    si.nr_pages = nr_pages;
    si.shared_info = shared_info_mfn << 12;
    si.flags = SIF_PRIVILEGED | SIF_INITDOMAIN;
    si.console.dom0 = hypercall_abi::start_info::StartInfoConsoleDom0 { info_off: 1168, info_size: 40 };
    si.pt_base = layout.pt_base;
    si.nr_pt_frames = layout.nr_pt_frames;
    si.mfn_list = layout.p2m;
    let cl = cmdline.as_bytes();
    let n = cl.len().min(si.cmd_line.len() - 1);
    si.cmd_line[..n].copy_from_slice(&cl[..n]);
    // SAFETY: StartInfo is a repr(C) struct of integers and byte arrays: viewing it as bytes
    // is defined (padding bytes are zero because it was built from `zeroed`).
    let si_bytes = unsafe {
        core::slice::from_raw_parts(&si as *const StartInfo as *const u8, core::mem::size_of::<StartInfo>())
    };
    copy_into_domain(mem, &p2m, &layout, layout.start_info, si_bytes);

    let hv_l4 = paging::hypervisor_pml4_phys();
    let mut slots = [0u64; 16];
    for (i, s) in slots.iter_mut().enumerate() {
        *s = mem.read_entry(hv_l4 >> 12, 256 + i);
    }
    let l4_mfn = domain_layout::build_page_tables(&layout, &p2m, &slots, mem);

    log::info!(
        "d0: kernel {:#x}-{:#x} entry {:#x}, {} pages ({} MiB), p2m {:#x}, start_info {:#x}, page tables {:#x} ({} frames), stack {:#x}, v_end {:#x}",
        img.kernel_start,
        img.kernel_end,
        img.entry,
        nr_pages,
        nr_pages * PAGE >> 20,
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
    let domain = Domain {
        id: 0,
        privileged: true,
        p2m,
        l4_maddr: l4_mfn << 12,
        shared_info_mfn,
        singleshot_ns: None,
        periodic_ns: None,
    };
    Ok((domain, frame))
}

/// Starts the machine's domain in guest context. Never returns.
pub fn start(machine: Machine, frame: TrapFrame) -> ! {
    let l4 = machine.domain.l4_maddr;
    *MACHINE.lock() = Some(machine);
    guest_entry::load_page_tables(l4);
    guest_entry::resume(&frame, gdt::ring0_stack_top())
}

impl Machine {
    fn now_ns(&self) -> u64 {
        let ticks = cpu::rdtsc().wrapping_sub(self.tsc_boot) as u128;
        (ticks * 1_000_000_000 / self.tsc_hz.max(1) as u128) as u64
    }
}

impl Env for Machine {
    fn copy_from_guest(&self, va: u64, out: &mut [u8]) -> Result<(), Errno> {
        guest_access::copy_from_guest(&self.mem, self.domain.l4_maddr, va, out).map_err(|_| Errno::EFAULT)
    }
    fn copy_to_guest(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        guest_access::copy_to_guest(&mut self.mem, self.domain.l4_maddr, va, bytes).map_err(|_| Errno::EFAULT)
    }
    fn console_write(&mut self, bytes: &[u8]) {
        serial::write_bytes(bytes);
    }
    fn console_read(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match serial::try_read() {
                Some(b) => out[n] = b,
                None => break,
            }
            n += 1;
        }
        n
    }
    fn domain(&self) -> DomainFacts {
        DomainFacts {
            id: self.domain.id,
            nr_pages: self.domain.p2m.len() as u64,
            max_pages: self.domain.p2m.len() as u64,
            privileged: self.domain.privileged,
            max_mfn: self.mem.top >> 12,
        }
    }
    fn now_ns(&self) -> u64 {
        Machine::now_ns(self)
    }
    fn set_singleshot_timer(&mut self, deadline_ns: Option<u64>) {
        self.domain.singleshot_ns = deadline_ns;
    }
    fn set_periodic_timer(&mut self, period_ns: Option<u64>) {
        self.domain.periodic_ns = period_ns;
    }
    fn hypervisor_cmdline(&self) -> &str {
        &self.cmdline
    }
}

/// A `SYSCALL` from the guest: a hypercall from guest kernel mode.
pub fn on_syscall(frame: &mut TrapFrame) {
    let mut guard = MACHINE.lock();
    let Some(machine) = guard.as_mut() else {
        drop(guard);
        crate::fatal_stop();
    };
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8];
    match hypercalls::dispatch(machine, frame.rax, args) {
        Outcome::Return(v) => frame.rax = v as u64,
        Outcome::Continue(next) => {
            // Re-execute the 2-byte SYSCALL with the advanced arguments (Xen's continuation).
            [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8] = next;
            frame.rip -= 2;
        }
        Outcome::Yield => frame.rax = 0,
        Outcome::Block => {
            frame.rax = 0;
            let deadline = machine.domain.singleshot_ns;
            match deadline {
                Some(d) => {
                    while machine.now_ns() < d {
                        cpu::idle_wait_for_interrupt();
                    }
                    machine.domain.singleshot_ns = None;
                }
                None => log::warn!("d{}: blocked with no timer armed: nothing can wake it", machine.domain.id),
            }
        }
        Outcome::Shutdown(reason) => {
            let id = machine.domain.id;
            drop(guard);
            domain_shutdown(id, reason);
        }
    }
}

/// The domain shut down. For dom0 this ends the machine, as Xen does with its hardware domain.
pub fn domain_shutdown(id: u16, reason: u32) -> ! {
    let what = match reason {
        SHUTDOWN_POWEROFF => "poweroff",
        SHUTDOWN_REBOOT => "reboot",
        SHUTDOWN_CRASH => "crash",
        _ => "other",
    };
    log::info!("d{id}: shutdown requested: reason {reason} ({what})");
    let code = match reason {
        SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => exit_code::SUCCESS,
        _ => exit_code::FAILURE,
    };
    log::info!("Hardware domain shut down: ending the machine ({}).", if code == exit_code::SUCCESS { "success" } else { "failure" });
    cpu::qemu_exit(code)
}

/// An exception in guest context with no guest handler: the domain crashes.
pub fn on_guest_exception(frame: &TrapFrame, name: &str) -> ! {
    log::error!(
        "d0: unhandled exception {} ({name}) in guest at rip={:#x} error_code={:#x} cr2={:#x} rsp={:#x}: crashing domain",
        frame.vector,
        frame.rip,
        frame.error_code,
        cpu::read_cr2(),
        frame.rsp
    );
    domain_shutdown(0, SHUTDOWN_CRASH)
}

/// Checks timers on every tick taken in guest context.
pub fn on_tick() {
    apic::on_timer_interrupt();
}
