//! Registering a built domain with the machine, and undoing a registration that fails part
//! way, so that a domain refused at creation leaves no frame, reference or port behind.

use super::{free_to_allocator, CreateError, Domain, Machine, DEFAULT_PERIOD_NS};
use crate::arch::x86_64::idt::TrapFrame;
use crate::builder::Built;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};
use hypercall_abi::errno::Errno;
use hypervisor::domain_layout::PageList;
use hypervisor::emulate::{DomainPolicy, PrivState};
use hypervisor::evtchn;
use hypervisor::grant::GrantConfig;
use hypervisor::mm::{DomainRights, Mmu};
use hypervisor::vcpu::VcpuState;

/// A registration step made to fail for the first domU (`hv_debug=`), fault injection for
/// the test of the undoing below.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InjectedFailure {
    /// Nothing fails.
    None,
    /// `fail_domain_frames`: the assignment of the domain's frames stops half way.
    Frames,
    /// `fail_domain_grants`: its grant table cannot be set up, as if no frame were left.
    Grants,
}

static INJECTED_FAILURE: AtomicU8 = AtomicU8::new(InjectedFailure::None as u8);

/// Arms an injected failure (see [`InjectedFailure`]).
pub fn inject_failure(failure: InjectedFailure) {
    INJECTED_FAILURE.store(failure as u8, Ordering::Relaxed);
}

