//! Host tests of the hypercall table against a mock domain with a flat guest memory.

use super::op::*;
use super::testing::{env_boilerplate, flat_guest_deref, FlatGuest, BASE};
use super::*;

/// A domain whose guest memory is `[BASE, BASE + mem.len())`; everything else faults.
struct Mock {
    guest: FlatGuest,
    console: Vec<u8>,
    input: Vec<u8>,
    singleshot: Option<u64>,
    periodic: Option<u64>,
    now: u64,
    now_step: u64,
    clock_reads: core::cell::Cell<u64>,
    privileged: bool,
    /// Another domain the memory-statistics ops can name.
    other: Option<DomainFacts>,
    vcpu: crate::vcpu::VcpuState,
    bases_applied: u32,
    doms: Vec<(u16, u8)>, // (id, pause count)
    /// `shut_down` calls made (domain, reason).
    shut_down_calls: Vec<(u16, u32)>,
    /// `record_shutdown_code` calls made.
    shutdown_codes: Vec<u8>,
    /// Domains torn down while a `destroydomain` of them was being continued.
    reaped: Vec<u16>,
}

impl DomainControl for Mock {
    fn info_from(&self, id: u16) -> Option<DomainInfo> {
        self.doms.iter().find(|d| d.0 >= id).map(|&(id, paused)| DomainInfo {
            id,
            flags: if paused > 0 { hypercall_abi::domctl::XEN_DOMINF_PAUSED } else { 0 },
            tot_pages: 100 + id as u64,
            max_pages: 100 + id as u64,
            shared_info_frame: 0x500 + id as u64,
            cpu_time_ns: 7,
            gpaddr_bits: 40,
            emulation_flags: if id == 0 { hypercall_abi::domctl::XEN_X86_EMU_PIT } else { 0 },
        })
    }
    fn pause(&mut self, id: u16) -> Result<(), Errno> {
        let d = self.doms.iter_mut().find(|d| d.0 == id).ok_or(Errno::ESRCH)?;
        super::domctl::count_pause(&mut d.1)
    }
    fn domctl_target_exists(&self, id: u16) -> bool {
        self.doms.iter().any(|d| d.0 == id) || self.reaped.contains(&id)
    }
    fn unpause(&mut self, id: u16) -> Result<(), Errno> {
        let d = self.doms.iter_mut().find(|d| d.0 == id).ok_or(Errno::ESRCH)?;
        d.1 = d.1.checked_sub(1).ok_or(Errno::EINVAL)?;
        Ok(())
    }
    fn shut_down(&mut self, id: u16, reason: u32) -> Result<(), Errno> {
        self.shut_down_calls.push((id, reason));
        self.destroy(id)
    }
    fn destroy(&mut self, id: u16) -> Result<(), Errno> {
        if let Some(i) = self.reaped.iter().position(|&r| r == id) {
            self.reaped.remove(i);
            return Ok(());
        }
        let before = self.doms.len();
        self.doms.retain(|d| d.0 != id);
        if self.doms.len() < before {
            Ok(())
        } else {
            Err(Errno::ESRCH)
        }
    }
}

impl Mock {
    fn new() -> Self {
        Self {
            guest: FlatGuest::new(0x4000),
            console: vec![],
            input: b"xy".to_vec(),
            singleshot: None,
            periodic: None,
            now: 5_000_000,
            now_step: 0,
            clock_reads: core::cell::Cell::new(0),
            privileged: true,
            other: None,
            vcpu: crate::vcpu::VcpuState::new(0x1000),
            bases_applied: 0,
            doms: vec![(0, 0), (2, 0), (5, 0)],
            shut_down_calls: vec![],
            shutdown_codes: vec![],
            reaped: vec![],
        }
    }
}

flat_guest_deref!(Mock, guest);

impl Env for Mock {
    env_boilerplate!(guest: guest);
    fn record_shutdown_code(&mut self, code: u8) {
        self.shutdown_codes.push(code);
    }
    fn console_write(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
    fn console_read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.input.len());
        out[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        n
    }
    fn domain_facts_of(&self, id: u16) -> Option<DomainFacts> {
        self.other.filter(|d| d.id == id)
    }
    fn domain(&self) -> DomainFacts {
        DomainFacts { id: 0, nr_pages: 32768, max_pages: 32768, privileged: self.privileged, max_mfn: 0x20000 }
    }
    fn now_ns(&self) -> u64 {
        // A clock that moves by `now_step` at every read (0 in most tests).
        self.now + self.clock_reads.replace(self.clock_reads.get() + 1) * self.now_step
    }
    fn set_singleshot_timer(&mut self, d: Option<u64>) {
        self.singleshot = d;
    }
    fn set_periodic_timer(&mut self, p: Option<u64>) {
        self.periodic = p;
    }
    fn hypervisor_cmdline(&self) -> &str {
        "console=com1 loglvl=all"
    }
    fn vcpu(&mut self) -> &mut crate::vcpu::VcpuState {
        &mut self.vcpu
    }
    fn apply_segment_bases(&mut self) {
        self.bases_applied += 1;
    }
    fn domain_control(&mut self) -> Option<&mut dyn DomainControl> {
        Some(self)
    }
    fn events(&mut self) -> Option<crate::evtchn::EventAccess<'_>> {
        None // event channels are tested in evtchn_tests.rs
    }
    fn mmu(&mut self) -> Option<crate::mm::MmuAccess<'_>> {
        None // the MMU hypercalls are tested against a real frame table in mmu_tests.rs
    }
}

fn call(env: &mut Mock, number: u64, args: [u64; 5]) -> Outcome {
    dispatch(env, number, args)
}

