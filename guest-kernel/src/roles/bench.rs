//! `role=bench iterations=N`: times, with `rdtsc`, and prints one
//! [`Measurement`](crate::bench::Measurement) line each, then powers off:
//! * `null_hypercall`: N × `xen_version(XENVER_version)`;
//! * `console_write`: N × a 1-byte `console_io` write;
//! * `user_syscall`: N null system calls from a user process (`syscall` bounced through the
//!   syscall callback, back with `HYPERVISOR_iret`/`VGCF_in_syscall`), timed in user mode;
//! * `page_fault`: N bounced #PFs in the guest kernel (fault, bounce frame, handler, `iret`);
//! * `mmu_update_512`: N / 64 (at least 8) batches of 512 validated L1 updates;
//! * as dom0 (its id, 0, names itself as grantee): `evtchn_send_poll`, N × (`EVTCHNOP_send`
//!   on a loopback interdomain port, `SCHEDOP_poll` that finds it pending), the hypercall
//!   half of an event round trip without the context switch; then the copy and map figures
//!   of [`bench_grants`](super::bench_grants) against 4 of its own grants, so the grant
//!   paths compare with Xen on the same ELF (Xen cannot boot the two-domU bundle).

use hypercall_abi::guest;
use hypercall_abi::mm::{MmuUpdate, DOMID_SELF, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE};
use hypercall_abi::start_info::StartInfo;

use super::bench_grants::{self, GrantedPages, SEED};
use crate::arch::x86_64::triggers::Trig;
use crate::arch::x86_64::user::Program;
use crate::bench::Measurement;
use crate::cmdline::{Options, ShutdownRequest};
use crate::domains::fill_pattern;
use crate::kernel::inter::{self, page_bytes, OwnTable};
use crate::kernel::mm::{self, alloc_frame, pte_ro};
use crate::kernel::trap::{self, TrapSetup};
use crate::kernel::{events, hyp};
use crate::println;

/// The string the console benchmark writes (no newline, so the log stays one long line).
const BENCH_TEXT: &[u8] = b".";

/// Runs every measurement.
pub fn run(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    let n = opts.iterations;
    // Warm up caches and TLBs so the first iterations do not dominate short runs.
    for _ in 0..16 {
        let _ = guest::xen_version();
    }
    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = core::hint::black_box(guest::xen_version());
    }
    let null = Measurement::from_tsc("null_hypercall", n, start, guest::rdtsc());

    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = guest::console_write(BENCH_TEXT);
    }
    let console = Measurement::from_tsc("console_write", n, start, guest::rdtsc());
    println!();
    println!("{null}");
    println!("{console}");

    if events::init(si).is_err() || trap::install(&TrapSetup::ALL, super::procs::handler).is_err() {
        println!("bench: set-up of traps and events failed");
        return ShutdownRequest::Crash;
    }
    let _ = events::mask_events();
    let _ = events::stop_periodic_timer();
    match super::procs::run_processes(&[(Program::Bench, n, 0)], 0, 0) {
        Ok(p) => println!("{}", Measurement::from_tsc("user_syscall", n, 0, p.reported)),
        Err(e) => println!("bench: user_syscall failed: {e}"),
    }

    trap::set_handler(super::traps::handler);
    let start = guest::rdtsc();
    for _ in 0..n {
        // SAFETY: the handler resumes the fault after the load.
        let _ = unsafe { Trig::PageFaultRead.run(super::traps::UNMAPPED) };
    }
    println!("{}", Measurement::from_tsc("page_fault", n, start, guest::rdtsc()));

    match mmu_batches((n / 64).max(8)) {
        Some(m) => println!("{m}"),
        None => println!("bench: mmu_update_512 failed"),
    }
    if !si.is_initdomain() {
        println!("bench: own grants and loopback events skipped (not dom0)");
    } else if !(evtchn_send_poll(n) & own_grants(n)) {
        println!("bench: own grants or loopback events failed");
    }
    ShutdownRequest::Poweroff
}

