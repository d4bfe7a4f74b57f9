#!/usr/bin/env python3
"""PUBLISH fan-out: N subscribers on one channel, one publisher sending M messages of S bytes in
pipelined batches; measures how long until every subscriber holds every message (deliveries per
second) and the server's CPU time per delivery (from /proc/<pid>/stat). Run it against reactord
and redis-server alternately with the same arguments (Benchmarks/README.md "Pub/sub fan-out").

Usage: scripts/pubsub-fanout.py PORT PID [--subscribers 1000] [--messages 2000] [--size 64]
                                         [--batch 50]
"""
import argparse, os, selectors, socket, sys, time


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("pid", type=int)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=50)
    a = p.parse_args()
    channel = b"fanout"
    payload = b"x" * a.size
    frame = len(b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(channel), channel, a.size, payload))
    confirm = len(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel))
    sel = selectors.DefaultSelector()
    subs = []
    for _ in range(a.subscribers):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(command("SUBSCRIBE", channel))
        subs.append(s)
    got = {}
    for s in subs:  # wait for every confirmation
        need = confirm
        while need > 0:
            need -= len(s.recv(need))
        s.setblocking(False)
        got[s] = 0
        sel.register(s, selectors.EVENT_READ)
    pub = socket.create_connection(("127.0.0.1", a.port))
    expected = frame * a.messages
    cpu0, t0 = cpu_seconds(a.pid), time.perf_counter()
    sent = 0
    done = 0
    replies = b""
    while done < len(subs):
        if sent < a.messages and sent - replies.count(b"\r\n") < 2 * a.batch:
            n = min(a.batch, a.messages - sent)
            pub.sendall(command("PUBLISH", channel, payload) * n)
            sent += n
        try:
            pub.setblocking(False)
            replies += pub.recv(1 << 16)
        except BlockingIOError:
            pass
        for key, _ in sel.select(timeout=0.01):
            s = key.fileobj
            data = s.recv(1 << 20)
            got[s] += len(data)
            if got[s] >= expected:
                sel.unregister(s)
                done += 1
    t1, cpu1 = time.perf_counter(), cpu_seconds(a.pid)
    deliveries = a.subscribers * a.messages
    print("subscribers=%d messages=%d size=%d deliveries=%d elapsed=%.3fs deliveries/s=%.0f server_cpu=%.3fs "
          "cpu_us_per_delivery=%.3f" % (a.subscribers, a.messages, a.size, deliveries, t1 - t0, deliveries / (t1 - t0),
                                        cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / deliveries))
    for s in subs:
        s.close()
    pub.close()


if __name__ == "__main__":
    main()
