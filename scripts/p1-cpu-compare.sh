#!/usr/bin/env bash
# Server CPU per request at one request per round trip (`-P 1`) for several reactord binaries and
# redis-server at once (a build before and after a change, beside Redis): every server is started
# with its log on (reactord `--fsync everysec`, Redis AOF everysec, as Benchmarks/lists.sh), servers
# on CPU 0 and redis-benchmark on CPU 1; each round runs the tests against each server in turn, the
# order rotated from round to round, and reads the server's CPU time (utime + stime of all its
# threads, /proc/PID/stat) before and after each test.
# Usage: [N=100000] [TESTS="lpush rpop set get"] [CLIENTS=50] scripts/p1-cpu-compare.sh ROUNDS BINARY...
# Prints one line per round and server (µs of server CPU per request and requests/s, each test) and
# the means of each test over the rounds.
set -u
cd "$(dirname "$0")/.."
rounds=$1; shift
n=${N:-100000}
tests=${TESTS:-lpush rpop set get}
clients=${CLIENTS:-50}
# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # compare_setup, free_port
compare_setup
for binary in "$@"; do
    p=$(free_port)
    taskset -c 0 "$binary" --kv-port "$p" --echo-port off --time-port off --file-port off --data-dir "$work/r$p" \
        --fsync everysec --log-level error > "$work/log.$p" 2>&1 &
    pids+=($!); ports+=("$p"); names+=("$binary")
done
p=$(free_port); mkdir -p "$work/d$p"
taskset -c 0 redis-server --port "$p" --bind 127.0.0.1 --dir "$work/d$p" --save '' --appendonly yes \
    --appendfsync everysec > "$work/redis.log" 2>&1 &
pids+=($!); ports+=("$p"); names+=(redis-server)
for p in "${ports[@]}"; do
    for _ in $(seq 1 200); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -p "$p" ping > /dev/null 2>&1 || { echo "server on port $p did not start"; exit 1; }
done
hz=$(getconf CLK_TCK)
declare -A total
count=${#ports[@]}
for round in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((count - 1))); do
        i=$(((k + round) % count))
        line="round $round ${names[$i]}:"
        for test in $tests; do
            before=$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")
            rate=$(timeout 300 taskset -c 1 redis-benchmark -p "${ports[$i]}" -t "$test" -c "$clients" -P 1 -n "$n" -r 100000 \
                -q 2> /dev/null | tr '\r' '\n' | grep "requests per second" | tail -1 | sed 's/.*: //; s/ requests per second.*//')
            after=$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")
            us=$(echo "($after - $before) * 1000000 / $hz / $n" | bc -l)
            total[$i,$test]=$(echo "${total[$i,$test]:-0} + $us" | bc -l)
            line="$line $test $(printf %.2f "$us") µs ${rate:-?}/s;"
        done
        echo "$line  (load average $(cut -d' ' -f1 /proc/loadavg))"
    done
done
for i in "${!ports[@]}"; do
    line="mean ${names[$i]}:"
    for test in $tests; do line="$line $test $(printf %.2f "$(echo "${total[$i,$test]} / $rounds" | bc -l)") µs;"; done
    echo "$line"
done
