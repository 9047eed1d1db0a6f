"""XEP-0227 export and import with starlingctl.

Round trip: data made through XMPP on one server (accounts, roster, a
pending subscription request, vCard, private XML, offline messages, and
message archive items) is exported, imported into an empty server, and
exported again: the two files are equivalent (C14N), and the users log in
on the new server with their passwords and find their data.

A hand-written file split with XInclude (the layout of XEP-0227 section
5.1), with a plaintext password, Prosody's way of writing subscription
requests, and a host that is not configured, imports too.
"""

import os
import tempfile
import xml.etree.ElementTree as ET

from harness import check, time_limit
from server import Account
from xmpp import find, find_all, text_of

MODULES = ["roster", "presence", "message", "iq", "ping", "vcard", "private",
           "offline"]

# Appends items to the "archive" store (the message archive XEP-0227
# exports) of the logged-in user: <iq type='set'><add xmlns='urn:starling:
# test:mam' with='...' when='...' id='...'><message .../></add></iq>.
MAM_PLUGIN = r'''
local st = require "util.stanza"
local archive = module:open_store("archive", "archive")
module:hook("iq-set/self/urn:starling:test:mam:add", function(event)
	local add = event.stanza.tags[1]
	local msg = add:get_child("message", "jabber:client")
	local id, err = archive:append(event.origin.username, add.attr.id, msg:clone(),
		tonumber(add.attr.when), add.attr.with)
	if not id then
		event.origin:send(st.error_reply(event.stanza, "wait", "internal-server-error", err))
	else
		event.origin:send(st.reply(event.stanza))
	end
	return true
end)
'''


def iq(c, payload, type="set"):
    iq_id = "q%d" % id(payload)
    c.send("<iq type='%s' id='%s'>%s</iq>" % (type, iq_id, payload))
    return c.expect("iq", attrs={"id": iq_id, "type": "result"})


def canonical(path):
    with open(path) as f:
        return ET.canonicalize(f.read(), strip_text=True)


def export_to(srv, path):
    srv.ctl("export", "-o", path, "localhost")
    check(oct(os.stat(path).st_mode & 0o777) == "0o600", "export file mode")


def populate(srv):
    alice = srv.register("alice", "alice-pw")
    bob = srv.register("bob", "bob-pw")
    carol = srv.register("carol", "carol-pw")
    a = srv.login(alice)
    iq(a, "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'>"
          "<group>Friends</group><group>Work</group></item></query>")
    iq(a, "<query xmlns='jabber:iq:roster'><item jid='dave@example.net'/></query>")
    iq(a, "<vCard xmlns='vcard-temp'><FN>Alice A.</FN><NICKNAME>al</NICKNAME></vCard>")
    iq(a, "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'>"
          "<colour>blue</colour></prefs></query>")
    for n, (when, with_) in enumerate(((1000, "bob@localhost"), (2000, "dave@example.net"),
                                       (1500.25, "bob@localhost"))):
        iq(a, "<add xmlns='urn:starling:test:mam' id='arch%d' when='%s' with='%s'>"
              "<message xmlns='jabber:client' from='alice@localhost/x' to='%s' type='chat'>"
              "<body>archived %d</body></message></add>" % (n, when, with_, with_, n))
    b = srv.login(bob)
    # a subscription request to carol, who is offline: kept for her
    b.send("<presence to='carol@localhost' type='subscribe'/>")
    for n in range(3):
        b.send("<message to='carol@localhost' type='chat'><body>offline %d</body></message>"
               % n)
    b.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    b.expect("iq", attrs={"id": "sync", "type": "result"})
    return alice, bob, carol


