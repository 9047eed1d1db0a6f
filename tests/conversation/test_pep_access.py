"""mod_pep's access models beyond open and presence (XEP-0060 4.5): roster
(only contacts in the allowed roster groups read the node, as the roster
is now) and whitelist (only the account), and notifications that follow
the access model too: a contact whose client wants a node's +notify gets
its events only when the model lets it read the node."""

from harness import check, fixture
import caps
from im import befriend, im_login, roster_set
from pubsub import EVENT, event_item_ids, fails, item_ids, items, publish
from xmpp import find

DIARY = "urn:example:diary"
SECRET = "urn:example:secret"


def entry(text):
    return "<entry xmlns='%s'>%s</entry>" % (DIARY, text)


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco", "pep"])


def put_in_group(c, contact, group):
    iq_id = roster_set(c, contact, groups=[group])
    c.wait_for("iq", attrs={"id": iq_id, "type": "result"})


def no_message(c):
    """Everything sent to c before now has arrived: no <message/> among it."""
    c.roundtrip()
    got = [m for m in c.queue if getattr(m, "tag", "").endswith("}message")]
    check(not got, "%s got %s" % (c.name, got))


def three(server, prefix):
    alice, bob, carol = (im_login(server, prefix + n) for n in ("alice", "bob", "carol"))
    befriend(alice, bob)
    befriend(alice, carol)
    for c in (alice, bob, carol):
        c.ignore = ("presence",)
    put_in_group(alice, bob.bare, "Friends")
    put_in_group(alice, carol.bare, "Work")
    return alice, bob, carol


ROSTER_FRIENDS = {"pubsub#access_model": "roster", "pubsub#roster_groups_allowed": ["Friends"]}


def test_roster_access_model(server):
    alice, bob, carol = three(server, "r")
    publish(alice, DIARY, "today", entry("sunny"), options=ROSTER_FRIENDS)
    check(item_ids(items(bob, DIARY, to=alice.account.jid)) == ["today"], "a friend reads")
    fails(carol, "get", "<items node='%s'/>" % DIARY, "not-authorized", "not-in-roster-group",
          to=alice.account.jid)
    dave = server.login("rdave")
    fails(dave, "get", "<items node='%s'/>" % DIARY, "not-authorized", "not-in-roster-group",
          to=alice.account.jid)
    # the roster as it is now decides: carol becomes a friend, bob not
    put_in_group(alice, carol.bare, "Friends")
    put_in_group(alice, bob.bare, "Work")
    check(item_ids(items(carol, DIARY, to=alice.account.jid)) == ["today"], "carol now")
    fails(bob, "get", "<items node='%s'/>" % DIARY, "not-authorized", "not-in-roster-group",
          to=alice.account.jid)


def test_notifications_follow_the_access_model(server):
    alice, bob, carol = three(server, "n")
    wants = caps.notify(DIARY, SECRET)
    caps.presence(bob, wants)
    caps.answer(bob, wants)
    caps.presence(carol, wants)      # the same caps: known already
    carol.roundtrip()
    publish(alice, DIARY, "one", entry("for friends"), options=ROSTER_FRIENDS)
    msg = bob.wait_for("message", child=EVENT)
    check(event_item_ids(msg) == ["one"], "bob's event")
    no_message(carol)    # +notify, subscribed, but not in the group
    # whitelist: the account alone (its contacts' +notify notwithstanding)
    publish(alice, SECRET, "s", "<s xmlns='%s'/>" % SECRET,
            options={"pubsub#access_model": "whitelist"})
    no_message(bob)
    no_message(carol)
    fails(bob, "get", "<items node='%s'/>" % SECRET, "not-allowed", "closed-node",
          to=alice.account.jid)
    # a friend who comes online later gets the last item; carol does not
    bob.close()
    bob2 = server.login(bob.account, resource="again")
    caps.presence(bob2, wants)
    msg = bob2.wait_for("message", child=EVENT)
    check(event_item_ids(msg) == ["one"] and find(msg, "{urn:xmpp:delay}delay") is not None,
          "the last item")
