//! Application processors: starting them (INIT-SIPI-SIPI into a real-mode trampoline), and
//! the two inter-processor requests the hypervisor makes: "re-check your scheduling" and
//! "flush your TLB".
//!
//! Start-up contract: the boot CPU copies the trampoline to [`TRAMPOLINE_PA`] (reserved from
//! the frame allocator by `memory.rs`), fills its data words and broadcasts INIT and two
//! STARTUPs. Each AP runs real mode → protected mode → long mode on the boot page table
//! (`boot_pml4`, which still maps the first GiB 1:1 and the image), takes an index with
//! `lock xadd` (1, 2, ...; an AP at or above [`MAX_CPUS`] parks itself), sets its ring-0
//! stack from the index and calls [`ap_main`], which loads the hypervisor's own tables and
//! CPU structures and joins the scheduler. CPUs are counted by who arrives within the wait:
//! no ACPI tables are read.

use super::gdt::{self, MAX_CPUS};
use super::{apic, cpu, fpu, idt, paging, syscall};
use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use hypervisor::idle::{IdleMode, LINUX_TUNING};

/// Physical address the trampoline runs at: the STARTUP vector is its page number.
pub const TRAMPOLINE_PA: u64 = 0x8000;

global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    /* Runs copied to TRAMP_PA. The data words sit at fixed offsets (LLVM's assembler takes
       no label differences inside memory operands): 8 cr3, 16 entry, 24 stack0_top,
       32 stack_size, 40 next_cpu, 48 the GDT, 80 its pointer; code goes on at 96. */
    .set TRAMP_PA, 0x8000
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    jmp tramp16
    .org 8
    .global ap_tramp_data
ap_tramp_data:
    .quad 0                                 /* cr3 */
    .quad 0                                 /* entry */
    .quad 0                                 /* stack0_top */
    .quad 0                                 /* stack_size */
    .long 1                                 /* next_cpu */
    .long 0
    .org 48
    .quad 0
    .quad 0x00cf9a000000ffff                /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                /* 0x10: data */
    .quad 0x00af9a000000ffff                /* 0x18: 64-bit code */
    .org 80
    .word 31
    .long TRAMP_PA + 48
    .org 96
tramp16:
    cli
    cld
    mov ax, cs
    mov ds, ax
    lgdt [80]
    mov eax, cr0
    or eax, 1                               /* PE */
    mov cr0, eax
    .byte 0x66, 0xea                        /* ljmpl 0x08:tramp32 */
    .long TRAMP_PA + (tramp32 - ap_trampoline_start)
    .word 0x08

    .code32
tramp32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 0x20                            /* PAE */
    mov cr4, eax
    mov eax, [TRAMP_PA + 8]                 /* cr3 */
    mov cr3, eax
    mov ecx, 0xC0000080                     /* EFER */
    rdmsr
    or eax, 0x900                           /* LME | NXE */
    wrmsr
    mov eax, cr0
    or eax, 0x80010001                      /* PG | WP | PE */
    mov cr0, eax
    .byte 0xea                              /* ljmp 0x18:tramp64 */
    .long TRAMP_PA + (tramp64 - ap_trampoline_start)
    .word 0x18

    .code64
tramp64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, 1
    lock xadd [TRAMP_PA + 40], eax          /* next_cpu */
    cmp eax, {max_cpus}
    jae 2f
    mov edi, eax                            /* first argument: the CPU index */
    mov rax, [TRAMP_PA + 32]                /* stack_size */
    imul rax, rdi
    add rax, [TRAMP_PA + 24]                /* stack0_top */
    sub rax, 256                            /* the top 176 bytes take the frame a resume */
    mov rsp, rax                            /* builds there (guest_entry::resume)       */
    xor ebp, ebp
    mov rax, [TRAMP_PA + 16]                /* entry */
    call rax
2:  cli
    hlt
    jmp 2b
    .global ap_trampoline_end
ap_trampoline_end:
    .text
"#,
    max_cpus = const MAX_CPUS,
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_tramp_data: u8;
    static ap_trampoline_end: u8;
    static boot_pml4: u64;
}

/// The trampoline's data words, in the order of `ap_tramp_data`.
#[repr(C)]
struct TrampolineData {
    cr3: u64,
    entry: u64,
    stack0_top: u64,
    stack_size: u64,
    next_cpu: u32,
}

