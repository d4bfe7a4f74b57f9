# limits (rate limiting): moving-window (a Lua script over a list) and fixed-window limits through
# its Redis storage; the seventh hit in a 5/minute window is refused.
import sys

from limits import parse, storage, strategies

backend = storage.RedisStorage(f"redis://127.0.0.1:{sys.argv[1]}")
backend.reset()
item = parse("5/minute")
for name, strategy in (("moving", strategies.MovingWindowRateLimiter(backend)),
                       ("fixed", strategies.FixedWindowRateLimiter(backend))):
    hits = [strategy.hit(item, "compat", name) for _ in range(7)]
    assert hits == [True] * 5 + [False] * 2, (name, hits)
    assert not strategy.test(item, "compat", name)
    stats = strategy.get_window_stats(item, "compat", name)
    assert stats.remaining == 0, (name, stats)
print("OK limits: moving and fixed windows allow 5 of 7 hits")
