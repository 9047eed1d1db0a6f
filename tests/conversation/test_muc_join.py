"""XEP-0045 entering and leaving rooms: nick conflicts (409), nick changes
(303), password-protected (not-authorized), members-only
(registration-required), banned (forbidden) and full rooms
(service-unavailable), non-anonymous rooms (100, real JIDs to all), logging
(170), presence updates, leaving, a nick with several sessions of one
account, a presence without a nick, and occupants whose client goes away."""

from harness import check, fixture
from muc import (USER, admin_set, alice_and_bob, codes, configure, create, enter,
                 groupchat, expect_groupchat, item, join, login, muc_server, room_jid)
from xmpp import find, new_id


@fixture
def server(scope):
    return muc_server(scope, muc_options={"muc_max_occupants": 3})


def test_nick_conflict_and_change(server):
    a, b, room = alice_and_bob(server, "nicks", "al")
    c = login(server, "carol")
    enter(c, room, "bob")
    e = c.expect_error("presence", "conflict", type="cancel", attrs={"from": room + "/bob"})
    check(find(e, "{http://jabber.org/protocol/muc}x") is not None, "the error keeps <x/>")
    # bob becomes robert: unavailable with 303 and the new nick, then available
    b.send("<presence to='%s/robert'/>" % room)
    for who, self_ in ((b, True), (a, False)):
        p = who.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"})
        check(codes(p) == ([110, 303] if self_ else [303]), codes(p))
        check(item(p).get("nick") == "robert", item(p).attrib)
        p = who.expect("presence", attrs={"from": room + "/robert"})
        check(p.get("type") is None and (110 in codes(p)) == self_, p)
    # a nick change onto a taken nick is refused, the old nick stays
    b.send("<presence to='%s/al'/>" % room)
    b.expect_error("presence", "conflict", attrs={"from": room + "/al"})
    groupchat(b, room, "still robert")
    expect_groupchat(a, room, "robert", "still robert")


def test_presence_update_and_leave(server):
    a, b, room = alice_and_bob(server, "updates", "al")
    b.send("<presence to='%s/bob'><show>away</show><status>tea</status></presence>" % room)
    p = a.expect("presence", attrs={"from": room + "/bob"}, child="show", text="away")
    check(codes(p) == [], codes(p))
    p = b.expect("presence", attrs={"from": room + "/bob"}, child="show", text="away")
    check(codes(p) == [110], codes(p))
    b.send("<presence to='%s/bob' type='unavailable'><status>bye</status></presence>" % room)
    p = a.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"},
                 child="status", text="bye")
    check(item(p).get("role") == "none", item(p).attrib)
    p = b.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"})
    check(codes(p) == [110], codes(p))
    # a presence to the bare room JID has no nick
    b.send("<presence to='%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>" % room)
    b.expect_error("presence", "jid-malformed", type="modify")


def test_password(server):
    a, b = login(server, "alice"), login(server, "bob")
    room = room_jid("secret")
    create(a, room)
    configure(a, room, passwordprotectedroom=True, roomsecret="s3cret")
    enter(b, room, "bob")
    b.expect_error("presence", "not-authorized", type="auth")
    enter(b, room, "bob", password="wrong")
    b.expect_error("presence", "not-authorized", type="auth")
    r = join(b, room, "bob", password="s3cret")
    check(item(r["self"]).get("role") == "participant")


def test_members_only_and_ban(server):
    a, b, c = login(server, "alice"), login(server, "bob"), login(server, "carol")
    room = room_jid("club")
    create(a, room)
    configure(a, room, membersonly=True)
    enter(b, room, "bob")
    b.expect_error("presence", "registration-required", type="auth")
    r = admin_set(a, room, [{"jid": b.bare, "affiliation": "member"}])
    check(r.get("type") == "result", r)
    r = join(b, room, "bob")
    check(item(r["self"]).get("affiliation") == "member")
    a.expect("presence", attrs={"from": room + "/bob"})
    # carol is banned before she ever came
    r = admin_set(a, room, [{"jid": c.bare, "affiliation": "outcast", "reason": "spam"}])
    check(r.get("type") == "result", r)
    enter(c, room, "carol")
    c.expect_error("presence", "forbidden", type="auth")


