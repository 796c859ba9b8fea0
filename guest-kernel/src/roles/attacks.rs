//! Isolation roles (placeholder).
use crate::cmdline::ShutdownRequest;
use hypercall_abi::start_info::StartInfo;
/// Victim.
pub fn victim(_si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
/// a.
pub fn attack_map(_si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
/// a.
pub fn attack_grant(_si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
/// a.
pub fn attack_evtchn(_si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
/// a.
pub fn attack_flood(_si: &StartInfo) -> ShutdownRequest {
    ShutdownRequest::Crash
}
