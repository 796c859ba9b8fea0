//! The frame table: Xen's per-frame `page_info` (digest §4.6) and the M2P.
//!
//! Every machine frame has an owner, a type with a type count, a general reference count and
//! the pinned/validated bits. The counting rules that use these fields live in `mmu.rs`; this
//! file holds the data and the operations the hypervisor itself performs on frames (giving a
//! frame to a domain, sharing a hypervisor page, freeing a frame).

use super::MmuError;
use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::DomId;

/// M2P value of a frame that has no pseudo-physical number (Xen's `INVALID_M2P_ENTRY`).
pub const INVALID_M2P_ENTRY: u64 = u64::MAX;

/// Who a machine frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The hypervisor: its own memory and every free frame. No guest may map it.
    Hypervisor,
    /// A domain: it may map the frame and use it as a page table.
    Domain(DomId),
    /// Device memory (MMIO): mappable only by domains with I/O rights, never reference-counted.
    Io,
}

/// The type of a frame: what its contents are currently trusted to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageType {
    /// Never typed since it was assigned.
    None,
    /// Ordinary data, possibly mapped writable (Xen's `PGT_writable_page`).
    Writable,
    /// Level-1 page table (maps 4 KiB pages).
    L1,
    /// Level-2 page table.
    L2,
    /// Level-3 page table.
    L3,
    /// Level-4 page table (a root).
    L4,
}

impl PageType {
    /// The page-table type of `level` (1-4).
    pub const fn table(level: u8) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            _ => PageType::L4,
        }
    }

    /// The level (1-4) of a page-table type, `None` for data types.
    pub const fn level(self) -> Option<u8> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            PageType::None | PageType::Writable => None,
        }
    }

    /// Whether this is one of the page-table types.
    pub const fn is_table(self) -> bool {
        self.level().is_some()
    }
}

/// Xen's `struct page_info` for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Owner.
    pub owner: Owner,
    /// Current type; kept when `type_count` drops to 0 so a re-use as the same table type
    /// is recognised, but meaningless while the count is 0.
    pub page_type: PageType,
    /// References to the type: RW mappings (Writable), higher-level entries, pins, roots.
    pub type_count: u32,
    /// General references: every mapping, entry, pin and root holds one.
    pub ref_count: u32,
    /// A pin holds one type and one general reference.
    pub pinned: bool,
    /// The contents were checked as `page_type` (always true for Writable).
    pub validated: bool,
    /// A hypervisor page shared with its domain (shared_info): permanently Writable-typed,
    /// never a page table, never freed by the guest, mapped with write-back caching only.
    pub shared_by_hypervisor: bool,
}

impl FrameInfo {
    const HYPERVISOR: FrameInfo = FrameInfo {
        owner: Owner::Hypervisor,
        page_type: PageType::None,
        type_count: 0,
        ref_count: 0,
        pinned: false,
        validated: false,
        shared_by_hypervisor: false,
    };

    /// Whether the frame is a page table in use (typed as a table with references).
    pub fn is_live_table(&self) -> bool {
        self.page_type.is_table() && self.type_count > 0
    }
}

/// Per-frame accounting for every machine frame below `max_mfn`, and the M2P.
pub struct FrameTable {
    frames: Vec<FrameInfo>,
    m2p: Vec<u64>,
}

impl FrameTable {
    /// A table for frames `0..max_mfn`, all owned by the hypervisor, M2P all invalid.
    pub fn new(max_mfn: u64) -> Self {
        let n = usize::try_from(max_mfn).unwrap_or(usize::MAX);
        let mut frames = Vec::new();
        frames.resize(n, FrameInfo::HYPERVISOR);
        let mut m2p = Vec::new();
        m2p.resize(n, INVALID_M2P_ENTRY);
        Self { frames, m2p }
    }

    /// Number of frames covered (frames at or above are outside RAM: treated as I/O).
    pub fn max_mfn(&self) -> u64 {
        self.frames.len() as u64
    }

    /// The record of `mfn`, if the table covers it.
    pub fn get(&self, mfn: u64) -> Option<&FrameInfo> {
        self.frames.get(usize::try_from(mfn).ok()?)
    }

    pub(super) fn get_mut(&mut self, mfn: u64) -> Option<&mut FrameInfo> {
        self.frames.get_mut(usize::try_from(mfn).ok()?)
    }

    /// Whether `mfn` is covered and owned by `domain`.
    pub fn owned_by(&self, mfn: u64, domain: DomId) -> bool {
        self.get(mfn)
            .is_some_and(|f| f.owner == Owner::Domain(domain))
    }

    /// The M2P entry of `mfn` (the pseudo-physical frame the owner gave it).
    pub fn m2p(&self, mfn: u64) -> Option<u64> {
        self.m2p.get(usize::try_from(mfn).ok()?).copied()
    }

