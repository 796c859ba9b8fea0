//! Split-driver protocols: the generic shared ring and the block, network, console and
//! xenstore wire formats of Xen's `io/*.h`.
