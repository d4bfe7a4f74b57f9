#!/usr/bin/env bash
# The 10,000-subscriber row of issue 27 (Benchmarks/README.md): kvbench's pub/sub workload with
# 10,000 subscribers on one channel and one publisher at 100 messages/s of 64 bytes for 15 s,
# against each server named, in the order given, every round; each server pinned to CPU 0, kvbench
# to CPU 1; the server's CPU (utime+stime ticks from /proc, 10 ms each) over kvbench's run and its
# RSS after it, then kvbench's latency and flow lines (publish to delivery, lost and duplicated).
# Usage: Benchmarks/pubsub-10k.sh ROUNDS LABEL=SERVER[:ENV=VALUE] ...
#   SERVER is a reactord binary, or `redis` for redis-server 7.0.15 without persistence;
#   e.g. Benchmarks/pubsub-10k.sh 2 reactord=.build/release/reactord redis=redis
# Environment: DURATION (s, default 15), KVBENCH (default .build/release/kvbench).
# Needs 20,000 descriptors per process (ulimit -n) and about 1 GB of memory.
set -u
cd "$(dirname "$0")/.."
ulimit -n 20000
rounds=$1; shift
kvbench=${KVBENCH:-.build/release/kvbench}
for round in $(seq 1 "$rounds"); do
    for spec in "$@"; do
        label=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; envs=""
        [ "$rest" != "$bin" ] && envs=${rest#*:}
        # Below the ephemeral range: 10,000 connections of the last run may still hold its ports.
        port=$((21000 + RANDOM % 8000)); dir=$(mktemp -d)
        if [ "$bin" = redis ]; then
            taskset -c 0 redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no \
                --maxclients 20000 --dir "$dir" > /dev/null 2>&1 &
        else
            # shellcheck disable=SC2086
            env $envs taskset -c 0 "$bin" --kv-port $port --echo-port off --time-port off --file-port off \
                --data-dir "$dir" --fsync no --max-connections 20000 --log-level error > /dev/null 2>&1 &
        fi
        pid=$!
        for _ in $(seq 100); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
        if ! kill -0 $pid 2> /dev/null; then echo "round $round $label: the server did not start" >&2; rm -rf "$dir"; continue; fi
        before=$(awk '{print $14 + $15}' /proc/$pid/stat)
        out=$(taskset -c 1 "$kvbench" --host 127.0.0.1 --port $port --protocol resp --workload pubsub -c 1 -P 1000 \
            --consumers 10000 --rate 100 --duration "${DURATION:-15}" --value-size 64 --threads 2 2>&1)
        after=$(awk '{print $14 + $15}' /proc/$pid/stat)
        rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
        echo "round $round $label: server CPU $((after - before)) ticks, RSS ${rss} kB"
        echo "$out" | grep -E 'latency|flow' | sed 's/^/    /'
        kill $pid; wait $pid 2> /dev/null; rm -rf "$dir"
    done
done
