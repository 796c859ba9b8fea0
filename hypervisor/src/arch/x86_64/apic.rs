//! Local APIC timer, calibrated against the PIT, driving the periodic scheduler tick.

use super::cpu::{inb, outb, rdmsr, rdtsc};
use super::paging::phys_to_virt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Vector of the periodic tick.
pub const TIMER_VECTOR: u8 = 0xf0;
/// Vector the APIC uses for spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_EOI: u64 = 0xb0;
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

/// Called from the trap dispatcher for [`TIMER_VECTOR`].
pub fn on_timer_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    end_of_interrupt();
}

/// Acknowledges the interrupt being serviced.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}
