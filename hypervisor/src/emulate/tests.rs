//! Emulation rules against a mock platform: ports, MSRs, control and debug registers, CPUID
//! policy (including the forced-emulation path), cli/sti, hlt, and hostile bytes.

use super::decode_tests::rng;
use super::*;
use crate::vcpu::{TrapSlot, VECTOR_GP};

const HOST_CR4: u64 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE | (1 << 7);
const HOST_EFER: u64 = 0xd01 | (1 << 12); // SCE LME LMA NXE + SVME
const RIP: u64 = 0xffff_ffff_8000_1000;
const L4: u64 = 0x0012_3000;

#[derive(Default)]
struct Mock {
    ins: Vec<(u16, u8)>,
    outs: Vec<(u16, u8, u32)>,
    wbinvd: u32,
    tsc: u64,
}

impl Platform for Mock {
    fn port_in(&mut self, port: u16, size: u8) -> u32 {
        self.ins.push((port, size));
        0x1234_5678
    }
    fn port_out(&mut self, port: u16, size: u8, value: u32) {
        self.outs.push((port, size, value));
    }
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        match leaf {
            0 => [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
            // APIC id 5; ECX: everything; EDX: everything.
            1 => [0x906ea, 0x0510_0800, u32::MAX, u32::MAX],
            7 => [0, u32::MAX, u32::MAX, subleaf],
            5 | 6 | 0xa => [7, 7, 7, 7],
            0x8000_0000 => [0x8000_0008, 0, 0, 0],
            0x8000_0001 => [0, 0, u32::MAX, 1 << 27],
            _ => [leaf, subleaf, 0xaa, 0xbb],
        }
    }
    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        match msr {
            0xc000_0080 => Some(HOST_EFER),
            0x1a0 => Some(0x0085_0089),
            0x8b => Some(0x42), // some host MSR the guest has no business with
            _ => None,
        }
    }
    fn tsc(&mut self) -> u64 {
        self.tsc += 1;
        0x1111_2222_3333_4444 + self.tsc
    }
    fn wbinvd(&mut self) {
        self.wbinvd += 1;
    }
}

/// One vCPU with its state, domain policy and frame; `run` emulates bytes at `RIP`.
struct T {
    vcpu: VcpuState,
    state: PrivState,
    policy: DomainPolicy,
    frame: TrapFrame,
    p: Mock,
}

impl T {
    fn new(dom0: bool) -> Self {
        let policy = DomainPolicy::new(dom0, HOST_CR4);
        let mut vcpu = VcpuState::new(L4);
        vcpu.trap_table[VECTOR_GP as usize] = TrapSlot { flags: 0, address: 0xffff_ffff_8000_2000 };
        let frame = TrapFrame { rip: RIP, cs: 0xe033, rflags: 0x10202, ..Default::default() };
        Self { vcpu, state: PrivState::new(&policy), policy, frame, p: Mock::default() }
    }
    fn run(&mut self, bytes: &[u8]) -> Outcome {
        let mut ctx = Context { vcpu: &mut self.vcpu, state: &mut self.state, policy: &self.policy, vcpu_id: 0 };
        emulate_privileged(&mut ctx, &mut self.p, &mut self.frame, bytes)
    }
    fn run_ud(&mut self, bytes: &[u8]) -> Outcome {
        let mut ctx = Context { vcpu: &mut self.vcpu, state: &mut self.state, policy: &self.policy, vcpu_id: 0 };
        emulate_invalid_op(&mut ctx, &mut self.p, &mut self.frame, bytes)
    }
    /// Emulates `bytes`, expects `Emulated` and a retired instruction of `len` bytes.
    fn ok(&mut self, bytes: &[u8], len: u64) {
        let rip = self.frame.rip;
        assert_eq!(self.run(bytes), Outcome::Emulated, "{bytes:02x?}");
        assert_eq!(self.frame.rip, rip + len);
        assert_eq!(self.frame.rflags & rflags::RF, 0, "RF cleared on retirement");
    }
    /// Expects `#GP(0)` with the frame untouched.
    fn gp(&mut self, bytes: &[u8]) {
        let before = self.frame.clone();
        assert_eq!(self.run(bytes), Outcome::ReflectGp(0), "{bytes:02x?}");
        assert_eq!(self.frame, before);
    }
    fn rdmsr(&mut self, msr: u32) -> Outcome {
        self.frame.rcx = msr as u64;
        self.run(&[0x0f, 0x32])
    }
    fn rdmsr_val(&mut self, msr: u32) -> u64 {
        assert_eq!(self.rdmsr(msr), Outcome::Emulated, "rdmsr {msr:#x}");
        (self.frame.rdx << 32) | self.frame.rax
    }
    fn wrmsr(&mut self, msr: u32, v: u64) -> Outcome {
        self.frame.rcx = msr as u64;
        self.frame.rax = v & 0xffff_ffff;
        self.frame.rdx = v >> 32;
        self.run(&[0x0f, 0x30])
    }
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.frame.rax = leaf as u64 | 0xdead_0000_0000_0000;
        self.frame.rcx = subleaf as u64;
        self.ok(&[0x0f, 0xa2], 2);
        [self.frame.rax, self.frame.rbx, self.frame.rcx, self.frame.rdx].map(|r| {
            assert_eq!(r >> 32, 0, "cpuid zero-extends");
            r as u32
        })
    }
}

