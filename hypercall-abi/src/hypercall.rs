//! Hypercall numbers (`__HYPERVISOR_*` in `xen.h`) and the PV64 calling convention.
//!
//! A 64-bit PV guest kernel makes hypercall `n` with `syscall`, `rax = n`, arguments in
//! `rdi rsi rdx r10 r8`, and gets a `long` back in `rax` (negative values are
//! [`Errno`](crate::errno::Errno)s). `rcx` and `r11` are destroyed by `syscall`/`sysret`.
//! Alternatively it calls stub `n` of the hypercall page (see [`HYPERCALL_STUB_SIZE`]).

/// `set_trap_table(trap_info *)`: install virtual IDT entries.
pub const SET_TRAP_TABLE: u64 = 0;
/// `mmu_update(mmu_update *reqs, u32 count, u32 *done, u32 foreigndom)`.
pub const MMU_UPDATE: u64 = 1;
/// `set_gdt(u64 *frames, u32 entries)`.
pub const SET_GDT: u64 = 2;
/// `stack_switch(u64 ss, u64 sp)`: kernel stack for user-to-kernel transitions.
pub const STACK_SWITCH: u64 = 3;
/// `set_callbacks(event, failsafe, syscall)`: legacy callback registration.
pub const SET_CALLBACKS: u64 = 4;
/// `fpu_taskswitch(int set)`: set or clear the virtual CR0.TS.
pub const FPU_TASKSWITCH: u64 = 5;
/// `sched_op_compat(int cmd, u64 arg)`: legacy scheduler operation.
pub const SCHED_OP_COMPAT: u64 = 6;
/// `platform_op(xen_platform_op *)`: platform control (dom0 only).
pub const PLATFORM_OP: u64 = 7;
/// `set_debugreg(int reg, u64 value)`.
pub const SET_DEBUGREG: u64 = 8;
/// `get_debugreg(int reg)`.
pub const GET_DEBUGREG: u64 = 9;
/// `update_descriptor(u64 maddr, u64 desc)`.
pub const UPDATE_DESCRIPTOR: u64 = 10;
/// `memory_op(u64 cmd, void *arg)`: see [`crate::memory`].
pub const MEMORY_OP: u64 = 12;
/// `multicall(multicall_entry *list, u32 nr)`: see [`crate::multicall`].
pub const MULTICALL: u64 = 13;
/// `update_va_mapping(u64 va, u64 pte, u64 flags)`.
pub const UPDATE_VA_MAPPING: u64 = 14;
/// `set_timer_op(i64 timeout_ns)`: one-shot timer at absolute system time (0 cancels).
pub const SET_TIMER_OP: u64 = 15;
/// `event_channel_op_compat(evtchn_op *)`: legacy event-channel operation.
pub const EVENT_CHANNEL_OP_COMPAT: u64 = 16;
/// `xen_version(int cmd, void *arg)`: see [`crate::version`].
pub const XEN_VERSION: u64 = 17;
/// `console_io(u32 cmd, u32 count, char *buf)`: see [`crate::console_io`].
pub const CONSOLE_IO: u64 = 18;
/// `physdev_op_compat(physdev_op *)`: legacy physdev operation.
pub const PHYSDEV_OP_COMPAT: u64 = 19;
/// `grant_table_op(u32 cmd, void *uops, u32 count)`: see [`crate::grant_table`].
pub const GRANT_TABLE_OP: u64 = 20;
/// `vm_assist(u32 cmd, u32 type)`: see [`crate::vm_assist`].
pub const VM_ASSIST: u64 = 21;
/// `update_va_mapping_otherdomain(va, pte, flags, domid)`.
pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
/// `iret`: arguments on the guest stack ([`crate::arch::IretContext`]); reached by `jmp`.
pub const IRET: u64 = 23;
/// `vcpu_op(int cmd, u32 vcpuid, void *arg)`: see [`crate::vcpu`].
pub const VCPU_OP: u64 = 24;
/// `set_segment_base(u32 which, u64 base)`: see [`crate::arch::SEGBASE_FS`].
pub const SET_SEGMENT_BASE: u64 = 25;
/// `mmuext_op(mmuext_op *ops, u32 count, u32 *done, u32 foreigndom)`.
pub const MMUEXT_OP: u64 = 26;
/// `xsm_op(void *)`: XSM/FLASK security operations.
pub const XSM_OP: u64 = 27;
/// `nmi_op(u32 cmd, void *)`: NMI callback registration.
pub const NMI_OP: u64 = 28;
/// `sched_op(int cmd, void *arg)`: see [`crate::sched`].
pub const SCHED_OP: u64 = 29;
/// `callback_op(int cmd, void *arg)`: see [`crate::callback`].
pub const CALLBACK_OP: u64 = 30;
/// `xenoprof_op(int op, void *)`: profiling.
pub const XENOPROF_OP: u64 = 31;
/// `event_channel_op(int cmd, void *arg)`: see [`crate::event_channel`].
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `physdev_op(int cmd, void *arg)`: physical device and IRQ operations.
pub const PHYSDEV_OP: u64 = 33;
/// `hvm_op(u64 op, void *)`: HVM parameters.
pub const HVM_OP: u64 = 34;
/// `sysctl(xen_sysctl *)`: system control (privileged).
pub const SYSCTL: u64 = 35;
/// `domctl(xen_domctl *)`: domain control (privileged).
pub const DOMCTL: u64 = 36;
/// `kexec_op(u64 op, void *)`.
pub const KEXEC_OP: u64 = 37;
/// `tmem_op`: removed from Xen, always `-ENOSYS`.
pub const TMEM_OP: u64 = 38;
/// `argo_op(u32 cmd, void *, void *, u64, u64)`: Argo inter-domain messaging.
pub const ARGO_OP: u64 = 39;
/// `xenpmu_op(u32 op, void *)`: virtual PMU.
pub const XENPMU_OP: u64 = 40;
/// `dm_op(domid, u32 nr_bufs, bufs *)`: device-model operations.
pub const DM_OP: u64 = 41;
/// `hypfs_op(u32 cmd, char *, u64, void *, u64)`: hypervisor filesystem.
pub const HYPFS_OP: u64 = 42;
/// First architecture-specific hypercall (`arch_0`; machine-check operations on x86).
pub const ARCH_0: u64 = 48;
/// `arch_1`: x86 paging_domctl continuation.
pub const ARCH_1: u64 = 49;
/// `arch_7`, the last architecture-specific slot.
pub const ARCH_7: u64 = 55;

