"""Interop with slixmpp (python3-slixmpp 1.8.3): two accounts log in with
SCRAM-SHA-1 and SCRAM-SHA-256 (forced with sasl_mech), over STARTTLS and
over direct TLS (XEP-0368), and exchange messages to full and bare JIDs.
Each client runs in its own process (tests/lib/xmpp_agent.py)."""

from agents import Agent, login_without_failures
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server()


def pair(server, direct_tls):
    a, b = server.account("slixa"), server.account("slixb")
    alice = Agent("slixmpp", server, a, resource="alice", mech="SCRAM-SHA-1",
                  direct_tls=direct_tls)
    bob = Agent("slixmpp", server, b, resource="bob", mech="SCRAM-SHA-256",
                direct_tls=direct_tls)
    ja, jb = alice.ready(), bob.ready()
    check(ja == a.jid + "/alice" and jb == b.jid + "/bob",
          "bound %s and %s" % (ja, jb))
    for agent, mech in ((alice, "SCRAM-SHA-1"), (bob, "SCRAM-SHA-256")):
        used = agent.seen[-1].get("mech")
        check(used == mech, "%s logged in with %s" % (agent.name, used))

    alice.send(jb, "hello bob, full JID")
    got = bob.wait_message(body="hello bob, full JID")
    check(got["from"] == ja and got["type"] == "chat", got)

    bob.send(a.jid, "hello alice, bare JID")
    got = alice.wait_message(body="hello alice, bare JID")
    check(got["from"] == jb and got["to"] in (a.jid, ja), got)

    alice.send(b.jid, "and back, bare JID")
    got = bob.wait_message(body="and back, bare JID")
    check(got["from"] == ja, got)


@time_limit(60)
def test_starttls_scram_sha1_and_sha256(server):
    pair(server, direct_tls=False)


@time_limit(60)
def test_direct_tls_scram_sha1_and_sha256(server):
    pair(server, direct_tls=True)


def default_login(server, direct_tls):
    # slixmpp as it comes: it picks the strongest mechanism offered
    # (SCRAM-SHA-256-PLUS) and binds with tls-unique, on TLS 1.3 too; the
    # first attempt must succeed, with no <failure/> on the way.
    login_without_failures("slixmpp", server, server.account("slixdefault"),
                           "SCRAM-SHA-256-PLUS", direct_tls)


@time_limit(60)
def test_default_login_over_starttls_fails_never(server):
    default_login(server, direct_tls=False)


@time_limit(60)
def test_default_login_over_direct_tls_fails_never(server):
    default_login(server, direct_tls=True)
