#!/usr/bin/env bash
# User-space instructions per request of an example server under its load, with callgrind (the
# deterministic figure beside nio-compare.sh's CPU times): the server runs under valgrind on a
# copy without debug info (valgrind 3.19 cannot read the toolchain's DWARF 5), the load runs for
# 10 s, and the program's total instructions are divided by the requests the client counted
# (start-up included: a few hundred instructions per request at these rates).
#
#   Benchmarks/callgrind-examples.sh http [BINARY]   wrk -t 1 -c 50 on GET /plaintext
#                                                    (default: the release http-plaintext)
#   Benchmarks/callgrind-examples.sh echo [BINARY]   echoload -c 50 -P 1 (default: async-echo)
#
# Needs valgrind, wrk, gcc (echoload is ../shared/bench/c_echo/echoload.c beside the repository,
# or ECHOLOAD=path). The server listens on 127.0.0.1 only and is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: $0 http|echo [BINARY]}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
if [ $# -ge 2 ]; then
    binary=$2
else
    product=$([ "$kind" = http ] && echo http-plaintext || echo async-echo)
    swift build -c release --product "$product" >/dev/null
    binary=$(swift build -c release --show-bin-path)/$product
fi
strip --strip-debug -o "$work/server" "$binary"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$work/server" "$port" >"$work/valgrind.log" 2>&1 &
pid=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
if [ "$kind" = http ]; then
    n=$(wrk -t 1 -c 50 -d 10s "http://127.0.0.1:$port/plaintext" | awk '/requests in/ {print $1}')
else
    echoload=${ECHOLOAD:-}
    if [ -z "$echoload" ]; then
        gcc -O2 -o "$work/echoload" ../shared/bench/c_echo/echoload.c
        echoload=$work/echoload
    fi
    n=$("$echoload" -p "$port" -c 50 -P 1 -d 10 2>/dev/null | sed -n 's/.*roundtrips=\([0-9]*\).*/\1/p')
fi
kill "$pid"  # callgrind writes its counts as the server exits on SIGTERM
wait "$pid" 2>/dev/null || true
pid=
ir=$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$kind: requests=$n instructions=$ir per_request=$(python3 -c "print(round($ir / $n))")"
