#!/usr/bin/env bash
# The Reactor beside SwiftNIO 2.101, each server on one loop thread pinned to CPU 0, its load
# client on CPU 1, servers alternating within each round (A B A B ...). Rows (Benchmarks/README.md,
# "The Reactor beside SwiftNIO"):
#   echo      server CPU per round trip, echoload -c 50 at -P 1 and -P 16: Reactor callback echo
#             (NIOCompare's ReactorEcho), NIOEcho, and the async/await echo (Examples/async-echo)
#   http      wrk -c 50 -t 1 on GET /plaintext at 1 and 16 pipelined: requests/s and server CPU
#             per request, Examples/http-plaintext against NIOCompare's NIOPlaintext (NIOHTTP1)
#   idle      server memory per connection (VmRSS growth / connections) at 10,000 idle connections
#   build     clean release build of an echo tool on Reactor (ReactorEcho) and on NIO (NIOEcho),
#             each in a fresh scratch directory (package checkouts come from the local mirror)
# CPU is the run time of every server thread from /proc/PID/task/*/schedstat over the load run.
#
#   Benchmarks/nio-compare.sh [-r RUNS] [-d SECONDS] [-i IDLE_CONNECTIONS] [-s ROWS]
#     -r  rounds per figure (default 3); -d seconds per load run (default 10)
#     -i  idle connections (default 10000; the shell's descriptor limit is raised to 20000)
#     -s  rows to run, quoted (default "echo http idle build")
#
# Needs: gcc (the echo load client), wrk (apt-get install wrk), python3. The echo load client is
# ../shared/bench/c_echo/echoload.c beside the repository, or ECHOLOAD=path to a built one;
# NIOCOMPARE_BIN=dir and TOP_BIN=dir take the NIOCompare servers and the examples from release
# builds already made there.
# Every server listens on 127.0.0.1 only and is stopped by its PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
secs=10
idle=10000
rows="echo http idle build"
while getopts "r:d:i:s:" opt; do
    case $opt in
        r) runs=$OPTARG ;;
        d) secs=$OPTARG ;;
        i) idle=$OPTARG ;;
        s) rows=$OPTARG ;;
        *) echo "usage: $0 [-r RUNS] [-d SECONDS] [-i IDLE] [-s ROWS]" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "nio-compare.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
ulimit -n 20000

