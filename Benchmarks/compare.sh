#!/usr/bin/env bash
# Side-by-side: reactord, redis-server and memcached (-t 1) on loopback, measured by the same
# clients: kvbench drives all three (RESP for reactord and Redis, the memcached text protocol for
# memcached); redis-benchmark drives reactord and Redis, memaslap (libmemcached-tools' memcaslap)
# memcached. Each figure is measured RUNS times with the servers alternating (A B C A B C ...)
# and printed as "median (min-max)". Server on CPU 0, clients on CPU 1. The redis-benchmark rows
# also give the server's CPU time per request (utime+stime from /proc/PID/stat over the run).
#
#   Benchmarks/compare.sh [-n REQUESTS] [-r RUNS] [-p PIPELINES] [-b] [-s] [-t P99_MS] [-f] [-o DIR]
#     -n  requests per kvbench/redis-benchmark run (default 200000)
#     -r  runs per figure, servers alternating (default 3)
#     -p  pipeline depths, quoted (default "1 16")
#     -b  redis-benchmark against reactord and Redis only (no kvbench, memcached or fsync row):
#         e.g. `-b -p 1 -r 7 -n 300000` for the pipeline-1 rounds
#     -s  also --sweep: the highest open-loop rate with p99 <= P99_MS (-t, default 1) for each
#         server (-c 50), tables and plots (DIR/sweep-<server>-<run>.svg)
#     -f  also the file client: reactor-cli file get of a 1 GiB file (in the server's page cache)
#         against a plain C reader (one reused 1 MiB buffer, write(2) to a file in the same
#         directory), both writing and discarding
#     -o  where plots go (default: Benchmarks/results)
#
# Needs: redis-server, redis-benchmark (redis-server, redis-tools), memcached; memcaslap
# (libmemcached-tools) optional; gcc for -f. Builds reactord, kvbench and reactor-cli in release
# mode first. Every server it starts listens on 127.0.0.1 only and is stopped by its PID when the
# script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=200000
runs=3
sweep=0
target=1
files=0
outdir=Benchmarks/results
pipelines="1 16"
only_rb=0
while getopts "n:r:p:bst:fo:" opt; do
    case $opt in
        n) requests=$OPTARG ;;
        r) runs=$OPTARG ;;
        p) pipelines=$OPTARG ;;
        b) only_rb=1 ;;
        s) sweep=1 ;;
        t) target=$OPTARG ;;
        f) files=1 ;;
        o) outdir=$OPTARG ;;
        *) echo "usage: $0 [-n REQUESTS] [-r RUNS] [-p PIPELINES] [-b] [-s] [-t P99_MS] [-f] [-o DIR]" >&2; exit 2 ;;
    esac
done
tools=(redis-server redis-benchmark redis-cli)
[ $only_rb = 1 ] || tools+=(memcached)
for tool in "${tools[@]}"; do
    command -v $tool >/dev/null || {
        echo "compare.sh: $tool not found (apt-get install redis-server redis-tools memcached)" >&2; exit 1; }
done
memaslap=$(command -v memcaslap || command -v memaslap || true)

