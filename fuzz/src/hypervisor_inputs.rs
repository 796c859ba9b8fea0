//! Fuzz-target bodies for what the hypervisor reads from guests and from the boot bundle: a
//! guest kernel's ELF image and notes with the bootstrap layout computed from it, the
//! privileged instructions it emulates, and the bundle's `cpio` archive, `xl.cfg` files and
//! the hypervisor command line. Each asserts the invariants the hypervisor relies on after a
//! successful parse (a panic is a finding) and returns a bitmap of the outcomes it reached.

use hypervisor::cmdline::CommandLine;
use hypervisor::domain_layout::{Layout, LayoutInput, PAGE};
use hypervisor::elf_image::{self, GuestImage, ImageError, MAX_SEGMENTS};
use hypervisor::emulate::{decode, decode_forced, MAX_INSN_LEN};
use hypervisor::guest_access::guest_range_ok;
use hypervisor::xlcfg::{plan_domains_from_archive, DomainConfig};

/// Reads little-endian integers off the input, yielding zeroes once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let Some((b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        *b
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(core::array::from_fn(|_| self.byte()))
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// Addresses a generated image picks from: typical kernel placements, the edges of the
/// hypervisor's hole and of canonical space, and whatever the input says.
const ADDRESSES: [u64; 8] = [
    0xffff_ffff_8000_0000,
    0x40_0000,
    0xffff_8000_0000_0000 - 0x1000,
    0xffff_8800_0000_0000,
    0x0000_7fff_ffff_f000,
    0xffff_ffff_ffff_f000,
    0,
    0x1000,
];

fn address(s: &mut Script) -> u64 {
    let pick = s.byte();
    let base = ADDRESSES[usize::from(pick & 7)];
    if pick & 8 != 0 {
        s.u64()
    } else {
        base.wrapping_add(u64::from(s.byte()) << 12)
    }
}

/// An ELF64 x86_64 executable generated from the script: up to 6 program headers (`PT_LOAD`
/// or `PT_NOTE`), one note segment of Xen notes whose kinds and values the script picks
/// (valid `XEN_VERSION`/`LOADER` most of the time, so the checks after them are reached),
/// and file bytes behind them.
fn generated_elf(s: &mut Script) -> Vec<u8> {
    let mut notes = Vec::new();
    let mut note = |kind: u32, desc: &[u8]| {
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        notes.extend_from_slice(&kind.to_le_bytes());
        notes.extend_from_slice(b"Xen\0");
        notes.extend_from_slice(desc);
        notes.resize(notes.len().next_multiple_of(4), 0);
    };
    let flags = s.byte();
    if flags & 1 == 0 {
        note(elf_image::note::XEN_VERSION, b"xen-3.0\0");
    }
    if flags & 2 == 0 {
        note(elf_image::note::LOADER, b"generic\0");
    }
    for _ in 0..s.byte() % 6 {
        let kind = u32::from(s.byte() % 18);
        let desc = match s.byte() % 4 {
            0 => address(s).to_le_bytes().to_vec(),
            1 => b"!writable_page_tables|pae_pgdir_above_4gb\0".to_vec(),
            2 => b"!auto_translated_physmap\0".to_vec(),
            _ => {
                let n = usize::from(s.byte() % 12);
                s.take(n).to_vec()
            }
        };
        note(kind, &desc);
    }
    let nr_ph = 1 + usize::from(s.byte() % 6);
    let ph_at = 64;
    let notes_at = ph_at + nr_ph * 56;
    let body_at = notes_at + notes.len();
    let entry = address(s);
    let mut out = vec![0u8; body_at];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    let put16 = |o: &mut Vec<u8>, at: usize, v: u16| o[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |o: &mut Vec<u8>, at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut out, 16, 2); // ET_EXEC
    put16(&mut out, 18, 62); // EM_X86_64
    put32(&mut out, 20, 1);
    put64(&mut out, 24, entry);
    put64(&mut out, 32, ph_at as u64);
    put16(&mut out, 52, 64);
    put16(&mut out, 54, 56);
    put16(&mut out, 56, nr_ph as u16);
    let body_len = usize::from(s.byte()) * 16;
    for i in 0..nr_ph {
        let at = ph_at + i * 56;
        let is_note = i == 0;
        put32(&mut out, at, if is_note { 4 } else { 1 });
        let (offset, filesz, memsz) = if is_note {
            (notes_at as u64, notes.len() as u64, notes.len() as u64)
        } else {
            let off = body_at as u64 + u64::from(s.byte()) * 16;
            let filesz = u64::from(s.byte()) * 16;
            let memsz = match s.byte() % 4 {
                0 => filesz,
                1 => filesz + (u64::from(s.byte()) << 12),
                2 => s.u64(),
                _ => filesz.saturating_sub(1),
            };
            (off, filesz, memsz)
        };
        put64(&mut out, at + 8, offset);
        let paddr = if is_note { 0 } else { address(s) };
        put64(&mut out, at + 16, paddr);
        put64(&mut out, at + 24, paddr);
        put64(&mut out, at + 32, filesz);
        put64(&mut out, at + 40, memsz);
    }
    out[notes_at..body_at].copy_from_slice(&notes);
    out.resize(body_at + body_len, 0x90);
    out
}

