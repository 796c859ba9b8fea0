//! Privileged and sensitive instructions as a ring-3 PV kernel executes them: Xen traps
//! (#GP or, for the forced-emulation prefix, #UD) and emulates them, or reflects the fault.
//!
//! Each routine's trapping instruction is listed in the fixup table (`insn_fixups`): a trap
//! handler that finds a frame RIP there resumes at the paired address, so a refused
//! instruction costs one bounced fault and the routine returns whatever its outputs were
//! preset to (0).

extern "C" {
    static insn_fixups_start: [u64; 2];
    static insn_fixups_end: [u64; 2];
    fn arch_cpuid(leaf: u32, subleaf: u32, out: *mut [u32; 4]);
    fn arch_cpuid_forced(leaf: u32, subleaf: u32, out: *mut [u32; 4]);
    fn arch_cpuid_forced_stepped(leaf: u32, out: *mut [u32; 4]);
    static arch_cpuid_forced_stepped_after: u8;
    fn arch_rdmsr(msr: u32) -> u64;
    fn arch_wrmsr(msr: u32, value: u64);
    fn arch_inb(port: u16) -> u8;
    fn arch_outb(port: u16, value: u8);
    fn arch_read_cr(which: u32) -> u64;
    fn arch_write_cr3(value: u64);
    fn arch_write_cr4(value: u64);
    fn arch_wbinvd();
    fn arch_hlt();
    fn arch_popf_clear_if(out: *mut [u64; 2]);
    fn arch_peek(addr: u64) -> u64;
}

/// Loads the u64 at `addr`; a fault there is resumed by the fixup (the result is then 0, and
/// the trap handler has recorded the #PF).
///
/// # Safety
/// Reading `addr` must have no side effects (ordinary memory, mapped or not).
pub unsafe fn peek(addr: u64) -> u64 {
    // SAFETY: the caller's contract; a fault resumes after the load.
    unsafe { arch_peek(addr) }
}

/// Where to resume after a trap at `rip`, if `rip` is one of the routines' trapping
/// instructions.
pub fn fixup_for(rip: u64) -> Option<u64> {
    // The linker script places every `.rodata.insn_fixups` pair between these symbols.
    let start = core::ptr::addr_of!(insn_fixups_start);
    let end = core::ptr::addr_of!(insn_fixups_end);
    let n = (end as usize - start as usize) / 16;
    // SAFETY: `n` pairs of read-only data starting at `start`.
    let table = unsafe { core::slice::from_raw_parts(start, n) };
    table.iter().find(|p| p[0] == rip).map(|p| p[1])
}

/// `cpuid` (runs natively unless the hypervisor turned on CPUID faulting).
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let mut out = [0; 4];
    // SAFETY: cpuid only reads CPU information into the buffer.
    unsafe { arch_cpuid(leaf, subleaf, &mut out) };
    out
}

/// `ud2; .ascii "xen"; cpuid`: Xen's forced-emulation prefix, answered from the domain's
/// CPUID policy. Zeros if the #UD was reflected instead (handler fixup).
pub fn cpuid_forced(leaf: u32, subleaf: u32) -> [u32; 4] {
    let mut out = [0; 4];
    // SAFETY: as `cpuid`; a reflected #UD resumes after the sequence (fixup table).
    unsafe { arch_cpuid_forced(leaf, subleaf, &mut out) };
    out
}

/// The forced-emulation `cpuid` with RFLAGS.TF set just before it (`popf`), so the CPU's
/// single step lands on it: the hypervisor emulates it and must raise the #DB the CPU would
/// have raised after it, at [`cpuid_forced_stepped_after`]. The #DB handler must clear TF.
pub fn cpuid_forced_stepped(leaf: u32) -> [u32; 4] {
    let mut out = [0; 4];
    // SAFETY: as `cpuid_forced`; TF is cleared by the caller's #DB handler.
    unsafe { arch_cpuid_forced_stepped(leaf, &mut out) };
    out
}

/// The instruction after [`cpuid_forced_stepped`]'s `cpuid`.
pub fn cpuid_forced_stepped_after() -> u64 {
    core::ptr::addr_of!(arch_cpuid_forced_stepped_after) as u64
}

/// `rdmsr` (0 if the #GP was reflected).
pub fn rdmsr(msr: u32) -> u64 {
    // SAFETY: reading an MSR has no side effect; a #GP is resumed by the fixup.
    unsafe { arch_rdmsr(msr) }
}

