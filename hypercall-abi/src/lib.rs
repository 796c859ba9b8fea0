//! Xen's x86_64 PV hypercall ABI, in Rust: numbers, layouts and protocols for guest OS authors.
#![no_std]

pub mod io;
