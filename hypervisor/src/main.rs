//! The hypervisor binary: ring-0 entry, wiring of the arch layer to the generic logic.
#![no_std]
#![no_main]

mod arch;

use core::panic::PanicInfo;

#[no_mangle]
extern "C" fn hv_entry(start_info_phys: u32) -> ! {
    let _ = start_info_phys;
    unsafe {
        let msg = b"hello from hv\n";
        for &b in msg {
            core::arch::asm!("out dx, al", in("dx") 0x3f8u16, in("al") b);
        }
        core::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") 16u32);
    }
    loop {}
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    loop {}
}
