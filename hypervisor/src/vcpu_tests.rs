//! Host tests for bounce frames, iret, software interrupts and the time scale.

use super::*;
use std::collections::HashMap;

/// Guest memory per root: byte maps; `readonly` addresses refuse writes.
#[derive(Default)]
struct Mem {
    bytes: HashMap<(u64, u64), u8>,
    mapped: Vec<(u64, u64, u64)>, // (l4, start, end)
}

impl Mem {
    fn map(&mut self, l4: u64, start: u64, end: u64) {
        self.mapped.push((l4, start, end));
    }
    fn ok(&self, l4: u64, va: u64, len: usize) -> bool {
        self.mapped.iter().any(|&(l, s, e)| l == l4 && s <= va && va + len as u64 <= e)
    }
    fn word(&self, l4: u64, va: u64) -> u64 {
        let mut b = [0u8; 8];
        assert!(self.read(l4, va, &mut b));
        u64::from_le_bytes(b)
    }
}

impl GuestMemory for Mem {
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool {
        if !self.ok(l4, va, bytes.len()) {
            return false;
        }
        for (i, b) in bytes.iter().enumerate() {
            self.bytes.insert((l4, va + i as u64), *b);
        }
        true
    }
    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool {
        if !self.ok(l4, va, out.len()) {
            return false;
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = *self.bytes.get(&(l4, va + i as u64)).unwrap_or(&0);
        }
        true
    }
}

const KL4: u64 = 0x1000;
const UL4: u64 = 0x2000;

fn vcpu() -> VcpuState {
    let mut v = VcpuState::new(KL4);
    v.trap_table[14] = TrapSlot { flags: 0, address: 0x10_1400 };
    v.trap_table[3] = TrapSlot { flags: 3, address: 0x10_0300 };
    v.trap_table[0x81] = TrapSlot { flags: 1, address: 0x10_8100 };
    v.trap_table[0x82] = TrapSlot { flags: 3 | 4, address: 0x10_8200 };
    v.kernel_sp = 0x20_0000;
    v.paging.user_l4 = Some(UL4 >> 12);
    v
}

fn kernel_frame() -> TrapFrame {
    TrapFrame {
        rip: 0x10_5000,
        cs: 0xe033,
        rflags: 0x202,
        rsp: 0x1f_f008,
        ss: 0xe02b,
        rcx: 11,
        r11: 22,
        ..Default::default()
    }
}

#[test]
fn kernel_mode_page_fault_frame_matches_xen() {
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    let mut f = kernel_frame();
    let mut mask = 0u8;
    let d = v.exception(14, Some(0x7)).unwrap();
    assert_eq!(d.error_code, Some(0x3), "U/S cleared for a kernel-mode fault");
    assert_eq!(v.bounce(&mut f, d, &mut mask, &mut m), Ok(ModeChange::None));
    // Old rsp 0x1ff008 aligns down to 0x1ff000; 8 words below it.
    assert_eq!(f.rsp, 0x1f_f000 - 64);
    let words: Vec<u64> = (0..8).map(|i| m.word(KL4, f.rsp + i * 8)).collect();
    assert_eq!(words, vec![11, 22, 3, 0x10_5000, 0xe030, 0x202, 0x1f_f008, 0xe02b]);
    assert_eq!((f.rip, f.cs, f.ss), (0x10_1400, 0xe033, 0xe02b));
    assert_eq!(mask, 0, "slot without the mask bit leaves events enabled");
}

