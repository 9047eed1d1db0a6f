"""Helpers for the Multi-User Chat tests (XEP-0045): a server with the muc
component, entering rooms the way a client does, and reading what the
room sends (status codes, the muc#user item)."""

from xmpp import ANY, esc, find, find_all, new_id

MUC = "http://jabber.org/protocol/muc"
USER = MUC + "#user"
ADMIN = MUC + "#admin"
OWNER = MUC + "#owner"
REQUEST = MUC + "#request"
DATA = "jabber:x:data"
SID = "urn:xmpp:sid:0"
OID = "urn:xmpp:occupant-id:0"
DELAY = "urn:xmpp:delay"
MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
CONFIG = MUC + "#roomconfig"
SERVICE = "conference.localhost"
MODULES = ["roster", "presence", "message", "iq", "disco"]


def muc_server(scope, options=None, muc_options=None, modules=None, **kw):
    """A server for localhost with the muc component on SERVICE; options
    go to the whole server, muc_options to the Component section."""
    return scope.server(modules=modules or MODULES, options=options,
                        components={SERVICE: ("muc", muc_options or {})}, **kw)


def room_jid(name):
    return "%s@%s" % (name, SERVICE)


def login(server, account="user", resource=None, name=None):
    """A client that sees presence (rooms talk in presence)."""
    c = server.login(account, resource=resource, name=name, ignore_presence=False)
    c.ignore = ()
    return c


def codes(el):
    return sorted(int(s.get("code"))
                  for s in find_all(el, "{%s}x/{%s}status" % (USER, USER)))


def item(el):
    return find(el, "{%s}x/{%s}item" % (USER, USER))


def enter(c, room, nick, password=None, history=None, x=True, extra=""):
    inner = ""
    if password is not None:
        inner += "<password>%s</password>" % esc(password)
    if history is not None:
        inner += "<history %s/>" % " ".join("%s='%s'" % kv for kv in history.items())
    xel = "<x xmlns='%s'>%s</x>" % (MUC, inner) if x else ""
    c.send("<presence to='%s/%s'>%s%s</presence>" % (esc(room), esc(nick), xel, extra))


def join(c, room, nick, **kw):
    """Enters room as nick and reads what the room sends up to the subject:
    {'self': self-presence, 'others': [occupant presences], 'history':
    [messages], 'subject': message}. The self-presence must carry 110."""
    enter(c, room, nick, **kw)
    out = {"others": [], "history": []}
    while True:
        el = c.next_item(what="what %s sends on entering" % room)
        if not hasattr(el, "tag") or getattr(el, "is_header", False):
            raise AssertionError("entering %s: got %r" % (room, el))
        if el.tag.endswith("}iq"):
            continue
        if el.tag.endswith("presence"):
            if el.get("type") == "error":
                raise AssertionError("entering %s failed: %s" % (room, el))
            if el.get("from") == "%s/%s" % (room, nick) and 110 in codes(el):
                out["self"] = el
            else:
                out["others"].append(el)
        elif find(el, "subject") is not None and find(el, "body") is None:
            out["subject"] = el
            return out
        else:
            out["history"].append(el)


def create(c, room, nick="owner", instant=True):
    """Creates room (201) and, with instant, unlocks it with the default
    configuration (an empty submitted form)."""
    r = join(c, room, nick)
    assert 201 in codes(r["self"]), codes(r["self"])
    if instant:
        iq = new_id("inst")
        c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>"
               "<x xmlns='%s' type='submit'/></query></iq>" % (room, iq, OWNER, DATA))
        c.expect("iq", attrs={"id": iq, "type": "result"})
    return r


def configure(c, room, notice=True, **fields):
    """Submits the room configuration form; fields: muc#roomconfig_<name>
    = value (bool, int, str). Returns the answer. With notice, a change
    that succeeds must be followed by the room's status 104 message (the
    submitter is an occupant of an unlocked room)."""
    out = ["<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s</value></field>"
           % (DATA, CONFIG)]
    for k, v in fields.items():
        if isinstance(v, bool):
            v = "1" if v else "0"
        out.append("<field var='muc#roomconfig_%s'><value>%s</value></field>" % (k, esc(str(v))))
    out.append("</x>")
    iq = new_id("cfg")
    c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>%s</query></iq>"
           % (room, iq, OWNER, "".join(out)))
    r = c.expect("iq", attrs={"id": iq})
    if notice and r.get("type") == "result":
        m = c.expect("message", attrs={"from": room, "type": "groupchat"})
        assert 104 in codes(m), m
    return r


def admin_set(c, room, items):
    """items: list of dicts of attributes (+ optional 'reason')."""
    parts = []
    for it in items:
        reason = it.pop("reason", None)
        attrs = " ".join("%s='%s'" % (k, esc(v)) for k, v in it.items())
        parts.append("<item %s>%s</item>" % (attrs, "<reason>%s</reason>" % esc(reason)
                                             if reason else ""))
    iq = new_id("adm")
    c.send("<iq type='set' to='%s' id='%s'><query xmlns='%s'>%s</query></iq>"
           % (room, iq, ADMIN, "".join(parts)))
    return c.expect("iq", attrs={"id": iq})


def admin_get(c, room, **attrs):
    iq = new_id("adm")
    a = " ".join("%s='%s'" % kv for kv in attrs.items())
    c.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'><item %s/></query></iq>"
           % (room, iq, ADMIN, a))
    return c.expect("iq", attrs={"id": iq})


def groupchat(c, room, body, ident=None):
    c.send("<message to='%s' type='groupchat' id='%s'><body>%s</body></message>"
           % (room, ident or new_id("gc"), esc(body)))


def expect_groupchat(c, room, nick, body):
    return c.expect("message", attrs={"from": "%s/%s" % (room, nick), "type": "groupchat"},
                    child="body", text=body)


def alice_and_bob(server, name, nick="owner"):
    """alice makes the room name (as nick), bob enters it (as bob) and
    alice sees him come in. Returns alice, bob and the room's JID."""
    a, b = login(server, "alice"), login(server, "bob")
    room = room_jid(name)
    create(a, room, nick)
    join(b, room, "bob")
    a.expect("presence", attrs={"from": room + "/bob"})
    return a, b, room


__all__ = ["ANY"]