/// Runs continuations to completion, as re-executing the `syscall` would.
fn call_to_end(env: &mut Mock, number: u64, mut args: [u64; 5]) -> Outcome {
    loop {
        match call(env, number, args) {
            Outcome::Continue(a) => args = a,
            o => return o,
        }
    }
}

#[test]
fn unknown_and_unimplemented_numbers_are_enosys() {
    let mut m = Mock::new();
    for n in [11, 38, 50, 63, 64, 1000, u64::MAX] {
        assert_eq!(call(&mut m, n, [0; 5]), Outcome::Return(-38), "hypercall {n}");
    }
    assert_eq!(implemented_name(nr::CONSOLE_IO), Some("console_io"));
    assert_eq!(implemented_name(11), None);
}

#[test]
fn console_write_copies_the_guest_buffer_and_faults_cleanly() {
    let mut m = Mock::new();
    m.put(BASE + 0x100, b"hello, world\n");
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 13, BASE + 0x100, 0, 0]), Outcome::Return(0));
    assert_eq!(m.console, b"hello, world\n");
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 4, 0xdead_0000, 0, 0]), Outcome::Return(-14));
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 8, BASE + 0x3ffc, 0, 0]), Outcome::Return(-14));
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [7, 1, BASE, 0, 0]), Outcome::Return(-38));
}

#[test]
fn long_console_writes_continue_in_chunks_without_loss() {
    let mut m = Mock::new();
    let text: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    m.mem.resize(0x8000, 0);
    m.put(BASE, &text);
    let first = call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 10_000, BASE, 0, 0]);
    assert_eq!(first, Outcome::Continue([CONSOLEIO_WRITE, 10_000 - 256, BASE + 256, 0, 0]));
    assert_eq!(call_to_end(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 10_000, BASE, 0, 0]), Outcome::Return(0));
    assert_eq!(&m.console[256..], &text[..], "the chunks reassemble the text exactly");
}

#[test]
fn console_read_returns_pending_input() {
    let mut m = Mock::new();
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_READ, 16, BASE, 0, 0]), Outcome::Return(2));
    assert_eq!(m.get(BASE, 2), b"xy");
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_READ, 16, BASE, 0, 0]), Outcome::Return(0));
    // A count that would read back as a negative result: -E2BIG, as Xen.
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_READ, 1 << 31, BASE, 0, 0]), Outcome::Return(-7));
    // Only the low 32 bits of cmd and count count (Xen's `unsigned int`s).
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_READ | 1 << 32, 16 | 1 << 40, BASE, 0, 0]), Outcome::Return(0));
}

#[test]
fn a_domu_may_write_to_the_console_but_not_read_it() {
    // Xen 4.17's dummy XSM: reads (and unknown commands) are the control domain's.
    let mut m = Mock::new();
    m.privileged = false;
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_READ, 16, BASE, 0, 0]), Outcome::Return(-1));
    assert_eq!(m.input, b"xy", "the domU must not take the operator's input");
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [7, 1, BASE, 0, 0]), Outcome::Return(-1));
    m.put(BASE, b"hi\n");
    assert_eq!(call(&mut m, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 3, BASE, 0, 0]), Outcome::Return(0));
    assert_eq!(m.console, b"hi\n");
}

#[test]
fn xen_version_sub_ops() {
    let mut m = Mock::new();
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0]), Outcome::Return(0x40011));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_EXTRAVERSION, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 10), b".0-rusthv\0");
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_CAPABILITIES, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 15), b"xen-3.0-x86_64\0");
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_PLATFORM_PARAMETERS, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.u64_at(BASE), 0xffff_8000_0000_0000);
    m.put(BASE, &[0; 8]);
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_GET_FEATURES, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE + 4, 4), &(1u32 << 11).to_le_bytes());
    m.put(BASE, &1u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_GET_FEATURES, BASE, 0, 0, 0]), Outcome::Return(-22));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0]), Outcome::Return(4096));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_CHANGESET, 0x99, 0, 0, 0]), Outcome::Return(-14));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_COMMANDLINE, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 24), b"console=com1 loglvl=all\0");
    // The build id: its buffer is checked first (-EFAULT, -EINVAL for length 0); we have none.
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_BUILD_ID, 0, 0, 0, 0]), Outcome::Return(-61));
    m.put(BASE, &0u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_BUILD_ID, BASE, 0, 0, 0]), Outcome::Return(-22));
    m.put(BASE, &64u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_BUILD_ID, BASE, 0, 0, 0]), Outcome::Return(-61));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_BUILD_ID, 0x99, 0, 0, 0]), Outcome::Return(-14));
    // Xen: `!guest_handle_is_null(arg) ? -EINVAL : PAGE_SIZE`.
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_PAGESIZE, BASE, 0, 0, 0]), Outcome::Return(-22));
    // get_features reads its whole 8-byte structure first.
    let last = BASE + 0x4000 - 4;
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_GET_FEATURES, last, 0, 0, 0]), Outcome::Return(-14));
    // A domU (Xen's default XSM policy): the command line reads "<denied>", the build id
    // is refused.
    m.privileged = false;
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_COMMANDLINE, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 9), b"<denied>\0");
    assert_eq!(call(&mut m, nr::XEN_VERSION, [XENVER_BUILD_ID, BASE, 0, 0, 0]), Outcome::Return(-1));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [99, BASE, 0, 0, 0]), Outcome::Return(-38));
}

