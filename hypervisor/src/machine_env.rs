//! The hypercall environment of the running domain ([`Env`] for [`Machine`]) and the
//! hardware access the privileged-instruction emulator needs ([`Platform`]).

use crate::arch::x86_64::paging::DirectMap;
use crate::arch::x86_64::{cpu, guest_copy, serial};
use crate::domain::{GuestTables, Machine};
use hypercall_abi::domctl::{XEN_DOMINF_BLOCKED, XEN_DOMINF_DYING, XEN_DOMINF_PAUSED, XEN_DOMINF_RUNNING};
use hypercall_abi::errno::Errno;
use hypervisor::emulate::Platform;
use hypervisor::evtchn::EventAccess;
use hypervisor::grant::{GrantAccess, RunningElsewhere};
use hypervisor::guest_access::{self, GuestSpan};
use hypervisor::guest_stack::within_one_page;
use hypervisor::hypercalls::domctl::count_pause;
use hypervisor::hypercalls::{DomainControl, DomainFacts, DomainInfo, Env};
use hypervisor::mm::{DomainRights, MmuAccess};
use hypervisor::vcpu::{GuestMemory, VcpuState};

impl Env for Machine {
    fn copy_from_guest(&self, va: u64, out: &mut [u8]) -> Result<(), Errno> {
        // Through the guest's own tables when they are the ones loaded (a hypercall from
        // guest kernel mode): the MMU checks what the software walk would (`guest_copy`).
        if self.direct_guest_copy(va, out.len()) {
            return if guest_copy::read_loaded(va, out) { Ok(()) } else { Err(Errno::EFAULT) };
        }
        let l4 = self.domains.get(&self.current).map_or(0, |d| d.vcpu.current_l4());
        guest_access::copy_from_guest(&self.mem, l4, va, out).map_err(|_| Errno::EFAULT)
    }

    fn copy_to_guest(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        // As for reads, for a write within one page: it faults at its first byte or not at
        // all, so a refused write leaves guest memory unchanged, as the walk guarantees.
        let in_one_page = bytes.is_empty() || within_one_page(va, bytes.len() as u64);
        if in_one_page && self.direct_guest_copy(va, bytes.len()) {
            return if guest_copy::write_loaded_in_page(va, bytes) { Ok(()) } else { Err(Errno::EFAULT) };
        }
        let l4 = self.domains.get(&self.current).map_or(0, |d| d.vcpu.current_l4());
        guest_access::copy_to_guest(&mut self.mem, l4, va, bytes).map_err(|_| Errno::EFAULT)
    }

    fn guest_span_for_write(&self, va: u64, len: usize) -> Option<GuestSpan> {
        let l4 = self.domains.get(&self.current)?.vcpu.current_l4();
        GuestSpan::resolve_for_write(&self.mem, l4, va, len).ok()
    }