/// What a successful parse promises the domain builder.
fn check_image(data: &[u8], image: &GuestImage) {
    assert!(!image.segments.is_empty() && image.segments.len() <= MAX_SEGMENTS);
    assert!(image.kernel_start < image.kernel_end || image.segments.iter().all(|s| s.mem_size == 0));
    for (i, s) in image.segments.iter().enumerate() {
        let file_end = s.file_offset.checked_add(s.file_size).expect("file range overflows");
        assert!(file_end <= data.len() as u64, "segment {i} reads past the image");
        assert!(s.file_size <= s.mem_size, "segment {i}: filesz > memsz");
        let end = s.vaddr.checked_add(s.mem_size).expect("segment end overflows");
        assert!(image.kernel_start <= s.vaddr && end <= image.kernel_end, "segment {i} outside the kernel");
        for t in &image.segments[i + 1..] {
            let overlap = s.vaddr < t.vaddr + t.mem_size && t.vaddr < end && s.mem_size > 0 && t.mem_size > 0;
            assert!(!overlap, "segments overlap");
        }
    }
    let len = image.kernel_end - image.kernel_start;
    assert!(len == 0 || guest_range_ok(image.kernel_start, len as usize), "kernel in the hypervisor's range");
    assert!(image.virt_base <= image.kernel_start && image.virt_base.is_multiple_of(PAGE));
    assert!((image.kernel_start..image.kernel_end).contains(&image.entry), "entry outside the kernel");
    if let Some(hp) = image.hypercall_page {
        assert!(hp % PAGE == 0 && hp >= image.kernel_start && hp + PAGE <= image.kernel_end);
    }
}

/// What a successful layout promises: every region page-aligned, in order, inside
/// `[v_start, v_end)`, which is guest-accessible and no larger than the domain.
fn check_layout(input: &LayoutInput, l: &Layout) {
    assert_eq!(l.v_start, input.virt_base);
    assert!(l.v_end > l.v_start && (l.v_end - l.v_start) / PAGE <= input.nr_pages);
    assert!(guest_range_ok(l.v_start, (l.v_end - l.v_start) as usize));
    assert!(input.kernel_end <= l.module.unwrap_or(l.p2m) && l.p2m < l.start_info);
    assert!(l.p2m + input.nr_pages * 8 <= l.start_info);
    assert!(l.start_info < l.pt_base && l.pt_base + l.nr_pt_frames * PAGE <= l.stack);
    assert!(l.stack + PAGE <= l.v_end);
    for va in
        [Some(l.p2m), Some(l.start_info), l.xenstore, l.console, Some(l.pt_base), Some(l.stack)].into_iter().flatten()
    {
        assert_eq!(va % PAGE, 0, "unaligned region {va:#x}");
        assert!((l.v_start..l.v_end).contains(&va));
    }
    assert_eq!(l.xenstore.is_some(), !input.is_dom0);
    assert_eq!(l.console.is_some(), !input.is_dom0);
}

fn image_bit(e: &ImageError) -> u64 {
    1 << match e {
        ImageError::Malformed(_) => 1,
        ImageError::WrongKind(_) => 2,
        ImageError::NoSegments => 3,
        ImageError::TooManySegments => 4,
        ImageError::TruncatedSegment { .. } => 5,
        ImageError::OverlappingSegments { .. } => 6,
        ImageError::HypervisorRange { .. } => 7,
        ImageError::NoXenNotes => 8,
        ImageError::BadXenVersion => 9,
        ImageError::BadLoader => 10,
        ImageError::UnsupportedRequiredFeature => 11,
        ImageError::EntryOutsideKernel(_) => 12,
        ImageError::BadHypercallPage(_) => 13,
        ImageError::VirtBaseAboveKernel => 14,
        ImageError::VirtBaseUnaligned(_) => 15,
        ImageError::PaddrOffsetWithoutVirtBase => 16,
        ImageError::InitP2mInsideKernel(_) => 17,
    }
}

/// A guest kernel image: the input as raw bytes, then an ELF generated from it (so the
/// checks behind a valid header are reached), each parsed as the domain builder does; an
/// accepted image then gets a bootstrap layout for a memory size and module the input picks.
pub fn guest_image(data: &[u8]) -> u64 {
    let mut seen = match elf_image::parse(data) {
        Ok(image) => {
            check_image(data, &image);
            1
        }
        Err(e) => image_bit(&e),
    };
    let mut s = Script(data);
    let elf = generated_elf(&mut s);
    match elf_image::parse(&elf) {
        Ok(image) => {
            seen |= 1 << 20;
            check_image(&elf, &image);
            let input = LayoutInput {
                virt_base: image.virt_base,
                kernel_start: image.kernel_start,
                kernel_end: image.kernel_end,
                module_len: u64::from(s.byte()) << (s.byte() % 40),
                nr_pages: s.u64() % (1 << 40),
                is_dom0: s.byte() & 1 == 0,
            };
            match Layout::compute(&input) {
                Ok(layout) => {
                    seen |= 1 << 21;
                    check_layout(&input, &layout);
                }
                Err(_) => seen |= 1 << 22,
            }
        }
        Err(e) => seen |= image_bit(&e) << 24,
    }
    seen
}

