# huey (task queue): enqueue tasks, take and run them as the consumer would, read the results; a
# scheduled task waits in the schedule until due.
import sys
import time

from huey import RedisHuey

huey = RedisHuey("compat", host="127.0.0.1", port=int(sys.argv[1]))


@huey.task()
def add(a, b):
    return a + b


result = add(2, 3)
later = add.schedule((1, 2), delay=0.5)
assert huey.pending_count() == 2, huey.pending_count()
for _ in range(2):
    task = huey.dequeue()
    huey.execute(task)  # the first runs; the second is not due yet and goes to the schedule
assert result.get() == 5
assert huey.scheduled_count() == 1, huey.scheduled_count()
time.sleep(0.6)  # the schedule's due time has to pass: that is what is being exercised
due = huey.read_schedule()
assert len(due) == 1, due
huey.execute(due[0])
assert later.get() == 3
print("OK huey: immediate and scheduled tasks ran, results read back")
