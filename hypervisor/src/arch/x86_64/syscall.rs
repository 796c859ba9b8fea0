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
use super::gdt::{FLAT_RING3_CS32, HYPERVISOR_CS, MAX_CPUS};
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
       register save, dispatch and exit as for traps. CS tells the two entries apart.
       Each CPU has its own pair of entries (LSTAR and CSTAR are per CPU), each with its own
       two words of syscall_percpu: the guest rsp while switching, and the ring-0 stack top.
       That needs no per-CPU segment base, which belongs to the guest. */
    .macro syscall_frame ss, cs, cpu
    mov [rip + syscall_percpu + 16 * \cpu], rsp
    mov rsp, [rip + syscall_percpu + 16 * \cpu + 8]
    push \ss                        /* ss */
    push [rip + syscall_percpu + 16 * \cpu]  /* rsp */
    push r11                        /* rflags */
    push \cs                        /* cs */
    push rcx                        /* rip */
    push 0                          /* error code */
    push 0x100                      /* SYSCALL_VECTOR */
    jmp trap_common
    .endm

    .irp cpu, 0, 1, 2, 3
    .global syscall_entry_\cpu
syscall_entry_\cpu:
    syscall_frame 0xe02b, 0xe033, \cpu    /* FLAT_RING3_SS64, FLAT_RING3_CS64 */

    /* SYSCALL from compatibility mode (CSTAR): CS FLAT_RING3_CS32; RCX holds the
       zero-extended 32-bit return address. */
    .global syscall_compat_entry_\cpu
syscall_compat_entry_\cpu:
    syscall_frame 0xe02b, 0xe023, \cpu    /* FLAT_RING3_SS32, FLAT_RING3_CS32 */
    .endr

    .section .data.syscall_entry, "aw"
    .balign 8
    .global syscall_percpu
syscall_percpu:
    .fill 2 * 4, 8, 0
"#
);

extern "C" {
    fn syscall_entry_0();
    fn syscall_entry_1();
    fn syscall_entry_2();
    fn syscall_entry_3();
    fn syscall_compat_entry_0();
    fn syscall_compat_entry_1();
    fn syscall_compat_entry_2();
    fn syscall_compat_entry_3();
    static mut syscall_percpu: [[u64; 2]; MAX_CPUS];
}

/// The (64-bit, compatibility-mode) entries of each CPU; the asm above has one pair per CPU.
const _: () = assert!(MAX_CPUS == 4, "syscall.rs generates entries for four CPUs");
fn entries(cpu: usize) -> (u64, u64) {
    let (long, compat): (unsafe extern "C" fn(), unsafe extern "C" fn()) = match cpu {
        0 => (syscall_entry_0, syscall_compat_entry_0),
        1 => (syscall_entry_1, syscall_compat_entry_1),
        2 => (syscall_entry_2, syscall_compat_entry_2),
        _ => (syscall_entry_3, syscall_compat_entry_3),
    };
    (long as *const () as u64, compat as *const () as u64)
}

/// Enables `SYSCALL` on the calling CPU, `cpu`, with Xen's selector layout and that CPU's
/// ring-0 stack.
pub fn init(cpu: usize, ring0_stack_top: u64) {
    // SAFETY: only this CPU, while it starts, writes its own slot; its entry stub reads it
    // only on a later SYSCALL.
    unsafe { (*core::ptr::addr_of_mut!(syscall_percpu))[cpu][1] = ring0_stack_top };
    let (long, compat) = entries(cpu);
    // STAR[47:32] = kernel CS (SS = +8); STAR[63:48] = 0xe023, so SYSRET64 would load CS
    // 0xe033 and SS 0xe02b: the flat ring-3 selectors guests expect.
    let star = (FLAT_RING3_CS32 as u64 & !3) << 48 | (HYPERVISOR_CS as u64) << 32;
    // SAFETY: these MSRs only configure SYSCALL, whose entry points are valid ring-0 code,
    // and turn SYSENTER off.
    unsafe {
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, long);
        wrmsr(IA32_CSTAR, compat);
        wrmsr(IA32_FMASK, FMASK);
        // SYSENTER is not offered: SYSENTER_CS 0 makes it #GP in ring 3, whatever a loader
        // before us left in these MSRs (Xen writes them on every CPU too).
        for sysenter_msr in [0x174, 0x175, 0x176] {
            wrmsr(sysenter_msr, 0);
        }
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SCE);
    }
}
