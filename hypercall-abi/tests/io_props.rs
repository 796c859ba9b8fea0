//! Property tests: a mock peer drives both ends of a ring through thousands of randomized
//! interleavings and checks that nothing is lost, duplicated or reordered, and that every push
//! notifies exactly when the other end is asleep (Xen's notify-avoidance contract). Also: byte
//! image round trips, xenstore parsing under arbitrary chunking, and a two-thread stress run.

use hypercall_abi::io::blkif::{Blkif, BlkifRequest, BlkifResponse};
use hypercall_abi::io::mem::Page;
use hypercall_abi::io::netif::NetifTx;
use hypercall_abi::io::ring::{BackRing, FrontRing, RingProtocol, RING_OFFSET};
use hypercall_abi::io::wire::WireFormat;
use hypercall_abi::io::xenstore::{encode_message, MessageReader, XsType, XS_MAX_MESSAGE};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Debug)]
enum Op {
    /// Frontend writes up to n requests and pushes (with the notify check).
    FrontProduce(u8),
    /// Backend (if awake) consumes up to n requests.
    BackConsume(u8),
    /// Backend answers up to n consumed requests and pushes.
    BackRespond(u8),
    /// Backend finds no more work and goes to sleep (final check).
    BackSleep,
    /// Frontend (if awake) consumes up to n responses.
    FrontConsume(u8),
    /// Frontend goes to sleep on responses (final check).
    FrontSleep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..40).prop_map(Op::FrontProduce),
        (0u8..40).prop_map(Op::BackConsume),
        (0u8..40).prop_map(Op::BackRespond),
        Just(Op::BackSleep),
        (0u8..40).prop_map(Op::FrontConsume),
        Just(Op::FrontSleep),
    ]
}

trait Ids: RingProtocol {
    fn req(id: u64) -> Self::Request;
    fn req_id(r: &Self::Request) -> u64;
    fn rsp(id: u64) -> Self::Response;
    fn rsp_id(r: &Self::Response) -> u64;
}

impl Ids for Blkif {
    fn req(id: u64) -> BlkifRequest {
        BlkifRequest { id, sector_number: !id, ..Default::default() }
    }
    fn req_id(r: &BlkifRequest) -> u64 {
        assert_eq!(r.sector_number, !r.id, "request payload corrupted");
        r.id
    }
    fn rsp(id: u64) -> BlkifResponse {
        BlkifResponse { id, operation: 0, status: 0 }
    }
    fn rsp_id(r: &BlkifResponse) -> u64 {
        r.id
    }
}

impl Ids for NetifTx {
    fn req(id: u64) -> Self::Request {
        hypercall_abi::io::netif::NetifTxRequest { id: id as u16, gref: id as u32, ..Default::default() }
    }
    fn req_id(r: &Self::Request) -> u64 {
        assert_eq!(r.gref as u16, r.id);
        r.gref.into()
    }
    fn rsp(id: u64) -> Self::Response {
        hypercall_abi::io::netif::NetifTxResponse { id: id as u16, status: 0 }
    }
    fn rsp_id(r: &Self::Response) -> u64 {
        r.id.into()
    }
}

