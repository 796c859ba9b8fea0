//! Kernel console: `println!` formats into a line buffer and hands whole lines to a sink.
//! As dom0 the sink is `console_io(CONSOLEIO_write)`; a domU will plug in the console ring.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Where finished output goes (a hypercall, a ring, a test buffer).
pub type Sink = fn(&[u8]);

/// The installed sink as a `fn` address (0 = none yet: output is dropped).
static SINK: AtomicUsize = AtomicUsize::new(0);

/// Installs `sink` for all later output.
pub fn set_sink(sink: Sink) {
    SINK.store(sink as usize, Ordering::Relaxed);
}

fn emit(bytes: &[u8]) {
    let raw = SINK.load(Ordering::Relaxed);
    if raw != 0 {
        // SAFETY: the only non-zero value ever stored is a `Sink` fn pointer (`set_sink`).
        let sink: Sink = unsafe { core::mem::transmute::<usize, Sink>(raw) };
        sink(bytes);
    }
}

/// A fixed-size buffer that passes complete lines (or full buffers) to `out`.
pub struct LineBuffer<F: FnMut(&[u8]), const N: usize> {
    buf: [u8; N],
    len: usize,
    out: F,
}

impl<F: FnMut(&[u8]), const N: usize> LineBuffer<F, N> {
    /// An empty buffer flushing into `out`.
    pub const fn new(out: F) -> Self {
        Self { buf: [0; N], len: 0, out }
    }

    /// Hands whatever is buffered to `out`.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.out)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8]), const N: usize> Write for LineBuffer<F, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == N {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Formats `args` to the console (used by [`println!`](crate::println)).
pub fn print(args: fmt::Arguments) {
    let mut line = LineBuffer::<_, 256>::new(emit);
    // Writing into a LineBuffer never fails; a Display impl that errors just truncates.
    let _ = line.write_fmt(args);
    line.flush();
}

/// Prints a formatted line on the kernel console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Formats into a fixed byte buffer (for building strings without an allocator).
pub struct FixedWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> FixedWriter<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// What was written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        if s.len() > room {
            return Err(fmt::Error);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Displays a NUL-terminated byte field as text, replacing non-printable bytes with `?`.
pub struct CStr<'a>(pub &'a [u8]);

impl fmt::Display for CStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take_while(|&&b| b != 0) {
            let c = if (0x20..0x7f).contains(&b) { b as char } else { '?' };
            f.write_char(c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn line_buffer_flushes_per_line_and_when_full() {
        let mut got: Vec<Vec<u8>> = Vec::new();
        {
            let mut lb = LineBuffer::<_, 4>::new(|b: &[u8]| got.push(b.to_vec()));
            write!(lb, "ab\ncdefg").unwrap();
            lb.flush();
        }
        assert_eq!(got, [b"ab\n".to_vec(), b"cdef".to_vec(), b"g".to_vec()]);
    }

    #[test]
    fn cstr_stops_at_nul_and_masks() {
        let mut buf = [0u8; 32];
        let mut w = FixedWriter::new(&mut buf);
        write!(w, "{}", CStr(b"4.17\x01x\0junk")).unwrap();
        assert_eq!(w.as_bytes(), b"4.17?x");
    }

    #[test]
    fn fixed_writer_reports_overflow() {
        let mut buf = [0u8; 3];
        let mut w = FixedWriter::new(&mut buf);
        assert!(write!(w, "abcd").is_err());
    }
}