work=$(mktemp -d)
cleanup() {
    if [ -f "$work/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echoload=${ECHOLOAD:-}
if [ -z "$echoload" ]; then
    gcc -O2 -o "$work/echoload" ../shared/bench/c_echo/echoload.c
    echoload="$work/echoload"
fi
top=${TOP_BIN:-}
if [ -z "$top" ]; then
    swift build -c release --product async-echo >/dev/null
    swift build -c release --product http-plaintext >/dev/null
    top=$(swift build -c release --show-bin-path)
fi
cmp=${NIOCOMPARE_BIN:-}
if [ -z "$cmp" ]; then
    swift build -c release --package-path Benchmarks/NIOCompare >/dev/null
    cmp=$(swift build -c release --package-path Benchmarks/NIOCompare --show-bin-path)
fi
declare -A exe=([reactor-echo]="$cmp/ReactorEcho" [nio-echo]="$cmp/NIOEcho" [async-echo]="$top/async-echo"
                [reactor-http]="$top/http-plaintext" [nio-http]="$cmp/NIOPlaintext")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
summary() { python3 -c '
import sys, statistics
v = [float(x) for x in sys.stdin.read().split()]
f = (lambda x: f"{x:.0f}") if max(v) >= 100 else (lambda x: f"{x:.3g}")
print(f"{f(statistics.median(v))} ({f(min(v))}-{f(max(v))})" if len(v) > 1 else f(v[0]))'; }
# CPU nanoseconds of every thread of a process (schedstat's run time: finer than stat's ticks).
cpu_ns() { cat /proc/$1/task/*/schedstat | awk '{s += $1} END {print s}'; }

# start NAME -> sets $pid and $port; the server runs pinned to CPU 0
start() {
    port=$(free_port)
    taskset -c 0 "${exe[$1]}" "$port" >"$work/$1.out" 2>&1 &
    pid=$!
    echo $pid >>"$work/pids"
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.1; done
    echo "nio-compare.sh: $1 did not start" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

echo_row() { # depth -> per server "name us_per_roundtrip roundtrips_per_s" lines, RUNS rounds
    for _ in $(seq "$runs"); do
        for name in reactor-echo nio-echo async-echo; do
            start $name
            t0=$(cpu_ns $pid)
            line=$(taskset -c 1 "$echoload" -p "$port" -c 50 -P "$1" -d "$secs" 2>/dev/null | grep '^echoload:')
            t1=$(cpu_ns $pid)
            stop
            n=$(sed 's/.*roundtrips=\([0-9]*\).*/\1/' <<<"$line")
            rps=$(sed 's/.*rt_per_s=\([0-9]*\).*/\1/' <<<"$line")
            echo "$name $(python3 -c "print(($t1 - $t0) / 1e3 / $n)") $rps"
        done
    done
}

http_row() { # pipeline depth -> "name us_per_request requests_per_s"
    printf 'init = function(args)\n  local r = {}\n  for i = 1, %d do r[i] = wrk.format("GET", "/plaintext") end\n  req = table.concat(r)\nend\nrequest = function() return req end\n' "$1" >"$work/pipeline.lua"
    for _ in $(seq "$runs"); do
        for name in reactor-http nio-http; do
            start $name
            t0=$(cpu_ns $pid)
            out=$(taskset -c 1 wrk -t 1 -c 50 -d "${secs}s" -s "$work/pipeline.lua" "http://127.0.0.1:$port/plaintext")
            t1=$(cpu_ns $pid)
            stop
            total=$(awk '/requests in/ {print $1}' <<<"$out")
            rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
            non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
            [ -z "$non2xx" ] || echo "nio-compare.sh: $name answered $non2xx non-2xx" >&2
            echo "$name $(python3 -c "print(($t1 - $t0) / 1e3 / $total)") $rps"
        done
    done
}

idle_row() { # -> "name bytes_per_connection"
    for _ in $(seq "$runs"); do
        for name in reactor-echo nio-echo async-echo; do
            start $name
            before=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
            # Spread over three source addresses: a round leaves its client ports in TIME_WAIT.
            taskset -c 1 "$echoload" -p "$port" -c "$idle" -I -d 60 -b 127.0.0.2,127.0.0.3,127.0.0.4 \
                >"$work/idle.out" 2>"$work/idle.err" &
            client=$!
            echo $client >>"$work/pids"
            for _ in $(seq 1200); do grep -q 'holding idle' "$work/idle.err" && break; sleep 0.1; done
            after=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
            held=$(sed -n 's/.*verified \([0-9]*\)\/.*/\1/p' "$work/idle.err")
            stop  # the server closes first, so the client's ports are not left in TIME_WAIT
            kill $client; wait $client 2>/dev/null || true
            [ -n "$held" ] || { echo "nio-compare.sh: $name: the idle client never held its connections" >&2; cat "$work/idle.err" >&2; continue; }
            echo "$name $(python3 -c "print(($after - $before) * 1024 / max($held, 1))") $held"
        done
    done
}

build_row() { # -> "name seconds"
    for _ in $(seq "$runs"); do
        for product in ReactorEcho NIOEcho; do
            rm -rf "$work/scratch"
            s=$(date +%s.%N)
            swift build -c release --package-path Benchmarks/NIOCompare --scratch-path "$work/scratch" --product $product >/dev/null
            e=$(date +%s.%N)
            echo "$product $(python3 -c "print($e - $s)")"
        done
    done
}

report() { # title column-names < lines "name value [value]"
    local title=$1 cols=$2 data; data=$(cat)
    echo "## $title"
    for name in $(awk '{print $1}' <<<"$data" | awk '!seen[$0]++'); do
        local line="$name"
        local i=2
        for col in $cols; do
            line+="  $col $(awk -v n="$name" -v i=$i '$1 == n {print $i}' <<<"$data" | summary)"
            i=$((i + 1))
        done
        echo "$line"
    done
}

for row in $rows; do
    case $row in
        echo) for depth in 1 16; do echo_row $depth | report "echo, 50 connections, $depth in flight" "us/roundtrip roundtrips/s"; done ;;
        http) for depth in 1 16; do http_row $depth | report "HTTP plaintext, wrk -c 50, $depth pipelined" "us/request requests/s"; done ;;
        idle) idle_row | report "$idle idle connections" "bytes/connection held" ;;
        build) build_row | report "clean release build of the echo tool" "seconds" ;;
    esac
done