#[test]
fn port_io_needs_virtual_iopl() {
    let mut t = T::new(true);
    t.gp(&[0xe4, 0x60]); // vIOPL 0: #GP even for dom0 (Xen's guest_io_okay)
    t.state.iopl = 1; // PHYSDEVOP_set_iopl(1), as Linux dom0 does
    t.ok(&[0xe4, 0x60], 2);
    assert_eq!(t.p.ins, vec![(0x60, 1)]);
    // Without architectural_iopl the kernel counts as CPL 1; with it, CPL 0.
    t.state.iopl = 0;
    t.policy.architectural_iopl = true;
    t.ok(&[0xec], 1);
    // Guest user mode counts as CPL 3.
    t.vcpu.kernel_mode = false;
    t.state.iopl = 1;
    t.gp(&[0xec]);
    t.state.iopl = 3;
    t.ok(&[0xec], 1);
}

#[test]
fn port_io_results_and_widths() {
    let mut t = T::new(true);
    t.state.iopl = 1;
    t.frame.rax = 0xffff_ffff_ffff_ffff;
    t.ok(&[0xe4, 0x60], 2);
    assert_eq!(t.frame.rax, 0xffff_ffff_ffff_ff78, "in al merges");
    t.frame.rax = 0xffff_ffff_ffff_ffff;
    t.frame.rdx = 0xabcd_0cfc;
    t.ok(&[0x66, 0xed], 2);
    assert_eq!(t.frame.rax, 0xffff_ffff_ffff_5678, "in ax merges");
    t.ok(&[0xed], 1);
    assert_eq!(t.frame.rax, 0x1234_5678, "in eax zero-extends");
    assert_eq!(t.p.ins, vec![(0x60, 1), (0xcfc, 2), (0xcfc, 4)]);
    t.frame.rax = 0xaaaa_bbbb_cccc_dddd;
    t.ok(&[0xee], 1);
    t.ok(&[0x66, 0xef], 2);
    t.ok(&[0xef], 1);
    t.ok(&[0xe6, 0xf4], 2); // isa-debug-exit: dom0 may write it
    assert_eq!(t.p.outs, vec![(0xcfc, 1, 0xdd), (0xcfc, 2, 0xdddd), (0xcfc, 4, 0xcccc_dddd), (0xf4, 1, 0xdd)]);
}

#[test]
fn hypervisor_ports_are_virtualised_for_dom0() {
    let mut t = T::new(true);
    t.state.iopl = 1;
    for port in [0x20u16, 0x21, 0xa0, 0xa1, 0x40, 0x43, 0x61, 0x3f8, 0x3fd, 0x3ff] {
        t.frame.rdx = port as u64;
        t.frame.rax = 0;
        t.ok(&[0xec], 1);
        assert_eq!(t.frame.rax, 0xff, "port {port:#x} reads all ones");
        t.ok(&[0xee], 1);
    }
    // A dword access that straddles into COM1 is refused as a whole.
    t.frame.rdx = 0x3f6;
    t.ok(&[0xed], 1);
    assert_eq!(t.frame.rax, 0xffff_ffff);
    assert!(t.p.ins.is_empty() && t.p.outs.is_empty());
    assert!(admin_io_okay(&t.policy, 0xcf8, 4) && admin_io_okay(&t.policy, 0x3f7, 1));
    assert!(!admin_io_okay(&t.policy, 0xffff, 2), "wraps past 0xffff");
}

