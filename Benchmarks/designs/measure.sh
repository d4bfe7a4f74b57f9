#!/usr/bin/env bash
# Measures each classic design and reactord's echo service side by side with one load client
# (echoload), server pinned to CPU 0 and client to CPU 1, at 10/100/1,000/10,000 connections
# and pipeline depths 1 and 16. Writes results.tsv, results.md (table) and designs.svg (plot).
# Not part of the test command: a full run takes about ten minutes on two cores.
#
# usage: Benchmarks/designs/measure.sh --echoload PATH [--reactord PATH] [--reference PATH]
#            [--out DIR] [--duration SECONDS] [--conns "10 100 1000 10000"] [--pipelines "1 16"]
#            [--designs "iterative fork-per-client ... reactord"]
#   --echoload   the load client (or $ECHOLOAD); it lives outside this repository:
#                make -C ../shared/bench/c_echo
#   --reactord   default .build/release/reactord (swift build -c release --product reactord)
#   --reference  also measure the reference C epoll echo server (../shared/bench/c_echo/echo)
#   --out        where results go (default: this directory)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
echoload="${ECHOLOAD:-}"
reactord="$root/.build/release/reactord"
reference=""
out="$here"
duration=6
conns_list="10 100 1000 10000"
pipelines="1 16"
designs="iterative fork-per-client thread-per-client prefork-fdpass multi-accept reactord"
while [ $# -gt 0 ]; do
    case "$1" in
        --echoload) echoload="$2"; shift 2 ;;
        --reactord) reactord="$2"; shift 2 ;;
        --reference) reference="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --conns) conns_list="$2"; shift 2 ;;
        --pipelines) pipelines="$2"; shift 2 ;;
        --designs) designs="$2"; shift 2 ;;
        *) sed -n '2,15p' "$0" >&2; exit 2 ;;
    esac
done
[ -x "$echoload" ] || { echo "measure.sh: give the echoload binary with --echoload or ECHOLOAD" >&2; exit 2; }
[ -n "$reference" ] && designs="$designs c-epoll-reference"
case " $designs " in *" reactord "*) [ -x "$reactord" ] || {
    echo "measure.sh: $reactord missing: swift build -c release --product reactord" >&2; exit 2; } ;; esac

work="$(mktemp -d /tmp/designs-measure.XXXXXX)"
trap 'rm -rf "$work"' EXIT
make -s -C "$here" BUILD="$work/bin" >/dev/null
tools="python3 $here/measure_tools.py"
mkdir -p "$out"
tsv="$out/results.tsv"
printf 'design\tconns\tpipeline\tworkers\trt_per_s\tp99_us\tpss_kib\trss_kib\tprocs\tthreads\tconnected\trefused\ttimeout\tother\tdropped\tconnect_s\tcpu_us\troundtrips\tcpu_us_per_rt\tnote\n' > "$tsv"

# Waits (bounded) until FILE matches REGEX; prints the first match.
wait_for_line() {
    local file="$1" regex="$2" seconds="$3" i
    for ((i = 0; i < seconds * 20; i++)); do
        if grep -Eom1 "$regex" "$file" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# Stops a server by its PID (SIGTERM, then SIGKILL to its whole tree after 60 s) and reaps it.
stop_server() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 1200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  (still running 60 s after SIGTERM: SIGKILL)" >&2
        for child in $($tools pids "$pid"); do kill -KILL "$child" 2>/dev/null || true; done
    fi
    wait "$pid" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts DESIGN for N connections; sets $server_pid and $port.
start_server() {
    local design="$1" n="$2" log="$work/server.out"
    : > "$log"
    case "$design" in
        reactord)
            mkdir -p "$work/data" "$work/files"
            taskset -c 0 "$reactord" --echo-port 0 --kv-port off --time-port off --file-port off \
                --data-dir "$work/data" --files-root "$work/files" --max-connections $((n + 100)) \
                --idle-timeout 0 --log-level error > "$log" 2> "$work/server.err" &
            server_pid=$!
            wait_for_line "$log" 'reactord: ready' 60 >/dev/null || true
            port="$(grep -Eo 'echo tcp 127\.0\.0\.1:[0-9]+' "$log" | grep -Eo '[0-9]+$')" ;;
        c-epoll-reference)
            port="$(free_port)"
            taskset -c 0 "$reference" -l 127.0.0.1 -p "$port" > "$log" 2> "$work/server.err" &
            server_pid=$!
            wait_for_line "$work/server.err" 'listening' 60 >/dev/null || true ;;
        *)
            taskset -c 0 "$work/bin/$design" -l 127.0.0.1 -p 0 -w "$n" > "$log" 2> "$work/server.err" &
            server_pid=$!
            port="$(wait_for_line "$log" '^[0-9]+$' 600 || true)" ;;
    esac
}

