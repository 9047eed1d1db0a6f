"""mod_pubsub: XEP-0060 as a component (pubsub.localhost): nodes made,
configured, purged and deleted by their owners; items published,
retracted and read back (by id, max_items, RSM); subscriptions and their
options; affiliations checked on every owner action; the XEP's error
conditions; the presence and roster access models read from the owner's
roster (subscribers outside it are refused and hear nothing once it
changes); items kept across a restart."""

import signal

from harness import check, fixture
from pubsub import (EVENT, NS, NS_EVENT, NS_OWNER, OWNER, PS, config_form,
                    event_item_ids, fails, item_ids, items, ok, publish,
                    request)
from xmpp import find, find_all, text_of
from im import befriend, im_login, roster_set

SVC = "pubsub.localhost"
ENTRY = "<entry xmlns='http://www.w3.org/2005/Atom'><title>%s</title></entry>"


@fixture
def server(scope):
    return scope.server(components={SVC: ("pubsub", {
        "pubsub_max_items": 50, "pubsub_max_item_size": 2048,
        "pubsub_max_nodes": 40})})


def create(c, node, fields=None):
    inner = "<create node='%s'/>" % node
    if fields:
        inner += "<configure>%s</configure>" % config_form(fields)
    return ok(c, "set", inner, to=SVC)


def subscribe(c, node, jid=None):
    el = ok(c, "set", "<subscribe node='%s' jid='%s'/>" % (node, jid or c.jid),
            to=SVC, child=PS + "/{%s}subscription" % NS)
    sub = find(el, PS + "/{%s}subscription" % NS)
    check(sub.get("subscription") == "subscribed" and sub.get("subid"), str(sub.attrib))
    return sub.get("subid")


def test_disco_lists_the_service_and_its_nodes(server):
    c = server.login("disco")
    create(c, "disco-node", {"pubsub#title": "Princely Musings"})
    el = c.expect("iq", attrs={"id": _disco(c, "info"), "type": "result"})
    cats = [i.get("category") for i in find_all(
        el, "*/{http://jabber.org/protocol/disco#info}identity")]
    check(cats == ["pubsub"], str(cats))
    feats = [f.get("var") for f in find_all(el, "*/{http://jabber.org/protocol/disco#info}feature")]
    check(NS + "#publish-options" in feats and NS + "#rsm" in feats, str(feats))
    el = c.expect("iq", attrs={"id": _disco(c, "items"), "type": "result"})
    nodes = [i.get("node") for i in find_all(el, "*/{http://jabber.org/protocol/disco#items}item")]
    check("disco-node" in nodes, str(nodes))


def _disco(c, what):
    from xmpp import new_id
    iq_id = new_id("disco")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#%s'/></iq>"
           % (iq_id, SVC, what))
    return iq_id


def test_publish_notifies_subscribers_and_items_read_back(server):
    owner, reader = server.login("owner"), server.login("reader")
    create(owner, "news")
    subid = subscribe(reader, "news")
    el = publish(owner, "news", "first", ENTRY % "one", to=SVC)
    check(find(el, PS + "/{%s}publish/{%s}item" % (NS, NS)).get("id") == "first", "id kept")
    msg = reader.expect("message", attrs={"from": SVC}, child=EVENT)
    check(event_item_ids(msg) == ["first"], "event items")
    check(text_of(msg, EVENT + "/{%s}items/{%s}item/{http://www.w3.org/2005/Atom}entry/"
                       "{http://www.w3.org/2005/Atom}title" % (NS_EVENT, NS_EVENT)) == "one", "payload")
    # no id: the service makes one
    el = publish(owner, "news", None, ENTRY % "two", to=SVC)
    made = find(el, PS + "/{%s}publish/{%s}item" % (NS, NS)).get("id")
    check(made, "a generated id")
    reader.expect("message", child=EVENT)
    # same id replaces and becomes the newest
    publish(owner, "news", "first", ENTRY % "one again", to=SVC)
    reader.expect("message", child=EVENT)
    check(item_ids(items(reader, "news", to=SVC)) == ["first", made], "newest first")
    check(item_ids(items(reader, "news", to=SVC, max_items=1)) == ["first"], "max_items")
    check(item_ids(items(reader, "news", to=SVC, ids=[made])) == [made], "by id")
    # unsubscribe with the subid: no more notifications
    ok(reader, "set", "<unsubscribe node='news' jid='%s' subid='%s'/>" % (reader.jid, subid), to=SVC)
    fails(reader, "set", "<unsubscribe node='news' jid='%s'/>" % reader.jid,
          "unexpected-request", "not-subscribed", to=SVC)


