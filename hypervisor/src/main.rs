//! The hypervisor binary: ring-0 entry and the boot sequence that wires the arch layer to the
//! generic logic in the `hypervisor` library.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot_domains;
mod builder;
mod console;
mod domain;
mod guest_traps;
mod machine_env;
mod memory;

use arch::x86_64::{apic, boot::IMAGE_VIRT_OFFSET, cpu, gdt, idt, paging, serial, smp, syscall};
use core::panic::PanicInfo;
use hypervisor::boot_module::{self, ModuleKind};
use hypervisor::cmdline::{CommandLine, DebugAction, OverflowStack};
use hypervisor::exit_code;
use hypervisor::pvh::{self, PhysRead, MEMMAP_TYPE_RAM};

/// Periodic tick rate (the scheduler's time base).
pub const TICK_HZ: u64 = 100;
/// Ticks the boot self-check waits for, to prove the timer runs.
const BOOT_TICKS: u64 = 3;

/// Physical memory reads through the boot page tables, which map the first GiB at the image
/// offset; used only until the direct map exists.
struct BootMap;
impl PhysRead for BootMap {
    fn read(&self, pa: u64, out: &mut [u8]) -> bool {
        match pa.checked_add(out.len() as u64) {
            Some(end) if end <= 1 << 30 => {
                // SAFETY: the boot tables map [0, 1 GiB) at IMAGE_VIRT_OFFSET, readable.
                unsafe {
                    core::ptr::copy_nonoverlapping((IMAGE_VIRT_OFFSET + pa) as *const u8, out.as_mut_ptr(), out.len())
                };
                true
            }
            _ => false,
        }
    }
}

/// Entry from boot.rs, on the boot stack, interrupts off.
#[no_mangle]
extern "C" fn hv_entry(start_info_pa: u32) -> ! {
    serial::init();
    gdt::init();
    idt::init();
    syscall::init(0, gdt::ring0_stack_top(0));
    arch::x86_64::fpu::init();
    arch::x86_64::guest_copy::check_cpu_state();

    let info = match pvh::parse(&BootMap, start_info_pa as u64) {
        Ok(info) => info,
        Err(e) => {
            console_println!("(hv) FATAL: unusable PVH start info: {e}");
            fatal_stop();
        }
    };
    let cmdline = CommandLine::parse(info.cmdline.as_str());
    console::init(cmdline.log_level);
    log::info!("Xen-compatible PV hypervisor {} (x86_64, PVH boot)", env!("CARGO_PKG_VERSION"));
    log::info!("Command line: {}", info.cmdline);
    for w in cmdline.warnings() {
        log::warn!("command line: {w}");
    }
    if cmdline.dropped_warnings() > 0 {
        log::warn!("command line: {} more warnings not shown", cmdline.dropped_warnings());
    }

    let ram_top = info
        .memmap
        .iter()
        .filter(|r| r.kind == MEMMAP_TYPE_RAM)
        .map(|r| r.addr.saturating_add(r.size))
        .max()
        .unwrap_or(0);
    let is_ram = |pa: u64, len: u64| {
        info.memmap
            .iter()
            .any(|r| r.kind == MEMMAP_TYPE_RAM && r.addr <= pa && pa + len <= r.addr.saturating_add(r.size))
    };
    for r in &info.memmap {
        log::debug!("memory map: {:#014x}-{:#014x} type {}", r.addr, r.addr + r.size, r.kind);
    }
    // Map at least the 32-bit space so the LAPIC and other device pages are reachable.
    let mapped_top = paging::init(ram_top.max(4 << 30), is_ram);
    if ram_top > mapped_top {
        log::warn!("RAM above {:#x} is not used (direct map limit)", mapped_top);
    }
    if !paging::unmap_guard_pages(&gdt::stack_guards().map(|(_, guard)| guard)) {
        log::warn!("stack guard pages could not all be unmapped: an overflow may go unnoticed");
    }
    let mem = match memory::init(&info, mapped_top) {
        Ok(m) => m,
        Err(e) => {
            log::error!("memory set-up failed: {e}");
            fatal_stop();
        }
    };
    log::info!(
        "Memory: {} MiB RAM, {} MiB free, {} MiB heap",
        mem.ram_bytes >> 20,
        (mem.free_frames * 4096) >> 20,
        mem.heap_bytes >> 20
    );

    let cal = apic::init();
    log::info!(
        "Timer: LAPIC {} kHz (after /16), TSC {} MHz, tick {} Hz",
        cal.apic_timer_hz / 1000,
        cal.tsc_hz / 1_000_000,
        TICK_HZ
    );
    apic::start_periodic(&cal, TICK_HZ);
    let start = apic::ticks();
    while apic::ticks() - start < BOOT_TICKS {
        cpu::idle_wait_for_interrupt();
    }
    log::info!("Timer: {} ticks observed", apic::ticks() - start);
    let cpus = smp::start_aps(&cal, cmdline.max_cpus.unwrap_or(gdt::MAX_CPUS));
    smp::set_idle_mode(cmdline.idle);
    log::info!("CPUs: {cpus} online (at most {}), idle CPUs {}", gdt::MAX_CPUS, cmdline.idle.name());

    match cmdline.debug_action {
        Some(DebugAction::FailDomainGrants) => domain::inject_failure(domain::InjectedFailure::Grants),
        Some(DebugAction::FailDomainFrames) => domain::inject_failure(domain::InjectedFailure::Frames),
        Some(action) => run_debug_action(action),
        None => {}
    }

    let rtc = arch::x86_64::rtc::read();
    let boot_wallclock = hypervisor::wallclock::unix_seconds(&rtc).unwrap_or(0);
    log::info!(
        "Wall clock: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC (unix {boot_wallclock})",
        rtc.year,
        rtc.month,
        rtc.day,
        rtc.hour,
        rtc.minute,
        rtc.second
    );

    let Some(module) = info.modules.first() else {
        log::info!("No boot module: nothing to run. Shutting down.");
        cpu::qemu_exit(exit_code::SUCCESS);
    };
    let Some(bytes) = module_bytes(module.paddr, module.size, mapped_top) else {
        log::error!("boot module at {:#x} (+{:#x}) lies outside mapped RAM: refusing it", module.paddr, module.size);
        fatal_stop();
    };
    let mem = paging::DirectMap { top: mapped_top };
    console::limit_guest_lines(cal.tsc_hz);
    let machine = domain::Machine::new(mem, ram_top, cal.tsc_hz, info.cmdline.clone(), boot_wallclock, cpus);
    let result = match boot_module::classify(bytes) {
        Ok(ModuleKind::Elf) => {
            log::info!("Module 0: ELF image, {} bytes: dom0 kernel", bytes.len());
            boot_domains::start_single(machine, bytes, cmdline.dom0_cmdline, cmdline.dom0_mem)
        }
        Ok(ModuleKind::Cpio { members }) => {
            log::info!("Module 0: cpio archive, {members} members, {} bytes", bytes.len());
            boot_domains::start_bundle(machine, bytes, cmdline.dom0_mem, cmdline.domus_paused)
        }
        Err(e) => {
            log::error!("Module 0 ({} bytes) refused: {e}", bytes.len());
            Err(())
        }
    };
    let _ = result;
    fatal_stop();
}

