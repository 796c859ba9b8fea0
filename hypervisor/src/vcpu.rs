//! A PV vCPU's virtual state and Xen's delivery rules: the virtual trap table, callbacks,
//! kernel/user mode, bounce frames (digest §3.3), `HYPERVISOR_iret` (§3.4), software
//! interrupts (§3.2) and the TSC-to-system-time scale (§3.9).
//!
//! The caller (the kernel binary) acts on what these functions report: when the vCPU changes
//! between guest kernel and guest user mode it must load the other root page table and swap
//! the GS bases, as Xen's `toggle_guest_mode` does.

use crate::elf_image::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use crate::frame::TrapFrame;
use hypercall_abi::arch::{FLAT_RING3_CS64, FLAT_RING3_SS64, VGCF_IN_SYSCALL};

/// RFLAGS bits.
pub mod rflags {
    /// Trap flag.
    pub const TF: u64 = 1 << 8;
    /// Interrupt flag.
    pub const IF: u64 = 1 << 9;
    /// Direction flag.
    pub const DF: u64 = 1 << 10;
    /// I/O privilege level.
    pub const IOPL: u64 = 3 << 12;
    /// Nested task.
    pub const NT: u64 = 1 << 14;
    /// Resume flag.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check.
    pub const AC: u64 = 1 << 18;
}

/// `#GP`.
pub const VECTOR_GP: u8 = 13;
/// `#DB`.
pub const VECTOR_DB: u8 = 1;
/// `#PF`.
pub const VECTOR_PF: u8 = 14;
/// `#UD`.
pub const VECTOR_UD: u8 = 6;

/// One slot of the virtual IDT (`trap_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapSlot {
    /// Bits 0-1: DPL; bit 2: mask events on entry.
    pub flags: u8,
    /// Handler address (0: none).
    pub address: u64,
}

/// A registered callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Callback {
    /// Entry address (0: none).
    pub address: u64,
    /// `CALLBACKF_mask_events`.
    pub mask_events: bool,
}

/// What to deliver to the guest kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Handler entry.
    pub handler: u64,
    /// Error code pushed in the frame, if the vector has one.
    pub error_code: Option<u64>,
    /// Set `evtchn_upcall_mask` on entry.
    pub mask_events: bool,
}

/// Why something could not be delivered: the domain must be crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// No handler registered for this vector.
    NoHandler(u8),
    /// The guest kernel stack would overlap the hypervisor's range.
    StackInHypervisorRange(u64),
    /// The frame could not be written (or the `iret` frame read) at this address.
    StackFault(u64),
    /// Return to user mode without user page tables.
    NoUserPageTables,
    /// The handler address is not canonical (`set_callbacks` stores addresses unchecked, as
    /// Xen does); returning to it would make the exit path's `iretq` fault in ring 0.
    NonCanonicalHandler(u64),
}

impl core::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoHandler(v) => write!(f, "no guest handler for vector {v}"),
            Self::StackInHypervisorRange(sp) => write!(f, "guest stack {sp:#x} in the hypervisor's range"),
            Self::StackFault(va) => write!(f, "guest stack not writable at {va:#x}"),
            Self::NoUserPageTables => write!(f, "iret to user mode without user page tables"),
            Self::NonCanonicalHandler(a) => write!(f, "non-canonical handler address {a:#x}"),
        }
    }
}

/// Guest memory as seen through a given root page table.
pub trait GuestMemory {
    /// Copies `bytes` to `va` in the address space rooted at `l4`; `false` on any fault.
    fn write(&mut self, l4: u64, va: u64, bytes: &[u8]) -> bool;
    /// Copies from `va` into `out`; `false` on any fault.
    fn read(&self, l4: u64, va: u64, out: &mut [u8]) -> bool;
    /// Stores up to [`MAX_WORDS`](crate::guest_stack::MAX_WORDS) little-endian words at
    /// `va`; `false` on any fault, with nothing written.
    fn write_words(&mut self, l4: u64, va: u64, words: &[u64]) -> bool {
        crate::guest_stack::write_words_bytewise(self, l4, va, words)
    }
    /// Loads up to [`MAX_WORDS`](crate::guest_stack::MAX_WORDS) little-endian words from `va`.
    fn read_words(&self, l4: u64, va: u64, out: &mut [u64]) -> bool {
        crate::guest_stack::read_words_bytewise(self, l4, va, out)
    }
}