#[test]
fn domu_gets_no_ports() {
    let mut t = T::new(false);
    t.gp(&[0xe6, 0x80]);
    t.state.iopl = 1; // even with a virtual IOPL nothing reaches hardware
    t.frame.rax = 0;
    t.ok(&[0xe5, 0x80], 2);
    assert_eq!(t.frame.rax, 0xffff_ffff);
    t.ok(&[0xe6, 0xf4], 2);
    assert!(t.p.ins.is_empty() && t.p.outs.is_empty());
    assert!(!admin_io_okay(&t.policy, 0x80, 1));
}

#[test]
fn string_io_and_invd_are_refused() {
    let mut t = T::new(true);
    t.state.iopl = 3;
    t.gp(&[0xf3, 0x6c]);
    t.gp(&[0x6f]);
    t.gp(&[0x0f, 0x08]);
}

#[test]
fn cli_sti_follow_virtual_iopl() {
    let mut t = T::new(true);
    t.gp(&[0xfa]);
    t.gp(&[0xfb]);
    t.state.iopl = 1;
    let before = t.vcpu.clone();
    t.ok(&[0xfa], 1);
    t.ok(&[0xfb], 1);
    // No-ops: nothing about the vCPU changed (the event mask lives in vcpu_info, untouched).
    assert_eq!(format!("{before:?}"), format!("{:?}", t.vcpu));
}

#[test]
fn popf_is_not_emulated() {
    // popf never traps in ring 3; if a caller ever got here with it, it is not ours to handle.
    T::new(true).gp(&[0x9d]);
}

#[test]
fn hlt_blocks_or_gps() {
    let mut t = T::new(false);
    assert_eq!(t.run(&[0xf4]), Outcome::Block);
    assert_eq!(t.frame.rip, RIP + 1);
    t.policy.hlt_blocks = false; // Xen 4.17's behaviour
    t.gp(&[0xf4]);
    let mut t = T::new(false);
    t.vcpu.kernel_mode = false;
    t.gp(&[0xf4]);
}

#[test]
fn wbinvd_flushes_only_for_dom0() {
    let mut t = T::new(true);
    t.ok(&[0x0f, 0x09], 2);
    t.ok(&[0xf3, 0x0f, 0x09], 3);
    assert_eq!(t.p.wbinvd, 2);
    let mut t = T::new(false);
    t.ok(&[0x0f, 0x09], 2);
    assert_eq!(t.p.wbinvd, 0);
}

#[test]
fn user_mode_gets_gp_for_privileged_ops() {
    let mut t = T::new(true);
    t.vcpu.kernel_mode = false;
    for b in [&[0x0f, 0x20, 0xd8][..], &[0x0f, 0x32], &[0x0f, 0x30], &[0x0f, 0x06], &[0x0f, 0x09], &[0x0f, 0x21, 0xc0]]
    {
        t.gp(b);
    }
    t.cpuid(0, 0); // cpuid is not privileged
}

#[test]
fn control_register_reads() {
    let mut t = T::new(true);
    t.ok(&[0x0f, 0x20, 0xc0], 3);
    assert_eq!(t.frame.rax, 0x8001_0033);
    t.vcpu.cr0_ts = true;
    t.ok(&[0x0f, 0x20, 0xc0], 3);
    assert_eq!(t.frame.rax, 0x8001_003b);
    t.state.cr2 = 0xdead_b000;
    t.ok(&[0x41, 0x0f, 0x20, 0xd7], 4);
    assert_eq!(t.frame.r15, 0xdead_b000);
    t.ok(&[0x0f, 0x20, 0xdb], 3);
    assert_eq!(t.frame.rbx, L4);
    t.vcpu.kernel_mode = true;
    t.vcpu.paging.user_l4 = Some(0x999);
    t.ok(&[0x0f, 0x20, 0xd8], 3);
    assert_eq!(t.frame.rax, L4, "cr3 is the kernel root");
    t.ok(&[0x0f, 0x20, 0xe0], 3);
    assert_eq!(t.frame.rax, cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT, "host-visible bits only");
    t.gp(&[0x44, 0x0f, 0x20, 0xc0]); // cr8
    t.gp(&[0x0f, 0x20, 0xc8]); // cr1
}

