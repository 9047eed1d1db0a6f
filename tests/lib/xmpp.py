"""A raw XMPP client for conversation tests.

A test reads like a transcript: connect, send raw XML, expect the next
top-level element by partial match, capture values, expect a stream error or
the end of the stream.

    c = Client("127.0.0.1", port)
    c.connect()
    features = c.open_stream()
    c.starttls()
    c.auth_scram("alice", "secret", "SCRAM-SHA-256")
    jid = c.bind("laptop")
    c.send("<message to='bob@localhost'><body>hi</body></message>")
    c.expect("message", attrs={"type": "error"},
             child="error/stanzas:service-unavailable")

Matching (see mismatch()):
  tag     "message", "{jabber:client}message" or "prefix:name" with a prefix
          from NS ("stream:features", "sasl:success", ...). A bare name
          matches that local name in any namespace.
  attrs   {name: expected}; names may be "xml:lang"; expected is a string
          (equal), a compiled regex (fullmatch), a callable, ANY or ABSENT.
  child   a path ("bind/jid", "error/stanzas:item-not-found") or a list of
          paths that must all exist; steps match like tag.
  text    expected text (of the element, or of the single `child`), or a
          dict {path: expected}; "." is the element itself.
  regex   searched in the element's serialization (see to_xml: xmlns is
          written where the namespace changes, attribute values in '').
  capture {"name": "path" | "path@attr" | "@attr"}: text or attribute
          stored into client.vars[name].
Elements are xml.etree.ElementTree.Element with {namespace}name tags.
"""

import base64
import collections
import itertools
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from xml.parsers import expat
from xml.sax.saxutils import escape as _escape

import scram
import transport as tr

NS = {
    "stream": "http://etherx.jabber.org/streams",
    "streams": "urn:ietf:params:xml:ns:xmpp-streams",
    "client": "jabber:client",
    "tls": "urn:ietf:params:xml:ns:xmpp-tls",
    "sasl": "urn:ietf:params:xml:ns:xmpp-sasl",
    "bind": "urn:ietf:params:xml:ns:xmpp-bind",
    "session": "urn:ietf:params:xml:ns:xmpp-session",
    "stanzas": "urn:ietf:params:xml:ns:xmpp-stanzas",
    "roster": "jabber:iq:roster",
    "disco": "http://jabber.org/protocol/disco#info",
    "ping": "urn:xmpp:ping",
    "sasl-cb": "urn:xmpp:sasl-cb:0",
    "xml": "http://www.w3.org/XML/1998/namespace",
}

TIMEOUT_SCALE = float(os.environ.get("STARLING_TEST_TIMEOUT_SCALE", "1"))
DEFAULT_TIMEOUT = 5.0
# The SASL mechanism login helpers use unless told otherwise.
DEFAULT_MECH = os.environ.get("STARLING_TEST_MECH", "SCRAM-SHA-256")

ANY = object()      # attribute or text must be present (any value)
ABSENT = object()   # attribute must be absent


def timeout_value(seconds):
    """A timeout scaled for slow (sanitizer) builds."""
    return seconds * TIMEOUT_SCALE


def esc(text):
    """Escape text for an XML attribute value or character data."""
    return _escape(str(text), {"'": "&apos;", '"': "&quot;"})


class ExpectError(AssertionError):
    """What arrived was not what the test expected."""


class ConnectionClosed(ExpectError):
    """The server closed the connection while the test waited for data."""


class AuthFailed(ExpectError):
    """SASL authentication ended in <failure/>."""

    def __init__(self, condition, element, stage):
        super().__init__("SASL failure <%s/> after %s" % (condition, stage))
        self.condition = condition
        self.element = element
        self.stage = stage


