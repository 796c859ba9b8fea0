//! Raw 64-bit PV hypercalls: `syscall` with `rax` = number, arguments in
//! `rdi rsi rdx r10 r8`, result in `rax`. `rcx`/`r11` are destroyed by `syscall`/`sysret`, and
//! all five argument registers count as clobbered, the unused ones too, as Linux's
//! `__HYPERCALL_CLOBBER5`: debug Xen builds poison them, and a continued hypercall returns
//! with the arguments its last round was given.

use core::arch::asm;

/// Hypercall `nr` with no arguments.
///
/// # Safety
/// Must run in a PV guest kernel; the hypercall may change memory and CPU state as `nr` says.
#[inline(always)]
pub unsafe fn hypercall0(nr: u64) -> i64 {
    let ret: i64;
    // SAFETY: the caller guarantees we are a PV guest kernel; the register contract is Xen's.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret,
             lateout("rdi") _, lateout("rsi") _, lateout("rdx") _, lateout("r10") _, lateout("r8") _,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Hypercall `nr` with one argument.
///
/// # Safety
/// As [`hypercall0`], and the argument must be what `nr` expects.
#[inline(always)]
pub unsafe fn hypercall1(nr: u64, a1: u64) -> i64 {
    let ret: i64;
    // SAFETY: as above; rdi is an argument register and clobbered.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, inlateout("rdi") a1 => _,
             lateout("rsi") _, lateout("rdx") _, lateout("r10") _, lateout("r8") _,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Hypercall `nr` with two arguments.
///
/// # Safety
/// As [`hypercall0`], and the arguments must be what `nr` expects.
#[inline(always)]
pub unsafe fn hypercall2(nr: u64, a1: u64, a2: u64) -> i64 {
    let ret: i64;
    // SAFETY: as above.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, inlateout("rdi") a1 => _,
             inlateout("rsi") a2 => _, lateout("rdx") _, lateout("r10") _, lateout("r8") _,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Hypercall `nr` with three arguments.
///
/// # Safety
/// As [`hypercall0`], and the arguments must be what `nr` expects.
#[inline(always)]
pub unsafe fn hypercall3(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: as above.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, inlateout("rdi") a1 => _,
             inlateout("rsi") a2 => _, inlateout("rdx") a3 => _, lateout("r10") _, lateout("r8") _,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Hypercall `nr` with four arguments (the fourth in `r10`, not `rcx`).
///
/// # Safety
/// As [`hypercall0`], and the arguments must be what `nr` expects.
#[inline(always)]
pub unsafe fn hypercall4(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let ret: i64;
    // SAFETY: as above.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, inlateout("rdi") a1 => _,
             inlateout("rsi") a2 => _, inlateout("rdx") a3 => _, inlateout("r10") a4 => _,
             lateout("r8") _, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Hypercall `nr` with five arguments.
///
/// # Safety
/// As [`hypercall0`], and the arguments must be what `nr` expects.
#[inline(always)]
pub unsafe fn hypercall5(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // SAFETY: as above.
    unsafe {
        asm!("syscall", inlateout("rax") nr as i64 => ret, inlateout("rdi") a1 => _,
             inlateout("rsi") a2 => _, inlateout("rdx") a3 => _, inlateout("r10") a4 => _,
             inlateout("r8") a5 => _, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}
