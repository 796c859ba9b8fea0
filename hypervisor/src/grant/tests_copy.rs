//! Host tests of `GNTTABOP_copy`: byte-exact copies in both directions with offsets,
//! page-bound checks, read-only and forged grants, and that nothing stays pinned.

use super::tests::{base, data, l1, World, A, B, C};
use super::*;
use crate::mm::MachineMemory;
use crate::mm::PageType;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::DOMID_SELF;

fn fill(w: &mut World, mfn: u64, seed: u8) {
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
    w.mem.write_frame_bytes(mfn, 0, &bytes);
}

fn page(w: &World, mfn: u64) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    w.mem.read_frame_bytes(mfn, 0, &mut out);
    out
}

pub(super) fn gref_side(gref: GrantRef, dom: DomId, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { ref_or_gmfn: u64::from(gref), domid: dom, offset }
}

pub(super) fn frame_side(mfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { ref_or_gmfn: mfn, domid: DOMID_SELF, offset }
}

pub(super) fn op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy { source, dest, len, flags, status: 0 }
}

#[test]
fn copies_from_a_grant_byte_for_byte_with_offsets() {
    let mut w = World::new();
    let (src, dst) = (data(A, 0), data(B, 0));
    fill(&mut w, src, 1);
    fill(&mut w, dst, 99);
    let before = page(&w, dst);
    w.grant(A, 8, B, src, GTF_PERMIT_ACCESS | GTF_READONLY);
    let o = op(gref_side(8, A, 13), frame_side(dst, 1001), 777, GNTCOPY_SOURCE_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY);
    let (s, d) = (page(&w, src), page(&w, dst));
    assert_eq!(d[1001..1778], s[13..790]);
    assert_eq!(d[..1001], before[..1001], "bytes before untouched");
    assert_eq!(d[1778..], before[1778..], "bytes after untouched");
    assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, GTF_PERMIT_ACCESS | GTF_READONLY));
    w.audit();
}

#[test]
fn copies_into_a_grant_and_between_grants() {
    let mut w = World::new();
    let (mine, theirs, third) = (data(B, 1), data(A, 1), data(C, 1));
    fill(&mut w, mine, 5);
    fill(&mut w, theirs, 50);
    w.grant(A, 8, B, theirs, GTF_PERMIT_ACCESS);
    let o = op(frame_side(mine, 4095), gref_side(8, A, 0), 1, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY);
    assert_eq!(page(&w, theirs)[0], page(&w, mine)[4095]);
    let full = op(frame_side(mine, 0), gref_side(8, A, 0), 4096, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&full), GNTST_OKAY);
    assert_eq!(page(&w, theirs), page(&w, mine));
    // C grants B a frame too: grant to grant.
    fill(&mut w, third, 200);
    w.grant(C, 8, B, third, GTF_PERMIT_ACCESS | GTF_READONLY);
    let g2g = op(gref_side(8, C, 100), gref_side(8, A, 3000), 96, GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&g2g), GNTST_OKAY);
    assert_eq!(page(&w, theirs)[3000..3096], page(&w, third)[100..196]);
    assert_eq!((w.tables.pin(A, 8), w.tables.pin(C, 8)), (0, 0));
    assert_eq!(w.flags(A, 8), GTF_PERMIT_ACCESS, "writing cleared after the copy");
    w.audit();
}

#[test]
fn copies_must_stay_inside_the_page() {
    let mut w = World::new();
    let (src, dst) = (data(B, 0), data(B, 1));
    fill(&mut w, dst, 3);
    let before = page(&w, dst);
    for (so, dof, len) in [(1, 0, 4096), (0, 4000, 97), (4096, 0, 1), (u16::MAX, 0, 1), (0, 0, u16::MAX)] {
        let o = op(frame_side(src, so), frame_side(dst, dof), len, 0);
        assert_eq!(w.access(B).copy(&o), GNTST_BAD_COPY_ARG, "({so}, {dof}, {len})");
    }
    assert_eq!(page(&w, dst), before);
    assert_eq!(w.access(B).copy(&op(frame_side(src, 4095), frame_side(dst, 0), 1, 0)), GNTST_OKAY);
    assert_eq!(w.access(B).copy(&op(frame_side(src, 0), frame_side(dst, 0), 0, 0)), GNTST_OKAY);
    w.audit();
}

