//! Fuzz-target bodies shared by the libFuzzer binaries (`fuzz_targets/`) and the stable
//! mutation harness (`src/bin/stable_fuzz.rs`). Each takes arbitrary bytes as a hostile peer's
//! script, asserts the library's invariants (a panic is a finding), and returns a small bitmap
//! of the outcomes it reached, which the stable harness uses as feedback. The split-driver
//! protocol targets are here; the hypervisor's own input parsers are in [`hypervisor_inputs`].

mod hypervisor_inputs;
pub use hypervisor_inputs::{boot_bundle, guest_image, privileged_insn};

use hypercall_abi::io::blkif::{Blkif, BlkifResponse};
use hypercall_abi::io::console::{ConsoleBack, ConsoleFront, CONSOLE_IN, CONSOLE_OUT};
use hypercall_abi::io::mem::{Page, SharedMemory};
use hypercall_abi::io::netif::{NetifTx, NetifTxResponse, TxPacketChecker};
use hypercall_abi::io::ring::{BackRing, FrontRing, RingError, REQ_PROD_OFFSET, RSP_PROD_OFFSET};
use hypercall_abi::io::xenstore::{MessageReader, XsRingBack, XsRingFront, XENSTORE_PAYLOAD_MAX, XS_REQ_RING};

/// Reads little-endian integers off the input, yielding zeroes once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u32(&mut self) -> u32 {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.byte().unwrap_or(0);
        }
        u32::from_le_bytes(v)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn bit(e: &RingError) -> u64 {
    match e {
        RingError::TooSmall => 1 << 1,
        RingError::Full => 1 << 2,
        RingError::NoOutstandingRequest => 1 << 3,
        RingError::ProducerOverflow { .. } => 1 << 4,
        RingError::ProducerBackwards { .. } => 1 << 5,
    }
}

/// Ring consumer under a hostile producer: the input fills the shared page's entries and then
/// scripts index writes by the peer interleaved with our consume/answer/sleep steps, on the
/// blkif back ring, the netif tx back ring and a blkif front ring (hostile responses).
pub fn ring_consumer(data: &[u8]) -> u64 {
    let mut s = Script(data);
    let page = Page::new();
    let fill = s.take(256).to_vec();
    for (i, chunk) in fill.chunks(64).enumerate() {
        page.write_bytes(64 + i * 1024, chunk);
    }
    let mut seen = 0u64;
    let mut blk = BackRing::<_, Blkif>::new(&page).expect("one page holds a blkif ring");
    let mut tx = BackRing::<_, NetifTx>::new(&page).expect("one page holds a netif ring");
    let mut front = FrontRing::<_, Blkif>::attach(&page, 0).expect("attach");
    let mut pkt = TxPacketChecker::new(18);
    while let Some(op) = s.byte() {
        match op % 10 {
            0 => page.store_u32(REQ_PROD_OFFSET, s.u32()),
            1 => page.store_u32(RSP_PROD_OFFSET, s.u32()),
            2 => {
                let slot = s.byte().unwrap_or(0) as usize;
                let bytes = s.take(16).to_vec();
                page.write_bytes(64 + slot * 16, &bytes);
            }
            3 => match blk.get_request() {
                Ok(Some(r)) => {
                    seen |= 1 << 6;
                    if r.parse(u32::from(s.byte().unwrap_or(0)) * 16).is_ok() {
                        seen |= 1 << 7;
                    }
                }
                Ok(None) => seen |= 1 << 8,
                Err(e) => seen |= bit(&e),
            },
            4 => match blk.put_response(&BlkifResponse::default()) {
                Ok(()) => seen |= 1 << 9,
                Err(e) => seen |= bit(&e),
            },
            5 => {
                if blk.push_responses_and_check_notify() {
                    seen |= 1 << 10;
                }
            }
            6 => match blk.final_check_for_requests() {
                Ok(w) => seen |= 1 << (11 + u32::from(w)),
                Err(e) => seen |= bit(&e),
            },
            7 => match tx.get_request() {
                Ok(Some(r)) => {
                    seen |= 1 << 13;
                    if pkt.push(&r).is_ok() && pkt.is_complete() {
                        seen |= 1 << 14;
                    }
                    let _ = tx.put_response(&NetifTxResponse { id: r.id, status: 0 });
                    tx.push_responses();
                }
                Ok(None) => {}
                Err(e) => seen |= bit(&e) << 16,
            },
            8 => {
                let _ = front.put_request(&Default::default());
                front.push_requests();
            }
            _ => match front.get_response() {
                Ok(Some(_)) => seen |= 1 << 15,
                Ok(None) => {}
                Err(e) => seen |= bit(&e) << 24,
            },
        }
        // Invariants a hostile peer must not break.
        assert!(blk.unanswered_requests() <= blk.size());
        assert!(tx.unanswered_requests() <= tx.size());
        assert!(front.free_requests() <= front.size());
    }
    seen
}

