"""The IM features with remote contacts: two Starlings (a.example and
b.example on 127.0.0.1, pinned to each other with s2s_static_hosts),
each user talking to a user of the other server over server-to-server
streams. Everything the IM modules do for a local contact they must do
for a remote one: subscriptions in every direction and state with their
roster pushes (RFC 6121 3), probes answered with the last presence,
presence broadcast and the unavailable at logout, directed presence
(4.6), offline delivery and its bounce (XEP-0160), carbons (XEP-0280),
archives (XEP-0313), blocking (XEP-0191), the errors a remote server
answers with, and the remote server's and user's vCard, last activity
and version."""

from harness import check, fixture, sync
from im import ask_and_approve, befriend, expect_presence, expect_push, im_login, \
    presence, roster_get, unfriend
from xmpp import ABSENT, STREAM_END, esc, find, find_all, new_id, text_of

MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "offline",
           "carbons", "mam", "blocklist", "vcard", "lastactivity", "uptime",
           "version"]
CARBONS = "urn:xmpp:carbons:2"
FWD = "urn:xmpp:forward:0"
DELAY = "urn:xmpp:delay"
MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
BLOCKING = "urn:xmpp:blocking"
BLOCKED = "urn:xmpp:blocking:errors"
VCARD = "vcard-temp"
LAST = "jabber:iq:last"
VERSION = "jabber:iq:version"
T = 15  # the first stanza to the other domain waits for the stream


@fixture
def pair(scope):
    import peers
    return peers.starling_pair(scope, "a.example", "b.example", modules=MODULES,
                               options={"offline_max_messages": 3})


def chat(sender, to, ident, body=None, extra=""):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body>%s</message>"
                % (esc(to), ident, esc(body or ident), extra))


def ping_server(c, domain):
    """An iq to domain and its answer: what c sent to domain's server
    before went over the same stream, so it has been handled there."""
    iq_id = new_id("ping")
    c.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
           % (iq_id, domain))
    return c.expect("iq", attrs={"id": iq_id, "type": "result", "from": domain},
                    timeout=T)


def iq_get(c, to, payload):
    iq_id = new_id("q")
    c.send("<iq type='get' id='%s' to='%s'>%s</iq>" % (iq_id, esc(to), payload))
    return iq_id


def chatting_bystanders(a, b):
    """A user of each server who chat with each other across the link."""
    x = a.login("bya", name="bystander-a")
    y = b.login("byb", name="bystander-b")
    cross(x, y)
    return x, y


def cross(x, y):
    for s, r in ((x, y), (y, x)):
        ident = new_id("by")
        chat(s, r.jid, ident)
        r.expect("message", attrs={"id": ident, "from": s.jid}, child="body",
                 text=ident, timeout=T)


# ------------------------------------------------------------ subscriptions

def test_subscriptions_in_every_direction_and_state(pair):
    a, b = pair
    alice = im_login(a, "sa")
    bob = im_login(b, "sb")
    befriend(alice, bob)  # each step's pushes and presence, both ways

    # alice unsubscribes: both -> from at a, both -> to at b; bob's
    # resources tell alice they are gone for her (3.3.3)
    presence(alice, bob.bare, "unsubscribe")
    expect_push(alice, bob.bare, "from")
    expect_push(bob, alice.bare, "to")
    expect_presence(bob, alice.bare, "unsubscribe")
    expect_presence(alice, bob.jid, "unavailable")

    # alice cancels bob's subscription: from -> none, to -> none (3.2)
    presence(alice, bob.bare, "unsubscribed")
    expect_push(alice, bob.bare, "none")
    expect_push(bob, alice.bare, "none")
    expect_presence(bob, alice.bare, "unsubscribed")
    expect_presence(bob, alice.jid, "unavailable")

    # bob asks, alice declines: bob's pending request ends (3.1.4)
    presence(bob, alice.bare, "subscribe")
    expect_push(bob, alice.bare, "none", ask="subscribe")
    expect_presence(alice, bob.bare, "subscribe")
    presence(alice, bob.bare, "unsubscribed")
    expect_push(bob, alice.bare, "none")
    expect_presence(bob, alice.bare, "unsubscribed")

    # alice pre-approves bob (3.4); his request is approved by a.example
    # without reaching her
    presence(alice, bob.bare, "subscribed")
    expect_push(alice, bob.bare, "none", approved="true")
    presence(bob, alice.bare, "subscribe")
    expect_push(bob, alice.bare, "none", ask="subscribe")
    expect_push(alice, bob.bare, "from")
    expect_push(bob, alice.bare, "to")
    expect_presence(bob, alice.bare, "subscribed")
    expect_presence(bob, alice.jid)

    # bob's request the other way, then bob removes alice from his roster:
    # his subscription to her and hers to him are cancelled (2.5.2)
    ask_and_approve(alice, bob, had="from")
    unfriend(bob, alice)
    check(alice.bare not in roster_get(bob), "bob's roster keeps alice")
    check(roster_get(alice)[bob.bare]["subscription"] == "none",
          "alice's item of bob is not none")
    sync(alice, bob)
    sync(bob, alice)


