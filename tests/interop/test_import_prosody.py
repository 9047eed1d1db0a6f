"""Moving from a running Prosody: Debian's Prosody 0.12 makes its data
directory in the test (internal storage), the way its users make it —
accounts with prosodyctl register, then two clients that build a roster,
chat (mod_mam archives it) and leave a message for an offline contact
(mod_offline) — and `starlingctl import-prosody DATA_DIR` carries it into
Starling: the users log in with their old passwords and find their
rosters, their history (MAM), the offline message and their PEP data
(an OMEMO device list and a nickname published with access model open).
"""

import os
import shutil

import pki
import server as server_mod
from harness import check, fixture, skip, time_limit
from peers import ProsodyPeer
from server import Account
from xmpp import find_all, new_id, text_of

MODULES = ["roster", "presence", "message", "offline", "iq", "vcard", "private",
           "mam", "disco", "pep"]
PUBSUB = "http://jabber.org/protocol/pubsub"
DEVICES = "urn:xmpp:omemo:2:devices"
OPEN = ("<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
        "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        "<field var='pubsub#access_model'><value>open</value></field></x></publish-options>")


class ProsodyWithData(ProsodyPeer):
    """A Prosody that keeps what users leave: archives, offline messages,
    vCards, private XML, all in its internal storage."""

    def config_text(self):
        text = super().config_text()
        text = text.replace('modules_disabled = { "offline"; "admin_shell" }',
                            'modules_disabled = { "admin_shell" }')
        text = text.replace('"version"; "time" }',
                            '"version"; "time"; "pep"; "mam"; "offline"; "vcard"; "private" }\n'
                            'archive_store = "archive"\ndefault_archive_policy = true\n'
                            'archive_expires_after = "never"')
        return text


def iq(c, payload, type="get"):
    i = new_id("q")
    c.send("<iq type='%s' id='%s'>%s</iq>" % (type, i, payload))
    return c.wait_for("iq", attrs={"id": i, "type": "result"}, timeout=10)


def make_prosody_data(scope):
    """Runs Prosody, lets alice and bob use it, stops it: its data dir."""
    ca = pki.CA()
    scope.cleanup(ca.close)
    cert, key = ca.issue("localhost")
    peer = ProsodyWithData("localhost", ca.chain(cert), key, "127.0.0.1@1")
    scope.cleanup(lambda: peer.stop())
    peer.start()
    alice = Account("alice", "alice-old-Pw", "localhost")
    bob = Account("bob", "bob-old-Pw", "localhost")
    peer.register("alice", alice.password)
    peer.register("bob", bob.password)
    peer.register("carol", "carol-old-Pw")
    a = peer.login(alice, ignore_presence=False)
    b = peer.login(bob, ignore_presence=False)
    # alice names bob in her roster and they subscribe to each other
    iq(a, "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'>"
          "<group>Friends</group></item></query>", "set")
    for c in (a, b):
        iq(c, "<query xmlns='jabber:iq:roster'/>")
        c.presence()
    a.send("<presence to='bob@localhost' type='subscribe'/>")
    b.wait_for("presence", attrs={"from": "alice@localhost", "type": "subscribe"}, timeout=10)
    b.send("<presence to='alice@localhost' type='subscribed'/>")
    a.wait_for("presence", attrs={"from": "bob@localhost", "type": "subscribed"}, timeout=10)
    # a vCard and private XML of alice's
    iq(a, "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard>", "set")
    iq(a, "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'>"
          "<theme>dark</theme></prefs></query>", "set")
    # PEP: an OMEMO device list and a nickname, both open to anyone
    iq(a, "<pubsub xmlns='%s'><publish node='%s'><item id='current'><devices "
          "xmlns='urn:xmpp:omemo:2'><device id='4711'/><device id='815'/></devices>"
          "</item></publish>%s</pubsub>" % (PUBSUB, DEVICES, OPEN), "set")
    iq(a, "<pubsub xmlns='%s'><publish node='http://jabber.org/protocol/nick'>"
          "<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Ally</nick>"
          "</item></publish>%s</pubsub>" % (PUBSUB, OPEN), "set")
    # a chat, archived by mod_mam on both sides
    for i, (frm, to) in enumerate(((a, b), (b, a), (a, b))):
        frm.send("<message to='%s' type='chat' id='m%d'><body>chat line %d</body></message>"
                 % (to.account.jid, i, i))
        to.wait_for("message", child="body", text="chat line %d" % i, timeout=10)
    b.close()
    a.roundtrip()
    # bob is away: mod_offline keeps this for him
    a.send("<message to='bob@localhost' type='chat' id='off1'>"
           "<body>while you were away</body></message>")
    a.roundtrip()
    # carol asks alice, who is gone by then: a pending request
    a.close()
    c = peer.login(Account("carol", "carol-old-Pw", "localhost"))
    c.send("<presence to='alice@localhost' type='subscribe'/>")
    c.roundtrip()
    c.close()
    peer._end(peer.proc)
    data = os.path.join(peer.dir, "data")
    check(os.path.exists(os.path.join(data, "localhost", "archive", "alice.list")),
          "Prosody wrote no archive: %r" % sorted(os.walk(data)))
    check(os.path.exists(os.path.join(data, "localhost", "offline", "bob.list")),
          "Prosody kept no offline message")
    return data, alice, bob


@fixture
def imported(scope):
    if not shutil.which("prosody"):
        return "Prosody is not installed (make test-deps)"
    data, alice, bob = make_prosody_data(scope)
    srv = scope.server(modules=MODULES)
    proc = srv.ctl("import-prosody", data)
    report = proc.stdout + proc.stderr
    # what Prosody's archive files hold, one "item(...)" a message
    adir = os.path.join(data, "localhost", "archive")
    archived = sum(open(os.path.join(adir, n)).read().count("\nitem(") + 1
                   for n in os.listdir(adir))
    return srv, report + "\n(prosody archived %d)" % archived, alice, bob


def got(imported):
    if isinstance(imported, str):
        skip(imported)
    return imported


@time_limit(120)
def test_import_reports_what_it_carried(imported):
    srv, report, alice, bob = got(imported)
    for line in ("1 hosts", "3 users", "3 accounts (their passwords kept)",
                 "1 offline messages", "1 vCards", "1 private XML elements",
                 "2 PEP nodes", "2 PEP items"):
        check(line in report, "no '%s' in the report:\n%s" % (line, report))
    # every message of Prosody's archives (the chat, both sides)
    archived = int(report.rsplit("(prosody archived ", 1)[1].rstrip(")"))
    check(archived >= 6, report)
    check("%d archived messages" % archived in report, report)


def test_users_log_in_with_old_passwords_and_see_roster(imported):
    srv, report, alice, bob = got(imported)
    a = srv.login(alice, mech="SCRAM-SHA-1")
    el = iq(a, "<query xmlns='jabber:iq:roster'/>")
    items = {i.get("jid"): i for i in find_all(el, "roster:query/roster:item")}
    check(set(items) == {"bob@localhost"}, sorted(items))
    # alice asked and bob approved; bob never asked back
    check(items["bob@localhost"].get("subscription") == "to",
          items["bob@localhost"].attrib)
    check(items["bob@localhost"].get("name") == "Bobby")
    check([g.text for g in find_all(items["bob@localhost"], "roster:group")] == ["Friends"])
    el = iq(a, "<vCard xmlns='vcard-temp'/>")
    check(text_of(el, "{vcard-temp}vCard/{vcard-temp}FN") == "Alice Liddell")
    el = iq(a, "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>")
    check(text_of(el, "{jabber:iq:private}query/{urn:example:prefs}prefs/"
                      "{urn:example:prefs}theme") == "dark")
    # carol's request, made while alice was offline, comes when she is back
    a.ignore = ()
    a.presence()
    a.wait_for("presence", attrs={"from": "carol@localhost", "type": "subscribe"}, timeout=10)
    srv.login(bob, mech="PLAIN").close()


def pep_items(c, owner, node):
    i = new_id("pep")
    c.send("<iq type='get' id='%s' to='%s'><pubsub xmlns='%s'><items node='%s'/></pubsub></iq>"
           % (i, owner, PUBSUB, node))
    el = c.wait_for("iq", attrs={"id": i}, timeout=10)
    check(el.get("type") == "result", "PEP items of %s: %r" % (node, el))
    return find_all(el, "{%s}pubsub/{%s}items/{%s}item" % (PUBSUB, PUBSUB, PUBSUB))


def test_pep_data_is_there_for_contacts_and_strangers(imported):
    srv, report, alice, bob = got(imported)
    stranger = srv.login(srv.account("stranger"))
    items = pep_items(stranger, alice.jid, DEVICES)
    check([i.get("id") for i in items] == ["current"], items)
    ids = sorted(d.get("id") for d in find_all(items[0], "{urn:xmpp:omemo:2}devices/"
                                                         "{urn:xmpp:omemo:2}device"))
    check(ids == ["4711", "815"], "device list after the import: %s" % ids)
    items = pep_items(stranger, alice.jid, "http://jabber.org/protocol/nick")
    nick = find_all(items[0], "{http://jabber.org/protocol/nick}nick")
    check(nick and nick[0].text == "Ally" and nick[0].get("stamp") is None,
          "nick after the import: %r" % items)


def test_history_and_offline_message_arrive(imported):
    srv, report, alice, bob = got(imported)
    b = srv.login(bob, mech="SCRAM-SHA-1")
    b.presence()
    m = b.wait_for("message", child="body",
                   text="while you were away", timeout=10)
    check(m.get("from").startswith("alice@localhost/"), m.get("from"))
    check(m.find("{urn:xmpp:delay}delay") is not None, "no delay on the offline message")
    qid = new_id("mam")
    b.send("<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'/></iq>"
           % (qid, qid))
    bodies = []
    while True:
        el = b.next_item(10)
        if el.tag == "{jabber:client}iq" and el.get("id") == qid:
            check(el.get("type") == "result", "MAM query failed")
            break
        if el.tag == "{jabber:client}message":
            body = el.find("{urn:xmpp:mam:2}result/{urn:xmpp:forward:0}forwarded/"
                           "{jabber:client}message/{jabber:client}body")
            if body is not None:
                bodies.append(body.text)
    check(bodies[:3] == ["chat line 0", "chat line 1", "chat line 2"], bodies)
