#!/usr/bin/env bash
# RSS under a memory limit (Benchmarks/README.md "RSS under a memory limit"): reactord and redis-server
# 7.0 alternately, each with --max-memory 64mb and one eviction policy, fed 1,000,000 distinct SETs of
# 100-byte values, 1,000 per pipelined write (the volatile-* policies' SETs carry EX). Prints the RSS
# at start, the peak (VmHWM), RSS once any compaction (or AOF rewrite) has ended and RSS settled,
# used_memory, error replies (OOM under noeviction) and keys; then, from RSS sampled every 0.2 s, the
# most RSS seen outside and during compactions (redis-server: its AOF rewrites, whose child process's
# memory is not the server's RSS). Servers on 127.0.0.1, stopped by PID.
# Usage: Benchmarks/memory-rss.sh [POLICY...]   (default: all six)
set -uo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product reactord >/dev/null
BIN=.build/release/reactord
WORK=$(mktemp -d /tmp/memory-rss-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/feed.py" <<'PY'
# feed.py PORT N BATCH SIZE TTL  -- N distinct SETs key:i of SIZE-byte values, BATCH per pipelined write
import socket, sys
port, n, batch, size, ttl = (int(a) for a in sys.argv[1:6])
s = socket.create_connection(("127.0.0.1", port))
value = b"v" * size
errors = 0
buf = b""
def reply_count(data):
    return data.count(b"\r\n")
for start in range(0, n, batch):
    parts = []
    for i in range(start, min(n, start + batch)):
        key = b"key:%d" % i
        if ttl:
            parts.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$%d\r\n%d\r\n" % (len(key), key, size, value, len(str(ttl)), ttl))
        else:
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
    s.sendall(b"".join(parts))
    want = min(n, start + batch) - start
    got = 0
    while got < want:
        data = s.recv(1 << 20)
        if not data: raise SystemExit("closed")
        buf += data
        lines = buf.split(b"\r\n")
        buf = lines[-1]
        for line in lines[:-1]:
            got += 1
            if line.startswith(b"-"): errors += 1
print(errors)
PY
cat > "$WORK/sample.py" <<'PY'
# sample.py PID PORT -- until PID exits: every 0.2 s its VmRSS and whether a compaction (AOF rewrite)
# runs; then prints the most RSS seen with and without one, and how many compactions were seen.
import socket, sys, time, os
pid, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
def rewriting():
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n")
    data = b""
    def more():
        chunk = s.recv(65536)
        if not chunk: raise EOFError  # the server stopped
        return chunk
    while b"\r\n" not in data: data += more()
    n = int(data[1:data.index(b"\r\n")]); h = data.index(b"\r\n") + 2
    while len(data) < h + n + 2: data += more()
    return b"aof_rewrite_in_progress:1" in data
peak = {False: 0, True: 0}
windows, was = 0, False
while True:
    try:
        now = rewriting()
        rss = int([l for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS")][0].split()[1])
    except Exception:
        break
    peak[now] = max(peak[now], rss)
    windows += now and not was
    was = now
    time.sleep(0.2)
print("RSS max %d kB outside compactions, %d kB during (%d seen)" % (peak[False], peak[True], windows))
PY
[ $# -gt 0 ] || set -- noeviction allkeys-lru allkeys-random volatile-lru volatile-random volatile-ttl
field() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'; }
hwm() { awk '/^VmHWM/ {print $2}' /proc/$1/status; }
rss() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
for policy in "$@"; do
  ttl=0; case $policy in volatile*) ttl=100000;; esac
  for server in reactord redis; do
    rm -rf "$WORK/d"; mkdir -p "$WORK/d"
    if [ $server = reactord ]; then
      $BIN --kv-port 0 --echo-port off --time-port off --file-port off --data-dir "$WORK/d" --log-level error \
        --max-memory 64mb --eviction $policy > "$WORK/out" 2>&1 &
      PID=$!
      for _ in $(seq 200); do grep -q "reactord: ready" "$WORK/out" 2>/dev/null && break; sleep 0.05; done
      PORT=$(grep "listening kv tcp" "$WORK/out" | sed 's/.*://')
    else
      PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      redis-server --bind 127.0.0.1 --port $PORT --save '' --appendonly yes --appendfsync everysec --dir "$WORK/d" \
        --maxmemory 64mb --maxmemory-policy $policy > "$WORK/redis.log" 2>&1 &
      PID=$!
      for _ in $(seq 200); do redis-cli -p $PORT ping >/dev/null 2>&1 && break; sleep 0.05; done
    fi
    base=$(rss $PID)
    python3 "$WORK/sample.py" $PID $PORT > "$WORK/sampled" 2>/dev/null &
    SAMPLER=$!
    errors=$(python3 "$WORK/feed.py" $PORT 1000000 1000 100 $ttl)
    for _ in $(seq 300); do [ "$(redis-cli -p $PORT info persistence | tr -d '\r' | awk -F: '/^aof_rewrite_in_progress/{print $2}')" = 1 ] || break; sleep 0.1; done
    last=0; for _ in $(seq 40); do now=$(rss $PID); [ "$now" = "$last" ] && break; last=$now; sleep 0.5; done
    echo "$policy $server: base ${base} kB, peak $(hwm $PID) kB, settled $(rss $PID) kB, used_memory $(field $PORT used_memory), errors $errors, keys $(redis-cli -p $PORT dbsize)"
    kill $PID; wait $PID 2>/dev/null; wait $SAMPLER
    echo "  $(cat "$WORK/sampled")"
  done
done
