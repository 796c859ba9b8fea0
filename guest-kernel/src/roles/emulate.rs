//! `role=emulate`: privileged instructions from the guest kernel (ring 3), which Xen traps
//! and emulates as its PV emulator does, and what it refuses with a #GP bounced to us:
//! `cpuid` plain and with the forced-emulation prefix (leaf 0x40000000 "XenVMMXenVMM",
//! leaf 0x40000001 the version), `rdmsr`/`wrmsr` of the FS/GS bases, an unknown MSR and a
//! non-canonical base (#GP), `in`/`out` (#GP at virtual IOPL 0; after `PHYSDEVOP_set_iopl`
//! the CMOS ports and port 0x80 work and Xen's own UART reads all-ones), `cli` (#GP, a no-op
//! at IOPL 1), `mov` from CR0/CR2/CR3/CR4, `mov` to CR3 with the current root, `hlt` (#GP:
//! Xen 4.17 does not emulate it for PV), `wbinvd`, and `popf` with IF cleared, which neither
//! traps nor changes RFLAGS.IF or the event mask: why a PV kernel uses the event mask.

use core::sync::atomic::Ordering;

use hypercall_abi::event_channel::VIRQ_TIMER;
use hypercall_abi::guest;
use hypercall_abi::start_info::StartInfo;

use crate::arch::x86_64::insn;
use crate::arch::x86_64::triggers::Trig;
use crate::checks::{ret_of, CheckLog};
use crate::cmdline::ShutdownRequest;
use crate::kernel::trap::{self, TrapSetup};
use crate::kernel::{events, hyp, mm};
use crate::println;
use crate::trapframe::{TrapFrame, RFLAGS_IF, VECTOR_EVENT};

const MS: u64 = 1_000_000;

/// The VIRQ_TIMER port `halt` bound (0: none).
static TIMER_PORT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// How many event upcalls found [`TIMER_PORT`] pending.
static TIMER_PORT_SEEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_SHADOW_GS_BASE: u32 = 0xc000_0102;
/// An MSR index no CPU defines.
const MSR_UNKNOWN: u32 = 0x0000_2345;

/// Records the trap; an event upcall only clears the pending bits (the timer woke us); a
/// single step (#DB) stops stepping and goes on where it stopped.
fn handler(frame: &mut TrapFrame) -> u64 {
    if frame.vector == 1 {
        trap::record(frame);
        frame.rflags &= !crate::trapframe::RFLAGS_TF;
        return 0;
    }
    if frame.vector == VECTOR_EVENT {
        let timer = TIMER_PORT.load(Ordering::SeqCst);
        events::bits().scan(|p| {
            if p == timer && timer != 0 {
                TIMER_PORT_SEEN.fetch_add(1, Ordering::SeqCst);
            }
        });
        return 0;
    }
    super::traps::handler(frame)
}

/// What a trapping instruction left: traps delivered, and the last frame's vector/error.
struct Traps {
    n: u64,
    vector: u64,
    error: u64,
}

/// Runs `f` and reports the traps it caused.
fn traps_of<T>(f: impl FnOnce() -> T) -> (T, Traps) {
    let before = trap::traps_seen();
    let v = f();
    let n = trap::traps_seen() - before;
    let s = trap::last_seen().frame;
    let (vector, error) = if n > 0 { (s.vector, s.error_code) } else { (0, 0) };
    (v, Traps { n, vector, error })
}

impl core::fmt::Display for Traps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.n {
            0 => write!(f, "no trap"),
            1 => write!(
                f,
                "#{} error {:#x}",
                crate::trapframe::vector_name(self.vector).trim_start_matches('#'),
                self.error
            ),
            n => write!(f, "{n} traps"),
        }
    }
}

