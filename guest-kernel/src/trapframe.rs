//! The register frame every trap, event upcall and syscall entry builds on the guest kernel
//! stack (`arch::x86_64::traps` pushes it), and how to read Xen's bounce-frame details out of
//! it (xen-pv-abi.md §3.3): the saved `evtchn_upcall_mask` in bits 32-39 of the CS slot, RPL 0
//! in the CS of frames built while the guest was in kernel mode, and the error code.

/// Pseudo-vector of the event-channel upcall (`CALLBACKTYPE_event`).
pub const VECTOR_EVENT: u64 = 256;
/// Pseudo-vector of the 64-bit syscall callback (`CALLBACKTYPE_syscall`).
pub const VECTOR_SYSCALL: u64 = 257;
/// Pseudo-vector of the failsafe callback (`CALLBACKTYPE_failsafe`).
pub const VECTOR_FAILSAFE: u64 = 258;

/// RFLAGS.TF.
pub const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.IOPL.
pub const RFLAGS_IOPL: u64 = 3 << 12;
/// RFLAGS.AC.
pub const RFLAGS_AC: u64 = 1 << 18;

/// Saved registers, lowest address first. The entry stubs pop Xen's RCX/R11 slots back into
/// the registers and push a 0 error code for vectors without one, so the layout is the same
/// for every entry; `rip..ss` is Xen's frame (a native hardware frame).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    /// General-purpose registers of the interrupted context.
    pub r15: u64,
    #[allow(missing_docs)]
    pub r14: u64,
    #[allow(missing_docs)]
    pub r13: u64,
    #[allow(missing_docs)]
    pub r12: u64,
    #[allow(missing_docs)]
    pub r11: u64,
    #[allow(missing_docs)]
    pub r10: u64,
    #[allow(missing_docs)]
    pub r9: u64,
    #[allow(missing_docs)]
    pub r8: u64,
    #[allow(missing_docs)]
    pub rbp: u64,
    #[allow(missing_docs)]
    pub rdi: u64,
    #[allow(missing_docs)]
    pub rsi: u64,
    #[allow(missing_docs)]
    pub rdx: u64,
    #[allow(missing_docs)]
    pub rcx: u64,
    #[allow(missing_docs)]
    pub rbx: u64,
    #[allow(missing_docs)]
    pub rax: u64,
    /// Exception vector, or [`VECTOR_EVENT`] / [`VECTOR_SYSCALL`] / [`VECTOR_FAILSAFE`].
    pub vector: u64,
    /// Error code (0 for vectors without one). On return the entry code overwrites this slot
    /// with the `iret` flags word, which sits right below `rip` as `HYPERVISOR_iret` wants.
    pub error_code: u64,
    /// Interrupted RIP.
    pub rip: u64,
    /// Interrupted CS in bits 0-15, saved upcall mask in bits 32-39.
    pub cs: u64,
    /// Interrupted RFLAGS (IF = !saved mask).
    pub rflags: u64,
    /// Interrupted RSP.
    pub rsp: u64,
    /// Interrupted SS.
    pub ss: u64,
}

/// Size of [`TrapFrame`] in bytes (the entry asm relies on it).
pub const TRAP_FRAME_SIZE: usize = 22 * 8;
/// Offset of the error-code / iret-flags slot.
pub const TRAP_FRAME_ERROR_CODE_OFFSET: usize = 16 * 8;
const _: () = assert!(core::mem::size_of::<TrapFrame>() == TRAP_FRAME_SIZE);
const _: () = assert!(core::mem::offset_of!(TrapFrame, error_code) == TRAP_FRAME_ERROR_CODE_OFFSET);
const _: () = assert!(core::mem::offset_of!(TrapFrame, rip) == 17 * 8);

impl TrapFrame {
    /// The CS selector (bits 0-15).
    pub const fn selector(&self) -> u16 {
        self.cs as u16
    }

    /// The `evtchn_upcall_mask` saved by Xen (bits 32-39 of the CS slot).
    pub const fn saved_mask(&self) -> u8 {
        (self.cs >> 32) as u8
    }

    /// Whether the interrupted context was the guest kernel (Xen reports RPL 0 then).
    pub const fn from_kernel(&self) -> bool {
        self.cs & 3 == 0
    }

    /// Whether the interrupted context was guest user mode (RPL 3).
    pub const fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Whether the CPU pushes an error code for `vector` (and so Xen's frame carries one).
pub const fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The mnemonic of an exception vector (`#PF`), or `int` for other vectors.
pub const fn vector_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        20 => "#VE",
        21 => "#CP",
        VECTOR_EVENT => "event",
        VECTOR_SYSCALL => "syscall",
        VECTOR_FAILSAFE => "failsafe",
        _ => "int",
    }
}

/// Page-fault error-code bits.
pub mod pf {
    /// The page was present (protection violation).
    pub const PRESENT: u64 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// The access came from user mode (Xen recomputes it from the guest mode).
    pub const USER: u64 = 1 << 2;
    /// Instruction fetch.
    pub const FETCH: u64 = 1 << 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cs_slot_decoding() {
        let f = TrapFrame { cs: (1 << 32) | 0xe030, ..Default::default() };
        assert_eq!(f.selector(), 0xe030);
        assert_eq!(f.saved_mask(), 1);
        assert!(f.from_kernel() && !f.from_user());
        let u = TrapFrame { cs: 0xe033, ..Default::default() };
        assert_eq!(u.saved_mask(), 0);
        assert!(u.from_user());
    }

    #[test]
    fn error_code_vectors_and_names() {
        assert!(has_error_code(13) && has_error_code(14) && has_error_code(17));
        assert!(!has_error_code(0) && !has_error_code(3) && !has_error_code(19));
        assert_eq!(vector_name(14), "#PF");
        assert_eq!(vector_name(0x80), "int");
        assert_eq!(vector_name(VECTOR_SYSCALL), "syscall");
    }
}