#[test]
fn user_mode_exception_switches_to_kernel_stack_and_mode() {
    let mut v = vcpu();
    v.kernel_mode = false;
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    let mut f =
        TrapFrame { rip: 0x40_0000, cs: 0xe033, rflags: 0x202, rsp: 0x7000_0000, ss: 0xe02b, ..Default::default() };
    let mut mask = 1u8; // events masked: IF shows as 0, mask byte saved in the CS word
    let d = v.exception(14, Some(0x6)).unwrap();
    assert_eq!(d.error_code, Some(0x6 | 4), "U/S set for a user-mode fault");
    assert_eq!(v.bounce(&mut f, d, &mut mask, &mut m), Ok(ModeChange::ToKernel));
    assert!(v.kernel_mode);
    assert_eq!(f.rsp, 0x20_0000 - 64);
    assert_eq!(m.word(KL4, f.rsp + 32), 0xe033 | 1 << 32, "user CS with RPL 3 and the saved mask");
    assert_eq!(m.word(KL4, f.rsp + 40), 0x002, "virtual IF clear");
    assert_eq!(m.word(KL4, f.rsp + 48), 0x7000_0000);
}

#[test]
fn missing_handler_and_bad_stacks_crash_the_domain() {
    let mut v = vcpu();
    assert_eq!(v.exception(0, None), Err(DeliveryError::NoHandler(0)));
    let mut m = Mem::default();
    let mut mask = 0;
    let d = v.exception(14, Some(0)).unwrap();
    let mut f = kernel_frame();
    assert_eq!(v.bounce(&mut f, d, &mut mask, &mut m), Err(DeliveryError::StackFault(0x1f_f000 - 64)));
    assert_eq!(f, kernel_frame(), "a failed bounce leaves the frame alone");
    let mut f = kernel_frame();
    f.rsp = 0xffff_8000_0000_1000;
    assert!(matches!(v.bounce(&mut f, d, &mut mask, &mut m), Err(DeliveryError::StackInHypervisorRange(_))));
}

#[test]
fn a_non_canonical_handler_crashes_the_domain_instead_of_becoming_rip() {
    // `set_callbacks` stores addresses unchecked (as Xen 4.17): the bounce must refuse one
    // that would make the exit path's iretq fault in ring 0.
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    let mut mask = 0;
    let d = Delivery { handler: 0x8000_0000_0000, error_code: None, mask_events: true };
    let mut f = kernel_frame();
    assert_eq!(v.bounce(&mut f, d, &mut mask, &mut m), Err(DeliveryError::NonCanonicalHandler(0x8000_0000_0000)));
    assert_eq!(f, kernel_frame());
    assert_eq!(mask, 0);
}

#[test]
fn mask_events_flag_sets_the_mask() {
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    let mut f = kernel_frame();
    let mut mask = 0;
    let d = v.software_interrupt(0x82).unwrap();
    v.bounce(&mut f, d, &mut mask, &mut m).unwrap();
    assert_eq!(mask, 1);
    assert_eq!(m.word(KL4, f.rsp + 24), 0xe030, "saved mask 0 in the CS word");
}

#[test]
fn software_interrupt_dpl_rules() {
    let mut v = vcpu();
    assert!(v.software_interrupt(0x81).is_some(), "DPL 1: kernel may");
    assert!(v.software_interrupt(0x40).is_none(), "no handler");
    v.kernel_mode = false;
    assert!(v.software_interrupt(0x81).is_none(), "DPL 1: user may not");
    assert!(v.software_interrupt(0x82).is_some(), "DPL 3: user may");
    v.trap_table[0x80] = TrapSlot { flags: 0, address: 0x10_8000 };
    assert!(v.software_interrupt(0x80).is_some(), "int 0x80 fast path ignores DPL");
}

fn iret_ctx(m: &mut Mem, l4: u64, at: u64, vals: [u64; 9]) {
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert!(m.write(l4, at, &bytes));
}

#[test]
fn iret_to_user_restores_context_and_switches_mode() {
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    iret_ctx(&mut m, KL4, 0x1f_f000, [7, 0x11, 0x22, 0, 0x40_1000, 0xe033, 0x246, 0x7fff_0000, 0xe02b]);
    let mut f = TrapFrame { rsp: 0x1f_f000, rax: 23, ..kernel_frame() };
    let mut mask = 1;
    assert_eq!(v.iret(&mut f, &mut mask, &m), Ok(Ok(ModeChange::ToUser)));
    assert!(!v.kernel_mode);
    assert_eq!((f.rax, f.r11, f.rcx, f.rip, f.rsp), (7, 0x11, 0x22, 0x40_1000, 0x7fff_0000));
    assert_eq!(f.rflags, 0x246);
    assert_eq!(mask, 0, "IF in the frame re-enables events");
    assert_eq!(v.current_l4(), UL4);
}

