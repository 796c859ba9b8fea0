//! Reading Xen's `hvm_start_info` (PVH boot protocol, `arch-x86/hvm/start_info.h`).
//!
//! The loader's structures are untrusted input in the sense that a malformed one must produce
//! a clear error, not a fault: every read is bounds-checked through [`PhysRead`] and every count
//! is capped.

use heapless::{String, Vec};

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;
/// E820 type of ordinary RAM (`XEN_HVM_MEMMAP_TYPE_RAM`).
pub const MEMMAP_TYPE_RAM: u32 = 1;
/// Longest command line kept; longer ones are refused, not truncated.
pub const MAX_CMDLINE: usize = 1024;
/// Most modules kept.
pub const MAX_MODULES: usize = 8;
/// Most memory-map entries kept.
pub const MAX_MEMMAP: usize = 128;

/// Physical memory reads, provided by the kernel (direct map) or by a test.
pub trait PhysRead {
    /// Copies `out.len()` bytes from physical address `pa`; `false` if any byte is not RAM
    /// the reader can reach.
    fn read(&self, pa: u64, out: &mut [u8]) -> bool;

    /// Reads a little-endian `u32`.
    fn read_u32(&self, pa: u64) -> Option<u32> {
        let mut b = [0; 4];
        self.read(pa, &mut b).then(|| u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    fn read_u64(&self, pa: u64) -> Option<u64> {
        let mut b = [0; 8];
        self.read(pa, &mut b).then(|| u64::from_le_bytes(b))
    }
}

/// One entry of the loader's memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Base physical address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820 type (1 = RAM).
    pub kind: u32,
}

/// One boot module (`-initrd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootModule {
    /// Physical address.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// The module's own command line (empty if none).
    pub cmdline: String<MAX_CMDLINE>,
}

/// Everything the hypervisor keeps from `hvm_start_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// Physical address of the structure itself (reserved from allocation).
    pub start_info_paddr: u64,
    /// Structure version (1 carries the memory map).
    pub version: u32,
    /// Our command line.
    pub cmdline: String<MAX_CMDLINE>,
    /// The modules, in order.
    pub modules: Vec<BootModule, MAX_MODULES>,
    /// The memory map.
    pub memmap: Vec<MemoryRegion, MAX_MEMMAP>,
    /// Physical ranges of the loader's structures (module list, map, strings): not RAM to reuse.
    pub structure_ranges: Vec<(u64, u64), { MAX_MODULES + 4 }>,
}

