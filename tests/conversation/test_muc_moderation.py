"""XEP-0045 moderation and administration: kicking (307) and banning (301)
with actor and reason, granting and revoking voice and moderator status,
the affiliation and role lists, members removed from a members-only room
(321, 322), and every change checked against the actor's affiliation and
role (a moderator cannot kick an admin, an admin cannot touch an owner, the
last owner stays, a request with one bad item changes nothing)."""

from harness import check, fixture
from muc import (USER, admin_get, admin_set, codes, configure, create, enter,
                 expect_groupchat, groupchat, item, join, login, muc_server,
                 room_jid)
from xmpp import find, find_all, text_of

STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@fixture
def server(scope):
    return muc_server(scope)


def error_of(r):
    err = find(r, "error")
    if err is None:
        return None
    for c in err:
        if c.tag.startswith("{%s}" % STANZAS) and not c.tag.endswith("}text"):
            return err.get("type"), c.tag.split("}")[1]
    return err.get("type"), None


def setup_room(server, name):
    """owner al, admin ad, member me, participant pa (all present)."""
    o = login(server, "owner")
    room = room_jid(name)
    create(o, room, "al")
    ad, me, pa = login(server, "admin"), login(server, "member"), login(server, "part")
    check(admin_set(o, room, [{"jid": ad.bare, "affiliation": "admin"},
                              {"jid": me.bare, "affiliation": "member"}]).get("type") == "result")
    for c, nick in ((ad, "ad"), (me, "me"), (pa, "pa")):
        join(c, room, nick)
    for c in (o, ad, me, pa):
        c.ignore = ("presence",)
    return room, o, ad, me, pa


def test_kick(server):
    room, o, ad, me, pa = setup_room(server, "kicks")
    pa.ignore = ()
    r = admin_set(ad, room, [{"nick": "pa", "role": "none", "reason": "be nice"}])
    check(r.get("type") == "result", r)
    p = pa.expect("presence", attrs={"from": room + "/pa", "type": "unavailable"})
    check(codes(p) == [110, 307], codes(p))
    check(find(p, "{%s}x/{%s}item/{%s}actor" % (USER, USER, USER)).get("nick") == "ad")
    check(text_of(p, "{%s}x/{%s}item/{%s}reason" % (USER, USER, USER)) == "be nice")
    me.ignore = ()
    p = me.wait_for("presence", attrs={"from": room + "/pa", "type": "unavailable"})
    check(codes(p) == [307] and item(p).get("role") == "none", p)
    # a kicked occupant may come back (unlike a banned one)
    join(pa, room, "pa")


def test_ban(server):
    room, o, ad, me, pa = setup_room(server, "bans")
    pa.ignore = ()
    r = admin_set(ad, room, [{"jid": pa.bare, "affiliation": "outcast", "reason": "spam"}])
    check(r.get("type") == "result", r)
    p = pa.expect("presence", attrs={"from": room + "/pa", "type": "unavailable"})
    check(codes(p) == [110, 301], codes(p))
    check(item(p).get("affiliation") == "outcast")
    enter(pa, room, "pa2")
    pa.expect_error("presence", "forbidden", type="auth")
    r = admin_get(ad, room, affiliation="outcast")
    items = find_all(r, "{%s}query/{%s}item" % (USER.replace("#user", "#admin"),
                                               USER.replace("#user", "#admin")))
    check([i.get("jid") for i in items] == [pa.bare], r)
    # lifting the ban
    admin_set(ad, room, [{"jid": pa.bare, "affiliation": "none"}])
    join(pa, room, "pa")


