# python-redis-lock: a lock held by one thread, a second thread blocked on it (BLPOP on the
# lock's signal list) until the first releases; extend and expiry in between (Lua scripts).
import sys
import threading
import time

import redis
import redis_lock

connection = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
redis_lock.reset_all(connection)
first = redis_lock.Lock(connection, "compat-lock", expire=10)
assert first.acquire(blocking=False)
assert not redis_lock.Lock(connection, "compat-lock").acquire(blocking=False)
first.extend(expire=20)
assert 10 < connection.ttl("lock:compat-lock") <= 20
acquired = threading.Event()


def waiter():
    second = redis_lock.Lock(connection, "compat-lock", expire=10)
    if second.acquire(timeout=10):
        acquired.set()
        second.release()


thread = threading.Thread(target=waiter)
thread.start()
time.sleep(0.3)  # let the waiter block first: the release must wake it, not find the lock free
assert not acquired.is_set()
first.release()
assert acquired.wait(10), "the waiter was not woken by the release"
thread.join(10)
assert connection.exists("lock:compat-lock") == 0
print("OK python-redis-lock: acquire, extend, a blocked waiter woken by release")