    fn console_write(&mut self, bytes: &[u8]) {
        // Xen prints the hardware domain's output as it is (it may be interactive), and
        // others' a whole line at a time, printable characters only, each with "(dN) ".
        let id = self.current;
        match self.domains.get_mut(&id) {
            Some(d) if !d.privileged => d.console_line.write(bytes, |line| {
                serial::write_fmt(format_args!("(d{id}) {}\r\n", core::str::from_utf8(line).unwrap_or("")))
            }),
            _ => serial::write_bytes(bytes),
        }
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

    fn record_shutdown_code(&mut self, code: u8) {
        if let Some(d) = self.domains.get_mut(&self.current) {
            hypervisor::hypercalls::shutdown_reason(&mut d.shutdown_code, code);
        }
    }

    fn paused_by_controller(&self, id: u16) -> bool {
        self.domains.get(&id).is_some_and(|d| d.pause_count > 0)
    }

    fn domain_facts_of(&self, id: u16) -> Option<DomainFacts> {
        let d = self.domains.get(&id)?;
        Some(DomainFacts {
            id,
            nr_pages: self.frames.pages_of(id),
            max_pages: d.max_pages,
            privileged: d.privileged,
            max_mfn: self.frames.max_mfn(),
        })
    }

    fn domain(&self) -> DomainFacts {
        let d = self.domains.get(&self.current);
        let pages = self.frames.pages_of(self.current);
        DomainFacts {
            id: self.current,
            nr_pages: pages,
            max_pages: d.map_or(0, |d| d.max_pages),
            privileged: d.is_some_and(|d| d.privileged),
            max_mfn: self.frames.max_mfn(),
        }
    }

    fn now_ns(&self) -> u64 {
        Machine::now_ns(self)
    }

    fn set_singleshot_timer(&mut self, deadline_ns: Option<u64>) {
        if deadline_ns.is_some_and(|t| hypervisor::vcpu::deadline_passed(t, Machine::now_ns(self))) {
            // A deadline already past fires now, as Xen's `set_timer` does, not at the next
            // tick: a guest that binds VIRQ_TIMER afterwards must not get this one later.
            self.cur().singleshot_ns = None;
            self.fire_timer(self.current);
            return;
        }
        self.cur().singleshot_ns = deadline_ns;
    }

    fn set_periodic_timer(&mut self, period_ns: Option<u64>) {
        let now = Machine::now_ns(self);
        let d = self.cur();
        d.periodic_ns = period_ns;
        let Some(period) = period_ns else { return };
        let (fire, last, next) = hypervisor::vcpu::periodic_rearm(d.periodic_last_ns, period, now);
        (d.periodic_last_ns, d.next_periodic_ns) = (last, next);
        if fire {
            self.fire_timer(self.current);
        }
    }

    fn hypervisor_cmdline(&self) -> &str {
        &self.cmdline
    }

    fn vcpu(&mut self) -> &mut VcpuState {
        // Whoever changes the vCPU may change its page-table root.
        self.guest_tables.set(GuestTables::Walk);
        &mut self.cur().vcpu
    }

    fn refresh_segment_state(&mut self) {
        crate::guest_traps::refresh_segment_state(&mut self.cur().vcpu);
    }

    fn apply_segment_bases(&mut self) {
        crate::guest_traps::apply_segment_state(&self.cur().vcpu);
    }

    fn events(&mut self) -> Option<EventAccess<'_>> {
        Some(EventAccess::new(&mut self.events, &mut self.event_host, self.current))
    }

    fn mmu(&mut self) -> Option<MmuAccess<'_>> {
        // Page tables may change from here on, their flush deferred: see `direct_guest_copy`.
        self.guest_tables.set(GuestTables::Walk);
        self.current_mmu()
    }

    fn priv_state(&mut self) -> Option<&mut hypervisor::emulate::PrivState> {
        Some(&mut self.cur().priv_state)
    }

    fn take_new_frames(&mut self, id: u16, order: u32) -> Option<u64> {
        let max_pages = self.domains.get(&id).filter(|d| !d.dying)?.max_pages;
        let alloc = |count: u64| {
            let mut allocator = crate::memory::FRAMES.lock();
            let allocator = allocator.as_mut()?;
            // One frame: next-fit from where the last search ended, not a scan from the bottom.
            if count == 1 {
                allocator.alloc()
            } else {
                allocator.alloc_contiguous(count, count)
            }
        };
        let release = |back: &mut dyn Iterator<Item = u64>| {
            if let Some(allocator) = crate::memory::FRAMES.lock().as_mut() {
                for frame in back {
                    let _ = allocator.free(frame);
                }
            }
        };
        hypervisor::hypercalls::memory::give_new_frames(
            &mut self.frames,
            &mut self.mem,
            id,
            max_pages,
            order,
            alloc,
            release,
        )
    }

    fn grants(&mut self) -> Option<GrantAccess<'_>> {
        self.grant_access().map(GrantAccess::erase)
    }

    fn has_grants(&mut self) -> bool {
        self.domains.get(&self.current).is_some()
    }

    fn copy_grants(&mut self, span: &GuestSpan, count: usize) -> Option<bool> {
        self.grant_access().map(|mut grants| grants.copy_span(span, count))
    }

    fn domain_control(&mut self) -> Option<&mut dyn DomainControl> {
        // Destroying a domain releases page tables: as for `mmu`.
        self.guest_tables.set(GuestTables::Walk);
        Some(self)
    }

    fn paging_work(&self) -> u64 {
        self.domains.get(&self.current).map_or(0, |d| d.vcpu.paging.work)
    }

    fn limit_paging_work(&mut self, end: Option<u64>) {
        if let Some(d) = self.domains.get_mut(&self.current) {
            d.vcpu.paging.batch_end = end;
        }
    }

    fn page_releases_pending(&self) -> bool {
        self.domains.get(&self.current).is_some_and(|d| !d.vcpu.paging.releasing.is_empty())
    }

    fn set_poll_ports(&mut self, ports: &[u32]) {
        let d = self.cur();
        d.poll_ports.clear();
        d.poll_ports.extend_from_slice(ports);
    }

    fn set_virtual_iopl(&mut self, iopl: u8) -> bool {
        self.cur().priv_state.iopl = iopl & 3;
        true
    }
}

