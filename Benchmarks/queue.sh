#!/usr/bin/env bash
# The job-queue row of Benchmarks/README.md: kvbench's queue workload (producers LPUSH timestamped
# jobs at a fixed rate, consumers each wait in BRPOP; push-to-pop latency, every job counted once)
# against reactord (--fsync everysec) and redis-server 7.0.15 (AOF everysec), alternating, with the
# server's CPU (utime+stime from /proc) over the run.
# Usage: Benchmarks/queue.sh [path/to/reactord] [path/to/kvbench] [rounds]
#        (environment: PRODUCERS=4 CONSUMERS=1000 RATE=50000 DURATION=10)
set -u
bin=${1:-.build/release/reactord}
kvbench=${2:-.build/release/kvbench}
rounds=${3:-1}
producers=${PRODUCERS:-4}
consumers=${CONSUMERS:-1000}
rate=${RATE:-50000}
duration=${DURATION:-10}
free_port() {
    while true; do
        port=$((20000 + RANDOM % 12000))  # below the ephemeral range the clients use
        ss -ltn | grep -q ":$port " || { echo $port; return; }
    done
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$rounds"); do
    for server in reactord redis; do
        dir=$(mktemp -d)
        port=$(free_port)
        if [ "$server" = reactord ]; then
            "$bin" --kv-port "$port" --echo-port off --time-port off --file-port off --data-dir "$dir" \
                --max-connections $((producers + consumers + 100)) --fsync everysec --log-level error > /dev/null 2>&1 &
        else
            redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
                --maxclients $((producers + consumers + 100)) --dir "$dir" > /dev/null 2>&1 &
        fi
        pid=$!
        for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
        before=$(cpu $pid)
        report=$("$kvbench" --protocol resp --port "$port" --workload queue -c "$producers" --consumers "$consumers" \
            --rate "$rate" --duration "$duration" 2>&1)
        ticks=$(($(cpu $pid) - before))
        echo "round $round $server: server CPU $((ticks * 10)) ms"
        echo "$report" | sed 's/^/    /'
        kill "$pid"
        wait "$pid" 2> /dev/null
        rm -rf "$dir"
    done
done
