"""workers = 2 (issue #23): two worker processes of one server share the
ports, the storage and the session directory. Two users connected to
different workers chat both ways, subscribe and see each other's
presence, get carbons from the other worker and find their archive
whichever worker they log in to. `starlingctl sessions` names the worker
(NODE) of every session, whichever worker answers."""

import os
import re
import signal
import time

from admin import Admin
from harness import check, fixture, time_limit
from im import befriend, expect_presence, im_login, roster_get
from xmpp import ABSENT, esc, find, new_id, timeout_value

MODULES = ["roster", "presence", "message", "iq", "carbons", "mam", "offline",
           "disco", "smacks"]
SM = "urn:xmpp:sm:3"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_MAM = "urn:xmpp:mam:2"
FWD = "urn:xmpp:forward:0"


@fixture
def server(scope):
    return scope.server(modules=MODULES, options={"workers": 2})


def admin(server, node=1):
    path = server.data_dir + "/starling.sock" + ("" if node == 1 else ".%d" % node)
    return Admin(path)


def nodes_seen(server, node=1):
    """{full JID: worker} as worker `node` sees the sessions."""
    a = admin(server, node)
    try:
        text = a.ok("sessions")
    finally:
        a.close()
    seen = {}
    for line in text.splitlines()[1:]:
        cells = line.split()
        if len(cells) >= 6 and "@" in cells[0]:
            seen[cells[0]] = int(cells[-1])
    return seen


def wait_seen(server, jids, gone=()):
    """Until both workers list every JID of jids (and none of gone):
    returns {jid: worker}."""
    deadline = time.monotonic() + timeout_value(10)
    while True:
        views = [nodes_seen(server, 1), nodes_seen(server, 2)]
        if all(j in v for v in views for j in jids) and \
           not any(j in v for v in views for j in gone):
            return {j: views[0][j] for j in jids}
        if time.monotonic() > deadline:
            raise AssertionError("the workers do not agree on %r: %r" % (jids, views))
        time.sleep(0.05)


def login_on(server, account, node, resource=None):
    """A client of account logged in as im_login does (roster asked,
    available), on worker `node`: connections spread over the workers,
    so clients bind until one lands there (the others leave before they
    are available: nobody sees them)."""
    for attempt in range(40):
        c = server.login(account, resource=resource, ignore_presence=False)
        if wait_seen(server, [c.jid])[c.jid] == node:
            roster_get(c)
            c.presence()
            c.expect("presence", attrs={"from": c.jid, "type": ABSENT})
            return c
        c.close()
        wait_seen(server, [], gone=[c.jid])
    raise AssertionError("no connection reached worker %d" % node)


def acked(c, send):
    """Stream management on c, then `send` (a function); returns once the
    server acknowledged it (XEP-0198 <a/>): stored, whichever worker reads
    it next. A ping's answer says less: archive and offline writes are
    committed behind the answers (docs/ARCHITECTURE.md)."""
    c.send("<enable xmlns='%s'/>" % SM)
    c.expect("{%s}enabled" % SM, skip=("presence",))
    send()
    c.send("<r xmlns='%s'/>" % SM)
    c.expect("{%s}a" % SM, attrs={"h": "1"}, skip=("presence",))


def seen_by(a, b):
    """Until a's worker knows b's current state (available, interested):
    b's worker tells a's over their link, and sends what b sends after
    that over the same link, so a headline from b reaching a (not
    archived, not stored offline) means it was told."""
    ident = new_id("hl")
    b.send("<message to='%s' type='headline' id='%s'><body>sync</body></message>"
           % (esc(a.jid), ident))
    a.expect("message", attrs={"id": ident})


def chat(sender, to, ident):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, ident))


def enable_carbons(c):
    c.send("<iq type='set' id='cb'><enable xmlns='%s'/></iq>" % NS_CARBONS)
    c.expect("iq", attrs={"type": "result", "id": "cb"})


