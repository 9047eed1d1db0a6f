"""Hostile XML: entity expansion, external entities, very deep nesting,
very many attributes, invalid UTF-8 and NUL bytes, stanzas that never end.

Each attack runs inside a hostile.Guard: two bystanders chat before and
after it (and some tests time them during it), and afterwards the server
has closed every attacking connection and its resident memory is back at
the baseline taken after a warm-up (see tests/hostile/hostile.py). Tests
about memory use their own server, so nothing else runs on it meanwhile.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hostile"))

from harness import check, time_limit  # noqa: E402
from xmpp import esc  # noqa: E402
import hostile  # noqa: E402
from hostile import Guard, MiB, STREAM_HEADER  # noqa: E402


def lol_prolog(levels=9):
    """The "billion laughs" internal subset: lol9 expands to 10**9 lols."""
    ents = ["<!ENTITY lol 'lol'>"]
    for i in range(1, levels + 1):
        prev = "lol" if i == 1 else "lol%d" % (i - 1)
        ents.append("<!ENTITY lol%d '%s'>" % (i, ("&%s;" % prev) * 10))
    return ("<?xml version='1.0'?><!DOCTYPE stream:stream [%s]>"
            % "".join(ents))


def raw(srv):
    return srv.client(tls=None, open_stream=False)


# -- entities

def test_billion_laughs_before_the_stream_is_restricted_xml(ctx):
    srv = ctx.server()
    with Guard(srv) as g:
        c = raw(srv)
        c.send(lol_prolog() + STREAM_HEADER + "<message><body>&lol9;</body>"
               "</message>")
        c.expect_stream_error("restricted-xml")
        g.check_peak(2 * MiB, "billion laughs")


def test_billion_laughs_in_pieces_is_restricted_xml(ctx):
    # the same, arriving a few bytes at a time: the DOCTYPE is refused
    # when it starts, before any entity is declared
    srv = ctx.server()
    with Guard(srv) as g:
        c = raw(srv)
        data = lol_prolog() + STREAM_HEADER + "<message><body>&lol9;</body>"
        for i in range(0, 200, 7):
            c.send(data[i:i + 7])
        c.expect_stream_error("restricted-xml")
        g.check_peak(2 * MiB, "billion laughs in pieces")


def test_billion_laughs_after_the_sasl_restart_is_restricted_xml(ctx):
    # a restarted stream has a new prolog: the DOCTYPE may come there too
    srv = ctx.server()
    with Guard(srv):
        a = srv.account("laugher")
        c = srv.client()
        c.auth_scram(a.user, a.password, restart=False)
        c.reset_parser()
        c.send(lol_prolog() + c.stream_header())
        c.expect_stream_error("restricted-xml")


def test_external_entities_are_restricted_xml_and_never_fetched(ctx):
    srv = ctx.server()
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    ctx.cleanup(trap.close)
    url = "http://127.0.0.1:%d/evil.dtd" % trap.getsockname()[1]
    prologs = [
        # external DTD subset
        "<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM '%s'>" % url,
        # external general entity, then used in a stanza
        "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM "
        "'file:///etc/passwd'>]>",
        # external parameter entity, referenced in the internal subset
        "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY %% pe SYSTEM "
        "'%s'> %%pe;]>" % url,
        # a standalone='no' document relying on outside declarations
        "<?xml version='1.0' standalone='no'?><!DOCTYPE stream:stream "
        "PUBLIC '-//EVIL//DTD X//EN' '%s'>" % url,
    ]
    with Guard(srv):
        for prolog in prologs:
            c = raw(srv)
            c.send(prolog + STREAM_HEADER + "<message><body>&xxe;</body>"
                   "</message>")
            c.expect_stream_error("restricted-xml")
    try:
        peer = trap.accept()
    except BlockingIOError:
        peer = None
    check(peer is None, "the server connected to the external entity's URL")


def test_undeclared_entity_reference_is_restricted_xml(ctx):
    # no DOCTYPE at all: a reference to anything but the five predefined
    # entities and character references is an entity reference RFC 6120
    # 11.1 forbids
    srv = ctx.server()
    with Guard(srv) as g:
        bad = srv.login("entity")
        # the predefined ones and character references are plain XML
        bad.send("<message to='%s' type='chat'><body>&lt;&amp;&gt;&quot;"
                 "&apos;&#65;&#x42;</body></message>" % esc(g.b.jid))
        g.b.expect("message", attrs={"from": bad.jid}, child="body",
                   text="<&>\"'AB")
        bad.send("<message to='%s' type='chat'><body>&xxe;</body></message>"
                 % esc(g.b.jid))
        bad.expect_stream_error("restricted-xml")
        bad2 = srv.login("entity")
        bad2.send("<message to='%s' type='chat' a='&xxe;'/>" % esc(g.b.jid))
        bad2.expect_stream_error("restricted-xml")


# -- nesting and attributes

@time_limit(60)
def test_100000_deep_nesting_is_policy_violation_without_memory(ctx):
    # 100,000 open elements (2.5 MB): the depth limit (32) ends the stream
    # long before; the server holds neither the elements nor the bytes
    srv = ctx.server()
    with Guard(srv) as g:
        deep = "<x xmlns='urn:test:deep'>" * 100000
        bad = srv.login("deep")
        bad.send("<message to='%s'>%s" % (esc(g.b.jid), deep))
        bad.expect_stream_error("policy-violation")
        # before authentication too: the limit is the parser's
        pre = srv.client(tls=None)
        pre.send("<message>" + deep)
        pre.expect_stream_error("policy-violation")
        # and without namespaces or a stanza name the server knows
        pre = srv.client(tls=None)
        pre.send("<a>" * 100000)
        pre.expect_stream_error("policy-violation")
        g.chat()
        g.check_peak(2 * MiB, "100,000-deep nesting")


def test_configured_depth_limit(ctx):
    srv = ctx.server(options={"c2s_stanza_depth_limit": 8})
    with Guard(srv, warm=False) as g:
        ok = srv.login("depth")
        nest = lambda n: "<x xmlns='urn:test:d'>" * n + "</x>" * n  # noqa
        # the stanza is depth 1, <body> and each <x> one more
        ok.send("<message to='%s' type='chat'><body>ok</body>%s</message>"
                % (esc(g.b.jid), nest(7)))
        g.b.expect("message", attrs={"from": ok.jid}, child="body", text="ok")
        ok.send("<message to='%s' type='chat'>%s</message>"
                % (esc(g.b.jid), nest(8)))
        ok.expect_stream_error("policy-violation")


def test_10000_attributes_is_policy_violation(ctx):
    srv = ctx.server()
    with Guard(srv) as g:
        attrs = " ".join("a%d='%d'" % (i, i) for i in range(10000))
        bad = srv.login("attrs")
        bad.send("<message to='%s'><x xmlns='urn:test:attrs' %s/></message>"
                 % (esc(g.b.jid), attrs))
        bad.expect_stream_error("policy-violation")
        # on the stanza itself, and on the stream header
        bad = srv.login("attrs")
        bad.send("<message to='%s' %s/>" % (esc(g.b.jid), attrs))
        bad.expect_stream_error("policy-violation")
        pre = raw(srv)
        pre.send(STREAM_HEADER[:-1] + " " + attrs + ">")
        pre.expect_stream_error("policy-violation")
        g.check_peak(2 * MiB, "10,000 attributes")


def test_10000_namespace_declarations_is_policy_violation(ctx):
    # xmlns:pN='...' are attributes in XML 1.0 terms, and expat keeps a
    # binding for each: they count towards the attribute limit
    srv = ctx.server()
    with Guard(srv) as g:
        decls = " ".join("xmlns:n%d='u'" % i for i in range(10000))
        bad = srv.login("nsdecl")
        bad.send("<message to='%s' type='chat'><body>x</body><x %s/></message>"
                 % (esc(g.b.jid), decls))
        bad.expect_stream_error("policy-violation")
        pre = raw(srv)
        pre.send(STREAM_HEADER[:-1] + " " + decls + ">")
        pre.expect_stream_error("policy-violation")
        # a few declarations (and attributes) are fine
        ok = srv.login("nsdecl")
        few = " ".join("xmlns:q%d='urn:test:%d' q%d:a='1'" % (i, i, i)
                       for i in range(20))
        ok.send("<message to='%s' type='chat'><body>few</body><x xmlns="
                "'urn:test:ns' %s/></message>" % (esc(g.b.jid), few))
        g.b.expect("message", attrs={"from": ok.jid}, child="body",
                   text="few")
        hostile.leave(ok)


# -- bytes that are not XML

BAD_BYTES = [
    (b"\xff", "0xff, never in UTF-8"),
    (b"\xc0\x80", "overlong NUL"),
    (b"\xc1\xbf", "overlong ASCII"),
    (b"\xe0\x80\xaf", "overlong 3-byte '/'"),
    (b"\x80", "lone continuation byte"),
    (b"\xed\xa0\x80", "UTF-16 surrogate D800"),
    (b"\xf4\x90\x80\x80", "above U+10FFFF"),
    (b"\xe2\x82x", "truncated sequence"),
    (b"\xf8\x88\x80\x80\x80", "5-byte form"),
    (b"\x00", "NUL byte"),
    (b"\x01", "control character"),
    (b"\x1b[31m", "escape sequence"),
    (b"&#0;", "character reference to NUL"),
    (b"&#xD800;", "character reference to a surrogate"),
    (b"&#x110000;", "character reference above U+10FFFF"),
    (b"\xef\xbf\xbe", "U+FFFE, not an XML character"),
]


def test_invalid_utf8_and_nul_bytes_are_not_well_formed(ctx):
    srv = ctx.server()
    with Guard(srv) as g:
        to = esc(g.b.jid).encode()
        for bad, why in BAD_BYTES:
            places = [
                b"<message to='" + to + b"'><body>a" + bad + b"b</body></message>",
                b"<message to='" + to + b"' id='a" + bad + b"'/>",
            ]
            if not bad.startswith(b"&"):        # no references in names
                places.append(b"<message to='" + to + b"'><a" + bad
                              + b" xmlns='urn:x'/></message>")
            for stanza in places:
                c = srv.login("utf8", name="utf8 %s" % why)
                c.send(stanza)
                c.expect_stream_error("not-well-formed")
            # before authentication, in the stream header
            c = raw(srv)
            c.send(STREAM_HEADER.encode()[:-1] + b" x='" + bad + b"'>")
            c.expect_stream_error("not-well-formed")
        g.chat()


def test_valid_utf8_split_across_reads_is_delivered(ctx):
    # the positive side: multi-byte characters whose bytes arrive in
    # separate reads are put back together
    srv = ctx.server()
    a = srv.login("split")
    b = srv.login("split")
    text = "h\u00e9llo \u20ac \U0001f600 \u4e2d\u6587 \U00010348"
    data = ("<message to='%s' type='chat'><body>%s</body></message>"
            % (esc(b.jid), text)).encode()
    start = data.index(b"<body>")
    a.send(data[:start])
    for i in range(start, len(data)):
        a.send(data[i:i + 1])
    b.expect("message", attrs={"from": a.jid}, child="body", text=text)


# -- stanzas that never end

LIMIT = 64 * 1024


def _message_of_size(to, size, fill="s"):
    head = "<message to='%s' type='chat'><body>" % esc(to)
    tail = "</body></message>"
    return head + fill * (size - len(head) - len(tail)) + tail


@time_limit(60)
def test_stanza_that_never_ends_is_policy_violation_at_the_limit(ctx):
    srv = ctx.server(options={"c2s_stanza_size_limit": LIMIT,
                              "limits": {"c2s": {"rate": "10mb/s"}}})
    with Guard(srv) as g:
        c = srv.login("endless")
        # exactly the limit is allowed, one byte more is not
        exact = _message_of_size(g.b.jid, LIMIT)
        check(len(exact.encode()) == LIMIT, "test stanza has the wrong size")
        c.send(exact)
        g.b.expect("message", attrs={"from": c.jid}, child="body",
                   text=exact[exact.index("<body>") + 6:-len("</body></message>")])
        # a stanza that never ends: text forever, 4 KiB at a time; the
        # server must end the stream before another 4 KiB past the limit
        c.send("<message to='%s' type='chat'><body>" % esc(g.b.jid))
        sent = 0
        while sent < LIMIT + 4096:
            c.send("z" * 4096)
            sent += 4096
        c.expect_stream_error("policy-violation")
        # one byte over the limit, in one piece
        c = srv.login("endless")
        over = _message_of_size(g.b.jid, LIMIT + 1)
        c.send(over)
        c.expect_stream_error("policy-violation")
        # before authentication: a stanza, and a stream header, that never end
        pre = srv.client(tls=None)
        pre.send("<message><body>" + "q" * (LIMIT + 4096))
        pre.expect_stream_error("policy-violation")
        pre = raw(srv)
        pre.send(STREAM_HEADER[:-1] + " x='" + "h" * (LIMIT + 4096))
        pre.expect_stream_error("policy-violation")
        # after the limit has been hit many times nothing is left over
        g.chat()


@time_limit(60)
def test_default_stanza_limit_holds_a_flood_of_one_stanza(ctx):
    # 8 MB of text in one stanza at full speed: cut at 256 KiB, and the
    # server never holds much more than that
    srv = ctx.server(options={"limits": {"c2s": {"rate": "100mb/s"}}})
    with Guard(srv) as g:
        c = srv.login("flood")
        c.send("<message to='%s' type='chat'><body>" % esc(g.b.jid))
        chunk = "f" * 65536
        for _ in range(128):
            if hostile.readable(c):        # the error is there: stop sending
                break
            c.send(chunk)
        c.expect_stream_error("policy-violation")
        g.check_peak(4 * MiB, "one 8 MB stanza")