swift build -c release --product reactord >/dev/null
swift build -c release --product kvbench >/dev/null
[ $files = 1 ] && swift build -c release --product reactor-cli >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
# The start_* functions run in command substitutions (subshells), so each server's PID goes to a
# file, not to a shell variable the subshell would lose.
cleanup() {
    if [ -f "$work/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
        for _ in $(seq 50); do
            alive=0
            while read -r pid; do  # a zombie (its parent shell gone) counts as stopped
                grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" && alive=1
            done <"$work/pids"
            [ $alive = 0 ] && break
            sleep 0.1
        done
    fi
    rm -rf "$work"
    [ -n "${shm:-}" ] && rm -rf "$shm"
    return 0
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# "median (min-max)" of the numbers on stdin; "-" if there are none.
summary() { python3 -c '
import sys, statistics
v = [float(x) for x in sys.stdin.read().split() if x not in ("", "-")]
if not v: print("-"); sys.exit()
f = (lambda x: f"{x:.0f}") if max(v) >= 100 else (lambda x: f"{x:.3g}")
print(f"{f(statistics.median(v))} ({f(min(v))}-{f(max(v))})" if len(v) > 1 else f(v[0]))'; }
median() { python3 -c 'import sys, statistics; v=[float(x) for x in sys.stdin.read().split() if x != "-"]; print(statistics.median(v) if v else "-")'; }
ratio() { python3 -c "a, b = '$1', '$2'; print('-' if '-' in (a, b) else f'{float(a)/float(b):.2f}')"; }

# start_reactord FSYNC [extra flags] -> prints the kv port (or, with --file-port 0, the file port)
start_reactord() {
    local fsync=$1; shift
    local dir="$work/reactord-$fsync-$RANDOM" out="$work/reactord-$fsync-$RANDOM.out"
    mkdir -p "$dir"
    taskset -c 0 "$bin/reactord" --kv-port 0 --echo-port off --time-port off --file-port off \
        --data-dir "$dir" --fsync "$fsync" --log-level error "$@" >"$out" 2>&1 &
    local pid=$!
    echo $pid >>"$work/pids"
    for _ in $(seq 100); do grep -q 'reactord: ready' "$out" 2>/dev/null && break; sleep 0.1; done
    local port
    if [[ " $* " == *" --file-port 0 "* ]]; then port=$(grep 'listening file tcp' "$out" | sed 's/.*://')
    else port=$(grep 'listening kv tcp' "$out" | sed 's/.*://'); fi
    echo $pid >"$work/pid-$port"
    echo "$port"
}

# start_redis APPENDFSYNC|none -> prints port
start_redis() {
    local port; port=$(free_port)
    local dir="$work/redis-$1"; mkdir -p "$dir"
    if [ "$1" = none ]; then
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 &
    else
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$1" --dir "$dir" >/dev/null 2>&1 &
    fi
    echo $! >>"$work/pids"
    echo $! >"$work/pid-$port"
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "$port"
}

# start_memcached -> prints port (one worker thread, as reactord and Redis serve from one thread)
start_memcached() {
    local port; port=$(free_port)
    local user=(); [ "$(id -u)" = 0 ] && user=(-u root)
    taskset -c 0 memcached -t 1 -p "$port" -l 127.0.0.1 -U 0 -m 1024 "${user[@]}" >/dev/null 2>&1 &
    echo $! >>"$work/pids"
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    echo "$port"
}

server_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$work/pid-$1")/stat"; }
rb() { # port test pipeline -> "ops p99_ms server_us_per_request" (CSV report: rps, ..., p99_latency_ms)
    local ticks0 ticks1 result
    ticks0=$(server_ticks "$1")
    result=$(taskset -c 1 redis-benchmark -p "$1" -t "$2" -c 50 -P "$3" -n "$requests" --csv 2>/dev/null \
        | tail -1 | awk -F, '{gsub(/"/,""); print int($2), $7}')
    ticks1=$(server_ticks "$1")
    echo "$result $(python3 -c "import os; print(f'{($ticks1 - $ticks0) / os.sysconf(\"SC_CLK_TCK\") / $requests * 1e6:.2f}')")"
}
kb() { # protocol port ratio pipeline -> "ops p99_ms"
    taskset -c 1 "$bin/kvbench" --protocol "$1" --port "$2" -c 50 -P "$4" -n "$requests" --ratio "$3" \
        --keyspace 100000 --json 2>/dev/null \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["ops_per_sec"]), d["p99_us"]/1000)'
}
preload() { # protocol port: every key of the keyspace set once, so GETs hit
    taskset -c 1 "$bin/kvbench" --protocol "$1" --port "$2" -c 50 -n 1 --ratio 1:0 --keyspace 100000 --preload --json >/dev/null
}
ms() { # port -> memaslap GET/s over 5 s, -c 50, one thread, 16-byte keys and values
    [ -n "$memaslap" ] || { echo -; return; }
    printf 'key\n16 16 1\nvalue\n16 16 1\ncmd\n0 0\n1 1\n' >"$work/memaslap.cfg"
    taskset -c 1 "$memaslap" -s "127.0.0.1:$1" -T 1 -c 50 -t 5s -S 5s -F "$work/memaslap.cfg" 2>/dev/null \
        | awk '/Get Statistics/ {g=1} g && /^Global/ {print $4; exit}'
}

r_no=$(start_reactord no)
redis_no=$(start_redis no)
preload resp "$r_no"; preload resp "$redis_no"
if [ $only_rb = 0 ]; then
    mc=$(start_memcached)
    preload memcache "$mc"
fi

