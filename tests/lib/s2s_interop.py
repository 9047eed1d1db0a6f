"""What a user of Starling and a user of another server see when the two
servers federate: the scenarios tests/interop/test_s2s_prosody.py and
test_s2s_ejabberd.py run against each peer (tests/lib/peers.py starts
the peers). `st` is the Starling, `peer` the other server; every check is
made from the clients' side, in both directions."""

import re

from harness import check
from xmpp import ABSENT, NS, find_all, new_id

TIMEOUT = 20     # a first stanza waits for DNS, TCP, TLS and dialback


def chat_both_ways(st, peer):
    alice = st.login("alice")
    bob = peer.login("bob")
    # available (a message to a bare JID goes to available resources only)
    for c in (alice, bob):
        c.presence()
        c.roundtrip()
    alice.send("<message to='%s' type='chat' id='s1'><body>hello from Starling</body>"
               "</message>" % bob.jid)
    bob.expect("message", attrs={"from": alice.jid, "to": bob.jid, "type": "chat"},
               child="body", text="hello from Starling", timeout=TIMEOUT)
    bob.send("<message to='%s' type='chat' id='p1'><body>hello from %s</body></message>"
             % (alice.jid, peer.kind))
    alice.expect("message", attrs={"from": bob.jid, "to": alice.jid, "type": "chat"},
                 child="body", text="hello from %s" % peer.kind, timeout=TIMEOUT)
    # to the bare JIDs, several in a row: they arrive, in order
    for i in range(5):
        alice.send("<message to='%s' type='chat'><body>s%d</body></message>"
                   % (bob.account.jid, i))
        bob.send("<message to='%s' type='chat'><body>p%d</body></message>"
                 % (alice.account.jid, i))
    for i in range(5):
        bob.expect("message", attrs={"from": alice.jid}, child="body", text="s%d" % i,
                   timeout=TIMEOUT)
        alice.expect("message", attrs={"from": bob.jid}, child="body", text="p%d" % i,
                     timeout=TIMEOUT)
    return alice, bob


def _roster_item(c, jid):
    iq = new_id("r")
    c.send("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>" % iq)
    r = c.wait_for("iq", attrs={"id": iq, "type": "result"}, timeout=TIMEOUT)
    items = [i for i in find_all(r, "{jabber:iq:roster}query/{jabber:iq:roster}item")
             if i.get("jid") == jid]
    return dict(items[0].attrib) if items else None


def _present(c):
    """As a client does: the roster first (an "interested resource", which
    is sent subscription approvals: RFC 6121 2.1.6), then presence."""
    _roster_item(c, "")
    c.ignore = ()
    c.presence()
    c.wait_for("presence", attrs={"from": c.jid}, timeout=TIMEOUT)


def subscription_ends_in_both(st, peer, starling_asks_first=True):
    """One side asks, the other approves and asks back, the first approves:
    both rosters say "both", and presence flows both ways afterwards."""
    alice = st.login("suba", ignore_presence=False)
    bob = peer.login("subb", ignore_presence=False)
    _present(alice)
    _present(bob)
    ab, bb = alice.account.jid, bob.account.jid
    first, second = (alice, bob) if starling_asks_first else (bob, alice)
    fb, sb = first.account.jid, second.account.jid

    first.send("<presence to='%s' type='subscribe'/>" % sb)
    second.wait_for("presence", attrs={"from": fb, "type": "subscribe"}, timeout=TIMEOUT)
    second.send("<presence to='%s' type='subscribed'/>" % fb)
    # the approval, then second's current presence (RFC 6121 3.1.5)
    first.wait_for("presence", attrs={"from": sb, "type": "subscribed"}, timeout=TIMEOUT)
    first.wait_for("presence", attrs={"from": second.jid, "type": ABSENT}, timeout=TIMEOUT)
    second.send("<presence to='%s' type='subscribe'/>" % fb)
    first.wait_for("presence", attrs={"from": sb, "type": "subscribe"}, timeout=TIMEOUT)
    first.send("<presence to='%s' type='subscribed'/>" % sb)
    second.wait_for("presence", attrs={"from": fb, "type": "subscribed"}, timeout=TIMEOUT)
    second.wait_for("presence", attrs={"from": first.jid, "type": ABSENT}, timeout=TIMEOUT)

    for c, other in ((alice, bb), (bob, ab)):
        item = _roster_item(c, other)
        check(item is not None and item.get("subscription") == "both"
              and "ask" not in item,
              "%s's roster item for %s: %s" % (c.jid, other, item))

    # presence flows afterwards, both ways
    alice.send("<presence><show>away</show><status>lunch</status></presence>")
    bob.wait_for("presence", attrs={"from": alice.jid}, child="show", text="away",
                 timeout=TIMEOUT)
    bob.send("<presence><show>dnd</show></presence>")
    alice.wait_for("presence", attrs={"from": bob.jid}, child="show", text="dnd",
                   timeout=TIMEOUT)
    bob.send("<presence type='unavailable'/>")
    alice.wait_for("presence", attrs={"from": bob.jid, "type": "unavailable"},
                   timeout=TIMEOUT)
    # a new session of bob is announced to alice by bob's server
    bob2 = peer.login(bob.account, resource="second", ignore_presence=False)
    _roster_item(bob2, "")
    bob2.ignore = ()
    bob2.presence()
    alice.wait_for("presence", attrs={"from": bob2.jid, "type": ABSENT}, timeout=TIMEOUT)
    # and it is told alice is there (the peer probes Starling)
    bob2.wait_for("presence", attrs={"from": alice.jid}, child="show", text="away",
                  timeout=TIMEOUT)


