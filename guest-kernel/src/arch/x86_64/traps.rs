//! Trap, event and syscall entry code, and the way back through `HYPERVISOR_iret`.
//!
//! Register contract at entry (xen-pv-abi.md §3.3): Xen has written, at the aligned stack
//! pointer it chose (the current one in guest kernel mode, `kernel_sp` from user mode),
//! `RCX, R11, [error code], RIP, CS (mask in bits 32-39), RFLAGS, RSP, SS`; RCX and R11 hold
//! garbage. Each stub pops RCX and R11 back, pushes a 0 error code where the CPU has none and
//! the vector number, and `trap_common` pushes the other GPRs: the result is a
//! [`TrapFrame`](crate::trapframe::TrapFrame). `trap_dispatch` (Rust) may edit the frame and
//! returns the `iret` flags word (0 or `VGCF_in_syscall`), which goes into the error-code slot
//! just below RIP; after the GPRs are restored, RSP points at `flags, RIP, CS, RFLAGS, RSP, SS`
//! and we jump to the `iret` stub of the hypercall page, which pushes RCX, R11, RAX.
//!
//! There is one 16-byte stub per vector 0-255 at `trap_stubs + 16 * vector`.

use crate::trapframe::TrapFrame;

extern "C" {
    /// First of the 256 16-byte exception/interrupt stubs.
    static trap_stubs: u8;
    fn event_entry();
    fn syscall_entry();
    fn failsafe_entry();
    fn arch_enter_frame(frame: *const TrapFrame);
}

/// Size of each stub.
const STUB_SIZE: u64 = 16;

/// Address of the entry stub for `vector` (for `set_trap_table`).
pub fn trap_stub_address(vector: u8) -> u64 {
    core::ptr::addr_of!(trap_stubs) as u64 + STUB_SIZE * vector as u64
}

/// Address of the event-channel upcall entry (`CALLBACKTYPE_event`).
pub fn event_entry_address() -> u64 {
    event_entry as *const () as u64
}

/// RFLAGS as the last user `syscall` entered this kernel, before any instruction of ours
/// (Xen runs the syscall callback with DF clear, as a real SYSCALL does).
#[no_mangle]
static mut SYSCALL_ENTRY_RFLAGS: u64 = 0;

/// RFLAGS at the last user `syscall`'s entry (see `SYSCALL_ENTRY_RFLAGS`).
pub fn syscall_entry_rflags() -> u64 {
    // SAFETY: a plain read of a word only the entry stub writes, on this one vCPU.
    unsafe { core::ptr::addr_of!(SYSCALL_ENTRY_RFLAGS).read_volatile() }
}

/// Address of the user `syscall` entry (`CALLBACKTYPE_syscall`).
pub fn syscall_entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Address of the failsafe entry (`CALLBACKTYPE_failsafe`).
pub fn failsafe_entry_address() -> u64 {
    failsafe_entry as *const () as u64
}

/// Address of the code that resumes the kernel context saved by [`enter_frame`].
pub fn kernel_resume_address() -> u64 {
    extern "C" {
        fn arch_kernel_resume();
    }
    arch_kernel_resume as *const () as u64
}

/// Saves the kernel's callee-saved registers and stack pointer, loads every register from
/// `frame` and returns to it with `HYPERVISOR_iret` (to user mode when `frame.cs` has RPL 3).
/// Returns when a trap handler redirects a frame to [`kernel_resume_address`].
///
/// # Safety
/// `frame` must describe a context that is safe to run (its page tables, stack and code),
/// and a trap handler must eventually resume the kernel.
pub unsafe fn enter_frame(frame: &TrapFrame) {
    // SAFETY: the caller's contract; the asm preserves the Rust ABI's callee-saved state.
    unsafe { arch_enter_frame(frame) }
}

/// The kernel stack pointer saved by [`enter_frame`] (what `arch_kernel_resume` reloads).
static mut KERNEL_RESUME_RSP: u64 = 0;