#[test]
fn iret_in_syscall_mode_and_kernel_return() {
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    iret_ctx(&mut m, KL4, 0x1f_f000, [1, 0x11, 0x22, VGCF_IN_SYSCALL, 0x10_2000, 0xe030, 0x002, 0x1f_f100, 0xe028]);
    let mut f = TrapFrame { rsp: 0x1f_f000, ..kernel_frame() };
    let mut mask = 0;
    assert_eq!(v.iret(&mut f, &mut mask, &m), Ok(Ok(ModeChange::None)));
    assert!(v.kernel_mode, "RPL 0 in the frame: stays in kernel mode");
    // SYSRET semantics: RCX the rip, R11 the RFLAGS resumed with (IF forced on), as the
    // SYSRET Xen returns such a frame with loads them.
    assert_eq!((f.rcx, f.r11), (0x10_2000, 0x202), "SYSRET semantics");
    assert_eq!((f.cs, f.ss), (0xe033, 0xe02b), "RPL raised to 3");
    assert_eq!(f.rflags, 0x202, "hardware IF always set");
    assert_eq!(mask, 1, "IF clear in the frame masks events");
}

#[test]
fn hostile_iret_frames_are_refused() {
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    for bad in [
        [0, 0, 0, 0, 0x8000_0000_0000, 0xe033, 0x202, 0x1000, 0xe02b], // non-canonical RIP
        [0, 0, 0, 0, 0x1000, 0x0010, 0x202, 0x1000, 0xe02b],           // foreign CS
        [0, 0, 0, 0, 0x1000, 0xe023, 0x202, 0x1000, 0xe02b],           // compat-mode CS
        [0, 0, 0, 0, 0x1000, 0xe033, 0x202, 0x1000, 0x0000],           // null SS
    ] {
        iret_ctx(&mut m, KL4, 0x1f_f000, bad);
        let mut f = TrapFrame { rsp: 0x1f_f000, ..kernel_frame() };
        let before = f.clone();
        assert_eq!(v.iret(&mut f, &mut 0, &m), Ok(Err(())));
        assert_eq!(f, before);
    }
    let mut f = TrapFrame { rsp: 0x50_0000, ..kernel_frame() };
    assert_eq!(v.iret(&mut f, &mut 0, &m), Err(DeliveryError::StackFault(0x50_0000)));
    v.paging.user_l4 = None;
    iret_ctx(&mut m, KL4, 0x1f_f000, [0, 0, 0, 0, 0x1000, 0xe033, 0x202, 0x1000, 0xe02b]);
    let mut f = TrapFrame { rsp: 0x1f_f000, ..kernel_frame() };
    assert_eq!(v.iret(&mut f, &mut 0, &m), Err(DeliveryError::NoUserPageTables));
}

#[test]
fn time_scale_converts_ticks_to_nanoseconds() {
    for hz in [1_000_000u64, 100_000_000, 1_000_000_000, 2_600_000_000, 3_999_999_999] {
        let (mul, shift) = tsc_scale(hz);
        let delta = hz; // one second of ticks
        let shifted = if shift >= 0 { delta << shift } else { delta >> -shift };
        let ns = ((shifted as u128 * mul as u128) >> 32) as u64;
        assert!((ns as i64 - 1_000_000_000).abs() < 1_000, "{hz} Hz gave {ns} ns");
    }
}

