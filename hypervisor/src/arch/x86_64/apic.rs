//! Local APIC: the timer (calibrated against the PIT) driving each CPU's scheduler tick, and
//! inter-processor interrupts (start-up, reschedule, TLB flush).

use super::cpu::{inb, outb, rdmsr, rdtsc};
use super::gdt::MAX_CPUS;
use super::paging::phys_to_virt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Vector of the periodic tick.
pub const TIMER_VECTOR: u8 = 0xf0;
/// Vector the APIC uses for spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Vector of the reschedule IPI: the receiving CPU re-runs its return-to-guest checks.
pub const RESCHEDULE_VECTOR: u8 = 0xf1;
/// Vector of the TLB-flush IPI (see `smp::flush_all_tlbs`).
pub const FLUSH_VECTOR: u8 = 0xf2;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_ICR_LOW: u64 = 0x300;
const REG_ICR_HIGH: u64 = 0x310;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_ALL_EXCLUDING_SELF: u32 = 3 << 18;
const ICR_INIT: u32 = 5 << 8;
const ICR_STARTUP: u32 = 6 << 8;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const PIT_HZ: u64 = 1_193_182;
/// Calibration window.
const CALIBRATION_MS: u64 = 10;

static APIC_BASE: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
/// Ticks each CPU's own timer took: what an idle CPU polling for work watches (another
/// CPU's tick gives it nothing to do).
static CPU_TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Measured frequencies.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// LAPIC timer input clock after the divide-by-16, in Hz.
    pub apic_timer_hz: u64,
    /// TSC frequency in Hz.
    pub tsc_hz: u64,
}

fn reg(offset: u64) -> *mut u32 {
    phys_to_virt(APIC_BASE.load(Ordering::Relaxed) + offset) as *mut u32
}

fn write(offset: u64, value: u32) {
    // SAFETY: the LAPIC page is in the direct map (mapped uncached as device memory).
    unsafe { reg(offset).write_volatile(value) }
}

fn read(offset: u64) -> u32 {
    // SAFETY: as for `write`.
    unsafe { reg(offset).read_volatile() }
}

/// Masks the legacy PICs, enables the LAPIC and measures its timer and the TSC against PIT
/// channel 2 over a 10 ms window.
pub fn init() -> Calibration {
    outb(0x21, 0xff); // mask the 8259 PICs: the LAPIC is our only interrupt source
    outb(0xa1, 0xff);
    APIC_BASE.store(rdmsr(IA32_APIC_BASE) & 0xf_ffff_f000, Ordering::Relaxed);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);

    // PIT channel 2, mode 0, gate through port 0x61 bit 0, speaker (bit 1) off.
    let pit_count = PIT_HZ * CALIBRATION_MS / 1000;
    outb(0x61, (inb(0x61) & !0x02) & !0x01);
    outb(0x43, 0xb0);
    outb(0x42, pit_count as u8);
    outb(0x42, (pit_count >> 8) as u8);
    write(REG_TIMER_INITIAL, u32::MAX);
    let tsc_start = rdtsc();
    outb(0x61, inb(0x61) | 0x01); // raise the gate: counting starts
    let mut spins: u64 = 0;
    while inb(0x61) & 0x20 == 0 {
        spins += 1;
        if spins > 1 << 32 {
            break; // no PIT: fall through with whatever we measured
        }
    }
    let apic_elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    let tsc_elapsed = rdtsc() - tsc_start;
    write(REG_TIMER_INITIAL, 0);
    Calibration {
        apic_timer_hz: apic_elapsed as u64 * 1000 / CALIBRATION_MS,
        tsc_hz: tsc_elapsed * 1000 / CALIBRATION_MS,
    }
}

/// Enables the calling CPU's LAPIC (an application processor's; the boot CPU's is enabled
/// by [`init`]) with the timer masked.
pub fn enable_this_cpu() {
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16, as calibrated
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
}

/// The calling CPU's APIC id.
pub fn id() -> u8 {
    (read(REG_ID) >> 24) as u8
}

fn send(high: u32, low: u32) {
    write(REG_ICR_HIGH, high);
    write(REG_ICR_LOW, low);
    while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Sends fixed interrupt `vector` to the CPU with APIC id `apic_id`.
pub fn send_ipi(apic_id: u8, vector: u8) {
    send((apic_id as u32) << 24, vector as u32 | ICR_LEVEL_ASSERT);
}

/// INIT to every other CPU (the first step of starting them).
pub fn broadcast_init() {
    send(0, ICR_INIT | ICR_LEVEL_ASSERT | ICR_ALL_EXCLUDING_SELF);
}

/// STARTUP to every other CPU: they begin in real mode at `page << 12`.
pub fn broadcast_startup(page: u8) {
    send(0, ICR_STARTUP | ICR_LEVEL_ASSERT | ICR_ALL_EXCLUDING_SELF | page as u32);
}

/// Starts the periodic tick at `hz`.
pub fn start_periodic(cal: &Calibration, hz: u64) {
    let count = (cal.apic_timer_hz / hz).clamp(1, u32::MAX as u64) as u32;
    write(REG_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR as u32);
    write(REG_TIMER_INITIAL, count);
}

/// Machine frame of the local APIC's registers.
pub fn base_mfn() -> u64 {
    APIC_BASE.load(Ordering::Relaxed) >> 12
}

/// Ticks taken since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Ticks `cpu`'s own timer took since it started.
pub fn ticks_of(cpu: usize) -> u64 {
    CPU_TICKS.get(cpu).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Called from the trap dispatcher for [`TIMER_VECTOR`].
pub fn on_timer_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = CPU_TICKS.get(super::gdt::this_cpu()) {
        t.fetch_add(1, Ordering::Relaxed);
    }
    end_of_interrupt();
}

/// Acknowledges the interrupt being serviced.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}
