#!/usr/bin/env bash
# Runs units of Redis 7.0.15's own test suite against reactord as an external server, and (with
# -r) the same units against redis-server, so that every failure can be read beside what Redis
# itself does with the same test files and the same options.
#
# Usage: scripts/redis-suite.sh -s REDIS_SOURCE [-b BINARY] [-r] [-k] [-t TAGS] UNIT...
#   -s DIR     a Redis 7.0.15 source tree (its `runtest` and `tests/`; nothing needs building).
#              Redis's files are never part of this repository: bring them yourself, e.g.
#              git clone --depth 1 --branch 7.0.15 <redis repository> DIR
#   -b BINARY  the reactord to test (default .build/release/reactord; built if missing)
#   -r         also run every unit against redis-server (from PATH) and print both results
#   -k         keep the logs (printed at the end) instead of removing them
#   -t TAGS    tags to leave out, added to the defaults below (e.g. "-t needs:repl")
#   -x TEST    a test to leave out (runtest's --skiptest: a name, or a regexp after '/'); repeatable
#   UNIT       test files under tests/, e.g. unit/type/incr unit/type/string unit/keyspace
#              (default: unit/type/incr unit/type/string unit/keyspace unit/expire)
#
# Each unit runs in a fresh server (127.0.0.1, a kernel-chosen port, a temporary data directory,
# --fsync no), stopped by its PID when the unit ends; runtest's own limit is 10 minutes a unit.
# Options passed to runtest: --host --port (no --singledb: its tests SELECT 9 and use other
# databases, as against redis-server), a random --baseport (its harness binds a port
# below it: runs started at once by several people must not collide), --ignore-encoding (the encoding checks test
# Redis's internals, not the reply) and --tags that leave out what an external server cannot
# offer (DEBUG, replication, SAVE-and-restart, memory introspection): see `skipped_tags`.
#
# What it prints: one line per unit and server, `UNIT SERVER: N passed, N failed, N exceptions`,
# then the names of the failing tests. A unit stops at its first exception (runtest's rule: an
# unknown command inside a test helper aborts the rest of the file), so read "exceptions" as
# "the rest of this file was not run".
set -euo pipefail
cd "$(dirname "$0")/.."

source_dir=
binary=.build/release/reactord
with_redis=0
keep=0
skipped_tags="-needs:debug -needs:repl -needs:save -needs:config-maxmemory -needs:pfdebug -slow"
skipped_tests=()
while getopts "s:b:rkt:x:h" option; do
    case $option in
        s) source_dir=$OPTARG ;;
        b) binary=$OPTARG ;;
        r) with_redis=1 ;;
        k) keep=1 ;;
        t) for tag in $OPTARG; do skipped_tags="$skipped_tags -${tag#-}"; done ;;
        x) skipped_tests+=(--skiptest "$OPTARG") ;;
        h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 -s REDIS_SOURCE [-b BINARY] [-r] [-k] [-t TAGS] [-x TEST] UNIT..." >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
units=("$@")
[ ${#units[@]} -gt 0 ] || units=(unit/type/incr unit/type/string unit/keyspace unit/expire)

if [ -z "$source_dir" ] || [ ! -x "$source_dir/runtest" ] || [ ! -d "$source_dir/tests" ]; then
    echo "redis-suite: -s must name a Redis 7.0.15 source tree (with runtest and tests/)" >&2
    exit 2
fi
command -v tclsh8.6 >/dev/null || command -v tclsh8.5 >/dev/null || {
    echo "redis-suite: runtest needs tclsh 8.5 or later (apt-get install tcl)" >&2; exit 2; }
if [ ! -x "$binary" ]; then
    echo "redis-suite: building $binary" >&2
    swift build -c release --product reactord >&2
fi
if [ $with_redis = 1 ]; then
    command -v redis-server >/dev/null || { echo "redis-suite: -r needs redis-server on PATH" >&2; exit 2; }
fi
binary=$(realpath "$binary")
source_dir=$(realpath "$source_dir")

work=$(mktemp -d)
pid=
stop_server() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}
cleanup() {
    stop_server
    if [ $keep = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Starts the named server on a free port of 127.0.0.1; sets pid and port.
start_server() {
    local name=$1 data=$work/data-$2
    mkdir -p "$data"
    port=
    if [ "$name" = reactord ]; then
        mkfifo "$work/out-$2"
        # The resp port (Redis's protocol only, inline requests included) where the binary has it.
        local service=kv
        local help
        help=$("$binary" --help 2>&1 || true)
        case $help in *--resp-port*) service=resp ;; esac
        "$binary" --kv-port off "--$service-port" 0 --echo-port off --time-port off --file-port off --data-dir "$data" \
            --fsync no --idle-timeout 0 --log-level error > "$work/out-$2" 2> "$work/server-$2.log" &
        pid=$!
        while read -r line; do
            case $line in
                "reactord: listening $service tcp "*) port=${line##*:} ;;
                "reactord: ready") break ;;
            esac
        done < "$work/out-$2"
        # Keep reading its stdout so that the server never blocks on a full pipe.
        cat "$work/out-$2" > /dev/null &
    else
        # redis-server has no kernel-chosen port that it reports: take one the kernel just gave.
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
            > "$work/server-$2.log" 2>&1 &
        pid=$!
        for _ in $(seq 1 100); do
            redis-cli -p "$port" ping > /dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    [ -n "$port" ] || { echo "redis-suite: $name did not start (see $work/server-$2.log)" >&2; exit 1; }
}

run_unit() {
    local unit=$1 name=$2 tag
    tag=$(echo "$unit-$name" | tr '/' '_')
    start_server "$name" "$tag"
    (cd "$source_dir" && timeout 600 ./runtest --host 127.0.0.1 --port "$port" \
        --ignore-encoding --tags "$skipped_tags" --single "$unit" --clients 1 --timeout 120 ${skipped_tests[@]+"${skipped_tests[@]}"} \
        --baseport $((22000 + RANDOM % 20000))) \
        > "$work/$tag.log" 2>&1 || true
    stop_server
    local passed failed exceptions
    passed=$(grep -c '^\[.*ok.*\]:' "$work/$tag.log" || true)
    failed=$(grep -c '^\[.*err.*\]:' "$work/$tag.log" || true)
    exceptions=$(grep -c '^\[.*exception.*\]:' "$work/$tag.log" || true)
    printf '%-28s %-9s %4d passed, %4d failed, %d exceptions\n' "$unit" "$name" "$passed" "$failed" "$exceptions"
    grep -E '^\[.*(err|exception).*\]:' "$work/$tag.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' | head -40 || true
}

for unit in "${units[@]}"; do
    run_unit "$unit" reactord
    [ $with_redis = 1 ] && run_unit "$unit" redis-server
done
