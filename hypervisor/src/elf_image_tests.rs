//! Host tests for the guest-image checks, on ELF files built in memory.

use super::*;

/// A minimal ELF64 writer: segments `(paddr, filesz, memsz)`, then notes `(type, desc)`.
pub(crate) struct ElfBuilder {
    pub segments: std::vec::Vec<(u64, u64, u64)>,
    pub notes: std::vec::Vec<(u32, std::vec::Vec<u8>)>,
    pub entry: u64,
    pub machine: u16,
    pub class: u8,
}

impl ElfBuilder {
    pub fn typical() -> Self {
        Self {
            segments: vec![(0x100000, 0x3000, 0x5000)],
            notes: vec![
                (note::GUEST_OS, b"test\0".to_vec()),
                (note::XEN_VERSION, b"xen-3.0\0".to_vec()),
                (note::LOADER, b"generic\0".to_vec()),
                (note::HYPERCALL_PAGE, 0x101000u64.to_le_bytes().to_vec()),
                (note::FEATURES, b"!writable_page_tables|pae_pgdir_above_4gb\0".to_vec()),
                (note::PAE_MODE, b"yes\0".to_vec()),
            ],
            entry: 0x100000,
            machine: 62,
            class: 2,
        }
    }

    pub fn build(&self) -> std::vec::Vec<u8> {
        let mut notes = std::vec::Vec::new();
        for (t, d) in &self.notes {
            notes.extend_from_slice(&4u32.to_le_bytes());
            notes.extend_from_slice(&(d.len() as u32).to_le_bytes());
            notes.extend_from_slice(&t.to_le_bytes());
            notes.extend_from_slice(b"Xen\0");
            notes.extend_from_slice(d);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        }
        let phnum = self.segments.len() + usize::from(!notes.is_empty());
        let data_start = 64 + 56 * phnum as u64;
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = self.class;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&2u16.to_le_bytes());
        out[18..20].copy_from_slice(&self.machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&self.entry.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        out[58..60].copy_from_slice(&64u16.to_le_bytes());
        let mut offset = data_start + notes.len() as u64;
        let mut phdr = |ty: u32, off: u64, addr: u64, filesz: u64, memsz: u64| {
            let mut p = vec![0u8; 56];
            p[0..4].copy_from_slice(&ty.to_le_bytes());
            p[4..8].copy_from_slice(&7u32.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&addr.to_le_bytes());
            p[24..32].copy_from_slice(&addr.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            p[40..48].copy_from_slice(&memsz.to_le_bytes());
            p[48..56].copy_from_slice(&4u64.to_le_bytes());
            out.extend_from_slice(&p);
        };
        if !notes.is_empty() {
            phdr(PT_NOTE, data_start, 0, notes.len() as u64, notes.len() as u64);
        }
        let mut bodies = std::vec::Vec::new();
        for &(addr, filesz, memsz) in &self.segments {
            phdr(PT_LOAD, offset, addr, filesz, memsz);
            offset += filesz;
            bodies.push(filesz);
        }
        out.extend_from_slice(&notes);
        for (i, filesz) in bodies.into_iter().enumerate() {
            out.extend((0..filesz).map(|b| (b as u8) ^ (i as u8)));
        }
        out
    }
}

#[test]
fn accepts_a_typical_test_kernel() {
    let data = ElfBuilder::typical().build();
    let img = parse(&data).unwrap();
    assert_eq!((img.kernel_start, img.kernel_end), (0x100000, 0x105000));
    assert_eq!(img.entry, 0x100000);
    assert_eq!(img.hypercall_page, Some(0x101000));
    assert!(img.pae_mode);
    assert_eq!(img.guest_os, "test");
    assert_eq!(img.segments.len(), 1);
    assert_eq!(img.segments[0].file_size, 0x3000);
}

#[test]
fn refuses_wrong_kinds() {
    let mut b = ElfBuilder::typical();
    b.machine = 3;
    assert_eq!(parse(&b.build()), Err(ImageError::WrongKind("e_machine is not x86_64")));
    let mut b = ElfBuilder::typical();
    b.class = 1;
    assert!(parse(&b.build()).is_err());
}

#[test]
fn refuses_missing_or_bad_notes() {
    let mut b = ElfBuilder::typical();
    b.notes.clear();
    assert_eq!(parse(&b.build()), Err(ImageError::NoXenNotes));
    let mut b = ElfBuilder::typical();
    b.notes.retain(|n| n.0 != note::XEN_VERSION);
    assert_eq!(parse(&b.build()), Err(ImageError::BadXenVersion));
    let mut b = ElfBuilder::typical();
    b.notes.retain(|n| n.0 != note::LOADER);
    assert_eq!(parse(&b.build()), Err(ImageError::BadLoader));
    let mut b = ElfBuilder::typical();
    b.notes.push((note::FEATURES, b"!auto_translated_physmap\0".to_vec()));
    assert_eq!(parse(&b.build()), Err(ImageError::UnsupportedRequiredFeature));
}

#[test]
fn a_linux_guest_needs_no_loader_note() {
    let mut b = ElfBuilder::typical();
    b.notes.retain(|n| n.0 != note::LOADER && n.0 != note::GUEST_OS);
    b.notes.push((note::GUEST_OS, b"linux\0".to_vec()));
    assert!(parse(&b.build()).is_ok());
}

#[test]
fn refuses_overlapping_and_hypervisor_range_segments() {
    let mut b = ElfBuilder::typical();
    b.segments.push((0x104000, 0x1000, 0x1000));
    assert_eq!(parse(&b.build()), Err(ImageError::OverlappingSegments { first: 0, second: 1 }));
    let mut b = ElfBuilder::typical();
    b.segments = vec![(0xffff_8000_0010_0000, 0x1000, 0x1000)];
    b.entry = 0xffff_8000_0010_0000;
    b.notes.retain(|n| n.0 != note::HYPERCALL_PAGE);
    assert!(matches!(parse(&b.build()), Err(ImageError::HypervisorRange { .. })));
    let mut b = ElfBuilder::typical();
    b.segments = vec![(0x7fff_ffff_f000, 0x1000, 0x2000)]; // straddles the canonical hole
    b.entry = 0x7fff_ffff_f000;
    b.notes.retain(|n| n.0 != note::HYPERCALL_PAGE);
    assert!(matches!(parse(&b.build()), Err(ImageError::HypervisorRange { .. })));
    let mut b = ElfBuilder::typical();
    b.segments = vec![(u64::MAX - 0x800, 0x1000, 0x1000)];
    assert!(parse(&b.build()).is_err());
}

#[test]
fn refuses_entry_and_hypercall_page_outside_kernel() {
    let mut b = ElfBuilder::typical();
    b.entry = 0x200000;
    assert_eq!(parse(&b.build()), Err(ImageError::EntryOutsideKernel(0x200000)));
    let mut b = ElfBuilder::typical();
    b.notes.push((note::HYPERCALL_PAGE, 0x101800u64.to_le_bytes().to_vec()));
    assert_eq!(parse(&b.build()), Err(ImageError::BadHypercallPage(0x101800)));
    // A kernel ending one byte short of the top of the address space: its last page cannot
    // hold the hypercall page, and `hp + 4096` must not overflow deciding so.
    let top = u64::MAX - 0x1fff;
    let mut b = ElfBuilder::typical();
    b.segments = vec![(top, 0, 0x1fff)];
    b.entry = top;
    b.notes.retain(|(t, _)| *t != note::HYPERCALL_PAGE);
    b.notes.push((note::HYPERCALL_PAGE, (top + 0x1000).to_le_bytes().to_vec()));
    assert_eq!(parse(&b.build()), Err(ImageError::BadHypercallPage(top + 0x1000)));
}

#[test]
fn truncation_at_every_length_is_refused_without_panic() {
    let data = ElfBuilder::typical().build();
    for cut in 0..data.len() {
        assert!(parse(&data[..cut]).is_err(), "accepted an image cut at {cut}");
    }
}

#[test]
fn filesz_larger_than_memsz_is_refused() {
    let mut b = ElfBuilder::typical();
    b.segments = vec![(0x100000, 0x3000, 0x1000)];
    assert_eq!(parse(&b.build()), Err(ImageError::TruncatedSegment { index: 0 }));
}

#[test]
fn an_unaligned_virt_base_is_refused() {
    // The bootstrap region is mapped page by page from VIRT_BASE: an unaligned one would put
    // file bytes in the wrong frames and index past the domain's frames.
    let mut b = ElfBuilder::typical();
    b.notes.push((note::VIRT_BASE, 0x3f_f001u64.to_le_bytes().to_vec()));
    assert_eq!(parse(&b.build()).unwrap_err(), ImageError::VirtBaseUnaligned(0x3f_f001));
}

#[test]
fn an_image_at_any_alignment_parses_in_place_the_same() {
    // A cpio member starts 4-byte aligned only: the image is read where it lies, not copied.
    let image = ElfBuilder::typical().build();
    let aligned = parse(&image).expect("typical image");
    // An 8-byte-aligned backing buffer, so that each shift gives a known misalignment.
    let mut words = vec![0u64; image.len() / 8 + 2];
    // SAFETY: viewing initialised u64s as bytes, within the vector's length.
    let buffer = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8) };
    for shift in 1..8 {
        buffer[shift..shift + image.len()].copy_from_slice(&image);
        let at = &buffer[shift..shift + image.len()];
        assert_eq!(at.as_ptr() as usize % 8, shift, "shift {shift} misaligns the image");
        assert_eq!(parse(at), Ok(aligned.clone()), "image at offset {shift} mod 8");
    }
}