#[test]
fn sched_op_shutdown_reasons_and_faults() {
    let mut m = Mock::new();
    for reason in [0u32, 1, 3] {
        m.put(BASE, &reason.to_le_bytes());
        assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Shutdown(reason));
    }
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN, 8, 0, 0, 0]), Outcome::Return(-14));
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]), Outcome::Yield);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]), Outcome::Block);
    assert_eq!(call(&mut m, nr::SCHED_OP, [77, 0, 0, 0, 0]), Outcome::Return(-38));
    assert_eq!(call(&mut m, nr::SCHED_OP_COMPAT, [SCHEDOP_SHUTDOWN, 3, 0, 0, 0]), Outcome::Shutdown(3));
}

#[test]
fn shutdown_reasons_are_a_byte_and_a_code_is_recorded() {
    // Xen 4.17: `domain_shutdown(d, (u8)reason)` for sched_op, its compat form and
    // remote_shutdown; SCHEDOP_shutdown_code records `(u8)reason`.
    let mut m = Mock::new();
    m.put(BASE, &0x100u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Shutdown(0));
    m.put(BASE, &0x301u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Shutdown(1));
    assert_eq!(call(&mut m, nr::SCHED_OP_COMPAT, [SCHEDOP_SHUTDOWN, 0x1_0000_0203, 0, 0, 0]), Outcome::Shutdown(3));
    m.put(BASE, &0x0000_0402u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN_CODE, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.shutdown_codes, [2]);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_SHUTDOWN_CODE, 8, 0, 0, 0]), Outcome::Return(-14));
    assert_eq!(m.shutdown_codes, [2], "nothing recorded from an unreadable argument");
    // Remote: dom0 names domain 2 with reason 0x100 (poweroff once cut to a byte).
    m.other = Some(DomainFacts { id: 2, nr_pages: 1, max_pages: 1, privileged: false, max_mfn: 1 });
    m.put(BASE, &2u16.to_le_bytes());
    m.put(BASE + 4, &0x100u32.to_le_bytes());
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.shut_down_calls, [(2, 0)]);
}

#[test]
fn memory_op_reservations_and_map() {
    let mut m = Mock::new();
    m.put(BASE, &DOMID_SELF.to_le_bytes());
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_CURRENT_RESERVATION, BASE, 0, 0, 0]), Outcome::Return(32768));
    assert_eq!(
        call(&mut m, nr::MEMORY_OP, [XENMEM_MAXIMUM_RESERVATION, BASE, 0, 0, 0]),
        Outcome::Return(u32::MAX as i64),
        "dom0 is unlimited"
    );
    assert_eq!(
        call(&mut m, nr::MEMORY_OP, [XENMEM_MEMORY_MAP, BASE, 0, 0, 0]),
        Outcome::Return(-38),
        "no e820 for dom0"
    );
    m.privileged = false;
    m.put(BASE, &DOMID_SELF.to_le_bytes());
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_MAXIMUM_RESERVATION, BASE, 0, 0, 0]), Outcome::Return(32768));
    // Another domain: dom0 learns its counts; a domU is refused, after the lookup (Xen's
    // order: -ESRCH for one that does not exist, then -EPERM).
    m.other = Some(DomainFacts { id: 5, nr_pages: 100, max_pages: 102, privileged: false, max_mfn: 0x20000 });
    m.put(BASE, &5u16.to_le_bytes());
    assert_eq!(
        call(&mut m, nr::MEMORY_OP, [XENMEM_CURRENT_RESERVATION, BASE, 0, 0, 0]),
        Outcome::Return(-1),
        "a domU may not ask about others"
    );
    m.put(BASE, &6u16.to_le_bytes());
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_CURRENT_RESERVATION, BASE, 0, 0, 0]), Outcome::Return(-3));
    m.privileged = true;
    m.put(BASE, &5u16.to_le_bytes());
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_CURRENT_RESERVATION, BASE, 0, 0, 0]), Outcome::Return(100));
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_MAXIMUM_RESERVATION, BASE, 0, 0, 0]), Outcome::Return(102));
    // No start extent on these ops.
    for op in [XENMEM_CURRENT_RESERVATION, XENMEM_MAXIMUM_RESERVATION, XENMEM_MAXIMUM_RAM_PAGE] {
        assert_eq!(call(&mut m, nr::MEMORY_OP, [op | 1 << 6, BASE, 0, 0, 0]), Outcome::Return(-22), "op {op}");
    }
    m.privileged = false;
    m.put(BASE, &4u32.to_le_bytes());
    m.put(BASE + 8, &(BASE + 0x100).to_le_bytes());
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_MEMORY_MAP, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 4), &1u32.to_le_bytes());
    assert_eq!(m.u64_at(BASE + 0x108), 32768 * 4096);
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_MEMORY_MAP, 3, 0, 0, 0]), Outcome::Return(-14));
    // Room for no entry: none copied, and the count says so (Xen's min()).
    m.put(BASE, &0u32.to_le_bytes());
    m.put(BASE + 0x100, &[0xaa; 20]);
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_MEMORY_MAP, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.get(BASE, 4), &0u32.to_le_bytes());
    assert_eq!(m.get(BASE + 0x100, 20), &[0xaa; 20]);
    assert_eq!(call(&mut m, nr::MEMORY_OP, [63, BASE, 0, 0, 0]), Outcome::Return(-38));
    assert_eq!(
        call(&mut m, nr::MEMORY_OP, [XENMEM_INCREASE_RESERVATION, BASE, 0, 0, 0]),
        Outcome::Return(0),
        "no growth"
    );
    assert_eq!(call(&mut m, nr::MEMORY_OP, [XENMEM_POPULATE_PHYSMAP, BASE, 0, 0, 0]), Outcome::Return(0));
}

