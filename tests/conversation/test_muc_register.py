"""XEP-0045 registered nicknames (7.10, 7.12, 9.3, 9.5): registering with a
room through the muc#register form makes the user a member and reserves
the nick; the reserved nick is refused to others at entry and on a nick
change (conflict) and to other registrations; a user asks the room for its
registered nick (disco node x-roomuser-item); the owner's member list shows
it and an admin may reserve one with the membership; <remove/> and a ban
free it; who may register (outcasts never, users without an affiliation
only where the owner allows it), bad forms; a members-only room that
allows registration lets a stranger in once registered; an owner may
require registered nicks; registrations survive a restart."""

import signal

from harness import check, fixture
from muc import (ADMIN, DATA, OWNER, USER, admin_get, admin_set, codes, create, enter,
                 item, join, login, muc_server, room_jid)
from xmpp import esc, find, find_all, new_id, text_of

REGISTER = "jabber:iq:register"
MUC_REGISTER = "http://jabber.org/protocol/muc#register"
INFO = "http://jabber.org/protocol/disco#info"
OWN = "{urn:xmpp:starling:muc}roomconfig_"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@fixture
def server(scope):
    return muc_server(scope)


def error_of(r):
    err = find(r, "error")
    check(err is not None, "expected an error: %s" % r)
    conds = [c.tag.split("}")[1] for c in err
             if c.tag.startswith("{%s}" % STANZAS) and not c.tag.endswith("}text")]
    return err.get("type"), conds[0]


def own_config(c, room, **fields):
    """Sets fields of ours ({urn:xmpp:starling:muc}roomconfig_<name>) and
    muc#roomconfig_ ones (names starting with muc_)."""
    out = ["<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>"
           "http://jabber.org/protocol/muc#roomconfig</value></field>" % DATA]
    for k, v in fields.items():
        var = "muc#roomconfig_" + k[4:] if k.startswith("muc_") else OWN + k
        out.append("<field var='%s'><value>%s</value></field>" % (esc(var), "1" if v else "0"))
    out.append("</x>")
    iq = new_id("cfg")
    c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>%s</query></iq>"
           % (room, iq, OWNER, "".join(out)))
    check(c.expect("iq", attrs={"id": iq}).get("type") == "result")


def reg_get(c, room):
    iq = new_id("regget")
    c.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>" % (room, iq, REGISTER))
    return c.expect("iq", attrs={"id": iq})


def reg_set(c, room, nick=None, inner=None, form_type=MUC_REGISTER):
    if inner is None:
        inner = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s</value></field>"
                 "<field var='muc#register_roomnick'><value>%s</value></field></x>"
                 % (DATA, form_type, esc(nick)))
    iq = new_id("regset")
    c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>%s</query></iq>"
           % (room, iq, REGISTER, inner))
    return c.expect("iq", attrs={"id": iq})


def roomuser_item(c, room):
    iq = new_id("rui")
    c.send("<iq type='get' to='%s' id='%s'><query xmlns='%s' node='x-roomuser-item'/></iq>"
           % (room, iq, INFO))
    r = c.expect("iq", attrs={"id": iq, "type": "result"})
    check(find(r, "{%s}query" % INFO).get("node") == "x-roomuser-item", r)
    ident = find(r, "{%s}query/{%s}identity" % (INFO, INFO))
    return ident.get("name") if ident is not None else None


def member_nicks(o, room):
    r = admin_get(o, room, affiliation="member")
    check(r.get("type") == "result", r)
    return {i.get("jid"): i.get("nick") for i in find_all(r, "{%s}query/{%s}item" % (ADMIN, ADMIN))}


def open_room(server, name, **config):
    o = login(server, "owner")
    room = room_jid(name)
    create(o, room, "boss")
    if config:
        own_config(o, room, **config)
        o.wait_for("message", attrs={"from": room, "type": "groupchat"})
    o.ignore = ("presence", "message")
    return o, room