#[test]
fn control_register_writes() {
    let mut t = T::new(true);
    t.frame.rax = 0x8001_003b;
    assert_eq!(t.run(&[0x0f, 0x22, 0xc0]), Outcome::FpuTaskSwitch(true));
    assert!(t.vcpu.cr0_ts);
    assert_eq!(t.frame.rip, RIP + 3);
    assert_eq!(t.run(&[0x0f, 0x06]), Outcome::FpuTaskSwitch(false));
    assert!(!t.vcpu.cr0_ts);
    t.frame.rax = 0x8001_0033 & !cr0::WP;
    t.gp(&[0x0f, 0x22, 0xc0]); // only TS may change
    t.frame.rsi = 0x4000;
    t.ok(&[0x0f, 0x22, 0xd6], 3);
    assert_eq!(t.state.cr2, 0x4000);
    // cr3: a request with rip untouched; PCID bits dropped.
    t.frame.rax = 0x0045_6000 | 0x18;
    let rip = t.frame.rip;
    assert_eq!(t.run(&[0x0f, 0x22, 0xd8]), Outcome::SwitchKernelRoot { mfn: 0x456, len: 3 });
    assert_eq!(t.frame.rip, rip);
    advance(&mut t.frame, 3);
    assert_eq!(t.frame.rip, rip + 3);
    // cr4: guest bits kept, visible bits forced from the host, others dropped.
    t.frame.rcx = cr4::TSD | cr4::FSGSBASE | (1 << 7) | (1 << 20);
    let want = cr4::TSD | cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT; // FSGSBASE: hidden
    assert_eq!(t.run(&[0x0f, 0x22, 0xe1]), Outcome::Cr4Changed(want));
    assert_eq!(t.state.cr4, want);
    t.gp(&[0x44, 0x0f, 0x22, 0xc0]); // cr8
}

#[test]
fn debug_registers() {
    let mut t = T::new(true);
    t.ok(&[0x0f, 0x21, 0xf8], 3);
    assert_eq!(t.frame.rax, 0x400);
    t.ok(&[0x0f, 0x21, 0xe8], 3); // dr5 aliases dr7 while CR4.DE is clear
    assert_eq!(t.frame.rax, 0x400);
    t.frame.rax = 0xffff_ffff_8000_0000;
    t.ok(&[0x0f, 0x23, 0xc8], 3);
    assert_eq!(t.state.debugreg[1], 0xffff_ffff_8000_0000);
    t.frame.rax = 0xffff_8000_0000_1000; // the hypervisor's range
    t.gp(&[0x0f, 0x23, 0xc8]);
    t.frame.rax = 0x8000_0000_0000; // non-canonical
    t.gp(&[0x0f, 0x23, 0xc0]);
    // As Xen's x86emul_write_dr, through set_debugreg: reserved DR7 bits are dropped, DR7.GD
    // and a DR7 beyond 32 bits are #GP.
    t.frame.rax = (1 << 11) | 1;
    t.ok(&[0x0f, 0x23, 0xf8], 3);
    assert_eq!(t.state.debugreg[7], 0x401);
    for bad in [1 << 13, 1 << 32] {
        t.frame.rax = bad;
        t.gp(&[0x0f, 0x23, 0xf8]);
    }
    assert_eq!(t.state.debugreg[7], 0x401, "unchanged by the refusals");
    t.state.cr4 |= cr4::DE;
    assert_eq!(t.run(&[0x0f, 0x21, 0xe0]), Outcome::ReflectUd);
    assert_eq!(t.run(&[0x44, 0x0f, 0x21, 0xc0]), Outcome::ReflectUd); // dr8
}

