# channels_redis (Django Channels' channel layer): messages to a channel and to a group, received
# in order by the consumers' channels (sorted sets, BZPOPMIN, Lua scripts).
import asyncio
import sys

from channels_redis.core import RedisChannelLayer


async def main():
    layer = RedisChannelLayer(hosts=[("127.0.0.1", int(sys.argv[1]))])
    await layer.flush()
    first = await layer.new_channel()
    second = await layer.new_channel()
    await layer.send(first, {"type": "chat.message", "n": 1})
    await layer.send(first, {"type": "chat.message", "n": 2})
    got = [await asyncio.wait_for(layer.receive(first), 5) for _ in range(2)]
    assert [m["n"] for m in got] == [1, 2], got
    await layer.group_add("room", first)
    await layer.group_add("room", second)
    await layer.group_send("room", {"type": "chat.message", "text": "hi"})
    for channel in (first, second):
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message["text"] == "hi", message
    await layer.group_discard("room", second)
    await layer.flush()
    await layer.close_pools()


asyncio.run(main())
print("OK channels_redis: channel messages in order, a group send to two consumers")
