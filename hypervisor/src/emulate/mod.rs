//! Trap-and-emulate of privileged instructions from a PV guest, after Xen's PV emulator
//! (`xen/arch/x86/pv/emul-priv-op.c`, digest §3.1, §3.7, §3.8).
//!
//! A 64-bit PV kernel runs in ring 3, so a privileged instruction raises `#GP(0)`. The kernel
//! binary reads up to [`MAX_INSN_LEN`] bytes at the guest's `rip` (through the guest's page
//! tables; fewer if the next page is not mapped) and calls [`emulate_privileged`]; for a
//! `#UD` it calls [`emulate_invalid_op`] (Xen's forced-emulation prefix `ud2; "xen"; cpuid`).
//! Both return an [`Outcome`] that says what the caller still has to do:
//!
//! | outcome | `rip` | the caller then |
//! |---|---|---|
//! | [`Outcome::Emulated`] | advanced | resumes the guest |
//! | [`Outcome::ReflectGp`] | unchanged | bounces `#GP(code)` to the guest (its trap table) |
//! | [`Outcome::ReflectUd`] | unchanged | bounces `#UD` (no error code) |
//! | [`Outcome::Block`] | advanced | blocks the vCPU until an event is pending (`hlt`, only with `DomainPolicy::hlt_blocks`; the machine leaves it off, so `hlt` is `#GP(0)` as on Xen 4.17) |
//! | [`Outcome::FpuTaskSwitch`] | advanced | sets/clears hardware `CR0.TS` (`VcpuState::cr0_ts` is already set) |
//! | [`Outcome::SegmentBases`] | advanced | loads the hardware FS/GS bases from `VcpuState` |
//! | [`Outcome::Cr4Changed`] | advanced | loads the guest's TSD into the real CR4 while this vCPU runs (DE and OSXSAVE stay virtual) |
//! | [`Outcome::SwitchKernelRoot`] | **unchanged** | `MMUEXT_NEW_BASEPTR` on the frame; success: [`advance`] by `len`, failure: `#GP(0)` |
//! | [`Outcome::HypercallPage`] | **unchanged** | writes the hypercall page into the guest frame; success: [`advance`], failure: `#GP(0)` |
//!
//! Register results are already in the frame whenever `rip` was advanced; `RFLAGS.RF` is
//! cleared then, as on instruction retirement. Nothing here touches hardware: port I/O, host
//! CPUID/MSRs and the TSC go through the [`Platform`] trait, per-domain rules come from
//! [`DomainPolicy`], and the extra virtual state Xen keeps per vCPU (CR2, CR4, debug registers,
//! virtual IOPL, `TSC_AUX`) lives in [`PrivState`].
//!
//! `popf` is *not* here because it never traps: in ring 3 with IOPL 0 the CPU silently keeps
//! `RFLAGS.IF`. That is why a PV kernel masks events through `vcpu_info.evtchn_upcall_mask`
//! instead of `cli`/`popf`, and why `cli`/`sti` give `#GP` unless the virtual IOPL allows them
//! (then they are no-ops, never touching the event mask: Xen's "fast & loose" rule).

mod cpuid;
pub mod decode;
mod msr;

pub use cpuid::{guest_cpuid, XEN_CPUID_MAX_LEAF, XEN_VERSION_4_17};
pub use decode::{decode, decode_forced, Insn, Port, FORCED_EMULATION_PREFIX, MAX_INSN_LEN};
pub use msr::{guest_efer, guest_misc_enable, index as msr_index, XEN_MSR_PAT};

use crate::elf_image::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use crate::frame::TrapFrame;
use crate::vcpu::{is_canonical, rflags, VcpuState};