#[test]
fn timers() {
    let mut m = Mock::new();
    assert_eq!(call(&mut m, nr::SET_TIMER_OP, [9_000_000, 0, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.singleshot, Some(9_000_000));
    assert_eq!(call(&mut m, nr::SET_TIMER_OP, [0; 5]), Outcome::Return(0));
    assert_eq!(m.singleshot, None);
    m.put(BASE, &1_000u64.to_le_bytes());
    m.put(BASE + 8, &VCPU_SSHOTTMR_FUTURE.to_le_bytes());
    assert_eq!(
        call(&mut m, nr::VCPU_OP, [VCPUOP_SET_SINGLESHOT_TIMER, 0, BASE, 0, 0]),
        Outcome::Return(0),
        "Xen 4.17.7 ignores the future flag"
    );
    assert_eq!(m.singleshot, Some(1_000));
    m.put(BASE, &7_000_000u64.to_le_bytes());
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_SINGLESHOT_TIMER, 0, BASE, 0, 0]), Outcome::Return(0));
    assert_eq!(m.singleshot, Some(7_000_000));
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_SINGLESHOT_TIMER, 1, BASE, 0, 0]), Outcome::Return(-2));
    m.put(BASE, &500u64.to_le_bytes());
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_PERIODIC_TIMER, 0, BASE, 0, 0]), Outcome::Return(-22));
    m.put(BASE, &10_000_000u64.to_le_bytes());
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_PERIODIC_TIMER, 0, BASE, 0, 0]), Outcome::Return(0));
    assert_eq!(m.periodic, Some(10_000_000));
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.periodic, None);
    // Beyond Xen's STIME_DELTA_MAX (2^62 - 1): refused, the timer left alone.
    m.put(BASE, &(1u64 << 62).to_le_bytes());
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_PERIODIC_TIMER, 0, BASE, 0, 0]), Outcome::Return(-22));
    assert_eq!(m.periodic, None);
    m.put(BASE, &((1u64 << 62) - 1).to_le_bytes());
    assert_eq!(call(&mut m, nr::VCPU_OP, [VCPUOP_SET_PERIODIC_TIMER, 0, BASE, 0, 0]), Outcome::Return(0));
}

#[test]
fn remote_shutdown_as_xen() {
    use hypercall_abi::sched::{SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};
    let mut m = Mock::new();
    let arg = |m: &mut Mock, domid: u16, reason: u32| {
        m.put(BASE, &domid.to_le_bytes());
        m.put(BASE + 4, &reason.to_le_bytes());
    };
    m.other = Some(DomainFacts { id: 2, nr_pages: 1, max_pages: 1, privileged: false, max_mfn: 1 });
    // dom0 shuts domain 2 down; the call returns at once.
    arg(&mut m, 2, SHUTDOWN_POWEROFF);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.shut_down_calls, [(2, SHUTDOWN_POWEROFF)]);
    // Naming itself, it shuts down as with SCHEDOP_shutdown.
    arg(&mut m, 0, SHUTDOWN_REBOOT);
    assert_eq!(
        call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]),
        Outcome::Shutdown(SHUTDOWN_REBOOT)
    );
    // No such domain: -ESRCH; unreadable: -EFAULT.
    arg(&mut m, 9, 0);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(-3));
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, 8, 0, 0, 0]), Outcome::Return(-14));
    // A domU may name neither another domain nor itself (-EPERM, after the lookup).
    m.privileged = false;
    arg(&mut m, 2, 0);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(-1));
    arg(&mut m, 0, 0);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(-1));
    arg(&mut m, 9, 0);
    assert_eq!(call(&mut m, nr::SCHED_OP, [SCHEDOP_REMOTE_SHUTDOWN, BASE, 0, 0, 0]), Outcome::Return(-3));
    assert_eq!(m.shut_down_calls.len(), 1);
}

#[test]
fn commands_are_the_low_32_bits_as_in_xens_prototypes() {
    // `int cmd` (and `unsigned int vcpuid`, `count`): the upper halves of the registers are
    // not looked at.
    let mut m = Mock::new();
    let high = 1u64 << 32;
    assert_eq!(call(&mut m, nr::SCHED_OP, [high | SCHEDOP_YIELD, 0, 0, 0, 0]), Outcome::Yield);
    assert_eq!(call(&mut m, nr::SCHED_OP_COMPAT, [high | SCHEDOP_BLOCK, 0, 0, 0, 0]), Outcome::Block);
    assert_eq!(call(&mut m, nr::VCPU_OP, [high | VCPUOP_IS_UP, high, 0, 0, 0]), Outcome::Return(1));
    assert_eq!(call(&mut m, nr::XEN_VERSION, [high | XENVER_PAGESIZE, 0, 0, 0, 0]), Outcome::Return(4096));
}

#[test]
fn huge_or_negative_timeouts_fire_in_100_ms_as_on_xen() {
    let mut m = Mock::new();
    m.now = 5_000_000_000;
    for timeout in [u64::MAX, 1 << 63, m.now + (1 << 50)] {
        assert_eq!(call(&mut m, nr::SET_TIMER_OP, [timeout, 0, 0, 0, 0]), Outcome::Return(0));
        assert_eq!(m.singleshot, Some(m.now + 100_000_000), "{timeout:#x}");
    }
    let fine = m.now + (1 << 50) - 1;
    call(&mut m, nr::SET_TIMER_OP, [fine, 0, 0, 0, 0]);
    assert_eq!(m.singleshot, Some(fine), "just under 2^50 ns ahead");
    call(&mut m, nr::SET_TIMER_OP, [1, 0, 0, 0, 0]);
    assert_eq!(m.singleshot, Some(1), "in the past: fires at once");
}

