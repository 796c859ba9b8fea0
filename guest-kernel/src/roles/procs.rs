//! `role=procs`: three user processes, each with its own user page tables
//! ([`uspace`](crate::kernel::uspace), `new_user_baseptr` on every switch), making system
//! calls with `syscall` (bounced through the syscall callback) and preempted round-robin by
//! the VIRQ_TIMER upcall of a periodic timer. A and B run `user_worker` (spin, then
//! `progress(round)`, for [`ROUNDS`] rounds, then `exit(0)`); C runs `user_faulter`, which
//! reports once and then stores to address 0: the #PF arrives from user mode and the kernel
//! kills C while A and B go on. Prints `procs: <name> progress <n>`, each preemption, the
//! kill, each exit, and checks at the end (frames seen from user mode, both workers done,
//! progress of A and B interleaved, C killed by #PF at CR2 0).

use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::arch::{FLAT_USER_CS, FLAT_USER_SS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER_SEL, VGCF_IN_SYSCALL};
use hypercall_abi::event_channel::VIRQ_TIMER;
use hypercall_abi::start_info::StartInfo;

use crate::arch::x86_64::insn;
use crate::arch::x86_64::traps::{enter_frame, kernel_resume_address, syscall_entry_rflags};
use crate::arch::x86_64::user::Program;
use crate::checks::CheckLog;
use crate::cmdline::{Options, ShutdownRequest};
use crate::kernel::trap::{self, TrapSetup};
use crate::kernel::uspace::{self, AddressSpace, USER_BASE, USER_STACK};
use crate::kernel::{events, hyp};
use crate::println;
use crate::sched::{RoundRobin, State};
use crate::trapframe::{vector_name, TrapFrame, RFLAGS_IF, VECTOR_EVENT, VECTOR_SYSCALL};

/// Rounds each worker runs.
pub const ROUNDS: u64 = 5;
/// Spin iterations per round (long enough for several timer ticks under TCG).
pub const SPINS: u64 = 3_000_000;
/// Timer period.
const TICK_NS: u64 = 4_000_000;

/// System call numbers.
pub mod sys {
    /// `exit(code)`.
    pub const EXIT: u64 = 0;
    /// `progress(n)`: print a progress line.
    pub const PROGRESS: u64 = 1;
    /// `yield()`.
    pub const YIELD: u64 = 2;
    /// `null()`: returns 0 (the benchmark's round trip).
    pub const NULL: u64 = 3;
    /// `report(value)`: hand a measurement to the kernel.
    pub const REPORT: u64 = 4;
}

const NAMES: [&str; 5] = ["A", "B", "C", "D", "E"];
const MAX: usize = 3;

/// The process table (only touched from trap context once user mode starts).
pub struct Procs {
    rr: RoundRobin<MAX>,
    ctx: [TrapFrame; MAX],
    space: [Option<AddressSpace>; MAX],
    timer_port: u32,
    preemptions: [u64; MAX],
    progress: [u64; MAX],
    /// Owner of the last progress line, and how often it changed between processes.
    last_progress: usize,
    interleavings: u64,
    kill: Option<(u64, u64, u64, u64)>,
    first_syscall_cs: u64,
    first_preempt: Option<(u64, u8, bool)>,
    /// The value of the last `report` system call.
    pub reported: u64,
    syscalls: u64,
    /// Index in `NAMES` of process 0's name.
    first_name: usize,
}

static mut PROCS: Option<Procs> = None;
static TICKS: AtomicU64 = AtomicU64::new(0);

fn procs() -> &'static mut Procs {
    // SAFETY: one vCPU; the table is set up before user mode and then used only by the trap
    // handler (which does not nest) and, after all processes ended, by the kernel again.
    unsafe { (*core::ptr::addr_of_mut!(PROCS)).as_mut().expect("process table") }
}

/// The initial user context of `program` with arguments `rdi`, `rsi`.
pub fn initial_context(program: Program, rdi: u64, rsi: u64) -> TrapFrame {
    TrapFrame {
        rip: USER_BASE + program.offset(),
        cs: FLAT_USER_CS as u64,
        rflags: RFLAGS_IF | 2,
        rsp: USER_STACK + 4096 - 8,
        ss: FLAT_USER_SS as u64,
        rdi,
        rsi,
        ..Default::default()
    }
}