def test_register_reserves_the_nick(server):
    o, room = open_room(server, "reg", allowregister=True)
    b, c = login(server, "bob"), login(server, "carol")
    iq = new_id("info")
    b.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>" % (room, iq, INFO))
    info = b.expect("iq", attrs={"id": iq, "type": "result"})
    check(REGISTER in {f.get("var") for f in find_all(info, "{%s}query/{%s}feature" % (INFO, INFO))})
    # the form
    r = reg_get(b, room)
    check(r.get("type") == "result", r)
    x = find(r, "{%s}query/{%s}x" % (REGISTER, DATA))
    check(x is not None and x.get("type") == "form", r)
    fields = {f.get("var"): f for f in find_all(x, "{%s}field" % DATA)}
    check(text_of(fields["FORM_TYPE"], "{%s}value" % DATA) == MUC_REGISTER, r)
    check(find(fields["muc#register_roomnick"], "{%s}required" % DATA) is not None, r)
    check(roomuser_item(b, room) is None, "no nick registered yet")
    # bob is in the room when he registers: everyone sees him become a member
    join(b, room, "bobby")
    c_in = join(c, room, "carol")
    check(item(c_in["self"]).get("affiliation") == "none")
    b.ignore = ("message",)
    b.wait_for("presence", attrs={"from": room + "/carol"})
    b.ignore = ()
    iq = new_id("regset")
    b.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'><x xmlns='%s' type='submit'>"
           "<field var='FORM_TYPE'><value>%s</value></field><field var='muc#register_roomnick'>"
           "<value>bobby</value></field></x></query></iq>" % (room, iq, REGISTER, DATA, MUC_REGISTER))
    p = b.expect("presence", attrs={"from": room + "/bobby"})
    check(item(p).get("affiliation") == "member" and 110 in codes(p), p)
    b.expect("iq", attrs={"id": iq, "type": "result"})
    p = c.wait_for("presence", attrs={"from": room + "/bobby"})
    check(item(p).get("affiliation") == "member", p)
    # registered: the room says so, and tells the nick
    r = reg_get(b, room)
    check(find(r, "{%s}query/{%s}registered" % (REGISTER, REGISTER)) is not None, r)
    check(text_of(r, "{%s}query/{%s}username" % (REGISTER, REGISTER)) == "bobby", r)
    check(roomuser_item(b, room) == "bobby")
    check(member_nicks(o, room) == {b.bare: "bobby"}, member_nicks(o, room))
    # nobody else gets the nick: not by registering, not by renaming,
    # not by entering while bob is away
    r = reg_set(c, room, "bobby")
    check(error_of(r) == ("cancel", "conflict"), r)
    c.ignore = ("message", "presence")
    enter(c, room, "bobby")
    c.expect_error("presence", "conflict", type="cancel", attrs={"from": room + "/bobby"})
    b.send("<presence to='%s/bobby' type='unavailable'/>" % room)
    b.expect("presence", attrs={"from": room + "/bobby", "type": "unavailable"})
    d = login(server, "dave")
    enter(d, room, "bobby")
    d.expect_error("presence", "conflict", type="cancel", attrs={"from": room + "/bobby"})
    # carol's own registration works, then she may not take bob's
    check(reg_set(c, room, "carol").get("type") == "result")
    r = reg_set(c, room, "bobby")
    check(error_of(r) == ("cancel", "conflict"), r)
    # a nick in use by another occupant cannot be registered either
    join(d, room, "dd")
    check(error_of(reg_set(c, room, "dd")) == ("cancel", "conflict"))