/// CPUs that reported in while start-up was open, as a bit set (bit 0: the boot CPU);
/// [`STARTUP_CLOSED`] marks the end of start-up, after which no CPU may join.
static ARRIVED: AtomicU64 = AtomicU64::new(1);
const STARTUP_CLOSED: u64 = 1 << 63;
/// The CPUs in use, fixed when start-up closes: CPUs 0..n with no gap (an AP that took a
/// later index but arrived while an earlier one did not is parked, as is one arriving late).
/// Only these get IPIs, flush requests and schedulers.
static ONLINE: AtomicU64 = AtomicU64::new(1);
/// APIC id of each CPU, for IPIs.
static APIC_IDS: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
/// The timer calibration APs reuse (measured once, on the boot CPU).
static TIMER_COUNT_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Set once the machine exists: APs wait for it before they look for work.
static MACHINE_READY: AtomicBool = AtomicBool::new(false);
/// TLB flushes asked of each CPU, and done by it (generations).
static FLUSH_ASKED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static FLUSH_DONE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static FLUSH_GENERATION: AtomicU64 = AtomicU64::new(0);
/// A per-CPU flag alone in its cache line: a CPU spinning on its own does not share a line
/// with the flags other CPUs write.
#[repr(align(64))]
struct CpuFlag(AtomicBool);

/// Set by [`kick_cpu`]: the CPU has work (read by a CPU that polls in [`wait_for_work`]).
static WAKE_HINT: [CpuFlag; MAX_CPUS] = [const { CpuFlag(AtomicBool::new(false)) }; MAX_CPUS];
/// Set while a CPU spins in [`wait_for_work`]: it watches [`WAKE_HINT`], so a kick needs no
/// IPI (Linux's `TIF_POLLING_NRFLAG`).
static POLLING: [CpuFlag; MAX_CPUS] = [const { CpuFlag(AtomicBool::new(false)) }; MAX_CPUS];
/// `idle=`: how idle CPUs wait ([`IdleMode`] as `u8`, see [`set_idle_mode`]).
static IDLE_MODE: AtomicU8 = AtomicU8::new(IdleMode::HaltPoll as u8);
/// Each CPU's halt-polling window in nanoseconds (adapted by [`LINUX_TUNING`] after every
/// idle period; only its own CPU touches it).
static POLL_WINDOW_NS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// How many CPUs the command line allows (`maxcpus=`).
static CPU_LIMIT: AtomicUsize = AtomicUsize::new(MAX_CPUS);

fn arrived_count() -> usize {
    (ARRIVED.load(Ordering::Acquire) & !STARTUP_CLOSED).count_ones() as usize
}

fn is_online(cpu: usize) -> bool {
    ONLINE.load(Ordering::Acquire) & (1u64 << cpu) != 0
}

/// Starts the application processors, allowing at most `limit` CPUs in all; returns how many
/// CPUs are online. `cal` is the boot CPU's timer calibration, which the APs share.
pub fn start_aps(cal: &apic::Calibration, limit: usize) -> usize {
    let limit = limit.clamp(1, MAX_CPUS);
    CPU_LIMIT.store(limit, Ordering::Relaxed);
    APIC_IDS[0].store(apic::id(), Ordering::Relaxed);
    TIMER_COUNT_HZ.store(cal.apic_timer_hz, Ordering::Relaxed);
    TSC_HZ.store(cal.tsc_hz, Ordering::Relaxed);
    if limit == 1 {
        return 1;
    }
    // SAFETY: only the symbols' addresses are taken; the blob is plain bytes in .rodata.
    let (start, data, end) = unsafe {
        (
            &ap_trampoline_start as *const u8 as u64,
            &ap_tramp_data as *const u8 as u64,
            &ap_trampoline_end as *const u8 as u64,
        )
    };
    let dest = paging::phys_to_virt(TRAMPOLINE_PA);
    let data_at = dest + (data - start);
    // SAFETY: the trampoline page is reserved from the allocator (memory.rs) and mapped by the
    // direct map; no AP runs yet; the data words are 8-aligned inside the copied blob.
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, dest as *mut u8, (end - start) as usize);
        (data_at as *mut TrampolineData).write_volatile(TrampolineData {
            cr3: core::ptr::addr_of!(boot_pml4) as u64,
            entry: ap_main as *const () as u64,
            stack0_top: gdt::ring0_stack_top(0),
            stack_size: gdt::ring0_stack_top(1) - gdt::ring0_stack_top(0),
            next_cpu: 1,
        });
    }
    let us = |n: u64| {
        let until = cpu::rdtsc() + cal.tsc_hz / 1_000_000 * n;
        while cpu::rdtsc() < until {
            core::hint::spin_loop();
        }
    };
    apic::broadcast_init();
    us(10_000);
    apic::broadcast_startup((TRAMPOLINE_PA >> 12) as u8);
    us(200);
    apic::broadcast_startup((TRAMPOLINE_PA >> 12) as u8);
    // Wait for the CPUs that answer: 100 ms without a new arrival ends the count.
    let mut seen = arrived_count();
    let mut quiet_since = cpu::rdtsc();
    while cpu::rdtsc() - quiet_since < cal.tsc_hz / 10 {
        let now = arrived_count();
        if now != seen {
            seen = now;
            quiet_since = cpu::rdtsc();
        }
        core::hint::spin_loop();
    }
    // Close start-up: a CPU arriving from now on parks itself. Of those that arrived, the
    // ones numbered without a gap from 0 are used.
    let arrived = ARRIVED.fetch_or(STARTUP_CLOSED, Ordering::AcqRel) & !STARTUP_CLOSED;
    let usable = (arrived.trailing_ones() as usize).min(limit);
    if usable < arrived.count_ones() as usize {
        log::warn!(
            "CPUs: {} answered, {usable} used (indices {arrived:#b}: a gap or a late one)",
            arrived.count_ones()
        );
    }
    ONLINE.store((1u64 << usable) - 1, Ordering::Release);
    usable
}

