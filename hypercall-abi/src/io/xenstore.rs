//! The xenstore wire protocol of Xen's `io/xs_wire.h`: message types, error strings, the
//! `xsd_sockmsg` header, the shared ring page, an incremental message parser that copes with
//! messages split across ring reads and the ring boundary, and an encoder.

use super::byte_ring::{ByteRingError, ByteRingLayout, ByteRingReader, ByteRingWriter};
use super::mem::SharedMemory;
use super::wire::{get_u32, put_u32, WireFormat};

/// Message types (`enum xsd_sockmsg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XsType {
    /// `XS_CONTROL` (alias `XS_DEBUG`).
    Control = 0,
    /// `XS_DIRECTORY`.
    Directory = 1,
    /// `XS_READ`.
    Read = 2,
    /// `XS_GET_PERMS`.
    GetPerms = 3,
    /// `XS_WATCH`.
    Watch = 4,
    /// `XS_UNWATCH`.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE`.
    Introduce = 8,
    /// `XS_RELEASE`.
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`.
    Write = 11,
    /// `XS_MKDIR`.
    Mkdir = 12,
    /// `XS_RM`.
    Rm = 13,
    /// `XS_SET_PERMS`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`.
    WatchEvent = 15,
    /// `XS_ERROR`.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17,
    /// `XS_RESUME`.
    Resume = 18,
    /// `XS_SET_TARGET`.
    SetTarget = 19,
    /// `XS_RESET_WATCHES` (20, `XS_RESTRICT`, was removed).
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22,
    /// `XS_INVALID`: guaranteed never to be a valid type.
    Invalid = 0xffff,
}

/// `XS_TYPE_COUNT`: number of valid type values (including the removed 20).
pub const XS_TYPE_COUNT: u32 = 23;

impl XsType {
    /// Every valid type, in numeric order (without `Invalid`).
    pub const ALL: [XsType; 22] = [
        XsType::Control,
        XsType::Directory,
        XsType::Read,
        XsType::GetPerms,
        XsType::Watch,
        XsType::Unwatch,
        XsType::TransactionStart,
        XsType::TransactionEnd,
        XsType::Introduce,
        XsType::Release,
        XsType::GetDomainPath,
        XsType::Write,
        XsType::Mkdir,
        XsType::Rm,
        XsType::SetPerms,
        XsType::WatchEvent,
        XsType::Error,
        XsType::IsDomainIntroduced,
        XsType::Resume,
        XsType::SetTarget,
        XsType::ResetWatches,
        XsType::DirectoryPart,
    ];

    /// Decodes a wire type; `None` for the removed 20, `XS_INVALID` and anything unknown.
    pub fn from_u32(v: u32) -> Option<XsType> {
        XsType::ALL.iter().copied().find(|t| *t as u32 == v)
    }
}

/// `xsd_errors[]`: errno value and name, in the header's order (new ones are appended there).
/// The numbers are Linux's errno values, which is what the header's `XSD_ERROR(x)` expands to.
pub const XSD_ERRORS: [(i32, &str); 16] = [
    (22, "EINVAL"),
    (13, "EACCES"),
    (17, "EEXIST"),
    (21, "EISDIR"),
    (2, "ENOENT"),
    (12, "ENOMEM"),
    (28, "ENOSPC"),
    (5, "EIO"),
    (39, "ENOTEMPTY"),
    (38, "ENOSYS"),
    (30, "EROFS"),
    (16, "EBUSY"),
    (11, "EAGAIN"),
    (106, "EISCONN"),
    (7, "E2BIG"),
    (1, "EPERM"),
];

/// The errno for an error string from an `XS_ERROR` payload.
pub fn errno_from_name(name: &[u8]) -> Option<i32> {
    XSD_ERRORS.iter().find(|(_, n)| n.as_bytes() == name).map(|(e, _)| *e)
}

/// The error string for an errno (`EINVAL` for unknown ones, as xenstored does).
pub fn error_name(errno: i32) -> &'static str {
    XSD_ERRORS.iter().find(|(e, _)| *e == errno).map_or("EINVAL", |(_, n)| n)
}