def _disco_features(c, to):
    iq = new_id("d")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>"
           % (iq, to, NS["disco"]))
    r = c.expect("iq", attrs={"id": iq, "type": "result", "from": to}, timeout=TIMEOUT)
    return [f.get("var") for f in find_all(r, "{%s}query/{%s}feature"
                                           % (NS["disco"], NS["disco"]))]


def _ping(c, to):
    iq = new_id("p")
    c.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % (iq, to))
    c.expect("iq", attrs={"id": iq, "type": "result", "from": to}, timeout=TIMEOUT)


def iq_to_the_other_server(st, peer):
    alice = st.login("iqa")
    bob = peer.login("iqb")
    _ping(alice, peer.domain)
    feats = _disco_features(alice, peer.domain)
    check("urn:xmpp:ping" in feats and NS["disco"] in feats,
          "%s's features seen from Starling: %s" % (peer.domain, feats))
    _ping(bob, st.domain)
    feats = _disco_features(bob, st.domain)
    check("urn:xmpp:ping" in feats and NS["disco"] in feats,
          "%s's features seen from %s: %s" % (st.domain, peer.kind, feats))
    # an iq the other server does not serve comes back as an error, not silence
    iq = new_id("u")
    alice.send("<iq type='get' id='%s' to='%s'><query xmlns='urn:example:nothing'/></iq>"
               % (iq, peer.domain))
    alice.expect_error("iq", "service-unavailable", attrs={"id": iq, "from": peer.domain},
                       timeout=TIMEOUT)


def starling_methods(st, peer):
    """How Starling authenticated the peer on each stream, from its log:
    {"outgoing": method, "incoming": method}."""
    out = {}
    for direction, (a, b) in (("outgoing", (st.domain, peer.domain)),
                              ("incoming", (peer.domain, st.domain))):
        line = st.wait_log(r"s2s %s %s -> %s authenticated \(" % (
            direction, re.escape(a), re.escape(b)), timeout=TIMEOUT)
        out[direction] = re.search(r"authenticated \(([^,)]+)", line).group(1)
    return out


def external_works(st, peer, refused):
    """A ping to the peer over a stream both sides authenticate with SASL
    EXTERNAL (certificates from one CA both trust) is answered. refused:
    the peer's log line for the refusal it would log if Starling offered
    no certificate or dialback instead, named in the failure."""
    alice = st.login("probe")
    alice.send("<iq type='get' id='ext' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
               % peer.domain)
    el = alice.expect("iq", attrs={"id": "ext"}, timeout=TIMEOUT)
    if el.get("type") == "result":
        return
    try:
        peer.wait_log(refused, timeout=2)
        why = "%s refused Starling's authentication" % peer.kind
    except AssertionError:
        why = "not for want of a client certificate"
    raise AssertionError("ping to %s over SASL EXTERNAL failed (%s): %s"
                         % (peer.domain, why, el))
