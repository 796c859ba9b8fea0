//! Typed wrappers for the hypercalls the ABI crate's `guest` module does not wrap yet
//! (`set_trap_table`, `callback_op`, `set_callbacks`, `stack_switch`, `fpu_taskswitch`,
//! `set_segment_base`, `mmu_update`, `mmuext_op`, `update_va_mapping`, `memory_op`
//! reservations, `sched_op(SCHEDOP_block)`), all on `hypercall_abi::guest::raw`.

use hypercall_abi::arch::TrapInfo;
use hypercall_abi::callback::CallbackRegister;
use hypercall_abi::guest::raw;
use hypercall_abi::hypercall as nr;
use hypercall_abi::mm::{MmuUpdate, MmuextOp, DOMID_SELF};
use hypercall_abi::{callback, sched, Errno};

/// `set_trap_table(table)`: `table` must end with an entry whose address is 0.
pub fn set_trap_table(table: &[TrapInfo]) -> Result<u64, Errno> {
    assert!(table.last().is_some_and(|t| t.address == 0));
    // SAFETY: Xen reads the terminated array; the handlers it names are our entry stubs.
    Errno::check(unsafe { raw::hypercall1(nr::SET_TRAP_TABLE, table.as_ptr() as u64) })
}

/// `callback_op(CALLBACKOP_register, {kind, flags, address})`.
pub fn register_callback(kind: u16, flags: u16, address: u64) -> Result<u64, Errno> {
    let arg = CallbackRegister { kind, flags, address };
    // SAFETY: Xen reads the 16-byte structure; the address is one of our entry points.
    Errno::check(unsafe {
        raw::hypercall2(nr::CALLBACK_OP, callback::CALLBACKOP_REGISTER as u64, &arg as *const _ as u64)
    })
}

/// `set_callbacks(event, failsafe, syscall)` (the legacy form; always 0 on Xen).
pub fn set_callbacks(event: u64, failsafe: u64, syscall: u64) -> Result<u64, Errno> {
    // SAFETY: three entry addresses of ours.
    Errno::check(unsafe { raw::hypercall3(nr::SET_CALLBACKS, event, failsafe, syscall) })
}

/// `stack_switch(ss, sp)`: the stack Xen uses for user-to-kernel transitions.
pub fn stack_switch(ss: u64, sp: u64) -> Result<u64, Errno> {
    // SAFETY: `sp` is the top of a stack reserved for trap entry.
    Errno::check(unsafe { raw::hypercall2(nr::STACK_SWITCH, ss, sp) })
}

/// `fpu_taskswitch(set)`: set (true) or clear the virtual CR0.TS.
pub fn fpu_taskswitch(set: bool) -> Result<u64, Errno> {
    // SAFETY: only changes the virtual CR0.TS.
    Errno::check(unsafe { raw::hypercall1(nr::FPU_TASKSWITCH, set as u64) })
}

/// `get_debugreg(reg)`: the register's value (`-ENODEV` for a bad number, as Xen).
pub fn get_debugreg(reg: u32) -> Result<u64, Errno> {
    // SAFETY: reads a virtual debug register.
    Errno::check(unsafe { raw::hypercall1(nr::GET_DEBUGREG, reg as u64) })
}

/// The virtual DR6 (`get_debugreg(6)`), reset to its default afterwards (`set_debugreg(6,
/// 0)`), as a debugger takes a #DB's conditions. `Err` if either call is refused.
pub fn take_dr6() -> Result<u64, Errno> {
    let dr6 = get_debugreg(6)?;
    set_debugreg(6, 0)?;
    Ok(dr6)
}

/// `set_debugreg(reg, value)`.
pub fn set_debugreg(reg: u32, value: u64) -> Result<u64, Errno> {
    // SAFETY: the kernel arms no breakpoints it relies on; DR6 only records conditions.
    Errno::check(unsafe { raw::hypercall2(nr::SET_DEBUGREG, reg as u64, value) })
}

