"""Presence and subscriptions (RFC 6121 sections 3 and 4, Appendix A,
mod_presence): the subscription state machine with its roster pushes,
pre-approval, cancel and unsubscribe, pending requests kept for offline
accounts, probes, broadcast, directed presence, and unavailable presence
when a session ends.

Every client here asked for its roster (an interested resource) and sent
initial presence (im_login), and sees presence stanzas in expect()."""

import re
import time

import peers
from harness import check, fixture, sync, time_limit
from im import (DELAY, befriend, expect_presence, expect_push, expect_result,
                im_login, presence, roster_get, roster_set, unfriend)
from xmpp import ABSENT, ExpectError, find, new_id, timeout_value


@fixture
def server(scope):
    # the remote domain is pinned where nothing listens: no DNS involved
    return scope.server(options={"s2s_static_hosts": {
        "example.net": "127.0.0.1:%d" % peers.closed_port()}})


def pair(server, a="alice", b="bob"):
    return im_login(server, a), im_login(server, b)


# -- own presence

def test_initial_presence_is_echoed_to_all_own_resources(server):
    acct = server.account("echo")
    one = im_login(server, acct, resource="one")
    two = server.login(acct, resource="two", ignore_presence=False)
    two.presence(priority=3)
    expect_presence(one, two.jid, attrs={"to": acct.jid},
                    child="priority", text="3")
    expect_presence(two, two.jid, attrs={"to": acct.jid})
    expect_presence(two, one.jid, attrs={"to": two.jid})   # the other one
    one.presence(extra="<show>away</show>")
    expect_presence(two, one.jid, child="show", text="away")
    expect_presence(one, one.jid, child="show", text="away")


def test_unknown_presence_type_is_bad_request(server):
    a = im_login(server, "weird")
    a.send("<presence type='sleepy' id='w1'/>")
    a.expect_error("presence", "bad-request", attrs={"id": "w1"})
    a.send("<presence type='sleepy' id='w2' to='x@localhost'/>")
    a.expect_error("presence", "bad-request", attrs={"id": "w2"})


# -- subscriptions (3.1 - 3.3, Appendix A)

def test_mutual_subscription(server):
    a, b = pair(server)
    befriend(a, b)
    check(roster_get(a)[b.bare]["subscription"] == "both", "a's roster")
    check(roster_get(b)[a.bare]["subscription"] == "both", "b's roster")


def test_request_is_stamped_with_the_bare_jid_and_sent_to_all_resources(server):
    a = im_login(server, "stamp")
    bob = server.account("bob")
    b1 = im_login(server, bob, resource="b1")
    b2 = im_login(server, bob, resource="b2")
    expect_presence(b1, b2.jid)
    expect_presence(b2, b1.jid)
    presence(a, b1.jid, "subscribe")           # to a full JID: the account
    expect_push(a, bob.jid, "none", ask="subscribe")
    expect_presence(b1, a.bare, "subscribe", attrs={"to": bob.jid})
    expect_presence(b2, a.bare, "subscribe", attrs={"to": bob.jid})


def test_request_to_an_offline_account_waits_and_keeps_its_status(server):
    a = im_login(server, "asker")
    bob = server.account("offline")
    a.send("<presence to='%s' type='subscribe'><status>it's me</status>"
           "</presence>" % bob.jid)
    expect_push(a, bob.jid, "none", ask="subscribe")
    b = im_login(server, bob)
    el = expect_presence(b, a.bare, "subscribe", child="status", text="it's me")
    check(find(el, "{%s}delay" % DELAY) is not None, "delay on a kept request")
    b.end_stream()
    b.expect_closed()
    b = im_login(server, bob)                  # not answered: comes again
    expect_presence(b, a.bare, "subscribe", child="status", text="it's me")
    presence(b, a.bare, "subscribed")
    expect_push(b, a.bare, "from")
    expect_push(a, bob.jid, "to")
    expect_presence(a, bob.jid, "subscribed")
    b.end_stream()
    b.expect_closed()
    b = im_login(server, bob)                  # answered: gone
    sync(a, b)


def test_subscription_to_a_nonexistent_user(server):
    """8.5.1 / 3.1.3: the contact's server answers "unsubscribed" for an
    account that does not exist and keeps no request; the sender's roster
    loses the pending 'ask'."""
    a = im_login(server, "lonely")
    ghost = "ghost-%s@localhost" % new_id()
    presence(a, ghost, "subscribe")
    expect_push(a, ghost, "none", ask="subscribe")
    expect_push(a, ghost, "none", ask=ABSENT)
    expect_presence(a, ghost, "unsubscribed")
    check(roster_get(a)[ghost] == {"subscription": "none", "ask": None,
                                   "approved": None, "name": None,
                                   "groups": []}, "roster item")


