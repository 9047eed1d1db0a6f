"""Hostile pace: clients that send too slowly, and one that never reads.

- Before authentication a connection has c2s_timeout seconds in all
  (counted from the connect, not reset by activity): a slowloris client
  trickling a byte a second is dropped then, whatever stage it is at.
- After authentication a client that trickles one stanza slowly is
  allowed: it is active (the idle timeout does not end it), and the stanza
  is bounded by c2s_stanza_size_limit. What it may not do is make the
  server work hard for each byte.
- A client that never reads has its send queue capped
  (c2s_send_queue_limit) and is dropped; the senders and everyone else
  go on at full speed.

Every attack runs inside a hostile.Guard (bystanders chat before, during
and after; descriptors and memory return to the baseline).
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hostile"))

from harness import check, exchange, time_limit  # noqa: E402
from xmpp import NS, esc, timeout_value  # noqa: E402
import hostile  # noqa: E402
from hostile import Guard, MiB, STREAM_HEADER, pace, readable  # noqa: E402

PREAUTH = 3


class Slow:
    """One slowloris connection: what it trickles, and when it was cut."""

    def __init__(self, name, client=None, sock=None, data=b""):
        self.name, self.client, self.sock = name, client, sock
        self.data, self.pos = data, 0
        self.opened = time.monotonic()
        self.closed_at = None

    def tick(self):
        """Send the next byte, then see (without blocking) whether the
        server has closed the connection."""
        if self.closed_at is not None:
            return
        if self.pos < len(self.data):
            b = self.data[self.pos:self.pos + 1]
            self.pos += 1
            try:
                if self.client:
                    self.client.send(b)
                else:
                    self.sock.send(b)
            except OSError:
                pass
        self.poll()

    def poll(self):
        if self.client:
            c = self.client
            while not c.eof and c._fill(time.monotonic() + 0.01):
                pass
            if c.eof:
                self.closed_at = time.monotonic()
            return
        self.sock.settimeout(0.01)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    self.closed_at = time.monotonic()
                    return
        except (socket.timeout, BlockingIOError):
            return
        except OSError:
            self.closed_at = time.monotonic()

    @property
    def lived(self):
        return self.closed_at - self.opened


def _client_hello():
    """The first bytes of a real ClientHello (from Python's ssl module)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


@time_limit(60)
def test_slowloris_before_auth_is_dropped_at_the_timeout(ctx):
    srv = ctx.server(options={"c2s_timeout": PREAUTH})
    with Guard(srv) as g:
        header = STREAM_HEADER.encode()
        slow = []
        # the stream header, a byte a second
        c = srv.client(tls=None, open_stream=False, name="slow-header")
        slow.append(Slow("header", client=c, data=header))
        # a complete header, then <starttls/> a byte a second
        c = srv.client(tls=None, name="slow-starttls")
        slow.append(Slow("starttls", client=c,
                         data=("<starttls xmlns='%s'/>" % NS["tls"]).encode()))
        # TLS done, then <auth/> a byte a second
        c = srv.client(name="slow-auth")
        slow.append(Slow("auth", client=c, data=(
            "<auth xmlns='%s' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
            % NS["sasl"]).encode()))
        # direct TLS: silent, and a ClientHello a byte a second
        for name, data in (("tls-silent", b""), ("tls-hello", _client_hello())):
            s = socket.create_connection(("127.0.0.1", srv.tls_port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ctx.cleanup(s.close)
            slow.append(Slow(name, sock=s, data=data))
        deadline = time.monotonic() + timeout_value(PREAUTH + 6)
        for _ in pace(1.0):
            for s in slow:
                s.tick()
            if all(s.closed_at for s in slow) or time.monotonic() > deadline:
                break
            g.chat()
        for s in slow:
            check(s.closed_at is not None, "%s: still open after %.0f s"
                  % (s.name, time.monotonic() - s.opened))
            check(PREAUTH - 0.5 <= s.lived <= PREAUTH + timeout_value(2.5),
                  "%s: closed after %.2f s, c2s_timeout is %d s"
                  % (s.name, s.lived, PREAUTH))
        # the XMPP streams got the stream error (a TLS handshake that
        # never finished can only be closed)
        for s in slow[:3]:
            s.client.expect_stream_error("connection-timeout", timeout=1)
        check(max(g.latencies) < timeout_value(1.0),
              "bystanders slowed down: %s" % g.latencies)


@time_limit(60)
def test_authenticated_trickle_is_allowed_until_the_size_limit(ctx):
    limit = 8192
    srv = ctx.server(options={"c2s_idle_timeout": 2,
                              "c2s_stanza_size_limit": limit})
    with Guard(srv) as g:
        c = srv.login("trickle")
        c.transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # a stanza trickled for longer than the idle timeout: the client is
        # active, so it stays, and the stanza arrives whole
        c.send("<message to='%s' type='chat'><body>" % esc(g.b.jid))
        body = "".join(chr(ord("a") + i % 26) for i in range(100))
        last_chat = time.monotonic()
        for ch, _ in zip(body, pace(0.04)):
            c.send(ch)
            if time.monotonic() - last_chat > 0.5:  # bystanders stay active
                g.chat()
                last_chat = time.monotonic()
        c.send("</body></message>")
        g.b.expect("message", attrs={"from": c.jid}, child="body", text=body)
        # the next one goes on past the size limit, a byte at a time
        head = "<message to='%s' type='chat'><body>" % esc(g.b.jid)
        c.send(head + "y" * (limit - len(head) - 64))
        sent = limit - 64
        for _ in pace(0.01):
            if readable(c) or sent > limit + 256:
                break
            c.send("z")
            sent += 1
        c.expect_stream_error("policy-violation")
        check(limit <= sent <= limit + 64,
              "the stream ended after %d bytes of a stanza, limit %d"
              % (sent, limit))
        used = g.cpu_used()
        check(used < timeout_value(1.0), "the trickle cost the server %.2f s of CPU" % used)


def _trickle(c, seconds):
    """Single bytes as fast as the socket takes them, each its own TLS
    record and TCP segment, for `seconds`; returns how many were sent, or
    -1 when the server closed the stream first."""
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if readable(c):
            return -1
        c.transport.send(b"y", 1)
        n += 1
        time.sleep(0.0002)
    return n


@time_limit(90)
def test_trickle_into_a_huge_start_tag_costs_little(ctx):
    # A start tag (or any token) arriving in pieces is re-scanned by expat
    # from its first byte every time more arrives (Starling turns expat's
    # reparse deferral off, so that a stanza's last bytes are never held
    # back). A client that sends a 200 KB attribute value and then single
    # bytes as fast as it can makes the server rescan 200 KB per byte.
    # The cost per trickled byte must stay close to that of a byte of text
    # (which expat reports as it comes), or the stream must be ended.
    srv = ctx.server(options={"limits": {"c2s": {"rate": "10mb/s"}}})
    watch = hostile.ProcWatch(srv.proc.pid)
    with Guard(srv) as g:
        costs = {}
        for shape, head in (("text", "<message to='%s' type='chat'><body>"),
                            ("attribute", "<message to='%s' type='chat' a='")):
            c = srv.login("trickle-" + shape)
            c.transport.sock.setsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_NODELAY, 1)
            c.send(head % esc(g.b.jid) + "x" * 200000)
            g.chat()            # the 200 KB have been read and parsed
            before = watch.cpu()
            n = _trickle(c, timeout_value(4))
            used = watch.cpu() - before
            if n < 0:
                c.expect_stream_error("policy-violation")
                check(used < timeout_value(1.0), "%s trickle: %.2f s of CPU before the "
                      "stream was ended" % (shape, used))
                costs[shape] = None
                continue
            costs[shape] = (used, n)
            c.close()
        text_used, text_n = costs["text"]
        if costs["attribute"] is not None:
            used, n = costs["attribute"]
            per_text = text_used / max(text_n, 1)
            per_attr = used / max(n, 1)
            check(per_attr <= 3 * per_text + 5e-6 and used < timeout_value(1.0),
                  "a byte trickled into a 200 KB start tag costs the server "
                  "%.1f us of CPU (%d bytes, %.2f s), a byte of text %.1f us "
                  "(%d bytes, %.2f s)" % (per_attr * 1e6, n, used,
                                          per_text * 1e6, text_n, text_used))


@time_limit(90)
def test_reader_that_never_reads_is_dropped_and_nobody_slows_down(ctx):
    # tests/conversation/test_limits.py has the plain case; here three
    # senders flood one reader that stopped reading while the bystanders
    # are timed, and the server's memory is checked afterwards.
    queue = 256 * 1024
    srv = ctx.server(options={"c2s_send_queue_limit": queue,
                              "limits": {"c2s": {"rate": "100mb/s"}}})
    with Guard(srv) as g:
        stuck = srv.login("stuck")
        stuck.transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                        4096)
        senders = [srv.login("flooder") for _ in range(3)]
        body = "y" * 4000
        for i in range(600):                # 7 MB in all
            s = senders[i % 3]
            s.send("<message to='%s' type='headline'><body>%s</body></message>"
                   % (esc(stuck.jid), body))
            if i % 100 == 0:
                g.chat()
        srv.wait_log(r"send queue over %d bytes" % queue, timeout=30)
        check(stuck.closed_within(20), "the reader was not disconnected")
        g.chat()
        check(max(g.latencies) < timeout_value(1.0),
              "bystanders slowed down during the flood: %s"
              % ["%.3f" % t for t in g.latencies])
        # the senders were not punished
        for s in senders:
            exchange(s, g.b)
            hostile.leave(s)
        g.check_peak(16 * MiB, "flooding a reader that never reads")