/// Hardware access the emulator needs; the kernel binary implements it with real
/// instructions, tests with a mock.
pub trait Platform {
    /// `in` of `size` (1, 2 or 4) bytes from `port`.
    fn port_in(&mut self, port: u16, size: u8) -> u32;
    /// `out` of the low `size` bytes of `value` to `port`.
    fn port_out(&mut self, port: u16, size: u8, value: u32);
    /// The host's raw `cpuid` (`eax ebx ecx edx`); the guest policy is applied on top.
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// The host MSR, `None` if reading it faults.
    fn read_msr(&mut self, msr: u32) -> Option<u64>;
    /// The TSC, as the guest should see it.
    fn tsc(&mut self) -> u64;
    /// Flushes caches (only asked for a domain allowed to: the hardware domain).
    fn wbinvd(&mut self) {}
    /// Loads `value` into XCR `xcr` for this vCPU; `false` refuses (`#GP`). The default
    /// refuses everything: the kernel does not context-switch XSAVE state yet.
    fn xsetbv(&mut self, _xcr: u32, _value: u64) -> bool {
        false
    }
    /// Brings `vcpu`'s segment bases (and selectors) up to date from the CPU, which holds
    /// them while the vCPU runs: before an emulated segment-base MSR reads or changes them.
    fn refresh_segment_state(&mut self, _vcpu: &mut VcpuState) {}
}

/// Per-domain rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainPolicy {
    /// The hardware domain (dom0): direct I/O to ports the hypervisor does not own, real
    /// `wbinvd`, `MTRR` visible in CPUID.
    pub hardware_domain: bool,
    /// `VMASST_TYPE_architectural_iopl` is on: the guest kernel counts as CPL 0 (else 1)
    /// against the virtual IOPL.
    pub architectural_iopl: bool,
    /// `hlt` blocks the vCPU ([`Outcome::Block`]). Xen 4.17 does not emulate `hlt` and
    /// reflects `#GP`; set `false` to behave exactly like it.
    pub hlt_blocks: bool,
    /// Reported in CPUID leaf `0x40000001` (`major << 16 | minor`).
    pub xen_version: u32,
    /// The host CR4: the PAE, MCE, OSFXSR, OSXMMEXCPT bits show through to the guest, and
    /// OSXSAVE is visible in CPUID in guest kernel mode when set here.
    pub host_cr4: u64,
    /// Guest TSC frequency in kHz (CPUID `0x40000003`).
    pub tsc_khz: u32,
    /// TSC-to-ns multiplier and shift (`vcpu::tsc_scale`), CPUID `0x40000003` sub-leaf 1.
    pub tsc_mul_frac: u32,
    /// See `tsc_mul_frac`.
    pub tsc_shift: i8,
    /// Machine address width (CPUID `0x40000005` EBX).
    pub maddr_bits: u8,
    /// Advertise `XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD` (Xen does for PV): only when
    /// `mmu_update` implements it.
    pub preserve_ad: bool,
}

impl DomainPolicy {
    /// The defaults for a domain: Xen 4.17, `hlt` blocks, nothing about the TSC known.
    pub fn new(hardware_domain: bool, host_cr4: u64) -> Self {
        Self {
            hardware_domain,
            architectural_iopl: false,
            hlt_blocks: true,
            xen_version: XEN_VERSION_4_17,
            host_cr4,
            tsc_khz: 0,
            tsc_mul_frac: 0,
            tsc_shift: 0,
            maddr_bits: 52,
            preserve_ad: false,
        }
    }
}

/// CR0 bits a PV guest reads besides the virtual TS: what a 64-bit host runs with.
pub const GUEST_CR0: u64 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;

/// CR0 bits.
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u64 = 1 << 1;
    /// Task switched.
    pub const TS: u64 = 1 << 3;
    /// Extension type.
    pub const ET: u64 = 1 << 4;
    /// Numeric error.
    pub const NE: u64 = 1 << 5;
    /// Write protect.
    pub const WP: u64 = 1 << 16;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits.
pub mod cr4 {
    /// Time-stamp disable (`rdtsc` faults outside ring 0).
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// PAE.
    pub const PAE: u64 = 1 << 5;
    /// Machine check enable.
    pub const MCE: u64 = 1 << 6;
    /// OS supports FXSAVE.
    pub const OSFXSR: u64 = 1 << 9;
    /// OS supports SIMD exceptions.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// `rd/wr{fs,gs}base` enable.
    pub const FSGSBASE: u64 = 1 << 16;
    /// OS supports XSAVE.
    pub const OSXSAVE: u64 = 1 << 18;
    /// The bits a PV guest controls: Xen's `PV_CR4_GUEST_MASK` less FSGSBASE, which this
    /// CPUID policy hides (`pv_fixup_guest_cr4` then drops it, as here).
    pub const GUEST_MASK: u64 = TSD | DE | OSXSAVE;
    /// Xen's `PV_CR4_GUEST_VISIBLE_MASK`: host bits the guest sees.
    pub const GUEST_VISIBLE_MASK: u64 = PAE | MCE | OSFXSR | OSXMMEXCPT;
}

