#!/usr/bin/env bash
# The list memory rows of Benchmarks/README.md: one list of N 16-byte items (RPUSH of 1,000 at a time
# through redis-cli --pipe), RSS per item from VmRSS before and after (once no compaction runs), then the DEL's round trip,
# for reactord (--fsync no) and redis-server 7.0.15 (no persistence). Needs python3 with redis-py.
# Usage: Benchmarks/list-memory.sh [path/to/reactord] [N, a multiple of 1000]
set -u
bin=${1:-.build/release/reactord}
items=${2:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$items" "$work/load.resp" <<'PY'
import sys
items, path = int(sys.argv[1]), sys.argv[2]
with open(path, "wb") as out:
    for c in range(items // 1000):
        args = [b"RPUSH", b"biglist"] + [b"%016d" % (c * 1000 + i) for i in range(1000)]
        out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for server in reactord redis; do
    dir=$(mktemp -d)
    if [ "$server" = reactord ]; then
        port=$((20000 + RANDOM % 12000))
        "$bin" --kv-port $port --echo-port off --time-port off --file-port off --data-dir "$dir" --fsync no \
            --log-level error > /dev/null 2>&1 &
    else
        port=$((20000 + RANDOM % 12000))
        redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" > /dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
    before=$(rss $pid)
    redis-cli -p $port --pipe < "$work/load.resp" > /dev/null
    # A compaction the load started rebuilds the list in memory of its own, and a freed value may
    # still be on its way out: read the RSS once neither is in progress (INFO persistence, memory).
    for _ in $(seq 1 600); do
        info=$(redis-cli -p $port info 2>/dev/null | tr -d '\r')
        echo "$info" | grep -q '^aof_rewrite_in_progress:0' && echo "$info" | grep -q '^lazyfree_pending_objects:0' && break
        sleep 0.5
    done
    sleep 1
    after=$(rss $pid)
    grep -E 'RssAnon|RssFile' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo
    python3 - $port $server "$before" "$after" <<'PY'
import redis, sys, time
port, server, before, after = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = redis.Redis(port=port)
length = r.llen("biglist")
pings = []
for _ in range(20):
    start = time.perf_counter(); r.ping(); pings.append(time.perf_counter() - start)
start = time.perf_counter(); r.delete("biglist"); took = time.perf_counter() - start
print(f"{server}: LLEN {length}, RSS +{(after - before) * 1024 / length:.1f} bytes per item; "
      f"DEL round trip {took * 1000:.1f} ms (PING's median {sorted(pings)[10] * 1000:.2f} ms)")
PY
    kill $pid
    wait $pid 2> /dev/null
    rm -rf "$dir"
done
