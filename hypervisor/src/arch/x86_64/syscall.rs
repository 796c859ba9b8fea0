//! `SYSCALL` entry: how a PV guest reaches the hypervisor for a hypercall.
//!
//! Register contract (digest §2.1): `rax` = hypercall number, arguments in `rdi rsi rdx r10
//! r8`, `rcx` = guest `rip` and `r11` = guest `rflags` (loaded by the CPU). The entry switches
//! to the ring-0 stack, builds the same [`TrapFrame`](super::idt::TrapFrame) as an exception
//! (vector [`SYSCALL_VECTOR`], ring-3 selectors), and joins the trap path in `idt.rs`, whose
//! exit uses `sysretq` when the resulting frame allows it and `iretq` otherwise. `SFMASK`
//! clears IF, so the entry runs with interrupts off like every other.
//!
//! `CSTAR` gets the same entry with CS `FLAT_RING3_CS32` in the frame: a guest can far-jump to
//! the DPL-3 selector 0xe023 and run `syscall` in compatibility mode. Left at its reset value
//! 0, `CSTAR` would send that `syscall` to address 0 in ring 0, on the guest's stack.

use super::cpu::{rdmsr, wrmsr};
use super::gdt::{FLAT_RING3_CS32, HYPERVISOR_CS};
use core::arch::global_asm;

/// Pseudo vector number marking a frame built by the `SYSCALL` entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_CSTAR: u32 = 0xc000_0083;
const IA32_FMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1;
/// Flags cleared on entry: TF, IF, DF, IOPL, NT, AC.
const FMASK: u64 = 0x100 | 0x200 | 0x400 | 0x3000 | 0x4000 | 0x40000;

global_asm!(
    r#"
    .section .text.syscall_entry, "ax"
    /* Builds the trap frame of a SYSCALL (SS, RSP, RFLAGS, CS, RIP, error code 0,
       SYSCALL_VECTOR) on the ring-0 stack and joins the trap path, which does the same
       register save, dispatch and exit as for traps. CS tells the two entries apart. */
    .macro syscall_frame ss, cs
    mov [rip + syscall_saved_rsp], rsp
    mov rsp, [rip + syscall_stack_top]
    push \ss                        /* ss */
    push [rip + syscall_saved_rsp]  /* rsp */
    push r11                        /* rflags */
    push \cs                        /* cs */
    push rcx                        /* rip */
    push 0                          /* error code */
    push 0x100                      /* SYSCALL_VECTOR */
    jmp trap_common
    .endm

    .global syscall_entry
syscall_entry:
    syscall_frame 0xe02b, 0xe033    /* FLAT_RING3_SS64, FLAT_RING3_CS64 */

    /* SYSCALL from compatibility mode (CSTAR): CS FLAT_RING3_CS32; RCX holds the
       zero-extended 32-bit return address. */
    .global syscall_compat_entry
syscall_compat_entry:
    syscall_frame 0xe02b, 0xe023    /* FLAT_RING3_SS32, FLAT_RING3_CS32 */

    .section .data.syscall_entry, "aw"
    .balign 8
syscall_saved_rsp:
    .quad 0
    .global syscall_stack_top
syscall_stack_top:
    .quad 0
"#
);

extern "C" {
    fn syscall_entry();
    fn syscall_compat_entry();
    static mut syscall_stack_top: u64;
}

/// Enables `SYSCALL` with Xen's selector layout and the given ring-0 stack.
pub fn init(ring0_stack_top: u64) {
    // SAFETY: single-threaded boot; the entry stub reads this only on a later SYSCALL.
    unsafe { *core::ptr::addr_of_mut!(syscall_stack_top) = ring0_stack_top };
    // STAR[47:32] = kernel CS (SS = +8); STAR[63:48] = 0xe023, so SYSRET64 would load CS
    // 0xe033 and SS 0xe02b: the flat ring-3 selectors guests expect.
    let star = (FLAT_RING3_CS32 as u64 & !3) << 48 | (HYPERVISOR_CS as u64) << 32;
    // SAFETY: these MSRs only configure SYSCALL, whose entry points are valid ring-0 code.
    unsafe {
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
        wrmsr(IA32_CSTAR, syscall_compat_entry as *const () as u64);
        wrmsr(IA32_FMASK, FMASK);
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SCE);
    }
}
