//! `GNTTABOP_copy` (Xen's `gnttab_copy_one`): copies up to a page between two frames, each
//! named either by a grant reference of some domain (granted to the caller) or, for the
//! caller's own memory, by its frame number (a PV guest's `gmfn` is an MFN).

use super::ops::{pin, unpin, PIN_HSTR_INC, PIN_HSTW_INC};
use super::GrantAccess;
use hypercall_abi::errno::Errno;
use hypercall_abi::grant_table::*;
use hypercall_abi::mm::{DomId, DOMID_SELF};

/// Page size: no copy may cross a frame.
const PAGE: usize = 4096;

/// One side of a copy, claimed: the frame, and the grant pinned for it if any.
#[derive(Clone, Copy)]
struct Claim {
    mfn: u64,
    writable: bool,
    /// `(granter, gref)` pinned for this side.
    grant: Option<(DomId, GrantRef)>,
}

impl GrantAccess<'_> {
    /// One `GNTTABOP_copy` request; returns its status. Refusals, in Xen's order:
    /// * `GNTST_bad_copy_arg`: `offset + len` beyond the page on either side;
    /// * `GNTST_permission_denied`: a frame (not gref) side names a domain other than
    ///   `DOMID_SELF`;
    /// * `GNTST_bad_domain`: a gref side names no live domain;
    /// * `GNTST_bad_gntref`: the gref is outside the granter's table;
    /// * `GNTST_general_error`: the grant is not for the caller (or pinned by another
    ///   domain), the destination grant is read-only, or the destination frame cannot be
    ///   written (a page table);
    /// * `GNTST_bad_page`: a frame side is not an ordinary frame of the caller, or a
    ///   granted frame is not the granter's.
    pub fn copy(&mut self, op: &GnttabCopy) -> i16 {
        match self.copy_checked(op) {
            Ok(()) => GNTST_OKAY,
            Err(status) => status,
        }
    }

    fn copy_checked(&mut self, op: &GnttabCopy) -> Result<(), i16> {
        let len = usize::from(op.len);
        let (src_off, dst_off) = (usize::from(op.source.offset), usize::from(op.dest.offset));
        if src_off + len > PAGE || dst_off + len > PAGE {
            return Err(GNTST_BAD_COPY_ARG);
        }
        let src_gref = op.flags & GNTCOPY_SOURCE_GREF != 0;
        let dst_gref = op.flags & GNTCOPY_DEST_GREF != 0;
        let src_dom = self.copy_domain(op.source.domid, src_gref)?;
        let dst_dom = self.copy_domain(op.dest.domid, dst_gref)?;
        let src = self.claim(&op.source, src_dom, src_gref, false)?;
        let dst = match self.claim(&op.dest, dst_dom, dst_gref, true) {
            Ok(c) => c,
            Err(status) => {
                self.release(src);
                return Err(status);
            }
        };
        // Through a buffer: source and destination may be the same frame.
        self.mmu.mem.copy_frame_bytes(src.mfn, src_off, dst.mfn, dst_off, len);
        self.release(dst);
        self.release(src);
        Ok(())
    }

    /// Xen's `gnttab_copy_lock_domain`: only `DOMID_SELF` may name a frame directly.
    fn copy_domain(&self, domid: DomId, is_gref: bool) -> Result<DomId, i16> {
        if !is_gref && domid != DOMID_SELF {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let d = if domid == DOMID_SELF { self.caller() } else { domid };
        if self.tables.is_live(d) {
            Ok(d)
        } else {
            Err(GNTST_BAD_DOMAIN)
        }
    }

    /// Pins the grant (for a gref side) and takes the frame's references for the copy.
    fn claim(&mut self, side: &GnttabCopyPtr, dom: DomId, is_gref: bool, writable: bool) -> Result<Claim, i16> {
        if !is_gref {
            let mfn = side.ref_or_gmfn;
            self.mmu.frames.get_grant_ref(mfn, dom, writable).map_err(|e| {
                if e.errno == Errno::EBUSY {
                    GNTST_GENERAL_ERROR
                } else {
                    GNTST_BAD_PAGE
                }
            })?;
            return Ok(Claim { mfn, writable, grant: None });
        }
        // The union's `u32 ref` is the low half of the little-endian word.
        let gref = side.ref_or_gmfn as u32;
        let inc = if writable { PIN_HSTW_INC } else { PIN_HSTR_INC };
        let caller = self.caller();
        let mfn = pin(self.tables, self.mmu.frames, &mut *self.mmu.mem, dom, gref, caller, !writable, inc)?;
        if self.mmu.frames.get_grant_ref(mfn, dom, writable).is_err() {
            unpin(self.tables, &mut *self.mmu.mem, dom, gref, writable, inc);
            return Err(GNTST_GENERAL_ERROR);
        }
        Ok(Claim { mfn, writable, grant: Some((dom, gref)) })
    }

    fn release(&mut self, c: Claim) {
        self.mmu.frames.put_grant_ref(c.mfn, c.writable);
        if let Some((dom, gref)) = c.grant {
            let dec = if c.writable { PIN_HSTW_INC } else { PIN_HSTR_INC };
            unpin(self.tables, &mut *self.mmu.mem, dom, gref, c.writable, dec);
        }
    }
}