#[test]
fn copy_refusals() {
    let mut w = World::new();
    let f = data(A, 0);
    w.grant(A, 8, B, f, GTF_PERMIT_ACCESS | GTF_READONLY);
    w.grant(A, 9, C, f, GTF_PERMIT_ACCESS);
    let mine = data(B, 0);
    let to_grant = |gref, dom| op(frame_side(mine, 0), gref_side(gref, dom, 0), 8, GNTCOPY_DEST_GREF);
    let cases = [
        (to_grant(8, A), GNTST_GENERAL_ERROR, "read-only grant as destination"),
        (to_grant(9, A), GNTST_GENERAL_ERROR, "grant for C used by B"),
        (to_grant(512, A), GNTST_BAD_GNTREF, "outside the table"),
        (to_grant(8, 77), GNTST_BAD_DOMAIN, "no such granter"),
        (op(frame_side(f, 0), frame_side(mine, 0), 8, 0), GNTST_BAD_PAGE, "A's frame named directly"),
        (op(frame_side(mine, 0), frame_side(0xfff_ffff, 0), 8, 0), GNTST_BAD_PAGE, "outside RAM"),
        (
            op(GnttabCopyPtr { ref_or_gmfn: mine, domid: B, offset: 0 }, frame_side(mine, 8), 8, 0),
            GNTST_PERMISSION_DENIED,
            "a frame side must say DOMID_SELF",
        ),
        (op(frame_side(mine, 0), frame_side(base(B) + 3, 0), 8, 0), GNTST_GENERAL_ERROR, "into a page table"),
    ];
    for (o, status, why) in cases {
        assert_eq!(w.access(B).copy(&o), status, "{why}");
    }
    for gref in [8, 9] {
        assert_eq!(w.tables.pin(A, gref), 0);
        assert_eq!(w.flags(A, gref) & (GTF_READING | GTF_WRITING), 0);
    }
    assert_eq!(w.counts(f), (PageType::Writable, 1, 1));
    w.audit();
}

#[test]
fn a_bad_extent_is_reported_after_the_domain_and_grant_checks() {
    // Xen checks `offset + len` in `gnttab_copy_buf`, once both sides are claimed.
    let mut w = World::new();
    let mine = data(B, 0);
    let cases = [
        (op(frame_side(mine, 4000), gref_side(8, 77, 0), 200, GNTCOPY_DEST_GREF), GNTST_BAD_DOMAIN),
        (op(frame_side(mine, 4000), gref_side(99_999, A, 0), 200, GNTCOPY_DEST_GREF), GNTST_BAD_GNTREF),
        (
            op(GnttabCopyPtr { ref_or_gmfn: mine, domid: A, offset: 4000 }, frame_side(mine, 0), 200, 0),
            GNTST_PERMISSION_DENIED,
        ),
        (op(frame_side(mine, 4000), frame_side(data(B, 1), 0), 200, 0), GNTST_BAD_COPY_ARG),
    ];
    for (o, status) in cases {
        assert_eq!(w.access(B).copy(&o), status);
    }
    w.audit();
}

