#!/usr/bin/env bash
# Pipeline 1 side by side: reactord (--fsync no) against redis-server (no persistence), ROUNDS
# rounds with the two alternating, each running redis-benchmark SET then GET at -P 1 (-c 50, 300,000
# requests, 100,000 random keys, 16-byte values). Server on CPU 0, redis-benchmark on CPU 1. Per
# round: ops/s, the server's CPU share over the phase (from /proc/PID/stat) and the load
# generator's (a lower bound, sampled every 0.2 s): at -P 1 neither is usually saturated, the rate
# being set by round trips. Medians at the end.
#
#   Benchmarks/pipeline1.sh [ROUNDS]      (default 7)
#
# Needs: redis-server, redis-cli, redis-benchmark, python3, taskset. Builds reactord in release
# mode. Servers listen on 127.0.0.1:7481 and are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
swift build -c release --product reactord > /dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)

round() {
    local name=$1
    rm -rf "$work/data"
    mkdir -p "$work/data"
    if [ "$name" = reactord ]; then
        taskset -c 0 "$bin/reactord" --kv-port 7481 --echo-port off --time-port off --file-port off \
            --data-dir "$work/data" --fsync no --log-level error > /dev/null 2>&1 &
    else
        taskset -c 0 redis-server --port 7481 --bind 127.0.0.1 --save '' --appendonly no --dir "$work/data" \
            > /dev/null 2>&1 &
    fi
    server_pid=$!
    for _ in $(seq 200); do redis-cli -p 7481 ping > /dev/null 2>&1 && break; sleep 0.05; done
    local test
    for test in set get; do
        local server0 start client=0
        server0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
        start=$(date +%s.%N)
        taskset -c 1 redis-benchmark -p 7481 -c 50 -n 300000 -P 1 -r 100000 -d 16 -t $test --csv > "$work/out.csv" &
        local load_pid=$!
        while kill -0 $load_pid 2>/dev/null; do
            client=$(awk '{print $14 + $15}' "/proc/$load_pid/stat" 2>/dev/null || echo "$client")
            sleep 0.2
        done
        wait $load_pid
        local server1 end ops
        server1=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
        end=$(date +%s.%N)
        ops=$(tail -1 "$work/out.csv" | cut -d, -f2 | tr -d '"')
        python3 -c "
wall = $end - $start
print('$name $test %.0f ops/s, server CPU %.0f%%, redis-benchmark CPU at least %.0f%%, server CPU per request %.2f us' % (
    $ops, ($server1 - $server0) / $hz / wall * 100, $client / $hz / wall * 100, ($server1 - $server0) / $hz / ($ops * wall) * 1e6))"
    done
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

for _ in $(seq "$rounds"); do
    round reactord
    round redis
done | tee "$work/rounds.txt"
python3 - "$work/rounds.txt" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'(\w+) (set|get) (\d+) ops/s, .* per request ([\d.]+) us', line)
    if m:
        rows.setdefault((m.group(1), m.group(2)), []).append((float(m.group(3)), float(m.group(4))))
for test in ("set", "get"):
    ours, theirs = rows.get(("reactord", test), []), rows.get(("redis", test), [])
    if not ours or not theirs:
        continue
    a, b = statistics.median(o for o, _ in ours), statistics.median(o for o, _ in theirs)
    ca, cb = statistics.median(c for _, c in ours), statistics.median(c for _, c in theirs)
    print("%s medians: reactord %.0f ops/s, redis-server %.0f (%.2fx); CPU per request %.2f against %.2f us" % (
        test.upper(), a, b, a / b, ca, cb))
PY