def test_subscription_to_a_remote_domain_is_remote_server_not_found(server):
    a = im_login(server, "faraway")
    presence(a, "juliet@example.net", "subscribe")
    expect_push(a, "juliet@example.net", "none", ask="subscribe")
    a.expect_error("presence", "remote-server-not-found")


def test_waiting_requests_are_limited(ctx):
    srv = ctx.server(options={"presence_max_pending_requests": 1})
    popular = srv.account("popular")
    a, c = im_login(srv, "first"), im_login(srv, "second")
    presence(a, popular.jid, "subscribe")
    expect_push(a, popular.jid, "none", ask="subscribe")
    presence(c, popular.jid, "subscribe")
    expect_push(c, popular.jid, "none", ask="subscribe")
    c.expect_error("presence", "resource-constraint", type="wait",
                   attrs={"from": popular.jid})
    b = im_login(srv, popular)
    expect_presence(b, a.bare, "subscribe")
    sync(c, b)                                  # only the first one waits


def test_deny_a_request(server):
    a, b = pair(server, "denied", "denier")
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, "none", ask="subscribe")
    expect_presence(b, a.bare, "subscribe")
    presence(b, a.bare, "unsubscribed")
    expect_push(a, b.bare, "none", ask=ABSENT)
    expect_presence(a, b.bare, "unsubscribed")
    check(a.bare not in roster_get(b), "no item made for a denied request")
    b2 = im_login(server, b.account, resource="again")
    expect_presence(b2, b.jid)                  # own resource
    sync(a, b2)                                 # the request is gone


def test_withdrawn_request_is_delivered_and_forgotten(server):
    a = im_login(server, "withdraw")
    bob = server.account("target")
    presence(a, bob.jid, "subscribe")
    expect_push(a, bob.jid, "none", ask="subscribe")
    presence(a, bob.jid, "unsubscribe")
    expect_push(a, bob.jid, "none", ask=ABSENT)
    b = im_login(server, bob)
    sync(a, b)


def test_duplicate_request_is_not_delivered_twice(server):
    a, b = pair(server, "dup", "dupped")
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, "none", ask="subscribe")
    expect_presence(b, a.bare, "subscribe")
    presence(a, b.bare, "subscribe")            # no state change (A.2.1)
    sync(a, b)


def test_unsubscribe(server):
    """3.3: a stops receiving b's presence."""
    a, b = pair(server, "unsub", "unsubbed")
    befriend(a, b)
    presence(a, b.bare, "unsubscribe")
    expect_push(a, b.bare, "from")
    expect_push(b, a.bare, "to")
    expect_presence(b, a.bare, "unsubscribe")
    expect_presence(a, b.jid, "unavailable")    # 3.3.3
    b.presence(extra="<show>dnd</show>")
    expect_presence(b, b.jid, child="show", text="dnd")
    sync(b, a)                                  # a no longer gets it
    a.presence(extra="<show>xa</show>")
    expect_presence(a, a.jid, child="show", text="xa")
    expect_presence(b, a.jid, child="show", text="xa")


def test_cancel_a_subscription(server):
    """3.2: a cancels b's subscription to a's presence."""
    a, b = pair(server, "canceller", "cancelled")
    befriend(a, b)
    presence(a, b.bare, "unsubscribed")
    expect_push(a, b.bare, "to")
    expect_push(b, a.bare, "from")
    expect_presence(b, a.bare, "unsubscribed")
    expect_presence(b, a.jid, "unavailable")    # 3.2.2
    a.presence(extra="<show>away</show>")
    expect_presence(a, a.jid)
    sync(a, b)


def test_already_subscribed_request_is_answered_by_the_server(server):
    a, b = pair(server, "again", "answering")
    befriend(a, b)
    presence(a, b.bare, "subscribe")            # both: no state change
    # b's server answers "subscribed" for b (3.1.3) and sends b's presence;
    # a's server does not deliver that "subscribed" (A.3.3, "Both")
    expect_presence(a, b.jid)
    sync(b, a)
    sync(a, b)                                  # b never sees the request


# -- pre-approval (3.4)

def test_preapproval(server):
    a, b = pair(server, "preapproved", "preapprover")
    presence(b, a.bare, "subscribed")           # no request: pre-approval
    expect_push(b, a.bare, "none", approved="true")
    sync(b, a)                                  # not routed to a
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, "none", ask="subscribe")
    expect_push(b, a.bare, "from", approved=ABSENT)
    expect_push(a, b.bare, "to")
    expect_presence(a, b.bare, "subscribed")
    expect_presence(a, b.jid)
    sync(a, b)                                  # b never sees the request