/// Runs `ops` against a front/back pair starting at index `start` and checks the protocol.
fn run_model<P: Ids>(ops: &[Op], start: u32) -> Result<(), TestCaseError> {
    let page = Page::new();
    FrontRing::<_, P>::new(&page).unwrap();
    // Start near the u32 wrap to exercise free-running arithmetic.
    page.0[0].store(start, Ordering::Relaxed);
    page.0[2].store(start, Ordering::Relaxed);
    page.0[1].store(start.wrapping_add(1), Ordering::Relaxed);
    page.0[3].store(start.wrapping_add(1), Ordering::Relaxed);
    let mut front = FrontRing::<_, P>::attach(&page, start).unwrap();
    let mut back = BackRing::<_, P>::attach(&page, start).unwrap();
    let size = front.size() as u64;
    let (mut next_req, mut next_seen_by_back, mut next_rsp_seen) = (0u64, 0u64, 0u64);
    let mut to_answer = std::collections::VecDeque::new();
    // Both ends start asleep with their event index armed, as after SHARED_RING_INIT.
    let (mut back_asleep, mut front_asleep) = (true, true);
    let (mut req_notifies, mut rsp_notifies) = (0u32, 0u32);
    for op in ops {
        match *op {
            Op::FrontProduce(n) => {
                let mut produced = 0;
                for _ in 0..n {
                    if front.put_request(&P::req(next_req)).is_err() {
                        prop_assert!(front.is_full());
                        break;
                    }
                    next_req += 1;
                    produced += 1;
                }
                prop_assert!(next_req - next_rsp_seen <= size, "flow control");
                let notify = front.push_requests_and_check_notify();
                prop_assert_eq!(notify, back_asleep && produced > 0, "request notify");
                if notify {
                    req_notifies += 1;
                    back_asleep = false;
                }
            }
            Op::BackConsume(n) if !back_asleep => {
                for _ in 0..n {
                    match back.get_request().unwrap() {
                        Some(r) => {
                            prop_assert_eq!(P::req_id(&r) % 65536, next_seen_by_back % 65536, "order");
                            to_answer.push_back(P::req_id(&r));
                            next_seen_by_back += 1;
                        }
                        None => break,
                    }
                }
            }
            Op::BackRespond(n) => {
                let mut produced = 0;
                for _ in 0..n {
                    let Some(id) = to_answer.pop_front() else {
                        break;
                    };
                    back.put_response(&P::rsp(id)).unwrap();
                    produced += 1;
                }
                let notify = back.push_responses_and_check_notify();
                prop_assert_eq!(notify, front_asleep && produced > 0, "response notify");
                if notify {
                    rsp_notifies += 1;
                    front_asleep = false;
                }
            }
            Op::BackSleep if !back_asleep => {
                let work = back.final_check_for_requests().unwrap();
                prop_assert_eq!(work, next_seen_by_back < next_req, "final check sees the truth");
                back_asleep = !work;
            }
            Op::FrontConsume(n) if !front_asleep => {
                for _ in 0..n {
                    match front.get_response().unwrap() {
                        Some(r) => {
                            prop_assert_eq!(P::rsp_id(&r) % 65536, next_rsp_seen % 65536, "order");
                            next_rsp_seen += 1;
                        }
                        None => break,
                    }
                }
            }
            Op::FrontSleep if !front_asleep => {
                let work = front.final_check_for_responses().unwrap();
                // BackRespond always pushes, so everything answered is published.
                let pushed = u64::from(back.rsp_prod_pvt().wrapping_sub(start));
                prop_assert_eq!(work, next_rsp_seen < pushed, "final check sees the truth");
                front_asleep = !work;
            }
            _ => {}
        }
        // No lost wake-up: a sleeping end never has published work waiting.
        if back_asleep {
            prop_assert_eq!(back.unconsumed_requests().unwrap(), 0, "backend slept on work");
        }
        if front_asleep {
            prop_assert_eq!(front.unconsumed_responses().unwrap(), 0, "frontend slept on work");
        }
    }
    // Drain: everything produced arrives exactly once, in order.
    while let Some(r) = back.get_request().unwrap() {
        prop_assert_eq!(P::req_id(&r) % 65536, next_seen_by_back % 65536);
        to_answer.push_back(P::req_id(&r));
        next_seen_by_back += 1;
    }
    while let Some(id) = to_answer.pop_front() {
        back.put_response(&P::rsp(id)).unwrap();
    }
    back.push_responses();
    while let Some(r) = front.get_response().unwrap() {
        prop_assert_eq!(P::rsp_id(&r) % 65536, next_rsp_seen % 65536);
        next_rsp_seen += 1;
    }
    prop_assert_eq!(next_seen_by_back, next_req, "every request delivered once");
    prop_assert_eq!(next_rsp_seen, next_req, "every response delivered once");
    prop_assert!(req_notifies as u64 <= next_req && rsp_notifies as u64 <= next_req);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn blkif_ring_interleavings(ops in prop::collection::vec(op(), 1..120), start in prop_oneof![Just(0u32), Just(u32::MAX - 40), any::<u32>()]) {
        run_model::<Blkif>(&ops, start)?;
    }

    #[test]
    fn netif_tx_ring_interleavings(ops in prop::collection::vec(op(), 1..200), start in any::<u32>()) {
        run_model::<NetifTx>(&ops, start)?;
    }

    #[test]
    fn hostile_request_producer_never_panics_or_overruns(prods in prop::collection::vec(any::<u32>(), 1..50), consume in 0usize..64) {
        let page = Page::new();
        FrontRing::<_, Blkif>::new(&page).unwrap();
        let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
        let mut taken = 0u32;
        for p in prods {
            page.0[0].store(p, Ordering::Relaxed);
            for _ in 0..consume {
                match back.get_request() {
                    Ok(Some(_)) => taken += 1,
                    Ok(None) | Err(_) => break,
                }
            }
            // Never more than one ring's worth outstanding without responses.
            prop_assert!(back.unanswered_requests() <= back.size());
            prop_assert_eq!(back.unanswered_requests(), taken);
        }
    }

    #[test]
    fn blkif_slot_bytes_survive_decode_encode(bytes in prop::collection::vec(any::<u8>(), 112)) {
        let mut b = [0u8; 112];
        b.copy_from_slice(&bytes);
        let back = BlkifRequest::decode(&b).encode();
        // Only the C padding after `handle` (bytes 4..8) is not carried.
        prop_assert_eq!(&back[..4], &b[..4]);
        prop_assert_eq!(&back[8..], &b[8..]);
        let _ = BlkifRequest::decode(&b).parse(4096); // total: never panics
    }

    #[test]
    fn xenstore_parse_under_any_chunking(sizes in prop::collection::vec(0usize..1500, 1..6), cuts in prop::collection::vec(1usize..300, 1..40)) {
        let mut stream = Vec::new();
        let mut buf = [0u8; XS_MAX_MESSAGE];
        for (i, s) in sizes.iter().enumerate() {
            let value = vec![(i as u8) | 0x40; *s];
            let n = encode_message(&mut buf, XsType::Write, i as u32, 9, &[b"data/x"], &value).unwrap();
            stream.extend_from_slice(&buf[..n]);
        }
        let mut r = MessageReader::new();
        let (mut at, mut got, mut k) = (0usize, 0usize, 0usize);
        while at < stream.len() {
            let end = (at + cuts[k % cuts.len()]).min(stream.len());
            k += 1;
            let mut chunk = &stream[at..end];
            while !chunk.is_empty() {
                let used = r.feed(chunk).unwrap();
                chunk = &chunk[used..];
                at += used;
                if let Some(m) = r.message() {
                    prop_assert_eq!(m.header.req_id as usize, got);
                    prop_assert_eq!(m.payload.len(), sizes[got] + 7);
                    got += 1;
                    r.consume();
                }
            }
        }
        prop_assert_eq!(got, sizes.len());
    }
}

