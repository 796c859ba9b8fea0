//! The generic shared I/O ring of Xen's `io/ring.h`: the shared page header, a typed front ring
//! and back ring with their private indices, flow control, and the notify-avoidance protocol.
//!
//! Everything here follows `DEFINE_RING_TYPES` and the `RING_*` macros; the differences are the
//! ones a hostile peer forces: every producer index read from shared memory is validated (it may
//! neither run ahead of what the protocol allows nor move backwards) and a violation is returned
//! as a [`RingError`] rather than looped on, and every entry is copied out exactly once before
//! it is decoded.

use core::marker::PhantomData;
use core::sync::atomic::{fence, Ordering};

use super::mem::SharedMemory;
use super::wire::WireFormat;

/// `RING_IDX`: a free-running 32-bit index; the slot is `idx & (size - 1)`.
pub type RingIdx = u32;

/// Byte offset of `req_prod` in the shared ring (written by the frontend).
pub const REQ_PROD_OFFSET: usize = 0;
/// Byte offset of `req_event` (written by the backend).
pub const REQ_EVENT_OFFSET: usize = 4;
/// Byte offset of `rsp_prod` (written by the backend).
pub const RSP_PROD_OFFSET: usize = 8;
/// Byte offset of `rsp_event` (written by the frontend).
pub const RSP_EVENT_OFFSET: usize = 12;
/// Byte offset of the protocol-private `pvt` union (netif: `smartpoll_active`).
pub const PVT_OFFSET: usize = 16;
/// Byte offset of `ring[]`: the size of the shared ring header.
pub const RING_OFFSET: usize = 64;

/// The 64-byte header of every shared ring page (`struct __name##_sring` before `ring[]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SringHeader {
    /// Requests produced by the frontend.
    pub req_prod: RingIdx,
    /// Backend asks to be notified when `req_prod` passes this index.
    pub req_event: RingIdx,
    /// Responses produced by the backend.
    pub rsp_prod: RingIdx,
    /// Frontend asks to be notified when `rsp_prod` passes this index.
    pub rsp_event: RingIdx,
    /// Protocol-private bytes (`pvt.pvt_pad`; netif uses byte 0 as `smartpoll_active`).
    pub pvt: [u8; 4],
    /// Padding up to the 64-byte header (`__pad`).
    pub pad: [u8; 44],
}

const _: () = assert!(core::mem::size_of::<SringHeader>() == RING_OFFSET);

/// A ring protocol: the request and response types sharing one slot (`DEFINE_RING_TYPES`).
pub trait RingProtocol {
    /// Request type (front to back).
    type Request: WireFormat;
    /// Response type (back to front).
    type Response: WireFormat;
    /// `sizeof(union __name##_sring_entry)`: the larger of the two, padded.
    const ENTRY_SIZE: usize;
}

/// `P::ENTRY_SIZE`, checked at compile time to hold a request and a response: a protocol
/// with a smaller slot would have each write spill into the next slot.
const fn entry_size<P: RingProtocol>() -> usize {
    const {
        assert!(
            P::ENTRY_SIZE >= <P::Request as WireFormat>::SIZE && P::ENTRY_SIZE >= <P::Response as WireFormat>::SIZE,
            "RingProtocol::ENTRY_SIZE is smaller than a request or a response"
        )
    };
    P::ENTRY_SIZE
}

/// `__RD32`: rounds down to a power of two (0 stays 0).
pub const fn round_down_pow2(x: u32) -> u32 {
    if x == 0 {
        0
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// `__CONST_RING_SIZE`: entries in a ring of `bytes` shared bytes with `entry_size`-byte slots.
pub const fn ring_size(bytes: usize, entry_size: usize) -> u32 {
    if bytes <= RING_OFFSET || entry_size == 0 {
        return 0;
    }
    let n = (bytes - RING_OFFSET) / entry_size;
    let n = if n > u32::MAX as usize { u32::MAX } else { n as u32 };
    // A ring larger than 2^31 entries would break the signed "moved backwards" test.
    let n = round_down_pow2(n);
    if n > 1 << 30 {
        1 << 30
    } else {
        n
    }
}

/// Why a ring operation failed. Every variant caused by the peer names the offending index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The shared memory cannot hold the header and at least one entry.
    TooSmall,
    /// The ring has no free request slot (`RING_FULL`).
    Full,
    /// A response was pushed with no consumed, unanswered request to answer.
    NoOutstandingRequest,
    /// The peer's producer index ran further ahead than the protocol allows.
    ProducerOverflow {
        /// The index read from shared memory.
        prod: RingIdx,
        /// The largest value the protocol allows at this point.
        limit: RingIdx,
    },
    /// The peer's producer index moved backwards from a value it had already published.
    ProducerBackwards {
        /// The index read from shared memory.
        prod: RingIdx,
        /// The previously observed value.
        last: RingIdx,
    },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RingError::TooSmall => write!(f, "shared memory too small for one ring entry"),
            RingError::Full => write!(f, "ring full"),
            RingError::NoOutstandingRequest => write!(f, "no consumed request to answer"),
            RingError::ProducerOverflow { prod, limit } => {
                write!(f, "peer producer index {prod:#x} beyond limit {limit:#x}")
            }
            RingError::ProducerBackwards { prod, last } => {
                write!(f, "peer producer index {prod:#x} moved back from {last:#x}")
            }
        }
    }
}

