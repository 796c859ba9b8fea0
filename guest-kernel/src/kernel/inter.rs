//! Inter-domain services for the multi-domain roles: `domctl` (getdomaininfo, pause,
//! unpause, destroy), interdomain event channels (alloc_unbound, bind_interdomain, status,
//! waiting on a port with `SCHEDOP_poll`), and grant tables v1 (our own table mapped with
//! `setup_table` + `update_va_mapping`, granting and revoking entries with Xen's flag
//! protocol, `map_grant_ref`/`unmap_grant_ref` over a pool page, `GNTTABOP_copy`).

use core::sync::atomic::{fence, AtomicU16, Ordering};

use hypercall_abi::domctl::{
    DomctlHeader, GetDomainInfo, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_SIZE,
};
use hypercall_abi::event_channel as ev;
use hypercall_abi::grant_table::{self as gt, GnttabCopy, GnttabCopyPtr, GrantEntryV1};
use hypercall_abi::guest::{self, raw};
use hypercall_abi::hypercall as nr;
use hypercall_abi::mm::{DomId, DOMID_SELF, UVMF_INVLPG};
use hypercall_abi::Errno;

use crate::kernel::events;
use crate::kernel::hyp;
use crate::kernel::mm::{self, Frame};

/// `struct xen_domctl` with the `getdomaininfo` member of its union.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Domctl {
    /// `cmd`, `interface_version`, `domain`.
    pub hdr: DomctlHeader,
    /// The union, as `getdomaininfo`.
    pub info: GetDomainInfo,
    pad: [u64; 2],
}

impl Domctl {
    /// A `cmd` on `domain`, with this interface version.
    pub fn new(cmd: u32, domain: DomId) -> Self {
        Domctl {
            hdr: DomctlHeader { cmd, interface_version: XEN_DOMCTL_INTERFACE_VERSION, domain, pad: [0; 3] },
            ..Domctl::default()
        }
    }
}
const _: () = assert!(core::mem::size_of::<Domctl>() == XEN_DOMCTL_SIZE);

/// `domctl(cmd, domain)` with the current interface version; returns the filled structure.
pub fn domctl(cmd: u32, domain: DomId) -> Result<Domctl, Errno> {
    let mut op = Domctl::new(cmd, domain);
    domctl_in_place(&mut op)?;
    Ok(op)
}

/// `domctl` on a structure the caller prepared (its union's bytes as they are).
pub fn domctl_in_place(op: &mut Domctl) -> Result<u64, Errno> {
    // SAFETY: `op` is a valid, exclusive 144-byte xen_domctl Xen reads and writes back.
    Errno::check(unsafe { raw::hypercall1(nr::DOMCTL, op as *mut Domctl as u64) })
}

/// `XEN_DOMCTL_getdomaininfo` of the first domain whose id is `>= from`.
pub fn domain_info(from: DomId) -> Result<GetDomainInfo, Errno> {
    domctl(XEN_DOMCTL_GETDOMAININFO, from).map(|op| op.info)
}

/// `EVTCHNOP_alloc_unbound(DOMID_SELF, remote)`: the new port.
pub fn alloc_unbound(remote: DomId) -> Result<u32, Errno> {
    let mut a = ev::EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: remote, port: 0 };
    guest::event_channel_op(ev::EVTCHNOP_ALLOC_UNBOUND, &mut a)?;
    Ok(a.port)
}

/// `EVTCHNOP_bind_interdomain(remote, remote_port)`: the local port.
pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<u32, Errno> {
    let mut b = ev::EvtchnBindInterdomain { remote_dom: remote, remote_port, local_port: 0 };
    guest::event_channel_op(ev::EVTCHNOP_BIND_INTERDOMAIN, &mut b)?;
    Ok(b.local_port)
}

/// [`bind_interdomain`], retried every 10 ms until `deadline_ns` while the peer has not
/// allocated its port yet (-EINVAL): domains start in no particular order.
pub fn bind_when_ready(remote: DomId, remote_port: u32, deadline_ns: u64) -> Result<u32, Errno> {
    loop {
        match bind_interdomain(remote, remote_port) {
            Err(e) if events::now() < deadline_ns => {
                let _ = e;
                sleep_until(events::now() + 10 * MS);
            }
            r => return r,
        }
    }
}

/// `EVTCHNOP_status(dom, port)`.
pub fn status(dom: DomId, port: u32) -> Result<ev::EvtchnStatus, Errno> {
    let mut s = ev::EvtchnStatus { dom, port, ..Default::default() };
    guest::event_channel_op(ev::EVTCHNOP_STATUS, &mut s)?;
    Ok(s)
}

/// Waits until `port` is pending (clearing it) or system time `deadline_ns` passes, with
/// events masked (`SCHEDOP_poll` needs no upcall); `u64::MAX` waits without a deadline.
/// Returns whether the port fired.
pub fn wait_port(port: u32, deadline_ns: u64) -> bool {
    let s = events::shared();
    loop {
        if s.is_pending(port) {
            s.clear_pending(port);
            return true;
        }
        if s.system_time_ns() >= deadline_ns {
            return false;
        }
        POLLS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let _ = guest::sched_poll(&[port], poll_timeout(deadline_ns));
    }
}

