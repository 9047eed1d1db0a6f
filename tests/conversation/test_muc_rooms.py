"""XEP-0045 rooms: creating instant and reserved rooms (201, locked until
configured), the configuration form and bad values in it, cancelling a new
room, disco#info and disco#items of the service and of rooms, unique room
names, destruction with an alternate venue, temporary rooms going away when
empty, persistent rooms surviving a restart, and a module reload that keeps
the occupants."""

import signal

from harness import check, fixture
from muc import (DATA, MUC, OWNER, SERVICE, USER, alice_and_bob, codes, configure, create,
                 enter, groupchat, expect_groupchat, item, join, login,
                 muc_server, room_jid)
from xmpp import find, find_all, new_id, text_of

INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"


@fixture
def server(scope):
    return muc_server(scope)


def disco(c, to, ns=INFO):
    iq = new_id("disco")
    c.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>" % (to, iq, ns))
    return c.expect("iq", attrs={"id": iq})


def features(el):
    return {f.get("var") for f in find_all(el, "{%s}query/{%s}feature" % (INFO, INFO))}


def form_values(x):
    out = {}
    for f in find_all(x, "{%s}field" % DATA):
        out[f.get("var")] = [v.text or "" for v in find_all(f, "{%s}value" % DATA)]
    return out


def test_instant_room(server):
    a = login(server, "alice")
    room = room_jid("instant")
    r = join(a, room, "al")
    check(codes(r["self"]) == [110, 201], codes(r["self"]))
    it = item(r["self"])
    check(it.get("affiliation") == "owner" and it.get("role") == "moderator", it.attrib)
    check(r["others"] == [], r["others"])
    # locked: nobody else may enter until the owner configures it
    b = login(server, "bob")
    enter(b, room, "bob")
    b.expect_error("presence", "item-not-found", type="cancel",
                   attrs={"from": room + "/bob"})
    # the instant room: an empty submitted form takes the defaults
    iq = new_id("inst")
    a.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>"
           "<x xmlns='%s' type='submit'/></query></iq>" % (room, iq, OWNER, DATA))
    a.expect("iq", attrs={"id": iq, "type": "result"})
    r = join(b, room, "bob")
    check(codes(r["self"]) == [110], codes(r["self"]))
    check(item(r["self"]).get("role") == "participant")
    check(item(r["self"]).get("affiliation") == "none")
    # semi-anonymous: bob does not see alice's real JID, alice sees bob's
    (al,) = r["others"]
    check(al.get("from") == room + "/al" and item(al).get("jid") is None, al)
    p = a.expect("presence", attrs={"from": room + "/bob"})
    check(item(p).get("jid") == b.jid, item(p).attrib)
    check(find(p, "{urn:xmpp:occupant-id:0}occupant-id") is not None)


def test_reserved_room_form(server):
    a = login(server, "alice")
    room = room_jid("reserved")
    create(a, room, "al", instant=False)
    iq = new_id("get")
    a.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>" % (room, iq, OWNER))
    r = a.expect("iq", attrs={"id": iq, "type": "result"})
    values = form_values(find(r, "{%s}query/{%s}x" % (OWNER, DATA)))
    check(values["FORM_TYPE"] == ["http://jabber.org/protocol/muc#roomconfig"])
    for var in ("roomname", "roomdesc", "persistentroom", "publicroom", "membersonly",
                "moderatedroom", "passwordprotectedroom", "roomsecret", "whois",
                "maxusers", "allowinvites", "changesubject", "historylength",
                "allowpm", "enablelogging"):
        check("muc#roomconfig_" + var in values, var)
    r = configure(a, room, notice=False, roomname="Tea", roomdesc="About tea",
                  changesubject=True)
    check(r.get("type") == "result", r)
    info = disco(a, room)
    ident = find(info, "{%s}query/{%s}identity" % (INFO, INFO))
    check(ident.get("category") == "conference" and ident.get("name") == "Tea", ident.attrib)
    f = features(info)
    check({MUC, "muc_public", "muc_temporary", "muc_open", "muc_unmoderated",
           "muc_semianonymous", "muc_unsecured", "urn:xmpp:occupant-id:0",
           "urn:xmpp:sid:0"} <= f, f)
    roominfo = form_values(find(info, "{%s}query/{%s}x" % (INFO, DATA)))
    check(roominfo["muc#roominfo_description"] == ["About tea"], roominfo)
    check(roominfo["muc#roominfo_occupants"] == ["1"], roominfo)
    # the room is now open and in the public list
    items = disco(a, SERVICE, ITEMS)
    jids = [i.get("jid") for i in find_all(items, "{%s}query/{%s}item" % (ITEMS, ITEMS))]
    check(room in jids, jids)


def test_bad_config_values(server):
    a = login(server, "alice")
    room = room_jid("badform")
    create(a, room)
    for field, value in (("maxusers", "many"), ("whois", "everyone"),
                         ("persistentroom", "perhaps"), ("historylength", "100000"),
                         ("allowpm", "friends")):
        r = configure(a, room, **{field: value})
        check(r.get("type") == "error", r)
        check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None, r)
    r = configure(a, room, passwordprotectedroom=True)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None, r)
    # a non-owner may neither read nor submit the form
    b = login(server, "bob")
    join(b, room, "bob")
    iq = new_id("get")
    b.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>" % (room, iq, OWNER))
    b.expect_error("iq", "forbidden", type="auth", attrs={"id": iq})
    r = configure(b, room, roomname="mine")
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden") is not None, r)


