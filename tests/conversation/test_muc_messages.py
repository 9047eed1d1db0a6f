"""XEP-0045 messages: groupchat fan-out with the room's stanza-id (XEP-0359)
and occupant-id (XEP-0421), spoofed ids stripped, strangers refused, the
subject and who may change it, private messages and allowpm, mediated
invitations and declines, direct invitations (XEP-0249), voice requests in a
moderated room, and the discussion history on entry (maxstanzas, maxchars,
seconds, since) with XEP-0203 delays."""

from harness import check, fixture
from muc import (DATA, OID, REQUEST, SID, USER, admin_set, codes, configure,
                 create, enter, expect_groupchat, groupchat, item, join, login,
                 muc_server, room_jid)
from xmpp import find, find_all, new_id, text_of


@fixture
def server(scope):
    return muc_server(scope, muc_options={"max_history_messages": 30})


def room_with(server, name, n=1):
    """A room of alice (nick al) with n more occupants p0, p1..."""
    a = login(server, "alice")
    room = room_jid(name)
    create(a, room, "al")
    others = []
    for i in range(n):
        c = login(server, "p")
        join(c, room, "p%d" % i)
        others.append(c)
    a.ignore = ("presence",)
    for c in others:
        c.ignore = ("presence",)
    return room, a, others


def test_groupchat_fanout(server):
    room, a, (b, c) = room_with(server, "fanout", 2)
    a.send("<message to='%s' type='groupchat' id='m1'><body>hello all</body>"
           "<stanza-id xmlns='%s' by='%s' id='forged'/>"
           "<occupant-id xmlns='%s' id='forged'/></message>" % (room, SID, room, OID))
    got = [expect_groupchat(x, room, "al", "hello all") for x in (a, b, c)]
    sids = set()
    for m in got:
        ids = [s.get("id") for s in find_all(m, "{%s}stanza-id" % SID) if s.get("by") == room]
        check(len(ids) == 1 and ids[0] != "forged", ids)
        sids.add(ids[0])
        oids = find_all(m, "{%s}occupant-id" % OID)
        check(len(oids) == 1 and oids[0].get("id") != "forged", oids)
        check(m.get("id") == "m1")
    check(len(sids) == 1, "one stanza-id for every copy: %s" % sids)
    # the occupant id is stable for the same person
    groupchat(a, room, "again")
    m = expect_groupchat(b, room, "al", "again")
    check(find(m, "{%s}occupant-id" % OID).get("id") == find(got[1], "{%s}occupant-id" % OID).get("id"))
    # a stranger is not heard
    s = login(server, "stranger")
    groupchat(s, room, "let me in")
    s.expect_error("message", "not-acceptable", type="cancel")


def test_subject(server):
    room, a, (b,) = room_with(server, "subjects", 1)
    expect_subject = "<message to='%s' type='groupchat'><subject>%s</subject></message>"
    b.send(expect_subject % (room, "b's topic"))
    b.expect_error("message", "forbidden", type="auth")
    a.send(expect_subject % (room, "the topic"))
    for x in (a, b):
        x.expect("message", attrs={"from": room + "/al"}, child="subject", text="the topic")
    configure(a, room, changesubject=True)
    b.expect("message", attrs={"from": room})  # 104
    b.send(expect_subject % (room, "b's topic"))
    a.expect("message", attrs={"from": room + "/p0"}, child="subject", text="b's topic")
    # a newcomer gets it after the history
    c = login(server, "c")
    r = join(c, room, "c")
    check(text_of(r["subject"], "subject") == "b's topic")
    check(r["subject"].get("from") == room + "/p0")


def test_private_messages(server):
    room, a, (b, c) = room_with(server, "pms", 2)
    b.send("<message to='%s/p1' type='chat' id='pm1'><body>just you</body></message>" % room)
    m = c.expect("message", attrs={"from": room + "/p0", "type": "chat"}, child="body",
                 text="just you")
    check(find(m, "{%s}x" % USER) is not None, m)
    check(find(m, "{%s}occupant-id" % OID) is not None, m)
    b.send("<message to='%s/nobody' type='chat'><body>?</body></message>" % room)
    b.expect_error("message", "item-not-found", type="cancel")
    s = login(server, "stranger")
    s.send("<message to='%s/p1' type='chat'><body>hi</body></message>" % room)
    s.expect_error("message", "not-acceptable", type="cancel")
    configure(a, room, allowpm="moderators")
    b.expect("message", attrs={"from": room})
    c.expect("message", attrs={"from": room})
    b.send("<message to='%s/p1' type='chat'><body>now?</body></message>" % room)
    b.expect_error("message", "not-allowed", type="cancel")
    a.send("<message to='%s/p1' type='chat'><body>from a moderator</body></message>" % room)
    c.expect("message", attrs={"from": room + "/al"}, child="body", text="from a moderator")