/// The virtual state Xen keeps per vCPU for the emulator, beyond [`VcpuState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivState {
    /// Virtual CR2: the caller stores the faulting address here when it bounces a `#PF`
    /// (Xen's `ctrlreg[2]`); `mov %cr2` reads and writes it.
    pub cr2: u64,
    /// Virtual CR4, as `pv_fixup_guest_cr4` builds it.
    pub cr4: u64,
    /// Virtual DR0-DR7 (DR4/DR5 unused: they alias DR6/DR7).
    pub debugreg: [u64; 8],
    /// Virtual IOPL, 0-3 (`PHYSDEVOP_set_iopl`).
    pub iopl: u8,
    /// `MSR_TSC_AUX`, returned in `ecx` by `rdtscp`.
    pub tsc_aux: u32,
}

impl PrivState {
    /// Start-of-day state: CR4 shows the host's visible bits only, DR6/DR7 at reset values,
    /// virtual IOPL 0.
    pub fn new(policy: &DomainPolicy) -> Self {
        let mut debugreg = [0; 8];
        debugreg[6] = DR6_DEFAULT;
        debugreg[7] = DR7_DEFAULT;
        Self { cr2: 0, cr4: fixup_guest_cr4(policy, 0), debugreg, iopl: 0, tsc_aux: 0 }
    }
}

/// DR6 as it reads with no debug condition recorded (its reserved bits set).
pub const DR6_DEFAULT: u64 = 0xffff_0ff0;
/// DR6.BS: the #DB came from single-stepping (RFLAGS.TF).
pub const DR6_BS: u64 = 1 << 14;

/// The guest's virtual DR6 after a #DB whose conditions the CPU reported in `hw_dr6` (Xen's
/// `do_debug`): the condition bits it set are added (the guest clears them itself, as on
/// hardware); a bit that reads 1 by default reads as the CPU had it (0 only for conditions
/// reported that way, such as RTM).
pub fn merge_dr6(virtual_dr6: u64, hw_dr6: u64) -> u64 {
    (virtual_dr6 | (hw_dr6 & !DR6_DEFAULT)) & (hw_dr6 | !DR6_DEFAULT)
}
/// DR7 as it reads at reset (bit 10 reads as one).
pub const DR7_DEFAULT: u64 = 0x400;
/// DR7's reserved-zero bits 11, 12, 14 and 15.
const DR7_RESERVED_ZERO: u64 = 0xd800;
/// DR7.GD: a #DB on any debug-register access, which Xen does not offer guests.
const DR7_GENERAL_DETECT: u64 = 1 << 13;

/// Xen's `pv_fixup_guest_cr4`: the guest-controlled bits of `value`, merged with the host's
/// visible ones. Never faults; bits outside the policy are dropped silently.
pub fn fixup_guest_cr4(policy: &DomainPolicy, value: u64) -> u64 {
    (policy.host_cr4 & cr4::GUEST_VISIBLE_MASK) | (value & cr4::GUEST_MASK)
}

/// Everything the emulator reads or updates about the trapping vCPU.
pub struct Context<'a> {
    /// The vCPU (mode, roots, segment bases, virtual CR0.TS).
    pub vcpu: &'a mut VcpuState,
    /// The emulator's own per-vCPU state.
    pub state: &'a mut PrivState,
    /// The domain's rules.
    pub policy: &'a DomainPolicy,
    /// vCPU number (CPUID and `APIC_BASE.BSP`).
    pub vcpu_id: u32,
}

