//! Exceptions bounced to the guest kernel (`role=traps`) and an exception without a handler
//! (`role=unhandled`), on Xen 4.17 (the reference) and on our hypervisor, with the same ELF
//! and the same expected lines.
//!
//! Environment notes, identical on both hypervisors because both run under QEMU's TCG:
//! * TCG ignores RFLAGS.AC and does not raise #XM, so the role prints `info:` lines for #AC
//!   and #XM instead of checks (it checks them where the CPU raises them).
//! * TCG reports the #GP error code of a software interrupt through a DPL-0 gate as
//!   `(vector << 4) | 2` instead of `(vector << 3) | 2`; Xen decodes `error >> 3` as the
//!   vector, so `int $n` reaches the guest's slot `n` only for n = 0 and 0x80 (Xen's IDT gate
//!   0x80 is DPL 3). The role therefore uses `int $0` (slot 0 at DPL 1: the kernel may),
//!   `int $0x80` (DPL 3) and `int $0x81` (DPL 0: #GP with an IDT error code); #BR has no
//!   other source in 64-bit mode (`bound` is gone, MPX is not emulated) and is not raised.

use scenarios::{guest_kernel_image, Hv, Scenario, EXIT_FAILURE, EXIT_SUCCESS, XEN_DOM0_CRASHED, XEN_POWEROFF};

/// The check lines of `role=traps`, in order (up to any build-dependent value).
const TRAPS_LINES: &[&str] = &[
    "check: set_trap_table, stack_switch, callback_op event/failsafe/syscall -> Ok(()) ok",
    "check: #DE divide error -> traps 1 vector 0 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #DB single step -> traps 1 vector 1 error 0x0 rip =next cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #BP int3 -> traps 1 vector 3 error 0x0 rip =next cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #OF int $4 -> traps 1 vector 4 error 0x0 rip =next cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: int $0 (vector 0 at DPL 1: the kernel may) -> traps 1 vector 0 error 0x0 rip =next cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #UD ud2 -> traps 1 vector 6 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #GP cli -> traps 1 vector 13 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    // QEMU TCG's error code for the DPL-0 gate: (0x81 << 4) | 2.
    "check: #GP int $0x81 (DPL 0) -> traps 1 vector 13 error 0x812 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: #PF read of an unmapped page -> traps 1 vector 14 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b cr2 0x500000000000 registers kept ok",
    "check: #PF write to a read-only page table -> traps 1 vector 14 error 0x3 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b cr2 0x",
    "check: #MF x87 divide by zero -> traps 1 vector 16 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "info: #AC misaligned load with RFLAGS.AC -> no trap",
    "info: #XM SSE divide by zero -> no trap",
    "check: int $0x80 (DPL 3) -> traps 1 vector 128 error 0x0 rip =next cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: DR6 after the cases (get_debugreg): the single step recorded -> 0xffff4ff0 ok",
    "check: fpu_taskswitch(1) sets the virtual CR0.TS -> 0 cr0.ts 1 ok",
    "check: #NM x87 with CR0.TS -> traps 1 vector 7 error 0x0 rip =fault cs 0xe030 mask 1 IF 0 ss 0xe02b registers kept ok",
    "check: CR0.TS after the #NM handler's fpu_taskswitch(0) -> 0 ok",
    "check: #BP with events unmasked -> vector 3 saved mask 0 IF 1 mask in handler 1 mask after iret 0 ok",
    "check: set_trap_table with a non-canonical handler -> -22 (EINVAL) ok",
    "check: callback_op register unknown type 99 -> -38 (ENOSYS) ok",
    "check: callback_op register non-canonical event callback -> -22 (EINVAL) ok",
    "check: callback_op unregister event callback -> -22 (EINVAL) ok",
    "check: set_callbacks -> 0 ok",
    "check: set_segment_base FS and user GS, read back with rdmsr -> 0, 0, fs 0x123456789000 shadow gs 0x12345678a000 gs 0x0 ok",
    "check: set_segment_base non-canonical -> -22 (EINVAL) ok",
    "traps: 25 passed, 0 failed",
    "guest-kernel: shutdown poweroff",
];

