//! # Writing a split driver with this crate
//!
//! A Xen split driver is two halves that share memory: the **frontend** in the guest that
//! wants a device, and the **backend** in the driver domain that owns the real one. They meet
//! through xenstore ([`xenstore`](super::xenstore)) and follow the xenbus state machine
//! ([`xenbus`](super::xenbus)); the data moves over a shared ring ([`ring`](super::ring)) in a
//! page the frontend grants, and each side kicks the other through an event channel.
//!
//! ## The pieces
//!
//! 1. **Memory.** Rings never touch memory directly; they go through
//!    [`SharedMemory`](super::mem::SharedMemory). In a kernel, wrap the mapped grant with
//!    [`MappedMemory`](super::mem::MappedMemory) (an `unsafe` constructor: you vouch that the
//!    mapping lives as long as the ring). On the host, or for an in-kernel loopback device, use
//!    [`Page`](super::mem::Page), a page of atomic words.
//! 2. **Frontend setup.** Allocate and grant the page, [`FrontRing::new`] it (this is
//!    `SHARED_RING_INIT`: indices 0, event indices 1), allocate an unbound event channel for the
//!    backend, write `ring-ref`, `event-channel` and `protocol` under `device/<type>/<id>/`, and
//!    switch to `Initialised` with [`XenbusDevice::switch`](super::xenbus::XenbusDevice::switch).
//! 3. **Backend setup.** Wait for the frontend's `Initialised`, map the granted page, bind the
//!    event channel, [`BackRing::new`] it, and switch to `Connected`.
//! 4. **Submitting (frontend).** [`FrontRing::put_request`] as many requests as
//!    [`FrontRing::free_requests`] allows, then [`FrontRing::push_requests_and_check_notify`]:
//!    send the event only when it returns `true`. That is Xen's notify avoidance: the backend
//!    asked to be woken only when it went to sleep.
//! 5. **Serving (backend).** Loop on [`BackRing::get_request`]; validate each request with the
//!    protocol's checks (for block, [`BlkifRequest::parse`]); answer with
//!    [`BackRing::put_response`]; publish with [`BackRing::push_responses_and_check_notify`].
//!    When the ring looks empty call [`BackRing::final_check_for_requests`] and sleep only if
//!    it returns `false`: it re-arms `req_event` and re-checks behind a full barrier, so a
//!    request pushed in between is never slept on.
//! 6. **Completing (frontend).** The mirror image: [`FrontRing::get_response`], then
//!    [`FrontRing::final_check_for_responses`] before sleeping.
//! 7. **Hostile peers.** Every index read from shared memory is validated. A peer that moves
//!    its producer index backwards or further than the ring allows makes the call return a
//!    [`RingError`]; the right reaction is to stop using the ring and switch to `Closing`
//!    (Linux's backends do the same), never to retry in a loop. Entries are copied out once
//!    before decoding, so a peer rewriting a slot under you cannot change a request you hold.
//!
//! ## A complete example
//!
//! A block frontend and backend over one page, the backend serving reads from an in-memory
//! disk. The event channel is a flag here; in a kernel it is `EVTCHNOP_send`.
//!
//! ```
//! use hypercall_abi::io::blkif::*;
//! use hypercall_abi::io::mem::Page;
//! use hypercall_abi::io::ring::{BackRing, FrontRing, RingError};
//! use hypercall_abi::io::xenbus::{XenbusDevice, XenbusRole, XenbusState};
//!
//! /// The backend: owns the disk, serves the ring.
//! struct Backend<'a> {
//!     ring: BackRing<&'a Page, Blkif>,
//!     disk: Vec<u8>,
//!     state: XenbusDevice,
//! }
//!
//! impl Backend<'_> {
//!     /// Serves everything on the ring; returns whether the frontend must be notified.
//!     fn serve(&mut self) -> Result<bool, RingError> {
//!         let mut notify = false;
//!         loop {
//!             while let Some(req) = self.ring.get_request()? {
//!                 let status = match req.parse(0) {
//!                     Ok(BlkRequest::Data { op: BlkOperation::Read, request, .. }) => {
//!                         // A real backend would copy into the granted frames of each
//!                         // segment; here we only check the sectors exist.
//!                         let end = (request.sector_number as usize + 1) * 512;
//!                         if end <= self.disk.len() { BLKIF_RSP_OKAY } else { BLKIF_RSP_ERROR }
//!                     }
//!                     Ok(_) => BLKIF_RSP_EOPNOTSUPP,
//!                     Err(_) => BLKIF_RSP_ERROR, // malformed: refuse, never panic
//!                 };
//!                 let rsp = BlkifResponse { id: req.id, operation: req.operation, status };
//!                 self.ring.put_response(&rsp)?;
//!             }
//!             notify |= self.ring.push_responses_and_check_notify();
//!             // Sleep only if the final check (event re-armed, full barrier) finds nothing.
//!             if !self.ring.final_check_for_requests()? {
//!                 return Ok(notify);
//!             }
//!         }
//!     }
//! }
//!
//! // --- connection set-up (xenstore writes elided) ---
//! let shared = Page::new(); // the page the frontend grants
//! let mut front_state = XenbusDevice::new(XenbusRole::Frontend);
//! let mut back_state = XenbusDevice::new(XenbusRole::Backend);
//! back_state.switch(XenbusState::InitWait).unwrap();
//! let mut front = FrontRing::<_, Blkif>::new(&shared).unwrap(); // SHARED_RING_INIT
//! assert_eq!(front.size(), BLKIF_RING_SIZE);
//! front_state.switch(XenbusState::Initialised).unwrap();
//! let mut backend = Backend {
//!     ring: BackRing::new(&shared).unwrap(),
//!     disk: vec![0; 64 * 512],
//!     state: back_state,
//! };
//! backend.state.switch(XenbusState::Connected).unwrap();
//! front_state.switch(XenbusState::Connected).unwrap();
//!
//! // --- the frontend submits 40 reads: more than the ring holds ---
//! let (mut submitted, mut completed, mut errors) = (0u64, 0u64, 0);
//! let mut kicks = 0;
//! while completed < 40 {
//!     while submitted < 40 && !front.is_full() {
//!         let mut req = BlkifRequest {
//!             operation: BLKIF_OP_READ,
//!             nr_segments: 1,
//!             id: submitted,
//!             sector_number: submitted * 2, // sectors 64.. do not exist: error responses
//!             ..Default::default()
//!         };
//!         req.seg[0] = BlkifRequestSegment { gref: 100, first_sect: 0, last_sect: 0, ..Default::default() };
//!         front.put_request(&req).unwrap();
//!         submitted += 1;
//!     }
//!     if front.push_requests_and_check_notify() {
//!         kicks += 1; // EVTCHNOP_send(backend port)
//!         backend.serve().unwrap(); // the backend's event handler runs
//!     }
//!     while let Some(rsp) = front.get_response().unwrap() {
//!         assert_eq!(rsp.id, completed, "in order");
//!         if rsp.status != BLKIF_RSP_OKAY {
//!             errors += 1;
//!         }
//!         completed += 1;
//!     }
//!     front.final_check_for_responses().unwrap();
//! }
//! assert_eq!((completed, errors), (40, 8)); // reads of sectors 64..78 fail
//! assert_eq!(kicks, 2); // one kick per sleep of the backend, not one per request
//!
//! // --- a hostile frontend: req_prod jumps by more than the ring ---
//! use hypercall_abi::io::mem::SharedMemory;
//! shared.store_u32(hypercall_abi::io::ring::REQ_PROD_OFFSET, front.req_prod_pvt() + 1000);
//! assert!(matches!(backend.serve(), Err(RingError::ProducerOverflow { .. })));
//! backend.state.switch(XenbusState::Closing).unwrap(); // stop using the ring
//! ```
//!
//! ## Byte rings: console and xenstore
//!
//! The console ([`ConsoleFront`](super::console::ConsoleFront) /
//! [`ConsoleBack`](super::console::ConsoleBack)) and xenstore
//! ([`XsRingFront`](super::xenstore::XsRingFront)) rings are byte streams: `write` copies what
//! fits and returns the count (notify if non-zero), `read` returns what is there. Xenstore
//! messages are encoded with [`encode_message`](super::xenstore::encode_message) and parsed
//! with a [`MessageReader`](super::xenstore::MessageReader), which accepts a message in any
//! number of pieces and refuses a payload over `XENSTORE_PAYLOAD_MAX` from its header alone.

#[allow(unused_imports)]
use super::blkif::BlkifRequest;
#[allow(unused_imports)]
use super::ring::{BackRing, FrontRing, RingError};
