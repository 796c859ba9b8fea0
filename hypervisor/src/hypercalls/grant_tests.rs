//! Host tests of `grant_table_op` through the hypercall table: structure layouts in and out,
//! per-request status in batches, continuations, `-EFAULT`/`-EINVAL`/`-ENOSYS`, and the
//! version answers.

use super::super::testing::{env_boilerplate, flat_guest_deref, FlatGuest, BASE};
use super::super::{dispatch, DomainFacts, Env, Outcome};
use super::BATCH;
use crate::grant::tests::{data, World, A, B, MAP_VA};
use crate::grant::GrantAccess;
use crate::mm::MmuAccess;
use crate::test_rng::Rng;
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::*;
use hypercall_abi::hypercall as nr;
use hypercall_abi::mm::{DomId, DOMID_SELF};

const MEM: usize = 0x10000;

/// Flat guest memory `[BASE, BASE + MEM)` for the caller, and the grant world.
struct Mock {
    guest: FlatGuest,
    world: World,
    caller: DomId,
    available: bool,
    vcpu: crate::vcpu::VcpuState,
}

impl Mock {
    fn new(caller: DomId) -> Self {
        Self {
            guest: FlatGuest::new(MEM),
            world: World::new(),
            caller,
            available: true,
            vcpu: crate::vcpu::VcpuState::new(0x1000),
        }
    }
    fn call(&mut self, cmd: u64, uop: u64, count: u64) -> i64 {
        match dispatch(self, nr::GRANT_TABLE_OP, [cmd, uop, count, 0, 0]) {
            Outcome::Return(v) => v,
            other => panic!("unexpected {other:?}"),
        }
    }
}

flat_guest_deref!(Mock, guest);

impl Env for Mock {
    env_boilerplate!(guest: guest, vcpu: vcpu);
    fn domain(&self) -> DomainFacts {
        DomainFacts { id: self.caller, nr_pages: 0x100, max_pages: 0x100, privileged: false, max_mfn: 0x1000 }
    }
    fn events(&mut self) -> Option<crate::evtchn::EventAccess<'_>> {
        None
    }
    fn mmu(&mut self) -> Option<MmuAccess<'_>> {
        None
    }
    fn grants(&mut self) -> Option<GrantAccess<'_>> {
        self.available.then(|| self.world.access(self.caller))
    }
}

fn map_op(host_addr: u64, flags: u32, gref: u32, dom: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&host_addr.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&gref.to_le_bytes());
    b.extend_from_slice(&dom.to_le_bytes());
    b.extend_from_slice(&0x5555u16.to_le_bytes()); // status, overwritten
    b.extend_from_slice(&0xaaaa_aaaau32.to_le_bytes()); // handle
    b.extend_from_slice(&0xbbbb_bbbb_bbbb_bbbbu64.to_le_bytes()); // dev_bus_addr
    b
}

/// A `gnttab_copy`; each side is `(ref or gmfn, domid, offset)`.
fn copy_op(src: (u64, u16, u16), dst: (u64, u16, u16), len: u16, flags: u16) -> Vec<u8> {
    let mut b = Vec::new();
    for (w, d, o) in [src, dst] {
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&d.to_le_bytes());
        b.extend_from_slice(&o.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
    }
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&0x5555u16.to_le_bytes());
    b.extend_from_slice(&[0; 2]);
    b
}

#[test]
fn argument_level_errors() {
    let mut m = Mock::new(B);
    assert_eq!(m.call(u64::from(GNTTABOP_TRANSFER), BASE, 1), Errno::ENOSYS.to_return());
    assert_eq!(m.call(99, BASE, 1), Errno::ENOSYS.to_return());
    assert_eq!(m.call(u64::from(GNTTABOP_COPY) | 1 << 12, BASE, 1), Errno::EINVAL.to_return());
    assert_eq!(m.call(u64::from(GNTTABOP_COPY), BASE, 0x8000_0000), Errno::EINVAL.to_return());
    assert_eq!(m.call(u64::from(GNTTABOP_COPY), BASE, 0), 0, "empty batch");
    m.available = false;
    assert_eq!(m.call(u64::from(GNTTABOP_QUERY_SIZE), BASE, 1), Errno::ENOSYS.to_return());
}