/// Sets up `programs` as processes, runs them until all ended, and returns the table.
pub fn run_processes(
    programs: &[(Program, u64, u64)],
    first_name: usize,
    tick_ns: u64,
) -> Result<&'static mut Procs, hypercall_abi::Errno> {
    let port = events::bind_virq(VIRQ_TIMER)?;
    let mut p = Procs {
        rr: RoundRobin::new(programs.len()),
        ctx: [TrapFrame::default(); MAX],
        space: [None; MAX],
        timer_port: port,
        preemptions: [0; MAX],
        progress: [0; MAX],
        last_progress: usize::MAX,
        interleavings: 0,
        kill: None,
        first_syscall_cs: 0,
        first_preempt: None,
        reported: 0,
        syscalls: 0,
        first_name,
    };
    for (i, &(prog, a, b)) in programs.iter().enumerate() {
        p.space[i] = Some(uspace::build()?);
        p.ctx[i] = initial_context(prog, a, b);
    }
    // SAFETY: user mode has not started: nothing else uses the table.
    unsafe { *core::ptr::addr_of_mut!(PROCS) = Some(p) };
    let p = procs();
    p.space[0].expect("built").activate()?;
    if tick_ns > 0 {
        events::set_periodic_timer(tick_ns)?;
    } else {
        // Binding VIRQ_TIMER starts Xen's default 10 ms periodic timer: stop it.
        events::stop_periodic_timer()?;
    }
    let first = p.ctx[0];
    // SAFETY: the frame runs user code in its own address space; the handler resumes the
    // kernel when every process has ended.
    unsafe { enter_frame(&first) };
    let _ = events::mask_events();
    let _ = events::stop_periodic_timer();
    let _ = events::close(port);
    Ok(procs())
}

/// The name of process `i` in its lines (`A`.. from the run's first name).
fn name(p: &Procs, i: usize) -> &'static str {
    NAMES.get(p.first_name + i).copied().unwrap_or("?")
}

/// Switches the frame to the next runnable process (or back to the kernel); returns the
/// `iret` flags.
fn switch_away(frame: &mut TrapFrame) -> u64 {
    let p = procs();
    match p.rr.pick_next() {
        Some(n) => {
            *frame = p.ctx[n];
            let _ = p.space[n].expect("built").activate();
        }
        None => {
            frame.rip = kernel_resume_address();
            frame.cs = (hypercall_abi::arch::FLAT_KERNEL_CS & !3) as u64;
            frame.rflags = 2;
            frame.rsp = trap::trap_stack_top();
            frame.ss = hypercall_abi::arch::FLAT_KERNEL_SS as u64;
        }
    }
    0
}

/// The trap handler while processes run.
pub fn handler(frame: &mut TrapFrame) -> u64 {
    let p = procs();
    let cur = p.rr.current();
    match frame.vector {
        VECTOR_EVENT => {
            let mut tick = false;
            let port = p.timer_port;
            events::bits().scan(|q| tick |= q == port);
            if tick {
                TICKS.fetch_add(1, Ordering::SeqCst);
            }
            if tick && frame.from_user() {
                if p.first_preempt.is_none() {
                    p.first_preempt = Some((frame.cs & 0xffff, frame.saved_mask(), frame.rflags & RFLAGS_IF != 0));
                }
                p.ctx[cur] = *frame;
                let before = cur;
                if let Some(n) = p.rr.pick_next() {
                    if n != before {
                        p.preemptions[before] += 1;
                        *frame = p.ctx[n];
                        let _ = p.space[n].expect("built").activate();
                        println!("procs: tick: preempt {} -> {}", name(p, before), name(p, n));
                    }
                }
            }
            0
        }
        VECTOR_SYSCALL => {
            p.syscalls += 1;
            if p.first_syscall_cs == 0 {
                p.first_syscall_cs = frame.cs & 0xffff;
            }
            match frame.rax {
                sys::EXIT => {
                    println!("procs: {} exited (code {})", name(p, cur), frame.rdi);
                    p.rr.end_current(State::Exited(frame.rdi));
                    switch_away(frame)
                }
                sys::PROGRESS => {
                    p.progress[cur] = frame.rdi;
                    if p.last_progress != usize::MAX && p.last_progress != cur {
                        p.interleavings += 1;
                    }
                    p.last_progress = cur;
                    println!("procs: {} progress {}", name(p, cur), frame.rdi);
                    frame.rax = 0;
                    VGCF_IN_SYSCALL
                }
                sys::YIELD => {
                    frame.rax = 0;
                    p.ctx[cur] = *frame;
                    switch_away(frame)
                }
                sys::NULL => {
                    // The user's RFLAGS (saved in r11) and ours as the entry found them.
                    NULL_SYSCALL_FLAGS
                        .store(frame.r11 & RFLAGS_DF | (syscall_entry_rflags() & RFLAGS_DF) >> 1, Ordering::SeqCst);
                    frame.rax = 0;
                    VGCF_IN_SYSCALL
                }
                sys::REPORT => {
                    p.reported = frame.rdi;
                    frame.rax = 0;
                    VGCF_IN_SYSCALL
                }
                _ => {
                    frame.rax = (-38i64) as u64;
                    VGCF_IN_SYSCALL
                }
            }
        }
        v if frame.from_user() => {
            let cr2 = events::bits().cr2();
            println!(
                "procs: killed {}: {} at rip {:#x} error {:#x} cr2 {:#x}",
                name(p, cur),
                vector_name(v),
                frame.rip - USER_BASE,
                frame.error_code,
                cr2
            );
            p.kill = Some((v, frame.error_code, cr2, frame.rip));
            p.rr.end_current(State::Killed(v));
            switch_away(frame)
        }
        _ => super::traps::handler(frame),
    }
}

