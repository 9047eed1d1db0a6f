"""XEP-0352 Client State Indication: an inactive client gets no presence
until it goes active, then only the newest per contact; chat states are
dropped; a message that matters sends everything held at once."""

from harness import check, fixture, sync
from xmpp import esc

CSI = "urn:xmpp:csi:0"
MODULES = ["roster", "presence", "message", "iq", "ping", "csi"]


@fixture
def server(scope):
    return scope.server(modules=MODULES)


def go_inactive(c):
    # the server has taken it once a later iq is answered
    c.send("<inactive xmlns='%s'/>" % CSI)
    c.send("<iq type='get' id='after-inactive' to='localhost'>"
           "<ping xmlns='urn:xmpp:ping'/></iq>")
    c.expect("iq", attrs={"id": "after-inactive", "type": "result"})


def directed(sender, to, status):
    sender.send("<presence to='%s'><status>%s</status></presence>"
                % (esc(to), status))


def test_feature_after_auth(server):
    a = server.account("csifeat")
    c = server.client()
    check(c.features.find("{%s}csi" % CSI) is None, "csi before auth")
    c.auth_scram(a.user, a.password)
    check(c.features.find("{%s}csi" % CSI) is not None, "no csi after auth")


def test_inactive_gets_only_newest_presence_when_active(server):
    a = server.login("phone", presence=True)
    a.ignore = ()
    a.expect("presence")                    # its own initial presence
    b = server.login("friend", presence=True)
    c = server.login("other", presence=True)
    go_inactive(a)
    for n in (1, 2, 3):
        directed(b, a.jid, "b%d" % n)
    directed(c, a.jid, "c1")
    b.send("<message to='%s' type='chat'><composing xmlns="
           "'http://jabber.org/protocol/chatstates'/></message>" % esc(a.jid))
    # nothing reaches the inactive client: an iq still does, and only it
    b.send("<iq to='%s' type='get' id='csi-ping'><ping xmlns='urn:xmpp:ping'/></iq>"
           % esc(a.jid))
    a.expect("iq", attrs={"id": "csi-ping"})
    a.send("<active xmlns='%s'/>" % CSI)
    got = [a.expect("presence") for _ in range(2)]
    statuses = sorted(p.findtext("{jabber:client}status") for p in got)
    check(statuses == ["b3", "c1"], "after going active: %s" % statuses)
    sync(b, a)                              # and nothing else (no chat state)


def test_message_with_body_flushes_in_order(server):
    a = server.login("pocket", presence=True)
    a.ignore = ()
    a.expect("presence")
    b = server.login("caller", presence=True)
    go_inactive(a)
    directed(b, a.jid, "held")
    b.send("<message to='%s' type='chat' id='wake'><body>hi</body></message>"
           % esc(a.jid))
    a.expect("presence", child="status", text="held")
    a.expect("message", attrs={"id": "wake"})
