#!/usr/bin/env bash
# What the metrics port costs reactord per request, measured side by side with it off and on:
#   1. user-space instructions per request under callgrind (all threads, start-up and shutdown
#      included): off, on, and on with one scrape of /metrics at the end (which hands every
#      command observed to the registry: the whole replay cost);
#   2. redis-benchmark -P 16 ops/s, off, on, and on with /metrics scraped every 0.1 s, alternating,
#      ROUNDS rounds (the server's threads on CPU 0, clients on CPU 1).
# Load in both: redis-benchmark -c 50 -n 200000 -P 16 -r 100000 -d 16 -t set,get (400,000
# requests). Every server listens on 127.0.0.1 with kernel-chosen ports and is stopped by its PID.
#
#   Benchmarks/metrics-cost.sh [-r ROUNDS] [-n REQUESTS] [-c] [-o]
#     -c: callgrind only; -o: ops/s only; -n: requests of each kind in the ops/s rounds (default
#     200,000: a phase of ~0.3 s, where rounds vary by ±20%; 1,000,000 steadies them)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
requests=200000
callgrind_only=0
ops_only=0
while getopts "r:n:co" opt; do
    case $opt in
        r) rounds=$OPTARG ;;
        n) requests=$OPTARG ;;
        c) callgrind_only=1 ;;
        o) ops_only=1 ;;
        *) echo "usage: $0 [-r ROUNDS] [-n REQUESTS] [-c] [-o]" >&2; exit 2 ;;
    esac
done
for tool in valgrind redis-benchmark curl taskset strip; do
    command -v $tool >/dev/null || { echo "metrics-cost.sh: $tool not found" >&2; exit 1; }
done

swift build -c release --product reactord >/dev/null
work=$(mktemp -d)
# valgrind 3.19 cannot read the DWARF 5 the Swift 6.3 toolchain writes: measure a copy without
# debug info (the instructions run are the same).
strip --strip-debug -o "$work/reactord" "$(swift build -c release --show-bin-path)/reactord"
bin=$work
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME MODE [PREFIX...]: starts reactord (--fsync no, kv only; MODE on adds the metrics
# port) under PREFIX, waits for ready; sets server_pid, kv_port, metrics_port.
start() {
    local name=$1 mode=$2
    shift 2
    local extra=()
    [ "$mode" != off ] && extra=(--metrics-port 0)
    rm -rf "$work/data-$name"
    "$@" "$bin/reactord" --fsync no --kv-port 0 --echo-port off --time-port off --file-port off \
        --data-dir "$work/data-$name" "${extra[@]}" >"$work/out-$name" 2>"$work/err-$name" &
    server_pid=$!
    for _ in $(seq 600); do
        grep -q '^reactord: ready' "$work/out-$name" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^reactord: ready' "$work/out-$name" || { echo "$name did not start" >&2; cat "$work/err-$name" >&2; exit 1; }
    kv_port=$(sed -n 's/^reactord: listening kv tcp .*:\([0-9]*\)$/\1/p' "$work/out-$name")
    metrics_port=$(sed -n 's/^reactord: listening metrics tcp .*:\([0-9]*\)$/\1/p' "$work/out-$name")
}

stop() {
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
}

# load N [PREFIX...]: N SETs then N GETs.
load() {
    local n=$1
    shift
    "$@" redis-benchmark -p "$kv_port" -c 50 -n "$n" -P 16 -r 100000 -d 16 -t set,get -q
}

[ $ops_only = 1 ] || echo "== callgrind: user-space instructions per request (400,000 requests)"
for mode in off on on+scrape; do
    [ $ops_only = 1 ] && break
    start "cg-$mode" "$mode" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$mode"
    load 200000 >/dev/null
    if [ "$mode" = on+scrape ]; then
        curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep -c '^reactord_command_duration_seconds_count' >/dev/null
    fi
    stop
    total=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$work/callgrind.$mode" | head -1)
    echo "$mode: $total instructions, $((total / 400000)) per request"
done

[ $callgrind_only = 1 ] && exit 0

echo "== redis-benchmark -P 16 ops/s, alternating ($rounds rounds; on+scrape: /metrics fetched every 0.1 s meanwhile)"
for round in $(seq "$rounds"); do
    for mode in off on on+scrape; do
        start "rb-$mode-$round" "$mode" taskset -c 0
        scraper=
        if [ "$mode" = on+scrape ]; then
            # One keep-alive connection, as Prometheus keeps one: no process started per scrape.
            # The load starts once the first scrape is answered, so Python's own start-up (tens
            # of milliseconds on the client's CPU) is not counted against the SET phase.
            rm -f "$work/scraper.fifo"; mkfifo "$work/scraper.fifo"
            taskset -c 1 python3 -c '
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
c.request("GET", "/metrics"); c.getresponse().read()
with open(sys.argv[2], "w") as ready: ready.write("scraping\n")
while True:
    time.sleep(0.1); c.request("GET", "/metrics"); c.getresponse().read()' "$metrics_port" "$work/scraper.fifo" 2>/dev/null &
            scraper=$!
            # Opened read-write, the FIFO's open cannot block if the scraper died before opening it.
            exec 3<> "$work/scraper.fifo"
            read -r -t 10 -u 3 _ || { echo "the scraper did not start" >&2; exit 1; }
            exec 3<&-
        fi
        result=$(load "$requests" taskset -c 1 | tr '\r' '\n' | sed -n 's/^\(SET\|GET\): \([0-9.]*\) requests per second.*/\1 \2/p' | tr '\n' ' ')
        [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
        # Server CPU (user+system, all threads) per request: less disturbed by other load than ops/s.
        ticks=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
        cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / (2 * n) }')
        stop
        echo "round $round $mode: $result CPU µs/request $cpu"
    done
done
