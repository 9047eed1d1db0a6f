"""Whitespace between a stream's top-level elements (RFC 6120 section 11,
XML's whitespace where character data may appear).

Clients send it everywhere: a newline after each element they write, a
space as a keepalive. go-sendxmpp writes a newline after SASL success and
then the new stream header with its XML declaration: the server must take
the restarted stream (it used to answer not-well-formed, "XML or text
declaration not at start of entity"). The points:

  before the first header, before <starttls/>, after the TLS handshake
  before the new header, after SASL success before the restarted header
  (in a write of its own and in the same write as the header, and in the
  same write as the last SASL element), between stanzas, before
  </stream:stream>.

And a peer that sends nothing but whitespace, megabytes of it, at those
points: the server keeps no byte of it (its memory stays flat), keeps
serving everyone else, and the pre-authentication timeout still ends a
stream that never gets further (counted from the connect, as for any
other byte).
"""

import base64
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hostile"))

from harness import bystanders, check, exchange, fixture, sync, time_limit  # noqa: E402
from xmpp import NS, Client, esc, find, timeout_value, to_xml  # noqa: E402
import scram  # noqa: E402
import server as server_mod  # noqa: E402
from hostile import Guard, MiB, mib, pace  # noqa: E402

PREAUTH = 3
CHUNK = 64 * 1024


@fixture
def server(scope):
    return scope.server()


def plain_auth(c, account, tail=""):
    """SASL PLAIN with `tail` in the same write as <auth/>; <success/>."""
    msg = base64.b64encode(scram.plain_message(account.user,
                                               account.password)).decode()
    c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>%s"
           % (NS["sasl"], msg, tail))
    c.expect("sasl:success")
    c.username = account.user


def connected(server, direct_tls, name):
    """A client that has sent nothing yet: plain TCP, or TLS at once."""
    c = Client("127.0.0.1", server.tls_port if direct_tls else server.port,
               server.domain, name=name)
    for hook in server_mod.CLIENT_CREATED:
        hook(c)
    return c.connect(tls=direct_tls)


def open_with(c, before):
    """`before`, then a stream header (XML declaration first) in a write
    of its own; the server's header and features come back."""
    c.reset_parser()
    if before:
        c.send(before)
    return c.open_stream()


def check_bind_offered(c):
    check(find(c.features, "bind:bind") is not None,
          "no <bind/> after SASL: %s" % to_xml(c.features))


def whitespace_login(server, account, direct_tls, mech):
    """A client that puts whitespace at every point up to binding."""
    name = "ws-%s" % ("direct" if direct_tls else "starttls")
    c = connected(server, direct_tls, name)
    c.send("\r\n  \t\n")
    c.open_stream()
    if not direct_tls:
        c.send("\n \n")
        c.send("<starttls xmlns='%s'/>" % NS["tls"])
        c.expect("tls:proceed")
        c.reset_parser()
        c._wrap_tls("ssl", None)
        open_with(c, "\n")
    check(find(c.features, "sasl:mechanisms") is not None,
          "no mechanisms: %s" % to_xml(c.features))
    c.send(" ")
    if mech == "PLAIN":
        # the newline in the write of <auth/>: the server has read it
        # before it restarts the stream
        plain_auth(c, account, tail="\n")
        open_with(c, "\n\n")
    else:
        c.auth_scram(account.user, account.password, mech, restart=False)
        c.reset_parser()
        # the newline and the header in one write, as go-sendxmpp does
        c.send("\n" + c.stream_header())
        c.expect_stream_header()
        c.expect_features()
    check_bind_offered(c)
    c.send("\n")
    c.bind("ws")
    c.ignore = ("presence",)
    return c


def whitespace_conversation(server, direct_tls, mech):
    with bystanders(server) as (b, _):
        a = whitespace_login(server, server.account("ws"), direct_tls, mech)
        # keepalives between stanzas, alone and around a stanza
        for keepalive in (" ", "\n", "\r\n", "\t \n  "):
            a.send(keepalive)
        a.send("\n<message to='%s' type='chat'><body>after keepalives</body>"
               "</message>\n \n" % esc(b.jid))
        b.expect("message", attrs={"from": a.jid}, child="body",
                 text="after keepalives")
        exchange(b, a)
        a.roundtrip()
        a.send("\n  \n</stream:stream>")
        a.expect_closed()


def test_whitespace_everywhere_over_starttls_with_scram(server):
    whitespace_conversation(server, direct_tls=False, mech="SCRAM-SHA-256")


def test_whitespace_everywhere_over_starttls_with_plain(server):
    whitespace_conversation(server, direct_tls=False, mech="PLAIN")