/// The module's bytes, if they lie inside the direct map.
fn module_bytes(paddr: u64, size: u64, mapped_top: u64) -> Option<&'static [u8]> {
    let end = paddr.checked_add(size)?;
    (end <= mapped_top).then(|| {
        // SAFETY: the range is inside the direct map and reserved from allocation, so nothing
        // else writes it.
        unsafe { core::slice::from_raw_parts(paging::phys_to_virt(paddr) as *const u8, size as usize) }
    })
}

fn run_debug_action(action: DebugAction) {
    log::warn!("hv_debug: performing deliberate failure {action:?}");
    match action {
        DebugAction::PageFault => {
            // An address in slot 258, which the hypervisor never maps.
            let p = 0xffff_8100_dead_0000 as *const u64;
            // SAFETY: deliberately unsound: this read faults, which is the point of the test.
            let v = unsafe { p.read_volatile() };
            log::error!("read of unmapped memory returned {v:#x}");
        }
        // SAFETY: ud2 raises #UD, which is the point of the test.
        DebugAction::InvalidOpcode => unsafe { core::arch::asm!("ud2") },
        DebugAction::Panic => panic!("deliberate panic requested by hv_debug=panic"),
        DebugAction::StackOverflow(OverflowStack::Ring0) => cpu::run_on_stack(gdt::ring0_stack_top(0), recurse_forever),
        DebugAction::StackOverflow(OverflowStack::Nmi) => {
            cpu::run_on_stack(gdt::ist_stack_top(0, gdt::IST_NMI), recurse_forever)
        }
        // hv_entry runs on the boot stack.
        DebugAction::StackOverflow(OverflowStack::Boot) => recurse_forever(),
        // Armed before the domains are built, see above.
        DebugAction::FailDomainGrants | DebugAction::FailDomainFrames => {}
    }
}

/// Calls itself with a page of stack per frame until the stack's guard page stops it.
extern "C" fn recurse_forever() -> ! {
    fn deeper(depth: u64) -> u64 {
        if depth == core::hint::black_box(u64::MAX) {
            return 0; // never: the bound only hides the endless recursion from the compiler
        }
        let frame = core::hint::black_box([depth; 512]);
        deeper(frame[depth as usize % 512] + 1) + frame[0]
    }
    let depth = deeper(core::hint::black_box(0));
    log::error!("recursion ended at depth {depth}");
    fatal_stop()
}

/// Ends the machine with the failure code after a fatal error.
pub fn fatal_stop() -> ! {
    console_println!("(hv) Fatal error: stopping the machine (failure exit).");
    cpu::qemu_exit(exit_code::FAILURE)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    serial::force_unlock();
    match info.location() {
        Some(l) => console_println!("(hv) PANIC at {}:{}: {}", l.file(), l.line(), info.message()),
        None => console_println!("(hv) PANIC: {}", info.message()),
    }
    fatal_stop()
}
