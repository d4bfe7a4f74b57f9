#!/usr/bin/env bash
# Stores and reads back one value of --max-value's default size (512 MiB) through redis-cli
# against a release build of reactord, and prints the server's peak resident memory, which
# must stay under 3x the value. Usage: scripts/large-value.sh [MiB] (default 512).
# Needs: swift build -c release (or REACTORD=path/to/reactord), redis-cli, ~2 GiB of free memory and disk.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/out"
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
head -c $((mib << 20)) /dev/urandom > "$work/value"
peak=0
sample() { local kib; kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status"); peak=$kib; }
redis-cli -p "$port" -x SET big < "$work/value"
sample
after_set=$peak
redis-cli -p "$port" --raw GET big | head -c $((mib << 20)) | cmp - "$work/value" && echo "read back: identical"
sample
# A value past the 64 MiB log threshold starts a compaction by itself, which rebuilds the state
# (the value once more, plus its log record while it is read) while the GET runs.
echo "value: $mib MiB; reactord peak RSS (VmHWM) after the SET: $((after_set / 1024)) MiB, after the GET: $((peak / 1024)) MiB; limit 3x: $((3 * mib)) MiB"
[ $((peak / 1024)) -lt $((3 * mib)) ]
