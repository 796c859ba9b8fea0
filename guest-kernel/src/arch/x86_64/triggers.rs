//! Instruction sequences that raise one exception each, for the `traps` role.
//!
//! Trigger `t` (System V ABI, argument in `rdi`, copied to `r9`) loads known values into RBX,
//! RBP, RCX, R11 and R12-R15, executes the faulting or trapping instruction at its `fault`
//! address, continues at its `resume` address, and returns 1 if all those registers still hold
//! their values (the `iret` back was exact), 0 otherwise. For a fault the handler moves RIP
//! from `fault` to `resume`; for a trap Xen's frame already points at `resume`.

/// The triggers, in the order of the asm table `trigger_table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Trig {
    /// `div` by zero: #DE (fault).
    DivideError,
    /// TF set with `popf`, one `nop`: #DB (trap after the `nop`).
    SingleStep,
    /// `int3`: #BP (trap).
    Breakpoint,
    /// `int $4`: #OF (trap; `into` is invalid in 64-bit mode).
    Overflow,
    /// `int $0` with vector 0 registered at DPL 1: a software interrupt the kernel may raise.
    SoftIntZero,
    /// `ud2`: #UD (fault).
    InvalidOpcode,
    /// `fnop` with the virtual CR0.TS set: #NM (fault; the handler clears TS and retries).
    DeviceNotAvailable,
    /// `cli` in the guest kernel: #GP(0) (fault).
    GpCli,
    /// `int $0x81` registered with DPL 0: #GP((0x81 << 3) | 2) (fault).
    GpSoftInt,
    /// Load from the address in `arg`: #PF (fault).
    PageFaultRead,
    /// Store to the address in `arg`: #PF (fault).
    PageFaultWrite,
    /// x87 divide by zero with ZM unmasked, then `fwait`: #MF (fault at `fwait`).
    X87Error,
    /// RFLAGS.AC set and a misaligned load: #AC (fault, if the CPU checks alignment).
    AlignmentCheck,
    /// `divss` by zero with MXCSR.ZM clear: #XM (fault).
    SimdError,
    /// `int $0x80` registered with DPL 3 (trap).
    Int80,
    /// `hlt`: emulated by Xen for the guest kernel (used by the `emulate` role).
    Hlt,
}

/// Number of triggers.
pub const TRIGGERS: usize = 16;

/// One trigger's addresses.
#[derive(Clone, Copy, Debug)]
pub struct Trigger {
    entry: u64,
    /// Address of the faulting (or trapping) instruction.
    pub fault: u64,
    /// Address of the instruction after it.
    pub resume: u64,
}

extern "C" {
    static trigger_table: [[u64; 3]; TRIGGERS];
}

impl Trig {
    /// The trigger's addresses.
    pub fn get(self) -> Trigger {
        // SAFETY: the table is read-only data the asm below defines with TRIGGERS entries.
        let [entry, fault, resume] = unsafe { trigger_table[self as usize] };
        Trigger { entry, fault, resume }
    }

    /// Runs the trigger with `arg`; returns whether the marked registers survived.
    ///
    /// # Safety
    /// A handler that resumes faults at `resume` (and clears TF after the single step) must
    /// be installed; `arg` must suit the trigger (an address that faults, for #PF).
    pub unsafe fn run(self, arg: u64) -> bool {
        let entry = self.get().entry;
        // SAFETY: the entry is our asm routine following the System V ABI.
        let f: unsafe extern "C" fn(u64) -> u64 = unsafe { core::mem::transmute(entry) };
        // SAFETY: the caller's contract.
        unsafe { f(arg) == 1 }
    }
}

