"""A room's message reaches each occupant through that occupant's own
delivery: its own 'to', the same room stanza-id for all, and the policies
of the recipient's side applied per session: a blocked room is not heard
(XEP-0191), an inactive client's copy is held until it is active again
(XEP-0352), and a XEP-0198 session keeps its copy for a resumption."""

from harness import check, fixture, time_limit
from muc import (SID, create, expect_groupchat, groupchat, join, login,
                 muc_server, room_jid)
from xmpp import esc, find_all, new_id

SM = "urn:xmpp:sm:3"
CSI = "urn:xmpp:csi:0"
BLOCK = "urn:xmpp:blocking"


@fixture
def server(scope):
    return muc_server(scope, modules=["roster", "presence", "message", "iq", "disco",
                                      "blocklist", "csi", "smacks"])


def room_sid(m, room):
    ids = [s.get("id") for s in find_all(m, "{%s}stanza-id" % SID) if s.get("by") == room]
    check(len(ids) == 1, "one stanza-id of the room: %s" % ids)
    return ids[0]


def expect_copy(c, room, nick, body):
    m = expect_groupchat(c, room, nick, body)
    check(m.get("to") == c.jid, "to %s, not %s" % (c.jid, m.get("to")))
    return m


def block(c, jid):
    iq = new_id("block")
    c.send("<iq type='set' id='%s'><block xmlns='%s'><item jid='%s'/></block></iq>"
           % (iq, BLOCK, esc(jid)))
    c.wait_for("iq", attrs={"id": iq, "type": "result"})


def unblock(c, jid):
    iq = new_id("unblock")
    c.send("<iq type='set' id='%s'><unblock xmlns='%s'><item jid='%s'/></unblock></iq>"
           % (iq, BLOCK, esc(jid)))
    c.wait_for("iq", attrs={"id": iq, "type": "result"})


def test_every_session_gets_its_own_copy(server):
    a = login(server, "alice")
    room = room_jid("copies")
    create(a, room, "al")
    # bob is in the room from two clients under one nick; carol once
    bob = server.account("bob")
    b1, b2, c = login(server, bob), login(server, bob), login(server, "carol")
    join(b1, room, "bob")
    join(b2, room, "bob")
    join(c, room, "carol")
    for x in (a, b1, b2, c):
        x.ignore = ("presence",)
    groupchat(a, room, "to each <his> own & all")
    got = [expect_copy(x, room, "al", "to each <his> own & all") for x in (a, b1, b2, c)]
    check(len({room_sid(m, room) for m in got}) == 1, "one stanza-id for every copy")
    # and again: the copies of one message do not leak into the next
    groupchat(c, room, "second")
    got = [expect_copy(x, room, "carol", "second") for x in (a, b1, b2, c)]
    check(len({room_sid(m, room) for m in got}) == 1)


def test_blocked_room_is_not_heard(server):
    a = login(server, "alice")
    room = room_jid("blocked")
    create(a, room, "al")
    b, c = login(server, "bob"), login(server, "carol")
    join(b, room, "bob")
    join(c, room, "carol")
    for x in (a, b, c):
        x.ignore = ("presence",)
    block(b, room)
    groupchat(a, room, "bob does not hear this")
    for x in (a, c):
        expect_copy(x, room, "al", "bob does not hear this")
    unblock(b, room)
    groupchat(a, room, "now he does")
    for x in (a, c):
        expect_copy(x, room, "al", "now he does")
    # the first never came: the next message bob gets is the second
    expect_copy(b, room, "al", "now he does")


def test_inactive_client_gets_its_copy_when_active(server):
    a = login(server, "alice")
    room = room_jid("inactive")
    create(a, room, "al")
    b, c = login(server, "bob"), login(server, "carol")
    join(b, room, "bob")
    join(c, room, "carol")
    for x in (a, b, c):
        x.ignore = ("presence",)
    c.send("<inactive xmlns='%s'/>" % CSI)
    c.roundtrip()
    groupchat(a, room, "held for carol")
    groupchat(a, room, "and this")
    for x in (a, b):
        expect_copy(x, room, "al", "held for carol")
        expect_copy(x, room, "al", "and this")
    c.roundtrip()  # what the server did for carol before, she has now
    check(not [q for q in c.queue if getattr(q, "tag", "").endswith("message")],
          "an inactive client got a groupchat message: %s" % c.queue)
    c.send("<active xmlns='%s'/>" % CSI)
    expect_copy(c, room, "al", "held for carol")
    expect_copy(c, room, "al", "and this")


@time_limit(60)
def test_smacks_session_keeps_its_copy(server):
    a = login(server, "alice")
    room = room_jid("resumed")
    create(a, room, "al")
    acct = server.account("dave")
    d = login(server, acct, resource="phone")
    join(d, room, "dave")
    a.ignore = d.ignore = ("presence",)
    d.send("<enable xmlns='%s' resume='true'/>" % SM)
    smid = d.expect("{%s}enabled" % SM).get("id")
    groupchat(a, room, "kept for dave")
    expect_copy(a, room, "al", "kept for dave")
    expect_copy(d, room, "al", "kept for dave")
    d.close()                           # unacknowledged: the server keeps it
    server.wait_log(r"dave.*hibernating")
    groupchat(a, room, "while away")
    expect_copy(a, room, "al", "while away")
    r = server.client(name="resumed")
    r.auth_scram(acct.user, acct.password)
    r.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
    r.expect("{%s}resumed" % SM, attrs={"previd": smid})
    r.ignore = ("presence", "{%s}r" % SM)
    r.jid = acct.jid + "/phone"
    expect_copy(r, room, "al", "kept for dave")
    expect_copy(r, room, "al", "while away")
