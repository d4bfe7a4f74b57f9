#!/usr/bin/env bash
# Server CPU per EVALSHA of a script (default Benchmarks/getincr.lua: a GET and an INCR of its key),
# reactord `--fsync no` beside redis-server without persistence: each round runs redis-benchmark
# against each server in turn (the order alternates between rounds) at `-P 16` and at `-P 1`, and
# reads the server's CPU time (utime + stime of every thread, /proc/PID/stat) before and after;
# the user and system parts are printed beside the sum.
# Usage: scripts/evalsha-cpu.sh [path/to/reactord]   (default .build/release/reactord)
# Environment: ROUNDS (default 3); SCRIPT (default Benchmarks/getincr.lua); PIPELINED (redis-benchmark
# arguments, default "-c 50 -P 16 -n 400000"); SINGLE (default "-c 50 -P 1 -n 100000"); STRACE=1 also
# counts the system calls of one `-P 16` run per server (strace -c -f; its CPU is not reported);
# BEFORE=path/to/another/reactord measures that build too, as a third server in the same rounds
# (named "before"; the order rotates between rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/release/reactord}
rounds=${ROUNDS:-3}
script=${SCRIPT:-Benchmarks/getincr.lua}
pipelined=${PIPELINED:--c 50 -P 16 -n 400000}
single=${SINGLE:--c 50 -P 1 -n 100000}
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

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }  # user, system

wait_ready() { # $1 port, $2 log
    for _ in $(seq 1 200); do redis-cli -p "$1" ping > /dev/null 2>&1 && return; sleep 0.05; done
    cat "$2"; exit 1
}

start_reactord() { # $1 port, rest: prefix command (strace); BINARY overrides the binary
    local port=$1; shift
    "$@" "${BINARY:-$binary}" --kv-port "$port" --echo-port off --time-port off --file-port off --data-dir "$work/r$port" \
        --fsync no --log-level error > "$work/reactord.$port.log" 2>&1 &
    pids+=($!)
    wait_ready "$port" "$work/reactord.$port.log"
}

start_redis() { # $1 port, rest: prefix command
    local port=$1; shift
    mkdir -p "$work/d$port"
    "$@" redis-server --port "$port" --bind 127.0.0.1 --dir "$work/d$port" --save '' --appendonly no \
        > "$work/redis.$port.log" 2>&1 &
    pids+=($!)
    wait_ready "$port" "$work/redis.$port.log"
}

hz=$(getconf CLK_TCK)
rport=$(free_port); start_reactord "$rport"; rpid=${pids[-1]}
dport=$(free_port); start_redis "$dport"; dpid=${pids[-1]}
sha=$(redis-cli -p "$rport" script load "$(cat "$script")")
[ "$(redis-cli -p "$dport" script load "$(cat "$script")")" = "$sha" ] || { echo "SHA-1s differ" >&2; exit 1; }
names=(reactord redis); ports=("$rport" "$dport"); servers=("$rpid" "$dpid")
if [ -n "${BEFORE:-}" ]; then
    bport=$(free_port); BINARY=$BEFORE start_reactord "$bport"
    [ "$(redis-cli -p "$bport" script load "$(cat "$script")")" = "$sha" ] || { echo "SHA-1s differ" >&2; exit 1; }
    names+=(before); ports+=("$bport"); servers+=("${pids[-1]}")
fi

measure() { # $1 name, $2 port, $3 pid, $4 load
    local before after csv requests
    requests=$(echo "$4" | sed -E 's/.*-n ([0-9]+).*/\1/')
    read -ra before <<< "$(cpu_ticks "$3")"
    # shellcheck disable=SC2086
    csv=$(redis-benchmark -p "$2" $4 --csv evalsha "$sha" 1 key 2>/dev/null | tail -1)
    read -ra after <<< "$(cpu_ticks "$3")"
    echo "$csv" | tr -d '"' | awk -F, -v name="$1" -v load="$4" -v user=$((after[0] - before[0])) \
        -v sys=$((after[1] - before[1])) -v hz="$hz" -v n="$requests" \
        '{printf "%-8s %-22s %6.2f us/call (user %5.2f, system %5.2f)  %9.0f calls/s\n", name, load,
            (user + sys) * 1e6 / hz / n, user * 1e6 / hz / n, sys * 1e6 / hz / n, $2}'
}

for round in $(seq 1 "$rounds"); do
    echo "round $round"
    for load in "$pipelined" "$single"; do
        count=${#names[@]}
        for step in $(seq 0 $((count - 1))); do
            # Round 1 in the order above, each later round starting one server further on.
            i=$(((round - 1 + step) % count))
            measure "${names[$i]}" "${ports[$i]}" "${servers[$i]}" "$load"
        done
    done
done

if [ -n "${STRACE:-}" ]; then
    for server in reactord redis; do
        port=$(free_port)
        if [ $server = reactord ]; then
            start_reactord "$port" strace -c -f -o "$work/strace.$server"
        else
            start_redis "$port" strace -c -f -o "$work/strace.$server"
        fi
        redis-cli -p "$port" script load "$(cat "$script")" > /dev/null
        # shellcheck disable=SC2086
        redis-benchmark -p "$port" $pipelined -q evalsha "$sha" 1 key > /dev/null
        # Stopped by the protocol: a signal to strace would leave the traced server running.
        redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || true
        wait "${pids[-1]}" 2>/dev/null || true
        echo "$server: system calls for $(echo "$pipelined" | sed -E 's/.*-n ([0-9]+).*/\1/') calls ($pipelined)"
        head -20 "$work/strace.$server"
    done
fi
