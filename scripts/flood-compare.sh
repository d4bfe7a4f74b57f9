#!/usr/bin/env bash
# The newcomer under a flood, reactord beside redis-server: N clients each pipeline M SETs and
# never read (or, -a, pipeline wrong AUTHs), while a fresh connection's PING is timed every
# 100 ms (scripts/flood.py). Rounds alternate the servers; each prints p50/p99/max of the
# newcomer's first reply and the server's peak RSS.
# Usage: scripts/flood-compare.sh [-c CLIENTS] [-p PIPELINE] [-f no|always] [-r ROUNDS] [-a] [-s reactord|redis|both]
# Needs: swift build -c release (or REACTORD=path), redis-server, python3. Servers bind
# 127.0.0.1 on kernel-chosen ports and are stopped by their PID.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=5000 pipeline=1000 fsync=no rounds=3 mode=set servers=both
while getopts "c:p:f:r:as:" opt; do
    case $opt in
        c) clients=$OPTARG ;; p) pipeline=$OPTARG ;; f) fsync=$OPTARG ;; r) rounds=$OPTARG ;;
        a) mode=auth ;; s) servers=$OPTARG ;; *) exit 2 ;;
    esac
done
reactord=${REACTORD:-.build/release/reactord}
# The machine may be shared: servers and clients run at a raised priority (as root), alike for both.
nice=(); [ "$(id -u)" = 0 ] && nice=(nice -n -10)
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$pid" ] && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
password=flood-secret-$$
extra=()
[ "$mode" = auth ] && extra=(--mode auth --password "$password")

run_reactord() {
    rm -rf "$work/data"; mkfifo "$work/out.$1"
    local pass=()
    [ "$mode" = auth ] && pass=(--requirepass-file "$work/pass") && echo "$password" > "$work/pass"
    "${nice[@]}" "$reactord" --kv-port 0 --echo-port off --time-port off --file-port off --data-dir "$work/data" \
        --fsync "$fsync" --max-connections $((clients + 100)) --log-level "${LOG_LEVEL:-error}" "${pass[@]}" > "$work/out.$1" 2> "${STDERR_LOG:-/dev/null}" &
    pid=$!
    local port=
    while read -r line; do
        case $line in "reactord: listening kv tcp "*) port=${line##*:} ;; "reactord: ready") break ;; esac
    done < "$work/out.$1"
    echo "reactord (--fsync $fsync):"
    "${nice[@]}" python3 scripts/flood.py --port "$port" --clients "$clients" --pipeline "$pipeline" --server-pid "$pid" "${extra[@]}" || true
    kill "$pid"; wait "$pid" || true; pid=
}

run_redis() {
    rm -rf "$work/redis"; mkdir -p "$work/redis"
    local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local appendfsync=$fsync; [ "$fsync" = no ] || appendfsync=always
    local pass=()
    [ "$mode" = auth ] && pass=(--requirepass "$password")
    "${nice[@]}" redis-server --bind 127.0.0.1 --port "$port" --dir "$work/redis" --save "" --appendonly yes \
        --appendfsync "$appendfsync" --maxclients $((clients + 100)) --loglevel warning "${pass[@]}" > "$work/redis.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ${pass:+-a "$password"} --no-auth-warning ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "redis-server $(redis-server --version | awk '{print $3}') (appendfsync $appendfsync):"
    "${nice[@]}" python3 scripts/flood.py --port "$port" --clients "$clients" --pipeline "$pipeline" --server-pid "$pid" "${extra[@]}" || true
    kill "$pid"; wait "$pid" || true; pid=
}

for round in $(seq "$rounds"); do
    echo "== round $round: $clients clients x $pipeline pipelined ($mode)"
    [ "$servers" = redis ] || run_reactord "$round"
    [ "$servers" = reactord ] || run_redis
done
