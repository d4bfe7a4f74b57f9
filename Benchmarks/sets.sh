#!/usr/bin/env bash
# Sets side by side with redis-server 7.0.15: throughput and server CPU per request of
# `redis-benchmark -t sadd,spop -c 50 -P 16 -r 100000`, and RSS per member for 100,000 sets of 10
# integers (intsets) and for one set of 1,000,000 16-byte members (a table).
#
# Usage: Benchmarks/sets.sh [RUNS] (default 3). REACTORD=PATH measures another binary (default
# .build/release/reactord, built if missing); N=REQUESTS sets redis-benchmark's -n (default 2000000).
#
# reactord runs with `--fsync no`, Redis with `--save '' --appendonly no`; each server is pinned to
# CPU 0 and every client to CPU 1, a fresh server per measurement, reactord and Redis alternating.
# CPU per request is the server's utime+stime (/proc/PID/stat) over the run divided by the requests.
# RSS per member is (VmRSS after loading − VmRSS after start) / members, loaded with redis-cli --pipe.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
requests=${N:-2000000}
reactord=${REACTORD:-.build/release/reactord}
[ -x "$reactord" ] || swift build -c release --product reactord >&2
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
bench_setup sets.sh

# The load files: 100,000 SADDs of 10 integers; 1,000 SADDs of 1,000 16-byte members.
python3 - "$work" <<'EOF'
import sys
def command(*words):
    return "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)
with open(sys.argv[1] + "/small.resp", "w") as out:
    for i in range(100_000):
        out.write(command("SADD", "set:%d" % i, *[str(i * 10 + j) for j in range(10)]))
with open(sys.argv[1] + "/large.resp", "w") as out:
    for batch in range(1_000):
        out.write(command("SADD", "big", *["member-%09d" % (batch * 1_000 + j) for j in range(1_000)]))
EOF

for run in $(seq "$runs"); do
    for server in reactord redis; do
        start "$server"
        before=$(cpu_ticks)
        output=$(taskset -c 1 redis-benchmark -p "$port" -c 50 -P 16 -r 100000 -n "$requests" -t sadd,spop -q 2>/dev/null \
            | tr '\r' '\n' | grep 'requests per second')
        after=$(cpu_ticks)
        stop
        cpu=$(awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n=$((2 * requests)) \
            'BEGIN { printf "%.2f", t / hz / n * 1e6 }')
        echo "run $run $server: $(echo "$output" | awk '{ printf "%s %s  ", $1, $2 }')server CPU ${cpu} µs/request"
        for shape in small large; do
            start "$server"
            base=$(rss_kib)
            taskset -c 1 redis-cli -p "$port" --pipe < "$work/$shape.resp" >/dev/null
            loaded=$(rss_kib)
            stop
            awk -v a="$base" -v b="$loaded" -v shape="$shape" -v server="$server" -v run="$run" \
                'BEGIN { printf "run %s %s: %s RSS per member %.1f B\n", run, server,
                         shape == "small" ? "100,000 sets of 10 integers" : "one set of 1,000,000 16-byte members",
                         (b - a) * 1024 / 1000000 }'
        done
    done
done
