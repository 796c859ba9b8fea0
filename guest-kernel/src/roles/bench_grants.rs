//! Grant-table and event-channel measurements shared by `role=bench` (a domain's own grants
//! and a loopback port, so the figures compare with Xen on the same ELF) and
//! `role=bench-ping` (a peer domain's grants):
//!
//! * `grant_copy_4k`: one `GNTTABOP_copy` of 4096 bytes per call from the source's grants
//!   (`pages` references from `first_ref`, cycled) into a page of ours;
//!   `grant_copy_4k_batched`: the same copies, 16 per call (as backends batch them);
//!   `local_copy_4k`: a plain 4096-byte copy between two of our pages. About N of each, timed
//!   in 10 interleaved rounds; each line gives its best round. Then
//!   `bench: grant_copy_vs_local ratio_milli=R (failed copies F, last copy verified B)` and
//!   `bench: grant_copy_batched_vs_local ratio_milli=R` (grant / local, per copy);
//! * `grant_map_unmap`: N × `map_grant_ref` + `unmap_grant_ref` of one grant, then
//!   `bench: grant_map_unmap failures=F`.

use hypercall_abi::grant_table::{GnttabCopy, GnttabCopyPtr, GNTCOPY_SOURCE_GREF, GNTST_OKAY};
use hypercall_abi::guest;
use hypercall_abi::mm::{DomId, DOMID_SELF};

use crate::bench::Measurement;
use crate::domains::{count_matching, fill_pattern, ratio_milli};
use crate::kernel::inter::{self, page_bytes};
use crate::kernel::mm::alloc_frame;
use crate::println;

/// Copies per `GNTTABOP_copy` hypercall in the batched measurement.
pub const BATCH: usize = 16;
/// Interleaved rounds of the copy measurements (each reports its best round).
const ROUNDS: u64 = 10;
/// The pattern seed of granted page `i` (filled with `fill_pattern(.., SEED, i)`).
pub const SEED: u64 = 42;

/// Where the copies read from: `pages` grants of `domid`, references `first_ref..`, page `i`
/// filled with `fill_pattern(.., SEED, i)`.
#[derive(Clone, Copy, Debug)]
pub struct GrantedPages {
    /// The granting domain as the copy names it (`DOMID_SELF` for our own grants).
    pub domid: DomId,
    /// The first grant reference.
    pub first_ref: u32,
    /// How many consecutive references (at least 1).
    pub pages: u32,
}

