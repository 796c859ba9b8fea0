//! Hypercalls that set up a vCPU's virtual CPU state: the virtual IDT, callbacks, the kernel
//! stack, segment bases, the virtual CR0.TS and the virtual debug registers (digest §2.3,
//! §3.2, §3.5).

use super::{Env, Outcome};
use crate::vcpu::{is_canonical, Callback, TrapSlot};
use hypercall_abi::arch::{SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER, SEGBASE_GS_USER_SEL};
use hypercall_abi::callback::*;
use hypercall_abi::errno::Errno;

/// `trap_info` entries read per hypercall entry before a continuation.
const TRAP_TABLE_BATCH: u64 = 64;

fn ret(r: Result<(), Errno>) -> Outcome {
    Outcome::Return(match r {
        Ok(()) => 0,
        Err(e) => e.to_return(),
    })
}

/// `set_trap_table(traps)`: entries until one with address 0; NULL clears the table.
pub fn set_trap_table(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let list = a[0];
    if list == 0 {
        env.vcpu().trap_table = [TrapSlot::default(); 256];
        return Outcome::Return(0);
    }
    for i in 0..TRAP_TABLE_BATCH {
        let mut raw = [0u8; 16];
        if let Err(e) = env.copy_from_guest(list.wrapping_add(i * 16), &mut raw) {
            return Outcome::Return(e.to_return());
        }
        let address = u64::from_le_bytes(raw[8..16].try_into().unwrap_or_default());
        if address == 0 {
            return Outcome::Return(0);
        }
        if !is_canonical(address) {
            return Outcome::Return(Errno::EINVAL.to_return());
        }
        env.vcpu().trap_table[raw[0] as usize] = TrapSlot { flags: raw[1], address };
    }
    Outcome::Continue([list.wrapping_add(TRAP_TABLE_BATCH * 16), a[1], a[2], a[3], a[4]])
}

/// `stack_switch(ss, sp)`: the stack for user-to-kernel transitions.
pub fn stack_switch(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let v = env.vcpu();
    v.kernel_ss = a[0] | 3; // Xen raises the RPL to 3
    v.kernel_sp = a[1];
    Outcome::Return(0)
}

/// `set_callbacks(event, failsafe, syscall)`: the legacy registration, always 0. As Xen's
/// `do_set_callbacks`, each address goes through the same check as `CALLBACKOP_register`
/// (`register_guest_callback`), whose refusal is dropped: a non-canonical address leaves
/// that callback as it was, and the others of the call are still registered.
pub fn set_callbacks(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let v = env.vcpu();
    if is_canonical(a[0]) {
        v.event_callback = a[0];
    }
    if is_canonical(a[1]) {
        v.failsafe_callback = Callback { address: a[1], mask_events: false };
    }
    if is_canonical(a[2]) {
        v.syscall_callback = Callback { address: a[2], mask_events: false };
    }
    Outcome::Return(0)
}

