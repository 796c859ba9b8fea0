//! What the hypervisor does with each vector: the tick, IPIs, spurious interrupts, host NMIs,
//! the fix-up of a fault in the guest copy loops, and the fatal report for any other
//! exception in ring 0.

use super::idt::TrapFrame;
use super::{apic, cpu, gdt, serial, smp};
use core::sync::atomic::{AtomicU64, Ordering};

const NMI: u64 = 2;
const DOUBLE_FAULT: u64 = 8;
const GENERAL_PROTECTION: u64 = 13;
const PAGE_FAULT: u64 = 14;
const MACHINE_CHECK: u64 = 18;

/// Host NMIs taken since [`take_ignored_nmis`] last looked.
static IGNORED_NMIS: AtomicU64 = AtomicU64::new(0);

/// Host NMIs ignored since the last call (for a log line from a context that may log).
pub fn take_ignored_nmis() -> u64 {
    IGNORED_NMIS.swap(0, Ordering::Relaxed)
}

/// Dispatches one trap or interrupt.
pub fn handle(frame: &mut TrapFrame) {
    // The hypervisor sends no NMIs, so any NMI is the host's (QEMU's `nmi` monitor command,
    // a board's watchdog or I/O check): never the guest's that happens to run, and no reason
    // to stop the machine. It is dropped, as Xen does with `nmi=ignore` (by default Xen
    // reports unknown NMIs to dom0's NMI callback; we do not). It may interrupt any code,
    // including code holding the console's lock, so it is only counted here; the count is
    // logged later (`take_ignored_nmis`).
    if frame.vector == NMI {
        IGNORED_NMIS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // First, without the machine lock: the CPU asking holds it (`smp::flush_all_tlbs`). Every
    // request comes with this IPI; a CPU that cannot take it meanwhile is spinning for the
    // lock, and serves requests there (`domain::lock_machine`).
    if frame.vector == apic::FLUSH_VECTOR as u64 {
        smp::serve_flush();
    }
    // A machine check is the host's, wherever it lands (a guest in ring 3 included): the
    // machine cannot be trusted any more. Reported and stopped, never passed to a guest.
    if frame.vector == MACHINE_CHECK {
        fatal_exception(frame);
    }
    if !frame.from_ring0() {
        return crate::guest_traps::on_guest_entry(frame);
    }
    let vector = frame.vector;
    match vector {
        v if v == apic::TIMER_VECTOR as u64 => apic::on_timer_interrupt(),
        v if v == apic::SPURIOUS_VECTOR as u64 => {}
        // In the idle loop, which re-checks its work after every interrupt; the flush was
        // served above.
        v if v == apic::RESCHEDULE_VECTOR as u64 || v == apic::FLUSH_VECTOR as u64 => apic::end_of_interrupt(),
        // A bad guest pointer met inside the guest copy loops: the copy reports it.
        PAGE_FAULT | GENERAL_PROTECTION if super::guest_copy::fixup(frame) => {}
        v if v < 32 => fatal_exception(frame),
        v => {
            log::warn!("unexpected interrupt vector {v}");
            apic::end_of_interrupt();
        }
    }
}

/// Reports an exception the hypervisor cannot handle and ends the machine with the failure
/// code. Guests' exceptions are bounced to them before reaching here (once guests run).
fn fatal_exception(f: &TrapFrame) -> ! {
    serial::force_unlock();
    let name = crate::guest_traps::EXCEPTION_NAMES[f.vector as usize];
    let ring = if f.from_ring0() { "ring-0" } else { "ring-3" };
    let cr2 = cpu::read_cr2();
    if let Some(stack) = gdt::overflowed_stack(cr2, f.rsp).filter(|_| f.vector == DOUBLE_FAULT) {
        // A fault on the guard page while the CPU pushed a fault frame there: the stack
        // overflowed (the double fault runs on its own IST stack).
        crate::console_println!("(hv) FATAL: stack overflow: the {stack} hit its guard page {cr2:#x}");
    }
    crate::console_println!(
        "(hv) FATAL: {ring} exception {} ({name}) error_code={:#x} rip={:#018x} cr2={:#018x}",
        f.vector,
        f.error_code,
        f.rip,
        cr2
    );
    crate::console_println!(
        "  cs={:#x} rflags={:#x} rsp={:#018x} ss={:#x} cr3={:#x}",
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        cpu::read_cr3()
    );
    crate::console_println!("  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}", f.rax, f.rbx, f.rcx, f.rdx);
    crate::console_println!("  rsi={:#018x} rdi={:#018x} rbp={:#018x} r8 ={:#018x}", f.rsi, f.rdi, f.rbp, f.r8);
    crate::console_println!("  r9 ={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}", f.r9, f.r10, f.r11, f.r12);
    crate::console_println!("  r13={:#018x} r14={:#018x} r15={:#018x}", f.r13, f.r14, f.r15);
    crate::fatal_stop()
}
