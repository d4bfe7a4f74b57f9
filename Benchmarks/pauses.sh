#!/usr/bin/env bash
# Pauses and durable writes: reactord against redis-server side by side, each scenario RUNS times
# with the two servers alternating (server on CPU 0, clients on CPU 1). A probe client measures
# what an unrelated client sees meanwhile: kvbench on one connection, unpinned, sending one GET at a
# time (in `durable`, one GET every 2 ms in open loop, each latency counted from the moment it was
# due), so the probe's max is the longest time the server made anyone wait.
#
#   Benchmarks/pauses.sh [-r RUNS] [floor] [growth] [expiry] [compaction] [durable] [durable-compaction]
#   (default: all but floor, RUNS 3)
#
#   floor    nothing to do: a fresh server with no keys and the closed-loop probe for 8 s. What
#            the probe sees here is the machine's own noise, the floor under every maximum below
#            (on the 2-core benchmark VM, probe at real-time priority: 2-5 ms for either server).
#   growth   the keyspace grows from empty to ~2,000,000 keys (redis-benchmark SET -P 16 over
#            random keys): no resize may stop the world.
#   expiry   1,000,000 keys set with EX 5 expire in the same second; the probe runs 12 s; INFO
#            used_memory and RSS before the keys, with them, and after.
#   compaction  1,000,000 keys, then BGREWRITEAOF (a compaction into database.txt; for Redis an AOF
#            rewrite in a forked child) while the probe runs.
#   durable  every fsync slowed to 2 ms (Benchmarks/slowfsync.c, preloaded into both servers):
#            reactord --fsync always against redis-server --appendfsync always; redis-benchmark
#            SET -c 50 at -P 1 and at -P 16; server CPU per SET from /proc/PID/stat.
#   durable-compaction  as durable at -P 16 over 300,000 keys loaded first, with a BGREWRITEAOF
#            asked for every second, four times, while the probe sends a GET every 2 ms for 6 s:
#            what starting and running compactions costs the loop while replies wait for fsyncs.
#
# REACTORD=PATH measures that reactord binary instead of building this tree's (before and after).
# REDIS_AOF=1 gives redis-server an append-only file written as reactord's log is outside `durable`
# (`--appendonly yes --appendfsync no` against `--fsync no`): both servers then write every SET to a
# file from their loop. By default redis-server runs without persistence there.
#
# The probe runs at real-time priority (`chrt -f 10`) when the user may (root), for both servers
# alike: on two cores it shares CPU 1 with the load generator, and at normal priority its maximum
# was mostly its own wait for that CPU (a closed-loop probe against an idle server reached 20 ms).
# PROBE_RT=0 runs it at normal priority, PROBE_NICE=N at that niceness instead. Each line also gives
# the time the hypervisor took from CPU 0 (the server's) and CPU 1 while the probe ran (steal, from
# /proc/stat in 10 ms ticks): pauses no process on the machine could have caused.
#
# For reactord each line also gives what the loop itself saw while the probe ran (its metrics
# port, docs/protocol.md): iterations longer than 1, 2 and 5 ms by the wall clock and by the loop
# thread's own CPU time. A probe maximum with no iteration that long on the CPU clock was the
# machine's scheduling (another thread or process on the loop's core), not the server's work.
#
# SCHED=1 also records the scheduler's switches on both CPUs while the probe runs (`perf record -a
# -e sched:sched_switch -g`: recording only the server's process would miss the switches back to
# its thread from other tasks), for both servers alike, and prints the longest time the server's
# event-loop thread was off its CPU while it had work: preempted (runnable), waiting in the kernel
# uninterruptibly (D), or asleep anywhere but in epoll_wait (a lock, say). An iteration longer by the
# wall clock than the loop's own CPU time and these absences together lost the difference to the
# hypervisor: the guest charges no task for the time its virtual CPU is taken away, and records no
# switch for it.
# SCHED_KEEP=DIR keeps each recording there (sched-TIME-PORT.data, for `perf script -i`).
#
# Needs: redis-server, redis-cli, redis-benchmark, python3, curl, cc, taskset, chrt (and perf for
# SCHED=1). Builds reactord and kvbench in release mode. Servers listen on 127.0.0.1 (ports 7451,
# 7452; reactord's metrics 7453) and are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
while getopts "r:" opt; do
    case $opt in
        r) runs=$OPTARG ;;
        *) echo "usage: $0 [-r RUNS] [floor] [growth] [expiry] [compaction] [durable] [durable-compaction]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
