//! The block-device protocol of Xen's `io/blkif.h`: requests (read, write, barrier, flush,
//! discard, indirect), responses, the 112-byte ring slot (32 entries per page), and typed
//! validation of everything a frontend puts on the ring.

use super::ring::{ring_size, RingProtocol};
use super::wire::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64, WireFormat};

/// `BLKIF_OP_READ`.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER`.
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE`.
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_RESERVED_1` (historically used by blktap; never valid on the wire).
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// `BLKIF_OP_DISCARD`.
pub const BLKIF_OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT`.
pub const BLKIF_OP_INDIRECT: u8 = 6;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// Segment descriptors per indirect page (4096 / `sizeof(struct blkif_request_segment)`).
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize = 512;
/// `BLKIF_DISCARD_SECURE`: bit 0 of a discard request's `flag`.
pub const BLKIF_DISCARD_SECURE: u8 = 1;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;
/// `BLKIF_RSP_ERROR`.
pub const BLKIF_RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_EOPNOTSUPP`.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// `VDISK_CDROM` bit of the backend's `info` key.
pub const VDISK_CDROM: u32 = 1;
/// `VDISK_REMOVABLE`.
pub const VDISK_REMOVABLE: u32 = 2;
/// `VDISK_READONLY`.
pub const VDISK_READONLY: u32 = 4;
/// 512-byte sectors in one 4 KiB frame: `first_sect`/`last_sect` are at most 7.
pub const SECTORS_PER_PAGE: u8 = 8;
/// Size of a blkif ring slot (`sizeof(union blkif_sring_entry)`).
pub const BLKIF_ENTRY_SIZE: usize = 112;
/// Entries in a one-page blkif ring (`__CONST_RING_SIZE(blkif, 4096)`).
pub const BLKIF_RING_SIZE: u32 = ring_size(4096, BLKIF_ENTRY_SIZE);

const _: () = assert!(BLKIF_RING_SIZE == 32);

/// `struct blkif_request_segment`: one granted frame and an inclusive sector range in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestSegment {
    /// Grant reference of the I/O buffer frame.
    pub gref: u32,
    /// First 512-byte sector in the frame (inclusive).
    pub first_sect: u8,
    /// Last 512-byte sector in the frame (inclusive).
    pub last_sect: u8,
    /// The C structure's tail padding, kept so that the discard and indirect requests that
    /// overlay a request slot survive a decode/encode round trip.
    pub pad: [u8; 2],
}

impl BlkifRequestSegment {
    fn decode_at(b: &[u8], off: usize) -> Self {
        BlkifRequestSegment {
            gref: get_u32(b, off),
            first_sect: b[off + 4],
            last_sect: b[off + 5],
            pad: [b[off + 6], b[off + 7]],
        }
    }
    fn encode_at(&self, b: &mut [u8], off: usize) {
        put_u32(b, off, self.gref);
        b[off + 4] = self.first_sect;
        b[off + 5] = self.last_sect;
        b[off + 6] = self.pad[0];
        b[off + 7] = self.pad[1];
    }
    /// Checks `first_sect <= last_sect < 8`; returns the number of sectors covered.
    pub fn sectors(&self) -> Result<u8, BlkifError> {
        if self.first_sect > self.last_sect || self.last_sect >= SECTORS_PER_PAGE {
            return Err(BlkifError::BadSectorRange { first: self.first_sect, last: self.last_sect });
        }
        Ok(self.last_sect - self.first_sect + 1)
    }
}

/// `struct blkif_request` (112 bytes): read, write, barrier and flush requests; discard and
/// indirect requests overlay the same slot (see [`BlkifRequestDiscard`], [`BlkifRequestIndirect`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// Number of valid entries in `seg`.
    pub nr_segments: u8,
    /// Virtual device handle.
    pub handle: u16,
    /// Frontend cookie, echoed in the response.
    pub id: u64,
    /// Start sector (512-byte units).
    pub sector_number: u64,
    /// The data segments.
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