/// The privileged-instruction decoder at a guest's #GP or #UD: any bytes (as fetched from
/// guest memory, possibly fewer than an instruction) decode to nothing or to an instruction
/// no longer than the bytes and Xen's 15-byte limit.
pub fn privileged_insn(data: &[u8]) -> u64 {
    let mut seen = 0;
    for start in 0..data.len().min(32) {
        let bytes = &data[start..];
        if let Some((insn, len)) = decode(bytes) {
            assert!(len >= 1 && len <= bytes.len() && len <= MAX_INSN_LEN, "{insn:?} of length {len}");
            seen |= 1 << (len % 16);
        }
        if let Some(len) = decode_forced(bytes) {
            assert!(len <= bytes.len());
            seen |= 1 << 20;
        }
    }
    seen
}

/// `xl.cfg` lines a generated config picks from (the value, `{}`, from the input).
const CONFIG_LINES: [&str; 12] = [
    "name = \"{}\"",
    "memory = {}",
    "kernel = \"guest.elf\"",
    "kernel = \"{}\"",
    "extra = \"{}\"",
    "cpu_weight = {}",
    "cpus = {}",
    "vcpus = {}",
    "disk = [ \"{}\" ]",
    "vif = [ '{}', \"{}\" ]",
    "{} = {}",
    "{}",
];

/// A config text from the script: lines from [`CONFIG_LINES`] with input-chosen values
/// (numbers, names, or raw bytes as text), or raw text.
fn generated_config(s: &mut Script) -> String {
    let mut text = String::new();
    for _ in 0..s.byte() % 10 {
        let line = CONFIG_LINES[usize::from(s.byte()) % CONFIG_LINES.len()];
        let mut out = String::new();
        for (i, part) in line.split("{}").enumerate() {
            if i > 0 {
                let value = match s.byte() % 4 {
                    0 => s.u64().to_string(),
                    1 => u64::from(s.byte()).to_string(),
                    2 => format!("d{}", s.byte()),
                    _ => {
                        let n = usize::from(s.byte() % 24);
                        String::from_utf8_lossy(s.take(n)).into_owned()
                    }
                };
                out.push_str(&value);
            }
            out.push_str(part);
        }
        text.push_str(&out);
        text.push(if s.byte().is_multiple_of(8) { ';' } else { '\n' });
    }
    text
}

/// The boot bundle: the input as a `cpio` archive, then an archive holding a `dom0.cfg`
/// and two domU configs generated from the input and a kernel, planned as the hypervisor
/// plans its domains; each config also parsed alone; and one as the hypervisor's command
/// line.
pub fn boot_bundle(data: &[u8]) -> u64 {
    let mut seen = 0;
    if let Ok(outcomes) = plan_domains_from_archive(data) {
        seen |= 1 | u64::from(outcomes.iter().any(|o| o.result.is_ok())) << 1;
    }
    let mut s = Script(data);
    let configs = [generated_config(&mut s), generated_config(&mut s), generated_config(&mut s)];
    for (i, text) in configs.iter().enumerate() {
        let bit = 2 + 2 * i;
        match DomainConfig::parse(text, i == 0) {
            Ok(parsed) => {
                seen |= 1 << bit;
                assert!(parsed.config.memory_bytes() % PAGE == 0 && !parsed.config.name.is_empty());
                for w in &parsed.warnings {
                    let _ = format!("{}", w.in_file("x.cfg"));
                }
            }
            Err(e) => {
                seen |= 1 << (bit + 1);
                let _ = format!("{}", e.in_file("x.cfg"));
            }
        }
    }
    let archive = hypervisor::cpio::build(&[
        ("dom0.cfg", configs[0].as_bytes()),
        ("a.cfg", configs[1].as_bytes()),
        ("b.cfg", configs[2].as_bytes()),
        ("guest.elf", b"\x7fELF, not really"),
    ]);
    let outcomes = plan_domains_from_archive(&archive).expect("an archive we built is valid");
    assert_eq!(outcomes.len(), 3, "one outcome per config file");
    let mut ids = Vec::new();
    for o in &outcomes {
        if let Ok(spec) = &o.result {
            seen |= 1 << (10 + u32::from(spec.is_dom0));
            assert_eq!(spec.is_dom0, o.file == "dom0.cfg");
            assert!(spec.memory_bytes > 0 && spec.memory_bytes % PAGE == 0, "{} bytes", spec.memory_bytes);
            assert!(!ids.contains(&spec.domid), "domain id {} given twice", spec.domid);
            assert_eq!(spec.domid == 0, spec.is_dom0);
            ids.push(spec.domid);
        }
    }
    let line = CommandLine::parse(&configs[1]);
    seen |= u64::from(line.warnings().count() > 0) << 12;
    seen
}