def test_items_page_with_rsm(server):
    c = server.login("pager")
    create(c, "paged", {"pubsub#max_items": "20"})
    for i in range(5):
        publish(c, "paged", "i%d" % i, ENTRY % i, to=SVC)
    rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max>%s</set>"
    el = items(c, "paged", to=SVC, extra=rsm % "")
    check(item_ids(el) == ["i4", "i3"], str(item_ids(el)))
    last = text_of(el, PS + "/{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last")
    check(text_of(el, PS + "/{http://jabber.org/protocol/rsm}set/"
                      "{http://jabber.org/protocol/rsm}count") == "5", "count")
    el = items(c, "paged", to=SVC, extra=rsm % ("<after>%s</after>" % last))
    check(item_ids(el) == ["i2", "i1"], str(item_ids(el)))


def test_retract_purge_and_delete_notify(server):
    owner, sub = server.login("rpd"), server.login("rpdsub")
    create(owner, "rpd", {"pubsub#max_items": "5"})
    subscribe(sub, "rpd")
    publish(owner, "rpd", "a", ENTRY % "a", to=SVC)
    publish(owner, "rpd", "b", ENTRY % "b", to=SVC)
    sub.expect("message", child=EVENT)
    sub.expect("message", child=EVENT)
    ok(owner, "set", "<retract node='rpd' notify='true'><item id='a'/></retract>", to=SVC)
    msg = sub.expect("message", child=EVENT + "/{%s}items/{%s}retract" % (NS_EVENT, NS_EVENT))
    check(find(msg, EVENT + "/{%s}items/{%s}retract" % (NS_EVENT, NS_EVENT)).get("id") == "a", "retract a")
    fails(owner, "set", "<retract node='rpd'><item id='a'/></retract>", "item-not-found", to=SVC)
    # a non-owner may not purge or delete
    fails(sub, "set", "<purge node='rpd'/>", "forbidden", owner=True, to=SVC)
    fails(sub, "set", "<delete node='rpd'/>", "forbidden", owner=True, to=SVC)
    fails(sub, "set", "<retract node='rpd'><item id='b'/></retract>", "forbidden", to=SVC)
    ok(owner, "set", "<purge node='rpd'/>", owner=True, to=SVC)
    sub.expect("message", child=EVENT + "/{%s}purge" % NS_EVENT)
    check(item_ids(items(owner, "rpd", to=SVC)) == [], "purged")
    ok(owner, "set", "<delete node='rpd'><redirect uri='xmpp:%s?;node=elsewhere'/></delete>" % SVC,
       owner=True, to=SVC)
    msg = sub.expect("message", child=EVENT + "/{%s}delete/{%s}redirect" % (NS_EVENT, NS_EVENT))
    check(find(msg, EVENT + "/{%s}delete" % NS_EVENT).get("node") == "rpd", "the deleted node")
    fails(owner, "get", "<items node='rpd'/>", "item-not-found", to=SVC)


def test_configure_form_and_max_items(server):
    c, other = server.login("conf"), server.login("notconf")
    create(c, "conf", {"pubsub#max_items": "2", "pubsub#title": "Two"})
    el = ok(c, "get", "<configure node='conf'/>", owner=True, to=SVC)
    x = find(el, OWNER + "/{%s}configure/{jabber:x:data}x" % NS_OWNER)
    values = {f.get("var"): text_of(f, "{jabber:x:data}value") for f in find_all(x, "{jabber:x:data}field")}
    check(values["pubsub#max_items"] == "2" and values["pubsub#title"] == "Two", str(values))
    for i in range(4):
        publish(c, "conf", "c%d" % i, ENTRY % i, to=SVC)
    check(item_ids(items(c, "conf", to=SVC)) == ["c3", "c2"], "only two kept")
    fails(other, "get", "<configure node='conf'/>", "forbidden", owner=True, to=SVC)
    fails(c, "set", "<configure node='conf'>%s</configure>" % config_form(
        {"pubsub#access_model": "authorize"}), "not-acceptable", "unsupported-access-model",
        owner=True, to=SVC)
    fails(c, "set", "<configure node='conf'>%s</configure>" % config_form(
        {"pubsub#max_items": "5000"}), "not-acceptable", owner=True, to=SVC)
    ok(c, "set", "<configure node='conf'>%s</configure>" % config_form(
        {"pubsub#max_items": "1"}), owner=True, to=SVC)
    check(item_ids(items(c, "conf", to=SVC)) == ["c3"], "trimmed to one")