core::arch::global_asm!(
    ".macro TRIGGER name",
    ".pushsection .rodata.triggers, \"a\"",
    "    .quad \\name, \\name\\()_fault, \\name\\()_resume",
    ".popsection",
    "\\name:",
    "    push rbx",
    "    push rbp",
    "    push r12",
    "    push r13",
    "    push r14",
    "    push r15",
    "    mov r9, rdi",
    "    movabs rbx, 0x1111111111111111",
    "    movabs rbp, 0x2222222222222222",
    "    movabs r12, 0x3333333333333333",
    "    movabs r13, 0x4444444444444444",
    "    movabs r14, 0x5555555555555555",
    "    movabs r15, 0x6666666666666666",
    "    movabs rcx, 0x7777777777777777",
    "    movabs r11, 0x8888888888888888",
    ".endm",
    ".macro TRIGGER_END",
    "    xor eax, eax",
    "    movabs rdx, 0x1111111111111111",
    "    cmp rbx, rdx",
    "    jne 1f",
    "    movabs rdx, 0x2222222222222222",
    "    cmp rbp, rdx",
    "    jne 1f",
    "    movabs rdx, 0x3333333333333333",
    "    cmp r12, rdx",
    "    jne 1f",
    "    movabs rdx, 0x4444444444444444",
    "    cmp r13, rdx",
    "    jne 1f",
    "    movabs rdx, 0x5555555555555555",
    "    cmp r14, rdx",
    "    jne 1f",
    "    movabs rdx, 0x6666666666666666",
    "    cmp r15, rdx",
    "    jne 1f",
    "    movabs rdx, 0x7777777777777777",
    "    cmp rcx, rdx",
    "    jne 1f",
    "    movabs rdx, 0x8888888888888888",
    "    cmp r11, rdx",
    "    jne 1f",
    "    mov eax, 1",
    "1:  pop r15",
    "    pop r14",
    "    pop r13",
    "    pop r12",
    "    pop rbp",
    "    pop rbx",
    "    ret",
    ".endm",
    ".pushsection .text.triggers, \"ax\"",
    // #DE
    "TRIGGER trig_de",
    "    xor edx, edx",
    "    mov eax, 1",
    "    xor r8d, r8d",
    "trig_de_fault: div r8d",
    "trig_de_resume:",
    "TRIGGER_END",
    // #DB: TF takes effect after the instruction following popf.
    "TRIGGER trig_db",
    "    pushfq",
    "    or qword ptr [rsp], 0x100",
    "    popfq",
    "trig_db_fault: nop",
    "trig_db_resume:",
    "TRIGGER_END",
    // #BP
    "TRIGGER trig_bp",
    "trig_bp_fault: int3",
    "trig_bp_resume:",
    "TRIGGER_END",
    // #OF
    "TRIGGER trig_of",
    "trig_of_fault: int 4",
    "trig_of_resume:",
    "TRIGGER_END",
    // int $0 (software interrupt, vector 0 at DPL 1)
    "TRIGGER trig_int0",
    "trig_int0_fault: int 0",
    "trig_int0_resume:",
    "TRIGGER_END",
    // #UD
    "TRIGGER trig_ud",
    "trig_ud_fault: ud2",
    "trig_ud_resume:",
    "TRIGGER_END",
    // #NM: the caller set the virtual CR0.TS.
    "TRIGGER trig_nm",
    "trig_nm_fault: fnop",
    "trig_nm_resume:",
    "TRIGGER_END",
    // #GP from cli
    "TRIGGER trig_gp_cli",
    "trig_gp_cli_fault: cli",
    "trig_gp_cli_resume:",
    "TRIGGER_END",
    // #GP from int $0x81 (DPL 0)
    "TRIGGER trig_gp_int81",
    "trig_gp_int81_fault: int 0x81",
    "trig_gp_int81_resume:",
    "TRIGGER_END",
    // #PF read
    "TRIGGER trig_pf_read",
    "trig_pf_read_fault: mov rax, [r9]",
    "trig_pf_read_resume:",
    "TRIGGER_END",
    // #PF write
    "TRIGGER trig_pf_write",
    "    xor eax, eax",
    "trig_pf_write_fault: mov [r9], rax",
    "trig_pf_write_resume:",
    "TRIGGER_END",
    // #MF: unmask ZM (control word 0x37b), 1/0, then fwait.
    "TRIGGER trig_mf",
    "    sub rsp, 8",
    "    fninit",
    "    mov word ptr [rsp], 0x37b",
    "    fldcw [rsp]",
    "    fld1",
    "    fldz",
    "    fdivp st(1), st",
    "trig_mf_fault: fwait",
    "trig_mf_resume:",
    "    fnclex",
    "    fninit",
    "    add rsp, 8",
    "TRIGGER_END",
    // #AC: set RFLAGS.AC, load from an odd address on our stack.
    "TRIGGER trig_ac",
    "    sub rsp, 16",
    "    pushfq",
    "    or qword ptr [rsp], 0x40000",
    "    popfq",
    "    lea r8, [rsp + 1]",
    "trig_ac_fault: mov rax, [r8]",
    "trig_ac_resume:",
    "    pushfq",
    "    and qword ptr [rsp], ~0x40000",
    "    popfq",
    "    add rsp, 16",
    "TRIGGER_END",
    // #XM: MXCSR with ZM clear (0x1d80), 1.0 / 0.0.
    "TRIGGER trig_xm",
    "    sub rsp, 8",
    "    mov dword ptr [rsp], 0x1d80",
    "    ldmxcsr [rsp]",
    "    xorps xmm0, xmm0",
    "    mov eax, 0x3f800000",
    "    movd xmm1, eax",
    "trig_xm_fault: divss xmm1, xmm0",
    "trig_xm_resume:",
    "    mov dword ptr [rsp], 0x1f80",
    "    ldmxcsr [rsp]",
    "    add rsp, 8",
    "TRIGGER_END",
    // int $0x80 (DPL 3)
    "TRIGGER trig_int80",
    "trig_int80_fault: int 0x80",
    "trig_int80_resume:",
    "TRIGGER_END",
    // hlt
    "TRIGGER trig_hlt",
    "trig_hlt_fault: hlt",
    "trig_hlt_resume:",
    "TRIGGER_END",
    ".popsection",
);
