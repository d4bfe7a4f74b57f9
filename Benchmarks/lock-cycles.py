#!/usr/bin/env python3
# redis-py's Lock (EVALSHA for release and extend), as its users use it: N clients (threads, one
# connection each) acquire one lock, hold it for the critical section, release it, and go again,
# for a fixed time. Prints the acquire/release cycles per second and the CPU seconds the server
# process used meanwhile; counts any overlap (two holders at once, seen through a shared counter
# that only a holder may touch) and exits 1 if there was one.
# Usage: Benchmarks/lock-cycles.py PORT SERVER_PID [CLIENTS=50] [SECONDS=10]
import redis, sys, threading, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 50
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks

holders = 0
overlaps = 0
cycles = [0] * clients
guard = threading.Lock()
stop = threading.Event()

def worker(index):
    global holders, overlaps
    connection = redis.Redis(port=port)
    lock = connection.lock("bench-lock", timeout=10, blocking_timeout=30, sleep=0.001)
    while not stop.is_set():
        if not lock.acquire():
            continue
        with guard:
            holders += 1
            if holders > 1: overlaps += 1
        with guard:
            holders -= 1
        lock.release()
        cycles[index] += 1

redis.Redis(port=port).delete("bench-lock")
threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
cpu0, t0 = cpu_seconds(pid), time.time()
for t in threads: t.start()
time.sleep(seconds)
stop.set()
for t in threads: t.join()
elapsed, cpu = time.time() - t0, cpu_seconds(pid) - cpu0
total = sum(cycles)
print(f"port {port}: {clients} clients, {total / elapsed:.0f} cycles/s, server CPU {1e6 * cpu / max(total, 1):.1f} us per cycle, overlaps {overlaps}")
sys.exit(1 if overlaps else 0)
