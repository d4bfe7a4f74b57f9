# Helpers for the side-by-side benchmark scripts (Benchmarks/sets.sh, hashes.sh, zsets.sh): one
# server at a time, reactord or redis-server 7.0.15, on $port, pinned to CPU 0; its CPU ticks and
# RSS read from /proc. Sourced, not run. The sourcing script sets `reactord` (the binary) before
# calling `start`; `bench_setup NAME` makes the work directory, the cleanup trap and the port.
#
#   start SERVER [keep]  a server (reactord or redis) on $port, its PID in $pid; a fresh data
#                        directory ($work/data) unless `keep`
#   stop                 stops it (TERM, then waits)
#   cpu_ticks, rss_kib   the server's utime+stime in clock ticks, its VmRSS in KiB
#   per_request TICKS N  µs of server CPU per request
#   write_large_zset F   the 1,000,000-member sorted set of the large-set rows, as RESP ZADDs in F
#   free_port            a port below the ephemeral range that nothing listens on (for the
#                        scripts that keep several servers up at once: scripts/*-compare.sh)
#   compare_setup        for those scripts: $work, the arrays pids/ports/names of the servers
#                        they start, and an EXIT trap that stops every one of them by PID

bench_setup() {  # NAME: $work, the EXIT trap, and a free $port
    bench_name=$1
    work=$(mktemp -d)
    pid=
    trap bench_cleanup EXIT
    port=$((20000 + RANDOM % 20000))
    while ss -ltn | grep -q ":$port "; do port=$((20000 + RANDOM % 20000)); done
    ticks_per_second=$(getconf CLK_TCK)
}

bench_cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}

start() {
    [ "${2:-}" = keep ] || rm -rf "$work/data"
    mkdir -p "$work/data"
    if [ "$1" = reactord ]; then
        taskset -c 0 "$reactord" --kv-port "$port" --echo-port off --time-port off --file-port off \
            --data-dir "$work/data" --fsync no --log-level error >/dev/null &
    else
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$work/data" --daemonize no --logfile '' >/dev/null &
    fi
    pid=$!
    # Up to two minutes: a restart reads a large database.txt or RDB before it answers.
    for _ in $(seq 12000); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return
        sleep 0.01
    done
    echo "$bench_name: $1 did not start" >&2
    exit 1
}

stop() {
    kill "$pid" 2>/dev/null || echo "$bench_name: the server had already stopped" >&2
    wait "$pid" 2>/dev/null || true
    pid=
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

per_request() {
    awk -v t="$1" -v hz="$ticks_per_second" -v n="$2" 'BEGIN { printf "%.2f", t / hz / n * 1e6 }'
}

free_port() {
    local p
    while :; do p=$((10000 + RANDOM % 20000)); if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo $p; return; fi; done
}

# The sorted set of Benchmarks/zsets.sh's large-set rows (and scripts/callgrind-zset-misses.sh): "big",
# 1,000,000 members m:NNNNNNNNNNNN scored NNNNNNNNNNNN, the 12-digit numbers redis-benchmark's
# __rand_int__ gives, as 1,000 ZADDs of 1,000 members for `redis-cli --pipe`.
write_large_zset() {
    python3 - "$1" <<'PYTHON'
import sys
def command(*words):
    return "*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)
with open(sys.argv[1], "w") as out:
    for batch in range(1_000):
        pairs = []
        for j in range(1_000):
            n = batch * 1_000 + j
            pairs += [str(n), "m:%012d" % n]
        out.write(command("ZADD", "big", *pairs))
PYTHON
}

compare_setup() {
    work=$(mktemp -d)
    pids=(); ports=(); names=()
    trap compare_cleanup EXIT
}

compare_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