/// Validates a producer index just read from shared memory.
///
/// `last` is the previously observed (validated) value and `base` the lowest index still
/// meaningful (the consumer's or the answered position); at most `room` entries may lie between
/// `base` and the new index.
fn check_prod(prod: RingIdx, last: RingIdx, base: RingIdx, room: u32) -> Result<(), RingError> {
    if (prod.wrapping_sub(last) as i32) < 0 {
        return Err(RingError::ProducerBackwards { prod, last });
    }
    if prod.wrapping_sub(base) > room {
        return Err(RingError::ProducerOverflow { prod, limit: base.wrapping_add(room) });
    }
    Ok(())
}

/// Geometry shared by both ends.
struct Geometry<M> {
    mem: M,
    nr_ents: u32,
}

impl<M: SharedMemory> Geometry<M> {
    fn new(mem: M, entry_size: usize) -> Result<Self, RingError> {
        let nr_ents = ring_size(mem.size(), entry_size);
        if nr_ents == 0 {
            return Err(RingError::TooSmall);
        }
        Ok(Geometry { mem, nr_ents })
    }

    fn slot_offset(&self, idx: RingIdx, entry_size: usize) -> usize {
        RING_OFFSET + (idx & (self.nr_ents - 1)) as usize * entry_size
    }

    fn read<T: WireFormat>(&self, idx: RingIdx, entry_size: usize) -> T {
        let mut bytes = T::ZERO;
        self.mem.read_bytes(self.slot_offset(idx, entry_size), bytes.as_mut());
        T::decode(&bytes)
    }

    fn write<T: WireFormat>(&self, idx: RingIdx, entry_size: usize, value: &T) {
        let bytes = value.encode();
        self.mem.write_bytes(self.slot_offset(idx, entry_size), bytes.as_ref());
    }

    /// Publishes `new` at `prod_off` and decides, from the peer's event index at `event_off`,
    /// whether the peer must be notified (`RING_PUSH_*_AND_CHECK_NOTIFY`).
    fn push_and_check(&self, prod_off: usize, event_off: usize, old: RingIdx, new: RingIdx) -> bool {
        self.publish(prod_off, new);
        // Full barrier (xen_mb): orders the producer-index store above before the load of the
        // peer's event index below. Without it the load could be satisfied before the store is
        // visible, and a peer that set its event index and re-checked in between would sleep
        // on work we never notify it about.
        fence(Ordering::SeqCst);
        let event = self.mem.load_u32(event_off);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    fn publish(&self, prod_off: usize, new: RingIdx) {
        // Write barrier (xen_wmb): orders our entry writes before the producer-index store, so
        // a peer that sees the new index also sees the entries it covers.
        fence(Ordering::Release);
        self.mem.store_u32(prod_off, new);
    }

    fn load_prod(&self, prod_off: usize) -> RingIdx {
        let prod = self.mem.load_u32(prod_off);
        // Read barrier (xen_rmb): orders the producer-index load above before the entry reads
        // that follow it, so we never read a slot older than the index that covers it.
        fence(Ordering::Acquire);
        prod
    }

    /// Sets our event index to `cons + 1`, then the full barrier, then the caller re-checks
    /// (`RING_FINAL_CHECK_FOR_*`).
    fn arm_event(&self, event_off: usize, cons: RingIdx) {
        self.mem.store_u32(event_off, cons.wrapping_add(1));
        // Full barrier (xen_mb): orders the event-index store before the re-load of the
        // producer index. A producer that publishes after our store is visible will see the
        // event and notify; one that published before is caught by the re-load.
        fence(Ordering::SeqCst);
    }
}

/// The frontend's view of a shared ring (`__name##_front_ring`): it produces requests and
/// consumes responses.
pub struct FrontRing<M: SharedMemory, P: RingProtocol> {
    g: Geometry<M>,
    req_prod_pvt: RingIdx,
    req_pushed: RingIdx,
    rsp_cons: RingIdx,
    rsp_seen: RingIdx,
    _p: PhantomData<P>,
}

impl<M: SharedMemory, P: RingProtocol> FrontRing<M, P> {
    /// Initialises the shared ring (`SHARED_RING_INIT`) and attaches a frontend at index 0
    /// (`XEN_FRONT_RING_INIT`). The ring size follows from `mem.size()`, so several pages give a
    /// multi-page ring.
    pub fn new(mem: M) -> Result<Self, RingError> {
        let g = Geometry::new(mem, entry_size::<P>())?;
        g.mem.store_u32(REQ_PROD_OFFSET, 0);
        g.mem.store_u32(RSP_PROD_OFFSET, 0);
        g.mem.store_u32(REQ_EVENT_OFFSET, 1);
        g.mem.store_u32(RSP_EVENT_OFFSET, 1);
        g.mem.write_bytes(PVT_OFFSET, &[0u8; RING_OFFSET - PVT_OFFSET]);
        Ok(Self::from_geometry(g, 0))
    }

