//! The PV MMU: Xen's page-type and reference-count model (digest §4.2-4.6) as generic,
//! host-tested code: validated `mmu_update`, `update_va_mapping` and `mmuext_op`, the
//! bootstrap tables' adoption and a dying domain's teardown.
//!
//! # Model
//!
//! [`FrameTable`] holds, per machine frame, an [`Owner`], a [`PageType`] with a type count, a
//! general reference count and the pinned/validated bits. [`Mmu`] bundles it with the machine
//! memory of page tables ([`MachineMemory`]), the hypervisor's L4 template (slots 256-271),
//! the calling domain's rights and its vCPU's roots ([`VcpuPaging`]). Every change a guest
//! asks for is checked by the rules below, so that no guest ever maps a frame it does not own
//! and no page-table frame is ever writable:
//!
//! * a present L1 entry holds a general reference on its target, plus a Writable type
//!   reference if it is RW (refused with `-EBUSY` when the target is a page table);
//! * a present L2/L3/L4 entry holds a general and an L(n-1) type reference on its target,
//!   which is validated when its type count goes from 0 to 1 (refused with `-EINVAL`);
//! * pins and the kernel/user roots hold an L4 (or pinned level) type reference;
//! * when a table's type count drops to 0 it is devalidated: its entries' references go.
//!
//! # Work in bounded steps
//!
//! Validating a table can validate a whole tree below it, and devalidating one can release a
//! whole tree: a domain's worth of tables, seconds of work under one lock. As in Xen, both go
//! in steps. Every hypervisor entry that works on page tables (an MMU or grant hypercall,
//! an emulated `mov %cr3`) starts with [`Mmu::begin_entry`]: a budget of [`WORK_BUDGET`]
//! entries ([`VcpuPaging::budget_end`]), spent first on the release stack below; if that
//! is not emptied, the entry does nothing else and runs again (a continuation; for
//! `mov %cr3` the instruction re-executed). When the budget runs out:
//!
//! * a validation stops part way, the tables on its path left `partial` (their first entries
//!   hold references, see [`FrameInfo::partial`]), and the operation fails with
//!   [`MmuError::PREEMPTED`]: the handler continues the hypercall, which runs the same
//!   operation again and so resumes the validation where it stopped (whoever next asks for
//!   that table's type resumes it);
//! * a table whose type count dropped to 0 waits on the vCPU's release stack
//!   ([`VcpuPaging::releasing`]), `partial` with all its entries still holding references;
//!   [`Mmu::drain_releases`] releases them, entry by entry, a step at a time. A frame is on
//!   the stack at most once ([`FrameInfo::on_release_stack`]), and only frames of the
//!   domain itself. A batch whose entries succeed continues its hypercall until the stack
//!   is empty: from the guest's side the hypercall that dropped the table has not returned
//!   yet. Work can still be left when the guest runs (a batch refused part way, the root
//!   CR3 held, dropped after the entry), but every entry that could see it finishes it
//!   first (`begin_entry`), so no operation ever sees a release half done.
//!
//! Without a budget (building a domain, tests) everything runs to the end at once.
//!
//! Linear (recursive) page tables, where an entry points at a table of its own level, are
//! refused (`-EINVAL`, as Xen with `pv-linear-pt=0`); superpages (PSE) likewise.
//!
//! # What the caller must do with the effects
//!
//! Operations never touch the CPU. They record what the CPU must do in
//! [`VcpuPaging::effects`] ([`PendingEffects`]). After **every** hypercall that reached the MMU
//! (whatever its [`Outcome`](crate::hypercalls::Outcome), including errors and
//! continuations, because earlier entries of a batch may have succeeded), and before the guest
//! runs again, the caller takes them with [`PendingEffects::take`] and applies them in order:
//!
//! 1. `load_cr3 = Some(maddr)`: write CR3 with `maddr` (the new kernel root, `NEW_BASEPTR`).
//!    A CR3 write also flushes all non-global TLB entries, which satisfies 2 and 3. Then,
//!    if `old_root` is set, drop the old root's reference with `Mmu::put_old_root` (which
//!    may ask for more of 2 and release frames).
//! 2. `flush_all`: flush the whole (non-global) TLB, e.g. by reloading CR3. This is also set
//!    by the MMU itself when safety needs it: after any L2-L4 entry change (the
//!    paging-structure caches may hold the old path) and when a frame that may still have a
//!    stale writable TLB entry becomes a page table.
//! 3. `flush_pages`: `invlpg` each address.
//! 4. `flush_caches`: `wbinvd` (only privileged domains can ask).
//!
//! Guest mappings never carry the global bit from us, so a CR3 reload flushes them all. The
//! hypervisor's software page walk (`guest_access`) reads the tables directly and needs no
//! flush. With one vCPU per domain, "all vCPUs" and vCPU masks mean this CPU; with SMP the
//! caller must extend `flush_all` to every CPU that runs the domain.
//!
//! The user root [`VcpuPaging::user_l4`] is loaded by the caller on every switch to guest
//! user mode; the kernel root [`VcpuPaging::kernel_l4`] on every switch to guest kernel mode.
//!
//! # Frames freed by their owner
//!
//! `XENMEM_decrease_reservation` frees frames with [`FrameTable::free_by_owner`], as Xen's
//! `guest_remove_page`: the free always succeeds for a frame the domain owns, but a frame
//! still referenced (mapped, a table in use, pinned, a root, grant-mapped) stays the
//! domain's, usable through those references, and is *released* only when its last
//! reference goes (an unmap, unpin, unhook, new root, grant unmap or the domain's teardown).
//! A released frame is owned by the hypervisor, unreferenced, and its M2P entry is
//! [`INVALID_M2P_ENTRY`]. Unpinning a table still in use likewise just drops the pin (the
//! other uses keep its type), as Xen.
//!
//! # What the kernel must wire
//!
//! 1. **M2P storage.** Build the machine's table with [`FrameTable::with_m2p_storage`]
//!    (`max_mfn`, a `&'static mut [u64]` of at least `max_mfn` entries, page-aligned and a
//!    whole number of pages, e.g. frames taken from the allocator at boot and reached through
//!    the direct map). The table fills it with `INVALID_M2P_ENTRY` and is its only writer;
//!    map those frames read-only and user-readable (no RW, US set) at `0xFFFF800000000000`
//!    (L4 slot 256, the first of [`HYPERVISOR_SLOTS`]) through the hypervisor's L4 template,
//!    so every validated guest L4 gets them. [`FrameTable::with_provided_storage`] takes
//!    memory for the per-frame records too (20 bytes a frame), so that the RAM the table
//!    can describe is not bounded by the heap. `FrameTable::new` keeps both on the heap
//!    (tests).
//! 2. **Released frames.** After every hypercall that reached the MMU or the grant tables,
//!    and after a domain's teardown, take [`FrameTable::take_released`] (cheap when empty,
//!    see [`FrameTable::has_released`]) and return each frame to the frame allocator. Before
//!    any of them is handed out again every CPU's TLB must be flushed (the kernel's
//!    `free_to_allocator` does so with a shootdown); the MMU also sets `flush_all` in the
//!    pending effects when it releases a frame, for the caller's own CPU.
//! 3. **Page counts.** Report [`FrameTable::pages_of`]`(domain)` as the domain's `tot_pages`
//!    (`DomainFacts::nr_pages`, `getdomaininfo`): frames assigned with
//!    [`FrameTable::assign_frame`], minus those freed and released; pages shared by the
//!    hypervisor are not counted. As in Xen, a freed frame still referenced counts until it is
//!    released.
//! 4. **Teardown.** A dead domain's frames are [`FrameTable::frames_of`]`(domain)` (or check
//!    [`FrameTable::owned_by`] before [`FrameTable::free_domain_frame`]): the builder's P2M
//!    list is not enough any more, since a frame the domain freed may have been released and
//!    given to another domain since. Frames the domain freed that were still referenced are
//!    released during [`Mmu::release_domain`] and arrive through `take_released`.