/// What the caller must do after an emulation attempt (see the table at the top of the
/// module for who advances `rip`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: registers written, `rip` advanced.
    Emulated,
    /// Deliver `#GP(error_code)` to the guest; the frame is unchanged.
    ReflectGp(u16),
    /// Deliver `#UD` to the guest; the frame is unchanged.
    ReflectUd,
    /// `hlt`: `rip` advanced; block the vCPU until an event is pending. The event mask is
    /// left alone (unlike `SCHEDOP_block`, which clears it).
    Block,
    /// `clts` or `mov %cr0` changing only TS: `rip` advanced, `cr0_ts` updated; the caller
    /// applies the new TS to hardware CR0 (the guest's FPU use must then trap `#NM`).
    FpuTaskSwitch(bool),
    /// `wrmsr` to FS_BASE/GS_BASE/SHADOW_GS_BASE: `rip` advanced, `VcpuState` updated; the
    /// caller loads the bases into hardware (as after `set_segment_base`).
    SegmentBases,
    /// `mov %cr4`: `rip` advanced, `PrivState::cr4` is the new virtual CR4; the caller
    /// applies its guest-controlled bits to hardware CR4 while this vCPU runs.
    Cr4Changed(u64),
    /// `mov %cr3`: make machine frame `mfn` the kernel root, as `MMUEXT_NEW_BASEPTR`. The
    /// frame is unchanged: on success advance `rip` by `len`, on failure deliver `#GP(0)`.
    SwitchKernelRoot {
        /// New L4 machine frame number (`cr3 >> 12`; PCID/flag bits are dropped, as Xen's
        /// `xen_cr3_to_pfn` does).
        mfn: u64,
        /// Instruction length.
        len: u8,
    },
    /// `wrmsr` to Xen's hypercall-page MSR (`0x40000000`): fill guest frame `gfn` with the
    /// hypercall page. The frame is unchanged: success → advance by `len`, failure → `#GP(0)`.
    HypercallPage {
        /// Guest frame (the MSR value `>> 12`; the low 12 bits, the page index, must be 0).
        gfn: u64,
        /// Instruction length.
        len: u8,
    },
}

/// Retires an instruction of `len` bytes: `rip` moves past it and `RF` is cleared. In 32-bit
/// compatibility mode the instruction pointer is 32 bits and wraps at 4 GiB, as on the CPU
/// (an `iretq` to a larger one would fault in the hypervisor).
pub fn advance(frame: &mut TrapFrame, len: usize) {
    frame.rip = frame.rip.wrapping_add(len as u64);
    if frame.cs == u64::from(hypercall_abi::arch::FLAT_RING3_CS32) {
        frame.rip &= u64::from(u32::MAX);
    }
    frame.rflags &= !rflags::RF;
}

