"""XEP-0313 Message Archive Management and XEP-0359 stanza ids: messages
archived in both directions (the recipient sees the archive id), what is
not archived, queries by contact, time and ids, paging through 500
messages both ways with RSM, flipped pages, the errors, preferences,
metadata, expiry, and no second copy when stream management sends an
unacknowledged message on."""

import os
import re
import time

from harness import bystanders, check, exchange, fixture, skip, sync, time_limit
from im import befriend, im_login
from xmpp import ABSENT, esc, find, find_all, new_id, text_of

MAM = "urn:xmpp:mam:2"
SID = "urn:xmpp:sid:0"
FWD = "urn:xmpp:forward:0"
DELAY = "urn:xmpp:delay"
RSM = "http://jabber.org/protocol/rsm"
DATA = "jabber:x:data"
HINTS = "urn:xmpp:hints"
MODULES = ["roster", "presence", "message", "iq", "offline", "disco", "carbons",
           "mam"]


@fixture
def server(scope):
    return scope.server(modules=MODULES, options={"offline_max_messages": 1000})


# ------------------------------------------------------------ helpers

def chat(sender, to, ident, body=None, extra="", type="chat"):
    body = ident if body is None else body
    body_xml = "<body>%s</body>" % esc(body) if body else ""
    sender.send("<message to='%s' type='%s' id='%s'>%s%s</message>"
                % (esc(to), type, ident, body_xml, extra))


def stanza_ids(el, by=None):
    return [s.get("id") for s in find_all(el, "{%s}stanza-id" % SID)
            if by is None or s.get("by") == by]


def form(**fields):
    """A query form: field name -> value or list of values."""
    out = ["<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'>"
           "<value>%s</value></field>" % (DATA, MAM)]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        out.append("<field var='%s'>%s</field>" % (
            var.replace("_", "-"),
            "".join("<value>%s</value>" % esc(v) for v in values)))
    out.append("</x>")
    return "".join(out)


def rsm(max=None, after=None, before=None):
    if max is None and after is None and before is None:
        return ""
    inner = "" if max is None else "<max>%d</max>" % max
    if after is not None:
        inner += "<after>%s</after>" % esc(after)
    if before is True:
        inner += "<before/>"
    elif before is not None:
        inner += "<before>%s</before>" % esc(before)
    return "<set xmlns='%s'>%s</set>" % (RSM, inner)


def send_query(c, inner="", to=None):
    qid, iq_id = new_id("q"), new_id("mam")
    to_attr = " to='%s'" % esc(to) if to else ""
    c.send("<iq type='set' id='%s'%s><query xmlns='%s' queryid='%s'>%s</query></iq>"
           % (iq_id, to_attr, MAM, qid, inner))
    return qid, iq_id


class Page:
    def __init__(self, results, fin):
        self.results = results          # [(archive id, message element, stamp)]
        self.fin = fin
        self.ids = [r[0] for r in results]
        self.bodies = [text_of(r[1], "{jabber:client}body") for r in results]
        self.complete = fin.get("complete") == "true"
        self.first = find(fin, "{%s}set/{%s}first" % (RSM, RSM))
        self.last = text_of(fin, "{%s}set/{%s}last" % (RSM, RSM))
        count = text_of(fin, "{%s}set/{%s}count" % (RSM, RSM))
        self.count = int(count) if count is not None else None
        self.index = (int(self.first.get("index")) if self.first is not None
                      and self.first.get("index") is not None else None)


def query(c, fields=None, max=None, after=None, before=None, flip=False):
    """Run a query; returns a Page (results in the order they came)."""
    inner = (form(**fields) if fields else "") + rsm(max, after, before)
    if flip:
        inner += "<flip-page/>"
    qid, iq_id = send_query(c, inner)
    results = []
    while True:
        el = c.expect()
        if el.tag == "{jabber:client}iq":
            check(el.get("id") == iq_id and el.get("type") == "result",
                  "query answer: %r" % el.attrib)
            fin = find(el, "{%s}fin" % MAM)
            check(fin is not None, "no <fin/>")
            check(fin.get("stable") in (None, "true"), "unstable results")
            return Page(results, fin)
        result = find(el, "{%s}result" % MAM)
        check(el.tag == "{jabber:client}message" and result is not None,
              "not a result: %r" % el)
        check(result.get("queryid") == qid, "queryid %r" % result.get("queryid"))
        check(el.get("to") == c.jid, "result to %r" % el.get("to"))
        fwd = find(result, "{%s}forwarded" % FWD)
        stamp = find(fwd, "{%s}delay" % DELAY).get("stamp")
        results.append((result.get("id"),
                        find(fwd, "{jabber:client}message"), stamp))


def query_error(c, condition, inner="", to=None):
    _, iq_id = send_query(c, inner, to)
    return c.expect_error("iq", condition, attrs={"id": iq_id})


