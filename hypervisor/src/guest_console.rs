//! A domU's `console_io` output as Xen 4.17 prints it (`guest_console_write`): printable
//! characters and tabs only, gathered per domain into lines that are printed whole, each
//! with its own `(dN) ` prefix. A guest can then neither print a line that looks like the
//! hypervisor's (or another domain's), nor send control sequences to the operator's
//! terminal. (dom0's output goes out as it is, as in Xen: it may be interactive.)

/// Bytes of a line kept before it is printed without its newline (Xen's `DOMAIN_PBUF_SIZE`
/// is 200, with room for the terminating NUL).
pub const LINE_CAPACITY: usize = 199;

/// One domain's unfinished console line.
#[derive(Clone)]
pub struct LineBuffer {
    bytes: [u8; LINE_CAPACITY],
    len: usize,
    /// The last line went out because it was full: a newline right after it ends that line
    /// (Xen prints such a line whole), not an empty one.
    printed_full: bool,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self { bytes: [0; LINE_CAPACITY], len: 0, printed_full: false }
    }
}

impl LineBuffer {
    /// Adds the guest's `input`, calling `print` with each line it completes (without its
    /// newline): at a `\n`, or when [`LINE_CAPACITY`] bytes are waiting. Bytes other than
    /// printable ASCII and tabs are dropped, as Xen's `isprint` filter does.
    pub fn write(&mut self, input: &[u8], mut print: impl FnMut(&[u8])) {
        for &b in input {
            if b == b'\n' {
                if !(self.printed_full && self.len == 0) {
                    print(&self.bytes[..self.len]);
                }
                self.len = 0;
                self.printed_full = false;
                continue;
            }
            if !(b.is_ascii_graphic() || b == b' ' || b == b'\t') {
                continue;
            }
            self.bytes[self.len] = b;
            self.len += 1;
            self.printed_full = false;
            if self.len == LINE_CAPACITY {
                print(&self.bytes[..self.len]);
                self.len = 0;
                self.printed_full = true;
            }
        }
    }

    /// Bytes waiting for their line's end.
    pub fn pending(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn lines(buffer: &mut LineBuffer, input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        buffer.write(input, |line| out.push(line.to_vec()));
        out
    }

    #[test]
    fn lines_are_printed_whole_across_writes() {
        let mut b = LineBuffer::default();
        assert!(lines(&mut b, b"hello, ").is_empty());
        assert_eq!(b.pending(), b"hello, ");
        assert_eq!(lines(&mut b, b"world\nsecond\n\nthird"), [&b"hello, world"[..], b"second", b""]);
        assert_eq!(b.pending(), b"third");
    }

    #[test]
    fn control_bytes_are_dropped_so_no_line_can_be_forged() {
        // A carriage return would let the rest of the line overwrite the "(dN) " prefix on a
        // terminal; an escape sequence would clear the operator's screen.
        let mut b = LineBuffer::default();
        let out = lines(&mut b, b"ok\r(hv) FATAL: forged\x1b[2J\x07\tend\x00\xff\n");
        assert_eq!(out, [&b"ok(hv) FATAL: forged[2J\tend"[..]]);
    }

    #[test]
    fn a_line_without_end_is_printed_once_the_buffer_is_full() {
        let mut b = LineBuffer::default();
        let long = [b'x'; LINE_CAPACITY * 2 + 5];
        let out = lines(&mut b, &long);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == LINE_CAPACITY));
        assert_eq!(b.pending().len(), 5);
    }

    #[test]
    fn a_newline_right_after_a_full_line_ends_it_without_an_empty_line() {
        let mut b = LineBuffer::default();
        let mut input = std::vec![b'x'; LINE_CAPACITY];
        input.extend_from_slice(b"\n\nnext\n");
        let out = lines(&mut b, &input);
        let lens: Vec<usize> = out.iter().map(|l| l.len()).collect();
        assert_eq!(lens, [LINE_CAPACITY, 0, 4], "the full line, then the empty line asked for, then the next");
    }
}
