#!/usr/bin/env bash
# Fuzzes what guests and boot bundles feed us (targets in fuzz/): hypercall-abi's split-driver
# protocol code (the ring consumer, the xenstore message parser, the console ring reader) and
# the hypervisor's own parsers (a guest kernel's ELF image and notes with the bootstrap layout
# built from it, the privileged-instruction decoder, the boot bundle's cpio archive, xl.cfg
# files and command line).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Driver, best first (the one used is printed):
#   1. cargo-fuzz on a nightly toolchain (libFuzzer + AddressSanitizer), if both are installed;
#   2. libFuzzer on the stable toolchain: the same targets built with rustc's stable
#      sanitizer-coverage flags (-Cpasses=sancov-module ...), coverage-guided, no ASan;
#   3. if libFuzzer cannot be built (no C++ compiler, or libfuzzer-sys not fetchable): the
#      pure-Rust mutation harness `stable_fuzz` (outcome feedback, not coverage-guided).
# Exits non-zero on a crash (the input is kept under fuzz/artifacts/) or if no
# driver can be built: it never passes without fuzzing. FUZZ_DRIVER=cargo-fuzz|libfuzzer|stable
# forces one driver.
set -euo pipefail

SECS="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ="$ROOT/fuzz"
TARGETS=(ring_consumer xenstore_parser console_reader guest_image privileged_insn boot_bundle)
HOST="$(rustc -vV | sed -n 's/^host: //p')"
cd "$FUZZ"
mkdir -p artifacts corpus

have_cargo_fuzz() {
    rustup toolchain list 2>/dev/null | grep -q '^nightly' &&
        cargo +nightly fuzz --version >/dev/null 2>&1
}

SANCOV_FLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

build_libfuzzer_stable() {
    local args=()
    for t in "${TARGETS[@]}"; do args+=(--bin "$t"); done
    # --target keeps the instrumentation flags off build scripts.
    RUSTFLAGS="$SANCOV_FLAGS" cargo build --release --features libfuzzer \
        --target "$HOST" --target-dir target/sancov "${args[@]}"
}

driver="${FUZZ_DRIVER:-}"
if [[ -z "$driver" ]]; then
    if have_cargo_fuzz; then
        driver=cargo-fuzz
    else
        echo "fuzz: no nightly toolchain with cargo-fuzz; trying libFuzzer on stable"
        if build_libfuzzer_stable; then driver=libfuzzer; built=1; else
            echo "fuzz: libFuzzer build failed; falling back to the stable mutation harness"
            driver=stable
        fi
    fi
fi

echo "fuzz: driver=$driver, ${SECS}s per target, targets: ${TARGETS[*]}"
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "fuzz: --- $t ---"
    case "$driver" in
    cargo-fuzz)
        cargo +nightly fuzz run --features libfuzzer "$t" "corpus/$t" -- \
            -max_total_time="$SECS" -print_final_stats=1 || status=1
        ;;
    libfuzzer)
        [[ -n "${built:-}" ]] || { build_libfuzzer_stable; built=1; }
        log="artifacts/$t/last-run.log"
        "target/sancov/$HOST/release/$t" "corpus/$t" -max_total_time="$SECS" \
            -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || status=1
        if [[ $status == 0 ]]; then
            grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss)' "$log" || true
        else
            tail -40 "$log"
        fi
        ;;
    stable)
        cargo build --release --bin stable_fuzz
        target/release/stable_fuzz "$t" "$SECS" "corpus/$t" "artifacts/$t" || status=1
        ;;
    *)
        echo "fuzz: unknown FUZZ_DRIVER=$driver" >&2
        exit 2
        ;;
    esac
    if [[ $status != 0 ]]; then
        echo "fuzz: $t FAILED (crash input under $FUZZ/artifacts/$t)" >&2
        exit 1
    fi
done
echo "fuzz: all targets ran ${SECS}s each with driver $driver, no crash"
