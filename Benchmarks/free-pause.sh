#!/usr/bin/env bash
# The "deleting a big value" rows of Benchmarks/README.md: one key of N members (a list of 16-byte
# items, a hash of 16-byte fields and values, a sorted set of 16-byte members, a set of 16-byte
# members; loaded 1,000 at a time through redis-cli --pipe), then DEL's round trip while a second
# connection PINGs back to back: the longest PING round trip in the second around the DEL is the
# pause the DEL caused the loop. For reactord (--fsync no) and redis-server 7.0.15 (no persistence,
# lazyfree-lazy-user-del no: its default, DEL frees at once; UNLINK is its lazy one: both measured).
# Needs python3 with redis-py. Ports: two free ones at random.
# Usage: Benchmarks/free-pause.sh [path/to/reactord] [type: list|hash|zset|set] [N, a multiple of 1000]
set -u
bin=${1:-.build/release/reactord}
type=${2:-list}
items=${3:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$items" "$type" "$work/load.resp" <<'PY'
import sys
items, kind, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
command = {"list": b"RPUSH", "hash": b"HSET", "zset": b"ZADD", "set": b"SADD"}[kind]
with open(path, "wb") as out:
    for c in range(items // 1000):
        args = [command, b"big"]
        for i in range(c * 1000, c * 1000 + 1000):
            if kind == "zset": args.append(b"%d" % i)
            args.append(b"%016d" % i)
            if kind == "hash": args.append(b"%016d" % i)
        out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
PY
free_port() {
    while true; do
        p=$((20000 + RANDOM % 40000))
        ! ss -ltn | awk '{print $4}' | grep -q ":$p\$" && { echo $p; return; }
    done
}
for command in DEL UNLINK; do
for server in reactord redis; do
    dir=$(mktemp -d)
    port=$(free_port)
    if [ "$server" = reactord ]; then
        "$bin" --kv-port $port --echo-port off --time-port off --file-port off --data-dir "$dir" --fsync no \
            --log-level error > /dev/null 2>&1 &
    else
        redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" > /dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p $port --pipe < "$work/load.resp" > /dev/null
    python3 - $port $server $type $command <<'PY'
import redis, sys, threading, time
port, server, kind, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = redis.Redis(port=port)
pinger = redis.Redis(port=port)
size = {"list": r.llen, "hash": r.hlen, "zset": r.zcard, "set": r.scard}[kind]("big")
stop = threading.Event()
pings = []  # (start, round trip)
def ping():
    while not stop.is_set():
        start = time.perf_counter(); pinger.ping(); pings.append((start, time.perf_counter() - start))
thread = threading.Thread(target=ping)
thread.start()
time.sleep(0.5)
start = time.perf_counter(); r.execute_command(command, "big"); took = time.perf_counter() - start
time.sleep(0.5)
stop.set(); thread.join()
# The PINGs in flight while the DEL was (its effect), and the longest in the second around it (the
# machine's noise: on a busy host the scheduler alone makes pauses of milliseconds).
during = [trip for (at, trip) in pings if at <= start + took and at + trip >= start]
around = [trip for (at, trip) in pings if start - 0.5 <= at <= start + 0.5]
quiet = sorted(trip for (at, trip) in pings if at < start - 0.1)
print(f"{server} {command} {kind} of {size}: round trip {took * 1000:.1f} ms; longest PING beside it "
      f"{max(during, default=0) * 1000:.2f} ms; longest in the second around it {max(around) * 1000:.2f} ms "
      f"(median before {quiet[len(quiet) // 2] * 1000:.2f} ms)")
PY
    kill $pid
    wait $pid 2> /dev/null
    rm -rf "$dir"
done
done
