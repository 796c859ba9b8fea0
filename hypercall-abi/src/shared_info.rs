//! `shared_info`, `vcpu_info` and the time structures (`xen.h`, `arch-x86/xen.h`,
//! `arch-x86/xen-x86_64.h`): the page Xen and the guest share for events and time.

/// Number of `vcpu_info` slots inside `shared_info` (`XEN_LEGACY_MAX_VCPUS`).
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;
/// Words in the 2-level event-channel bitmaps (`sizeof(xen_ulong_t) * 8`).
pub const EVTCHN_WORDS: usize = 64;
/// Ports addressable by the 2-level ABI on x86_64 (64 × 64).
pub const EVTCHN_2L_NR_CHANNELS: usize = EVTCHN_WORDS * 64;

/// `struct vcpu_time_info` (32 bytes): the per-vCPU clock, read like a seqlock.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Odd while Xen updates the record; re-read if it changed or is odd.
    pub version: u32,
    /// Padding.
    pub pad0: u32,
    /// TSC at the last update.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-nanoseconds multiplier (32.32 fixed point, after the shift).
    pub tsc_to_system_mul: u32,
    /// Shift applied to the TSC delta first (negative: right shift).
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags (bit 0 TSC stable, bit 1 guest stopped).
    pub flags: u8,
    /// Padding.
    pub pad1: [u8; 2],
}

impl VcpuTimeInfo {
    /// System time in nanoseconds at TSC value `tsc`, from one consistent snapshot of this
    /// record: `system_time + (((tsc - tsc_timestamp) << shift) * mul) >> 32`.
    pub const fn system_time_at(&self, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(self.tsc_timestamp);
        if self.tsc_shift >= 0 {
            delta <<= self.tsc_shift as u32;
        } else {
            delta >>= (-(self.tsc_shift as i32)) as u32;
        }
        let scaled = ((delta as u128 * self.tsc_to_system_mul as u128) >> 32) as u64;
        self.system_time.wrapping_add(scaled)
    }
}

/// `struct arch_vcpu_info` (x86_64, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    /// CR2 of the last page fault delivered to the guest.
    pub cr2: u64,
    /// Padding.
    pub pad: u64,
}

/// `struct vcpu_info` (64 bytes): per-vCPU event state and clock.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Non-zero when Xen wants an upcall; the guest clears it before scanning.
    pub evtchn_upcall_pending: u8,
    /// Non-zero disables upcalls (the guest's virtual interrupt flag, inverted).
    pub evtchn_upcall_mask: u8,
    /// Padding (`evtchn_upcall_pending` and the mask are read as one 16-bit word by Xen).
    pub pad0: [u8; 6],
    /// Bit `i` set: word `i` of `evtchn_pending` may hold unmasked pending ports.
    pub evtchn_pending_sel: u64,
    /// Architecture-specific part.
    pub arch: ArchVcpuInfo,
    /// This vCPU's clock.
    pub time: VcpuTimeInfo,
}

/// `struct arch_shared_info` (x86_64, 48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {
    /// Highest PFN the guest uses (guest-maintained, for save/restore).
    pub max_pfn: u64,
    /// MFN of the P2M frame-list-list (0 unset, `!0` means use `p2m_vaddr`).
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits (bit 0 I/O check, bit 1 PCI SERR, bit 2 unknown).
    pub nmi_reason: u64,
    /// CR3 of the virtually mapped P2M.
    pub p2m_cr3: u64,
    /// Virtual address of the virtually mapped P2M.
    pub p2m_vaddr: u64,
    /// Bumped by the guest around P2M changes.
    pub p2m_generation: u64,
}

/// `struct shared_info` (3136 bytes used of its 4096-byte page).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    /// The first 32 vCPUs' `vcpu_info`.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// Pending bits, port `p` is bit `p % 64` of word `p / 64`.
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    /// Mask bits, same indexing.
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    /// Seqlock-style version of the wall clock below.
    pub wc_version: u32,
    /// Wall-clock seconds at system time 0 (low 32 bits).
    pub wc_sec: u32,
    /// Wall-clock nanoseconds at system time 0.
    pub wc_nsec: u32,
    /// Wall-clock seconds, high 32 bits.
    pub wc_sec_hi: u32,
    /// Architecture-specific part.
    pub arch: ArchSharedInfo,
}

impl SharedInfo {
    /// An all-zero `shared_info`.
    pub const fn zeroed() -> Self {
        const V: VcpuInfo = VcpuInfo {
            evtchn_upcall_pending: 0,
            evtchn_upcall_mask: 0,
            pad0: [0; 6],
            evtchn_pending_sel: 0,
            arch: ArchVcpuInfo { cr2: 0, pad: 0 },
            time: VcpuTimeInfo {
                version: 0,
                pad0: 0,
                tsc_timestamp: 0,
                system_time: 0,
                tsc_to_system_mul: 0,
                tsc_shift: 0,
                flags: 0,
                pad1: [0; 2],
            },
        };
        Self {
            vcpu_info: [V; XEN_LEGACY_MAX_VCPUS],
            evtchn_pending: [0; EVTCHN_WORDS],
            evtchn_mask: [0; EVTCHN_WORDS],
            wc_version: 0,
            wc_sec: 0,
            wc_nsec: 0,
            wc_sec_hi: 0,
            arch: ArchSharedInfo {
                max_pfn: 0,
                pfn_to_mfn_frame_list_list: 0,
                nmi_reason: 0,
                p2m_cr3: 0,
                p2m_vaddr: 0,
                p2m_generation: 0,
            },
        }
    }
}

const _: () = assert!(core::mem::size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(core::mem::size_of::<ArchVcpuInfo>() == 16);
const _: () = assert!(core::mem::size_of::<VcpuInfo>() == 64);
const _: () = assert!(core::mem::offset_of!(VcpuInfo, time) == 32);
const _: () = assert!(core::mem::size_of::<ArchSharedInfo>() == 48);
const _: () = assert!(core::mem::size_of::<SharedInfo>() == 3136);
const _: () = assert!(core::mem::offset_of!(SharedInfo, evtchn_pending) == 2048);
const _: () = assert!(core::mem::offset_of!(SharedInfo, wc_version) == 3072);
const _: () = assert!(core::mem::offset_of!(SharedInfo, arch) == 3088);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_scales_tsc_delta() {
        let t = VcpuTimeInfo {
            tsc_timestamp: 1000,
            system_time: 5_000,
            tsc_to_system_mul: 1 << 31, // 0.5 ns per (shifted) tick
            tsc_shift: 1,
            ..Default::default()
        };
        // delta 1000, << 1 = 2000, * 0.5 = 1000 ns.
        assert_eq!(t.system_time_at(2000), 6_000);
        let r = VcpuTimeInfo { tsc_shift: -1, ..t };
        assert_eq!(r.system_time_at(2000), 5_250);
    }
}
