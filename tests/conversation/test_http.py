"""The HTTP server (core/http) as module authors and operators see it: a
Lua module's routes (module:provides("http")), keep-alive and pipelining,
chunked request bodies, 404/405, routes gone with their module; the
limits: oversized heads (431), bodies (413), slowloris (408 and closed
after http_header_timeout), each with chatting bystanders unaffected;
/metrics in the OpenMetrics format, parsed by prometheus_client, its
counters moving, a handler that holds the loop seen as a long loop
iteration, refused to an address not allowed."""

import socket
import time

from harness import bystanders, check, exchange, fixture
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from server import free_port
from wsclient import wait_for_port

ECHO = r'''
module:depends("http")
local seen = 0
module:provides("http", {
    route = {
        ["GET /hello"] = function(event)
            event.response.headers.content_type = "text/plain"
            event.response.headers.x_greeting = "hi"
            return "hello " .. (event.request.url.query or "")
        end,
        ["POST /echo"] = function(event)
            return { status_code = 201, headers = { content_type = "application/octet-stream" },
                     body = event.request.body }
        end,
        ["GET /files/*"] = function(event, rest)
            return "file " .. rest .. " on " .. event.request.host
        end,
        ["GET /later"] = function(event)
            module:add_timer(0.1, function()
                seen = seen + 1
                event.response:send("later " .. seen)
            end)
            return true
        end,
        ["GET /busy"] = function()
            local until_ = os.clock() + 0.3
            while os.clock() < until_ do end
            return "done"
        end,
        ["GET /teapot"] = function() return 418 end,
        ["GET /broken"] = function() error("oops") end,
    },
})
'''


@fixture
def server(scope):
    port = free_port()
    srv = scope.server(modules=["roster", "presence", "message", "iq", "echo",
                                "http_openmetrics"],
                       plugins={"echo": ECHO},
                       options={"http_ports": [port], "https_ports": [],
                                "http_header_timeout": 2,
                                "http_max_header_size": 4096,
                                "http_max_content_size": 65536})
    srv.http_port = port
    wait_for_port(port)
    return srv


