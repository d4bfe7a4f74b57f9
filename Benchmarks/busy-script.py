#!/usr/bin/env python3
# A script that never ends (EVAL "while true do end"), at the default busy-reply-threshold (5 s): how long
# until another client is answered -BUSY, then how long after SCRIPT KILL until PING answers again.
# Usage: Benchmarks/busy-script.py PORT
import redis, sys, time, threading
port = int(sys.argv[1])
r = redis.Redis(port=port)
def spin():
    try: redis.Redis(port=port, socket_timeout=60).eval("while true do end", 0)
    except Exception as e: pass
t0 = time.time(); threading.Thread(target=spin, daemon=True).start()
time.sleep(0.05)
busy = None
while time.time() - t0 < 20:
    try:
        r.ping()
    except redis.exceptions.BusyLoadingError:
        busy = time.time() - t0; break
    except redis.exceptions.ResponseError as e:
        if str(e).startswith("BUSY") or "busy" in str(e): busy = time.time() - t0; break
        raise
t1 = time.time(); r.script_kill()
while True:
    try:
        r.ping(); break
    except Exception: pass
print(f"port {port}: -BUSY after {busy:.2f} s; PONG again {1000*(time.time()-t1):.1f} ms after SCRIPT KILL")
