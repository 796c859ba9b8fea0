//! The Xen ELF notes (`XEN_ELFNOTE_*`, xen-pv-abi.md §1.1) in section `.note.Xen`, which the
//! linker script places in a `PT_NOTE` segment, and the hypercall page they name.
//!
//! | note | value |
//! |---|---|
//! | GUEST_OS | `"rust-pv-guest"` |
//! | GUEST_VERSION | `"0"` |
//! | XEN_VERSION | `"xen-3.0"` (required) |
//! | LOADER | `"generic"` (required unless GUEST_OS is linux) |
//! | HYPERCALL_PAGE | address of `hypercall_page` (8 bytes) |
//! | FEATURES | `"!writable_page_tables\|pae_pgdir_above_4gb"` |
//! | PAE_MODE | `"yes"` (so dom0's start_info magic reads `xen-3.0-x86_64p`) |
//!
//! No VIRT_BASE/PADDR_OFFSET/ENTRY notes: VIRT_BASE is 0 and the entry is `e_entry`.

core::arch::global_asm!(
    // ELFNOTE type, descriptor directive(s): standard note with name "Xen", 4-byte padding.
    ".macro XEN_ELFNOTE type:req, desc:vararg",
    "    .p2align 2",
    "    .long 2f - 1f",
    "    .long 4f - 3f",
    "    .long \\type",
    "1:  .asciz \"Xen\"",
    "2:  .p2align 2",
    "3:  \\desc",
    "4:  .p2align 2",
    ".endm",
    ".pushsection .note.Xen, \"a\", @note",
    "XEN_ELFNOTE {guest_os}, .asciz \"rust-pv-guest\"",
    "XEN_ELFNOTE {guest_version}, .asciz \"0\"",
    "XEN_ELFNOTE {xen_version}, .asciz \"xen-3.0\"",
    "XEN_ELFNOTE {loader}, .asciz \"generic\"",
    "XEN_ELFNOTE {hypercall_page}, .quad hypercall_page",
    "XEN_ELFNOTE {features}, .asciz \"!writable_page_tables|pae_pgdir_above_4gb\"",
    "XEN_ELFNOTE {pae_mode}, .asciz \"yes\"",
    ".popsection",
    // The hypercall page: one page of int3 that the hypervisor overwrites with stubs.
    ".pushsection .text.hypercall_page, \"ax\"",
    ".fill 4096, 1, 0xcc",
    ".popsection",
    guest_os = const hypercall_abi::elfnote::XEN_ELFNOTE_GUEST_OS,
    guest_version = const hypercall_abi::elfnote::XEN_ELFNOTE_GUEST_VERSION,
    xen_version = const hypercall_abi::elfnote::XEN_ELFNOTE_XEN_VERSION,
    loader = const hypercall_abi::elfnote::XEN_ELFNOTE_LOADER,
    hypercall_page = const hypercall_abi::elfnote::XEN_ELFNOTE_HYPERCALL_PAGE,
    features = const hypercall_abi::elfnote::XEN_ELFNOTE_FEATURES,
    pae_mode = const hypercall_abi::elfnote::XEN_ELFNOTE_PAE_MODE,
);