#[test]
fn a_list_kept_in_the_callers_own_grant_table_runs_as_request_by_request() {
    // Request 0 fails and gets its status; that status is part of grant entry 4, which
    // request 1 then names: its check must see the entry with the status in it.
    let prepare = || {
        let mut w = World::new();
        let table = w.tables.table_frames(B).unwrap()[0];
        let span = crate::guest_access::GuestSpan::from_frames(0, 80, &[table]);
        write_list(
            &mut w,
            &span,
            &[
                op(frame_side(data(B, 0), 0), gref_side(99_999, A, 0), 1, GNTCOPY_DEST_GREF),
                op(gref_side(4, DOMID_SELF, 0), frame_side(data(B, 2), 0), 8, GNTCOPY_SOURCE_GREF),
            ],
        );
        // Entry 4 (bytes 32..40): its frame field, so that it grants data(B, 1) once the
        // status of request 0 (bytes 36..38 of the list) is not in the way.
        assert!(span.write(&mut w.mem, 36, &(data(B, 1) as u32).to_le_bytes()));
        w
    };
    let table = prepare().tables.table_frames(B).unwrap()[0];
    let span = crate::guest_access::GuestSpan::from_frames(0, 80, &[table]);
    let (_, _, got) = batched_and_one_by_one(prepare, &span, 2);
    assert_eq!(got[0], GNTST_BAD_GNTREF);
}

#[test]
fn copy_into_a_granted_page_table_is_refused() {
    let mut w = World::new();
    let f = data(A, 3);
    w.mmu(A).update_va_mapping(3 * 0x1000, 0, 0).unwrap();
    w.mmu(A).pin_table(f, 1).unwrap();
    w.grant(A, 8, B, f, GTF_PERMIT_ACCESS);
    let o = op(frame_side(data(B, 0), 0), gref_side(8, A, 0), 8, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_GENERAL_ERROR);
    assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, GTF_PERMIT_ACCESS));
    let read = op(gref_side(8, A, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(w.access(B).copy(&read), GNTST_OKAY, "reading a page table is fine");
    w.audit();
}

/// A `gnttab_copy` as the guest lays it out, its status 0x7777 (to be overwritten).
pub(super) fn encode_request(o: &GnttabCopy) -> Vec<u8> {
    let mut b = Vec::new();
    for side in [&o.source, &o.dest] {
        b.extend_from_slice(&side.ref_or_gmfn.to_le_bytes());
        b.extend_from_slice(&side.domid.to_le_bytes());
        b.extend_from_slice(&side.offset.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
    }
    b.extend_from_slice(&o.len.to_le_bytes());
    b.extend_from_slice(&o.flags.to_le_bytes());
    b.extend_from_slice(&0x7777u16.to_le_bytes());
    b.extend_from_slice(&[0; 2]);
    b
}

/// Writes `ops` as a `gnttab_copy` array into `span`.
fn write_list(w: &mut World, span: &crate::guest_access::GuestSpan, ops: &[GnttabCopy]) {
    for (i, o) in ops.iter().enumerate() {
        assert!(span.write(&mut w.mem, i * COPY_REQUEST_SIZE, &encode_request(o)));
    }
}

/// Grant-entry flags for random worlds: mostly a plain grant, and each way of not being one
/// (including an entry whose pin flags are set, and junk).
pub(super) fn random_grant_flags(rng: &mut crate::test_rng::Rng) -> u16 {
    let junk = rng.next() as u16;
    rng.pick(&[
        0,
        GTF_PERMIT_ACCESS,
        GTF_PERMIT_ACCESS,
        GTF_PERMIT_ACCESS,
        GTF_PERMIT_ACCESS,
        GTF_PERMIT_ACCESS | GTF_READONLY,
        GTF_PERMIT_ACCESS | GTF_SUB_PAGE,
        GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING,
        GTF_TRANSITIVE,
        GTF_ACCEPT_TRANSFER,
        junk,
    ])
}

fn statuses(w: &World, span: &crate::guest_access::GuestSpan, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let mut b = [0u8; 2];
            assert!(span.read(&w.mem, i * COPY_REQUEST_SIZE + 36, &mut b));
            i16::from_le_bytes(b)
        })
        .collect()
}