fn put_entry(m: &mut Mock, at: u64, op: u64, args: [u64; 6]) {
    let mut raw = vec![];
    raw.extend_from_slice(&op.to_le_bytes());
    raw.extend_from_slice(&0xffffu64.to_le_bytes()); // result, overwritten
    for a in args {
        raw.extend_from_slice(&a.to_le_bytes());
    }
    m.put(at, &raw);
}

#[test]
fn multicall_runs_each_entry_and_stores_results() {
    let mut m = Mock::new();
    let list = BASE + 0x1000;
    put_entry(&mut m, list, nr::XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0, 0]);
    put_entry(&mut m, list + 64, 63, [0; 6]);
    put_entry(&mut m, list + 128, nr::MULTICALL, [list, 1, 0, 0, 0, 0]);
    put_entry(&mut m, list + 192, nr::XEN_VERSION, [XENVER_EXTRAVERSION, 0x5, 0, 0, 0, 0]);
    assert_eq!(call(&mut m, nr::MULTICALL, [list, 4, 0, 0, 0]), Outcome::Return(0));
    let results: Vec<i64> = (0..4).map(|i| m.u64_at(list + i * 64 + 8) as i64).collect();
    assert_eq!(results, vec![0x40011, -38, -22, -14]);
    assert_eq!(call(&mut m, nr::MULTICALL, [0xdead_0000, 1, 0, 0, 0]), Outcome::Return(-14));
    // nr_calls is a plain u32 (no flag bits): a huge count runs in batches like any other.
    let huge = 0x8000_0001;
    assert_eq!(
        call(&mut m, nr::MULTICALL, [list, huge, 0, 0, 0]),
        Outcome::Continue([list + 64 * 64, huge - 64, 0, 0, 0])
    );
    // The list's start must be a guest address even for no entries (Xen's __addr_ok).
    for bad in [0xffff_8000_0000_0000u64, 0x0000_8000_0000_0000] {
        assert_eq!(call(&mut m, nr::MULTICALL, [bad, 0, 0, 0, 0]), Outcome::Return(-14), "{bad:#x}");
    }
    assert_eq!(call(&mut m, nr::MULTICALL, [0xdead_0000, 0, 0, 0, 0]), Outcome::Return(0));
}

#[test]
fn large_multicalls_continue_in_batches() {
    let mut m = Mock::new();
    m.mem.resize(0x10000, 0);
    let list = BASE + 0x100;
    for i in 0..150 {
        put_entry(&mut m, list + i * 64, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0, 0]);
    }
    assert!(
        matches!(call(&mut m, nr::MULTICALL, [list, 150, 0, 0, 0]), Outcome::Continue([l, 86, ..]) if l == list + 64 * 64)
    );
    assert_eq!(call_to_end(&mut m, nr::MULTICALL, [list, 150, 0, 0, 0]), Outcome::Return(0));
    assert!((0..150).all(|i| m.u64_at(list + i * 64 + 8) == 4096));
}

#[test]
fn a_continuing_entry_continues_the_multicall_from_that_entry() {
    let mut m = Mock::new();
    m.mem.resize(0x20000, 0);
    let list = BASE + 0x100;
    let text = BASE + 0x8000;
    m.put(text, &[b'x'; 0x2800]);
    put_entry(&mut m, list, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0, 0]);
    // 10 KiB of console output: 40 chunks of at most 256 bytes.
    put_entry(&mut m, list + 64, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 0x2800, text, 0, 0, 0]);
    put_entry(&mut m, list + 128, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0, 0]);
    // One chunk per hypercall entry: the multicall rewinds to the console entry, whose
    // arguments now describe the rest.
    assert_eq!(call(&mut m, nr::MULTICALL, [list, 3, 0, 0, 0]), Outcome::Continue([list + 64, 2, 0, 0, 0]));
    assert_eq!(m.console.len(), 0x100);
    assert_eq!((m.u64_at(list + 64 + 24), m.u64_at(list + 64 + 32)), (0x2700, text + 0x100));
    assert_eq!(m.u64_at(list + 128 + 8), 0xffff, "later entries have not run");
    assert_eq!(call_to_end(&mut m, nr::MULTICALL, [list + 64, 2, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.console.len(), 0x2800);
    assert!((0..3).all(|i| m.u64_at(list + i * 64 + 8) == if i == 1 { 0 } else { 4096 }));
}

#[test]
fn a_multicall_continues_once_it_ran_long_enough() {
    let mut m = Mock::new();
    m.mem.resize(0x10000, 0);
    let list = BASE + 0x100;
    for i in 0..10 {
        put_entry(&mut m, list + i * 64, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0, 0]);
    }
    // 30 us per clock read, one read at the start and one per entry after the first: the
    // fourth entry starts 90 us in, the fifth at 120 us (past the 100 us slice).
    m.now_step = 30_000;
    let r = call(&mut m, nr::MULTICALL, [list, 10, 0, 0, 0]);
    assert_eq!(r, Outcome::Continue([list + 4 * 64, 6, 0, 0, 0]));
    assert!((0..4).all(|i| m.u64_at(list + i * 64 + 8) == 4096));
    assert_eq!(m.u64_at(list + 4 * 64 + 8), 0xffff, "later entries have not run");
    assert_eq!(call_to_end(&mut m, nr::MULTICALL, [list, 10, 0, 0, 0]), Outcome::Return(0));
}

#[test]
fn multicall_stops_at_shutdown() {
    let mut m = Mock::new();
    let list = BASE + 0x1000;
    put_entry(&mut m, list, nr::SCHED_OP_COMPAT, [SCHEDOP_SHUTDOWN, 0, 0, 0, 0, 0]);
    put_entry(&mut m, list + 64, nr::CONSOLE_IO, [CONSOLEIO_WRITE, 1, BASE, 0, 0, 0]);
    assert_eq!(call(&mut m, nr::MULTICALL, [list, 2, 0, 0, 0]), Outcome::Shutdown(0));
    assert!(m.console.is_empty(), "entries after the shutdown must not run");
}