/// `XS_WRITE_NONE`.
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";
/// `XS_WATCH_PATH`: index of the path in a watch event.
pub const XS_WATCH_PATH: u32 = 0;
/// `XS_WATCH_TOKEN`: index of the token in a watch event.
pub const XS_WATCH_TOKEN: u32 = 1;
/// `XENSTORE_RING_SIZE`.
pub const XENSTORE_RING_SIZE: u32 = 1024;
/// `XENSTORE_PAYLOAD_MAX`: longer messages kill the connection.
pub const XENSTORE_PAYLOAD_MAX: u32 = 4096;
/// `XENSTORE_ABS_PATH_MAX`.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `XENSTORE_ERROR_NONE`.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`.
pub const XENSTORE_ERROR_PROTO: u32 = 3;
/// `sizeof(struct xsd_sockmsg)`.
pub const XS_HEADER_SIZE: usize = 16;
/// Largest legal message: header plus `XENSTORE_PAYLOAD_MAX`.
pub const XS_MAX_MESSAGE: usize = XS_HEADER_SIZE + XENSTORE_PAYLOAD_MAX as usize;

/// `struct xsd_sockmsg`: the header before every message's payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `XS_*` (raw: unknown values are the receiver's to refuse).
    pub type_: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 if none.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl WireFormat for XsdSockmsg {
    const SIZE: usize = XS_HEADER_SIZE;
    type Bytes = [u8; 16];
    const ZERO: [u8; 16] = [0; 16];
    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        put_u32(&mut b, 0, self.type_);
        put_u32(&mut b, 4, self.req_id);
        put_u32(&mut b, 8, self.tx_id);
        put_u32(&mut b, 12, self.len);
        b
    }
    fn decode(b: &[u8; 16]) -> Self {
        XsdSockmsg { type_: get_u32(b, 0), req_id: get_u32(b, 4), tx_id: get_u32(b, 8), len: get_u32(b, 12) }
    }
}

/// `struct xenstore_domain_interface`, at offset 0 of the store page.
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests to xenstored.
    pub req: [u8; XENSTORE_RING_SIZE as usize],
    /// Replies and watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE as usize],
    /// Written by xenstored.
    pub req_cons: u32,
    /// Written by the guest.
    pub req_prod: u32,
    /// Written by the guest.
    pub rsp_cons: u32,
    /// Written by xenstored.
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*`.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}

const _: () = assert!(core::mem::size_of::<XenstoreDomainInterface>() == 2076);

/// The request direction of the store page.
pub const XS_REQ_RING: ByteRingLayout = ByteRingLayout { data: 0, size: XENSTORE_RING_SIZE, cons: 2048, prod: 2052 };
/// The response direction of the store page.
pub const XS_RSP_RING: ByteRingLayout = ByteRingLayout { data: 1024, size: XENSTORE_RING_SIZE, cons: 2056, prod: 2060 };

/// Why a xenstore message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// `len` exceeds `XENSTORE_PAYLOAD_MAX`: a protocol violation that ends the connection.
    PayloadTooLong(u32),
    /// The output buffer cannot hold the encoded message.
    BufferTooSmall,
    /// An argument that must be NUL-terminated contains a NUL.
    EmbeddedNul,
    /// A type value that is not a valid `XS_*`.
    UnknownType(u32),
    /// The payload does not have the shape its type requires.
    Malformed,
    /// A path is too long or contains a character xenstore refuses.
    BadPath,
    /// The ring's indices were invalid.
    Ring(ByteRingError),
}

impl From<ByteRingError> for XsError {
    fn from(e: ByteRingError) -> Self {
        XsError::Ring(e)
    }
}

/// A complete message borrowed from a [`MessageReader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header (`len == payload.len()`).
    pub header: XsdSockmsg,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The message type, if valid.
    pub fn kind(&self) -> Result<XsType, XsError> {
        XsType::from_u32(self.header.type_).ok_or(XsError::UnknownType(self.header.type_))
    }

    /// The payload split at NULs: each NUL-terminated string, then any unterminated tail
    /// (e.g. a `WRITE` value or a `READ` reply) if non-empty.
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> {
        let p = self.payload;
        let terminated = p.last() == Some(&0);
        let body = if terminated { &p[..p.len() - 1] } else { p };
        let empty = p.is_empty();
        body.split(|&b| b == 0).filter(move |_| !empty)
    }

    /// For `XS_ERROR`: the errno its `E...` string names (`None` if not an error or unknown).
    pub fn errno(&self) -> Option<i32> {
        if self.header.type_ != XsType::Error as u32 {
            return None;
        }
        errno_from_name(self.strings().next()?)
    }

    /// For `XS_WATCH_EVENT`: `(path, token)`.
    pub fn watch_event(&self) -> Result<(&'a [u8], &'a [u8]), XsError> {
        if self.header.type_ != XsType::WatchEvent as u32 || self.payload.last() != Some(&0) {
            return Err(XsError::Malformed);
        }
        let mut it = self.strings();
        match (it.next(), it.next(), it.next()) {
            (Some(path), Some(token), None) => Ok((path, token)),
            _ => Err(XsError::Malformed),
        }
    }
}

