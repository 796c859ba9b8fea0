//! `callback_op` (`callback.h`): where Xen delivers events, failsafe returns and syscalls.

/// `CALLBACKOP_register` ([`CallbackRegister`]).
pub const CALLBACKOP_REGISTER: u32 = 0;
/// `CALLBACKOP_unregister` ([`CallbackUnregister`]; only the NMI callback can go).
pub const CALLBACKOP_UNREGISTER: u32 = 1;

/// `CALLBACKTYPE_event`: event-channel upcall (always masks events).
pub const CALLBACKTYPE_EVENT: u16 = 0;
/// `CALLBACKTYPE_failsafe`: segment reload failed on return to the guest.
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
/// `CALLBACKTYPE_syscall`: 64-bit `syscall` from guest user mode.
pub const CALLBACKTYPE_SYSCALL: u16 = 2;
/// `CALLBACKTYPE_sysenter_deprecated`.
pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
/// `CALLBACKTYPE_nmi`.
pub const CALLBACKTYPE_NMI: u16 = 4;
/// `CALLBACKTYPE_sysenter`: `sysenter` from guest user mode. (`callback.h` defines it as 5;
/// only for interface versions below 0x00030207 does it alias the deprecated 3.)
pub const CALLBACKTYPE_SYSENTER: u16 = 5;
/// `CALLBACKTYPE_syscall32`: `syscall` from 32-bit user code.
pub const CALLBACKTYPE_SYSCALL32: u16 = 7;

/// `CALLBACKF_mask_events`: mask events on delivery.
pub const CALLBACKF_MASK_EVENTS: u16 = 1 << 0;

/// `struct callback_register` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackRegister {
    /// `CALLBACKTYPE_*`.
    pub kind: u16,
    /// `CALLBACKF_*`.
    pub flags: u16,
    /// Handler address (canonical).
    pub address: u64,
}

/// `struct callback_unregister` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackUnregister {
    /// `CALLBACKTYPE_*`.
    pub kind: u16,
    /// Padding.
    pub pad: u16,
}

const _: () = assert!(core::mem::size_of::<CallbackRegister>() == 16);
const _: () = assert!(core::mem::size_of::<CallbackUnregister>() == 4);