/// TF set just before a forced-emulation `cpuid`: the hypervisor emulates it and must then
/// raise the #DB the CPU would have raised (Xen's `pv_emul_instruction_done`), after the
/// instruction, with DR6.BS set in the virtual DR6 (`get_debugreg(6)`), which
/// `set_debugreg(6, 0)` reset before.
fn single_step_over_an_emulated_instruction(log: &mut CheckLog) {
    let reset = hyp::set_debugreg(6, 0);
    let before = hyp::get_debugreg(6);
    let (v, t) = traps_of(|| insn::cpuid_forced_stepped(0x4000_0000));
    let at_next = trap::last_seen().frame.rip == insn::cpuid_forced_stepped_after();
    let after = hyp::take_dr6();
    check!(
        log,
        "single step over a forced cpuid: the #DB, DR6 before and after",
        "#DB error 0x0 at the next instruction, DR6 0xffff0ff0 then 0xffff4ff0",
        reset == Ok(0)
            && v[0] >= 0x4000_0001
            && t.n == 1
            && t.vector == 1
            && at_next
            && before == Ok(0xffff_0ff0)
            && after == Ok(0xffff_4ff0),
        "{t} at the next instruction {at_next}, DR6 {:#x} then {:#x}",
        before.unwrap_or(u64::MAX),
        after.unwrap_or(u64::MAX)
    );
}

/// Runs the role.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    let b = match events::init(si) {
        Ok(b) => b,
        Err(e) => {
            println!("emulate: mapping shared_info failed: {e}");
            return ShutdownRequest::Crash;
        }
    };
    if let Err(e) = trap::install(&TrapSetup::ALL, handler) {
        println!("emulate: installing traps failed: {e}");
        return ShutdownRequest::Crash;
    }
    let _ = events::mask_events();
    cpuid(&mut log);
    msrs(&mut log);
    // SAFETY: the handler resumes the #GP after the cli.
    let (_, t) = traps_of(|| unsafe { Trig::GpCli.run(0) });
    check!(log, "cli with virtual IOPL 0", "#GP error 0x0", t.n == 1 && t.vector == 13 && t.error == 0, "{t}");
    ports(&mut log, &b);
    control_registers(&mut log, si);
    halt(&mut log);
    let ((), t) = traps_of(insn::wbinvd);
    check!(log, "wbinvd", "no trap", t.n == 0, "{t}");
    popf(&mut log, &b);
    single_step_over_an_emulated_instruction(&mut log);
    super::summary("emulate", &log)
}

fn text(regs: &[u32]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (i, r) in regs.iter().enumerate() {
        s[i * 4..i * 4 + 4].copy_from_slice(&r.to_le_bytes());
    }
    s
}

fn cpuid(log: &mut CheckLog) {
    let (v, t) = traps_of(|| insn::cpuid_forced(0x4000_0000, 0));
    let sig = text(&v[1..4]);
    check!(
        log,
        "forced cpuid 0x40000000",
        "\"XenVMMXenVMM\", max leaf >= 0x40000002, no trap reflected",
        &sig == b"XenVMMXenVMM" && v[0] >= 0x4000_0002 && t.n == 0,
        "\"{}\" max leaf {:#x}, {t}",
        crate::console::CStr(&sig),
        v[0]
    );
    let (v, t) = traps_of(|| insn::cpuid_forced(0x4000_0001, 0));
    let ver = guest::xen_version().unwrap_or(0) as u32;
    check!(
        log,
        "forced cpuid 0x40000001 (version)",
        "eax = xen_version(XENVER_version)",
        v[0] == ver && t.n == 0,
        "eax {:#x} xen_version {ver:#x}, {t}",
        v[0]
    );
    // Without CPUID faulting (Xen 4.17 does not use it for dom0 here) plain cpuid is native.
    let (v, t) = traps_of(|| insn::cpuid(0x4000_0000, 0));
    let sig = text(&v[1..4]);
    check!(
        log,
        "plain cpuid 0x40000000 (native: not intercepted)",
        "the CPU's own answer (not \"XenVMMXenVMM\"), no trap",
        &sig != b"XenVMMXenVMM" && t.n == 0,
        "\"{}\" max leaf {:#x}, {t}",
        crate::console::CStr(&sig),
        v[0]
    );
    let (v, _) = traps_of(|| insn::cpuid_forced(1, 0));
    check!(log, "forced cpuid 1: hypervisor bit (ecx bit 31)", "1", v[2] >> 31 == 1, "{}", v[2] >> 31);
}

