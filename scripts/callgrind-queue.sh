#!/usr/bin/env bash
# Counts the instructions a server executes per job of kvbench's queue workload (producers LPUSH,
# consumers wait in BRPOP; Benchmarks/queue.sh is the same load at full speed), under valgrind's
# callgrind: the counters are zeroed once the consumers are blocked and dumped when kvbench ends, and
# the count is divided by the LPUSHes INFO commandstats counted meanwhile (CONFIG RESETSTAT at the
# zero). User space only; the rate must be one the valgrinded server keeps up with.
# Usage: [KEEP=profile.out] scripts/callgrind-queue.sh [path/to/reactord | redis] [RATE] [DURATION]
#        (environment: CONSUMERS=100 PRODUCERS=4; defaults: .build/release/reactord, 300/s, 20 s)
#        reactord runs with --fsync everysec, redis-server with AOF everysec, as in queue.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
rate=${2:-300}
duration=${3:-20}
consumers=${CONSUMERS:-100}
producers=${PRODUCERS:-4}
kvbench=${KVBENCH:-.build/release/kvbench}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
while true; do
    port=$((20000 + RANDOM % 12000))
    ss -ltn | grep -q ":$port " || break
done
if [ "$binary" = redis ]; then
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" redis-server --port "$port" --bind 127.0.0.1 \
        --save '' --appendonly yes --appendfsync everysec --maxclients $((consumers + producers + 100)) --dir "$work" \
        > "$work/valgrind.log" 2>&1 &
else
    # valgrind 3.19 cannot read the toolchain's DWARF 5 debug info: measure a copy without it.
    strip --strip-debug -o "$work/reactord" "$binary"
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$work/reactord" --kv-port "$port" \
        --echo-port off --time-port off --file-port off --data-dir "$work/data" \
        --max-connections $((consumers + producers + 100)) --fsync everysec --log-level error > "$work/valgrind.log" 2>&1 &
fi
pid=$!
for _ in $(seq 1 200); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.2; done
"$kvbench" --protocol resp --port "$port" --workload queue -c "$producers" --consumers "$consumers" --rate "$rate" \
    --duration "$duration" > "$work/kvbench.txt" 2>&1 &
bench=$!
blocked() { redis-cli -p "$port" info clients | awk -F: '/blocked_clients/ {print $2 + 0}'; }
for _ in $(seq 1 300); do [ "$(blocked)" -ge $((consumers - consumers / 10)) ] && break; sleep 0.2; done
redis-cli -p "$port" config resetstat > /dev/null
callgrind_control -z "$pid" > /dev/null
wait "$bench"
callgrind_control -d "$pid" > /dev/null
jobs=$(redis-cli -p "$port" info commandstats | awk -F'[=,:]' '/cmdstat_lpush/ {print $3}')
dump=$(ls "$work"/callgrind.*.1 2>/dev/null | head -1)
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP"; fi
grep -E "flow|throughput" "$work/kvbench.txt"
echo "$binary: $total instructions over $jobs jobs: $((total / jobs)) per job"
