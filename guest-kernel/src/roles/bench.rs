//! `role=bench iterations=N`: times, with `rdtsc`, and prints one
//! [`Measurement`](crate::bench::Measurement) line each, then powers off:
//! * `null_hypercall`: N × `xen_version(XENVER_version)`;
//! * `console_write`: N × a 1-byte `console_io` write;
//! * `user_syscall`: N null system calls from a user process (`syscall` bounced through the
//!   syscall callback, back with `HYPERVISOR_iret`/`VGCF_in_syscall`), timed in user mode;
//! * `page_fault`: N bounced #PFs in the guest kernel (fault, bounce frame, handler, `iret`);
//! * `mmu_update_512`: N / 64 (at least 8) batches of 512 validated L1 updates.

use hypercall_abi::guest;
use hypercall_abi::mm::{MmuUpdate, MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE};
use hypercall_abi::start_info::StartInfo;

use crate::arch::x86_64::triggers::Trig;
use crate::arch::x86_64::user::Program;
use crate::bench::Measurement;
use crate::cmdline::{Options, ShutdownRequest};
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
    match super::procs::run_processes(&[(Program::Bench, n, 0)], 0) {
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
    ShutdownRequest::Poweroff
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