def flood(sender, to, n, prefix):
    """n chat messages; returns their bodies."""
    bodies = ["%s-%03d" % (prefix, i) for i in range(n)]
    sender.send("".join(
        "<message to='%s' type='chat'><body>%s</body></message>"
        % (esc(to), b) for b in bodies))
    return bodies


def prefs_set(c, default, always=(), never=()):
    iq_id = new_id("prefs")
    c.send("<iq type='set' id='%s'><prefs xmlns='%s' default='%s'><always>%s</always>"
           "<never>%s</never></prefs></iq>" % (
               iq_id, MAM, default,
               "".join("<jid>%s</jid>" % esc(j) for j in always),
               "".join("<jid>%s</jid>" % esc(j) for j in never)))
    return c.expect("iq", attrs={"id": iq_id, "type": "result"},
                    child="{%s}prefs" % MAM)


def prefs_of(el):
    p = find(el, "{%s}prefs" % MAM)
    return (p.get("default"),
            sorted(j.text for j in find_all(p, "{%s}always/{%s}jid" % (MAM, MAM))),
            sorted(j.text for j in find_all(p, "{%s}never/{%s}jid" % (MAM, MAM))))


# ------------------------------------------------------------ features

def test_account_features(server):
    c = server.login("mamdisco")
    c.send("<iq type='get' id='d1' to='%s'><query "
           "xmlns='http://jabber.org/protocol/disco#info'/></iq>" % c.bare)
    el = c.expect("iq", attrs={"id": "d1", "type": "result"})
    features = {f.get("var") for f in find_all(el, "disco:query/disco:feature")}
    for f in (MAM, MAM + "#extended", SID):
        check(f in features, "%s not in %s" % (f, sorted(features)))


def test_form_fields(server):
    c = server.login("mamform")
    c.send("<iq type='get' id='f1'><query xmlns='%s'/></iq>" % MAM)
    el = c.expect("iq", attrs={"id": "f1", "type": "result"})
    fields = {f.get("var"): f.get("type") for f in
              find_all(el, "{%s}query/{%s}x/{%s}field" % (MAM, DATA, DATA))}
    check(fields == {"FORM_TYPE": "hidden", "with": "jid-single",
                     "start": "text-single", "end": "text-single",
                     "before-id": "text-single", "after-id": "text-single",
                     "ids": "list-multi"}, "fields %s" % fields)
    check(find(el, "{%s}query/{%s}x/{%s}field/"
               "{http://jabber.org/protocol/xdata-validate}validate" % (MAM, DATA, DATA))
          is not None, "ids has no <validate/>")


# ------------------------------------------------------------ archiving

def test_both_directions_with_stanza_id(server):
    alice = server.login("mama", presence=True)
    bob = server.login("mamb", presence=True)
    chat(bob, alice.jid, "hello-a")
    got = alice.expect("message", attrs={"id": "hello-a"})
    in_id = stanza_ids(got, alice.bare)
    check(len(in_id) == 1, "alice's stanza-id: %r" % in_id)
    chat(alice, bob.bare, "hello-b")
    got = bob.expect("message", attrs={"id": "hello-b"})
    bob_id = stanza_ids(got, bob.bare)
    check(len(bob_id) == 1 and stanza_ids(got, alice.bare) == [],
          "bob's stanza-ids: %r" % stanza_ids(got))
    page = query(alice, {"with": bob.bare})
    check(page.bodies == ["hello-a", "hello-b"], "alice's archive %r" % page.bodies)
    check(page.ids[0] == in_id[0], "archive id %s, stanza-id %s" % (page.ids[0], in_id[0]))
    check(page.complete and page.count == 2 and page.index == 0,
          "fin %r count %r index %r" % (page.fin.attrib, page.count, page.index))
    check(page.first.text == page.ids[0] and page.last == page.ids[1], "first/last")
    inner = page.results[0][1]
    check(inner.get("from") == bob.jid and inner.get("type") == "chat", "inner %r" % inner.attrib)
    check(stanza_ids(inner, alice.bare) == [], "the archived copy carries its own id")
    check(page.results[1][1].get("from") == alice.jid, "outgoing: from %r"
          % page.results[1][1].get("from"))
    check(all(r[2].endswith("Z") for r in page.results), "stamps %r" % [r[2] for r in page.results])
    page = query(bob, {"with": alice.bare})
    check(page.bodies == ["hello-a", "hello-b"] and page.ids[1] == bob_id[0],
          "bob's archive %r %r" % (page.bodies, page.ids))


