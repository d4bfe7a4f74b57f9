#!/usr/bin/env bash
# The memory limit, measured (Benchmarks/README.md "Memory limit"). Release build; every server on
# 127.0.0.1 with a kernel-chosen port, stopped by its PID at the end.
#   (a) a SET flood past --max-memory 64mb under noeviction: peak RSS against RSS at start, OOM
#       replies, GETs still served, a restart holding exactly the keys the flood left;
#   (b) allkeys-lru with 1,000,000 distinct keys: used_memory sampled every 20 ms (max, samples past
#       the limit) and GET p99 from an open-loop reader while an open-loop writer forces evictions,
#       against the same server without a limit, and redis-server beside it (same flags), RUNS rounds
#       with the servers alternating;
#   (c) memory per key: 1,000,000 keys of 14 bytes with values of 26 and 28 bytes (entries of 40 and
#       42 bytes: inline, and out of line since the slot header took 4 bytes for the LRU stamp).
# Usage: Benchmarks/memory-limit.sh [RUNS] [SECTIONS]   (SECTIONS: any of a, b, c; default abc)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECTIONS=${2:-abc}
swift build -c release --product reactord >/dev/null
swift build -c release --product kvbench >/dev/null
BIN=.build/release
WORK=$(mktemp -d /tmp/memory-limit-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
SERVER_CPU=(); CLIENT_CPU=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SERVER_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); fi

# start_reactord NAME ARGS... -> sets PORT and PID
start_reactord() {
    local name=$1; shift
    mkdir -p "$WORK/$name"
    "${SERVER_CPU[@]}" "$BIN/reactord" --kv-port 0 --echo-port off --time-port off --file-port off \
        --data-dir "$WORK/$name" --log-level error "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!; PIDS+=("$PID")
    for _ in $(seq 200); do grep -q "reactord: ready" "$WORK/$name.out" 2>/dev/null && break; sleep 0.05; done
    PORT=$(grep "listening kv tcp" "$WORK/$name.out" | sed 's/.*://')
}
start_redis() {
    local name=$1; shift
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${SERVER_CPU[@]}" redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --dir "$WORK" "$@" \
        >"$WORK/$name.log" 2>&1 &
    PID=$!; PIDS+=("$PID")
    for _ in $(seq 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f {print $2}'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

if [[ $SECTIONS == *a* ]]; then
echo "== (a) SET flood past --max-memory 64mb, noeviction"
start_reactord flood --max-memory 64mb --eviction noeviction --fsync everysec
FLOOD_PID=$PID; FLOOD_PORT=$PORT
RSS0=$(rss_kb "$FLOOD_PID")
OUT=$("${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$FLOOD_PORT" --ratio 1:0 --keyspace 100000000 \
    --value-size 100 -n 1500000 -c 50 -P 16 --json)
echo "flood: $(echo "$OUT" | json replies) OK, $(echo "$OUT" | json errors) errors (OOM)"
READS=$("${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$FLOOD_PORT" --ratio 0:1 --keyspace 100000000 \
    -n 200000 -c 50 -P 16 --json)
echo "reads after: $(echo "$READS" | json replies) served, $(echo "$READS" | json errors) errors"
echo "SET now: $(redis-cli -p "$FLOOD_PORT" set one-more v)"
HWM=$(hwm_kb "$FLOOD_PID")
KEYS=$(redis-cli -p "$FLOOD_PORT" dbsize)
echo "RSS at start ${RSS0} kB, peak ${HWM} kB, bound ${RSS0} + 1.5 x 65536 = $((RSS0 + 98304)) kB;" \
    "used_memory $(field "$FLOOD_PORT" memory used_memory), keys $KEYS"
stop "$FLOOD_PID"
start_reactord flood --max-memory 64mb --eviction noeviction --fsync everysec
echo "restart: keys $(redis-cli -p "$PORT" dbsize) (before: $KEYS)"
stop "$PID"
fi

# sample PORT LIMIT SECONDS -> prints "max_used samples_over samples"
sample() {
    python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, limit, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
end = time.time() + seconds
peak = over = n = 0
while time.time() < end:
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
    data = b""
    while b"\r\n" not in data: data += s.recv(65536)
    length = int(data[1:data.index(b"\r\n")])
    while len(data) < data.index(b"\r\n") + 2 + length + 2: data += s.recv(65536)
    used = int(data.split(b"used_memory:")[1].split(b"\r\n")[0])
    peak = max(peak, used); over += used > limit; n += 1
    time.sleep(0.02)
print(peak, over, n)
PY
}
run_lru() {  # NAME LIMITED(0|1) KIND(reactord|redis)
    local name=$1 limited=$2 kind=$3
    if [ "$kind" = reactord ]; then
        if [ "$limited" = 1 ]; then start_reactord "$name" --fsync no --max-memory 64mb --eviction allkeys-lru
        else start_reactord "$name" --fsync no; fi
    else
        if [ "$limited" = 1 ]; then start_redis "$name" --maxmemory 64mb --maxmemory-policy allkeys-lru
        else start_redis "$name"; fi
    fi
    local pid=$PID port=$PORT
    "${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$port" --ratio 1:0 --keyspace 1000000 --value-size 100 \
        -n 1000000 -c 50 -P 16 --json >/dev/null
    sample "$port" 67108864 12 >"$WORK/sample" &
    local sampler=$!
    "${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$port" --ratio 1:0 --keyspace 1000000 --value-size 100 \
        --rate 20000 -c 10 -P 64 --duration 10 --seed 7 --json >"$WORK/writer.json" &
    local writer=$!
    local reader
    reader=$("${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$port" --ratio 0:1 --keyspace 1000000 \
        --rate 5000 -c 10 -P 64 --duration 10 --seed 9 --json)
    wait "$writer"; wait "$sampler"
    read -r peak over n <"$WORK/sample"
    printf '%-28s GET p99 %6s us  max %6s us | SET p99 %6s us | used_memory max %10s, %s of %s samples > 64 MiB | evicted %s\n' \
        "$name" "$(echo "$reader" | json p99_us)" "$(echo "$reader" | json max_us)" "$(json p99_us <"$WORK/writer.json")" \
        "$peak" "$over" "$n" "$(field "$port" stats evicted_keys)"
    stop "$pid"
}
if [[ $SECTIONS == *b* ]]; then
echo "== (b) allkeys-lru, 1,000,000 distinct keys, --max-memory 64mb (reactord --fsync no; redis appendonly no)"
for round in $(seq "$RUNS"); do
    echo "-- round $round"
    run_lru "reactord allkeys-lru 64mb" 1 reactord
    run_lru "redis allkeys-lru 64mb" 1 redis
    run_lru "reactord no limit" 0 reactord
    run_lru "redis no limit" 0 redis
done
fi

if [[ $SECTIONS == *c* ]]; then
echo "== (c) memory per key, 1,000,000 keys (14-byte keys)"
for value in 26 28; do
    start_reactord "perkey$value" --fsync no
    RSS0=$(rss_kb "$PID")
    "${CLIENT_CPU[@]}" "$BIN/kvbench" --protocol resp --port "$PORT" --ratio 1:0 --keyspace 1000000 --value-size "$value" \
        -n 1 --preload -c 50 -P 16 --json >/dev/null
    echo "value $value B (entry $((14 + value)) B): keys $(redis-cli -p "$PORT" dbsize)," \
        "used_memory $(field "$PORT" memory used_memory), RSS growth $(( ($(rss_kb "$PID") - RSS0) * 1024 / 1000000 )) B/key"
    stop "$PID"
done
fi