class Http:
    """One HTTP connection, read as the bytes come."""

    def __init__(self, port, source="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                          source_address=(source, 0))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _more(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("closed")
        self.buf += chunk

    def response(self):
        """(status, headers dict, body) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def get(self, path, host="localhost", extra=b""):
        self.send(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path.encode(), host.encode(), extra))
        return self.response()


def test_lua_routes_keep_alive_and_pipelining(server):
    h = Http(server.http_port)
    status, headers, body = h.get("/echo/hello?x=1")
    check(status == 200 and body == b"hello x=1", "%d %r" % (status, body))
    check(headers.get("x-greeting") == "hi" and headers.get("content-type") == "text/plain",
          repr(headers))
    status, _, body = h.get("/echo/files/a/b.png")     # same connection
    check(body == b"file a/b.png on localhost", repr(body))
    h.send(b"GET /echo/hello HTTP/1.1\r\nHost: localhost\r\n\r\n"
           b"GET /echo/later HTTP/1.1\r\nHost: localhost\r\n\r\n"
           b"GET /echo/hello?z HTTP/1.1\r\nHost: localhost\r\n\r\n")
    bodies = [h.response()[2] for _ in range(3)]
    check(bodies == [b"hello ", b"later 1", b"hello z"], repr(bodies))


def test_chunked_body(server):
    h = Http(server.http_port)
    h.send(b"POST /echo/echo HTTP/1.1\r\nHost: localhost\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
    status, headers, body = h.response()
    check(status == 201 and body == b"hello, world", "%d %r" % (status, body))
    check(headers.get("content-type") == "application/octet-stream", repr(headers))


def test_status_answers(server):
    h = Http(server.http_port)
    check(h.get("/nothing")[0] == 404, "unknown path")
    h.send(b"DELETE /echo/hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    status, headers, _ = h.response()
    check(status == 405 and headers.get("allow") == "GET", "%d %r" % (status, headers))
    check(h.get("/echo/teapot")[0] == 418, "a number is the status")
    check(h.get("/echo/broken")[0] == 500, "an error in the handler is 500")
    check(h.get("/echo/hello")[0] == 200, "the connection goes on")


def test_routes_go_with_their_module(server):
    check(Http(server.http_port).get("/echo/hello")[0] == 200, "route missing")
    server.ctl("module", "unload", "echo", "localhost")
    check(Http(server.http_port).get("/echo/hello")[0] == 404, "route left behind")
    server.ctl("module", "load", "echo", "localhost")
    check(Http(server.http_port).get("/echo/hello")[0] == 200, "route not back")


def test_oversized_head_is_431(server):
    with bystanders(server):
        h = Http(server.http_port)
        h.send(b"GET /echo/hello HTTP/1.1\r\nHost: localhost\r\nX-Big: "
               + b"a" * 8000 + b"\r\n\r\n")
        status, headers, _ = h.response()
        check(status == 431, "status %d" % status)
        check(headers.get("connection") == "close" and h.closed(), "not closed")


def test_oversized_body_is_413(server):
    with bystanders(server):
        h = Http(server.http_port)
        h.send(b"POST /echo/echo HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Length: 1000000\r\n\r\n")
        check(h.response()[0] == 413, "Content-Length over the limit")
        h = Http(server.http_port)
        h.send(b"POST /echo/echo HTTP/1.1\r\nHost: localhost\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"8000\r\n" + b"x" * 0x8000 + b"\r\n"
               + b"8000\r\n" + b"x" * 0x8000 + b"\r\n"
               + b"8000\r\n" + b"x" * 0x8000 + b"\r\n")
        check(h.response()[0] == 413, "chunks over the limit")


def test_slowloris_is_cut_off(server):
    with bystanders(server) as (b, c):
        slow = [Http(server.http_port) for _ in range(5)]
        for h in slow:
            h.send(b"GET /echo/hello HTTP/1.1\r\nHost: loc")
        for _ in range(3):                  # a byte a second...
            exchange(b, c)
            for h in slow:
                h.send(b"a")
            time.sleep(0.5)
        for h in slow:                      # ...closed at the header timeout
            status, headers, _ = h.response()
            check(status == 408, "status %d" % status)
            check(h.closed(), "slow connection not closed")
        idle = Http(server.http_port)       # nothing at all: closed too
        check(idle.closed(6), "a silent connection stayed open")


def test_not_a_request(server):
    with bystanders(server):
        h = Http(server.http_port)
        h.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        check(h.response()[0] in (400, 501), "garbage answered")
        check(h.closed(), "not closed after garbage")


def metrics(server):
    status, headers, body = Http(server.http_port).get("/metrics")
    check(status == 200, "status %d" % status)
    check(headers["content-type"].startswith("application/openmetrics-text"),
          headers["content-type"])
    samples = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics(server):
    before = metrics(server)
    a = server.login("m1")
    b = server.login("m2")
    for _ in range(3):
        exchange(a, b)
    after = metrics(server)
    key = ("starling_stanzas_total", (("direction", "in"), ("kind", "message")))
    check(after[key] - before[key] == 3, "messages in: %s -> %s" % (before[key], after[key]))
    out = ("starling_stanzas_total", (("direction", "out"), ("kind", "message")))
    check(after[out] - before[out] == 3, "messages out")
    check(after[("starling_sessions", (("state", "bound"),))] >= 2, "bound sessions")
    check(after[("starling_connections", (("kind", "c2s"),))] >= 2, "c2s connections")
    check(after[("starling_http_requests_total", ())] >
          before[("starling_http_requests_total", ())], "requests not counted")
    check(after[("starling_storage_ok", ())] == 1, "storage not ok")


def test_metrics_loop_iterations(server):
    """A handler that holds the loop for 0.3 s of CPU is one iteration of
    at least that long: in the histogram of iteration lengths and in the
    longest-iteration gauges. The histogram adds up."""
    it = "starling_loop_iteration_seconds"

    def longer_than(samples, le):
        return samples[(it + "_count", ())] - samples[(it + "_bucket", (("le", le),))]

    before = metrics(server)
    status, _, body = Http(server.http_port).get("/echo/busy")
    check(status == 200 and body == b"done", "busy route: %d %r" % (status, body))
    after = metrics(server)
    check(longer_than(after, "0.25") - longer_than(before, "0.25") >= 1,
          "no iteration over 0.25 s counted")
    for window in ("10s", "60s"):
        longest = after[("starling_loop_iteration_longest_seconds", (("window", window),))]
        check(0.3 <= longest < 60, "longest in %s: %s" % (window, longest))
    check(after[(it + "_count", ())] > before[(it + "_count", ())], "iterations not counted")
    check(after[(it + "_sum", ())] - before[(it + "_sum", ())] >= 0.3, "busy time")
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == it + "_bucket")
    check(len(buckets) == 14, "buckets: %d" % len(buckets))
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "not cumulative")
    check(buckets[-1] == (float("inf"), after[(it + "_count", ())]), "+Inf is not the count")


def test_metrics_refused_to_other_addresses(server):
    status, _, _ = Http(server.http_port, source="127.0.0.2").get("/metrics")
    check(status == 403, "status %d for 127.0.0.2" % status)
