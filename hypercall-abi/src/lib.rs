//! Xen's x86_64 PV hypercall ABI, in Rust: numbers, layouts and protocols for guest OS authors.
//!
//! Every number and structure here follows Xen's public headers (Debian `libxen-dev`,
//! `/usr/include/xen`), and the test `tests/layout_core.rs` compiles those headers and checks
//! each size, offset and constant against this crate. Structures are `#[repr(C)]` with
//! compile-time size assertions; guest pointers ("handles") are `u64` guest virtual addresses,
//! so the hypervisor can use the same types without the guest-side code.
//!
//! # Map
//!
//! | module | header | contents |
//! |---|---|---|
//! | [`hypercall`] | `xen.h` | hypercall numbers, hypercall-page stub bytes |
//! | [`errno`] | `errno.h` | [`errno::Errno`] |
//! | [`start_info`] | `xen.h` | [`start_info::StartInfo`], `SIF_*` |
//! | [`shared_info`] | `xen.h`, `arch-x86/*` | `shared_info`, `vcpu_info`, `vcpu_time_info` |
//! | [`arch`] | `arch-x86/*` | flat selectors, reserved range, `trap_info`, `iret_context` |
//! | [`elfnote`] | `elfnote.h`, `features.h` | `XEN_ELFNOTE_*`, `XENFEAT_*` |
//! | [`mm`] | `xen.h` | `mmu_update`, `mmuext_op`, `UVMF_*`, `DOMID_*` |
//! | [`sched`] | `sched.h` | `SCHEDOP_*`, `SHUTDOWN_*` |
//! | [`console_io`], [`vm_assist`] | `xen.h` | `CONSOLEIO_*`, `VMASST_*` |
//! | [`version`] | `version.h` | `XENVER_*` and their result types |
//! | [`memory`] | `memory.h` | `XENMEM_*`, reservations, `memory_map`, e820 |
//! | [`vcpu`] | `vcpu.h` | `VCPUOP_*`, timers |
//! | [`callback`] | `callback.h` | `CALLBACKOP_*`, `callback_register` |
//! | [`event_channel`] | `event_channel.h`, `xen.h` | `EVTCHNOP_*` structures, `VIRQ_*` |
//! | [`grant_table`] | `grant_table.h` | `grant_entry_v1`, `GNTTABOP_*` structures |
//! | [`multicall`] | `xen.h` | `multicall_entry` |
//! | [`io`] | `io/*.h` | split-driver rings and protocols |
//! | `guest` (feature `guest`) | – | making hypercalls from a PV guest kernel |
//!
//! # Writing a PV guest with this crate
//!
//! A 64-bit PV kernel is an ordinary ELF64 that the hypervisor's domain builder loads:
//!
//! 1. **Describe yourself with ELF notes** in a `PT_NOTE` segment: each note is named
//!    [`elfnote::XEN_NOTE_NAME`]; [`elfnote::XEN_ELFNOTE_XEN_VERSION`] = `"xen-3.0"` and
//!    [`elfnote::XEN_ELFNOTE_LOADER`] = `"generic"` are required, and
//!    [`elfnote::XEN_ELFNOTE_HYPERCALL_PAGE`] names a page the hypervisor fills with stubs.
//!    Link at 1 MiB with paddr == vaddr and no `VIRT_BASE` note, and virtual address =
//!    pseudo-physical address in the whole bootstrap region.
//! 2. **Start from `rsi`**: the entry point gets the virtual address of a
//!    [`start_info::StartInfo`] in `rsi`, a 4 KiB boot stack in `rsp`, and runs in ring 3 with
//!    [`arch::FLAT_KERNEL_CS`]. Events are masked; no trap table is installed yet, so any
//!    exception crashes the domain until you call `set_trap_table`.
//! 3. **Make hypercalls** with the `guest` feature: `guest::raw::hypercall0..5` issue
//!    `syscall` directly, `guest::page::HypercallPage` calls through the hypercall page, and
//!    the safe wrappers (`guest::xen_version`, `guest::console_write`,
//!    `guest::sched_shutdown`, ...) return `Result<u64, Errno>`.
//! 4. **Print** with `console_io(CONSOLEIO_write)` as dom0 (a domU uses the console ring of
//!    [`io::console`]), and **stop** with `sched_op(SCHEDOP_shutdown, reason)`.
//!
//! A minimal kernel body, given `si: &StartInfo` from `rsi`:
//!
//! ```text
//! use hypercall_abi::{guest, sched, version};
//! let v = guest::xen_version().unwrap_or(0);
//! let mut extra: version::XenExtraversion = [0; 16];
//! guest::xen_version_into(version::XENVER_EXTRAVERSION, &mut extra).ok();
//! guest::console_write(b"hello from a PV guest\n").ok();
//! guest::sched_shutdown(sched::SHUTDOWN_POWEROFF).ok();
//! ```
//!
//! Requests are plain structures and can be built and inspected anywhere, including on the
//! host (this is what the hypervisor side does when it decodes them):
//!
//! ```
//! use hypercall_abi::{hypercall, multicall::MulticallEntry, version};
//! let batch = [
//!     MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_VERSION as u64, 0]),
//!     MulticallEntry::new(hypercall::XEN_VERSION, &[version::XENVER_PAGESIZE as u64, 0]),
//! ];
//! assert_eq!(core::mem::size_of_val(&batch), 128);
//! assert_eq!(batch[1].args[0], 7);
//! assert_eq!(hypercall::name(batch[0].op), Some("xen_version"));
//! ```
//!
//! See `examples/build_requests.rs` for a fuller tour, and the `guest-kernel` crate of this
//! workspace for a complete guest that boots on both Xen 4.17 and our hypervisor.
#![no_std]
#![warn(missing_docs)]

pub mod arch;
pub mod callback;
pub mod console_io;
pub mod domctl;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod grant_table;
pub mod hypercall;
pub mod memory;
pub mod mm;
pub mod multicall;
pub mod sched;
pub mod shared_info;
pub mod start_info;
pub mod vcpu;
pub mod version;
pub mod vm_assist;

pub mod io;

#[cfg(all(feature = "guest", target_arch = "x86_64"))]
pub mod guest;

pub use errno::Errno;