/// Runs the `n` requests that `prepare()`'s world holds in `span` as B, once as a batch
/// (`copy_span`) and once request by request (each read as it is then, its status written
/// before the next): both worlds, after asserting that the statuses agree, and the statuses.
fn batched_and_one_by_one(
    prepare: impl Fn() -> World,
    span: &crate::guest_access::GuestSpan,
    n: usize,
) -> (World, World, Vec<i16>) {
    let mut batched = prepare();
    assert!(batched.access(B).copy_span(span, n));
    let mut one_by_one = prepare();
    for i in 0..n {
        let mut b = [0u8; COPY_REQUEST_SIZE];
        assert!(span.read(&one_by_one.mem, i * COPY_REQUEST_SIZE, &mut b));
        let status = one_by_one.access(B).copy(&decode_copy_request(&b));
        assert!(span.write(&mut one_by_one.mem, i * COPY_REQUEST_SIZE + 36, &status.to_le_bytes()));
    }
    let got = statuses(&batched, span, n);
    assert_eq!(got, statuses(&one_by_one, span, n));
    (batched, one_by_one, got)
}

#[test]
fn a_batch_run_from_guest_memory_matches_request_by_request() {
    // B's list straddles two of its frames; one request overwrites a later one.
    let (list_a, list_b) = (data(B, 2), data(B, 3));
    let span = crate::guest_access::GuestSpan::from_frames(4096 - 100, 17 * COPY_REQUEST_SIZE, &[list_a, list_b]);
    let g = |gref, dom, offset| gref_side(gref, dom, offset);
    let both = GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF;
    let ops = [
        op(g(8, A, 0), frame_side(data(B, 0), 0), 4096, GNTCOPY_SOURCE_GREF),
        op(g(8, A, 0), frame_side(data(B, 0), 0), 4096, GNTCOPY_SOURCE_GREF),
        op(g(9, A, 7), frame_side(data(B, 1), 9), 100, GNTCOPY_SOURCE_GREF),
        op(frame_side(data(B, 1), 0), g(9, A, 0), 8, GNTCOPY_DEST_GREF),
        op(g(8, C, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        op(frame_side(data(B, 1), 0), g(8, A, 100), 300, GNTCOPY_DEST_GREF),
        op(g(8, A, 0), g(8, A, 2000), 2000, both),
        op(g(8, A, 200), frame_side(data(B, 0), 0), 4000, GNTCOPY_SOURCE_GREF),
        op(frame_side(data(A, 0), 0), frame_side(data(B, 0), 0), 8, 0),
        // Overwrites request 10 (span offset 400 = list_b offset 300) with A's bytes.
        op(g(9, A, 0), frame_side(list_b, 300), 40, GNTCOPY_SOURCE_GREF),
        op(g(8, A, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        op(g(8, A, 0), frame_side(data(B, 0), 64), 64, GNTCOPY_SOURCE_GREF),
        op(g(8, A, 0), frame_side(l1(B), 0), 8, GNTCOPY_SOURCE_GREF),
        op(frame_side(data(B, 1), 0), GnttabCopyPtr { ref_or_gmfn: data(B, 0), domid: A, offset: 0 }, 8, 0),
        op(g(99_999, A, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        op(g(9, A, 0), frame_side(data(B, 1), 0), 8, GNTCOPY_SOURCE_GREF),
        // Reads request 0's status (span offset 36 = list_a offset 4032) as it is by now.
        op(frame_side(list_a, 4032), frame_side(data(B, 1), 500), 2, 0),
    ];
    let prepare = || {
        let mut w = World::new();
        for (i, d) in [A, B].into_iter().enumerate() {
            for k in 0..4 {
                fill(&mut w, data(d, k), (i * 4 + k as usize) as u8);
            }
        }
        w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS);
        w.grant(A, 9, B, data(A, 1), GTF_PERMIT_ACCESS | GTF_READONLY);
        w.grant(C, 8, A, data(C, 0), GTF_PERMIT_ACCESS);
        write_list(&mut w, &span, &ops);
        w
    };
    let (mut batched, one_by_one, got) = batched_and_one_by_one(prepare, &span, ops.len());
    let expected = [
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_GENERAL_ERROR,
        GNTST_GENERAL_ERROR,
        GNTST_OKAY,
        GNTST_OKAY,
        GNTST_BAD_COPY_ARG,
        GNTST_BAD_PAGE,
        GNTST_OKAY,
    ];
    assert_eq!(got[..10], expected);
    assert_ne!(got[10], 0x7777, "the overwritten request got a status");
    assert_eq!(
        got[11..],
        [GNTST_OKAY, GNTST_GENERAL_ERROR, GNTST_PERMISSION_DENIED, GNTST_BAD_GNTREF, GNTST_OKAY, GNTST_OKAY]
    );
    assert_eq!(page(&batched, data(B, 1))[500..502], GNTST_OKAY.to_le_bytes(), "saw request 0's status");
    for mfn in [data(A, 0), data(A, 1), data(B, 0), data(B, 1), list_a, list_b] {
        assert!(page(&batched, mfn) == page(&one_by_one, mfn), "frame {mfn:#x} differs");
    }
    for w in [&batched, &one_by_one] {
        assert_eq!((w.tables.pin(A, 8), w.tables.pin(A, 9)), (0, 0));
        assert_eq!((w.flags(A, 8), w.flags(A, 9)), (GTF_PERMIT_ACCESS, GTF_PERMIT_ACCESS | GTF_READONLY));
        w.audit();
    }
    assert!(!batched.access(B).copy_span(&span, 18), "a list longer than the span is refused");
}

#[test]
fn a_single_request_list_is_run_and_gets_its_status() {
    let mut w = World::new();
    fill(&mut w, data(A, 0), 3);
    w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS);
    let span = crate::guest_access::GuestSpan::from_frames(8, COPY_REQUEST_SIZE, &[data(B, 2)]);
    write_list(&mut w, &span, &[op(gref_side(8, A, 0), frame_side(data(B, 0), 0), 4096, GNTCOPY_SOURCE_GREF)]);
    assert!(w.access(B).copy_span(&span, 1));
    assert_eq!(statuses(&w, &span, 1), [GNTST_OKAY]);
    assert!(page(&w, data(B, 0)) == page(&w, data(A, 0)));
    assert!(!w.access(B).copy_span(&span, 2), "two requests do not fit");
}

#[test]
fn a_batch_reuses_a_checked_side_exactly_where_request_by_request_gives_the_same() {
    let list = data(B, 2);
    let span = crate::guest_access::GuestSpan::from_frames(0, 10 * COPY_REQUEST_SIZE, &[list]);
    let g = |gref, offset| gref_side(gref, A, offset);
    let both = GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF;
    let len_of = |request: u16| request * COPY_REQUEST_SIZE as u16 + 32;
    let ops = [
        // The source passes, the destination (a page table) does not...
        op(g(8, 0), frame_side(l1(B), 0), 8, GNTCOPY_SOURCE_GREF),
        // ... and the source still passes after the failed request.
        op(g(8, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        // A gref with its unused high half set is the same grant.
        op(
            GnttabCopyPtr { ref_or_gmfn: 1 << 40 | 8, domid: A, offset: 0 },
            frame_side(data(B, 0), 0),
            8,
            GNTCOPY_SOURCE_GREF,
        ),
        // The entry names a frame that is not A's.
        op(g(10, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        // Into the list: request 8's len, then (the same destination frame, known by now)
        // request 9's, each made too long.
        op(frame_side(data(B, 1), 0), frame_side(list, len_of(8)), 2, 0),
        op(frame_side(data(B, 1), 2), frame_side(list, len_of(9)), 2, 0),
        // A grant to itself, twice: the destination is checked with the source's pin each time.
        op(g(8, 0), g(8, 100), 8, both),
        op(g(8, 0), g(8, 200), 8, both),
        op(g(8, 0), frame_side(data(B, 0), 0), 8, GNTCOPY_SOURCE_GREF),
        op(g(8, 0), frame_side(data(B, 0), 8), 8, GNTCOPY_SOURCE_GREF),
    ];
    let prepare = || {
        let mut w = World::new();
        fill(&mut w, data(A, 0), 1);
        // Bytes 0..4 are 20, 27, 34, 41: as a len, 6932 and 10530.
        fill(&mut w, data(B, 1), 20);
        w.grant(A, 8, B, data(A, 0), GTF_PERMIT_ACCESS);
        w.grant(A, 10, B, data(C, 0), GTF_PERMIT_ACCESS);
        write_list(&mut w, &span, &ops);
        w
    };
    let (batched, one_by_one, got) = batched_and_one_by_one(prepare, &span, ops.len());
    let ok = GNTST_OKAY;
    let too_long = GNTST_BAD_COPY_ARG;
    assert_eq!(got, [GNTST_GENERAL_ERROR, ok, ok, GNTST_BAD_PAGE, ok, ok, ok, ok, too_long, too_long]);
    for mfn in [data(A, 0), data(B, 0), data(B, 1), list] {
        assert!(page(&batched, mfn) == page(&one_by_one, mfn), "frame {mfn:#x} differs");
    }
    for w in [&batched, &one_by_one] {
        assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, GTF_PERMIT_ACCESS));
        w.audit();
    }
}

#[test]
fn a_granter_running_elsewhere_sees_its_grants_in_use_for_the_copy() {
    // A granter loaded on another CPU may end its grant while the copy runs: the copy pins
    // (GTF_reading/GTF_writing set, by compare-and-exchange) and unpins around it, as Xen.
    let mut w = World::new();
    let (mine, theirs, third) = (data(B, 1), data(A, 1), data(C, 1));
    fill(&mut w, mine, 5);
    fill(&mut w, third, 77);
    w.grant(A, 8, B, theirs, GTF_PERMIT_ACCESS);
    w.grant(C, 9, B, third, GTF_PERMIT_ACCESS | GTF_READONLY);
    w.running_elsewhere = RunningElsewhere::new([A, C]);
    let o = op(frame_side(mine, 0), gref_side(8, A, 0), 4096, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_OKAY);
    assert_eq!(page(&w, theirs), page(&w, mine));
    let g2g = op(gref_side(9, C, 10), gref_side(8, A, 20), 100, GNTCOPY_SOURCE_GREF | GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&g2g), GNTST_OKAY);
    assert_eq!(page(&w, theirs)[20..120], page(&w, third)[10..110]);
    assert_eq!((w.tables.pin(A, 8), w.tables.pin(C, 9)), (0, 0), "pins dropped after the copy");
    assert_eq!(w.flags(A, 8), GTF_PERMIT_ACCESS);
    assert_eq!(w.flags(C, 9), GTF_PERMIT_ACCESS | GTF_READONLY);
    // The same answers as without pins for refused copies: a read-only destination.
    let ro = op(frame_side(mine, 0), gref_side(9, C, 0), 8, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&ro), GNTST_GENERAL_ERROR);
    assert_eq!((w.tables.pin(C, 9), w.flags(C, 9)), (0, GTF_PERMIT_ACCESS | GTF_READONLY));
    w.audit();
}

#[test]
fn a_grant_ended_by_a_granter_running_elsewhere_is_not_copied_into() {
    // The granter ends the grant (on its CPU) after the copy read the entry and before the
    // pin's flags land: the copy must be refused and the page left alone, because the
    // granter, seeing no GTF_writing, may already reuse it.
    let mut w = World::new();
    let (mine, theirs) = (data(B, 1), data(A, 1));
    fill(&mut w, mine, 5);
    fill(&mut w, theirs, 50);
    let before = page(&w, theirs);
    w.grant(A, 8, B, theirs, GTF_PERMIT_ACCESS);
    w.running_elsewhere = RunningElsewhere::new([A]);
    let frame = w.tables.table_frames(A).unwrap()[0];
    w.mem.race(frame, 8, 0);
    let o = op(frame_side(mine, 0), gref_side(8, A, 0), 4096, GNTCOPY_DEST_GREF);
    assert_eq!(w.access(B).copy(&o), GNTST_GENERAL_ERROR);
    assert_eq!(page(&w, theirs), before, "nothing written into the taken-back page");
    assert_eq!((w.tables.pin(A, 8), w.flags(A, 8)), (0, 0));
    w.audit();
}

/// Random grant states and random 16-request batches: the batch (whose usual requests take
/// `copy_usual`'s short checks) must give every status and every byte that request-by-request
/// processing (`check_copy` alone) gives, and leave every count as it was.
#[test]
fn random_batches_match_request_by_request() {
    let doms = [A, A, A, C, C, B, DOMID_SELF, 7];
    let mut shapes = [0usize; 4];
    for seed in 1..=300u64 {
        let list = data(B, 3);
        let list_offset = (seed % 5) * 8 + 3000 * (seed % 2);
        let span = crate::guest_access::GuestSpan::from_frames(list_offset as usize, 16 * COPY_REQUEST_SIZE, &[list]);
        let prepare = || {
            let mut rng = crate::test_rng::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut w = World::new();
            for (i, d) in [A, B, C].into_iter().enumerate() {
                for k in 0..3 {
                    fill(&mut w, data(d, k), (i * 4 + k as usize) as u8);
                }
            }
            for granter in [A, B, C] {
                for gref in 0..6 {
                    let to = rng.pick(&[B, B, B, B, B, C]);
                    let mfn = rng.pick(&[
                        data(granter, 0),
                        data(granter, 1),
                        data(granter, 2),
                        data(A, 0),
                        l1(granter),
                        list,
                    ]);
                    let flags = random_grant_flags(&mut rng);
                    w.grant(granter, gref, to, mfn, flags);
                }
            }
            // Pins held by the caller or by another domain.
            for _ in 0..rng.below(3) {
                let (mapper, granter) = (rng.pick(&[B, C]), rng.pick(&[A, C]));
                let _ = w.map(mapper, granter, rng.below(6) as u32, rng.pick(&[0, GNTMAP_READONLY]));
            }
            let side = |rng: &mut crate::test_rng::Rng, is_gref: bool| {
                let any = rng.below(4200) as u16;
                let offset = rng.pick(&[0, 0, 0, 8, 100, 4000, any]);
                if is_gref {
                    let refs = if rng.chance(8) { 7 } else { 6 };
                    gref_side(rng.below(refs) as u32, rng.pick(&doms), offset)
                } else {
                    let mfn = rng.pick(&[data(B, 0), data(B, 1), data(B, 2), data(B, 0), data(A, 0), l1(B), list]);
                    let domid = rng.pick(&[DOMID_SELF, DOMID_SELF, DOMID_SELF, DOMID_SELF, B, A]);
                    GnttabCopyPtr { ref_or_gmfn: mfn, domid, offset }
                }
            };
            let ops: Vec<GnttabCopy> = (0..16)
                .map(|_| {
                    let flags = rng.below(4) as u16;
                    let any = rng.below(4200) as u16;
                    let len = rng.pick(&[8, 64, 96, 96, 4096, any]);
                    let source = side(&mut rng, flags & GNTCOPY_SOURCE_GREF != 0);
                    let dest = side(&mut rng, flags & GNTCOPY_DEST_GREF != 0);
                    op(source, dest, len, flags)
                })
                .collect();
            write_list(&mut w, &span, &ops);
            w
        };
        let (batched, one_by_one, got) = batched_and_one_by_one(prepare, &span, 16);
        for s in got {
            shapes[match s {
                GNTST_OKAY => 0,
                GNTST_GENERAL_ERROR => 1,
                GNTST_BAD_COPY_ARG => 2,
                _ => 3,
            }] += 1;
        }
        for d in [A, B, C] {
            for mfn in [data(d, 0), data(d, 1), data(d, 2), data(d, 3)] {
                assert!(page(&batched, mfn) == page(&one_by_one, mfn), "seed {seed}: frame {mfn:#x} differs");
            }
        }
        batched.audit();
    }
    // The random states reach successes (651 of 4800) and each kind of refusal often enough
    // to matter.
    assert!(shapes[0] >= 400 && shapes.iter().all(|&n| n >= 100), "outcomes {shapes:?}");
}
