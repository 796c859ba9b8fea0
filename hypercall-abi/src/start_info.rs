//! `start_info` (`xen.h`): the page a PV guest finds at `rsi` when it starts.

/// Size of the command line buffer in [`StartInfo::cmd_line`] (`MAX_GUEST_CMDLINE`).
pub const MAX_GUEST_CMDLINE: usize = 1024;

/// `SIF_PRIVILEGED`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: the domain is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: `mod_start` is a multiboot module package.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN`: `mod_start` holds a PFN, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: the tools understand a virtually mapped P2M.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: byte reserved for power-management options.
pub const SIF_PM_MASK: u32 = 0xff << 8;

/// The console part of [`StartInfo`] for a domU: the PV console ring and its event channel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartInfoConsoleDomU {
    /// Machine frame number of the console ring page.
    pub mfn: u64,
    /// Event channel bound to the console backend.
    pub evtchn: u32,
}

/// The console part of [`StartInfo`] for dom0: where `dom0_vga_console_info` is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartInfoConsoleDom0 {
    /// Offset of `dom0_vga_console_info` from the start of `start_info` (Xen: 1168).
    pub info_off: u32,
    /// Size of that structure (Xen: 40).
    pub info_size: u32,
}

/// `start_info.console`: which member is valid depends on [`SIF_INITDOMAIN`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union StartInfoConsole {
    /// Valid for a domU.
    pub dom_u: StartInfoConsoleDomU,
    /// Valid for dom0.
    pub dom0: StartInfoConsoleDom0,
}

impl core::fmt::Debug for StartInfoConsole {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: `dom0` is the smaller member (bytes 0..8, plain integers): whichever member
        // was written, those bytes are initialised. (`dom_u`'s bytes 8..12 are not after a
        // `dom0` write, so it is not read here.)
        let dom0 = unsafe { self.dom0 };
        f.debug_struct("StartInfoConsole").field("as dom0 (first 8 bytes)", &dom0).finish()
    }
}

/// `struct start_info` (1168 bytes). Pointers here are guest virtual addresses unless the field
/// says "machine".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    /// `"xen-<version>-<platform>"`, NUL-terminated, e.g. `"xen-3.0-x86_64"`.
    pub magic: [u8; 32],
    /// Total pages allocated to this domain.
    pub nr_pages: u64,
    /// Machine address of the shared_info page (not mapped: map it yourself).
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Machine frame of the xenstore ring page (0 for dom0).
    pub store_mfn: u64,
    /// Event channel of xenstore.
    pub store_evtchn: u32,
    /// Console description (domU ring or dom0 VGA info).
    pub console: StartInfoConsole,
    /// Virtual address of the bootstrap L4 page table.
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// Virtual address of the P2M list (`u64` MFN per PFN).
    pub mfn_list: u64,
    /// Virtual address of the boot module (a PFN if [`SIF_MOD_START_PFN`]).
    pub mod_start: u64,
    /// Size of the boot module in bytes.
    pub mod_len: u64,
    /// NUL-terminated command line.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First PFN of the frames backing an `INIT_P2M` mapping.
    pub first_p2m_pfn: u64,
    /// Number of those frames.
    pub nr_p2m_frames: u64,
}

impl StartInfo {
    /// An all-zero `start_info` (what a builder starts from).
    pub const fn zeroed() -> Self {
        Self {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console: StartInfoConsole { dom_u: StartInfoConsoleDomU { mfn: 0, evtchn: 0 } },
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }

    /// The magic string up to its NUL (bytes; not necessarily UTF-8 if the page is garbage).
    pub fn magic_bytes(&self) -> &[u8] {
        until_nul(&self.magic)
    }

    /// The command line up to its NUL.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        until_nul(&self.cmd_line)
    }

    /// Whether this is the initial domain (`SIF_INITDOMAIN`).
    pub const fn is_initdomain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}

/// The start-info magic prefix every 64-bit PV guest sees (`"xen-3.0-x86_64"`; dom0 kernels
/// with a `PAE_MODE` note see a trailing `p`).
pub const START_INFO_MAGIC_X86_64: &[u8] = b"xen-3.0-x86_64";

const _: () = assert!(core::mem::size_of::<StartInfo>() == 1168);
const _: () = assert!(core::mem::offset_of!(StartInfo, flags) == 48);
const _: () = assert!(core::mem::offset_of!(StartInfo, console) == 72);
const _: () = assert!(core::mem::offset_of!(StartInfo, cmd_line) == 128);
const _: () = assert!(core::mem::offset_of!(StartInfo, nr_p2m_frames) == 1160);
const _: () = assert!(core::mem::size_of::<StartInfoConsole>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_and_magic_stop_at_nul() {
        let mut si = StartInfo::zeroed();
        si.magic[..14].copy_from_slice(START_INFO_MAGIC_X86_64);
        si.cmd_line[..9].copy_from_slice(b"role=demo");
        si.flags = SIF_PRIVILEGED | SIF_INITDOMAIN;
        assert_eq!(si.magic_bytes(), b"xen-3.0-x86_64");
        assert_eq!(si.cmd_line_bytes(), b"role=demo");
        assert!(si.is_initdomain());
    }
}
