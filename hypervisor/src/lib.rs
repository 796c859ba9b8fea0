//! Generic hypervisor logic, free of asm and unit-tested on the host.
//!
//! The ring-0 binary (`main.rs`) wires these pieces to the hardware layer in `arch/x86_64`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod boot_module;
pub mod cmdline;
pub mod cpio;
pub mod domain_layout;
pub mod domid_map;
pub mod elf_image;
pub mod emulate;
pub mod evtchn;
pub mod exit_code;
pub mod frame;
pub mod frame_alloc;
pub mod grant;
pub mod guest_access;
#[cfg(test)]
mod guest_access_testing;
pub mod guest_console;
pub mod guest_stack;
pub mod heap;
pub mod hypercalls;
pub mod idle;
pub mod log_limit;
pub mod mm;
pub mod pvh;
pub mod sched;
#[cfg(test)]
mod test_rng;
pub mod vcpu;
pub mod wallclock;
pub mod xlcfg;
