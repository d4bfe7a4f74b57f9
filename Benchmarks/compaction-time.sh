#!/usr/bin/env bash
# How long one compaction takes (Benchmarks/README.md): loads N distinct keys with 16-byte values
# through `redis-cli --pipe`, waits for any compaction the load started, then times BGREWRITEAOF from
# the request until INFO persistence says it ended (polled every 5 ms). BINARY is a reactord binary,
# or `redis` for redis-server 7.0 with an append-only file (its AOF rewrite). Servers on 127.0.0.1,
# random free ports, stopped by PID.
# Usage: Benchmarks/compaction-time.sh BINARY|redis [N]   (N default 1000000)
set -uo pipefail
which=$1; n=${2:-1000000}
work=$(mktemp -d /tmp/compaction-time-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ "$which" = redis ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly yes --appendfsync everysec --dir "$work" \
    > "$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
else
  "$which" --kv-port 0 --echo-port off --time-port off --file-port off --data-dir "$work/d" --log-level info \
    > "$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q "reactord: ready" "$work/log" 2>/dev/null && break; sleep 0.05; done
  port=$(grep "listening kv tcp" "$work/log" | sed 's/.*://')
fi
python3 -c "
import sys
out = sys.stdout.buffer
for i in range($n):
    k = b'key:%d' % i
    out.write(b'*3\r\n\$3\r\nSET\r\n\$%d\r\n%s\r\n\$16\r\nvvvvvvvvvvvvvvvv\r\n' % (len(k), k))
" | redis-cli -p "$port" --pipe > /dev/null
for _ in $(seq 600); do redis-cli -p "$port" info persistence | grep -q "aof_rewrite_in_progress:1" || break; sleep 0.1; done
sleep 1
start=$(date +%s%N)
redis-cli -p "$port" bgrewriteaof > /dev/null
sleep 0.005
while redis-cli -p "$port" info persistence | grep -q "aof_rewrite_in_progress:1"; do sleep 0.005; done
end=$(date +%s%N)
echo "$which: $(redis-cli -p "$port" dbsize) keys, BGREWRITEAOF $(( (end - start) / 1000000 )) ms"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
