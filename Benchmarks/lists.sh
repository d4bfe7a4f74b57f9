#!/usr/bin/env bash
# The list rows of Benchmarks/README.md: redis-benchmark's LPUSH, RPOP and LRANGE_100 against reactord
# and redis-server 7.0.15, alternating, each server on CPU 0 and the load on CPU 1, with the server's
# CPU per request (utime+stime from /proc over the 4 tests of 300,000 requests each).
# Usage: Benchmarks/lists.sh [path/to/reactord] [rounds]
set -u
bin=${1:-.build/release/reactord}
rounds=${2:-2}
load="-t lpush,rpop,lrange_100 -c 50 -P 16 -n 300000 -q"
requests=1200000   # LPUSH, RPOP, the LPUSH that fills for LRANGE, LRANGE_100
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$rounds"); do
    for server in reactord redis; do
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
        before=$(cpu $pid)
        # shellcheck disable=SC2086
        rates=$(taskset -c 1 redis-benchmark -p $port $load 2>/dev/null | tr '\r' '\n' | grep "requests per second" \
            | sed 's/ requests per second.*//' | tr '\n' ' ')
        ticks=$(($(cpu $pid) - before))
        echo "round $round $server: $rates| CPU $((ticks * 10)) ms, $(echo "scale=2; $ticks * 10000 / $requests" | bc) µs per request"
        kill $pid
        wait $pid 2> /dev/null
        rm -rf "$dir"
    done
done
