#!/usr/bin/env bash
# Instructions and simulated cache misses per request of one command on a 1,000,000-member sorted set
# (Benchmarks/zsets.sh's "big": member m:NNNNNNNNNNNN with score NNNNNNNNNNNN), under valgrind's
# callgrind with its cache simulation. Counting is off while the set is loaded (redis-cli --pipe) and
# on only for the benchmark; the figures are callgrind's totals divided by -n.
# Usage: scripts/callgrind-zset-misses.sh [path/to/reactord | redis] ["redis-benchmark arguments"]
#        (default .build/release/reactord and "-c 50 -n 20000 -P 16 -r 1000000 zrank big m:__rand_int__";
#        the arguments must contain -n). KEEP=file keeps the profile (callgrind_annotate --sort=DLmr …).
#        FILL="redis-benchmark arguments" fills the server with that load instead of the large set (uncounted):
#        FILL="-c 50 -n 300000 -P 16 -r 100000 -t zadd" with "-c 50 -n 90000 -P 16 -r 100000 -t zpopmin"
#        counts ZPOPMINs that all pop (the fill leaves about 95,000 members in redis-benchmark's myzset).
# Columns: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw (instructions, data reads and writes, first-level and
# last-level misses). The simulation has no TLB: what huge pages save does not show here.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
load=${2:--c 50 -n 20000 -P 16 -r 1000000 zrank big m:__rand_int__}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT
# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # write_large_zset
write_large_zset "$work/large.resp"
port=$((20000 + RANDOM % 20000))
options=(--tool=callgrind --cache-sim=yes --instr-atstart=no "--callgrind-out-file=$work/callgrind.%p")
if [ "$binary" = redis ]; then
    valgrind "${options[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        > "$work/valgrind.log" 2>&1 &
else
    # valgrind 3.19 cannot read the toolchain's DWARF 5 debug info: measure a copy without it.
    strip --strip-debug -o "$work/reactord" "$binary"
    valgrind "${options[@]}" "$work/reactord" --kv-port "$port" --echo-port off --time-port off --file-port off \
        --data-dir "$work/data" --fsync no --log-level error > "$work/valgrind.log" 2>&1 &
fi
pid=$!
for _ in $(seq 1 240); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.5; done
if [ -n "${FILL:-}" ]; then
    # shellcheck disable=SC2086
    redis-benchmark -p "$port" -q $FILL > /dev/null
else
    redis-cli -p "$port" --pipe < "$work/large.resp" > /dev/null
fi
callgrind_control -i on "$pid" > /dev/null
# shellcheck disable=SC2086
redis-benchmark -p "$port" -q $load > /dev/null
callgrind_control -d "$pid" > /dev/null
kill -TERM "$pid"; wait "$pid" || true
pid=
dump=$(ls "$work"/callgrind.*.1 | head -1)
if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP"; fi
requests=$(echo "$load" | sed -E 's/.*-n ([0-9]+).*/\1/')
callgrind_annotate "$dump" | awk -v n="$requests" '/PROGRAM TOTALS/ {
    printf "per request (Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw):"
    for (i = 1; i <= 17; i += 2) { gsub(",", "", $i); printf " %.1f", $i / n }
    print "" }'
