//! The user programs, in their own page-aligned section (`.text.user`), which the kernel maps
//! into each process's user page tables (and nothing else of the kernel). They reach the
//! kernel only with `syscall`: number in `rax`, argument in `rdi`, result in `rax`
//! (see `crate::kernel::procs` for the numbers).
//!
//! * `user_worker(rounds = rdi, spins = rsi)`: `rounds` times, spin `spins` iterations, then
//!   `progress(round)`; finally `exit(0)`.
//! * `user_faulter(spins = rsi)`: one `progress(1)`, a spin, then a store to address 0 (#PF).
//! * `user_bench(iterations = rdi)`: times `iterations` null syscalls with `rdtsc`, then
//!   `report(cycles)` and `exit(0)`.
//! * `user_std_syscall`: `null()` with the direction flag set, then `exit(0)`.

extern "C" {
    static user_text_start: u8;
    static user_text_end: u8;
    fn user_worker();
    fn user_faulter();
    fn user_bench();
    fn user_std_syscall();
}

/// Kernel virtual address and size of the user-program pages.
pub fn user_text() -> (u64, u64) {
    let start = core::ptr::addr_of!(user_text_start) as u64;
    let end = core::ptr::addr_of!(user_text_end) as u64;
    (start, end - start)
}

/// The user programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// Spins and reports progress, then exits.
    Worker,
    /// Reports once, then faults.
    Faulter,
    /// Times null syscalls.
    Bench,
    /// Sets DF, makes a null syscall, clears DF and exits.
    StdSyscall,
}

impl Program {
    /// Offset of the program's entry from the start of the user pages.
    pub fn offset(self) -> u64 {
        let entry = match self {
            Program::Worker => user_worker as *const () as u64,
            Program::Faulter => user_faulter as *const () as u64,
            Program::Bench => user_bench as *const () as u64,
            Program::StdSyscall => user_std_syscall as *const () as u64,
        };
        entry - user_text().0
    }
}

core::arch::global_asm!(
    ".pushsection .text.user, \"ax\"",
    ".global user_worker",
    "user_worker:",
    "    mov r12, rdi",
    "    mov r13, rsi",
    "    xor r14d, r14d",
    "2:  mov r15, r13",
    "3:  dec r15",
    "    jnz 3b",
    "    inc r14",
    "    mov eax, 1",
    "    mov rdi, r14",
    "    syscall",
    "    cmp r14, r12",
    "    jb 2b",
    "    xor eax, eax",
    "    xor edi, edi",
    "    syscall",
    "    ud2",
    "",
    ".global user_faulter",
    "user_faulter:",
    "    mov r13, rsi",
    "    mov eax, 1",
    "    mov edi, 1",
    "    syscall",
    "4:  dec r13",
    "    jnz 4b",
    "    xor eax, eax",
    "    mov qword ptr [rax], 1",
    "    xor eax, eax",
    "    mov edi, 1",
    "    syscall",
    "    ud2",
    "",
    ".global user_bench",
    "user_bench:",
    "    mov r12, rdi",
    "    rdtsc",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    mov r13, rax",
    "5:  mov eax, 3",
    "    syscall",
    "    dec r12",
    "    jnz 5b",
    "    rdtsc",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    sub rax, r13",
    "    mov rdi, rax",
    "    mov eax, 4",
    "    syscall",
    "    xor eax, eax",
    "    xor edi, edi",
    "    syscall",
    "    ud2",
    "",
    ".global user_std_syscall",
    "user_std_syscall:",
    "    std",
    "    mov eax, 3",
    "    syscall",
    "    cld",
    "    xor eax, eax",
    "    xor edi, edi",
    "    syscall",
    "    ud2",
    ".popsection",
);