row() { printf '%-34s %24s %24s %24s %9s\n' "$@"; }
echo "$runs runs per figure, servers alternating; median (min-max); -c 50; n=$requests"
row "test" "reactord" "redis-server" "memcached" "rd/redis"
for p in $pipelines; do
    for t in set get; do
        ao=(); ap=(); ac=(); bo=(); bp=(); bc=()
        for _ in $(seq "$runs"); do
            read -r o l c <<<"$(rb "$r_no" $t $p)"; ao+=("$o"); ap+=("$l"); ac+=("$c")
            read -r o l c <<<"$(rb "$redis_no" $t $p)"; bo+=("$o"); bp+=("$l"); bc+=("$c")
        done
        row "redis-benchmark $t -P $p (ops/s)" "$(summary <<<"${ao[*]}")" "$(summary <<<"${bo[*]}")" "-" \
            "$(ratio "$(median <<<"${ao[*]}")" "$(median <<<"${bo[*]}")")"
        row "redis-benchmark $t -P $p (p99 ms)" "$(summary <<<"${ap[*]}")" "$(summary <<<"${bp[*]}")" "-" \
            "$(ratio "$(median <<<"${ap[*]}")" "$(median <<<"${bp[*]}")")"
        row "redis-benchmark $t -P $p (server us/req)" "$(summary <<<"${ac[*]}")" "$(summary <<<"${bc[*]}")" "-" \
            "$(ratio "$(median <<<"${ac[*]}")" "$(median <<<"${bc[*]}")")"
    done
    [ $only_rb = 1 ] && continue
    for spec in "1:0 set" "0:1 get"; do
        set -- $spec
        ao=(); ap=(); bo=(); bp=(); co=(); cp=()
        for _ in $(seq "$runs"); do
            read -r o l <<<"$(kb resp "$r_no" "$1" $p)"; ao+=("$o"); ap+=("$l")
            read -r o l <<<"$(kb resp "$redis_no" "$1" $p)"; bo+=("$o"); bp+=("$l")
            read -r o l <<<"$(kb memcache "$mc" "$1" $p)"; co+=("$o"); cp+=("$l")
        done
        row "kvbench $2 -P $p (ops/s)" "$(summary <<<"${ao[*]}")" "$(summary <<<"${bo[*]}")" "$(summary <<<"${co[*]}")" \
            "$(ratio "$(median <<<"${ao[*]}")" "$(median <<<"${bo[*]}")")"
        row "kvbench $2 -P $p (p99 ms)" "$(summary <<<"${ap[*]}")" "$(summary <<<"${bp[*]}")" "$(summary <<<"${cp[*]}")" \
            "$(ratio "$(median <<<"${ap[*]}")" "$(median <<<"${bp[*]}")")"
    done
done
if [ $only_rb = 1 ]; then
    echo "(reactord --fsync no vs redis appendonly yes, appendfsync no)"
    exit 0
fi
m=(); for _ in $(seq "$runs"); do m+=("$(ms "$mc")"); done
row "memaslap get -c 50 (ops/s)" "-" "-" "$(summary <<<"${m[*]}")" "-"

r_always=$(start_reactord always)
redis_always=$(start_redis always)
a=(); b=()
for _ in $(seq "$runs"); do
    read -r o _ <<<"$(rb "$r_always" set 1)"; a+=("$o")
    read -r o _ <<<"$(rb "$redis_always" set 1)"; b+=("$o")
done
row "SET fsync always -P 1 (ops/s)" "$(summary <<<"${a[*]}")" "$(summary <<<"${b[*]}")" "-" \
    "$(ratio "$(median <<<"${a[*]}")" "$(median <<<"${b[*]}")")"
echo "(last row: reactord --fsync always vs redis appendfsync always; others: reactord --fsync no vs redis"
echo " appendonly yes, appendfsync no; memcached keeps nothing on disk)"

if [ $sweep = 1 ]; then
    mkdir -p "$outdir"
    echo
    echo "Sweep: highest open-loop rate with p99 <= $target ms (-c 50 -P 1, ratio 1:1, 2 s steps), servers alternating"
    declare -A best
    for run in $(seq "$runs"); do
        for spec in "reactord resp $r_no" "redis-server resp $redis_no" "memcached memcache $mc"; do
            set -- $spec
            taskset -c 1 "$bin/kvbench" --protocol "$2" --port "$3" -c 50 --sweep "$target" --duration 2 \
                --plot "$outdir/sweep-$1-$run.svg" >"$work/sweep-$1-$run.txt"
            best[$1]="${best[$1]:-} $(awk '/best:/ {print ($2 == "none;" ? 0 : $2)}' "$work/sweep-$1-$run.txt")"
            [ "$run" = 1 ] && { echo "--- $1"; cat "$work/sweep-$1-$run.txt"; }
        done
    done
    for s in reactord redis-server memcached; do
        echo "best rate $s: $(summary <<<"${best[$s]}") ops/s; plots: $outdir/sweep-$s-*.svg"
    done
