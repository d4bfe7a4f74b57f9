# requests-cache (HTTP cache) with its Redis backend: a response cached on the first request is
# served from the cache on the second, and survives a new session on the same backend. The HTTP
# server is a local one on 127.0.0.1.
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests_cache
from requests_cache.backends.redis import RedisCache

hits = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        hits.append(self.path)
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=http.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{http.server_port}/page"
backend = RedisCache(namespace="compat", host="127.0.0.1", port=int(sys.argv[1]))
backend.clear()
session = requests_cache.CachedSession(backend=backend)
first = session.get(url)
second = session.get(url)
assert first.text == second.text == "hello /page"
assert not first.from_cache and second.from_cache
again = requests_cache.CachedSession(backend=RedisCache(namespace="compat", host="127.0.0.1", port=int(sys.argv[1])))
assert again.get(url).from_cache
assert hits == ["/page"], hits
http.shutdown()
print("OK requests-cache: the second request and a new session served from the cache")