#[test]
fn segment_base_msrs() {
    let mut t = T::new(false);
    assert_eq!(t.wrmsr(msr_index::FS_BASE, 0x7fff_0000), Outcome::SegmentBases);
    assert_eq!(t.wrmsr(msr_index::GS_BASE, 0xffff_ffff_8100_0000), Outcome::SegmentBases);
    assert_eq!(t.wrmsr(msr_index::SHADOW_GS_BASE, 0x1000), Outcome::SegmentBases);
    assert_eq!(
        (t.vcpu.fs_base, t.vcpu.gs_base_kernel, t.vcpu.gs_base_user),
        (0x7fff_0000, 0xffff_ffff_8100_0000, 0x1000)
    );
    assert_eq!(t.rdmsr_val(msr_index::FS_BASE), 0x7fff_0000);
    assert_eq!(t.rdmsr_val(msr_index::GS_BASE), 0xffff_ffff_8100_0000);
    assert_eq!(t.rdmsr_val(msr_index::SHADOW_GS_BASE), 0x1000);
    let rip = t.frame.rip;
    assert_eq!(t.wrmsr(msr_index::FS_BASE, 0x8000_0000_0000), Outcome::ReflectGp(0));
    assert_eq!((t.frame.rip, t.vcpu.fs_base), (rip, 0x7fff_0000));
}

#[test]
fn read_only_msrs() {
    let mut t = T::new(true);
    assert_eq!(t.rdmsr_val(msr_index::EFER), 0xd01, "SVME hidden");
    assert_eq!(t.wrmsr(msr_index::EFER, 0xd01), Outcome::Emulated, "writing back is fine");
    assert_eq!(t.wrmsr(msr_index::EFER, 0x501), Outcome::ReflectGp(0));
    assert_eq!(t.rdmsr_val(msr_index::APIC_BASE), 0xfee0_0900);
    assert_eq!(t.wrmsr(msr_index::APIC_BASE, 0xfee0_0900), Outcome::ReflectGp(0));
    // PERF_AVAIL (7) and MONITOR (18) cleared; BTS/PEBS unavailable (11, 12), xTPR off (23).
    assert_eq!(t.rdmsr_val(msr_index::MISC_ENABLE), 0x0081_1809);
    assert_eq!(t.wrmsr(msr_index::MISC_ENABLE, 0), Outcome::Emulated, "ignored, as Xen does");
    assert_eq!(t.rdmsr_val(msr_index::CR_PAT), XEN_MSR_PAT);
    assert_eq!(t.wrmsr(msr_index::CR_PAT, 0), Outcome::ReflectGp(0));
    assert_eq!(t.rdmsr_val(msr_index::PERF_CAPABILITIES), 0);
    assert_eq!(t.rdmsr_val(msr_index::IA32_TSC), 0x1111_2222_3333_4445);
    assert_eq!(t.wrmsr(msr_index::IA32_TSC, 0), Outcome::ReflectGp(0));
}

#[test]
fn apic_base_bsp_only_on_vcpu0() {
    let mut t = T::new(false);
    t.frame.rcx = msr_index::APIC_BASE as u64;
    let mut ctx = Context { vcpu: &mut t.vcpu, state: &mut t.state, policy: &t.policy, vcpu_id: 1 };
    assert_eq!(emulate_privileged(&mut ctx, &mut t.p, &mut t.frame, &[0x0f, 0x32]), Outcome::Emulated);
    assert_eq!(t.frame.rax, 0xfee0_0800);
}

#[test]
fn tsc_aux_and_rdtscp() {
    let mut t = T::new(false);
    assert_eq!(t.wrmsr(msr_index::TSC_AUX, 1 << 32), Outcome::ReflectGp(0));
    assert_eq!(t.wrmsr(msr_index::TSC_AUX, 7), Outcome::Emulated);
    assert_eq!(t.rdmsr_val(msr_index::TSC_AUX), 7);
    t.ok(&[0x0f, 0x01, 0xf9], 3);
    assert_eq!((t.frame.rdx, t.frame.rax, t.frame.rcx), (0x1111_2222, 0x3333_4445, 7));
    t.ok(&[0x0f, 0x31], 2);
    assert_eq!(t.frame.rax, 0x3333_4446);
    // With CR4.TSD set, guest user mode gets the #GP.
    t.state.cr4 |= cr4::TSD;
    t.vcpu.kernel_mode = false;
    t.gp(&[0x0f, 0x31]);
}

