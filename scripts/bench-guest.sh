#!/usr/bin/env bash
# Runs the guest kernel's bench role on Debian's Xen 4.17 and on our hypervisor under QEMU
# (TCG), and prints both figures and the ratio ours/xen for each measurement (rdtsc cycles,
# measured by the guest): null hypercall, console_io write, user-process syscall round trip,
# bounced page fault, a batch of 512 mmu_update entries, an event-channel send + poll on a
# loopback port, 4 KiB grant copies from dom0's own grants (1 and 16 per call) with the plain
# in-domain copy they compare with, and a grant map + unmap. A side that fails (no image, no
# bench lines, timeout) is reported as such and the other side is still measured.
#
# The two hypervisors are booted alternately RUNS times (xen, ours, xen, ours, ...) and each
# figure is the best of its side's runs: this machine is shared, and a burst of host load
# during one boot would otherwise decide the ratio. Every run's figures stay in the logs.
#
# Usage: scripts/bench-guest.sh [iterations]        (default 10000)
# Env:   GUEST=<guest ELF>  OURS=<hypervisor ELF>  XEN=<gunzipped xen-4.17>  TIMEOUT=<s>
#        RUNS=<boots of each side> (default 5)
# Exit:  0 if both sides produced figures, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
N="${1:-10000}"
RUNS="${RUNS:-5}"
TIMEOUT="${TIMEOUT:-180}"
BUILD=build
GUEST="${GUEST:-$BUILD/guest-kernel.elf}"
OURS="${OURS:-$BUILD/hypervisor.elf}"
XEN="${XEN:-$BUILD/xen-4.17}"
[ -f "$GUEST" ] || GUEST=target/x86_64-unknown-none/release/guest-kernel
[ -f "$OURS" ] || OURS=target/x86_64-unknown-none/release/hypervisor
if [ ! -f "$XEN" ] && [ -f /boot/xen-4.17-amd64.gz ]; then
  XEN="$(mktemp /tmp/xen-4.17.XXXXXX)"
  gunzip -c /boot/xen-4.17-amd64.gz > "$XEN"
fi
LOGDIR="$BUILD/bench"
mkdir -p "$LOGDIR"

# run_side NAME RUN KERNEL HV_OPTIONS END_PATTERN: boots KERNEL with the guest as the module
# and stops at END_PATTERN in the serial log (Xen halts instead of exiting QEMU) or QEMU's
# exit. The log is $LOGDIR/NAME-RUN.log.
run_side() {
  local name="$1" log="$LOGDIR/$1-$2.log" kernel="$3" opts="$4" end="$5"
  if [ ! -f "$kernel" ] || [ ! -f "$GUEST" ]; then
    echo "$name: FAILED (missing image: $kernel or $GUEST)" >&2
    return 1
  fi
  : > "$log"
  qemu-system-x86_64 -kernel "$kernel" -initrd "$GUEST" \
    -append "$opts -- role=bench iterations=$N" -m 512 -nographic -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial "file:$log" -monitor none \
    -display none >/dev/null 2>&1 &
  local pid=$! waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if grep -q "$end\|bench: grant_map_unmap failures\|bench: own grants" "$log" 2>/dev/null || [ "$waited" -ge "$((TIMEOUT * 10))" ]; then
      kill "$pid" 2>/dev/null
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$pid" 2>/dev/null
  if ! grep -q "bench: mmu_update_512\|bench: .* failed" "$log"; then
    echo "$name: FAILED (no bench lines; log $log, last lines:)" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
    return 1
  fi
}

# figure NAME MEASUREMENT: the smallest cycles_per_call over the side's runs.
figure() {
  for r in $(seq 1 "$RUNS"); do
    [ -f "$LOGDIR/$1-$r.log" ] || continue
    tr -d '\r' < "$LOGDIR/$1-$r.log" | sed -n "s/^bench: $2 .*cycles_per_call=\([0-9]*\).*/\1/p" | tail -n 1
  done | sort -n | head -n 1
}

rm -f "$LOGDIR"/xen-*.log "$LOGDIR"/ours-*.log
ok_xen=0; ok_ours=0
for r in $(seq 1 "$RUNS"); do
  run_side xen "$r" "$XEN" "console=com1 loglvl=all noreboot" "Hardware Dom0 \(halted\|crashed\)" && ok_xen=1
  run_side ours "$r" "$OURS" "console=com1 loglvl=info" "Hardware domain shut down" && ok_ours=1
done

printf '%-16s %14s %14s %10s\n' measurement xen ours ours/xen
for m in null_hypercall console_write user_syscall page_fault mmu_update_512 evtchn_send_poll \
  grant_copy_4k grant_copy_4k_batched local_copy_4k grant_map_unmap; do
  x=""; o=""
  [ "$ok_xen" = 1 ] && x="$(figure xen "$m")"
  [ "$ok_ours" = 1 ] && o="$(figure ours "$m")"
  ratio="-"
  if [ -n "$x" ] && [ -n "$o" ] && [ "$x" -gt 0 ]; then
    ratio="$(awk -v o="$o" -v x="$x" 'BEGIN { printf "%.2f", o / x }')"
  fi
  printf '%-16s %14s %14s %10s\n' "$m" "${x:-FAILED}" "${o:-FAILED}" "$ratio"
done
# Each side's grant copy against its own in-domain copy (issue 5's target: at most 1.25x).
for side in xen ours; do
  l="$(figure "$side" local_copy_4k)"; g="$(figure "$side" grant_copy_4k)"; b="$(figure "$side" grant_copy_4k_batched)"
  if [ -n "$l" ] && [ -n "$g" ] && [ -n "$b" ] && [ "$l" -gt 0 ]; then
    awk -v s="$side" -v l="$l" -v g="$g" -v b="$b" \
      'BEGIN { printf "%-5s grant copy / local copy: 1 per call %.2fx, 16 per call %.2fx\n", s, g / l, b / l }'
  fi
done
echo "(rdtsc cycles per call under QEMU TCG, best of $RUNS alternating boots per side, iterations=$N;"
echo " mmu_update_512 is per batch of 512 entries, N/64 batches; the copies run N/10 per round in"
echo " 10 interleaved rounds; logs in $LOGDIR/)"
[ "$ok_xen" = 1 ] && [ "$ok_ours" = 1 ]
