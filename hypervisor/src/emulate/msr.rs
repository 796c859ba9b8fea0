//! The virtual MSR policy for `rdmsr`/`wrmsr` from a PV guest kernel, after Xen 4.17's
//! `read_msr`/`write_msr` (`pv/emul-priv-op.c`) and `guest_rdmsr`/`guest_wrmsr` (`msr.c`).
//!
//! | MSR | read | write |
//! |---|---|---|
//! | `IA32_TSC` 0x10 | TSC | `#GP` |
//! | `APIC_BASE` 0x1b | `0xfee00000 \| ENABLE`, `\| BSP` on vCPU 0 (Linux PV reads it) | `#GP` |
//! | `MISC_ENABLE` 0x1a0 | host value without PERF_AVAIL, MONITOR_ENABLE; with BTS_UNAVAIL, PEBS_UNAVAIL, XTPR_DISABLE | ignored (Xen warns) |
//! | `CR_PAT` 0x277 | `XEN_MSR_PAT` (Xen's fixed PAT) | `#GP` |
//! | `PERF_CAPABILITIES` 0x345 | 0 (no vPMU) | `#GP` |
//! | `EFER` 0xc0000080 | host value & (SCE LME LMA NXE FFXSE) (SVME hidden) | same value: ignored (Linux writes back what it read); other: `#GP` |
//! | `FS_BASE` 0xc0000100 | `VcpuState::fs_base` | canonical: `fs_base`, else `#GP` |
//! | `GS_BASE` 0xc0000101 | `gs_base_kernel` | canonical: `gs_base_kernel`, else `#GP` |
//! | `SHADOW_GS_BASE` 0xc0000102 | `gs_base_user` | canonical: `gs_base_user`, else `#GP` |
//! | `TSC_AUX` 0xc0000103 | `PrivState::tsc_aux` if CPUID has RDTSCP, else `#GP` | 32-bit value stored, else `#GP` |
//! | Xen hypercall page 0x40000000 | `#GP` | `gfn << 12 \| 0`: [`Outcome::HypercallPage`]; page index ≠ 0: `#GP` |
//! | anything else | `#GP(0)`, except Xen's compatibility rule: a guest with no `#GP` handler registered reads 0 from an MSR the host has (outside 0x4000xxxx) | `#GP(0)` (`msr_relaxed` off, Xen's default) |

use super::{Context, Outcome, Platform, GP};
use crate::vcpu::{is_canonical, VECTOR_GP};

/// MSR numbers.
pub mod index {
    /// Time-stamp counter.
    pub const IA32_TSC: u32 = 0x10;
    /// Local APIC base.
    pub const APIC_BASE: u32 = 0x1b;
    /// Miscellaneous feature enables.
    pub const MISC_ENABLE: u32 = 0x1a0;
    /// Page attribute table.
    pub const CR_PAT: u32 = 0x277;
    /// Performance capabilities.
    pub const PERF_CAPABILITIES: u32 = 0x345;
    /// Extended feature enables.
    pub const EFER: u32 = 0xc000_0080;
    /// FS base.
    pub const FS_BASE: u32 = 0xc000_0100;
    /// Active GS base (the guest kernel's, since it runs with its own GS active).
    pub const GS_BASE: u32 = 0xc000_0101;
    /// The inactive GS base (`swapgs`): the guest user's.
    pub const SHADOW_GS_BASE: u32 = 0xc000_0102;
    /// `rdtscp`'s auxiliary value.
    pub const TSC_AUX: u32 = 0xc000_0103;
    /// Xen's hypercall-page MSR (CPUID `0x40000002` EBX).
    pub const XEN_HYPERCALL_PAGE: u32 = 0x4000_0000;
}

/// Xen's fixed PAT (`XEN_MSR_PAT`): WB, WT, UC-, UC, WC, WP, UC-, UC... as PV guests see it.
pub const XEN_MSR_PAT: u64 = 0x0005_0100_0704_0406;

const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const EFER_FFXSE: u64 = 1 << 14;

/// Xen's `guest_efer` for a 64-bit PV guest: the host EFER with unknown bits and SVME hidden.
pub fn guest_efer(host: u64) -> u64 {
    host & (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE | EFER_FFXSE)
}

