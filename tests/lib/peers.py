"""Peers for server-to-server tests: federated Starlings, a raw server
stream a test drives by hand, and Debian's Prosody as a private instance.

    a, b = starling_pair(scope, "a.example", "b.example")  # pinned to each other
    raw = RawServer(a, "evil.example")     # a peer stream to a's s2s port
    raw.open_stream(to="a.example")

Everything listens on 127.0.0.1 with ports of its own; domains are pinned
with s2s_static_hosts, so no DNS is involved."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import server as server_mod
import xmpp
from xmpp import NS, esc

S2S_MODULES = ["roster", "presence", "message", "iq", "disco", "ping"]
NS_DB = "jabber:server:dialback"


def pin(domain, port, host="127.0.0.1"):
    return {domain: "%s:%d" % (host, port)}


def starling_pair(scope, domain_a, domain_b, options=None, modules=None):
    """Two Starlings, each serving one domain and pinned to the other's."""
    opts = dict(options or {})
    a = server_mod.Server(scope.build_dir, hosts=(domain_a,),
                          modules=modules or S2S_MODULES, options=dict(opts))
    b = server_mod.Server(scope.build_dir, hosts=(domain_b,),
                          modules=modules or S2S_MODULES, options=dict(opts))
    a.options.setdefault("s2s_static_hosts", {}).update(pin(domain_b, b.s2s_port))
    b.options.setdefault("s2s_static_hosts", {}).update(pin(domain_a, a.s2s_port))
    for srv in (a, b):
        scope.servers.append(srv)
        srv.start()
    return a, b


class RawServer(xmpp.Client):
    """A server-to-server stream to srv's s2s port that a test writes by
    hand: the stream header and dialback elements of a (hostile) peer."""

    def __init__(self, srv, domain, name=None):
        super().__init__("127.0.0.1", srv.s2s_port, srv.domain,
                         name=name or "s2s-peer-%s" % domain)
        self.peer_domain = domain
        for hook in server_mod.CLIENT_CREATED:
            hook(self)
        self.connect()

    def stream_header(self, to=None, version="1.0", lang="en", extra=""):
        to = self.domain if to is None else to
        attrs = ["xmlns='jabber:server'", "xmlns:db='%s'" % NS_DB,
                 "xmlns:stream='http://etherx.jabber.org/streams'",
                 "from='%s'" % esc(self.peer_domain)]
        if to:
            attrs.append("to='%s'" % esc(to))
        if version:
            attrs.append("version='%s'" % version)
        return "<?xml version='1.0'?><stream:stream %s%s>" % (
            " ".join(attrs), " " + extra if extra else "")

    def open_stream(self, to=None, **kw):
        self.send(self.stream_header(to, **kw))
        header = self.expect_stream_header()
        if header.namespaces.get("") != "jabber:server":
            raise xmpp.ExpectError("%s: s2s stream namespace is %r"
                                   % (self.name, header.namespaces.get("")))
        self.stream_id = header.get("id")
        return self.expect_features()

    def starttls(self, backend="ssl", version=None):
        self.send("<starttls xmlns='%s'/>" % NS["tls"])
        self.expect("tls:proceed")
        self.reset_parser()
        self._wrap_tls(backend, version)
        return self.open_stream()


class SilentListener:
    """A TCP port that accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.done = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeAuthoritative:
    """The authoritative server of `domain` for dialback, as simple as it
    gets: a plain stream (no TLS: the server under test must have
    s2s_require_encryption = false) that answers every <db:verify/> with
    `answer` ("valid" or "invalid")."""

    def __init__(self, domain, answer="valid"):
        import re
        self.re = re
        self.domain, self.answer = domain, answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.verified = []
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _serve(self, c):
        buf = b""
        c.settimeout(0.2)
        opened = False
        while not self.done:
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            if not opened and b"<stream:stream" in buf and b">" in buf.split(b"<stream:stream", 1)[1]:
                opened = True
                c.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                           "xmlns:db='%s' xmlns:stream='http://etherx.jabber.org/"
                           "streams' id='fake-%d' from='%s' version='1.0'>"
                           "<stream:features><dialback xmlns='urn:xmpp:features:"
                           "dialback'/></stream:features>"
                           % (NS_DB, self.port, self.domain)).encode())
            for m in self.re.finditer(rb"<db:verify([^>]*)>([^<]*)</db:verify>", buf):
                attrs = dict(self.re.findall(rb"(\w+)=['\"]([^'\"]*)['\"]", m.group(1)))
                self.verified.append(attrs.get(b"id", b"").decode())
                c.sendall(("<db:verify from='%s' to='%s' id='%s' type='%s'/>"
                           % (self.domain, attrs.get(b"from", b"").decode(),
                              attrs.get(b"id", b"").decode(), self.answer)).encode())
            if b"</db:verify>" in buf:
                buf = buf.rsplit(b"</db:verify>", 1)[1]

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()
