//! COM1, the hypervisor's console (Xen's `console=com1`).

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Programs COM1 (115200 8N1).
pub fn init() {
    // SAFETY: 0x3f8 is COM1 on every PC-compatible machine QEMU models.
    let mut port = unsafe { SerialPort::new(0x3f8) };
    port.init();
    *COM1.lock() = Some(port);
}

/// Writes formatted text; before `init` the text is dropped.
pub fn write_fmt(args: fmt::Arguments) {
    if let Some(port) = COM1.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Writes raw bytes (guest console output), translating `\n` to `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(port) = COM1.lock().as_mut() {
        for &b in bytes {
            if b == b'\n' {
                port.send(b'\r');
            }
            port.send(b);
        }
    }
}

/// Forcibly releases the console lock: only for the fatal-error path, where the interrupted
/// code may have held it and will never run again.
pub fn force_unlock() {
    if COM1.is_locked() {
        // SAFETY: called only on the way to halting the machine; nothing else runs afterwards.
        unsafe { COM1.force_unlock() };
    }
}

/// A byte of console input, if one is waiting (polled: the hypervisor takes no UART IRQ).
pub fn try_read() -> Option<u8> {
    // Line status register bit 0: data ready.
    (super::cpu::inb(0x3fd) & 1 != 0).then(|| super::cpu::inb(0x3f8))
}
