//! Architecture-specific code. Only x86_64 PV exists; everything with asm lives below it.

pub mod x86_64;
