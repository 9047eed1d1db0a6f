"""mod_blocklist: XEP-0191 Simple Communications Blocking: the list, block
and unblock with pushes, and what happens to stanzas in both directions
between a user and a JID they blocked."""

from harness import check, exchange, fixture, sync
from seed import ROSTER_SEED, roster_item
from xmpp import esc, find, find_all, new_id

NS_BLOCK = "urn:xmpp:blocking"
NS_ERRORS = "urn:xmpp:blocking:errors"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "ping",
                                 "vcard", "blocklist"],
                        options={"blocklist_max_items": 5},
                        plugins={"test_roster_seed": ROSTER_SEED})


def blocklist(client):
    """The items of the client's blocklist (and it now gets pushes, which
    this passes over)."""
    iq_id = new_id("bl")
    client.send("<iq type='get' id='%s'><blocklist xmlns='%s'/></iq>"
                % (iq_id, NS_BLOCK))
    el = client.wait_for("iq", attrs={"id": iq_id, "type": "result"},
                         child="{%s}blocklist" % NS_BLOCK)
    return [i.get("jid") for i in
            find_all(el, "{%s}blocklist/{%s}item" % (NS_BLOCK, NS_BLOCK))]


def command(client, name, jids):
    iq_id = new_id(name)
    items = "".join("<item jid='%s'/>" % esc(j) for j in jids)
    client.send("<iq type='set' id='%s'><%s xmlns='%s'>%s</%s></iq>"
                % (iq_id, name, NS_BLOCK, items, name))
    return iq_id


def block(client, *jids):
    client.wait_for("iq", attrs={"id": command(client, "block", jids),
                                 "type": "result"})


def unblock(client, *jids):
    client.wait_for("iq", attrs={"id": command(client, "unblock", jids),
                                 "type": "result"})


def available_seeing_presence(client, inner=""):
    """Initial presence; the client's expect() then shows presence too
    (its own echo is read here)."""
    client.ignore = ()
    client.send("<presence>%s</presence>" % inner)
    client.expect("presence", attrs={"from": client.jid, "to": client.bare})


def chat(sender, to, body):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), new_id("m"), esc(body)))


def round_trip(client):
    """A ping to the server: everything the client sent before is handled."""
    iq_id = new_id("ping")
    client.send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % iq_id)
    client.expect("iq", attrs={"id": iq_id, "type": "result"})


def expect_blocked_error(client, tag):
    el = client.expect_error(tag, "not-acceptable", type="cancel")
    check(find(el, "error/{%s}blocked" % NS_ERRORS) is not None,
          "no <blocked/> condition")
    return el


# -- the list and the commands

def test_empty_blocklist(server):
    c = server.login("nobody-blocked")
    check(blocklist(c) == [], "not empty")


def test_block_and_unblock_change_the_list(server):
    c = server.login("lister")
    block(c, "b@localhost", "a@localhost", "spam.example")
    check(blocklist(c) == ["a@localhost", "b@localhost", "spam.example"],
          blocklist(c))
    unblock(c, "a@localhost")
    check(blocklist(c) == ["b@localhost", "spam.example"], blocklist(c))
    unblock(c)                                   # everyone
    check(blocklist(c) == [], blocklist(c))


def test_pushes_go_to_resources_that_asked(server):
    acct = server.account("pushed")
    asked = server.login(acct, resource="asked")
    quiet = server.login(acct, resource="quiet")
    actor = server.login(acct, resource="actor")
    friend = server.login("pushfriend")
    blocklist(asked)
    block(actor, "x@localhost")
    push = asked.expect("iq", attrs={"type": "set", "to": asked.jid},
                        child="{%s}block/{%s}item" % (NS_BLOCK, NS_BLOCK))
    check(find(push, "{%s}block/{%s}item" % (NS_BLOCK, NS_BLOCK)).get("jid")
          == "x@localhost", "push item")
    unblock(actor, "x@localhost")
    asked.expect("iq", attrs={"type": "set"},
                 child="{%s}unblock/{%s}item" % (NS_BLOCK, NS_BLOCK))
    unblock(actor)
    push = asked.expect("iq", attrs={"type": "set"},
                        child="{%s}unblock" % NS_BLOCK)
    check(len(find(push, "{%s}unblock" % NS_BLOCK)) == 0, "unblock-all push has items")
    sync(friend, quiet)                          # no push reached 'quiet'


def test_block_without_items_is_a_bad_request(server):
    c = server.login("emptyblock")
    c.expect_error("iq", "bad-request", type="modify",
                   attrs={"id": command(c, "block", [])})


def test_block_of_a_malformed_jid(server):
    c = server.login("malformed")
    c.expect_error("iq", "jid-malformed", attrs={"id": command(c, "block", ["@@"])})
    check(blocklist(c) == [], "something was blocked")