def test_only_conversations_are_archived(server):
    alice = server.login("mamkind", presence=True)
    bob = server.login("mamkindb", presence=True)
    cases = [
        ("plain", "", "chat", True),
        ("normal", "", "normal", True),
        ("headline", "", "headline", False),
        ("nostore", "<no-store xmlns='%s'/>" % HINTS, "chat", False),
        ("noperm", "<no-permanent-store xmlns='%s'/>" % HINTS, "chat", False),
    ]
    for ident, extra, kind, _ in cases:
        chat(bob, alice.jid, ident, extra=extra, type=kind)
    chat(bob, alice.jid, "state", body="",
         extra="<composing xmlns='http://jabber.org/protocol/chatstates'/>")
    chat(bob, alice.jid, "hinted", body="", extra="<store xmlns='%s'/>" % HINTS)
    chat(bob, alice.jid, "omemo", body="",
         extra="<encrypted xmlns='eu.siacs.conversations.axolotl'/>")
    for ident, _, _, archived in cases:
        el = alice.expect("message", attrs={"id": ident})
        check(bool(stanza_ids(el, alice.bare)) == archived,
              "%s: stanza-ids %r" % (ident, stanza_ids(el)))
    alice.expect("message", attrs={"id": "state"})
    for ident in ("hinted", "omemo"):
        el = alice.expect("message", attrs={"id": ident})
        check(stanza_ids(el, alice.bare), "%s has no stanza-id" % ident)
    page = query(alice)
    got = [r[1].get("id") for r in page.results]
    check(got == ["plain", "normal", "hinted", "omemo"], "archived %r" % got)


def test_what_else_is_kept_and_what_is_not(server):
    alice = server.login("mamkind2", presence=True)
    bob = server.login("mamkind2b", presence=True)
    muc = "http://jabber.org/protocol/muc#user"
    chat(bob, alice.jid, "invite", body="", extra=(
        "<x xmlns='%s'><invite from='room@muc.localhost'/></x>" % muc))
    chat(bob, alice.jid, "mucx", body="", extra="<x xmlns='%s'/>" % muc)
    chat(bob, alice.jid, "marker", body="",
         extra="<displayed xmlns='urn:xmpp:chat-markers:0' id='plain'/>")
    chat(bob, alice.jid, "groupchat", type="groupchat")
    # A chat message to a resource that is not online goes to the
    # account's other sessions (RFC 6121 8.5.3.2.1), and is kept.
    chat(bob, alice.bare + "/gone", "gone-chat")
    # Outgoing: bob's own archive keeps what he sends, without a
    # stanza-id in his name that he put in himself.
    chat(bob, alice.jid, "own-forged", extra=(
        "<stanza-id xmlns='%s' by='%s' id='forged'/>" % (SID, bob.bare)))
    for ident, kept in (("invite", True), ("mucx", False), ("marker", True),
                        ("groupchat", False), ("gone-chat", True),
                        ("own-forged", True)):
        el = alice.expect("message", attrs={"id": ident})
        check(bool(stanza_ids(el, alice.bare)) == kept,
              "%s: stanza-ids %r" % (ident, stanza_ids(el)))
    page = query(alice)
    got = [r[1].get("id") for r in page.results]
    check(got == ["invite", "marker", "gone-chat", "own-forged"], "alice kept %r" % got)
    page = query(bob, {"with": alice.bare})
    got = [r[1].get("id") for r in page.results]
    check(got == ["invite", "marker", "gone-chat", "own-forged"], "bob kept %r" % got)
    check(stanza_ids(page.results[-1][1], bob.bare) == [],
          "bob's archive kept the id he forged")


def test_overlong_addresses_are_refused_and_nothing_is_archived(server):
    alice = server.login("mamlong", presence=True)
    bob = server.login("mamlongb", presence=True)
    chat(bob, "%s@localhost" % ("x" * 1100), "long-node")
    bob.expect_error("message", "jid-malformed", attrs={"id": "long-node"})
    chat(bob, "%s/%s" % (alice.bare, "r" * 1100), "long-res")
    bob.expect_error("message", "jid-malformed", attrs={"id": "long-res"})
    chat(bob, alice.jid, "after")
    el = alice.expect("message", attrs={"id": "after"})
    check(stanza_ids(el, alice.bare), "after has no stanza-id")
    got = [r[1].get("id") for r in query(bob).results]
    check(got == ["after"], "bob kept %r" % got)


def test_messages_to_oneself_are_archived_once(server):
    acct = server.account("mamself")
    phone = server.login(acct, resource="phone", presence=True)
    desk = server.login(acct, resource="desk", presence=True)
    chat(phone, phone.bare, "to-bare")
    chat(phone, desk.jid, "to-desk")
    phone.send("<message type='chat' id='no-to'><body>no-to</body></message>")
    for ident in ("to-bare", "to-desk"):
        el = desk.expect("message", attrs={"id": ident})
        check(stanza_ids(el, phone.bare), "%s has no stanza-id" % ident)
    reader = server.login(acct, resource="reader")   # not available: no copies
    page = query(reader)
    got = [r[1].get("id") for r in page.results]
    check(got == ["to-bare", "to-desk", "no-to"], "archived %r" % got)
    check(len(set(page.ids)) == 3, "ids %r" % page.ids)


