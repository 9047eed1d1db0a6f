"""Interop with aioxmpp (python3-aioxmpp 0.13.3): log in over STARTTLS with
SCRAM (aiosasl picks the best non-PLUS SCRAM offered; no certificate
verification), send a message to a slixmpp account and receive its answers
at the full and at the bare JID. Each client runs in its own process."""

from agents import Agent
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server()


def converse(server, direct_tls):
    a, s = server.account("aio"), server.account("slix")
    slix = Agent("slixmpp", server, s, resource="slix", mech="SCRAM-SHA-256")
    aio = Agent("aioxmpp", server, a, resource="aio", direct_tls=direct_tls)
    js, ja = slix.ready(), aio.ready()
    check(ja == a.jid + "/aio", "aioxmpp bound %s" % ja)

    aio.send(js, "hello from aioxmpp")
    got = slix.wait_message(body="hello from aioxmpp")
    check(got["from"] == ja, got)

    slix.send(got["from"], "hello back, full JID")
    got = aio.wait_message(body="hello back, full JID")
    check(got["from"] == js, got)

    slix.send(a.jid, "hello back, bare JID")
    got = aio.wait_message(body="hello back, bare JID")
    check(got["from"] == js, got)


@time_limit(60)
def test_aioxmpp_starttls_with_slixmpp(server):
    converse(server, direct_tls=False)


@time_limit(60)
def test_aioxmpp_direct_tls_with_slixmpp(server):
    converse(server, direct_tls=True)
