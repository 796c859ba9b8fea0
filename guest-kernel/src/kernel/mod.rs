//! The kernel proper (bare-metal target only): hypercall wrappers, trap and event handling,
//! PV memory management and user processes, shared by the roles.

pub mod events;
pub mod hyp;
pub mod inter;
pub mod mm;
pub mod trap;
pub mod uspace;