fn msrs(log: &mut CheckLog) {
    let base = 0x0000_0aaa_bbbb_c000u64;
    // SAFETY: the kernel does not use FS or the user GS base.
    let ((), t1) = traps_of(|| unsafe { insn::wrmsr(MSR_FS_BASE, base) });
    let (fs, t2) = traps_of(|| insn::rdmsr(MSR_FS_BASE));
    check!(
        log,
        "wrmsr/rdmsr MSR_FS_BASE",
        "the value written, no trap",
        fs == base && t1.n == 0 && t2.n == 0,
        "{fs:#x}, {t1}, {t2}"
    );
    // SAFETY: as above.
    let ((), t1) = traps_of(|| unsafe { insn::wrmsr(MSR_SHADOW_GS_BASE, base + 0x1000) });
    let (gs_user, t2) = traps_of(|| insn::rdmsr(MSR_SHADOW_GS_BASE));
    let (gs, t3) = traps_of(|| insn::rdmsr(MSR_GS_BASE));
    check!(
        log,
        "wrmsr/rdmsr MSR_SHADOW_GS_BASE (the user GS base in kernel mode), rdmsr MSR_GS_BASE",
        "the value written, kernel GS base 0, no trap",
        gs_user == base + 0x1000 && gs == 0 && t1.n + t2.n + t3.n == 0,
        "{gs_user:#x} gs {gs:#x}, {t1}, {t2}, {t3}"
    );
    let (v, t) = traps_of(|| insn::rdmsr(MSR_UNKNOWN));
    check!(
        log,
        "rdmsr of an unknown MSR 0x2345",
        "#GP error 0x0",
        t.n == 1 && t.vector == 13 && t.error == 0,
        "{t} (value {v:#x})"
    );
    // SAFETY: refused by the hypervisor (#GP); nothing is written.
    let ((), t) = traps_of(|| unsafe { insn::wrmsr(MSR_UNKNOWN, 1) });
    check!(log, "wrmsr of an unknown MSR 0x2345", "#GP error 0x0", t.n == 1 && t.vector == 13 && t.error == 0, "{t}");
    // SAFETY: refused (#GP); the FS base stays as it was.
    let ((), t) = traps_of(|| unsafe { insn::wrmsr(MSR_FS_BASE, 0x8000_0000_0000_0000) });
    check!(log, "wrmsr MSR_FS_BASE non-canonical", "#GP error 0x0", t.n == 1 && t.vector == 13 && t.error == 0, "{t}");
    // SAFETY: back to 0 for the rest of the run.
    unsafe {
        insn::wrmsr(MSR_FS_BASE, 0);
        insn::wrmsr(MSR_SHADOW_GS_BASE, 0);
    }
}

/// `PHYSDEVOP_set_iopl`.
const PHYSDEVOP_SET_IOPL: u64 = 6;

/// `physdev_op(PHYSDEVOP_set_iopl, {iopl})` (not wrapped by the ABI crate).
fn set_iopl(iopl: u32) -> Result<u64, hypercall_abi::Errno> {
    // SAFETY: Xen reads the u32; only the virtual IOPL changes.
    hypercall_abi::Errno::check(unsafe {
        hypercall_abi::guest::raw::hypercall2(
            hypercall_abi::hypercall::PHYSDEV_OP,
            PHYSDEVOP_SET_IOPL,
            &iopl as *const u32 as u64,
        )
    })
}