#[test]
fn entries_after_a_yield_or_block_run_when_the_vcpu_runs_again() {
    // Xen's preemption check after the entry makes a continuation for the rest.
    let mut m = Mock::new();
    let list = BASE + 0x1000;
    put_entry(&mut m, list, nr::SCHED_OP_COMPAT, [SCHEDOP_YIELD, 0, 0, 0, 0, 0]);
    put_entry(&mut m, list + 64, nr::XEN_VERSION, [XENVER_PAGESIZE, 0, 0, 0, 0, 0]);
    put_entry(&mut m, list + 128, nr::SCHED_OP_COMPAT, [SCHEDOP_BLOCK, 0, 0, 0, 0, 0]);
    let out = call(&mut m, nr::MULTICALL, [list, 3, 0, 0, 0]);
    assert_eq!(out, Outcome::SleepThenContinue(super::Sleep::Yield, [list + 64, 2, 0, 0, 0]));
    assert_eq!((m.u64_at(list + 8), m.u64_at(list + 64 + 8)), (0, 0xffff), "the rest has not run");
    // The continuation: the version entry runs, then the block ends the list (nothing left).
    assert_eq!(call(&mut m, nr::MULTICALL, [list + 64, 2, 0, 0, 0]), Outcome::Block);
    assert_eq!((m.u64_at(list + 64 + 8), m.u64_at(list + 128 + 8)), (4096, 0));
}

#[test]
fn a_stopping_entry_stands_when_its_result_cannot_be_stored() {
    // Xen has already shut down (or blocked, or yielded) when it stores the entry's result;
    // a read-only list must not turn that into -EFAULT with the domain still running.
    let mut m = Mock::new();
    let list = BASE + 0x1000;
    put_entry(&mut m, list, nr::SCHED_OP_COMPAT, [SCHEDOP_SHUTDOWN, 0, 0, 0, 0, 0]);
    put_entry(&mut m, list + 64, nr::XEN_VERSION, [XENVER_VERSION, 0, 0, 0, 0, 0]);
    m.guest.read_only_from = Some(list);
    assert_eq!(call(&mut m, nr::MULTICALL, [list, 2, 0, 0, 0]), Outcome::Shutdown(0));
    // An entry that returns still reports the failed store.
    assert_eq!(call(&mut m, nr::MULTICALL, [list + 64, 1, 0, 0, 0]), Outcome::Return(-14));
}

