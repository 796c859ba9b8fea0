//! Reading and checking a PV guest's ELF64 image and its `XEN_ELFNOTE_*` notes, as Xen's
//! `libelf` does for the domain builder (digest §1.1).
//!
//! The image is untrusted input: every offset, size and address is checked, and a refusal
//! names the exact reason. Parsing uses the `object` crate's bounds-checked ELF reader.

use object::elf::{FileHeader64, PT_LOAD, PT_NOTE, SHT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::LittleEndian as LE;

/// Most `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 16;
/// Start of Xen's reserved hole (PML4 slots 256-271).
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// End of Xen's reserved hole.
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
/// Top of the canonical lower half.
pub const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;

/// ELF note types the builder reads (`xen/elfnote.h`).
pub mod note {
    /// `XEN_ELFNOTE_ENTRY`.
    pub const ENTRY: u32 = 1;
    /// `XEN_ELFNOTE_HYPERCALL_PAGE`.
    pub const HYPERCALL_PAGE: u32 = 2;
    /// `XEN_ELFNOTE_VIRT_BASE`.
    pub const VIRT_BASE: u32 = 3;
    /// `XEN_ELFNOTE_PADDR_OFFSET`.
    pub const PADDR_OFFSET: u32 = 4;
    /// `XEN_ELFNOTE_XEN_VERSION`.
    pub const XEN_VERSION: u32 = 5;
    /// `XEN_ELFNOTE_GUEST_OS`.
    pub const GUEST_OS: u32 = 6;
    /// `XEN_ELFNOTE_LOADER`.
    pub const LOADER: u32 = 8;
    /// `XEN_ELFNOTE_PAE_MODE`.
    pub const PAE_MODE: u32 = 9;
    /// `XEN_ELFNOTE_FEATURES`.
    pub const FEATURES: u32 = 10;
    /// `XEN_ELFNOTE_INIT_P2M`.
    pub const INIT_P2M: u32 = 15;
    /// `XEN_ELFNOTE_SUPPORTED_FEATURES`.
    pub const SUPPORTED_FEATURES: u32 = 17;
}

/// One loadable segment, with its guest virtual placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest virtual address (`p_paddr` + virt_offset, as Xen places segments).
    pub vaddr: u64,
    /// Offset of the file bytes.
    pub file_offset: u64,
    /// Bytes copied from the file.
    pub file_size: u64,
    /// Bytes in memory; the tail past `file_size` is zeroed.
    pub mem_size: u64,
}