#[test]
fn unknown_msrs_gp_unless_no_handler() {
    let mut t = T::new(true);
    assert_eq!(t.rdmsr(0x8b), Outcome::ReflectGp(0));
    assert_eq!(t.rdmsr(0xdead), Outcome::ReflectGp(0));
    assert_eq!(t.wrmsr(0x8b, 0), Outcome::ReflectGp(0));
    assert_eq!(t.rdmsr(msr_index::XEN_HYPERCALL_PAGE), Outcome::ReflectGp(0));
    // No #GP handler yet: a host MSR reads as 0 instead (Xen's compatibility rule).
    t.vcpu.trap_table[VECTOR_GP as usize] = TrapSlot::default();
    assert_eq!(t.rdmsr_val(0x8b), 0);
    assert_eq!(t.rdmsr(0xdead), Outcome::ReflectGp(0), "not on the host");
    assert_eq!(t.wrmsr(0x8b, 0), Outcome::ReflectGp(0), "writes still fault");
}

#[test]
fn hypercall_page_msr() {
    let mut t = T::new(false);
    let rip = t.frame.rip;
    assert_eq!(t.wrmsr(0x4000_0000, 0x1234_5000), Outcome::HypercallPage { gfn: 0x12345, len: 2 });
    assert_eq!(t.frame.rip, rip, "the caller advances on success");
    assert_eq!(t.wrmsr(0x4000_0000, 0x1234_5001), Outcome::ReflectGp(0), "one page only");
}

#[test]
fn cpuid_policy() {
    let mut t = T::new(false);
    assert_eq!(t.cpuid(0, 0)[0], 0xd);
    let [a, b, c, d] = t.cpuid(1, 0);
    assert_eq!((a, b), (0x906ea, 0x0010_0800), "APIC id cleared");
    assert_eq!(c & (1 << 31), 1 << 31, "hypervisor bit");
    assert_eq!(c & (1 << 5 | 1 << 6 | 1 << 3 | 1 << 21), 0, "no VMX, SMX, MONITOR, x2APIC");
    assert_eq!(c & (1 << 27), 1 << 27, "OSXSAVE: host's, in kernel mode");
    assert_eq!(d & (1 << 9 | 1 << 12), 0, "no APIC; MTRR only for dom0");
    assert_eq!(d & 1, 1, "FPU kept");
    t.vcpu.kernel_mode = false;
    assert_eq!(t.cpuid(1, 0)[2] & (1 << 27), 0, "OSXSAVE follows the virtual CR4 in user mode");
    t.state.cr4 |= cr4::OSXSAVE;
    assert_eq!(t.cpuid(1, 0)[2] & (1 << 27), 1 << 27);
    assert_eq!(T::new(true).cpuid(1, 0)[3] & (1 << 12), 1 << 12, "dom0 sees MTRR");
    assert_eq!(t.cpuid(5, 0), [0; 4]);
    assert_eq!(t.cpuid(0xa, 0), [0; 4]);
    let l7 = t.cpuid(7, 0);
    assert_eq!(l7[1] & (1 << 7 | 1 << 20 | 1 << 10), 0, "no SMEP, SMAP, INVPCID");
    assert_eq!(l7[1] & 1, 0, "FSGSBASE hidden: the guest's bases are kept by the hypervisor");
    assert_eq!(t.cpuid(7, 1), [0, u32::MAX, u32::MAX, 1], "other sub-leaves pass through");
    assert_eq!(t.cpuid(0xe, 0), [0; 4], "past the basic max");
    assert_eq!(t.cpuid(0x8000_0001, 0)[2] & (1 << 2), 0, "no SVM");
    assert_eq!(t.cpuid(0x8000_0009, 0), [0; 4], "past the extended max");
    assert_eq!(t.cpuid(0xc000_0000, 0), [0; 4]);
}

