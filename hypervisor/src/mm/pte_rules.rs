//! Which page-table entry bits a PV guest may set (digest §4.2), and the adjustments Xen
//! makes to the entries it accepts (digest §3.7).

use hypercall_abi::mm::pte;

/// L4 slots owned by the hypervisor (256-271, `0xffff800000000000`-`0xffff87ffffffffff`).
pub const HYPERVISOR_SLOTS: core::ops::Range<usize> = 256..272;

/// Bits 9-11, available to the guest.
const AVAIL_LOW: u64 = 0x7 << 9;
/// Bits 52-62, available to the guest.
const AVAIL_HIGH: u64 = 0x7ff << 52;
/// Xen's private "guest kernel" marker (bit 52) on L1 entries the guest made without U.
pub const GUEST_KERNEL_MARKER: u64 = 1 << 52;
/// Flags allowed at every level.
const COMMON_ALLOWED: u64 =
    pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED | pte::DIRTY | AVAIL_LOW | AVAIL_HIGH | pte::NX;
/// The cache-attribute bits of an L1 entry.
pub const CACHE_ATTRS: u64 = pte::PWT | pte::PCD | pte::PAT_OR_PSE;

/// The machine frame an entry points at.
pub const fn entry_mfn(entry: u64) -> u64 {
    (entry & pte::ADDR_MASK) >> 12
}

/// Whether the entry is present.
pub const fn is_present(entry: u64) -> bool {
    entry & pte::PRESENT != 0
}

/// Whether the entry is writable.
pub const fn is_writable(entry: u64) -> bool {
    entry & pte::RW != 0
}

/// The flag bits (everything but the address) an entry of `level` must not set: PWT, PCD
/// and PAT in L1 unless the domain has I/O rights; G, PWT, PCD and PSE in L2-L4.
pub const fn disallowed_flags(level: u8, io_capable: bool) -> u64 {
    let allowed = if level == 1 {
        COMMON_ALLOWED | pte::GLOBAL | if io_capable { CACHE_ATTRS } else { 0 }
    } else {
        COMMON_ALLOWED
    };
    !(allowed | pte::ADDR_MASK)
}

/// The entry Xen stores for an accepted present guest entry of `level`. The guest kernel runs
/// in ring 3, so every level gets U; an L1 entry the guest made without U also gets the
/// private kernel marker (bit 52), and L4 entries get A. An L1 entry loses G: a global
/// translation survives the CR3 write of a domain switch, so a guest's global mapping would
/// be used by the next domain at the same address (on hardware; QEMU's TCG flushes
/// everything). Without G, a CR3 reload flushes every guest mapping. (Xen adds G to user
/// L1 entries and pays for it with global flushes on switches; we keep switches simple.)
pub const fn adjust(level: u8, entry: u64) -> u64 {
    if !is_present(entry) {
        return entry;
    }
    match level {
        1 if entry & pte::USER == 0 => (entry & !pte::GLOBAL) | pte::USER | GUEST_KERNEL_MARKER,
        1 => entry & !pte::GLOBAL,
        4 => entry | pte::USER | pte::ACCESSED,
        _ => entry | pte::USER,
    }
}

/// Whether replacing `old` by `new` (both present, both adjusted) needs the full check: the
/// frame changes, or for L1 the write right or the cache attributes (which have their own
/// rule for hypervisor pages). If not, the update only writes (Xen's fast path).
pub const fn changes_reference(level: u8, old: u64, new: u64) -> bool {
    let significant = if level == 1 { pte::ADDR_MASK | pte::RW | CACHE_ATTRS } else { pte::ADDR_MASK };
    (old ^ new) & significant != 0
}

/// Whether a guest may write L4 slot `index` (slots 256-271 are the hypervisor's).
pub const fn is_guest_l4_slot(index: usize) -> bool {
    index < HYPERVISOR_SLOTS.start || index >= HYPERVISOR_SLOTS.end
}

pub use crate::guest_access::is_canonical;

/// Index into the table of `level` (1-4) for `va`.
pub const fn table_index(va: u64, level: u8) -> usize {
    ((va >> (12 + 9 * (level as u32 - 1))) & 511) as usize
}
