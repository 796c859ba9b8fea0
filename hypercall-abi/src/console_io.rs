//! `console_io` (`xen.h`): Xen's emergency console, dom0's only console.

/// `CONSOLEIO_write`: `console_io(CONSOLEIO_WRITE, count, buf)` prints `count` bytes.
pub const CONSOLEIO_WRITE: u32 = 0;
/// `CONSOLEIO_read`: `console_io(CONSOLEIO_READ, count, buf)` reads from Xen's serial buffer.
pub const CONSOLEIO_READ: u32 = 1;