def test_odd_stanza_ids_and_hints(server):
    alice = server.login("mamodd", presence=True)
    bob = server.login("mamoddb", presence=True)
    chat(bob, alice.jid, "no-by", extra="<stanza-id xmlns='%s' id='x'/>" % SID)
    chat(bob, alice.jid, "store-and-no-store", body="",
         extra="<store xmlns='%s'/><no-store xmlns='%s'/>" % (HINTS, HINTS))
    chat(bob, alice.jid, "error", type="error")
    el = alice.expect("message", attrs={"id": "no-by"})
    check(len(stanza_ids(el, alice.bare)) == 1, "no-by: %r" % stanza_ids(el))
    check([s.get("id") for s in find_all(el, "{%s}stanza-id" % SID)
           if s.get("by") is None] == ["x"], "the stanza-id without by was dropped")
    el = alice.expect("message", attrs={"id": "store-and-no-store"})
    check(stanza_ids(el, alice.bare) == [], "no-store lost to store")
    alice.expect("message", attrs={"id": "error"})
    got = [r[1].get("id") for r in query(alice).results]
    check(got == ["no-by"], "archived %r" % got)


def test_spoofed_stanza_id_is_stripped(server):
    alice = server.login("mamspoof", presence=True)
    bob = server.login("mamspoofer", presence=True)
    chat(bob, alice.jid, "spoof", extra=(
        "<stanza-id xmlns='%s' by='%s' id='forged'/>"
        "<stanza-id xmlns='%s' by='elsewhere@localhost' id='kept'/>"
        % (SID, alice.bare, SID)))
    el = alice.expect("message", attrs={"id": "spoof"})
    mine = stanza_ids(el, alice.bare)
    check(len(mine) == 1 and mine[0] != "forged", "alice's stanza-ids %r" % mine)
    check(stanza_ids(el, "elsewhere@localhost") == ["kept"], "others' stanza-ids")
    page = query(alice)
    check(page.ids == mine, "archive %r vs %r" % (page.ids, mine))
    check(stanza_ids(page.results[0][1], alice.bare) == [], "the forged id was archived")


def test_carbon_copies_carry_the_stanza_id(server):
    acct = server.account("mamcarbon")
    phone = server.login(acct, resource="phone", presence=True)
    desk = server.login(acct, resource="desk", presence=True)
    desk.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    desk.expect("iq", attrs={"id": "cb", "type": "result"})
    bob = server.login("mamcarbonb", presence=True)
    chat(bob, phone.jid, "carbon")
    el = phone.expect("message", attrs={"id": "carbon"})
    copy = desk.expect("message", child="{urn:xmpp:carbons:2}received")
    inner = find(copy, "{urn:xmpp:carbons:2}received/{%s}forwarded/"
                 "{jabber:client}message" % FWD)
    check(stanza_ids(inner, acct.jid) == stanza_ids(el, acct.jid) != [],
          "copy %r, message %r" % (stanza_ids(inner), stanza_ids(el)))


# ------------------------------------------------------------ queries

def test_filters(server):
    alice = server.login("mamfilter", presence=True)
    bob = server.login("mamfb", resource="one", presence=True)
    carol = server.login("mamfc", presence=True)
    chat(bob, alice.jid, "b1")
    alice.expect("message", attrs={"id": "b1"})
    time.sleep(1.1)                     # two seconds apart, for start/end
    split = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    chat(carol, alice.jid, "c1")
    alice.expect("message", attrs={"id": "c1"})
    chat(alice, bob.jid, "b2")
    bob.expect("message", attrs={"id": "b2"})
    chat(alice, bob.bare, "b3")
    bob.expect("message", attrs={"id": "b3"})
    everything = query(alice)
    check([r[1].get("id") for r in everything.results] == ["b1", "c1", "b2", "b3"],
          "all %r" % everything.bodies)
    ids = dict(zip(everything.bodies, everything.ids))

    def bodies(**fields):
        return query(alice, fields).bodies

    check(bodies(**{"with": bob.bare}) == ["b1", "b2", "b3"], "with bob")
    check(bodies(**{"with": bob.jid}) == ["b1", "b2"], "with bob's full JID")
    check(bodies(**{"with": carol.bare}) == ["c1"], "with carol")
    check(bodies(**{"with": "nobody@localhost"}) == [], "with nobody")
    check(bodies(start=split) == ["c1", "b2", "b3"], "start")
    check(bodies(end=split) == ["b1"], "end")
    check(bodies(**{"with": bob.bare, "start": split}) == ["b2", "b3"], "with and start")
    check(bodies(ids=[ids["b3"], ids["b1"]]) == ["b1", "b3"], "ids")
    check(bodies(after_id=ids["b1"]) == ["c1", "b2", "b3"], "after-id")
    check(bodies(before_id=ids["b3"]) == ["b1", "c1", "b2"], "before-id")
    check(bodies(after_id=ids["b1"], before_id=ids["b3"]) == ["c1", "b2"], "between")
    page = query(alice, {"after_id": ids["b1"]}, max=1)
    check(page.bodies == ["c1"] and not page.complete, "after-id goes forwards")
    page = query(alice, {"after_id": ids["b1"]}, max=1, before=True)
    check(page.bodies == ["b3"] and not page.complete, "with <before/>: the last page")
    page = query(alice, {"after_id": ids["b1"]}, max=5, after=ids["c1"])
    check(page.bodies == ["b2", "b3"] and page.complete, "after-id and RSM after")
    page = query(alice, {"after_id": ids["c1"]}, max=5, after=ids["b1"])
    check(page.bodies == ["b2", "b3"], "the later of the two bounds")


