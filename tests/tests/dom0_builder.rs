//! Scenarios for the PV domain builder and hypercall entry, with the assembly guest fixture
//! (`tests/fixtures/mini_guest.S`): it boots on ours and on Xen 4.17, and every malformed
//! variant of it is refused by ours with a precise message and the failure code.

use scenarios::{mini_guest_image, work_dir, Hv, Scenario, EXIT_FAILURE, EXIT_SUCCESS, XEN_POWEROFF};

fn mini() -> Vec<u8> {
    std::fs::read(mini_guest_image()).unwrap()
}

fn replace_all(data: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Offset of the first PT_LOAD program header.
fn first_load_phdr(elf: &[u8]) -> usize {
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&p| u32::from_le_bytes(elf[p..p + 4].try_into().unwrap()) == 1)
        .expect("a PT_LOAD header")
}

fn refused(name: &str, image: Vec<u8>, hv_options: &str, message: &str) {
    let path = work_dir().join(format!("{name}.elf"));
    std::fs::write(&path, image).unwrap();
    Scenario::new(name, Hv::Ours)
        .module(&path)
        .hv_options(hv_options)
        .expect_exit(EXIT_FAILURE)
        .expect_line(message)
        .expect_line("Fatal error: stopping the machine (failure exit).")
        .forbid_line("Starting dom0")
        .run();
}

#[test]
fn mini_guest_runs_as_dom0_on_ours() {
    Scenario::new("dom0-mini-ours", Hv::Ours)
        .module(mini_guest_image())
        .append("hello")
        .expect_exit(EXIT_SUCCESS)
        .expect_line("Module 0: ELF image")
        .expect_line("d0: kernel 0x100000-0x103000 entry 0x100000, 32768 pages (128 MiB)")
        .expect_line("Starting dom0 (command line: \"hello\")")
        .expect_line("mini guest: hello from a PV guest")
        .expect_line("mini guest: ENOSYS and EFAULT checks passed")
        .expect_line("d0: shutdown requested: reason 0 (poweroff)")
        .run();
}

#[test]
fn mini_guest_runs_as_dom0_on_xen() {
    Scenario::new("dom0-mini-xen", Hv::Xen)
        .module(mini_guest_image())
        .append("hello")
        .expect_exit(XEN_POWEROFF)
        .expect_line("mini guest: hello from a PV guest")
        .expect_line("mini guest: ENOSYS and EFAULT checks passed")
        .expect_line("Hardware Dom0 halted")
        .run();
}

#[test]
fn dom0_mem_sizes_the_domain() {
    Scenario::new("dom0-mini-mem", Hv::Ours)
        .module(mini_guest_image())
        .hv_options("console=com1 dom0_mem=16M")
        .expect_exit(EXIT_SUCCESS)
        .expect_line("4096 pages (16 MiB)")
        .expect_line("mini guest: ENOSYS and EFAULT checks passed")
        .run();
}

#[test]
fn image_without_xen_notes_is_refused() {
    let mut elf = mini();
    assert!(replace_all(&mut elf, b"Xen\0", b"Nox\0") >= 5);
    refused(
        "bad-no-notes",
        elf,
        "console=com1",
        "dom0 image refused: no Xen ELF notes (XEN_ELFNOTE_*): not a PV kernel",
    );
}

#[test]
fn image_with_wrong_xen_version_is_refused() {
    let mut elf = mini();
    assert_eq!(replace_all(&mut elf, b"xen-3.0\0", b"xen-2.0\0"), 1);
    refused("bad-version", elf, "console=com1", "dom0 image refused: XEN_ELFNOTE_XEN_VERSION missing or not 'xen-3.0'");
}

#[test]
fn image_in_the_hypervisor_range_is_refused() {
    let mut elf = mini();
    let ph = first_load_phdr(&elf);
    elf[ph + 24..ph + 32].copy_from_slice(&0xffff_8000_0010_0000u64.to_le_bytes());
    refused(
        "bad-hv-range",
        elf,
        "console=com1",
        "dom0 image refused: kernel range 0xffff800000100000-0xffff800000103000 overlaps the hypervisor's reserved range",
    );
}

#[test]
fn truncated_image_is_refused() {
    let mut elf = mini();
    let ph = first_load_phdr(&elf);
    let offset = u64::from_le_bytes(elf[ph + 8..ph + 16].try_into().unwrap()) as usize;
    elf.truncate(offset + 0x800);
    refused("bad-truncated", elf, "console=com1", "dom0 image refused: segment 0 is truncated");
}

#[test]
fn wrong_machine_is_refused() {
    let mut elf = mini();
    elf[18] = 3; // EM_386
    refused("bad-machine", elf, "console=com1", "refused: malformed ELF: not x86_64 (e_machine)");
}

#[test]
fn image_larger_than_the_domain_is_refused() {
    refused(
        "bad-too-small",
        mini(),
        "console=com1 dom0_mem=2M",
        "dom0 image refused: image needs 1024 pages of bootstrap region but the domain has only 512",
    );
}
