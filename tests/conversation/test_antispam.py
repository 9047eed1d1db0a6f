"""mod_antispam: a stranger flooding an account is slowed, then refused,
while the account's contacts get through untouched; subscription requests
from strangers are limited too; a reloadable blocklist drops what its
entries send; XEP-0377 reports reach the admins."""

import os
import time

from harness import check, drain, fixture
from xmpp import esc, find, find_all, new_id

CMD = "http://jabber.org/protocol/commands"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MODULES = ["roster", "presence", "message", "iq", "disco", "blocklist", "adhoc", "antispam"]


def roster_add(c, contact):
    iq = new_id("ra")
    c.send("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'><item jid='%s'/></query></iq>"
           % (iq, esc(contact)))
    c.wait_for("iq", attrs={"id": iq, "type": "result"})


def collect(c, seconds):
    """Every element c receives for seconds."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        drain(c, got.append, 0.05)
    return got


@fixture
def server(scope):
    return scope.server(modules=MODULES, options={
        "admins": ["warden@localhost"],
        "antispam_stranger_message_rate": 2, "antispam_stranger_message_burst": 5,
        "antispam_stranger_subscription_rate": 0.1, "antispam_stranger_subscription_burst": 2})


def test_a_flooding_stranger_is_slowed_then_refused_contacts_pass(server):
    victim = server.login("victim", presence=True)
    friend = server.login("friend")
    roster_add(victim, friend.account.jid)
    stranger = server.login("stranger")
    flood = "".join("<message to='%s' type='chat' id='s%d'><body>buy %d</body></message>"
                    % (esc(victim.account.jid), i, i) for i in range(100))
    stranger.send(flood)
    for i in range(20):
        friend.send("<message to='%s' type='chat'><body>hi %d</body></message>"
                    % (esc(victim.account.jid), i))
    got = collect(victim, 4)
    bodies = [find(m, "body").text for m in got if m.tag.endswith("message")
              and find(m, "body") is not None]
    friends = [b for b in bodies if b.startswith("hi ")]
    spam = [b for b in bodies if b.startswith("buy ")]
    check(friends == ["hi %d" % i for i in range(20)], "the friend's messages: %s" % friends)
    check(len(spam) < 50, "%d of 100 stranger messages delivered" % len(spam))
    check(len(spam) >= 5, "the stranger's first messages were not delivered (%d)" % len(spam))
    errors = [e for e in collect(stranger, 2) if e.get("type") == "error"]
    check(errors, "the stranger saw no refusal")
    check(all(find(e, "error/{%s}policy-violation" % STANZAS) is not None for e in errors),
          "refusals: %s" % errors[:2])


def test_subscription_requests_from_a_stranger_are_limited(server):
    victims = [server.account("popular") for _ in range(6)]
    stranger = server.login("pushy")
    for i, v in enumerate(victims):
        stranger.send("<presence to='%s' type='subscribe' id='sub%d'/>" % (v.jid, i))
    stranger.roundtrip()
    asked = 0
    for v in victims:
        c = server.login(v, presence=True)
        c.ignore = ()
        got = collect(c, 0.5)
        asked += any(e.get("type") == "subscribe" and
                     e.get("from", "").startswith(stranger.account.jid) for e in got)
    # a burst of 2: the first two requests reach their recipients, the
    # other four are refused (the request of a bare JID has nobody to
    # answer: it is dropped, as RFC 6121 drops presence errors to a bare JID)
    check(asked == 2, "%d of 6 subscription requests from a stranger delivered" % asked)


def test_the_blocklist_drops_and_reloads(ctx):
    path = os.path.join(ctx.tmpdir if hasattr(ctx, "tmpdir") else "/tmp",
                        "antispam-%s.txt" % new_id())
    with open(path, "w") as f:
        f.write("# spammers\nvillain@localhost\n")
    ctx.cleanup(lambda: os.path.exists(path) and os.unlink(path))
    srv = ctx.server(modules=MODULES, options={"antispam_blocklist": path})
    victim = srv.login("target", presence=True)
    villain = srv.register("villain", "v-pw")
    v = srv.login(villain)
    v.send("<message to='%s' type='chat'><body>dropped</body></message>" % victim.account.jid)
    v.roundtrip()
    friend = srv.login("other")
    friend.send("<message to='%s' type='chat'><body>marker</body></message>" % victim.account.jid)
    m = victim.expect("message")
    check(find(m, "body").text == "marker", "a blocked sender's message arrived: %s" % m)
    with open(path, "w") as f:
        f.write("# nobody\n")
    srv.ctl("reload")
    v.send("<message to='%s' type='chat'><body>now fine</body></message>" % victim.account.jid)
    m = victim.expect("message")
    check(find(m, "body").text == "now fine", "after the reload: %s" % m)


def test_spam_reports_reach_the_admins(server):
    server.register("warden", "w-pw")
    user = server.login("reporter")
    iq = new_id("b")
    user.send("<iq type='set' id='%s'><block xmlns='urn:xmpp:blocking'><item jid='junk@localhost'>"
              "<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'>"
              "<text>pills</text></report></item></block></iq>" % iq)
    user.wait_for("iq", attrs={"id": iq, "type": "result"})
    warden = server.login(server.accounts["warden@localhost"])
    iq = new_id("r")
    warden.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' "
                "node='urn:xmpp:starling:antispam#reports' action='execute'/></iq>" % (iq, CMD))
    el = warden.expect("iq", attrs={"id": iq, "type": "result"})
    notes = " ".join(n.text or "" for n in find_all(el, "{%s}command/{%s}note" % (CMD, CMD)))
    check(user.account.jid in notes and "junk@localhost" in notes and "spam" in notes
          and "pills" in notes, "reports: %s" % notes)
    plain = server.login("nosy")
    iq = new_id("r")
    plain.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' "
               "node='urn:xmpp:starling:antispam#reports' action='execute'/></iq>" % (iq, CMD))
    plain.expect_error("iq", "forbidden", attrs={"id": iq})