/// CR4.TSD, set with an emulated `mov %cr4`: a user process's `rdtsc` then faults, as the
/// kernel asked (the hypervisor must load the bit into the real CR4 while we run). D runs
/// the null-syscall benchmark, whose first instruction is `rdtsc`.
fn rdtsc_with_cr4_tsd(log: &mut CheckLog) {
    const CR4_TSD: u64 = 1 << 2;
    let cr4 = insn::read_cr(4);
    // SAFETY: only user `rdtsc` changes meaning; D is the only user code run meanwhile.
    unsafe { insn::write_cr4(cr4 | CR4_TSD) };
    let tsd = insn::read_cr(4) & CR4_TSD != 0;
    println!("procs: CR4.TSD set ({tsd}): starting D (rdtsc first)");
    let p = run_processes(&[(Program::Bench, 1, 0)], 3, 0);
    // SAFETY: as above; back to the start-of-day CR4.
    unsafe { insn::write_cr4(cr4) };
    let (killed, kill) = match p {
        Ok(p) => (p.rr.state(0) == State::Killed(13), p.kill),
        Err(_) => (false, None),
    };
    let (v, err, rip) = kill.map_or((0, 1, 1), |(v, err, _, rip)| (v, err, rip - USER_BASE));
    let at_rdtsc = rip == Program::Bench.offset() + 3; // after `mov r12, rdi`
    check!(
        log,
        "D's rdtsc with CR4.TSD set",
        "#GP error 0x0 at the rdtsc, D killed",
        tsd && killed && v == 13 && err == 0 && at_rdtsc,
        "TSD {tsd}, vector {v} error {err:#x} at the rdtsc {at_rdtsc}, killed {killed}"
    );
}

/// The direction flag of the last `null()` call: bit 10 the user's, bit 9 the kernel's at
/// its syscall entry.
static NULL_SYSCALL_FLAGS: AtomicU64 = AtomicU64::new(0);
const RFLAGS_DF: u64 = 1 << 10;

/// A user `syscall` with DF set: the user's DF is kept for the return, and the line
/// `procs: syscall entry DF n` tells how the kernel's syscall entry found DF (Xen's ABI
/// clears it, as a real SYSCALL with Linux's mask does; the scenarios check it on ours).
fn syscall_with_df_set(log: &mut CheckLog) {
    NULL_SYSCALL_FLAGS.store(u64::MAX, Ordering::SeqCst);
    let exited = run_processes(&[(Program::StdSyscall, 0, 0)], 4, 0).is_ok_and(|p| p.rr.state(0) == State::Exited(0));
    let flags = NULL_SYSCALL_FLAGS.load(Ordering::SeqCst);
    let (user, kernel) = (flags & RFLAGS_DF != 0, flags & RFLAGS_DF >> 1 != 0);
    println!("procs: syscall entry DF {}", kernel as u8);
    check!(
        log,
        "E's syscall with DF set",
        "user DF 1 in its frame, exited",
        flags != u64::MAX && user && exited,
        "user DF {}, exited {exited}",
        user as u8
    );
}

/// The word at %gs:`offset`.
fn read_through_gs(offset: u64) -> u64 {
    let r: u64;
    // SAFETY: reads 8 bytes at GS base + offset, which the caller points at a static of ours.
    unsafe { core::arch::asm!("mov {r}, gs:[{a}]", a = in(reg) offset, r = out(reg) r, options(nostack, readonly)) };
    r
}