@time_limit(90)
def test_round_trip_export_import_export(ctx):
    tmp = tempfile.mkdtemp(prefix="starling-pie-")
    ctx.cleanup(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
    first = ctx.server(modules=MODULES, plugins={"mamtest": MAM_PLUGIN})
    alice, bob, carol = populate(first)
    one, two = os.path.join(tmp, "one.xml"), os.path.join(tmp, "two.xml")
    export_to(first, one)
    tree = ET.parse(one).getroot()
    users = {u.get("name"): u for u in tree.iter("{urn:xmpp:pie:0}user")}
    check(set(users) == {"alice", "bob", "carol"}, sorted(users))
    a = users["alice"]
    check(len(a.findall("{urn:xmpp:pie:0#scram}scram-credentials")) == 2)
    check([i.get("jid") for i in a.iter("{jabber:iq:roster}item")]
          == ["bob@localhost", "dave@example.net"])
    check(a.find("{vcard-temp}vCard/{vcard-temp}FN").text == "Alice A.")
    check(a.find("{jabber:iq:private}query/{urn:example:prefs}prefs") is not None)
    results = a.findall("{urn:xmpp:pie:0#mam}archive/{urn:xmpp:mam:2}result")
    check([r.get("id") for r in results] == ["arch0", "arch2", "arch1"],
          [r.get("id") for r in results])
    c = users["carol"]
    check([m.findtext("{jabber:client}body") for m in c.iter("{jabber:client}message")]
          == ["offline 0", "offline 1", "offline 2"])
    check(c.find("{jabber:client}presence[@type='subscribe']") is not None)
    # into an empty server, and out again
    second = ctx.server(modules=MODULES, plugins={"mamtest": MAM_PLUGIN})
    proc = second.ctl("import", one)
    check("imported 3 users on 1 hosts" in proc.stderr, proc.stderr)
    export_to(second, two)
    check(canonical(one) == canonical(two), "the second export differs:\n%s\n---\n%s"
          % (open(one).read(), open(two).read()))
    # the users log in with their passwords and find their data
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        second.login(alice, mech=mech).close()
    a = second.login(alice)
    el = iq(a, "<query xmlns='jabber:iq:roster'/>", type="get")
    items = {i.get("jid"): i for i in find_all(el, "roster:query/roster:item")}
    check(set(items) == {"bob@localhost", "dave@example.net"})
    check(items["bob@localhost"].get("name") == "Bob")
    check([g.text for g in find_all(items["bob@localhost"], "roster:group")]
          == ["Friends", "Work"])
    el = iq(a, "<vCard xmlns='vcard-temp'/>", type="get")
    check(text_of(el, "{vcard-temp}vCard/{vcard-temp}FN") == "Alice A.")
    el = iq(a, "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>",
            type="get")
    check(text_of(el, "{jabber:iq:private}query/{urn:example:prefs}prefs/"
                      "{urn:example:prefs}colour") == "blue")
    c = second.login(carol, ignore_presence=False)
    c.presence()
    bodies = []
    while len(bodies) < 3:
        el = c.expect()
        if el.tag.endswith("}message"):
            bodies.append(text_of(el, "body"))
    check(bodies == ["offline 0", "offline 1", "offline 2"], bodies)


USER_ROMEO = """<?xml version='1.0' encoding='UTF-8'?>
<user xmlns='urn:xmpp:pie:0' name='Romeo' password='iLuvJuLi3T'>
  <query xmlns='jabber:iq:roster' version='5'>
    <item jid='juliet@localhost' name='Juliet' subscription='both'>
      <group>Lovers</group></item>
  </query>
  <presence type='subscribe' from='tybalt@localhost'/>
  <vCard xmlns='vcard-temp'><FN>Romeo Montague</FN></vCard>
</user>
"""

USER_JULIET = """<user xmlns='urn:xmpp:pie:0' name='juliet' password='s3crEt'>
  <offline-messages>
    <message xmlns='jabber:client' from='romeo@localhost/orchard'
             to='juliet@localhost/balcony' type='chat'>
      <body>Neither, fair saint, if either thee dislike.</body>
      <delay xmlns='urn:xmpp:delay' from='localhost' stamp='1469-07-21T00:32:29Z'>Offline Storage</delay>
    </message>
  </offline-messages>
  <xi:include xmlns:xi='http://www.w3.org/2001/XInclude' href='juliet-private.xml'/>
</user>
"""

JULIET_PRIVATE = """<query xmlns='jabber:iq:private'>
  <exodus xmlns='exodus:prefs'><defaultnick>Juliet</defaultnick></exodus>
</query>
"""

HOST_FILE = """<?xml version='1.0' encoding='UTF-8'?>
<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'>
  <xi:include href='localhost/romeo.xml'/>
  <xi:include href='localhost/juliet.xml'/>
</host>
"""

MAIN_FILE = """<?xml version='1.0' encoding='UTF-8'?>
<!-- written by hand for the test -->
<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>
  <xi:include href='localhost.xml'/>
  <host jid='elsewhere.example'><user name='nobody' password='x'/></host>
</server-data>
"""


@time_limit(60)
def test_import_hand_written_file_with_xinclude(ctx):
    tmp = tempfile.mkdtemp(prefix="starling-pie-")
    ctx.cleanup(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
    os.makedirs(os.path.join(tmp, "localhost"))
    for name, text in (("main.xml", MAIN_FILE), ("localhost.xml", HOST_FILE),
                       ("localhost/romeo.xml", USER_ROMEO),
                       ("localhost/juliet.xml", USER_JULIET),
                       ("localhost/juliet-private.xml", JULIET_PRIVATE)):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    srv = ctx.server(modules=MODULES)
    proc = srv.ctl("import", os.path.join(tmp, "main.xml"))
    check("imported 2 users on 1 hosts" in proc.stderr, proc.stderr)
    check("elsewhere.example is not a VirtualHost" in proc.stderr, proc.stderr)
    # nodeprep made Romeo romeo; the plaintext password became SCRAM
    romeo = srv.login(Account("romeo", "iLuvJuLi3T", "localhost"), mech="SCRAM-SHA-1")
    el = iq(romeo, "<query xmlns='jabber:iq:roster'/>", type="get")
    item = find(el, "roster:query/roster:item")
    check(item.get("jid") == "juliet@localhost" and item.get("subscription") == "both"
          and text_of(item, "roster:group") == "Lovers")
    el = iq(romeo, "<vCard xmlns='vcard-temp'/>", type="get")
    check(text_of(el, "{vcard-temp}vCard/{vcard-temp}FN") == "Romeo Montague")
    out = srv.ctl("export", "localhost").stdout
    check("from='tybalt@localhost'" in out and "type='subscribe'" in out, out)
    check("<defaultnick>Juliet</defaultnick>" in out, out)
    # juliet's offline message is delivered with its old stamp
    j = srv.login(Account("juliet", "s3crEt", "localhost"))
    j.presence()
    el = j.expect("message", child="body")
    check(find(el, "{urn:xmpp:delay}delay").get("stamp") == "1469-07-21T00:32:29Z")


def test_import_refuses_bad_files(ctx):
    tmp = tempfile.mkdtemp(prefix="starling-pie-")
    ctx.cleanup(lambda: __import__("shutil").rmtree(tmp, ignore_errors=True))
    srv = ctx.server()
    cases = {
        "doctype.xml": ("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaa'>]>"
                        "<server-data xmlns='urn:xmpp:pie:0'/>", "DOCTYPE"),
        "broken.xml": ("<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>",
                       "broken.xml:1"),
        "missing.xml": (None, "No such file"),
        "loop.xml": ("<server-data xmlns='urn:xmpp:pie:0' "
                     "xmlns:xi='http://www.w3.org/2001/XInclude'>"
                     "<xi:include href='loop.xml'/></server-data>", "nested deeper"),
    }
    for name, (text, why) in cases.items():
        path = os.path.join(tmp, name)
        if text is not None:
            with open(path, "w") as f:
                f.write(text)
        proc = srv.ctl("import", path, check=False)
        check(proc.returncode != 0 and why in proc.stderr,
              "%s: exit %d: %s" % (name, proc.returncode, proc.stderr))
    # a user whose credentials do not decode is refused, nothing half-made
    path = os.path.join(tmp, "badcreds.xml")
    with open(path, "w") as f:
        f.write("<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
                "<user name='mallory'><scram-credentials xmlns='urn:xmpp:pie:0#scram' "
                "mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>!!</salt>"
                "<server-key>AAAA</server-key><stored-key>AAAA</stored-key>"
                "</scram-credentials></user></host></server-data>")
    proc = srv.ctl("import", path, check=False)
    check(proc.returncode != 0 and "bad salt" in proc.stderr, proc.stderr)
    check("mallory" not in srv.ctl("list", "localhost").stdout)