/// Whether the vCPU switched mode: the caller loads the new root and swaps GS bases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeChange {
    /// Same mode as before.
    None,
    /// Now in guest kernel mode.
    ToKernel,
    /// Now in guest user mode.
    ToUser,
}

/// The virtual CPU state Xen keeps per vCPU.
#[derive(Clone, Debug)]
pub struct VcpuState {
    /// The virtual IDT.
    pub trap_table: [TrapSlot; 256],
    /// Event upcall entry (`CALLBACKTYPE_event`).
    pub event_callback: u64,
    /// `CALLBACKTYPE_failsafe`.
    pub failsafe_callback: Callback,
    /// `CALLBACKTYPE_syscall`: `SYSCALL` from guest user mode.
    pub syscall_callback: Callback,
    /// `CALLBACKTYPE_syscall32`: `SYSCALL` from 32-bit compatibility-mode code (the guest can
    /// far-jump to `FLAT_RING3_CS32`; the CPU then enters through `CSTAR`).
    pub syscall32_callback: Callback,
    /// `stack_switch`: stack for user-to-kernel transitions.
    pub kernel_ss: u64,
    /// See `kernel_ss`.
    pub kernel_sp: u64,
    /// Guest kernel mode (vs guest user mode); both run in ring 3.
    pub kernel_mode: bool,
    /// The kernel and user root page tables (frame numbers, each holding an L4 type
    /// reference in the PV MMU) and the TLB work pending for the CPU.
    pub paging: crate::mm::VcpuPaging,
    /// FS base. This and the GS bases are the CPU's while the vCPU is loaded (the guest
    /// changes them itself by loading %fs or %gs): the arch code reads them back before
    /// they are looked at or changed, and when the vCPU leaves the CPU.
    pub fs_base: u64,
    /// GS base in kernel mode.
    pub gs_base_kernel: u64,
    /// GS base in user mode.
    pub gs_base_user: u64,
    /// DS, ES, FS and GS selectors, saved while another vCPU has the CPU (Xen's
    /// `save_segments`): null for a new vCPU.
    pub data_selectors: [u16; 4],
    /// Virtual CR0.TS (`fpu_taskswitch`).
    pub cr0_ts: bool,
}

impl VcpuState {
    /// A vCPU in kernel mode on the root at machine address `kernel_l4` (0: no root yet),
    /// with nothing registered.
    pub fn new(kernel_l4: u64) -> Self {
        Self {
            trap_table: [TrapSlot::default(); 256],
            event_callback: 0,
            failsafe_callback: Callback::default(),
            syscall_callback: Callback::default(),
            syscall32_callback: Callback::default(),
            kernel_ss: 0,
            kernel_sp: 0,
            kernel_mode: true,
            paging: crate::mm::VcpuPaging {
                kernel_l4: (kernel_l4 != 0).then_some(kernel_l4 >> 12),
                ..Default::default()
            },
            fs_base: 0,
            gs_base_kernel: 0,
            gs_base_user: 0,
            data_selectors: [0; 4],
            cr0_ts: false,
        }
    }

    /// Machine address of the kernel root page table (0 if none).
    pub fn kernel_root(&self) -> u64 {
        self.paging.kernel_l4.map_or(0, |mfn| mfn << 12)
    }

    /// Machine address of the root page table of the current mode.
    pub fn current_l4(&self) -> u64 {
        match (self.kernel_mode, self.paging.user_l4) {
            (false, Some(u)) => u << 12,
            _ => self.kernel_root(),
        }
    }