def mam_bodies(c, with_jid):
    """The bodies of the account's archive with with_jid, oldest first."""
    qid = new_id("mam")
    c.send("<iq type='set' id='%s'><query xmlns='%s' queryid='%s'><x xmlns='jabber:x:data' "
           "type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>"
           "<field var='with'><value>%s</value></field></x></query></iq>"
           % (qid, NS_MAM, qid, NS_MAM, esc(with_jid)))
    bodies = []
    while True:
        el = c.expect()
        if el.tag.endswith("iq"):
            check(el.get("id") == qid and el.get("type") == "result", "mam: %r" % el)
            return bodies
        for body in el.iter("{jabber:client}body"):
            bodies.append(body.text)


@time_limit(120)
def test_two_workers_chat_subscribe_carbons_archive(server):
    alice_acct, bob_acct = server.account("alice"), server.account("bob")
    alice = login_on(server, alice_acct, 1, resource="desk")
    bob = login_on(server, bob_acct, 2, resource="phone")
    wait_seen(server, [alice.jid, bob.jid])
    seen_by(alice, bob)

    # the status of either worker names its node and the link
    status = admin(server, 1).ok("status")
    check(re.search(r"node: worker 1 \(pid \d+\), 1 node links up", status), status)

    # subscription both ways, presence seen across the workers
    befriend(alice, bob)

    # chat both ways
    chat(alice, bob.jid, "a2b-1")
    bob.expect("message", attrs={"id": "a2b-1", "from": alice.jid})
    chat(bob, alice.bare, "b2a-1")
    alice.expect("message", attrs={"id": "b2a-1", "from": bob.jid})

    # alice's second resource on the other worker: carbons of both ways
    alice2 = login_on(server, alice_acct, 2, resource="laptop")
    expect_presence(bob, alice2.jid)
    expect_presence(alice, alice2.jid)
    alice2.ignore = ("presence",)       # alice's and bob's, in any order
    enable_carbons(alice2)
    chat(bob, alice.jid, "b2a-2")
    alice.expect("message", attrs={"id": "b2a-2"})
    el = alice2.expect("message", child="{%s}received" % NS_CARBONS)
    inner = find(el, "{%s}received/{%s}forwarded/{jabber:client}message"
                 % (NS_CARBONS, FWD))
    check(inner is not None and inner.get("id") == "b2a-2", "received copy: %r" % el)
    chat(alice, bob.jid, "a2b-2")
    bob.expect("message", attrs={"id": "a2b-2"})
    el = alice2.expect("message", child="{%s}sent" % NS_CARBONS)
    inner = find(el, "{%s}sent/{%s}forwarded/{jabber:client}message"
                 % (NS_CARBONS, FWD))
    check(inner is not None and inner.get("id") == "a2b-2", "sent copy: %r" % el)

    # the archive, asked on the other worker than where it was written
    want = ["a2b-1", "b2a-1", "b2a-2", "a2b-2"]
    got = mam_bodies(alice2, bob.bare)
    check(got == want, "alice's archive on worker 2: %r" % got)
    got = mam_bodies(bob, alice.bare)
    check(got == want, "bob's archive on worker 2: %r" % got)

    # going offline on one worker is seen on the other
    alice2.send("<presence type='unavailable'/>")
    expect_presence(bob, alice2.jid, "unavailable")
    alice2.close()
    alice.close()
    expect_presence(bob, alice.jid, "unavailable")
    wait_seen(server, [bob.jid], gone=[alice.jid, alice2.jid])

    # a message while alice is away is kept offline, delivered on her
    # next login (on worker 1 or 2)
    acked(bob, lambda: chat(bob, alice_acct.jid, "b2a-offline"))
    again = im_login(server, alice_acct, resource="again")
    again.expect("message", attrs={"id": "b2a-offline"}, skip=("presence",))


def worker_status(server, node):
    """(pid, links up) of worker `node`, or None while it does not answer."""
    try:
        a = admin(server, node)
    except OSError:
        return None
    try:
        text = a.ok("status")
    except (OSError, ConnectionError):
        return None
    finally:
        a.close()
    m = re.search(r"node: worker %d \(pid (\d+)\), (\d+) node links up" % node, text)
    check(m, "status of worker %d: %s" % (node, text))
    return int(m.group(1)), int(m.group(2))


