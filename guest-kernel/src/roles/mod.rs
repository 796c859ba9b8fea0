//! The roles selected by `role=` on the command line.

pub mod abi_test;
pub mod bench;
pub mod demo;

use hypercall_abi::start_info::StartInfo;

use crate::cmdline::{Options, Role, ShutdownRequest};

/// Runs the selected role and returns how the kernel should shut down.
pub fn run(opts: &Options, si: &StartInfo) -> ShutdownRequest {
    match opts.role {
        Role::Demo => demo::run(opts),
        Role::AbiTest => abi_test::run(opts, si),
        Role::Bench => bench::run(opts),
    }
}
