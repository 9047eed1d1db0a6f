"""An idle stream gives its XML parser back; the next stanza, even one
using a namespace prefix the client declared on its stream header, is
parsed as before."""

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
