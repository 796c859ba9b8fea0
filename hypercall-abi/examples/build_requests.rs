//! Builds the requests a PV guest sends, on the host, and prints their bytes: what a guest
//! kernel puts in memory before `syscall`, and what a hypervisor decodes.
//!
//! Run with `cargo run -p hypercall-abi --example build_requests`.

use hypercall_abi::event_channel::{EvtchnAllocUnbound, EVTCHNOP_ALLOC_UNBOUND};
use hypercall_abi::grant_table::{GrantEntryV1, GTF_PERMIT_ACCESS, GTF_READONLY};
use hypercall_abi::mm::{MmuUpdate, DOMID_SELF, MMU_NORMAL_PT_UPDATE};
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::sched::{SchedShutdown, SCHEDOP_SHUTDOWN, SHUTDOWN_POWEROFF};
use hypercall_abi::{hypercall, version, Errno};

/// The bytes of a plain-data `#[repr(C)]` value.
fn bytes_of<T: Copy>(value: &T) -> Vec<u8> {
    // SAFETY: every type passed here is a padding-initialised `#[repr(C)]` integer struct
    // built from `Default`/literals, so all `size_of::<T>()` bytes are readable.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()).to_vec() }
}

fn main() {
    // 1. A batch: xen_version(VERSION) and sched_op(shutdown, poweroff) in one multicall.
    let shutdown = SchedShutdown { reason: SHUTDOWN_POWEROFF };
    let batch = [
        MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_VERSION as u64, 0]),
        MulticallEntry::new(hypercall::SCHED_OP, &[SCHEDOP_SHUTDOWN as u64, &shutdown as *const _ as u64]),
    ];
    for e in &batch {
        println!("multicall entry: {} args {:x?}", hypercall::name(e.op).unwrap_or("?"), &e.args[..2]);
    }

    // 2. A page-table write: ptr = machine address of the PTE | command, val = new PTE.
    let update = MmuUpdate { ptr: 0x1234_5000 | MMU_NORMAL_PT_UPDATE, val: 0x5678_9000 | 0x63 };
    println!("mmu_update bytes: {:02x?}", bytes_of(&update));

    // 3. An event-channel request and a grant entry.
    let alloc = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: 0, port: 0 };
    println!("event_channel_op({EVTCHNOP_ALLOC_UNBOUND}) arg bytes: {:02x?}", bytes_of(&alloc));
    let grant = GrantEntryV1 { flags: GTF_PERMIT_ACCESS | GTF_READONLY, domid: 0, frame: 0x1_2345 };
    println!("grant_entry_v1 bytes: {:02x?}", bytes_of(&grant));

    // 4. Decoding a return value.
    for ret in [0x4_0011i64, -38, -14] {
        match Errno::check(ret) {
            Ok(v) => println!("rax={ret:#x}: ok {v:#x}"),
            Err(e) => println!("rax={ret}: error {e}"),
        }
    }
}
