//! The network-device protocol of Xen's `io/netif.h`: tx and rx requests and responses, their
//! flags, the extra-info slots (GSO, multicast, hash), the two rings (256 entries per page),
//! and bounds checks for the packets a hostile frontend describes.

use super::ring::{ring_size, RingProtocol};
use super::wire::{get_u16, get_u32, put_u16, put_u32, WireFormat};

/// `NETTXF_csum_blank`: protocol checksum field is blank.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: packet data has been validated against its checksum.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: an extra-info slot follows this request.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_data_validated`.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;
/// `XEN_NETIF_MAX_TX_SIZE`.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;
/// `XEN_NETIF_NR_SLOTS_MIN`: slots per packet a backend must accept at least.
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// `XEN_NETIF_EXTRA_TYPE_NONE` (never valid).
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_NONE`.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;
/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the response slot of an extra-info request.
pub const NETIF_RSP_NULL: i16 = 1;
/// Size of a tx ring slot (`sizeof(union netif_tx_sring_entry)`).
pub const NETIF_TX_ENTRY_SIZE: usize = 12;
/// Size of an rx ring slot (`sizeof(union netif_rx_sring_entry)`).
pub const NETIF_RX_ENTRY_SIZE: usize = 8;
/// Entries in a one-page tx ring.
pub const NET_TX_RING_SIZE: u32 = ring_size(4096, NETIF_TX_ENTRY_SIZE);
/// Entries in a one-page rx ring.
pub const NET_RX_RING_SIZE: u32 = ring_size(4096, NETIF_RX_ENTRY_SIZE);
const PAGE_SIZE: u32 = 4096;

const _: () = assert!(NET_TX_RING_SIZE == 256 && NET_RX_RING_SIZE == 256);

/// `struct netif_tx_request` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxRequest {
    /// Grant of the buffer frame.
    pub gref: u32,
    /// Offset of the data in the frame.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// First slot of a packet: total packet size; later slots: this fragment's size.
    pub size: u16,
}

impl WireFormat for NetifTxRequest {
    const SIZE: usize = 12;
    type Bytes = [u8; 12];
    const ZERO: [u8; 12] = [0; 12];
    fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        put_u32(&mut b, 0, self.gref);
        put_u16(&mut b, 4, self.offset);
        put_u16(&mut b, 6, self.flags);
        put_u16(&mut b, 8, self.id);
        put_u16(&mut b, 10, self.size);
        b
    }
    fn decode(b: &[u8; 12]) -> Self {
        NetifTxRequest {
            gref: get_u32(b, 0),
            offset: get_u16(b, 4),
            flags: get_u16(b, 6),
            id: get_u16(b, 8),
            size: get_u16(b, 10),
        }
    }
}

impl NetifTxRequest {
    /// Reinterprets the slot as an extra-info slot (it follows a request with
    /// `NETTXF_extra_info`).
    pub fn as_extra_info(&self) -> NetifExtraInfo {
        let b = self.encode();
        let mut e = [0u8; 8];
        e.copy_from_slice(&b[..8]);
        NetifExtraInfo::decode(&e)
    }

    /// The tx slot carrying `extra` (bytes 8..12 zero).
    pub fn from_extra_info(extra: &NetifExtraInfo) -> Self {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&extra.encode());
        Self::decode(&b)
    }
}

/// `struct netif_tx_response` (4 bytes; the slot is 12).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

impl WireFormat for NetifTxResponse {
    const SIZE: usize = 4;
    type Bytes = [u8; 4];
    const ZERO: [u8; 4] = [0; 4];
    fn encode(&self) -> [u8; 4] {
        let mut b = [0u8; 4];
        put_u16(&mut b, 0, self.id);
        put_u16(&mut b, 2, self.status as u16);
        b
    }
    fn decode(b: &[u8; 4]) -> Self {
        NetifTxResponse { id: get_u16(b, 0), status: get_u16(b, 2) as i16 }
    }
}

/// `struct netif_rx_request` (8 bytes): a granted frame posted for the backend to fill.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Padding.
    pub pad: u16,
    /// Grant of the receive frame.
    pub gref: u32,
}

impl WireFormat for NetifRxRequest {
    const SIZE: usize = 8;
    type Bytes = [u8; 8];
    const ZERO: [u8; 8] = [0; 8];
    fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        put_u16(&mut b, 0, self.id);
        put_u16(&mut b, 2, self.pad);
        put_u32(&mut b, 4, self.gref);
        b
    }
    fn decode(b: &[u8; 8]) -> Self {
        NetifRxRequest { id: get_u16(b, 0), pad: get_u16(b, 2), gref: get_u32(b, 4) }
    }
}

/// `struct netif_rx_response` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Offset of the data in the frame.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Negative: `NETIF_RSP_*` error; positive: bytes in this fragment.
    pub status: i16,
}

impl WireFormat for NetifRxResponse {
    const SIZE: usize = 8;
    type Bytes = [u8; 8];
    const ZERO: [u8; 8] = [0; 8];
    fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        put_u16(&mut b, 0, self.id);
        put_u16(&mut b, 2, self.offset);
        put_u16(&mut b, 4, self.flags);
        put_u16(&mut b, 6, self.status as u16);
        b
    }
    fn decode(b: &[u8; 8]) -> Self {
        NetifRxResponse { id: get_u16(b, 0), offset: get_u16(b, 2), flags: get_u16(b, 4), status: get_u16(b, 6) as i16 }
    }
}

impl NetifRxResponse {
    /// Reinterprets the slot as an extra-info slot (it follows a response with
    /// `NETRXF_extra_info`).
    pub fn as_extra_info(&self) -> NetifExtraInfo {
        NetifExtraInfo::decode(&self.encode())
    }

    /// Checks a received fragment: status positive and `offset + status` inside the frame.
    /// Returns the fragment length, or the error status the backend reported.
    pub fn fragment_len(&self) -> Result<u16, NetifError> {
        if self.status < 0 {
            return Err(NetifError::Status(self.status));
        }
        let len = self.status as u16;
        if u32::from(self.offset) + u32::from(len) > PAGE_SIZE {
            return Err(NetifError::FragmentOutsideFrame { offset: self.offset, size: len });
        }
        Ok(len)
    }
}

/// `struct netif_extra_info` (8 bytes): `type`, `flags`, and a 6-byte union.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub type_: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The union `u` as raw bytes (see [`NetifExtraInfo::parse`]).
    pub u: [u8; 6],
}

impl WireFormat for NetifExtraInfo {
    const SIZE: usize = 8;
    type Bytes = [u8; 8];
    const ZERO: [u8; 8] = [0; 8];
    fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.type_;
        b[1] = self.flags;
        b[2..].copy_from_slice(&self.u);
        b
    }
    fn decode(b: &[u8; 8]) -> Self {
        let mut u = [0u8; 6];
        u.copy_from_slice(&b[2..]);
        NetifExtraInfo { type_: b[0], flags: b[1], u }
    }
}

/// A decoded extra-info slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetifExtra {
    /// `u.gso`: segmentation offload.
    Gso {
        /// Maximum segment size.
        size: u16,
        /// `XEN_NETIF_GSO_TYPE_*` (TCPv4 or TCPv6).
        gso_type: u8,
        /// GSO features.
        features: u16,
    },
    /// `u.mcast` with `MCAST_ADD`.
    McastAdd([u8; 6]),
    /// `u.mcast` with `MCAST_DEL`.
    McastDel([u8; 6]),
    /// `u.hash`.
    Hash {
        /// `_XEN_NETIF_CTRL_HASH_TYPE_*`.
        hash_type: u8,
        /// `XEN_NETIF_CTRL_HASH_ALGORITHM_*`.
        algorithm: u8,
        /// The hash value (`value[4]`, little-endian).
        value: u32,
    },
}

impl NetifExtraInfo {
    /// Whether another extra-info slot follows this one.
    pub fn more(&self) -> bool {
        self.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0
    }

    /// Builds the slot for `extra`, with `more` saying whether another extra follows.
    pub fn new(extra: &NetifExtra, more: bool) -> Self {
        let mut u = [0u8; 6];
        let type_ = match *extra {
            NetifExtra::Gso { size, gso_type, features } => {
                put_u16(&mut u, 0, size);
                u[2] = gso_type;
                put_u16(&mut u, 4, features);
                XEN_NETIF_EXTRA_TYPE_GSO
            }
            NetifExtra::McastAdd(mac) => {
                u = mac;
                XEN_NETIF_EXTRA_TYPE_MCAST_ADD
            }
            NetifExtra::McastDel(mac) => {
                u = mac;
                XEN_NETIF_EXTRA_TYPE_MCAST_DEL
            }
            NetifExtra::Hash { hash_type, algorithm, value } => {
                u[0] = hash_type;
                u[1] = algorithm;
                put_u32(&mut u, 2, value);
                XEN_NETIF_EXTRA_TYPE_HASH
            }
        };
        NetifExtraInfo { type_, flags: if more { XEN_NETIF_EXTRA_FLAG_MORE } else { 0 }, u }
    }

    /// Decodes and checks the slot's type.
    pub fn parse(&self) -> Result<NetifExtra, NetifError> {
        let u = &self.u;
        match self.type_ {
            XEN_NETIF_EXTRA_TYPE_GSO => {
                let gso_type = u[2];
                if gso_type != XEN_NETIF_GSO_TYPE_TCPV4 && gso_type != XEN_NETIF_GSO_TYPE_TCPV6 {
                    return Err(NetifError::BadGsoType(gso_type));
                }
                Ok(NetifExtra::Gso { size: get_u16(u, 0), gso_type, features: get_u16(u, 4) })
            }
            XEN_NETIF_EXTRA_TYPE_MCAST_ADD => Ok(NetifExtra::McastAdd(*u)),
            XEN_NETIF_EXTRA_TYPE_MCAST_DEL => Ok(NetifExtra::McastDel(*u)),
            XEN_NETIF_EXTRA_TYPE_HASH => {
                Ok(NetifExtra::Hash { hash_type: u[0], algorithm: u[1], value: get_u32(u, 2) })
            }
            other => Err(NetifError::BadExtraType(other)),
        }
    }
}

/// The tx ring protocol.
pub struct NetifTx;
impl RingProtocol for NetifTx {
    type Request = NetifTxRequest;
    type Response = NetifTxResponse;
    const ENTRY_SIZE: usize = NETIF_TX_ENTRY_SIZE;
}

/// The rx ring protocol.
pub struct NetifRx;
impl RingProtocol for NetifRx {
    type Request = NetifRxRequest;
    type Response = NetifRxResponse;
    const ENTRY_SIZE: usize = NETIF_RX_ENTRY_SIZE;
}

/// A malformed packet or slot from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetifError {
    /// A fragment reaches past the end of its 4 KiB frame.
    FragmentOutsideFrame {
        /// Offset in the frame.
        offset: u16,
        /// Fragment size.
        size: u16,
    },
    /// The packet uses more slots than the backend accepts.
    TooManySlots(usize),
    /// The fragments add up to more than the first slot's total size.
    SizeMismatch {
        /// Total announced in the first slot.
        total: u32,
        /// Sum of the later fragments.
        fragments: u32,
    },
    /// An extra-info slot of unknown type.
    BadExtraType(u8),
    /// A GSO extra with an unknown GSO type.
    BadGsoType(u8),
    /// A response reported this error status.
    Status(i16),
}

/// Incremental checker for one tx packet as a backend consumes its slots: the first request
/// (with the total size), its extra-info slots, then the fragments while `NETTXF_more_data`.
#[derive(Clone, Copy, Debug)]
pub struct TxPacketChecker {
    max_slots: usize,
    slots: usize,
    total: u32,
    fragments: u32,
    first_offset: u32,
    expect_extra: bool,
    more_data: bool,
    complete: bool,
}

/// What [`TxPacketChecker::push`] found in the slot it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxSlot {
    /// A data slot (the first one or a fragment).
    Data,
    /// An extra-info slot.
    Extra(NetifExtra),
}

impl TxPacketChecker {
    /// A checker accepting at most `max_slots` slots (data and extra) per packet; backends must
    /// accept at least `XEN_NETIF_NR_SLOTS_MIN`.
    pub fn new(max_slots: usize) -> Self {
        TxPacketChecker {
            max_slots,
            slots: 0,
            total: 0,
            fragments: 0,
            first_offset: 0,
            expect_extra: false,
            more_data: false,
            complete: false,
        }
    }

    /// Whether the last slot of the packet has been pushed (and the packet checked).
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    /// Total packet size announced by the first slot.
    pub fn total(&self) -> u32 {
        self.total
    }
    /// Slots consumed so far.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Feeds the next slot. After the packet completes, the next push starts a new packet.
    pub fn push(&mut self, req: &NetifTxRequest) -> Result<TxSlot, NetifError> {
        if self.complete {
            *self = Self::new(self.max_slots);
        }
        self.slots += 1;
        if self.slots > self.max_slots {
            return Err(NetifError::TooManySlots(self.slots));
        }
        let slot = if self.expect_extra {
            let extra = req.as_extra_info();
            let parsed = extra.parse()?;
            self.expect_extra = extra.more();
            TxSlot::Extra(parsed)
        } else {
            if self.slots == 1 {
                self.total = u32::from(req.size);
                self.first_offset = u32::from(req.offset);
                self.expect_extra = req.flags & NETTXF_EXTRA_INFO != 0;
            } else {
                if u32::from(req.offset) + u32::from(req.size) > PAGE_SIZE {
                    return Err(NetifError::FragmentOutsideFrame { offset: req.offset, size: req.size });
                }
                // Bounded by the packet's total (checked when it ends); saturating so that a
                // peer's sizes can never wrap the sum past that check.
                self.fragments = self.fragments.saturating_add(u32::from(req.size));
            }
            self.more_data = req.flags & NETTXF_MORE_DATA != 0;
            TxSlot::Data
        };
        if !self.expect_extra && !self.more_data {
            self.finish()?;
            self.complete = true;
        }
        Ok(slot)
    }

    fn finish(&self) -> Result<(), NetifError> {
        if self.fragments > self.total {
            return Err(NetifError::SizeMismatch { total: self.total, fragments: self.fragments });
        }
        let first = self.total - self.fragments;
        if self.first_offset + first > PAGE_SIZE {
            return Err(NetifError::FragmentOutsideFrame { offset: self.first_offset as u16, size: first as u16 });
        }
        Ok(())
    }
}