/// Numbers at or above this are never valid hypercalls (`-ENOSYS`): the size of Xen's PV64
/// dispatch table. (The hypercall page itself holds 128 stubs of 32 bytes.)
pub const NR_HYPERCALLS: u64 = 64;

/// Size of one hypercall-page stub: stub `n` is at `page + n * HYPERCALL_STUB_SIZE`.
pub const HYPERCALL_STUB_SIZE: usize = 32;

/// The bytes Xen writes for an ordinary 64-bit PV stub `n` (14 bytes; the rest of the 32-byte
/// slot is `0xCC`): `push %rcx; push %r11; mov $n,%eax; syscall; pop %r11; pop %rcx; ret`.
pub const fn hypercall_stub(n: u32) -> [u8; 14] {
    let b = n.to_le_bytes();
    [0x51, 0x41, 0x53, 0xb8, b[0], b[1], b[2], b[3], 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]
}

/// The bytes of the `iret` stub (number 23, 11 bytes, entered with `jmp`, never returns):
/// `push %rcx; push %r11; push %rax; mov $23,%eax; syscall`.
pub const IRET_STUB: [u8; 11] = [0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05];

/// The name of hypercall `nr` as in `xen.h` without the `__HYPERVISOR_` prefix, if it has one.
pub const fn name(nr: u64) -> Option<&'static str> {
    Some(match nr {
        SET_TRAP_TABLE => "set_trap_table",
        MMU_UPDATE => "mmu_update",
        SET_GDT => "set_gdt",
        STACK_SWITCH => "stack_switch",
        SET_CALLBACKS => "set_callbacks",
        FPU_TASKSWITCH => "fpu_taskswitch",
        SCHED_OP_COMPAT => "sched_op_compat",
        PLATFORM_OP => "platform_op",
        SET_DEBUGREG => "set_debugreg",
        GET_DEBUGREG => "get_debugreg",
        UPDATE_DESCRIPTOR => "update_descriptor",
        MEMORY_OP => "memory_op",
        MULTICALL => "multicall",
        UPDATE_VA_MAPPING => "update_va_mapping",
        SET_TIMER_OP => "set_timer_op",
        EVENT_CHANNEL_OP_COMPAT => "event_channel_op_compat",
        XEN_VERSION => "xen_version",
        CONSOLE_IO => "console_io",
        PHYSDEV_OP_COMPAT => "physdev_op_compat",
        GRANT_TABLE_OP => "grant_table_op",
        VM_ASSIST => "vm_assist",
        UPDATE_VA_MAPPING_OTHERDOMAIN => "update_va_mapping_otherdomain",
        IRET => "iret",
        VCPU_OP => "vcpu_op",
        SET_SEGMENT_BASE => "set_segment_base",
        MMUEXT_OP => "mmuext_op",
        XSM_OP => "xsm_op",
        NMI_OP => "nmi_op",
        SCHED_OP => "sched_op",
        CALLBACK_OP => "callback_op",
        XENOPROF_OP => "xenoprof_op",
        EVENT_CHANNEL_OP => "event_channel_op",
        PHYSDEV_OP => "physdev_op",
        HVM_OP => "hvm_op",
        SYSCTL => "sysctl",
        DOMCTL => "domctl",
        KEXEC_OP => "kexec_op",
        TMEM_OP => "tmem_op",
        ARGO_OP => "argo_op",
        XENPMU_OP => "xenpmu_op",
        DM_OP => "dm_op",
        HYPFS_OP => "hypfs_op",
        ARCH_0 => "arch_0",
        ARCH_1 => "arch_1",
        50 => "arch_2",
        51 => "arch_3",
        52 => "arch_4",
        53 => "arch_5",
        54 => "arch_6",
        ARCH_7 => "arch_7",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_bytes_match_xen_pv64_stub() {
        assert_eq!(hypercall_stub(17), [0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
    }

    #[test]
    fn names_cover_known_and_reject_unused() {
        assert_eq!(name(XEN_VERSION), Some("xen_version"));
        assert_eq!(name(11), None);
        assert_eq!(name(NR_HYPERCALLS), None);
    }
}
