//! Bench (placeholder).
use crate::cmdline::{Options, ShutdownRequest};
use hypercall_abi::start_info::StartInfo;
/// p.
pub fn ping(_o: &Options, _si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
/// p.
pub fn pong(_o: &Options, _si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
