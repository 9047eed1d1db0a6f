"""Interop with nbxmpp (python3-nbxmpp 4.2.2, Gajim's network library),
run with its default settings (tests/lib/xmpp_agent.py --lib nbxmpp): only
the address (STARTTLS or direct TLS, XEP-0368) is set and the self-signed
certificate accepted. It picks SCRAM-SHA-512, -256 or -1, the first of
these offered (its -PLUS variants are off: no channel binding through
GLib), so SCRAM-SHA-256 here. The login must succeed at the first attempt,
with no SASL <failure/> on the wire, and a message must go both ways
between nbxmpp and slixmpp."""

from agents import Agent, failures_with_a_wrong_password, login_without_failures
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server()


def default_login(server, direct_tls):
    a, s = server.account("nbx"), server.account("nbxslix")
    agent = login_without_failures("nbxmpp", server, a, "SCRAM-SHA-256",
                                   direct_tls)
    jid = agent.jid
    check(jid == a.jid + "/default", "nbxmpp bound %s" % jid)

    slix = Agent("slixmpp", server, s, resource="slix")
    js = slix.ready()
    agent.send(js, "hello from nbxmpp")
    got = slix.wait_message(body="hello from nbxmpp")
    check(got["from"] == jid, got)
    slix.send(jid, "hello back, nbxmpp")
    got = agent.wait_message(body="hello back, nbxmpp")
    check(got["from"] == js, got)


@time_limit(60)
def test_default_login_over_starttls_fails_never(server):
    default_login(server, direct_tls=False)


@time_limit(60)
def test_default_login_over_direct_tls_fails_never(server):
    default_login(server, direct_tls=True)


@time_limit(60)
def test_wrong_password_failures_are_seen(server):
    # the counter above is live: a wrong password puts a <failure/> on the
    # wire, which the agent reports before nbxmpp gives up
    failures = failures_with_a_wrong_password("nbxmpp", server,
                                              server.account("nbxwrong"))
    check(len(failures) == 1 and "not-authorized" in failures[0]["reason"],
          "auth_failure events: %s" % failures)
