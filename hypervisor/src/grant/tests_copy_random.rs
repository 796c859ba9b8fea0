//! Host tests of batched `GNTTABOP_copy` against request-by-request processing on random
//! worlds: any caller, lists of 1 to 64 requests (several chunks) that may straddle two
//! frames, repeated sides, entries pinned (host and device maps) and then rewritten by their
//! granter, dying tables part-way released, granters running elsewhere, grant-table frames,
//! page tables and absent frames as sides, junk in a reference's high half. Every status,
//! byte, grant entry, pin and frame count must agree. (From the tenth session's review of
//! the batch's usual path: it catches dropping any one of that path's checks.)

use super::tests::{data, l1, World, A, B, C, D0};
use super::tests_copy::{encode_request, random_grant_flags};
use super::*;
use crate::guest_access::GuestSpan;
use crate::mm::MachineMemory;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::DOMID_SELF;

/// The list and data bytes of every domain, the first entries' flags and pins of every
/// table, and every frame's counts.
type Snapshot = (Vec<u8>, Vec<(DomId, u32, u16, u32)>, Vec<(u64, u32, u32)>);

fn snapshot(w: &World, span: &GuestSpan, n: usize) -> Snapshot {
    let mut bytes = vec![0u8; n * COPY_REQUEST_SIZE];
    assert!(span.read(&w.mem, 0, &mut bytes));
    for d in [D0, A, B, C] {
        for k in 0..5 {
            let mut p = vec![0u8; 4096];
            w.mem.read_frame_bytes(data(d, k), 0, &mut p);
            bytes.extend_from_slice(&p);
        }
    }
    let mut entries = Vec::new();
    for d in [D0, A, B, C] {
        for g in 0..10 {
            let f = w.tables.entry(&w.mem, d, g).map_or(0xdead, |e| e.flags);
            entries.push((d, g, f, w.tables.pin(d, g)));
        }
    }
    let counts = w.frames.iter().map(|(m, f)| (m, f.ref_count, f.type_count)).collect();
    (bytes, entries, counts)
}