impl WireFormat for BlkifRequest {
    const SIZE: usize = 112;
    type Bytes = [u8; 112];
    const ZERO: [u8; 112] = [0; 112];
    fn encode(&self) -> [u8; 112] {
        let mut b = [0u8; 112];
        b[0] = self.operation;
        b[1] = self.nr_segments;
        put_u16(&mut b, 2, self.handle);
        put_u64(&mut b, 8, self.id);
        put_u64(&mut b, 16, self.sector_number);
        for (i, s) in self.seg.iter().enumerate() {
            s.encode_at(&mut b, 24 + 8 * i);
        }
        b
    }
    fn decode(b: &[u8; 112]) -> Self {
        let mut seg = [BlkifRequestSegment::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST];
        for (i, s) in seg.iter_mut().enumerate() {
            *s = BlkifRequestSegment::decode_at(b, 24 + 8 * i);
        }
        BlkifRequest {
            operation: b[0],
            nr_segments: b[1],
            handle: get_u16(b, 2),
            id: get_u64(b, 8),
            sector_number: get_u64(b, 16),
            seg,
        }
    }
}

/// `struct blkif_request_discard` (32 bytes, overlaying a request slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestDiscard {
    /// `BLKIF_OP_DISCARD`.
    pub operation: u8,
    /// `BLKIF_DISCARD_SECURE` or 0.
    pub flag: u8,
    /// Virtual device handle.
    pub handle: u16,
    /// Frontend cookie.
    pub id: u64,
    /// First sector to discard.
    pub sector_number: u64,
    /// Number of contiguous sectors to discard.
    pub nr_sectors: u64,
}

/// `struct blkif_request_indirect` (64 bytes on x86_64, overlaying a request slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestIndirect {
    /// `BLKIF_OP_INDIRECT`.
    pub operation: u8,
    /// `BLKIF_OP_READ` or `BLKIF_OP_WRITE`.
    pub indirect_op: u8,
    /// Number of segments, described in the indirect pages.
    pub nr_segments: u16,
    /// Frontend cookie.
    pub id: u64,
    /// Start sector.
    pub sector_number: u64,
    /// Virtual device handle.
    pub handle: u16,
    /// Grant references of the pages holding the segment descriptors.
    pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
}

impl BlkifRequest {
    /// Reinterprets the slot as a discard request (what a C backend does with the union).
    pub fn as_discard(&self) -> BlkifRequestDiscard {
        let b = self.encode();
        BlkifRequestDiscard {
            operation: b[0],
            flag: b[1],
            handle: get_u16(&b, 2),
            id: get_u64(&b, 8),
            sector_number: get_u64(&b, 16),
            nr_sectors: get_u64(&b, 24),
        }
    }

    /// Reinterprets the slot as an indirect request.
    pub fn as_indirect(&self) -> BlkifRequestIndirect {
        let b = self.encode();
        let mut indirect_grefs = [0u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
        for (i, g) in indirect_grefs.iter_mut().enumerate() {
            *g = get_u32(&b, 28 + 4 * i);
        }
        BlkifRequestIndirect {
            operation: b[0],
            indirect_op: b[1],
            nr_segments: get_u16(&b, 2),
            id: get_u64(&b, 8),
            sector_number: get_u64(&b, 16),
            handle: get_u16(&b, 24),
            indirect_grefs,
        }
    }

    /// Validates the request a (possibly hostile) frontend put on the ring.
    ///
    /// `max_indirect_segments` is what this backend advertised in
    /// `feature-max-indirect-segments` (0 if it did not: then indirect requests are refused).
    pub fn parse(&self, max_indirect_segments: u32) -> Result<BlkRequest, BlkifError> {
        let op = match self.operation {
            BLKIF_OP_READ => BlkOperation::Read,
            BLKIF_OP_WRITE => BlkOperation::Write,
            BLKIF_OP_WRITE_BARRIER => BlkOperation::WriteBarrier,
            BLKIF_OP_FLUSH_DISKCACHE => BlkOperation::FlushDiskcache,
            BLKIF_OP_DISCARD => {
                let d = self.as_discard();
                d.sector_number.checked_add(d.nr_sectors).ok_or(BlkifError::SectorOverflow)?;
                return Ok(BlkRequest::Discard(d));
            }
            BLKIF_OP_INDIRECT => return self.parse_indirect(max_indirect_segments),
            other => return Err(BlkifError::UnknownOperation(other)),
        };
        let n = usize::from(self.nr_segments);
        // Reads and writes move data, so they need 1..=11 segments; barriers and flushes may
        // carry none (a pure cache flush), as Linux's blkback accepts.
        let min = if matches!(op, BlkOperation::Read | BlkOperation::Write) { 1 } else { 0 };
        if n < min || n > BLKIF_MAX_SEGMENTS_PER_REQUEST {
            return Err(BlkifError::BadSegmentCount(u32::from(self.nr_segments)));
        }
        let mut total: u64 = 0;
        for s in &self.seg[..n] {
            total += u64::from(s.sectors()?);
        }
        self.sector_number.checked_add(total).ok_or(BlkifError::SectorOverflow)?;
        Ok(BlkRequest::Data { op, request: *self, total_sectors: total })
    }

    fn parse_indirect(&self, max_segments: u32) -> Result<BlkRequest, BlkifError> {
        let ind = self.as_indirect();
        let op = match ind.indirect_op {
            BLKIF_OP_READ => BlkOperation::Read,
            BLKIF_OP_WRITE => BlkOperation::Write,
            other => return Err(BlkifError::UnknownIndirectOp(other)),
        };
        let n = u32::from(ind.nr_segments);
        let hard_max = (BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_FRAME) as u32;
        if n == 0 || n > max_segments.min(hard_max) {
            return Err(BlkifError::BadSegmentCount(n));
        }
        Ok(BlkRequest::Indirect { op, request: ind })
    }
}

/// `struct blkif_response` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's `operation`.
    pub operation: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}