fi

if [ $files = 1 ]; then
    command -v gcc >/dev/null || { echo "compare.sh: -f needs gcc" >&2; exit 1; }
    echo
    mkdir -p "$work/files"
    head -c 1073741824 /dev/urandom >"$work/files/big"
    sync
    cat "$work/files/big" >/dev/null   # into the page cache
    # Both clients write into one directory, on tmpfs where there is one: writing 1 GiB to a disk
    # file makes the figure the kernel's writeback, whichever client runs.
    if [ -d /dev/shm ]; then shm=$(mktemp -d -p /dev/shm); out=$shm; else out="$work/out"; mkdir -p "$out"; fi
    # The yardstick: receive into one reused 1 MiB buffer, write(2) each chunk (or discard it).
    cat >"$work/plainget.c" <<'C'
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static char buf[1 << 20];
int main(int argc, char **argv) { /* port path out|- */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return 3;
    char req[4200]; int rl = snprintf(req, sizeof req, "get %s\n", argv[2]);
    if (send(fd, req, rl, 0) != rl) return 1;
    size_t have = 0; char *data = NULL; int lines = 0;
    while (lines < 2) {                      /* greeting, then "OK <size>" */
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0) return 1;
        for (size_t i = have; i < have + n && lines < 2; i++) if (buf[i] == '\n' && ++lines == 2) data = buf + i + 1;
        have += n;
    }
    char *ok = memchr(buf, '\n', have) + 1;
    if (strncmp(ok, "OK ", 3) != 0) return 1;
    long long left = atoll(ok + 3);
    int out = strcmp(argv[3], "-") ? open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    size_t extra = buf + have - data;
    for (;;) {
        if (out >= 0) for (size_t off = 0; off < extra;) { ssize_t w = write(out, data + off, extra - off); if (w < 0) return 1; off += w; }
        left -= extra;
        if (left <= 0) break;
        ssize_t n = recv(fd, buf, left < (long long)sizeof buf ? left : sizeof buf, 0);
        if (n <= 0) return 1;
        data = buf; extra = n;
    }
    if (out >= 0) close(out);
    return 0;
}
C
    gcc -O2 -o "$work/plainget" "$work/plainget.c"
    fport=$(start_reactord no --file-port 0 --files-root "$work/files")
    mbps() { python3 -c "print(f'{1073741824 / 1e6 / ($2 - $1):.0f}')"; }
    timed() { local t0 t1; sync; t0=$(date +%s.%N); taskset -c 1 "$@" >/dev/null 2>&1; t1=$(date +%s.%N); mbps "$t0" "$t1"; }
    cw=(); pw=(); cd_=(); pd=()
    for run in $(seq "$runs"); do
        # Who goes first alternates from run to run.
        for who in $( [ $((run % 2)) = 1 ] && echo "cli plain" || echo "plain cli"); do
            if [ $who = cli ]; then
                cw+=("$(timed "$bin/reactor-cli" file get big --port "$fport" -o "$out/cli.bin" --force)"); rm -f "$out/cli.bin"
                cd_+=("$(timed "$bin/reactor-cli" file get big --port "$fport" -o /dev/null)")
            else
                pw+=("$(timed "$work/plainget" "$fport" big "$out/plain.bin")"); rm -f "$out/plain.bin"
                pd+=("$(timed "$work/plainget" "$fport" big -)")
            fi
        done
    done
    echo "File client, 1 GiB from reactord's file service (page cache), MB/s, $runs runs alternating; median (min-max)"
    printf '%-34s %20s %20s %9s\n' "" "reactor-cli file get" "plain C reader" "ratio"
    printf '%-34s %20s %20s %9s\n' "writing to a file (same tmpfs dir)" "$(summary <<<"${cw[*]}")" "$(summary <<<"${pw[*]}")" \
        "$(ratio "$(median <<<"${cw[*]}")" "$(median <<<"${pw[*]}")")"
    printf '%-34s %20s %20s %9s\n' "discarding (-o /dev/null / none)" "$(summary <<<"${cd_[*]}")" "$(summary <<<"${pd[*]}")" \
        "$(ratio "$(median <<<"${cd_[*]}")" "$(median <<<"${pd[*]}")")"
fi
