//! The running domain: building dom0 from its ELF image (Xen's PV builder), the hypercall
//! environment, and what happens when the guest traps, shuts down or crashes.
//!
//! One domain with one vCPU runs for now; the scheduler and domUs come with the multi-domain
//! work. The generic pieces (ELF checks, layout, page tables, hypercalls, guest access) live
//! in the `hypervisor` library and are host-tested.

use crate::arch::x86_64::{apic, cpu, gdt, guest_entry, idt::TrapFrame, paging, serial};
use alloc::vec::Vec;
use core::mem::offset_of;
use hypercall_abi::shared_info::{SharedInfo, VcpuInfo};
use hypercall_abi::errno::Errno;
use hypervisor::exit_code;
use hypervisor::guest_access;
use hypervisor::hypercalls::{self, DomainFacts, Env, Outcome};
use hypervisor::vcpu::{self, Delivery, DeliveryError, GuestMemory, ModeChange, VcpuState};
use spin::Mutex;

/// `SHUTDOWN_*` reasons.
const SHUTDOWN_POWEROFF: u32 = 0;
const SHUTDOWN_REBOOT: u32 = 1;
const SHUTDOWN_CRASH: u32 = 3;

/// A PV domain.
pub struct Domain {
    /// Domain id (0 for dom0).
    pub id: u16,
    /// Name (from the config; `Domain-0` for dom0).
    pub name: alloc::string::String,
    /// Whether this is the privileged control domain.
    pub privileged: bool,
    /// Pseudo-physical to machine frame map.
    pub p2m: Vec<u64>,
    /// The vCPU's virtual state (trap table, callbacks, mode, root page tables).
    pub vcpu: VcpuState,
    /// Machine frame of the shared_info page.
    pub shared_info_mfn: u64,
    /// One-shot timer deadline (system time, ns).
    pub singleshot_ns: Option<u64>,
    /// Periodic timer period (ns).
    pub periodic_ns: Option<u64>,
}

/// The running domain and the machine facts its hypercalls need.
pub struct Machine {
    /// The domain.
    pub domain: Domain,
    /// Direct-map accessor.
    pub mem: paging::DirectMap,
    /// TSC frequency for system time.
    pub tsc_hz: u64,
    /// TSC at boot (system time 0).
    pub tsc_boot: u64,
    /// The hypervisor's command line (for `XENVER_commandline`).
    pub cmdline: heapless::String<1024>,
    /// Unix time at system time 0, from the CMOS clock.
    pub wallclock_at_boot: u64,
}

/// The machine state, reached from the trap path (single CPU, interrupts off: never contended).
pub static MACHINE: Mutex<Option<Machine>> = Mutex::new(None);

/// Starts the machine's domain in guest context. Never returns.
pub fn start(mut machine: Machine, frame: TrapFrame) -> ! {
    machine.update_time();
    let l4 = machine.domain.vcpu.kernel_l4;
    *MACHINE.lock() = Some(machine);
    guest_entry::load_page_tables(l4);
    guest_entry::resume(&frame, gdt::ring0_stack_top())
}

impl Machine {
    fn ns_at(&self, tsc: u64) -> u64 {
        let ticks = tsc.wrapping_sub(self.tsc_boot) as u128;
        (ticks * 1_000_000_000 / self.tsc_hz.max(1) as u128) as u64
    }

    fn now_ns(&self) -> u64 {
        self.ns_at(cpu::rdtsc())
    }
}

