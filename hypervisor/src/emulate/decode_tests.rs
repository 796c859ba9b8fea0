//! Decoder tests: every supported form with its length, prefixes, REX, and hostile bytes.

use super::decode::*;

fn d(bytes: &[u8]) -> Option<(Insn, usize)> {
    decode(bytes)
}

#[test]
fn port_io_all_forms() {
    use Insn::{In, Out};
    let cases: &[(&[u8], Insn, usize)] = &[
        (&[0xe4, 0x60], In { size: 1, port: Port::Imm(0x60) }, 2),
        (&[0xe5, 0x71], In { size: 4, port: Port::Imm(0x71) }, 2),
        (&[0x66, 0xe5, 0x71], In { size: 2, port: Port::Imm(0x71) }, 3),
        (&[0xe6, 0xf4], Out { size: 1, port: Port::Imm(0xf4) }, 2),
        (&[0xe7, 0xf4], Out { size: 4, port: Port::Imm(0xf4) }, 2),
        (&[0x66, 0xe7, 0x80], Out { size: 2, port: Port::Imm(0x80) }, 3),
        (&[0xec], In { size: 1, port: Port::Dx }, 1),
        (&[0xed], In { size: 4, port: Port::Dx }, 1),
        (&[0x66, 0xed], In { size: 2, port: Port::Dx }, 2),
        (&[0xee], Out { size: 1, port: Port::Dx }, 1),
        (&[0xef], Out { size: 4, port: Port::Dx }, 1),
        (&[0x66, 0xef], Out { size: 2, port: Port::Dx }, 2),
        // REX.W does not widen port I/O past 32 bits.
        (&[0x48, 0xed], In { size: 4, port: Port::Dx }, 2),
        // A rep before in/out is ignored by the CPU.
        (&[0xf3, 0xec], In { size: 1, port: Port::Dx }, 2),
        // Segment overrides are harmless.
        (&[0x2e, 0x3e, 0xee], Out { size: 1, port: Port::Dx }, 3),
    ];
    for (bytes, insn, len) in cases {
        assert_eq!(d(bytes), Some((*insn, *len)), "{bytes:02x?}");
    }
}

#[test]
fn string_io() {
    assert_eq!(d(&[0x6c]), Some((Insn::Ins { size: 1, rep: false }, 1)));
    assert_eq!(d(&[0xf3, 0x6d]), Some((Insn::Ins { size: 4, rep: true }, 2)));
    assert_eq!(d(&[0x66, 0xf3, 0x6f]), Some((Insn::Outs { size: 2, rep: true }, 3)));
    assert_eq!(d(&[0x6e]), Some((Insn::Outs { size: 1, rep: false }, 1)));
}

#[test]
fn one_byte_forms() {
    assert_eq!(d(&[0xfa]), Some((Insn::Cli, 1)));
    assert_eq!(d(&[0xfb, 0x90]), Some((Insn::Sti, 1)));
    assert_eq!(d(&[0xf4]), Some((Insn::Hlt, 1)));
    assert_eq!(d(&[0x40, 0xf4]), Some((Insn::Hlt, 2)));
}

#[test]
fn two_byte_forms() {
    let cases: &[(&[u8], Insn, usize)] = &[
        (&[0x0f, 0x06], Insn::Clts, 2),
        (&[0x0f, 0x08], Insn::Invd, 2),
        (&[0x0f, 0x09], Insn::Wbinvd, 2),
        (&[0xf3, 0x0f, 0x09], Insn::Wbinvd, 3), // wbnoinvd
        (&[0x0f, 0x30], Insn::Wrmsr, 2),
        (&[0x0f, 0x31], Insn::Rdtsc, 2),
        (&[0x0f, 0x32], Insn::Rdmsr, 2),
        (&[0x0f, 0xa2], Insn::Cpuid, 2),
        (&[0x66, 0x0f, 0xa2], Insn::Cpuid, 3),
        (&[0x0f, 0x01, 0xf9], Insn::Rdtscp, 3),
        (&[0x0f, 0x01, 0xd1], Insn::Xsetbv, 3),
    ];
    for (bytes, insn, len) in cases {
        assert_eq!(d(bytes), Some((*insn, *len)), "{bytes:02x?}");
    }
}

#[test]
fn mov_cr_dr() {
    // mov %cr3, %rax / mov %rax, %cr3
    assert_eq!(d(&[0x0f, 0x20, 0xd8]), Some((Insn::MovFromCr { cr: 3, gpr: 0 }, 3)));
    assert_eq!(d(&[0x0f, 0x22, 0xd8]), Some((Insn::MovToCr { cr: 3, gpr: 0 }, 3)));
    // mov %cr0, %rcx ; mov %rdi, %cr4 ; mov %cr2, %r15 (REX.B)
    assert_eq!(d(&[0x0f, 0x20, 0xc1]), Some((Insn::MovFromCr { cr: 0, gpr: 1 }, 3)));
    assert_eq!(d(&[0x0f, 0x22, 0xe7]), Some((Insn::MovToCr { cr: 4, gpr: 7 }, 3)));
    assert_eq!(d(&[0x41, 0x0f, 0x20, 0xd7]), Some((Insn::MovFromCr { cr: 2, gpr: 15 }, 4)));
    // mov %cr8, %rax: REX.R
    assert_eq!(d(&[0x44, 0x0f, 0x20, 0xc0]), Some((Insn::MovFromCr { cr: 8, gpr: 0 }, 4)));
    // ModRM.mod is ignored: 0x18 encodes cr3/rax too.
    assert_eq!(d(&[0x0f, 0x22, 0x18]), Some((Insn::MovToCr { cr: 3, gpr: 0 }, 3)));
    // mov %dr7, %rax / mov %rdx, %dr0 / REX.W harmless
    assert_eq!(d(&[0x0f, 0x21, 0xf8]), Some((Insn::MovFromDr { dr: 7, gpr: 0 }, 3)));
    assert_eq!(d(&[0x48, 0x0f, 0x23, 0xc2]), Some((Insn::MovToDr { dr: 0, gpr: 2 }, 4)));
}

