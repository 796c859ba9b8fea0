//! Installing the virtual IDT and callbacks, and the Rust side of every trap entry:
//! [`trap_dispatch`] hands the frame to the handler the running role installed.

use core::sync::atomic::{AtomicUsize, Ordering};

use hypercall_abi::arch::{TrapInfo, FLAT_KERNEL_CS, FLAT_KERNEL_SS, TI_MASK_EVENTS};
use hypercall_abi::callback::{CALLBACKF_MASK_EVENTS, CALLBACKTYPE_EVENT, CALLBACKTYPE_FAILSAFE, CALLBACKTYPE_SYSCALL};
use hypercall_abi::Errno;

use crate::arch::x86_64::traps as entry;
use crate::kernel::hyp;
use crate::println;
use crate::trapframe::{vector_name, TrapFrame};

/// A role's trap handler: may edit the frame, returns the `iret` flags (0 or
/// `VGCF_in_syscall`).
pub type Handler = fn(&mut TrapFrame) -> u64;

static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs `handler` for every later trap, event and syscall.
pub fn set_handler(handler: Handler) {
    HANDLER.store(handler as usize, Ordering::SeqCst);
}

/// Called by `trap_common` with the saved frame; returns the `iret` flags.
pub extern "C" fn trap_dispatch(frame: &mut TrapFrame) -> u64 {
    let raw = HANDLER.load(Ordering::SeqCst);
    if raw == 0 {
        println!(
            "trap: no handler for {} (vector {}) at rip {:#x} error {:#x}",
            vector_name(frame.vector),
            frame.vector,
            frame.rip,
            frame.error_code
        );
        crate::start_of_day::shutdown(crate::cmdline::ShutdownRequest::Crash);
    }
    // SAFETY: the only non-zero value ever stored is a `Handler` (`set_handler`).
    let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(raw) };
    handler(frame)
}

/// One trap-table entry for our stub of `vector` with DPL `dpl`, masking events on entry.
pub fn entry_for(vector: u8, dpl: u8) -> TrapInfo {
    TrapInfo {
        vector,
        flags: (dpl & 3) | TI_MASK_EVENTS,
        cs: FLAT_KERNEL_CS,
        address: entry::trap_stub_address(vector),
    }
}

/// The software-interrupt vectors we register, with their DPL: 0x80 for everyone, 0x81 for
/// nobody (so `int $0x81` is a #GP with an IDT error code).
pub const SOFT_INTS: [(u8, u8); 2] = [(0x80, 3), (0x81, 0)];

/// The kernel stack Xen switches to on user-to-kernel transitions.
#[repr(C, align(4096))]
struct TrapStack([u8; 16 * 4096]);
static mut TRAP_STACK: TrapStack = TrapStack([0; 16 * 4096]);

/// Top of the trap stack.
pub fn trap_stack_top() -> u64 {
    core::ptr::addr_of!(TRAP_STACK) as u64 + core::mem::size_of::<TrapStack>() as u64
}

/// What to install: the exception vectors to handle (0-31) and whether to add the
/// software-interrupt vectors.
pub struct TrapSetup {
    /// Bit `v` set: install a handler for exception vector `v`.
    pub exceptions: u32,
    /// Install [`SOFT_INTS`] too.
    pub soft_ints: bool,
}

impl TrapSetup {
    /// Every exception vector 0-31 and the software interrupts.
    pub const ALL: TrapSetup = TrapSetup { exceptions: !0, soft_ints: true };
}

/// Installs the trap table, the kernel stack and the event, failsafe and syscall callbacks.
pub fn install(setup: &TrapSetup, handler: Handler) -> Result<(), Errno> {
    set_handler(handler);
    let mut table = [TrapInfo::default(); 40];
    let mut n = 0;
    for v in 0..32u8 {
        // #DB (1), #BP (3), #OF (4): DPL 3, so `int3`/`int $4` work everywhere; vector 0 at
        // DPL 1 so the kernel may `int $0` (vector 0 is the one software interrupt that
        // survives QEMU TCG's doubled IDT error code, see roles::traps).
        if setup.exceptions & (1 << v) != 0 {
            let dpl = match v {
                1 | 3 | 4 => 3,
                0 => 1,
                _ => 0,
            };
            table[n] = entry_for(v, dpl);
            n += 1;
        }
    }
    if setup.soft_ints {
        for (v, dpl) in SOFT_INTS {
            table[n] = entry_for(v, dpl);
            n += 1;
        }
    }
    table[n] = TrapInfo::default();
    hyp::set_trap_table(&table[..=n])?;
    hyp::stack_switch(FLAT_KERNEL_SS as u64, trap_stack_top())?;
    hyp::register_callback(CALLBACKTYPE_EVENT, 0, entry::event_entry_address())?;
    hyp::register_callback(CALLBACKTYPE_FAILSAFE, 0, entry::failsafe_entry_address())?;
    hyp::register_callback(CALLBACKTYPE_SYSCALL, CALLBACKF_MASK_EVENTS, entry::syscall_entry_address())?;
    Ok(())
}

/// The last trap a recording handler saw, with the vCPU's CR2 at that moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// The frame as delivered.
    pub frame: TrapFrame,
    /// `vcpu_info.arch.cr2` when the trap arrived.
    pub cr2: u64,
    /// `evtchn_upcall_mask` while the handler ran.
    pub mask_in_handler: u8,
}

static mut SEEN: Seen = Seen {
    frame: TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error_code: 0,
        rip: 0,
        cs: 0,
        rflags: 0,
        rsp: 0,
        ss: 0,
    },
    cr2: 0,
    mask_in_handler: 0,
};
static TRAPS_SEEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Records `frame` as the last trap (called from trap context only; the kernel has one vCPU
/// and handlers do not nest).
pub fn record(frame: &TrapFrame) {
    let (cr2, mask) = match crate::kernel::events::try_bits() {
        Some(b) => (b.cr2(), b.upcall_mask().load(Ordering::SeqCst)),
        None => (0, 0),
    };
    // SAFETY: single vCPU, no nesting: nothing else accesses SEEN while a handler runs, and
    // the kernel reads it only between traps.
    unsafe {
        *core::ptr::addr_of_mut!(SEEN) = Seen { frame: *frame, cr2, mask_in_handler: mask };
    }
    TRAPS_SEEN.fetch_add(1, Ordering::SeqCst);
}

/// Number of traps recorded so far.
pub fn traps_seen() -> u64 {
    TRAPS_SEEN.load(Ordering::SeqCst)
}

/// The last recorded trap.
pub fn last_seen() -> Seen {
    // SAFETY: read between traps (see `record`).
    unsafe { *core::ptr::addr_of!(SEEN) }
}