/// Incremental parser for a stream of messages: feed it bytes as they come off the ring (in
/// any chunking, e.g. split at the ring's wrap point or mid-header); it holds at most one
/// message, validates the header as soon as it is complete, and refuses a payload longer than
/// `XENSTORE_PAYLOAD_MAX` before reading any of it. Needs no allocator.
pub struct MessageReader {
    buf: [u8; XS_MAX_MESSAGE],
    have: usize,
    failed: Option<XsError>,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageReader {
    /// An empty parser.
    pub const fn new() -> Self {
        MessageReader { buf: [0; XS_MAX_MESSAGE], have: 0, failed: None }
    }

    fn header(&self) -> Option<XsdSockmsg> {
        if self.have < XS_HEADER_SIZE {
            return None;
        }
        let mut h = [0u8; XS_HEADER_SIZE];
        h.copy_from_slice(&self.buf[..XS_HEADER_SIZE]);
        Some(XsdSockmsg::decode(&h))
    }

    /// Bytes still missing from the current message (0 when one is complete).
    pub fn needed(&self) -> usize {
        match self.header() {
            None => XS_HEADER_SIZE - self.have,
            Some(h) => (XS_HEADER_SIZE + h.len as usize).saturating_sub(self.have),
        }
    }

    /// Consumes bytes from `input`, never past the end of the current message; returns how many
    /// it took. Once the peer has violated the protocol every call returns the same error.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, XsError> {
        let mut used = 0;
        loop {
            if let Some(e) = self.failed {
                return Err(e);
            }
            let want = self.needed().min(input.len() - used);
            if want == 0 {
                return Ok(used);
            }
            self.buf[self.have..self.have + want].copy_from_slice(&input[used..used + want]);
            self.have += want;
            used += want;
            self.check_header();
        }
    }

    /// Lets `fill` write directly into the space still missing (e.g. a ring read), repeating
    /// while it makes progress. Returns whether a message is complete.
    pub fn fill_from<E>(&mut self, mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>) -> Result<bool, FillError<E>> {
        loop {
            if let Some(e) = self.failed {
                return Err(FillError::Protocol(e));
            }
            let want = self.needed();
            if want == 0 {
                return Ok(true);
            }
            let got = fill(&mut self.buf[self.have..self.have + want]).map_err(FillError::Source)?;
            if got == 0 {
                return Ok(false);
            }
            self.have += got.min(want);
            self.check_header();
        }
    }

    fn check_header(&mut self) {
        if let Some(h) = self.header() {
            if h.len > XENSTORE_PAYLOAD_MAX {
                self.failed = Some(XsError::PayloadTooLong(h.len));
            }
        }
    }

    /// The complete message, if there is one.
    pub fn message(&self) -> Option<Message<'_>> {
        let h = self.header()?;
        if self.failed.is_some() || self.needed() != 0 {
            return None;
        }
        Some(Message { header: h, payload: &self.buf[XS_HEADER_SIZE..self.have] })
    }

    /// Drops the complete message so the next one can be read (no effect otherwise).
    pub fn consume(&mut self) {
        if self.message().is_some() {
            self.have = 0;
        }
    }

    /// Forgets everything, including a protocol error (after the connection was reset).
    pub fn reset(&mut self) {
        self.have = 0;
        self.failed = None;
    }
}

/// Error of [`MessageReader::fill_from`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillError<E> {
    /// The byte source failed.
    Source(E),
    /// The message broke the protocol.
    Protocol(XsError),
}

