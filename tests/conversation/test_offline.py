"""Offline messages (XEP-0160, mod_offline): what is stored, delivery in
order with XEP-0203 delay stamps at the first non-negative available
presence, removal after delivery, the per-account quota, and XEP-0334
hints."""

import re

from harness import check, fixture, sync
from xmpp import ABSENT, NS, esc, find, new_id

DELAY = "urn:xmpp:delay"
HINTS = "urn:xmpp:hints"
CHATSTATES = "http://jabber.org/protocol/chatstates"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "disco", "offline"],
                        options={"offline_max_messages": 3})


def send(sender, to, type="chat", body="hi", mid=None, extra=""):
    mid = mid or new_id("m")
    attrs = " type='%s'" % type if type else ""
    inner = "<body>%s</body>" % esc(body) if body is not None else ""
    sender.send("<message to='%s' id='%s'%s>%s%s</message>"
                % (esc(to), mid, attrs, inner, extra))
    return mid


def expect_stored(c, sender, body, type="chat"):
    el = c.expect("message", attrs={"from": sender.jid, "type": type or ABSENT},
                  child="body", text=body)
    delay = find(el, "{%s}delay" % DELAY)
    check(delay is not None, "no delay stamp in %r" % el)
    check(delay.get("from") == "localhost", "delay from %r" % delay.get("from"))
    check(STAMP.fullmatch(delay.get("stamp") or ""), "stamp %r" % delay.get("stamp"))
    check(delay.text == "Offline Storage", "delay text %r" % delay.text)
    return el


def login(server, account, priority=0, resource=None):
    """Logged in and available (the echo of its presence came back)."""
    c = server.login(account, resource=resource, ignore_presence=False)
    c.presence(priority=priority)
    c.expect("presence", attrs={"from": c.jid})
    c.ignore = ("presence",)
    return c


def test_disco_lists_msgoffline(server):
    c = server.login("disco")
    c.send("<iq type='get' id='d1' to='localhost'><query xmlns='%s'/></iq>"
           % NS["disco"])
    c.expect("iq", attrs={"id": "d1", "type": "result"},
             regex="<feature var='msgoffline'/>")


def test_stored_then_delivered_in_order_and_removed(server):
    bob = server.account("later")
    a = server.login("early")
    send(a, bob.jid, "chat", "first")
    send(a, bob.jid, None, "second")             # no type: normal
    send(a, bob.jid + "/gone", "chat", "third")  # chat to a missing resource
    b = login(server, bob)
    expect_stored(b, a, "first")
    expect_stored(b, a, "second", type=None)
    el = expect_stored(b, a, "third")
    check(el.get("to") == bob.jid + "/gone", "'to' kept")
    sync(a, b)                                   # nothing else, no errors for a
    b.end_stream()
    b.expect_closed()
    again = login(server, bob)
    sync(a, again)                               # delivered once only


def test_delivered_only_to_non_negative_presence(server):
    bob = server.account("negative")
    a = server.login("patient")
    send(a, bob.jid, "chat", "wait for it")
    neg = login(server, bob, priority=-1, resource="neg")
    sync(a, neg)
    neg.presence(priority=1)                     # now it may have them
    expect_stored(neg, a, "wait for it")


def test_not_stored_types(server):
    bob = server.account("types")
    a = server.login("typesender")
    send(a, bob.jid, "headline", "news")         # dropped (8.5.2.2.1)
    mid = send(a, bob.jid, "groupchat", "room")
    a.expect_error("message", "service-unavailable", attrs={"id": mid})
    send(a, bob.jid, "error", "oops")            # dropped
    b = login(server, bob)
    sync(a, b)


def test_chat_states_alone_are_not_stored_and_not_bounced(server):
    bob = server.account("states")
    a = server.login("typist")
    send(a, bob.jid, "chat", None, extra="<composing xmlns='%s'/>" % CHATSTATES)
    send(a, bob.jid, "chat", "real text",
         extra="<active xmlns='%s'/>" % CHATSTATES)
    b = login(server, bob)
    el = expect_stored(b, a, "real text")
    check(find(el, "{%s}active" % CHATSTATES) is not None, "payload kept")
    sync(a, b)


def test_hints(server):
    bob = server.account("hinted")
    a = server.login("hinter")
    mid = send(a, bob.jid, "chat", "ephemeral",
               extra="<no-store xmlns='%s'/>" % HINTS)
    a.expect_error("message", "service-unavailable", attrs={"id": mid})
    send(a, bob.jid, "chat", None, mid="keep-me",
         extra="<paused xmlns='%s'/><store xmlns='%s'/>" % (CHATSTATES, HINTS))
    b = login(server, bob)
    el = b.expect("message", attrs={"id": "keep-me", "from": a.jid})
    check(find(el, "{%s}delay" % DELAY) is not None, "stored with a stamp")
    sync(a, b)


def test_quota(server):
    bob = server.account("full")
    a = server.login("flooder")
    for n in range(3):
        send(a, bob.jid, "chat", "m%d" % n)
    mid = send(a, bob.jid, "chat", "one too many")
    err = a.expect_error("message", "service-unavailable", type="cancel",
                         attrs={"id": mid, "from": bob.jid})
    check("full" in (find(err, "error/stanzas:text").text or ""),
          "the error says why")
    b = login(server, bob)
    for n in range(3):
        expect_stored(b, a, "m%d" % n)
    b.end_stream()
    b.expect_closed()
    send(a, bob.jid, "chat", "room again")       # the quota is free again
    b = login(server, bob)
    expect_stored(b, a, "room again")


def test_online_recipient_gets_messages_directly(server):
    bob = server.account("online")
    b = login(server, bob)
    a = server.login("direct")
    send(a, bob.jid, "chat", "live")
    el = b.expect("message", child="body", text="live")
    check(find(el, "{%s}delay" % DELAY) is None, "no delay when delivered live")
