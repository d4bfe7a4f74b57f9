#!/usr/bin/env bash
# Server CPU per EVALSHA of Benchmarks/getincr.lua for several reactord binaries and redis-server at
# once (a build before and after a change, beside Redis): every server is started (reactord
# `--fsync no`, Redis without persistence), then each round runs redis-benchmark against each in
# turn, the order rotated from round to round, and reads the server's CPU time (utime + stime of all
# its threads, /proc/PID/stat) before and after, as scripts/evalsha-cpu.sh does for one binary.
# Usage: scripts/evalsha-cpu-compare.sh ROUNDS "REDIS-BENCHMARK LOAD" BINARY...
#   e.g. scripts/evalsha-cpu-compare.sh 3 "-c 50 -P 16 -n 1000000" before/reactord after/reactord
# Prints one line a round (µs of server CPU per call, each server) and the means.
set -u
cd "$(dirname "$0")/.."
rounds=$1; load=$2; shift 2
# shellcheck source=scripts/lib.sh
source scripts/lib.sh  # compare_setup, free_port
compare_setup
for binary in "$@"; do
    p=$(free_port)
    "$binary" --kv-port "$p" --echo-port off --time-port off --file-port off --data-dir "$work/r$p" --fsync no \
        --log-level error > "$work/log.$p" 2>&1 &
    pids+=($!); ports+=("$p"); names+=("$binary")
done
p=$(free_port); mkdir -p "$work/d$p"
redis-server --port "$p" --bind 127.0.0.1 --dir "$work/d$p" --save '' --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!); ports+=("$p"); names+=(redis-server)
for p in "${ports[@]}"; do
    for _ in $(seq 1 200); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.05; done
done
body=$(cat Benchmarks/getincr.lua)
sha=
for p in "${ports[@]}"; do sha=$(redis-cli -p "$p" script load "$body"); done
requests=$(echo "$load" | sed -E 's/.*-n ([0-9]+).*/\1/')
hz=$(getconf CLK_TCK)
declare -A total
count=${#ports[@]}
for round in $(seq 1 "$rounds"); do
    line="round $round:"
    for k in $(seq 0 $((count - 1))); do
        i=$(((k + round) % count))
        before=$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")
        # shellcheck disable=SC2086
        redis-benchmark -p "${ports[$i]}" $load --csv evalsha "$sha" 1 key > /dev/null 2>&1
        after=$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")
        us=$(echo "($after - $before) * 1000000 / $hz / $requests" | bc -l)
        total[$i]=$(echo "${total[$i]:-0} + $us" | bc -l)
        line="$line ${names[$i]}=$(printf %.3f "$us")"
    done
    echo "$line  (load average $(cut -d' ' -f1 /proc/loadavg))"
done
for i in "${!ports[@]}"; do printf "mean %s %.3f us/call\n" "${names[$i]}" "$(echo "${total[$i]} / $rounds" | bc -l)"; done
