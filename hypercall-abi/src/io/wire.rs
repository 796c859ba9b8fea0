//! Encoding of `#[repr(C)]` wire structures to and from their exact byte images.
//!
//! Entries are copied between shared memory and private memory as byte arrays and decoded from
//! the private copy (Xen's `RING_COPY_REQUEST` rule: the peer can change the shared copy at any
//! moment, so it is read exactly once). Every field is an integer, so every byte pattern decodes;
//! validation of the decoded values is a separate, typed step in each protocol module.

/// A fixed-size little-endian wire structure.
pub trait WireFormat: Sized + Copy {
    /// Size of the C structure in bytes (`sizeof`).
    const SIZE: usize;
    /// Its byte image, `[u8; SIZE]`.
    type Bytes: AsRef<[u8]> + AsMut<[u8]> + Copy;
    /// An all-zero byte image.
    const ZERO: Self::Bytes;
    /// Encodes into the exact C byte image (padding bytes are zero).
    fn encode(&self) -> Self::Bytes;
    /// Decodes from the C byte image; total (every byte pattern is a value).
    fn decode(bytes: &Self::Bytes) -> Self;
}

/// Reads a little-endian `u16` at `off` (callers index fixed-size images in bounds).
#[inline]
pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Reads a little-endian `u32` at `off`.
#[inline]
pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads a little-endian `u64` at `off`.
#[inline]
pub(crate) fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(x)
}

/// Writes a little-endian `u16` at `off`.
#[inline]
pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian `u32` at `off`.
#[inline]
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian `u64` at `off`.
#[inline]
pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
