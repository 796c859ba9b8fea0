//! The refusals of `role=abi-test` that need no second domain: bad grant references, domains
//! and handles, a grant table larger than allowed, and ports that were never allocated. The
//! same answers are checked from a hostile domU in the isolation scenarios (`attacks.rs`,
//! ours only); here they run as dom0 on Xen 4.17 too, so Xen is the oracle for the codes.

use hypercall_abi::event_channel as ev;
use hypercall_abi::grant_table as gt;
use hypercall_abi::guest;
use hypercall_abi::mm::DOMID_SELF;
use hypercall_abi::Errno;

use crate::checks::{ret_of, CheckLog};
use crate::kernel::inter::{self, gntst_name};
use crate::kernel::mm::alloc_frame;

/// A port the abi test never allocates (it runs after the reset that freed the table).
const FREE_PORT: u32 = 5;

/// Runs the checks (module comment). The caller is dom0 (domain 0).
pub fn run(log: &mut CheckLog) {
    let Some(slot) = alloc_frame() else {
        check!(log, "a pool page for the grant refusals", "one", false, "none left");
        return;
    };
    let statuses = [
        (
            "map ref 100000 of our own table (beyond it)",
            inter::map_grant(0, 100_000, &slot, true).0,
            gt::GNTST_BAD_GNTREF,
        ),
        ("map a grant of domain 77 (no such domain)", inter::map_grant(77, 9, &slot, true).0, gt::GNTST_BAD_DOMAIN),
        ("unmap a forged handle 777", inter::unmap_grant(&slot, 777, true), gt::GNTST_BAD_HANDLE),
    ];
    for (what, got, want) in statuses {
        check!(log, what, gntst_name(want), got == want, "{got} ({})", gntst_name(got));
    }
    let mut frames = [0u64; 1];
    let mut op =
        [gt::GnttabSetupTable { dom: DOMID_SELF, nr_frames: 4096, status: 0, frame_list: frames.as_mut_ptr() as u64 }];
    // SAFETY: setup_table with its own structure; its frame list is the local array, which a
    // refused request leaves alone (and which holds one entry, the most a success would fill
    // before the status says no).
    let r = unsafe { guest::grant_table_op(gt::GNTTABOP_SETUP_TABLE, &mut op) };
    let status = if r.is_ok() { op[0].status } else { -100 };
    check!(
        log,
        "setup_table of 4096 grant frames (beyond max_grant_frames)",
        "GNTST_general_error",
        status == gt::GNTST_GENERAL_ERROR,
        "{status} ({})",
        gntst_name(status)
    );
    let ports = [
        (
            "send on a port never allocated",
            guest::event_channel_op(ev::EVTCHNOP_SEND, &mut ev::EvtchnSend { port: FREE_PORT }),
        ),
        (
            "close a port never allocated",
            guest::event_channel_op(ev::EVTCHNOP_CLOSE, &mut ev::EvtchnClose { port: FREE_PORT }),
        ),
        (
            "send on port 5000 (beyond the 2-level ABI)",
            guest::event_channel_op(ev::EVTCHNOP_SEND, &mut ev::EvtchnSend { port: 5000 }),
        ),
        ("unmask port 5000", guest::event_channel_op(ev::EVTCHNOP_UNMASK, &mut ev::EvtchnUnmask { port: 5000 })),
    ];
    for (what, r) in ports {
        check!(log, what, "-22 (EINVAL)", r == Err(Errno::EINVAL), "{}", ret_of(r));
    }
}
