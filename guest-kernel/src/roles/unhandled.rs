//! `role=unhandled`: installs a trap table with every exception vector except #UD (6), prints
//! where its `ud2` is, and executes it. The hypervisor has no handler to bounce to, so it must
//! crash this domain with a report (on Xen 4.17: `Unhandled invalid opcode fault/trap [#6,
//! ec=ffff]` and "Hardware Dom0 crashed"). Reaching the line after the `ud2` is a failure.
//! With `shutdown_code=N` it first records shutdown reason N (`SCHEDOP_shutdown_code`),
//! which the crash then reports instead of "crash" (N = 0: the machine powers off).

use hypercall_abi::start_info::StartInfo;

use crate::arch::x86_64::triggers::Trig;
use crate::cmdline::ShutdownRequest;
use crate::kernel::events;
use crate::kernel::trap::{self, TrapSetup};
use crate::println;

/// Runs the role.
pub fn run(si: &StartInfo) -> ShutdownRequest {
    if let Err(e) = events::init(si) {
        println!("unhandled: mapping shared_info failed: {e}");
    }
    let setup = TrapSetup { exceptions: !(1 << 6), soft_ints: true };
    if let Err(e) = trap::install(&setup, super::traps::handler) {
        println!("unhandled: installing traps failed: {e}");
        return ShutdownRequest::Crash;
    }
    if let Some(code) = crate::cmdline::number(super::line(si), "shutdown_code") {
        let r = hypercall_abi::guest::sched_shutdown_code(code as u32);
        println!("unhandled: SCHEDOP_shutdown_code({code}) -> {}", crate::checks::ret_of(r));
    }
    let ud = Trig::InvalidOpcode.get();
    println!("unhandled: executing ud2 at rip {:#x} with no #UD handler (vector 6)", ud.fault);
    // SAFETY: the hypervisor is expected to crash the domain here; if it resumed us, the
    // trigger would simply return.
    let _ = unsafe { Trig::InvalidOpcode.run(0) };
    println!("unhandled: FAIL: execution continued after the unhandled #UD");
    ShutdownRequest::Poweroff
}
