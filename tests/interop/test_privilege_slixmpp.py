"""Interop: privileged entities (XEP-0356) and namespace delegation
(XEP-0355) with a gateway written on slixmpp's ComponentXMPP and its
xep_0356 plugin: each permission granted works, and each one is refused
where it is not granted."""

import asyncio
import queue
import threading
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from component import component_server, component_port
from harness import check, fixture, time_limit
from xmpp import new_id

SECRET = "s3cret-priv"
NS_PRIV = "urn:xmpp:privilege:2"
NS_DELEG = "urn:xmpp:delegation:2"
NS_FWD = "urn:xmpp:forward:0"
NS_CUSTOM = "urn:example:custom"


@fixture
def server(scope):
    srv = component_server(scope, {
        "gw.localhost": {"component_secret": SECRET},
        "weak.localhost": {"component_secret": SECRET},
    }, modules=["roster", "presence", "message", "iq", "disco", "carbons", "private", "mam",
                "privilege", "delegation"],
        options={
            "privileges": {
                "gw.localhost": {"roster": "both", "message": "outgoing",
                                 "presence": "roster",
                                 "iq": {"jabber:iq:private": "both"}},
                "weak.localhost": {"roster": "get"},
            },
            "delegations": {NS_CUSTOM: {"jid": "gw.localhost"}},
        })
    return srv


class Gateway:
    """A slixmpp component in a thread of its own; every stanza it gets
    lands in self.got (as XML text)."""

    def __init__(self, srv, domain):
        self.got = queue.Queue()
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        # the server's domain is what xep_0356 sends privileged messages to
        self.xmpp = slixmpp.ComponentXMPP(domain, SECRET, srv.domain, component_port(srv))
        self.xmpp.loop = self.loop
        self.xmpp.register_plugin("xep_0356")
        self.xmpp.add_filter("in", self._incoming)
        # delegated iqs are the test's to answer (not slixmpp's
        # feature-not-implemented)
        self.xmpp.register_handler(Callback("delegated", MatchXPath(
            "{jabber:component:accept}iq/{%s}delegation" % NS_DELEG), lambda _: None))
        self.gone = threading.Event()
        self.xmpp.add_event_handler("session_start", lambda _: self.ready.set())
        self.xmpp.add_event_handler("disconnected", lambda _: self.gone.set())
        threading.Thread(target=self._run, daemon=True).start()
        check(self.ready.wait(20), "the component did not connect")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.xmpp.connect("127.0.0.1", self.xmpp.server_port)
        self.loop.run_forever()

    def _incoming(self, stanza):
        self.got.put(ET.fromstring(str(stanza)))
        return stanza

    def send(self, xml):
        self.loop.call_soon_threadsafe(self.xmpp.send_raw, xml)

    def authorize(self, owner, contact):
        """owner (a JID of the component's) approves contact's subscription
        request through slixmpp's own roster, which then answers the
        server's probes for it as a gateway would."""
        self.loop.call_soon_threadsafe(
            lambda: self.xmpp.roster[owner][contact].authorize())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def expect(self, pred, what, timeout=10):
        while True:
            try:
                el = self.got.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("the component did not get " + what)
            if pred(el):
                return el

    def iq(self, xml_fmt, **kw):
        qid = new_id("iq")
        self.send(xml_fmt.format(id=qid, **kw))
        return self.expect(lambda e: e.tag.endswith("iq") and e.get("id") == qid,
                           "the answer to " + qid)

    def close(self):
        self.loop.call_soon_threadsafe(self.xmpp.disconnect)
        check(self.gone.wait(10), "the component did not disconnect")


def error_of(el):
    for e in el.iter():
        if e.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}"):
            return e.tag.split("}")[1]
    return None