def test_a_request_waits_for_the_remote_contact_and_a_ghost_declines(pair):
    a, b = pair
    alice = im_login(a, "wa")
    account = b.account("wb")
    presence(alice, account.jid, "subscribe")
    expect_push(alice, account.jid, "none", ask="subscribe")
    ping_server(alice, "b.example")  # the request is at b.example
    bob = b.login(account, ignore_presence=False)
    roster_get(bob)
    bob.presence()
    expect_presence(bob, bob.jid)
    el = expect_presence(bob, alice.bare, "subscribe", timeout=T)
    check(find(el, "{%s}delay" % DELAY) is not None, "no delay on a kept request")

    # a subscription request to an account b.example does not have is
    # answered "unsubscribed" (RFC 6121 8.5.1)
    presence(alice, "ghost@b.example", "subscribe")
    expect_push(alice, "ghost@b.example", "none", ask="subscribe")
    expect_push(alice, "ghost@b.example", "none")
    expect_presence(alice, "ghost@b.example", "unsubscribed")


# ------------------------------------------------------------ presence

def test_probes_on_login_are_answered_with_the_last_presence(pair):
    a, b = pair
    alice = im_login(a, "pa")
    bob = im_login(b, "pb")
    befriend(alice, bob)
    bob.send("<presence type='unavailable'><status>gone fishing</status></presence>")
    expect_presence(alice, bob.jid, "unavailable", child="status", text="gone fishing",
                    timeout=T)
    bob.close()
    alice.send("<presence type='unavailable'/>")
    alice.roundtrip()
    alice.close()

    # alice comes back: b.example answers her probe with bob's last
    # unavailable presence, stamped with when it was sent
    alice = im_login(a, alice.account)
    el = alice.expect("presence", attrs={"type": "unavailable"}, child="status",
                      text="gone fishing", timeout=T)
    check(el.get("from") in (bob.bare, bob.jid), "probe answered from %r" % el.get("from"))
    check(el.get("to") == alice.jid, "probe answered to %r" % el.get("to"))
    stamp = find(el, "{%s}delay" % DELAY)
    check(stamp is not None and stamp.get("from") == "b.example",
          "the last presence has no delay from b.example")

    # bob comes back away; alice sees it, and so does her next session's probe
    bob = b.login(bob.account, resource="desk", ignore_presence=False)
    bob.presence(show="away")
    expect_presence(bob, bob.jid)
    expect_presence(alice, bob.jid, child="show", text="away", timeout=T)
    expect_presence(bob, alice.jid, timeout=T)  # the answer to bob's probe
    alice.close()
    expect_presence(bob, alice.jid, "unavailable", timeout=T)
    alice = im_login(a, alice.account)
    expect_presence(alice, bob.jid, child="show", text="away", timeout=T)
    expect_presence(bob, alice.jid)
    sync(bob, alice)


