"""mod_pep with remote contacts: two Starlings (a.example, b.example) over
server-to-server streams. alice@a.example's PEP reaches bob@b.example:
his caps are asked over s2s (to his full JID, from a.example), he gets
alice's events and her last item when he comes online, and reads her
nodes as her presence subscriber; a stranger on b.example may not."""

from harness import check, fixture
import caps
from im import befriend, im_login
from pubsub import EVENT, event_item_ids, fails, item_ids, items, publish

TUNE = "http://jabber.org/protocol/tune"
MODULES = ["roster", "presence", "message", "iq", "disco", "pep"]
T = 15


@fixture
def pair(scope):
    import peers
    return peers.starling_pair(scope, "a.example", "b.example", modules=MODULES)


def tune(title):
    return "<tune xmlns='%s'><title>%s</title></tune>" % (TUNE, title)


def show_caps(c, features):
    """c's presence with caps; each server asks once: its own (for c's
    account) and the contact's (over s2s). Answers both."""
    caps.presence(c, features)
    asked = {caps_query_from(c, features), caps_query_from(c, features)}
    return asked


def caps_query_from(c, features):
    iq = c.wait_for("iq", attrs={"type": "get"},
                    child="{%s}query" % caps.NS_INFO, timeout=T)
    c.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>"
           "<identity category='client' type='pc' name='Test'/>%s</query></iq>"
           % (iq.get("id"), iq.get("from"), caps.NS_INFO,
              iq.find("{%s}query" % caps.NS_INFO).get("node"),
              "".join("<feature var='%s'/>" % f for f in sorted(set(features)))))
    return iq.get("from")


def test_remote_contact_gets_events_and_last_item(pair):
    a, b = pair
    alice, bob = im_login(a, "ralice"), im_login(b, "rbob")
    befriend(alice, bob)
    for c in (alice, bob):
        c.ignore = ("presence",)
    wants = caps.notify(TUNE) + ["urn:xmpp:test:remote-one"]
    check(show_caps(bob, wants) == {"a.example", "b.example"}, "asked by both servers")
    publish(alice, TUNE, "current", tune("Across"))
    msg = bob.wait_for("message", child=EVENT, timeout=T)
    check(msg.get("from") == alice.account.jid and event_item_ids(msg) == ["current"],
          "the event over s2s")
    # bob reads alice's node as her presence subscriber
    check(item_ids(items(bob, TUNE, to=alice.account.jid)) == ["current"], "read over s2s")

    # bob comes back with another client: the last item reaches it
    bob.close()
    bob2 = b.login(bob.account, resource="again")
    wants2 = caps.notify(TUNE) + ["urn:xmpp:test:remote-two"]
    caps.presence(bob2, wants2)
    seen = set()
    while True:
        el = bob2.wait_for(None, timeout=T)
        if el.tag.endswith("}iq") and el.get("type") == "get":
            seen.add(el.get("from"))
            bob2.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>"
                      "<identity category='client' type='pc' name='Test'/>%s</query></iq>"
                      % (el.get("id"), el.get("from"), caps.NS_INFO,
                         el.find("{%s}query" % caps.NS_INFO).get("node"),
                         "".join("<feature var='%s'/>" % f for f in sorted(set(wants2)))))
        elif el.tag.endswith("}message") and el.find(EVENT) is not None:
            check(event_item_ids(el) == ["current"], "the last item")
            break
    check("a.example" in seen, "alice's server asked bob's new client")


def test_remote_stranger_is_refused(pair):
    a, b = pair
    alice = a.login("rowner")
    publish(alice, TUNE, "current", tune("Private"))
    carol = b.login("rstranger")
    fails(carol, "get", "<items node='%s'/>" % TUNE, "not-authorized",
          "presence-subscription-required", to=alice.account.jid)
