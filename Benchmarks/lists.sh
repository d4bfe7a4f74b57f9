#!/usr/bin/env bash
# The list rows of Benchmarks/README.md: redis-benchmark's list tests (LPUSH, RPOP and LRANGE_100 unless
# TESTS names others, e.g. TESTS="lpush rpush lpop rpop lrange_100 lrange_300 lrange_500 lrange_600")
# against reactord and redis-server 7.0.15, alternating, each server on CPU 0 and the load on CPU 1, with
# the server's CPU per request of each test (utime+stime from /proc around it; N requests each, -P PIPELINE).
# Usage: [N=300000] [PIPELINE=16] [SERVERS="reactord redis"] [TESTS="…"] Benchmarks/lists.sh [path/to/reactord] [rounds]
set -u
bin=${1:-.build/release/reactord}
rounds=${2:-2}
n=${N:-300000}
pipeline=${PIPELINE:-16}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$rounds"); do
    for server in ${SERVERS:-reactord redis}; do
        dir=$(mktemp -d)
        if [ "$server" = reactord ]; then
            port=7520
            taskset -c 0 "$bin" --kv-port $port --echo-port off --time-port off --file-port off --data-dir "$dir" \
                --fsync everysec --log-level error > /dev/null 2>&1 &
        else
            port=7521
            taskset -c 0 redis-server --port $port --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
                --dir "$dir" > /dev/null 2>&1 &
        fi
        pid=$!
        for _ in $(seq 1 100); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
        line="round $round $server:"
        for test in ${TESTS:-lpush rpop lrange_100}; do
            # One redis-benchmark per test, so that each has its own CPU figure; the pops pop what the
            # pushes before them pushed, an LRANGE_* counts the LPUSH that fills its list as requests too.
            before=$(cpu $pid)
            # shellcheck disable=SC2086
            rate=$(taskset -c 1 redis-benchmark -p $port -t $test -c 50 -P "$pipeline" -n "$n" -q 2>/dev/null | tr '\r' '\n' \
                | grep "requests per second" | tail -1 | sed 's/.*: //; s/ requests per second.*//')
            ticks=$(($(cpu $pid) - before))
            requests=$n
            case $test in lrange_*) requests=$((2 * n)) ;; esac
            line="$line $test $rate/s $(echo "scale=2; $ticks * 10000 / $requests" | bc) µs;"
        done
        echo "$line"
        kill $pid
        wait $pid 2> /dev/null
        rm -rf "$dir"
    done
done
