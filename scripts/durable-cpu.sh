#!/usr/bin/env bash
# Server CPU per durable SET, reactord `--fsync always` beside redis-server `appendonly yes
# appendfsync always`, with redis-benchmark's latency: each round runs the same load against each
# server in turn (the order alternates between rounds), and reads the server's CPU time (utime +
# stime of every thread, /proc/PID/stat) before and after.
# Usage: scripts/durable-cpu.sh [path/to/reactord]   (default .build/release/reactord)
# Environment: ROUNDS (default 3); LOAD (redis-benchmark arguments, default
# "-t set -c 50 -P 1 -n 200000 -r 100000"); STRACE=1 also counts the syscalls of one shorter run
# per server (strace -c -f, a run of its own: strace slows the server, its CPU is not reported).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
rounds=${ROUNDS:-3}
load=${LOAD:--t set -c 50 -P 1 -n 200000 -r 100000}
requests=$(echo "$load" | sed -E 's/.*-n ([0-9]+).*/\1/')
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

free_port() {
    local port
    while :; do
        port=$((10000 + RANDOM % 20000))  # below the ephemeral range (clients' ports)
        if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "$port"; return; fi
    done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_reactord() { # $1 port, $2 data dir, rest: prefix command (strace)
    local port=$1 dir=$2; shift 2
    "$@" "$binary" --kv-port "$port" --echo-port off --time-port off --file-port off --data-dir "$dir" \
        --fsync always --log-level error > "$work/reactord.$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do redis-cli -p "$port" ping > /dev/null 2>&1 && return; sleep 0.05; done
    cat "$work/reactord.$port.log"; exit 1
}

start_redis() { # $1 port, $2 dir, rest: prefix command
    local port=$1 dir=$2; shift 2
    mkdir -p "$dir"
    "$@" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes \
        --appendfsync always > "$work/redis.$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do redis-cli -p "$port" ping > /dev/null 2>&1 && return; sleep 0.05; done
    cat "$work/redis.$port.log"; exit 1
}

hz=$(getconf CLK_TCK)
rport=$(free_port); start_reactord "$rport" "$work/reactord-data"; rpid=${pids[-1]}
dport=$(free_port); start_redis "$dport" "$work/redis-data"; dpid=${pids[-1]}

measure() { # $1 name, $2 port, $3 pid
    local before after csv
    before=$(cpu_ticks "$3")
    # shellcheck disable=SC2086
    csv=$(redis-benchmark -p "$2" $load --csv 2>/dev/null | tail -1)
    after=$(cpu_ticks "$3")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    echo "$csv" | tr -d '"' | awk -F, -v name="$1" -v ticks=$((after - before)) -v hz="$hz" -v n="$requests" \
        '{printf "%-8s %8.2f us/request  %9.0f req/s  p50 %s ms  p99 %s ms\n", name, ticks * 1e6 / hz / n, $2, $5, $7}'
}

for round in $(seq 1 "$rounds"); do
    echo "round $round"
    if [ $((round % 2)) -eq 1 ]; then
        measure reactord "$rport" "$rpid"; measure redis "$dport" "$dpid"
    else
        measure redis "$dport" "$dpid"; measure reactord "$rport" "$rpid"
    fi
done

if [ -n "${STRACE:-}" ]; then
    short=$((requests / 4))
    sload=$(echo "$load" | sed -E "s/-n [0-9]+/-n $short/")
    for server in reactord redis; do
        port=$(free_port)
        if [ $server = reactord ]; then
            start_reactord "$port" "$work/strace-reactord" strace -c -f -o "$work/strace.$server"
        else
            start_redis "$port" "$work/strace-redis" strace -c -f -o "$work/strace.$server"
        fi
        # shellcheck disable=SC2086
        redis-benchmark -p "$port" $sload -q > /dev/null
        redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || true
        for _ in $(seq 1 200); do [ -s "$work/strace.$server" ] && break; sleep 0.05; done
        sleep 0.2
        echo "syscalls per request, $server ($short requests: $sload)"
        awk -v n="$short" '$1 ~ /^[0-9.]+$/ && NF >= 5 {calls = $4; name = $NF; printf "  %-16s %8.3f\n", name, calls / n}' \
            "$work/strace.$server" | sort -k2 -n -r | head -12
    done
fi
