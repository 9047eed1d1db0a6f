"""Message delivery (RFC 6121 section 8.5, mod_message), one test per row
of its tables: to a bare JID, to a full JID, with no 'to', for each
message type, with and without available resources, for accounts that do
not exist. This server has no offline storage: what would be stored
bounces with service-unavailable (XEP-0160 section 1)."""

from harness import check, fixture, sync
from xmpp import ABSENT, esc, find, new_id


@fixture
def server(scope):
    return scope.server()


def login(server, account, resource=None, presence=None):
    """Logged in; with presence (a priority), available once the server
    has processed it (its echo came back)."""
    c = server.login(account, resource=resource, ignore_presence=False)
    if presence is not None:
        c.presence(priority=presence)
        c.expect("presence", attrs={"from": c.jid})
    c.ignore = ("presence",)
    return c


def send(sender, to, type=None, body="hi", mid=None, extra=""):
    mid = mid or new_id("m")
    attrs = "" if to is None else " to='%s'" % esc(to)
    if type is not None:
        attrs += " type='%s'" % type
    sender.send("<message id='%s'%s><body>%s</body>%s</message>"
                % (mid, attrs, esc(body), extra))
    return mid


# -- to a bare JID with available resources (8.5.2.1.1)

def test_normal_and_chat_go_to_the_most_available_resources(server):
    bob = server.account("most")
    top1 = login(server, bob, resource="top1", presence=4)
    top2 = login(server, bob, resource="top2", presence=4)
    low = login(server, bob, resource="low", presence=0)
    a = login(server, "sender")
    for t in (None, "normal", "chat", "x-unknown"):
        body = "type %s" % t
        send(a, bob.jid, t, body)
        for c in (top1, top2):
            c.expect("message", attrs={"from": a.jid, "to": bob.jid},
                     child="body", text=body)
    sync(a, low)


def test_headline_goes_to_every_non_negative_resource(server):
    bob = server.account("headline")
    one = login(server, bob, resource="one", presence=9)
    two = login(server, bob, resource="two", presence=0)
    neg = login(server, bob, resource="neg", presence=-1)
    silent = login(server, bob, resource="silent")          # not available
    a = login(server, "news")
    send(a, bob.jid, "headline", "breaking")
    for c in (one, two):
        c.expect("message", attrs={"type": "headline"}, child="body",
                 text="breaking")
    sync(a, neg)
    sync(a, silent)


def test_groupchat_to_a_bare_jid_is_service_unavailable(server):
    bob = server.account("gc")
    b = login(server, bob, presence=0)
    a = login(server, "gcsender")
    mid = send(a, bob.jid, "groupchat")
    a.expect_error("message", "service-unavailable", type="cancel",
                   attrs={"id": mid, "from": bob.jid})
    sync(a, b)


def test_error_to_a_bare_jid_is_dropped(server):
    bob = server.account("errbare")
    b = login(server, bob, presence=0)
    a = login(server, "errsender")
    send(a, bob.jid, "error")
    sync(a, b)
    sync(b, a)                                   # and no error comes back


# -- to a bare JID with no available resource (8.5.2.2.1)

def test_nothing_available_normal_and_chat_bounce_without_offline_storage(server):
    bob = server.account("away")
    connected = login(server, bob)                # bound, never available
    neg = login(server, bob, resource="neg", presence=-3)
    a = login(server, "knock")
    for t in (None, "normal", "chat"):
        mid = send(a, bob.jid, t)
        a.expect_error("message", "service-unavailable", attrs={"id": mid})
    sync(a, connected)
    sync(a, neg)


def test_nothing_available_headline_and_error_are_dropped(server):
    bob = server.account("awaynews")
    neg = login(server, bob, presence=-1)
    a = login(server, "quietsender")
    send(a, bob.jid, "headline")
    send(a, bob.jid, "error")
    sync(neg, a)                                 # no error for a
    sync(a, neg)


def test_nothing_available_groupchat_is_service_unavailable(server):
    bob = server.account("awaygc")
    a = login(server, "gcaway")
    mid = send(a, bob.jid, "groupchat")
    a.expect_error("message", "service-unavailable", attrs={"id": mid})


# -- no such user (8.5.1)

def test_unknown_user(server):
    a = login(server, "nosuch")
    ghost = "ghost-%s@localhost" % new_id()
    for t in ("normal", "chat", "headline", "groupchat"):
        mid = send(a, ghost, t)
        a.expect_error("message", "service-unavailable", attrs={"id": mid})
    send(a, ghost, "error")
    send(a, ghost + "/res", "error")
    b = login(server, "witness")
    sync(b, a)                                   # no answer to errors


# -- to a full JID (8.5.3)

def test_full_jid_with_a_session_gets_every_type(server):
    bob = server.account("fullsess")
    b = login(server, bob, resource="r")           # not even available
    a = login(server, "fullsender")
    for t in ("normal", "chat", "headline", "groupchat", "error"):
        send(a, b.jid, t, "type " + t)
        b.expect("message", attrs={"type": t, "to": b.jid}, child="body",
                 text="type " + t)


def test_full_jid_without_a_session(server):
    bob = server.account("fullgone")
    other = login(server, bob, resource="other", presence=1)
    a = login(server, "fullmiss")
    gone = bob.jid + "/gone"
    send(a, gone, "chat", "chat goes to the bare jid")      # 8.5.3.2.1
    other.expect("message", attrs={"to": gone, "type": "chat"},
                 child="body", text="chat goes to the bare jid")
    for t in ("normal", "groupchat", "x-unknown"):
        mid = send(a, gone, t)
        a.expect_error("message", "service-unavailable",
                       attrs={"id": mid, "from": gone})
    send(a, gone, "headline")
    send(a, gone, "error")
    sync(a, other)
    sync(other, a)


def test_chat_to_a_missing_resource_with_nothing_available_bounces(server):
    bob = server.account("fullnone")
    a = login(server, "fullnonesender")
    mid = send(a, bob.jid + "/x", "chat")
    a.expect_error("message", "service-unavailable", attrs={"id": mid})


# -- no 'to' (RFC 6120 10.3.1) and the own account

def test_message_without_to_goes_to_the_own_bare_jid(server):
    me = server.account("self")
    a = login(server, me, resource="a", presence=2)
    b = login(server, me, resource="b", presence=1)
    send(a, None, "chat", "note to self")
    got = a.expect("message", attrs={"from": a.jid, "to": ABSENT},
                   child="body", text="note to self")
    check(find(got, "body") is not None, "body")
    sync(a, b)                                    # b has a lower priority


def test_message_to_own_bare_jid(server):
    me = server.account("ownbare")
    a = login(server, me, resource="a", presence=0)
    b = login(server, me, resource="b", presence=0)
    send(a, me.jid, "chat", "both of us")
    a.expect("message", child="body", text="both of us")
    b.expect("message", child="body", text="both of us")


def test_payload_and_attributes_are_kept(server):
    bob = server.account("payload")
    b = login(server, bob, presence=0)
    a = login(server, "payloader")
    mid = send(a, bob.jid, "chat", "with extras",
               extra="<thread>t1</thread><x xmlns='urn:example:x' a='1'>"
                     "<y>z</y></x>")
    got = b.expect("message", attrs={"id": mid, "from": a.jid,
                                     "to": bob.jid, "type": "chat"})
    check(find(got, "thread").text == "t1", "thread")
    check(find(got, "{urn:example:x}x/{urn:example:x}y").text == "z", "extension")
