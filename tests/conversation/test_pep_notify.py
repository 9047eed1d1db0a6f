"""mod_pep: who gets PEP notifications (XEP-0163 sections 4 and 6): the
account's resources and its contacts' resources whose capabilities
(XEP-0115) list <node>+notify, learnt once per verification string for
every account; the last item when a contact comes online and when the
account's own resource does; nothing for resources without +notify or
without a presence subscription."""

from harness import check, fixture
import caps
from im import befriend, im_login
from pubsub import EVENT, event_item_ids, publish
from xmpp import find

TUNE = "http://jabber.org/protocol/tune"
MOOD = "http://jabber.org/protocol/mood"


def tune(title):
    return "<tune xmlns='%s'><title>%s</title></tune>" % (TUNE, title)


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "disco", "pep"])


def no_message(c):
    """Everything sent to c before now has arrived: no <message/> among it."""
    c.roundtrip()
    got = [m for m in c.queue if getattr(m, "tag", "").endswith("}message")]
    check(not got, "%s got %d messages" % (c.name, len(got)))


def test_contacts_with_notify_get_events_others_do_not(server):
    alice, bob, carol = (im_login(server, n) for n in ("nalice", "nbob", "ncarol"))
    befriend(alice, bob)
    befriend(alice, carol)
    for c in (alice, bob, carol):
        c.ignore = ("presence",)
    wants = caps.notify(TUNE)
    caps.presence(bob, wants)
    caps.answer(bob, wants)
    caps.presence(carol, caps.notify(MOOD))
    caps.answer(carol, caps.notify(MOOD))
    dave = server.login("ndave", presence=True)    # no subscription at all
    publish(alice, TUNE, "current", tune("Yesterday"))
    msg = bob.wait_for("message", child=EVENT)
    check(msg.get("from") == alice.account.jid and event_item_ids(msg) == ["current"],
          "bob's event")
    no_message(carol)    # no +notify for tune
    no_message(dave)     # no presence subscription


def test_last_item_when_a_contact_comes_online(server):
    alice, bob = im_login(server, "lalice"), im_login(server, "lbob")
    befriend(alice, bob)
    publish(alice, TUNE, "current", tune("Let It Be"))
    bob.close()
    wants = caps.notify(TUNE) + ["urn:xmpp:test:later"]   # a client not seen yet
    bob = server.login(bob.account, resource="later")
    caps.presence(bob, wants)
    caps.answer(bob, wants)   # a new verification string: asked once
    msg = bob.wait_for("message", child=EVENT)
    check(event_item_ids(msg) == ["current"], "the last item")
    check(find(msg, "{urn:xmpp:delay}delay") is not None, "marked as delayed")


def test_own_resources_get_the_last_item_at_login(server):
    alice = server.login("oalice")
    publish(alice, MOOD, "current", "<mood xmlns='%s'><happy/></mood>" % MOOD)
    wants = caps.notify(MOOD) + ["urn:xmpp:test:tablet"]
    other = server.login(alice.account, resource="tablet")
    caps.presence(other, wants)
    caps.answer(other, wants)
    msg = other.wait_for("message", child=EVENT)
    check(msg.get("from") == alice.account.jid and event_item_ids(msg) == ["current"], "own last item")


def test_caps_are_asked_once_for_every_account(server):
    wants = caps.notify(TUNE, MOOD, "urn:xmpp:test:once")
    first = server.login("cfirst")
    caps.presence(first, wants)
    caps.answer(first, wants)
    publish(first, TUNE, "current", tune("Help"))
    first.wait_for("message", child=EVENT)
    # another account with the same client: known already, no query
    second = server.login("csecond")
    caps.presence(second, wants)
    publish(second, TUNE, "current", tune("Something"))
    msg = second.expect("message", child=EVENT)   # not an iq query first
    check(event_item_ids(msg) == ["current"], "notified without being asked")


def test_a_wrong_verification_string_is_not_trusted(server):
    liar = server.login("liar")
    real = caps.notify(TUNE)
    liar.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
              % (caps.NS_CAPS, caps.NODE, caps.ver(["urn:xmpp:other"])))
    caps.answer(liar, real)        # features that do not match the string
    honest = server.login("honest")
    honest.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
                % (caps.NS_CAPS, caps.NODE, caps.ver(["urn:xmpp:other"])))
    node = caps.answer(honest, ["urn:xmpp:other"])   # asked again: not cached
    check(node.endswith("#" + caps.ver(["urn:xmpp:other"])), node)