/// Port I/O: refused (#GP) while the virtual IOPL is 0, emulated once dom0 raises it with
/// `PHYSDEVOP_set_iopl` (as Linux does at boot); ports Xen keeps (its UART) then read as
/// all-ones instead of faulting. With IOPL 1, `cli` becomes a no-op (the kernel counts as
/// CPL 1 for IOPL checks).
fn ports(log: &mut CheckLog, b: &crate::evtchn::EventBits) {
    // SAFETY: refused (#GP): nothing is written.
    let ((), t) = traps_of(|| unsafe { insn::outb(0x70, 0x0a) });
    check!(log, "out 0x70 with virtual IOPL 0", "#GP error 0x0", t.n == 1 && t.vector == 13 && t.error == 0, "{t}");
    let r = set_iopl(1);
    check!(log, "physdev_op set_iopl 1", "0", r == Ok(0), "{}", ret_of(r));
    // CMOS register 0x0a (status A): bits 4-6 are the divider, 0b010 for 32.768 kHz.
    // SAFETY: selecting a CMOS register and reading it is harmless.
    let (a, t) = traps_of(|| unsafe {
        insn::outb(0x70, 0x0a);
        insn::inb(0x71)
    });
    check!(
        log,
        "out 0x70 / in 0x71 (CMOS status A) with IOPL 1",
        "divider bits 0b010, no trap",
        (a >> 4) & 7 == 2 && t.n == 0,
        "divider {:#05b}, {t}",
        (a >> 4) & 7
    );
    // SAFETY: POST code port: writing it is harmless.
    let ((), t) = traps_of(|| unsafe { insn::outb(0x80, 0x42) });
    check!(log, "out 0x80 (POST code) with IOPL 1", "no trap", t.n == 0, "{t}");
    // SAFETY: Xen keeps its UART from dom0: the read is dropped, nothing happens.
    let (v, t) = traps_of(|| unsafe { insn::inb(0x3fd) });
    check!(
        log,
        "in 0x3fd (Xen's own serial port) with IOPL 1",
        "0xff (access denied reads all-ones), no trap",
        v == 0xff && t.n == 0,
        "{v:#04x}, {t}"
    );
    // Events unmasked around it, so that a `cli` that masked them would show.
    b.upcall_mask().store(0, Ordering::SeqCst);
    let before = b.upcall_mask().load(Ordering::SeqCst);
    // SAFETY: cli is a no-op now; if it faulted, the handler would resume after it.
    let (_, t) = traps_of(|| unsafe { Trig::GpCli.run(0) });
    let after = b.upcall_mask().load(Ordering::SeqCst);
    b.upcall_mask().store(1, Ordering::SeqCst);
    check!(
        log,
        "cli with IOPL 1",
        "no trap, a no-op (upcall mask unchanged)",
        t.n == 0 && before == after,
        "{t}, mask {before} -> {after}"
    );
}

fn control_registers(log: &mut CheckLog, si: &StartInfo) {
    let (cr0, t) = traps_of(|| insn::read_cr(0));
    check!(
        log,
        "mov %cr0",
        "PE and PG set, TS clear, no trap reflected",
        cr0 & 1 != 0 && cr0 & (1 << 31) != 0 && cr0 & 8 == 0 && t.n == 0,
        "pe {} pg {} ts {}, {t}",
        cr0 & 1,
        cr0 >> 31 & 1,
        cr0 >> 3 & 1
    );
    let (cr4, t) = traps_of(|| insn::read_cr(4));
    check!(
        log,
        "mov %cr4",
        "PAE (bit 5) set, no trap reflected",
        cr4 & (1 << 5) != 0 && t.n == 0,
        "pae {}, {t}",
        cr4 >> 5 & 1
    );
    let root = mm::va_to_mfn(si.pt_base) << 12;
    let (cr3, t) = traps_of(|| insn::read_cr(3));
    check!(
        log,
        "mov %cr3",
        "the boot L4's machine address (p2m[pt_base] << 12)",
        cr3 == root && t.n == 0,
        "{}, {t}",
        if cr3 == root { "= p2m[pt_base] << 12" } else { "other" }
    );
    // SAFETY: loading the current root again changes nothing but flushes the TLB.
    let ((), t) = traps_of(|| unsafe { insn::write_cr3(root) });
    let again = insn::read_cr(3);
    check!(
        log,
        "mov to %cr3 with the current root",
        "no trap, %cr3 unchanged",
        again == root && t.n == 0,
        "{t}, {}",
        if again == root { "unchanged" } else { "changed" }
    );
    // SAFETY: the #PF is resumed by the handler.
    let _ = unsafe { Trig::PageFaultRead.run(super::traps::UNMAPPED) };
    let (cr2, t) = traps_of(|| insn::read_cr(2));
    check!(
        log,
        "mov %cr2 after a #PF",
        "the fault address",
        cr2 == super::traps::UNMAPPED && t.n == 0,
        "{cr2:#x}, {t}"
    );
}

