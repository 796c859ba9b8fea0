//! `multicall` (`xen.h`): several hypercalls in one entry.

/// `struct multicall_entry` (64 bytes). Xen writes each call's return value to `result`;
/// the multicall itself returns 0 unless the list cannot be read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u64,
    /// OUT: the call's return value (a `long`, stored as its two's-complement bits).
    pub result: u64,
    /// Arguments 1-6.
    pub args: [u64; 6],
}

impl MulticallEntry {
    /// An entry for hypercall `op` with `args` (missing ones are 0).
    pub fn new(op: u64, args: &[u64]) -> Self {
        let mut e = Self { op, ..Self::default() };
        let n = args.len().min(6);
        e.args[..n].copy_from_slice(&args[..n]);
        e
    }

    /// The result as the signed value the hypercall returned.
    pub const fn result_signed(&self) -> i64 {
        self.result as i64
    }
}

const _: () = assert!(core::mem::size_of::<MulticallEntry>() == 64);
const _: () = assert!(core::mem::offset_of!(MulticallEntry, args) == 16);