scenarios=${*:-growth expiry compaction durable}
probe_rt=${PROBE_RT:-10}
if [ "$probe_rt" != 0 ] && ! chrt -f "$probe_rt" true 2>/dev/null; then
    echo "note: the probe cannot run at real-time priority here (needs root): it runs at normal priority" >&2
    probe_rt=0
fi

swift build -c release --product reactord >/dev/null
swift build -c release --product kvbench >/dev/null
bin=$(swift build -c release --show-bin-path)
reactord=${REACTORD:-$bin/reactord}
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -shared -fPIC -o "$work/slowfsync.so" Benchmarks/slowfsync.c -ldl

# start_server reactord|redis [durable]: sets server_pid and port.
start_server() {
    local name=$1 durable=${2:-}
    rm -rf "$work/data"
    mkdir -p "$work/data"
    local preload=()
    [ -n "$durable" ] && preload=(env SLOW_FSYNC_US=2000 LD_PRELOAD="$work/slowfsync.so")
    if [ "$name" = reactord ]; then
        port=7451
        local fsync=no
        [ -n "$durable" ] && fsync=always
        "${preload[@]}" taskset -c 0 "$reactord" --kv-port $port --echo-port off --time-port off \
            --file-port off --metrics-port 7453 --data-dir "$work/data" --fsync $fsync --log-level error > "$work/server.log" 2>&1 &
    else
        port=7452
        local persistence=(--appendonly no)
        [ "${REDIS_AOF:-}" = 1 ] && persistence=(--appendonly yes --appendfsync no)
        [ -n "$durable" ] && persistence=(--appendonly yes --appendfsync always)
        "${preload[@]}" taskset -c 0 redis-server --port $port --bind 127.0.0.1 --save '' "${persistence[@]}" \
            --dir "$work/data" > "$work/server.log" 2>&1 &
    fi
    server_pid=$!
    for _ in $(seq 200); do
        redis-cli -p $port ping > /dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "$name did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
}

