"""Interop for modern and mobile clients, with slixmpp's own plugins
(python3-slixmpp 1.8.3): a connection cut mid-conversation is resumed with
XEP-0198 and the message sent meanwhile arrives exactly once; XEP-0280
carbons reach a second resource in both directions; a XEP-0313 query pages
through 500 archived messages forwards and backwards with the same ids; a
client that says it is inactive (XEP-0352) gets no presence until it is
active again, and then only the newest of each contact. Each slixmpp client
runs in its own process (tests/lib/xmpp_agent.py)."""

from agents import Agent
from harness import check, fixture, time_limit
from xmpp import esc, find, new_id, text_of

# Without a mechanism slixmpp tries -PLUS first (and fails: the agent hides
# channel binding), and failed logins slow down the next ones.
MECH = "SCRAM-SHA-256"
MODULES = ["roster", "presence", "message", "iq", "offline", "disco",
           "smacks", "carbons", "csi", "mam"]


@fixture
def server(scope):
    return scope.server(modules=MODULES,
                        options={"smacks_max_ack_delay_stanzas": 100})


def event_of(agent, name, timeout=20):
    """The first `name` event, also when an earlier wait passed over it."""
    for ev in agent.seen:
        if ev["event"] == name:
            return ev
    return agent.wait(name, timeout)


def chat(sender, to, body):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), new_id("m"), esc(body)))


def bodies(agent, body):
    return [ev for ev in agent.seen if ev["event"] == "message" and ev.get("body") == body]


@time_limit(90)
def test_cut_connection_is_resumed_and_the_message_arrives_once(server):
    a = server.account("slixmobile")
    alice = Agent("slixmpp", server, a, resource="phone", mech=MECH,
                  plugins=["xep_0198"])
    alice.ready()
    enabled = event_of(alice, "sm_enabled")
    check(enabled["id"] and enabled["resume"], "sm enabled %r" % enabled)
    bob = server.login("slixmobileb", presence=True)
    chat(bob, alice.jid, "before the tunnel")
    alice.wait_message(body="before the tunnel")

    alice.cut()
    server.wait_log(r"%s@localhost/phone.*hibernating" % a.user)
    chat(bob, alice.jid, "while in the tunnel")
    bob.send("<iq type='get' id='sync'><query xmlns='jabber:iq:roster'/></iq>")
    bob.expect("iq", attrs={"id": "sync"})       # the server has routed it
    alice.reconnect()
    alice.wait_message(body="while in the tunnel")
    chat(bob, alice.jid, "out of the tunnel")
    alice.wait_message(body="out of the tunnel")
    for body in ("before the tunnel", "while in the tunnel"):
        check(len(bodies(alice, body)) == 1, "%r arrived %d times"
              % (body, len(bodies(alice, body))))
    check(server.wait_log(r"%s@localhost/phone.*resumed" % a.user), "no resumption logged")


@time_limit(90)
def test_carbons_reach_the_other_resource_both_ways(server):
    a = server.account("slixcarbons")
    phone = Agent("slixmpp", server, a, resource="phone", mech=MECH,
                  plugins=["xep_0280"])
    desk = Agent("slixmpp", server, a, resource="desk", mech=MECH,
                 plugins=["xep_0280"])
    phone.ready(), desk.ready()
    check(phone.carbons()["ok"] and desk.carbons()["ok"], "carbons enable")
    bob = server.login("slixcarbonsb", presence=True)

    chat(bob, phone.jid, "to the phone")
    phone.wait_message(body="to the phone")
    copy = desk.wait("carbon", direction="received", body="to the phone")
    check(copy["from"] == bob.jid and copy["to"] == phone.jid, "received copy %r" % copy)

    phone.send(bob.jid, "from the phone")
    bob.expect("message", child="body", text="from the phone")
    copy = desk.wait("carbon", direction="sent", body="from the phone")
    check(copy["to"] == bob.jid and copy["from"] == phone.jid, "sent copy %r" % copy)

    desk.send(bob.jid, "from the desk")
    bob.expect("message", child="body", text="from the desk")
    phone.wait("carbon", direction="sent", body="from the desk")
    chat(bob, desk.jid, "to the desk")
    desk.wait_message(body="to the desk")
    phone.wait("carbon", direction="received", body="to the desk")