    /// How an exception `vector` with `error_code` raised by the guest is delivered.
    pub fn exception(&self, vector: u8, error_code: Option<u64>) -> Result<Delivery, DeliveryError> {
        let slot = self.trap_table[vector as usize];
        if slot.address == 0 {
            return Err(DeliveryError::NoHandler(vector));
        }
        let error_code = match (vector, error_code) {
            // Xen recomputes U/S: set only if the guest was in user mode.
            (VECTOR_PF, Some(e)) => Some((e & !4) | if self.kernel_mode { 0 } else { 4 }),
            (_, e) => e,
        };
        Ok(Delivery { handler: slot.address, error_code, mask_events: slot.flags & 4 != 0 })
    }

    /// `int n` from the guest, which reached the hypervisor as #GP with error code
    /// `(n << 3) | 2` (all real IDT gates but 3 and 4 are DPL 0): the handler `n` if its DPL
    /// admits the caller (DPL >= 1 for the kernel, 3 for user), else `None` (deliver the #GP).
    pub fn software_interrupt(&self, n: u8) -> Option<Delivery> {
        let slot = self.trap_table[n as usize];
        let dpl = slot.flags & 3;
        let allowed = if n == 0x80 {
            true
        } else if self.kernel_mode {
            dpl >= 1
        } else {
            dpl == 3
        };
        (slot.address != 0 && allowed).then_some(Delivery {
            handler: slot.address,
            error_code: None,
            mask_events: slot.flags & 4 != 0,
        })
    }

    /// Builds Xen's bounce frame for `d` on the guest kernel stack and points `frame` at the
    /// handler; `upcall_mask` is the vCPU's `evtchn_upcall_mask`.
    pub fn bounce(
        &mut self,
        frame: &mut TrapFrame,
        d: Delivery,
        upcall_mask: &mut u8,
        mem: &mut impl GuestMemory,
    ) -> Result<ModeChange, DeliveryError> {
        if !is_canonical(d.handler) {
            // Xen's create_bounce_frame crashes the domain here too.
            return Err(DeliveryError::NonCanonicalHandler(d.handler));
        }
        let from_kernel = self.kernel_mode;
        // Kernel-mode frames report CS with RPL 0 so the guest can tell the two apart.
        let (stack, reported_cs) =
            if from_kernel { (frame.rsp, frame.cs & !3) } else { (self.kernel_sp, frame.cs | 3) };
        let sp = stack & !15;
        if sp > HYPERVISOR_VIRT_START && sp < HYPERVISOR_VIRT_END + 0x40 {
            return Err(DeliveryError::StackInHypervisorRange(sp));
        }
        let saved_mask = *upcall_mask;
        let virtual_if = if saved_mask == 0 { rflags::IF } else { 0 };
        let (rcx, r11) = (frame.rcx, frame.r11);
        let [rip, cs, rfl, rsp, ss] = [
            frame.rip,
            (reported_cs & 0xffff) | (saved_mask as u64) << 32,
            (frame.rflags & !rflags::IF) | virtual_if,
            frame.rsp,
            frame.ss,
        ];
        // The frame goes through the kernel's page tables, whichever mode we came from. One
        // fixed-size frame per case, so the copy has a constant length.
        let root = self.kernel_root();
        let new_sp = match d.error_code {
            Some(e) => {
                let at = sp.wrapping_sub(64);
                mem.write_words(root, at, &[rcx, r11, e & 0xffff_ffff, rip, cs, rfl, rsp, ss]).then_some(at)
            }
            None => {
                let at = sp.wrapping_sub(56);
                mem.write_words(root, at, &[rcx, r11, rip, cs, rfl, rsp, ss]).then_some(at)
            }
        };
        let Some(new_sp) = new_sp else {
            return Err(DeliveryError::StackFault(sp.wrapping_sub(if d.error_code.is_some() { 64 } else { 56 })));
        };
        self.kernel_mode = true;
        if d.mask_events {
            *upcall_mask = 1;
        }
        frame.rip = d.handler;
        frame.cs = FLAT_RING3_CS64 as u64;
        frame.ss = FLAT_RING3_SS64 as u64;
        frame.rsp = new_sp;
        frame.rflags = (frame.rflags & !(rflags::TF | rflags::NT | rflags::RF | rflags::VM | rflags::AC)) | rflags::IF;
        Ok(if from_kernel { ModeChange::None } else { ModeChange::ToKernel })
    }

