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
    /// Overwrites this frame with `src` (what `clone_from` does), one register at a time:
    /// a clone of 176 bytes becomes a `memcpy` call whose `rep movs` QEMU's TCG runs one
    /// iteration at a time, and a context switch copies two frames. The exhaustive pattern
    /// makes a new field a compile error here rather than a register left behind.
    #[inline]
    pub fn copy_from(&mut self, src: &Self) {
        let Self {
            r15,
            r14,
            r13,
            r12,
            r11,
            r10,
            r9,
            r8,
            rbp,
            rdi,
            rsi,
            rdx,
            rcx,
            rbx,
            rax,
            vector,
            error_code,
            rip,
            cs,
            rflags,
            rsp,
            ss,
        } = self;
        *r15 = src.r15;
        *r14 = src.r14;
        *r13 = src.r13;
        *r12 = src.r12;
        *r11 = src.r11;
        *r10 = src.r10;
        *r9 = src.r9;
        *r8 = src.r8;
        *rbp = src.rbp;
        *rdi = src.rdi;
        *rsi = src.rsi;
        *rdx = src.rdx;
        *rcx = src.rcx;
        *rbx = src.rbx;
        *rax = src.rax;
        *vector = src.vector;
        *error_code = src.error_code;
        *rip = src.rip;
        *cs = src.cs;
        *rflags = src.rflags;
        *rsp = src.rsp;
        *ss = src.ss;
    }

    /// Whether the interrupted context was ring 0 (the hypervisor itself).
    pub fn from_ring0(&self) -> bool {
        self.cs & 3 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_from_copies_every_register() {
        let mut words = [0u64; 22];
        for (i, w) in words.iter_mut().enumerate() {
            *w = 0x1111_0000 + i as u64;
        }
        let [r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax, vector, error_code, rip, cs, rflags, rsp, ss] =
            words;
        let src = TrapFrame {
            r15,
            r14,
            r13,
            r12,
            r11,
            r10,
            r9,
            r8,
            rbp,
            rdi,
            rsi,
            rdx,
            rcx,
            rbx,
            rax,
            vector,
            error_code,
            rip,
            cs,
            rflags,
            rsp,
            ss,
        };
        let mut dst = TrapFrame::default();
        dst.copy_from(&src);
        assert_eq!(dst, src);
    }
}