def test_presence_reaches_remote_subscribers_and_logout_says_unavailable(pair):
    a, b = pair
    alice = im_login(a, "ba")
    bob = im_login(b, "bb")
    befriend(alice, bob)
    # bob's second resource: its probe is answered with alice's presence
    bob2 = im_login(b, bob.account, resource="second")
    expect_presence(bob, bob2.jid)
    expect_presence(bob2, bob.jid)
    expect_presence(bob2, alice.jid, timeout=T)
    expect_presence(alice, bob2.jid, timeout=T)
    alice.send("<presence><show>xa</show><status>lunch</status></presence>")
    expect_presence(alice, alice.jid, child="show", text="xa")
    for c in (bob, bob2):
        c.wait_for("presence", attrs={"from": alice.jid, "type": ABSENT}, child="show",
                   text="xa", timeout=T)
    # the connection drops without an unavailable presence
    alice.close()
    for c in (bob, bob2):
        c.wait_for("presence", attrs={"from": alice.jid, "type": "unavailable"},
                   timeout=T)
    # presence after a logout and login flows again
    alice = im_login(a, alice.account)
    for c in (bob, bob2):
        c.wait_for("presence", attrs={"from": alice.jid, "type": ABSENT}, timeout=T)


def test_directed_presence_to_a_remote_full_jid_and_its_unavailable(pair):
    a, b = pair
    alice = im_login(a, "da")
    bob = im_login(b, "db")
    x, y = chatting_bystanders(a, b)
    # no subscription: directed presence only (RFC 6121 4.6)
    presence(alice, bob.jid, inner="<status>here for you</status>")
    expect_presence(bob, alice.jid, child="status", text="here for you", timeout=T)
    alice.close()
    el = expect_presence(bob, alice.jid, "unavailable", timeout=T)
    check(el.get("to") == bob.jid, "unavailable to %r" % el.get("to"))

    # a directed unavailable ends it: the logout sends no second one
    alice = im_login(a, alice.account)
    presence(alice, bob.jid)
    expect_presence(bob, alice.jid, timeout=T)
    presence(alice, bob.jid, "unavailable")
    expect_presence(bob, alice.jid, "unavailable", timeout=T)
    alice.close()
    carol = a.login("dc")
    chat(carol, bob.jid, "after")
    bob.expect("message", attrs={"id": "after"}, timeout=T)

    # directed presence before initial presence, then the logout
    dave = a.login("dd", ignore_presence=False)
    presence(dave, bob.jid)
    expect_presence(bob, dave.jid, timeout=T)
    dave.end_stream()
    expect_presence(bob, dave.jid, "unavailable", timeout=T)
    cross(x, y)


# ------------------------------------------------------------ offline

def test_offline_messages_from_a_remote_sender_wait_and_a_full_store_bounces(pair):
    a, b = pair
    alice = a.login("oa")
    account = b.account("ob")
    for i in range(1, 4):
        chat(alice, account.jid, "o%d" % i, "offline %d" % i)
    ping_server(alice, "b.example")
    # offline_max_messages is 3: the fourth goes back over s2s
    chat(alice, account.jid, "o4", "offline 4")
    el = alice.expect_error("message", "service-unavailable", type="cancel",
                            attrs={"id": "o4", "from": account.jid, "to": alice.jid},
                            timeout=T)
    check(text_of(el, "{jabber:client}body") in (None, "offline 4"), "bounce body")
    bob = b.login(account, presence=True)
    for i in range(1, 4):
        el = bob.expect("message", attrs={"id": "o%d" % i, "from": alice.jid},
                        child="body", text="offline %d" % i)
        stamp = find(el, "{%s}delay" % DELAY)
        check(stamp is not None and stamp.get("from") == "b.example",
              "offline message without a delay from b.example")
    sync(alice, bob)
    # the store is empty again: the next one is kept
    bob.send("<presence type='unavailable'/>")
    bob.roundtrip()
    chat(alice, bob.bare, "o5")
    ping_server(alice, "b.example")
    bob.presence()
    bob.expect("message", attrs={"id": "o5"})


# ------------------------------------------------------------ carbons