/// `SCHEDOP_poll` calls made by [`wait_port`], so that a benchmark can tell a wait that
/// blocked (one poll) from one that spun through the hypervisor.
static POLLS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How many `SCHEDOP_poll` calls [`wait_port`] has made so far.
pub fn polls() -> u64 {
    POLLS.load(core::sync::atomic::Ordering::Relaxed)
}

/// The `SCHEDOP_poll` timeout for `deadline_ns`: Xen's system time is signed, so a deadline
/// of 2^63 or more reads as long past and would end every poll at once (a busy loop through
/// the hypervisor); 0 means no timeout.
fn poll_timeout(deadline_ns: u64) -> u64 {
    if deadline_ns > i64::MAX as u64 {
        0
    } else {
        deadline_ns
    }
}

/// As [`wait_port`], but spinning on the pending bit without a hypercall: for a peer running
/// on another CPU, where blocking would add two idle wake-ups to every round trip.
pub fn spin_port(port: u32, deadline_ns: u64) -> bool {
    let s = events::shared();
    loop {
        for _ in 0..1024 {
            if s.is_pending(port) {
                s.clear_pending(port);
                return true;
            }
            core::hint::spin_loop();
        }
        if s.system_time_ns() >= deadline_ns {
            return false;
        }
    }
}

/// Sleeps until system time `deadline_ns`: polls no port, which any event of ours also
/// wakes (as on Xen; port 0 is reserved, and a poll naming it is refused at once).
pub fn sleep_until(deadline_ns: u64) {
    let s = events::shared();
    while s.system_time_ns() < deadline_ns {
        let _ = guest::sched_poll(&[], poll_timeout(deadline_ns));
    }
}

/// Milliseconds to ns.
pub const MS: u64 = 1_000_000;

/// Our own grant table (one frame, 512 v1 entries), mapped writable over a pool page.
pub struct OwnTable {
    entries: *mut GrantEntryV1,
}

impl OwnTable {
    /// `GNTTABOP_setup_table(DOMID_SELF, 1)` and maps the frame it returns.
    pub fn setup() -> Result<Self, &'static str> {
        let mut frames = [0u64; 1];
        let mut op =
            [gt::GnttabSetupTable { dom: DOMID_SELF, nr_frames: 1, status: 0, frame_list: frames.as_mut_ptr() as u64 }];
        // SAFETY: each structure is the one its GNTTABOP_* takes; the frames and addresses the requests name are ours (a pool page's PTE, our own grant frames, a page of ours as a copy's destination).
        unsafe { guest::grant_table_op(gt::GNTTABOP_SETUP_TABLE, &mut op) }.map_err(|_| "setup_table refused")?;
        if op[0].status != gt::GNTST_OKAY {
            return Err("setup_table status not okay");
        }
        let slot = mm::alloc_frame().ok_or("no pool page for the grant table")?;
        // SAFETY: the slot is a pool page of ours; its PTE now maps our grant frame instead.
        unsafe { hyp::update_va_mapping(slot.va, mm::pte_rw(frames[0], 0), UVMF_INVLPG) }
            .map_err(|_| "mapping the grant frame refused")?;
        Ok(Self { entries: slot.va as *mut GrantEntryV1 })
    }

    fn flags_atomic(&self, gref: u32) -> &AtomicU16 {
        assert!((gref as usize) < gt::GRANT_ENTRIES_V1_PER_FRAME);
        // SAFETY: the entry is inside the mapped frame; `flags` is its aligned first u16,
        // which Xen also updates atomically.
        unsafe { AtomicU16::from_ptr(core::ptr::addr_of_mut!((*self.entries.add(gref as usize)).flags)) }
    }

    /// Grants `mfn` to `domid` at `gref` (domid and frame, a barrier, then the flags).
    pub fn grant(&self, gref: u32, domid: DomId, mfn: u64, readonly: bool) {
        assert!((gref as usize) < gt::GRANT_ENTRIES_V1_PER_FRAME);
        // SAFETY: as in `flags_atomic`; the entry is not in use (flags 0) while we write it.
        unsafe {
            let e = self.entries.add(gref as usize);
            core::ptr::addr_of_mut!((*e).domid).write_volatile(domid);
            core::ptr::addr_of_mut!((*e).frame).write_volatile(mfn as u32);
        }
        // Release: domid and frame are visible before the flags that validate them.
        fence(Ordering::Release);
        let ro = if readonly { gt::GTF_READONLY } else { 0 };
        self.flags_atomic(gref).store(gt::GTF_PERMIT_ACCESS | ro, Ordering::SeqCst);
    }

    /// Entry `gref` as it stands.
    pub fn entry(&self, gref: u32) -> GrantEntryV1 {
        let flags = self.flags(gref);
        // SAFETY: as in `flags_atomic`; plain reads of the other two fields.
        unsafe {
            let e = self.entries.add(gref as usize);
            GrantEntryV1 {
                flags,
                domid: core::ptr::addr_of!((*e).domid).read_volatile(),
                frame: core::ptr::addr_of!((*e).frame).read_volatile(),
            }
        }
    }

    /// The entry's current flags.
    pub fn flags(&self, gref: u32) -> u16 {
        self.flags_atomic(gref).load(Ordering::SeqCst)
    }

    /// Revokes `gref` if neither `GTF_reading` nor `GTF_writing` is set; returns the flags
    /// seen (`Err` with them if the grant is in use).
    pub fn revoke(&self, gref: u32) -> Result<u16, u16> {
        let f = self.flags_atomic(gref);
        let old = f.load(Ordering::SeqCst);
        if old & (gt::GTF_READING | gt::GTF_WRITING) != 0 {
            return Err(old);
        }
        f.compare_exchange(old, 0, Ordering::SeqCst, Ordering::SeqCst)
    }
}