    /// Attaches to an already initialised ring at index `idx` (`FRONT_RING_ATTACH`), e.g. after
    /// a reconnect; shared memory is not touched.
    pub fn attach(mem: M, idx: RingIdx) -> Result<Self, RingError> {
        Ok(Self::from_geometry(Geometry::new(mem, entry_size::<P>())?, idx))
    }

    fn from_geometry(g: Geometry<M>, idx: RingIdx) -> Self {
        FrontRing { g, req_prod_pvt: idx, req_pushed: idx, rsp_cons: idx, rsp_seen: idx, _p: PhantomData }
    }

    /// The shared memory under the ring.
    pub fn memory(&self) -> &M {
        &self.g.mem
    }
    /// Number of entries (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.g.nr_ents
    }
    /// Private request producer (`req_prod_pvt`).
    pub fn req_prod_pvt(&self) -> RingIdx {
        self.req_prod_pvt
    }
    /// Private response consumer (`rsp_cons`).
    pub fn rsp_cons(&self) -> RingIdx {
        self.rsp_cons
    }
    /// Free request slots (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.g.nr_ents - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }
    /// No free request slot (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }
    /// Requests written but not yet pushed.
    pub fn unpushed_requests(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.req_pushed)
    }

    /// Writes `req` into the next free slot and advances `req_prod_pvt`; the backend sees it
    /// only after a push.
    pub fn put_request(&mut self, req: &P::Request) -> Result<(), RingError> {
        if self.is_full() {
            return Err(RingError::Full);
        }
        self.g.write(self.req_prod_pvt, P::ENTRY_SIZE, req);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the written requests (`RING_PUSH_REQUESTS`) without the notify check.
    pub fn push_requests(&mut self) {
        self.g.publish(REQ_PROD_OFFSET, self.req_prod_pvt);
        self.req_pushed = self.req_prod_pvt;
    }

    /// Publishes the written requests and returns whether the backend must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`): true iff `req_event` lies in `(old, new]`.
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        let (old, new) = (self.req_pushed, self.req_prod_pvt);
        self.req_pushed = new;
        self.g.push_and_check(REQ_PROD_OFFSET, REQ_EVENT_OFFSET, old, new)
    }

    /// Responses published by the backend and not yet consumed, after validating `rsp_prod`:
    /// it may not move backwards nor cover more responses than requests were pushed.
    pub fn unconsumed_responses(&mut self) -> Result<u32, RingError> {
        let prod = self.g.load_prod(RSP_PROD_OFFSET);
        let room = self.req_pushed.wrapping_sub(self.rsp_cons);
        check_prod(prod, self.rsp_seen, self.rsp_cons, room)?;
        self.rsp_seen = prod;
        Ok(prod.wrapping_sub(self.rsp_cons))
    }

    /// Takes the next response, if one is published (copying it out of the slot once).
    pub fn get_response(&mut self) -> Result<Option<P::Response>, RingError> {
        if self.rsp_cons == self.rsp_seen && self.unconsumed_responses()? == 0 {
            return Ok(None);
        }
        let rsp = self.g.read(self.rsp_cons, P::ENTRY_SIZE);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(rsp))
    }

    /// Before sleeping (`RING_FINAL_CHECK_FOR_RESPONSES`): returns true if responses are
    /// pending; otherwise sets `rsp_event = rsp_cons + 1`, issues a full barrier and checks once
    /// more, so a response pushed concurrently is never slept on.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? != 0 {
            return Ok(true);
        }
        self.g.arm_event(RSP_EVENT_OFFSET, self.rsp_cons);
        Ok(self.unconsumed_responses()? != 0)
    }
}

