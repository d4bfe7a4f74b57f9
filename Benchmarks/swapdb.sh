#!/usr/bin/env bash
# SWAPDB's round trip with two full databases (Benchmarks/README.md "SWAPDB"): reactord and
# redis-server 7.0 alternately, databases 0 and 1 each filled with N keys (16-byte values, pipelined
# SETs), then SWAPDB 0 1 timed ROUNDS times from one client (round trip: request written to reply
# read); before that, with both databases empty, and a one-key SET's round trip for comparison.
# reactord --fsync everysec (its default), redis-server --appendonly yes --appendfsync everysec.
# Servers on 127.0.0.1, stopped by PID.
# Usage: Benchmarks/swapdb.sh [BINARY] [N] [ROUNDS]   (default .build/release/reactord 1000000 20)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/reactord}
N=${2:-1000000}
ROUNDS=${3:-20}
[ -n "${1:-}" ] || swift build -c release --product reactord >/dev/null
WORK=$(mktemp -d /tmp/swapdb-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/swap.py" <<'PY'
# swap.py PORT N ROUNDS -- fill databases 0 and 1 with N keys each, then time SWAPDB 0 1
import socket, sys, time
port, n, rounds = (int(a) for a in sys.argv[1:4])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def call(payload, replies):
    s.sendall(payload)
    buf = b""
    while buf.count(b"\r\n") < replies:
        data = s.recv(1 << 20)
        if not data: raise SystemExit("closed")
        buf += data
    return buf
def command(*words):
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
def timed(rounds, request=command(b"SWAPDB", b"0", b"1")):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        reply = call(request, 1)
        times.append((time.perf_counter() - start) * 1e6)
        assert reply == b"+OK\r\n", reply
    times.sort()
    return "median %.0f us, min %.0f, max %.0f" % (times[len(times) // 2], times[0], times[-1])
# A one-key SET's round trip first: what any write costs, for comparison.
write = timed(rounds, command(b"SET", b"one", b"v"))
call(command(b"DEL", b"one"), 1)
empty = timed(rounds)
for db in (0, 1):
    call(command(b"SELECT", b"%d" % db), 1)
    for start in range(0, n, 1000):
        end = min(n, start + 1000)
        call(b"".join(command(b"SET", b"key:%d:%d" % (db, i), b"v" * 16) for i in range(start, end)), end - start)
call(command(b"SELECT", b"0"), 1)
size = call(command(b"DBSIZE"), 1)
full = timed(rounds)
print("SET: %s | SWAPDB, empty: %s | %s keys each: %s" % (write, empty, size.strip().decode()[1:], full))
PY
for server in reactord redis; do
  rm -rf "$WORK/d"; mkdir -p "$WORK/d"
  if [ $server = reactord ]; then
    "$BIN" --kv-port 0 --echo-port off --time-port off --file-port off --data-dir "$WORK/d" --log-level error \
      > "$WORK/out" 2>&1 &
    PID=$!
    for _ in $(seq 200); do grep -q "reactord: ready" "$WORK/out" 2>/dev/null && break; sleep 0.05; done
    PORT=$(grep "listening kv tcp" "$WORK/out" | sed 's/.*://')
  else
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly yes --appendfsync everysec --dir "$WORK/d" \
      > "$WORK/redis.log" 2>&1 &
    PID=$!
    for _ in $(seq 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  fi
  echo "$server: $(python3 "$WORK/swap.py" "$PORT" "$N" "$ROUNDS")"
  kill "$PID"; wait "$PID" 2>/dev/null
done
