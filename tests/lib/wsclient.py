"""An XMPP client over WebSocket (RFC 7395) for the tests: the raw client
of xmpp.py (expect, auth_scram, bind, ...) with WebSocket framing from
python3-websockets' sans-I/O client (websockets.client.ClientConnection)
over the same transports (plain TCP or TLS).

Each send() is one text message; each text message from the server is
parsed as one element. The server's <open/> counts as its stream header
and its <close/> as the end of the stream, so expect_stream_error() and
expect_closed() read as on a TCP stream. close_code is the code of the
server's WebSocket close frame once it came.

    c = WSClient(http_port, server.domain).connect()
    c.open_stream(); c.auth_scram(user, password); c.bind()
"""

import socket
import struct

from websockets.client import ClientConnection
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

import server as server_mod
import transport as tr
import xmpp
from xmpp import ExpectError, NS, STREAM_END

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
ROOT = ("<stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>")


class HandshakeRefused(ExpectError):
    def __init__(self, status, body):
        super().__init__("WebSocket handshake refused: %d %r" % (status, body))
        self.status, self.body = status, body


class WSClient(xmpp.Client):
    def __init__(self, port, domain="localhost", name=None, path="/xmpp-websocket",
                 timeout=xmpp.DEFAULT_TIMEOUT):
        super().__init__("127.0.0.1", port, domain, name=name, timeout=timeout)
        self.path = path
        for hook in server_mod.CLIENT_CREATED:     # closed with the test
            hook(self)
        self.ws = None
        self.close_code = None
        self.response = None

    def connect(self, tls=False, origin=None, subprotocols=("xmpp",),
                headers=None, backend="ssl", version=None, timeout=None,
                source=None):
        """TCP (and TLS), then the WebSocket handshake; raises
        HandshakeRefused when the answer is not 101."""
        t = xmpp.timeout_value(timeout or self.timeout)
        sock = socket.create_connection((self.host, self.port), timeout=t)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = tr.PlainTransport(sock)
        if tls:
            self._wrap_tls(backend, version, alpn=["http/1.1"])
        scheme = "wss" if tls else "ws"
        self.ws = ClientConnection(
            parse_uri("%s://%s:%d%s" % (scheme, self.host, self.port, self.path)),
            origin=origin, subprotocols=list(subprotocols) or None, max_size=None)
        req = self.ws.connect()
        for k, v in (headers or {}).items():
            req.headers[k] = v
        self.ws.send_request(req)
        self._flush()
        self._log("--", "WebSocket handshake sent to %s" % self.path)
        self.reset_parser()
        deadline = self._deadline(timeout)
        while self.response is None:
            if not self._fill(deadline):
                raise ExpectError("%s: no handshake answer" % self.name)
            if self.eof and self.response is None:
                raise ExpectError("%s: closed during the handshake" % self.name)
        if self.response.status_code != 101:
            raise HandshakeRefused(self.response.status_code, self.response.body)
        return self

    def _flush(self):
        for data in self.ws.data_to_send():
            if data:
                try:
                    self.transport.send(data, xmpp.timeout_value(self.timeout))
                except tr.TransportClosed:
                    pass

    def reset_parser(self):
        super().reset_parser()
        self.parser.feed(ROOT.encode())
        self.queue.clear()          # the synthetic root's "header"

    def send(self, data):
        """One text message."""
        if isinstance(data, str):
            data = data.encode()
        self._log("C:", data.decode(errors="replace"))
        self.ws.send_text(data)
        self._flush()

    def send_frame(self, opcode, data, fin=True):
        from websockets.frames import Frame
        self._log("C:", "[frame %s, %d bytes]" % (opcode.name, len(data)))
        self.ws.send_frame(Frame(opcode, data, fin))
        self._flush()

    def _message(self, data):
        """One server message: <open/> is the header, <close/> the end."""
        text = data.decode()
        if text.lstrip().startswith("<open"):
            before = len(self.queue)
            self.parser.feed(data)
            if len(self.queue) > before:
                el = self.queue.pop()
                self.queue.append(xmpp.StreamHeader(el.tag, dict(el.attrib),
                                                    {"": NS["client"]}))
            return
        if text.lstrip().startswith("<close"):
            self.queue.append(STREAM_END)
            return
        self.parser.feed(data)

    def _fill(self, deadline):
        data = self._recv(deadline)
        if data is None:
            return False
        if not data:
            self.ws.receive_eof()
            return True
        self.ws.receive_data(data)
        for ev in self.ws.events_received():
            if isinstance(ev, Response):
                self.response = ev
                self._log("S:", "HTTP %d" % ev.status_code)
            elif ev.opcode == Opcode.TEXT:
                self._message(ev.data)
            elif ev.opcode == Opcode.CLOSE:
                self.close_code = (struct.unpack("!H", ev.data[:2])[0]
                                   if len(ev.data) >= 2 else 1005)
                self._log("S:", "[close %s]" % self.close_code)
            elif ev.opcode == Opcode.PONG:
                self._log("S:", "[pong %r]" % ev.data)
        self._flush()              # pongs, the close answer
        return True

    def expect_stream_header(self, timeout=None):
        item = self.next_item(timeout, "<open/>")
        if not getattr(item, "is_header", False) or \
                item.tag != "{%s}open" % NS_FRAMING:
            raise ExpectError("%s: expected <open/>, got %s"
                              % (self.name, xmpp.describe(item)))
        return item

    def stream_header(self, to=None, version="1.0", lang="en", extra=""):
        return "<open %s/>" % self.header_attrs(["xmlns='%s'" % NS_FRAMING],
                                                to, version, lang, extra)

    def expect_stream_error(self, condition, timeout=None):
        deadline = self._deadline(timeout)
        what = "<stream:error><%s/>" % condition
        while True:
            item = self._next(deadline, what)
            if item is STREAM_END:
                raise ExpectError("%s: stream ended without %s" % (self.name, what))
            if getattr(item, "is_header", False):
                continue
            if item.tag == "{%s}error" % NS["stream"]:
                break
        got = xmpp.stream_error_condition(item)
        if got != condition:
            raise ExpectError("%s: expected %s, got %s"
                              % (self.name, what, xmpp.to_xml(item)))
        self.expect_closed(timeout)
        return item

    def end_stream(self):
        self.send("<close xmlns='%s'/>" % NS_FRAMING)


def ws_login(port, account, domain="localhost", resource=None, tls=False,
             presence=None, name=None, **kw):
    """A WebSocket client logged in with SCRAM and bound."""
    c = WSClient(port, domain, name=name or "ws:" + account.user).connect(tls=tls, **kw)
    c.open_stream()
    c.auth_scram(account.user, account.password)
    c.account = account
    c.bind(resource)
    c.ignore = ("presence",)
    if presence:
        c.presence()
        c.roundtrip()
    return c


def wait_for_port(port, timeout=10):
    """The HTTP ports open when mod_http loads, after the c2s ports the
    server's start() waits for: wait for this one too."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
