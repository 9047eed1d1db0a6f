"""Hostile server-to-server peers (RFC 6120 4.9.3, XEP-0220): each gets
its stream error, and two local users chatting meanwhile notice nothing."""

from harness import check, fixture, sync
import peers

DB = "{jabber:server:dialback}"


def bystanders(srv):
    a = srv.login("by")
    b = srv.login("stander")
    return a, b


def still_chatting(a, b):
    for n in range(3):
        a.send("<message to='%s' type='chat'><body>still %d</body></message>"
               % (b.jid, n))
        b.expect("message", attrs={"from": a.jid}, child="body", text="still %d" % n)
    sync(b, a)


def dialed_back(srv):
    """A raw evil.example stream to lax.example, authenticated by dialback
    (the test's authoritative server says the key is valid)."""
    raw = peers.RawServer(srv, "evil.example")
    raw.open_stream(to="lax.example")
    raw.send("<db:result from='evil.example' to='lax.example'>%s</db:result>"
             % ("1" * 64))
    raw.expect(DB + "result", attrs={"type": "valid", "from": "lax.example",
                                     "to": "evil.example"}, timeout=15)
    return raw


@fixture
def pair(scope):
    return peers.starling_pair(scope, "a.example", "b.example")


@fixture
def lax(scope):
    """A server that takes unencrypted s2s, with evil.example's
    authoritative server played by the test."""
    auth = peers.FakeAuthoritative("evil.example")
    scope.cleanup(auth.close)
    srv = scope.server(hosts=("lax.example",), options={
        "s2s_require_encryption": False,
        "s2s_static_hosts": {"evil.example": "127.0.0.1:%d" % auth.port}})
    return srv, auth


def test_a_stanza_before_authentication_is_not_authorized(pair):
    a, _ = pair
    x, y = bystanders(a)
    raw = peers.RawServer(a, "evil.example")
    raw.open_stream(to="a.example")
    raw.send("<message from='m@evil.example' to='%s'><body>hi</body></message>" % x.jid)
    raw.expect_stream_error("not-authorized")
    still_chatting(x, y)


def test_an_unknown_to_host_is_host_unknown(pair):
    a, _ = pair
    x, y = bystanders(a)
    raw = peers.RawServer(a, "evil.example")
    raw.send(raw.stream_header(to="nowhere.example"))
    raw.expect_stream_error("host-unknown")
    still_chatting(x, y)


def test_a_bad_dialback_key_is_refused(pair):
    a, b = pair
    x, y = bystanders(a)
    raw = peers.RawServer(a, "b.example")      # claims to be b.example
    raw.open_stream(to="a.example")
    raw.starttls()
    raw.send("<db:result from='b.example' to='a.example'>%s</db:result>" % ("0" * 64))
    raw.expect(DB + "result", attrs={"type": "invalid", "from": "a.example",
                                     "to": "b.example"}, timeout=15)
    raw.expect_stream_error("not-authorized")
    still_chatting(x, y)
    # b.example itself still federates with a.example
    u = b.login("real")
    u.send("<message to='%s' type='chat'><body>from b</body></message>" % x.jid)
    x.expect("message", attrs={"from": u.jid}, child="body", text="from b", timeout=15)


def test_dialback_before_tls_is_refused_where_tls_is_required(pair):
    a, _ = pair
    raw = peers.RawServer(a, "b.example")
    features = raw.open_stream(to="a.example")
    check(features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is not None,
          "STARTTLS offered")
    raw.send("<db:result from='b.example' to='a.example'>%s</db:result>" % ("0" * 64))
    raw.expect_stream_error("policy-violation")


def test_a_from_outside_the_authenticated_domain_is_invalid_from(lax):
    srv, auth = lax
    x, y = bystanders(srv)
    raw = dialed_back(srv)
    check(raw.stream_id in auth.verified, "the authoritative server was asked")
    # its own domain is fine ...
    raw.send("<message from='m@evil.example' to='%s' type='chat'>"
             "<body>authenticated</body></message>" % x.jid)
    x.expect("message", attrs={"from": "m@evil.example"}, child="body",
             text="authenticated")
    # ... another one is not
    raw.send("<message from='m@other.example' to='%s' type='chat'>"
             "<body>forged</body></message>" % x.jid)
    raw.expect_stream_error("invalid-from")
    still_chatting(x, y)


def test_a_stanza_to_a_host_that_is_not_ours_is_host_unknown(lax):
    srv, auth = lax
    x, y = bystanders(srv)
    raw = dialed_back(srv)
    raw.send("<message from='m@evil.example' to='u@elsewhere.example'>"
             "<body>relay?</body></message>")
    raw.expect_stream_error("host-unknown")
    still_chatting(x, y)


def test_a_stanza_without_addresses_is_improper_addressing(lax):
    srv, auth = lax
    raw = dialed_back(srv)
    raw.send("<message><body>to whom?</body></message>")
    raw.expect_stream_error("improper-addressing")
