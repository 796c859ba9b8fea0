//! Unit tests of the generic shared ring: init, flow control, notify avoidance, multi-page
//! rings, index wrap-around, and hostile producer indices.

use hypercall_abi::io::blkif::{Blkif, BlkifRequest, BlkifResponse};
use hypercall_abi::io::mem::{Page, SharedMemory};
use hypercall_abi::io::netif::{NetifRx, NetifRxRequest, NetifRxResponse};
use hypercall_abi::io::ring::*;
use std::sync::atomic::AtomicU32;

fn req(id: u64) -> BlkifRequest {
    BlkifRequest { id, operation: 1, nr_segments: 1, sector_number: id * 8, ..Default::default() }
}
fn rsp(id: u64) -> BlkifResponse {
    BlkifResponse { id, operation: 1, status: 0 }
}

#[test]
fn init_writes_xen_initial_header() {
    let page = Page::new();
    page.write_bytes(0, &[0xAA; 4096]);
    let front = FrontRing::<_, Blkif>::new(&page).unwrap();
    assert_eq!(front.size(), 32);
    assert_eq!(page.load_u32(REQ_PROD_OFFSET), 0);
    assert_eq!(page.load_u32(RSP_PROD_OFFSET), 0);
    assert_eq!(page.load_u32(REQ_EVENT_OFFSET), 1);
    assert_eq!(page.load_u32(RSP_EVENT_OFFSET), 1);
    let mut hdr = [0xFFu8; 48];
    page.read_bytes(16, &mut hdr);
    assert_eq!(hdr, [0u8; 48], "pvt and padding are zeroed");
    let mut slot = [0u8; 4];
    page.read_bytes(64, &mut slot);
    assert_eq!(slot, [0xAA; 4], "entries are not touched");
}

#[test]
fn too_small_memory_is_refused() {
    let words: Vec<AtomicU32> = (0..(64 + 100) / 4).map(|_| AtomicU32::new(0)).collect();
    assert!(matches!(FrontRing::<_, Blkif>::new(&words[..]), Err(RingError::TooSmall)));
    assert!(matches!(BackRing::<_, Blkif>::new(&words[..]), Err(RingError::TooSmall)));
}

#[test]
fn multi_page_ring_sizes() {
    let words: Vec<AtomicU32> = (0..4 * 1024).map(|_| AtomicU32::new(0)).collect();
    let f = FrontRing::<_, Blkif>::new(&words[..]).unwrap();
    assert_eq!(f.size(), 128, "4 pages of 112-byte slots: (16384-64)/112 = 145 -> 128");
    let r = FrontRing::<_, NetifRx>::new(&words[..]).unwrap();
    assert_eq!(r.size(), 1024, "(16384-64)/8 = 2040 -> 1024");
}

#[test]
fn request_response_round_trip_and_flow_control() {
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    for i in 0..32 {
        front.put_request(&req(i)).unwrap();
    }
    assert!(front.is_full());
    assert_eq!(front.put_request(&req(99)), Err(RingError::Full));
    // The backend is idle with req_event = 1: the first push notifies.
    assert!(front.push_requests_and_check_notify());
    assert_eq!(back.unconsumed_requests().unwrap(), 32);
    for i in 0..32 {
        let r = back.get_request().unwrap().unwrap();
        assert_eq!(r, req(i));
        back.put_response(&rsp(r.id)).unwrap();
    }
    assert_eq!(back.get_request().unwrap(), None);
    assert_eq!(back.put_response(&rsp(0)), Err(RingError::NoOutstandingRequest));
    assert!(back.push_responses_and_check_notify());
    for i in 0..32 {
        assert_eq!(front.get_response().unwrap(), Some(rsp(i)));
    }
    assert_eq!(front.get_response().unwrap(), None);
    assert_eq!(front.free_requests(), 32);
}

#[test]
fn notify_avoidance_follows_event_indices() {
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    front.put_request(&req(0)).unwrap();
    assert!(front.push_requests_and_check_notify(), "req_event=1 lies in (0,1]");
    // Backend awake and consuming: no further notifications until it re-arms.
    front.put_request(&req(1)).unwrap();
    assert!(!front.push_requests_and_check_notify(), "req_event=1 not in (1,2]");
    assert!(!front.push_requests_and_check_notify(), "empty push never notifies");
    while let Some(r) = back.get_request().unwrap() {
        back.put_response(&rsp(r.id)).unwrap();
    }
    assert!(!back.final_check_for_requests().unwrap(), "nothing left: going to sleep");
    assert_eq!(page.load_u32(REQ_EVENT_OFFSET), 3, "req_event = req_cons + 1");
    front.put_request(&req(2)).unwrap();
    front.put_request(&req(3)).unwrap();
    assert!(front.push_requests_and_check_notify(), "sleeping backend is woken");
    // Final check with work pending reports it without re-arming.
    assert!(back.final_check_for_requests().unwrap());
    assert_eq!(page.load_u32(REQ_EVENT_OFFSET), 3);
}