impl Env for Machine {
    fn copy_from_guest(&self, va: u64, out: &mut [u8]) -> Result<(), Errno> {
        guest_access::copy_from_guest(&self.mem, self.domain.vcpu.current_l4(), va, out).map_err(|_| Errno::EFAULT)
    }
    fn copy_to_guest(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        guest_access::copy_to_guest(&mut self.mem, self.domain.vcpu.current_l4(), va, bytes).map_err(|_| Errno::EFAULT)
    }
    fn console_write(&mut self, bytes: &[u8]) {
        serial::write_bytes(bytes);
    }
    fn console_read(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match serial::try_read() {
                Some(b) => out[n] = b,
                None => break,
            }
            n += 1;
        }
        n
    }
    fn domain(&self) -> DomainFacts {
        DomainFacts {
            id: self.domain.id,
            nr_pages: self.domain.p2m.len() as u64,
            max_pages: self.domain.p2m.len() as u64,
            privileged: self.domain.privileged,
            max_mfn: self.mem.top >> 12,
        }
    }
    fn now_ns(&self) -> u64 {
        Machine::now_ns(self)
    }
    fn set_singleshot_timer(&mut self, deadline_ns: Option<u64>) {
        self.domain.singleshot_ns = deadline_ns;
    }
    fn set_periodic_timer(&mut self, period_ns: Option<u64>) {
        self.domain.periodic_ns = period_ns;
    }
    fn hypervisor_cmdline(&self) -> &str {
        &self.cmdline
    }
    fn vcpu(&mut self) -> &mut VcpuState {
        &mut self.domain.vcpu
    }
    fn apply_segment_bases(&mut self) {
        cpu::load_segment_bases(&self.domain.vcpu);
    }
}

impl GuestMemory for paging::DirectMap {
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool {
        guest_access::copy_to_guest(self, l4, va, bytes).is_ok()
    }
    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool {
        guest_access::copy_from_guest(self, l4, va, out).is_ok()
    }
}

/// Offsets in shared_info of the fields the hypervisor writes (vCPU 0's `vcpu_info`).
const UPCALL_PENDING: u64 = offset_of!(VcpuInfo, evtchn_upcall_pending) as u64;
const UPCALL_MASK: u64 = offset_of!(VcpuInfo, evtchn_upcall_mask) as u64;
const VCPU_CR2: u64 = offset_of!(VcpuInfo, arch.cr2) as u64;
const VCPU_TIME: u64 = offset_of!(VcpuInfo, time) as u64;
const WC_VERSION: u64 = offset_of!(SharedInfo, wc_version) as u64;

impl Machine {
    fn shared_byte(&self, offset: u64) -> u8 {
        let mut b = [0u8];
        hypervisor::guest_access::MachineAccess::read_bytes(&self.mem, (self.domain.shared_info_mfn << 12) + offset, &mut b);
        b[0]
    }

    fn set_shared_bytes(&mut self, offset: u64, bytes: &[u8]) {
        let at = (self.domain.shared_info_mfn << 12) + offset;
        hypervisor::guest_access::MachineAccess::write_bytes(&mut self.mem, at, bytes);
    }

    /// Publishes system time and the wall clock in shared_info (digest §3.9), with the
    /// seqlock-style version bumps guests rely on.
    pub fn update_time(&mut self) {
        let (mul, shift) = vcpu::tsc_scale(self.tsc_hz);
        let tsc = cpu::rdtsc();
        let now = self.ns_at(tsc);
        let version = {
            let mut b = [0u8; 4];
            let at = (self.domain.shared_info_mfn << 12) + VCPU_TIME;
            hypervisor::guest_access::MachineAccess::read_bytes(&self.mem, at, &mut b);
            u32::from_le_bytes(b)
        };
        let (odd, even) = (version | 1, (version | 1).wrapping_add(1));
        let mut time = [0u8; 32];
        self.set_shared_bytes(VCPU_TIME, &odd.to_le_bytes()); // odd: update in progress
        time[8..16].copy_from_slice(&tsc.to_le_bytes());
        time[16..24].copy_from_slice(&now.to_le_bytes());
        time[24..28].copy_from_slice(&mul.to_le_bytes());
        time[28] = shift as u8;
        time[29] = 1; // XEN_PVCLOCK_TSC_STABLE_BIT: one CPU, one TSC
        self.set_shared_bytes(VCPU_TIME + 8, &time[8..32]);
        self.set_shared_bytes(VCPU_TIME, &even.to_le_bytes()); // even again: consistent
        let mut wc = [0u8; 16];
        wc[0..4].copy_from_slice(&2u32.to_le_bytes());
        wc[4..8].copy_from_slice(&(self.wallclock_at_boot as u32).to_le_bytes());
        wc[12..16].copy_from_slice(&((self.wallclock_at_boot >> 32) as u32).to_le_bytes());
        self.set_shared_bytes(WC_VERSION, &wc);
    }