/// Two threads, one per end, over one shared page; "event channels" are counters the other side
/// polls. Checks order and completeness under real concurrency and real fences.
#[test]
fn two_thread_stress_no_loss_no_reorder() {
    const N: u64 = 200_000;
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    let kick_back = AtomicU32::new(0);
    let kick_front = AtomicU32::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut expect = 0u64;
            let mut seen_kicks = 0;
            while expect < N {
                while let Some(r) = back.get_request().unwrap() {
                    assert_eq!(r.id, expect, "backend saw requests out of order");
                    assert_eq!(r.sector_number, !expect, "torn request");
                    expect += 1;
                    back.put_response(&BlkifResponse { id: r.id, operation: 0, status: 0 }).unwrap();
                }
                if back.push_responses_and_check_notify() {
                    kick_front.fetch_add(1, Ordering::SeqCst);
                }
                if !back.final_check_for_requests().unwrap() {
                    // Sleep until kicked: a lost notification would hang here (test timeout).
                    while kick_back.load(Ordering::SeqCst) == seen_kicks && expect < N {
                        std::hint::spin_loop();
                    }
                    seen_kicks = kick_back.load(Ordering::SeqCst);
                }
            }
        });
        let (mut sent, mut done, mut seen_kicks) = (0u64, 0u64, 0);
        while done < N {
            while sent < N && !front.is_full() {
                front.put_request(&BlkifRequest { id: sent, sector_number: !sent, ..Default::default() }).unwrap();
                sent += 1;
            }
            if front.push_requests_and_check_notify() {
                kick_back.fetch_add(1, Ordering::SeqCst);
            }
            while let Some(r) = front.get_response().unwrap() {
                assert_eq!(r.id, done, "frontend saw responses out of order");
                done += 1;
            }
            if done < N && front.is_full() && !front.final_check_for_responses().unwrap() {
                while kick_front.load(Ordering::SeqCst) == seen_kicks {
                    std::hint::spin_loop();
                }
                seen_kicks = kick_front.load(Ordering::SeqCst);
            }
        }
    });
    assert_eq!(RING_OFFSET, 64);
}