def enable_carbons(c):
    c.send("<iq type='set' id='cb'><enable xmlns='%s'/></iq>" % CARBONS)
    c.expect("iq", attrs={"type": "result", "id": "cb"})


def forwarded(el, direction):
    return el.find("{%s}%s/{%s}forwarded/{jabber:client}message" % (CARBONS, direction, FWD))


def test_carbons_copy_remote_conversations_both_ways(pair):
    a, b = pair
    account = a.account("ca")
    phone = a.login(account, resource="phone", presence=True)
    desk = a.login(account, resource="desk", presence=True)
    bob = b.login("cb", presence=True)
    enable_carbons(desk)
    chat(phone, bob.jid, "c-out")
    bob.expect("message", attrs={"id": "c-out", "from": phone.jid}, timeout=T)
    el = desk.expect("message", attrs={"from": account.jid, "to": desk.jid},
                     child="{%s}sent" % CARBONS)
    inner = forwarded(el, "sent")
    check(inner is not None and inner.get("id") == "c-out" and inner.get("to") == bob.jid,
          "sent copy: %r" % (inner.attrib if inner is not None else None))
    chat(bob, phone.jid, "c-in")
    phone.expect("message", attrs={"id": "c-in", "from": bob.jid}, timeout=T)
    el = desk.expect("message", attrs={"from": account.jid, "to": desk.jid},
                     child="{%s}received" % CARBONS)
    inner = forwarded(el, "received")
    check(inner is not None and inner.get("id") == "c-in" and inner.get("from") == bob.jid,
          "received copy: %r" % (inner.attrib if inner is not None else None))
    # a private message is not copied
    chat(bob, phone.jid, "c-private", extra="<private xmlns='%s'/>" % CARBONS)
    phone.expect("message", attrs={"id": "c-private"}, timeout=T)
    sync(bob, desk)


# ------------------------------------------------------------ archives

def mam_query(c, with_jid):
    qid, iq_id = new_id("q"), new_id("mam")
    c.send("<iq type='set' id='%s'><query xmlns='%s' queryid='%s'><x xmlns='jabber:x:data' "
           "type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>"
           "<field var='with'><value>%s</value></field></x></query></iq>"
           % (iq_id, MAM, qid, MAM, esc(with_jid)))
    results = []
    while True:
        el = c.expect()
        if el.tag == "{jabber:client}iq":
            check(el.get("id") == iq_id and el.get("type") == "result", "answer %r" % el.attrib)
            return results
        result = find(el, "{%s}result" % MAM)
        check(result is not None and result.get("queryid") == qid, "not a result: %r" % el)
        results.append((result.get("id"),
                        find(result, "{%s}forwarded/{jabber:client}message" % FWD)))


def test_archives_keep_both_sides_of_a_remote_conversation(pair):
    a, b = pair
    alice = a.login("ma", presence=True)
    bob = b.login("mb", presence=True)
    chat(alice, bob.jid, "m-out", "to bob")
    el = bob.expect("message", attrs={"id": "m-out"}, timeout=T)
    bob_ids = [s.get("id") for s in find_all(el, "{%s}stanza-id" % SID)
               if s.get("by") == bob.bare]
    check(len(bob_ids) == 1, "stanza-ids of bob's copy: %r" % el)
    check(not [s for s in find_all(el, "{%s}stanza-id" % SID) if s.get("by") != bob.bare],
          "alice's server's stanza-id reached bob")
    chat(bob, alice.jid, "m-in", "to alice")
    el = alice.expect("message", attrs={"id": "m-in"}, timeout=T)
    alice_ids = [s.get("id") for s in find_all(el, "{%s}stanza-id" % SID)
                 if s.get("by") == alice.bare]
    check(len(alice_ids) == 1, "stanza-ids of alice's copy: %r" % el)

    for c, other, received_id in ((alice, bob, alice_ids[0]), (bob, alice, bob_ids[0])):
        results = mam_query(c, other.bare)
        bodies = [text_of(m, "{jabber:client}body") for _, m in results]
        check(bodies == ["to bob", "to alice"], "%s's archive: %r" % (c.name, bodies))
        ids = [i for i, _ in results]
        check(all(ids) and len(set(ids)) == 2, "archive ids %r" % ids)
        check(received_id in ids, "the stanza-id %s is not in %r" % (received_id, ids))
        senders = [m.get("from") for _, m in results]
        check(senders == [alice.jid, bob.jid], "senders %r" % senders)