    /// Delivers `d` to the guest kernel, or crashes the domain if that is impossible.
    fn deliver(&mut self, frame: &mut TrapFrame, d: Delivery, what: &str) {
        let mut mask = self.shared_byte(UPCALL_MASK);
        let result = self.domain.vcpu.bounce(frame, d, &mut mask, &mut self.mem);
        match result {
            Ok(change) => {
                self.set_shared_bytes(UPCALL_MASK, &[mask]);
                self.apply_mode_change(change);
            }
            Err(e) => self.crash(frame, what, e),
        }
    }

    fn apply_mode_change(&mut self, change: ModeChange) {
        if change != ModeChange::None {
            guest_entry::load_page_tables(self.domain.vcpu.current_l4());
            cpu::load_segment_bases(&self.domain.vcpu);
        }
    }

    fn crash(&mut self, frame: &TrapFrame, what: &str, e: DeliveryError) -> ! {
        log::error!(
            "d{}: {what} at rip={:#x} cannot be delivered: {e}: crashing domain (vector {}, error_code={:#x}, cr2={:#x})",
            self.domain.id,
            frame.rip,
            frame.vector,
            frame.error_code,
            cpu::read_cr2()
        );
        domain_shutdown(self.domain.id, SHUTDOWN_CRASH)
    }

    /// Delivers a pending event upcall if events are unmasked: Xen's check on every return to
    /// the guest.
    fn deliver_pending_events(&mut self, frame: &mut TrapFrame) {
        if self.shared_byte(UPCALL_PENDING) != 0
            && self.shared_byte(UPCALL_MASK) == 0
            && self.domain.vcpu.event_callback != 0
        {
            let d = Delivery { handler: self.domain.vcpu.event_callback, error_code: None, mask_events: true };
            self.deliver(frame, d, "event upcall");
        }
    }

