//! `role=emulate`.

use hypercall_abi::start_info::StartInfo;

use crate::checks::CheckLog;
use crate::cmdline::ShutdownRequest;

/// Runs the role.
pub fn run(_si: &StartInfo) -> ShutdownRequest {
    let log = CheckLog::default();
    super::summary("emulate", &log)
}