def test_privileges(server):
    room, o, ad, me, pa = setup_room(server, "ranks")
    # a participant cannot kick
    check(error_of(admin_set(pa, room, [{"nick": "me", "role": "none"}])) == ("auth", "forbidden"))
    # a moderator who is only a member cannot touch an admin
    admin_set(ad, room, [{"nick": "me", "role": "moderator"}])
    check(error_of(admin_set(me, room, [{"nick": "ad", "role": "none"}]))
          == ("cancel", "not-allowed"))
    # ... nor grant moderator status
    check(error_of(admin_set(me, room, [{"nick": "pa", "role": "moderator"}]))
          == ("cancel", "not-allowed"))
    # but may silence a participant
    check(admin_set(me, room, [{"nick": "pa", "role": "visitor"}]).get("type") == "result")
    groupchat(pa, room, "hello?")
    pa.expect_error("message", "forbidden", type="auth")
    # an admin cannot ban the owner or make owners
    check(error_of(admin_set(ad, room, [{"jid": o.bare, "affiliation": "outcast"}]))
          == ("cancel", "not-allowed"))
    check(error_of(admin_set(ad, room, [{"jid": pa.bare, "affiliation": "owner"}]))
          == ("cancel", "not-allowed"))
    # members cannot change affiliations at all
    check(error_of(admin_set(me, room, [{"jid": pa.bare, "affiliation": "member"}]))
          == ("auth", "forbidden"))
    # the last owner cannot step down
    check(error_of(admin_set(o, room, [{"jid": o.bare, "affiliation": "admin"}]))
          == ("cancel", "conflict"))
    # one bad item: nothing changes
    r = admin_set(o, room, [{"jid": pa.bare, "affiliation": "member"},
                            {"jid": "x@localhost", "affiliation": "king"}])
    check(error_of(r) == ("modify", "bad-request"), r)
    r = admin_get(o, room, affiliation="member")
    jids = sorted(i.get("jid") for i in find_all(r, "{%s}query/{%s}item"
                                                  % (USER[:-5] + "#admin", USER[:-5] + "#admin")))
    check(jids == [me.bare], jids)
    # lists: affiliations for admins, roles for moderators
    check(error_of(admin_get(pa, room, affiliation="member")) == ("auth", "forbidden"))
    check(error_of(admin_get(pa, room, role="moderator")) == ("auth", "forbidden"))
    r = admin_get(me, room, role="moderator")
    nicks = sorted(i.get("nick") for i in find_all(r, "{%s}query/{%s}item"
                                                    % (USER[:-5] + "#admin", USER[:-5] + "#admin")))
    check(nicks == ["ad", "al", "me"], nicks)
    check(error_of(admin_set(o, room, [{"nick": "nobody", "role": "none"}]))
          == ("cancel", "item-not-found"))


def test_voice_and_moderator_changes(server):
    room, o, ad, me, pa = setup_room(server, "voice")
    configure(o, room, moderatedroom=True)
    ad.expect("message", attrs={"from": room})  # 104
    pa.ignore = ()
    admin_set(ad, room, [{"nick": "pa", "role": "visitor"}])
    p = pa.wait_for("presence", attrs={"from": room + "/pa"})
    check(item(p).get("role") == "visitor" and 110 in codes(p), p)
    admin_set(ad, room, [{"nick": "pa", "role": "participant"}])
    p = pa.expect("presence", attrs={"from": room + "/pa"})
    check(item(p).get("role") == "participant", p)
    groupchat(pa, room, "voice back")
    pa.ignore = ("presence",)
    expect_groupchat(o, room, "pa", "voice back")


def test_members_only_removals(server):
    room, o, ad, me, pa = setup_room(server, "closing")
    pa.ignore = ()
    me.ignore = ()
    configure(o, room, membersonly=True)
    p = pa.wait_for("presence", attrs={"from": room + "/pa", "type": "unavailable"})
    check(codes(p) == [110, 322], codes(p))
    # a member losing membership of a members-only room is removed (321)
    admin_set(o, room, [{"jid": me.bare, "affiliation": "none"}])
    p = me.wait_for("presence", attrs={"from": room + "/me", "type": "unavailable"})
    check(codes(p) == [110, 321], codes(p))