const MISC_PERF_AVAIL: u64 = 1 << 7;
const MISC_BTS_UNAVAIL: u64 = 1 << 11;
const MISC_PEBS_UNAVAIL: u64 = 1 << 12;
const MISC_MONITOR_ENABLE: u64 = 1 << 18;
const MISC_XTPR_DISABLE: u64 = 1 << 23;

/// Xen's `guest_misc_enable`: no PMU, no BTS/PEBS, no MONITOR, xTPR off.
pub fn guest_misc_enable(host: u64) -> u64 {
    (host & !(MISC_PERF_AVAIL | MISC_MONITOR_ENABLE)) | MISC_BTS_UNAVAIL | MISC_PEBS_UNAVAIL | MISC_XTPR_DISABLE
}

const APIC_BASE_BSP: u64 = 1 << 8;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_DEFAULT_PHYS_BASE: u64 = 0xfee0_0000;

/// CPUID `0x80000001` EDX bit 27.
fn has_rdtscp(platform: &mut dyn Platform) -> bool {
    platform.cpuid(0x8000_0000, 0)[0] >= 0x8000_0001 && platform.cpuid(0x8000_0001, 0)[3] & (1 << 27) != 0
}

/// `rdmsr`: the value, or `None` for `#GP(0)`.
pub(super) fn read(ctx: &mut Context<'_>, platform: &mut dyn Platform, nr: u32) -> Option<u64> {
    let v = match nr {
        index::IA32_TSC => Some(platform.tsc()),
        index::APIC_BASE => {
            Some(APIC_BASE_ENABLE | APIC_DEFAULT_PHYS_BASE | if ctx.vcpu_id == 0 { APIC_BASE_BSP } else { 0 })
        }
        index::MISC_ENABLE => platform.read_msr(nr).map(guest_misc_enable),
        index::CR_PAT => Some(XEN_MSR_PAT),
        index::PERF_CAPABILITIES => Some(0),
        index::EFER => platform.read_msr(nr).map(guest_efer),
        index::FS_BASE | index::GS_BASE | index::SHADOW_GS_BASE => {
            platform.refresh_segment_state(ctx.vcpu);
            Some(match nr {
                index::FS_BASE => ctx.vcpu.fs_base,
                index::GS_BASE => ctx.vcpu.gs_base_kernel,
                _ => ctx.vcpu.gs_base_user,
            })
        }
        index::TSC_AUX if has_rdtscp(platform) => Some(ctx.state.tsc_aux as u64),
        _ => None,
    };
    // Xen 4.15+: a guest without a #GP handler (early boot of old kernels) cannot survive the
    // fault, so an MSR the host has reads as 0 instead; Xen's own leaves are exempt.
    v.or_else(|| {
        let no_handler = ctx.vcpu.trap_table[VECTOR_GP as usize].address == 0;
        (no_handler && nr >> 16 != 0x4000 && platform.read_msr(nr).is_some()).then_some(0)
    })
}

/// `wrmsr`: [`Outcome::Emulated`], [`Outcome::SegmentBases`], [`Outcome::HypercallPage`]
/// or `#GP(0)`.
pub(super) fn write(ctx: &mut Context<'_>, platform: &mut dyn Platform, nr: u32, value: u64, len: u8) -> Outcome {
    match nr {
        index::FS_BASE | index::GS_BASE | index::SHADOW_GS_BASE => {
            if !is_canonical(value) {
                return GP;
            }
            // The other two as the guest has them now: `SegmentBases` loads all three.
            platform.refresh_segment_state(ctx.vcpu);
            let v = &mut *ctx.vcpu;
            match nr {
                index::FS_BASE => v.fs_base = value,
                index::GS_BASE => v.gs_base_kernel = value,
                _ => v.gs_base_user = value,
            }
            Outcome::SegmentBases
        }
        index::EFER => match platform.read_msr(nr) {
            Some(host) if guest_efer(host) == value => Outcome::Emulated,
            _ => GP,
        },
        // Xen compares with the guest view and only warns on a mismatch.
        index::MISC_ENABLE if platform.read_msr(nr).is_some() => Outcome::Emulated,
        index::TSC_AUX if has_rdtscp(platform) && value >> 32 == 0 => {
            ctx.state.tsc_aux = value as u32;
            Outcome::Emulated
        }
        // One hypercall page only: the low 12 bits select the page and must be 0.
        index::XEN_HYPERCALL_PAGE if value & 0xfff == 0 => Outcome::HypercallPage { gfn: value >> 12, len },
        _ => GP,
    }
}
