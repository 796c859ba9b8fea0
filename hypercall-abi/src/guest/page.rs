//! Hypercalls through the hypercall page: `call page + 32 * nr`. The stub saves `rcx`/`r11`
//! itself and issues `syscall`; this is how Linux makes hypercalls.

use core::arch::asm;

use crate::hypercall::{hypercall_stub, HYPERCALL_STUB_SIZE, IRET};

/// A hypercall page that the hypervisor has filled (declared with
/// `XEN_ELFNOTE_HYPERCALL_PAGE`).
#[derive(Clone, Copy, Debug)]
pub struct HypercallPage {
    base: u64,
}

impl HypercallPage {
    /// Wraps the page at virtual address `base`.
    ///
    /// # Safety
    /// `base` must be the page-aligned address of a hypercall page the hypervisor has filled,
    /// mapped executable for as long as the value is used.
    pub const unsafe fn new(base: u64) -> Self {
        Self { base }
    }

    /// The page's address.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The 32 bytes of stub `nr` (taken modulo 128, the page's stub count).
    pub fn stub_bytes(&self, nr: u64) -> &[u8; HYPERCALL_STUB_SIZE] {
        // SAFETY: `new`'s contract: the page is mapped and readable; nr < 128 keeps the
        // 32-byte stub inside it.
        unsafe { &*((self.base + (nr % 128) * HYPERCALL_STUB_SIZE as u64) as *const _) }
    }

    /// Whether stub `nr` holds exactly the bytes Xen writes for a 64-bit PV guest.
    pub fn stub_is_standard(&self, nr: u32) -> bool {
        let stub = self.stub_bytes(nr as u64);
        if nr as u64 == IRET {
            return stub[..11] == crate::hypercall::IRET_STUB;
        }
        stub[..14] == hypercall_stub(nr) && stub[14..].iter().all(|&b| b == 0xcc)
    }

    /// Hypercall `nr` with up to five arguments, through stub `nr`.
    ///
    /// # Safety
    /// As [`super::raw::hypercall5`]; `nr` must be below 128 (the page holds 128 stubs) and
    /// must not be `iret` (that stub does not return).
    #[inline(always)]
    pub unsafe fn call5(&self, nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
        let ret: i64;
        let target = self.base + nr * HYPERCALL_STUB_SIZE as u64;
        // SAFETY: the stub is code the hypervisor wrote (contract of `new`); it pushes onto our
        // stack (no red zone on this target), saves rcx/r11 and returns with `ret`.
        unsafe {
            asm!("call {t}", t = in(reg) target,
                 inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _,
                 inlateout("r10") a4 => _, inlateout("r8") a5 => _, lateout("rax") ret,
                 lateout("rcx") _, lateout("r11") _);
        }
        ret
    }
}