#[test]
fn set_trap_table_installs_entries_until_a_zero_address() {
    let mut m = Mock::new();
    let mut t = vec![];
    for (vector, flags, addr) in [(14u8, 0u8, 0x10_1400u64), (0x80, 3, 0x10_8000), (6, 4, 0x10_0600), (0, 0, 0)] {
        let mut e = [0u8; 16];
        e[0] = vector;
        e[1] = flags;
        e[2..4].copy_from_slice(&0xe030u16.to_le_bytes());
        e[8..16].copy_from_slice(&addr.to_le_bytes());
        t.extend_from_slice(&e);
    }
    m.put(BASE, &t);
    assert_eq!(call(&mut m, nr::SET_TRAP_TABLE, [BASE, 0, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.vcpu.trap_table[14].address, 0x10_1400);
    assert_eq!(m.vcpu.trap_table[0x80].flags, 3);
    assert_eq!(m.vcpu.trap_table[6].flags, 4);
    assert_eq!(call(&mut m, nr::SET_TRAP_TABLE, [0xdead_0000, 0, 0, 0, 0]), Outcome::Return(-14));
    let mut bad = [0u8; 16];
    bad[8..16].copy_from_slice(&0x8000_0000_0000u64.to_le_bytes());
    m.put(BASE, &bad);
    assert_eq!(call(&mut m, nr::SET_TRAP_TABLE, [BASE, 0, 0, 0, 0]), Outcome::Return(-22), "non-canonical handler");
    assert_eq!(call(&mut m, nr::SET_TRAP_TABLE, [0, 0, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.vcpu.trap_table[14].address, 0, "NULL clears every slot");
}

#[test]
fn callbacks_stack_and_segment_bases() {
    let mut m = Mock::new();
    assert_eq!(call(&mut m, nr::SET_CALLBACKS, [0x10_0100, 0x10_0200, 0x10_0300, 0, 0]), Outcome::Return(0));
    assert_eq!((m.vcpu.event_callback, m.vcpu.syscall_callback.address), (0x10_0100, 0x10_0300));
    // Xen's do_set_callbacks drops register_guest_callback's refusal of a non-canonical
    // address: that callback stays, the others of the call are registered, the answer is 0.
    let bad = 0x8000_0000_0000_0000u64;
    assert_eq!(call(&mut m, nr::SET_CALLBACKS, [bad, 0x10_0222, bad, 0, 0]), Outcome::Return(0));
    assert_eq!(m.vcpu.event_callback, 0x10_0100);
    assert_eq!(m.vcpu.failsafe_callback.address, 0x10_0222);
    assert_eq!(m.vcpu.syscall_callback.address, 0x10_0300);
    let mut reg = [0u8; 16];
    reg[0..2].copy_from_slice(&2u16.to_le_bytes()); // syscall
    reg[2..4].copy_from_slice(&1u16.to_le_bytes()); // mask events
    reg[8..16].copy_from_slice(&0x10_0400u64.to_le_bytes());
    m.put(BASE, &reg);
    assert_eq!(call(&mut m, nr::CALLBACK_OP, [0, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.vcpu.syscall_callback, crate::vcpu::Callback { address: 0x10_0400, mask_events: true });
    reg[0..2].copy_from_slice(&7u16.to_le_bytes()); // syscall32
    m.put(BASE, &reg);
    assert_eq!(call(&mut m, nr::CALLBACK_OP, [0, BASE, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(m.vcpu.syscall32_callback, crate::vcpu::Callback { address: 0x10_0400, mask_events: true });
    reg[0..2].copy_from_slice(&99u16.to_le_bytes());
    m.put(BASE, &reg);
    assert_eq!(call(&mut m, nr::CALLBACK_OP, [0, BASE, 0, 0, 0]), Outcome::Return(-38));
    m.put(BASE, &0u16.to_le_bytes());
    assert_eq!(call(&mut m, nr::CALLBACK_OP, [1, BASE, 0, 0, 0]), Outcome::Return(-22), "only NMI unregisters");
    m.put(BASE, &99u16.to_le_bytes());
    assert_eq!(call(&mut m, nr::CALLBACK_OP, [1, BASE, 0, 0, 0]), Outcome::Return(-38), "unknown type");
    assert_eq!(call(&mut m, nr::STACK_SWITCH, [0xe028, 0x20_0000, 0, 0, 0]), Outcome::Return(0));
    assert_eq!((m.vcpu.kernel_ss, m.vcpu.kernel_sp), (0xe02b, 0x20_0000));
    assert_eq!(call(&mut m, nr::SET_SEGMENT_BASE, [0, 0x7000_0000, 0, 0, 0]), Outcome::Return(0));
    assert_eq!((m.vcpu.fs_base, m.bases_applied), (0x7000_0000, 1));
    assert_eq!(call(&mut m, nr::SET_SEGMENT_BASE, [2, 0x8000_0000_0000, 0, 0, 0]), Outcome::Return(-22));
    assert_eq!(call(&mut m, nr::SET_SEGMENT_BASE, [9, 0, 0, 0, 0]), Outcome::Return(-22));
    // A user %gs selector load never fails (Xen's fix-up: a selector the CPU would refuse
    // becomes null; others get RPL 3); the user base becomes 0, %gs holds the selector.
    for (selector, loaded) in
        [(0, 0), (2, 2), (0xe02b, 0xe02b), (0xe028, 0xe02b), (0xe030, 0xe033), (0x1234, 0), (0xe010, 0), (0xe02f, 0)]
    {
        m.vcpu.gs_base_user = 0x5000;
        assert_eq!(call(&mut m, nr::SET_SEGMENT_BASE, [3, selector, 0, 0, 0]), Outcome::Return(0));
        assert_eq!((m.vcpu.gs_base_user, m.vcpu.data_selectors[3]), (0, loaded), "selector {selector:#x}");
    }
    assert_eq!(call(&mut m, nr::FPU_TASKSWITCH, [1, 0, 0, 0, 0]), Outcome::Return(0));
    assert!(m.vcpu.cr0_ts);
}

fn domctl_op(m: &mut Mock, cmd: u32, version: u32, domain: u16) -> Outcome {
    domctl_op_at(m, BASE + 0x200, cmd, version, domain)
}

/// A `domctl` whose structure is at `va`.
fn domctl_op_at(m: &mut Mock, va: u64, cmd: u32, version: u32, domain: u16) -> Outcome {
    let mut op = [0u8; 144];
    op[0..4].copy_from_slice(&cmd.to_le_bytes());
    op[4..8].copy_from_slice(&version.to_le_bytes());
    op[8..10].copy_from_slice(&domain.to_le_bytes());
    m.put(va, &op);
    call(m, nr::DOMCTL, [va, 0, 0, 0, 0])
}

#[test]
fn domctl_is_for_dom0_only_and_reports_domains() {
    use hypercall_abi::domctl::*;
    let mut m = Mock::new();
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, 0x14, 0), Outcome::Return(-13), "old interface version");
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, 1), Outcome::Return(0));
    let u = BASE + 0x200 + 16;
    assert_eq!(u16::from_le_bytes(m.get(u, 2).try_into().unwrap()), 2, "walks on to the next domain");
    assert_eq!(m.u64_at(u + 8), 102);
    assert_eq!(m.u64_at(u + 48), 0x502);
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, 6), Outcome::Return(-3));
    // A reserved id (DOMID_SELF among them): -EINVAL in Xen 4.17.
    for reserved in [0x7ff0, 0x7ff4, 0xffff] {
        assert_eq!(
            domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, reserved),
            Outcome::Return(-22)
        );
    }
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, XEN_DOMCTL_INTERFACE_VERSION, 2), Outcome::Return(0));
    assert_eq!(m.doms[1].1, 1);
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_UNPAUSEDOMAIN, XEN_DOMCTL_INTERFACE_VERSION, 2), Outcome::Return(0));
    assert_eq!(m.doms[1].1, 0);
    assert_eq!(
        domctl_op(&mut m, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_INTERFACE_VERSION, 0),
        Outcome::Return(-22),
        "not itself"
    );
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_INTERFACE_VERSION, 5), Outcome::Return(0));
    assert_eq!(m.doms.len(), 2);
    assert_eq!(domctl_op(&mut m, 99, XEN_DOMCTL_INTERFACE_VERSION, 0), Outcome::Return(-38));
    assert_eq!(domctl_op(&mut m, 99, XEN_DOMCTL_INTERFACE_VERSION, 77), Outcome::Return(-3), "no such domain first");
    m.privileged = false;
    assert_eq!(
        domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_INTERFACE_VERSION, 0),
        Outcome::Return(-1),
        "a domU gets -EPERM"
    );
}