# ------------------------------------------------------------ blocking

def block(c, what, jids):
    iq_id = new_id("bl")
    c.send("<iq type='set' id='%s'><%s xmlns='%s'>%s</%s></iq>"
           % (iq_id, what, BLOCKING, "".join("<item jid='%s'/>" % esc(j) for j in jids), what))
    c.expect("iq", attrs={"id": iq_id, "type": "result"})


def test_blocking_a_remote_jid(pair):
    a, b = pair
    alice = im_login(a, "xa")
    bob = im_login(b, "xb")
    x, y = chatting_bystanders(a, b)
    alice.send("<iq type='set' id='v1'><vCard xmlns='%s'><FN>Alice</FN></vCard></iq>" % VCARD)
    alice.expect("iq", attrs={"id": "v1", "type": "result"})
    befriend(alice, bob)
    iq_id = iq_get(bob, alice.bare, "<vCard xmlns='%s'/>" % VCARD)
    bob.expect("iq", attrs={"id": iq_id, "type": "result"}, child="{%s}vCard" % VCARD,
               timeout=T)
    block(alice, "block", [bob.bare])
    # blocking sends bob alice's unavailable presence
    expect_presence(bob, alice.jid, "unavailable", timeout=T)

    # a message from bob: service-unavailable; presence: dropped; iq
    # get/set: service-unavailable, to her bare JID (vCard) and full JID
    chat(bob, alice.jid, "x1")
    bob.expect_error("message", "service-unavailable",
                     attrs={"id": "x1", "from": alice.jid}, timeout=T)
    chat(bob, alice.bare, "x2")
    bob.expect_error("message", "service-unavailable", attrs={"id": "x2"}, timeout=T)
    bob.send("<presence><show>chat</show></presence>")
    expect_presence(bob, bob.jid, child="show", text="chat")
    presence(bob, alice.jid, inner="<status>directed</status>")
    iq_id = iq_get(bob, alice.bare, "<vCard xmlns='%s'/>" % VCARD)
    bob.expect_error("iq", "service-unavailable", attrs={"id": iq_id, "from": alice.bare},
                     timeout=T)
    iq_id = iq_get(bob, alice.jid, "<ping xmlns='urn:xmpp:ping'/>")
    bob.expect_error("iq", "service-unavailable", attrs={"id": iq_id, "from": alice.jid},
                     timeout=T)
    iq_id = iq_get(bob, alice.bare, "<query xmlns='%s'/>" % LAST)
    bob.expect_error("iq", "service-unavailable", attrs={"id": iq_id, "from": alice.bare},
                     timeout=T)
    # alice cannot send to bob: not-acceptable with <blocked/>
    chat(alice, bob.jid, "x3")
    el = alice.expect_error("message", "not-acceptable", type="cancel", attrs={"id": "x3"})
    check(find(el, "error/{%s}blocked" % BLOCKED) is not None, "no <blocked/>")
    iq_id = iq_get(alice, bob.bare, "<vCard xmlns='%s'/>" % VCARD)
    alice.expect_error("iq", "not-acceptable", attrs={"id": iq_id})
    # alice's presence changes do not reach bob
    alice.send("<presence><show>away</show></presence>")
    expect_presence(alice, alice.jid, child="show", text="away")
    # the next thing bob sees from alice's side is the marker: nothing of
    # the above went through
    sync(x, bob)
    sync(alice, x)

    # unblock: bob gets alice's current presence, and they talk again
    block(alice, "unblock", [bob.bare])
    expect_presence(bob, alice.jid, child="show", text="away", timeout=T)
    chat(bob, alice.jid, "x4")
    alice.expect("message", attrs={"id": "x4", "from": bob.jid}, timeout=T)
    chat(alice, bob.jid, "x5")
    bob.expect("message", attrs={"id": "x5", "from": alice.jid}, timeout=T)
    iq_id = iq_get(bob, alice.bare, "<vCard xmlns='%s'/>" % VCARD)
    bob.expect("iq", attrs={"id": iq_id, "type": "result"}, child="{%s}vCard" % VCARD,
               timeout=T)
    cross(x, y)