/// `GNTTABOP_map_grant_ref` of `dom`'s `gref` at our pool page `at` (host map): the status
/// and the handle.
pub fn map_grant(dom: DomId, gref: u32, at: &Frame, readonly: bool) -> (i16, u32) {
    let flags = gt::GNTMAP_HOST_MAP | if readonly { gt::GNTMAP_READONLY } else { 0 };
    let mut op = [gt::GnttabMapGrantRef { host_addr: at.va, flags, r#ref: gref, dom, ..Default::default() }];
    // SAFETY: each structure is the one its GNTTABOP_* takes; the frames and addresses the requests name are ours (a pool page's PTE, our own grant frames, a page of ours as a copy's destination).
    match unsafe { guest::grant_table_op(gt::GNTTABOP_MAP_GRANT_REF, &mut op) } {
        Ok(_) => (op[0].status, op[0].handle),
        Err(e) => (e.to_return() as i16, 0),
    }
}

/// `GNTTABOP_unmap_grant_ref` of the mapping at `at` with `handle`; with `restore`, maps
/// the pool page's own frame back at `at` (the unmap leaves the PTE empty). The status.
pub fn unmap_grant(at: &Frame, handle: u32, restore: bool) -> i16 {
    let mut op = [gt::GnttabUnmapGrantRef { host_addr: at.va, dev_bus_addr: 0, handle, status: 0 }];
    // SAFETY: each structure is the one its GNTTABOP_* takes; the frames and addresses the requests name are ours (a pool page's PTE, our own grant frames, a page of ours as a copy's destination).
    let st = match unsafe { guest::grant_table_op(gt::GNTTABOP_UNMAP_GRANT_REF, &mut op) } {
        Ok(_) => op[0].status,
        Err(e) => e.to_return() as i16,
    };
    if restore {
        let _ = mm::make_writable(at.va);
    }
    st
}

/// One `GNTTABOP_copy` of `len` bytes: from `dom`'s `gref` (offset `src_off`) to our frame
/// `dst_mfn` (offset `dst_off`). The status.
pub fn copy_from_grant(dom: DomId, gref: u32, src_off: u16, dst_mfn: u64, dst_off: u16, len: u16) -> i16 {
    let mut op = [GnttabCopy {
        source: GnttabCopyPtr { ref_or_gmfn: gref as u64, domid: dom, offset: src_off },
        dest: GnttabCopyPtr { ref_or_gmfn: dst_mfn, domid: DOMID_SELF, offset: dst_off },
        len,
        flags: gt::GNTCOPY_SOURCE_GREF,
        status: 0,
    }];
    // SAFETY: each structure is the one its GNTTABOP_* takes; the frames and addresses the requests name are ours (a pool page's PTE, our own grant frames, a page of ours as a copy's destination).
    match unsafe { guest::grant_table_op(gt::GNTTABOP_COPY, &mut op) } {
        Ok(_) => op[0].status,
        Err(e) => e.to_return() as i16,
    }
}

/// Runs a prepared batch of copies; the hypercall's own result.
pub fn copy_batch(ops: &mut [GnttabCopy]) -> Result<u64, Errno> {
    // SAFETY: each structure is the one its GNTTABOP_* takes; the frames and addresses the requests name are ours (a pool page's PTE, our own grant frames, a page of ours as a copy's destination).
    unsafe { guest::grant_table_op(gt::GNTTABOP_COPY, ops) }
}

/// A pool page as a byte slice.
///
/// # Safety
/// The page must be mapped (writable for writes) and not aliased by another live reference.
pub unsafe fn page_bytes(at: &Frame) -> &'static mut [u8; 4096] {
    // SAFETY: the caller's contract; pool pages are 4096-byte aligned.
    unsafe { &mut *(at.va as *mut [u8; 4096]) }
}

pub use crate::domains::gntst_name;