@time_limit(120)
def test_advertisement_and_roster(server):
    server.register("alice", "pw")
    gw = Gateway(server, "gw.localhost")
    try:
        gw.expect(lambda e: e.find("{%s}privilege" % NS_PRIV) is not None, "the advertisement")
        check(gw.xmpp["xep_0356"].granted_privileges["roster"] == "both",
              gw.xmpp["xep_0356"].granted_privileges)
        gw.call(gw.xmpp["xep_0356"].set_roster(
            "alice@localhost", {"bob@irc.example": {"name": "Bob", "groups": ["IRC"],
                                                    "subscription": "both"}}))
        roster = gw.call(gw.xmpp["xep_0356"].get_roster("alice@localhost"))
        items = roster["roster"]["items"]
        check("bob@irc.example" in items and items["bob@irc.example"]["name"] == "Bob", items)
        alice = server.login(server.accounts["alice@localhost"], resource="desk")
        alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        alice.expect("iq", attrs={"id": "r1", "type": "result"}, child="query")
    finally:
        gw.close()
    weak = Gateway(server, "weak.localhost")
    try:
        adv = weak.expect(lambda e: e.find("{%s}privilege" % NS_PRIV) is not None, "weak adv")
        perms = [p.get("access") for p in adv.iter("{%s}perm" % NS_PRIV)]
        check(perms == ["roster"], perms)
        got = weak.iq("<iq type='get' from='weak.localhost' to='alice@localhost' id='{id}'>"
                      "<query xmlns='jabber:iq:roster'/></iq>")
        check(got.get("type") == "result", ET.tostring(got))
        got = weak.iq("<iq type='set' from='weak.localhost' to='alice@localhost' id='{id}'>"
                      "<query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>")
        check(error_of(got) == "forbidden", ET.tostring(got))
        # message, iq: not granted
        weak.send("<message from='weak.localhost' to='localhost' id='pm'>"
                  "<privilege xmlns='%s'><forwarded xmlns='%s'><message xmlns='jabber:client' "
                  "from='alice@localhost' to='bob@localhost' type='chat'><body>x</body>"
                  "</message></forwarded></privilege></message>" % (NS_PRIV, NS_FWD))
        got = weak.expect(lambda e: e.get("id") == "pm", "the refusal")
        check(error_of(got) == "forbidden", ET.tostring(got))
        got = weak.iq("<iq type='get' from='weak.localhost' to='alice@localhost' id='{id}'>"
                      "<privileged_iq xmlns='%s'><iq xmlns='jabber:client' type='get' id='p1' "
                      "from='alice@localhost' to='alice@localhost'><query xmlns='jabber:iq:private'>"
                      "<x xmlns='urn:example:x'/></query></iq></privileged_iq></iq>" % NS_PRIV)
        check(error_of(got) == "forbidden", ET.tostring(got))
    finally:
        weak.close()