def test_blocking_a_remote_domain_keeps_probes_and_presence_away(pair):
    a, b = pair
    alice = im_login(a, "ya")
    bob = im_login(b, "yb")
    x, y = chatting_bystanders(a, b)
    befriend(alice, bob)
    block(alice, "block", ["b.example"])
    expect_presence(bob, alice.jid, "unavailable", timeout=T)
    # bob's new resource probes alice: no answer; alice's new resource
    # gets no presence from b.example either
    bob2 = im_login(b, bob.account, resource="two")
    expect_presence(bob, bob2.jid)
    expect_presence(bob2, bob.jid)
    alice2 = im_login(a, alice.account, resource="two")
    expect_presence(alice, alice2.jid)
    expect_presence(alice2, alice.jid)
    alice.send("<presence><show>dnd</show></presence>")
    expect_presence(alice, alice.jid, child="show", text="dnd")
    expect_presence(alice2, alice.jid, child="show", text="dnd")
    sync(x, bob2)
    sync(x, bob)
    # no answer to a probe came back: alice2's probes went out before x's
    # ping, so an answer would have reached alice2 before x's marker
    ping_server(x, "b.example")
    sync(x, alice2)
    block(alice, "unblock", [])
    for c in (bob, bob2):
        c.wait_for("presence", attrs={"from": alice.jid}, child="show", text="dnd", timeout=T)
    cross(x, y)


# ------------------------------------------------------------ errors

