"""A cluster with slixmpp (python3-slixmpp 1.8.3, issue #23): two users,
each a slixmpp client on another node of one domain (127.0.0.2 and
127.0.0.3, Redis and PostgreSQL private, tests/lib/cluster.py),
subscribe with slixmpp's own handling, see each other's presence, chat
both ways, and a message kept offline on one node is delivered by the
other. Each client runs in its own process (tests/lib/xmpp_agent.py)."""

from agents import Agent
from cluster import Cluster, linked, wait_seen
from harness import check, time_limit

MODULES = ["roster", "presence", "message", "iq", "offline"]


def im_agent(node, account, resource):
    agent = Agent("slixmpp", node, account, resource=resource, im=True,
                  mech="SCRAM-SHA-256", plugins=["xep_0203"],
                  name="slixmpp:%s/%s@%s" % (account.user, resource, node.name))
    agent.ready()
    return agent


@time_limit(120)
def test_users_on_two_nodes(ctx):
    cl = Cluster(ctx)
    a = cl.node("a", "127.0.0.2", modules=MODULES)
    b = cl.node("b", "127.0.0.3", modules=MODULES)
    linked(a, b)
    alice_acct, bob_acct = a.account("slixcl-a"), a.account("slixcl-b")
    alice = im_agent(a, alice_acct, "one")
    bob = im_agent(b, bob_acct, "one")
    # each node knows the other's session (a request to bob before node
    # a heard of his would wait, stored, for his next login)
    wait_seen([a, b], [alice.jid, bob.jid])

    alice.subscribe(bob_acct.jid)
    alice.wait_presence(**{"from": bob.jid, "type": "available"})
    bob.wait_presence(**{"from": alice.jid, "type": "available"})
    for agent, contact in ((alice, bob_acct.jid), (bob, alice_acct.jid)):
        roster = agent.roster()
        check(roster["items"].get(contact) == "both",
              "%s roster %r" % (agent.name, roster))

    alice.send(bob.jid, "hello bob on node b")
    got = bob.wait_message(body="hello bob on node b")
    check(got["from"] == alice.jid and got["type"] == "chat", got)
    bob.send(alice_acct.jid, "hello alice on node a")
    got = alice.wait_message(body="hello alice on node a")
    check(got["from"] == bob.jid, got)

    # bob logs out of node b: alice sees it; her message is kept offline
    # and delivered when bob logs in on node a
    bob.close()
    alice.wait_presence(**{"from": bob.jid, "type": "unavailable"})
    alice.send(bob_acct.jid, "while you were away")
    bob = im_agent(a, bob_acct, "two")
    msg = bob.wait_message(body="while you were away")
    check(msg["from"] == alice.jid and msg["delay"], msg)
    alice.wait_presence(**{"from": bob.jid, "type": "available"})