#[test]
fn final_check_catches_a_race() {
    // The producer publishes after the consumer emptied the ring but before it re-armed: the
    // producer does not notify (event not in range), so the final check must find the work.
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    front.put_request(&req(0)).unwrap();
    assert!(front.push_requests_and_check_notify());
    back.get_request().unwrap().unwrap();
    front.put_request(&req(1)).unwrap();
    assert!(!front.push_requests_and_check_notify());
    assert!(back.final_check_for_requests().unwrap(), "work published before re-arming");
}

#[test]
fn indices_wrap_around_u32() {
    let page = Page::new();
    let start = u32::MAX - 5;
    FrontRing::<_, NetifRx>::new(&page).unwrap();
    page.store_u32(REQ_PROD_OFFSET, start);
    page.store_u32(RSP_PROD_OFFSET, start);
    let mut front = FrontRing::<_, NetifRx>::attach(&page, start).unwrap();
    let mut back = BackRing::<_, NetifRx>::attach(&page, start).unwrap();
    for round in 0..3u16 {
        for i in 0..200u16 {
            front.put_request(&NetifRxRequest { id: i ^ round, pad: 0, gref: u32::from(i) }).unwrap();
        }
        front.push_requests();
        for i in 0..200u16 {
            let r = back.get_request().unwrap().unwrap();
            assert_eq!((r.id, r.gref), (i ^ round, u32::from(i)));
            back.put_response(&NetifRxResponse { id: r.id, offset: 0, flags: 0, status: 1 }).unwrap();
        }
        back.push_responses();
        for i in 0..200u16 {
            assert_eq!(front.get_response().unwrap().unwrap().id, i ^ round);
        }
    }
    assert!(front.rsp_cons() < start, "the indices wrapped");
}

#[test]
fn hostile_request_producer_is_reported() {
    let page = Page::new();
    FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    // Jump by more than the ring size.
    page.store_u32(REQ_PROD_OFFSET, 33);
    assert_eq!(back.get_request(), Err(RingError::ProducerOverflow { prod: 33, limit: 32 }));
    assert_eq!(back.final_check_for_requests(), Err(RingError::ProducerOverflow { prod: 33, limit: 32 }));
    // Exactly the ring size is legal.
    page.store_u32(REQ_PROD_OFFSET, 32);
    assert_eq!(back.unconsumed_requests(), Ok(32));
    for _ in 0..10 {
        back.get_request().unwrap().unwrap();
    }
    // Backwards, below what was already seen.
    page.store_u32(REQ_PROD_OFFSET, 20);
    assert_eq!(back.unconsumed_requests(), Err(RingError::ProducerBackwards { prod: 20, last: 32 }));
    // Backwards below the consumer (a huge unsigned distance).
    page.store_u32(REQ_PROD_OFFSET, 5);
    assert!(matches!(back.unconsumed_requests(), Err(RingError::ProducerBackwards { .. })));
    // The backend cannot be made to consume more than size-before-responding.
    page.store_u32(REQ_PROD_OFFSET, 32);
    for _ in 10..32 {
        back.get_request().unwrap().unwrap();
    }
    page.store_u32(REQ_PROD_OFFSET, 40);
    assert!(matches!(back.get_request(), Err(RingError::ProducerOverflow { .. })));
    back.put_response(&rsp(0)).unwrap();
    back.push_responses();
    page.store_u32(REQ_PROD_OFFSET, 33);
    // One slot freed by the response: exactly one more request may be consumed.
    assert!(back.get_request().unwrap().is_some(), "slot 0 reused");
    assert_eq!(back.get_request(), Ok(None));
}

#[test]
fn hostile_response_producer_is_reported() {
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    for i in 0..3 {
        front.put_request(&req(i)).unwrap();
    }
    // Responses for requests never pushed are refused.
    page.store_u32(RSP_PROD_OFFSET, 1);
    assert_eq!(front.get_response(), Err(RingError::ProducerOverflow { prod: 1, limit: 0 }));
    front.push_requests();
    page.store_u32(RSP_PROD_OFFSET, 4);
    assert_eq!(front.unconsumed_responses(), Err(RingError::ProducerOverflow { prod: 4, limit: 3 }));
    page.store_u32(RSP_PROD_OFFSET, 0x8000_0000);
    assert!(front.get_response().is_err());
    page.store_u32(RSP_PROD_OFFSET, 2);
    assert!(front.get_response().unwrap().is_some());
    page.store_u32(RSP_PROD_OFFSET, 1);
    assert_eq!(front.final_check_for_responses(), Err(RingError::ProducerBackwards { prod: 1, last: 2 }));
}

#[test]
fn entries_are_copied_once() {
    // After get_request returns, changing the slot cannot change what the backend holds.
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    front.put_request(&req(7)).unwrap();
    front.push_requests();
    let got = back.get_request().unwrap().unwrap();
    page.write_bytes(64, &[0xFF; 112]);
    assert_eq!(got, req(7));
}

#[test]
fn round_down_pow2_matches_rd32() {
    for (x, want) in [(0u32, 0u32), (1, 1), (2, 2), (3, 2), (36, 32), (255, 128), (340, 256), (u32::MAX, 1 << 31)] {
        assert_eq!(round_down_pow2(x), want, "{x}");
    }
    assert_eq!(ring_size(64, 8), 0);
    assert_eq!(ring_size(4096, 0), 0);
}
