"""mod_ping: XEP-0199 pings answered by the server (its domain, no 'to',
an account's bare JID on the account's behalf) and the server's pings of
idle clients, which end silent sessions with connection-timeout."""

import time

from harness import fixture, time_limit
from seed import ROSTER_SEED, roster_item
from xmpp import esc, new_id

MODULES = ["roster", "presence", "message", "iq", "ping"]


@fixture
def server(scope):
    return scope.server(modules=MODULES,
                        plugins={"test_roster_seed": ROSTER_SEED})


def ping(client, to=None):
    iq_id = new_id("ping")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='get' id='%s'%s><ping xmlns='urn:xmpp:ping'/></iq>"
                % (iq_id, to_attr))
    return iq_id


def test_ping_the_server(server):
    c = server.login("pinger")
    iq_id = ping(c, server.domain)
    c.expect("iq", attrs={"id": iq_id, "type": "result",
                          "from": server.domain})


def test_ping_without_to(server):
    c = server.login("noto")
    iq_id = ping(c)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})


def test_ping_own_bare_jid(server):
    c = server.login("ownbare")
    iq_id = ping(c, c.bare)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})


def test_ping_bare_jid_of_a_contact_sharing_presence(server):
    owner = server.login("pingee")
    friend = server.login("pingfriend")
    roster_item(owner, friend.bare, "both")
    iq_id = ping(friend, owner.bare)
    friend.expect("iq", attrs={"id": iq_id, "type": "result",
                               "from": owner.bare})


def test_ping_bare_jid_of_a_stranger(server):
    owner = server.login("hidden")
    stranger = server.login("pingstranger")
    iq_id = ping(stranger, owner.bare)
    stranger.expect_error("iq", "service-unavailable", type="cancel",
                          attrs={"id": iq_id})


def test_ping_bare_jid_of_nobody(server):
    c = server.login("pingnobody")
    iq_id = ping(c, "nobody-at-all@" + server.domain)
    c.expect_error("iq", "service-unavailable", attrs={"id": iq_id})


def test_ping_a_full_jid_reaches_the_client(server):
    a = server.login("pinga")
    b = server.login("pingb")
    iq_id = ping(a, b.jid)
    b.expect("iq", attrs={"id": iq_id, "type": "get", "from": a.jid},
             child="ping:ping")
    b.send("<iq type='result' id='%s' to='%s'/>" % (iq_id, esc(a.jid)))
    a.expect("iq", attrs={"id": iq_id, "type": "result", "from": b.jid})


@fixture
def idle_server(scope):
    return scope.server(modules=MODULES,
                        options={"ping_idle_after": 0.6, "ping_timeout": 1.2})


def expect_server_ping(client, timeout=5):
    return client.expect("iq", attrs={"type": "get", "from": "localhost",
                                      "to": client.jid},
                         child="ping:ping", timeout=timeout,
                         capture={"ping_id": "@id"})


@time_limit(40)
def test_idle_client_that_answers_stays(idle_server):
    c = idle_server.login("answers")
    for _ in range(2):
        expect_server_ping(c)
        c.send("<iq type='result' id='%s' to='localhost'/>"
               % esc(c.vars["ping_id"]))
    iq_id = ping(c)                        # still served
    c.expect("iq", attrs={"id": iq_id, "type": "result"})


@time_limit(40)
def test_idle_client_that_answers_with_an_error_stays(idle_server):
    c = idle_server.login("errs")
    expect_server_ping(c)
    c.send("<iq type='error' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/>"
           "<error type='cancel'><service-unavailable "
           "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
           % esc(c.vars["ping_id"]))
    expect_server_ping(c)                  # the next idle period: pinged again
    c.send("<iq type='result' id='%s' to='localhost'/>"
           % esc(c.vars["ping_id"]))
    iq_id = ping(c)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})


@time_limit(40)
def test_silent_client_is_dropped(idle_server):
    c = idle_server.login("silent")
    expect_server_ping(c)
    # One ping per idle period: the next thing after it is the stream error.
    c.expect("stream:error", child="streams:connection-timeout", timeout=10)
    c.expect_closed()


@time_limit(40)
def test_busy_client_is_not_pinged(idle_server):
    c = idle_server.login("busy")
    # A client that speaks more often than ping_idle_after (0.6 s) is never
    # pinged: the next element after each of its pings is the answer.
    # (The pause only paces the client; what is asserted is the order.)
    for _ in range(8):
        iq_id = ping(c)
        c.expect("iq", attrs={"id": iq_id, "type": "result"})
        time.sleep(0.25)
    iq_id = ping(c)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
