"""XEP-0313 on a room: a room with logging keeps its groupchat messages
under the stanza-ids occupants saw; queries page through them with RSM
forwards and backwards, filter by occupant and time, and are refused where
the room keeps no archive or the asker may not read it. Also the limits of
the service: restrict_room_creation, muc_max_rooms_per_user and
muc_max_rooms."""

from harness import check, fixture
from muc import (DATA, MAM, RSM, SID, admin_set, configure, create, enter,
                 expect_groupchat, groupchat, join, login, muc_server,
                 room_jid)
from xmpp import esc, find, find_all, new_id, text_of


@fixture
def server(scope):
    return muc_server(scope, muc_options={"max_archive_query_results": 20})


def query(c, room, form=None, max=None, after=None, before=None):
    qid, iq = new_id("q"), new_id("mam")
    x = ""
    if form:
        x = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s"
             "</value></field>%s</x>" % (DATA, MAM, "".join(
                 "<field var='%s'><value>%s</value></field>" % (k, esc(v))
                 for k, v in form.items())))
    s = ""
    if max is not None or after is not None or before is not None:
        s = "<set xmlns='%s'>%s%s%s</set>" % (
            RSM, "" if max is None else "<max>%d</max>" % max,
            "" if after is None else "<after>%s</after>" % after,
            "" if before is None else ("<before/>" if before is True
                                       else "<before>%s</before>" % before))
    c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s' queryid='%s'>%s%s</query></iq>"
           % (room, iq, MAM, qid, x, s))
    results = []
    while True:
        el = c.expect()
        if el.tag.endswith("message"):
            r = find(el, "{%s}result" % MAM)
            check(r is not None and r.get("queryid") == qid, el)
            fwd = find(r, "{urn:xmpp:forward:0}forwarded/{jabber:client}message")
            results.append((r.get("id"), text_of(fwd, "{jabber:client}body"), fwd))
            continue
        check(el.get("id") == iq, el)
        return results, el


def fin_of(el):
    return find(el, "{%s}fin" % MAM)


def test_room_archive_paging(server):
    a = login(server, "alice")
    room = room_jid("logged")
    create(a, room, "al")
    configure(a, room, enablelogging=True)
    a.ignore = ("presence",)
    sids = []
    for i in range(45):
        groupchat(a, room, "msg %02d" % i)
        m = expect_groupchat(a, room, "al", "msg %02d" % i)
        sids.append(find(m, "{%s}stanza-id" % SID).get("id"))
    b = login(server, "bob")
    join(b, room, "bob")
    b.ignore = ("presence",)
    groupchat(b, room, "from bob")
    expect_groupchat(b, room, "bob", "from bob")
    # forwards, 20 at a time
    got, after = [], None
    for _ in range(3):
        res, el = query(b, room, max=20, after=after)
        got += res
        f = fin_of(el)
        check(el.get("type") == "result" and f is not None, el)
        if f.get("complete") == "true":
            break
        after = text_of(f, "{%s}set/{%s}last" % (RSM, RSM))
    check([g[1] for g in got] == ["msg %02d" % i for i in range(45)] + ["from bob"],
          [g[1] for g in got])
    check([g[0] for g in got[:45]] == sids, "archive ids are the stanza-ids occupants saw")
    check(text_of(fin_of(el), "{%s}set/{%s}count" % (RSM, RSM)) == "46")
    fwd = got[0][2]
    check(fwd.get("from") == room + "/al", fwd.attrib)
    # backwards from the end
    res, el = query(b, room, max=5, before=True)
    check([r[1] for r in res] == ["msg 41", "msg 42", "msg 43", "msg 44", "from bob"],
          [r[1] for r in res])
    res, el = query(b, room, max=5, before=res[0][0])
    check([r[1] for r in res] == ["msg %02d" % i for i in range(36, 41)], [r[1] for r in res])
    # by occupant
    res, el = query(b, room, form={"with": room + "/bob"})
    check([r[1] for r in res] == ["from bob"], res)
    # too large a page, an unknown id
    res, el = query(b, room, max=21)
    check(find(el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation") is not None, el)
    res, el = query(b, room, max=5, after="nosuchid")
    check(find(el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None, el)


def test_archive_access(server):
    a = login(server, "alice")
    room = room_jid("private-log")
    create(a, room, "al")
    res, el = query(a, room)
    check(find(el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable")
          is not None, "no logging, no archive: %s" % el)
    configure(a, room, enablelogging=True, membersonly=True)
    a.ignore = ("presence",)
    groupchat(a, room, "members only")
    expect_groupchat(a, room, "al", "members only")
    s = login(server, "stranger")
    res, el = query(s, room)
    check(find(el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden") is not None, el)
    admin_set(a, room, [{"jid": s.bare, "affiliation": "member"}])
    res, el = query(s, room)
    check([r[1] for r in res] == ["members only"], res)


def test_restrict_room_creation(ctx):
    srv = muc_server(ctx, options={"admins": ["boss@localhost"]},
                     muc_options={"restrict_room_creation": True,
                                  "muc_max_rooms_per_user": 2, "muc_max_rooms": 3})
    u = login(srv, "user")
    enter(u, room_jid("nope"), "u")
    u.expect_error("presence", "not-allowed", type="cancel")
    boss = login(srv, srv.register("boss", "pw-boss"))
    for i in range(3):
        create(boss, room_jid("b%d" % i), "boss")
    # the service's cap on rooms holds for admins too
    enter(boss, room_jid("b3"), "boss")
    boss.expect_error("presence", "resource-constraint", type="wait")


def test_rooms_per_user(ctx):
    srv = muc_server(ctx, muc_options={"restrict_room_creation": "local",
                                       "muc_max_rooms_per_user": 2})
    u = login(srv, "user")
    for i in range(2):
        create(u, room_jid("u%d" % i), "u")
    enter(u, room_jid("u2"), "u")
    u.expect_error("presence", "policy-violation", type="cancel")
    # another user may still create
    v = login(srv, "v")
    create(v, room_jid("v0"), "v")


__all__ = ["find_all"]
