"""mod_bookmarks: XEP-0402 bookmarks across clients and in XEP-0048
storage (the issue's must-show): a bookmark added from one client reaches
the other (+notify) and private storage (XEP-0049); one stored in private
storage by an older client appears in the PEP node; removing it there
retracts it; nobody else reads them."""

from harness import check, fixture
import caps
from pubsub import (EVENT, NS, NS_EVENT, PS, event_item_ids, fails, item_ids,
                    items, publish)
from xmpp import esc, find, find_all, new_id

BM = "urn:xmpp:bookmarks:1"
OPTIONS = {"pubsub#persist_items": "true", "pubsub#max_items": "max",
           "pubsub#send_last_published_item": "never",
           "pubsub#access_model": "whitelist"}
PRIV = "{jabber:iq:private}query"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco",
                                 "private", "pep", "bookmarks"])


def conference(name, nick=None, autojoin=True):
    return "<conference xmlns='%s' name='%s'%s>%s</conference>" % (
        BM, esc(name), " autojoin='true'" if autojoin else "",
        "<nick>%s</nick>" % nick if nick else "")


def private_bookmarks(c):
    iq_id = new_id("priv")
    c.send("<iq type='get' id='%s'><query xmlns='jabber:iq:private'>"
           "<storage xmlns='storage:bookmarks'/></query></iq>" % iq_id)
    el = c.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    return {x.get("jid"): x for x in find_all(
        el, PRIV + "/{storage:bookmarks}storage/{storage:bookmarks}conference")}


def set_private(c, inner):
    iq_id = new_id("privset")
    c.send("<iq type='set' id='%s'><query xmlns='jabber:iq:private'>"
           "<storage xmlns='storage:bookmarks'>%s</storage></query></iq>" % (iq_id, inner))
    c.wait_for("iq", attrs={"id": iq_id, "type": "result"})


def test_bookmarks_across_clients_and_private_storage(server):
    wants = caps.notify(BM)
    phone = server.login("reader", resource="phone")
    caps.presence(phone, wants)
    caps.answer(phone, wants)
    desktop = server.login(phone.account, resource="desktop")
    caps.presence(desktop, wants)
    desktop.roundtrip()     # known caps: no query; the presence is handled

    publish(phone, BM, "theplay@conference.localhost",
            conference("The Play's the Thing", nick="Hamlet"), options=OPTIONS)
    for c in (desktop, phone):   # the publishing client is interested too
        msg = c.wait_for("message", child=EVENT)
        check(event_item_ids(msg) == ["theplay@conference.localhost"], "%s sees it" % c.name)
    el = items(desktop, BM)
    check(item_ids(el) == ["theplay@conference.localhost"], "and reads it")

    # an XEP-0048 client finds it in private storage
    stored = private_bookmarks(desktop)
    check(list(stored) == ["theplay@conference.localhost"], str(list(stored)))
    conf = stored["theplay@conference.localhost"]
    check(conf.get("name") == "The Play's the Thing" and conf.get("autojoin") == "true", str(conf.attrib))
    check(find(conf, "{storage:bookmarks}nick").text == "Hamlet", "the nick")

    # an older client stores the list with one more room: it shows in PEP
    set_private(desktop, "<conference jid='theplay@conference.localhost' autojoin='true' "
                "name=\"The Play's the Thing\"><nick>Hamlet</nick></conference>"
                "<conference jid='elsinore@conference.localhost' name='Castle'/>"
                "<url name='Site' url='https://example.org/'/>")
    msg = phone.wait_for("message", child=EVENT)
    check(event_item_ids(msg) == ["elsinore@conference.localhost"], "the new room is published")
    check(sorted(item_ids(items(phone, BM))) == ["elsinore@conference.localhost",
                                                  "theplay@conference.localhost"], "both rooms")

    # dropping a room from private storage retracts it
    set_private(desktop, "<conference jid='elsinore@conference.localhost' name='Castle'/>"
                "<url name='Site' url='https://example.org/'/>")
    msg = phone.wait_for("message", child=EVENT + "/{%s}items/{%s}retract" % (NS_EVENT, NS_EVENT))
    check(item_ids(items(phone, BM)) == ["elsinore@conference.localhost"], "one left")

    # a retraction in PEP leaves private storage in step, URL bookmarks kept
    from pubsub import ok
    ok(phone, "set", "<retract node='%s' notify='true'><item id='elsinore@conference.localhost'/>"
       "</retract>" % BM)
    iq_id = new_id("priv")
    phone.send("<iq type='get' id='%s'><query xmlns='jabber:iq:private'>"
               "<storage xmlns='storage:bookmarks'/></query></iq>" % iq_id)
    el = phone.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    check(find_all(el, PRIV + "/{storage:bookmarks}storage/{storage:bookmarks}conference") == [],
          "no rooms in private storage")
    check(len(find_all(el, PRIV + "/{storage:bookmarks}storage/{storage:bookmarks}url")) == 1,
          "the URL bookmark kept")


def test_others_cannot_read_bookmarks(server):
    owner = server.login("bmowner")
    publish(owner, BM, "secret@conference.localhost", conference("Secret"), options=OPTIONS)
    other = server.login("bmother")
    fails(other, "get", "<items node='%s'/>" % BM, "not-allowed", "closed-node",
          to=owner.account.jid)


def test_compat_features_are_announced(server):
    c = server.login("bmdisco")
    iq_id = new_id("disco")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
           % (iq_id, c.account.jid))
    el = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    feats = {f.get("var") for f in find_all(el, "*/{http://jabber.org/protocol/disco#info}feature")}
    check({BM + "#compat", BM + "#compat-pep", NS + "#publish-options"} <= feats, str(feats))
    idents = [(i.get("category"), i.get("type")) for i in find_all(
        el, "*/{http://jabber.org/protocol/disco#info}identity")]
    check(("pubsub", "pep") in idents, str(idents))
