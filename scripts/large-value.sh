#!/usr/bin/env bash
# Stores and reads back one value of --max-value's default size (512 MiB) through redis-cli
# against a release build of reactord, stops the server, starts it again on the same data and
# reads the value back once more, printing the server's peak resident memory at each step: it
# must stay under 3x the value. Usage: scripts/large-value.sh [MiB] (default 512).
# Needs: swift build -c release (or REACTORD=path/to/reactord), redis-cli, ~2 GiB of free memory and
# 3x the value of free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$pid" ] && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
mkfifo "$work/out"
start() {   # starts reactord on $work/data, waits for "ready", sets pid and port
    "${REACTORD:-.build/release/reactord}" --kv-port 0 --echo-port off --time-port off --file-port off \
        --data-dir "$work/data" --fsync no --log-level error > "$work/out" &
    pid=$!
    port=
    while read -r line; do   # reactord's stdout, line by line, until it says it is ready
        case $line in
            "reactord: listening kv tcp "*) port=${line##*:} ;;
            "reactord: ready") break ;;
        esac
    done < "$work/out"
    [ -n "$port" ] || { echo "reactord did not start"; exit 1; }
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=; }
peak_mib() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status"; }
# (redis-cli's trailing newline may meet a closed pipe once head has its bytes: not a failure.)
read_back() {
    { redis-cli -p "$port" --raw GET big || true; } | head -c $((mib << 20)) | cmp - "$work/value" && echo "read back: identical"
}
head -c $((mib << 20)) /dev/urandom > "$work/value"
start
redis-cli -p "$port" -x SET big < "$work/value"
after_set=$(peak_mib)
# The value's log record passes the 64 MiB compaction threshold by itself: a compaction writes it
# into database.txt while the GET runs, copying it from the log a piece at a time.
read_back
after_get=$(peak_mib)
stop
start
after_restart=$(peak_mib)
read_back
after_second_get=$(peak_mib)
stop
echo "value: $mib MiB; reactord peak RSS (VmHWM): after the SET $after_set MiB, after the GET $after_get MiB;" \
     "restarted: after loading $after_restart MiB, after the GET $after_second_get MiB; limit 3x: $((3 * mib)) MiB"
for figure in "$after_get" "$after_second_get"; do
    [ "$figure" -lt $((3 * mib)) ] || { echo "FAIL: past 3x the value"; exit 1; }
done
