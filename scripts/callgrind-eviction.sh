#!/usr/bin/env bash
# Instructions reactord spends per request while allkeys-lru evicts on every SET, against the same
# load without a limit (Benchmarks/README.md "Memory limit"): 1,000,000 100-byte SETs fill it, then
# the counters are zeroed and redis-benchmark's SET+GET at -P 16 over 1,000,000 keys is counted.
# Usage: scripts/callgrind-eviction.sh [path/to/reactord] (default .build/release/reactord).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
export FILL="-c 50 -n 1200000 -P 16 -r 1000000 -d 100 -t set"
export LOAD="-c 50 -n 200000 -P 16 -r 1000000 -d 100 -t set,get"
echo "allkeys-lru, --max-memory 64mb: $(scripts/callgrind-hotpath.sh "$binary" --max-memory 64mb --eviction allkeys-lru | tail -1)"
echo "no limit: $(scripts/callgrind-hotpath.sh "$binary" | tail -1)"
