"""Helpers for the IM conversation tests (roster, presence, messages):
roster requests and pushes, subscription exchanges, presence checks.

    from im import roster_get, roster_set, expect_push, befriend

    a = server.login("alice", presence=True)
    items = roster_get(a)                     # {jid: {"subscription":..,
                                              #  "ask":.., "name":.., "groups": [..]}}
    roster_set(a, "bob@localhost", name="Bob", groups=["Friends"])
    expect_push(a, "bob@localhost", subscription="none")
    a.expect("iq", attrs={"type": "result"})

Clients from server.login() pass over presence in expect() unless they
ask for it by tag, so presence checks use expect("presence", ...) directly.
"""

from xmpp import ABSENT, NS, _value_ok, esc, find, find_all, new_id

ROSTER = NS["roster"]
DELAY = "urn:xmpp:delay"
NS_ROSTERVER = "urn:xmpp:features:rosterver"
NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"


def items_of(query):
    """{jid: {subscription, ask, approved, name, groups}} of a <query/>."""
    out = {}
    if query is None:
        return out
    for item in find_all(query, "roster:item"):
        out[item.get("jid")] = {
            "subscription": item.get("subscription"),
            "ask": item.get("ask"),
            "approved": item.get("approved"),
            "name": item.get("name"),
            "groups": sorted(g.text or "" for g in find_all(item, "roster:group")),
        }
    return out


def roster_request(c, ver=None):
    """Send a roster get; returns its id."""
    iq_id = new_id("rg")
    ver_attr = "" if ver is None else " ver='%s'" % esc(ver)
    c.send("<iq type='get' id='%s'><query xmlns='%s'%s/></iq>"
           % (iq_id, ROSTER, ver_attr))
    return iq_id


def roster_get(c, ver=None, full=False):
    """The roster as items_of() gives it (full=True: the result element)."""
    iq_id = roster_request(c, ver)
    el = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    return el if full else items_of(find(el, "roster:query"))


def roster_set(c, jid, name=None, groups=(), subscription=None, extra=""):
    """Send a roster set of one item; returns its id (expect the answer)."""
    iq_id = new_id("rs")
    attrs = "jid='%s'" % esc(jid)
    if name is not None:
        attrs += " name='%s'" % esc(name)
    if subscription is not None:
        attrs += " subscription='%s'" % esc(subscription)
    inner = "".join("<group>%s</group>" % esc(g) for g in groups)
    c.send("<iq type='set' id='%s'><query xmlns='%s'><item %s%s>%s</item>"
           "</query></iq>" % (iq_id, ROSTER, attrs, extra, inner))
    return iq_id


def expect_result(c, iq_id):
    return c.expect("iq", attrs={"id": iq_id, "type": "result"})


def expect_push(c, jid, subscription="none", ask=ABSENT, approved=ABSENT,
                **attrs):
    """The next element must be a roster push of one item for jid; it is
    answered with a result (as a client must). Returns the <item/>."""
    el = c.expect("iq", attrs={"type": "set", "from": ABSENT},
                  child="roster:query/roster:item")
    items = find_all(el, "roster:query/roster:item")
    assert len(items) == 1, "a push carries one item: %r" % items
    item = items[0]
    want = dict(attrs, jid=jid, subscription=subscription, ask=ask,
                approved=approved)
    for k, v in want.items():
        if not _value_ok(item.get(k), v):
            raise AssertionError("%s: push item %s is %r, expected %r in %s"
                                 % (c.name, k, item.get(k), v, el.attrib))
    c.send("<iq type='result' id='%s'/>" % esc(el.get("id")))
    return item


def presence(c, to, type=None, inner=""):
    """Send presence to `to` (None: broadcast) of `type`."""
    attrs = ""
    if to is not None:
        attrs += " to='%s'" % esc(to)
    if type is not None:
        attrs += " type='%s'" % type
    c.send("<presence%s>%s</presence>" % (attrs, inner))


def expect_presence(c, frm, type=ABSENT, **kw):
    """The next presence from frm (a JID) of type (ABSENT: available)."""
    return c.expect("presence", attrs=dict(kw.pop("attrs", {}), type=type,
                                           **{"from": frm}), **kw)


def ask_and_approve(a, b, had="none"):
    """a (whose item of b is `had`: "none" or "from") asks b for a
    subscription and b approves: a's item goes to "to" or "both", b's to
    "from" or "both". Checks every push and presence on the way (RFC 6121
    3.1), b's current presence last: returns nothing."""
    mine, theirs = ("to", "from") if had == "none" else ("both", "both")
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, had, ask="subscribe")
    expect_presence(b, a.bare, "subscribe")
    presence(b, a.bare, "subscribed")
    expect_push(b, a.bare, theirs)
    expect_push(a, b.bare, mine)
    expect_presence(a, b.bare, "subscribed")
    expect_presence(a, b.jid)                     # b's current presence


def befriend(a, b):
    """a and b (logged in, available, roster requested, no items for each
    other) end up subscribed both ways. Checks every push and presence on
    the way (RFC 6121 3.1): returns nothing."""
    ask_and_approve(a, b)
    ask_and_approve(b, a, had="from")



def unfriend(a, b):
    """a (subscribed both ways with b) removes b from its roster: both
    subscriptions are cancelled, each side's pushes and presence checked
    (RFC 6121 2.5.2). Returns nothing."""
    iq_id = roster_set(a, b.bare, subscription="remove")
    expect_push(a, b.bare, "remove")
    expect_result(a, iq_id)
    expect_push(b, a.bare, "to")
    expect_presence(b, a.bare, "unsubscribe")
    expect_push(b, a.bare, "none")
    expect_presence(b, a.bare, "unsubscribed")
    expect_presence(b, a.jid, "unavailable")
    # a's resources get b's unavailable: b's server, for the unsubscribe
    expect_presence(a, b.jid, "unavailable")

def im_login(server, account, resource=None, priority=0, roster=True):
    """Logged in, roster requested (an interested resource), then initial
    presence sent and its echo read. Presence is not passed over."""
    c = server.login(account, resource=resource, ignore_presence=False)
    if roster:
        roster_get(c)
    c.presence(priority=priority)
    c.expect("presence", attrs={"from": c.jid, "type": ABSENT})
    return c