    /// `HYPERVISOR_iret`: pops the 72-byte `iret_context` at the guest's `rsp` and returns to
    /// the context it describes. A frame the CPU could not return to (non-canonical RIP or
    /// RSP, a selector other than the flat ring-3 ones) yields `Ok(Err(()))`: the caller
    /// delivers #GP(0) to the guest, as Xen's failed IRET does.
    pub fn iret(
        &mut self,
        frame: &mut TrapFrame,
        upcall_mask: &mut u8,
        mem: &impl GuestMemory,
    ) -> Result<Result<ModeChange, ()>, DeliveryError> {
        let mut raw = [0u64; 9];
        if !mem.read_words(self.current_l4(), frame.rsp, &mut raw) {
            return Err(DeliveryError::StackFault(frame.rsp));
        }
        let [rax, r11, rcx, flags, rip, cs, rfl, rsp, ss] = raw;
        // Only the selector bits count: a bounce frame's CS slot also carries the saved event
        // mask in bits 32-39, and guests hand such frames back unchanged (Xen reads a u16).
        let cs = (cs & 0xffff) | 3;
        let ss = (ss & 0xffff) | 3;
        // 32-bit compatibility mode is not offered to PV guests (`iret` to compatibility-mode
        // code is refused, see README): only the 64-bit flat CS is valid.
        let cs_ok = cs == FLAT_RING3_CS64 as u64;
        if !is_canonical(rip) || !is_canonical(rsp) || !cs_ok || ss != FLAT_RING3_SS64 as u64 {
            return Ok(Err(()));
        }
        // The RPL the guest wrote decides: kernel frames carry RPL 0 (digest §3.4).
        let to_user = raw[5] & 3 == 3; // the RPL bits of the selector
        if to_user && self.paging.user_l4.is_none() {
            return Err(DeliveryError::NoUserPageTables);
        }
        frame.rax = rax;
        frame.rip = rip;
        frame.cs = cs;
        frame.ss = ss;
        frame.rsp = rsp;
        frame.rflags = (rfl & !(rflags::IOPL | rflags::VM)) | rflags::IF;
        if flags & VGCF_IN_SYSCALL != 0 {
            // SYSRET semantics: RCX and R11 come back as RIP and the RFLAGS resumed with (Xen
            // returns such a frame with SYSRET, which loads R11 into RFLAGS).
            frame.rcx = rip;
            frame.r11 = frame.rflags;
        } else {
            frame.rcx = rcx;
            frame.r11 = r11;
        }
        *upcall_mask = u8::from(rfl & rflags::IF == 0);
        let change = match (self.kernel_mode, to_user) {
            (true, true) => ModeChange::ToUser,
            _ => ModeChange::None,
        };
        self.kernel_mode = !to_user;
        Ok(Ok(change))
    }
}

pub use crate::guest_access::is_canonical;

/// The ring-3 data and code descriptors of the hypervisor's fixed GDT (`FLAT_RING3_CS32`,
/// `FLAT_RING3_DS64`/`SS64`, `FLAT_RING3_CS64`), the only non-null selectors a guest can load.
pub const FLAT_RING3_SELECTORS: [u16; 3] = [0xe023, 0xe02b, 0xe033];