@time_limit(120)
def test_paging_through_500_messages(server):
    acct = server.account("mampager")
    bob = server.login("mampagerb", presence=True)
    sent = flood(bob, acct.jid, 500, "p")   # alice is offline: offline storage
    sync(bob, bob)
    alice = server.login(acct)              # no presence: nothing delivered
    forward, after, pages = [], None, 0
    while True:
        page = query(alice, max=50, after=after)
        pages += 1
        check(page.count == 500, "count %r" % page.count)
        if after is None:
            check(page.index == 0, "first index %r" % page.index)
        forward += page.results
        if page.complete:
            break
        check(len(page.ids) == 50 and page.last == page.ids[-1], "page of %d" % len(page.ids))
        after = page.last
        check(pages < 20, "paging does not end")
    check(pages == 10, "%d pages" % pages)
    check([text_of(r[1], "{jabber:client}body") for r in forward] == sent, "forward order")
    ids = [r[0] for r in forward]
    check(len(set(ids)) == 500, "repeated ids")

    backward, before, pages = [], True, 0
    while True:
        page = query(alice, max=50, before=before)
        pages += 1
        check(page.index is None and page.count == 500,
              "backwards: index %r count %r" % (page.index, page.count))
        check(page.first is not None and page.first.text == page.ids[0], "first")
        backward = page.results + backward
        if page.complete:
            break
        before = page.ids[0]
        check(pages < 20, "paging does not end")
    check(pages == 10 and [r[0] for r in backward] == ids,
          "backwards: %d pages, same ids %s" % (pages, [r[0] for r in backward] == ids))
    check([r[2] for r in backward] == [r[2] for r in forward], "same stamps")
    # past the end: an empty, complete page
    page = query(alice, max=50, after=ids[-1])
    check(page.ids == [] and page.complete and page.first is None and page.count == 500,
          "after the last: %r" % page.fin.attrib)
    # a count only
    page = query(alice, max=0)
    check(page.ids == [] and page.count == 500, "max 0: count %r" % page.count)
    # the default page is the largest allowed
    page = query(alice)
    check(len(page.ids) == 50 and not page.complete, "default page %d" % len(page.ids))


def test_flip_page(server):
    alice = server.login("mamflip", presence=True)
    bob = server.login("mamflipb", presence=True)
    for i in range(5):
        chat(bob, alice.jid, "f%d" % i)
    for i in range(5):
        alice.expect("message", attrs={"id": "f%d" % i})
    page = query(alice, max=3, before=True, flip=True)
    check(page.bodies == ["f4", "f3", "f2"], "flipped last page %r" % page.bodies)
    check(page.first.text == page.ids[2] and page.last == page.ids[0],
          "first/last keep their meaning")
    page = query(alice, max=3, flip=True)
    check(page.bodies == ["f2", "f1", "f0"], "flipped first page %r" % page.bodies)


def test_errors(server):
    alice = server.login("mamerr", presence=True)
    bob = server.login("mamerrb", presence=True)
    chat(bob, alice.jid, "e1")
    alice.expect("message", attrs={"id": "e1"})
    known = query(alice).ids[0]
    for inner in (rsm(max=5, after="nonexistent"), rsm(max=5, before="nonexistent"),
                  form(after_id="nonexistent"), form(before_id="nonexistent"),
                  form(ids=[known, "nonexistent"]),
                  form(after_id=known) + rsm(after="nonexistent")):
        query_error(alice, "item-not-found", inner)
    el = query_error(alice, "policy-violation", rsm(max=51))
    check(find(el, "error").get("type") == "modify", "policy-violation type")
    query_error(alice, "feature-not-implemented", form(**{"{urn:example}search": "x"}))
    query_error(alice, "bad-request", form(start="yesterday"))
    query_error(alice, "bad-request", rsm(max=-1).replace("-1", "many"))
    query_error(alice, "jid-malformed", form(**{"with": "@@"}))
    wrong = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'>"
             "<value>urn:example:other</value></field></x>" % DATA)
    query_error(alice, "bad-request", wrong)
    # another account's archive is not to be read
    query_error(alice, "forbidden", to=bob.bare)
    bob.send("<iq type='get' id='p1' to='%s'><prefs xmlns='%s'/></iq>" % (alice.bare, MAM))
    bob.expect_error("iq", "forbidden", attrs={"id": "p1"})


