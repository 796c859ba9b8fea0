//! Small CPU primitives: port I/O, MSRs, control registers, halting, the QEMU exit port.

use core::arch::asm;
use x86_64::instructions::port::Port;

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    // SAFETY: port reads have no memory effects; callers pick ports of devices we own.
    unsafe { Port::new(port).read() }
}

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: callers pick ports of devices the hypervisor owns (PIC, PIT, speaker gate).
    unsafe { Port::new(port).write(value) }
}

/// `in` of 1, 2 or 4 bytes.
pub fn port_in(port: u16, size: u8) -> u32 {
    // SAFETY: the emulator only asks for ports the domain's policy permits and the
    // hypervisor does not own.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).read() as u32,
            2 => Port::<u16>::new(port).read() as u32,
            _ => Port::<u32>::new(port).read(),
        }
    }
}

/// `out` of 1, 2 or 4 bytes.
pub fn port_out(port: u16, size: u8, value: u32) {
    // SAFETY: as for `port_in`.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}

/// Reads a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers name architectural MSRs that exist on every x86_64 CPU we support.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (hi as u64) << 32 | lo as u64
}

/// Writes a model-specific register.
///
/// # Safety
/// The caller must know what the MSR controls; a wrong value can break the machine.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nomem, nostack))
    };
}

/// The faulting address of the last page fault.
pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// The current page-table root.
pub fn read_cr3() -> u64 {
    let (frame, _) = x86_64::registers::control::Cr3::read_raw();
    frame.start_address().as_u64()
}

/// Flushes every non-global TLB entry of this CPU (a CR3 reload): guest mappings are never
/// global, so none survives.
pub fn flush_guest_tlb() {
    x86_64::instructions::tlb::flush_all();
}

/// The current CR4.
pub fn read_cr4() -> u64 {
    x86_64::registers::control::Cr4::read_raw()
}

/// Sets or clears CR4.TSD (`rdtsc` faults outside ring 0) as the running vCPU's virtual
/// CR4 asks (Xen's `pv_make_cr4`). The hypervisor runs in ring 0, so the bit only changes
/// what the guest may run; CR4 is written only when the bit changes.
pub fn set_guest_tsd(on: bool) {
    const TSD: u64 = 1 << 2;
    let cr4 = read_cr4();
    if (cr4 & TSD != 0) != on {
        // SAFETY: TSD only makes `rdtsc`/`rdtscp` fault in rings 1-3; no TLB or paging
        // behaviour changes.
        unsafe { x86_64::registers::control::Cr4::write_raw(cr4 ^ TSD) };
    }
}

/// Time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc is unprivileged and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Waits for the next interrupt with interrupts enabled, then disables them again: the only
/// place the hypervisor itself takes interrupts (it is non-preemptible, DESIGN.md §4).
pub fn idle_wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

/// Continues on the stack whose top is `stack_top` in `f`, never to return (for tests of a
/// stack's guard page).
pub fn run_on_stack(stack_top: u64, f: extern "C" fn() -> !) -> ! {
    // SAFETY: `stack_top` is the top of a hypervisor stack no one else uses now (the caller's
    // choice), 16-byte aligned as a call expects; nothing returns to the abandoned stack.
    unsafe { core::arch::asm!("mov rsp, {top}", "call {f}", top = in(reg) stack_top, f = in(reg) f, options(noreturn)) }
}

/// Ends QEMU through `isa-debug-exit` with `value` (see `exit_code`); halts forever if the
/// device is absent (real hardware).
pub fn qemu_exit(value: u32) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device the harness configures; writing it ends
    // the virtual machine. On hardware without it the write is harmless.
    unsafe { Port::<u32>::new(0xf4).write(value) };
    halt_forever()
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

const IA32_FS_BASE: u32 = 0xc000_0100;
const IA32_GS_BASE: u32 = 0xc000_0101;

/// Loads the FS base and the GS base of the vCPU's current mode (Xen's `swapgs` on every
/// kernel/user switch; the hypervisor itself never uses FS or GS).
pub fn load_segment_bases(v: &hypervisor::vcpu::VcpuState) {
    let gs = if v.kernel_mode { v.gs_base_kernel } else { v.gs_base_user };
    // SAFETY: both values were checked canonical by set_segment_base, and the hypervisor does
    // not depend on either base.
    unsafe {
        wrmsr(IA32_FS_BASE, v.fs_base);
        wrmsr(IA32_GS_BASE, gs);
    }
}
