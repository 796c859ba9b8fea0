//! Reader for `cpio` archives in the "newc" format (the Linux initramfs format), used to carry
//! several guest images and their domain configs in one boot module.
//!
//! Every header field is checked against the archive's length: a truncated or corrupt archive
//! yields an error naming the offset, never a read out of bounds.

/// Length of a newc header.
const HEADER_LEN: usize = 110;
/// Magic of the newc format (no checksums) and of the "crc" variant, which has the same layout.
const MAGICS: [&[u8; 6]; 2] = [b"070701", b"070702"];
const TRAILER: &[u8] = b"TRAILER!!!";

/// One archive member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path inside the archive, without a leading `./`.
    pub name: &'a str,
    /// The `st_mode` bits (file type and permissions).
    pub mode: u32,
    /// The file's bytes.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether this member is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// What is wrong with an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A header does not start with the newc magic.
    BadMagic {
        /// Offset of the header.
        offset: usize,
    },
    /// A header field is not 8 hex digits.
    BadField {
        /// Offset of the header.
        offset: usize,
    },
    /// A header, name or file body runs past the end of the archive.
    Truncated {
        /// Offset of the header.
        offset: usize,
    },
    /// A name is empty, unterminated or not UTF-8.
    BadName {
        /// Offset of the header.
        offset: usize,
    },
    /// The archive ends without the `TRAILER!!!` member.
    NoTrailer,
}

impl core::fmt::Display for CpioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic { offset } => write!(f, "cpio: bad header magic at offset {offset}"),
            Self::BadField { offset } => write!(f, "cpio: bad header field at offset {offset}"),
            Self::Truncated { offset } => write!(f, "cpio: member at offset {offset} is truncated"),
            Self::BadName { offset } => write!(f, "cpio: bad member name at offset {offset}"),
            Self::NoTrailer => write!(f, "cpio: archive ends without TRAILER!!!"),
        }
    }
}

/// Whether `bytes` starts like a newc archive.
pub fn looks_like_cpio(bytes: &[u8]) -> bool {
    MAGICS.iter().any(|m| bytes.starts_with(&m[..]))
}

/// Iterates over the members of an archive, stopping at the trailer.
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0, done: false }
    }

    /// Checks the whole archive and returns the number of members before the trailer.
    pub fn validate(bytes: &'a [u8]) -> Result<usize, CpioError> {
        Reader::new(bytes).try_fold(0, |n, e| e.map(|_| n + 1))
    }

    fn field(&self, header: usize, index: usize) -> Result<u32, CpioError> {
        let start = header + 6 + index * 8;
        let text = &self.bytes[start..start + 8];
        let mut v: u32 = 0;
        for &c in text {
            let d = (c as char).to_digit(16).ok_or(CpioError::BadField { offset: header })?;
            v = v << 4 | d;
        }
        Ok(v)
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        let h = self.offset;
        if h >= self.bytes.len() {
            return Err(CpioError::NoTrailer);
        }
        if self.bytes.len() - h < HEADER_LEN {
            return Err(CpioError::Truncated { offset: h });
        }
        if !looks_like_cpio(&self.bytes[h..]) {
            return Err(CpioError::BadMagic { offset: h });
        }
        let mode = self.field(h, 1)?;
        let file_size = self.field(h, 6)? as usize;
        let name_size = self.field(h, 11)? as usize;
        if name_size == 0 {
            return Err(CpioError::BadName { offset: h });
        }
        let name_start = h + HEADER_LEN;
        let name_end = name_start.checked_add(name_size).ok_or(CpioError::Truncated { offset: h })?;
        let data_start = name_end.next_multiple_of(4);
        let data_end = data_start.checked_add(file_size).ok_or(CpioError::Truncated { offset: h })?;
        if data_end > self.bytes.len() || name_end > self.bytes.len() {
            return Err(CpioError::Truncated { offset: h });
        }
        let raw_name = &self.bytes[name_start..name_end];
        let Some((&0, name)) = raw_name.split_last() else {
            return Err(CpioError::BadName { offset: h });
        };
        let name = core::str::from_utf8(name).map_err(|_| CpioError::BadName { offset: h })?;
        if name.as_bytes() == TRAILER {
            self.done = true;
            return Ok(None);
        }
        self.offset = data_end.next_multiple_of(4);
        let name = name.strip_prefix("./").unwrap_or(name);
        Ok(Some(Entry { name, mode, data: &self.bytes[data_start..data_end] }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Builds a newc archive of regular files (used by tests and by the QEMU scenario harness to
/// make boot bundles).
pub fn build(members: &[(&str, &[u8])]) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::new();
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let hdr = alloc::format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (n, d) in members {
        add(n, d, 0o100644);
    }
    add("TRAILER!!!", &[], 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = build(&[("dom1.cfg", b"name = 'a'\n"), ("./guest.elf", b"\x7fELFxyz")]);
        let v: std::vec::Vec<_> = Reader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "dom1.cfg");
        assert_eq!(v[0].data, b"name = 'a'\n");
        assert!(v[0].is_file());
        assert_eq!(v[1].name, "guest.elf");
        assert_eq!(v[1].data, b"\x7fELFxyz");
        assert_eq!(Reader::validate(&a), Ok(2));
    }

    #[test]
    fn truncation_anywhere_is_an_error_never_a_panic() {
        let a = build(&[("x", &[7u8; 100]), ("y", b"abc")]);
        for cut in 0..a.len() {
            assert!(Reader::validate(&a[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn corrupt_fields_are_reported() {
        let mut a = build(&[("x", b"1")]);
        a[0] = b'1';
        assert_eq!(Reader::validate(&a), Err(CpioError::BadMagic { offset: 0 }));
        let mut a = build(&[("x", b"1")]);
        a[60] = b'z'; // inside the file-size field
        assert_eq!(Reader::validate(&a), Err(CpioError::BadField { offset: 0 }));
        let mut a = build(&[("x", b"1")]);
        a[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"ffffffff"); // enormous file size
        assert_eq!(Reader::validate(&a), Err(CpioError::Truncated { offset: 0 }));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..400 {
            let mut a = build(&[("f", b"data")]);
            a.truncate(len.min(a.len()));
            for b in a.iter_mut() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if seed >> 60 == 0 {
                    *b = (seed >> 32) as u8;
                }
            }
            let _ = Reader::validate(&a);
        }
    }
}