/// Reports the calling AP in, unless start-up is closed. Returns whether it may be used
/// later (it still has to be numbered within [`ONLINE`]).
fn report_in(cpu_index: usize) -> bool {
    let mut seen = ARRIVED.load(Ordering::Acquire);
    loop {
        if seen & STARTUP_CLOSED != 0 {
            return false;
        }
        match ARRIVED.compare_exchange(seen, seen | 1u64 << cpu_index, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => seen = now,
        }
    }
}

/// An AP's first Rust code, on its ring-0 stack, still on the boot page table.
extern "C" fn ap_main(cpu_index: usize) -> ! {
    paging::load_hypervisor_tables();
    gdt::load(cpu_index);
    idt::load();
    syscall::init(cpu_index, gdt::ring0_stack_top(cpu_index));
    fpu::init();
    super::guest_copy::check_cpu_state();
    apic::enable_this_cpu();
    APIC_IDS[cpu_index].store(apic::id(), Ordering::Relaxed);
    if cpu_index >= CPU_LIMIT.load(Ordering::Relaxed) || !report_in(cpu_index) {
        cpu::halt_forever(); // beyond `maxcpus=`, or too late: never used
    }
    let cal = apic::Calibration {
        apic_timer_hz: TIMER_COUNT_HZ.load(Ordering::Relaxed),
        tsc_hz: TSC_HZ.load(Ordering::Relaxed),
    };
    while !MACHINE_READY.load(Ordering::Acquire) {
        // The boot CPU may free frames while it builds the domains: it waits for this one.
        serve_flush();
        core::hint::spin_loop();
    }
    if !is_online(cpu_index) {
        cpu::halt_forever(); // arrived after a gap in the numbering: not used
    }
    apic::start_periodic(&cal, crate::TICK_HZ);
    crate::guest_traps::run_idle_cpu()
}

/// Chooses how idle CPUs wait (`idle=`).
pub fn set_idle_mode(mode: IdleMode) {
    IDLE_MODE.store(mode as u8, Ordering::Relaxed);
}

fn idle_mode() -> IdleMode {
    match IDLE_MODE.load(Ordering::Relaxed) {
        m if m == IdleMode::Halt as u8 => IdleMode::Halt,
        m if m == IdleMode::Poll as u8 => IdleMode::Poll,
        _ => IdleMode::HaltPoll,
    }
}

/// Waits, interrupts enabled, for something that may give this idle CPU work: a kick or a
/// timer tick, as the idle mode says: halting at once, spinning, or (the default) spinning
/// for the governor's window and then halting. Interrupts are off again on return, and the
/// wake hint is clear: the caller re-checks everything under the machine lock.
pub fn wait_for_work() {
    let me = gdt::this_cpu();
    match idle_mode() {
        IdleMode::Halt => cpu::idle_wait_for_interrupt(),
        IdleMode::Poll => {
            poll_for_work(me, cpu::rdtsc(), u64::MAX);
        }
        IdleMode::HaltPoll => {
            let tsc_hz = TSC_HZ.load(Ordering::Relaxed);
            let window_ns = POLL_WINDOW_NS[me].load(Ordering::Relaxed);
            let window_cycles = (u128::from(window_ns) * u128::from(tsc_hz) / 1_000_000_000) as u64;
            let start = cpu::rdtsc();
            if window_cycles == 0 || !poll_for_work(me, start, window_cycles) {
                cpu::idle_wait_for_interrupt();
            }
            let idle_ns = hypervisor::vcpu::tsc_ticks_to_ns(cpu::rdtsc().wrapping_sub(start), tsc_hz);
            POLL_WINDOW_NS[me].store(LINUX_TUNING.next_window(window_ns, idle_ns), Ordering::Relaxed);
        }
    }
    // A kick's hint is served by the caller's checks, which come next.
    WAKE_HINT[me].0.store(false, Ordering::Release);
}

