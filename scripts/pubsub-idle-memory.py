#!/usr/bin/env python3
"""Memory per idle subscriber: opens N connections that each SUBSCRIBE to a channel of their own
and then stay silent, and prints the server's resident set (VmRSS from /proc/<pid>/status) before
and after, divided by N. Run it against reactord and redis-server alternately with the same
arguments (Benchmarks/README.md "Pub/sub: idle subscribers"); the process needs 2N+ descriptors.

Usage: scripts/pubsub-idle-memory.py PORT PID [--subscribers 10000] [--channels 1]
"""
import argparse, socket, time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("pid", type=int)
    p.add_argument("--subscribers", type=int, default=10000)
    p.add_argument("--channels", type=int, default=1, help="channels the subscribers are spread over")
    a = p.parse_args()
    before = rss_kib(a.pid)
    subs = []
    for i in range(a.subscribers):
        s = socket.create_connection(("127.0.0.1", a.port))
        channel = b"idle:%d" % (i % a.channels)
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel))
        subs.append((s, channel))
    for s, channel in subs:  # every confirmation received: every subscription is in place
        need = len(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel))
        while need > 0:
            chunk = s.recv(need)
            if not chunk:
                raise SystemExit("the server closed a subscriber")
            need -= len(chunk)
    time.sleep(1)  # let the server settle (buffers released after the replies went out)
    after = rss_kib(a.pid)
    print("subscribers=%d channels=%d rss_before_kib=%d rss_after_kib=%d bytes_per_subscriber=%.0f"
          % (a.subscribers, a.channels, before, after, (after - before) * 1024.0 / a.subscribers))
    for s, _ in subs:
        s.close()


if __name__ == "__main__":
    main()