def test_who_may_register_and_bad_forms(server):
    o, room = open_room(server, "strict")      # allowregister off: the default
    stranger, mem, out = login(server, "str"), login(server, "mem"), login(server, "out")
    check(error_of(reg_get(stranger, room)) == ("cancel", "not-allowed"))
    check(error_of(reg_set(stranger, room, "str")) == ("cancel", "not-allowed"))
    check(admin_set(o, room, [{"jid": mem.bare, "affiliation": "member"},
                              {"jid": out.bare, "affiliation": "outcast"}]).get("type") == "result")
    check(error_of(reg_get(out, room)) == ("auth", "forbidden"))
    # a member may register (to reserve a nick), with a good form only
    check(reg_get(mem, room).get("type") == "result")
    check(error_of(reg_set(mem, room, inner="")) == ("modify", "bad-request"))
    check(error_of(reg_set(mem, room, "m", form_type="urn:other")) == ("modify", "bad-request"))
    check(error_of(reg_set(mem, room, "")) == ("modify", "not-acceptable"))
    check(error_of(reg_set(mem, room, "a" * 1100)) == ("modify", "jid-malformed"))
    check(reg_set(mem, room, inner="<x xmlns='%s' type='cancel'/>" % DATA).get("type") == "result")
    check(roomuser_item(mem, room) is None)
    check(reg_set(mem, room, "memo").get("type") == "result")
    check(roomuser_item(mem, room) == "memo")
    # no such room
    check(error_of(reg_get(mem, room_jid("nowhere"))) == ("cancel", "item-not-found"))
    # the owner reserves a nick for a new member; a taken one is a conflict
    late = login(server, "late")
    r = admin_set(o, room, [{"jid": late.bare, "affiliation": "member", "nick": "memo"}])
    check(error_of(r) == ("cancel", "conflict"), r)
    check(admin_get(o, room, affiliation="member").get("type") == "result")
    check(late.bare not in member_nicks(o, room), "a refused request changes nothing")
    r = admin_set(o, room, [{"jid": late.bare, "affiliation": "member", "nick": "latecomer"}])
    check(r.get("type") == "result", r)
    check(member_nicks(o, room) == {mem.bare: "memo", late.bare: "latecomer"},
          member_nicks(o, room))
    check(text_of(reg_get(late, room), "{%s}query/{%s}username" % (REGISTER, REGISTER))
          == "latecomer")
    # <remove/>: the member is none again and the nick free
    check(reg_set(mem, room, inner="<remove/>").get("type") == "result")
    check(mem.bare not in member_nicks(o, room))
    check(error_of(reg_get(mem, room)) == ("cancel", "not-allowed"))
    check(error_of(reg_set(mem, room, inner="<remove/>")) == ("cancel", "not-allowed"))
    # a ban drops the registration with the membership
    check(admin_set(o, room, [{"jid": late.bare, "affiliation": "outcast"}]).get("type") == "result")
    check(admin_set(o, room, [{"jid": late.bare, "affiliation": "none"}]).get("type") == "result")
    r = admin_set(o, room, [{"jid": mem.bare, "affiliation": "member", "nick": "latecomer"}])
    check(r.get("type") == "result", r)


def test_members_only_room_registration_makes_a_member(server):
    o, room = open_room(server, "club", muc_membersonly=True, allowregister=True)
    s = login(server, "newcomer")
    enter(s, room, "newbie")
    s.expect_error("presence", "registration-required", type="auth")
    check(reg_set(s, room, "newbie").get("type") == "result")
    r = join(s, room, "newbie")
    check(item(r["self"]).get("affiliation") == "member", item(r["self"]).attrib)
    # the owner turns registration off: others stay out, members stay in
    own_config(o, room, allowregister=False)
    t = login(server, "other")
    check(error_of(reg_get(t, room)) == ("cancel", "not-allowed"))
    enter(t, room, "t")
    t.expect_error("presence", "registration-required", type="auth")


def test_owner_may_require_registered_nicks(server):
    o, room = open_room(server, "nicks", registerednicksonly=True)
    m, n = login(server, "regd"), login(server, "unregd")
    check(admin_set(o, room, [{"jid": m.bare, "affiliation": "member", "nick": "regd"},
                              {"jid": n.bare, "affiliation": "member"}]).get("type") == "result")
    # a member without a registered nick is turned away, one with it must use it
    enter(n, room, "whatever")
    n.expect_error("presence", "registration-required", type="auth")
    enter(m, room, "other")
    err = m.expect_error("presence", "not-acceptable", type="cancel")
    check("regd" in text_of(err, "error/{%s}text" % STANZAS), err)
    join(m, room, "regd")
    # nor may he change to another nick inside
    m.ignore = ("message",)
    enter(m, room, "renamed")
    m.expect_error("presence", "not-acceptable", type="cancel")
    # once registered, the other member enters with his nick
    check(reg_set(n, room, "unregd").get("type") == "result")
    join(n, room, "unregd")


def test_registrations_survive_a_restart(ctx):
    srv = muc_server(ctx)
    o, room = open_room(srv, "kept", muc_persistentroom=True, allowregister=True)
    keeper = srv.account("keeper")
    b = login(srv, keeper)
    check(reg_set(b, room, "keeper").get("type") == "result")
    srv.send_signal(signal.SIGTERM)
    srv.wait_exit()
    srv.restart()
    b = login(srv, keeper)
    check(roomuser_item(b, room) == "keeper")
    x = login(srv, "thief")
    enter(x, room, "keeper")
    x.expect_error("presence", "conflict", type="cancel")
    r = join(b, room, "keeper")
    check(item(r["self"]).get("affiliation") == "member")