def test_preapproval_withdrawn(server):
    a, b = pair(server, "wasapproved", "changedmind")
    presence(b, a.bare, "subscribed")
    expect_push(b, a.bare, "none", approved="true")
    presence(b, a.bare, "unsubscribed")
    expect_push(b, a.bare, "none", approved=ABSENT)
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, "none", ask="subscribe")
    expect_presence(b, a.bare, "subscribe")     # asks now


# -- roster removal (2.5.2)

def test_removing_a_contact_cancels_both_ways(server):
    a, b = pair(server, "remover", "removed")
    befriend(a, b)
    unfriend(a, b)


def test_removing_a_requester_declines(server):
    a, b = pair(server, "requester", "declines")
    presence(a, b.bare, "subscribe")
    expect_push(a, b.bare, "none", ask="subscribe")
    expect_presence(b, a.bare, "subscribe")
    iq_id = roster_set(b, a.bare)                # add, then remove
    expect_push(b, a.bare, "none")
    expect_result(b, iq_id)
    iq_id = roster_set(b, a.bare, subscription="remove")
    expect_push(b, a.bare, "remove")
    expect_result(b, iq_id)
    expect_push(a, b.bare, "none", ask=ABSENT)
    expect_presence(a, b.bare, "unsubscribed")


# -- broadcast and probes (4.2 - 4.4)

def test_broadcast_reaches_subscribers_only(server):
    a, b = pair(server, "broad", "sub")
    other = im_login(server, "stranger")
    befriend(a, b)
    a.presence(extra="<show>chat</show><status>hello</status>")
    expect_presence(a, a.jid, child="show", text="chat")
    expect_presence(b, a.jid, child="status", text="hello",
                    attrs={"to": b.bare})
    sync(a, other)


def test_login_gets_contacts_presence_from_every_resource(server):
    a, b = pair(server, "prober", "probed")
    befriend(a, b)
    b2 = im_login(server, b.account, resource="second", priority=7)
    expect_presence(b, b2.jid)                  # own resource
    expect_presence(a, b2.jid)                  # a is subscribed to b
    late = im_login(server, a.account, resource="late")
    expect_presence(late, a.jid, attrs={"to": late.jid})    # own resource
    got = set()
    for _ in range(2):
        el = late.expect("presence", attrs={"type": ABSENT, "to": late.jid})
        got.add(el.get("from"))
    check(got == {b.jid, b2.jid}, "probe answers from %r" % got)
    expect_presence(b, late.jid)                # the broadcast reached b
    expect_presence(b2, b.jid)                  # (b2's own resource
    expect_presence(b2, a.jid)                  # and probe answer)
    expect_presence(b2, late.jid)
    expect_presence(a, late.jid)                # own resource
    sync(b, a)                                  # answers went to late only


def test_probe_of_an_offline_contact_gives_its_last_unavailable(server):
    a, b = pair(server, "remember", "leaver")
    befriend(a, b)
    b.send("<presence type='unavailable'><status>gone fishing</status>"
           "</presence>")
    expect_presence(a, b.jid, "unavailable", child="status", text="gone fishing")
    expect_presence(b, b.jid, "unavailable")
    b.end_stream()
    b.expect_closed()
    late = im_login(server, a.account, resource="late")
    expect_presence(late, a.jid)                # own resource
    el = expect_presence(late, b.jid, "unavailable", child="status",
                         text="gone fishing")
    delay = find(el, "{%s}delay" % DELAY)
    check(delay is not None and delay.get("from") == "localhost"
          and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", delay.get("stamp", "")),
          "delay %r" % (delay.attrib if delay is not None else None))


def test_abrupt_disconnect_is_the_last_unavailable(server):
    a = im_login(server, "firsttime")
    b = server.account("dropsout")
    bc = im_login(server, b)
    presence(a, b.jid, "subscribe")
    expect_push(a, b.jid, "none", ask="subscribe")
    expect_presence(bc, a.bare, "subscribe")
    presence(bc, a.bare, "subscribed")
    expect_push(a, b.jid, "to")
    expect_presence(a, b.jid, "subscribed")
    expect_presence(a, bc.jid)
    bc.close()                                  # abrupt: no status given
    expect_presence(a, bc.jid, "unavailable")
    late = im_login(server, a.account, resource="late")
    expect_presence(late, a.jid)                # own resource
    expect_presence(late, bc.jid, "unavailable")


def test_client_probe_needs_a_subscription(server):
    a, b = pair(server, "curious", "private")
    a.send("<presence type='probe' to='%s'/>" % b.bare)
    sync(b, a)                                  # no answer, nothing for b
    sync(a, b)