/// Spins, interrupts enabled, until a kick, a timer tick, or `limit` TSC cycles after
/// `start`. Whether work came (kick or tick). While it spins, kicks set the hint without an
/// IPI (`POLLING`); interrupts are off again on return.
fn poll_for_work(me: usize, start: u64, limit: u64) -> bool {
    let tick = apic::ticks_of(me);
    POLLING[me].0.store(true, Ordering::SeqCst);
    x86_64::instructions::interrupts::enable();
    let mut woke = false;
    while !woke && cpu::rdtsc().wrapping_sub(start) < limit {
        // A plain load while nothing comes; the locked swap only to take a hint.
        woke = (WAKE_HINT[me].0.load(Ordering::Acquire) && WAKE_HINT[me].0.swap(false, Ordering::AcqRel))
            || apic::ticks_of(me) != tick;
        core::hint::spin_loop();
    }
    x86_64::instructions::interrupts::disable();
    POLLING[me].0.store(false, Ordering::SeqCst);
    // A kick that saw `POLLING` set only set the hint: take it here, before halting on it.
    // Both sides store then load with SeqCst (the kicker its hint then `POLLING`, this CPU
    // `POLLING` then its hint), so at least one sees the other's store: either this swap
    // finds the hint, or the kicker finds `POLLING` clear and sends an IPI, which stays
    // pending with interrupts off and ends the halt.
    woke || WAKE_HINT[me].0.swap(false, Ordering::SeqCst)
}

/// Lets the APs look for work: the machine state exists.
pub fn release_aps() {
    MACHINE_READY.store(true, Ordering::Release);
}

/// Asks `cpu` to re-run its scheduling checks (a domain of its woke, or its running domain
/// has an event, was paused or is dying).
pub fn kick_cpu(cpu: usize) {
    if cpu < MAX_CPUS && is_online(cpu) && cpu != gdt::this_cpu() {
        WAKE_HINT[cpu].0.store(true, Ordering::SeqCst);
        if POLLING[cpu].0.load(Ordering::SeqCst) {
            return; // it watches the hint: an IPI (an exit in QEMU, a wake on hardware) is not needed
        }
        apic::send_ipi(APIC_IDS[cpu].load(Ordering::Relaxed), apic::RESCHEDULE_VECTOR);
    }
}

/// Flushes every CPU's guest TLB entries and returns once all have: before a frame returns
/// to the allocator, no CPU may still reach it through a stale translation. Every other
/// CPU serves the request without the machine lock ([`serve_flush`], on the flush IPI or
/// while it waits for the lock), so the caller may hold it. A CPU with interrupts off that
/// does neither is one on its way back to a guest or to `hlt`; it takes the IPI as soon as
/// interrupts are on again.
pub fn flush_all_tlbs() {
    cpu::flush_guest_tlb();
    let online = ONLINE.load(Ordering::Acquire);
    if online == 1 {
        return;
    }
    let me = gdt::this_cpu();
    let generation = FLUSH_GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    for cpu in (0..MAX_CPUS).filter(|&c| c != me && online & (1u64 << c) != 0) {
        FLUSH_ASKED[cpu].fetch_max(generation, Ordering::AcqRel);
        apic::send_ipi(APIC_IDS[cpu].load(Ordering::Relaxed), apic::FLUSH_VECTOR);
    }
    for cpu in (0..MAX_CPUS).filter(|&c| c != me && online & (1u64 << c) != 0) {
        while FLUSH_DONE[cpu].load(Ordering::Acquire) < generation {
            serve_flush(); // two flushers never wait on each other for long
            core::hint::spin_loop();
        }
    }
}

/// Does a TLB flush another CPU asked of this one, if any.
#[inline(always)]
pub fn serve_flush() {
    let me = gdt::this_cpu();
    let asked = FLUSH_ASKED[me].load(Ordering::Acquire);
    if asked > FLUSH_DONE[me].load(Ordering::Relaxed) {
        cpu::flush_guest_tlb();
        FLUSH_DONE[me].store(asked, Ordering::Release);
    }
}