/// `wrmsr`.
///
/// # Safety
/// The write must not break the kernel (only segment bases and harmless MSRs are written).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller's contract; a #GP is resumed by the fixup.
    unsafe { arch_wrmsr(msr, value) }
}

/// `in al, dx` (0 if the #GP was reflected).
///
/// # Safety
/// Reading the port must be harmless (e.g. CMOS data, port 0x80).
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: the caller's contract.
    unsafe { arch_inb(port) }
}

/// `out dx, al`.
///
/// # Safety
/// Writing the port must be harmless (e.g. the CMOS index, port 0x80).
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller's contract.
    unsafe { arch_outb(port, value) }
}

/// `mov %crN, %rax` for N in 0, 2, 3, 4 (0 if refused).
pub fn read_cr(which: u32) -> u64 {
    // SAFETY: reading a control register changes nothing.
    unsafe { arch_read_cr(which) }
}

/// `mov %rax, %cr3`.
///
/// # Safety
/// `value` must be a valid, validated L4 that maps the kernel (e.g. the current one).
pub unsafe fn write_cr3(value: u64) {
    // SAFETY: the caller's contract.
    unsafe { arch_write_cr3(value) }
}

/// `mov %rax, %cr4` (emulated: only the guest-controlled bits count).
///
/// # Safety
/// Bits such as TSD change what user code may run.
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller's contract.
    unsafe { arch_write_cr4(value) }
}

/// `wbinvd`.
pub fn wbinvd() {
    // SAFETY: write-back and invalidate caches: slow but harmless.
    unsafe { arch_wbinvd() }
}

/// `hlt`.
pub fn hlt() {
    // SAFETY: halting until an event (or a no-op) is harmless.
    unsafe { arch_hlt() }
}

/// `pushf; pop` the flags, clear IF in them, `push; popf`, `pushf` again: returns the flags
/// before and after. In ring 3 `popf` silently ignores IF (no trap), so both show IF = 1.
pub fn popf_clear_if() -> [u64; 2] {
    let mut out = [0; 2];
    // SAFETY: only RFLAGS.IF is asked to change, which ring 3 cannot do.
    unsafe { arch_popf_clear_if(&mut out) };
    out
}