def test_metadata(server):
    alice = server.login("mammeta", presence=True)
    alice.send("<iq type='get' id='m0'><metadata xmlns='%s'/></iq>" % MAM)
    el = alice.expect("iq", attrs={"id": "m0", "type": "result"}, child="{%s}metadata" % MAM)
    check(len(find(el, "{%s}metadata" % MAM)) == 0, "an empty archive has no start/end")
    bob = server.login("mammetab", presence=True)
    for i in range(3):
        chat(bob, alice.jid, "m%d" % i)
        alice.expect("message", attrs={"id": "m%d" % i})
    ids = query(alice).ids
    alice.send("<iq type='get' id='m1'><metadata xmlns='%s'/></iq>" % MAM)
    el = alice.expect("iq", attrs={"id": "m1", "type": "result"})
    start = find(el, "{%s}metadata/{%s}start" % (MAM, MAM))
    end = find(el, "{%s}metadata/{%s}end" % (MAM, MAM))
    check(start.get("id") == ids[0] and end.get("id") == ids[-1], "start/end ids")
    check(start.get("timestamp").endswith("Z") and end.get("timestamp") >= start.get("timestamp"),
          "timestamps")


# ------------------------------------------------------------ preferences

def test_preferences(server):
    alice = im_login(server, server.account("mamprefs"))
    bob = im_login(server, server.account("mamprefb"))
    carol = server.login("mamprefc", presence=True)
    befriend(alice, bob)
    alice.ignore = bob.ignore = ("presence",)
    alice.send("<iq type='get' id='g1'><prefs xmlns='%s'/></iq>" % MAM)
    el = alice.expect("iq", attrs={"id": "g1", "type": "result"})
    check(prefs_of(el) == ("always", [], []), "defaults %r" % (prefs_of(el),))

    def archived(sender, ident):
        chat(sender, alice.jid, ident)
        el = alice.expect("message", attrs={"id": ident})
        return bool(stanza_ids(el, alice.bare))

    # Archived by the defaults first: the server keeps that answer for
    # alice, and must drop it when her preferences change.
    check(archived(bob, "defaults-bob") and archived(carol, "defaults-carol"), "defaults")
    el = prefs_set(alice, "never", always=[carol.bare])
    check(prefs_of(el) == ("never", [carol.bare], []), "applied %r" % (prefs_of(el),))
    check(not archived(bob, "never-bob") and archived(carol, "always-carol"), "never + always")
    el = prefs_set(alice, "roster")
    check(archived(bob, "roster-bob") and not archived(carol, "roster-carol"), "roster")
    el = prefs_set(alice, "always", always=[bob.bare], never=[carol.jid, bob.bare])
    check(prefs_of(el) == ("always", [], sorted([carol.jid, bob.bare])),
          "a JID in both lists is never archived: %r" % (prefs_of(el),))
    check(not archived(carol, "full-carol") and not archived(bob, "never-bob2"), "never list")
    chat(alice, carol.jid, "out-carol")             # outgoing: matched by 'to'
    carol.expect("message", attrs={"id": "out-carol"})
    alice.send("<iq type='get' id='g2'><prefs xmlns='%s'/></iq>" % MAM)
    el = alice.expect("iq", attrs={"id": "g2", "type": "result"})
    check(prefs_of(el)[0] == "always" and len(prefs_of(el)[2]) == 2, "stored %r" % (prefs_of(el),))
    got = [r[1].get("id") for r in query(alice).results]
    check(got == ["defaults-bob", "defaults-carol", "always-carol", "roster-bob"],
          "archived %r" % got)
    alice.send("<iq type='set' id='bad'><prefs xmlns='%s' default='sometimes'/></iq>" % MAM)
    alice.expect_error("iq", "bad-request", attrs={"id": "bad"})
    alice.send("<iq type='set' id='bad2'><prefs xmlns='%s' default='never'><always>"
               "<jid>@@</jid></always></prefs></iq>" % MAM)
    alice.expect_error("iq", "jid-malformed", attrs={"id": "bad2"})


