#!/usr/bin/env bash
# Host ring benchmark: requests per second through a blkif front/back ring pair on two threads
# over shared memory, with and without Xen's notify avoidance, with notifications per request.
#   scripts/ring-bench.sh            (RING_BENCH_REQUESTS, RING_BENCH_NOTIFY_NS tune it)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "ring-bench: cargo bench -p hypercall-abi --bench ring_throughput"
cargo bench -p hypercall-abi --bench ring_throughput
