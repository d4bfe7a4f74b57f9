# Celery with Redis as its broker and its result backend, at their default settings: a worker
# (in this process, solo pool) runs a task and its result comes back through the backend (kept
# with SETEX, announced with PUBLISH); a group; a chord, whose counter the backend keeps with
# INCR in a transactional pipeline; a task's exception comes back as that exception.
import sys

from celery import Celery, chord, group
from celery.contrib.testing.worker import start_worker

url = f"redis://127.0.0.1:{sys.argv[1]}/0"
app = Celery("compat", broker=url, backend=url)
app.conf.broker_connection_retry_on_startup = False


@app.task
def add(x, y):
    return x + y


@app.task
def total(values):
    return sum(values)


@app.task
def fail():
    raise ValueError("raised in the worker")


with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
    assert add.delay(2, 3).get(timeout=10) == 5
    assert group(add.s(i, i) for i in range(5))().get(timeout=10) == [0, 2, 4, 6, 8]
    assert chord((add.s(i, 1) for i in range(4)), total.s())().get(timeout=10) == 10
    try:
        fail.delay().get(timeout=10)
        raise AssertionError("the task's exception was lost")
    except ValueError as error:
        assert "raised in the worker" in str(error), error
print("OK celery: a task, a group and a chord ran by a worker, results and an exception back through the backend")