@time_limit(120)
def test_archive_pages_forwards_and_backwards(server):
    a = server.account("slixarchive")
    bob = server.login("slixarchiveb", presence=True)
    writer = server.login(a, resource="writer")
    sent = ["archived %03d" % i for i in range(500)]
    writer.send("".join("<message to='%s' type='chat'><body>%s</body></message>"
                        % (esc(bob.jid), b) for b in sent))
    writer.send("<iq type='set' id='count'><query xmlns='urn:xmpp:mam:2'><set "
                "xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query></iq>")
    el = writer.expect("iq", attrs={"id": "count", "type": "result"})
    check(text_of(el, "{urn:xmpp:mam:2}fin/{http://jabber.org/protocol/rsm}set/"
                  "{http://jabber.org/protocol/rsm}count") == "500",
          "archived: %r" % find(el, "{urn:xmpp:mam:2}fin"))

    alice = Agent("slixmpp", server, a, resource="reader", mech=MECH,
                  plugins=["xep_0313"])
    alice.ready()
    forward = alice.mam(max=50)
    check(forward["pages"] == 10, "%d pages forwards" % forward["pages"])
    check([item[1] for item in forward["items"]] == sent, "forward bodies in order")
    ids = [item[0] for item in forward["items"]]
    check(len(set(ids)) == 500, "repeated ids")
    check(all(item[2] for item in forward["items"]), "items without a delay stamp")

    backward = alice.mam(max=50, reverse=True)
    check(backward["pages"] == 10, "%d pages backwards" % backward["pages"])
    items = backward["items"]
    pages = [items[i:i + 50] for i in range(0, len(items), 50)]
    check(pages[0][-1][1] == sent[-1], "the first page backwards ends with the newest")
    again = [item for page in reversed(pages) for item in page]
    check([item[0] for item in again] == ids, "backwards: other ids or order")
    check(again == forward["items"], "backwards: other bodies or stamps")

    only_bob = alice.mam(max=50, with_jid=bob.bare)
    check([item[0] for item in only_bob["items"]] == ids, "with bob")


@time_limit(120)
def test_inactive_client_gets_presence_only_when_active(server):
    agents = {}
    for who in ("alice", "bob", "carol"):
        acct = server.account("slixcsi" + who)
        agents[who] = Agent("slixmpp", server, acct, resource="r", im=True,
                            mech=MECH, name="slixmpp:%s" % who)
        agents[who].ready()
    alice, bob, carol = agents["alice"], agents["bob"], agents["carol"]
    for contact in (bob, carol):
        alice.subscribe(contact.jid.split("/")[0])
        alice.wait_presence(**{"from": contact.jid, "type": "available"})
        contact.wait_presence(**{"from": alice.jid, "type": "available"})

    alice.raw("<inactive xmlns='urn:xmpp:csi:0'/>")
    alice.roster()                      # answered: <inactive/> was handled
    mark = len(alice.seen)
    for contact, statuses in ((bob, ["b1", "b2", "b3"]), (carol, ["c1", "c2"])):
        for status in statuses:
            contact.presence(status=status)
        contact.roster()                # the server has routed them
    alice.roster()
    held = [ev for ev in alice.seen[mark:] if ev["event"] == "presence"]
    check(held == [], "an inactive client got presence: %r" % held)

    mark = len(alice.seen)
    alice.raw("<active xmlns='urn:xmpp:csi:0'/>")
    alice.roster()
    got = sorted((ev["from"], ev["status"]) for ev in alice.seen[mark:]
                 if ev["event"] == "presence")
    check(got == sorted([(bob.jid, "b3"), (carol.jid, "c2")]),
          "after going active: %r" % got)
