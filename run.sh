#!/usr/bin/env bash
# The project's one entry point: set-up, build, demo, tests, benchmarks. See `./run.sh help`.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
BUILD="$ROOT/build"
KTARGET=x86_64-unknown-none
EXIT_SUCCESS=33   # QEMU status for our hypervisor's clean end (docs/ARCHITECTURE.md)

say() { printf '[run.sh] %s\n' "$*" >&2; }
die() { printf '[run.sh] error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'TXT'
Usage: ./run.sh [COMMAND] [-- QEMU ARGS...]

Commands:
  demo     (default) set up if needed, build release images, boot the demo in QEMU
           (our hypervisor running the PV guest kernel as dom0); exits with the demo's status
  test     set up if needed, build, run host unit tests, every QEMU scenario, a short fuzz run
  build    set up if needed and build the release images into build/
  gdb      boot the demo paused with QEMU's gdbstub on :1234 and print how to attach
  bench    run the benchmarks (the same guest on ours vs Xen 4.17; domU-to-domU events, switches and grants; host ring throughput)
  fuzz     run every fuzz target longer (FUZZ_SECONDS per target, default 60)
  lint     cargo fmt --check and cargo clippy on every crate
  setup    only install what is missing (QEMU, Xen 4.17, Xen headers, toolchain route)
  help     this text

Arguments after `--` go to QEMU (demo and gdb).
Environment: DEMO_ARGS (the demo's dom0 command line), HV_ARGS (hypervisor options).
TXT
}

# ---- set-up -------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing packages: $*; install them with: sudo apt-get install -y --no-install-recommends $*"
  if [ $APT_UPDATED = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  say "installing: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

setup_packages() {
  local want=()
  command -v qemu-system-x86_64 >/dev/null || want+=(qemu-system-x86)
  [ -f /usr/include/xen/xen.h ] || want+=(libxen-dev)
  [ -f /boot/xen-4.17-amd64.gz ] || want+=(xen-hypervisor-4.17-amd64)
  command -v ld >/dev/null || want+=(binutils)
  command -v cc >/dev/null || want+=(gcc libc6-dev)
  command -v cpio >/dev/null || want+=(cpio)
  [ ${#want[@]} = 0 ] || apt_install "${want[@]}"
}

# Picks the toolchain route for the bare-metal kernels (DESIGN.md §3): a rustup-installed
# x86_64-unknown-none target, else Debian's rustc-web/cargo-web/rust-web-src with build-std.
ROUTE=""
setup_toolchain() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  if command -v rustup >/dev/null; then
    if rustup target list --installed 2>/dev/null | grep -qx "$KTARGET"; then ROUTE=rustup; return; fi
    say "adding the $KTARGET target with rustup"
    if timeout 300 rustup target add "$KTARGET" >/dev/null 2>&1; then ROUTE=rustup; return; fi
    say "rustup could not add $KTARGET: using Debian's rustc-web route"
  fi
  if [ ! -x /usr/bin/cargo ] || [ ! -d /usr/lib/rustlib/src/rust/library ]; then
    apt_install rustc-web cargo-web rust-web-src
  fi
  ROUTE=debian
}

setup() {
  setup_packages
  setup_toolchain
}

# ---- build --------------------------------------------------------------------------------
kernel_cargo() {
  if [ "$ROUTE" = debian ]; then
    PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@" \
      -Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem
  else
    cargo "$@"
  fi
}

build() {
  say "building kernels ($ROUTE route)"
  kernel_cargo build --release --target "$KTARGET" -p hypervisor -p guest-kernel
  mkdir -p "$BUILD"
  cp "target/$KTARGET/release/hypervisor" "$BUILD/hypervisor.elf"
  cp "target/$KTARGET/release/guest-kernel" "$BUILD/guest-kernel.elf"
  cc -c tests/fixtures/mini_guest.S -o "$BUILD/mini-guest.o"
  ld -T tests/fixtures/mini_guest.ld --no-warn-rwx-segments "$BUILD/mini-guest.o" -o "$BUILD/mini-guest.elf"
  if [ ! -f "$BUILD/xen-4.17" ] || [ /boot/xen-4.17-amd64.gz -nt "$BUILD/xen-4.17" ]; then
    gunzip -c /boot/xen-4.17-amd64.gz > "$BUILD/xen-4.17"
  fi
  say "images in build/: hypervisor.elf guest-kernel.elf mini-guest.elf xen-4.17"
}

# ---- run ----------------------------------------------------------------------------------
qemu_base() {
  echo qemu-system-x86_64 -m 512 -nographic -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$BUILD/hypervisor.elf"
}

demo() {
  local status=0
  say "booting the demo (QEMU; Ctrl-A X quits)"
  # shellcheck disable=SC2046
  $(qemu_base) -initrd "$BUILD/guest-kernel.elf" \
    -append "${HV_ARGS:-console=com1 loglvl=info} -- ${DEMO_ARGS:-role=demo shutdown=poweroff}" \
    "$@" || status=$?
  if [ "$status" = "$EXIT_SUCCESS" ]; then say "demo ended cleanly"; return 0; fi
  say "demo ended with QEMU status $status (33 = clean, 35 = failure reported, 0 = triple fault)"
  return 1
}

gdb_boot() {
  say "QEMU paused with a gdbstub on localhost:1234. In another terminal:"
  say "  gdb $BUILD/hypervisor.elf -ex 'target remote localhost:1234'"
  # shellcheck disable=SC2046
  $(qemu_base) -initrd "$BUILD/guest-kernel.elf" -s -S \
    -append "${HV_ARGS:-console=com1 loglvl=all} -- ${DEMO_ARGS:-role=demo}" "$@"
}

run_tests() {
  local results
  results=$(mktemp)
  # Every cargo test run is shown as it goes and kept, so the end can add up the results.
  tee_results() { "$@" 2>&1 | tee -a "$results"; }
  say "host unit tests"
  tee_results cargo test -p hypervisor --lib
  tee_results cargo test -p guest-kernel --lib
  tee_results cargo test -p hypercall-abi
  say "QEMU scenarios"
  HV_BUILD_DIR="$BUILD" tee_results cargo test -p scenarios -- --test-threads=2
  if [ -x scripts/fuzz.sh ]; then
    say "short fuzz run"
    scripts/fuzz.sh "${FUZZ_SHORT_SECONDS:-10}"
  fi
  say "all tests passed"
  awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
  rm -f "$results"
}

lint() {
  cargo fmt --all -- --check
  cargo clippy -p hypercall-abi -p scenarios --all-targets -- -D warnings
  cargo clippy -p hypervisor --lib --tests -- -D warnings
  kernel_cargo clippy --release --target "$KTARGET" -p hypervisor -p guest-kernel -- -D warnings
  # The fuzz crate is a workspace of its own (fuzz/).
  (cd fuzz && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings)
}

cmd=${1:-demo}
[ $# -gt 0 ] && shift
if [ "${1:-}" = "--" ]; then shift; fi
case "$cmd" in
  help|-h|--help) usage ;;
  setup) setup; say "set-up complete ($ROUTE route)" ;;
  build) setup; build ;;
  demo) setup; build; demo "$@" ;;
  gdb) setup; build; gdb_boot "$@" ;;
  test) setup; build; run_tests ;;
  lint) setup; lint ;;
  bench)
    setup; build
    status=0
    for b in scripts/bench-guest.sh scripts/bench-domains.sh scripts/ring-bench.sh; do
      if [ -x "$b" ]; then say "running $b"; "$b" || status=1; fi
    done
    exit $status
    ;;
  fuzz) setup; [ -x scripts/fuzz.sh ] || die "scripts/fuzz.sh is missing"; scripts/fuzz.sh "${FUZZ_SECONDS:-60}" ;;
  *) usage; die "unknown command '$cmd'" ;;
esac
