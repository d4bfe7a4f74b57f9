#!/usr/bin/env bash
# Server CPU per durable SET, reactord `--fsync always` beside redis-server `appendonly yes
# appendfsync always`, with redis-benchmark's latency: each round runs the same load against each
# server in turn (the order alternates between rounds), and reads the server's CPU time (utime +
# stime of every thread, /proc/PID/stat) before and after.
# Usage: scripts/durable-cpu.sh [path/to/reactord ...]   (default .build/release/reactord; several
#        binaries, before and after a change, are each measured in every round, the order rotating)
# Environment: ROUNDS (default 3); LOAD (redis-benchmark arguments, default
# "-t set -c 50 -P 1 -n 200000 -r 100000"); PROBE=1 also runs a GET probe beside each load (one more
# connection sending a GET every 2 ms while the SETs run, python3) and prints its p50/p99/max: what
# a read waits while durable writes are served (the probe's few GETs count in the server's CPU, the
# same for every server); STRACE=1 also counts the syscalls of
# one shorter run per server (strace -c -f, a run of its own: strace slows the server, its CPU is not
# reported; the first binary only); SLOW_FSYNC_US=N has every fsync of every server take at least N
# µs (Benchmarks/slowfsync.c preloaded, cc builds it): a realistic disk's sync in place of this one's.
set -euo pipefail
cd "$(dirname "$0")/.."
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(.build/release/reactord)
binary=${binaries[0]}
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

preload=()
if [ -n "${SLOW_FSYNC_US:-}" ]; then
    cc -O2 -shared -fPIC -o "$work/slowfsync.so" Benchmarks/slowfsync.c -ldl
    preload=(env SLOW_FSYNC_US="$SLOW_FSYNC_US" LD_PRELOAD="$work/slowfsync.so")
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_reactord() { # $1 port, $2 data dir, $3 binary, rest: prefix command (strace)
    local port=$1 dir=$2 bin=$3; shift 3
    "$@" "${preload[@]}" "$bin" --kv-port "$port" --echo-port off --time-port off --file-port off --data-dir "$dir" \
        --fsync always --log-level error > "$work/reactord.$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do redis-cli -p "$port" ping > /dev/null 2>&1 && return; sleep 0.05; done
    cat "$work/reactord.$port.log"; exit 1
}

start_redis() { # $1 port, $2 dir, rest: prefix command
    local port=$1 dir=$2; shift 2
    mkdir -p "$dir"
    "$@" "${preload[@]}" redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly yes \
        --appendfsync always > "$work/redis.$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do redis-cli -p "$port" ping > /dev/null 2>&1 && return; sleep 0.05; done
    cat "$work/redis.$port.log"; exit 1
}

hz=$(getconf CLK_TCK)
names=() ports=() spids=()
for i in "${!binaries[@]}"; do
    port=$(free_port); start_reactord "$port" "$work/reactord-data.$i" "${binaries[$i]}"
    name=reactord; [ ${#binaries[@]} -gt 1 ] && name="reactord$((i + 1))"
    names+=("$name") ports+=("$port") spids+=("${pids[-1]}")
done
port=$(free_port); start_redis "$port" "$work/redis-data"
names+=(redis) ports+=("$port") spids+=("${pids[-1]}")
[ ${#binaries[@]} -gt 1 ] && for i in "${!binaries[@]}"; do echo "reactord$((i + 1)): ${binaries[$i]}"; done

measure() { # $1 name, $2 port, $3 pid
    local before after csv probe_pid probe=
    before=$(cpu_ticks "$3")
    if [ -n "${PROBE:-}" ]; then
        python3 - "$2" > "$work/probe.txt" <<'PROBE' &
import signal, socket, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
request, latencies, running = b"*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n", [], [True]
signal.signal(signal.SIGINT, lambda *_: running.__setitem__(0, False))
while running[0]:
    start = time.perf_counter()
    sock.sendall(request)
    reply = b""
    while not reply.endswith(b"\r\n"):
        reply += sock.recv(64)
    latencies.append(time.perf_counter() - start)
    time.sleep(max(0.0, 0.002 - (time.perf_counter() - start)))
latencies.sort()
at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3
print(f"  GET probe p50 {at(0.5):.3f} p99 {at(0.99):.3f} max {latencies[-1] * 1e3:.3f} ms ({len(latencies)} GETs)")
PROBE
        probe_pid=$!
    fi
    # shellcheck disable=SC2086
    csv=$(redis-benchmark -p "$2" $load --csv 2>/dev/null | tail -1)
    after=$(cpu_ticks "$3")
    if [ -n "${PROBE:-}" ]; then
        kill -INT "$probe_pid" 2>/dev/null || true; wait "$probe_pid" 2>/dev/null || true
        probe=$(cat "$work/probe.txt")
    fi
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    # (the probe's own CPU on the server is counted too, the same for every server).
    echo "$csv" | tr -d '"' | awk -F, -v name="$1" -v ticks=$((after - before)) -v hz="$hz" -v n="$requests" -v probe="$probe" \
        '{printf "%-9s %8.2f us/request  %9.0f req/s  p50 %s ms  p99 %s ms%s\n", name, ticks * 1e6 / hz / n, $2, $5, $7, probe}'
}

servers=${#names[@]}
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    for k in $(seq 0 $((servers - 1))); do
        i=$(( (k + round - 1) % servers ))
        measure "${names[$i]}" "${ports[$i]}" "${spids[$i]}"
    done
done

if [ -n "${STRACE:-}" ]; then
    short=$((requests / 4))
    sload=$(echo "$load" | sed -E "s/-n [0-9]+/-n $short/")
    for server in reactord redis; do
        port=$(free_port)
        if [ $server = reactord ]; then
            start_reactord "$port" "$work/strace-reactord" "$binary" strace -c -f -o "$work/strace.$server"
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