/// `callback_op(cmd, arg)`.
pub fn callback_op(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    match a[0] as u32 {
        CALLBACKOP_REGISTER => {
            let mut raw = [0u8; 16];
            if let Err(e) = env.copy_from_guest(a[1], &mut raw) {
                return Outcome::Return(e.to_return());
            }
            let kind = u16::from_le_bytes([raw[0], raw[1]]);
            let flags = u16::from_le_bytes([raw[2], raw[3]]);
            let address = u64::from_le_bytes(raw[8..16].try_into().unwrap_or_default());
            if !is_canonical(address) {
                return Outcome::Return(Errno::EINVAL.to_return());
            }
            let cb = Callback { address, mask_events: flags & CALLBACKF_MASK_EVENTS != 0 };
            let v = env.vcpu();
            match kind {
                CALLBACKTYPE_EVENT => v.event_callback = address,
                CALLBACKTYPE_FAILSAFE => v.failsafe_callback = cb,
                CALLBACKTYPE_SYSCALL => v.syscall_callback = cb,
                // Xen keeps the NMI callback as trap slot 2 with events masked.
                CALLBACKTYPE_NMI => v.trap_table[2] = TrapSlot { flags: 4, address },
                // A guest can still reach compatibility mode with a far jump to 0xe023, and a
                // `syscall` there is bounced to this entry (see `guest_traps`).
                CALLBACKTYPE_SYSCALL32 => v.syscall32_callback = cb,
                // `sysenter` never reaches us (SYSENTER_CS is 0: #GP, or #UD on AMD); accept
                // the registration as Xen does.
                CALLBACKTYPE_SYSENTER => {}
                _ => return Outcome::Return(Errno::ENOSYS.to_return()),
            }
            Outcome::Return(0)
        }
        CALLBACKOP_UNREGISTER => {
            // `struct callback_unregister`: `u16 type` and 2 bytes of padding, read whole.
            let mut raw = [0u8; 4];
            if let Err(e) = env.copy_from_guest(a[1], &mut raw) {
                return Outcome::Return(e.to_return());
            }
            // Xen's `unregister_guest_callback`: only the NMI callback can go; the other known
            // types are -EINVAL, unknown ones -ENOSYS.
            match u16::from_le_bytes([raw[0], raw[1]]) {
                CALLBACKTYPE_NMI => {
                    env.vcpu().trap_table[2] = TrapSlot::default();
                    Outcome::Return(0)
                }
                CALLBACKTYPE_EVENT
                | CALLBACKTYPE_FAILSAFE
                | CALLBACKTYPE_SYSCALL
                | CALLBACKTYPE_SYSCALL32
                | CALLBACKTYPE_SYSENTER => Outcome::Return(Errno::EINVAL.to_return()),
                _ => Outcome::Return(Errno::ENOSYS.to_return()),
            }
        }
        _ => Outcome::Return(Errno::ENOSYS.to_return()),
    }
}

/// `fpu_taskswitch(set)`: the virtual CR0.TS.
pub fn fpu_taskswitch(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    env.vcpu().cr0_ts = a[0] as i32 != 0;
    Outcome::Return(0)
}

/// `set_segment_base(which, base)`.
pub fn set_segment_base(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let (which, base) = (a[0] as u32, a[1]);
    if which != SEGBASE_GS_USER_SEL && !is_canonical(base) {
        return Outcome::Return(Errno::EINVAL.to_return());
    }
    if !matches!(which, SEGBASE_FS | SEGBASE_GS_USER | SEGBASE_GS_KERNEL | SEGBASE_GS_USER_SEL) {
        return ret(Err(Errno::EINVAL));
    }
    // The other bases and the selectors as the guest has them now, not as last saved.
    env.refresh_segment_state();
    let v = env.vcpu();
    match which {
        SEGBASE_FS => v.fs_base = base,
        SEGBASE_GS_USER => v.gs_base_user = base,
        SEGBASE_GS_KERNEL => v.gs_base_kernel = base,
        // Loads a user %gs selector as Xen does, with its fix-up (a selector the CPU would
        // refuse becomes the null one); it never fails. Every descriptor a guest can name is
        // flat (base 0), and a null load clears the base: the user GS base becomes 0.
        _ => {
            v.data_selectors[3] = crate::vcpu::user_data_selector(base as u16);
            v.gs_base_user = 0;
        }
    }
    env.apply_segment_bases();
    Outcome::Return(0)
}

/// `set_debugreg(reg, value)`: see [`crate::emulate::set_debugreg`].
pub fn set_debugreg(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let Some(state) = env.priv_state() else { return ret(Err(Errno::ENOSYS)) };
    ret(crate::emulate::set_debugreg(state, a[0], a[1]))
}

/// `get_debugreg(reg)`: the register's value itself (Xen returns it in `rax`, errors as
/// `-ENODEV`); see [`crate::emulate::get_debugreg`].
pub fn get_debugreg(env: &mut dyn Env, a: [u64; 5]) -> Outcome {
    let Some(state) = env.priv_state() else { return ret(Err(Errno::ENOSYS)) };
    match crate::emulate::get_debugreg(state, a[0]) {
        Ok(v) => Outcome::Return(v as i64),
        Err(e) => ret(Err(e)),
    }
}
