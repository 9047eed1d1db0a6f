"""Interop: XEP-0191 blocking with slixmpp's xep_0191 plugin. A blocked
contact's messages are not delivered (the contact gets
service-unavailable), messages to a blocked contact are refused with
<blocked/>, and after unblocking messages flow again."""

from agents import Agent
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "disco", "blocklist"])


@time_limit(90)
def test_blocked_contact_messages_are_not_delivered(server):
    a, b, c = (server.account("slixblock"), server.account("slixpest"),
               server.account("slixother"))
    alice = Agent("slixmpp", server, a, resource="alice", plugins=["xep_0191"])
    bob = Agent("slixmpp", server, b, resource="bob")
    carol = Agent("slixmpp", server, c, resource="carol")
    alice.ready(), bob.ready(), carol.ready()

    got = alice.block([b.jid])
    check(got["ok"], "block failed: %s" % got)
    check(alice.blocklist() == [b.jid], "blocklist %s" % alice.blocklist())

    bob.send(a.jid, "you should not see this", id="blocked-1")
    err = bob.wait("message_error", id="blocked-1")
    check(err["condition"] == "service-unavailable", err)

    carol.send(alice.jid, "marker after the blocked message")
    alice.wait_message(body="marker after the blocked message")
    check(not any(ev.get("body") == "you should not see this"
                  for ev in alice.seen), "alice got the blocked message")

    alice.send(b.jid, "can you hear me", id="out-1")
    err = alice.wait("message_error", id="out-1")
    check(err["condition"] == "not-acceptable"
          and err["app_condition"] == "{urn:xmpp:blocking:errors}blocked", err)
    check(not any(ev.get("body") == "can you hear me" for ev in bob.seen),
          "bob got a message from alice")

    got = alice.unblock([b.jid])
    check(got["ok"], "unblock failed: %s" % got)
    check(alice.blocklist() == [], "blocklist not empty")
    bob.send(a.jid, "hello again")
    alice.wait_message(body="hello again")