#[test]
fn cpuid_xen_leaves() {
    let mut t = T::new(false);
    t.policy.tsc_khz = 2_000_000;
    t.policy.tsc_mul_frac = 0x8000_0000;
    t.policy.tsc_shift = -1;
    t.policy.maddr_bits = 40;
    let sig = t.cpuid(0x4000_0000, 0);
    assert_eq!(sig[0], 0x4000_0005);
    let text: Vec<u8> = sig[1..].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&text, b"XenVMMXenVMM");
    assert_eq!(t.cpuid(0x4000_0001, 0), [0x0004_0011, 0, 0, 0]);
    assert_eq!(t.cpuid(0x4000_0002, 0), [1, 0x4000_0000, 0, 0]);
    t.policy.preserve_ad = true;
    assert_eq!(t.cpuid(0x4000_0002, 0)[2], 1);
    assert_eq!(t.cpuid(0x4000_0003, 0), [0, 0, 2_000_000, 0]);
    assert_eq!(t.cpuid(0x4000_0003, 1), [0, 0, 0x8000_0000, u32::MAX]);
    assert_eq!(t.cpuid(0x4000_0003, 2), [2_000_000, 0, 0, 0]);
    assert_eq!(t.cpuid(0x4000_0004, 0), [0; 4]);
    assert_eq!(t.cpuid(0x4000_0005, 0), [0, 40, 0, 0]);
    assert_eq!(t.cpuid(0x4000_0006, 0), [0; 4]);
    assert_eq!(t.cpuid(0x4000_0100, 0), [0; 4], "no Viridian base for PV");
}

#[test]
fn forced_emulation_runs_the_policy() {
    let mut t = T::new(false);
    t.frame.rax = 0x4000_0000;
    t.frame.rflags |= rflags::RF;
    let forced = [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2, 0xcc];
    assert_eq!(t.run_ud(&forced), Outcome::Emulated);
    assert_eq!(t.frame.rip, RIP + 7);
    assert_eq!((t.frame.rax, t.frame.rbx), (0x4000_0005, 0x566e_6558));
    t.frame.rax = 1;
    assert_eq!(t.run_ud(&forced), Outcome::Emulated);
    assert_eq!(t.frame.rcx & (1 << 31), 1 << 31);
    // Anything else is a #UD at the ud2, frame untouched.
    let before = t.frame.clone();
    assert_eq!(t.run_ud(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0x31]), Outcome::ReflectUd);
    assert_eq!(t.run_ud(&[0x0f, 0x0b]), Outcome::ReflectUd);
    assert_eq!(t.frame, before);
}

#[test]
fn xsetbv_is_refused_by_default() {
    let mut t = T::new(true);
    assert_eq!(t.run(&[0x0f, 0x01, 0xd1]), Outcome::ReflectUd, "CR4.OSXSAVE clear");
    t.state.cr4 |= cr4::OSXSAVE;
    t.gp(&[0x0f, 0x01, 0xd1]);
}

#[test]
fn hostile_bytes_never_panic() {
    let mut s = 0xfeed_f00d_1234_5678u64;
    for i in 0..100_000u32 {
        let mut t = T::new(i % 2 == 0);
        t.state.iopl = (i % 4) as u8;
        t.vcpu.kernel_mode = i % 3 != 0;
        for r in [&mut t.frame.rax, &mut t.frame.rcx, &mut t.frame.rdx] {
            *r = rng(&mut s);
        }
        let n = (rng(&mut s) % 16) as usize;
        let mut buf = [0u8; 15];
        for b in buf.iter_mut().take(n) {
            let r = rng(&mut s);
            *b = if r & 3 == 0 { 0x0f } else { (r >> 8) as u8 };
        }
        let rip = t.frame.rip;
        match t.run(&buf[..n]) {
            Outcome::ReflectGp(_)
            | Outcome::ReflectUd
            | Outcome::SwitchKernelRoot { .. }
            | Outcome::HypercallPage { .. } => {
                assert_eq!(t.frame.rip, rip)
            }
            _ => assert!(t.frame.rip > rip && t.frame.rip <= rip + n as u64),
        }
        let _ = t.run_ud(&buf[..n]);
    }
}

