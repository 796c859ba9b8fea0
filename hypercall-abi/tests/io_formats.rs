//! Wire-format tests: blkif and netif validation, console index arithmetic and hostile indices,
//! the xenstore parser (partial reads, ring wrap, oversize refusal) and encoder, and the xenbus
//! transition tables.

use hypercall_abi::io::blkif::*;
use hypercall_abi::io::byte_ring::ByteRingError;
use hypercall_abi::io::console::*;
use hypercall_abi::io::mem::{Page, SharedMemory};
use hypercall_abi::io::netif::*;
use hypercall_abi::io::wire::WireFormat;
use hypercall_abi::io::xenbus::*;
use hypercall_abi::io::xenstore::*;

fn seg(first: u8, last: u8) -> BlkifRequestSegment {
    BlkifRequestSegment { gref: 9, first_sect: first, last_sect: last, ..Default::default() }
}

#[test]
fn blkif_read_write_validation() {
    let mut r =
        BlkifRequest { operation: BLKIF_OP_READ, nr_segments: 2, id: 5, sector_number: 100, ..Default::default() };
    r.seg[0] = seg(0, 7);
    r.seg[1] = seg(2, 3);
    match r.parse(0).unwrap() {
        BlkRequest::Data { op, total_sectors, .. } => assert_eq!((op, total_sectors), (BlkOperation::Read, 10)),
        other => panic!("{other:?}"),
    }
    r.nr_segments = 0;
    assert_eq!(r.parse(0), Err(BlkifError::BadSegmentCount(0)));
    r.nr_segments = 12;
    assert_eq!(r.parse(0), Err(BlkifError::BadSegmentCount(12)));
    r.nr_segments = 2;
    r.seg[1] = seg(4, 3);
    assert_eq!(r.parse(0), Err(BlkifError::BadSectorRange { first: 4, last: 3 }));
    r.seg[1] = seg(0, 8);
    assert_eq!(r.parse(0), Err(BlkifError::BadSectorRange { first: 0, last: 8 }));
    r.seg[1] = seg(0, 0);
    r.sector_number = u64::MAX - 3;
    assert_eq!(r.parse(0), Err(BlkifError::SectorOverflow));
    r.operation = BLKIF_OP_FLUSH_DISKCACHE;
    r.nr_segments = 0;
    r.sector_number = 0;
    assert!(matches!(r.parse(0), Ok(BlkRequest::Data { op: BlkOperation::FlushDiskcache, .. })));
    r.operation = BLKIF_OP_RESERVED_1;
    assert_eq!(r.parse(0), Err(BlkifError::UnknownOperation(4)));
}

#[test]
fn blkif_discard_and_indirect_overlay_the_slot() {
    let mut b = [0u8; 112];
    b[0] = BLKIF_OP_DISCARD;
    b[1] = BLKIF_DISCARD_SECURE;
    b[2..4].copy_from_slice(&7u16.to_le_bytes());
    b[8..16].copy_from_slice(&42u64.to_le_bytes());
    b[16..24].copy_from_slice(&1000u64.to_le_bytes());
    b[24..32].copy_from_slice(&64u64.to_le_bytes());
    let r = BlkifRequest::decode(&b);
    let want = BlkifRequestDiscard { operation: 5, flag: 1, handle: 7, id: 42, sector_number: 1000, nr_sectors: 64 };
    assert_eq!(r.parse(0), Ok(BlkRequest::Discard(want)));
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(BlkifRequest::decode(&b).parse(0), Err(BlkifError::SectorOverflow));

    let mut b = [0u8; 112];
    b[0] = BLKIF_OP_INDIRECT;
    b[1] = BLKIF_OP_WRITE;
    b[2..4].copy_from_slice(&600u16.to_le_bytes());
    b[8..16].copy_from_slice(&3u64.to_le_bytes());
    b[24..26].copy_from_slice(&0x51u16.to_le_bytes());
    b[28..32].copy_from_slice(&77u32.to_le_bytes());
    b[32..36].copy_from_slice(&78u32.to_le_bytes());
    let r = BlkifRequest::decode(&b);
    assert_eq!(r.parse(0), Err(BlkifError::BadSegmentCount(600)), "no indirect feature advertised");
    assert_eq!(r.parse(512), Err(BlkifError::BadSegmentCount(600)));
    let Ok(BlkRequest::Indirect { op, request }) = r.parse(4096) else { panic!() };
    assert_eq!((op, request.handle, request.indirect_grefs[1]), (BlkOperation::Write, 0x51, 78));
    assert_eq!(request.indirect_pages(), 2);
    let mut page = [0u8; 4096];
    page[80 * 8..80 * 8 + 4].copy_from_slice(&5u32.to_le_bytes());
    page[80 * 8 + 5] = 7;
    assert_eq!(request.segment(&page, 600), Err(BlkifError::BadSegmentCount(600)));
    assert_eq!(
        request.segment(&page, 512 + 80),
        Ok(BlkifRequestSegment { gref: 5, first_sect: 0, last_sect: 7, ..Default::default() })
    );
    page[80 * 8 + 4] = 9;
    assert!(request.segment(&page, 80).is_err());
    b[1] = BLKIF_OP_DISCARD;
    assert_eq!(BlkifRequest::decode(&b).parse(4096), Err(BlkifError::UnknownIndirectOp(5)));
}