def test_cancel_new_room(server):
    a = login(server, "alice")
    room = room_jid("cancelled")
    create(a, room, instant=False)
    iq = new_id("cancel")
    a.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>"
           "<x xmlns='%s' type='cancel'/></query></iq>" % (room, iq, OWNER, DATA))
    a.expect("presence", attrs={"from": room + "/owner", "type": "unavailable"})
    a.expect("iq", attrs={"id": iq, "type": "result"})
    r = disco(a, room)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, r)


def test_service_disco_and_unique(server):
    a = login(server, "alice")
    info = disco(a, SERVICE)
    ident = find(info, "{%s}query/{%s}identity" % (INFO, INFO))
    check(ident.get("category") == "conference" and ident.get("type") == "text")
    check(MUC in features(info))
    iq = new_id("uniq")
    a.send("<iq type='get' to='%s' id='%s'><unique xmlns='%s#unique'/></iq>"
           % (SERVICE, iq, MUC))
    r = a.expect("iq", attrs={"id": iq, "type": "result"})
    name = text_of(r, "{%s#unique}unique" % MUC)
    check(name and "@" not in name, name)
    # hidden rooms are not listed
    room = room_jid("hidden")
    create(a, room)
    configure(a, room, publicroom=False)
    items = disco(a, SERVICE, ITEMS)
    jids = [i.get("jid") for i in find_all(items, "{%s}query/{%s}item" % (ITEMS, ITEMS))]
    check(room not in jids, jids)
    check("muc_hidden" in features(disco(a, room)))
    # a room that does not exist
    r = disco(a, room_jid("nosuchroom"))
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, r)


def test_destroy_with_alternate_venue(server):
    a, b, room = alice_and_bob(server, "doomed")
    iq = new_id("destroy")
    a.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'><destroy jid='%s'>"
           "<reason>moved</reason></destroy></query></iq>"
           % (room, iq, OWNER, room_jid("newplace")))
    p = b.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"})
    d = find(p, "{%s}x/{%s}destroy" % (USER, USER))
    check(d is not None and d.get("jid") == room_jid("newplace"), p)
    check(text_of(d, "{%s}reason" % USER) == "moved")
    check(item(p).get("affiliation") == "none" and item(p).get("role") == "none")
    a.wait_for("iq", attrs={"id": iq, "type": "result"})
    # the room is gone: a groupchat message bounces
    groupchat(b, room, "anyone?")
    b.expect_error("message", "item-not-found")


def test_temporary_room_goes_when_empty(server):
    a = login(server, "alice")
    room = room_jid("shortlived")
    create(a, room)
    a.send("<presence to='%s/owner' type='unavailable'/>" % room)
    p = a.expect("presence", attrs={"from": room + "/owner", "type": "unavailable"})
    check(codes(p) == [110], codes(p))
    r = disco(a, room)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, r)


def test_persistent_room_survives_restart(ctx):
    srv = muc_server(ctx)
    a = login(srv, "alice")
    room = room_jid("lasting")
    create(a, room)
    r = configure(a, room, persistentroom=True, roomname="Lasting", membersonly=True)
    check(r.get("type") == "result", r)
    groupchat(a, room, "set the subject first")
    expect_groupchat(a, room, "owner", "set the subject first")
    a.send("<message to='%s' type='groupchat'><subject>Kept</subject></message>" % room)
    a.expect("message", child="subject", text="Kept")
    # the server stops: occupants hear of it (332) before the stream ends
    srv.send_signal(signal.SIGTERM)
    p = a.expect("presence", attrs={"from": room + "/owner", "type": "unavailable"})
    check(codes(p) == [110, 332], codes(p))
    srv.wait_exit()
    srv.restart()
    a = login(srv, srv.accounts[next(iter(srv.accounts))])
    info = disco(a, room)
    check({"muc_persistent", "muc_membersonly"} <= features(info), features(info))
    ident = find(info, "{%s}query/{%s}identity" % (INFO, INFO))
    check(ident.get("name") == "Lasting")
    r = join(a, room, "again")
    check(item(r["self"]).get("affiliation") == "owner")
    check(text_of(r["subject"], "subject") == "Kept")
    # members-only is kept too
    b = login(srv, "stranger")
    enter(b, room, "x")
    b.expect_error("presence", "registration-required", type="auth")


def test_reload_keeps_occupants(ctx):
    srv = muc_server(ctx)
    a, b, room = alice_and_bob(srv, "reloaded")
    srv.ctl("module", "reload", "muc", SERVICE)
    groupchat(a, room, "still here?")
    expect_groupchat(b, room, "owner", "still here?")
    expect_groupchat(a, room, "owner", "still here?")
    enter(b, room, "bob")  # a presence update after the reload
    p = b.expect("presence", attrs={"from": room + "/bob"})
    check(110 in codes(p), codes(p))


def test_unconfigured_room_goes_after_the_lock_timeout(ctx):
    srv = muc_server(ctx, muc_options={"muc_room_lock_timeout": 1})
    a = login(srv, "alice")
    room = room_jid("forgotten")
    create(a, room, "al", instant=False)
    p = a.expect("presence", attrs={"from": room + "/al", "type": "unavailable"}, timeout=10)
    check(110 in codes(p), codes(p))
    r = disco(a, room)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, r)
