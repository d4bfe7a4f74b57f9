#!/usr/bin/env bash
# Counts the instructions reactord executes for redis-benchmark's SET and GET at pipeline 16
# (the hot path), under valgrind's callgrind, counting only the benchmark itself (the counters
# are zeroed once reactord has answered one request and dumped when the benchmark ends).
# Usage: [KEEP=profile.out] scripts/callgrind-hotpath.sh [path/to/reactord] [REACTORD FLAGS...]
#        (default .build/release/reactord; flags are added to the server's, e.g. --max-memory 64mb)
#        scripts/callgrind-hotpath.sh redis [PORT]   the same measurement of redis-server without
#        persistence (default port 7412 on 127.0.0.1), for the ratio; REDIS_AOF=everysec runs it with
#        its append-only file (reactord always keeps its log: the fair figure for writes).
# Environment: FILL="redis-benchmark arguments" runs a load before the counters are zeroed (to fill
# the keyspace first); LOAD="redis-benchmark arguments" replaces the counted load (default
# "-c 50 -n 200000 -P 16 -r 100000 -d 16 -t set,get"; the per-request figure divides by -n times
# the number of tests). Either may end with a command (LOAD="-c 50 -n 2000 hgetall h1000"): -q is
# passed before them, since redis-benchmark would take a word after a command as its argument.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
[ $# -gt 0 ] && shift
load=${LOAD:--c 50 -n 200000 -P 16 -r 100000 -d 16 -t set,get}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
if [ "$binary" = redis ]; then
    aof="--appendonly no"
    # REDIS_AOF=everysec (or always, no): Redis with its append-only file, as reactord keeps its log.
    [ -n "${REDIS_AOF:-}" ] && aof="--appendonly yes --appendfsync $REDIS_AOF --dir $work"
    port=${1:-7412}  # the arguments after "redis" (shifted above)
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" redis-server --port "$port" --bind 127.0.0.1 \
        --save '' $aof > "$work/valgrind.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.5; done
else
    # valgrind 3.19 cannot read the toolchain's DWARF 5 debug info: measure a copy without it.
    strip --strip-debug -o "$work/reactord" "$binary"
    binary=$work/reactord
    mkfifo "$work/out"
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$binary" --kv-port 0 --echo-port off \
        --time-port off --file-port off --data-dir "$work/data" --fsync no --log-level error "$@" \
        > "$work/out" 2> "$work/valgrind.log" &
    pid=$!
    port=
    while read -r line; do
        case $line in
            "reactord: listening kv tcp "*) port=${line##*:} ;;
            "reactord: ready") break ;;
        esac
    done < "$work/out"
fi
[ -n "$port" ] || { cat "$work/valgrind.log"; exit 1; }
# One request first, so one-time work (the command table's lazy statics) is not counted.
redis-cli -p "$port" ping > /dev/null
if [ -n "${FILL:-}" ]; then
    # shellcheck disable=SC2086
    redis-benchmark -p "$port" -q $FILL > /dev/null
fi
callgrind_control -z "$pid" > /dev/null
# shellcheck disable=SC2086
redis-benchmark -p "$port" -q $load > "$work/benchmark.txt"
tr "\r" "\n" < "$work/benchmark.txt" | grep "requests per second"
callgrind_control -d "$pid" > /dev/null
kill -TERM "$pid"; wait "$pid" || true
dump=$(ls "$work"/callgrind.*.1 2>/dev/null | head -1)
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
if [ -n "${KEEP:-}" ]; then cp "$dump" "$KEEP"; fi   # KEEP=file keeps the profile for callgrind_annotate
requests=$(tr "\r" "\n" < "$work/benchmark.txt" | grep -c "requests per second")
requests=$((requests * $(echo "$load" | sed -E 's/.*-n ([0-9]+).*/\1/')))
echo "instructions for $requests requests ($load): $total ($((total / requests)) per request)"