/// Grants of ours the copy and map figures read from (references 8..12, read-only).
const OWN_GRANTS: GrantedPages = GrantedPages { domid: DOMID_SELF, first_ref: 8, pages: 4 };

/// Times N × (send on a loopback port, poll that finds it pending, clear it) and prints the
/// line. Whether every send raised the port.
fn evtchn_send_poll(n: u64) -> bool {
    let Ok(listen) = inter::alloc_unbound(DOMID_SELF) else { return false };
    let Ok(port) = inter::bind_interdomain(DOMID_SELF, listen) else { return false };
    let s = events::shared();
    let mut unraised = 0u64;
    let start = guest::rdtsc();
    for _ in 0..n {
        let _ = events::send(port);
        // Polled only when pending (it returns at once then): an unraised port would block.
        if s.is_pending(listen) {
            let _ = guest::sched_poll(&[listen], 0);
            s.clear_pending(listen);
        } else {
            unraised += 1;
        }
    }
    println!("{}", Measurement::from_tsc("evtchn_send_poll", n, start, guest::rdtsc()));
    let _ = (events::close(port), events::close(listen));
    unraised == 0
}

/// The copy and map figures against our own grants (dom0 grants to its own id, 0).
fn own_grants(n: u64) -> bool {
    let Ok(table) = OwnTable::setup() else { return false };
    for i in 0..OWN_GRANTS.pages {
        let Some(f) = alloc_frame() else { return false };
        // SAFETY: our own pool page.
        fill_pattern(unsafe { page_bytes(&f) }, SEED, u64::from(i));
        table.grant(OWN_GRANTS.first_ref + i, 0, f.mfn, true);
    }
    let copies_ok = bench_grants::copy_rounds(OWN_GRANTS, n);
    let maps_ok = bench_grants::map_unmap(0, OWN_GRANTS.first_ref, n);
    let revoked = (0..OWN_GRANTS.pages).all(|i| table.revoke(OWN_GRANTS.first_ref + i).is_ok());
    copies_ok && maps_ok && revoked
}

/// Times `batches` `mmu_update` calls of 512 entries each on a pinned L1 of our own
/// (alternately mapping a data page read-only in every entry and clearing them).
fn mmu_batches(batches: u64) -> Option<Measurement> {
    let (l1, data) = (alloc_frame()?, alloc_frame()?);
    mm::make_readonly(l1.va).ok()?;
    // SAFETY: pinning a zeroed L1 only adds a type reference.
    unsafe { hyp::mmuext1(MMUEXT_PIN_L1_TABLE, l1.mfn).ok()? };
    let mut reqs = [MmuUpdate::default(); 512];
    let start = guest::rdtsc();
    for b in 0..batches {
        let val = if b % 2 == 0 { pte_ro(data.mfn, 0) } else { 0 };
        for (i, r) in reqs.iter_mut().enumerate() {
            *r = MmuUpdate { ptr: ((l1.mfn << 12) + 8 * i as u64) | MMU_NORMAL_PT_UPDATE, val };
        }
        // SAFETY: entries of our own L1, which is not hooked into any address space.
        let (r, done) = unsafe { hyp::mmu_update(&reqs) };
        if r.is_err() || done != 512 {
            println!("bench: mmu_update batch {b}: {r:?} done {done}");
            return None;
        }
    }
    let end = guest::rdtsc();
    let mut zero = reqs;
    for z in zero.iter_mut() {
        z.val = 0;
    }
    // SAFETY: as above; then the L1 is unpinned and writable again.
    unsafe {
        let _ = hyp::mmu_update(&zero);
        let _ = hyp::mmuext1(MMUEXT_UNPIN_TABLE, l1.mfn);
    }
    let _ = mm::make_writable(l1.va);
    Some(Measurement::from_tsc("mmu_update_512", batches, start, end))
}