# ------------------------------------------------------------ expiry and smacks

@time_limit(60)
def test_expiry(ctx):
    srv = ctx.server(modules=MODULES, options={"archive_expires_after": 2,
                                               "archive_cleanup_interval": 1})
    alice = srv.login("mamexp", presence=True)
    bob = srv.login("mamexpb", presence=True)
    chat(bob, alice.jid, "soon-gone")
    alice.expect("message", attrs={"id": "soon-gone"})
    check(query(alice).bodies == ["soon-gone"], "archived")
    srv.wait_log(r"removed \d+ expired archive items", timeout=15)
    page = query(alice)
    check(page.ids == [] and page.count == 0, "after expiry %r" % page.ids)
    chat(bob, alice.jid, "fresh")
    alice.expect("message", attrs={"id": "fresh"})
    check(query(alice).bodies == ["fresh"], "new messages are archived")


@time_limit(60)
def test_unacked_message_is_not_archived_twice(ctx):
    srv = ctx.server(modules=MODULES + ["smacks"], options={
        "smacks_hibernation_time": 1, "smacks_max_ack_delay_stanzas": 100})
    acct = srv.account("mamsm")
    a = srv.login(acct, resource="phone", presence=True)
    b = srv.login("mamsmb", presence=True)
    a.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    a.expect("{urn:xmpp:sm:3}enabled")
    chat(b, a.jid, "unacked")
    first = stanza_ids(a.expect("message", attrs={"id": "unacked"}), acct.jid)
    a.close()                             # never acknowledged
    srv.wait_log(r"hibernation timed out", timeout=15)
    again = srv.login(acct, resource="laptop")
    again.presence()
    el = again.expect("message", attrs={"id": "unacked"})
    check(stanza_ids(el, acct.jid) == first, "offline copy %r, first %r"
          % (stanza_ids(el), first))
    page = query(again)
    check(page.ids == first, "archive %r" % page.ids)


@time_limit(90)
def test_queries_by_contact_while_the_index_catches_up(ctx):
    # Messages archived as they pass get their by-contact index entries
    # from a job that runs behind (here: right away, once a second has
    # gone by); a query by contact sees them all, indexed or not yet.
    srv = ctx.server(modules=MODULES, options={"archive_index_delay": 0})
    alice = srv.login("mamix", presence=True)
    bob = srv.login("mamixb", presence=True)
    carol = srv.login("mamixc", presence=True)
    sent = {bob.bare: [], carol.bare: []}
    passes = r"archive store archive of localhost \(lmdb\): [1-9]\d* items indexed"

    def exchange(tag, n):
        for i in range(n):
            who = carol if i % 3 == 0 else bob
            ident = "%s%d" % (tag, i)
            if i % 2:
                chat(who, alice.jid, ident)
                alice.expect("message", attrs={"id": ident})
            else:
                chat(alice, who.jid, ident)
                who.expect("message", attrs={"id": ident})
            sent[who.bare].append(ident)

    def indexed_passes():
        return len(re.findall(passes, srv.log_text()))

    def check_by_contact(when):
        for contact, bodies in sent.items():
            page = query(alice, {"with": contact})
            check(page.bodies == bodies and page.count == len(bodies),
                  "%s, with %s: %r, count %r" % (when, contact, page.bodies, page.count))
            ids, after = [], None
            while True:                 # forwards by two
                page = query(alice, {"with": contact}, max=2, after=after)
                ids += page.ids
                if page.complete:
                    break
                after = page.last
            check(ids == query(alice, {"with": contact}).ids, "%s: forwards" % when)
            back, before = [], True
            while True:                 # backwards by two
                page = query(alice, {"with": contact}, max=2, before=before)
                back = page.ids + back
                if page.complete:
                    break
                before = page.first.text
            check(back == ids, "%s: backwards %r, forwards %r" % (when, back, ids))
        page = query(bob, {"with": alice.bare})
        check(page.bodies == sent[bob.bare], "%s: bob's side %r" % (when, page.bodies))

    exchange("a", 9)
    check_by_contact("none indexed")
    srv.wait_log(passes, timeout=20)
    exchange("b", 9)
    check_by_contact("partly indexed")
    deadline = time.monotonic() + 20
    first = indexed_passes()
    while indexed_passes() == first and time.monotonic() < deadline:
        time.sleep(0.1)
    check(indexed_passes() > first, "no second pass")
    check_by_contact("all indexed")


# ------------------------------------------------------------ options

