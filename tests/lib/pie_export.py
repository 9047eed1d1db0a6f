"""What `starlingctl export` (XEP-0227) says a server holds, for tests
that check acknowledged writes survived: rosters, offline messages and
archives per user, read as an operator would read them."""

import xml.etree.ElementTree as ET

PIE = "{urn:xmpp:pie:0}"
PIE_MAM = "{urn:xmpp:pie:0#mam}"
ROSTER = "{jabber:iq:roster}"
CLIENT = "{jabber:client}"


def exported(srv, host="localhost"):
    """{username: <user/> element} of host's users."""
    root = ET.fromstring(srv.ctl("export", host).stdout)
    return {u.get("name"): u for u in root.iter(PIE + "user")}


def roster_jids(user):
    """The JIDs of a <user/>'s roster items (empty for None)."""
    if user is None:
        return set()
    return {item.get("jid") for item in user.iter(ROSTER + "item")}


def offline_bodies(user):
    """The bodies of a <user/>'s offline messages."""
    bodies = set()
    for box in (user.findall(PIE + "offline-messages") if user is not None else []):
        for m in box.findall(CLIENT + "message"):
            bodies.add(m.findtext(CLIENT + "body"))
    return bodies


def archived_bodies(user):
    """The bodies of the messages in a <user/>'s archives (XEP-0313)."""
    bodies = set()
    for ar in (user.iter(PIE_MAM + "archive") if user is not None else []):
        for m in ar.iter(CLIENT + "message"):
            bodies.add(m.findtext(CLIENT + "body"))
    return bodies