#[test]
fn getdomaininfo_fills_the_whole_structure_as_xen() {
    // Xen's getdomaininfo() clears the structure and fills it: no byte of the request may
    // come back in a field it leaves at 0 (outstanding_pages, ssidref, handle, cpupool, ...).
    use hypercall_abi::domctl::*;
    let mut m = Mock::new();
    let va = BASE + 0x200;
    let mut op = [0xaau8; 144];
    op[0..4].copy_from_slice(&XEN_DOMCTL_GETDOMAININFO.to_le_bytes());
    op[4..8].copy_from_slice(&XEN_DOMCTL_INTERFACE_VERSION.to_le_bytes());
    op[8..10].copy_from_slice(&2u16.to_le_bytes());
    m.put(va, &op);
    assert_eq!(call(&mut m, nr::DOMCTL, [va, 0, 0, 0, 0]), Outcome::Return(0));
    let info = m.get(va + 16, 112);
    let mut want = [0u8; 112];
    want[0..2].copy_from_slice(&2u16.to_le_bytes());
    want[8..16].copy_from_slice(&102u64.to_le_bytes()); // tot_pages
    want[16..24].copy_from_slice(&102u64.to_le_bytes()); // max_pages
    want[48..56].copy_from_slice(&0x502u64.to_le_bytes()); // shared_info_frame
    want[56..64].copy_from_slice(&7u64.to_le_bytes()); // cpu_time
    want[64..68].copy_from_slice(&1u32.to_le_bytes()); // nr_online_vcpus
    want[96] = 40; // gpaddr_bits
    assert_eq!(info, want);
    assert_eq!(m.get(va + 128, 16), [0xaa; 16], "the rest of the union is the caller's, as in Xen");
}

#[test]
fn a_domus_domctl_fails_in_xens_order() {
    // Xen 4.17's do_domctl: copy_from_guest (-EFAULT), interface_version (-EACCES),
    // rcu_lock_domain_by_id (-ESRCH, not for getdomaininfo), and then xsm_domctl (-EPERM).
    use hypercall_abi::domctl::*;
    let mut m = Mock::new();
    m.privileged = false;
    assert_eq!(call(&mut m, nr::DOMCTL, [0xdead_0000, 0, 0, 0, 0]), Outcome::Return(-14), "unreadable: -EFAULT");
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, 0x14, 2), Outcome::Return(-13), "old version: -EACCES");
    let v = XEN_DOMCTL_INTERFACE_VERSION;
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, v, 77), Outcome::Return(-3), "no such domain: -ESRCH");
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, v, 2), Outcome::Return(-1), "existing domain: -EPERM");
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_GETDOMAININFO, v, 77), Outcome::Return(-1), "getdomaininfo: -EPERM");
    assert_eq!(m.doms[1].1, 0, "nothing paused");
}

#[test]
fn a_continued_destroy_whose_domain_is_gone_ends_with_success() {
    // The teardown may end on another entry between two rounds of a continued destroy:
    // the continuation then finds no domain, and reports the destroy done (Xen's call holds
    // a reference to the domain until it returns). A fresh destroy of it is -ESRCH.
    use hypercall_abi::domctl::*;
    let mut m = Mock::new();
    let v = XEN_DOMCTL_INTERFACE_VERSION;
    m.doms.retain(|d| d.0 != 5);
    m.reaped.push(5);
    let mut op = [0u8; 144];
    op[0..4].copy_from_slice(&XEN_DOMCTL_DESTROYDOMAIN.to_le_bytes());
    op[4..8].copy_from_slice(&v.to_le_bytes());
    op[8..10].copy_from_slice(&5u16.to_le_bytes());
    m.put(BASE + 0x200, &op);
    assert_eq!(call(&mut m, nr::DOMCTL, [BASE + 0x200, 0, 0, 0, 0]), Outcome::Return(0));
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_DESTROYDOMAIN, v, 5), Outcome::Return(-3));
}

#[test]
fn pauses_count_once_each_up_to_255() {
    // Xen's controller_pause_count: each pause counts once (the machine waits for a domain
    // running elsewhere outside the call: no continuation, nothing to count twice); at most
    // 255, then -EOVERFLOW; each unpause undoes one, one more is -EINVAL.
    use hypercall_abi::domctl::*;
    let v = XEN_DOMCTL_INTERFACE_VERSION;
    let mut m = Mock::new();
    for _ in 0..255 {
        assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, v, 2), Outcome::Return(0));
    }
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_PAUSEDOMAIN, v, 2), Outcome::Return(-75), "-EOVERFLOW");
    assert_eq!(m.doms[1].1, 255);
    for _ in 0..255 {
        assert_eq!(domctl_op(&mut m, XEN_DOMCTL_UNPAUSEDOMAIN, v, 2), Outcome::Return(0));
    }
    assert_eq!(domctl_op(&mut m, XEN_DOMCTL_UNPAUSEDOMAIN, v, 2), Outcome::Return(-22));
}

#[test]
fn the_first_shutdown_reason_is_recorded_and_255_records_nothing() {
    let mut recorded = None;
    assert_eq!(shutdown_reason(&mut recorded, 255), 255, "SHUTDOWN_CODE_INVALID: nothing recorded");
    assert_eq!(recorded, None);
    assert_eq!(shutdown_reason(&mut recorded, 0), 0);
    assert_eq!(shutdown_reason(&mut recorded, 3), 0, "a crash after a recorded poweroff reports poweroff");
    assert_eq!(recorded, Some(0));
}
