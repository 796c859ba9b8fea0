//! The PV console ring of Xen's `io/console.h` (`struct xencons_interface`): a 1024-byte input
//! buffer (backend to guest) and a 2048-byte output buffer (guest to backend) with free-running
//! indices masked by the buffer size.

use super::byte_ring::{ByteRingError, ByteRingLayout, ByteRingReader, ByteRingWriter};
use super::mem::SharedMemory;

/// `sizeof(in)`.
pub const XENCONS_IN_SIZE: u32 = 1024;
/// `sizeof(out)`.
pub const XENCONS_OUT_SIZE: u32 = 2048;
/// `sizeof(struct xencons_interface)`.
pub const XENCONS_INTERFACE_SIZE: usize = 3088;

/// `struct xencons_interface`, at offset 0 of the console page.
#[repr(C)]
pub struct XenconsInterface {
    /// Backend to guest.
    pub in_: [u8; XENCONS_IN_SIZE as usize],
    /// Guest to backend.
    pub out: [u8; XENCONS_OUT_SIZE as usize],
    /// Written by the guest.
    pub in_cons: u32,
    /// Written by the backend.
    pub in_prod: u32,
    /// Written by the backend.
    pub out_cons: u32,
    /// Written by the guest.
    pub out_prod: u32,
}

const _: () = assert!(core::mem::size_of::<XenconsInterface>() == XENCONS_INTERFACE_SIZE);

/// `MASK_XENCONS_IDX(idx, in)`.
pub const fn mask_in(idx: u32) -> u32 {
    idx & (XENCONS_IN_SIZE - 1)
}

/// `MASK_XENCONS_IDX(idx, out)`.
pub const fn mask_out(idx: u32) -> u32 {
    idx & (XENCONS_OUT_SIZE - 1)
}

/// The input direction (`in[]`, `in_cons`, `in_prod`).
pub const CONSOLE_IN: ByteRingLayout = ByteRingLayout { data: 0, size: XENCONS_IN_SIZE, cons: 3072, prod: 3076 };
/// The output direction (`out[]`, `out_cons`, `out_prod`).
pub const CONSOLE_OUT: ByteRingLayout = ByteRingLayout { data: 1024, size: XENCONS_OUT_SIZE, cons: 3080, prod: 3084 };

/// The guest's end: writes output, reads input.
pub struct ConsoleFront<M: SharedMemory> {
    mem: M,
    out: ByteRingWriter,
    input: ByteRingReader,
}

impl<M: SharedMemory> ConsoleFront<M> {
    /// Attaches to the console page at the indices found there.
    pub fn attach(mem: M) -> Result<Self, ByteRingError> {
        let out = ByteRingWriter::attach(&mem, CONSOLE_OUT)?;
        let input = ByteRingReader::attach(&mem, CONSOLE_IN)?;
        Ok(ConsoleFront { mem, out, input })
    }
    /// Writes as much of `data` as fits; notify the backend if the result is non-zero.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, ByteRingError> {
        self.out.write(&self.mem, data)
    }
    /// Reads pending input; notify the backend if the result is non-zero.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ByteRingError> {
        self.input.read(&self.mem, buf)
    }
}

/// The backend's end (xenconsoled, or the hypervisor's console): reads output, writes input.
pub struct ConsoleBack<M: SharedMemory> {
    mem: M,
    out: ByteRingReader,
    input: ByteRingWriter,
}

impl<M: SharedMemory> ConsoleBack<M> {
    /// Attaches to the console page at the indices found there.
    pub fn attach(mem: M) -> Result<Self, ByteRingError> {
        let out = ByteRingReader::attach(&mem, CONSOLE_OUT)?;
        let input = ByteRingWriter::attach(&mem, CONSOLE_IN)?;
        Ok(ConsoleBack { mem, out, input })
    }
    /// Reads the guest's output; a hostile guest's indices are reported, never looped on.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ByteRingError> {
        self.out.read(&self.mem, buf)
    }
    /// Queues keyboard input for the guest.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, ByteRingError> {
        self.input.write(&self.mem, data)
    }
}