def test_errors_of_the_xep(server):
    c, other = server.login("errs"), server.login("errs2")
    create(c, "errs")
    fails(c, "set", "<create node='errs'/>", "conflict", to=SVC)
    fails(c, "set", "<publish><item><x xmlns='x:y'/></item></publish>", "bad-request",
          "nodeid-required", to=SVC)
    fails(c, "set", "<publish node='nope'><item><x xmlns='x:y'/></item></publish>",
          "item-not-found", to=SVC)
    fails(c, "set", "<publish node='errs'><item><a xmlns='x:a'/><b xmlns='x:b'/></item></publish>",
          "bad-request", "invalid-payload", to=SVC)
    fails(c, "set", "<publish node='errs'><item id='1'><x xmlns='x:y'/></item>"
          "<item id='2'><x xmlns='x:y'/></item></publish>", "bad-request", "invalid-payload", to=SVC)
    fails(c, "set", "<publish node='errs'><item><big xmlns='x:big'>%s</big></item></publish>" % ("z" * 3000),
          "not-acceptable", "payload-too-big", to=SVC)
    fails(other, "set", "<publish node='errs'><item><x xmlns='x:y'/></item></publish>",
          "forbidden", to=SVC)
    fails(other, "set", "<subscribe node='errs' jid='someone@else/x'/>", "bad-request",
          "invalid-jid", to=SVC)
    fails(c, "set", "<frobnicate node='errs'/>", "feature-not-implemented", to=SVC)
    # publish-options that do not match the node's configuration
    fails(c, "set", "<publish node='errs'><item><x xmlns='x:y'/></item></publish>"
          + "<publish-options>%s</publish-options>" % _po({"pubsub#access_model": "whitelist"}),
          "conflict", "precondition-not-met", to=SVC)
    publish(c, "errs", "ok", "<x xmlns='x:y'/>", to=SVC, options={"pubsub#access_model": "open"})
    # the server keeps serving: a malformed form is refused, nothing breaks
    fails(c, "set", "<create node='badform'/><configure><x xmlns='jabber:x:data' type='submit'>"
          "<field><value>1</value></field></x></configure>", "bad-request", to=SVC)


def _po(fields):
    from pubsub import form
    return form(NS + "#publish-options", fields)


def test_whitelist_and_affiliations(server):
    owner, member, stranger = server.login("wl"), server.login("wlm"), server.login("wls")
    create(owner, "club", {"pubsub#access_model": "whitelist"})
    publish(owner, "club", "x", ENTRY % "secret", to=SVC)
    fails(stranger, "get", "<items node='club'/>", "not-allowed", "closed-node", to=SVC)
    fails(stranger, "set", "<subscribe node='club' jid='%s'/>" % stranger.jid, "not-allowed",
          "closed-node", to=SVC)
    fails(stranger, "set", "<affiliations node='club'><affiliation jid='%s' affiliation='owner'/>"
          "</affiliations>" % stranger.account.jid, "forbidden", owner=True, to=SVC)
    ok(owner, "set", "<affiliations node='club'><affiliation jid='%s' affiliation='member'/>"
       "<affiliation jid='%s' affiliation='outcast'/></affiliations>"
       % (member.account.jid, stranger.account.jid), owner=True, to=SVC)
    check(item_ids(items(member, "club", to=SVC)) == ["x"], "member reads")
    fails(stranger, "get", "<items node='club'/>", "forbidden", to=SVC)
    el = ok(owner, "get", "<affiliations node='club'/>", owner=True, to=SVC)
    affs = {a.get("jid"): a.get("affiliation") for a in find_all(
        el, OWNER + "/{%s}affiliations/{%s}affiliation" % (NS_OWNER, NS_OWNER))}
    check(affs == {owner.account.jid: "owner", member.account.jid: "member",
                   stranger.account.jid: "outcast"}, str(affs))
    el = ok(member, "get", "<affiliations/>", to=SVC)
    mine = [(a.get("node"), a.get("affiliation")) for a in find_all(
        el, PS + "/{%s}affiliations/{%s}affiliation" % (NS, NS))]
    check(mine == [("club", "member")], str(mine))
    # the owner manages subscriptions
    ok(owner, "set", "<subscriptions node='club'><subscription jid='%s' subscription='subscribed'/>"
       "</subscriptions>" % member.jid, owner=True, to=SVC)
    el = ok(member, "get", "<subscriptions/>", to=SVC)
    subs = [(x.get("node"), x.get("jid"), x.get("subscription")) for x in find_all(
        el, PS + "/{%s}subscriptions/{%s}subscription" % (NS, NS))]
    check(subs == [("club", member.jid, "subscribed")], str(subs))
    publish(owner, "club", "y", ENTRY % "news", to=SVC)
    member.expect("message", child=EVENT)