impl WireFormat for BlkifResponse {
    const SIZE: usize = 16;
    type Bytes = [u8; 16];
    const ZERO: [u8; 16] = [0; 16];
    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        put_u64(&mut b, 0, self.id);
        b[8] = self.operation;
        put_u16(&mut b, 10, self.status as u16);
        b
    }
    fn decode(b: &[u8; 16]) -> Self {
        BlkifResponse { id: get_u64(b, 0), operation: b[8], status: get_u16(b, 10) as i16 }
    }
}

/// The blkif ring protocol (`DEFINE_RING_TYPES(blkif, ...)`).
pub struct Blkif;

impl RingProtocol for Blkif {
    type Request = BlkifRequest;
    type Response = BlkifResponse;
    const ENTRY_SIZE: usize = BLKIF_ENTRY_SIZE;
}

/// A data operation, as validated by [`BlkifRequest::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkOperation {
    /// Read into the segments.
    Read,
    /// Write from the segments.
    Write,
    /// Write with barrier semantics.
    WriteBarrier,
    /// Flush the disk cache (with an optional write).
    FlushDiskcache,
}

/// A validated request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkRequest {
    /// Read, write, barrier or flush with `nr_segments` checked segments.
    Data {
        /// The operation.
        op: BlkOperation,
        /// The request; `seg[..nr_segments]` are valid.
        request: BlkifRequest,
        /// Sum of the segments' sector counts.
        total_sectors: u64,
    },
    /// A discard of a sector range that does not overflow.
    Discard(BlkifRequestDiscard),
    /// An indirect read or write; segments come from the granted indirect pages.
    Indirect {
        /// Read or Write.
        op: BlkOperation,
        /// The request; `nr_segments` is within the advertised limit.
        request: BlkifRequestIndirect,
    },
}

impl BlkifRequestIndirect {
    /// Number of indirect pages the segments occupy.
    pub fn indirect_pages(&self) -> usize {
        usize::from(self.nr_segments).div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME)
    }

    /// Decodes and checks segment `i` from the mapped indirect page that holds it (page
    /// `i / 512`), copying it out once.
    pub fn segment(&self, page: &[u8; 4096], i: usize) -> Result<BlkifRequestSegment, BlkifError> {
        if i >= usize::from(self.nr_segments) {
            return Err(BlkifError::BadSegmentCount(i as u32));
        }
        let s = BlkifRequestSegment::decode_at(page, (i % BLKIF_SEGS_PER_INDIRECT_FRAME) * 8);
        s.sectors()?;
        Ok(s)
    }
}

/// A request a backend must refuse (answer with `BLKIF_RSP_ERROR` or `EOPNOTSUPP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkifError {
    /// `operation` is not a known `BLKIF_OP_*`.
    UnknownOperation(u8),
    /// `indirect_op` is neither read nor write.
    UnknownIndirectOp(u8),
    /// Segment count out of range for the operation.
    BadSegmentCount(u32),
    /// A segment's sector range is empty or leaves the 4 KiB frame.
    BadSectorRange {
        /// `first_sect`.
        first: u8,
        /// `last_sect`.
        last: u8,
    },
    /// `sector_number` plus the length overflows.
    SectorOverflow,
}