def wait_worker(server, node, not_pid=None):
    """Until worker `node` answers with its link up (a new process when
    not_pid is given): returns its pid."""
    deadline = time.monotonic() + timeout_value(20)
    while time.monotonic() < deadline:
        st = worker_status(server, node)
        if st and st[1] == 1 and st[0] != not_pid:
            return st[0]
        time.sleep(0.1)
    raise AssertionError("worker %d did not come back" % node)


@time_limit(120)
def test_worker_killed_clients_reconnect(ctx):
    """SIGKILL of the worker a client is on: the master starts it again;
    the client's contact (on the other worker) sees it go offline; a
    message sent meanwhile is kept offline; the client logs in again (on
    either worker) and gets it, and its contact sees it come back."""
    server = ctx.server(modules=MODULES, options={"workers": 2})
    alice_acct, bob_acct = server.account("alice"), server.account("bob")
    alice = login_on(server, alice_acct, 1, resource="desk")
    bob = login_on(server, bob_acct, 2, resource="phone")
    seen_by(alice, bob)
    befriend(alice, bob)
    pid = wait_worker(server, 2)

    os.kill(pid, signal.SIGKILL)
    expect_presence(alice, bob.jid, "unavailable")
    check(bob.closed_within(10), "bob's connection is gone with its worker")
    server.wait_log(r"worker 2 \(pid %d\) killed by signal 9" % pid, timeout=10)

    acked(alice, lambda: chat(alice, bob_acct.jid, "while-away"))
    wait_worker(server, 2, not_pid=pid)
    wait_seen(server, [alice.jid], gone=[bob.jid])

    bob = im_login(server, bob_acct, resource="phone")
    bob.expect("message", attrs={"id": "while-away", "from": alice.jid},
               skip=("presence",))
    expect_presence(alice, bob.jid)
    chat(alice, bob.jid, "welcome-back")
    bob.expect("message", attrs={"id": "welcome-back"}, skip=("presence",))
    chat(bob, alice.jid, "thanks")
    alice.expect("message", attrs={"id": "thanks"})


def version_of(c, domain="localhost"):
    """The server's software version (XEP-0092) as c asks it, or None
    when no module answers (service-unavailable)."""
    ident = new_id("v")
    c.send("<iq type='get' to='%s' id='%s'><query xmlns='jabber:iq:version'/></iq>"
           % (domain, ident))
    el = c.expect("iq", attrs={"id": ident}, skip=("presence",))
    if el.get("type") == "error":
        check(find(el, "{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}"
                   "service-unavailable") is not None, "version: %r" % el)
        return None
    check(el.get("type") == "result", "version: %r" % el)
    return find(el, "{jabber:iq:version}query/{jabber:iq:version}name").text


def rewrite_config(server):
    with open(server.config_path, "w") as f:
        f.write(server.config_text())


@time_limit(120)
def test_reload_reaches_every_worker(ctx):
    """`starlingctl reload` (worker 1's admin socket): a module enabled
    in the config file meanwhile answers the clients of both workers,
    without a reconnection; a worker killed afterwards starts again with
    it (the master read the file again too)."""
    server = ctx.server(modules=MODULES, options={"workers": 2})
    acct = server.account("alice")
    one = login_on(server, acct, 1, resource="one")
    two = login_on(server, acct, 2, resource="two")
    check(version_of(one) is None and version_of(two) is None,
          "no version module before the reload")

    server.modules.append("version")
    rewrite_config(server)
    out = server.ctl("reload").stdout
    check("the other workers reload too" in out, "reload: %s" % out)
    check(version_of(one) == "Starling", "worker 1 has the module at once")
    deadline = time.monotonic() + timeout_value(10)
    while version_of(two) is None:
        check(time.monotonic() < deadline, "worker 2 never loaded the module")
        time.sleep(0.1)
    server.wait_log(r"workers: worker 1 reloaded; the others follow", timeout=10)

    pid = wait_worker(server, 2)
    os.kill(pid, signal.SIGKILL)
    check(two.closed_within(10), "the client of worker 2 is gone with it")
    wait_worker(server, 2, not_pid=pid)
    three = login_on(server, acct, 2, resource="three")
    check(version_of(three) == "Starling", "the restarted worker runs the new config")
    check(version_of(one) == "Starling", "worker 1 still answers")