impl Machine {
    /// The grant tables with the calling vCPU's MMU over the machine's own memory type
    /// (see `GrantAccess`).
    fn grant_access(&mut self) -> Option<GrantAccess<'_, DirectMap>> {
        // Grant mappings change page tables: as for `mmu`.
        self.guest_tables.set(GuestTables::Walk);

        let running_elsewhere = RunningElsewhere::new(self.running_elsewhere());
        let d = self.domains.get_mut(&self.current)?;
        let rights = DomainRights { id: d.id, io_capable: d.privileged };
        Some(GrantAccess {
            tables: &mut self.grants,
            mmu: hypervisor::mm::Mmu::new(
                &mut self.frames,
                &mut self.mem,
                &self.hypervisor_slots,
                rights,
                &mut d.vcpu.paging,
            ),
            pool: &mut self.grant_pool,
            privileged: d.privileged,
            running_elsewhere,
        })
    }

    /// The PV MMU over the running domain's frames and paging state.
    pub fn current_mmu(&mut self) -> Option<MmuAccess<'_>> {
        let d = self.domains.get_mut(&self.current)?;
        let rights = DomainRights { id: d.id, io_capable: d.privileged };
        Some(hypervisor::mm::Mmu::new(
            &mut self.frames,
            &mut self.mem,
            &self.hypervisor_slots,
            rights,
            &mut d.vcpu.paging,
        ))
    }

    /// Whether a guest copy of `len` bytes at `va` may go through the guest's tables in CR3
    /// instead of the software walk: nothing in this hypercall has changed page tables or
    /// the root yet, CR3 holds the running guest's current tables with no paging work
    /// pending (asked once per hypercall, at its first copy; see [`GuestTables`]), and the
    /// range is the guest's.
    #[inline]
    fn direct_guest_copy(&self, va: u64, len: usize) -> bool {
        let loaded = match self.guest_tables.get() {
            GuestTables::Loaded => true,
            GuestTables::Unchanged => {
                let loaded = self.domains.get(&self.current).is_some_and(|d| {
                    d.vcpu.paging.effects.is_empty() && guest_copy::tables_loaded(d.vcpu.current_l4())
                });
                self.guest_tables.set(if loaded { GuestTables::Loaded } else { GuestTables::Walk });
                loaded
            }
            _ => false,
        };
        loaded && guest_access::guest_range_ok(va, len)
    }
}

impl GuestMemory for crate::arch::x86_64::paging::DirectMap {
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool {
        guest_access::copy_to_guest(self, l4, va, bytes).is_ok()
    }
    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool {
        guest_access::copy_from_guest(self, l4, va, out).is_ok()
    }
}

impl DomainControl for Machine {
    fn info_from(&self, id: u16) -> Option<DomainInfo> {
        let d = self.domains.first_from(id)?;
        let mut flags = 0;
        // Xen's flag is the controller's pause only (a dying domain is not "paused").
        if d.pause_count > 0 {
            flags |= XEN_DOMINF_PAUSED;
        }
        if d.blocked {
            flags |= XEN_DOMINF_BLOCKED;
        }
        if d.dying {
            // Killed: listed until its teardown ends, as Xen lists a dying domain until its
            // last reference goes.
            flags |= XEN_DOMINF_DYING;
        }
        // Loaded and not blocked (an idle CPU keeps its blocked domain loaded).
        if self.is_loaded(d.id) && !d.blocked && !d.is_paused() {
            flags |= XEN_DOMINF_RUNNING;
        }
        Some(DomainInfo {
            id: d.id,
            flags,
            tot_pages: self.frames.pages_of(d.id),
            max_pages: d.max_pages,
            shared_info_frame: d.shared_info_mfn,
            cpu_time_ns: self.scheds[d.cpu].cpu_time_ns(d.id).unwrap_or(0),
            gpaddr_bits: cpu::guest_paddr_bits(),
            // Xen gives a PV hardware domain an emulated PIT (`arch_domain_create`).
            emulation_flags: if d.privileged { hypercall_abi::domctl::XEN_X86_EMU_PIT } else { 0 },
        })
    }