def test_presence_and_roster_access_models(server):
    owner, friend, other = (im_login(server, n) for n in ("pao", "paf", "pax"))
    befriend(owner, friend)
    for c in (owner, friend, other):
        c.ignore = ("presence",)
    create(owner, "status", {"pubsub#access_model": "presence"})
    publish(owner, "status", "now", ENTRY % "at home", to=SVC)
    check(item_ids(items(friend, "status", to=SVC)) == ["now"], "a contact reads")
    subscribe(friend, "status")
    fails(other, "get", "<items node='status'/>", "not-authorized",
          "presence-subscription-required", to=SVC)
    fails(other, "set", "<subscribe node='status' jid='%s'/>" % other.jid, "not-authorized",
          "presence-subscription-required", to=SVC)
    # roster: the groups the owner allows, as the roster is now
    create(owner, "inner", {"pubsub#access_model": "roster",
                            "pubsub#roster_groups_allowed": ["Close"]})
    fails(friend, "get", "<items node='inner'/>", "not-authorized", "not-in-roster-group",
          to=SVC)
    rid = roster_set(owner, friend.bare, groups=["Close"])
    owner.wait_for("iq", attrs={"id": rid, "type": "result"})
    subscribe(friend, "inner")
    publish(owner, "inner", "a", ENTRY % "close ones", to=SVC)
    msg = friend.wait_for("message", child=EVENT, attrs={"from": SVC})
    check(event_item_ids(msg) == ["a"], "the event")
    # out of the group: no more events, no more reading
    rid = roster_set(owner, friend.bare, groups=["Far"])
    owner.wait_for("iq", attrs={"id": rid, "type": "result"})
    publish(owner, "inner", "b", ENTRY % "not for you", to=SVC)
    fails(friend, "get", "<items node='inner'/>", "not-authorized", "not-in-roster-group",
          to=SVC)
    friend.roundtrip()
    got = [m for m in friend.queue if getattr(m, "tag", "").endswith("}message")]
    check(not got, "an event after leaving the group: %s" % got)


def test_subscription_options(server):
    owner, sub = server.login("opt"), server.login("optsub")
    create(owner, "opt")
    subscribe(sub, "opt")
    el = ok(sub, "get", "<options node='opt' jid='%s'/>" % sub.jid, to=SVC)
    check(find(el, PS + "/{%s}options/{jabber:x:data}x" % NS) is not None, "a form")
    from pubsub import form
    ok(sub, "set", "<options node='opt' jid='%s'>%s</options>" % (
        sub.jid, form(NS + "#subscribe_options", {"pubsub#deliver": "0"})), to=SVC)
    publish(owner, "opt", "quiet", ENTRY % "q", to=SVC)
    # delivery off: the next thing the subscriber sees is its own answer
    rid = request(sub, "get", "<subscriptions/>", to=SVC)
    sub.expect("iq", attrs={"id": rid, "type": "result"})
    fails(owner, "get", "<options node='opt' jid='%s'/>" % owner.jid, "unexpected-request",
          "not-subscribed", to=SVC)


def test_items_persist_across_restart(ctx):
    srv = ctx.server(components={SVC: "pubsub"})
    c = srv.login("keeper")
    create(c, "kept", {"pubsub#max_items": "10"})
    publish(c, "kept", "k1", ENTRY % "k1", to=SVC)
    publish(c, "kept", "k2", ENTRY % "k2", to=SVC)
    c.close()
    srv.send_signal(signal.SIGTERM)
    srv.wait_exit()
    srv.restart()
    c = srv.login(c.account)
    check(item_ids(items(c, "kept", to=SVC)) == ["k2", "k1"], "items after restart")
    fails(c, "set", "<create node='kept'/>", "conflict", to=SVC)
