//! Guest FPU/SSE state. The hypervisor itself never uses the FPU (soft-float target), so the
//! registers belong to whichever guest runs; they are saved and restored whole on every
//! domain switch (`fxsave64`/`fxrstor64`), and CR0.TS carries the guest's virtual TS
//! (`fpu_taskswitch`) so its lazy FPU switching sees #NM as on Xen.

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// The 512-byte `fxsave` area.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after `fninit` with SSE defaults: FCW 0x37f, MXCSR 0x1f80 (all masked).
    pub fn initial() -> Self {
        let mut s = [0u8; 512];
        s[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        s[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        s[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR_MASK
        Self(s)
    }
}

/// Enables x87 and SSE for guests: CR0.MP, CR0.NE (native #MF), no EM; CR4.OSFXSR and
/// CR4.OSXMMEXCPT (#XM instead of #UD for SIMD exceptions).
pub fn init() {
    // SAFETY: these bits only change how FPU/SSE instructions behave; the hypervisor executes
    // none (soft-float), and guests expect them set as on Xen.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}

/// Sets or clears hardware CR0.TS.
pub fn set_task_switched(ts: bool) {
    // SAFETY: TS only makes the next FPU instruction raise #NM.
    unsafe {
        Cr0::update(|f| f.set(Cr0Flags::TASK_SWITCHED, ts));
    }
}

/// Saves the live FPU/SSE registers into `state`.
pub fn save(state: &mut FpuState) {
    set_task_switched(false); // fxsave with TS set would fault
                              // SAFETY: `state` is a 16-byte-aligned 512-byte area, as fxsave64 requires.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) state.0.as_mut_ptr(), options(nostack)) };
}

/// Loads `state` into the FPU/SSE registers.
pub fn restore(state: &FpuState) {
    set_task_switched(false);
    // SAFETY: as for `save`; the area holds a state fxsave produced or `initial` built (with a
    // valid MXCSR, so fxrstor64 cannot #GP).
    unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) state.0.as_ptr(), options(nostack)) };
}
