//! How the hypervisor ends QEMU: values for the `isa-debug-exit` device (port 0xf4).
//!
//! QEMU exits with `(value << 1) | 1` when `value` is written. The harness and `run.sh` rely on:
//!
//! | QEMU exit status | meaning |
//! |---|---|
//! | 33 ([`SUCCESS`]) | clean end: no module, or dom0 powered off |
//! | 35 ([`FAILURE`]) | failure reported by the hypervisor: bad module, panic, ring-0 fault, dom0 crash |
//! | 0 | no `isa-debug-exit` write: a triple fault with `-no-reboot`, or an ACPI poweroff (Xen) |
//! | other | QEMU itself failed |

/// Value written for a clean end (QEMU exits with 33).
pub const SUCCESS: u32 = 0x10;
/// Value written for a failure (QEMU exits with 35).
pub const FAILURE: u32 = 0x11;

/// The QEMU exit status produced by writing `value`.
pub const fn qemu_status(value: u32) -> i32 {
    ((value << 1) | 1) as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses() {
        assert_eq!(super::qemu_status(super::SUCCESS), 33);
        assert_eq!(super::qemu_status(super::FAILURE), 35);
    }
}