def test_client_probe_of_a_contact_is_answered(server):
    a, b = pair(server, "asks", "answers")
    befriend(a, b)
    a.send("<presence type='probe' to='%s'/>" % b.bare)
    expect_presence(a, b.jid, attrs={"to": a.jid})
    sync(a, b)                                  # b's client is not bothered


# -- unavailable presence (4.5)

def test_disconnect_sends_unavailable(server):
    a, b = pair(server, "dropper", "watcher")
    befriend(a, b)
    a2 = im_login(server, a.account, resource="other")
    expect_presence(a, a2.jid)
    expect_presence(b, a2.jid)
    expect_presence(a2, a.jid)                  # own resource
    expect_presence(a2, b.jid)                  # probe answer
    a.close()                                   # no </stream:stream>
    expect_presence(b, a.jid, "unavailable")
    expect_presence(a2, a.jid, "unavailable")
    a2.end_stream()
    a2.expect_closed()
    expect_presence(b, a2.jid, "unavailable")


@time_limit(60)
def test_idle_timeout_sends_unavailable(ctx):
    srv = ctx.server(options={"c2s_idle_timeout": 2})
    a, b = im_login(srv, "sleeper"), im_login(srv, "awake")
    befriend(a, b)
    deadline = time.monotonic() + timeout_value(15)
    while True:                                 # b stays active, a does not
        b.send(" ")
        try:
            el = expect_presence(b, a.jid, "unavailable", timeout=0.5)
            break
        except ExpectError:
            check(time.monotonic() < deadline, "a never timed out")
    check("connection-timeout" in (find(el, "status").text or ""),
          "status %r" % (find(el, "status").text,))


def test_unavailable_then_available_again(server):
    a, b = pair(server, "flicker", "sees")
    befriend(a, b)
    a.send("<presence type='unavailable'/>")
    expect_presence(a, a.jid, "unavailable")
    expect_presence(b, a.jid, "unavailable")
    a.presence()
    expect_presence(a, a.jid)
    expect_presence(b, a.jid)
    expect_presence(a, b.jid)                   # probed again: initial presence


# -- directed presence (4.6)

def test_directed_presence_is_cancelled_by_unavailable(server):
    a = im_login(server, "director")
    c = im_login(server, "directed")
    a.send("<presence to='%s'><status>psst</status></presence>" % c.jid)
    expect_presence(c, a.jid, child="status", text="psst")
    a.send("<presence type='unavailable'/>")
    expect_presence(a, a.jid, "unavailable")
    expect_presence(c, a.jid, "unavailable")


def test_directed_presence_is_cancelled_when_the_session_ends(server):
    a = server.login("dirclose", ignore_presence=False)   # never available
    c = im_login(server, "dirclosed")
    a.send("<presence to='%s'/>" % c.bare)
    expect_presence(c, a.jid, attrs={"to": c.bare})
    a.close()
    expect_presence(c, a.jid, "unavailable")


def test_directed_unavailable_forgets_the_target(server):
    a = im_login(server, "forget")
    c = im_login(server, "forgotten")
    a.send("<presence to='%s'/>" % c.jid)
    expect_presence(c, a.jid)
    a.send("<presence to='%s' type='unavailable'/>" % c.jid)
    expect_presence(c, a.jid, "unavailable")
    a.send("<presence type='unavailable'/>")
    expect_presence(a, a.jid, "unavailable")
    sync(a, c)                                  # no second unavailable


def test_presence_to_a_missing_resource_is_dropped(server):
    a = im_login(server, "missing")
    c = im_login(server, "hasone")
    a.send("<presence to='%s/nope'/>" % c.bare)
    a.send("<presence to='%s/nope' type='probe'/>" % c.bare)
    sync(a, c)
    sync(c, a)


# -- between two hosts of this server

def test_subscriptions_across_local_hosts(ctx):
    srv = ctx.server(hosts=("localhost", "other.localhost"))
    a = im_login(srv, "crosshost")
    remote = srv.account("there", host="other.localhost")
    presence(a, remote.jid, "subscribe")
    expect_push(a, remote.jid, "none", ask="subscribe")
    presence(a, remote.jid, "unsubscribe")      # its host kept the request
    expect_push(a, remote.jid, "none", ask=ABSENT)
    ghost = "ghost@other.localhost"
    presence(a, ghost, "subscribe")             # nobody there: unsubscribed
    expect_push(a, ghost, "none", ask="subscribe")
    expect_push(a, ghost, "none", ask=ABSENT)
    expect_presence(a, ghost, "unsubscribed")
