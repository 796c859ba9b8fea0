//! Test support shared by the hypercall tests: a flat guest memory every mock domain embeds, and
//! macros for the `Env` methods that the mocks would otherwise each spell out the same way.

use hypercall_abi::errno::Errno;
use std::ops::Range;
use std::vec::Vec;

/// Where every mock's guest memory starts.
pub const BASE: u64 = 0x10000;

/// Guest memory `[BASE, BASE + mem.len())`; every other address faults.
///
/// Mocks embed one and reach its helpers through `flat_guest_deref!`, so a test reads
/// `m.put(..)` and `m.u32_at(..)` on the mock itself.
pub struct FlatGuest {
    /// The bytes, `mem[0]` at `BASE`; tests may resize it.
    pub mem: Vec<u8>,
    /// Addresses from here on read but refuse writes (a read-only mapping), if set.
    pub read_only_from: Option<u64>,
}

impl FlatGuest {
    /// `len` zeroed bytes at `BASE`.
    pub fn new(len: usize) -> Self {
        Self { mem: vec![0; len], read_only_from: None }
    }
    /// The indices of `[va, va + len)` in `mem`, or `EFAULT` if any byte lies outside it.
    pub fn range(&self, va: u64, len: usize) -> Result<Range<usize>, Errno> {
        let start = va.checked_sub(BASE).ok_or(Errno::EFAULT)? as usize;
        let end = start.checked_add(len).filter(|&e| e <= self.mem.len()).ok_or(Errno::EFAULT)?;
        Ok(start..end)
    }
    /// `Env::copy_from_guest`: copies nothing on `EFAULT`.
    pub fn copy_from(&self, va: u64, out: &mut [u8]) -> Result<(), Errno> {
        let r = self.range(va, out.len())?;
        out.copy_from_slice(&self.mem[r]);
        Ok(())
    }
    /// `Env::copy_to_guest`: writes nothing on `EFAULT`.
    pub fn copy_to(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        if self.read_only_from.is_some_and(|ro| va.saturating_add(bytes.len() as u64) > ro) {
            return Err(Errno::EFAULT);
        }
        let r = self.range(va, bytes.len())?;
        self.mem[r].copy_from_slice(bytes);
        Ok(())
    }
    /// Test setup: writes `bytes` at `va`, which must be in range.
    pub fn put(&mut self, va: u64, bytes: &[u8]) {
        let r = self.range(va, bytes.len()).unwrap();
        self.mem[r].copy_from_slice(bytes);
    }
    /// Test setup: writes `words` little-endian at `va`.
    pub fn put_words(&mut self, va: u64, words: &[u64]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.put(va, &bytes);
    }
    /// The `len` bytes at `va`, which must be in range.
    pub fn get(&self, va: u64, len: usize) -> &[u8] {
        &self.mem[self.range(va, len).unwrap()]
    }
    fn array<const N: usize>(&self, va: u64) -> [u8; N] {
        self.get(va, N).try_into().unwrap()
    }
    /// The little-endian `i16` at `va`.
    pub fn i16_at(&self, va: u64) -> i16 {
        i16::from_le_bytes(self.array(va))
    }
    /// The little-endian `u32` at `va`.
    pub fn u32_at(&self, va: u64) -> u32 {
        u32::from_le_bytes(self.array(va))
    }
    /// The little-endian `u64` at `va`.
    pub fn u64_at(&self, va: u64) -> u64 {
        u64::from_le_bytes(self.array(va))
    }
}

/// `flat_guest_deref!(Mock, field)`: `Mock` derefs to its `FlatGuest` in `field`.
macro_rules! flat_guest_deref {
    ($mock:ty, $field:ident) => {
        impl ::std::ops::Deref for $mock {
            type Target = $crate::hypercalls::testing::FlatGuest;
            fn deref(&self) -> &Self::Target {
                &self.$field
            }
        }
        impl ::std::ops::DerefMut for $mock {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.$field
            }
        }
    };
}

/// Inside `impl Env`: `env_boilerplate!(guest: g)` gives `copy_from_guest`/`copy_to_guest` on
/// the `FlatGuest` in field `g`; `env_boilerplate!(guest: g, vcpu: v)` adds a domain with no
/// console, timers or command line, whose vCPU state is field `v`.
macro_rules! env_boilerplate {
    (guest: $guest:ident) => {
        fn copy_from_guest(&self, va: u64, out: &mut [u8]) -> Result<(), ::hypercall_abi::errno::Errno> {
            self.$guest.copy_from(va, out)
        }
        fn copy_to_guest(&mut self, va: u64, bytes: &[u8]) -> Result<(), ::hypercall_abi::errno::Errno> {
            self.$guest.copy_to(va, bytes)
        }
    };
    (guest: $guest:ident, vcpu: $vcpu:ident) => {
        $crate::hypercalls::testing::env_boilerplate!(guest: $guest);
        fn console_write(&mut self, _bytes: &[u8]) {}
        fn console_read(&mut self, _out: &mut [u8]) -> usize {
            0
        }
        fn now_ns(&self) -> u64 {
            0
        }
        fn set_singleshot_timer(&mut self, _deadline_ns: Option<u64>) {}
        fn set_periodic_timer(&mut self, _period_ns: Option<u64>) {}
        fn hypervisor_cmdline(&self) -> &str {
            ""
        }
        fn vcpu(&mut self) -> &mut $crate::vcpu::VcpuState {
            &mut self.$vcpu
        }
        fn apply_segment_bases(&mut self) {}
    };
}

pub(crate) use {env_boilerplate, flat_guest_deref};