/// The kernel's GS base set with `set_segment_base` to V's address minus W's, then %gs loaded
/// with a flat selector by the kernel itself (the CPU takes the descriptor's base, 0, so
/// %gs:W reads W), then a user process run: the base the kernel loaded must survive the two
/// mode switches (Xen swaps the CPU's GS bases; it does not bring back the one it was
/// given). Then `SEGBASE_GS_USER_SEL`, which loads %gs (the selector both modes share): a
/// flat selector stays, one the CPU would refuse becomes null (Xen's fix-up).
fn gs_loaded_by_the_kernel(log: &mut CheckLog) {
    static V: u64 = 0x1111;
    static W: u64 = 0x2222;
    let (v, w) = (core::ptr::addr_of!(V) as u64, core::ptr::addr_of!(W) as u64);
    let _ = hyp::set_segment_base(SEGBASE_GS_KERNEL, v.wrapping_sub(w));
    let given = read_through_gs(w);
    // SAFETY: the kernel does not use %gs; 0xe02b is the flat ring-3 data descriptor.
    unsafe { core::arch::asm!("mov ax, 0xe02b", "mov gs, ax", out("ax") _, options(nostack)) };
    let loaded = read_through_gs(w);
    let ran = run_processes(&[(Program::StdSyscall, 0, 0)], 5, 0).is_ok();
    let after_user = read_through_gs(w);
    let _ = hyp::set_segment_base(SEGBASE_GS_KERNEL, 0);
    check!(
        log,
        "kernel GS base: given, after mov %gs, after a user process",
        "0x1111 0x2222 0x2222",
        ran && (given, loaded, after_user) == (0x1111, 0x2222, 0x2222),
        "{given:#x} {loaded:#x} {after_user:#x}"
    );
    let flat = hyp::set_segment_base(SEGBASE_GS_USER_SEL, 0xe028);
    let flat_sel = super::segments::selectors()[3];
    let bad = hyp::set_segment_base(SEGBASE_GS_USER_SEL, 0x1234);
    let bad_sel = super::segments::selectors()[3];
    check!(
        log,
        "SEGBASE_GS_USER_SEL of 0xe028, then of 0x1234 (no such descriptor)",
        "0, %gs 0xe02b; 0, %gs 0x0",
        flat == Ok(0) && flat_sel == 0xe02b && bad == Ok(0) && bad_sel == 0,
        "{}, %gs {flat_sel:#x}; {}, %gs {bad_sel:#x}",
        crate::checks::ret_of(flat),
        crate::checks::ret_of(bad)
    );
}

/// Runs the role.
pub fn run(_opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    if events::init(si).is_err() || trap::install(&TrapSetup::ALL, handler).is_err() {
        println!("procs: set-up failed");
        return ShutdownRequest::Crash;
    }
    let _ = events::mask_events();
    let _ = events::stop_periodic_timer();
    let programs =
        [(Program::Worker, ROUNDS, SPINS), (Program::Worker, ROUNDS, SPINS), (Program::Faulter, 0, SPINS / 2)];
    println!("procs: starting A, B (workers, {ROUNDS} rounds) and C (faults), timer {}ms", TICK_NS / 1_000_000);
    let p = match run_processes(&programs, 0, TICK_NS) {
        Ok(p) => p,
        Err(e) => {
            println!("procs: starting processes failed: {e}");
            return ShutdownRequest::Crash;
        }
    };
    println!("procs: back in the kernel after {} syscalls, {} ticks", p.syscalls, TICKS.load(Ordering::SeqCst));
    let own_roots = p.space[0].map(|s| s.l4.mfn) != p.space[1].map(|s| s.l4.mfn);
    check!(
        log,
        "each process has its own pinned user L4",
        "3 distinct roots",
        own_roots && p.space[1].map(|s| s.l4.mfn) != p.space[2].map(|s| s.l4.mfn),
        "distinct {own_roots}"
    );
    check!(
        log,
        "syscall frame from user mode",
        "cs 0xe033",
        p.first_syscall_cs == 0xe033,
        "cs {:#x}",
        p.first_syscall_cs
    );
    let (cs, mask, iflag) = p.first_preempt.unwrap_or((0, 9, false));
    check!(
        log,
        "timer upcall frame from user mode",
        "cs 0xe033, saved mask 0, IF 1",
        cs == 0xe033 && mask == 0 && iflag,
        "cs {cs:#x}, saved mask {mask}, IF {}",
        iflag as u8
    );
    let done = |i: usize| p.rr.state(i) == State::Exited(0) && p.progress[i] == ROUNDS;
    check!(log, "A and B ran all rounds and exited 0", "both", done(0) && done(1), "A {} B {}", done(0), done(1));
    check!(
        log,
        "A and B preempted each other",
        "each preempted, progress interleaved",
        p.preemptions[0] > 0 && p.preemptions[1] > 0 && p.interleavings >= 2,
        "preempted A {} B {}, interleaved {}",
        p.preemptions[0] > 0,
        p.preemptions[1] > 0,
        p.interleavings >= 2
    );
    let killed = p.rr.state(2) == State::Killed(14);
    let (v, err, cr2, _) = p.kill.unwrap_or((0, 0, 1, 0));
    check!(
        log,
        "C killed by its page fault",
        "#PF error 0x6 (user write, not present) cr2 0x0",
        killed && v == 14 && err == 6 && cr2 == 0 && p.progress[2] == 1,
        "vector {v} error {err:#x} cr2 {cr2:#x}, killed {killed}"
    );
    rdtsc_with_cr4_tsd(&mut log);
    syscall_with_df_set(&mut log);
    gs_loaded_by_the_kernel(&mut log);
    super::summary("procs", &log)
}