field() { grep -Eo "$1=[0-9.]+" "$2" | head -1 | cut -d= -f2; }

for pipeline in $pipelines; do
    for n in $conns_list; do
        for design in $designs; do
            echo "== $design  conns=$n  pipeline=$pipeline" >&2
            start_server "$design" "$n"
            note=""
            case "$design" in
                iterative) note="serves 1 connection at a time; the rest wait (p99 counts answered requests only)" ;;
                prefork-fdpass|multi-accept) note="pool of $n workers (-w $n)" ;;
                c-epoll-reference) note="raw byte echo, not line-framed" ;;
            esac
            [ -n "$port" ] || note="did not start; $note"
            idle="$($tools cpu "$server_pid")"
            procs0="$(echo "$idle" | cut -d' ' -f1)"
            cpu0="$(echo "$idle" | cut -d' ' -f5)"
            # Past 1,000 connections, spread the client over four loopback source addresses so
            # earlier runs' TIME_WAIT sockets never exhaust one address's ephemeral ports.
            spread=()
            [ "$n" -ge 1000 ] && spread=(-b 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4)
            # 10,000 connections get twice the run time: forking or spawning that many takes seconds.
            run=$duration
            [ "$n" -ge 10000 ] && run=$((duration * 2))
            taskset -c 1 "$echoload" -h 127.0.0.1 -p "$port" -c "$n" -P "$pipeline" -d "$run" -T 20 \
                "${spread[@]}" > "$work/load.out" 2> "$work/load.err" &
            load_pid=$!
            # Memory is sampled once, a third of the way through the timed run, every connection up.
            # Reading smaps_rollup of 10,000 busy processes at the client's priority took longer
            # than the run, so the sampler runs at a higher one: it pauses the client for ~1 s at
            # most, rather than a fork-per-client server's children exiting before it is done.
            sample="0 0 nan nan 0"
            t0=$SECONDS
            if wait_for_line "$work/load.err" 'connected' 120 >/dev/null; then
                t1=$SECONDS
                sleep "$(awk "BEGIN { print $run / 3 }")"
                sample="$(nice -n -10 taskset -c 1 $tools sample "$server_pid")"
                echo "  connected after $((t1 - t0))s; memory sampled by $((SECONDS - t1))s of a ${run}s run" >&2
                kill -0 "$load_pid" 2>/dev/null || note="memory sampled after the load ended; $note"
            fi
            wait "$load_pid" || true
            # CPU after: once a fork-per-client server has reaped its children (bounded).
            for ((i = 0; i < 200; i++)); do
                now="$($tools cpu "$server_pid")"
                [ "$(echo "$now" | cut -d' ' -f1)" -le "$procs0" ] && break
                sleep 0.05
            done
            cpu1="$(echo "$now" | cut -d' ' -f5)"
            stop_server "$server_pid"
            read -r procs threads pss rss _ <<< "$sample"
            rt_per_s="$(field rt_per_s "$work/load.out")"; rt_per_s="${rt_per_s:-0}"
            p99="$(field p99_us "$work/load.out")"; p99="${p99:-nan}"
            roundtrips="$(field roundtrips "$work/load.out")"; roundtrips="${roundtrips:-0}"
            dropped="$(field dropped "$work/load.out")"; dropped="${dropped:-0}"
            connected="$(grep -Eo 'connected [0-9]+/[0-9]+' "$work/load.err" | cut -d' ' -f2)"
            connect_s="$(grep -Eo 'in [0-9.]+s' "$work/load.err" | grep -Eo '[0-9.]+' | head -1)"
            refused="$(field refused "$work/load.err")"; timeout="$(field timeout "$work/load.err")"
            other="$(field other "$work/load.err")"
            cpu_us=$((cpu1 - cpu0))
            if [ "$roundtrips" -gt 0 ]; then
                per_rt="$(awk "BEGIN { print $cpu_us / $roundtrips }")"
            else
                per_rt=nan
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\n' \
                "$design" "$n" "$pipeline" "$n" "$rt_per_s" "$p99" "$pss" "$rss" "$procs" "$threads" \
                "${connected:-0/$n}" "${refused:-?}" "${timeout:-?}" "${other:-?}" "$dropped" "${connect_s:-?}" \
                "$cpu_us" "$roundtrips" "$per_rt" "$note" >> "$tsv"
            tail -1 "$tsv" >&2
        done
    done
done
$tools report "$tsv" "$out/results.md" "$out/designs.svg"
echo "wrote $tsv, $out/results.md, $out/designs.svg" >&2
