//! `role=segments self=N rounds=R`: a domU whose segment state must stay its own while other
//! domains share its CPU. It checks that it starts with null data selectors (nothing of a
//! domain that ran before it), loads selectors of its own choice into DS, ES, FS and GS
//! (the flat ring-3 descriptors, picked by `self` so that two such domains differ), points
//! its FS base at a word of its own with `set_segment_base`, and sets its kernel GS base to 8
//! the same way and then back to 0 itself, by reloading %gs (the CPU takes the descriptor's
//! base); then it yields R times, reading after each yield its selectors and a word through
//! %fs and %gs. Xen saves and restores all of it per vCPU (`save_segments`/`load_segments`,
//! reading the bases back from the CPU); a hypervisor that did not would hand one domain's
//! selectors to the next, or bring back the GS base the guest replaced itself (8: the read
//! through %gs would then land on the next word).

use hypercall_abi::arch::{SEGBASE_FS, SEGBASE_GS_KERNEL};
use hypercall_abi::guest;
use hypercall_abi::start_info::StartInfo;

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{number, ShutdownRequest};
use crate::kernel::hyp;
use crate::println;

/// The ring-3 descriptors of Xen's reserved GDT: `FLAT_RING3_CS32`, `FLAT_RING3_DS64`,
/// `FLAT_RING3_CS64` (each loadable into a data segment register: the code ones are
/// readable).
const FLAT: [u16; 3] = [0xe023, 0xe02b, 0xe033];

/// The words read through %fs and %gs (set to values naming this domain at start); the
/// second GS word is what a GS base of 8 would read instead.
static mut FS_WORD: u64 = 0;
static mut GS_WORDS: [u64; 2] = [0; 2];

/// DS, ES, FS and GS.
pub fn selectors() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading segment registers has no side effect.
    unsafe {
        core::arch::asm!("mov {0:x}, ds", "mov {1:x}, es", "mov {2:x}, fs", "mov {3:x}, gs",
            out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs, options(nomem, nostack, preserves_flags))
    };
    [ds, es, fs, gs]
}

/// The words at %fs:0 and at %gs:`&GS_WORDS[0]`.
fn through_fs_gs() -> (u64, u64) {
    let (f, g): (u64, u64);
    let at = core::ptr::addr_of!(GS_WORDS) as u64;
    // SAFETY: the FS base points at FS_WORD, and the GS base is 0 or 8, so %gs:at is one of
    // the GS words (set in `run` before any call).
    unsafe {
        core::arch::asm!("mov {0}, fs:[0]", "mov {1}, gs:[{2}]", out(reg) f, out(reg) g, in(reg) at,
            options(nostack, readonly, preserves_flags))
    };
    (f, g)
}

/// Runs `segments`.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let line = super::line(si);
    let me = number(line, "self").unwrap_or(1) as usize;
    let rounds = number(line, "rounds").unwrap_or(200);
    let mut log = CheckLog::default();
    if !super::domu_start("segments", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let [ds, es, fs, gs] = selectors();
    check!(
        log,
        "data selectors of a new domain",
        "0 0 0 0",
        [ds, es, fs, gs] == [0; 4],
        "{ds:#x} {es:#x} {fs:#x} {gs:#x}"
    );
    let mine = [FLAT[1], FLAT[me % 3], FLAT[(me + 1) % 3], FLAT[(me + 2) % 3]];
    // SAFETY: the kernel does not use %fs or %gs; every selector is a present DPL-3
    // descriptor of the reserved GDT, loadable from ring 3.
    unsafe {
        core::arch::asm!("mov ds, {0:x}", "mov es, {1:x}", "mov fs, {2:x}", "mov gs, {3:x}",
            in(reg) mine[0], in(reg) mine[1], in(reg) mine[2], in(reg) mine[3], options(nomem, nostack, preserves_flags))
    };
    let words = (0xf5_0000 + me as u64, 0x65_0000 + me as u64);
    // SAFETY: single-threaded kernel; written once before they are read through %fs/%gs.
    unsafe {
        *core::ptr::addr_of_mut!(FS_WORD) = words.0;
        *core::ptr::addr_of_mut!(GS_WORDS) = [words.1, !words.1];
    }
    let fs_set = hyp::set_segment_base(SEGBASE_FS, core::ptr::addr_of!(FS_WORD) as u64);
    let gs_set = hyp::set_segment_base(SEGBASE_GS_KERNEL, 8);
    // SAFETY: reloads our own %gs selector: the GS base becomes the descriptor's, 0.
    unsafe { core::arch::asm!("mov gs, {0:x}", in(reg) mine[3], options(nomem, nostack, preserves_flags)) };
    let (mut kept, mut first_bad) = (0u64, None);
    for _ in 0..rounds {
        let _ = guest::sched_yield();
        let now = (selectors(), through_fs_gs());
        if now == (mine, words) {
            kept += 1;
        } else if first_bad.is_none() {
            first_bad = Some(now);
        }
    }
    check!(
        log,
        "own selectors and FS/GS bases across yields to other domains",
        "every round intact",
        fs_set == Ok(0) && gs_set == Ok(0) && kept == rounds,
        "{}, {}, {kept} of {rounds} rounds intact, first bad {first_bad:x?}",
        ret_of(fs_set),
        ret_of(gs_set)
    );
    // Leave nothing behind that the kernel's shutdown path could trip over.
    let _ = hyp::set_segment_base(SEGBASE_FS, 0);
    let _ = hyp::set_segment_base(SEGBASE_GS_KERNEL, 0);
    println!("segments: selectors {mine:x?} held");
    super::summary("segments", &log)
}
