"""Routing of messages and iqs between local sessions, to the server, to
unknown users and to remote domains (RFC 6120 section 10, RFC 6121
section 8), 'from' stamping, and the roster get.

Negative assertions ("r1 does not get it") use sync(): a marker message
from the same sender to that resource's full JID must be the next message
it sees, since one session's stanzas are routed in order.
"""

import peers
from harness import check, exchange, fixture, sync
from xmpp import NS, esc, find, new_id, stanza_error, to_xml


@fixture
def server(scope):
    # the remote domain is pinned where nothing listens: no DNS involved
    return scope.server(options={"s2s_static_hosts": {
        "remote.invalid": "127.0.0.1:%d" % peers.closed_port()}})


def chat(sender, to, body, mid=None):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), mid or new_id("m"), esc(body)))


# -- messages between local sessions

def test_message_to_full_jid(server):
    a = server.login("alice", resource="a")
    b = server.login("bob", resource="b")
    chat(a, b.jid, "hello full", "full-1")
    b.expect("message", attrs={"from": a.jid, "to": b.jid, "type": "chat",
                               "id": "full-1"},
             child="body", text="hello full")


def test_message_to_full_jid_without_presence_is_delivered(server):
    a = server.login("alice")
    b = server.login("bob")            # no initial presence sent
    exchange(a, b)


def test_from_is_stamped_with_the_full_jid(server):
    a = server.login("stamp", resource="desk")
    b = server.login("peer", resource="phone")
    b.send("<message to='%s' type='chat'><body>no from</body></message>"
           % esc(a.jid))
    got = a.expect("message", child="body", text="no from")
    check(got.get("from") == b.account.jid + "/phone",
          "from is %r" % got.get("from"))


def test_from_own_full_jid_is_accepted(server):
    a = server.login("ownfrom", resource="x")
    b = server.login("peer")
    a.send("<message from='%s' to='%s' type='chat'><body>explicit</body>"
           "</message>" % (esc(a.jid), esc(b.jid)))
    b.expect("message", attrs={"from": a.jid}, child="body", text="explicit")


def test_bare_jid_goes_to_the_highest_priority_resource(server):
    bob = server.account("bob")
    high = server.login(bob, resource="high", presence=5)
    low = server.login(bob, resource="low", presence=1)
    a = server.login("alice", presence=0)
    chat(a, bob.jid, "to the bare jid")
    high.expect("message", attrs={"from": a.jid}, child="body",
                text="to the bare jid")
    sync(a, low)                      # low never saw it


def test_bare_jid_goes_to_all_resources_of_equal_top_priority(server):
    bob = server.account("bob")
    one = server.login(bob, resource="one", presence=3)
    two = server.login(bob, resource="two", presence=3)
    low = server.login(bob, resource="low", presence=2)
    a = server.login("alice")
    chat(a, bob.jid, "both of you")
    one.expect("message", child="body", text="both of you")
    two.expect("message", child="body", text="both of you")
    sync(a, low)


def test_negative_priority_never_gets_bare_jid_messages(server):
    bob = server.account("bob")
    neg = server.login(bob, resource="neg", presence=-1)
    zero = server.login(bob, resource="zero", presence=0)
    a = server.login("alice")
    chat(a, bob.jid, "not for negative")
    zero.expect("message", child="body", text="not for negative")
    sync(a, neg)
    # ...not even when it is the only resource
    carol = server.account("carol")
    only = server.login(carol, resource="only", presence=-5)
    chat(a, carol.jid, "nobody non-negative")
    sync(a, only)


def test_unavailable_resource_does_not_get_bare_jid_messages(server):
    bob = server.account("bob")
    silent = server.login(bob, resource="silent")          # no presence
    avail = server.login(bob, resource="avail", presence=0)
    a = server.login("alice")
    chat(a, bob.jid, "for the available one")
    avail.expect("message", child="body", text="for the available one")
    sync(a, silent)