mod frame_table;
mod grant_map;
mod mmu;
mod ops;
mod pte_rules;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_free;
#[cfg(test)]
mod tests_preempt;
#[cfg(test)]
mod tests_random;
#[cfg(test)]
mod tests_two_domains;

pub use crate::domain_layout::MachineMemory;
pub use frame_table::{FrameInfo, FrameTable, Owner, PageType, INVALID_M2P_ENTRY};
pub use grant_map::GrantPteSlot;
pub use mmu::{Mmu, MmuAccess};
pub use ops::{ReleaseCursor, ReleaseProgress};
pub use pte_rules::{GUEST_KERNEL_MARKER, HYPERVISOR_SLOTS};

use alloc::vec::Vec;
use hypercall_abi::errno::Errno;
use hypercall_abi::mm::DomId;

/// Page-table entries validated or released per hypervisor entry ([`Mmu::begin_entry`]): one
/// pin can validate a whole tree, one unpin release it, seconds of work for a large domain.
/// When the budget is spent the MMU stops part way (the module's "Work in bounded steps")
/// and the entry is run again, as Xen's preemptible page-type operations. About 290 TSC
/// cycles an entry under QEMU's TCG: some 2.4 M cycles, 16 full tables, an entry.
pub const WORK_BUDGET: u64 = 8192;

