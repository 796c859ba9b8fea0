//! Host tests for the one-walk word paths: same results as the byte path, same refusals.

use super::*;
use crate::domain_layout::pte;
use crate::guest_access_testing::{tree, FrameMap as Frames, L4, U};

impl WordAccess for Frames {
    fn write_u64s(&mut self, ma: u64, words: &[u64]) -> bool {
        self.word_runs += 1;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write_bytes(ma, &bytes)
    }
    fn read_u64s(&self, ma: u64, out: &mut [u64]) -> bool {
        let mut bytes = vec![0u8; out.len() * 8];
        if !self.read_bytes(ma, &mut bytes) {
            return false;
        }
        for (w, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(c.try_into().unwrap());
        }
        true
    }
}

/// VA 0x400000.. maps mfn 10 (rw), 11 (rw), 12 (ro), 13 (supervisor only), all zeroed.
fn setup() -> Frames {
    tree(&[(10, U), (11, U), (12, pte::PRESENT | pte::USER), (13, pte::PRESENT | pte::RW)], |_| 0)
}

const WORDS: [u64; 8] = [1, 2, 3, 4, 5, 6, 7, 0x0807_0605_0403_0201];

#[test]
fn a_run_inside_one_page_takes_one_walk_and_lands_little_endian() {
    let mut m = setup();
    // The last 64 bytes of the page: the boundary case of the one-page test.
    assert!(StackAccess(&mut m).write_words(L4, 0x400fc0, &WORDS));
    assert_eq!(m.word_runs, 1);
    assert_eq!(m.word(10, 0xfc0), 1);
    assert_eq!(m.frames[&10][0xff8..], [1, 2, 3, 4, 5, 6, 7, 8]);
    let mut back = [0u64; 8];
    assert!(StackAccess(&mut m).read_words(L4, 0x400fc0, &mut back));
    assert_eq!(back, WORDS);
}

#[test]
fn a_page_crossing_run_matches_the_byte_path() {
    let mut m = setup();
    assert!(StackAccess(&mut m).write_words(L4, 0x400fe0, &WORDS));
    assert_eq!(m.word_runs, 0, "crossing runs go through the checked byte copy");
    assert_eq!(m.word(10, 0xfe0), 1);
    assert_eq!(m.word(10, 0xff8), 4);
    assert_eq!(m.word(11, 0), 5);
    assert_eq!(m.word(11, 0x18), WORDS[7]);
    let mut back = [0u64; 8];
    assert!(StackAccess(&mut m).read_words(L4, 0x400fe0, &mut back));
    assert_eq!(back, WORDS);
}

#[test]
fn refusals_write_nothing() {
    let mut m = setup();
    let before = (m.frames[&11].clone(), m.frames[&12].clone(), m.frames[&13].clone());
    let mut s = StackAccess(&mut m);
    assert!(!s.write_words(L4, 0x402000, &WORDS), "read-only page");
    assert!(!s.write_words(L4, 0x403000, &WORDS), "supervisor page");
    assert!(!s.write_words(L4, 0x404000, &WORDS), "unmapped page");
    assert!(!s.write_words(L4, 0x401fe0, &WORDS), "second page read-only");
    assert!(!s.write_words(L4, 0xffff_8300_0000_0000, &WORDS), "hypervisor range");
    assert!(!s.write_words(L4, 0x400000, &[0; MAX_WORDS + 1]), "longer than the staging buffer");
    assert!(!s.write_words(L4, u64::MAX - 7, &WORDS), "wraps the address space");
    assert_eq!((m.frames[&11].clone(), m.frames[&12].clone(), m.frames[&13].clone()), before);
}

#[test]
fn reads_respect_rights_and_bounds() {
    let mut m = setup();
    let mut out = [0u64; 9];
    let s = StackAccess(&mut m);
    assert!(s.read_words(L4, 0x402000, &mut out), "read-only pages are readable");
    assert!(!s.read_words(L4, 0x403000, &mut out), "supervisor page");
    assert!(!s.read_words(L4, 0x404000 - 8, &mut out), "runs into an unmapped page");
    assert!(!s.read_words(L4, 0x400000, &mut [0; MAX_WORDS + 1]));
    assert!(!s.read_words(L4, u64::MAX - 7, &mut out));
}

#[test]
fn one_page_test_boundaries() {
    assert!(within_one_page(0x1000, 8));
    assert!(within_one_page(0x1ff8, 8));
    assert!(!within_one_page(0x1ffc, 8));
    assert!(!within_one_page(0x1000, 0));
    assert!(within_one_page(0x1000, 4096));
    assert!(!within_one_page(0x1008, 4096));
    assert!(!within_one_page(0, 4097));
}