#[test]
fn pae_mode_counts_only_for_yes_or_bimodal() {
    // libelf (libelf-dominfo.c): only "yes" (extended CR3) or a value containing "bimodal"
    // makes the kernel PAE; dom0's start_info magic gets its 'p' only then.
    for (value, pae) in
        [(&b"yes\0"[..], true), (b"bimodal\0", true), (b"yes,bimodal\0", true), (b"no\0", false), (b"\0", false)]
    {
        let mut b = ElfBuilder::typical();
        for (t, d) in b.notes.iter_mut() {
            if *t == note::PAE_MODE {
                *d = value.to_vec();
            }
        }
        assert_eq!(parse(&b.build()).unwrap().pae_mode, pae, "{:?}", core::str::from_utf8(value));
    }
}

#[test]
fn the_builder_learns_which_privilege_the_kernel_supports() {
    let typical_image = ElfBuilder::typical().build();
    let typical = parse(&typical_image).unwrap();
    assert!(!typical.requires_dom0 && !typical.lacks_dom0_support);
    // SUPPORTED_FEATURES without XENFEAT_dom0 (bit 11): no dom0 (Xen's dom0_construct_pv),
    // unless FEATURES names dom0; with the bit, or without the note, dom0 is fine.
    for (words, features, lacks) in [
        (vec![0u32], None, true),
        (vec![1 << 11], None, false),
        (vec![1, 1 << 11], None, false),
        (vec![0], Some("writable_page_tables|dom0"), false),
        (vec![0], Some("!dom0"), false),
    ] {
        let mut b = ElfBuilder::typical();
        for w in &words {
            b.notes.push((note::SUPPORTED_FEATURES, w.to_le_bytes().to_vec()));
        }
        if let Some(f) = features {
            b.notes.retain(|(t, _)| *t != note::FEATURES);
            b.notes.push((note::FEATURES, format!("{f}\0").into_bytes()));
        }
        let img = b.build();
        assert_eq!(parse(&img).unwrap().lacks_dom0_support, lacks, "{words:?} {features:?}");
    }
    // The note is an array of 32-bit words (one submap): the first word of any size that is
    // a multiple of 4 counts; other sizes read as 0.
    for (desc, lacks) in [
        (vec![0x00, 0x08, 0, 0, 0, 0, 0, 0], false),
        (vec![0x00, 0x08], true),
        (vec![0, 8, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], false),
    ] {
        let mut b = ElfBuilder::typical();
        b.notes.push((note::SUPPORTED_FEATURES, desc.clone()));
        let img = b.build();
        assert_eq!(parse(&img).unwrap().lacks_dom0_support, lacks, "{desc:x?}");
    }
    // FEATURES requiring !dom0: no domU (libxenguest's xc_dom_parse_elf_kernel).
    let mut b = ElfBuilder::typical();
    b.notes.retain(|(t, _)| *t != note::FEATURES);
    b.notes.push((note::FEATURES, b"writable_page_tables|!dom0\0".to_vec()));
    let img = b.build();
    assert!(parse(&img).unwrap().requires_dom0);
}

#[test]
fn an_init_p2m_inside_the_kernel_is_refused() {
    let typical = ElfBuilder::typical().build();
    let kernel = parse(&typical).unwrap();
    let inside = kernel.kernel_start + 0x1000;
    for (at, refused) in [(inside, true), (kernel.kernel_end, false), (0xffff_ea00_0000_0000, false)] {
        let mut b = ElfBuilder::typical();
        b.notes.push((note::INIT_P2M, at.to_le_bytes().to_vec()));
        let img = b.build();
        let want = if refused { Err(ImageError::InitP2mInsideKernel(at)) } else { Ok(()) };
        assert_eq!(parse(&img).map(|_| ()), want, "{at:#x}");
    }
}