#[test]
fn setup_table_writes_the_frame_list() {
    let mut m = Mock::new(A);
    let list = BASE + 0x100;
    let mut op = [0u8; 24];
    op[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    op[4..8].copy_from_slice(&3u32.to_le_bytes());
    op[16..24].copy_from_slice(&list.to_le_bytes());
    m.put(BASE, &op);
    assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), BASE, 1), 0);
    assert_eq!(m.i16_at(BASE + 8), GNTST_OKAY);
    let frames = m.world.tables.table_frames(A).unwrap().to_vec();
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(m.u64_at(list + 8 * i as u64), *f);
    }
    assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), BASE, 2), Errno::EINVAL.to_return());
    assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), 0x10, 1), Errno::EFAULT.to_return());
    // A frame list the hypervisor cannot write: status, not errno.
    m.put(BASE + 16, &(BASE + MEM as u64 - 8).to_le_bytes());
    assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), BASE, 1), 0);
    assert_eq!(m.i16_at(BASE + 8), GNTST_BAD_VIRT_ADDR);
    m.put(BASE + 4, &65u32.to_le_bytes());
    assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), BASE, 1), 0);
    assert_eq!(m.i16_at(BASE + 8), GNTST_GENERAL_ERROR);
    // A list reaching into the hypervisor's range: -EFAULT before anything is done (Xen's
    // guest_handle_okay), the table not grown.
    for bad in [0xffff_8000_0000_0000u64, 0x7fff_ffff_fff8] {
        m.put(BASE + 16, &bad.to_le_bytes());
        m.put(BASE + 4, &8u32.to_le_bytes());
        assert_eq!(m.call(u64::from(GNTTABOP_SETUP_TABLE), BASE, 1), Errno::EFAULT.to_return(), "{bad:#x}");
        assert_eq!(m.world.tables.table_frames(A).unwrap().len(), 3);
    }
}

