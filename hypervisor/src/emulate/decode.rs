//! Decoder for the few x86-64 instructions a PV guest kernel may have emulated (digest §3.8).
//!
//! The bytes are guest-controlled and may be truncated (the caller reads at most 15 bytes
//! and fewer at the end of a mapped page): every path bounds-checks and anything outside the
//! supported set decodes to `None`, which the caller turns into `#GP(0)` as Xen does when its
//! emulator's `validate` hook refuses an opcode.
//!
//! Prefix rules (the ones that matter for this set, as the CPU applies them):
//! - legacy prefixes `66 67 F2 F3 2E 36 3E 26 64 65` may appear in any order; a repeated or
//!   redundant segment override is harmless because none of the accepted forms touches memory
//!   except `ins`/`outs`, which the executor refuses anyway;
//! - `F0` (`lock`) on any of these instructions is `#UD` on hardware, so we never see it at a
//!   #GP: refuse it;
//! - REX (`40`-`4F`) counts only when it immediately precedes the opcode; a legacy prefix after
//!   it makes the CPU ignore it;
//! - `F2`/`F3` before a `0F` opcode are mandatory prefixes that select other instructions
//!   (e.g. `F3 0F 09` is `wbnoinvd`): only `F3 0F 09` is accepted (as a write-back flush, as
//!   Xen does), the rest are refused; before `in`/`out` a `rep` is ignored by the CPU;
//! - the whole instruction must fit in 15 bytes, as on hardware.

use Insn::{In, Out};

/// Longest x86 instruction; the CPU raises #GP for anything longer.
pub const MAX_INSN_LEN: usize = 15;

/// Xen's forced-emulation prefix `ud2; .ascii "xen"`.
pub const FORCED_EMULATION_PREFIX: [u8; 5] = [0x0f, 0x0b, 0x78, 0x65, 0x6e];

/// Where an `in`/`out` takes its port from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// `imm8` operand.
    Imm(u8),
    /// `dx`.
    Dx,
}

/// A decoded privileged instruction. Register numbers are 0-15 in encoding order
/// (`rax rcx rdx rbx rsp rbp rsi rdi r8`..`r15`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insn {
    /// `in al/ax/eax, port` (`size` = 1, 2 or 4 bytes).
    In {
        /// Access width in bytes.
        size: u8,
        /// Port operand.
        port: Port,
    },
    /// `out port, al/ax/eax`.
    Out {
        /// Access width in bytes.
        size: u8,
        /// Port operand.
        port: Port,
    },
    /// `ins` (string input), with or without `rep`.
    Ins {
        /// Element width in bytes.
        size: u8,
        /// `rep` prefix present.
        rep: bool,
    },
    /// `outs` (string output), with or without `rep`.
    Outs {
        /// Element width in bytes.
        size: u8,
        /// `rep` prefix present.
        rep: bool,
    },
    /// `cli`.
    Cli,
    /// `sti`.
    Sti,
    /// `hlt`.
    Hlt,
    /// `wbinvd` (or `wbnoinvd`, `F3 0F 09`).
    Wbinvd,
    /// `invd`.
    Invd,
    /// `clts`.
    Clts,
    /// `mov gpr, crN`.
    MovFromCr {
        /// Control register number (REX.R selects 8-15).
        cr: u8,
        /// Destination register.
        gpr: u8,
    },
    /// `mov crN, gpr`.
    MovToCr {
        /// Control register number.
        cr: u8,
        /// Source register.
        gpr: u8,
    },
    /// `mov gpr, drN`.
    MovFromDr {
        /// Debug register number (REX.R makes it 8-15, which is #UD on hardware).
        dr: u8,
        /// Destination register.
        gpr: u8,
    },
    /// `mov drN, gpr`.
    MovToDr {
        /// Debug register number.
        dr: u8,
        /// Source register.
        gpr: u8,
    },
    /// `rdmsr`.
    Rdmsr,
    /// `wrmsr`.
    Wrmsr,
    /// `rdtsc`.
    Rdtsc,
    /// `rdtscp`.
    Rdtscp,
    /// `cpuid`.
    Cpuid,
    /// `xsetbv`.
    Xsetbv,
}