/// `hlt` with a one-shot timer 5 ms ahead: Xen 4.17's PV emulator does not emulate `hlt`
/// (its x86_emulate refuses it outside ring 0), so the guest kernel gets #GP(0); a PV kernel
/// idles with `SCHEDOP_block` instead (role `events`).
fn halt(log: &mut CheckLog) {
    let port = match events::bind_virq(VIRQ_TIMER) {
        Ok(p) => p,
        Err(e) => {
            check!(log, "bind VIRQ_TIMER for hlt", "0", false, "{e}");
            return;
        }
    };
    TIMER_PORT.store(port, Ordering::SeqCst);
    // No periodic ticks (Xen gives PV vCPUs a 10 ms one): only our one-shot may wake us.
    let _ = events::stop_periodic_timer();
    let b = events::bits();
    b.clear_pending(port);
    let start = events::now();
    let r = guest::set_timer_op(start + 5 * MS);
    let ((), t) = traps_of(insn::hlt);
    let pending = b.is_pending(port);
    check!(
        log,
        "hlt (not emulated for PV)",
        "#GP error 0x0",
        r == Ok(0) && t.n == 1 && t.vector == 13 && t.error == 0,
        "{}, {t}",
        ret_of(r)
    );
    // The timer still fires: block until its port has been handled (an upcall may first
    // arrive for an event that was already pending, e.g. an earlier periodic tick).
    let before = TIMER_PORT_SEEN.load(Ordering::SeqCst);
    let mut blocks = 0;
    while TIMER_PORT_SEEN.load(Ordering::SeqCst) == before && !b.is_pending(port) && blocks < 100 {
        let _ = crate::kernel::hyp::sched_block();
        let _ = events::mask_events();
        blocks += 1;
    }
    let end = events::now();
    // The timer's own port, pending now or found by an upcall since: not any other event.
    let fired = pending || b.is_pending(port) || TIMER_PORT_SEEN.load(Ordering::SeqCst) > before;
    check!(
        log,
        "the timer armed before hlt wakes SCHEDOP_block",
        ">= 5ms after arming, the timer's port pending or delivered",
        end - start >= 5 * MS && fired,
        "after {}ms, pending or delivered {fired}",
        (end - start) / MS
    );
    TIMER_PORT.store(0, Ordering::SeqCst);
    let _ = events::close(port);
}

/// `popf` with IF cleared: ring 3 cannot change IF, and the CPU does not trap.
fn popf(log: &mut CheckLog, b: &crate::evtchn::EventBits) {
    // Events unmasked around it, so that a `popf` that masked them would show.
    b.upcall_mask().store(0, Ordering::SeqCst);
    let mask_before = b.upcall_mask().load(Ordering::SeqCst);
    let (flags, t) = traps_of(insn::popf_clear_if);
    let mask_after = b.upcall_mask().load(Ordering::SeqCst);
    b.upcall_mask().store(1, Ordering::SeqCst);
    check!(
        log,
        "popf with IF cleared",
        "no trap, RFLAGS.IF still 1, upcall mask unchanged",
        t.n == 0 && flags[0] & RFLAGS_IF != 0 && flags[1] & RFLAGS_IF != 0 && mask_before == mask_after,
        "{t}, IF before {} after {}, mask {mask_before} -> {mask_after}",
        (flags[0] & RFLAGS_IF != 0) as u8,
        (flags[1] & RFLAGS_IF != 0) as u8
    );
}
