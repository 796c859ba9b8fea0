//! PVH entry: QEMU (or any PVH loader) enters here in 32-bit protected mode with paging off.
//!
//! Register contract at `pvh_start32` (Xen's `arch/x86/include/public/hvm/start_info.h`):
//! `ebx` = physical address of `hvm_start_info`, `cs` flat 32-bit code, interrupts off.
//! We switch to long mode on a tiny boot page table that maps the first 1 GiB both 1:1 (for the
//! few instructions that run at physical addresses) and at the image's link offset in PML4 slot
//! 261, then jump to the high half and call [`super::hv_entry`] with the start-info address.

use core::arch::global_asm;

/// Physical address where the linker script places the image; boot.rs and the memory map agree.
pub const IMAGE_VIRT_OFFSET: u64 = 0xffff_82d0_0000_0000;

global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4                       /* namesz: "Xen\0" */
    .long 4                       /* descsz */
    .long 18                      /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start32

    .section .boot.text, "awx"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov edi, ebx                  /* keep hvm_start_info across the mode switch */

    mov eax, cr4
    or eax, 0x20                  /* CR4.PAE */
    mov cr4, eax
    lea eax, [boot_pml4]
    mov cr3, eax

    mov ecx, 0xC0000080           /* EFER */
    rdmsr
    or eax, 0x900                 /* LME | NXE */
    wrmsr

    mov eax, cr0
    or eax, 0x80010001            /* PG | WP | PE */
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    push 0x08
    lea eax, [pvh_start64]
    push eax
    retf

    .code64
pvh_start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset boot_high_entry
    jmp rax

    .section .boot.data, "aw"
    .balign 4096
    .global boot_pml4
boot_pml4:
    .quad boot_pdpt_low + 3
    .fill 260, 8, 0
    .quad boot_pdpt_image + 3     /* slot 261: IMAGE_VIRT_OFFSET */
    .fill 250, 8, 0
boot_pdpt_low:
    .quad boot_pd + 3
    .fill 511, 8, 0
boot_pdpt_image:
    .fill 320, 8, 0               /* (IMAGE_VIRT_OFFSET >> 30) & 511 == 320 */
    .quad boot_pd + 3
    .fill 191, 8, 0
    .global boot_pd
boot_pd:
    .set boot_pd_index, 0
    .rept 512
    .quad (boot_pd_index << 21) | 0x83   /* present, writable, 2 MiB */
    .set boot_pd_index, boot_pd_index + 1
    .endr
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff      /* 64-bit code */
    .quad 0x00cf92000000ffff      /* data */
boot_gdt_ptr:
    .word 23
    .long boot_gdt

    .section .text.boot_high, "ax"
    .code64
boot_high_entry:
    movabs rsp, offset HV_BOOT_STACK   /* gdt.rs: a guard page at its bottom */
    add rsp, {boot_stack_bytes}
    xor ebp, ebp
    mov edi, edi                  /* zero-extend the start-info address: first argument */
    movabs rax, offset hv_entry
    call rax
2:  cli
    hlt
    jmp 2b
"#,
    boot_stack_bytes = const super::gdt::BOOT_STACK_BYTES,
);