/// A refusal: Xen's error code and a short reason for the hypervisor's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuError {
    /// What the guest gets back (negated in `rax`).
    pub errno: Errno,
    /// Why, in a few words.
    pub reason: &'static str,
}

impl MmuError {
    /// The budget ran out part way through a validation (see the module documentation):
    /// not a failure, the operation is to be run again. Never reaches a guest.
    pub const PREEMPTED: MmuError = MmuError::new(Errno::ERESTART, "preempted: to be continued");

    /// A refusal with `errno` for `reason`.
    pub const fn new(errno: Errno, reason: &'static str) -> Self {
        Self { errno, reason }
    }

    /// Whether this is [`PREEMPTED`](Self::PREEMPTED).
    pub fn is_preempted(&self) -> bool {
        self.errno == Errno::ERESTART
    }
}

impl From<MmuError> for Errno {
    fn from(e: MmuError) -> Errno {
        e.errno
    }
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.errno, self.reason)
    }
}

/// Who is asking, and what they may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainRights {
    /// The domain whose tables and frames are used.
    pub id: DomId,
    /// The domain has I/O resources (dom0): it may map device frames and use the PWT, PCD
    /// and PAT cache bits in L1 entries, and flush caches.
    pub io_capable: bool,
}

/// The page-table roots of one vCPU, and what its CPU must do before the guest runs again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuPaging {
    /// Kernel root L4 frame (holds an L4 type reference), loaded in guest kernel mode.
    pub kernel_l4: Option<u64>,
    /// User root L4 frame (holds an L4 type reference), loaded in guest user mode.
    pub user_l4: Option<u64>,
    /// TLB, CR3 and cache work pending for the caller (see the module documentation).
    pub effects: PendingEffects,
    /// Table entries validated or released so far (wrapping): hypercall batches compare it
    /// before and after their operations to bound the work of one hypervisor entry.
    pub work: u64,
    /// Where validations and releases stop for this hypervisor entry: when `work` reaches
    /// it ([`Mmu::start_budget`]). `None`: no limit (domain building, tests).
    pub budget_end: Option<u64>,
    /// Where the work of every call inside a multicall stops: the multicall's own budget,
    /// which each call's [`Mmu::begin_entry`] does not go beyond. `None` outside multicalls.
    pub batch_end: Option<u64>,
    /// Tables whose type count dropped to 0, waiting for their entries' references to be
    /// released ([`Mmu::drain_releases`]), last pushed first. Frames of this vCPU's domain;
    /// one vCPU per domain, so this is the domain's.
    pub releasing: Vec<u64>,
}

/// Most single-page flushes remembered before they collapse into a full flush.
pub const MAX_PENDING_PAGE_FLUSHES: usize = 8;

