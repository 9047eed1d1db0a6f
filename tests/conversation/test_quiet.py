"""An idle stream gives its XML parser back; the next stanza, even one
using a namespace prefix the client declared on its stream header, is
parsed as before."""

import re
import time

from harness import exchange, time_limit
from xmpp import NS, esc


@time_limit(60)
def test_stanzas_after_the_parser_was_released(ctx):
    srv = ctx.server(options={"c2s_parser_release_after": 1})
    a = srv.account("sleepy")
    c = srv.client(tls="starttls")
    c.auth_scram(a.user, a.password, restart=False)
    c.reset_parser()
    c.send(c.stream_header(extra="xmlns:x='urn:example:prefixed'"))
    c.expect_stream_header()
    c.expect_features()
    c.bind("r")
    other = srv.login("awake")
    exchange(c, other)
    srv.wait_log(r"sleepy.*quiet, parser released", timeout=20)
    # a prefixed payload from the original stream header still parses
    c.send("<message to='%s' type='chat' id='pfx'><body>again</body>"
           "<x:thing/></message>" % esc(other.jid))
    other.expect("message", attrs={"id": "pfx"},
                 child="{urn:example:prefixed}thing")
    exchange(other, c)
    exchange(c, other)


@time_limit(60)
def test_stream_end_after_the_parser_was_released(ctx):
    """The client's </stream:stream> matches the header it sent, even when
    the parser that read that header is gone: a clean close, no error."""
    srv = ctx.server(options={"c2s_parser_release_after": 1})
    c = srv.login("closer")
    srv.wait_log(r"closer.*quiet, parser released", timeout=20)
    c.end_stream()
    c.expect_closed()


def _released(srv, user, times, timeout=20):
    """Waits until user's stream has given its parser back times times."""
    pattern = re.compile(r"%s@\S+: quiet, parser released" % re.escape(user))
    deadline = time.monotonic() + timeout
    while len(pattern.findall(srv.log_text())) < times:
        assert time.monotonic() < deadline, \
            "%s's parser was not released %d times" % (user, times)
        time.sleep(0.1)


def _prefixed_client(srv, a, ns):
    c = srv.client(tls="starttls")
    c.auth_scram(a.user, a.password, restart=False)
    c.reset_parser()
    c.send(c.stream_header(extra="xmlns:x='%s'" % ns))
    c.expect_stream_header()
    c.expect_features()
    c.bind("r")
    return c


@time_limit(90)
def test_quiet_streams_keep_their_own_prefixes(ctx):
    """Quiet streams give their parsers to a shared cache and take one
    back with their next bytes: each stream's stanzas are still read with
    the prefixes its own header declared, whether the parser it gets was
    another stream's (same header) or not (a different one)."""
    srv = ctx.server(options={"c2s_parser_release_after": 1})
    reader = srv.login("reader")
    users = [("first", "urn:example:a"), ("second", "urn:example:b"),
             ("third", "urn:example:a")]
    clients = []
    for prefix, ns in users:
        a = srv.account(prefix)
        clients.append((a.user, ns, _prefixed_client(srv, a, ns)))
    for rounds in (1, 2):
        for user, ns, c in clients:
            _released(srv, user, rounds)
            mid = "%s-%d" % (user, rounds)
            c.send("<message to='%s' type='chat' id='%s'><body>hi</body>"
                   "<x:thing/></message>" % (esc(reader.jid), mid))
            reader.expect("message", attrs={"id": mid},
                          child="{%s}thing" % ns)
    # a stanza split across reads keeps its parser between them
    user, ns, c = clients[1]
    _released(srv, user, 3)
    c.send("<message to='%s' type='chat' id='split'><body>one" % esc(reader.jid))
    time.sleep(2.5)
    c.send(" two</body><x:thing/></message>")
    reader.expect("message", attrs={"id": "split"}, child="{%s}thing" % ns)
    c.end_stream()
    c.expect_closed()
