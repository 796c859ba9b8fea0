//! Classifies the boot module: a lone guest ELF (started as dom0) or a `cpio` bundle of guests.

use crate::cpio;

/// What the module is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// An ELF64 x86_64 executable: one guest, dom0.
    Elf,
    /// A `cpio` newc archive with this many members.
    Cpio {
        /// Members before the trailer.
        members: usize,
    },
}

/// Why the module is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleError {
    /// Empty module.
    Empty,
    /// Neither ELF nor cpio: carries the first bytes for the report.
    Unrecognised {
        /// Up to 8 leading bytes.
        head: [u8; 8],
        /// How many of `head` are valid.
        len: usize,
    },
    /// Starts like ELF but is not a usable ELF64 x86_64 executable.
    BadElf(&'static str),
    /// Starts like cpio but does not parse.
    BadCpio(cpio::CpioError),
}

impl core::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => write!(f, "module is empty"),
            Self::Unrecognised { head, len } => {
                write!(f, "unrecognised format (neither ELF nor cpio newc); first bytes:")?;
                for b in &head[..*len] {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
            Self::BadElf(why) => write!(f, "malformed ELF: {why}"),
            Self::BadCpio(e) => write!(f, "malformed {e}"),
        }
    }
}

/// Classifies `bytes`, checking enough structure that later stages can rely on the kind.
pub fn classify(bytes: &[u8]) -> Result<ModuleKind, ModuleError> {
    if bytes.is_empty() {
        return Err(ModuleError::Empty);
    }
    if bytes.starts_with(b"\x7fELF") {
        check_elf_header(bytes)?;
        return Ok(ModuleKind::Elf);
    }
    if cpio::looks_like_cpio(bytes) {
        let members = cpio::Reader::validate(bytes).map_err(ModuleError::BadCpio)?;
        return Ok(ModuleKind::Cpio { members });
    }
    let mut head = [0u8; 8];
    let len = bytes.len().min(8);
    head[..len].copy_from_slice(&bytes[..len]);
    Err(ModuleError::Unrecognised { head, len })
}

/// The ELF identification and header checks that do not need the program headers' contents.
fn check_elf_header(b: &[u8]) -> Result<(), ModuleError> {
    if b.len() < 64 {
        return Err(ModuleError::BadElf("shorter than an ELF64 header"));
    }
    if b[4] != 2 {
        return Err(ModuleError::BadElf("not ELF64 (EI_CLASS)"));
    }
    if b[5] != 1 {
        return Err(ModuleError::BadElf("not little-endian (EI_DATA)"));
    }
    let e_type = u16::from_le_bytes([b[16], b[17]]);
    let e_machine = u16::from_le_bytes([b[18], b[19]]);
    if e_machine != 62 {
        return Err(ModuleError::BadElf("not x86_64 (e_machine)"));
    }
    if e_type != 2 {
        return Err(ModuleError::BadElf("not an executable (e_type)"));
    }
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or_default());
    let phentsize = u16::from_le_bytes([b[54], b[55]]) as u64;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as u64;
    if phnum == 0 {
        return Err(ModuleError::BadElf("no program headers"));
    }
    if phentsize != 56 {
        return Err(ModuleError::BadElf("bad program header size"));
    }
    let end = phoff.checked_add(phentsize * phnum);
    if end.is_none_or(|e| e > b.len() as u64) {
        return Err(ModuleError::BadElf("program headers past end of file (truncated?)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_header() -> std::vec::Vec<u8> {
        let mut h = vec![0u8; 64 + 56];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 2;
        h[18] = 62;
        h[32] = 64; // phoff
        h[54] = 56;
        h[56] = 1;
        h
    }

    #[test]
    fn classifies_elf_cpio_and_garbage() {
        assert_eq!(classify(&elf_header()), Ok(ModuleKind::Elf));
        let a = cpio::build(&[("a", b"1"), ("b", b"2")]);
        assert_eq!(classify(&a), Ok(ModuleKind::Cpio { members: 2 }));
        let e = classify(b"garbage!garbage").unwrap_err();
        assert!(matches!(e, ModuleError::Unrecognised { len: 8, .. }));
        assert_eq!(
            format!("{e}"),
            "unrecognised format (neither ELF nor cpio newc); first bytes: 67 61 72 62 61 67 65 21"
        );
        assert_eq!(classify(&[]), Err(ModuleError::Empty));
    }

    #[test]
    fn rejects_wrong_elf_flavours() {
        let mut h = elf_header();
        h[4] = 1;
        assert_eq!(classify(&h), Err(ModuleError::BadElf("not ELF64 (EI_CLASS)")));
        let mut h = elf_header();
        h[18] = 3;
        assert_eq!(classify(&h), Err(ModuleError::BadElf("not x86_64 (e_machine)")));
        let h = elf_header();
        assert!(matches!(classify(&h[..100]), Err(ModuleError::BadElf(_))));
        assert!(matches!(classify(&h[..10]), Err(ModuleError::BadElf(_))));
    }

    #[test]
    fn rejects_truncated_cpio() {
        let a = cpio::build(&[("a", b"12345678")]);
        assert!(matches!(classify(&a[..a.len() - 20]), Err(ModuleError::BadCpio(_))));
    }
}
