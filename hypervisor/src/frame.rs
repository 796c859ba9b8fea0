//! The register frame saved on every entry to the hypervisor (trap, interrupt or `SYSCALL`).
//!
//! Its layout is fixed by the entry stubs in `arch/x86_64/idt.rs` and `syscall.rs` (lowest
//! address first); it lives here, free of asm, so the generic trap-bounce and `iret` logic can
//! work on it and be tested on the host.

/// General registers, vector, error code and the CPU's interrupt frame.
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector number pushed by the stub (0x100 for `SYSCALL`).
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

impl TrapFrame {
    /// Whether the interrupted context was ring 0 (the hypervisor itself).
    pub fn from_ring0(&self) -> bool {
        self.cs & 3 == 0
    }
}