/// Handles a `#GP(0)` raised by the guest at `frame.rip`, with `bytes` the instruction bytes
/// read there. Call it only for error code 0 (a non-zero code, e.g. from `int n`, is not an
/// emulation case).
pub fn emulate_privileged(
    ctx: &mut Context<'_>,
    platform: &mut dyn Platform,
    frame: &mut TrapFrame,
    bytes: &[u8],
) -> Outcome {
    let Some((insn, len)) = decode(bytes) else {
        return Outcome::ReflectGp(0);
    };
    let kernel = ctx.vcpu.kernel_mode;
    let out = match insn {
        Insn::In { size, port } => {
            let port = port_number(port, frame);
            if !iopl_ok(ctx) {
                return GP;
            }
            let v = if admin_io_okay(ctx.policy, port, size) {
                platform.port_in(port, size)
            } else {
                // Xen's guest_io_read: ports the domain may not touch read as all ones.
                u32::MAX
            };
            set_sized(&mut frame.rax, size, v);
            Outcome::Emulated
        }
        Insn::Out { size, port } => {
            let port = port_number(port, frame);
            if !iopl_ok(ctx) {
                return GP;
            }
            // Xen's guest_io_write drops writes to ports the domain may not touch.
            if admin_io_okay(ctx.policy, port, size) {
                platform.port_out(port, size, frame.rax as u32 & size_mask(size));
            }
            Outcome::Emulated
        }
        // String I/O needs guest memory access and segment checks; not supported (yet).
        Insn::Ins { .. } | Insn::Outs { .. } => return GP,
        // Xen's validate: no-ops when the virtual IOPL allows them, the event mask untouched.
        Insn::Cli | Insn::Sti if iopl_ok(ctx) => Outcome::Emulated,
        Insn::Cli | Insn::Sti => return GP,
        // Everything below is CPL-0 only: the guest kernel counts as ring 0, its user as 3.
        _ if !kernel && !matches!(insn, Insn::Cpuid | Insn::Rdtsc | Insn::Rdtscp) => return GP,
        Insn::Hlt if ctx.policy.hlt_blocks => Outcome::Block,
        Insn::Hlt => return GP,
        Insn::Wbinvd => {
            // Xen ignores it for domains that may not flush caches (Linux uses it in
            // start-of-day timing loops).
            if ctx.policy.hardware_domain {
                platform.wbinvd();
            }
            Outcome::Emulated
        }
        // Not in Xen's validate list: invd would discard dirty lines of other domains.
        Insn::Invd => return GP,
        Insn::Clts => {
            ctx.vcpu.cr0_ts = false;
            Outcome::FpuTaskSwitch(false)
        }
        Insn::MovFromCr { cr, gpr } => {
            let v = match cr {
                0 => GUEST_CR0 | if ctx.vcpu.cr0_ts { cr0::TS } else { 0 },
                2 => ctx.state.cr2,
                3 => ctx.vcpu.kernel_root(),
                4 => ctx.state.cr4,
                _ => return GP,
            };
            *gpr_mut(frame, gpr) = v;
            Outcome::Emulated
        }
        Insn::MovToCr { cr, gpr } => {
            let v = *gpr_mut(frame, gpr);
            match cr {
                0 => {
                    // Only TS may change; Xen warns and fails the rest ("unmodifiable CR0").
                    if (v ^ GUEST_CR0) & !cr0::TS != 0 {
                        return GP;
                    }
                    ctx.vcpu.cr0_ts = v & cr0::TS != 0;
                    Outcome::FpuTaskSwitch(ctx.vcpu.cr0_ts)
                }
                2 => {
                    ctx.state.cr2 = v;
                    Outcome::Emulated
                }
                3 => return Outcome::SwitchKernelRoot { mfn: v >> 12, len: len as u8 },
                4 => {
                    ctx.state.cr4 = fixup_guest_cr4(ctx.policy, v);
                    Outcome::Cr4Changed(ctx.state.cr4)
                }
                _ => return GP,
            }
        }
        Insn::MovFromDr { dr, gpr } => match read_dr(ctx.state, dr) {
            Ok(v) => {
                *gpr_mut(frame, gpr) = v;
                Outcome::Emulated
            }
            Err(o) => return o,
        },
        Insn::MovToDr { dr, gpr } => {
            let v = *gpr_mut(frame, gpr);
            if let Err(o) = write_dr(ctx.state, dr, v) {
                return o;
            }
            Outcome::Emulated
        }
        Insn::Rdmsr => match msr::read(ctx, platform, frame.rcx as u32) {
            Some(v) => {
                frame.rax = v & 0xffff_ffff;
                frame.rdx = v >> 32;
                Outcome::Emulated
            }
            None => return GP,
        },
        Insn::Wrmsr => {
            let value = (frame.rdx << 32) | (frame.rax & 0xffff_ffff);
            match msr::write(ctx, platform, frame.rcx as u32, value, len as u8) {
                o @ (Outcome::ReflectGp(_) | Outcome::HypercallPage { .. }) => return o,
                o => o,
            }
        }
        Insn::Rdtsc | Insn::Rdtscp => {
            // These trap only when the guest set CR4.TSD; its user mode then gets the #GP.
            if !kernel && ctx.state.cr4 & cr4::TSD != 0 {
                return GP;
            }
            let t = platform.tsc();
            frame.rax = t & 0xffff_ffff;
            frame.rdx = t >> 32;
            if insn == Insn::Rdtscp {
                frame.rcx = ctx.state.tsc_aux as u64;
            }
            Outcome::Emulated
        }
        Insn::Cpuid => {
            run_cpuid(ctx, platform, frame);
            Outcome::Emulated
        }
        Insn::Xsetbv => {
            // xsetbv needs the guest's CR4.OSXSAVE (else #UD) and is CPL-0 only.
            if ctx.state.cr4 & cr4::OSXSAVE == 0 {
                return Outcome::ReflectUd;
            }
            let value = (frame.rdx << 32) | (frame.rax & 0xffff_ffff);
            if !platform.xsetbv(frame.rcx as u32, value) {
                return GP;
            }
            Outcome::Emulated
        }
    };
    advance(frame, len);
    out
}