core::arch::global_asm!(
    ".macro FIXUP site, resume",
    ".pushsection .rodata.insn_fixups, \"a\"",
    "    .quad \\site, \\resume",
    ".popsection",
    ".endm",
    ".pushsection .text.insn, \"ax\"",
    // arch_cpuid(leaf = edi, subleaf = esi, out = rdx)
    ".global arch_cpuid",
    "arch_cpuid:",
    "    push rbx",
    "    mov r8, rdx",
    "    mov eax, edi",
    "    mov ecx, esi",
    "    xor ebx, ebx",
    "    xor edx, edx",
    "arch_cpuid_site: cpuid",
    "arch_cpuid_after:",
    "    mov [r8], eax",
    "    mov [r8 + 4], ebx",
    "    mov [r8 + 8], ecx",
    "    mov [r8 + 12], edx",
    "    pop rbx",
    "    ret",
    "FIXUP arch_cpuid_site, arch_cpuid_after",
    ".global arch_cpuid_forced",
    "arch_cpuid_forced:",
    "    push rbx",
    "    mov r8, rdx",
    "    mov eax, edi",
    "    mov ecx, esi",
    "    xor ebx, ebx",
    "    xor edx, edx",
    "arch_cpuid_forced_site:",
    "    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2",
    "arch_cpuid_forced_after:",
    "    mov [r8], eax",
    "    mov [r8 + 4], ebx",
    "    mov [r8 + 8], ecx",
    "    mov [r8 + 12], edx",
    "    pop rbx",
    "    ret",
    "FIXUP arch_cpuid_forced_site, arch_cpuid_forced_after",
    // arch_cpuid_forced_stepped(leaf = edi, out = rsi): TF set by popf, whose single step
    // comes after the next instruction: the emulated cpuid.
    ".global arch_cpuid_forced_stepped",
    ".global arch_cpuid_forced_stepped_after",
    "arch_cpuid_forced_stepped:",
    "    push rbx",
    "    mov r8, rsi",
    "    mov eax, edi",
    "    xor ecx, ecx",
    "    xor ebx, ebx",
    "    xor edx, edx",
    "    pushfq",
    "    or qword ptr [rsp], 0x100",
    "    popfq",
    "arch_cpuid_forced_stepped_site:",
    "    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2",
    "arch_cpuid_forced_stepped_after:",
    "    jmp arch_cpuid_forced_after", // the same stores through r8, rbx popped
    "FIXUP arch_cpuid_forced_stepped_site, arch_cpuid_forced_stepped_after",
    // arch_rdmsr(msr = edi) -> rax
    ".global arch_rdmsr",
    "arch_rdmsr:",
    "    mov ecx, edi",
    "    xor eax, eax",
    "    xor edx, edx",
    "arch_rdmsr_site: rdmsr",
    "arch_rdmsr_after:",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    ret",
    "FIXUP arch_rdmsr_site, arch_rdmsr_after",
    // arch_wrmsr(msr = edi, value = rsi)
    ".global arch_wrmsr",
    "arch_wrmsr:",
    "    mov ecx, edi",
    "    mov eax, esi",
    "    mov rdx, rsi",
    "    shr rdx, 32",
    "arch_wrmsr_site: wrmsr",
    "arch_wrmsr_after:",
    "    ret",
    "FIXUP arch_wrmsr_site, arch_wrmsr_after",
    // arch_inb(port = di) -> al
    ".global arch_inb",
    "arch_inb:",
    "    mov edx, edi",
    "    xor eax, eax",
    "arch_inb_site: in al, dx",
    "arch_inb_after:",
    "    ret",
    "FIXUP arch_inb_site, arch_inb_after",
    // arch_outb(port = di, value = sil)
    ".global arch_outb",
    "arch_outb:",
    "    mov edx, edi",
    "    mov eax, esi",
    "arch_outb_site: out dx, al",
    "arch_outb_after:",
    "    ret",
    "FIXUP arch_outb_site, arch_outb_after",
    // arch_read_cr(which = edi) -> rax
    ".global arch_read_cr",
    "arch_read_cr:",
    "    xor eax, eax",
    "    cmp edi, 0",
    "    je 10f",
    "    cmp edi, 2",
    "    je 12f",
    "    cmp edi, 3",
    "    je 13f",
    "    cmp edi, 4",
    "    je 14f",
    "    ret",
    "10:",
    "arch_cr0_site: mov rax, cr0",
    "arch_cr0_after: ret",
    "12:",
    "arch_cr2_site: mov rax, cr2",
    "arch_cr2_after: ret",
    "13:",
    "arch_cr3_site: mov rax, cr3",
    "arch_cr3_after: ret",
    "14:",
    "arch_cr4_site: mov rax, cr4",
    "arch_cr4_after: ret",
    "FIXUP arch_cr0_site, arch_cr0_after",
    "FIXUP arch_cr2_site, arch_cr2_after",
    "FIXUP arch_cr3_site, arch_cr3_after",
    "FIXUP arch_cr4_site, arch_cr4_after",
    // arch_write_cr3(value = rdi)
    ".global arch_write_cr3",
    "arch_write_cr3:",
    "arch_wcr3_site: mov cr3, rdi",
    "arch_wcr3_after: ret",
    "FIXUP arch_wcr3_site, arch_wcr3_after",
    // arch_write_cr4(value = rdi)
    ".global arch_write_cr4",
    "arch_write_cr4:",
    "arch_wcr4_site: mov cr4, rdi",
    "arch_wcr4_after: ret",
    "FIXUP arch_wcr4_site, arch_wcr4_after",
    ".global arch_wbinvd",
    "arch_wbinvd:",
    "arch_wbinvd_site: wbinvd",
    "arch_wbinvd_after: ret",
    "FIXUP arch_wbinvd_site, arch_wbinvd_after",
    ".global arch_peek",
    "arch_peek:",
    "    xor eax, eax",
    "arch_peek_site: mov rax, [rdi]",
    "arch_peek_after: ret",
    "FIXUP arch_peek_site, arch_peek_after",
    ".global arch_hlt",
    "arch_hlt:",
    "arch_hlt_site: hlt",
    "arch_hlt_after: ret",
    "FIXUP arch_hlt_site, arch_hlt_after",
    // arch_popf_clear_if(out = rdi): out[0] = flags before, out[1] = flags after popf.
    ".global arch_popf_clear_if",
    "arch_popf_clear_if:",
    "    pushfq",
    "    pop rax",
    "    mov [rdi], rax",
    "    and rax, ~0x200",
    "    push rax",
    "    popfq",
    "    pushfq",
    "    pop rax",
    "    mov [rdi + 8], rax",
    "    ret",
    ".popsection",
);
