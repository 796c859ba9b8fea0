//! Stable-Rust fuzz driver, used when no nightly toolchain (cargo-fuzz) and no libFuzzer build
//! are available: a mutation-based fuzzer over the same target bodies as the libFuzzer binaries,
//! with outcome feedback (an input that reaches a not-yet-seen outcome bit joins the corpus).
//! It is NOT coverage-guided at the instruction level; `scripts/fuzz.sh` says which path ran.
//!
//! Usage: `stable_fuzz TARGET SECONDS [CORPUS_DIR] [ARTIFACT_DIR]`; exits 1 on a crash and
//! writes the crashing input to `ARTIFACT_DIR/crash-TARGET-<hash>`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Target = fn(&[u8]) -> u64;

fn target(name: &str) -> Option<Target> {
    Some(match name {
        "ring_consumer" => guest_input_fuzz::ring_consumer,
        "xenstore_parser" => guest_input_fuzz::xenstore_parser,
        "console_reader" => guest_input_fuzz::console_reader,
        "guest_image" => guest_input_fuzz::guest_image,
        "privileged_insn" => guest_input_fuzz::privileged_insn,
        "boot_bundle" => guest_input_fuzz::boot_bundle,
        _ => return None,
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u32; 12] = [0, 1, 2, 31, 32, 33, 255, 256, 1024, 2048, 0x7fff_ffff, u32::MAX];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(6) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => input[rng.below(len)] = rng.next() as u8,
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                input.drain(at..at + n);
            }
            4 => {
                let v = INTERESTING[rng.below(INTERESTING.len())].wrapping_add(rng.below(3) as u32);
                let at = rng.below(len + 1);
                let end = (at + 4).min(len);
                input.splice(at..end, v.to_le_bytes());
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let a = rng.below(other.len() + 1);
                let b = a + rng.below(other.len() - a + 1);
                let at = rng.below(len + 1);
                input.splice(at..at, other[a..b].iter().copied());
            }
            6 if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            _ => input.push(rng.next() as u8),
        }
        if input.len() > 8192 {
            input.truncate(8192);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(secs)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: stable_fuzz TARGET SECONDS [CORPUS_DIR] [ARTIFACT_DIR]");
        std::process::exit(2);
    };
    let Some(run) = target(name) else {
        eprintln!("unknown target {name}");
        std::process::exit(2);
    };
    let corpus_dir = args.get(3).map(PathBuf::from);
    let artifacts = args.get(4).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("artifacts"));
    let mut corpus: Vec<Vec<u8>> = vec![Vec::new(), vec![0; 64], (0..=255).collect()];
    if let Some(dir) = &corpus_dir {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    corpus.push(b);
                }
            }
        }
    }
    let seed = Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut rng = Rng(seed | 1);
    let mut features = 0u64;
    let start = Instant::now();
    let deadline = Duration::from_secs(secs);
    let mut execs = 0u64;
    let check = |input: &[u8]| panic::catch_unwind(|| run(input));
    for c in corpus.clone() {
        match check(&c) {
            Ok(f) => features |= f,
            Err(_) => crash(name, &c, &artifacts),
        }
    }
    while start.elapsed() < deadline {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input, &corpus);
        execs += 1;
        match check(&input) {
            Ok(f) => {
                if f & !features != 0 {
                    features |= f;
                    if let Some(dir) = &corpus_dir {
                        let _ = std::fs::write(dir.join(format!("{:016x}", hash(&input))), &input);
                    }
                    corpus.push(input);
                }
            }
            Err(_) => crash(name, &input, &artifacts),
        }
    }
    println!(
        "stable_fuzz {name}: {execs} execs in {:.1}s, corpus {}, outcome bits {}, no crash",
        start.elapsed().as_secs_f64(),
        corpus.len(),
        features.count_ones()
    );
}

fn hash(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

fn crash(name: &str, input: &[u8], dir: &PathBuf) -> ! {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("crash-{name}-{:016x}", hash(input)));
    let _ = std::fs::write(&path, input);
    eprintln!("stable_fuzz {name}: CRASH, input saved to {}", path.display());
    std::process::exit(1);
}
