//! `role=procs`.

use hypercall_abi::start_info::StartInfo;

use crate::checks::CheckLog;
use crate::cmdline::{Options, ShutdownRequest};

/// Runs the role.
pub fn run(_opts: &Options, _si: &StartInfo) -> ShutdownRequest {
    let log = CheckLog::default();
    super::summary("procs", &log)
}
