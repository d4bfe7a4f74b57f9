#!/usr/bin/env python3
# The libraries of issue 26's matrix that use Lua and are not among Tests/CompatibilityTests/Apps
# (python-redis-lock, limits, dramatiq and channels_redis are): each does what it uses Lua for, and
# one line per library says OK or what failed. Run it against reactord and against redis-server.
# Needs: pip install redis django django-redis aiocache dogpile.cache
# Usage: Benchmarks/lua-libraries.py PORT
import asyncio, sys, threading, time, traceback

port = int(sys.argv[1])
url = f"redis://127.0.0.1:{port}/0"

def redis_py_lock():
    import redis
    r = redis.Redis(port=port)
    lock = r.lock("m:redis-py", timeout=5)
    assert lock.acquire(blocking=False)
    assert not r.lock("m:redis-py", timeout=5).acquire(blocking=False), "held twice"
    assert lock.extend(5) and r.pttl("m:redis-py") > 5000
    lock.release()
    assert r.get("m:redis-py") is None
    return "acquire, a second holder refused, extend, release"

def django_redis():
    import django
    from django.conf import settings
    settings.configure(CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}})
    django.setup()
    from django.core.cache import cache
    cache.set("m:counter", 1)
    assert cache.incr("m:counter", 4) == 5
    with cache.lock("m:django-lock", timeout=5):
        assert not cache.lock("m:django-lock", timeout=5).acquire(blocking=False), "held twice"
    assert cache.lock("m:django-lock", timeout=5).acquire(blocking=False)
    return "incr, lock held once and released"

def aiocache_redlock():
    import redis
    from aiocache import RedisCache
    from aiocache.lock import RedLock
    raw = redis.Redis(port=port)
    async def run():
        cache = RedisCache(endpoint="127.0.0.1", port=port)
        await cache.delete("m:aio")
        async with RedLock(cache, "m:aio", lease=5):
            assert raw.exists("m:aio-lock"), "no lock key"
        assert not raw.exists("m:aio-lock"), "lock not released"
        await cache.close()
    asyncio.run(run())
    return "RedLock acquired and released (its Lua release)"

def dogpile_lock():
    import redis
    from dogpile.cache import make_region
    redis.Redis(port=port).delete("m:dogpile")
    region = make_region().configure("dogpile.cache.redis", arguments={
        "host": "127.0.0.1", "port": port, "distributed_lock": True, "thread_local_lock": False, "lock_timeout": 5})
    calls = []
    def create():
        calls.append(1)
        time.sleep(0.2)
        return "value"
    results = []
    threads = [threading.Thread(target=lambda: results.append(region.get_or_create("m:dogpile", create))) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert results == ["value"] * 4 and len(calls) == 1, f"created {len(calls)} times"
    return "four threads, the value created once under the distributed lock"

for name, check in [("redis-py Lock", redis_py_lock), ("django-redis", django_redis),
                    ("aiocache RedLock", aiocache_redlock), ("dogpile.cache", dogpile_lock)]:
    try:
        print(f"OK {name}: {check()}")
    except Exception as error:
        print(f"FAIL {name}: {type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