/// Times the three copies (module comment) and prints their lines. Whether every copy
/// succeeded and the last one of each round delivered the right bytes.
pub fn copy_rounds(from: GrantedPages, n: u64) -> bool {
    let pages = from.pages.max(1);
    let (src, dst) = (alloc_frame().expect("pool page"), alloc_frame().expect("pool page"));
    // SAFETY: our own pool page.
    fill_pattern(unsafe { page_bytes(&src) }, SEED, 0);
    // The three copies are timed in interleaved rounds and each keeps its best round, so a
    // burst of load from the host (a shared 2-core machine) cannot land on one side of the
    // ratio only: all three see the same conditions, round by round.
    let per_round = n.div_ceil(ROUNDS).div_ceil(BATCH as u64) * BATCH as u64;
    let (mut grant, mut batched, mut local) = (None, None, None);
    let mut bad = 0u64;
    let mut last_ok = true;
    // The page the copy of round `first` ends on must hold its pattern afterwards.
    let last_page_holds = |first: u64| {
        // SAFETY: our own pool page.
        let dst_bytes = unsafe { page_bytes(&dst) };
        count_matching(dst_bytes, SEED, (first + per_round - 1) % u64::from(pages)) == 4096
    };
    // The page the copies end on is wiped before each timed loop (outside the timing), so
    // each loop's check sees only what that loop copied.
    let wipe = || {
        // SAFETY: our own pool page.
        unsafe { page_bytes(&dst) }.fill(0xee);
    };
    for round in 0..ROUNDS {
        let first = round * per_round;
        wipe();
        let start = guest::rdtsc();
        // The grant cycles through the pages (a counter, not `%`: a division is a slow
        // helper call under TCG and no part of what is measured).
        let mut page = (first % u64::from(pages)) as u32;
        for _ in 0..per_round {
            let st = inter::copy_from_grant(from.domid, from.first_ref + page, 0, dst.mfn, 0, 4096);
            bad += (st != GNTST_OKAY) as u64;
            page = if page + 1 == pages { 0 } else { page + 1 };
        }
        keep_best(&mut grant, Measurement::from_tsc("grant_copy_4k", per_round, start, guest::rdtsc()));
        last_ok &= last_page_holds(first);
        // The same copies in batches of 16 per hypercall, as a backend issues them (netback
        // and blkback batch their GNTTABOP_copy requests): the hypercall's fixed cost is shared.
        wipe();
        let start = guest::rdtsc();
        let mut page = (first % u64::from(pages)) as u32;
        for _ in 0..per_round / BATCH as u64 {
            let mut ops: [GnttabCopy; BATCH] = core::array::from_fn(|_| {
                let this = page;
                page = if page + 1 == pages { 0 } else { page + 1 };
                GnttabCopy {
                    source: GnttabCopyPtr {
                        ref_or_gmfn: u64::from(from.first_ref + this),
                        domid: from.domid,
                        offset: 0,
                    },
                    dest: GnttabCopyPtr { ref_or_gmfn: dst.mfn, domid: DOMID_SELF, offset: 0 },
                    len: 4096,
                    flags: GNTCOPY_SOURCE_GREF,
                    status: 0,
                }
            });
            let ok = inter::copy_batch(&mut ops).is_ok();
            bad += ops.iter().filter(|op| !ok || op.status != GNTST_OKAY).count() as u64;
        }
        keep_best(&mut batched, Measurement::from_tsc("grant_copy_4k_batched", per_round, start, guest::rdtsc()));
        last_ok &= last_page_holds(first);
        let start = guest::rdtsc();
        for _ in 0..per_round {
            // SAFETY: two distinct pool pages of ours, 4096 bytes each.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    core::hint::black_box(src.va as *const u8),
                    core::hint::black_box(dst.va as *mut u8),
                    4096,
                )
            };
        }
        keep_best(&mut local, Measurement::from_tsc("local_copy_4k", per_round, start, guest::rdtsc()));
    }
    let (grant, batched, local) =
        (grant.expect("ROUNDS > 0"), batched.expect("ROUNDS > 0"), local.expect("ROUNDS > 0"));
    println!("{grant}");
    println!("{batched}");
    println!("{local}");
    println!(
        "bench: grant_copy_vs_local ratio_milli={} (failed copies {bad}, last copy verified {last_ok})",
        ratio_milli(local.cycles_per_call(), grant.cycles_per_call())
    );
    println!(
        "bench: grant_copy_batched_vs_local ratio_milli={}",
        ratio_milli(local.cycles_per_call(), batched.cycles_per_call())
    );
    bad == 0 && last_ok
}

/// Times `n` host mappings and unmappings of `domid`'s grant `gref` (read-only) at a pool
/// page of ours and prints their lines. Whether every one succeeded.
pub fn map_unmap(domid: DomId, gref: u32, n: u64) -> bool {
    let slot = alloc_frame().expect("pool page");
    let mut failed = 0u64;
    let start = guest::rdtsc();
    for _ in 0..n {
        let (st, h) = inter::map_grant(domid, gref, &slot, true);
        failed += (st != GNTST_OKAY || inter::unmap_grant(&slot, h, false) != GNTST_OKAY) as u64;
    }
    let m = Measurement::from_tsc("grant_map_unmap", n, start, guest::rdtsc());
    let _ = crate::kernel::mm::make_writable(slot.va);
    println!("{m}");
    println!("bench: grant_map_unmap failures={failed}");
    failed == 0
}

/// Keeps in `best` the measurement with the fewest cycles per call.
pub fn keep_best(best: &mut Option<Measurement>, m: Measurement) {
    if best.is_none_or(|b| m.cycles_per_call() < b.cycles_per_call()) {
        *best = Some(m);
    }
}