def test_whitespace_everywhere_over_direct_tls(server):
    whitespace_conversation(server, direct_tls=True, mech="SCRAM-SHA-1")


def test_newline_after_sasl_success_as_go_sendxmpp_sends_it(server):
    account = server.account("gosend")
    c = server.client()
    c.auth_scram(account.user, account.password, restart=False)
    c.reset_parser()
    c.send("\n")
    c.send("<?xml version='1.0'?><stream:stream to='localhost' "
           "xmlns='jabber:client' xmlns:stream='%s' version='1.0'>"
           % NS["stream"])
    c.expect_stream_header()
    c.expect_features()
    check_bind_offered(c)
    check(c.bind("gs") == account.jid + "/gs", "bound %s" % c.jid)


def test_text_before_the_header_is_still_an_error(server):
    c = connected(server, False, "ws-text")
    c.send("\n hello " + c.stream_header())
    c.expect_stream_error("not-well-formed")


def test_text_before_a_restarted_header_is_still_an_error(server):
    c = server.client()
    plain_auth(c, server.account("wsbad"))
    c.reset_parser()
    c.send("\nx" + c.stream_header())
    c.expect_stream_error("not-well-formed")


# -- megabytes of it

def flood(c, nbytes, guard):
    """nbytes of whitespace in CHUNK writes, the bystanders chatting on
    the way."""
    pattern = (" \n\t\r\n" * (CHUNK // 5 + 1))[:CHUNK]
    sent = 0
    while sent < nbytes:
        c.transport.send(pattern.encode(), timeout_value(10))
        sent += CHUNK
        if sent % (256 * 1024) == 0:
            guard.chat()
    return sent


@time_limit(120)
def test_megabytes_of_whitespace_keep_nothing(ctx):
    # The read rate limit (100 KB/s by default) counts whitespace like
    # any byte; lifted here so that megabytes go through in seconds.
    srv = ctx.server(options={"limits": {"c2s": {"rate": "64mb/s"}}})
    with Guard(srv) as g:
        account = srv.account("wsflood")
        peaks = []

        def measured(what, c):
            g.watch.reset_peak()
            flood(c, MiB, g)
            g.chat()
            peak = g.check_peak(MiB // 2, what)
            peaks.append((what, mib(peak - g.base_rss)))

        # before the first header (plain TCP), then a normal stream
        c = connected(srv, False, "flood")
        measured("before the first header", c)
        c.open_stream()
        c.starttls()
        # after SASL success, before the restarted header
        plain_auth(c, account)
        measured("before the restarted header", c)
        open_with(c, "\n")
        check_bind_offered(c)
        c.bind("flood")
        c.ignore = ("presence",)
        # between stanzas, four times over
        for i in range(4):
            measured("between stanzas (%d)" % (i + 1), c)
            c.send("<message to='%s' type='chat'><body>flood %d</body>"
                   "</message>" % (esc(g.b.jid), i))
            g.b.expect("message", attrs={"from": c.jid}, child="body",
                       text="flood %d" % i)
        exchange(g.b, c)
        sync(c, g.b)
        # the session's stream ends normally
        measured("before the close", c)
        c.end_stream()
        c.expect_closed()
    check(srv.running, "the server is gone")


@time_limit(60)
def test_whitespace_does_not_outlast_the_preauth_timeout(ctx):
    srv = ctx.server(options={"c2s_timeout": PREAUTH})
    with bystanders(srv):
        # whitespace only, before the first header
        a = connected(srv, False, "ws-header")
        # whitespace only, after SASL success: never the new header
        b = srv.client(name="ws-restart")
        plain_auth(b, srv.account("wsidle"))
        b.reset_parser()
        opened = {a: time.monotonic(), b: time.monotonic()}
        closed = {}
        deadline = time.monotonic() + timeout_value(PREAUTH + 6)
        for _ in pace(0.2):
            for c in (a, b):
                if c in closed:
                    continue
                c.send(" \n")
                if c.closed_within(0.01):
                    closed[c] = time.monotonic()
            if len(closed) == 2 or time.monotonic() > deadline:
                break
        for c in (a, b):
            check(c in closed, "%s: still open after %.1f s of whitespace"
                  % (c.name, time.monotonic() - opened[c]))
            lived = closed[c] - opened[c]
            check(lived <= PREAUTH + timeout_value(2.5),
                  "%s: closed after %.2f s, c2s_timeout is %d s"
                  % (c.name, lived, PREAUTH))
        check(srv.wait_log("stream error connection-timeout"),
              "no connection-timeout in the log")
