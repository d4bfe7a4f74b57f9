# kombu (Celery's messaging layer) on its Redis transport: a queue's messages put and got back in
# order (lists, BRPOP) and acknowledged; one taken without an acknowledgement restored to its
# queue when its channel closes (the unacked hash and sorted set).
import sys

from kombu import Connection

url = f"redis://127.0.0.1:{sys.argv[1]}/0"
with Connection(url) as connection:
    simple = connection.SimpleQueue("compat")
    for i in range(3):
        simple.put({"n": i})
    got = []
    for _ in range(3):
        message = simple.get(block=True, timeout=5)
        got.append(message.payload["n"])
        message.ack()
    assert got == [0, 1, 2], got
    simple.close()

    # A message taken and not acknowledged goes back to the queue when its channel closes
    # (kombu's unacked hash and index restore it).
    simple = connection.SimpleQueue("compat-restore")
    simple.put({"n": 42})
    taken = simple.get(block=True, timeout=5)
    assert taken.payload == {"n": 42}
    simple.close()
with Connection(url) as connection:
    simple = connection.SimpleQueue("compat-restore")
    again = simple.get(block=True, timeout=5)
    assert again.payload == {"n": 42}, again.payload
    again.ack()
    simple.close()
print("OK kombu: queue in order with acks, an unacknowledged message restored")