const GP: Outcome = Outcome::ReflectGp(0);

/// Handles a `#UD` at `frame.rip`: Xen's forced-emulation prefix followed by `cpuid` runs
/// CPUID against the domain's policy and steps past both; anything else is a plain `#UD`.
pub fn emulate_invalid_op(
    ctx: &mut Context<'_>,
    platform: &mut dyn Platform,
    frame: &mut TrapFrame,
    bytes: &[u8],
) -> Outcome {
    match decode_forced(bytes) {
        Some(len) => {
            run_cpuid(ctx, platform, frame);
            advance(frame, len);
            Outcome::Emulated
        }
        None => Outcome::ReflectUd,
    }
}

fn run_cpuid(ctx: &Context<'_>, platform: &mut dyn Platform, frame: &mut TrapFrame) {
    let r = guest_cpuid(ctx, platform, frame.rax as u32, frame.rcx as u32);
    frame.rax = r[0] as u64;
    frame.rbx = r[1] as u64;
    frame.rcx = r[2] as u64;
    frame.rdx = r[3] as u64;
}

/// Xen's `iopl_ok`: the guest kernel counts as CPL 1 (0 with `architectural_iopl`), its
/// user mode as CPL 3, against the virtual IOPL. (Xen's per-vCPU I/O bitmap,
/// `PHYSDEVOP_set_iobitmap`, is not supported.)
fn iopl_ok(ctx: &Context<'_>) -> bool {
    let cpl = match (ctx.vcpu.kernel_mode, ctx.policy.architectural_iopl) {
        (true, true) => 0,
        (true, false) => 1,
        (false, _) => 3,
    };
    cpl <= ctx.state.iopl
}

/// Ports the hypervisor drives itself: the PICs, the PIT, the speaker gate (PIT channel 2)
/// and COM1, the hypervisor console. The RTC/CMOS (0x70/0x71) is read by the hypervisor only
/// once at boot, so dom0 reaches it, as it does on Xen (which proxies it for dom0).
pub const HYPERVISOR_PORTS: [(u16, u16); 5] = [(0x20, 0x21), (0xa0, 0xa1), (0x40, 0x43), (0x61, 0x61), (0x3f8, 0x3ff)];

/// Whether `port` is one of [`HYPERVISOR_PORTS`].
pub fn port_owned_by_hypervisor(port: u16) -> bool {
    HYPERVISOR_PORTS.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
}

/// Xen's `admin_io_okay`: may this domain reach ports `port .. port + size` directly?
/// The hardware domain may, unless one of them belongs to the hypervisor; other domains
/// never. (Xen also virtualises dword `0xcf8`; here dom0 owns the PCI config ports outright,
/// which is safe because the hypervisor itself makes no PCI config accesses.)
pub fn admin_io_okay(policy: &DomainPolicy, port: u16, size: u8) -> bool {
    let last = port as u32 + size as u32 - 1;
    policy.hardware_domain
        && last <= u16::MAX as u32
        && !(port as u32..=last).any(|p| port_owned_by_hypervisor(p as u16))
}

fn port_number(port: Port, frame: &TrapFrame) -> u16 {
    match port {
        Port::Imm(p) => p as u16,
        Port::Dx => frame.rdx as u16,
    }
}

fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// Writes an `in` result: 8- and 16-bit forms merge into `rax`, the 32-bit form
/// zero-extends, as the CPU does.
fn set_sized(rax: &mut u64, size: u8, v: u32) {
    *rax = match size {
        1 => (*rax & !0xff) | (v & 0xff) as u64,
        2 => (*rax & !0xffff) | (v & 0xffff) as u64,
        _ => v as u64,
    };
}

