//! The entry point. Register contract at entry (xen-pv-abi.md §1.4): `rsi` = virtual address
//! of `start_info`, `rsp` = top of a one-page boot stack, other GPRs 0, ring 3 on
//! `FLAT_KERNEL_CS`, events masked, no trap table. We switch to a larger stack of our own
//! (in `.bss`), keep it 16-byte aligned for the call, and enter Rust with `rdi` = `start_info`.

/// Size of the kernel's own stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

/// The stack `_start` switches to.
#[repr(C, align(4096))]
pub struct BootStack(pub [u8; BOOT_STACK_SIZE]);

/// Backing storage of the boot stack; only `_start` touches it (through `rsp`).
#[no_mangle]
pub static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // start_info pointer becomes the first argument of kernel_entry.
    "    mov rdi, rsi",
    "    movabs rsp, offset {stack} + {size}",
    "    xor ebp, ebp",
    "    movabs rax, offset {main}",
    "    call rax",
    // kernel_entry never returns; if it did, spin (no privileged hlt in a PV guest).
    "2:  pause",
    "    jmp 2b",
    stack = sym BOOT_STACK,
    size = const BOOT_STACK_SIZE,
    main = sym crate::start_of_day::kernel_entry,
);
