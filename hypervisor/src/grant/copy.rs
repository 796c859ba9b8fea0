//! `GNTTABOP_copy` (Xen's `gnttab_copy_one`): copies up to a page between two frames, each
//! named either by a grant reference of some domain (granted to the caller) or, for the
//! caller's own memory, by its frame number (a PV guest's `gmfn` is an MFN).
//!
//! # Checks instead of pins
//!
//! Xen pins both grants (setting `GTF_reading`/`GTF_writing`) and takes references on both
//! frames for the length of a copy because other CPUs run meanwhile: the granter could revoke
//! the grant, or free or retype the frame, under the copy. Here one lock covers every
//! hypervisor entry, so freeing and retyping (hypercalls) cannot happen during a copy, and a
//! domain runs only while a CPU has it loaded. A granter loaded on no other CPU cannot run
//! until the copy is over, so nobody can observe or change anything between the checks and
//! the end of the copy, and pins and references taken and dropped around it would leave every
//! counter and flag as they were. Such a copy therefore runs exactly the checks a pin and a
//! reference would ([`check_pin`], [`FrameTable::check_grant_ref`]), with the same answers,
//! and changes nothing but the destination bytes.
//!
//! A granter loaded on another CPU ([`GrantAccess::running_elsewhere`]) can end its grant
//! by writing the shared entry while the copy runs, and then reuse the page. A copy touching
//! its grants takes real pins (`GTF_reading`/`GTF_writing` set by compare-and-exchange, see
//! `ops::pin`) for the length of the copy, as Xen does, so the granter sees the grant in use.
//!
//! # Batches
//!
//! [`GrantAccess::copy_span`] runs a list of requests held in guest memory resolved once (a
//! [`GuestSpan`]): each request is read, and its status written, through the frames that hold
//! the list, so a request costs no page walk; and a side named exactly as the last side of
//! its kind (source or destination) that passed its checks in the batch reuses that check,
//! even across a failed request (which changes nothing). Both are sound because a copy
//! cannot change what they depend on: it never writes a page table (its destination must be able to take a
//! Writable type), a grant-table frame or the frame table, and requests are re-read after every
//! copy, so a copy that overwrites the list itself is seen as Xen would see it. A list kept
//! in the caller's own grant-table frames, whose entries the checks read, runs request by
//! request instead, each status written before the next request is checked.
//!
//! Within a batch, the usual request (one side a grant nobody has pinned, or both sides
//! frames of the caller; no granter running elsewhere; no side in the list) is checked by
//! `copy_usual` with the same rules as `check_copy` but only to
//! accept it; anything else, refusals included, goes to `check_copy`, which gives Xen's exact
//! status. The batch runs over the machine's own memory type (`Env::copy_grants`), so that
//! these checks and the copy inline into one loop: under QEMU's TCG a request's cost is its
//! instruction count, and every call, return or jump to another page adds a lookup
//! (`docs/BENCHMARKS.md`).
//!
//! [`FrameTable::check_grant_ref`]: crate::mm::FrameTable::check_grant_ref

use super::ops::{check_pin_entry, grants_to, lets_write, pin, unpin, PIN_HSTR_INC, PIN_HSTW_INC};
use super::{DomainGrants, GrantAccess};
use crate::guest_access::GuestSpan;
use crate::mm::MachineMemory;
use core::mem::{offset_of, size_of};
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::{DomId, DOMID_SELF};

/// Page size: no copy may cross a frame.
const PAGE: usize = 4096;
/// Bytes of one `gnttab_copy` request.
pub const COPY_REQUEST_SIZE: usize = size_of::<GnttabCopy>();
/// Requests [`GrantAccess::copy_span`] buffers at a time.
const CHUNK: usize = 16;

/// One side as a request names it, to recognise a repeat within a batch: the whole
/// `ref_or_gmfn` word (for a gref, a repeat that differs only in the unused high half is
/// checked again, which is never wrong) and the domain and kind, packed for two compares.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct SideKey {
    ref_or_gmfn: u64,
    /// `domid | is_gref << 16 | 1 << 17`; 0 names nothing (no memo yet).
    domid_kind: u32,
}

