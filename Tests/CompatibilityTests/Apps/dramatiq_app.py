# dramatiq (task queue): every message goes through its Lua dispatch script; a worker thread runs
# the actor and the result comes back through the Redis results backend.
import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

port = int(sys.argv[1])
broker = RedisBroker(host="127.0.0.1", port=port)
broker.add_middleware(Results(backend=RedisBackend(host="127.0.0.1", port=port)))
dramatiq.set_broker(broker)
broker.flush_all()


@dramatiq.actor(store_results=True, max_retries=0)
def add(a, b):
    return a + b


messages = [add.send(i, i) for i in range(5)]
worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
worker.start()
try:
    results = [message.get_result(block=True, timeout=15_000) for message in messages]
finally:
    worker.stop()
assert results == [0, 2, 4, 6, 8], results
print("OK dramatiq: five messages dispatched, run and answered")
