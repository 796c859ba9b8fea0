//! Guest FPU/SSE state. The hypervisor itself never uses the FPU (soft-float target), so the
//! registers belong to whichever guest runs; they are saved and restored whole on every
//! domain switch (`fxsave64`/`fxrstor64`), and CR0.TS carries the guest's virtual TS
//! (`fpu_taskswitch`) so its lazy FPU switching sees #NM as on Xen.

use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// Whether `fxrstor` may leave the previous owner's x87 FIP, FDP and FOP in place: AMD and
/// Hygon CPUs without RSTR_FP_ERR_PTRS (CPUID 0x80000008 EBX bit 2) restore them only when
/// an x87 exception is pending, so one domain could read where another last used the x87
/// (Xen's `cpu_bug_fpu_ptrs`). Set once at boot.
static STALE_FP_POINTERS: AtomicBool = AtomicBool::new(false);

/// Whether this CPU keeps stale x87 error pointers across `fxrstor` (see above).
fn keeps_stale_fp_pointers() -> bool {
    let vendor = core::arch::x86_64::__cpuid(0);
    let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163) // AuthenticAMD
        || (vendor.ebx, vendor.edx, vendor.ecx) == (0x6f67_7948, 0x6e65_476e, 0x656e_6975); // HygonGenuine
    let rstr_fp_err_ptrs = core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0008
        && core::arch::x86_64::__cpuid(0x8000_0008).ebx & (1 << 2) != 0;
    amd && !rstr_fp_err_ptrs
}

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
    STALE_FP_POINTERS.store(keeps_stale_fp_pointers(), Ordering::Relaxed);
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
    let (fcw, fsw) = (u16::from_le_bytes([state.0[0], state.0[1]]), u16::from_le_bytes([state.0[2], state.0[3]]));
    if STALE_FP_POINTERS.load(Ordering::Relaxed) && fsw & !fcw & 0x3f == 0 {
        // No exception pending, so fxrstor keeps the old FIP/FDP/FOP: overwrite them with
        // this state's own address first, as Xen's `fpu_fxrstor` does.
        // SAFETY: clears x87 exceptions, frees st(7) and loads an integer from our own
        // readable state; fxrstor below replaces every register they touch.
        unsafe {
            core::arch::asm!("fnclex", "ffree st(7)", "fild dword ptr [{}]", in(reg) state.0.as_ptr(), options(nostack))
        };
    }
    // SAFETY: as for `save`; the area holds a state fxsave produced or `initial` built (with a
    // valid MXCSR, so fxrstor64 cannot #GP).
    unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) state.0.as_ptr(), options(nostack)) };
}
