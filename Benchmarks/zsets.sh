#!/usr/bin/env bash
# Sorted sets side by side with redis-server 7.0.15 (issue 25's target rows):
#   1. `redis-benchmark -t zadd,zpopmin -c 50 -r 100000` at -P 16 and at -P 1: ops/s and server CPU
#      per request;
#   2. on one set of 1,000,000 members (member m:NNNNNNNNNNNN with score NNNNNNNNNNNN, the 12-digit
#      numbers redis-benchmark's __rand_int__ gives), at -c 50 -P 16: ZRANGEBYSCORE of 10 and of 100
#      members (from a random score, LIMIT), ZRANK of a random member, ZINCRBY of a random member;
#   3. RSS per member: 100,000 sorted sets of 10 members (listpacks) and one of 1,000,000 (a skiplist).
# The scheduler row is `kvbench --workload scheduler` (Benchmarks/README.md gives its command).
#
# Usage: Benchmarks/zsets.sh [RUNS] (default 2). REACTORD=PATH measures another binary (default
# .build/release/reactord, built if missing); N=REQUESTS sets -n for the -P 16 rows (default 1000000;
# the -P 1 row and ZRANGEBYSCORE of 100 use N/5); ONLY="zadd large rss" picks parts, SERVERS="reactord
# redis" the servers.
#
# reactord runs with `--fsync no`, Redis with `--save '' --appendonly no`; each server is pinned to
# CPU 0 and every client to CPU 1, a fresh server per measurement, reactord and Redis alternating.
# CPU per request is the server's utime+stime (/proc/PID/stat) over the run divided by the requests.
# RSS per member is (VmRSS after loading − VmRSS after start) / members, loaded with redis-cli --pipe.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-2}
requests=${N:-1000000}
only=${ONLY:-zadd large rss}
servers=${SERVERS:-reactord redis}
reactord=${REACTORD:-.build/release/reactord}
[ -x "$reactord" ] || swift build -c release --product reactord >&2
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
bench_setup zsets.sh

# bench LABEL REQUESTS-PER-TEST TESTS redis-benchmark-arguments…: one line of ops/s and CPU/request.
bench() {
    local label=$1 n=$2 tests=$3
    shift 3
    local before after output cpu
    before=$(cpu_ticks)
    output=$(taskset -c 1 redis-benchmark -p "$port" -n "$n" -q "$@" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' || true)
    after=$(cpu_ticks)
    cpu=$(per_request $((after - before)) $((tests * n)))
    echo "  $label: $(echo "$output" | sed -E 's/^([A-Za-z_]+).*: ([0-9.]+) requests per second.*/\1 \2 ops\/s/' | tr '\n' ' ') server CPU ${cpu} µs/request"
}

# The load files: 100,000 ZADDs of 10 members; 1,000 ZADDs of 1,000 members to one set (scripts/lib.sh).
python3 - "$work" <<'EOF'
import sys
def command(*words):
    return "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)
with open(sys.argv[1] + "/small.resp", "w") as out:
    for i in range(100_000):
        pairs = []
        for j in range(10):
            pairs += [str(i * 10 + j), "member-%d" % j]
        out.write(command("ZADD", "zset:%d" % i, *pairs))
EOF
write_large_zset "$work/large.resp"

for run in $(seq "$runs"); do
    for server in $servers; do
        echo "run $run $server"
        if [[ $only == *zadd* ]]; then
            start "$server"
            bench "-c 50 -P 16 -r 100000 -t zadd,zpopmin" "$requests" 2 -c 50 -P 16 -r 100000 -t zadd,zpopmin
            stop
            start "$server"
            bench "-c 50 -P 1 -r 100000 -t zadd,zpopmin" $((requests / 5)) 2 -c 50 -P 1 -r 100000 -t zadd,zpopmin
            stop
        fi
        if [[ $only == *large* ]]; then
            start "$server"
            taskset -c 1 redis-cli -p "$port" --pipe < "$work/large.resp" >/dev/null
            bench "ZRANGEBYSCORE 10" "$requests" 1 -c 50 -P 16 -r 1000000 zrangebyscore big __rand_int__ +inf LIMIT 0 10
            bench "ZRANGEBYSCORE 100" $((requests / 5)) 1 -c 50 -P 16 -r 1000000 zrangebyscore big __rand_int__ +inf LIMIT 0 100
            bench "ZRANK" "$requests" 1 -c 50 -P 16 -r 1000000 zrank big m:__rand_int__
            bench "ZINCRBY" "$requests" 1 -c 50 -P 16 -r 1000000 zincrby big 1 m:__rand_int__
            stop
        fi
        if [[ $only == *rss* ]]; then
            for shape in small large; do
                start "$server"
                base=$(rss_kib)
                taskset -c 1 redis-cli -p "$port" --pipe < "$work/$shape.resp" >/dev/null
                loaded=$(rss_kib)
                stop
                awk -v a="$base" -v b="$loaded" -v shape="$shape" \
                    'BEGIN { printf "  %s RSS per member %.1f B\n",
                             shape == "small" ? "100,000 sorted sets of 10 members" : "one sorted set of 1,000,000 members",
                             (b - a) * 1024 / 1000000 }'
            done
        fi
    done
done