#[test]
fn compatibility_mode_instruction_pointers_wrap_at_4_gib() {
    // An emulated instruction ending at 4 GiB in 32-bit code resumes at 0, as on the CPU; a
    // `rip` past 4 GiB would make the exit's `iretq` fault in the hypervisor.
    let mut t = T::new(false);
    t.frame.cs = hypercall_abi::arch::FLAT_RING3_CS32 as u64;
    t.frame.rip = 0xffff_fff9;
    let mut forced = FORCED_EMULATION_PREFIX.to_vec();
    forced.extend_from_slice(&[0x0f, 0xa2]); // ud2; "xen"; cpuid
    assert_eq!(t.run_ud(&forced), Outcome::Emulated);
    assert_eq!(t.frame.rip, 0);
    t.frame.rip = 0xffff_fffe;
    t.state.iopl = 1; // `cli` is then a no-op
    assert_eq!(t.run(&[0xfa]), Outcome::Emulated);
    assert_eq!(t.frame.rip, 0xffff_ffff);
    // 64-bit code does not wrap there.
    let mut t = T::new(false);
    t.frame.rip = 0xffff_fffe;
    t.vcpu.kernel_mode = true;
    assert_eq!(t.run(&[0x0f, 0x09]), Outcome::Emulated); // wbinvd
    assert_eq!(t.frame.rip, 0x1_0000_0000);
}

/// The debug-register hypercalls (Xen's `do_set_debugreg`/`do_get_debugreg`): address and
/// width checks, reserved bits adjusted rather than refused, DR4/DR5 aliases, bad numbers.
#[test]
fn debug_register_hypercalls_check_as_xen() {
    use hypercall_abi::errno::Errno;
    let policy = DomainPolicy::new(false, HOST_CR4);
    let mut s = PrivState::new(&policy);
    assert_eq!(set_debugreg(&mut s, 0, 0x40_1000), Ok(()));
    assert_eq!(get_debugreg(&s, 0), Ok(0x40_1000));
    for bad in [0xffff_8000_0000_1000u64, 0x0000_8000_0000_0000] {
        assert_eq!(set_debugreg(&mut s, 3, bad), Err(Errno::EPERM), "{bad:#x}");
    }
    assert_eq!(get_debugreg(&s, 6), Ok(DR6_DEFAULT));
    assert_eq!(set_debugreg(&mut s, 6, 1 << 32), Err(Errno::EINVAL));
    assert_eq!(set_debugreg(&mut s, 6, DR6_BS), Ok(()));
    assert_eq!(get_debugreg(&s, 4), Ok(DR6_DEFAULT | DR6_BS), "DR4 is DR6 without CR4.DE");
    assert_eq!(set_debugreg(&mut s, 7, 0xd801), Ok(()), "reserved bits are dropped");
    assert_eq!(get_debugreg(&s, 7), Ok(DR7_DEFAULT | 1));
    assert_eq!(set_debugreg(&mut s, 7, 1 << 13), Err(Errno::EPERM), "general detect");
    assert_eq!(set_debugreg(&mut s, 6, 1 << 12), Ok(()));
    assert_eq!(get_debugreg(&s, 6), Ok(DR6_DEFAULT), "DR6 bit 12 reads as zero");
    assert_eq!(set_debugreg(&mut s, 6, DR6_BS), Ok(()));
    // An enabled I/O breakpoint (R/W 10b) needs CR4.DE.
    assert_eq!(set_debugreg(&mut s, 7, 1 | (2 << 16)), Err(Errno::EPERM));
    s.cr4 |= cr4::DE;
    assert_eq!(set_debugreg(&mut s, 7, 1 | (2 << 16)), Ok(()));
    assert_eq!(set_debugreg(&mut s, 5, 0), Err(Errno::ENODEV), "DR5 with CR4.DE");
    for reg in [8, 15, u64::MAX, 1 << 32 | 6] {
        let want = if reg == 1 << 32 | 6 { Ok(DR6_DEFAULT | DR6_BS) } else { Err(Errno::ENODEV) };
        assert_eq!(get_debugreg(&s, reg), want, "reg {reg:#x} (an int: the low 32 bits)");
    }
}

/// The virtual DR6 after a #DB: the CPU's condition bits added, its default-one bits as the
/// CPU reported them.
#[test]
fn dr6_merges_the_conditions_the_cpu_reported() {
    assert_eq!(merge_dr6(DR6_DEFAULT, DR6_DEFAULT | DR6_BS), DR6_DEFAULT | DR6_BS);
    assert_eq!(merge_dr6(DR6_DEFAULT | 1, DR6_DEFAULT | DR6_BS), DR6_DEFAULT | 1 | DR6_BS, "kept until cleared");
    assert_eq!(merge_dr6(DR6_DEFAULT, DR6_DEFAULT & !(1 << 16)), DR6_DEFAULT & !(1 << 16), "RTM reads 0");
}
