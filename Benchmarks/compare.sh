#!/usr/bin/env bash
# Side-by-side: reactord and redis-server on loopback, measured in one run by the same clients
# (redis-benchmark and kvbench), with ratios. Server on CPU 0, client on CPU 1.
#
#   Benchmarks/compare.sh [-n REQUESTS]      (default 200000 per test)
#
# Needs: redis-server and redis-benchmark (Debian: redis-server, redis-tools). Builds reactord and
# kvbench in release mode first. Every server it starts listens on 127.0.0.1 only and is stopped
# by its PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=200000
while getopts "n:" opt; do
    case $opt in
        n) requests=$OPTARG ;;
        *) echo "usage: $0 [-n REQUESTS]" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-benchmark; do
    command -v $tool >/dev/null || { echo "compare.sh: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

swift build -c release --product reactord >/dev/null
swift build -c release --product kvbench >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_reactord FSYNC -> prints port; records pid
start_reactord() {
    local dir="$work/reactord-$1" out="$work/reactord-$1.out"
    mkdir -p "$dir"
    taskset -c 0 "$bin/reactord" --kv-port 0 --echo-port off --time-port off --file-port off \
        --data-dir "$dir" --fsync "$1" --log-level error >"$out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q 'reactord: ready' "$out" 2>/dev/null && break; sleep 0.1; done
    grep 'listening kv tcp' "$out" | sed 's/.*://'
}

# start_redis APPENDFSYNC|none -> prints port; records pid
start_redis() {
    local port; port=$(free_port)
    local dir="$work/redis-$1"; mkdir -p "$dir"
    if [ "$1" = none ]; then
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 &
    else
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$1" --dir "$dir" >/dev/null 2>&1 &
    fi
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$port"
}

rb() { # port test pipeline -> requests per second
    taskset -c 1 redis-benchmark -p "$1" -t "$2" -c 50 -P "$3" -n "$requests" -q 2>/dev/null | tr '\r' '\n' \
        | grep -a 'requests per second' | tail -1 | awk '{print $2}'
}
rbp99() { # port test pipeline -> p99 ms (from the CSV latency report)
    taskset -c 1 redis-benchmark -p "$1" -t "$2" -c 50 -P "$3" -n "$requests" --csv 2>/dev/null \
        | tail -1 | awk -F, '{gsub(/"/,""); print $7}'
}
kb() { # port ratio pipeline -> "ops p99"
    taskset -c 1 "$bin/kvbench" --port "$1" --protocol resp -c 50 -P "$3" -n "$requests" --ratio "$2" \
        --keyspace 100000 --json 2>/dev/null \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["ops_per_sec"]), d["p99_us"]/1000)'
}
ratio() { python3 -c "print(f'{float($1)/float($2):.2f}')"; }

r_no=$(start_reactord no)
redis_no=$(start_redis no)
printf '%-34s %14s %14s %7s\n' "test (-c 50)" "reactord" "redis-server" "ratio"
for p in 1 16; do
    for t in set get; do
        a=$(rb "$r_no" $t $p); b=$(rb "$redis_no" $t $p)
        printf '%-34s %14s %14s %7s\n' "redis-benchmark $t -P $p (ops/s)" "$a" "$b" "$(ratio "$a" "$b")"
        a=$(rbp99 "$r_no" $t $p); b=$(rbp99 "$redis_no" $t $p)
        printf '%-34s %14s %14s %7s\n' "redis-benchmark $t -P $p (p99 ms)" "$a" "$b" "$(ratio "$a" "$b")"
    done
    for spec in "1:0 set" "0:1 get"; do
        set -- $spec
        read -r ao ap <<<"$(kb "$r_no" "$1" $p)"; read -r bo bp <<<"$(kb "$redis_no" "$1" $p)"
        printf '%-34s %14s %14s %7s\n' "kvbench $2 -P $p (ops/s)" "$ao" "$bo" "$(ratio "$ao" "$bo")"
        printf '%-34s %14s %14s %7s\n' "kvbench $2 -P $p (p99 ms)" "$ap" "$bp" "$(ratio "$ap" "$bp")"
    done
done

r_always=$(start_reactord always)
redis_always=$(start_redis always)
a=$(rb "$r_always" set 1); b=$(rb "$redis_always" set 1)
printf '%-34s %14s %14s %7s\n' "SET fsync always -P 1 (ops/s)" "$a" "$b" "$(ratio "$a" "$b")"
echo "(last row: reactord --fsync always vs redis appendfsync always; others: reactord --fsync no vs redis appendonly yes, appendfsync no)"
