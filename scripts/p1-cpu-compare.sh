#!/usr/bin/env bash
# Server CPU per request at one request per round trip (`-P 1`) for several reactord binaries and
# redis-server at once (a build before and after a change, beside Redis): every server is started
# with its log on (reactord `--fsync everysec`, Redis AOF everysec, as Benchmarks/lists.sh), servers
# on CPU 0 and redis-benchmark on CPU 1; each round runs the tests against each server in turn, the
# order rotated from round to round, and reads the server's CPU time (utime + stime of all its
# threads, /proc/PID/stat) before and after each test.
# Usage: [N=100000] [TESTS="lpush rpop set get"] [CLIENTS=50] scripts/p1-cpu-compare.sh ROUNDS BINARY...
# Prints one line per round and server (µs of server CPU per request, split into user and system
# time as the kernel accounts them, and requests/s, each test) and the means of each test over the
# rounds, split likewise: at `-P 1` most of a request's CPU is the kernel's, and the split shows
# which part differs between the servers.
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
declare -A total totaluser
count=${#ports[@]}
for round in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((count - 1))); do
        i=$(((k + round) % count))
        line="round $round ${names[$i]}:"
        for test in $tests; do
            read -r user0 system0 < <(awk '{print $14, $15}' "/proc/${pids[$i]}/stat")
            rate=$(timeout 300 taskset -c 1 redis-benchmark -p "${ports[$i]}" -t "$test" -c "$clients" -P 1 -n "$n" -r 100000 \
                -q 2> /dev/null | tr '\r' '\n' | grep "requests per second" | tail -1 | sed 's/.*: //; s/ requests per second.*//')
            read -r user1 system1 < <(awk '{print $14, $15}' "/proc/${pids[$i]}/stat")
            user=$(echo "($user1 - $user0) * 1000000 / $hz / $n" | bc -l)
            system=$(echo "($system1 - $system0) * 1000000 / $hz / $n" | bc -l)
            us=$(echo "$user + $system" | bc -l)
            total[$i,$test]=$(echo "${total[$i,$test]:-0} + $us" | bc -l)
            totaluser[$i,$test]=$(echo "${totaluser[$i,$test]:-0} + $user" | bc -l)
            line="$line $test $(printf %.2f "$us") µs ($(printf %.2f "$user") user) ${rate:-?}/s;"
        done
        echo "$line  (load average $(cut -d' ' -f1 /proc/loadavg))"
    done
done
for i in "${!ports[@]}"; do
    line="mean ${names[$i]}:"
    for test in $tests; do
        mean=$(echo "${total[$i,$test]} / $rounds" | bc -l)
        user=$(echo "${totaluser[$i,$test]} / $rounds" | bc -l)
        line="$line $test $(printf %.2f "$mean") µs = $(printf %.2f "$user") user + $(printf %.2f "$(echo "$mean - $user" | bc -l)") system;"
    done
    echo "$line"
done