def test_default_policy_option(ctx):
    srv = ctx.server(modules=MODULES, options={"default_archive_policy": False,
                                               "max_archive_query_results": 2})
    alice = srv.login("mamnever", presence=True)
    bob = srv.login("mamneverb", presence=True)
    alice.send("<iq type='get' id='g'><prefs xmlns='%s'/></iq>" % MAM)
    el = alice.expect("iq", attrs={"id": "g", "type": "result"})
    check(prefs_of(el) == ("never", [], []), "defaults %r" % (prefs_of(el),))
    chat(bob, alice.jid, "unarchived")
    el = alice.expect("message", attrs={"id": "unarchived"})
    check(stanza_ids(el) == [], "archived under 'never': %r" % stanza_ids(el))
    prefs_set(alice, "always")
    for i in range(3):
        chat(bob, alice.jid, "kept%d" % i)
        alice.expect("message", attrs={"id": "kept%d" % i})
    page = query(alice)
    check(page.bodies == ["kept0", "kept1"] and not page.complete, "page of 2: %r" % page.bodies)
    query_error(alice, "policy-violation", rsm(max=3))


def test_bad_options_stop_the_module(ctx):
    srv = ctx.server(modules=["iq", "mam"], options={"default_archive_policy": "sometimes"})
    line = srv.wait_log(r"mam.*failed to load")
    check("default_archive_policy" in line, line)
    c = srv.login("mamnomodule")
    query_error(c, "service-unavailable")


# ------------------------------------------------------------ quota, bounces

def test_the_quota_keeps_the_newest_items_and_the_count_tells(ctx):
    srv = ctx.server(modules=MODULES, options={"archive_max_items": 5})
    with bystanders(srv) as (b, c):
        alice = srv.login("mamquota", presence=True)
        bob = srv.login("mamquotab", presence=True)
        bodies = flood(bob, alice.jid, 8, "q")
        for body in bodies:
            alice.expect("message", child="body", text=body)
        exchange(b, c)
        page = query(alice)
        check(page.count == 5 and page.bodies == bodies[3:] and page.complete,
              "the newest 5 are kept: %r (count %r)" % (page.bodies, page.count))
        srv.wait_log(r"archive of mamquota\d*@localhost over its quota of 5 items: "
                     r"the 3 oldest removed")
        # the sender's copies are under the same quota
        page = query(bob)
        check(page.count == 5 and page.bodies == bodies[3:], "sender: %r" % page.bodies)
        # and the archive goes on: the oldest go first
        chat(bob, alice.jid, "q-new")
        alice.expect("message", attrs={"id": "q-new"})
        page = query(alice)
        check(page.count == 5 and page.bodies == bodies[4:] + ["q-new"],
              "after one more: %r" % page.bodies)


def test_the_quota_is_kept_without_queries(ctx):
    srv = ctx.server(modules=MODULES, options={"archive_max_items": 3,
                                               "archive_cleanup_interval": 1})
    alice = srv.login("mamquiet", presence=True)
    bob = srv.login("mamquietb", presence=True)
    bodies = flood(bob, alice.jid, 6, "w")
    for body in bodies:
        alice.expect("message", child="body", text=body)
    srv.wait_log(r"archive of mamquiet\d*@localhost over its quota of 3 items: "
                 r"the 3 oldest removed", timeout=15)
    page = query(alice)
    check(page.count == 3 and page.bodies == bodies[3:], "kept: %r" % page.bodies)


def test_a_message_bounced_for_want_of_offline_storage_is_not_archived(ctx):
    # without mod_offline a message to an account with no resource online
    # is answered service-unavailable: it is not the recipient's either
    srv = ctx.server(modules=[m for m in MODULES if m != "offline"])
    acct = srv.account("mambounce")
    bob = srv.login("mambounceb", presence=True)
    chat(bob, acct.jid, "never-delivered")
    bob.expect_error("message", "service-unavailable", attrs={"id": "never-delivered"})
    alice = srv.login(acct, presence=True)
    chat(bob, alice.jid, "delivered")
    alice.expect("message", attrs={"id": "delivered"})
    page = query(alice)
    check(page.bodies == ["delivered"] and page.count == 1,
          "only the delivered message: %r" % page.bodies)


def test_a_message_bounced_by_full_offline_storage_is_not_archived(ctx):
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "modules",
                            "mod_offline.lua")).read()
    if "message/offline/bounced" not in src:
        skip("mod_offline does not yet tell when it bounces a message "
             "(message/offline/bounced, issue 17 item 3)")
    srv = ctx.server(modules=MODULES, options={"offline_max_messages": 1})
    acct = srv.account("mamfull")
    bob = srv.login("mamfullb", presence=True)
    chat(bob, acct.jid, "kept-offline")
    chat(bob, acct.jid, "bounced")
    bob.expect_error("message", "service-unavailable", attrs={"id": "bounced"})
    alice = srv.login(acct, presence=True)
    alice.expect("message", attrs={"id": "kept-offline"})
    page = query(alice)
    check(page.bodies == ["kept-offline"] and page.count == 1,
          "only the message kept offline: %r" % page.bodies)
