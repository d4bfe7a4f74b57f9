# arq (asyncio job queue): jobs enqueued, one deferred, run by a burst worker; results read back
# (sorted sets for the queue, Lua, transactions with WATCH).
import asyncio
import sys

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

settings = RedisSettings(host="127.0.0.1", port=int(sys.argv[1]))


async def add(ctx, a, b):
    return a + b


async def main():
    pool = await create_pool(settings)
    await pool.flushdb()
    job = await pool.enqueue_job("add", 2, 3)
    duplicate = await pool.enqueue_job("add", 1, 1, _job_id="fixed")
    assert await pool.enqueue_job("add", 1, 1, _job_id="fixed") is None  # a job id is unique
    deferred = await pool.enqueue_job("add", 4, 4, _defer_by=0.2)
    worker = Worker(functions=[add], redis_settings=settings, burst=True, poll_delay=0.05, handle_signals=False)
    await worker.main()
    assert await job.result(timeout=5) == 5
    assert await duplicate.result(timeout=5) == 2
    assert await deferred.result(timeout=5) == 8
    await worker.close()
    await pool.aclose()


asyncio.run(main())
print("OK arq: jobs, a unique job id, a deferred job run by a burst worker")