def set_default(c, default):
    ident = new_id("prefs")
    c.send("<iq type='set' id='%s'><prefs xmlns='%s' default='%s'/></iq>"
           % (ident, NS_MAM, default))
    el = c.expect("iq", attrs={"id": ident}, skip=("presence",))
    check(el.get("type") == "result", "prefs: %r" % el)


@time_limit(120)
def test_archive_preferences_seen_by_every_worker(ctx):
    """A message is archived for its recipient on the sender's worker,
    which keeps the recipient's archive preferences: a change made on
    the recipient's own worker is followed there at once (an account
    that stops archiving has nothing archived, and archives again when
    it asks)."""
    server = ctx.server(modules=MODULES, options={"workers": 2})
    alice = login_on(server, server.account("alice"), 1, resource="desk")
    bob = login_on(server, server.account("bob"), 2, resource="phone")
    seen_by(alice, bob)

    chat(bob, alice.jid, "kept-1")      # worker 2 learns alice's preferences
    alice.expect("message", attrs={"id": "kept-1"})
    set_default(alice, "never")
    chat(bob, alice.jid, "not-kept")
    alice.expect("message", attrs={"id": "not-kept"})
    set_default(alice, "always")
    chat(bob, alice.jid, "kept-2")
    alice.expect("message", attrs={"id": "kept-2"})
    seen_by(bob, alice)                 # everything bob's worker wrote is readable
    got = mam_bodies(alice, bob.bare)
    check(got == ["kept-1", "kept-2"], "alice's archive: %r" % got)


@time_limit(120)
def test_acked_message_in_archive_when_recipient_worker_dies(ctx):
    """A message the server acknowledged (XEP-0198 <a/>) to a recipient
    on another worker, delivered there but not acknowledged by it, when
    that worker is killed: the recipient's hibernated state died with
    the process, so its resumption fails (item-not-found, on whichever
    worker it reconnects to) and it logs in afresh; the message is in
    its archive (the sender's worker wrote it before the <a/>)."""
    server = ctx.server(modules=MODULES, options={"workers": 2})
    alice_acct, bob_acct = server.account("alice"), server.account("bob")
    alice = login_on(server, alice_acct, 1, resource="desk")
    bob = login_on(server, bob_acct, 2, resource="phone")
    seen_by(alice, bob)
    befriend(alice, bob)
    bob.send("<enable xmlns='%s' resume='true'/>" % SM)
    smid = bob.expect("{%s}enabled" % SM, skip=("presence",)).get("id")
    check(smid, "bob may resume")
    acked(alice, lambda: chat(alice, bob.jid, "to-the-dying"))
    bob.expect("message", attrs={"id": "to-the-dying"}, skip=("presence",))
    # ... and never acknowledged by bob

    pid = wait_worker(server, 2)
    os.kill(pid, signal.SIGKILL)
    check(bob.closed_within(10), "bob's connection is gone with its worker")
    expect_presence(alice, bob.jid, "unavailable")

    again = server.client(name="bob-again")
    again.auth_scram(bob_acct.user, bob_acct.password)
    again.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
    again.expect("{%s}failed" % SM, child="stanzas:item-not-found")
    again.bind("phone")
    got = mam_bodies(again, alice.bare)
    check(got == ["to-the-dying"], "bob's archive: %r" % got)


def until_version(c, want, what):
    deadline = time.monotonic() + timeout_value(10)
    while version_of(c) != want:
        check(time.monotonic() < deadline, what)
        time.sleep(0.1)


