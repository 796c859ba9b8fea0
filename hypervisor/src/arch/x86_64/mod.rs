//! x86_64 support: boot, CPU tables, trap entry, paging, LAPIC timer and IPIs, application
//! processors, serial port.
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod guest_copy;
pub mod guest_entry;
pub mod idt;
pub mod paging;
pub mod rtc;
pub mod serial;
pub mod smp;
pub mod syscall;
pub mod traps;
