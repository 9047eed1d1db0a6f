"""mod_pep: the OMEMO shape (XEP-0384, the issue's must-show): alice
publishes her device list and a bundle with access model open; bob, who
has no subscription to her, fetches both; alice's second resource, whose
capabilities say +notify, gets the device list update. OMEMO 2 nodes
hold many items with max_items "max"."""

from harness import check, fixture
import caps
from pubsub import (EVENT, NS, NS_EVENT, PS, event_item_ids, fails, item_ids,
                    items, publish)
from xmpp import find, find_all

LEGACY_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
LEGACY_BUNDLE = "eu.siacs.conversations.axolotl.bundles:31415"
DEVICES = "urn:xmpp:omemo:2:devices"
BUNDLES = "urn:xmpp:omemo:2:bundles"
AXOLOTL = "eu.siacs.conversations.axolotl"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "disco", "pep"])


def device_list(*ids):
    return "<list xmlns='%s'>%s</list>" % (AXOLOTL, "".join(
        "<device id='%d'/>" % i for i in ids))


def bundle(n):
    return ("<bundle xmlns='%s'><signedPreKeyPublic signedPreKeyId='1'>BASE%d</signedPreKeyPublic>"
            "<signedPreKeySignature>SIG</signedPreKeySignature><identityKey>IK%d</identityKey>"
            "<prekeys><preKeyPublic preKeyId='1'>PK</preKeyPublic></prekeys></bundle>"
            % (AXOLOTL, n, n))


OPEN = {"pubsub#access_model": "open"}


def test_omemo_shape(server):
    features = caps.notify(LEGACY_DEVICES, DEVICES)
    alice = server.login("alice", resource="phone")
    caps.presence(alice, features)
    caps.answer(alice, features)
    alice2 = server.login(alice.account, resource="laptop")
    caps.presence(alice2, features)       # the same caps: known already
    alice2.roundtrip()
    bob = server.login("bob", presence=True)

    publish(alice, LEGACY_DEVICES, "current", device_list(31415), options=OPEN)
    for c in (alice, alice2):
        msg = c.wait_for("message", child=EVENT)
        check(msg.get("from") == alice.account.jid, msg.get("from"))
        check(event_item_ids(msg) == ["current"], "the device list event")
    publish(alice, LEGACY_BUNDLE, "current", bundle(1), options=OPEN)

    # bob, a stranger to alice, reads both
    el = items(bob, LEGACY_DEVICES, to=alice.account.jid)
    devices = find_all(el, PS + "/{%s}items/{%s}item/{%s}list/{%s}device" % (NS, NS, AXOLOTL, AXOLOTL))
    check([d.get("id") for d in devices] == ["31415"], "bob sees the device")
    el = items(bob, LEGACY_BUNDLE, to=alice.account.jid)
    check(find(el, PS + "/{%s}items/{%s}item/{%s}bundle/{%s}identityKey" % (NS, NS, AXOLOTL, AXOLOTL))
          is not None, "bob sees the bundle")
    # bob is no subscriber: no event came to him before his answers
    bob.roundtrip()
    check(not [m for m in bob.queue if getattr(m, "tag", "").endswith("message")],
          "bob got an event")
    # a precondition that does not match the node
    fails(alice, "set", "<publish node='%s'><item id='current'>%s</item></publish>"
          "<publish-options><x xmlns='jabber:x:data' type='submit'>"
          "<field var='FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>"
          "<field var='pubsub#access_model'><value>presence</value></field></x></publish-options>"
          % (LEGACY_DEVICES, device_list(1), NS), "conflict", "precondition-not-met")


def test_omemo2_bundles_many_items(server):
    alice = server.login("alice2x")
    opts = dict(OPEN, **{"pubsub#max_items": "max"})
    publish(alice, DEVICES, "current", "<devices xmlns='urn:xmpp:omemo:2'><device id='1'/>"
            "<device id='2'/></devices>", options=OPEN)
    for dev in (1, 2):
        publish(alice, BUNDLES, str(dev), "<bundle xmlns='urn:xmpp:omemo:2'><ik>K%d</ik></bundle>" % dev,
                options=opts)
    bob = server.login("bob2x")
    check(sorted(item_ids(items(bob, BUNDLES, to=alice.account.jid))) == ["1", "2"], "two bundles")
    check(item_ids(items(bob, BUNDLES, to=alice.account.jid, ids=["2"])) == ["2"], "one by id")


def test_presence_access_is_the_default(server):
    alice = server.login("private")
    publish(alice, "http://jabber.org/protocol/tune", "current",
            "<tune xmlns='http://jabber.org/protocol/tune'><title>x</title></tune>")
    stranger = server.login("stranger")
    fails(stranger, "get", "<items node='http://jabber.org/protocol/tune'/>", "not-authorized",
          "presence-subscription-required", to=alice.account.jid)
    # only the account changes its nodes
    fails(stranger, "set", "<publish node='x'><item><a xmlns='x:a'/></item></publish>", "forbidden",
          to=alice.account.jid)
    fails(stranger, "set", "<delete node='http://jabber.org/protocol/tune'/>", "forbidden",
          to=alice.account.jid, owner=True)
