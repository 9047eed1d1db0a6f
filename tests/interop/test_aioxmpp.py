"""Interop with aioxmpp (python3-aioxmpp 0.13.3): log in over STARTTLS with
SCRAM (aiosasl picks the best non-PLUS SCRAM offered; no certificate
verification), send a message to a slixmpp account and receive its answers
at the full and at the bare JID. Each client runs in its own process.
With its default settings it logs in over STARTTLS and over direct TLS
(XEP-0368, XMPPOverTLSConnector) at the first attempt, with no SASL
<failure/> on the wire (#16)."""

from agents import Agent, failures_with_a_wrong_password, login_without_failures
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


def default_login(server, direct_tls):
    # aioxmpp as it comes (only the address and no certificate check set):
    # aiosasl takes the best non-PLUS SCRAM offered (it knows no -PLUS);
    # the first attempt must succeed, with no <failure/> on the way.
    login_without_failures("aioxmpp", server, server.account("aiodefault"),
                           "SCRAM-SHA-256", direct_tls)


@time_limit(60)
def test_default_login_over_starttls_fails_never(server):
    default_login(server, direct_tls=False)


@time_limit(60)
def test_default_login_over_direct_tls_fails_never(server):
    default_login(server, direct_tls=True)


@time_limit(60)
def test_wrong_password_failures_are_seen(server):
    # the counter above is live: a wrong password puts <failure/> on the
    # wire, which the agent reports (aioxmpp tries 3 times, then gives up)
    failures = failures_with_a_wrong_password("aioxmpp", server,
                                              server.account("aiowrong"))
    check(failures and "not-authorized" in failures[0]["reason"],
          "auth_failure events: %s" % failures)
