#!/usr/bin/env bash
# Instructions reactord spends per request while allkeys-lru evicts on every SET, against the same
# load without a limit (Benchmarks/README.md "Memory limit"): 1,000,000 100-byte SETs fill it, then
# the counters are zeroed and redis-benchmark's SET+GET at -P 16 over 1,000,000 keys is counted.
# Usage: scripts/callgrind-eviction.sh [path/to/reactord] (default .build/release/reactord).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
run() {
    local label=$1; shift
    local work pid port= line total
    work=$(mktemp -d)
    mkfifo "$work/out"
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$binary" --kv-port 0 --echo-port off \
        --time-port off --file-port off --data-dir "$work/data" --fsync no --log-level error "$@" \
        > "$work/out" 2> "$work/valgrind.log" &
    pid=$!
    while read -r line; do
        case $line in
            "reactord: listening kv tcp "*) port=${line##*:} ;;
            "reactord: ready") break ;;
        esac
    done < "$work/out"
    redis-benchmark -p "$port" -c 50 -n 1200000 -P 16 -r 1000000 -d 100 -t set -q > /dev/null
    callgrind_control -z "$pid" > /dev/null
    redis-benchmark -p "$port" -c 50 -n 200000 -P 16 -r 1000000 -d 100 -t set,get -q > /dev/null
    callgrind_control -d "$pid" > /dev/null
    kill -TERM "$pid"; wait "$pid" || true
    total=$(callgrind_annotate "$(ls "$work"/callgrind.*.1 | head -1)" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$label: $((total / 400000)) instructions per request (SET+GET, -P 16, 1,000,000 keys, 100-byte values)"
    rm -rf "$work"
}
run "allkeys-lru, --max-memory 64mb" --max-memory 64mb --eviction allkeys-lru
run "no limit"