#[test]
fn blkif_wire_round_trip() {
    let mut r = BlkifRequest {
        operation: 1,
        nr_segments: 11,
        handle: 0x1234,
        id: u64::MAX,
        sector_number: 0xdead_beef,
        ..Default::default()
    };
    for (i, s) in r.seg.iter_mut().enumerate() {
        *s = BlkifRequestSegment { gref: i as u32 * 1000, first_sect: 1, last_sect: 6, ..Default::default() };
    }
    let b = r.encode();
    assert_eq!(&b[2..4], &0x1234u16.to_le_bytes());
    assert_eq!(&b[24 + 8 * 10..24 + 8 * 10 + 4], &10000u32.to_le_bytes());
    assert_eq!(BlkifRequest::decode(&b), r);
    let rsp = BlkifResponse { id: 9, operation: 3, status: BLKIF_RSP_EOPNOTSUPP };
    assert_eq!(&rsp.encode()[10..12], &(-2i16).to_le_bytes());
    assert_eq!(BlkifResponse::decode(&rsp.encode()), rsp);
}

#[test]
fn netif_extra_info_and_tx_packet_checks() {
    let gso = NetifExtra::Gso { size: 1448, gso_type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 };
    let e = NetifExtraInfo::new(&gso, false);
    assert_eq!(e.encode()[..5], [1, 0, 0xa8, 0x05, 1]);
    let slot = NetifTxRequest::from_extra_info(&e);
    assert_eq!(slot.as_extra_info().parse(), Ok(gso));
    assert_eq!(NetifExtraInfo { type_: 9, flags: 0, u: [0; 6] }.parse(), Err(NetifError::BadExtraType(9)));

    // 3000-byte packet: first slot 1500 bytes + GSO extra + a 1500-byte fragment.
    let mut c = TxPacketChecker::new(XEN_NETIF_NR_SLOTS_MIN);
    let first = NetifTxRequest { gref: 1, offset: 0, flags: NETTXF_EXTRA_INFO | NETTXF_MORE_DATA, id: 0, size: 3000 };
    assert_eq!(c.push(&first), Ok(TxSlot::Data));
    assert_eq!(c.push(&slot), Ok(TxSlot::Extra(gso)));
    assert!(!c.is_complete());
    let frag = NetifTxRequest { gref: 2, offset: 0, flags: 0, id: 1, size: 1500 };
    assert_eq!(c.push(&frag), Ok(TxSlot::Data));
    assert!(c.is_complete());
    assert_eq!((c.total(), c.slots()), (3000, 3));

    // Fragment bigger than the announced total.
    let mut c = TxPacketChecker::new(18);
    c.push(&NetifTxRequest { flags: NETTXF_MORE_DATA, size: 100, ..Default::default() }).unwrap();
    assert_eq!(
        c.push(&NetifTxRequest { size: 200, ..Default::default() }),
        Err(NetifError::SizeMismatch { total: 100, fragments: 200 })
    );
    // Fragment leaving its frame.
    let mut c = TxPacketChecker::new(18);
    c.push(&NetifTxRequest { flags: NETTXF_MORE_DATA, size: 5000, ..Default::default() }).unwrap();
    assert!(matches!(
        c.push(&NetifTxRequest { offset: 4000, size: 200, ..Default::default() }),
        Err(NetifError::FragmentOutsideFrame { .. })
    ));
    // First slot's own data leaving the frame.
    let mut c = TxPacketChecker::new(18);
    assert!(c.push(&NetifTxRequest { offset: 100, size: 4090, ..Default::default() }).is_err());
    // Endless more_data chain.
    let mut c = TxPacketChecker::new(18);
    let more = NetifTxRequest { flags: NETTXF_MORE_DATA, size: 10, ..Default::default() };
    let errs = (0..40).filter_map(|_| c.push(&more).err()).next();
    assert_eq!(errs, Some(NetifError::TooManySlots(19)));
}

