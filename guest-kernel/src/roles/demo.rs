//! `role=demo`: the banner (printed by start of day) and the requested shutdown.

use crate::cmdline::{Options, ShutdownRequest};
use crate::println;

/// Says hello and returns the command line's shutdown request.
pub fn run(opts: &Options) -> ShutdownRequest {
    println!("guest-kernel: demo done");
    opts.shutdown
}