def test_blocklist_size_limit(server):
    c = server.login("toomany")
    block(c, *["u%d@localhost" % n for n in range(5)])
    c.expect_error("iq", "policy-violation",
                   attrs={"id": command(c, "block", ["u9@localhost"])})
    block(c, "u0@localhost")                   # already there: no new item
    check(len(blocklist(c)) == 5, blocklist(c))


# -- stanzas from a blocked JID

def test_message_from_blocked_contact(server):
    a = server.login("blocker", presence=0)
    b = server.login("blocked")
    c = server.login("witness")
    block(a, b.bare)
    chat(b, a.bare, "to the bare jid")
    b.expect_error("message", "service-unavailable", type="cancel")
    chat(b, a.jid, "to the full jid")
    b.expect_error("message", "service-unavailable", type="cancel")
    sync(c, a)                                   # a got neither
    unblock(a, b.bare)
    exchange(b, a)


def test_presence_from_blocked_contact_is_dropped(server):
    a = server.login("presblocker")
    available_seeing_presence(a)
    b = server.login("presblocked")
    c = server.login("preswitness")
    block(a, b.bare)
    b.send("<presence to='%s'/>" % esc(a.jid))
    b.send("<presence type='subscribe' to='%s'/>" % esc(a.bare))
    round_trip(b)                                # no error comes back either
    sync(c, a)


def test_iq_from_blocked_contact(server):
    a = server.login("iqblocker")
    b = server.login("iqblocked")
    block(a, b.bare)
    iq_id = new_id("vc")                         # answered by the server for a
    b.send("<iq type='get' id='%s' to='%s'><vCard xmlns='vcard-temp'/></iq>"
           % (iq_id, esc(a.bare)))
    b.expect_error("iq", "service-unavailable", attrs={"id": iq_id})
    iq_id = new_id("full")                       # would reach a's client
    b.send("<iq type='get' id='%s' to='%s'><query xmlns='jabber:iq:version'/></iq>"
           % (iq_id, esc(a.jid)))
    b.expect_error("iq", "service-unavailable", attrs={"id": iq_id})
    b.send("<iq type='result' id='stray' to='%s'/>" % esc(a.jid))
    round_trip(b)
    round_trip(a)
    check(not a.queue, "a got %s" % list(a.queue))


def test_blocking_one_resource(server):
    a = server.login("resblocker", presence=0)
    bob = server.account("resblocked")
    b1 = server.login(bob, resource="one")
    b2 = server.login(bob, resource="two")
    block(a, b1.jid)
    chat(b1, a.jid, "from one")
    b1.expect_error("message", "service-unavailable")
    exchange(b2, a)


# -- stanzas to a blocked JID

def test_sending_to_blocked_contact_is_refused(server):
    a = server.login("sender")
    b = server.login("unwanted")
    block(a, b.bare)
    chat(a, b.jid, "you are blocked")
    expect_blocked_error(a, "message")
    iq_id = new_id("iq")
    a.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
           % (iq_id, esc(b.jid)))
    el = expect_blocked_error(a, "iq")
    check(el.get("id") == iq_id, "error for another iq")
    a.send("<presence to='%s'/>" % esc(b.jid))
    expect_blocked_error(a, "presence")
    sync(server.login("unwantedwitness"), b)     # b got nothing


def test_unavailable_presence_still_reaches_a_blocked_contact(server):
    a = server.login("leaving")
    b = server.login("leftalone")
    b.ignore = ()
    block(a, b.bare)
    a.send("<presence type='unavailable' to='%s'/>" % esc(b.jid))
    b.expect("presence", attrs={"type": "unavailable", "from": a.jid})


def test_blocked_domain_and_subdomains(server):
    a = server.login("domainblocker")
    block(a, "example.org")
    for to in ("someone@example.org", "example.org",
               "someone@chat.example.org/res"):
        chat(a, to, "blocked domain")
        expect_blocked_error(a, "message")


# -- presence on block and unblock

def test_block_sends_unavailable_and_unblock_current_presence(server):
    a = server.login("shares", presence=0)
    friend = server.login("sharefriend")
    available_seeing_presence(friend)
    roster_item(a, friend.bare, "from")          # friend gets a's presence
    block(a, friend.bare)
    friend.expect("presence", attrs={"type": "unavailable", "from": a.jid,
                                     "to": friend.bare})
    a.send("<presence><show>away</show><status>later</status></presence>")
    round_trip(a)
    unblock(a, friend.bare)
    friend.expect("presence", attrs={"from": a.jid, "to": friend.bare},
                  text={"show": "away", "status": "later"})


def test_block_sends_no_presence_to_an_unsubscribed_contact(server):
    a = server.login("unshared", presence=0)
    other = server.login("notafriend")
    available_seeing_presence(other)
    roster_item(a, other.bare, "to")             # other does not see a
    block(a, other.bare)
    sync(server.login("unsharedwitness"), other)
