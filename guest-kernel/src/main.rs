//! The guest kernel binary: everything lives in the library; this adds the panic handler.
#![no_std]
#![no_main]

// Link the library (entry stub, notes, roles).
use guest_kernel as _;

/// Reports the panic on the console and asks the hypervisor to crash the domain.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    guest_kernel::println!("guest-kernel: PANIC: {info}");
    guest_kernel::start_of_day::shutdown(guest_kernel::cmdline::ShutdownRequest::Crash)
}
