#!/usr/bin/env python3
"""Floods a RESP server and times a newcomer's first reply meanwhile.

    scripts/flood.py --port P [--host 127.0.0.1] [--clients 5000] [--pipeline 1000]
                     [--mode set|auth] [--password PW] [--server-pid PID] [--probe-every 0.1]

set:  every client connects, writes `pipeline` SETs (distinct keys, 16-byte values) in one go
      and never reads a reply (the kernel's buffers and the server's backpressure hold them).
auth: every client pipelines `pipeline` wrong AUTHs and reads every reply; each must be
      -WRONGPASS (the count of other replies is printed and makes the exit status 1).

Meanwhile a separate process opens a fresh connection every `--probe-every` seconds, sends
PING (after AUTH when --password is given) and times the first reply. Printed at the end: probes,
p50/p99/max of the first-reply time while the flood was being written or answered, the server's
peak RSS (with --server-pid), and the flood's own duration. The probe runs in its own process so
the flood's Python work never delays it. Talks only to the host given (127.0.0.1 by default).
"""

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import sys
import threading
import time


def resp(*words):
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        w = w if isinstance(w, bytes) else w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(w), w))
    return b"".join(out)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def probe(host, port, password, every, stop, results):
    """Fresh connection, PING, time to the first byte of the PONG; repeat until stop is set."""
    request = (resp("AUTH", password) if password else b"") + resp("PING")
    expect = (b"+OK\r\n" if password else b"") + b"+PONG\r\n"
    samples = []
    while not stop.is_set():
        started = time.monotonic()
        try:
            s = socket.create_connection((host, port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(request)
            got = b""
            while len(got) < len(expect):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            elapsed = time.monotonic() - started
            s.close()
            samples.append((started, elapsed, got == expect))
        except OSError as e:
            samples.append((started, time.monotonic() - started, False))
            print(f"probe: {e}", file=sys.stderr)
        left = every - (time.monotonic() - started)
        if left > 0:
            stop.wait(left)
    results.put(samples)


def flood(args):
    sel = selectors.DefaultSelector()
    clients = []
    value = b"v" * 16
    wrong = resp("AUTH", "not-the-password")
    reply_wrong = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    for i in range(args.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((args.host, args.port))
        except BlockingIOError:
            pass
        if args.mode == "set":
            payload = b"".join(resp("SET", f"flood:{i}:{j}", value) for j in range(args.pipeline))
        else:
            payload = wrong * args.pipeline
        clients.append({"sock": s, "out": memoryview(payload), "sent": 0, "got": 0, "other": 0, "buf": b""})
        sel.register(s, selectors.EVENT_WRITE | (selectors.EVENT_READ if args.mode == "auth" else 0), clients[-1])
    written_at = None
    pending_writes = len(clients)
    pending_replies = len(clients) if args.mode == "auth" else 0
    while pending_writes or pending_replies:
        for key, events in sel.select(timeout=60):
            c = key.data
            s = c["sock"]
            if events & selectors.EVENT_WRITE and c["sent"] < len(c["out"]):
                try:
                    n = s.send(c["out"][c["sent"]:c["sent"] + 262144])
                except BlockingIOError:
                    n = 0
                except OSError as e:
                    print(f"flood send: {e}", file=sys.stderr)
                    n = len(c["out"]) - c["sent"]
                c["sent"] += n
                if c["sent"] == len(c["out"]):
                    pending_writes -= 1
                    if args.mode == "set":
                        sel.unregister(s)
                    else:
                        sel.modify(s, selectors.EVENT_READ, c)
            if events & selectors.EVENT_READ:
                try:
                    chunk = s.recv(1 << 20)
                except OSError as e:  # a reset counts as the end of this client's replies
                    print(f"flood recv: {e}", file=sys.stderr)
                    chunk = b""
                if not chunk:
                    sel.unregister(s)
                    pending_replies -= 1
                    c["other"] += args.pipeline - c["got"]
                    continue
                c["buf"] += chunk
                while True:
                    end = c["buf"].find(b"\r\n")
                    if end < 0:
                        break
                    line = c["buf"][:end + 2]
                    c["buf"] = c["buf"][end + 2:]
                    c["got"] += 1
                    if line != reply_wrong:
                        c["other"] += 1
                if c["got"] >= args.pipeline:
                    sel.unregister(s)
                    pending_replies -= 1
        if not pending_writes and written_at is None:
            written_at = time.monotonic()
    return clients, written_at


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--pipeline", type=int, default=1000)
    p.add_argument("--mode", choices=["set", "auth"], default="set")
    p.add_argument("--password")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--probe-every", type=float, default=0.1)
    p.add_argument("--settle", type=float, default=3.0,
                   help="set mode: seconds to keep probing after the last byte is written (the server works on)")
    args = p.parse_args()
    if not args.host.startswith("127."):
        sys.exit("flood.py talks to 127.0.0.0/8 only")

    stop = mp.Event()
    results = mp.Queue()
    prober = mp.Process(target=probe, args=(args.host, args.port, args.password, args.probe_every, stop, results))
    prober.start()
    time.sleep(0.3)  # a few baseline probes before the flood
    peak = {"rss": rss_kib(args.server_pid) if args.server_pid else None}
    sampling = threading.Event()

    def sample_rss():  # every 50 ms for the whole run, flood included
        while args.server_pid and not sampling.wait(0.05):
            r = rss_kib(args.server_pid)
            if r and (peak["rss"] is None or r > peak["rss"]):
                peak["rss"] = r

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    started = time.monotonic()
    clients, written_at = flood(args)
    flooded = time.monotonic()
    # In set mode the server still works through what the kernel buffered: keep probing.
    end = flooded + (args.settle if args.mode == "set" else 0.3)
    while time.monotonic() < end:
        time.sleep(0.05)
    stop.set()
    sampling.set()
    sampler.join()
    peak_rss = peak["rss"]
    samples = results.get()
    prober.join()
    window = [s for s in samples if started <= s[0] <= end]
    times = sorted(s[1] for s in window)
    failed = sum(1 for s in window if not s[2])

    def pct(q):
        return times[min(len(times) - 1, int(q * len(times)))] * 1000 if times else float("nan")

    print(f"mode={args.mode} clients={args.clients} pipeline={args.pipeline} "
          f"flood_written_s={(written_at or flooded) - started:.2f} flood_s={flooded - started:.2f}")
    print(f"newcomer first reply: probes={len(times)} p50={pct(0.5):.1f}ms p99={pct(0.99):.1f}ms "
          f"max={(times[-1] * 1000 if times else float('nan')):.1f}ms failed={failed}")
    worst = sorted(window, key=lambda s: -s[1])[:3]
    print("slowest probes (start s after the flood began, ms): "
          + ", ".join(f"{s[0] - started:.2f}:{s[1] * 1000:.0f}" for s in worst))
    if peak_rss is not None:
        print(f"server peak RSS: {peak_rss / 1024:.1f} MiB")
    status = 0
    if args.mode == "auth":
        total = sum(c["got"] for c in clients)
        other = sum(c["other"] for c in clients)
        print(f"auth replies: {total} of {args.clients * args.pipeline}, not WRONGPASS: {other}")
        status = 1 if other or total != args.clients * args.pipeline else 0
    for c in clients:
        c["sock"].close()
    sys.exit(status if not failed else 1)


if __name__ == "__main__":
    main()