/// A general register by encoding number (`rax rcx rdx rbx rsp rbp rsi rdi r8`..`r15`).
fn gpr_mut(frame: &mut TrapFrame, n: u8) -> &mut u64 {
    match n & 15 {
        0 => &mut frame.rax,
        1 => &mut frame.rcx,
        2 => &mut frame.rdx,
        3 => &mut frame.rbx,
        4 => &mut frame.rsp,
        5 => &mut frame.rbp,
        6 => &mut frame.rsi,
        7 => &mut frame.rdi,
        8 => &mut frame.r8,
        9 => &mut frame.r9,
        10 => &mut frame.r10,
        11 => &mut frame.r11,
        12 => &mut frame.r12,
        13 => &mut frame.r13,
        14 => &mut frame.r14,
        _ => &mut frame.r15,
    }
}

/// DR4/DR5 alias DR6/DR7 unless CR4.DE is set, when they are `#UD`; DR8+ is `#UD`.
fn dr_index(state: &PrivState, dr: u8) -> Result<usize, Outcome> {
    match dr {
        0..=3 | 6 | 7 => Ok(dr as usize),
        4 | 5 if state.cr4 & cr4::DE == 0 => Ok(dr as usize + 2),
        _ => Err(Outcome::ReflectUd),
    }
}

fn read_dr(state: &PrivState, dr: u8) -> Result<u64, Outcome> {
    Ok(state.debugreg[dr_index(state, dr)?])
}

/// `mov %drN`: as Xen's `x86emul_write_dr`, through [`set_debugreg`]: `-ENODEV` is `#UD`,
/// any other refusal `#GP(0)`.
fn write_dr(state: &mut PrivState, dr: u8, v: u64) -> Result<(), Outcome> {
    set_debugreg(state, u64::from(dr), v).map_err(|e| {
        if e == hypercall_abi::errno::Errno::ENODEV {
            Outcome::ReflectUd
        } else {
            GP
        }
    })
}

/// `get_debugreg(reg)` (Xen's `do_get_debugreg`): the virtual register, DR4/DR5 as DR6/DR7
/// unless CR4.DE is set; `-ENODEV` for anything else.
pub fn get_debugreg(state: &PrivState, reg: u64) -> Result<u64, hypercall_abi::errno::Errno> {
    let reg = u8::try_from(reg as i32).map_err(|_| hypercall_abi::errno::Errno::ENODEV)?;
    read_dr(state, reg).map_err(|_| hypercall_abi::errno::Errno::ENODEV)
}

/// `set_debugreg(reg, value)` (Xen's `set_debugreg`): a breakpoint address must be a guest
/// address (`-EPERM`); DR6 and DR7 take 32 bits (`-EINVAL`), their reserved bits adjusted as
/// Xen's `x86_adj_dr6_rsvd`/`x86_adj_dr7_rsvd` do; DR7.GD (general detect) is `-EPERM`, and
/// so is an I/O breakpoint in an enabled DR7 without CR4.DE; DR4/DR5 alias DR6/DR7 unless
/// CR4.DE is set, and other numbers are `-ENODEV`.
/// The values stay virtual: no hardware breakpoint is armed (README, limits).
pub fn set_debugreg(state: &mut PrivState, reg: u64, value: u64) -> Result<(), hypercall_abi::errno::Errno> {
    use hypercall_abi::errno::Errno;
    let reg = u8::try_from(reg as i32).map_err(|_| Errno::ENODEV)?;
    let i = dr_index(state, reg).map_err(|_| Errno::ENODEV)?;
    state.debugreg[i] = match i {
        0..=3 if !is_canonical(value) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&value) => {
            return Err(Errno::EPERM)
        }
        0..=3 => value,
        _ if value >> 32 != 0 => return Err(Errno::EINVAL),
        // Bit 12 reads as zero.
        6 => (value | DR6_DEFAULT) & !(1 << 12),
        _ if value & DR7_GENERAL_DETECT != 0 => return Err(Errno::EPERM),
        _ => {
            // An enabled DR7 with a breakpoint on I/O (R/W field 10b) needs CR4.DE.
            let io = (0..4).any(|b| (value >> (16 + 4 * b)) & 3 == 2);
            if value & 0xff != 0 && io && state.cr4 & cr4::DE == 0 {
                return Err(Errno::EPERM);
            }
            (value & !DR7_RESERVED_ZERO) | DR7_DEFAULT
        }
    };
    Ok(())
}

#[cfg(test)]
mod decode_tests;
#[cfg(test)]
mod tests;