/// Everything the builder needs from a checked image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestImage<'a> {
    /// The loadable segments.
    pub segments: heapless::Vec<Segment, MAX_SEGMENTS>,
    /// First virtual byte of the kernel.
    pub kernel_start: u64,
    /// One past the last virtual byte of the kernel.
    pub kernel_end: u64,
    /// Entry point.
    pub entry: u64,
    /// `VIRT_BASE` (0 when absent).
    pub virt_base: u64,
    /// Virtual address of the hypercall page, if the image asks for one.
    pub hypercall_page: Option<u64>,
    /// Whether `PAE_MODE` was given (dom0's start-info magic gains a `p`).
    pub pae_mode: bool,
    /// `GUEST_OS` text.
    pub guest_os: &'a str,
    /// `FEATURES` text.
    pub features: &'a str,
    /// `FEATURES` requires `!dom0`: the kernel cannot run unprivileged (libxenguest's
    /// `xc_dom_parse_elf_kernel` refuses it as a domU).
    pub requires_dom0: bool,
    /// A `SUPPORTED_FEATURES` note is present and neither it nor `FEATURES` names
    /// `XENFEAT_dom0`: the kernel cannot be dom0 (Xen's `dom0_construct_pv` refuses it).
    pub lacks_dom0_support: bool,
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The ELF headers are malformed or truncated (from the ELF reader).
    Malformed(&'static str),
    /// Not ELF64 / little-endian / x86_64 / executable.
    WrongKind(&'static str),
    /// No `PT_LOAD` segment.
    NoSegments,
    /// More `PT_LOAD` segments than supported.
    TooManySegments,
    /// A segment's file bytes lie past the end of the file, or `filesz > memsz`.
    TruncatedSegment {
        /// Segment index among the loadable ones.
        index: usize,
    },
    /// Two segments overlap in memory.
    OverlappingSegments {
        /// First segment.
        first: usize,
        /// Second segment.
        second: usize,
    },
    /// The kernel's range touches the hypervisor's hole or is not canonical.
    HypervisorRange {
        /// The offending range's start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// No Xen notes at all (not a PV kernel).
    NoXenNotes,
    /// `XEN_VERSION` missing or not `xen-3.0*`.
    BadXenVersion,
    /// `LOADER` is not `generic` and `GUEST_OS` is not `linux`.
    BadLoader,
    /// A required feature (`!name`) we do not support or do not know.
    UnsupportedRequiredFeature,
    /// The entry point lies outside the kernel.
    EntryOutsideKernel(u64),
    /// The hypercall page lies outside the kernel or is not page aligned.
    BadHypercallPage(u64),
    /// `VIRT_BASE` lies above the kernel's start.
    VirtBaseAboveKernel,
    /// `VIRT_BASE` is not page aligned (the bootstrap region is mapped page by page from it).
    VirtBaseUnaligned(u64),
    /// `PADDR_OFFSET` without `VIRT_BASE`.
    PaddrOffsetWithoutVirtBase,
    /// `INIT_P2M` asks for the P2M list inside the kernel.
    InitP2mInsideKernel(u64),
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(w) => write!(f, "malformed ELF: {w}"),
            Self::WrongKind(w) => write!(f, "not a 64-bit x86 PV kernel: {w}"),
            Self::NoSegments => write!(f, "no PT_LOAD segment"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} PT_LOAD segments"),
            Self::TruncatedSegment { index } => {
                write!(f, "segment {index} is truncated (file bytes past the end of the image, or filesz > memsz)")
            }
            Self::OverlappingSegments { first, second } => {
                write!(f, "segments {first} and {second} overlap")
            }
            Self::HypervisorRange { start, end } => write!(
                f,
                "kernel range {start:#x}-{end:#x} overlaps the hypervisor's reserved range or is not canonical"
            ),
            Self::NoXenNotes => write!(f, "no Xen ELF notes (XEN_ELFNOTE_*): not a PV kernel"),
            Self::BadXenVersion => write!(f, "XEN_ELFNOTE_XEN_VERSION missing or not 'xen-3.0'"),
            Self::BadLoader => write!(f, "XEN_ELFNOTE_LOADER missing or not 'generic'"),
            Self::UnsupportedRequiredFeature => write!(f, "requires an unsupported feature"),
            Self::EntryOutsideKernel(e) => write!(f, "entry point {e:#x} outside the kernel"),
            Self::BadHypercallPage(a) => write!(f, "hypercall page {a:#x} outside the kernel or unaligned"),
            Self::VirtBaseAboveKernel => write!(f, "VIRT_BASE lies above the kernel start"),
            Self::VirtBaseUnaligned(v) => write!(f, "VIRT_BASE {v:#x} is not page aligned"),
            Self::PaddrOffsetWithoutVirtBase => write!(f, "PADDR_OFFSET given without VIRT_BASE"),
            Self::InitP2mInsideKernel(a) => write!(f, "INIT_P2M {a:#x} lies inside the kernel"),
        }
    }
}

/// Notes gathered from the image.
#[derive(Default)]
struct Notes<'a> {
    any: bool,
    entry: Option<u64>,
    hypercall_page: Option<u64>,
    init_p2m: Option<u64>,
    virt_base: Option<u64>,
    paddr_offset: Option<u64>,
    xen_version: Option<&'a str>,
    guest_os: Option<&'a str>,
    loader: Option<&'a str>,
    pae_mode: bool,
    features: Option<&'a str>,
    /// `SUPPORTED_FEATURES` words (OR-ed), if the note is present.
    supported_features: Option<u32>,
}

fn note_num(desc: &[u8]) -> u64 {
    match desc.len() {
        1 => desc[0] as u64,
        2 => u16::from_le_bytes([desc[0], desc[1]]) as u64,
        4 => u32::from_le_bytes([desc[0], desc[1], desc[2], desc[3]]) as u64,
        8 => u64::from_le_bytes(desc.try_into().unwrap_or_default()),
        _ => 0, // as Xen: any other size reads as 0
    }
}

fn note_str(desc: &[u8]) -> &str {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    core::str::from_utf8(&desc[..end]).unwrap_or("")
}

