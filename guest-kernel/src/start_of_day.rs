//! Start of day: from the entry stub to the selected role and the final shutdown.

use hypercall_abi::start_info::StartInfo;
use hypercall_abi::{guest, version};

use crate::cmdline::{self, Options, ShutdownRequest};
use crate::console::CStr;
use crate::{console, println, roles};

/// The console sink of an initial domain: `console_io(CONSOLEIO_write)`.
fn console_io_sink(bytes: &[u8]) {
    // Nothing sensible to do if the console itself fails.
    let _ = guest::console_write(bytes);
}

/// What the hypervisor says about itself.
#[derive(Clone, Copy)]
pub struct HypervisorVersion {
    /// `XENVER_version` result (`major << 16 | minor`), or the error.
    pub raw: Result<u64, hypercall_abi::Errno>,
    /// `XENVER_extraversion` string.
    pub extra: version::XenExtraversion,
}

impl HypervisorVersion {
    /// Queries `XENVER_version` and `XENVER_extraversion`.
    pub fn query() -> Self {
        let mut extra: version::XenExtraversion = [0; 16];
        if guest::xen_version_into(version::XENVER_EXTRAVERSION, &mut extra).is_err() {
            extra = [0; 16];
        }
        Self { raw: guest::xen_version(), extra }
    }
}

impl core::fmt::Display for HypervisorVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.raw {
            Ok(v) => {
                let (major, minor) = version::split_version(v);
                write!(f, "{major}.{minor}{}", CStr(&self.extra))
            }
            Err(e) => write!(f, "unknown (xen_version {e})"),
        }
    }
}

/// Rust entry, called by `_start` with the `start_info` pointer Xen left in `rsi`.
///
/// # Safety
/// `start_info` must be the domain builder's `start_info` page, mapped for the kernel's life.
pub unsafe extern "C" fn kernel_entry(start_info: *const StartInfo) -> ! {
    console::set_sink(console_io_sink);
    // SAFETY: the domain builder maps start_info (1168 bytes) read-write at the address it
    // passes in rsi, for the whole bootstrap; nothing else aliases it mutably.
    let si = unsafe { &*start_info };
    let line = cmdline::as_text(si.cmd_line_bytes());
    let opts = match cmdline::parse(line) {
        Ok(o) => o,
        Err(e) => {
            println!("guest-kernel: bad command line ({e:?}); using defaults");
            Options::default()
        }
    };

    println!("guest-kernel: PV guest kernel starting");
    println!("guest-kernel: hypervisor version {}", HypervisorVersion::query());
    println!("guest-kernel: start_info magic \"{}\"", CStr(si.magic_bytes()));
    println!(
        "guest-kernel: memory {} pages ({} KiB), flags {:#x}{}",
        si.nr_pages,
        si.nr_pages * 4,
        si.flags,
        if si.is_initdomain() { " (initial domain)" } else { "" }
    );
    println!("guest-kernel: command line \"{}\"", line);
    println!("guest-kernel: role {}", opts.role.name());

    let request = roles::run(&opts, si);
    shutdown(request)
}

/// Asks the hypervisor to stop this domain for `request`; never returns.
pub fn shutdown(request: ShutdownRequest) -> ! {
    println!("guest-kernel: shutdown {}", request.name());
    let err = guest::sched_shutdown(request.reason());
    println!("guest-kernel: SCHEDOP_shutdown returned {err:?}; spinning");
    loop {
        let _ = guest::sched_yield();
        crate::arch::x86_64::relax();
    }
}
