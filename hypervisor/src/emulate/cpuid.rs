//! The CPUID a PV guest sees (emulated `cpuid` under CPUID faulting and through Xen's
//! forced-emulation prefix), after Xen 4.17's `guest_cpuid` and `cpuid_hypervisor_leaves`.
//!
//! | leaf | value |
//! |---|---|
//! | basic and extended leaves up to the host's maxima | host values with the masks below |
//! | other basic/extended leaves | zero (Xen returns zeros past the policy's max leaf) |
//! | 1 | EBX[31:24] (APIC id) cleared; ECX: MONITOR, DS-CPL, VMX, SMX, EIST, TM2, SDBG, xTPR, PDCM, PCID, x2APIC, TSC-deadline cleared, DTES64 cleared, OSXSAVE = virtual CR4.OSXSAVE (or the host's in guest kernel mode, Xen's PV quirk), HYPERVISOR (bit 31) set; EDX: VME, APIC, PSN, DS, ACPI, TM, PBE cleared, MTRR only for the hardware domain |
//! | 5 (MONITOR), 6 (power), 0xa (PMU) | zero: PV guests cannot use MONITOR/MWAIT, power management or a vPMU |
//! | 7.0 | EBX: FSGSBASE (not enabled in CR4: a guest changes its bases only through `set_segment_base`, the segment-base MSRs and selector loads), SGX, SMEP, INVPCID, PQM, MPX, PQE, SMAP, PT cleared; ECX: UMIP, PKU, OSPKE, WAITPKG cleared (ring-0 or HVM-only features) |
//! | 0x80000001 | ECX: SVM, SKINIT, WDT, LWP cleared |
//! | 0x40000000 | EAX = 0x40000005 (`XEN_CPUID_MAX_NUM_LEAVES` = 5), "XenVMMXenVMM" |
//! | 0x40000001 | EAX = version, `0x00040011` for 4.17 |
//! | 0x40000002 | EAX = 1 hypercall page, EBX = 0x40000000 (hypercall-page MSR), ECX = `MMU_PT_UPDATE_PRESERVE_AD` if the policy says so |
//! | 0x40000003 | TSC: sub-leaf 0 ECX = kHz; 1: ECX/EDX = mul/shift; 2: EAX = host kHz |
//! | 0x40000004 | zero (HVM only) |
//! | 0x40000005 | sub-leaf 0 EBX = machine address width |
//! | 0x40000006 - 0x4000ffff | zero |

use super::{cr4, Context, Platform};

/// `XEN_CPUID_FIRST_LEAF + XEN_CPUID_MAX_NUM_LEAVES` (4.17 headers).
pub const XEN_CPUID_MAX_LEAF: u32 = 0x4000_0005;
/// Xen 4.17 as CPUID leaf `0x40000001` reports it.
pub const XEN_VERSION_4_17: u32 = (4 << 16) | 17;

const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];

const fn bits(list: &[u32]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < list.len() {
        m |= 1 << list[i];
        i += 1;
    }
    m
}

/// Leaf 1 ECX: DTES64 2, MONITOR 3, DS-CPL 4, VMX 5, SMX 6, EIST 7, TM2 8, SDBG 11, xTPR 14,
/// PDCM 15, PCID 17, x2APIC 21, TSC-deadline 24, OSXSAVE 27 (recomputed).
const L1_ECX_HIDE: u32 = bits(&[2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 17, 21, 24, 27]);
const L1_ECX_OSXSAVE: u32 = 1 << 27;
const L1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: VME 1, APIC 9, PSN 18, DS 21, ACPI 22, TM 29, PBE 31.
const L1_EDX_HIDE: u32 = bits(&[1, 9, 18, 21, 22, 29, 31]);
const L1_EDX_MTRR: u32 = 1 << 12;
/// Leaf 7 EBX: FSGSBASE 0, SGX 2, SMEP 7, INVPCID 10, PQM 12, MPX 14, PQE 15, SMAP 20, PT 25.
const L7_EBX_HIDE: u32 = bits(&[0, 2, 7, 10, 12, 14, 15, 20, 25]);
/// Leaf 7 ECX: UMIP 2, PKU 3, OSPKE 4, WAITPKG 5.
const L7_ECX_HIDE: u32 = bits(&[2, 3, 4, 5]);
/// Leaf 0x80000001 ECX: SVM 2, SKINIT 12, WDT 13, LWP 15.
const E1_ECX_HIDE: u32 = bits(&[2, 12, 13, 15]);

/// The CPUID result (`eax ebx ecx edx`) the trapping vCPU sees for `leaf`/`subleaf`.
pub fn guest_cpuid(ctx: &Context<'_>, platform: &mut dyn Platform, leaf: u32, subleaf: u32) -> [u32; 4] {
    if (0x4000_0000..0x4001_0000).contains(&leaf) {
        return xen_leaf(ctx, leaf, subleaf);
    }
    let max = if leaf >= 0x8000_0000 { platform.cpuid(0x8000_0000, 0)[0] } else { platform.cpuid(0, 0)[0] };
    // Outside both ranges (e.g. 0xc0000000 Centaur, 0x2000xxxx) Xen reports nothing either.
    let known = leaf <= max && (leaf < 0x4000_0000 || (0x8000_0000..0x8001_0000).contains(&leaf));
    if !known {
        return [0; 4];
    }
    let mut r = platform.cpuid(leaf, subleaf);
    let policy = ctx.policy;
    match leaf {
        1 => {
            r[1] &= 0x00ff_ffff;
            let osxsave =
                ctx.state.cr4 & cr4::OSXSAVE != 0 || (ctx.vcpu.kernel_mode && policy.host_cr4 & cr4::OSXSAVE != 0);
            r[2] = (r[2] & !L1_ECX_HIDE) | L1_ECX_HYPERVISOR | if osxsave { L1_ECX_OSXSAVE } else { 0 };
            r[3] &= !L1_EDX_HIDE;
            if !policy.hardware_domain {
                r[3] &= !L1_EDX_MTRR;
            }
        }
        5 | 6 | 0xa => r = [0; 4],
        7 if subleaf == 0 => {
            r[1] &= !L7_EBX_HIDE;
            r[2] &= !L7_ECX_HIDE;
        }
        0x8000_0001 => r[2] &= !E1_ECX_HIDE,
        _ => {}
    }
    r
}

/// Xen's own leaves (`cpuid_hypervisor_leaves`, base 0x40000000: no Viridian for PV).
fn xen_leaf(ctx: &Context<'_>, leaf: u32, subleaf: u32) -> [u32; 4] {
    let p = ctx.policy;
    match leaf - 0x4000_0000 {
        0 => [XEN_CPUID_MAX_LEAF, XEN_SIGNATURE[0], XEN_SIGNATURE[1], XEN_SIGNATURE[2]],
        1 => [p.xen_version, 0, 0, 0],
        2 => [1, 0x4000_0000, u32::from(p.preserve_ad), 0],
        3 => match subleaf {
            // Not emulating the TSC (EAX bit 0 clear), tsc_mode default, no migrations.
            0 => [0, 0, p.tsc_khz, 0],
            1 => [0, 0, p.tsc_mul_frac, p.tsc_shift as i32 as u32],
            2 => [p.tsc_khz, 0, 0, 0],
            _ => [0; 4],
        },
        5 if subleaf == 0 => [0, p.maddr_bits as u32, 0, 0],
        _ => [0; 4],
    }
}