@time_limit(120)
def test_message_presence_iq_and_delegation(server):
    server.register("carol", "pw")
    server.register("dave", "pw")
    gw = Gateway(server, "gw.localhost")
    try:
        carol = server.login(server.accounts["carol@localhost"], resource="phone")
        carol.send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        carol.expect("iq", attrs={"id": "c1", "type": "result"})
        carol.send("<presence/>")
        gw.expect(lambda e: e.tag.endswith("presence") and
                  (e.get("from") or "").startswith("carol@localhost/phone"), "carol's presence")
        dave = server.login(server.accounts["dave@localhost"], resource="desk")
        # message as carol: dave gets it from carol, carol's phone a carbon
        msg = gw.xmpp.make_message(mto="dave@localhost/desk", mbody="from my other device",
                                   mtype="chat", mfrom="carol@localhost/legacy")
        gw.loop.call_soon_threadsafe(gw.xmpp["xep_0356"].send_privileged_message, msg)
        dave.expect("message", attrs={"from": "carol@localhost/legacy"}, child="body",
                    text="from my other device")
        carol.expect("message", child="{urn:xmpp:carbons:2}sent")
        # and it is in carol's archive as hers
        carol.send("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='mq'/></iq>")
        res = carol.expect("message", child="{urn:xmpp:mam:2}result")
        fwd = res.find("{urn:xmpp:mam:2}result/{%s}forwarded/{jabber:client}message" % NS_FWD)
        check(fwd is not None and fwd.get("from") == "carol@localhost/legacy" and
              fwd.findtext("{jabber:client}body") == "from my other device",
              "the archived message: %r" % (fwd,))
        carol.expect("iq", attrs={"id": "q1", "type": "result"})
        # a message as someone of another server is refused
        gw.send("<message from='gw.localhost' to='localhost' id='pm2'>"
                "<privilege xmlns='%s'><forwarded xmlns='%s'><message xmlns='jabber:client' "
                "from='eve@elsewhere.example' to='dave@localhost' type='chat'><body>x</body>"
                "</message></forwarded></privilege></message>" % (NS_PRIV, NS_FWD))
        got = gw.expect(lambda e: e.get("id") == "pm2", "the refusal")
        check(error_of(got) == "forbidden", ET.tostring(got))
        # privileged iq: private XML storage as carol
        got = gw.iq("<iq type='set' from='gw.localhost' to='carol@localhost' id='{id}'>"
                    "<privileged_iq xmlns='%s'><iq xmlns='jabber:client' type='set' id='p1' "
                    "from='carol@localhost' to='carol@localhost'><query xmlns='jabber:iq:private'>"
                    "<x xmlns='urn:example:x'>kept</x></query></iq></privileged_iq></iq>" % NS_PRIV)
        check(got.get("type") == "result", ET.tostring(got))
        got = gw.iq("<iq type='get' from='gw.localhost' to='carol@localhost' id='{id}'>"
                    "<privileged_iq xmlns='%s'><iq xmlns='jabber:client' type='get' id='p3' "
                    "from='carol@localhost' to='carol@localhost'><query xmlns='jabber:iq:private'>"
                    "<x xmlns='urn:example:x'/></query></iq></privileged_iq></iq>" % NS_PRIV)
        kept = got.find("{%s}privileged_iq/{jabber:client}iq/{jabber:iq:private}query/"
                        "{urn:example:x}x" % NS_PRIV)
        check(got.get("type") == "result" and kept is not None and kept.text == "kept",
              ET.tostring(got))
        carol.send("<iq type='get' id='c2'><query xmlns='jabber:iq:private'>"
                   "<x xmlns='urn:example:x'/></query></iq>")
        carol.expect("iq", attrs={"id": "c2", "type": "result"}, child="query", text="kept")
        # a namespace not granted
        got = gw.iq("<iq type='get' from='gw.localhost' to='carol@localhost' id='{id}'>"
                    "<privileged_iq xmlns='%s'><iq xmlns='jabber:client' type='get' id='p2' "
                    "from='carol@localhost' to='carol@localhost'><vCard xmlns='vcard-temp'/>"
                    "</iq></privileged_iq></iq>" % NS_PRIV)
        check(error_of(got) == "forbidden", ET.tostring(got))
        # delegation: dave's iq to the server goes to the component and back
        dave.send("<iq type='get' to='localhost' id='d1'><q xmlns='%s'/></iq>" % NS_CUSTOM)
        fwd = gw.expect(lambda e: e.find("{%s}delegation" % NS_DELEG) is not None
                        and e.tag.endswith("iq"), "the delegated iq")
        inner = fwd.find("{%s}delegation/{%s}forwarded/{jabber:client}iq" % (NS_DELEG, NS_FWD))
        check(inner is not None and inner.get("from") == "dave@localhost/desk", ET.tostring(fwd))
        gw.send("<iq type='result' from='gw.localhost' to='localhost' id='%s'>"
                "<delegation xmlns='%s'><forwarded xmlns='%s'><iq xmlns='jabber:client' "
                "type='result' from='localhost' to='dave@localhost/desk' id='d1'>"
                "<q xmlns='%s'>answered</q></iq></forwarded></delegation></iq>"
                % (fwd.get("id"), NS_DELEG, NS_FWD, NS_CUSTOM))
        dave.expect("iq", attrs={"id": "d1", "type": "result"}, child="{%s}q" % NS_CUSTOM)
        # a namespace not delegated
        dave.send("<iq type='get' to='localhost' id='d2'><q xmlns='urn:example:other'/></iq>")
        dave.expect_error("iq", "service-unavailable", attrs={"id": "d2"})
    finally:
        gw.close()
    # the component away: service-unavailable
    dave.send("<iq type='get' to='localhost' id='d3'><q xmlns='%s'/></iq>" % NS_CUSTOM)
    dave.expect_error("iq", "service-unavailable", attrs={"id": "d3"})


