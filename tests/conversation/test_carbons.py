"""XEP-0280 Message Carbons: copies to the account's other resources in
both directions, not for private messages, none after disabling."""

from harness import check, fixture, sync
from xmpp import esc

NS = "urn:xmpp:carbons:2"
FWD = "urn:xmpp:forward:0"
MODULES = ["roster", "presence", "message", "iq", "carbons", "disco"]


@fixture
def server(scope):
    return scope.server(modules=MODULES)


def enable(c, what="enable"):
    c.send("<iq type='set' id='cb-%s'><%s xmlns='%s'/></iq>" % (what, what, NS))
    c.expect("iq", attrs={"type": "result", "id": "cb-" + what})


def chat(sender, to, ident, extra=""):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body>%s</message>"
                % (esc(to), ident, ident, extra))


def forwarded_id(el, direction):
    inner = el.find("{%s}%s/{%s}forwarded/{jabber:client}message" % (NS, direction, FWD))
    return inner.get("id") if inner is not None else None


def test_feature_advertised(server):
    c = server.login("cbdisco")
    c.send("<iq type='get' id='d1' to='localhost'><query "
           "xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    c.expect("iq", attrs={"id": "d1"},
             regex="<feature var='%s'/>" % NS.replace(":", ":"))


def test_copies_both_directions(server):
    acct = server.account("multi")
    phone = server.login(acct, resource="phone", presence=True)
    desk = server.login(acct, resource="desk", presence=True)
    bob = server.login("bobcb", presence=True)
    enable(desk)
    # received on the phone -> a <received/> copy on the desk
    chat(bob, phone.jid, "in1")
    phone.expect("message", attrs={"id": "in1"})
    el = desk.expect("message", attrs={"from": acct.jid, "to": desk.jid},
                     child="{%s}received" % NS)
    check(forwarded_id(el, "received") == "in1", "received copy: %r" % el)
    # sent from the phone -> a <sent/> copy on the desk
    chat(phone, bob.jid, "out1")
    bob.expect("message", attrs={"id": "out1"})
    el = desk.expect("message", attrs={"from": acct.jid}, child="{%s}sent" % NS)
    check(forwarded_id(el, "sent") == "out1", "sent copy: %r" % el)
    # the phone (carbons off) gets no copy of the desk's messages
    chat(desk, bob.jid, "out2")
    bob.expect("message", attrs={"id": "out2"})
    sync(bob, phone)


def test_private_and_disabled_are_not_copied(server):
    acct = server.account("quiet")
    a = server.login(acct, resource="a", presence=True)
    b = server.login(acct, resource="b", presence=True)
    peer = server.login("peercb", presence=True)
    enable(b)
    chat(a, peer.jid, "secret", "<private xmlns='%s'/>" % NS)
    peer.expect("message", attrs={"id": "secret"})
    sync(peer, b)                       # no copy of a private message
    enable(b, "disable")
    chat(peer, a.jid, "later")
    a.expect("message", attrs={"id": "later"})
    sync(peer, b)                       # carbons off again