/// Whether `failure` is armed for domain `d` (only the first domU gets it: it is disarmed).
fn injected(failure: InjectedFailure, d: &Domain) -> bool {
    !d.privileged
        && INJECTED_FAILURE
            .compare_exchange(failure as u8, InjectedFailure::None as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

impl Machine {
    /// Registers a built domain: its frames with the PV MMU (owned, M2P, bootstrap tables
    /// validated and pinned), its grant table, event channels and its scheduler entry on
    /// `cpu`. If a step fails, what the earlier steps did is undone and every frame the
    /// builder gave the domain returns to the allocator.
    pub fn add_domain(&mut self, built: Built, weight: u16, cpu: usize) -> Result<(), CreateError> {
        let mut d = built.domain;
        let id = d.id;
        if cpu >= self.scheds.len() {
            // `scheds` has one entry per CPU in use (numbered 0.. without a gap).
            log::error!("d{id}: cpus = {cpu}, but {} CPU(s) are online", self.scheds.len());
            // Refused before any frame was registered: the builder's frames go straight back.
            free_to_allocator([d.shared_info_mfn]);
            self.give_back_page_list(core::mem::take(&mut d.p2m), 0);
            return Err(CreateError("CPU affinity", Errno::EINVAL));
        }
        d.cpu = cpu;
        let mut assigned = 0;
        if let Err(e) = self.register(&mut d, weight, &mut assigned) {
            self.discard_half_made(d, assigned);
            return Err(e);
        }
        d.saved = built.frame;
        d.max_pages = d.p2m.len();
        // The list has served: its holder frames go back.
        let list = core::mem::take(&mut d.p2m);
        let all = list.len();
        self.give_back_page_list(list, all);
        d.periodic_last_ns = self.now_ns();
        d.next_periodic_ns = d.periodic_last_ns + DEFAULT_PERIOD_NS;
        self.domains.insert(id, alloc::boxed::Box::new(d));
        self.update_time(id);
        Ok(())
    }

    /// Every registration step of [`Self::add_domain`]; `assigned` counts the frames of
    /// `d.p2m` already assigned to the domain (those after it are still the allocator's).
    fn register(&mut self, d: &mut Domain, weight: u16, assigned: &mut u64) -> Result<(), CreateError> {
        let id = d.id;
        let e = |what| move |err: hypervisor::mm::MmuError| CreateError(what, err.errno);
        let stop_at = if injected(InjectedFailure::Frames, d) { d.p2m.len() / 2 } else { u64::MAX };
        for pfn in 0..d.p2m.len() {
            let mfn = d.p2m.get(&self.mem, pfn);
            if pfn == stop_at {
                log::warn!("hv_debug: d{id}'s frame assignment fails at frame {pfn} (injected)");
                return Err(CreateError("frame assignment", Errno::ENOMEM));
            }
            self.frames.assign_frame(mfn, id).map_err(e("frame assignment"))?;
            *assigned += 1;
            self.frames.set_m2p(mfn, pfn).map_err(e("M2P"))?;
        }
        self.frames.share_with_guest(d.shared_info_mfn, id).map_err(e("shared_info"))?;
        let l4_mfn = d.vcpu.kernel_root() >> 12;
        d.vcpu.paging.kernel_l4 = None;
        Mmu::new(
            &mut self.frames,
            &mut self.mem,
            &self.hypervisor_slots,
            DomainRights { id, io_capable: d.privileged },
            &mut d.vcpu.paging,
        )
        .adopt_bootstrap_tables(l4_mfn)
        .map_err(e("bootstrap page tables"))?;
        d.vcpu.paging.effects.take(); // the first entry loads CR3 anyway
        if injected(InjectedFailure::Grants, d) {
            log::warn!("hv_debug: d{id}'s grant table set-up fails (injected)");
            return Err(CreateError("grant table", Errno::ENOMEM));
        }
        self.grants
            .add_domain(id, GrantConfig::default(), &mut self.frames, &mut self.mem, &mut self.grant_pool)
            .map_err(|err| CreateError("grant table", err))?;
        self.events
            .add_domain(id, evtchn::DomainConfig::new(1, d.privileged))
            .map_err(|err| CreateError("event channels", err))?;
        self.event_host.set_shared_info(id, Some(d.shared_info_mfn));
        self.scheds[d.cpu].add(id, weight).map_err(|_| CreateError("scheduler", Errno::EINVAL))
    }

    /// Undoes a registration that failed part way: the domain is torn down as a dead one is
    /// (which releases its tables, ports, scheduler entry and the frames assigned to it), and
    /// the frames never assigned go straight back to the allocator.
    fn discard_half_made(&mut self, d: Domain, assigned: u64) {
        let id = d.id;
        debug_assert!(!self.domains.contains_key(&id), "d{id} registered twice");
        let mut d = d;
        let list = core::mem::take(&mut d.p2m);
        self.domains.insert(id, alloc::boxed::Box::new(d));
        self.destroy_domain_now(id);
        self.give_back_page_list(list, assigned);
    }

    /// Gives the builder's page list back to the allocator: the frames it lists from entry
    /// `first` on (those never assigned to the domain), then the frames holding the list.
    fn give_back_page_list(&self, list: PageList, first: u64) {
        free_to_allocator((first.min(list.len())..list.len()).map(|i| list.get(&self.mem, i)));
        free_to_allocator(list.holders().iter().copied());
    }

    /// A new domain record for the builder.
    pub fn domain_record(
        id: u16,
        name: &str,
        privileged: bool,
        p2m: PageList,
        vcpu: VcpuState,
        shared_info_mfn: u64,
        host_cr4: u64,
    ) -> Domain {
        // Xen 4.17 does not emulate `hlt` for PV guests (it reflects #GP), and guests written
        // for Xen idle with SCHEDOP_block: do the same.
        let policy = DomainPolicy { hlt_blocks: false, ..DomainPolicy::new(privileged, host_cr4) };
        Domain {
            id,
            name: name.into(),
            privileged,
            max_pages: p2m.len(),
            p2m,
            console_line: Default::default(),
            vcpu,
            priv_state: PrivState::new(&policy),
            policy,
            shared_info_mfn,
            singleshot_ns: None,
            periodic_ns: Some(DEFAULT_PERIOD_NS),
            next_periodic_ns: 0,
            periodic_last_ns: 0,
            blocked: false,
            poll_deadline: None,
            poll_ports: Vec::new(),
            counted_poller: false,
            pause_count: 0,
            shutdown_code: None,
            dying: false,
            teardown: super::teardown::Progress::default(),
            cpu: 0,
            fpu: alloc::boxed::Box::new(crate::arch::x86_64::fpu::FpuState::initial()),
            saved: TrapFrame::default(),
        }
    }
}
