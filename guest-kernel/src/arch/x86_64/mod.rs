//! x86_64 PV specifics: the entry point and boot stack, the Xen ELF notes, the hypercall page,
//! the page reserved for mapping `shared_info`, trap entry and exit, exception triggers,
//! privileged instructions and the user programs.

pub mod entry;
pub mod insn;
pub mod notes;
pub mod traps;
pub mod triggers;
pub mod user;

extern "C" {
    /// First byte of the page Xen fills with hypercall stubs (linker script, `.text`).
    static hypercall_page: u8;
    /// First byte of the page-aligned slot where `shared_info` gets mapped (linker script).
    static shared_info_page: u8;
}

/// Virtual address of the hypercall page named by `XEN_ELFNOTE_HYPERCALL_PAGE`.
pub fn hypercall_page_address() -> u64 {
    core::ptr::addr_of!(hypercall_page) as u64
}

/// Virtual address of the page reserved for the `shared_info` mapping.
pub fn shared_info_slot_address() -> u64 {
    core::ptr::addr_of!(shared_info_page) as u64
}

/// Spins for a moment (`pause`); used while waiting for the hypervisor to stop us.
pub fn relax() {
    core::hint::spin_loop();
}