core::arch::global_asm!(
    ".pushsection .text.traps, \"ax\"",
    ".p2align 4",
    ".global trap_stubs",
    "trap_stubs:",
    ".set vec, 0",
    ".rept 256",
    ".p2align 4",
    "    .byte 0x59",             // pop rcx
    "    .byte 0x41, 0x5b",       // pop r11
    "    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)",
    "    .else",
    "    .byte 0x6a, 0x00",       // push 0 (no error code)
    "    .endif",
    "    .byte 0x68",             // push imm32: the vector
    "    .long vec",
    "    jmp trap_common",
    ".set vec, vec + 1",
    ".endr",
    "",
    ".p2align 4",
    ".global event_entry",
    "event_entry:",
    "    pop rcx",
    "    pop r11",
    "    push 0",
    "    push {ev}",
    "    jmp trap_common",
    "",
    ".p2align 4",
    ".global syscall_entry",
    "syscall_entry:",
    "    pushfq",
    "    pop qword ptr [rip + SYSCALL_ENTRY_RFLAGS]",
    "    pop rcx",
    "    pop r11",
    "    push 0",
    "    push {sc}",
    "    jmp trap_common",
    "",
    // Failsafe frame: RCX, R11, DS, ES, FS, GS, RIP, CS, RFLAGS, RSP, SS.
    ".p2align 4",
    ".global failsafe_entry",
    "failsafe_entry:",
    "    pop rcx",
    "    pop r11",
    "    add rsp, 32",
    "    push 0",
    "    push {fs}",
    "    jmp trap_common",
    "",
    ".p2align 4",
    "trap_common:",
    "    push rax",
    "    push rbx",
    "    push rcx",
    "    push rdx",
    "    push rsi",
    "    push rdi",
    "    push rbp",
    "    push r8",
    "    push r9",
    "    push r10",
    "    push r11",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    cld",
    "    mov rdi, rsp",
    "    mov rbx, rsp",
    "    and rsp, -16",
    "    call {dispatch}",
    "    mov rsp, rbx",
    // The iret flags word goes where the error code was: right below RIP.
    "    mov [rsp + {ec}], rax",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop r11",
    "    pop r10",
    "    pop r9",
    "    pop r8",
    "    pop rbp",
    "    pop rdi",
    "    pop rsi",
    "    pop rdx",
    "    pop rcx",
    "    pop rbx",
    "    pop rax",
    "    add rsp, 8",
    "    jmp hypercall_page + {iret}",
    "",
    // arch_enter_frame(frame = rdi)
    ".p2align 4",
    ".global arch_enter_frame",
    "arch_enter_frame:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    mov [rip + {krsp}], rsp",
    "    sub rsp, 48",
    "    mov qword ptr [rsp], 0",
    "    mov rax, [rdi + 17*8]",
    "    mov [rsp + 8], rax",
    "    mov rax, [rdi + 18*8]",
    "    mov [rsp + 16], rax",
    "    mov rax, [rdi + 19*8]",
    "    mov [rsp + 24], rax",
    "    mov rax, [rdi + 20*8]",
    "    mov [rsp + 32], rax",
    "    mov rax, [rdi + 21*8]",
    "    mov [rsp + 40], rax",
    "    mov r15, [rdi + 0*8]",
    "    mov r14, [rdi + 1*8]",
    "    mov r13, [rdi + 2*8]",
    "    mov r12, [rdi + 3*8]",
    "    mov r11, [rdi + 4*8]",
    "    mov r10, [rdi + 5*8]",
    "    mov r9, [rdi + 6*8]",
    "    mov r8, [rdi + 7*8]",
    "    mov rbp, [rdi + 8*8]",
    "    mov rsi, [rdi + 10*8]",
    "    mov rdx, [rdi + 11*8]",
    "    mov rcx, [rdi + 12*8]",
    "    mov rbx, [rdi + 13*8]",
    "    mov rax, [rdi + 14*8]",
    "    mov rdi, [rdi + 9*8]",
    "    jmp hypercall_page + {iret}",
    "",
    ".p2align 4",
    ".global arch_kernel_resume",
    "arch_kernel_resume:",
    "    mov rsp, [rip + {krsp}]",
    "    pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".popsection",
    krsp = sym KERNEL_RESUME_RSP,
    dispatch = sym crate::kernel::trap::trap_dispatch,
    ev = const crate::trapframe::VECTOR_EVENT,
    sc = const crate::trapframe::VECTOR_SYSCALL,
    fs = const crate::trapframe::VECTOR_FAILSAFE,
    ec = const crate::trapframe::TRAP_FRAME_ERROR_CODE_OFFSET,
    iret = const hypercall_abi::hypercall::IRET * 32,
);
