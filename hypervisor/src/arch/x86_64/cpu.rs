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

/// The conditions of the last #DB (DR6), with DR6 reset for the next one (the CPU only ever
/// sets its status bits).
pub fn take_debug_status() -> u64 {
    let dr6: u64;
    // SAFETY: reading and resetting DR6 in ring 0; the hypervisor sets no breakpoints of its
    // own, so nothing else reads it.
    unsafe {
        asm!("mov {0}, dr6", out(reg) dr6, options(nomem, nostack, preserves_flags));
        asm!("mov dr6, {0}", in(reg) hypervisor::emulate::DR6_DEFAULT, options(nomem, nostack, preserves_flags));
    }
    dr6
}

/// Width of guest-physical addresses, as Xen's `hap_paddr_bits`: CPUID 0x80000008 EAX
/// bits 23:16 (guest physical), else bits 7:0 (physical), at most 52 (`PADDR_BITS`); 36,
/// Xen's default, when the leaf is absent.
pub fn guest_paddr_bits() -> u8 {
    if core::arch::x86_64::__cpuid(0x8000_0000).eax < 0x8000_0008 {
        return 36;
    }
    let eax = core::arch::x86_64::__cpuid(0x8000_0008).eax;
    let bits = match ((eax >> 16) as u8, eax as u8) {
        (0, physical) => physical,
        (guest, _) => guest,
    };
    bits.min(52)
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
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;

// A running vCPU's segment state lives in the CPU, as in Xen: the FS base, the GS base of its
// current mode (GS_BASE) and that of the other mode (KERNEL_GS_BASE), which `swapgs`
// exchanges at every kernel/user switch; and its DS, ES, FS and GS selectors, which the
// hypervisor never changes while the vCPU is loaded. The guest changes the bases behind the
// hypervisor's back (a `mov` to %fs or %gs loads the descriptor's base), so the copies in
// `VcpuState` are only read back (`capture_segment_state`) when the vCPU leaves the CPU or
// the hypervisor is about to read or change them, and written (`load_segment_state`) when it
// comes back or after such a change. The hypervisor itself never uses FS or GS.

/// Loads the vCPU's three segment bases into the CPU (see above). Its selectors must be
/// loaded first ([`load_data_selectors`]): loading %fs or %gs resets its base.
pub fn load_segment_state(v: &hypervisor::vcpu::VcpuState) {
    let (active, inactive) =
        if v.kernel_mode { (v.gs_base_kernel, v.gs_base_user) } else { (v.gs_base_user, v.gs_base_kernel) };
    // SAFETY: every value was checked canonical by set_segment_base or the emulated wrmsr,
    // or read back from these MSRs; the hypervisor does not depend on any of them.
    unsafe {
        wrmsr(IA32_FS_BASE, v.fs_base);
        wrmsr(IA32_GS_BASE, active);
        wrmsr(IA32_KERNEL_GS_BASE, inactive);
    }
}

/// Reads the loaded vCPU's three segment bases back into `v` (see above).
pub fn capture_segment_state(v: &mut hypervisor::vcpu::VcpuState) {
    v.fs_base = rdmsr(IA32_FS_BASE);
    let (active, inactive) = (rdmsr(IA32_GS_BASE), rdmsr(IA32_KERNEL_GS_BASE));
    (v.gs_base_kernel, v.gs_base_user) = if v.kernel_mode { (active, inactive) } else { (inactive, active) };
}

/// Exchanges the loaded vCPU's kernel and user GS bases: its mode just changed.
pub fn swap_guest_gs_bases() {
    // SAFETY: swaps GS_BASE and KERNEL_GS_BASE, both the loaded guest's (see above); the
    // hypervisor uses neither.
    unsafe { asm!("swapgs", options(nomem, nostack, preserves_flags)) };
}

/// The loaded vCPU's DS, ES, FS and GS selectors.
pub fn read_data_selectors() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading segment registers has no side effect.
    unsafe {
        asm!("mov {0:x}, ds", "mov {1:x}, es", "mov {2:x}, fs", "mov {3:x}, gs",
             out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs, options(nomem, nostack, preserves_flags))
    };
    [ds, es, fs, gs]
}

/// Loads a vCPU's DS, ES, FS and GS selectors (each one only if it differs from the loaded
/// one: a load is slow, and the usual value is the same null selector). Each must be null or
/// a DPL-3 descriptor of the fixed GDT: a guest can hold nothing else (it loaded it from ring
/// 3, and the GDT never changes), and [`hypervisor::vcpu::user_data_selector`] gives nothing
/// else.
pub fn load_data_selectors(sels: [u16; 4]) {
    let now = read_data_selectors();
    // SAFETY: each selector is null or names a present DPL-3 data or readable code segment
    // (see above), which ring 0 may load; 64-bit code does not use DS or ES, and the
    // hypervisor does not use FS or GS.
    unsafe {
        if sels[0] != now[0] {
            asm!("mov ds, {0:x}", in(reg) sels[0], options(nomem, nostack, preserves_flags));
        }
        if sels[1] != now[1] {
            asm!("mov es, {0:x}", in(reg) sels[1], options(nomem, nostack, preserves_flags));
        }
        if sels[2] != now[2] {
            asm!("mov fs, {0:x}", in(reg) sels[2], options(nomem, nostack, preserves_flags));
        }
        if sels[3] != now[3] {
            asm!("mov gs, {0:x}", in(reg) sels[3], options(nomem, nostack, preserves_flags));
        }
    }
}
