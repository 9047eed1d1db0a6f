"""Bad input to the MUC service gets the right stanza error and the service
goes on serving everyone: admin and owner queries without items or with
unknown values, forms of the wrong type, history requests with nonsense
values, invitations without a 'to', iq answers nobody asked for, presence
types a room does not know, and stanzas to rooms that do not exist."""

from harness import bystanders, check, fixture
from muc import (ADMIN, DATA, MUC, OWNER, USER, create, enter,
                 expect_groupchat, groupchat, join, login, muc_server,
                 room_jid)
from xmpp import new_id


@fixture
def server(scope):
    return muc_server(scope)


def iq(c, room, type_, inner):
    i = new_id("h")
    c.send("<iq type='%s' to='%s' id='%s'>%s</iq>" % (type_, room, i, inner))
    return i


def test_bad_admin_and_owner_queries(server):
    with bystanders(server):
        a = login(server, "alice")
        room = room_jid("hostile")
        create(a, room, "al")
        a.ignore = ("presence",)
        for type_, inner, cond in (
                ("set", "<query xmlns='%s'/>" % ADMIN, "bad-request"),
                ("get", "<query xmlns='%s'/>" % ADMIN, "bad-request"),
                ("get", "<query xmlns='%s'><item affiliation='king'/></query>" % ADMIN,
                 "bad-request"),
                ("get", "<query xmlns='%s'><item role='god'/></query>" % ADMIN, "bad-request"),
                ("set", "<query xmlns='%s'><item role='moderator'/></query>" % ADMIN,
                 "bad-request"),
                ("set", "<query xmlns='%s'><item affiliation='member'/></query>" % ADMIN,
                 "bad-request"),
                ("set", "<query xmlns='%s'><item affiliation='member' jid='@@'/></query>"
                 % ADMIN, "bad-request"),
                ("set", "<query xmlns='%s'/>" % OWNER, "bad-request"),
                ("set", "<query xmlns='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'>"
                 "<value>urn:other</value></field></x></query>" % (OWNER, DATA), "bad-request"),
                ("set", "<query xmlns='%s'><x xmlns='%s' type='result'/></query>"
                 % (OWNER, DATA), "bad-request"),
                ("set", "<query xmlns='%s'><x xmlns='%s' type='submit'><field><value>1</value>"
                 "</field></x></query>" % (OWNER, DATA), "bad-request")):
            i = iq(a, room, type_, inner)
            a.expect_error("iq", cond, attrs={"id": i})
        # answers nobody asked for are dropped; the room still talks
        a.send("<iq type='result' to='%s/al' id='nobody-asked'/>" % room)
        a.send("<iq type='error' to='%s/al' id='nobody-asked2'/>" % room)
        a.send("<presence to='%s/al' type='subscribe'/>" % room)
        a.send("<presence to='%s/al' type='probe'/>" % room)
        a.send("<message to='%s'><x xmlns='%s'><invite/></x></message>" % (room, USER))
        a.expect_error("message", "jid-malformed", type="modify")
        a.send("<message to='%s' type='chat'><body>not groupchat</body></message>" % room)
        a.expect_error("message", "bad-request", type="modify")
        groupchat(a, room, "still fine")
        expect_groupchat(a, room, "al", "still fine")


def test_nonsense_history_and_missing_rooms(server):
    with bystanders(server):
        a = login(server, "alice")
        room = room_jid("history-hostile")
        create(a, room, "al")
        b = login(server, "bob")
        r = join(b, room, "bob", history={"maxstanzas": "-5", "maxchars": "lots",
                                          "seconds": "1e400", "since": "yesterday"})
        check(r["history"] == [], r["history"])
        # nothing there: the errors of a room that does not exist
        gone = room_jid("nosuch")
        groupchat(b, gone, "hello?")
        b.expect_error("message", "item-not-found", type="cancel")
        b.send("<message to='%s/x' type='chat'><body>hi</body></message>" % gone)
        b.expect_error("message", "item-not-found", type="cancel")
        i = iq(b, gone, "get", "<query xmlns='%s'><item affiliation='owner'/></query>" % ADMIN)
        b.expect_error("iq", "item-not-found", attrs={"id": i})
        b.send("<presence to='%s/x' type='unavailable'/>" % gone)
        enter(b, room, "bob", extra="<x xmlns='%s'/>" % MUC)  # a second <x/>: still joined
        b.wait_for("presence", attrs={"from": room + "/bob"})