impl SideKey {
    /// Matches no side.
    const NONE: Self = Self { ref_or_gmfn: 0, domid_kind: 0 };

    #[inline(always)]
    fn of(side: &GnttabCopyPtr, is_gref: bool) -> Self {
        Self { ref_or_gmfn: side.ref_or_gmfn, domid_kind: u32::from(side.domid) | u32::from(is_gref) << 16 | 1 << 17 }
    }
}

/// A side that passed its checks within this batch: what named it, its frame, and whether
/// that frame backs the request list (see `copy_chunk`).
#[derive(Clone, Copy, Default)]
struct Memo {
    key: SideKey,
    mfn: u64,
    in_list: bool,
}

/// The last side of each kind that passed its checks (within one batch). A failed request
/// changes nothing, so a side that passed before it still passes after.
#[derive(Default)]
struct Resolved {
    source: Memo,
    dest: Memo,
}

/// Decodes a `gnttab_copy` from its 40 guest bytes.
#[inline]
pub fn decode_copy_request(b: &[u8; COPY_REQUEST_SIZE]) -> GnttabCopy {
    let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u64_at = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let side = |at: usize| GnttabCopyPtr {
        ref_or_gmfn: u64_at(at + offset_of!(GnttabCopyPtr, ref_or_gmfn)),
        domid: u16_at(at + offset_of!(GnttabCopyPtr, domid)),
        offset: u16_at(at + offset_of!(GnttabCopyPtr, offset)),
    };
    GnttabCopy {
        source: side(offset_of!(GnttabCopy, source)),
        dest: side(offset_of!(GnttabCopy, dest)),
        len: u16_at(offset_of!(GnttabCopy, len)),
        flags: u16_at(offset_of!(GnttabCopy, flags)),
        status: 0,
    }
}