/// `set_segment_base(which, base)`.
pub fn set_segment_base(which: u32, base: u64) -> Result<u64, Errno> {
    // SAFETY: changes a segment base this kernel does not rely on (no TLS, no per-CPU GS).
    Errno::check(unsafe { raw::hypercall2(nr::SET_SEGMENT_BASE, which as u64, base) })
}

/// `mmu_update(reqs, count, &done, DOMID_SELF)`: returns the result and `done`.
///
/// # Safety
/// The updates change page tables: the caller must keep every mapping the kernel relies on.
pub unsafe fn mmu_update(reqs: &[MmuUpdate]) -> (Result<u64, Errno>, u32) {
    // SAFETY: the caller's.
    unsafe { mmu_update_as(reqs, DOMID_SELF as u64) }
}

/// `mmu_update(reqs, count, &done, foreigndom)`: returns the result and `done`.
///
/// # Safety
/// As [`mmu_update`].
pub unsafe fn mmu_update_as(reqs: &[MmuUpdate], foreigndom: u64) -> (Result<u64, Errno>, u32) {
    let mut done: u32 = 0;
    // SAFETY: the array and `done` are valid for the call; the effect is the caller's.
    let r = unsafe {
        raw::hypercall4(
            nr::MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            &mut done as *mut u32 as u64,
            foreigndom,
        )
    };
    (Errno::check(r), done)
}

/// `mmuext_op(ops, count, &done, DOMID_SELF)`: returns the result and `done`.
///
/// # Safety
/// As [`mmu_update`].
pub unsafe fn mmuext_op(ops: &[MmuextOp]) -> (Result<u64, Errno>, u32) {
    // SAFETY: the caller's.
    unsafe { mmuext_op_as(ops, DOMID_SELF as u64) }
}

/// `mmuext_op(ops, count, &done, foreigndom)`: returns the result and `done`.
///
/// # Safety
/// As [`mmu_update`].
pub unsafe fn mmuext_op_as(ops: &[MmuextOp], foreigndom: u64) -> (Result<u64, Errno>, u32) {
    let mut done: u32 = 0;
    // SAFETY: as in `mmu_update`.
    let r = unsafe {
        raw::hypercall4(nr::MMUEXT_OP, ops.as_ptr() as u64, ops.len() as u64, &mut done as *mut u32 as u64, foreigndom)
    };
    (Errno::check(r), done)
}

/// One `mmuext_op` with `cmd` and `arg1`.
///
/// # Safety
/// As [`mmu_update`].
pub unsafe fn mmuext1(cmd: u32, arg1: u64) -> Result<u64, Errno> {
    let op = MmuextOp { cmd, arg1, arg2: 0 };
    // SAFETY: the caller's.
    unsafe { mmuext_op(&[op]).0 }
}

/// `update_va_mapping(va, pte, flags)`.
///
/// # Safety
/// As [`mmu_update`].
pub unsafe fn update_va_mapping(va: u64, pte: u64, flags: u64) -> Result<u64, Errno> {
    // SAFETY: the caller's.
    Errno::check(unsafe { raw::hypercall3(nr::UPDATE_VA_MAPPING, va, pte, flags) })
}

/// `sched_op(SCHEDOP_block)`: clears the upcall mask and sleeps until an event is pending.
pub fn sched_block() -> Result<u64, Errno> {
    // SAFETY: block takes no argument.
    Errno::check(unsafe { raw::hypercall2(nr::SCHED_OP, sched::SCHEDOP_BLOCK as u64, 0) })
}

/// `memory_op(cmd, &reservation)` for increase/decrease_reservation of order-0 extents
/// listed in `frames` (GFNs = MFNs for PV). Returns the number of extents done.
pub fn memory_reservation(cmd: u64, frames: &mut [u64]) -> Result<u64, Errno> {
    let res = hypercall_abi::memory::XenMemoryReservation {
        extent_start: frames.as_mut_ptr() as u64,
        nr_extents: frames.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    // SAFETY: Xen reads/writes the frame list within its length; what it frees is the
    // caller's business (this wrapper is only used on frames the caller set aside).
    Errno::check(unsafe { raw::hypercall2(nr::MEMORY_OP, cmd, &res as *const _ as u64) })
}