/// Encodes a message: header, each of `args` followed by a NUL, then `tail` unterminated
/// (a `WRITE` value). Returns the encoded length.
pub fn encode_message(
    out: &mut [u8],
    kind: XsType,
    req_id: u32,
    tx_id: u32,
    args: &[&[u8]],
    tail: &[u8],
) -> Result<usize, XsError> {
    let mut len = tail.len();
    for a in args {
        if a.contains(&0) {
            return Err(XsError::EmbeddedNul);
        }
        len += a.len() + 1;
    }
    if len > XENSTORE_PAYLOAD_MAX as usize {
        return Err(XsError::PayloadTooLong(len.min(u32::MAX as usize) as u32));
    }
    let total = XS_HEADER_SIZE + len;
    let out = out.get_mut(..total).ok_or(XsError::BufferTooSmall)?;
    let h = XsdSockmsg { type_: kind as u32, req_id, tx_id, len: len as u32 };
    out[..XS_HEADER_SIZE].copy_from_slice(&h.encode());
    let mut at = XS_HEADER_SIZE;
    for a in args {
        out[at..at + a.len()].copy_from_slice(a);
        out[at + a.len()] = 0;
        at += a.len() + 1;
    }
    out[at..].copy_from_slice(tail);
    Ok(total)
}

/// Checks a path as xenstored's `is_valid_nodename` does: length within the absolute/relative
/// limit, only alphanumerics and `-/_@`, and no empty component (`//`, or a trailing `/`
/// other than the root's).
pub fn validate_path(path: &[u8]) -> Result<(), XsError> {
    let max = if path.first() == Some(&b'/') { XENSTORE_ABS_PATH_MAX } else { XENSTORE_REL_PATH_MAX };
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || b"-/_@".contains(c);
    let empty_component = path.windows(2).any(|w| w == b"//") || (path.len() > 1 && path.ends_with(b"/"));
    if path.is_empty() || path.len() > max || !path.iter().all(ok_char) || empty_component {
        return Err(XsError::BadPath);
    }
    Ok(())
}

/// The guest's end of the store ring: sends requests, receives replies and watch events.
pub struct XsRingFront<M: SharedMemory> {
    mem: M,
    req: ByteRingWriter,
    rsp: ByteRingReader,
}

impl<M: SharedMemory> XsRingFront<M> {
    /// Attaches to the store page at the indices found there.
    pub fn attach(mem: M) -> Result<Self, XsError> {
        let req = ByteRingWriter::attach(&mem, XS_REQ_RING)?;
        let rsp = ByteRingReader::attach(&mem, XS_RSP_RING)?;
        Ok(XsRingFront { mem, req, rsp })
    }
    /// Writes as much of `bytes` as fits (a message may take several writes); notify
    /// xenstored if the result is non-zero.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError> {
        Ok(self.req.write(&self.mem, bytes)?)
    }
    /// Moves available reply bytes into `reader`; true once it holds a complete message.
    pub fn read_into(&mut self, reader: &mut MessageReader) -> Result<bool, XsError> {
        let (mem, rsp) = (&self.mem, &mut self.rsp);
        reader.fill_from(|buf| rsp.read(mem, buf)).map_err(unfill)
    }
}

/// xenstored's end of a store ring: receives requests, sends replies and watch events.
pub struct XsRingBack<M: SharedMemory> {
    mem: M,
    req: ByteRingReader,
    rsp: ByteRingWriter,
}

impl<M: SharedMemory> XsRingBack<M> {
    /// Attaches to the store page at the indices found there.
    pub fn attach(mem: M) -> Result<Self, XsError> {
        let req = ByteRingReader::attach(&mem, XS_REQ_RING)?;
        let rsp = ByteRingWriter::attach(&mem, XS_RSP_RING)?;
        Ok(XsRingBack { mem, req, rsp })
    }
    /// Writes as much of `bytes` as fits; notify the guest if the result is non-zero.
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError> {
        Ok(self.rsp.write(&self.mem, bytes)?)
    }
    /// Moves available request bytes into `reader`; true once it holds a complete message.
    pub fn read_into(&mut self, reader: &mut MessageReader) -> Result<bool, XsError> {
        let (mem, req) = (&self.mem, &mut self.req);
        reader.fill_from(|buf| req.read(mem, buf)).map_err(unfill)
    }
}

fn unfill(e: FillError<ByteRingError>) -> XsError {
    match e {
        FillError::Source(e) => XsError::Ring(e),
        FillError::Protocol(e) => e,
    }
}
