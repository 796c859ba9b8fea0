//! Entering guest context: loading a guest's page tables and resuming a saved frame.

use super::idt::TrapFrame;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

extern "C" {
    fn trap_return();
}

/// Switches to the address space rooted at machine address `l4`.
pub fn load_page_tables(l4: u64) {
    // SAFETY: `l4` is a validated guest L4 whose slots 256-271 map the hypervisor exactly as
    // its own tables do, so the code and stack in use stay mapped.
    unsafe { Cr3::write(PhysFrame::containing_address(PhysAddr::new(l4)), Cr3Flags::empty()) };
}

/// Resumes `frame` (ring 3) on the ring-0 stack through the common exit path. Never returns.
pub fn resume(frame: &TrapFrame, ring0_stack_top: u64) -> ! {
    let slot = ring0_stack_top - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: the ring-0 stack is idle (we are leaving for guest context), so its top holds
    // the frame; trap_return pops it and executes iretq.
    unsafe {
        core::ptr::write(slot as *mut TrapFrame, frame.clone());
        core::arch::asm!("mov rsp, {0}", "jmp {1}", in(reg) slot, in(reg) trap_return as *const () as u64, options(noreturn));
    }
}
