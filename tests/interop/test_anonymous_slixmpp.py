"""Interop: slixmpp (python3-slixmpp 1.8.3) logs in with SASL ANONYMOUS on
a host with authentication = "anonymous" (a JID without a localpart makes
slixmpp choose ANONYMOUS), over STARTTLS and direct TLS, gets a random JID,
and two such clients chat; their temporary accounts are gone after."""

import time

from agents import Agent
from harness import check, fixture, time_limit


class Anonymous:
    """What Agent needs of an account: the domain alone, no password."""
    user = "anonymous"
    password = ""
    jid = "localhost"


@fixture
def server(scope):
    return scope.server(host_options={"localhost": {"authentication": "anonymous"}})


def listed(server):
    return server.ctl("list", "localhost").stdout.split()


def pair(server, direct_tls):
    alice = Agent("slixmpp", server, Anonymous(), direct_tls=direct_tls, name="anon-a")
    bob = Agent("slixmpp", server, Anonymous(), direct_tls=direct_tls, name="anon-b")
    ja, jb = alice.ready(), bob.ready()
    for agent in (alice, bob):
        used = agent.seen[-1].get("mech")
        check(used == "ANONYMOUS", "%s logged in with %s" % (agent.name, used))
    check(ja.split("@")[1].startswith("localhost/") and jb.split("@")[1].startswith("localhost/")
          and ja.split("/")[0] != jb.split("/")[0], "bound %s and %s" % (ja, jb))
    bare_a, bare_b = ja.split("/")[0], jb.split("/")[0]
    names = listed(server)
    check(bare_a in names and bare_b in names, "list: %s" % names)

    alice.send(jb, "hello anonymous bob")
    got = bob.wait_message(body="hello anonymous bob")
    check(got["from"] == ja, got)
    bob.send(bare_a, "hello anonymous alice")
    got = alice.wait_message(body="hello anonymous alice")
    check(got["from"] == jb, got)

    alice.close()
    bob.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = listed(server)
        if bare_a not in names and bare_b not in names:
            return
        time.sleep(0.1)
    raise AssertionError("temporary accounts still listed: %s" % names)


@time_limit(60)
def test_starttls_anonymous_pair(server):
    pair(server, direct_tls=False)


@time_limit(60)
def test_direct_tls_anonymous_pair(server):
    pair(server, direct_tls=True)