def test_invitations(server):
    room, a, _ = room_with(server, "invites", 0)
    configure(a, room, membersonly=True)
    b = login(server, "bob")
    a.send("<message to='%s' id='inv1'><x xmlns='%s'><invite to='%s'><reason>join us</reason>"
           "</invite></x></message>" % (room, USER, b.jid))
    m = b.expect("message", attrs={"from": room})
    inv = find(m, "{%s}x/{%s}invite" % (USER, USER))
    check(inv is not None and inv.get("from") == a.jid, m)
    check(text_of(inv, "{%s}reason" % USER) == "join us")
    check(find(m, "{jabber:x:conference}x").get("jid") == room)
    # the invitee of an admin became a member of the members-only room
    r = join(b, room, "bob")
    check(item(r["self"]).get("affiliation") == "member")
    # a decline goes back to the inviter
    c = login(server, "carol")
    c.send("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>busy</reason></decline>"
           "</x></message>" % (room, USER, a.jid))
    m = a.expect("message", attrs={"from": room}, child="{%s}x/{%s}decline" % (USER, USER))
    check(find(m, "{%s}x/{%s}decline" % (USER, USER)).get("from") == c.jid)
    # members may not invite here unless allowinvites is on
    b.ignore = ("presence",)
    b.send("<message to='%s'><x xmlns='%s'><invite to='%s'/></x></message>" % (room, USER, c.bare))
    b.expect_error("message", "forbidden", type="auth")
    # a direct invitation (XEP-0249) is a message between the users
    a.send("<message to='%s'><x xmlns='jabber:x:conference' jid='%s' reason='come'/></message>"
           % (c.jid, room))
    m = c.expect("message", attrs={"from": a.jid})
    check(find(m, "{jabber:x:conference}x").get("jid") == room)


def test_voice_request(server):
    room, a, (b,) = room_with(server, "voices", 1)
    configure(a, room, moderatedroom=True)
    b.expect("message", attrs={"from": room})
    # b entered before moderation: a participant; a newcomer is a visitor
    v = login(server, "visitor")
    r = join(v, room, "v")
    check(item(r["self"]).get("role") == "visitor", item(r["self"]).attrib)
    v.ignore = ("presence",)
    groupchat(v, room, "can I speak?")
    v.expect_error("message", "forbidden", type="auth")
    v.send("<message to='%s'><x xmlns='%s' type='submit'>"
           "<field var='FORM_TYPE'><value>%s</value></field>"
           "<field var='muc#role'><value>participant</value></field></x></message>"
           % (room, DATA, REQUEST))
    form = a.expect("message", attrs={"from": room}, child="{%s}x" % DATA)
    fields = {f.get("var"): text_of(f, "{%s}value" % DATA)
              for f in find_all(form, "{%s}x/{%s}field" % (DATA, DATA))}
    check(fields["muc#roomnick"] == "v" and fields["FORM_TYPE"] == REQUEST, fields)
    a.send("<message to='%s'><x xmlns='%s' type='submit'>"
           "<field var='FORM_TYPE'><value>%s</value></field>"
           "<field var='muc#role'><value>participant</value></field>"
           "<field var='muc#roomnick'><value>v</value></field>"
           "<field var='muc#request_allow'><value>true</value></field></x></message>"
           % (room, DATA, REQUEST))
    v.ignore = ()
    p = v.expect("presence", attrs={"from": room + "/v"})
    check(item(p).get("role") == "participant" and 110 in codes(p), p)
    groupchat(v, room, "thanks")
    expect_groupchat(a, room, "v", "thanks")


def test_history(server):
    room, a, _ = room_with(server, "history", 0)
    configure(a, room, historylength=5)
    for i in range(8):
        groupchat(a, room, "line %d" % i)
        expect_groupchat(a, room, "al", "line %d" % i)
    c = login(server, "c")
    r = join(c, room, "c")
    bodies = [text_of(m, "body") for m in r["history"]]
    check(bodies == ["line %d" % i for i in range(3, 8)], bodies)
    d = find(r["history"][0], "{urn:xmpp:delay}delay")
    check(d is not None and d.get("from") == room and d.get("stamp"), r["history"][0])
    check(find(r["history"][0], "{%s}stanza-id" % SID) is not None)
    c.close()
    for hist, want in (({"maxstanzas": "2"}, ["line 6", "line 7"]),
                       ({"maxstanzas": "0"}, []),
                       ({"maxchars": "0"}, []),
                       ({"seconds": "3600"}, ["line %d" % i for i in range(3, 8)]),
                       ({"since": "2100-01-01T00:00:00Z"}, [])):
        c = login(server, "c")
        r = join(c, room, "c", history=hist)
        bodies = [text_of(m, "body") for m in r["history"]]
        check(bodies == want, "%s: %s" % (hist, bodies))
        c.close()
    # longer than allowed is refused in the form
    r = configure(a, room, notice=False, historylength=31)
    check(find(r, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}not-acceptable") is not None, r)


__all__ = ["admin_set", "enter", "new_id"]