impl<M: MachineMemory + ?Sized> GrantAccess<'_, M> {
    /// One `GNTTABOP_copy` request; returns its status. Refusals, in Xen's order:
    /// * `GNTST_permission_denied`: a frame (not gref) side names a domain other than
    ///   `DOMID_SELF`;
    /// * `GNTST_bad_domain`: a gref side names no live domain;
    /// * `GNTST_bad_gntref`: the gref is outside the granter's table;
    /// * `GNTST_general_error`: the grant is not for the caller (or pinned by another
    ///   domain), the destination grant is read-only, or the destination frame cannot be
    ///   written (a page table);
    /// * `GNTST_bad_page`: a frame side is not an ordinary frame of the caller, or a
    ///   granted frame is not the granter's;
    /// * `GNTST_bad_copy_arg`: `offset + len` beyond the page on either side (checked once
    ///   both sides are, as Xen's `gnttab_copy_buf` does).
    pub fn copy(&mut self, op: &GnttabCopy) -> i16 {
        if self.needs_pins(op) {
            return self.copy_pinned(op);
        }
        self.check_and_copy(op, false)
    }

    /// One request's checks (no batch memo), then the copy if they pass; `pins_taken`: the
    /// caller pinned its grant sides first (see [`Self::check_copy`]).
    fn check_and_copy(&mut self, op: &GnttabCopy, pins_taken: bool) -> i16 {
        match self.check_copy(op, &mut Resolved::default(), |_| false, pins_taken) {
            Ok((src, dst, _)) => {
                self.run_copy(op, src, dst);
                GNTST_OKAY
            }
            Err(status) => status,
        }
    }

    /// Runs the `count` requests of the `gnttab_copy` array that `span` holds, in order,
    /// giving each its status as Xen does (the other fields keep their values). `false` if
    /// `span` is too short for `count` requests (nothing is done then).
    ///
    /// Requests are read `CHUNK` at a time into a buffer that takes their statuses and is
    /// written back whole. A copy that reads or writes a frame of the list itself first
    /// writes the buffer back (so it sees the statuses before it, as in Xen) and re-reads it
    /// after (so later requests are what the copy left there); the result is byte for byte
    /// what request-by-request processing gives.
    pub fn copy_span(&mut self, span: &GuestSpan, count: usize) -> bool {
        if count.checked_mul(COPY_REQUEST_SIZE).is_none_or(|len| len > span.len()) {
            return false;
        }
        if self.list_in_own_grant_table(span) {
            // The checks read grant entries from the frames that hold the list, so each
            // status must be in place before the next request is checked: one by one.
            let status_at = offset_of!(GnttabCopy, status);
            for k in 0..count {
                let mut request = [0u8; COPY_REQUEST_SIZE];
                span.read(&*self.mmu.mem, k * COPY_REQUEST_SIZE, &mut request);
                let status = self.copy(&decode_copy_request(&request));
                span.write(&mut *self.mmu.mem, k * COPY_REQUEST_SIZE + status_at, &status.to_le_bytes());
            }
            return true;
        }
        let mut resolved = Resolved::default();
        // The buffer leaves the tables for the length of the batch, so that the checks can
        // read them while it is written.
        let mut list = core::mem::take(&mut self.tables.copy_list.0);
        list.resize(CHUNK * COPY_REQUEST_SIZE, 0);
        for first in (0..count).step_by(CHUNK) {
            let n = CHUNK.min(count - first);
            self.copy_chunk(span, first, &mut list[..n * COPY_REQUEST_SIZE], &mut resolved);
        }
        self.tables.copy_list.0 = list;
        true
    }

    /// Whether a frame of the caller's own grant table holds part of `span` (a guest may
    /// keep its request list there: the table is mapped writable into it).
    fn list_in_own_grant_table(&self, span: &GuestSpan) -> bool {
        self.tables.table_frames(self.caller()).is_some_and(|frames| frames.iter().any(|&f| span.holds(f)))
    }

    /// The requests of [`copy_span`](Self::copy_span)'s list from request `first` on, as
    /// many as `list` (the buffer) holds.
    fn copy_chunk(&mut self, span: &GuestSpan, first: usize, list: &mut [u8], resolved: &mut Resolved) {
        let at = first * COPY_REQUEST_SIZE;
        if !span.read(&*self.mmu.mem, at, list) {
            // Never (`copy_span` checked the length), but the buffer holds the last batch's
            // requests, maybe another domain's: they must not run as this caller's.
            list.fill(0);
        }
        for k in 0..list.len() / COPY_REQUEST_SIZE {
            let request: &[u8; COPY_REQUEST_SIZE] =
                list[k * COPY_REQUEST_SIZE..][..COPY_REQUEST_SIZE].try_into().expect("one request");
            let op = decode_copy_request(request);
            let status = if self.copy_usual(&op, resolved, span) {
                GNTST_OKAY
            } else {
                self.copy_unusual(span, at, list, k, resolved)
            };
            let status_at = k * COPY_REQUEST_SIZE + offset_of!(GnttabCopy, status);
            list[status_at..status_at + 2].copy_from_slice(&status.to_le_bytes());
        }
        span.write(&mut *self.mmu.mem, at, list);
    }

    /// Request `k` of the chunk `list` (at `at` in the span) that [`Self::copy_usual`] did not
    /// run: pins, refusals, sides in the list. Out of line, so that the usual path stays
    /// short and in few pages (under QEMU's TCG a jump to another page costs a lookup).
    #[cold]
    #[inline(never)]
    fn copy_unusual(&mut self, span: &GuestSpan, at: usize, list: &mut [u8], k: usize, resolved: &mut Resolved) -> i16 {
        let request: &[u8; COPY_REQUEST_SIZE] =
            list[k * COPY_REQUEST_SIZE..][..COPY_REQUEST_SIZE].try_into().expect("one request");
        let op = decode_copy_request(request);
        if self.needs_pins(&op) {
            // May read or write the list's frames: as an in-list copy below.
            span.write(&mut *self.mmu.mem, at, list);
            let status = self.copy_pinned(&op);
            span.read(&*self.mmu.mem, at, list);
            return status;
        }
        match self.check_copy(&op, resolved, |mfn| span.holds(mfn), false) {
            Ok((src, dst, true)) => {
                span.write(&mut *self.mmu.mem, at, list);
                self.run_copy(&op, src, dst);
                span.read(&*self.mmu.mem, at, list);
                GNTST_OKAY
            }
            Ok((src, dst, false)) => {
                self.run_copy(&op, src, dst);
                GNTST_OKAY
            }
            Err(status) => status,
        }
    }

    /// The usual request of a batch, run if it passes checks it can make without building
    /// anything: one side a grant nobody has pinned, or both sides frames of the caller;
    /// no granter running elsewhere; no side in the list's own frames. Whether it ran;
    /// `false` leaves everything as it was (except memos of sides that passed, which
    /// [`Self::check_copy`] would reuse anyway), and `check_copy` then decides the request,
    /// with Xen's exact refusal if it is one. Every check here is one of `check_copy`'s,
    /// so whatever runs here would run there, with the same frames.
    #[inline(always)]
    fn copy_usual(&mut self, op: &GnttabCopy, resolved: &mut Resolved, span: &GuestSpan) -> bool {
        let src_gref = op.flags & GNTCOPY_SOURCE_GREF != 0;
        let dst_gref = op.flags & GNTCOPY_DEST_GREF != 0;
        let len = usize::from(op.len);
        let (src_off, dst_off) = (usize::from(op.source.offset), usize::from(op.dest.offset));
        // Two grants may be the same one, checked with the source's pin counted.
        if !self.running_elsewhere.is_empty() | (src_gref & dst_gref) | (src_off + len > PAGE) | (dst_off + len > PAGE)
        {
            return false;
        }
        let Some(src) = self.usual_side(&op.source, src_gref, false, &mut resolved.source, span) else {
            return false;
        };
        let Some(dst) = self.usual_side(&op.dest, dst_gref, true, &mut resolved.dest, span) else {
            return false;
        };
        self.run_copy(op, src, dst);
        true
    }

    /// One side of [`Self::copy_usual`]: its frame if it passed before in the batch or
    /// passes now (then remembered in `memo`), and lies outside the list.
    #[inline(always)]
    fn usual_side(
        &self,
        side: &GnttabCopyPtr,
        is_gref: bool,
        writable: bool,
        memo: &mut Memo,
        span: &GuestSpan,
    ) -> Option<u64> {
        let key = SideKey::of(side, is_gref);
        if memo.key == key {
            return (!memo.in_list).then_some(memo.mfn);
        }
        let caller = self.caller();
        let mfn = if is_gref {
            // `copy_domain`, then `check_pin_entry` for an entry nobody pins.
            let dom = self.resolve_self(side.domid);
            let t = self.tables.live(dom)?;
            let gref = side.ref_or_gmfn as u32;
            if t.active.contains_key(&gref) {
                return None;
            }
            let (e, _) = super::read_shared(&*self.mmu.mem, &t.frames, gref)?;
            // `check_pin_entry`'s tests for an entry nobody pins.
            if !grants_to(&e, caller, GTF_TYPE_MASK) || (writable && !lets_write(&e)) {
                return None;
            }
            let mfn = u64::from(e.frame);
            self.mmu.frames.check_grant_ref(mfn, dom, writable).ok()?;
            mfn
        } else {
            // `copy_domain` (the caller's own table is live while it runs), then the frame.
            if side.domid != DOMID_SELF || self.tables.live(caller).is_none() {
                return None;
            }
            let mfn = side.ref_or_gmfn;
            self.mmu.frames.check_grant_ref(mfn, caller, writable).ok()?;
            mfn
        };
        if span.holds(mfn) {
            return None;
        }
        *memo = Memo { key, mfn, in_list: false };
        Some(mfn)
    }

    /// Whether a side of `op` is a grant of a domain running on another CPU (module comment).
    #[inline(always)]
    fn needs_pins(&self, op: &GnttabCopy) -> bool {
        if self.running_elsewhere.is_empty() {
            return false; // one CPU, or nobody else running: the common case
        }
        let elsewhere = |domid| self.running_elsewhere.contains(self.resolve_self(domid));
        (op.flags & GNTCOPY_SOURCE_GREF != 0 && elsewhere(op.source.domid))
            || (op.flags & GNTCOPY_DEST_GREF != 0 && elsewhere(op.dest.domid))
    }

    /// One copy with both grant sides pinned for its length (Xen's `gnttab_copy_one`): the
    /// usual checks first (so a refusal is the one Xen gives, in its order, wherever the
    /// granter runs), then the pins, the checks again as of before the pins (the entries
    /// may have changed meanwhile), the copy, and the pins dropped.
    fn copy_pinned(&mut self, op: &GnttabCopy) -> i16 {
        if let Err(status) = self.check_copy(op, &mut Resolved::default(), |_| false, false) {
            return status;
        }
        let caller = self.caller();
        let sides = [
            (op.flags & GNTCOPY_SOURCE_GREF != 0, &op.source, false),
            (op.flags & GNTCOPY_DEST_GREF != 0, &op.dest, true),
        ];
        let mut pinned: heapless::Vec<(DomId, u32, bool), 2> = heapless::Vec::new();
        let mut status = GNTST_OKAY;
        for (is_gref, side, writable) in sides {
            if !is_gref {
                continue;
            }
            let (granter, gref) = (self.resolve_self(side.domid), side.ref_or_gmfn as u32);
            let inc = if writable { PIN_HSTW_INC } else { PIN_HSTR_INC };
            let frames = &*self.mmu.frames;
            match pin(self.tables, frames, &mut *self.mmu.mem, granter, gref, caller, !writable, inc, false) {
                Ok(_) => {
                    let _ = pinned.push((granter, gref, writable));
                }
                Err(e) => {
                    status = e;
                    break;
                }
            }
        }
        if status == GNTST_OKAY {
            status = self.check_and_copy(op, true);
        }
        for &(granter, gref, writable) in pinned.iter().rev() {
            let dec = if writable { PIN_HSTW_INC } else { PIN_HSTR_INC };
            unpin(self.tables, &mut *self.mmu.mem, granter, gref, writable, dec);
        }
        status
    }

    fn run_copy(&mut self, op: &GnttabCopy, src: u64, dst: u64) {
        let (src_off, dst_off) = (usize::from(op.source.offset), usize::from(op.dest.offset));
        self.mmu.mem.copy_frame_bytes(src, src_off, dst, dst_off, usize::from(op.len));
    }

    /// Every check of one request; the source and destination frames if it may run, and
    /// whether either is `in_list` (asked once per checked side, remembered with it). With
    /// `pins_taken` the grant sides carry the request's own pins (`copy_pinned`): they are
    /// checked as Xen checks them, before its pins.
    #[inline(always)]
    fn check_copy(
        &self,
        op: &GnttabCopy,
        resolved: &mut Resolved,
        in_list: impl Fn(u64) -> bool,
        pins_taken: bool,
    ) -> Result<(u64, u64, bool), i16> {
        let src_gref = op.flags & GNTCOPY_SOURCE_GREF != 0;
        let dst_gref = op.flags & GNTCOPY_DEST_GREF != 0;
        // A destination that is the source's grant is checked with the source's pin counted,
        // as Xen, which holds that pin by then. (The union's `u32 ref` is the low half.)
        let same_grant = src_gref
            && dst_gref
            && self.resolve_self(op.source.domid) == self.resolve_self(op.dest.domid)
            && op.source.ref_or_gmfn as u32 == op.dest.ref_or_gmfn as u32;
        let (src_key, dst_key) = (SideKey::of(&op.source, src_gref), SideKey::of(&op.dest, dst_gref));
        let src_known = resolved.source.key == src_key;
        let dst_known = !same_grant && resolved.dest.key == dst_key;
        // Xen's order: both domains, then the source's grant and frame, then the destination's.
        // A side that passed earlier in the batch passes again (nothing changed since).
        let src_dom = if src_known { None } else { Some(self.copy_domain(op.source.domid, src_gref)?) };
        let dst_dom = if dst_known { None } else { Some(self.copy_domain(op.dest.domid, dst_gref)?) };
        if let Some(dom) = src_dom {
            // With the pins taken, the source's own read pin is not counted, nor, for a
            // destination that is the same grant, the destination's write pin (Xen checks
            // the source before taking either).
            let own = if pins_taken && same_grant { PIN_HSTR_INC + PIN_HSTW_INC } else { PIN_HSTR_INC };
            let held = if pins_taken { 0u32.wrapping_sub(own) } else { 0 };
            let mfn = self.check_side(&op.source, dom, src_gref, false, held)?;
            resolved.source = Memo { key: src_key, mfn, in_list: in_list(mfn) };
        }
        if let Some(dom) = dst_dom {
            // Xen checks the destination with the source's pin counted, not its own.
            let held = match (pins_taken, same_grant) {
                (true, _) => 0u32.wrapping_sub(PIN_HSTW_INC),
                (false, true) => PIN_HSTR_INC,
                (false, false) => 0,
            };
            let mfn = self.check_side(&op.dest, dom, dst_gref, true, held)?;
            // Checked with the source's pin counted: not what the same name means alone.
            let key = if same_grant { SideKey::NONE } else { dst_key };
            resolved.dest = Memo { key, mfn, in_list: in_list(mfn) };
        }
        // Xen checks the extent last, in `gnttab_copy_buf`, once both sides are claimed.
        let len = usize::from(op.len);
        let (src_off, dst_off) = (usize::from(op.source.offset), usize::from(op.dest.offset));
        if src_off + len > PAGE || dst_off + len > PAGE {
            return Err(GNTST_BAD_COPY_ARG);
        }
        let (src, dst) = (&resolved.source, &resolved.dest);
        Ok((src.mfn, dst.mfn, src.in_list | dst.in_list))
    }

    /// Xen's `gnttab_copy_lock_domain`: only `DOMID_SELF` may name a frame directly. The
    /// domain and its grant table.
    #[inline(always)]
    fn copy_domain(&self, domid: DomId, is_gref: bool) -> Result<(DomId, &DomainGrants), i16> {
        if !is_gref && domid != DOMID_SELF {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let d = self.resolve_self(domid);
        self.tables.live(d).map(|t| (d, t)).ok_or(GNTST_BAD_DOMAIN)
    }

    /// The frame of one side, checked as Xen's `acquire_grant_for_copy` (gref) or
    /// `get_page` (frame) would take it, with `held` pins of the caller's on the grant;
    /// `(dom, t)` is the side's domain and its table.
    #[inline(always)]
    fn check_side(
        &self,
        side: &GnttabCopyPtr,
        (dom, t): (DomId, &DomainGrants),
        is_gref: bool,
        writable: bool,
        held: u32,
    ) -> Result<u64, i16> {
        if !is_gref {
            let mfn = side.ref_or_gmfn;
            self.mmu.frames.check_grant_ref(mfn, dom, writable).map_err(|e| {
                if e.errno == Errno::EBUSY {
                    GNTST_GENERAL_ERROR
                } else {
                    GNTST_BAD_PAGE
                }
            })?;
            return Ok(mfn);
        }
        let gref = side.ref_or_gmfn as u32;
        let pin = check_pin_entry(t, &*self.mmu.mem, gref, self.caller(), !writable, held, false)?;
        // One look at the frame for both of Xen's checks: `check_pin`'s last (a frame read
        // from the entry must be the granter's: `-EINVAL` here) and the reference's.
        match self.mmu.frames.check_grant_ref(pin.mfn, dom, writable) {
            Ok(()) => Ok(pin.mfn),
            // Two flags, not the whole check: keeping it across the call costs the hot path.
            Err(e) => Err(frame_refusal(e.errno, pin.reads_new_frame(), pin.first)),
        }
    }
}

/// The status of a granted frame the frame check refused (cold: a copy's hot path only
/// passes through). `-EINVAL` is a frame not (or no longer) the granter's: read from the
/// entry for a new pin (`reads_new_frame`), Xen's `GNTST_bad_page`; the frame of an entry
/// already pinned, the owner check of `acquire_grant_for_copy`'s pinned branch,
/// `GNTST_bad_domain`. Anything else (the frame cannot take the type) is
/// `GNTST_general_error`.
#[cold]
#[inline(never)]
fn frame_refusal(errno: Errno, reads_new_frame: bool, first_pin: bool) -> i16 {
    match errno {
        Errno::EINVAL if reads_new_frame => GNTST_BAD_PAGE,
        Errno::EINVAL if !first_pin => GNTST_BAD_DOMAIN,
        _ => GNTST_GENERAL_ERROR,
    }
}