/// Why `hvm_start_info` could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvhError {
    /// Wrong magic value.
    BadMagic(u32),
    /// Version 0 has no memory map and we have no other source of one.
    NoMemoryMap,
    /// A field pointed to memory that cannot be read.
    Unreadable(&'static str, u64),
    /// More entries than we can keep.
    TooMany(&'static str, u64),
    /// A string without NUL within the limit, or not UTF-8.
    BadString(&'static str),
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad hvm_start_info magic {m:#x}"),
            Self::NoMemoryMap => write!(f, "hvm_start_info version 0 carries no memory map"),
            Self::Unreadable(what, pa) => write!(f, "cannot read {what} at {pa:#x}"),
            Self::TooMany(what, n) => write!(f, "too many {what}: {n}"),
            Self::BadString(what) => write!(f, "{what}: unterminated or not UTF-8"),
        }
    }
}

fn read_cstr(mem: &impl PhysRead, pa: u64, what: &'static str) -> Result<String<MAX_CMDLINE>, PvhError> {
    let mut s = String::new();
    if pa == 0 {
        return Ok(s);
    }
    for i in 0..MAX_CMDLINE as u64 {
        let mut b = [0u8];
        if !mem.read(pa + i, &mut b) {
            return Err(PvhError::Unreadable(what, pa + i));
        }
        if b[0] == 0 {
            return Ok(s);
        }
        if !b[0].is_ascii() {
            return Err(PvhError::BadString(what));
        }
        s.push(b[0] as char).map_err(|_| PvhError::BadString(what))?;
    }
    Err(PvhError::BadString(what))
}

/// Reads and checks the structure at `pa`.
pub fn parse(mem: &impl PhysRead, pa: u64) -> Result<BootInfo, PvhError> {
    let field32 = |off: u64, what| mem.read_u32(pa + off).ok_or(PvhError::Unreadable(what, pa + off));
    let field64 = |off: u64, what| mem.read_u64(pa + off).ok_or(PvhError::Unreadable(what, pa + off));
    let magic = field32(0, "magic")?;
    if magic != HVM_START_MAGIC {
        return Err(PvhError::BadMagic(magic));
    }
    let version = field32(4, "version")?;
    let nr_modules = field32(12, "nr_modules")? as u64;
    let modlist = field64(16, "modlist_paddr")?;
    let cmdline_pa = field64(24, "cmdline_paddr")?;
    if version < 1 {
        return Err(PvhError::NoMemoryMap);
    }
    let memmap_pa = field64(40, "memmap_paddr")?;
    let memmap_entries = field32(48, "memmap_entries")? as u64;

    let mut info = BootInfo {
        start_info_paddr: pa,
        version,
        cmdline: read_cstr(mem, cmdline_pa, "command line")?,
        modules: Vec::new(),
        memmap: Vec::new(),
        structure_ranges: Vec::new(),
    };
    // Capacity is MAX_MODULES + 4 and we push at most that many entries below.
    let _ = info.structure_ranges.push((pa, 56));
    let _ = info.structure_ranges.push((cmdline_pa, info.cmdline.len() as u64 + 1));

    if nr_modules as usize > MAX_MODULES {
        return Err(PvhError::TooMany("modules", nr_modules));
    }
    let _ = info.structure_ranges.push((modlist, nr_modules * 32));
    for i in 0..nr_modules {
        let e = modlist + i * 32;
        let paddr = mem.read_u64(e).ok_or(PvhError::Unreadable("module entry", e))?;
        let size = mem.read_u64(e + 8).ok_or(PvhError::Unreadable("module entry", e))?;
        let cl = mem.read_u64(e + 16).ok_or(PvhError::Unreadable("module entry", e))?;
        let cmdline = read_cstr(mem, cl, "module command line")?;
        let _ = info.structure_ranges.push((cl, cmdline.len() as u64 + 1));
        let _ = info.modules.push(BootModule { paddr, size, cmdline });
    }

    if memmap_entries as usize > MAX_MEMMAP {
        return Err(PvhError::TooMany("memory map entries", memmap_entries));
    }
    if memmap_entries == 0 {
        return Err(PvhError::NoMemoryMap);
    }
    let _ = info.structure_ranges.push((memmap_pa, memmap_entries * 24));
    for i in 0..memmap_entries {
        let e = memmap_pa + i * 24;
        let addr = mem.read_u64(e).ok_or(PvhError::Unreadable("memory map entry", e))?;
        let size = mem.read_u64(e + 8).ok_or(PvhError::Unreadable("memory map entry", e))?;
        let kind = mem.read_u32(e + 16).ok_or(PvhError::Unreadable("memory map entry", e))?;
        let _ = info.memmap.push(MemoryRegion { addr, size, kind });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat fake of physical memory starting at address 0.
    struct Fake(std::vec::Vec<u8>);
    impl PhysRead for Fake {
        fn read(&self, pa: u64, out: &mut [u8]) -> bool {
            let Some(end) = (pa as usize).checked_add(out.len()) else { return false };
            match self.0.get(pa as usize..end) {
                Some(src) => {
                    out.copy_from_slice(src);
                    true
                }
                None => false,
            }
        }
    }
    impl Fake {
        fn put(&mut self, pa: usize, bytes: &[u8]) {
            self.0[pa..pa + bytes.len()].copy_from_slice(bytes);
        }
    }

    fn sample() -> Fake {
        let mut m = Fake(vec![0; 0x4000]);
        m.put(0x100, &HVM_START_MAGIC.to_le_bytes());
        m.put(0x104, &1u32.to_le_bytes());
        m.put(0x10c, &1u32.to_le_bytes()); // one module
        m.put(0x110, &0x200u64.to_le_bytes());
        m.put(0x118, &0x300u64.to_le_bytes());
        m.put(0x128, &0x400u64.to_le_bytes());
        m.put(0x130, &2u32.to_le_bytes());
        m.put(0x200, &0x3000u64.to_le_bytes());
        m.put(0x208, &0x20u64.to_le_bytes());
        m.put(0x300, b"loglvl=all -- role=x\0");
        m.put(0x400, &0u64.to_le_bytes());
        m.put(0x408, &0x9fc00u64.to_le_bytes());
        m.put(0x410, &1u32.to_le_bytes());
        m.put(0x418, &0x100000u64.to_le_bytes());
        m.put(0x420, &0x1000000u64.to_le_bytes());
        m.put(0x428, &1u32.to_le_bytes());
        m
    }

    #[test]
    fn parses_a_qemu_style_structure() {
        let info = parse(&sample(), 0x100).unwrap();
        assert_eq!(info.cmdline.as_str(), "loglvl=all -- role=x");
        assert_eq!(info.modules.len(), 1);
        assert_eq!((info.modules[0].paddr, info.modules[0].size), (0x3000, 0x20));
        assert_eq!(info.memmap.len(), 2);
        assert_eq!(info.memmap[1], MemoryRegion { addr: 0x100000, size: 0x1000000, kind: 1 });
    }

    #[test]
    fn rejects_bad_magic_version_and_counts() {
        let mut m = sample();
        m.put(0x100, &0u32.to_le_bytes());
        assert_eq!(parse(&m, 0x100), Err(PvhError::BadMagic(0)));
        let mut m = sample();
        m.put(0x104, &0u32.to_le_bytes());
        assert_eq!(parse(&m, 0x100), Err(PvhError::NoMemoryMap));
        let mut m = sample();
        m.put(0x10c, &1000u32.to_le_bytes());
        assert_eq!(parse(&m, 0x100), Err(PvhError::TooMany("modules", 1000)));
        let mut m = sample();
        m.put(0x128, &0xffff_0000u64.to_le_bytes());
        assert!(matches!(parse(&m, 0x100), Err(PvhError::Unreadable("memory map entry", _))));
    }

    #[test]
    fn rejects_unterminated_command_line() {
        let mut m = sample();
        let long = vec![b'a'; 0x1000 - 0x300 + 0x800];
        m.0.resize(0x4000, 0);
        m.put(0x300, &long[..0x1200]);
        assert!(parse(&m, 0x100).is_err());
    }
}