#[test]
fn query_size_and_versions() {
    let mut m = Mock::new(A);
    let mut op = [0u8; 16];
    op[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    m.put(BASE, &op);
    assert_eq!(m.call(u64::from(GNTTABOP_QUERY_SIZE), BASE, 1), 0);
    assert_eq!((m.u32_at(BASE + 4), m.u32_at(BASE + 8), m.i16_at(BASE + 12)), (1, 64, GNTST_OKAY));
    m.put(BASE, &B.to_le_bytes());
    assert_eq!(m.call(u64::from(GNTTABOP_QUERY_SIZE), BASE, 1), 0);
    assert_eq!(m.i16_at(BASE + 12), GNTST_PERMISSION_DENIED);
    for (asked, rc) in
        [(1u32, 0), (2, Errno::ENOSYS.to_return()), (0, Errno::EINVAL.to_return()), (3, Errno::EINVAL.to_return())]
    {
        m.put(BASE, &asked.to_le_bytes());
        assert_eq!(m.call(u64::from(GNTTABOP_SET_VERSION), BASE, 1), rc, "set_version({asked})");
        assert_eq!(m.u32_at(BASE), 1, "the version in force is written back");
    }
    m.put(BASE, &[0xf0, 0x7f, 0, 0, 9, 9, 9, 9]);
    assert_eq!(m.call(u64::from(GNTTABOP_GET_VERSION), BASE, 1), 0);
    assert_eq!(m.u32_at(BASE + 4), 1);
    m.put(BASE, &77u16.to_le_bytes());
    assert_eq!(m.call(u64::from(GNTTABOP_GET_VERSION), BASE, 1), Errno::ESRCH.to_return());
}

#[test]
fn map_and_unmap_batches_report_per_request() {
    let mut m = Mock::new(B);
    let f = data(A, 0);
    m.world.grant(A, 8, B, f, GTF_PERMIT_ACCESS);
    let mut ops = map_op(MAP_VA, GNTMAP_HOST_MAP, 8, A);
    ops.extend(map_op(MAP_VA, GNTMAP_HOST_MAP, 9, A));
    m.put(BASE, &ops);
    assert_eq!(m.call(u64::from(GNTTABOP_MAP_GRANT_REF), BASE, 2), 0);
    assert_eq!(m.i16_at(BASE + 18), GNTST_OKAY);
    let handle = m.u32_at(BASE + 20);
    assert_eq!(m.u64_at(BASE + 24), f << 12);
    assert_eq!(m.i16_at(BASE + 32 + 18), GNTST_GENERAL_ERROR);
    assert_eq!(m.u32_at(BASE + 32 + 20), 0xaaaa_aaaa, "handle untouched on failure");
    let mut unmap = Vec::new();
    for h in [handle, handle] {
        unmap.extend_from_slice(&MAP_VA.to_le_bytes());
        unmap.extend_from_slice(&0u64.to_le_bytes());
        unmap.extend_from_slice(&h.to_le_bytes());
        unmap.extend_from_slice(&[0x55; 4]);
    }
    m.put(BASE + 0x200, &unmap);
    assert_eq!(m.call(u64::from(GNTTABOP_UNMAP_GRANT_REF), BASE + 0x200, 2), 0);
    assert_eq!(m.i16_at(BASE + 0x200 + 20), GNTST_OKAY);
    assert_eq!(m.i16_at(BASE + 0x200 + 24 + 20), GNTST_BAD_HANDLE, "second unmap of the same handle");
    assert_eq!(m.world.tables.pin(A, 8), 0);
    m.world.audit();
}

#[test]
fn copy_batches_continue_and_fault() {
    let mut m = Mock::new(B);
    let (src, dst) = (data(A, 0), data(B, 0));
    m.world.grant(A, 8, B, src, GTF_PERMIT_ACCESS | GTF_READONLY);
    let n = BATCH as usize + 6;
    let mut ops = Vec::new();
    for i in 0..n {
        // Request 3 goes beyond the page.
        let len = if i == 3 { 4097 } else { 8 };
        let at = i as u16 * 8;
        ops.extend(copy_op((8, A, at), (dst, DOMID_SELF, at), len, GNTCOPY_SOURCE_GREF));
    }
    m.put(BASE, &ops);
    let mut args = [u64::from(GNTTABOP_COPY), BASE, n as u64, 0, 0];
    let mut runs = 0;
    loop {
        runs += 1;
        match dispatch(&mut m, nr::GRANT_TABLE_OP, args) {
            Outcome::Continue(a) => {
                assert_eq!((a[1], a[2]), (BASE + 40 * u64::from(BATCH), 6));
                args = a;
            }
            Outcome::Return(v) => {
                assert_eq!(v, 0);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(runs, 2);
    for i in 0..n as u64 {
        let want = if i == 3 { GNTST_BAD_COPY_ARG } else { GNTST_OKAY };
        assert_eq!(m.i16_at(BASE + 40 * i + 36), want, "request {i}");
    }
    // A list running off the readable memory: -EFAULT, earlier requests done.
    let at = BASE + MEM as u64 - 40;
    m.put(at, &copy_op((8, A, 0), (dst, DOMID_SELF, 0), 8, GNTCOPY_SOURCE_GREF));
    assert_eq!(m.call(u64::from(GNTTABOP_COPY), at, 2), Errno::EFAULT.to_return());
    assert_eq!(m.i16_at(at + 36), GNTST_OKAY);
    assert_eq!(m.world.tables.pin(A, 8), 0);
    m.world.audit();
}

/// `gnttab_unmap_grant_ref`: host address, device address, handle, status.
fn unmap_op(host_addr: u64, dev_bus_addr: u64, handle: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&host_addr.to_le_bytes());
    b.extend_from_slice(&dev_bus_addr.to_le_bytes());
    b.extend_from_slice(&handle.to_le_bytes());
    b.extend_from_slice(&0x5555u16.to_le_bytes());
    b.extend_from_slice(&[0; 2]);
    b
}

#[test]
fn random_grant_table_calls_never_panic_and_keep_the_counts() {
    // Any sub-operation (and unknown ones), any count, lists that are well-formed, shaped
    // but wrong, or random bytes, placed anywhere (also across the end of guest memory), with
    // continuations followed. After every call the frame counts must still add up.
    let mut m = Mock::new(B);
    for gref in 0..4 {
        m.world.grant(A, gref, B, data(A, u64::from(gref)), GTF_PERMIT_ACCESS);
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut next = move || rng.next();
    let (mut returned_zero, mut most_mapped) = (0, 0);
    for _ in 0..4000 {
        let mut list = Vec::new();
        while list.len() < 0x800 {
            let (gref, dom) = ((next() % 6) as u32, [A, A, A, B, DOMID_SELF, 9][(next() % 6) as usize]);
            match next() % 5 {
                0 => list.extend(map_op(MAP_VA, [1, 5, 3, 2, 0x10][(next() % 5) as usize], gref, dom)),
                1 => {
                    let dev_bus_addr = match next() % 3 {
                        0 => next(),
                        1 => data(A, next() % 4) << 12,
                        _ => 0,
                    };
                    let host_addr = if next() % 4 == 0 { 0 } else { MAP_VA };
                    list.extend(unmap_op(host_addr, dev_bus_addr, (next() % 128) as u32))
                }
                2 => list.extend(copy_op(
                    (u64::from(gref), dom, (next() % 9 * 512) as u16),
                    (data(B, next() % 2), DOMID_SELF, (next() % 9 * 512) as u16),
                    (next() % 9 * 512) as u16,
                    (next() % 4) as u16,
                )),
                _ => list.extend(next().to_le_bytes()),
            }
        }
        m.put(BASE, &list[..0x800]);
        let cmd = if next() % 8 == 0 { next() } else { next() % 13 };
        let uop = match next() % 6 {
            0 => next(),
            1 => BASE + MEM as u64 - next() % 64,
            _ => BASE + next() % 64 * 8,
        };
        let count = match next() % 6 {
            0 => next(),
            1 => 0,
            _ => next() % 40,
        };
        let mut args = [cmd, uop, count, 0, 0];
        for _ in 0..64 {
            match dispatch(&mut m, nr::GRANT_TABLE_OP, args) {
                Outcome::Continue(a) => args = a,
                Outcome::Return(v) => {
                    returned_zero += u32::from(v == 0);
                    break;
                }
                other => panic!("{other:?}"),
            }
            m.world.audit();
        }
        m.world.audit();
        most_mapped = most_mapped.max(m.world.tables.mapping_count(B));
    }
    // Meaningful only if real work went through: calls accepted, grants mapped.
    assert!(returned_zero > 300 && most_mapped > 1, "accepted calls {returned_zero}, most mappings {most_mapped}");
}
