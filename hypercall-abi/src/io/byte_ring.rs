//! Byte-stream rings with free-running 32-bit indices in the same shared page: the layout shared
//! by the PV console (`xencons_interface`) and the xenstore ring
//! (`xenstore_domain_interface`).
//!
//! Each direction has one producer and one consumer. Each side keeps its *own* index privately
//! (the shared copy is only published, never trusted back) and validates the peer's index on
//! every read: it may neither move backwards nor claim more than the buffer size.

use core::sync::atomic::{fence, Ordering};

use super::mem::SharedMemory;

/// Where one direction of a byte ring lives in the shared page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRingLayout {
    /// Offset of the data buffer.
    pub data: usize,
    /// Buffer size in bytes (a power of two).
    pub size: u32,
    /// Offset of the consumer index.
    pub cons: usize,
    /// Offset of the producer index.
    pub prod: usize,
}

/// A peer index that breaks the byte-ring protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRingError {
    /// The indices are more than the buffer size apart.
    IndexOverflow {
        /// Producer index.
        prod: u32,
        /// Consumer index.
        cons: u32,
    },
    /// The peer's index moved backwards.
    Backwards {
        /// Value read.
        now: u32,
        /// Previously observed value.
        last: u32,
    },
}

fn check_peer(now: u32, last: u32) -> Result<(), ByteRingError> {
    if (now.wrapping_sub(last) as i32) < 0 {
        return Err(ByteRingError::Backwards { now, last });
    }
    Ok(())
}

/// The consuming side of one direction.
#[derive(Clone, Copy, Debug)]
pub struct ByteRingReader {
    layout: ByteRingLayout,
    cons: u32,
    prod_seen: u32,
}

impl ByteRingReader {
    /// Attaches at the consumer index currently in shared memory, after checking the pair.
    pub fn attach<M: SharedMemory>(mem: &M, layout: ByteRingLayout) -> Result<Self, ByteRingError> {
        let cons = mem.load_u32(layout.cons);
        let prod = mem.load_u32(layout.prod);
        if prod.wrapping_sub(cons) > layout.size {
            return Err(ByteRingError::IndexOverflow { prod, cons });
        }
        Ok(ByteRingReader { layout, cons, prod_seen: cons })
    }

    /// Our private consumer index.
    pub fn cons(&self) -> u32 {
        self.cons
    }

    /// Bytes available to read, after validating the producer index.
    pub fn available<M: SharedMemory>(&mut self, mem: &M) -> Result<u32, ByteRingError> {
        let prod = mem.load_u32(self.layout.prod);
        // Read barrier: orders the producer-index load before the data reads that follow.
        fence(Ordering::Acquire);
        check_peer(prod, self.prod_seen)?;
        let avail = prod.wrapping_sub(self.cons);
        if avail > self.layout.size {
            return Err(ByteRingError::IndexOverflow { prod, cons: self.cons });
        }
        self.prod_seen = prod;
        Ok(avail)
    }

    /// Copies up to `buf.len()` available bytes out (in at most two pieces across the wrap) and
    /// publishes the new consumer index. Returns the number of bytes read.
    pub fn read<M: SharedMemory>(&mut self, mem: &M, buf: &mut [u8]) -> Result<usize, ByteRingError> {
        let avail = self.available(mem)? as usize;
        let n = avail.min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let size = self.layout.size as usize;
        let start = (self.cons as usize) & (size - 1);
        let first = n.min(size - start);
        mem.read_bytes(self.layout.data + start, &mut buf[..first]);
        mem.read_bytes(self.layout.data, &mut buf[first..n]);
        self.cons = self.cons.wrapping_add(n as u32);
        // Barrier: orders our data reads before the consumer-index store that hands the space
        // back to the producer (Xen uses mb() here; a release fence is what Rust needs to order
        // earlier loads before a later store).
        fence(Ordering::Release);
        mem.store_u32(self.layout.cons, self.cons);
        Ok(n)
    }
}

/// The producing side of one direction.
#[derive(Clone, Copy, Debug)]
pub struct ByteRingWriter {
    layout: ByteRingLayout,
    prod: u32,
    cons_seen: u32,
}

impl ByteRingWriter {
    /// Attaches at the producer index currently in shared memory, after checking the pair.
    pub fn attach<M: SharedMemory>(mem: &M, layout: ByteRingLayout) -> Result<Self, ByteRingError> {
        let cons = mem.load_u32(layout.cons);
        let prod = mem.load_u32(layout.prod);
        if prod.wrapping_sub(cons) > layout.size {
            return Err(ByteRingError::IndexOverflow { prod, cons });
        }
        Ok(ByteRingWriter { layout, prod, cons_seen: cons })
    }

    /// Our private producer index.
    pub fn prod(&self) -> u32 {
        self.prod
    }

    /// Free space, after validating the consumer index.
    pub fn space<M: SharedMemory>(&mut self, mem: &M) -> Result<u32, ByteRingError> {
        let cons = mem.load_u32(self.layout.cons);
        // Barrier: orders the consumer-index load before our data writes into the space it
        // frees, so we never overwrite bytes the consumer has not finished reading.
        fence(Ordering::Acquire);
        check_peer(cons, self.cons_seen)?;
        let used = self.prod.wrapping_sub(cons);
        if used > self.layout.size {
            return Err(ByteRingError::IndexOverflow { prod: self.prod, cons });
        }
        self.cons_seen = cons;
        Ok(self.layout.size - used)
    }

    /// Copies as much of `data` as fits and publishes the new producer index. Returns the
    /// number of bytes written; the caller notifies the peer if it is non-zero.
    pub fn write<M: SharedMemory>(&mut self, mem: &M, data: &[u8]) -> Result<usize, ByteRingError> {
        let n = (self.space(mem)? as usize).min(data.len());
        if n == 0 {
            return Ok(0);
        }
        let size = self.layout.size as usize;
        let start = (self.prod as usize) & (size - 1);
        let first = n.min(size - start);
        mem.write_bytes(self.layout.data + start, &data[..first]);
        mem.write_bytes(self.layout.data, &data[first..n]);
        self.prod = self.prod.wrapping_add(n as u32);
        // Write barrier: orders the data writes before the producer-index store.
        fence(Ordering::Release);
        mem.store_u32(self.layout.prod, self.prod);
        Ok(n)
    }
}
