//! x86_64 support: boot, CPU tables, trap entry, paging, LAPIC timer, serial port.
pub mod boot;
