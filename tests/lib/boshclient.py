"""An XMPP client over BOSH (XEP-0124, XEP-0206) for the tests: the raw
client of xmpp.py (expect, auth_scram, bind, roundtrip, ...) whose
elements travel in <body/> wrappers of HTTP POSTs on raw sockets.

It behaves as a browser client does: each send() is one request with the
next rid; while it waits for something (expect) it keeps one request
open for the server to answer, as long-polling BOSH clients do. Every
response's <body/> is kept (bodies); its children are queued as elements.
A type='terminate' body ends the stream: terminated holds its condition
("" when none), and the client reads as closed.

    c = BoshClient(http_port, "localhost")
    c.open_stream(); c.auth_scram(user, password); c.bind()

request() posts one body by hand on a fresh connection and returns the
HTTP answer, for the tests of rid order, retransmission and errors.
"""

import random
import select
import socket
import time
import xml.etree.ElementTree as ET

import server as server_mod
import xmpp
from xmpp import ExpectError, STREAM_END, esc

NS_HTTPBIND = "http://jabber.org/protocol/httpbind"
NS_XBOSH = "urn:xmpp:xbosh"


class HttpAnswer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def xml(self):
        return ET.fromstring(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class Pending:
    """One request on one socket, waiting for its answer."""

    def __init__(self, sock, rid):
        self.sock, self.rid, self.buf = sock, rid, b""

    def answer(self):
        """The whole answer once it is in, else None."""
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if len(rest) < n:
            return None
        return HttpAnswer(status, headers, rest[:n])


def read_answer(sock, timeout):
    p = Pending(sock, None)
    deadline = time.monotonic() + timeout
    while True:
        a = p.answer()
        if a is not None:
            return a
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        if not chunk:
            raise ExpectError("HTTP connection closed before the answer")
        p.buf += chunk


def http_post(port, body, path="/http-bind", headers=None, method="POST",
              sock=None, timeout=10):
    """One request on sock (or a new connection); its answer."""
    if isinstance(body, str):
        body = body.encode()
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
    if method == "POST":
        head += "Content-Type: text/xml; charset=utf-8\r\n"
    head += "Content-Length: %d\r\n" % len(body)
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    s.sendall(head.encode() + b"\r\n" + body)
    a = read_answer(s, timeout)
    if sock is None:
        s.close()
    return a


class BoshClient(xmpp.Client):
    def __init__(self, port, domain="localhost", name=None, path="/http-bind",
                 timeout=xmpp.DEFAULT_TIMEOUT, wait=10, hold=1):
        super().__init__("127.0.0.1", port, domain, name=name, timeout=timeout)
        self.path, self.wait, self.hold = path, wait, hold
        self.sid = None
        self.rid = random.randint(1 << 20, 1 << 40)
        self.requests = hold + 1
        self.pending = []           # requests waiting for their answers
        self.spare = []             # keep-alive sockets free for the next
        self.outbox = []            # bodies' contents not sent yet
        self.bodies = []            # every <body/> answered, in order
        self.created = None         # the session creation response
        self.terminated = None      # the condition of a terminate body
        self.poll = True            # keep a request open while waiting
        self.headers = {}           # sent with every request
        self.reset_parser()
        for hook in server_mod.CLIENT_CREATED:     # closed with the test
            hook(self)

    # -- HTTP

    def _socket(self):
        if self.spare:
            return self.spare.pop()
        s = socket.create_connection((self.host, self.port),
                                     timeout=xmpp.timeout_value(self.timeout))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def wrap(self, inner="", rid=None, attrs=""):
        rid = self.next_rid() if rid is None else rid
        sid = " sid='%s'" % self.sid if self.sid else ""
        return ("<body rid='%d'%s xmlns='%s' xmlns:xmpp='%s' %s>%s</body>"
                % (rid, sid, NS_HTTPBIND, NS_XBOSH, attrs, inner))

    def next_rid(self):
        self.rid += 1
        return self.rid

    def post(self, body, rid):
        """Posts body on a spare or new connection; it is now pending."""
        if isinstance(body, str):
            body = body.encode()
        s = self._socket()
        head = ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; "
                "charset=utf-8\r\nContent-Length: %d\r\n" % (self.path, len(body)))
        for k, v in self.headers.items():
            head += "%s: %s\r\n" % (k, v)
        self._log("C:", body.decode(errors="replace"))
        s.sendall(head.encode() + b"\r\n" + body)
        p = Pending(s, rid)
        self.pending.append(p)
        return p

    def request(self, inner="", rid=None, attrs="", timeout=None):
        """One body on a new connection, answered before it returns (the
        rid is the next one unless given)."""
        rid = self.next_rid() if rid is None else rid
        body = self.wrap(inner, rid, attrs)
        self._log("C:", body)
        a = http_post(self.port, body, self.path, self.headers,
                      timeout=xmpp.timeout_value(timeout or self.timeout))
        if a is not None:
            self._log("S:", "HTTP %d %s" % (a.status, a.body.decode(errors="replace")))
        return a

    # -- the stream over BOSH

    def reset_parser(self):
        if self.queue:
            raise ExpectError("unread elements at stream restart: %s"
                              % [xmpp.describe(e) for e in self.queue])
        self.stream_ended = False

    def send(self, data):
        """Elements for the server: one request when one may go, else
        with the next one."""
        if isinstance(data, bytes):
            data = data.decode()
        if data == STREAM_END:
            self.terminate()
            return
        self.outbox.append(data)
        self._pump()

    def _pump(self):
        while self.outbox and self.sid and len(self.pending) < self.requests \
                and self.terminated is None:
            inner = "".join(self.outbox)
            self.outbox.clear()
            rid = self.next_rid()
            self.post(self.wrap(inner, rid), rid)

    def _handle(self, p, a):
        self._log("S:", "HTTP %d %s" % (a.status, a.body.decode(errors="replace")))
        if a.header("connection") == "close":
            p.sock.close()
        else:
            self.spare.append(p.sock)
        if a.status != 200:
            self.terminated = "http-%d" % a.status
            self.queue.append(STREAM_END)
            self.eof = True
            return
        body = ET.fromstring(a.body)
        self.bodies.append(body)
        if self.created is None:
            self.created = body
            self.sid = body.get("sid")
            self.requests = int(body.get("requests", self.requests))
        for child in body:
            self.queue.append(child)
        if body.get("type") == "terminate":
            self.terminated = body.get("condition", "")
            self.queue.append(STREAM_END)
            self.eof = True

    def _fill(self, deadline):
        """Reads answers until one came (True) or the deadline (False)."""
        if self.eof:
            return False
        self._pump()
        if not self.pending and self.poll and self.sid and self.terminated is None:
            rid = self.next_rid()
            self.post(self.wrap("", rid), rid)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.pending:
                return False
            ready, _, _ = select.select([p.sock for p in self.pending], [], [], left)
            got = False
            for p in list(self.pending):
                if p.sock not in ready:
                    continue
                chunk = p.sock.recv(65536)
                if not chunk:
                    self.pending.remove(p)
                    p.sock.close()
                    self.eof = True
                    self._log("--", "HTTP connection closed by the server")
                    return True
                p.buf += chunk
                a = p.answer()
                if a is not None:
                    self.pending.remove(p)
                    self._handle(p, a)
                    got = True
            if got:
                self._pump()
                return True

    def open_stream(self, to=None, attrs="", **kw):
        """The session creation request; its features."""
        to = self.domain if to is None else to
        rid = self.next_rid()
        self.post("<body rid='%d' to='%s' wait='%d' hold='%d' ver='1.11' "
                  "xml:lang='en' xmpp:version='1.0' xmlns='%s' xmlns:xmpp='%s'"
                  " %s/>" % (rid, esc(to), self.wait, self.hold, NS_HTTPBIND,
                             NS_XBOSH, attrs), rid)
        deadline = self._deadline(None)
        while self.created is None and not self.eof:
            if not self._fill(deadline) and self.created is None and not self.eof:
                raise ExpectError("%s: no session creation response" % self.name)
        if self.terminated is not None:
            return None
        return self.expect_features()

    def restart(self):
        """XEP-0206 5: a restart request; the new stream's features."""
        self.reset_parser()
        rid = self.next_rid()
        self.post(self.wrap("", rid, "xmpp:restart='true' to='%s' xml:lang='en'"
                            % esc(self.domain)), rid)
        return self.expect_features()

    def terminate(self, inner="<presence type='unavailable'/>"):
        rid = self.next_rid()
        self.post(self.wrap(inner, rid, "type='terminate'"), rid)

    def expect_terminated(self, condition=None, timeout=None):
        """Reads until a terminate body came; its condition must match."""
        deadline = self._deadline(timeout)
        while self.terminated is None:
            if not self._fill(deadline) and self.terminated is None:
                if self.eof:
                    break
                raise ExpectError("%s: no terminate body" % self.name)
        if condition is not None and self.terminated != condition:
            raise ExpectError("%s: terminated with %r, not %r"
                              % (self.name, self.terminated, condition))
        return self.terminated

    def continued(self, name=None):
        """A new client on the same session (a page reload): the same sid,
        the next rid, new connections."""
        c = BoshClient(self.port, self.domain, name=name or self.name + "'",
                       path=self.path, timeout=self.timeout, wait=self.wait,
                       hold=self.hold)
        c.sid, c.rid, c.created = self.sid, self.rid, self.created
        c.requests, c.jid, c.username = self.requests, self.jid, self.username
        c.ignore = self.ignore
        return c

    def close(self):
        """Drops every connection (the page goes away)."""
        for p in self.pending:
            p.sock.close()
        for s in self.spare:
            s.close()
        self.pending, self.spare = [], []


def bosh_login(port, account, domain="localhost", resource=None, name=None, **kw):
    """A BOSH client logged in with SCRAM and bound."""
    c = BoshClient(port, domain, name=name or "bosh:" + account.user, **kw)
    c.open_stream()
    c.auth_scram(account.user, account.password)
    c.account = account
    c.bind(resource)
    c.ignore = ("presence",)
    return c