#[test]
fn wide_random_batches_match_request_by_request() {
    let mut outcomes = std::collections::BTreeMap::<i16, usize>::new();
    let mut maps = 0;
    for seed in 1..=1000u64 {
        let mut rng0 = crate::test_rng::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let caller = rng0.pick(&[B, B, A, C]);
        let n = rng0.pick(&[1usize, 16, 17, 40, 64]);
        let len = n * COPY_REQUEST_SIZE;
        let straddle = rng0.chance(2);
        let first_offset =
            if straddle { 4096 - len / 2 - 8 * rng0.below(3) as usize } else { 8 * rng0.below(4) as usize };
        let frames = [data(caller, 3), data(caller, 4)];
        let span = GuestSpan::from_frames(first_offset, len, &frames);
        let prepare = |w: &mut World, maps: &mut usize| {
            let mut rng = crate::test_rng::Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
            for (i, d) in [D0, A, B, C].into_iter().enumerate() {
                for k in 0..5 {
                    let bytes: Vec<u8> =
                        (0..4096u32).map(|x| (x as u8).wrapping_mul(7).wrapping_add((i * 5 + k) as u8)).collect();
                    w.mem.write_frame_bytes(data(d, k as u64), 0, &bytes);
                }
            }
            let others = [D0, A, B, C];
            for granter in others {
                let table = w.tables.table_frames(granter).unwrap()[0];
                for gref in 0..10 {
                    let to = rng.pick(&[caller, caller, caller, B, C, DOMID_SELF]);
                    let other = rng.pick(&others);
                    let mfn = rng.pick(&[
                        data(granter, 0),
                        data(granter, 1),
                        data(granter, 2),
                        data(granter, 3),
                        data(granter, 4),
                        data(other, 0),
                        l1(granter),
                        table,
                        0xffff_ffff,
                    ]);
                    let flags = random_grant_flags(&mut rng);
                    w.grant(granter, gref, to, mfn, flags);
                }
            }
            for _ in 0..rng.below(12) {
                let (mapper, granter) = (rng.pick(&[caller, caller, A, B, C]), rng.pick(&others));
                let flags = rng.pick(&[
                    GNTMAP_DEVICE_MAP,
                    GNTMAP_DEVICE_MAP | GNTMAP_READONLY,
                    GNTMAP_HOST_MAP,
                    GNTMAP_HOST_MAP | GNTMAP_READONLY,
                ]);
                let op = GnttabMapGrantRef {
                    host_addr: super::tests::MAP_VA,
                    flags,
                    r#ref: rng.below(4) as u32,
                    dom: granter,
                    ..Default::default()
                };
                if w.access(mapper).map_grant_ref(&op).is_ok() {
                    *maps += 1;
                }
            }
            // The granter rewrites entries after they were pinned.
            for _ in 0..rng.below(8) {
                let granter = rng.pick(&others);
                let gref = rng.below(4) as u32;
                let to = rng.pick(&[caller, caller, B, C]);
                let mfn = rng.pick(&[data(granter, 0), data(granter, 4), l1(granter)]);
                let flags = rng.pick(&[0, GTF_PERMIT_ACCESS, GTF_PERMIT_ACCESS | GTF_READONLY, GTF_TRANSITIVE]);
                let old = w.tables.entry(&w.mem, granter, gref).unwrap().flags;
                w.grant(granter, gref, to, mfn, flags | (old & (GTF_READING | GTF_WRITING)));
            }
            if rng.chance(6) {
                let d = rng.pick(&[A, C, D0, caller]);
                let budget = rng.pick(&[0, 1, 2, 1000]);
                let _ = w.tables.release_domain(d, &mut w.frames, &mut w.mem, budget);
            }
            if rng.chance(6) {
                w.running_elsewhere = RunningElsewhere::new([rng.pick(&[A, C, D0])]);
            }
            let mut pool: Vec<(bool, GnttabCopyPtr)> = Vec::new();
            let mut side = |rng: &mut crate::test_rng::Rng, is_gref: bool| {
                if let Some(&(_, s)) = pool.iter().filter(|(g, _)| *g == is_gref).nth(rng.below(4) as usize) {
                    if rng.chance(2) {
                        return s;
                    }
                }
                let any = rng.below(4200) as u16;
                let offset = rng.pick(&[0, 0, 8, 100, 4000, any]);
                let s = if is_gref {
                    let mut r = rng.pick(&[0u64, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 511, 512, 1 << 20]);
                    if rng.chance(8) {
                        r |= 1 << 40;
                    }
                    GnttabCopyPtr {
                        ref_or_gmfn: r,
                        domid: rng.pick(&[A, B, C, D0, DOMID_SELF, DOMID_SELF, caller, 7]),
                        offset,
                    }
                } else {
                    let table = w.tables.table_frames(caller).and_then(|f| f.first().copied()).unwrap_or(0);
                    let mut m = rng.pick(&[
                        data(caller, 0),
                        data(caller, 1),
                        data(caller, 2),
                        data(caller, 3),
                        data(caller, 4),
                        data(A, 0),
                        l1(caller),
                        table,
                    ]);
                    if rng.chance(16) {
                        m |= 1 << 40;
                    }
                    GnttabCopyPtr {
                        ref_or_gmfn: m,
                        domid: rng.pick(&[DOMID_SELF, DOMID_SELF, DOMID_SELF, caller, A]),
                        offset,
                    }
                };
                pool.push((is_gref, s));
                s
            };
            let mut list = Vec::new();
            for _ in 0..n {
                let flags = rng.below(4) as u16 | if rng.chance(10) { 0x8000 } else { 0 };
                let any = rng.below(4200) as u16;
                let len = rng.pick(&[8, 64, 96, 96, 4096, any]);
                let source = side(&mut rng, flags & GNTCOPY_SOURCE_GREF != 0);
                let dest = side(&mut rng, flags & GNTCOPY_DEST_GREF != 0);
                list.extend(encode_request(&GnttabCopy { source, dest, len, flags, status: 0 }));
            }
            assert!(span.write(&mut w.mem, 0, &list));
        };
        let mut batched = World::new();
        prepare(&mut batched, &mut maps);
        assert!(batched.access(caller).copy_span(&span, n));
        let mut one = World::new();
        prepare(&mut one, &mut 0);
        for i in 0..n {
            let mut b = [0u8; COPY_REQUEST_SIZE];
            assert!(span.read(&one.mem, i * COPY_REQUEST_SIZE, &mut b));
            let status = one.access(caller).copy(&decode_copy_request(&b));
            assert!(span.write(&mut one.mem, i * COPY_REQUEST_SIZE + 36, &status.to_le_bytes()));
            *outcomes.entry(status).or_default() += 1;
        }
        let (sb, so) = (snapshot(&batched, &span, n), snapshot(&one, &span, n));
        assert!(sb.0 == so.0, "seed {seed} (caller {caller}, n {n}): bytes differ");
        assert_eq!(sb.1, so.1, "seed {seed}: grant entries/pins differ");
        assert!(sb.2 == so.2, "seed {seed}: frame counts differ");
        batched.audit();
    }
    // Copies that ran (1 829 here) and every refusal kind, over worlds with pins (759 maps).
    let kinds = [
        GNTST_OKAY,
        GNTST_GENERAL_ERROR,
        GNTST_BAD_DOMAIN,
        GNTST_BAD_GNTREF,
        GNTST_PERMISSION_DENIED,
        GNTST_BAD_PAGE,
        GNTST_BAD_COPY_ARG,
    ];
    assert!(outcomes.get(&GNTST_OKAY).is_some_and(|&n| n >= 1000), "outcomes {outcomes:?}");
    assert!(kinds.iter().all(|k| outcomes.get(k).is_some_and(|&n| n >= 100)), "outcomes {outcomes:?}");
    assert!(maps >= 300, "{maps} maps");
}