@time_limit(120)
def test_module_commands_reach_every_worker(ctx):
    """`starlingctl module unload` and `module load` (worker 1's admin
    socket) act on both workers: the clients of either stop getting an
    answer from the module, then get one again."""
    server = ctx.server(modules=MODULES + ["version"], options={"workers": 2})
    acct = server.account("alice")
    one = login_on(server, acct, 1, resource="one")
    two = login_on(server, acct, 2, resource="two")
    check(version_of(one) == "Starling" and version_of(two) == "Starling",
          "both workers have the module")

    out = server.ctl("module", "unload", "version", "localhost").stdout
    check("the other workers unload it too" in out, "unload: %s" % out)
    check(version_of(one) is None, "worker 1 unloaded it at once")
    until_version(two, None, "worker 2 never unloaded the module")

    out = server.ctl("module", "load", "version", "localhost").stdout
    check("the other workers load it too" in out, "load: %s" % out)
    check(version_of(one) == "Starling", "worker 1 loaded it at once")
    until_version(two, "Starling", "worker 2 never loaded the module")
    server.wait_log(r"module command of worker 1: .*version", timeout=10)


@time_limit(120)
def test_inactive_client_on_the_other_worker_gets_what_csi_lets_through(ctx):
    """A client on worker 2 that went inactive (XEP-0352): what worker 1
    forwards to it passes its CSI filter there, as for a local sender
    (held presence, dropped chat state, a message with a body flushing
    what was held, in order)."""
    server = ctx.server(modules=MODULES + ["csi", "ping"], options={"workers": 2})
    alice = login_on(server, server.account("alice"), 1, resource="desk")
    bob = login_on(server, server.account("bob"), 2, resource="phone")
    seen_by(bob, alice)
    bob.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    bob.send("<iq type='get' id='after-inactive' to='localhost'>"
             "<ping xmlns='urn:xmpp:ping'/></iq>")
    bob.expect("iq", attrs={"id": "after-inactive", "type": "result"})
    alice.send("<presence to='%s'><status>held</status></presence>" % esc(bob.jid))
    alice.send("<message to='%s' type='chat' id='typing'><composing xmlns="
               "'http://jabber.org/protocol/chatstates'/></message>" % esc(bob.jid))
    chat(alice, bob.jid, "wake")
    el = bob.expect()
    check(el.tag == "{jabber:client}presence" and
          el.findtext("{jabber:client}status") == "held", "first the held presence: %r" % el)
    bob.expect("message", attrs={"id": "wake"})
    seen_by(bob, alice)                 # and nothing else: no chat state


def test_block_on_one_worker_is_honoured_on_the_other(ctx):
    """mod_blocklist's check runs behind a C gate that reads the
    recipient's blocklist record each time: a block made on the
    recipient's worker refuses, at once, a message the blocked contact
    sends through the other worker (where the check runs), and an
    unblock lets the next one through."""
    server = ctx.server(modules=MODULES + ["blocklist"], options={"workers": 2})
    alice = login_on(server, server.account("alice"), 1, resource="desk")
    bob = login_on(server, server.account("bob"), 2, resource="phone")
    seen_by(alice, bob)
    chat(bob, alice.bare, "before")
    alice.expect("message", attrs={"id": "before"})
    iq_id = new_id("block")
    alice.send("<iq type='set' id='%s'><block xmlns='urn:xmpp:blocking'>"
               "<item jid='%s'/></block></iq>" % (iq_id, esc(bob.bare)))
    alice.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    chat(bob, alice.bare, "blocked")
    bob.expect("message", attrs={"id": "blocked", "type": "error"})
    iq_id = new_id("unblock")
    alice.send("<iq type='set' id='%s'><unblock xmlns='urn:xmpp:blocking'>"
               "<item jid='%s'/></unblock></iq>" % (iq_id, esc(bob.bare)))
    alice.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    chat(bob, alice.bare, "after")
    alice.expect("message", attrs={"id": "after"})
