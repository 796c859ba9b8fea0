//! Generic hypervisor logic, free of asm and unit-tested on the host.
#![cfg_attr(not(test), no_std)]
