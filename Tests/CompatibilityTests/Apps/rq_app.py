# rq (job queue): enqueue a job, run a burst worker in this process, read the result back.
import sys

import redis
from rq import Queue, SimpleWorker

connection = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
queue = Queue("compat", connection=connection)
job = queue.enqueue("operator.add", 2, 3)
failing = queue.enqueue("operator.truediv", 1, 0)
delayed = queue.enqueue_in(__import__("datetime").timedelta(seconds=60), "operator.mul", 6, 7)
assert queue.count == 2, queue.count
SimpleWorker([queue], connection=connection).work(burst=True)
job.refresh()
failing.refresh()
assert job.get_status() == "finished", job.get_status()
assert job.return_value() == 5, job.return_value()
assert failing.get_status() == "failed", failing.get_status()
assert delayed.get_status() == "scheduled", delayed.get_status()
assert queue.count == 0
print("OK rq: a job ran, a failing one failed, a delayed one waits")