#[test]
fn iret_accepts_a_bounce_frame_handed_back_unchanged() {
    // A kernel-mode bounce frame whose CS slot carries the saved mask (bits 32-39).
    let mut v = vcpu();
    let mut m = Mem::default();
    m.map(KL4, 0x1f_0000, 0x20_0000);
    iret_ctx(&mut m, KL4, 0x1f_f000, [5, 0, 0, 0, 0x10_3000, 0xe030 | 1 << 32, 0x002, 0x1f_f800, 0xe02b]);
    let mut f = TrapFrame { rsp: 0x1f_f000, ..kernel_frame() };
    let mut mask = 1;
    assert_eq!(v.iret(&mut f, &mut mask, &m), Ok(Ok(ModeChange::None)));
    assert_eq!((f.rip, f.cs, f.rsp), (0x10_3000, 0xe033, 0x1f_f800));
    assert!(v.kernel_mode);
}

#[test]
fn tsc_ticks_to_ns_matches_the_128_bit_quotient() {
    let exact = |t: u64, hz: u64| (u128::from(t) * 1_000_000_000 / u128::from(hz.max(1))) as u64;
    let ticks = [0, 1, 999, 2_999_999_999, 3_000_000_000, 123_456_789_012_345, u64::MAX / 3, u64::MAX - 1, u64::MAX];
    let rates = [0, 1, 7, 1_000_000_000, 2_400_000_000, 3_000_000_007, 18_446_744_073, 18_446_744_074, u64::MAX];
    for &t in &ticks {
        for &hz in &rates {
            assert_eq!(tsc_ticks_to_ns(t, hz), exact(t, hz), "ticks {t} at {hz} Hz");
        }
    }
}

#[test]
fn deadlines_compare_as_xen_signed_times() {
    assert!(deadline_passed(100, 100));
    assert!(deadline_passed(99, 100));
    assert!(!deadline_passed(101, 100));
    // 2^63 and above are negative system times: already past, whatever `now` is.
    assert!(deadline_passed(1 << 63, 0));
    assert!(deadline_passed(u64::MAX, 5));
    assert!(!deadline_passed(i64::MAX as u64, 1_000_000));
}

#[test]
fn frames_the_cpu_cannot_return_to_are_recognised() {
    let compat = hypercall_abi::arch::FLAT_RING3_CS32 as u64;
    let frame = |cs: u64, rip: u64| TrapFrame { cs, rip, ..kernel_frame() };
    assert!(is_returnable(&frame(0xe033, 0x1_0000_0000)));
    assert!(is_returnable(&frame(0xe033, 0xffff_8000_0000_0000)));
    assert!(!is_returnable(&frame(0xe033, 0x8000_0000_0000)), "non-canonical");
    assert!(is_returnable(&frame(compat, 0xffff_ffff)));
    assert!(!is_returnable(&frame(compat, 0x1_0000_0000)), "beyond the 32-bit code segment");
    assert!(!is_returnable(&frame(compat, u64::MAX - 1)), "a 32-bit rip rewound below 0");
}

#[test]
fn a_periodic_timer_keeps_its_phase_when_set_again() {
    // Set to 10 ms every 5 ms: it still fires every 10 ms (it used to be pushed back).
    let (ms, mut last, mut fired) = (1_000_000u64, 0u64, 0);
    for now in (100 * ms..200 * ms).step_by(5 * ms as usize) {
        let (fire, l, _next) = periodic_rearm(last, 10 * ms, now);
        last = l;
        fired += u32::from(fire);
    }
    assert_eq!(fired, 10, "one event per period over 100 ms");
    // Not yet due: the phase is kept and the next expiry is one period after the last event.
    assert_eq!(periodic_rearm(100 * ms, 10 * ms, 104 * ms), (false, 100 * ms, 110 * ms));
    // A period has passed: fire now, and the next one is a period from now.
    assert_eq!(periodic_rearm(100 * ms, 10 * ms, 117 * ms), (true, 117 * ms, 127 * ms));
    // A huge period saturates instead of wrapping into the past.
    assert_eq!(periodic_rearm(100 * ms, u64::MAX, 117 * ms), (false, 100 * ms, u64::MAX));
}
