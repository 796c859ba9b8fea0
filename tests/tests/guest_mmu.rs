//! The PV MMU with validation (`role=mmu`) on Xen 4.17 (the reference) and on our hypervisor,
//! same ELF, same expected lines: an L1 built, remapped read-only, pinned and hooked into the
//! boot L2 with `mmu_update`; `update_va_mapping(UVMF_INVLPG)` through it; an
//! `MMU_MACHPHYS_UPDATE`; pin/unpin of an L4 and `new_user_baseptr`; and every refusal with
//! the errno Xen 4.17 returns (see guest-kernel/src/roles/mmu.rs for the table):
//! -EBUSY for a writable mapping of a page table (directly or as an L1 entry, also when pinning
//! an L1 that holds one), -EINVAL for Xen's range, a PSE entry, a second pin, an unpin of an
//! unpinned table, a writable page as user root, and a frame no longer owned. Two answers that
//! are "allowed" on Xen by design: unpinning a table still in use succeeds (the use keeps its
//! type, so a writable mapping stays refused), and `decrease_reservation` of a frame still
//! mapped succeeds (the frame is freed when its last mapping goes). Last, a pin and an unpin
//! of a tree with more entries than our hypervisor validates or releases in one entry (both
//! go in steps, as Xen's): the guest sees each as one call.

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_SUCCESS, XEN_POWEROFF};

/// The lines of `role=mmu`, in order.
const MMU_LINES: &[&str] = &[
    "check: remap an L1 read-only, pin it, pin it again -> 0, 0, -22 (EINVAL) ok",
    "check: mmu_update: hook the L1 into the boot L2 -> 0 ok",
    "check: update_va_mapping(UVMF_INVLPG) through the new L1 -> 0, entry ok, store seen ok",
    "check: read the M2P entry of our frame (read-only at 0xffff800000000000) -> = its PFN ok",
    "check: mmu_update MMU_MACHPHYS_UPDATE -> 0, m2p 0x77777, 0 ok",
    "check: writable mapping of a page-table page (the boot L4) -> -16 (EBUSY) ok",
    "check: mmu_update: writable L1 entry for the boot L4 -> -16 (EBUSY) ok",
    "check: update_va_mapping in the hypervisor's range -> -22 (EINVAL) ok",
    "check: mmu_update of L4 slot 256 (hypervisor's range) -> -22 (EINVAL) ok",
    "check: pin an L2 with a PSE entry -> -22 (EINVAL) ok",
    "check: pin an L1 that maps a page table writable -> -16 (EBUSY) ok",
    "check: unpin the L1 still hooked into the L2, map it writable, unpin again -> 0, -16 (EBUSY), -22 (EINVAL) ok",
    "check: unhook the L1, then map it writable -> 0, 0 ok",
    "check: pin an L4, new_user_baseptr it, new_user_baseptr a writable page, clear, unpin -> 0, 0, -22 (EINVAL), 0, 0 ok",
    "check: decrease_reservation of a frame still mapped -> 1, still readable true ok",
    "check: unmap a frame, free it (decrease_reservation), map it again -> 0, 1, -22 (EINVAL) ok",
    "check: populate_physmap one page back, map it -> 1, M2P ok true, 0 ok",
    "check: pin an L2 over 24 L1s mapping a page 512 times each, map its last L1 writable, unpin, map all writable -> 0, -16 (EBUSY), 0, 25 writable ok",
    "mmu: 18 passed, 0 failed",
    "guest-kernel: shutdown poweroff",
];

fn mmu(name: &str, hv: Hv, exit: i32) {
    mmu_with_memory(name, hv, exit, 512);
}

fn mmu_with_memory(name: &str, hv: Hv, exit: i32, mib: u32) {
    mmu_with(name, hv, exit, mib, "");
}

fn mmu_with(name: &str, hv: Hv, exit: i32, mib: u32, hv_options: &str) {
    let mut s = Scenario::new(name, hv).memory_mib(mib);
    if !hv_options.is_empty() {
        s = s.hv_options(hv_options);
    }
    let mut s = s
        .module(guest_kernel_image())
        .append("role=mmu")
        .timeout_secs(120)
        .expect_exit(exit)
        .expect_line("guest-kernel: role mmu");
    for l in MMU_LINES {
        s = s.expect_line(l);
    }
    s.forbid_line("FAIL").forbid_line("giving up").run();
}

#[test]
fn guest_mmu_on_xen() {
    mmu("guest-mmu-xen", Hv::Xen, XEN_POWEROFF);
}

#[test]
fn guest_mmu_on_ours() {
    mmu("guest-mmu-ours", Hv::Ours, EXIT_SUCCESS);
}

/// More RAM than the hypervisor's 16 MiB heap could describe (the frame records of 6 GiB are
/// 30 MiB): they and the M2P live in frames taken at boot, and guests still read the M2P.
#[test]
fn guest_mmu_on_ours_with_6_gib() {
    mmu_with_memory("guest-mmu-ours-6g", Hv::Ours, EXIT_SUCCESS, 6144);
}

/// A 5 GiB dom0: its page list is kept in frames of its own while it is built, not on the
/// heap (a 5 GiB dom0 used to panic the hypervisor with "memory allocation of 10485760 bytes
/// failed"). A 10 GiB dom0, whose list (20 MiB) is larger than the whole heap and was refused
/// for that, boots and runs too.
#[test]
fn guest_mmu_on_ours_in_a_5_gib_dom0() {
    mmu_with("guest-mmu-ours-5g-dom0", Hv::Ours, EXIT_SUCCESS, 6144, "console=com1 loglvl=info dom0_mem=5G");
    Scenario::new("dom0-of-10-gib", Hv::Ours)
        .memory_mib(12288)
        .hv_options("console=com1 loglvl=info dom0_mem=10G")
        .module(guest_kernel_image())
        .timeout_secs(120)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("2621440 pages (10240 MiB)")
        .expect_line("guest-kernel: memory 2621440 pages (10485760 KiB)")
        .expect_line("Hardware domain shut down: ending the machine (success).")
        .run();
}