#[test]
fn rex_before_legacy_prefix_is_ignored() {
    // 41 66 0f 20 c0: the REX is dropped, so the register is rax, not r8.
    assert_eq!(d(&[0x41, 0x66, 0x0f, 0x20, 0xc0]), Some((Insn::MovFromCr { cr: 0, gpr: 0 }, 5)));
    // Two REX bytes: only the last counts.
    assert_eq!(d(&[0x44, 0x41, 0x0f, 0x20, 0xc0]), Some((Insn::MovFromCr { cr: 0, gpr: 8 }, 5)));
}

#[test]
fn refused_forms() {
    let refused: &[&[u8]] = &[
        &[],
        &[0x90],                   // nop
        &[0x9d],                   // popf never traps and is not emulated
        &[0xf0, 0x0f, 0x20, 0xc0], // lock
        &[0xf2, 0x0f, 0xa2],       // mandatory prefix selecting something else
        &[0xf3, 0x0f, 0x30],
        &[0x0f, 0x01, 0xd0], // xgetbv does not fault
        &[0x0f, 0x01, 0xf8], // swapgs: not for a PV guest
        &[0x0f, 0x0b],       // ud2
        &[0x0f, 0x07],       // sysret
        &[0xcf],             // iret
        &[0x0f, 0x00, 0xd8], // ltr
    ];
    for b in refused {
        assert_eq!(d(b), None, "{b:02x?}");
    }
}

#[test]
fn truncated_inputs() {
    let full: &[&[u8]] =
        &[&[0x66, 0xe5, 0x71], &[0x41, 0x0f, 0x20, 0xd7], &[0x0f, 0x01, 0xf9], &[0x66, 0x2e, 0x0f, 0x22, 0xd8]];
    for b in full {
        for n in 0..b.len() {
            assert_eq!(d(&b[..n]), None, "{:02x?}", &b[..n]);
        }
        assert!(d(b).is_some());
    }
}

#[test]
fn length_limit_is_fifteen() {
    // 14 prefixes + 1-byte opcode = 15: fine; 15 + opcode: too long.
    let mut b = [0x66u8; 16];
    b[14] = 0xed;
    assert_eq!(d(&b[..15]), Some((Insn::In { size: 2, port: Port::Dx }, 15)));
    let mut b = [0x66u8; 16];
    b[15] = 0xec;
    assert_eq!(d(&b), None);
    // Same with a two-byte opcode and ModRM crossing the limit.
    let mut b = [0x3eu8; 16];
    b[12..15].copy_from_slice(&[0x0f, 0x20, 0xd8]);
    assert_eq!(d(&b), Some((Insn::MovFromCr { cr: 3, gpr: 0 }, 15)));
    b[12] = 0x3e;
    b[13..16].copy_from_slice(&[0x0f, 0x20, 0xd8]);
    assert_eq!(d(&b), None);
}

#[test]
fn forced_emulation_prefix() {
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2]), Some(7));
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2, 0x90]), Some(7));
    // Anything else after the prefix, a bad signature, or truncation: plain #UD.
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0x31]), None);
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x66, 0x0f, 0xa2]), None);
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6f, 0x0f, 0xa2]), None);
    assert_eq!(decode_forced(&[0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f]), None);
    assert_eq!(decode_forced(&[0x0f, 0x0b]), None);
    assert_eq!(decode_forced(&[]), None);
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
pub(super) fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn random_bytes_never_panic_and_lengths_fit() {
    let mut s = 0x1234_5678_9abc_def1u64;
    let interesting = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x41, 0x44, 0x48, 0x0f, 0x20, 0x22, 0x01, 0xe4, 0xec];
    for _ in 0..200_000 {
        let n = (rng(&mut s) % 17) as usize;
        let mut buf = [0u8; 16];
        for b in buf.iter_mut().take(n) {
            let r = rng(&mut s);
            // Bias towards prefix and opcode bytes so the deep paths get exercised.
            *b = if r & 1 == 0 { interesting[(r >> 8) as usize % interesting.len()] } else { (r >> 16) as u8 };
        }
        if let Some((_, len)) = decode(&buf[..n]) {
            assert!(len >= 1 && len <= n.min(MAX_INSN_LEN), "{:02x?} -> {len}", &buf[..n]);
        }
        let _ = decode_forced(&buf[..n]);
    }
}

/// REX.W overrides 0x66 (SDM 2.2.1.2): `66 48 ed` is a 32-bit `in` on hardware and in Xen's
/// emulator (`op_bytes == 8 ? 4 : op_bytes`), not a 16-bit one; a REX without W does not.
#[test]
fn rex_w_overrides_the_operand_size_prefix_for_port_io() {
    assert_eq!(d(&[0x66, 0x48, 0xed]), Some((Insn::In { size: 4, port: Port::Dx }, 3)));
    assert_eq!(d(&[0x66, 0x48, 0xe7, 0x80]), Some((Insn::Out { size: 4, port: Port::Imm(0x80) }, 4)));
    assert_eq!(d(&[0x66, 0x41, 0xed]), Some((Insn::In { size: 2, port: Port::Dx }, 3)));
    assert_eq!(d(&[0x48, 0x66, 0xed]), Some((Insn::In { size: 2, port: Port::Dx }, 3)), "REX not last");
}