fn traps(name: &str, hv: Hv, exit: i32) {
    let mut s = Scenario::new(name, hv)
        .module(guest_kernel_image())
        .append("role=traps")
        .timeout_secs(120)
        .expect_exit(exit)
        .expect_line("guest-kernel: role traps");
    for l in TRAPS_LINES {
        s = s.expect_line(l);
    }
    s.forbid_line("FAIL").forbid_line("giving up").run();
}

#[test]
fn guest_traps_on_xen() {
    traps("guest-traps-xen", Hv::Xen, XEN_POWEROFF);
}

#[test]
fn guest_traps_on_ours() {
    traps("guest-traps-ours", Hv::Ours, EXIT_SUCCESS);
}

/// The RIP of the `ud2` the role announces.
fn announced_rip(log: &str) -> u64 {
    let line =
        log.lines().find(|l| l.starts_with("unhandled: executing ud2 at rip ")).expect("the role announces its ud2");
    let hex = line["unhandled: executing ud2 at rip 0x".len()..].split_whitespace().next().unwrap();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn guest_unhandled_on_xen() {
    let out = Scenario::new("guest-unhandled-xen", Hv::Xen)
        .module(guest_kernel_image())
        .append("role=unhandled")
        .timeout_secs(60)
        .expect_exit(XEN_DOM0_CRASHED)
        .expect_line("unhandled: executing ud2 at rip 0x")
        .expect_line("(XEN) d0v0 Unhandled: vec 6, #UD[ffffffff]")
        .expect_line("Domain 0 (vcpu#0) crashed")
        .expect_line("Hardware Dom0 crashed")
        .forbid_line("execution continued")
        .run();
    let rip = announced_rip(&out.log);
    assert!(
        out.log.contains(&format!("RIP:    e033:[<{rip:016x}>]")),
        "Xen's crash report names the ud2's RIP {rip:#x}"
    );
}

#[test]
fn guest_unhandled_on_ours() {
    let out = Scenario::new("guest-unhandled-ours", Hv::Ours)
        .module(guest_kernel_image())
        .append("role=unhandled")
        .timeout_secs(60)
        .expect_exit(EXIT_FAILURE)
        .expect_line("unhandled: executing ud2 at rip 0x")
        .expect_line("cannot be delivered")
        .forbid_line("execution continued")
        .run();
    let rip = announced_rip(&out.log);
    let report = out.log.lines().find(|l| l.contains("cannot be delivered")).unwrap();
    assert!(
        report.contains(&format!("rip={rip:#x}")) && report.contains("vector 6"),
        "the crash report names vector 6 and the ud2's RIP {rip:#x}: {report}"
    );
}

/// `role=unhandled shutdown_code=0`: the crash reports the recorded reason (poweroff), so
/// the machine ends as after a poweroff, on Xen (`domain_shutdown` takes `shutdown_code`)
/// and on ours.
fn recorded_code_scenario(name: &str, hv: Hv) -> Scenario {
    Scenario::new(name, hv)
        .module(guest_kernel_image())
        .append("role=unhandled shutdown_code=0")
        .timeout_secs(60)
        .expect_line("unhandled: SCHEDOP_shutdown_code(0) -> 0")
        .expect_line("unhandled: executing ud2 at rip 0x")
        .forbid_line("execution continued")
}

#[test]
fn a_recorded_shutdown_code_outlives_a_crash_on_xen() {
    recorded_code_scenario("guest-shutdown-code-xen", Hv::Xen)
        .expect_exit(XEN_POWEROFF)
        .expect_line("Hardware Dom0 halted")
        .run();
}

#[test]
fn a_recorded_shutdown_code_outlives_a_crash_on_ours() {
    recorded_code_scenario("guest-shutdown-code-ours", Hv::Ours)
        .expect_exit(EXIT_SUCCESS)
        .expect_line("cannot be delivered")
        .expect_line("d0: shutdown requested: reason 0 (poweroff)")
        .run();
}