stop_server() {
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# probe RATE|closed SECONDS: starts the probe in the background, its JSON summary into
# $work/probe.json. `closed`: one GET at a time, back to back (its max is the longest single wait,
# without the client's own scheduling delays piling up as an open-loop schedule's would).
# PROBE_NICE=N runs the probe at that niceness, for both servers alike (e.g. -10, as root: ahead of
# the load generator, so that on two cores the probe measures the server and not its own wait for a
# CPU; its send lag in the line says how much of that wait is left).
probe() {
    local rate=() niceness=()
    [ "$1" != closed ] && rate=(--rate "$1")
    if [ -n "${PROBE_NICE:-}" ]; then
        niceness=(nice -n "$PROBE_NICE")
    elif [ "$probe_rt" != 0 ]; then
        niceness=(chrt -f "$probe_rt")
    fi
    "${niceness[@]}" "$bin/kvbench" --protocol resp --port $port -c 1 -P 1 "${rate[@]}" --ratio 0:1 --keyspace 1000 \
        --duration "$2" --json > "$work/probe.json" &
    probe_pid=$!
    sched_pid=
    if [ "${SCHED:-0}" = 1 ]; then
        perf record -q -a -e sched:sched_switch -g -o "$work/sched.data" > "$work/perf.log" 2>&1 &
        sched_pid=$!
    fi
    loop_counters > "$work/loop.before"
    steal_ticks > "$work/steal.before"
}

# The probe's figures; call probe_wait first (in this shell: a $(...) subshell cannot wait for it).
# The loop's slow-iteration counters are read when the probe starts and when it ends.
probe_wait() {
    wait "$probe_pid"
    if [ -n "$sched_pid" ]; then
        kill -INT "$sched_pid" 2>/dev/null || cat "$work/perf.log" >&2
        wait "$sched_pid" 2>/dev/null || true
    fi
    loop_counters > "$work/loop.after"
    steal_ticks > "$work/steal.after"
}
# CPU 0's and CPU 1's steal time so far, in ticks of 10 ms (the 8th value of their /proc/stat lines).
steal_ticks() { awk '$1 == "cpu0" || $1 == "cpu1" {printf "%s ", $9} END {print ""}' /proc/stat; }
probe_result() {
    # In open loop kvbench also reports how late it sent each GET after it was due (its own
    # scheduling, or the previous GET's reply still outstanding): the latency includes it.
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
line = "probe p99 %.2f ms, p99.9 %.2f ms, max %.2f ms" % (r["p99_us"] / 1000, r["p999_us"] / 1000, r["max_us"] / 1000)
if "send_lag_p99_us" in r:
    line += " (the probe sent late by p99 %.2f ms, max %.2f ms)" % (r["send_lag_p99_us"] / 1000, r["send_lag_max_us"] / 1000)
print(line)' "$work/probe.json"
    local steal0 steal1 after0 after1
    read -r steal0 steal1 < "$work/steal.before"
    read -r after0 after1 < "$work/steal.after"
    echo "    stolen by the hypervisor meanwhile: CPU 0 $(( (after0 - steal0) * 10 )) ms, CPU 1 $(( (after1 - steal1) * 10 )) ms"
    if [ -n "$sched_pid" ]; then
        sched_result
        [ -n "${SCHED_KEEP:-}" ] && cp "$work/sched.data" "$SCHED_KEEP/sched-$(date +%H%M%S)-$port.data"
    fi
    [ "$port" = 7451 ] || return 0
    python3 - "$work/loop.before" "$work/loop.after" <<'EOF'
import re, sys
def counters(path):
    found = {}
    for line in open(path):
        m = re.match(r'reactord_loop_slow_iterations_total\{(.*)\} (\S+)', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            found[(labels["over_ms"], labels["clock"])] = float(m.group(2))
    return found
before, after = counters(sys.argv[1]), counters(sys.argv[2])
d = lambda over, clock: int(after.get((over, clock), 0) - before.get((over, clock), 0))
print("    loop iterations > 1 / 2 / 5 ms: wall %d / %d / %d, on CPU %d / %d / %d" % tuple(
    d(over, clock) for clock in ("wall", "cpu") for over in ("1", "2", "5")))
# The longest iteration since the server started, and where its wall time went.
longest = {}
for line in open(sys.argv[2]):
    m = re.match(r'reactord_loop_longest_iteration_seconds\{part="(\w+)"\} (\S+)', line)
    if m:
        longest[m.group(1)] = float(m.group(2)) * 1000
if longest:
    print("    longest iteration %.2f ms (on its CPU %.2f): priority lane %.2f, bulk slice %.2f, hooks %.2f" % tuple(
        longest.get(part, 0) for part in ("total", "cpu", "priority", "bulk", "hooks")))
EOF
}
# The event-loop thread's (the main thread's) longest absences from its CPU while it had work, from
# $work/sched.data: each switch away from it until the switch back, by the state it left in.
sched_result() {
    perf script -i "$work/sched.data" -F tid,time,trace,ip,sym 2> /dev/null | python3 -c '
import re, sys
tid = sys.argv[1]
switches = []      # (time, kind) when the loop thread left its CPU; (time, None) when it came back
current = None
def close(event):
    if event is not None:
        switches.append(event)
for line in sys.stdin:
    m = re.match(r"\s*\d+\s+([\d.]+):\s+prev_comm=.* prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)", line)
    if m:
        close(current)
        current = None
        t, prev, state, by, nxt = float(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)
        if prev == tid:
            current = [t, state, [], by]
        if nxt == tid:
            switches.append((t, None))
    elif current is not None and line.strip():
        current[2].append(line.split()[-1])
close(current)
worst = {}
left = None
for event in switches:
    if event[1] is not None:
        left = event
        continue
    if left is None:
        continue
    t0, state, stack, by = left
    gap = (event[0] - t0) * 1000
    left = None
    if state.startswith("R"):
        kind = "preempted (by " + by + ")"
    elif state.startswith("D"):
        kind = "in D (" + next((f for f in stack if not f.startswith(("__schedule", "schedule", "io_schedule"))), "?") + ")"
    elif any("ep_poll" in f or "epoll_wait" in f or "epoll_pwait" in f for f in stack):
        continue  # idle: nothing to do
    else:
        kind = "asleep (" + next((f for f in stack if not f.startswith(("__schedule", "schedule"))), "?") + ")"
    worst[kind] = max(worst.get(kind, 0), gap)
if worst:
    parts = sorted(worst.items(), key=lambda kv: -kv[1])
    print("    loop thread off its CPU with work to do, longest: " + ", ".join("%s %.2f ms" % (k, v) for k, v in parts))
else:
    print("    loop thread off its CPU with work to do: never")
' "$server_pid"
}

loop_counters() {
    if [ "$port" = 7451 ]; then curl -s http://127.0.0.1:7453/metrics | grep -E '^reactord_loop_(slow|longest)' || true; fi
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
used_memory() { redis-cli -p $port info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }

floor() {
    local name=$1
    start_server "$name"
    probe closed 8
    probe_wait
    echo "  $name with nothing to do: $(probe_result)"
    stop_server
}

growth() {
    local name=$1
    start_server "$name"
    probe closed 30
    sleep 0.5
    taskset -c 1 redis-benchmark -p $port -c 50 -n 2000000 -r 100000000 -P 16 -d 16 -t set -q > /dev/null
    local keys
    keys=$(redis-cli -p $port dbsize)
    probe_wait
    echo "  $name growth to $keys keys: $(probe_result)"
    stop_server
}

expiry() {
    local name=$1
    start_server "$name"
    local before with after rss_before rss_with rss_after
    before=$(used_memory)
    rss_before=$(rss_kib)
    load_keys 1000000 "EX 5"
    with=$(used_memory)
    rss_with=$(rss_kib)
    probe closed 12
    probe_wait
    after=$(used_memory)
    rss_after=$(rss_kib)
    echo "  $name 1,000,000 keys expiring: $(probe_result); keys left $(redis-cli -p $port dbsize);" \
        "used_memory $before -> $with -> $after; RSS KiB $rss_before -> $rss_with -> $rss_after"
    stop_server
}

# load_keys COUNT [EXTRA]: COUNT SETs of 16-byte values through redis-cli --pipe (EXTRA: more
# words after the value, such as "EX 5").
load_keys() {
    python3 - "$work/keys.resp" "$1" "${2:-}" <<'EOF'
import sys
path, count, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
tail = b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in extra)
with open(path, "wb") as out:
    for i in range(count):
        key = b"key:%07d" % i
        out.write(b"*%d\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\nvvvvvvvvvvvvvvvv\r\n" % (3 + len(extra), len(key), key) + tail)
EOF
    redis-cli -p $port --pipe < "$work/keys.resp" > /dev/null
}

compaction() {
    local name=$1
    start_server "$name"
    load_keys 1000000
    probe closed 8
    sleep 1
    redis-cli -p $port bgrewriteaof > /dev/null
    probe_wait
    echo "  $name BGREWRITEAOF of 1,000,000 keys: $(probe_result)"
    stop_server
}

durable() {
    local name=$1 pipeline
    for pipeline in 1 16; do
        start_server "$name" durable
        local requests=60000
        [ $pipeline = 16 ] && requests=300000
        probe 500 4
        local ticks0 ticks1 result
        ticks0=$(cpu_ticks)
        result=$(taskset -c 1 redis-benchmark -p $port -c 50 -n $requests -P $pipeline -r 100000 -d 16 -t set --csv | tail -1)
        ticks1=$(cpu_ticks)
        probe_wait
        local ops=${result#*,\"}
        ops=${ops%%\"*}
        local cpu
        cpu=$(python3 -c "import os; print(f'{($ticks1 - $ticks0) / os.sysconf(\"SC_CLK_TCK\") / $requests * 1e6:.1f}')")
        echo "  $name durable SET -P $pipeline: $ops SET/s, server CPU $cpu µs per SET; $(probe_result)"
        stop_server
    done
}

durable_compaction() {
    local name=$1
    start_server "$name" durable
    load_keys 300000
    probe 500 6
    taskset -c 1 redis-benchmark -p $port -c 50 -n 1000000 -P 16 -r 300000 -d 16 -t set -q > /dev/null 2>&1 &
    local load_pid=$!
    for _ in 1 2 3 4; do
        sleep 1
        redis-cli -p $port bgrewriteaof > /dev/null
    done
    probe_wait
    kill $load_pid 2>/dev/null || true
    wait $load_pid 2>/dev/null || true
    echo "  $name durable -P 16 load, BGREWRITEAOF every second over 300,000 keys: $(probe_result)"
    stop_server
}

for scenario in $scenarios; do
    echo "$scenario ($runs runs, servers alternating):"
    for run in $(seq "$runs"); do
        ${scenario//-/_} reactord
        ${scenario//-/_} redis
    done
done