#[test]
fn netif_rx_response_checks() {
    let ok = NetifRxResponse { id: 1, offset: 100, flags: 0, status: 1400 };
    assert_eq!(ok.fragment_len(), Ok(1400));
    assert!(NetifRxResponse { offset: 3000, status: 2000, ..ok }.fragment_len().is_err());
    assert_eq!(NetifRxResponse { status: NETIF_RSP_DROPPED, ..ok }.fragment_len(), Err(NetifError::Status(-2)));
}

#[test]
fn console_round_trip_with_wrap() {
    let page = Page::new();
    let mut front = ConsoleFront::attach(&page).unwrap();
    let mut back = ConsoleBack::attach(&page).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let mut got = Vec::new();
    let mut sent = 0;
    while got.len() < data.len() {
        sent += front.write(&data[sent..(sent + 700).min(data.len())]).unwrap();
        let mut buf = [0u8; 300];
        let n = back.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
    assert_eq!(page.load_u32(CONSOLE_OUT.prod), 5000);
    // Output buffer full: writes stop at 2048 outstanding bytes.
    assert_eq!(front.write(&[1u8; 4000]).unwrap(), 2048);
    assert_eq!(front.write(b"x").unwrap(), 0);
    // Input direction.
    assert_eq!(back.write(b"hello\r\n").unwrap(), 7);
    let mut buf = [0u8; 16];
    assert_eq!(front.read(&mut buf).unwrap(), 7);
    assert_eq!(&buf[..7], b"hello\r\n");
}

#[test]
fn console_hostile_indices() {
    let page = Page::new();
    let mut back = ConsoleBack::attach(&page).unwrap();
    page.store_u32(CONSOLE_OUT.prod, 2049);
    let mut buf = [0u8; 4096];
    assert_eq!(back.read(&mut buf), Err(ByteRingError::IndexOverflow { prod: 2049, cons: 0 }));
    page.store_u32(CONSOLE_OUT.prod, 2048);
    assert_eq!(back.read(&mut buf), Ok(2048));
    page.store_u32(CONSOLE_OUT.prod, 100);
    assert_eq!(back.read(&mut buf), Err(ByteRingError::Backwards { now: 100, last: 2048 }));
    page.store_u32(CONSOLE_OUT.prod, 2048);
    // A guest that moves in_cons past in_prod cannot make the backend overwrite unread input.
    let mut front = ConsoleFront::attach(&page).unwrap();
    assert_eq!(back.write(&[0u8; 10]), Ok(10));
    page.store_u32(CONSOLE_IN.cons, 500);
    assert!(matches!(back.write(&[0u8; 10]), Err(ByteRingError::IndexOverflow { .. })));
    let _ = front.read(&mut buf);
    // Attaching to garbage indices fails.
    page.store_u32(CONSOLE_OUT.prod, 10_000);
    page.store_u32(CONSOLE_OUT.cons, 0);
    assert!(ConsoleBack::attach(&page).is_err());
    assert_eq!((mask_in(1025), mask_out(2049)), (1, 1));
}

#[test]
fn xenstore_types_and_errors() {
    assert_eq!(XsType::from_u32(21), Some(XsType::ResetWatches));
    assert_eq!(XsType::from_u32(20), None, "XS_RESTRICT was removed");
    assert_eq!(XsType::from_u32(0xffff), None);
    assert_eq!(errno_from_name(b"ENOENT"), Some(2));
    assert_eq!(error_name(11), "EAGAIN");
    assert_eq!(error_name(12345), "EINVAL");
}

#[test]
fn xenstore_encode_parse_byte_by_byte() {
    let mut out = [0u8; 200];
    let n = encode_message(&mut out, XsType::Write, 7, 3, &[b"device/vbd/0/state"], b"4").unwrap();
    assert_eq!(n, 16 + 19 + 1);
    assert_eq!(&out[..16], &[11, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 20, 0, 0, 0]);
    let mut r = MessageReader::new();
    for (i, b) in out[..n].iter().enumerate() {
        assert!(r.message().is_none(), "complete too early at {i}");
        assert_eq!(r.feed(std::slice::from_ref(b)), Ok(1));
    }
    let m = r.message().unwrap();
    assert_eq!((m.kind(), m.header.req_id, m.header.tx_id), (Ok(XsType::Write), 7, 3));
    let parts: Vec<&[u8]> = m.strings().collect();
    assert_eq!(parts, vec![&b"device/vbd/0/state"[..], b"4"]);
    assert_eq!(r.feed(b"more"), Ok(0), "does not consume past a complete message");
    r.consume();
    assert_eq!(r.needed(), 16);
    assert_eq!(encode_message(&mut out, XsType::Read, 0, 0, &[b"a\0b"], b""), Err(XsError::EmbeddedNul));
    assert_eq!(encode_message(&mut out[..10], XsType::Read, 0, 0, &[b"a"], b""), Err(XsError::BufferTooSmall));
    let big = vec![b'a'; 4096];
    assert_eq!(encode_message(&mut [0u8; 5000], XsType::Read, 0, 0, &[&big], b""), Err(XsError::PayloadTooLong(4097)));
    let n = encode_message(&mut [0u8; 5000], XsType::Write, 0, 0, &[b"p"], &big[..4094]).unwrap();
    assert_eq!(n, 16 + 4096);
}

#[test]
fn xenstore_refuses_oversize_before_payload() {
    let h = XsdSockmsg { type_: 2, req_id: 1, tx_id: 0, len: 4097 };
    let mut r = MessageReader::new();
    assert_eq!(r.feed(&h.encode()), Err(XsError::PayloadTooLong(4097)));
    assert_eq!(r.feed(b"x"), Err(XsError::PayloadTooLong(4097)), "stays failed");
    assert!(r.message().is_none());
    r.reset();
    let ok = XsdSockmsg { len: 4096, ..h };
    assert_eq!(r.feed(&ok.encode()), Ok(16));
    assert_eq!(r.needed(), 4096);
}

#[test]
fn xenstore_watch_event_and_error_reply() {
    let mut out = [0u8; 100];
    let n = encode_message(&mut out, XsType::WatchEvent, 0, 0, &[b"backend/vbd", b"tok"], b"").unwrap();
    let mut r = MessageReader::new();
    r.feed(&out[..n]).unwrap();
    assert_eq!(r.message().unwrap().watch_event(), Ok((&b"backend/vbd"[..], &b"tok"[..])));
    r.consume();
    let n = encode_message(&mut out, XsType::Error, 4, 0, &[b"ENOENT"], b"").unwrap();
    r.feed(&out[..n]).unwrap();
    assert_eq!(r.message().unwrap().errno(), Some(2));
    assert_eq!(r.message().unwrap().watch_event(), Err(XsError::Malformed));
    assert!(validate_path(b"/local/domain/1/device/vbd/51712/state").is_ok());
    assert_eq!(validate_path(b"a b"), Err(XsError::BadPath));
    assert_eq!(validate_path(&vec![b'a'; 2049]), Err(XsError::BadPath));
    assert!(validate_path(&[b"/".as_slice(), &vec![b'a'; 3071]].concat()).is_ok());
}

#[test]
fn xenstore_ring_messages_across_the_wrap() {
    let page = Page::new();
    let mut guest = XsRingFront::attach(&page).unwrap();
    let mut store = XsRingBack::attach(&page).unwrap();
    let mut reader = MessageReader::new();
    let mut buf = [0u8; XS_MAX_MESSAGE];
    // Messages of varied sizes so that headers and payloads straddle the 1024-byte boundary,
    // including one larger than the ring itself (it must be written in several pieces).
    for (i, len) in [10usize, 1000, 3, 700, 2500, 0, 1021].iter().enumerate() {
        let value = vec![b'v'; *len];
        let n = encode_message(&mut buf, XsType::Write, i as u32, 0, &[b"k"], &value).unwrap();
        let mut sent = 0;
        let mut complete = false;
        while !complete {
            sent += guest.write(&buf[sent..n]).unwrap();
            complete = store.read_into(&mut reader).unwrap();
        }
        assert_eq!(sent, n);
        let m = reader.message().unwrap();
        assert_eq!((m.header.req_id, m.payload.len()), (i as u32, len + 2));
        reader.consume();
    }
    // A reply comes back the other way.
    let n = encode_message(&mut buf, XsType::Write, 6, 0, &[b"OK"], b"").unwrap();
    assert_eq!(store.write(&buf[..n]), Ok(n));
    let mut reader = MessageReader::new();
    assert_eq!(guest.read_into(&mut reader), Ok(true));
    assert_eq!(reader.message().unwrap().payload, b"OK\0");
    // A hostile rsp_prod is an error, not a loop.
    page.store_u32(XS_RSP_RING.prod, page.load_u32(XS_RSP_RING.prod) + 2000);
    reader.consume();
    assert!(matches!(guest.read_into(&mut reader), Err(XsError::Ring(_))));
}

#[test]
fn xenbus_state_machine() {
    use XenbusState::*;
    assert_eq!(XenbusState::parse(b"4"), Ok(Connected));
    assert_eq!(XenbusState::parse(b"6\0"), Ok(Closed));
    for bad in [&b""[..], b"9", b"44", b"-1", b"x"] {
        assert_eq!(XenbusState::parse(bad), Err(XenbusError::BadState));
    }
    let mut front = XenbusDevice::new(XenbusRole::Frontend);
    assert!(front.switch(InitWait).is_err(), "InitWait is the backend's");
    assert_eq!(front.switch(Initialised), Ok("3"));
    assert_eq!(front.switch(Connected), Ok("4"));
    assert_eq!(front.switch(Initialised), Err(XenbusError::IllegalTransition { from: Connected, to: Initialised }));
    assert_eq!(front.switch(Closing), Ok("5"));
    assert!(front.switch(Connected).is_err());
    assert_eq!(front.switch(Closed), Ok("6"));
    assert_eq!(front.switch(Initialising), Ok("1"), "reconnect");
    let mut back = XenbusDevice::new(XenbusRole::Backend);
    assert!(back.switch(Initialised).is_err());
    assert!(back.switch(Connected).is_err(), "must pass InitWait");
    back.switch(InitWait).unwrap();
    back.switch(Connected).unwrap();
    back.switch(Reconfiguring).unwrap();
    back.switch(Reconfigured).unwrap();
    back.switch(Connected).unwrap();
    back.switch(Closing).unwrap();
    back.switch(Closed).unwrap();
    back.switch(InitWait).unwrap();
    // Every legal edge table entry is consistent: nothing leaves Unknown except Initialising.
    for role in [XenbusRole::Frontend, XenbusRole::Backend] {
        for to in XenbusState::ALL {
            assert_eq!(Unknown.can_transition(role, to), matches!(to, Unknown | Initialising));
        }
    }
}

#[test]
fn a_frontend_may_close_from_any_live_state_as_linux_does() {
    // Linux's xenbus_frontend_closed: blkfront and netfront go to Closed from Connected
    // once the backend closes.
    for from in [XenbusState::Initialising, XenbusState::Initialised, XenbusState::Connected] {
        assert!(from.can_transition(XenbusRole::Frontend, XenbusState::Closed), "{from:?}");
    }
    assert!(!XenbusState::Connected.can_transition(XenbusRole::Backend, XenbusState::Closed));
}

#[test]
fn xenstore_paths_have_no_empty_component() {
    for good in [&b"/"[..], b"/local/domain/1", b"device/vbd/768"] {
        assert_eq!(validate_path(good), Ok(()), "{good:?}");
    }
    for bad in [&b"/local//domain"[..], b"/local/domain/", b"device/", b"//"] {
        assert_eq!(validate_path(bad), Err(XsError::BadPath), "{bad:?}");
    }
}

#[test]
fn fragment_sizes_cannot_wrap_the_packet_check() {
    // A peer announcing a small packet then many full fragments: refused, never a panic or a
    // wrapped sum that passes.
    let mut c = TxPacketChecker::new(usize::MAX);
    let first = NetifTxRequest { gref: 1, offset: 0, flags: NETTXF_MORE_DATA, id: 0, size: 100 };
    assert_eq!(c.push(&first), Ok(TxSlot::Data));
    let frag = NetifTxRequest { gref: 2, offset: 0, flags: NETTXF_MORE_DATA, id: 1, size: 4096 };
    for _ in 0..(1 << 20) + 8 {
        if c.push(&frag).is_err() {
            return; // refused at a slot limit or a frame check: fine
        }
    }
    let last = NetifTxRequest { flags: 0, ..frag };
    assert!(matches!(c.push(&last), Err(NetifError::SizeMismatch { .. })));
}