/// CPU work the MMU asks of its caller; see the module documentation for the order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingEffects {
    /// Load this machine address into CR3 (a new kernel root).
    pub load_cr3: Option<u64>,
    /// Flush the whole TLB.
    pub flush_all: bool,
    /// Flush these linear addresses (ignored when `flush_all`).
    pub flush_pages: heapless::Vec<u64, MAX_PENDING_PAGE_FLUSHES>,
    /// Write back and invalidate the caches.
    pub flush_caches: bool,
    /// The kernel root CR3 held when this hypercall replaced it (`NEW_BASEPTR`): it keeps its
    /// L4 reference until the new root is loaded (Xen's `old_guest_table`). Dropped at once,
    /// it could become writable, and be rewritten, hypervisor slots included, while the CPU
    /// still walks it for the rest of the hypercall. The caller drops it with
    /// [`Mmu::put_old_root`](crate::mm::Mmu::put_old_root) after the CR3 write.
    pub old_root: Option<u64>,
}

impl PendingEffects {
    /// Whether nothing is pending (checked field by field: this runs on every hypercall).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.load_cr3.is_none()
            && !self.flush_all
            && self.flush_pages.is_empty()
            && !self.flush_caches
            && self.old_root.is_none()
    }

    /// Takes the pending work, leaving none. The old root must have been dropped first
    /// ([`Mmu::put_old_root`](crate::mm::Mmu::put_old_root)), or its reference would leak.
    pub fn take(&mut self) -> PendingEffects {
        debug_assert!(self.old_root.is_none(), "old root taken without put_old_root");
        core::mem::take(self)
    }

    /// Adds a guest-requested flush.
    pub fn request(&mut self, flush: TlbFlush) {
        match flush {
            TlbFlush::None => {}
            TlbFlush::All => self.flush_all = true,
            TlbFlush::Page(va) => {
                if !self.flush_all && !self.flush_pages.contains(&va) && self.flush_pages.push(va).is_err() {
                    self.flush_all = true;
                }
            }
        }
        if self.flush_all {
            self.flush_pages.clear();
        }
    }
}

/// A TLB flush a guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbFlush {
    /// Nothing.
    None,
    /// One linear address.
    Page(u64),
    /// The whole TLB.
    All,
}

/// Which vCPUs a requested flush concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushScope {
    /// The calling vCPU (`UVMF_LOCAL`, `*_LOCAL`).
    Local,
    /// Every vCPU of the domain (`UVMF_ALL`, `*_ALL`).
    AllVcpus,
    /// The vCPUs whose bits are set in the guest bitmap at this guest address
    /// (`UVMF_MULTI`, `*_MULTI`): the hypercall layer reads it.
    VcpuMask(u64),
}

/// A flush requested by the guest through a flag or command, returned for the hypercall
/// layer to resolve (its scope may need a guest read) and add to [`PendingEffects`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushRequest {
    /// What to flush.
    pub flush: TlbFlush,
    /// For whom.
    pub scope: FlushScope,
}

impl FlushRequest {
    /// No flush.
    pub const NONE: FlushRequest = FlushRequest { flush: TlbFlush::None, scope: FlushScope::Local };

    /// The flush `update_va_mapping`'s `flags` ask for at `va` (`UVMF_*`): Xen does it
    /// whether or not the update itself succeeded.
    pub fn of_update_va_mapping(va: u64, flags: u64) -> FlushRequest {
        use hypercall_abi::mm::{UVMF_ALL, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_LOCAL, UVMF_TLB_FLUSH};
        let flush = match flags & UVMF_FLUSHTYPE_MASK {
            UVMF_TLB_FLUSH => TlbFlush::All,
            UVMF_INVLPG => TlbFlush::Page(va),
            _ => TlbFlush::None,
        };
        let scope = match flags & !UVMF_FLUSHTYPE_MASK {
            UVMF_LOCAL => FlushScope::Local,
            UVMF_ALL => FlushScope::AllVcpus,
            mask => FlushScope::VcpuMask(mask),
        };
        if flush == TlbFlush::None {
            FlushRequest::NONE
        } else {
            FlushRequest { flush, scope }
        }
    }
}