impl<'a> Notes<'a> {
    fn take(&mut self, kind: u32, desc: &'a [u8]) {
        self.any = true;
        match kind {
            note::ENTRY => self.entry = Some(note_num(desc)),
            note::HYPERCALL_PAGE => self.hypercall_page = Some(note_num(desc)),
            note::INIT_P2M => self.init_p2m = Some(note_num(desc)),
            note::VIRT_BASE => self.virt_base = Some(note_num(desc)),
            note::PADDR_OFFSET => self.paddr_offset = Some(note_num(desc)),
            note::XEN_VERSION => self.xen_version = Some(note_str(desc)),
            note::GUEST_OS => self.guest_os = Some(note_str(desc)),
            note::LOADER => self.loader = Some(note_str(desc)),
            // libelf: only "yes" (extended CR3) or a "bimodal" kernel counts as PAE.
            note::PAE_MODE => self.pae_mode = matches!(note_str(desc), s if s == "yes" || s.contains("bimodal")),
            // libelf's `elf_note_numeric_array(.., 4, 0)`: the first 32-bit word of a note
            // whose size is a multiple of 4, else 0 (one submap: XENFEAT_NR_SUBMAPS = 1).
            note::SUPPORTED_FEATURES => {
                let word = match desc.get(..4) {
                    Some(w) if desc.len().is_multiple_of(4) => u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
                    _ => 0,
                };
                *self.supported_features.get_or_insert(0) |= word;
            }
            note::FEATURES => self.features = Some(note_str(desc)),
            _ => {} // unknown notes are ignored, as Xen does
        }
    }
}

/// `XENFEAT_dom0`, the bit of `SUPPORTED_FEATURES` a dom0 kernel must set.
const XENFEAT_DOM0: u32 = 11;

/// Features a PV kernel may require with `!name` that this hypervisor honours.
const SUPPORTED_REQUIRED: [&str; 3] = ["writable_page_tables", "pae_pgdir_above_4gb", "dom0"];