def test_max_occupants(server):
    # muc_max_occupants is 3 on this service; admins may always enter
    owner = login(server, "owner")
    room = room_jid("small")
    create(owner, room)
    guests = [login(server, "guest") for _ in range(3)]
    for i, g in enumerate(guests[:2]):
        join(g, room, "g%d" % i)
    enter(guests[2], room, "g2")
    guests[2].expect_error("presence", "service-unavailable", type="wait")
    owner.ignore = ("presence",)
    r = configure(owner, room, maxusers=2)
    check(r.get("type") == "result", r)
    r = configure(owner, room, notice=False, maxusers=4)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None, r)


def test_non_anonymous_and_logging(server):
    a, b = login(server, "alice"), login(server, "bob")
    room = room_jid("open")
    create(a, room)
    configure(a, room, whois="anyone", enablelogging=True)
    r = join(b, room, "bob")
    check(codes(r["self"]) == [100, 110, 170], codes(r["self"]))
    (owner,) = r["others"]
    check(item(owner).get("jid") == a.jid, item(owner).attrib)


def test_multi_session_nick(server):
    acct = server.account("multi")
    one = login(server, acct, resource="one")
    two = login(server, acct, resource="two")
    a = login(server, "alice")
    room = room_jid("sessions")
    create(a, room, "al")
    join(one, room, "m")
    a.expect("presence", attrs={"from": room + "/m"})
    a.ignore = ("presence",)
    r = join(two, room, "m")
    check(item(r["self"]).get("role") == "participant")
    # the first session sees its nick's presence again (110: its own)
    p = one.expect("presence", attrs={"from": room + "/m"})
    check(110 in codes(p), codes(p))
    # both sessions get what is said, and what is sent to the nick
    groupchat(a, room, "to everyone")
    expect_groupchat(a, room, "al", "to everyone")
    expect_groupchat(one, room, "al", "to everyone")
    expect_groupchat(two, room, "al", "to everyone")
    a.send("<message to='%s/m' type='chat'><body>psst</body></message>" % room)
    for s in (one, two):
        s.wait_for("message", attrs={"from": room + "/al", "type": "chat"}, child="body",
                   text="psst")
    # one session leaves: the nick stays with the other
    one.send("<presence to='%s/m' type='unavailable'/>" % room)
    p = one.wait_for("presence", attrs={"from": room + "/m", "type": "unavailable"})
    check(110 in codes(p))
    groupchat(two, room, "still here")
    expect_groupchat(a, room, "m", "still here")


def test_client_gone_leaves(server):
    a, b, room = alice_and_bob(server, "gone", "al")
    b.close()   # the server sends unavailable presence on bob's behalf
    p = a.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"})
    check(item(p).get("role") == "none")
    # an error from an occupant's client removes that session too
    c = login(server, "carol")
    join(c, room, "carol")
    a.expect("presence", attrs={"from": room + "/carol"})
    c.send("<presence to='%s/carol' type='error'><error type='cancel'>"
           "<gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>" % room)
    p = a.expect("presence", attrs={"from": room + "/carol", "type": "unavailable"})
    check(codes(p) == [333], codes(p))    # removed for a technical problem


def test_self_ping(server):
    a, b = login(server, "alice"), login(server, "bob")
    room = room_jid("pings")
    create(a, room, "al")
    iq = new_id("ping")
    a.send("<iq type='get' to='%s/al' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % (room, iq))
    a.expect("iq", attrs={"id": iq, "type": "result"})
    iq = new_id("ping")
    b.send("<iq type='get' to='%s/al' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % (room, iq))
    b.expect_error("iq", "not-acceptable", type="cancel", attrs={"id": iq})
    # an iq to another occupant goes to its client and the answer comes back
    join(b, room, "bob")
    a.expect("presence", attrs={"from": room + "/bob"})
    iq = new_id("ver")
    a.send("<iq type='get' to='%s/bob' id='%s'><query xmlns='jabber:iq:version'/></iq>"
           % (room, iq))
    q = b.expect("iq", attrs={"from": room + "/al", "type": "get"})
    b.send("<iq type='result' to='%s/al' id='%s'><query xmlns='jabber:iq:version'>"
           "<name>bobclient</name></query></iq>" % (room, q.get("id")))
    r = a.expect("iq", attrs={"id": iq, "type": "result", "from": room + "/bob"})
    check(find(r, "{jabber:iq:version}query/{jabber:iq:version}name").text == "bobclient")


__all__ = ["USER"]