/// Decodes the instruction at the start of `bytes`: the instruction and its length in
/// bytes, or `None` when it is not one the emulator handles (or is truncated or malformed).
pub fn decode(bytes: &[u8]) -> Option<(Insn, usize)> {
    let bytes = &bytes[..bytes.len().min(MAX_INSN_LEN)];
    let mut i = 0;
    let mut opsize16 = false;
    let mut rep = false; // F3 or F2 seen
    let mut rep_f3 = false;
    let mut rex = 0u8;
    loop {
        let b = *bytes.get(i)?;
        match b {
            0x66 => opsize16 = true,
            // Address size only changes the string forms' registers, which are refused.
            0x67 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => {}
            0xf2 => {
                rep = true;
                rep_f3 = false;
            }
            0xf3 => {
                rep = true;
                rep_f3 = true;
            }
            0xf0 => return None,
            0x40..=0x4f => {
                // Effective only if the opcode follows directly; a later legacy prefix resets it.
                rex = b;
                i += 1;
                let next = *bytes.get(i)?;
                if is_legacy_prefix(next) || (0x40..=0x4f).contains(&next) {
                    rex = 0;
                    continue;
                }
                break;
            }
            _ => break,
        }
        i += 1;
    }
    let op = *bytes.get(i)?;
    i += 1;
    // REX.W overrides 66h (SDM 2.2.1.2); port I/O has no 64-bit form, so it is 32-bit then,
    // as Xen's emulator has it (`op_bytes == 8 ? 4 : op_bytes`).
    let wide = if opsize16 && rex & 8 == 0 { 2 } else { 4 };
    let insn = match op {
        0xe4 => In { size: 1, port: Port::Imm(*bytes.get(i)?) },
        0xe5 => In { size: wide, port: Port::Imm(*bytes.get(i)?) },
        0xe6 => Out { size: 1, port: Port::Imm(*bytes.get(i)?) },
        0xe7 => Out { size: wide, port: Port::Imm(*bytes.get(i)?) },
        0xec => In { size: 1, port: Port::Dx },
        0xed => In { size: wide, port: Port::Dx },
        0xee => Out { size: 1, port: Port::Dx },
        0xef => Out { size: wide, port: Port::Dx },
        0x6c => Insn::Ins { size: 1, rep },
        0x6d => Insn::Ins { size: wide, rep },
        0x6e => Insn::Outs { size: 1, rep },
        0x6f => Insn::Outs { size: wide, rep },
        0xfa => Insn::Cli,
        0xfb => Insn::Sti,
        0xf4 => Insn::Hlt,
        0x0f => return decode_0f(bytes, i, rep, rep_f3, rex),
        _ => return None,
    };
    // The imm8 forms carry one more byte (already bounds-checked above).
    let len = if matches!(op, 0xe4..=0xe7) { i + 1 } else { i };
    Some((insn, len))
}

fn is_legacy_prefix(b: u8) -> bool {
    matches!(b, 0x66 | 0x67 | 0xf2 | 0xf3 | 0xf0 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65)
}

/// The two-byte (`0F xx`) forms; `i` indexes the byte after `0F`.
fn decode_0f(bytes: &[u8], mut i: usize, rep: bool, rep_f3: bool, rex: u8) -> Option<(Insn, usize)> {
    let op = *bytes.get(i)?;
    i += 1;
    // Mandatory-prefix forms select other instructions: accept only wbnoinvd.
    if rep && !(op == 0x09 && rep_f3) {
        return None;
    }
    let insn = match op {
        0x06 => Insn::Clts,
        0x08 => Insn::Invd,
        0x09 => Insn::Wbinvd,
        0x30 => Insn::Wrmsr,
        0x31 => Insn::Rdtsc,
        0x32 => Insn::Rdmsr,
        0xa2 => Insn::Cpuid,
        0x01 => match *bytes.get(i)? {
            0xd1 => {
                i += 1;
                Insn::Xsetbv
            }
            0xf9 => {
                i += 1;
                Insn::Rdtscp
            }
            _ => return None,
        },
        0x20..=0x23 => {
            // The CPU treats these as register forms whatever ModRM.mod says.
            let modrm = *bytes.get(i)?;
            i += 1;
            let n = ((modrm >> 3) & 7) | if rex & 4 != 0 { 8 } else { 0 };
            let gpr = (modrm & 7) | if rex & 1 != 0 { 8 } else { 0 };
            match op {
                0x20 => Insn::MovFromCr { cr: n, gpr },
                0x21 => Insn::MovFromDr { dr: n, gpr },
                0x22 => Insn::MovToCr { cr: n, gpr },
                _ => Insn::MovToDr { dr: n, gpr },
            }
        }
        _ => return None,
    };
    Some((insn, i))
}

/// At a #UD: if `bytes` start with Xen's forced-emulation prefix followed by `cpuid`, the
/// total length to step over (7). Xen accepts only a bare `0F A2` after the prefix; anything
/// else gets the normal #UD at the `ud2`.
pub fn decode_forced(bytes: &[u8]) -> Option<usize> {
    let n = FORCED_EMULATION_PREFIX.len();
    (bytes.len() >= n + 2 && bytes[..n] == FORCED_EMULATION_PREFIX && bytes[n..n + 2] == [0x0f, 0xa2]).then_some(n + 2)
}
