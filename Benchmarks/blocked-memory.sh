#!/usr/bin/env bash
# The "clients blocked with no traffic" row of Benchmarks/README.md: N clients each in BLPOP (timeout
# 0) for reactord (--fsync everysec) and redis-server 7.0.15 (AOF everysec), side by side. For each
# server: VmRSS before any client connects, once all N are connected and idle (each answered one
# PING), and once all N are blocked (INFO blocked_clients reaches N); the per-client figures are the
# differences over N. Then the server's CPU over 5 seconds of the N waiting and nothing else.
# KEYS=same blocks every client on one key (a job queue's workers); KEYS=own gives each its own key.
# Needs N + 100 file descriptors (ulimit -n) for the client and the server.
# Usage: [KEYS=same|own] Benchmarks/blocked-memory.sh [path/to/reactord] [N]
set -u
bin=${1:-.build/release/reactord}
clients=${2:-10000}
keys=${KEYS:-same}
free_port() {
    while true; do
        port=$((20000 + RANDOM % 12000))  # below the ephemeral range the clients use
        ss -ltn | grep -q ":$port " || { echo $port; return; }
    done
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for server in reactord redis; do
    dir=$(mktemp -d)
    port=$(free_port)
    if [ "$server" = reactord ]; then
        "$bin" --kv-port "$port" --echo-port off --time-port off --file-port off --data-dir "$dir" \
            --max-connections $((clients + 100)) --fsync everysec --log-level error > /dev/null 2>&1 &
    else
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
            --maxclients $((clients + 100)) --dir "$dir" > /dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
    python3 - "$port" "$pid" "$server" "$clients" "$keys" <<'PY'
import socket, sys, time
port, pid, server, clients, keys = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) * 1024
def ticks():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
def read_reply(s):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"{server}: a connection closed: {data!r}")
        data += chunk
    return data
control = socket.create_connection(("127.0.0.1", port))
def blocked():
    control.sendall(b"*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n")
    data = b""
    while True:
        data += control.recv(65536)
        if data.startswith(b"$"):
            header, _, rest = data.partition(b"\r\n")
            if len(rest) >= int(header[1:]) + 2:
                break
    for line in data.decode().split("\r\n"):
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
time.sleep(0.5)
before = rss()
sockets = []
for i in range(clients):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    sockets.append(s)
for s in sockets:
    read_reply(s)
time.sleep(0.5)
connected = rss()
for i, s in enumerate(sockets):
    key = b"queue" if keys == "same" else b"queue:%d" % i
    s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(key), key))
deadline = time.time() + 60
while blocked() < clients and time.time() < deadline:
    time.sleep(0.1)
count = blocked()
time.sleep(0.5)
waiting = rss()
start = ticks()
time.sleep(5)
idle_ms = (ticks() - start) * 10
print(f"{server}: {count} blocked ({keys} key); RSS per connection {(connected - before) / clients:.0f} B, "
      f"per blocked client (connection and BLPOP) {(waiting - before) / clients:.0f} B, "
      f"BLPOP's own share {(waiting - connected) / clients:.0f} B; CPU while they wait {idle_ms} ms in 5 s")
for s in sockets:
    s.close()
PY
    kill "$pid"
    wait "$pid" 2> /dev/null
    rm -rf "$dir"
done