/// The backend's view of a shared ring (`__name##_back_ring`): it consumes requests and
/// produces responses.
pub struct BackRing<M: SharedMemory, P: RingProtocol> {
    g: Geometry<M>,
    rsp_prod_pvt: RingIdx,
    rsp_pushed: RingIdx,
    req_cons: RingIdx,
    req_seen: RingIdx,
    _p: PhantomData<P>,
}

impl<M: SharedMemory, P: RingProtocol> BackRing<M, P> {
    /// Attaches a backend at index 0 (`BACK_RING_INIT`); the frontend initialised the page.
    pub fn new(mem: M) -> Result<Self, RingError> {
        Self::attach(mem, 0)
    }

    /// Attaches at index `idx` (`BACK_RING_ATTACH`).
    pub fn attach(mem: M, idx: RingIdx) -> Result<Self, RingError> {
        Ok(BackRing {
            g: Geometry::new(mem, entry_size::<P>())?,
            rsp_prod_pvt: idx,
            rsp_pushed: idx,
            req_cons: idx,
            req_seen: idx,
            _p: PhantomData,
        })
    }

    /// The shared memory under the ring.
    pub fn memory(&self) -> &M {
        &self.g.mem
    }
    /// Number of entries (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.g.nr_ents
    }
    /// Private request consumer (`req_cons`).
    pub fn req_cons(&self) -> RingIdx {
        self.req_cons
    }
    /// Private response producer (`rsp_prod_pvt`).
    pub fn rsp_prod_pvt(&self) -> RingIdx {
        self.rsp_prod_pvt
    }
    /// Requests consumed but not yet answered.
    pub fn unanswered_requests(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Requests published by the frontend and not yet consumed
    /// (`XEN_RING_NR_UNCONSUMED_REQUESTS`), after validating `req_prod` against
    /// `RING_REQUEST_PROD_OVERFLOW` and against moving backwards.
    pub fn unconsumed_requests(&mut self) -> Result<u32, RingError> {
        let prod = self.g.load_prod(REQ_PROD_OFFSET);
        check_prod(prod, self.req_seen, self.rsp_prod_pvt, self.g.nr_ents)?;
        self.req_seen = prod;
        let req = prod.wrapping_sub(self.req_cons);
        let rsp = self.g.nr_ents - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(req.min(rsp))
    }

    /// Takes the next request, if one is published (copying it out of the slot once).
    pub fn get_request(&mut self) -> Result<Option<P::Request>, RingError> {
        if self.req_cons == self.req_seen && self.unconsumed_requests()? == 0 {
            return Ok(None);
        }
        let req = self.g.read(self.req_cons, P::ENTRY_SIZE);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(req))
    }

    /// Writes `rsp` into the next response slot; there must be a consumed, unanswered request.
    pub fn put_response(&mut self, rsp: &P::Response) -> Result<(), RingError> {
        if self.unanswered_requests() == 0 {
            return Err(RingError::NoOutstandingRequest);
        }
        self.g.write(self.rsp_prod_pvt, P::ENTRY_SIZE, rsp);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the written responses (`RING_PUSH_RESPONSES`) without the notify check.
    pub fn push_responses(&mut self) {
        self.g.publish(RSP_PROD_OFFSET, self.rsp_prod_pvt);
        self.rsp_pushed = self.rsp_prod_pvt;
    }

    /// Publishes the written responses and returns whether the frontend must be notified
    /// (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`): true iff `rsp_event` lies in `(old, new]`.
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        let (old, new) = (self.rsp_pushed, self.rsp_prod_pvt);
        self.rsp_pushed = new;
        self.g.push_and_check(RSP_PROD_OFFSET, RSP_EVENT_OFFSET, old, new)
    }

    /// Before sleeping (`RING_FINAL_CHECK_FOR_REQUESTS`): true if requests are pending;
    /// otherwise sets `req_event = req_cons + 1`, full barrier, and checks once more.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? != 0 {
            return Ok(true);
        }
        self.g.arm_event(REQ_EVENT_OFFSET, self.req_cons);
        Ok(self.unconsumed_requests()? != 0)
    }
}
