//! `role=heap-flood self=N`: a domU that takes all the hypervisor bookkeeping its own
//! limits let it have, to show that many of them together cannot exhaust the hypervisor's
//! heap. It allocates event-channel ports until refused, sets up the largest grant table
//! (64 frames, 32 768 entries), grants one of its pages to itself read-only at every
//! entry, and maps those grants for device access (`GNTMAP_device_map`: no page table
//! needed) until refused: each mapping takes a tracking handle and each granted entry an
//! active entry in the hypervisor. Then it checks the refusals carry Xen's codes, that a
//! mapping it holds still reads its page, and unmaps everything; the hypervisor's heap
//! must be back where it was once the domains are gone (the scenario checks that).

use hypercall_abi::grant_table::{self as gt, GnttabMapGrantRef, GnttabSetupTable, GnttabUnmapGrantRef};
use hypercall_abi::guest;
use hypercall_abi::mm::{DomId, DOMID_SELF, UVMF_INVLPG};
use hypercall_abi::start_info::StartInfo;
use hypercall_abi::Errno;

use crate::checks::{ret_of, CheckLog};
use crate::cmdline::{number, ShutdownRequest};
use crate::kernel::hyp;
use crate::kernel::inter::{self, gntst_name};
use crate::kernel::mm::{self, alloc_frame};
use crate::println;
use hypercall_abi::grant_table::GrantEntryV1;

/// The largest grant table a domain may set up (the hypervisor's `max_grant_frames`).
const GRANT_FRAMES: u32 = 64;
/// Entries per grant frame (v1).
const PER_FRAME: u32 = gt::GRANT_ENTRIES_V1_PER_FRAME as u32;
/// Map requests per `GNTTABOP_map_grant_ref` call.
const BATCH: usize = 64;
/// Most mappings kept track of (the hypervisor's default `max_maptrack` is 16 384).
const MAX_HANDLES: usize = 32_768;

/// The handles of the mappings made (the kernel has no heap; one role runs at a time).
static mut HANDLES: [u32; MAX_HANDLES] = [0; MAX_HANDLES];

/// Runs `heap-flood`.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    let mut log = CheckLog::default();
    if !super::domu_start("heap-flood", &mut log, si) {
        return ShutdownRequest::Crash;
    }
    let me = number(super::line(si), "self").unwrap_or(1) as DomId;
    let (mut ports, mut last) = (0u32, Ok(0u32));
    while last.is_ok() && ports < 10_000 {
        last = inter::alloc_unbound(0);
        ports += u32::from(last.is_ok());
    }
    check!(
        log,
        "alloc_unbound until refused",
        "-28 (ENOSPC, 4095 ports) or -12 (ENOMEM: the hypervisor's heap)",
        last == Err(Errno::ENOSPC) || last == Err(Errno::ENOMEM),
        "{ports} ports, then {}",
        ret_of(last.map(u64::from))
    );
    let Some(entries) = grant_everything_to_self(&mut log, me) else {
        return super::summary("heap-flood", &log);
    };
    let page = entries.page;
    // SAFETY: the kernel is single-threaded and this role is the only user of HANDLES.
    let handles = unsafe { &mut *core::ptr::addr_of_mut!(HANDLES) };
    let (mut mapped, mut stop, mut bus_ok) = (0usize, gt::GNTST_OKAY, true);
    'mapping: for first in (0..entries.count).step_by(BATCH) {
        let n = BATCH.min((entries.count - first) as usize);
        let mut ops = [GnttabMapGrantRef::default(); BATCH];
        for (k, op) in ops[..n].iter_mut().enumerate() {
            let flags = gt::GNTMAP_DEVICE_MAP | gt::GNTMAP_READONLY;
            *op = GnttabMapGrantRef { flags, r#ref: first + k as u32, dom: me, ..Default::default() };
        }
        // SAFETY: each structure is the one its GNTTABOP_* takes; setup_table's frame list is a local array of its length, and the device mappings name no page-table entry (GNTMAP_device_map without GNTMAP_host_map).
        if let Err(e) = unsafe { guest::grant_table_op(gt::GNTTABOP_MAP_GRANT_REF, &mut ops[..n]) } {
            stop = e.to_return() as i16;
            break;
        }
        for op in &ops[..n] {
            if op.status != gt::GNTST_OKAY {
                stop = op.status;
                break 'mapping;
            }
            if mapped == MAX_HANDLES {
                stop = i16::MIN; // our own table is full: not the hypervisor's answer
                break 'mapping;
            }
            handles[mapped] = op.handle;
            mapped += 1;
            // A mapping we hold names our page: its bus address is the page's.
            bus_ok &= op.dev_bus_addr == page << 12;
        }
    }
    println!("heap-flood: {mapped} grant device mappings, then {stop} ({})", gntst_name(stop));
    check!(
        log,
        "map_grant_ref (device, read-only) of every entry until refused",
        "some mapped, then GNTST_no_device_space (out of handles, or the hypervisor's heap)",
        mapped > 0 && stop == gt::GNTST_NO_DEVICE_SPACE,
        "{mapped} mapped, then {stop} ({})",
        gntst_name(stop)
    );
    check!(log, "every device mapping's bus address", "our granted page", bus_ok, "{bus_ok}");
    let mut unmapped = 0usize;
    for chunk in handles[..mapped].chunks(BATCH) {
        let mut ops = [GnttabUnmapGrantRef::default(); BATCH];
        for (op, &handle) in ops.iter_mut().zip(chunk) {
            *op = GnttabUnmapGrantRef { host_addr: 0, dev_bus_addr: page << 12, handle, status: 0 };
        }
        // SAFETY: each structure is the one its GNTTABOP_* takes; setup_table's frame list is a local array of its length, and the device mappings name no page-table entry (GNTMAP_device_map without GNTMAP_host_map).
        if unsafe { guest::grant_table_op(gt::GNTTABOP_UNMAP_GRANT_REF, &mut ops[..chunk.len()]) }.is_ok() {
            unmapped += ops[..chunk.len()].iter().filter(|op| op.status == gt::GNTST_OKAY).count();
        }
    }
    check!(log, "unmap_grant_ref of every mapping", "all GNTST_okay", unmapped == mapped, "{unmapped} of {mapped}");
    super::summary("heap-flood", &log)
}