STREAM_END = "</stream:stream>"
# A client stream header to localhost as a raw client writes it: no XML
# declaration, no xml:lang (tests that send the bytes themselves).
RAW_C2S_HEADER = ("<stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  "to='localhost' version='1.0'>")


# ---------------------------------------------------------------- names

def qname(spec):
    """'{ns}name' for 'prefix:name' or '{ns}name'; plain names stay plain."""
    if spec.startswith("{") or spec == "*":
        return spec
    prefix, sep, local = spec.partition(":")
    if sep:
        if prefix not in NS:
            raise ValueError("unknown namespace prefix %r" % prefix)
        return "{%s}%s" % (NS[prefix], local)
    return spec


def split_tag(tag):
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def tag_matches(tag, spec):
    spec = qname(spec)
    if spec == "*":
        return True
    if spec.startswith("{"):
        return tag == spec
    return split_tag(tag)[1] == spec


def _path_steps(path):
    steps, cur, depth = [], [], 0
    for ch in path:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            steps.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    steps.append("".join(cur))
    return [s for s in steps if s]


def find_all(el, path):
    """Descendants of el along path (see the module docstring)."""
    if path in (".", ""):
        return [el]
    nodes = [el]
    for step in _path_steps(path):
        nodes = [c for n in nodes for c in n if tag_matches(c.tag, step)]
    return nodes


def find(el, path):
    found = find_all(el, path)
    return found[0] if found else None


def text_of(el, path="."):
    node = find(el, path)
    return None if node is None else "".join(node.itertext())


def attr_name(name):
    if name.startswith("xml:"):
        return "{%s}%s" % (NS["xml"], name[4:])
    return qname(name) if ":" in name else name


# ---------------------------------------------------------- serialization

def _attr_display(key):
    ns, local = split_tag(key)
    if ns == NS["xml"]:
        return "xml:" + local
    return key


def to_xml(el, parent_ns=None):
    """Serialize an element, declaring xmlns only where it changes."""
    ns, local = split_tag(el.tag)
    out = ["<", local]
    if ns != parent_ns:
        out.append(" xmlns='%s'" % esc(ns or ""))
    for key, value in el.attrib.items():
        out.append(" %s='%s'" % (_attr_display(key), esc(value)))
    if not len(el) and not el.text:
        out.append("/>")
    else:
        out.append(">")
        out.append(esc(el.text or ""))
        for child in el:
            out.append(to_xml(child, ns))
            out.append(esc(child.tail or ""))
        out.append("</%s>" % local)
    return "".join(out)


def _xml_difference(got, want, where):
    """Where got and want (elements) differ, or None: names, attributes
    (in any order), text (whitespace-only text between elements ignored)
    and children, in order."""
    if got.tag != want.tag:
        return "%s: element %s, expected %s" % (where, got.tag, want.tag)
    here = "%s/%s" % (where, split_tag(got.tag)[1])
    if dict(got.attrib) != dict(want.attrib):
        return "%s: attributes %s, expected %s" % (here, dict(got.attrib),
                                                   dict(want.attrib))
    gtext, wtext = got.text or "", want.text or ""
    if len(got) or len(want):
        gtext, wtext = gtext.strip(), wtext.strip()
    if gtext != wtext:
        return "%s: text %r, expected %r" % (here, gtext, wtext)
    if len(got) != len(want):
        return "%s: %d children, expected %d" % (here, len(got), len(want))
    for g, w in zip(got, want):
        why = _xml_difference(g, w, here)
        if why:
            return why
    return None


def exact_mismatch(el, xml, ns="jabber:client"):
    """Why el is not exactly the stanza xml (its default namespace ns),
    or None when it is."""
    if el is STREAM_END or getattr(el, "is_header", False):
        return "got %s" % describe(el)
    want = ET.fromstring("<wrap xmlns='%s'>%s</wrap>" % (esc(ns), xml))[0]
    return _xml_difference(el, want, "")


def describe(item):
    if item is STREAM_END:
        return STREAM_END
    if getattr(item, "is_header", False):
        attrs = "".join(" %s='%s'" % (_attr_display(k), esc(v))
                        for k, v in item.attrib.items())
        return "<stream:stream%s>" % attrs
    return to_xml(item)


# ------------------------------------------------------------- matching

def _value_ok(actual, expected):
    if expected is ANY:
        return actual is not None
    if expected is ABSENT:
        return actual is None
    if actual is None:
        return False
    if isinstance(expected, re.Pattern):
        return expected.fullmatch(actual) is not None
    if callable(expected):
        return bool(expected(actual))
    return actual == str(expected)


def _show(expected):
    if expected is ANY:
        return "<any>"
    if expected is ABSENT:
        return "<absent>"
    if isinstance(expected, re.Pattern):
        return "/%s/" % expected.pattern
    return repr(expected)


def mismatch(el, tag=None, attrs=None, child=None, text=None, regex=None):
    """None when el matches, else a sentence saying why not."""
    if el is STREAM_END:
        return "the stream ended"
    if getattr(el, "is_header", False) and not (tag and tag_matches(el.tag, tag)):
        return "got a stream header"
    if tag is not None and not tag_matches(el.tag, tag):
        return "tag is %s, not %s" % (el.tag, tag)
    for name, expected in (attrs or {}).items():
        actual = el.get(attr_name(name))
        if not _value_ok(actual, expected):
            return "attribute %s is %r, expected %s" % (name, actual,
                                                         _show(expected))
    children = [child] if isinstance(child, str) else list(child or [])
    for path in children:
        if find(el, path) is None:
            return "no child %s" % path
    if text is not None:
        if not isinstance(text, dict):
            text = {children[0] if len(children) == 1 else ".": text}
        for path, expected in text.items():
            actual = text_of(el, path)
            if not _value_ok(actual, expected):
                return "text of %s is %r, expected %s" % (path, actual,
                                                           _show(expected))
    if regex is not None:
        pattern = regex if isinstance(regex, re.Pattern) else re.compile(regex)
        if not pattern.search(to_xml(el)):
            return "serialization does not match /%s/" % pattern.pattern
    return None


def stanza_error(el):
    """(type, condition) of a stanza's <error/>, or None."""
    err = find(el, "error")
    if err is None:
        return None
    for c in err:
        ns, local = split_tag(c.tag)
        if ns == NS["stanzas"] and local != "text":
            return err.get("type"), local
    return err.get("type"), None


def stream_error_condition(el):
    for c in el:
        ns, local = split_tag(c.tag)
        if ns == NS["streams"] and local != "text":
            return local
    return None


# --------------------------------------------------------------- parser

class StreamHeader:
    """The server's <stream:stream> start tag."""

    is_header = True

    def __init__(self, tag, attrib, namespaces):
        self.tag, self.attrib, self.namespaces = tag, attrib, namespaces

    def get(self, name, default=None):
        return self.attrib.get(attr_name(name), default)


class StreamParser:
    """Incremental parser for one XML stream: yields the stream header, each
    complete top-level child, and STREAM_END, into `queue`."""

    def __init__(self, queue):
        self.queue = queue
        self.depth = 0
        self.builder = None
        self.ended = False
        self.namespaces = {}
        p = expat.ParserCreate(namespace_separator=" ")
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._data
        p.StartNamespaceDeclHandler = self._ns_decl
        self.parser = p

    @staticmethod
    def _clark(name):
        if " " in name:
            ns, local = name.split(" ", 1)
            return "{%s}%s" % (ns, local)
        return name

    def _ns_decl(self, prefix, uri):
        if self.depth == 0:
            self.namespaces[prefix or ""] = uri

    def _start(self, name, attrs):
        tag = self._clark(name)
        attrib = {self._clark(k): v for k, v in attrs.items()}
        if self.depth == 0:
            self.queue.append(StreamHeader(tag, attrib, dict(self.namespaces)))
        else:
            if self.depth == 1:
                self.builder = ET.TreeBuilder()
            self.builder.start(tag, attrib)
        self.depth += 1

    def _end(self, name):
        self.depth -= 1
        if self.depth == 0:
            self.ended = True
            self.queue.append(STREAM_END)
            return
        self.builder.end(self._clark(name))
        if self.depth == 1:
            self.queue.append(self.builder.close())
            self.builder = None

    def _data(self, data):
        if self.builder is not None:
            self.builder.data(data)

    def feed(self, data):
        if self.ended:
            return data  # bytes after </stream:stream>: not for this parser
        try:
            self.parser.Parse(data, False)
        except expat.ExpatError as e:
            raise ExpectError("server sent malformed XML (%s): %r"
                              % (e, data[:500])) from None
        return b""


# --------------------------------------------------------------- client

_ids = itertools.count(1)


def new_id(prefix="id"):
    return "%s%d" % (prefix, next(_ids))


class Client:
    """One XMPP client connection; see the module docstring."""

    def __init__(self, host, port, domain="localhost", name=None,
                 timeout=DEFAULT_TIMEOUT):
        self.host, self.port, self.domain = host, port, domain
        self.name = name or "client%d" % next(_ids)
        self.timeout = timeout
        self.transport = None
        self.queue = collections.deque()
        self.parser = None
        self.eof = False
        self.stream_ended = False  # </stream:stream> read
        self.username = None
        self.header = None        # the server's current stream header
        self.features = None      # the last <stream:features/>
        self.jid = None           # bound full JID
        self.vars = {}            # captures
        self.transcript = []      # (seconds, direction, text)
        self.t0 = time.monotonic()
        self.ignore = ()          # tags expect() passes over (e.g. "presence")

    # -- transport

    def _log(self, direction, text):
        if len(text) > 2000:
            text = text[:2000] + "...[%d bytes]" % len(text)
        self.transcript.append((time.monotonic() - self.t0, direction, text))

    def connect(self, tls=False, backend="ssl", version=None, timeout=None,
                source=None):
        """TCP connect; tls=True wraps at once (direct TLS, XEP-0368).
        source: the local address to connect from (e.g. '127.0.0.2')."""
        timeout = timeout_value(timeout or self.timeout)
        sock = socket.create_connection(
            (self.host, self.port), timeout=timeout,
            source_address=(source, 0) if source else None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = tr.PlainTransport(sock)
        self._log("--", "connected to %s:%d" % (self.host, self.port))
        if tls:
            self._wrap_tls(backend, version, alpn=["xmpp-client"])
        self.reset_parser()
        return self

    def _wrap_tls(self, backend, version, alpn=None):
        self.transport = tr.wrap_tls(self.transport, backend, version, alpn,
                                     self.domain, timeout_value(self.timeout))
        self._log("--", "TLS established (%s)" % self.transport.version)

    @property
    def tls_version(self):
        return getattr(self.transport, "version", None)

    def reset_parser(self):
        if self.queue:
            raise ExpectError("unread elements at stream restart: %s"
                              % [describe(e) for e in self.queue])
        self.parser = StreamParser(self.queue)
        self.stream_ended = False

    def send(self, data):
        """Send raw XML (str or bytes). A closed peer is not an error here:
        the test finds out from what it then expects."""
        if isinstance(data, str):
            data = data.encode()
        self._log("C:", data.decode(errors="replace"))
        try:
            self.transport.send(data, timeout_value(self.timeout))
        except tr.TransportClosed as e:
            self._log("--", "send failed: %s" % e)

    def close(self):
        """Drop the connection without a closing tag."""
        if self.transport:
            self.transport.close()
            self._log("--", "socket closed")

    # -- reading

    def _recv(self, deadline):
        """One read from the transport before deadline: the bytes, b"" at
        the end of the stream (sets eof), None on timeout or after eof."""
        if self.eof:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            data = self.transport.recv(left)
        except TimeoutError:
            return None
        except OSError as e:
            self._log("--", "recv error: %s" % e)
            data = b""
        if not data:
            self.eof = True
            self._log("--", "connection closed by server")
        return data

    def _fill(self, deadline):
        """Read once into the queue; False on timeout."""
        data = self._recv(deadline)
        if data is None:
            return False
        if data:
            self.parser.feed(data)
        return True

    def next_item(self, timeout=None, what="an element"):
        """The next queued item: an Element, a header, or STREAM_END."""
        return self._next(self._deadline(timeout), what)

    def _deadline(self, timeout):
        return time.monotonic() + timeout_value(timeout or self.timeout)

    def _next(self, deadline, what):
        while not self.queue:
            if self.eof:
                raise ConnectionClosed("%s: connection closed while waiting "
                                       "for %s" % (self.name, what))
            if not self._fill(deadline) and not self.eof:
                raise ExpectError("%s: timed out waiting for %s"
                                  % (self.name, what))
        item = self.queue.popleft()
        if item is STREAM_END:
            self.stream_ended = True
            self._log("S:", STREAM_END)
        elif getattr(item, "is_header", False):
            self.header = item
            self._log("S:", describe(item))
        else:
            self._log("S:", to_xml(item))
        return item

    def expect(self, tag=None, attrs=None, child=None, text=None, regex=None,
               timeout=None, skip=None, capture=None):
        """The next top-level element, which must match (see match rules).
        Elements whose tag is in `skip` (or self.ignore) are passed over.
        capture={"name": "path" | "path@attr" | "@attr"} stores into vars."""
        skip = tuple(skip or ()) + tuple(self.ignore)
        what = _describe_spec(tag, attrs, child, text, regex)
        deadline = self._deadline(timeout)
        while True:
            item = self._next(deadline, what)
            if (item is not STREAM_END and not getattr(item, "is_header", False)
                    and any(tag_matches(item.tag, s) for s in skip)
                    and (tag is None or not tag_matches(item.tag, tag))):
                continue
            why = mismatch(item, tag, attrs, child, text, regex)
            if why:
                raise ExpectError("%s: expected %s\n  got: %s"
                                  % (self.name, what, describe(item)[:3000])
                                  + "\n  (%s)" % why)
            self._capture(item, capture)
            return item

    def expect_exactly(self, xml, timeout=None):
        """The next top-level element (passing over self.ignore's tags),
        which must be exactly the stanza xml: the same attributes, text
        and children, nothing more (see exact_mismatch)."""
        deadline = self._deadline(timeout)
        what = "exactly %s" % xml
        while True:
            item = self._next(deadline, what)
            if (item is not STREAM_END and not getattr(item, "is_header", False)
                    and any(tag_matches(item.tag, s) for s in self.ignore)):
                continue
            why = exact_mismatch(item, xml)
            if why:
                raise ExpectError("%s: expected %s\n  got: %s\n  (%s)"
                                  % (self.name, what, describe(item)[:3000], why))
            return item

    def wait_for(self, tag=None, attrs=None, child=None, text=None,
                 regex=None, timeout=None, capture=None):
        """Like expect() but passes over any element that does not match."""
        what = _describe_spec(tag, attrs, child, text, regex)
        deadline = self._deadline(timeout)
        passed = []
        while True:
            try:
                item = self._next(deadline, what)
            except ExpectError as e:
                raise ExpectError("%s: %s; passed over: %s"
                                  % (self.name, e, [describe(p)[:300]
                                                    for p in passed])) from None
            if item is STREAM_END:
                raise ConnectionClosed("%s: stream ended while waiting for %s"
                                       % (self.name, what))
            if mismatch(item, tag, attrs, child, text, regex) is None:
                self._capture(item, capture)
                return item
            passed.append(item)

    def _capture(self, el, capture):
        for name, spec in (capture or {}).items():
            path, _, attr = spec.partition("@")
            node = find(el, path or ".")
            if node is None:
                raise ExpectError("capture %s: no %s in %s"
                                  % (name, path, to_xml(el)))
            self.vars[name] = (node.get(attr_name(attr)) if attr
                               else "".join(node.itertext()))

    def expect_error(self, tag, condition, type=None, attrs=None, timeout=None,
                     skip=None):
        """A stanza of `tag` with type='error' and the stanza error
        `condition` (and error type `type` when given)."""
        attrs = dict(attrs or {}, type="error")
        el = self.expect(tag, attrs=attrs,
                         child="error/{%s}%s" % (NS["stanzas"], condition),
                         timeout=timeout, skip=skip)
        if type is not None and find(el, "error").get("type") != type:
            raise ExpectError("%s: error type is %r, expected %r in %s"
                              % (self.name, find(el, "error").get("type"),
                                 type, to_xml(el)))
        return el

    def expect_stream_header(self, timeout=None):
        item = self.next_item(timeout, "a stream header")
        if not getattr(item, "is_header", False):
            raise ExpectError("%s: expected a stream header, got %s"
                              % (self.name, describe(item)))
        if item.tag != "{%s}stream" % NS["stream"]:
            raise ExpectError("%s: stream header is %s" % (self.name, item.tag))
        return item

    def expect_features(self, timeout=None):
        self.features = self.expect("stream:features", timeout=timeout)
        return self.features

    def expect_stream_error(self, condition, timeout=None):
        """Wait for <stream:error> with `condition` (passing over a stream
        header and stanzas), then for </stream:stream> and the close."""
        what = "<stream:error><%s/>" % condition
        deadline = self._deadline(timeout)
        while True:
            item = self._next(deadline, what)
            if item is STREAM_END:
                raise ExpectError("%s: stream ended without %s"
                                  % (self.name, what))
            if getattr(item, "is_header", False):
                if item.tag != "{%s}stream" % NS["stream"]:
                    raise ExpectError(
                        "%s: the server's root element is %s, not a stream "
                        "header (RFC 6120 4.9.1.1: open the stream, then send "
                        "the error)" % (self.name, item.tag))
                continue
            if item.tag == "{%s}error" % NS["stream"]:
                break
        got = stream_error_condition(item)
        if got != condition:
            raise ExpectError("%s: expected %s, got %s"
                              % (self.name, what, to_xml(item)))
        self.expect_closed(timeout)
        return item

    def expect_stream_end(self, timeout=None):
        item = self.next_item(timeout, STREAM_END)
        if item is not STREAM_END:
            raise ExpectError("%s: expected %s, got %s"
                              % (self.name, STREAM_END, describe(item)))

    def expect_closed(self, timeout=None):
        """</stream:stream> (unless already seen), then the TCP close."""
        if not self.stream_ended:
            self.expect_stream_end(timeout)
        deadline = self._deadline(timeout)
        while not self.eof:
            if not self._fill(deadline) and not self.eof:
                raise ExpectError("%s: server did not close the connection "
                                  "after %s" % (self.name, STREAM_END))
        if self.queue:
            raise ExpectError("%s: data after %s: %s"
                              % (self.name, STREAM_END,
                                 [describe(i) for i in self.queue]))

    def closed_within(self, timeout):
        """True once the server has closed the connection (for tests that
        only need to know the socket is gone)."""
        deadline = time.monotonic() + timeout_value(timeout)
        while not self.eof and time.monotonic() < deadline:
            self._fill(deadline)
            self.queue.clear()
        return self.eof

    # -- stream negotiation

    def header_attrs(self, first, to=None, version="1.0", lang="en", extra=""):
        """A stream header's attributes: first (a list, as written), to
        (None: our domain), version and xml:lang where given, extra."""
        to = self.domain if to is None else to
        attrs = list(first)
        if to:
            attrs.append("to='%s'" % esc(to))
        if version:
            attrs.append("version='%s'" % version)
        if lang:
            attrs.append("xml:lang='%s'" % lang)
        return " ".join(attrs) + (" " + extra if extra else "")

    def stream_header(self, to=None, version="1.0", lang="en", extra=""):
        return "<?xml version='1.0'?><stream:stream %s>" % self.header_attrs(
            ["xmlns='jabber:client'",
             "xmlns:stream='http://etherx.jabber.org/streams'"],
            to, version, lang, extra)

    def open_stream(self, to=None, **kw):
        """Send a stream header; expect the server's header and features."""
        self.send(self.stream_header(to, **kw))
        header = self.expect_stream_header()
        if header.namespaces.get("") != NS["client"]:
            raise ExpectError("%s: server stream default namespace is %r"
                              % (self.name, header.namespaces.get("")))
        return self.expect_features()

    def restart(self):
        self.reset_parser()
        return self.open_stream()

    def starttls(self, backend="ssl", version=None):
        """STARTTLS and the new stream; returns the new features."""
        if self.features is None or find(self.features, "tls:starttls") is None:
            raise ExpectError("%s: STARTTLS not offered in %s" % (
                self.name, describe(self.features) if self.features is not None
                else "(no features)"))
        self.send("<starttls xmlns='%s'/>" % NS["tls"])
        self.expect("tls:proceed")
        self.reset_parser()
        self._wrap_tls(backend, version)
        return self.open_stream()

    def mechanisms(self):
        """The SASL mechanisms of the last features."""
        return [m.text for m in
                find_all(self.features, "sasl:mechanisms/sasl:mechanism")]

    def channel_binding_types(self):
        """The XEP-0440 channel binding types of the last features."""
        return [e.get("type") for e in
                find_all(self.features, "sasl-cb:sasl-channel-binding/"
                         "sasl-cb:channel-binding")]

    def _sasl_step(self, stage):
        el = self.expect()
        ns, local = split_tag(el.tag)
        if ns != NS["sasl"] or local not in ("challenge", "success", "failure"):
            raise ExpectError("%s: expected a SASL answer after %s, got %s"
                              % (self.name, stage, to_xml(el)))
        if local == "failure":
            cond = next((split_tag(c.tag)[1] for c in el
                         if split_tag(c.tag)[1] != "text"), None)
            raise AuthFailed(cond, el, stage)
        data = base64.b64decode(el.text or "") if (el.text or "") != "=" else b""
        return local, data

    def auth_scram(self, username, password, mechanism=None,
                   cb_type=None, cb_flag=None, cb_data=None, restart=True):
        """Full SCRAM exchange; verifies the server signature. Raises
        AuthFailed on <failure/>. Returns the new stream's features.
        -PLUS: cb_type defaults to tls-server-end-point; cb_data (computed
        from the connection unless given) may be forged to test the server.
        cb_flag overrides the gs2 flag ('n', 'y', 'p')."""
        mechanism = mechanism or DEFAULT_MECH
        if mechanism.upper().endswith("-PLUS") or cb_flag == "p":
            cb_type = cb_type or "tls-server-end-point"
            if cb_data is None:
                cb_data = self.transport.channel_binding(cb_type)
        s = scram.ScramClient(mechanism, username, password, cb_type,
                              cb_data, cb_flag)
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                  % (NS["sasl"], mechanism,
                     base64.b64encode(s.first()).decode()))
        kind, data = self._sasl_step("client-first-message")
        if kind != "challenge":
            raise ExpectError("%s: expected a challenge, got <%s/>"
                              % (self.name, kind))
        self.send("<response xmlns='%s'>%s</response>"
                  % (NS["sasl"], base64.b64encode(s.final(data)).decode()))
        kind, data = self._sasl_step("client-final-message")
        if kind == "challenge":     # server-final sent as a challenge
            s.verify(data)
            self.send("<response xmlns='%s'/>" % NS["sasl"])
            kind, data = self._sasl_step("empty response")
            if kind != "success":
                raise ExpectError("%s: expected success" % self.name)
        else:
            s.verify(data)
        self._log("--", "authenticated as %s (%s)" % (username, mechanism))
        self.username = username
        return self.restart() if restart else None

    def auth_plain(self, username, password, restart=True):
        msg = base64.b64encode(scram.plain_message(username, password)).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                  % (NS["sasl"], msg))
        kind, _ = self._sasl_step("PLAIN message")
        if kind != "success":
            raise ExpectError("%s: PLAIN got <%s/>" % (self.name, kind))
        self.username = username
        return self.restart() if restart else None

    def bind(self, resource=None):
        """Resource binding; returns (and stores) the full JID."""
        iq_id = new_id("bind")
        inner = "<resource>%s</resource>" % esc(resource) if resource else ""
        self.send("<iq type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>"
                  % (iq_id, NS["bind"], inner))
        el = self.expect("iq", attrs={"id": iq_id, "type": "result"},
                         child="bind:bind/bind:jid")
        self.jid = text_of(el, "bind:bind/bind:jid")
        self._log("--", "bound %s" % self.jid)
        return self.jid

    def session(self):
        iq_id = new_id("sess")
        self.send("<iq type='set' id='%s'><session xmlns='%s'/></iq>"
                  % (iq_id, NS["session"]))
        return self.expect("iq", attrs={"id": iq_id, "type": "result"})

    def roundtrip(self, timeout=None):
        """An iq to the server and its answer (a result or an error): when
        it returns, everything this client sent before has been handled
        (a session's stanzas are processed in order). What else arrives
        meanwhile stays queued, in order, for later expects."""
        rid = new_id("rt")
        self.send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % rid)
        deadline = self._deadline(timeout)
        while True:
            for item in self.queue:
                if (item is not STREAM_END and not getattr(item, "is_header", False)
                        and tag_matches(item.tag, "iq") and item.get("id") == rid):
                    self.queue.remove(item)
                    self._log("S:", to_xml(item))
                    return item
            if self.eof:
                raise ConnectionClosed("%s: connection closed while waiting "
                                       "for the answer to iq %s" % (self.name, rid))
            if not self._fill(deadline) and not self.eof:
                raise ExpectError("%s: timed out waiting for the answer to iq %s"
                                  % (self.name, rid))

    def presence(self, priority=None, show=None, extra=""):
        """Send (initial) presence."""
        inner = ""
        if show:
            inner += "<show>%s</show>" % esc(show)
        if priority is not None:
            inner += "<priority>%d</priority>" % priority
        self.send("<presence>%s%s</presence>" % (inner, extra))

    def end_stream(self):
        self.send(STREAM_END)

    @property
    def bare(self):
        return self.jid.split("/", 1)[0] if self.jid else None

    def dump(self, limit=60):
        lines = ["--- transcript of %s ---" % self.name]
        for t, direction, text in self.transcript[-limit:]:
            lines.append("%7.3f %s %s" % (t, direction, text))
        return "\n".join(lines)


def _describe_spec(tag, attrs, child, text, regex):
    parts = ["<%s>" % (tag or "*")]
    if attrs:
        parts.append("attrs %s" % {k: _show(v) for k, v in attrs.items()})
    if child:
        parts.append("child %s" % (child,))
    if text is not None:
        parts.append("text %s" % (text if isinstance(text, dict)
                                  else _show(text)))
    if regex:
        parts.append("matching /%s/" % getattr(regex, "pattern", regex))
    return " ".join(parts)