def test_message_to_unknown_local_user_bounces(server):
    a = server.login("alice")
    chat(a, "nobody-%s@localhost" % new_id(), "anyone there?", "bounce-1")
    a.expect_error("message", "service-unavailable",
                   attrs={"id": "bounce-1", "to": a.jid})


# -- iq

def test_iq_to_server_unhandled_is_service_unavailable(server):
    a = server.login("iquser")
    for kind in ("get", "set"):
        iq_id = new_id("iq")
        a.send("<iq type='%s' id='%s' to='localhost'><query "
               "xmlns='urn:example:nothing-handles-this'/></iq>"
               % (kind, iq_id))
        a.expect_error("iq", "service-unavailable", type="cancel",
                       attrs={"id": iq_id, "from": "localhost"})


def test_iq_to_own_account_unhandled_is_service_unavailable(server):
    a = server.login("iquser")
    a.send("<iq type='get' id='own-1' to='%s'><query xmlns='urn:example:nope'/>"
           "</iq>" % esc(a.bare))
    a.expect_error("iq", "service-unavailable", type="cancel",
                   attrs={"id": "own-1"})


def test_iq_to_other_account_unhandled_is_service_unavailable(server):
    a = server.login("iquser")
    b = server.login("iqpeer")
    a.send("<iq type='get' id='acct-1' to='%s'><query xmlns='urn:example:nope'/>"
           "</iq>" % esc(b.bare))
    a.expect_error("iq", "service-unavailable", type="cancel",
                   attrs={"id": "acct-1", "from": b.bare})


def test_iq_to_unknown_user_is_service_unavailable(server):
    a = server.login("iquser")
    ghost = "ghost-%s@localhost" % new_id()
    a.send("<iq type='get' id='ghost-1' to='%s'><query xmlns='urn:example:x'/>"
           "</iq>" % ghost)
    a.expect_error("iq", "service-unavailable", attrs={"id": "ghost-1"})


def test_iq_to_unconnected_resource_is_service_unavailable(server):
    a = server.login("iquser")
    b = server.account("iqpeer")
    a.send("<iq type='get' id='gone-1' to='%s/nowhere'><ping xmlns='%s'/></iq>"
           % (b.jid, NS["ping"]))
    a.expect_error("iq", "service-unavailable", attrs={"id": "gone-1"})


def test_iq_between_full_jids_and_its_result(server):
    a = server.login("asker")
    b = server.login("answerer")
    a.send("<iq type='get' id='q-1' to='%s'><query xmlns='urn:example:q'/></iq>"
           % esc(b.jid))
    b.expect("iq", attrs={"from": a.jid, "id": "q-1", "type": "get"},
             child="{urn:example:q}query")
    b.send("<iq type='result' id='q-1' to='%s'/>" % esc(a.jid))
    a.expect("iq", attrs={"from": b.jid, "id": "q-1", "type": "result"})


# -- remote domains

def test_message_to_remote_domain_is_remote_server_not_found(server):
    a = server.login("traveller")
    chat(a, "someone@remote.invalid", "far away", "remote-1")
    a.expect_error("message", "remote-server-not-found",
                   attrs={"id": "remote-1"}, timeout=15)


def test_iq_to_remote_domain_is_remote_server_not_found(server):
    a = server.login("traveller")
    a.send("<iq type='get' id='remote-2' to='remote.invalid'>"
           "<ping xmlns='%s'/></iq>" % NS["ping"])
    a.expect_error("iq", "remote-server-not-found", attrs={"id": "remote-2"},
                   timeout=15)


# -- roster

def test_roster_get_is_answered(server):
    a = server.login("rosterless")
    a.send("<iq type='get' id='roster-1'><query xmlns='%s'/></iq>"
           % NS["roster"])
    el = a.expect("iq", attrs={"type": "result", "id": "roster-1"},
                  child="roster:query")
    check(el.get("from") in (None, a.bare),
          "roster result from %r" % el.get("from"))
    check(stanza_error(el) is None, to_xml(el))
    check(find(el, "roster:query/roster:item") is None,
          "a new account has roster items: %s" % to_xml(el))
