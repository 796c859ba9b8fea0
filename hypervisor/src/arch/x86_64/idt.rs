//! The IDT, the 256 entry stubs and the register frame they save.
//!
//! Register contract: every stub pushes a zero error code when the CPU does not, then the
//! vector number, then jumps to `trap_common`, which saves all fifteen general registers and
//! calls [`trap_dispatch`] with a pointer to the resulting [`TrapFrame`]. On return the frame
//! (possibly edited) is restored and `iretq` resumes it. Interrupts stay disabled throughout:
//! all gates are interrupt gates (the hypervisor is non-preemptible).

use super::gdt::{HYPERVISOR_CS, IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use core::arch::global_asm;
use core::ptr::addr_of;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

pub use hypervisor::frame::TrapFrame;

/// Byte distance between consecutive entry stubs.
const STUB_STRIDE: u64 = 16;

global_asm!(
    r#"
    /* The inverse of the 15 pushes in trap_common; both exits (SYSRET and IRET) use it. */
    .macro restore_gprs
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    .endm

    .section .text.trap_entry, "ax"
    .balign 16
    .global trap_stubs_start
trap_stubs_start:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    /* The CPU aligned rsp to 16 before pushing its 5-word frame; with the 17 words pushed
       since (22 in all, 176 bytes) rsp is 16-aligned again, as the SysV call ABI wants. */
    movabs rax, offset trap_dispatch
    call rax
    /* Leave with SYSRET when the frame allows it (Xen does the same for hypercalls): flat
       64-bit ring-3 CS, RCX == RIP and R11 == RFLAGS (what SYSRET loads), and a canonical
       RIP (SYSRET to a non-canonical RIP would fault in ring 0). Anything else, including
       every return to ring 0, leaves through IRET, as does an NMI (below). */
    cmp qword ptr [rsp + 144], 0xe033       /* cs */
    jne trap_return
    mov rax, [rsp + 136]                    /* rip */
    cmp rax, [rsp + 96]                     /* rcx */
    jne trap_return
    sar rax, 47
    inc rax
    cmp rax, 1
    ja trap_return
    mov rax, [rsp + 152]                    /* rflags */
    cmp rax, [rsp + 32]                     /* r11 */
    jne trap_return
    /* Only IRET ends the CPU's blocking of NMIs: an NMI taken in ring 3 leaves through it. */
    cmp qword ptr [rsp + 120], 2            /* vector */
    je trap_return
    restore_gprs
    /* Interrupts stay off until SYSRET, so the guest stack is safe to load here; NMIs run
       on their own IST stack. */
    mov rsp, [rsp + 40]                     /* past vector, error, rip, cs, rflags: rsp */
    sysretq

    .global trap_return
trap_return:
    restore_gprs
    add rsp, 16
    iretq
"#
);

extern "C" {
    static trap_stubs_start: u8;
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);

static mut IDT: Idt = Idt([[0; 2]; 256]);

fn gate(handler: u64, ist: u8, dpl: u8) -> [u64; 2] {
    let attrs = 0x8e | (dpl as u64 & 3) << 5; // present, 64-bit interrupt gate
    let low = (handler & 0xffff)
        | (HYPERVISOR_CS as u64) << 16
        | (ist as u64 & 7) << 32
        | attrs << 40
        | ((handler >> 16) & 0xffff) << 48;
    [low, handler >> 32]
}

/// Builds and loads the IDT.
pub fn init() {
    let stubs = addr_of!(trap_stubs_start) as u64;
    // SAFETY: single-threaded boot; the IDT is not loaded yet.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for (vector, entry) in idt.0.iter_mut().enumerate() {
        let ist = match vector {
            2 => IST_NMI,
            8 => IST_DOUBLE_FAULT,
            18 => IST_MACHINE_CHECK,
            _ => 0,
        };
        // int3, into and int $0x80 go straight to the guest's handler (digest §3.2, Xen's
        // int80 fast path); every other gate is DPL 0, so a guest's `int n` arrives as #GP
        // for the virtual IDT's DPL check.
        let dpl = if matches!(vector, 3 | 4 | 0x80) { 3 } else { 0 };
        *entry = gate(stubs + vector as u64 * STUB_STRIDE, ist, dpl);
    }
    load();
}

/// Loads the IDT (built by [`init`] on the boot CPU) on the calling CPU.
pub fn load() {
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(addr_of!(IDT) as u64),
    };
    // SAFETY: every entry points at a valid stub with the ring-0 code selector.
    unsafe { lidt(&ptr) };
}

/// Common Rust entry for every vector.
#[no_mangle]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    super::traps::handle(frame);
}
