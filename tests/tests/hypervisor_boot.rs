//! Scenarios for the hypervisor's own boot and failure paths (no guest).

use scenarios::{work_dir, Hv, Scenario, EXIT_FAILURE, EXIT_SUCCESS};

#[test]
fn clean_boot_without_module_ends_with_success() {
    Scenario::new("boot-no-module", Hv::Ours)
        .hv_options("console=com1 loglvl=all noreboot dom0_mem=64M frobnicate")
        .expect_exit(EXIT_SUCCESS)
        .expect_line("(hv) Xen-compatible PV hypervisor")
        .expect_line("Command line: console=com1 loglvl=all noreboot dom0_mem=64M frobnicate")
        .expect_line("WARNING: command line: unknown option 'frobnicate' ignored")
        .expect_line("(hv) Memory: 511 MiB RAM")
        .expect_line("Timer: LAPIC")
        .expect_line("Timer: 3 ticks observed")
        .expect_line("No boot module: nothing to run.")
        .run();
}

#[test]
fn garbage_module_is_refused_with_failure_code() {
    let path = work_dir().join("garbage.bin");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80).collect();
    std::fs::write(&path, &bytes).unwrap();
    let head: Vec<String> = bytes[..8].iter().map(|b| format!("{b:02x}")).collect();
    Scenario::new("boot-garbage-module", Hv::Ours)
        .module(&path)
        .expect_exit(EXIT_FAILURE)
        .expect_line(&format!(
            "ERROR: Module 0 (4096 bytes) refused: unrecognised format (neither ELF nor cpio newc); first bytes: {}",
            head.join(" ")
        ))
        .expect_line("Fatal error: stopping the machine (failure exit).")
        .run();
}

#[test]
fn truncated_elf_module_is_refused() {
    let path = work_dir().join("truncated.elf");
    let elf = std::fs::read(scenarios::hypervisor_image()).unwrap();
    std::fs::write(&path, &elf[..100]).unwrap();
    Scenario::new("boot-truncated-elf", Hv::Ours)
        .module(&path)
        .expect_exit(EXIT_FAILURE)
        .expect_line("refused: malformed ELF: program headers past end of file (truncated?)")
        .run();
}

#[test]
fn ring0_page_fault_is_reported() {
    let out = Scenario::new("boot-ring0-fault", Hv::Ours)
        .hv_options("console=com1 hv_debug=pagefault")
        .expect_exit(EXIT_FAILURE)
        .expect_line("(hv) FATAL: ring-0 exception 14 (#PF) error_code=0x0 rip=0xffff82d0")
        .expect_line("cr2=0xffff8100dead0000")
        .expect_line("cs=0xe008")
        .expect_line("rax=")
        .expect_line("r15=")
        .expect_line("Fatal error: stopping the machine (failure exit).")
        .run();
    assert!(!out.log.contains("read of unmapped memory returned"));
}

#[test]
fn ring0_invalid_opcode_is_reported() {
    Scenario::new("boot-ring0-ud", Hv::Ours)
        .hv_options("console=com1 hv_debug=ud2")
        .expect_exit(EXIT_FAILURE)
        .expect_line("(hv) FATAL: ring-0 exception 6 (#UD)")
        .run();
}

#[test]
fn panic_prints_its_location() {
    Scenario::new("boot-panic", Hv::Ours)
        .hv_options("console=com1 hv_debug=panic")
        .expect_exit(EXIT_FAILURE)
        .expect_line("(hv) PANIC at hypervisor/src/main.rs:")
        .expect_line("deliberate panic requested by hv_debug=panic")
        .run();
}

#[test]
fn stack_overflows_hit_their_guard_pages() {
    // The boot CPU recurses on one of its stacks: the page below each is unmapped, so the
    // overflow is a double fault reported as such, not a silent write into other memory
    // (for the boot stack, the start of the NMI stacks; for an IST stack, its neighbour).
    for (option, stack) in [
        ("stack_overflow", "ring-0 stack of CPU 0"),
        ("boot_stack_overflow", "boot stack"),
        ("nmi_stack_overflow", "NMI stack of CPU 0"),
    ] {
        let out = Scenario::new(&format!("hv-{}", option.replace('_', "-")), Hv::Ours)
            .hv_options(&format!("console=com1 hv_debug={option}"))
            .expect_exit(EXIT_FAILURE)
            .expect_line(&format!("(hv) FATAL: stack overflow: the {stack} hit its guard page 0xffff82d0"))
            .expect_line("(hv) FATAL: ring-0 exception 8 (#DF)")
            .expect_line("Fatal error: stopping the machine (failure exit).")
            .run();
        assert!(!out.log.contains("recursion ended"), "{option}");
    }
}
