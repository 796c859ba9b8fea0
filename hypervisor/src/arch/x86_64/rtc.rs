//! The CMOS real-time clock, read once at boot for the guests' wall clock.

use super::cpu::{inb, outb};
use hypervisor::wallclock::{from_bcd, RtcTime};

fn cmos(reg: u8) -> u8 {
    // Bit 7 of the index port keeps NMIs disabled while we talk to the CMOS.
    outb(0x70, 0x80 | reg);
    inb(0x71)
}

fn read_once() -> (RtcTime, u8) {
    let status_b = cmos(0x0b);
    let raw = [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x32)];
    let dec = |v: u8| if status_b & 0x04 != 0 { v as u32 } else { from_bcd(v) };
    // 12-hour mode keeps the PM flag in bit 7 of the hour.
    let mut hour = dec(raw[2] & 0x7f);
    if status_b & 0x02 == 0 && raw[2] & 0x80 != 0 {
        hour = (hour % 12) + 12;
    }
    let century = match dec(raw[6]) {
        c @ 19..=21 => c,
        _ => 20,
    };
    let t = RtcTime {
        year: century * 100 + dec(raw[5]),
        month: dec(raw[4]),
        day: dec(raw[3]),
        hour,
        minute: dec(raw[1]),
        second: dec(raw[0]),
    };
    (t, raw[0])
}

/// Reads the clock, retrying while an update is in progress or the reading changed.
pub fn read() -> RtcTime {
    for _ in 0..1000 {
        while cmos(0x0a) & 0x80 != 0 {}
        let (a, _) = read_once();
        let (b, _) = read_once();
        if a == b {
            return a;
        }
    }
    read_once().0
}