def test_errors_from_the_remote_server_come_back(pair):
    a, b = pair
    alice = a.login("ea")
    bob = b.login("eb")  # connected, no presence
    x, y = chatting_bystanders(a, b)
    # an account that does not exist: iq and message service-unavailable
    iq_id = iq_get(alice, "ghost@b.example", "<vCard xmlns='%s'/>" % VCARD)
    alice.expect_error("iq", "service-unavailable", type="cancel",
                       attrs={"id": iq_id, "from": "ghost@b.example", "to": alice.jid},
                       timeout=T)
    iq_id = iq_get(alice, "ghost@b.example/r", "<ping xmlns='urn:xmpp:ping'/>")
    alice.expect_error("iq", "service-unavailable",
                       attrs={"id": iq_id, "from": "ghost@b.example/r"}, timeout=T)
    alice.send("<message to='ghost@b.example' id='g1' type='normal'><body>?</body></message>")
    alice.expect_error("message", "service-unavailable",
                       attrs={"id": "g1", "from": "ghost@b.example"}, timeout=T)
    # an iq to the bare JID of a user without a session there: answered by
    # b.example for the account
    iq_id = iq_get(alice, bob.bare, "<query xmlns='urn:example:nothing'/>")
    alice.expect_error("iq", "service-unavailable", attrs={"id": iq_id, "from": bob.bare},
                       timeout=T)
    bob.close()
    # bob is offline: the iq to his bare JID is b.example's to answer, and
    # tells a stranger nothing
    iq_id = iq_get(alice, bob.bare, "<ping xmlns='urn:xmpp:ping'/>")
    alice.expect_error("iq", "service-unavailable", type="cancel",
                       attrs={"id": iq_id, "from": bob.bare, "to": alice.jid}, timeout=T)
    iq_id = iq_get(alice, bob.bare + "/gone", "<ping xmlns='urn:xmpp:ping'/>")
    alice.expect_error("iq", "service-unavailable",
                       attrs={"id": iq_id, "from": bob.bare + "/gone"}, timeout=T)
    # a normal message to a resource that is not there bounces
    alice.send("<message to='%s/gone' id='g2'><body>?</body></message>" % bob.bare)
    alice.expect_error("message", "service-unavailable",
                       attrs={"id": "g2", "from": bob.bare + "/gone"}, timeout=T)
    # an error or result to the remote side is never answered
    alice.send("<iq type='result' id='stray' to='%s'/>" % (bob.bare + "/gone"))
    alice.send("<message type='error' id='e1' to='ghost@b.example'><error type='cancel'>"
               "<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "</error></message>")
    ping_server(alice, "b.example")
    sync(x, alice)
    cross(x, y)


# ------------------------------------------------------------ vCard, last activity, version

def test_vcard_last_activity_and_version_across_servers(pair):
    a, b = pair
    alice = im_login(a, "va")
    bob = im_login(b, "vb")
    bob.send("<iq type='set' id='v1'><vCard xmlns='%s'><FN>Bob Remote</FN>"
             "<NICKNAME>bobby</NICKNAME></vCard></iq>" % VCARD)
    bob.expect("iq", attrs={"id": "v1", "type": "result"})
    iq_id = iq_get(alice, bob.bare, "<vCard xmlns='%s'/>" % VCARD)
    el = alice.expect("iq", attrs={"id": iq_id, "type": "result", "from": bob.bare,
                                   "to": alice.jid}, timeout=T)
    check(text_of(el, "{%s}vCard/{%s}FN" % (VCARD, VCARD)) == "Bob Remote",
          "bob's vCard: %r" % el)

    # the remote server's uptime and version
    iq_id = iq_get(alice, "b.example", "<query xmlns='%s'/>" % LAST)
    el = alice.expect("iq", attrs={"id": iq_id, "type": "result", "from": "b.example"},
                      timeout=T)
    seconds = find(el, "{%s}query" % LAST).get("seconds")
    check(seconds is not None and seconds.isdigit(), "uptime %r" % seconds)
    iq_id = iq_get(alice, "b.example", "<query xmlns='%s'/>" % VERSION)
    el = alice.expect("iq", attrs={"id": iq_id, "type": "result", "from": "b.example"},
                      timeout=T)
    check(text_of(el, "{%s}query/{%s}name" % (VERSION, VERSION)) == "Starling",
          "version %r" % el)

    # bob's last activity: forbidden until alice is subscribed to him,
    # then 0 while he is connected and the time since his logout after
    iq_id = iq_get(alice, bob.bare, "<query xmlns='%s'/>" % LAST)
    alice.expect_error("iq", "forbidden", attrs={"id": iq_id, "from": bob.bare}, timeout=T)
    befriend(alice, bob)
    iq_id = iq_get(alice, bob.bare, "<query xmlns='%s'/>" % LAST)
    el = alice.expect("iq", attrs={"id": iq_id, "type": "result", "from": bob.bare},
                      timeout=T)
    check(find(el, "{%s}query" % LAST).get("seconds") == "0", "last of a connected user")
    bob.send("<presence type='unavailable'><status>bye</status></presence>")
    expect_presence(alice, bob.jid, "unavailable", timeout=T)
    bob.end_stream()
    while bob.next_item(T, STREAM_END) is not STREAM_END:
        pass  # his own unavailable presence
    iq_id = iq_get(alice, bob.bare, "<query xmlns='%s'/>" % LAST)
    el = alice.expect("iq", attrs={"id": iq_id, "type": "result", "from": bob.bare},
                      timeout=T)
    check(text_of(el, "{%s}query" % LAST) == "bye", "last status %r" % el)


def test_a_server_that_stops_tells_remote_contacts_its_users_are_gone(ctx):
    import peers
    a, b = peers.starling_pair(ctx, "c.example", "d.example", modules=MODULES)
    alice = im_login(a, "sd")
    bob = im_login(b, "sd")
    befriend(alice, bob)
    a.stop()
    el = expect_presence(bob, alice.jid, "unavailable", timeout=T)
    check(el.get("to") == bob.bare, "unavailable to %r" % el.get("to"))
    b.wait_log(r"s2s incoming c\.example -> d\.example closed")
