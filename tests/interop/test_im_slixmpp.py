"""IM interop with slixmpp (python3-slixmpp 1.8.3): two users subscribe to
each other with slixmpp's own subscription handling (it approves requests
and subscribes back), see each other's presence across logout and login,
get a message sent while they were offline with its XEP-0203 delay stamp,
and use roster versioning (an unchanged roster answers an empty result).
Each client runs in its own process (tests/lib/xmpp_agent.py)."""

from agents import Agent
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "offline"])


def im_agent(server, account, resource):
    agent = Agent("slixmpp", server, account, resource=resource, im=True,
                  mech="SCRAM-SHA-256",
                  plugins=["xep_0203"], name="slixmpp:%s/%s"
                  % (account.user, resource))
    agent.ready()
    return agent


@time_limit(90)
def test_subscribe_presence_offline_message_and_roster_versioning(server):
    a, b = server.account("slixim-a"), server.account("slixim-b")
    alice = im_agent(server, a, "one")
    bob = im_agent(server, b, "one")

    alice.subscribe(b.jid)
    # slixmpp approves alice's request, asks back, alice's approves that:
    # each then sees the other's available presence
    alice.wait_presence(**{"from": bob.jid, "type": "available"})
    bob.wait_presence(**{"from": alice.jid, "type": "available"})
    for agent, contact in ((alice, b.jid), (bob, a.jid)):
        roster = agent.roster()
        check(roster["items"].get(contact) == "both",
              "%s roster %r" % (agent.name, roster))

    alice.close()                                # logout
    bob.wait_presence(**{"from": alice.jid, "type": "unavailable"})
    alice = im_agent(server, a, "two")           # login again
    bob.wait_presence(**{"from": alice.jid, "type": "available"})
    alice.wait_presence(**{"from": bob.jid, "type": "available"})

    bob.close()
    alice.wait_presence(**{"from": bob.jid, "type": "unavailable"})
    alice.send(b.jid, "while you were away")
    bob = im_agent(server, b, "two")
    msg = bob.wait_message(body="while you were away")
    check(msg["from"] == alice.jid and msg["type"] == "chat", msg)
    check(msg["delay"] and msg["delay_from"] == "localhost",
          "delay stamp %r from %r" % (msg["delay"], msg["delay_from"]))

    full = bob.roster(ver="")
    check(full["ver"] and not full["empty"], "a versioned roster %r" % full)
    check(full["items"] == {a.jid: "both"}, "items %r" % full["items"])
    unchanged = bob.roster(ver=full["ver"])
    check(unchanged["empty"], "unchanged roster: empty result, got %r" % unchanged)