    fn pause(&mut self, id: u16) -> Result<(), Errno> {
        let d = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        let cpu = d.cpu;
        let was_paused = d.is_paused();
        count_pause(&mut d.pause_count)?;
        if !was_paused {
            if !d.blocked {
                self.scheds[cpu].block(id);
            }
            // Running on another CPU: it stops at the entry the IPI forces.
            if self.running_on_other_cpu(id) {
                self.request_resched(cpu);
            }
        }
        // Xen waits for that (`vcpu_sleep_sync`). The other CPU needs the machine lock to
        // stop, so the wait is done once the hypercall is over, with the lock let go
        // (`guest_traps::wait_for_pauses`), before the caller resumes.
        if self.running_on_other_cpu(id) {
            let cpu = self.cpu;
            if !self.pause_waits[cpu].contains(&id) {
                // Room for one per other CPU, and only that many can be running.
                let _ = self.pause_waits[cpu].push(id);
            }
            self.exit_work[cpu] = true;
        }
        Ok(())
    }

    fn unpause(&mut self, id: u16) -> Result<(), Errno> {
        let d = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        // Xen: one unpause per pause; one more is -EINVAL.
        if d.pause_count == 0 {
            return Err(Errno::EINVAL);
        }
        d.pause_count -= 1;
        if !d.is_paused() {
            let cpu = d.cpu;
            if !d.blocked && self.scheds[cpu].wake(id) {
                self.resched_soon(cpu);
            }
        }
        Ok(())
    }

    fn shut_down(&mut self, id: u16, reason: u32) -> Result<(), Errno> {
        let d = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        if !d.dying {
            log::info!("d{id}: shut down by d{}: reason {reason}", self.current);
            self.destroy_domain(id);
        }
        Ok(())
    }

    fn domctl_target_exists(&self, id: u16) -> bool {
        self.domains.contains_key(&id) || self.was_reaped(id)
    }

    fn destroy(&mut self, id: u16) -> Result<(), Errno> {
        let Some(d) = self.domains.get_mut(&id) else {
            // Torn down (by another entry) while this call was being continued: done.
            return if self.take_reaped(id) { Ok(()) } else { Err(Errno::ESRCH) };
        };
        d.teardown.awaited = true;
        if d.dying {
            // A continuation: one more step of the teardown.
            self.progress_teardowns_from_a_call();
        } else {
            log::info!("d{id}: destroyed by d{} (domctl)", self.current);
            self.destroy_domain(id);
        }
        // The teardown goes in bounded steps (and starts only once no CPU has the domain
        // loaded): the call is continued until it is over, as Xen continues `domain_kill`.
        if self.domains.contains_key(&id) {
            return Err(Errno::ERESTART);
        }
        self.take_reaped(id);
        Ok(())
    }
}

/// The real hardware, for the emulator.
pub struct Hardware;

/// The only host MSRs ever read on a guest's behalf (with the fix-up: an absent one faults).
const READABLE_HOST_MSRS: [u32; 2] = [0x1a0 /* MISC_ENABLE */, 0xc000_0080 /* EFER */];

impl Platform for Hardware {
    fn refresh_segment_state(&mut self, vcpu: &mut VcpuState) {
        // Only the running vCPU reaches the emulator: its state is the CPU's.
        crate::guest_traps::refresh_segment_state(vcpu);
    }

    fn port_in(&mut self, port: u16, size: u8) -> u32 {
        cpu::port_in(port, size)
    }

    fn port_out(&mut self, port: u16, size: u8, value: u32) {
        cpu::port_out(port, size, value)
    }

    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }

    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        // Even these are read with the fix-up: MISC_ENABLE is Intel's, and an AMD CPU
        // faults on it (the guest then gets the #GP, as from Xen's `rdmsr_safe`).
        READABLE_HOST_MSRS.contains(&msr).then(|| crate::arch::x86_64::guest_copy::rdmsr_safe(msr)).flatten()
    }

    fn tsc(&mut self) -> u64 {
        cpu::rdtsc()
    }
}
