#!/usr/bin/env bash
# Hashes (and the set rows sets.sh leaves out) side by side with redis-server 7.0.15:
#   - `redis-benchmark -t hset -c 50 -P 16 -r 100000` and `-t hset,sadd,spop -c 50 -P 1 -r 100000`:
#     ops/s and server CPU per request;
#   - RSS per field of 100,000 hashes of 10 fields (8-byte fields, 16-byte values: `listpack`);
#   - one hash of 1,000,000 fields (16-byte fields and values, `hashtable`): load time, RSS per
#     field, one HGETALL of it (wall time at the client);
#   - HGETALL of a 1,000-field hash and SMEMBERS of a 1,000-member set, `-c 50 -P 1` (memtier-like):
#     ops/s and server CPU per request;
#   - restart with 1,000,000 hash fields + 1,000,000 set members after SAVE: the time from the
#     server's start until PING answers PONG (reactord reads `database.txt`, Redis its RDB file).
#
# Usage: Benchmarks/hashes.sh [RUNS] (default 1). REACTORD=PATH measures another binary (default
# .build/release/reactord, built if missing); N=REQUESTS sets the -P 16 runs' -n (default 500000),
# N1 the -P 1 runs' (default 50000), NR the HGETALL/SMEMBERS runs' (default 20000).
#
# reactord runs with `--fsync no`, Redis with `--save '' --appendonly no` (SAVE is sent by hand for
# the restart row); each server is pinned to CPU 0 and every client to CPU 1, a fresh server per
# measurement, reactord and Redis alternating. CPU per request is the server's utime+stime
# (/proc/PID/stat) over the run divided by the requests. RSS per element is (VmRSS after loading −
# VmRSS after start) / elements, loaded with redis-cli --pipe.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-1}
requests=${N:-500000}
requests1=${N1:-50000}
reads=${NR:-20000}
reactord=${REACTORD:-.build/release/reactord}
[ -x "$reactord" ] || swift build -c release --product reactord >&2
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
bench_setup hashes.sh
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
bench() {  # SERVER LABEL REQUESTS redis-benchmark-arguments…: one line of ops/s and CPU per request
    local server=$1 label=$2 count=$3
    shift 3
    local before after output
    before=$(cpu_ticks)
    output=$(taskset -c 1 redis-benchmark -p "$port" -q "$@" 2>&1 | tr '\r' '\n' | grep 'requests per second' || true)
    after=$(cpu_ticks)
    echo "run $run $server $label: $(echo "$output" | sed 's/ requests per second.*//' | tr '\n' ' ') server CPU $(per_request $((after - before)) "$count") µs/request"
}

# The load files.
python3 - "$work" <<'EOF'
import sys
def command(*words):
    return "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)
with open(sys.argv[1] + "/small.resp", "w") as out:
    for k in range(100_000):
        pairs = []
        for f in range(10):
            pairs += ["field%03d" % f, "value-%010d" % (k * 10 + f)]
        out.write(command("HSET", "h:%d" % k, *pairs))
with open(sys.argv[1] + "/large.resp", "w") as out:
    for batch in range(1_000):
        pairs = []
        for j in range(1_000):
            n = batch * 1_000 + j
            pairs += ["field-%010d" % n, "value-%010d" % n]
        out.write(command("HSET", "bighash", *pairs))
with open(sys.argv[1] + "/largeset.resp", "w") as out:
    for batch in range(1_000):
        out.write(command("SADD", "bigset", *["member-%09d" % (batch * 1_000 + j) for j in range(1_000)]))
with open(sys.argv[1] + "/reads.resp", "w") as out:
    out.write(command("HSET", "h1000", *sum((["field-%04d" % j, "value-%010d" % j] for j in range(1_000)), [])))
    out.write(command("SADD", "s1000", *["member-%09d" % j for j in range(1_000)]))
EOF

for run in $(seq "$runs"); do
    for server in reactord redis; do
        start "$server"
        bench "$server" "HSET -P 16" "$requests" -c 50 -P 16 -r 100000 -n "$requests" -t hset
        stop
        start "$server"
        bench "$server" "HSET,SADD,SPOP -P 1" $((3 * requests1)) -c 50 -P 1 -r 100000 -n "$requests1" -t hset,sadd,spop
        stop

        start "$server"
        base=$(rss_kib)
        taskset -c 1 redis-cli -p "$port" --pipe < "$work/small.resp" >/dev/null
        loaded=$(rss_kib)
        stop
        awk -v a="$base" -v b="$loaded" -v server="$server" -v run="$run" \
            'BEGIN { printf "run %s %s: 100,000 hashes of 10 fields: RSS per field %.1f B\n", run, server, (b - a) * 1024 / 1000000 }'

        start "$server"
        base=$(rss_kib)
        t0=$(now_ms)
        taskset -c 1 redis-cli -p "$port" --pipe < "$work/large.resp" >/dev/null
        t1=$(now_ms)
        loaded=$(rss_kib)
        taskset -c 1 redis-cli -p "$port" hgetall bighash > /dev/null
        t2=$(now_ms)
        awk -v a="$base" -v b="$loaded" -v server="$server" -v run="$run" -v load=$((t1 - t0)) -v all=$((t2 - t1)) \
            'BEGIN { printf "run %s %s: one hash of 1,000,000 fields: load %d ms, RSS per field %.1f B, HGETALL %d ms\n",
                     run, server, load, (b - a) * 1024 / 1000000, all }'
        # The restart row: the same hash plus a set of 1,000,000 members, saved, then a new server.
        taskset -c 1 redis-cli -p "$port" --pipe < "$work/largeset.resp" >/dev/null
        redis-cli -p "$port" save > /dev/null
        # Until no snapshot is being written (a compaction the log's growth started is one too).
        while redis-cli -p "$port" info persistence | grep -q 'rdb_bgsave_in_progress:1'; do sleep 0.1; done
        stop
        t0=$(now_ms)
        start "$server" keep
        t1=$(now_ms)
        fields=$(redis-cli -p "$port" hlen bighash)
        members=$(redis-cli -p "$port" scard bigset)
        stop
        echo "run $run $server: restart with $fields hash fields + $members set members: $((t1 - t0)) ms to PONG"

        start "$server"
        taskset -c 1 redis-cli -p "$port" --pipe < "$work/reads.resp" >/dev/null
        bench "$server" "HGETALL 1,000 fields -P 1" "$reads" -c 50 -P 1 -n "$reads" hgetall h1000
        bench "$server" "SMEMBERS 1,000 members -P 1" "$reads" -c 50 -P 1 -n "$reads" smembers s1000
        stop
    done
done