/// Parses and checks `data`.
pub fn parse(data: &[u8]) -> Result<GuestImage<'_>, ImageError> {
    let hdr = FileHeader64::<LE>::parse(data).map_err(|_| ImageError::Malformed("truncated or invalid ELF header"))?;
    let ident = hdr.e_ident();
    if ident.class != object::elf::ELFCLASS64 {
        return Err(ImageError::WrongKind("not ELF64"));
    }
    if ident.data != object::elf::ELFDATA2LSB {
        return Err(ImageError::WrongKind("not little-endian"));
    }
    let endian = hdr.endian().map_err(|_| ImageError::WrongKind("not little-endian"))?;
    if hdr.e_machine(endian) != object::elf::EM_X86_64 {
        return Err(ImageError::WrongKind("e_machine is not x86_64"));
    }
    if hdr.e_type(endian) != object::elf::ET_EXEC {
        return Err(ImageError::WrongKind("not an executable (ET_EXEC)"));
    }
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(|_| ImageError::Malformed("program headers past the end of the image (truncated?)"))?;

    let mut notes = Notes::default();
    for ph in phdrs.iter().filter(|p| p.p_type(endian) == PT_NOTE && p.p_offset(endian) != 0) {
        let bad_notes = |_| ImageError::Malformed("PT_NOTE segment out of bounds or malformed");
        if let Some(mut it) = ph.notes(endian, data).map_err(bad_notes)? {
            while let Some(n) = it.next().map_err(bad_notes)? {
                if n.name() == b"Xen" {
                    notes.take(n.n_type(endian), n.desc());
                }
            }
        }
    }
    if !notes.any {
        // Xen falls back to SHT_NOTE sections when no PT_NOTE holds Xen notes.
        if let Ok(sections) = hdr.sections(endian, data) {
            for sh in sections.iter().filter(|s| s.sh_type(endian) == SHT_NOTE) {
                if let Ok(Some(mut it)) = sh.notes(endian, data) {
                    while let Ok(Some(n)) = it.next() {
                        if n.name() == b"Xen" {
                            notes.take(n.n_type(endian), n.desc());
                        }
                    }
                }
            }
        }
    }
    if !notes.any {
        return Err(ImageError::NoXenNotes);
    }
    if !notes.xen_version.is_some_and(|v| v.starts_with("xen-3.0")) {
        return Err(ImageError::BadXenVersion);
    }
    let linux = notes.guest_os.is_some_and(|o| o.starts_with("linux"));
    if !linux && !notes.loader.is_some_and(|l| l.starts_with("generic")) {
        return Err(ImageError::BadLoader);
    }
    let features = notes.features.unwrap_or("");
    for f in features.split('|').filter_map(|f| f.strip_prefix('!')) {
        if !SUPPORTED_REQUIRED.contains(&f) {
            return Err(ImageError::UnsupportedRequiredFeature);
        }
    }
    let requires_dom0 = features.split('|').any(|f| f == "!dom0");
    let names_dom0 = features.split('|').any(|f| f.trim_start_matches('!') == "dom0");
    let lacks_dom0_support =
        notes.supported_features.is_some_and(|bits| bits & (1 << XENFEAT_DOM0) == 0) && !names_dom0;
    if notes.paddr_offset.is_some() && notes.virt_base.is_none() {
        return Err(ImageError::PaddrOffsetWithoutVirtBase);
    }
    let virt_base = notes.virt_base.unwrap_or(0);
    if virt_base % 4096 != 0 {
        return Err(ImageError::VirtBaseUnaligned(virt_base));
    }
    let virt_offset = virt_base.wrapping_sub(notes.paddr_offset.unwrap_or(0));

    let mut segments: heapless::Vec<Segment, MAX_SEGMENTS> = heapless::Vec::new();
    for ph in phdrs.iter().filter(|p| p.p_type(endian) == PT_LOAD) {
        let index = segments.len();
        let file_offset = ph.p_offset(endian);
        let file_size = ph.p_filesz(endian);
        let mem_size = ph.p_memsz(endian);
        let file_end = file_offset.checked_add(file_size);
        if file_size > mem_size || file_end.is_none_or(|e| e > data.len() as u64) {
            return Err(ImageError::TruncatedSegment { index });
        }
        let vaddr = ph.p_paddr(endian).wrapping_add(virt_offset);
        let seg = Segment { vaddr, file_offset, file_size, mem_size };
        segments.push(seg).map_err(|_| ImageError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(ImageError::NoSegments);
    }
    let mut kernel_start = u64::MAX;
    let mut kernel_end = 0;
    for (i, s) in segments.iter().enumerate() {
        let end =
            s.vaddr.checked_add(s.mem_size).ok_or(ImageError::HypervisorRange { start: s.vaddr, end: u64::MAX })?;
        check_guest_range(s.vaddr, end)?;
        for (j, t) in segments.iter().enumerate().skip(i + 1) {
            if s.vaddr < t.vaddr.saturating_add(t.mem_size) && t.vaddr < end && s.mem_size > 0 && t.mem_size > 0 {
                return Err(ImageError::OverlappingSegments { first: i, second: j });
            }
        }
        kernel_start = kernel_start.min(s.vaddr);
        kernel_end = kernel_end.max(end);
    }
    check_guest_range(kernel_start, kernel_end)?;
    if virt_base > kernel_start {
        return Err(ImageError::VirtBaseAboveKernel);
    }
    let entry = notes.entry.unwrap_or(hdr.e_entry(endian));
    if !(kernel_start..kernel_end).contains(&entry) {
        return Err(ImageError::EntryOutsideKernel(entry));
    }
    // Xen refuses a P2M placed over the kernel. Elsewhere the note is not honoured: the list
    // stays in the bootstrap region, where `start_info.mfn_list` says it is (README, limits).
    if let Some(p2m) = notes.init_p2m.filter(|a| (kernel_start..kernel_end).contains(a)) {
        return Err(ImageError::InitP2mInsideKernel(p2m));
    }
    if let Some(hp) = notes.hypercall_page {
        if hp % 4096 != 0
            || !(kernel_start..kernel_end).contains(&hp)
            || hp.checked_add(4096).is_none_or(|e| e > kernel_end)
        {
            return Err(ImageError::BadHypercallPage(hp));
        }
    }
    Ok(GuestImage {
        segments,
        kernel_start,
        kernel_end,
        entry,
        virt_base,
        hypercall_page: notes.hypercall_page,
        pae_mode: notes.pae_mode,
        guest_os: notes.guest_os.unwrap_or(""),
        features,
        requires_dom0,
        lacks_dom0_support,
    })
}

/// A range a guest may own: canonical and clear of the hypervisor's hole.
fn check_guest_range(start: u64, end: u64) -> Result<(), ImageError> {
    let err = ImageError::HypervisorRange { start, end };
    let in_lower = end <= LOWER_HALF_END;
    let in_upper = start >= HYPERVISOR_VIRT_END;
    if start > end || !(in_lower || in_upper) {
        return Err(err);
    }
    Ok(())
}

#[cfg(test)]
#[path = "elf_image_tests.rs"]
mod tests;
