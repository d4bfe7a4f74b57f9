# walrus (Python containers and models over Redis): a model saved to a hash and found again by an
# indexed field (sets and sorted sets), containers for each data type, and its rate limiter.
import sys

from walrus import Database, IntegerField, Model, TextField

db = Database(host="127.0.0.1", port=int(sys.argv[1]))
db.flushdb()


class User(Model):
    __database__ = db
    name = TextField(primary_key=True)
    age = IntegerField(index=True)


for name, age in (("ada", 36), ("grace", 85), ("linus", 54)):
    User.create(name=name, age=age)
assert User.load("grace").age == 85
assert sorted(u.name for u in User.query(User.age > 40)) == ["grace", "linus"]

h = db.Hash("compat-hash")
h.update(a="1", b="2")
assert dict(h) == {b"a": b"1", b"b": b"2"}
s = db.Set("compat-set")
s.add("x", "y")
assert s.members() == {b"x", b"y"}
lst = db.List("compat-list")
lst.extend(["1", "2", "3"])
assert lst[1] == b"2" and lst.popleft() == b"1" and len(lst) == 2
z = db.ZSet("compat-zset")
z.add({"low": 1, "high": 10})
assert z.range(0, -1) == [b"low", b"high"]
limiter = db.rate_limit("compat", limit=3, per=60)
assert [limiter.limit("k") for _ in range(4)] == [False, False, False, True]
print("OK walrus: a model by index, hash/set/list/zset containers, its rate limiter")
