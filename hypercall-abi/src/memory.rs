//! `memory_op` (`memory.h`): reservations and the pseudo-physical memory map.

/// `XENMEM_increase_reservation` ([`XenMemoryReservation`]).
pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
/// `XENMEM_decrease_reservation` ([`XenMemoryReservation`]).
pub const XENMEM_DECREASE_RESERVATION: u64 = 1;
/// `XENMEM_maximum_ram_page`: highest machine frame (argument NULL).
pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
/// `XENMEM_current_reservation`: pages the domain has (argument: `*const DomId`).
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// `XENMEM_maximum_reservation`: the domain's page limit (argument: `*const DomId`).
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// `XENMEM_machphys_mfn_list`: MFNs backing the M2P table.
pub const XENMEM_MACHPHYS_MFN_LIST: u64 = 5;
/// `XENMEM_populate_physmap` ([`XenMemoryReservation`]).
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// `XENMEM_add_to_physmap` (translated guests only).
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `XENMEM_memory_map`: the domain's pseudo-physical e820 map ([`XenMemoryMap`]).
pub const XENMEM_MEMORY_MAP: u64 = 9;
/// `XENMEM_machine_memory_map`: the host's e820 map (privileged; [`XenMemoryMap`]).
pub const XENMEM_MACHINE_MEMORY_MAP: u64 = 10;
/// `XENMEM_exchange`.
pub const XENMEM_EXCHANGE: u64 = 11;
/// `XENMEM_machphys_mapping` ([`XenMachphysMapping`]).
pub const XENMEM_MACHPHYS_MAPPING: u64 = 12;
/// `XENMEM_set_memory_map` (toolstack).
pub const XENMEM_SET_MEMORY_MAP: u64 = 13;
/// `XENMEM_maximum_gpfn` (argument: `*const DomId`).
pub const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `XENMEM_remove_from_physmap`.
pub const XENMEM_REMOVE_FROM_PHYSMAP: u64 = 15;
/// `XENMEM_claim_pages` (toolstack-only in the header).
pub const XENMEM_CLAIM_PAGES: u64 = 24;
/// `XENMEM_get_vnumainfo`.
pub const XENMEM_GET_VNUMAINFO: u64 = 26;
/// `XENMEM_reserved_device_memory_map` (toolstack-only in the header).
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u64 = 27;
/// `XENMEM_acquire_resource`.
pub const XENMEM_ACQUIRE_RESOURCE: u64 = 28;

/// `XENMEMF_populate_on_demand`.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `XENMEMF_exact_node_request`.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// `XENMEMF_vnode`.
pub const XENMEMF_VNODE: u32 = 1 << 18;

/// `struct xen_memory_reservation` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryReservation {
    /// Guest pointer to an array of frame numbers (IN or OUT depending on the sub-op).
    pub extent_start: u64,
    /// Number of extents.
    pub nr_extents: u64,
    /// Each extent is 2^order pages.
    pub extent_order: u32,
    /// `XENMEMF_*` flags (address bits in 0-7, node+1 in 8-15).
    pub mem_flags: u32,
    /// Domain (unprivileged callers: `DOMID_SELF`).
    pub domid: u16,
}

/// `struct xen_memory_map` (16 bytes): IN the buffer's capacity in entries, OUT the count.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMemoryMap {
    /// IN: capacity of `buffer` in [`E820Entry`]s; OUT: entries written.
    pub nr_entries: u32,
    /// Guest pointer to an array of [`E820Entry`].
    pub buffer: u64,
}

/// `struct xen_machphys_mapping` (24 bytes): where the read-only M2P table is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenMachphysMapping {
    /// Start of the M2P virtual range.
    pub v_start: u64,
    /// End of the M2P virtual range.
    pub v_end: u64,
    /// Highest MFN the table covers.
    pub max_mfn: u64,
}

/// E820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 type: ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// E820 type: ACPI NVS.
pub const E820_NVS: u32 = 4;
/// E820 type: unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One BIOS INT 15h/E820 entry as `XENMEM_memory_map` writes them (20 bytes, packed).
/// Not defined in Xen's public headers (they say "the same format as the BIOS call").
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E820Entry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_*` type.
    pub kind: u32,
}

const _: () = assert!(core::mem::size_of::<XenMemoryReservation>() == 32);
const _: () = assert!(core::mem::offset_of!(XenMemoryReservation, domid) == 24);
const _: () = assert!(core::mem::size_of::<XenMemoryMap>() == 16);
const _: () = assert!(core::mem::size_of::<XenMachphysMapping>() == 24);
const _: () = assert!(core::mem::size_of::<E820Entry>() == 20);