    /// The whole M2P, one u64 per frame (for the caller to expose read-only to guests).
    pub fn m2p_entries(&self) -> &[u64] {
        &self.m2p
    }

    /// Sets the M2P entry of `mfn` (the builder records `pfn` for each frame it gives).
    pub fn set_m2p(&mut self, mfn: u64, pfn: u64) -> Result<(), MmuError> {
        let slot = usize::try_from(mfn).ok().and_then(|i| self.m2p.get_mut(i));
        let slot = slot.ok_or(MmuError::new(
            Errno::EINVAL,
            "M2P update of a frame outside RAM",
        ))?;
        *slot = pfn;
        Ok(())
    }

    /// Gives the hypervisor-owned, unreferenced frame `mfn` to `domain`, untyped.
    /// Refused with `-EBUSY` if another owner has it or it is still referenced, `-EINVAL`
    /// if the table does not cover it.
    pub fn assign_frame(&mut self, mfn: u64, domain: DomId) -> Result<(), MmuError> {
        let f = self
            .get_mut(mfn)
            .ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        if f.owner != Owner::Hypervisor || f.ref_count != 0 || f.type_count != 0 {
            return Err(MmuError::new(
                Errno::EBUSY,
                "frame already owned or referenced",
            ));
        }
        *f = FrameInfo {
            owner: Owner::Domain(domain),
            ..FrameInfo::HYPERVISOR
        };
        Ok(())
    }

    /// Shares the hypervisor page `mfn` (shared_info) with `domain`, as Xen's
    /// `share_xen_page_with_guest`: the domain may map it (even writable) but it holds a
    /// permanent Writable type reference, so it can never become a page table, and the domain
    /// cannot free it. [`release_domain`](super::Mmu::release_domain) gives it back.
    pub fn share_with_guest(&mut self, mfn: u64, domain: DomId) -> Result<(), MmuError> {
        let f = self
            .get_mut(mfn)
            .ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        if f.owner != Owner::Hypervisor || f.ref_count != 0 || f.type_count != 0 {
            return Err(MmuError::new(
                Errno::EBUSY,
                "frame already owned or referenced",
            ));
        }
        *f = FrameInfo {
            owner: Owner::Domain(domain),
            page_type: PageType::Writable,
            type_count: 1,
            ref_count: 1,
            validated: true,
            shared_by_hypervisor: true,
            ..FrameInfo::HYPERVISOR
        };
        Ok(())
    }

    /// Marks `[first, first + count)` as device memory that I/O-capable domains may map.
    /// Refused with `-EBUSY` (nothing changed) if any of them is owned by a domain or referenced.
    pub fn mark_io(&mut self, first: u64, count: u64) -> Result<(), MmuError> {
        let end = first.saturating_add(count).min(self.max_mfn());
        let busy = (first..end).any(|m| {
            self.get(m)
                .is_some_and(|f| f.owner != Owner::Hypervisor || f.ref_count != 0)
        });
        if busy {
            return Err(MmuError::new(
                Errno::EBUSY,
                "frame in use cannot become I/O memory",
            ));
        }
        for m in first..end {
            if let Some(f) = self.get_mut(m) {
                f.owner = Owner::Io;
            }
        }
        Ok(())
    }

    /// Takes `mfn` back from its domain (for `decrease_reservation` or domain death).
    ///
    /// Refused with `-EBUSY` while the frame is mapped, typed, pinned, used as a root or
    /// shared by the hypervisor: Xen instead defers the free until the last reference goes;
    /// refusing keeps ownership simple and the error visible. `-EINVAL` if no domain owns it.
    ///
    /// After success the caller must flush every TLB that may still hold a stale mapping of
    /// the frame (any CPU that ran the domain) before giving it to anyone else.
    pub fn free_domain_frame(&mut self, mfn: u64) -> Result<(), MmuError> {
        let f = self
            .get_mut(mfn)
            .ok_or(MmuError::new(Errno::EINVAL, "frame outside RAM"))?;
        if !matches!(f.owner, Owner::Domain(_)) {
            return Err(MmuError::new(Errno::EINVAL, "frame not owned by a domain"));
        }
        if f.ref_count != 0 || f.type_count != 0 || f.pinned || f.shared_by_hypervisor {
            return Err(MmuError::new(
                Errno::EBUSY,
                "frame still mapped, typed or pinned",
            ));
        }
        *f = FrameInfo::HYPERVISOR;
        if let Some(e) = usize::try_from(mfn).ok().and_then(|i| self.m2p.get_mut(i)) {
            *e = INVALID_M2P_ENTRY;
        }
        Ok(())
    }

    /// Every frame number with its record (for audits and teardown).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &FrameInfo)> {
        self.frames.iter().enumerate().map(|(i, f)| (i as u64, f))
    }
}
