//! Split-driver protocols: the generic shared ring and the block, network, console and
//! xenstore wire formats of Xen's `io/*.h`.
//!
//! * [`ring`]: `io/ring.h`, a typed [`ring::FrontRing`] / [`ring::BackRing`] over any
//!   [`mem::SharedMemory`], with Xen's notify avoidance and hostile-index detection.
//! * [`blkif`], [`netif`]: the block and network wire formats, layout-identical to Xen's.
//! * [`console`], [`xenstore`]: the byte-stream rings and xenstore's message format.
//! * [`xenbus`]: the device state machine.
//! * [`guide`]: writing a split driver with this crate, with a complete, tested example.
//!
//! Nothing in here panics on data a peer controls; every protocol violation is a typed error.

pub mod blkif;
pub mod byte_ring;
pub mod console;
pub mod guide;
pub mod mem;
pub mod netif;
pub mod ring;
pub mod wire;
pub mod xenbus;
pub mod xenstore;
