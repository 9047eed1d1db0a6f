"""Interop with nbxmpp (python3-nbxmpp 4.2.2, Gajim's network library),
run with its default settings (tests/lib/xmpp_agent.py --lib nbxmpp): only
the address (STARTTLS or direct TLS, XEP-0368) is set and the self-signed
certificate accepted. It picks SCRAM-SHA-512, -256 or -1, the first of
these offered (its -PLUS variants are off: no channel binding through
GLib), so SCRAM-SHA-256 here. The login must succeed at the first attempt,
with no SASL <failure/> on the wire, and a message must go both ways
between nbxmpp and slixmpp."""

from agents import Agent, AgentError
from server import Account
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server()


def default_login(server, direct_tls):
    a, s = server.account("nbx"), server.account("nbxslix")
    agent = Agent("nbxmpp", server, a, resource="gajim", direct_tls=direct_tls)
    jid = agent.ready()
    check(jid == a.jid + "/gajim", "nbxmpp bound %s" % jid)
    failures = [e for e in agent.seen if e["event"] == "auth_failure"]
    check(not failures, "SASL failures before the login: %s" % failures)
    used = agent.seen[-1].get("mech")
    check(used == "SCRAM-SHA-256", "logged in with %s" % used)

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
    a = server.account("nbxwrong")
    bad = Account(a.user, a.password + "x", a.host)
    agent = Agent("nbxmpp", server, bad, resource="wrong")
    try:
        agent.ready()
    except AgentError:
        pass
    else:
        check(False, "logged in with a wrong password")
    failures = [e for e in agent.seen if e["event"] == "auth_failure"]
    check(len(failures) == 1 and "not-authorized" in failures[0]["reason"],
          "auth_failure events: %s" % failures)