def roster_roundtrip(comp, user):
    """A privileged roster get: what the server sent the component before
    its answer has arrived by then."""
    return comp.iq("<iq type='get' from='%s' to='%s' id='{id}'>"
                   "<query xmlns='jabber:iq:roster'/></iq>" % (comp.xmpp.boundjid.bare, user))


def presences(comp):
    out = []
    while not comp.got.empty():
        el = comp.got.get()
        if el.tag.endswith("presence"):
            out.append((el.get("from"), el.get("type")))
    return out


@time_limit(120)
def test_presence_of_contacts_with_roster_permission(server):
    server.register("fred", "pw")
    gw = Gateway(server, "gw.localhost")
    weak = Gateway(server, "weak.localhost")
    try:
        fred = server.login(server.accounts["fred@localhost"], resource="pc")
        fred.send("<presence/>")
        gw.expect(lambda e: e.tag.endswith("presence") and
                  e.get("from") == "fred@localhost/pc" and e.get("type") is None,
                  "fred's presence")
        # fred subscribes to bob at weak.localhost, who approves (through
        # slixmpp's roster, which answers the server's probes from then on)
        fred.send("<presence type='subscribe' to='bob@weak.localhost'/>")
        weak.expect(lambda e: e.tag.endswith("presence") and e.get("type") == "subscribe",
                    "fred's subscription request")
        weak.authorize("bob@weak.localhost", "fred@localhost")
        fred.wait_for("presence", {"type": "subscribed", "from": "bob@weak.localhost"})
        # a contact fred is subscribed to: gw.localhost (presence = "roster")
        # sees it; one fred is not subscribed to: it does not
        weak.send("<presence from='bob@weak.localhost/irc' to='fred@localhost'/>")
        weak.send("<presence from='eve@weak.localhost/irc' to='fred@localhost'/>")
        gw.expect(lambda e: e.tag.endswith("presence") and
                  e.get("from") == "bob@weak.localhost/irc", "the contact's presence")
        roster_roundtrip(gw, "fred@localhost")
        got = presences(gw)
        check(("eve@weak.localhost/irc", None) not in got,
              "a presence from someone fred is not subscribed to: %s" % got)
        fred.close()
    finally:
        gw.close()
        weak.close()


@time_limit(120)
def test_presence_of_accounts_and_their_contacts(server):
    server.register("erin", "pw")
    gw = Gateway(server, "gw.localhost")
    weak = Gateway(server, "weak.localhost")
    try:
        erin = server.login(server.accounts["erin@localhost"], resource="pc")
        # erin subscribes to bob at weak.localhost, who approves
        erin.send("<presence type='subscribe' to='bob@weak.localhost'/>")
        weak.expect(lambda e: e.tag.endswith("presence") and e.get("type") == "subscribe",
                    "erin's subscription request")
        weak.authorize("bob@weak.localhost", "erin@localhost")
        erin.send("<presence/>")
        gw.expect(lambda e: e.tag.endswith("presence") and
                  e.get("from") == "erin@localhost/pc" and e.get("type") is None,
                  "erin's presence")
        # weak.localhost has no presence permission: it sees none of erin's
        roster_roundtrip(weak, "erin@localhost")
        got = presences(weak)
        check(not any(f and f.startswith("erin@localhost/") for f, _ in got),
              "weak.localhost got erin's presence: %s" % got)
        erin.close()
        gw.expect(lambda e: e.tag.endswith("presence") and
                  e.get("from") == "erin@localhost/pc" and e.get("type") == "unavailable",
                  "erin going offline")
    finally:
        gw.close()
        weak.close()