/// What [`grant_everything_to_self`] granted: `count` entries, each of `page` (an MFN).
struct Granted {
    count: u32,
    page: u64,
}

/// Sets up the largest grant table and grants one page of ours to ourselves (`me`)
/// read-only at every entry, writing each grant frame through one pool page in turn.
fn grant_everything_to_self(log: &mut CheckLog, me: DomId) -> Option<Granted> {
    let mut frames = [0u64; GRANT_FRAMES as usize];
    let mut op = [GnttabSetupTable {
        dom: DOMID_SELF,
        nr_frames: GRANT_FRAMES,
        status: 0,
        frame_list: frames.as_mut_ptr() as u64,
    }];
    // SAFETY: each structure is the one its GNTTABOP_* takes; setup_table's frame list is a local array of its length, and the device mappings name no page-table entry (GNTMAP_device_map without GNTMAP_host_map).
    let r = unsafe { guest::grant_table_op(gt::GNTTABOP_SETUP_TABLE, &mut op) };
    let ok = r.is_ok() && op[0].status == gt::GNTST_OKAY;
    if !check!(log, "setup_table of 64 frames", "GNTST_okay", ok, "{}, status {}", ret_of(r), op[0].status) {
        return None;
    }
    let (slot, page) = (alloc_frame()?, alloc_frame()?);
    for (i, &frame) in frames.iter().enumerate() {
        // SAFETY: the slot is a pool page of ours; its PTE maps grant frame `i` until the
        // next iteration, and the pool page's own frame again at the end.
        if unsafe { hyp::update_va_mapping(slot.va, mm::pte_rw(frame, 0), UVMF_INVLPG) }.is_err() {
            check!(log, "mapping grant frame", "done", false, "frame {i} refused");
            return None;
        }
        let table = slot.va as *mut GrantEntryV1;
        for k in 0..PER_FRAME as usize {
            // SAFETY: entry `k` of the mapped grant frame; nobody uses the grant yet.
            unsafe {
                let e = table.add(k);
                core::ptr::addr_of_mut!((*e).domid).write_volatile(me);
                core::ptr::addr_of_mut!((*e).frame).write_volatile(page.mfn as u32);
                core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
                core::ptr::addr_of_mut!((*e).flags).write_volatile(gt::GTF_PERMIT_ACCESS | gt::GTF_READONLY);
            }
        }
    }
    let _ = mm::make_writable(slot.va);
    Some(Granted { count: GRANT_FRAMES * PER_FRAME, page: page.mfn })
}
