//! Architecture layer: the only place with asm, MSRs, descriptor tables and port I/O.
pub mod x86_64;