/// What `SEGBASE_GS_USER_SEL` loads into %gs for `sel`, as Xen's `do_set_segment_base`: a
/// non-null selector gets RPL 3, and one the CPU would refuse (no such descriptor, an LDT
/// selector: there is no LDT) is replaced by the null selector, as Xen's fix-up does.
pub fn user_data_selector(sel: u16) -> u16 {
    if sel <= 3 {
        return sel; // a null selector, loaded as given
    }
    let sel = sel | 3;
    if FLAT_RING3_SELECTORS.contains(&sel) {
        sel
    } else {
        0
    }
}

/// Whether the CPU can return to `frame` (its `iretq` would not fault in ring 0): a
/// canonical `rip`, and in 32-bit compatibility mode one within the 4 GiB code segment.
pub fn is_returnable(frame: &TrapFrame) -> bool {
    is_canonical(frame.rip)
        && (frame.cs != u64::from(hypercall_abi::arch::FLAT_RING3_CS32) || frame.rip <= u64::from(u32::MAX))
}

/// Xen's `set_time_scale`: `(tsc_to_system_mul, tsc_shift)` such that
/// `ns = ((delta << shift) * mul) >> 32` (a negative shift shifts right).
pub fn tsc_scale(tsc_hz: u64) -> (u32, i8) {
    let mut tps = tsc_hz.max(1);
    let mut shift: i8 = 0;
    while tps > 2_000_000_000 {
        tps >>= 1;
        shift -= 1;
    }
    while tps <= 1_000_000_000 {
        tps <<= 1;
        shift += 1;
    }
    (((1_000_000_000u128 << 32) / tps as u128) as u32, shift)
}

/// Whether a one-shot timer's deadline `deadline_ns` has come at system time `now_ns`. Xen's
/// times are signed (`s_time_t`): a guest's deadline of 2^63 or more is in the past, so it
/// fires at once rather than never.
pub fn deadline_passed(deadline_ns: u64, now_ns: u64) -> bool {
    (deadline_ns as i64) <= (now_ns as i64)
}

/// A periodic timer set (again) to `period_ns` at `now_ns`, its last event at `last_ns`
/// (Xen's `vcpu_set_periodic_timer` then `vcpu_periodic_timer_work`): it keeps its phase,
/// and fires at once if a whole period has passed since the last event, so re-arming it
/// more often than its period cannot keep it from firing. Returns whether to fire now, and
/// the last event and next expiry to keep.
pub fn periodic_rearm(last_ns: u64, period_ns: u64, now_ns: u64) -> (bool, u64, u64) {
    // The period is the guest's (any u64 of at least 1 ms): saturate, or a huge one would
    // wrap into the past and fire on every tick.
    let next = last_ns.saturating_add(period_ns);
    if now_ns >= next {
        (true, now_ns, now_ns.saturating_add(period_ns))
    } else {
        (false, last_ns, next)
    }
}

/// `ticks` of a `tsc_hz` TSC in nanoseconds, rounded down: exactly
/// `ticks * 10^9 / tsc_hz` truncated to 64 bits, computed with two 64-bit divisions instead of
/// a 128-bit one (a `__udivti3` call), because system time is read on every context switch.
/// With `ticks = q * hz + r`, the quotient is `q * 10^9 + r * 10^9 / hz`, and `r * 10^9`
/// fits in 64 bits for any TSC below 18 GHz; faster ones take the 128-bit path.
pub fn tsc_ticks_to_ns(ticks: u64, tsc_hz: u64) -> u64 {
    const NS: u64 = 1_000_000_000;
    let hz = tsc_hz.max(1);
    if hz > u64::MAX / NS {
        return (u128::from(ticks) * u128::from(NS) / u128::from(hz)) as u64;
    }
    // Wrapping: the 128-bit quotient is truncated to 64 bits too, and both are exact mod 2^64.
    (ticks / hz).wrapping_mul(NS).wrapping_add(ticks % hz * NS / hz)
}

#[cfg(test)]
#[path = "vcpu_tests.rs"]
mod tests;