    /// A `SYSCALL`: from guest kernel mode a hypercall, from guest user mode a system call
    /// bounced to the guest's syscall callback.
    fn on_syscall(&mut self, frame: &mut TrapFrame) {
        if !self.domain.vcpu.kernel_mode {
            let cb = self.domain.vcpu.syscall_callback;
            if cb.address == 0 {
                // Xen injects #UD at the `syscall` instruction.
                frame.rip -= 2;
                return self.on_exception(frame, vcpu::VECTOR_UD, None);
            }
            let d = Delivery { handler: cb.address, error_code: None, mask_events: cb.mask_events };
            return self.deliver(frame, d, "syscall");
        }
        if frame.rax == hypercall_abi::hypercall::IRET {
            return self.on_iret(frame);
        }
        let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8];
        match hypercalls::dispatch(self, frame.rax, args) {
            Outcome::Return(v) => frame.rax = v as u64,
            Outcome::Continue(next) => {
                // Re-execute the 2-byte SYSCALL with the advanced arguments (Xen's continuation).
                [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8] = next;
                frame.rip -= 2;
            }
            Outcome::Yield => frame.rax = 0,
            Outcome::Block => {
                frame.rax = 0;
                self.block();
            }
            Outcome::Shutdown(reason) => domain_shutdown(self.domain.id, reason),
        }
    }

    /// `SCHEDOP_block`: enable events, then sleep until one is pending.
    fn block(&mut self) {
        self.set_shared_bytes(UPCALL_MASK, &[0]);
        loop {
            if self.shared_byte(UPCALL_PENDING) != 0 {
                return;
            }
            match self.domain.singleshot_ns {
                Some(d) if self.now_ns() >= d => {
                    self.domain.singleshot_ns = None;
                    return;
                }
                Some(_) => cpu::idle_wait_for_interrupt(),
                None => {
                    log::warn!("d{}: blocked with no timer armed and no event pending", self.domain.id);
                    cpu::idle_wait_for_interrupt();
                }
            }
        }
    }

    fn on_iret(&mut self, frame: &mut TrapFrame) {
        let mut mask = self.shared_byte(UPCALL_MASK);
        match self.domain.vcpu.iret(frame, &mut mask, &self.mem) {
            Ok(Ok(change)) => {
                self.set_shared_bytes(UPCALL_MASK, &[mask]);
                self.apply_mode_change(change);
            }
            // A frame the CPU could not return to: #GP(0), as Xen's failed IRET.
            Ok(Err(())) => self.on_exception(frame, vcpu::VECTOR_GP, Some(0)),
            Err(e) => self.crash(frame, "iret", e),
        }
    }

    fn on_exception(&mut self, frame: &mut TrapFrame, vector: u8, error_code: Option<u64>) {
        // `int n` on a DPL-0 gate arrives as #GP with error code (n << 3) | 2.
        if vector == vcpu::VECTOR_GP {
            if let Some(code) = error_code.filter(|c| c & 7 == 2) {
                let n = (code >> 3) as u8;
                if let Some(d) = self.domain.vcpu.software_interrupt(n) {
                    frame.rip += 2;
                    return self.deliver(frame, d, "software interrupt");
                }
            }
        }
        if vector == vcpu::VECTOR_PF {
            self.set_shared_bytes(VCPU_CR2, &cpu::read_cr2().to_le_bytes());
        }
        match self.domain.vcpu.exception(vector, error_code) {
            Ok(d) => self.deliver(frame, d, EXCEPTION_NAMES[vector as usize]),
            Err(e) => self.crash(frame, EXCEPTION_NAMES[vector as usize], e),
        }
    }
}

/// Mnemonics of the architectural exception vectors.
pub const EXCEPTION_NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "res15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "res22", "res23", "res24",
    "res25", "res26", "res27", "#HV", "#VC", "#SX", "res31",
];

/// Vectors whose exceptions push an error code.
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Everything that enters the hypervisor from guest context comes here.
pub fn on_guest_entry(frame: &mut TrapFrame) {
    let mut guard = MACHINE.lock();
    let Some(m) = guard.as_mut() else {
        drop(guard);
        log::error!("entry from ring 3 with no domain running");
        crate::fatal_stop();
    };
    match frame.vector {
        crate::arch::x86_64::syscall::SYSCALL_VECTOR => m.on_syscall(frame),
        v if v == apic::TIMER_VECTOR as u64 => {
            apic::on_timer_interrupt();
            m.update_time();
        }
        v if v == apic::SPURIOUS_VECTOR as u64 => {}
        v if v < 32 => {
            let v = v as u8;
            let code = has_error_code(v).then_some(frame.error_code);
            m.on_exception(frame, v, code);
        }
        v => {
            log::warn!("d{}: unexpected interrupt vector {v} in guest context", m.domain.id);
            apic::end_of_interrupt();
        }
    }
    m.deliver_pending_events(frame);
}

/// The domain shut down. For dom0 this ends the machine, as Xen does with its hardware domain.
pub fn domain_shutdown(id: u16, reason: u32) -> ! {
    let what = match reason {
        SHUTDOWN_POWEROFF => "poweroff",
        SHUTDOWN_REBOOT => "reboot",
        SHUTDOWN_CRASH => "crash",
        _ => "other",
    };
    log::info!("d{id}: shutdown requested: reason {reason} ({what})");
    let code = match reason {
        SHUTDOWN_POWEROFF | SHUTDOWN_REBOOT => exit_code::SUCCESS,
        _ => exit_code::FAILURE,
    };
    log::info!(
        "Hardware domain shut down: ending the machine ({}).",
        if code == exit_code::SUCCESS { "success" } else { "failure" }
    );
    cpu::qemu_exit(code)
}