/// Xenstore message parser: the input is split into chunks (sizes taken from the input itself)
/// and fed to a [`MessageReader`]; every complete message is inspected with every accessor.
/// The second half drives the same bytes through the shared store ring with hostile indices.
pub fn xenstore_parser(data: &[u8]) -> u64 {
    let mut seen = 0u64;
    let mut r = MessageReader::new();
    let mut s = Script(data);
    while !s.0.is_empty() {
        let n = usize::from(s.byte().unwrap_or(1)) + 1;
        let mut chunk = s.take(n);
        while !chunk.is_empty() {
            match r.feed(chunk) {
                Ok(used) => chunk = &chunk[used..],
                Err(_) => {
                    seen |= 1;
                    r.reset();
                    break;
                }
            }
            if let Some(m) = r.message() {
                assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX as usize);
                assert_eq!(m.payload.len(), m.header.len as usize);
                seen |= 2;
                if let Ok(k) = m.kind() {
                    seen |= 1 << (8 + (k as u32).min(40));
                }
                if m.errno().is_some() {
                    seen |= 4;
                }
                if m.watch_event().is_ok() {
                    seen |= 8;
                }
                let total: usize = m.strings().map(|p| p.len() + 1).sum();
                assert!(total <= m.payload.len() + 1);
                r.consume();
            }
        }
    }
    // Through the ring: the input is the request buffer, indices come from its head.
    let page = Page::new();
    let mut s = Script(data);
    let (cons, prod) = (s.u32(), s.u32());
    page.write_bytes(0, s.take(1024));
    page.store_u32(XS_REQ_RING.cons, cons);
    page.store_u32(XS_REQ_RING.prod, prod);
    if let Ok(mut store) = XsRingBack::attach(&page) {
        let mut r = MessageReader::new();
        for _ in 0..8 {
            match store.read_into(&mut r) {
                Ok(true) => {
                    seen |= 16;
                    r.consume();
                }
                Ok(false) => break,
                Err(_) => {
                    seen |= 32;
                    break;
                }
            }
            page.store_u32(XS_REQ_RING.prod, prod.wrapping_add(s.u32() % 4096));
        }
        let _ = store.write(s.0);
    } else {
        seen |= 64;
    }
    let _ = XsRingFront::attach(&page).map(|mut f| f.write(data));
    seen
}

/// Console ring reader (the backend reading a hostile guest's output, and the guest reading
/// hostile input): page contents and index moves come from the input.
pub fn console_reader(data: &[u8]) -> u64 {
    let mut seen = 0u64;
    let mut s = Script(data);
    let page = Page::new();
    page.write_bytes(0, s.take(3072));
    page.store_u32(CONSOLE_OUT.cons, s.u32());
    page.store_u32(CONSOLE_OUT.prod, s.u32());
    page.store_u32(CONSOLE_IN.cons, s.u32());
    page.store_u32(CONSOLE_IN.prod, s.u32());
    let back = ConsoleBack::attach(&page);
    let front = ConsoleFront::attach(&page);
    let (Ok(mut back), Ok(mut front)) = (back, front) else {
        return 1;
    };
    let mut buf = [0u8; 4096];
    while let Some(op) = s.byte() {
        let len = usize::from(s.byte().unwrap_or(0)) * 16;
        match op % 5 {
            0 => page.store_u32(CONSOLE_OUT.prod, s.u32()),
            1 => page.store_u32(CONSOLE_IN.cons, s.u32()),
            2 => match back.read(&mut buf[..len]) {
                Ok(n) => {
                    assert!(n <= len && n <= 2048);
                    seen |= 2 << (n.min(2048) / 256);
                }
                Err(_) => seen |= 1 << 20,
            },
            3 => match back.write(&buf[..len.min(buf.len())]) {
                Ok(n) => assert!(n <= 1024 && n <= len),
                Err(_) => seen |= 1 << 21,
            },
            _ => match front.read(&mut buf[..len]) {
                Ok(n) => assert!(n <= 1024 && n <= len),
                Err(_) => seen |= 1 << 22,
            },
        }
    }
    seen
}
