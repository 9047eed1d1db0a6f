"""Resource binding (RFC 6120 section 7) and the legacy session iq."""

from harness import check, exchange, fixture
from xmpp import NS, esc, text_of


@fixture
def server(scope):
    return scope.server()


def test_bind_with_resource(server):
    a = server.account("bindres")
    c = server.login(a, resource="laptop")
    check(c.jid == a.jid + "/laptop", "bound %s" % c.jid)


def test_bind_without_resource_gets_one_from_the_server(server):
    a = server.account("bindgen")
    c1 = server.login(a)
    c2 = server.login(a)
    for c in (c1, c2):
        bare, _, resource = c.jid.partition("/")
        check(bare == a.jid and resource, "bound %s" % c.jid)
    check(c1.jid != c2.jid, "two sessions got the same JID %s" % c1.jid)


def test_bind_unicode_resource(server):
    a = server.account("bindutf")
    c = server.login(a, resource="Wohnzimmer-\u00fc\u2603")
    check(c.jid == a.jid + "/Wohnzimmer-\u00fc\u2603", "bound %r" % c.jid)


def test_resource_conflict_replaces_the_old_session(server):
    a = server.account("conflict")
    other = server.login("peer", resource="p")
    old = server.login(a, resource="phone", name="old")
    exchange(other, old)
    new = server.login(a, resource="phone", name="new")
    check(new.jid == a.jid + "/phone", "new session bound %s" % new.jid)
    old.expect_stream_error("conflict")
    # the JID now reaches the new session
    exchange(other, new)
    exchange(new, other)


def test_legacy_session_iq_is_answered(server):
    c = server.login("session")
    c.session()


def test_bind_answer_carries_the_request_id(server):
    a = server.account("bindid")
    c = server.client()
    c.auth_scram(a.user, a.password)
    c.send("<iq type='set' id='my-bind-1'><bind xmlns='%s'><resource>%s"
           "</resource></bind></iq>" % (NS["bind"], esc("desk")))
    el = c.expect("iq", attrs={"type": "result", "id": "my-bind-1"},
                  child="bind:bind/bind:jid")
    check(text_of(el, "bind:bind/bind:jid") == a.jid + "/desk",
          text_of(el, "bind:bind/bind:jid"))
