//! User address spaces built the PV way: every table is a pool page filled while writable,
//! remapped read-only in the kernel's mapping, and validated by Xen when the L4 is pinned;
//! the L4 then serves as a process's user root (`MMUEXT_NEW_USER_BASEPTR`). The user half
//! holds only the user-program pages (read-only) and one stack page (writable): nothing of
//! the kernel.

use hypercall_abi::mm::{pte, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L4_TABLE};
use hypercall_abi::Errno;

use crate::arch::x86_64::user;
use crate::kernel::hyp;
use crate::kernel::mm::{self, alloc_frame, pte_ro, pte_rw, Frame};

/// Where the user programs are mapped (L4 slot 0, L3 slot 1, L2 slot 0).
pub const USER_BASE: u64 = 0x4000_0000;
/// The user stack page (L1 slot 256).
pub const USER_STACK: u64 = USER_BASE + 0x10_0000;

/// One process's user page tables.
#[derive(Clone, Copy, Debug)]
pub struct AddressSpace {
    /// The root (pinned L4).
    pub l4: Frame,
    /// The stack page (kernel alias, for inspection).
    pub stack: Frame,
}

/// Builds and pins a user address space.
pub fn build() -> Result<AddressSpace, Errno> {
    let (l4, l3, l2, l1, stack) = (
        alloc_frame().ok_or(Errno::ENOMEM)?,
        alloc_frame().ok_or(Errno::ENOMEM)?,
        alloc_frame().ok_or(Errno::ENOMEM)?,
        alloc_frame().ok_or(Errno::ENOMEM)?,
        alloc_frame().ok_or(Errno::ENOMEM)?,
    );
    let (text, len) = user::user_text();
    // SAFETY: all five are fresh writable pool pages, exclusively ours.
    unsafe {
        let e = l1.entries();
        for (i, entry) in e.iter_mut().take((len / 4096) as usize).enumerate() {
            *entry = pte_ro(mm::va_to_mfn(text + 4096 * i as u64), pte::USER);
        }
        e[256] = pte_rw(stack.mfn, pte::USER);
        l2.entries()[0] = pte_rw(l1.mfn, pte::USER);
        l3.entries()[1] = pte_rw(l2.mfn, pte::USER);
        l4.entries()[0] = pte_rw(l3.mfn, pte::USER);
    }
    for t in [l1, l2, l3, l4] {
        mm::make_readonly(t.va)?;
    }
    // SAFETY: pinning validates the tables; nothing is loaded yet.
    unsafe { hyp::mmuext1(MMUEXT_PIN_L4_TABLE, l4.mfn)? };
    Ok(AddressSpace { l4, stack })
}

impl AddressSpace {
    /// Makes this the user root for the next return to user mode.
    pub fn activate(&self) -> Result<u64, Errno> {
        // SAFETY: a pinned, validated L4 that maps only user pages.
        unsafe { hyp::mmuext1(MMUEXT_NEW_USER_BASEPTR, self.l4.mfn) }
    }
}
