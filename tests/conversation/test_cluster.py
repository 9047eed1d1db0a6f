"""A cluster (issue #23, items 3 and 4): Starling nodes on different
loopback addresses (127.0.0.2, 127.0.0.3, 127.0.0.4) serving one domain,
with a private Redis (the registry, liveness and session directory,
tests/lib/redisserver.py) and a private PostgreSQL (the data,
tests/lib/pgserver.py). Their links are TCP with TLS, keyed by the
cluster's secret.

- Two users on different nodes chat both ways, subscribe and see each
  other's presence; a user with a client on each node gets carbons; the
  archive is found whichever node the user logs in to.
  `starlingctl cluster status` lists the nodes, their sessions and links.
- SIGKILL of a node: the other node's users see its sessions go offline
  within 10 s (its Redis key expired), a message to them is kept offline
  and delivered when they log in again on the node alive. Killed and
  started again at once (its key still there, with another pid): the
  same, and the new life is linked under the same node number.
- Redis lost: the links carry on; Redis back, empty: the nodes register
  again, nobody taken for dead.
- A node with another secret is refused (its links fail TLS, both logs
  say so) and learns nothing of the cluster's sessions; plain bytes, a
  TLS client without the key and a silent connection on a link port are
  closed, the node carries on.
- A third node joins while the others run: its users reach theirs and
  theirs reach its.
- workers and cluster together, or a node named as a live one elsewhere:
  the server refuses to start, saying why.
"""

import re
import time

from cluster import (Cluster, admin_ok, cluster_status, linked, sessions_seen,
                     wait_seen, wait_status)
from harness import check, time_limit
from im import befriend, expect_presence, im_login
from server import ServerError
from xmpp import esc, find, new_id, timeout_value

MODULES = ["roster", "presence", "message", "iq", "carbons", "mam", "offline",
           "disco", "smacks"]
SM = "urn:xmpp:sm:3"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_MAM = "urn:xmpp:mam:2"
FWD = "urn:xmpp:forward:0"


def node(cl, name, ip, **kw):
    return cl.node(name, ip, modules=MODULES, **kw)


def chat(sender, to, ident):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, ident))


def acked(c, send):
    """Stream management on c, then send(); returns once the server
    acknowledged it (XEP-0198 <a/>): stored in the shared database."""
    c.send("<enable xmlns='%s'/>" % SM)
    c.expect("{%s}enabled" % SM, skip=("presence",))
    send()
    c.send("<r xmlns='%s'/>" % SM)
    c.expect("{%s}a" % SM, attrs={"h": "1"}, skip=("presence",))


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
        el = c.expect(skip=("presence",))
        if el.tag.endswith("iq"):
            check(el.get("id") == qid and el.get("type") == "result", "mam: %r" % el)
            return bodies
        for body in el.iter("{jabber:client}body"):
            bodies.append(body.text)


@time_limit(180)
def test_two_nodes_chat_subscribe_carbons_archive(ctx):
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    alice_acct, bob_acct = a.account("alice"), b.account("bob")
    alice = im_login(a, alice_acct, resource="desk")
    bob = im_login(b, bob_acct, resource="phone")
    wait_seen([a, b], [alice.jid, bob.jid])

    # status names the node; a reload is this node's alone
    status = admin_ok(a, "status")
    check(re.search(r"node: a, cluster node \d+ \(pid \d+\), 1 node links up", status),
          status)
    r = a.ctl("reload", check=False)
    check(r.returncode == 0 and "this node only" in r.stdout, "reload: %s%s"
          % (r.stdout, r.stderr))

    # status on either node: both nodes, a session each, the link up
    rows = wait_status(b, lambda r: r.get("a", {}).get("sessions") == 1 and
                       r.get("b", {}).get("sessions") == 1, "a session on each")
    check(rows["a"]["address"].startswith("127.0.0.2:") and rows["a"]["link"] == "up"
          and rows["b"]["link"] == "self", "status on b: %r" % rows)

    befriend(alice, bob)
    chat(alice, bob.jid, "a2b-1")
    bob.expect("message", attrs={"id": "a2b-1", "from": alice.jid})
    chat(bob, alice.bare, "b2a-1")
    alice.expect("message", attrs={"id": "b2a-1", "from": bob.jid})

    # alice's second client, on node b: presence and carbons both ways
    alice2 = im_login(b, alice_acct, resource="laptop")
    expect_presence(bob, alice2.jid)
    expect_presence(alice, alice2.jid)
    alice2.ignore = ("presence",)
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

    # the archive, asked on each node
    want = ["a2b-1", "b2a-1", "b2a-2", "a2b-2"]
    got = mam_bodies(alice2, bob.bare)
    check(got == want, "alice's archive on node b: %r" % got)
    got = mam_bodies(bob, alice.bare)
    check(got == want, "bob's archive on node b: %r" % got)
    bob2 = im_login(a, bob_acct, resource="tablet")
    expect_presence(bob, bob2.jid)
    got = mam_bodies(bob2, alice.bare)
    check(got == want, "bob's archive on node a: %r" % got)

    # going offline on one node is seen on the other; the directory
    # follows
    alice2.send("<presence type='unavailable'/>")
    expect_presence(bob, alice2.jid, "unavailable")
    alice2.close()
    bob2.close()
    wait_seen([a, b], [alice.jid, bob.jid], gone=[alice2.jid, bob2.jid])
    wait_status(a, lambda r: r["a"]["sessions"] == 1 and r["b"]["sessions"] == 1,
                "the directory after two clients left")


@time_limit(180)
def test_killed_node_sessions_go_offline(ctx):
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    alice_acct, bob_acct = a.account("alice"), b.account("bob")
    alice = im_login(a, alice_acct, resource="desk")
    bob = im_login(b, bob_acct, resource="phone")
    wait_seen([a, b], [alice.jid, bob.jid])
    befriend(alice, bob)

    b.proc.kill()
    killed = time.monotonic()
    alice.expect("presence", attrs={"from": bob.jid, "type": "unavailable"},
                 timeout=12)
    took = time.monotonic() - killed
    check(took < 10, "bob went offline %.1f s after his node died" % took)
    check(re.search(r"cluster: node b \(\d+, pid \d+\) is gone", a.log_text()),
          "node a's log says b is gone:\n" + a.log_tail())
    # the status: b dead, its link down, its directory emptied by a
    rows = wait_status(a, lambda r: not r["b"]["alive"] and r["b"]["sessions"] == 0,
                       "b is dead, without sessions")
    check(rows["b"]["link"] == "down", "status after the kill: %r" % rows)
    b.proc.wait()
    b.proc = None

    # bob has no session anywhere: kept offline, delivered on node a
    acked(alice, lambda: chat(alice, bob_acct.jid, "while-away"))
    bob = im_login(a, bob_acct, resource="phone")
    bob.expect("message", attrs={"id": "while-away", "from": alice.jid},
               skip=("presence",))
    expect_presence(alice, bob.jid)


@time_limit(180)
def test_dead_node_announced_once(ctx):
    """Three nodes, carol on c with contacts on a and b: c killed, each
    contact gets carol's unavailable presence once (the lowest-numbered
    node alive speaks for the dead one's sessions, the other keeps
    quiet)."""
    cl = Cluster(ctx)
    a, b, c = (node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3"),
               node(cl, "c", "127.0.0.4"))
    linked(a, b, c)
    alice = im_login(a, a.account("alice"), resource="desk")
    bob = im_login(b, a.account("bob"), resource="phone")
    carol = im_login(c, a.account("carol"), resource="tab")
    wait_seen([a, b, c], [alice.jid, bob.jid, carol.jid])
    befriend(carol, alice)
    befriend(carol, bob)

    c.crash()
    for contact in (alice, bob):
        expect_presence(contact, carol.jid, "unavailable", timeout=12)
    time.sleep(3)       # both live nodes have seen c's key gone by now
    for contact in (alice, bob):
        contact.roundtrip()
        again = [el for el in contact.queue
                 if getattr(el, "tag", "").endswith("presence")
                 and el.get("from") == carol.jid]
        check(not again, "%s: carol's presence again: %r" % (contact.jid, again))
    said = [n.name for n in (a, b)
            if re.search(r"node \d+ gone: 1 of its sessions dropped, their contacts told",
                         n.log_text())]
    check(len(said) == 1, "nodes that spoke for c: %r" % said)


@time_limit(180)
def test_node_started_again_at_once(ctx):
    """SIGKILL of node b and its start again before its Redis key could
    expire: the key names another pid, so node a takes the old life for
    dead (bob's old session goes offline for alice), links the new one,
    and bob logs in on b again, seen by alice."""
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    id_before = cluster_status(a)[0]["b"]["id"]
    alice_acct, bob_acct = a.account("alice"), b.account("bob")
    alice = im_login(a, alice_acct, resource="desk")
    bob = im_login(b, bob_acct, resource="phone")
    wait_seen([a, b], [alice.jid, bob.jid])
    befriend(alice, bob)

    b.crash()
    killed = time.monotonic()
    b.restart()
    expect_presence(alice, bob.jid, "unavailable", timeout=12)
    took = time.monotonic() - killed
    check(took < 10, "bob went offline %.1f s after his node died" % took)
    check(re.search(r"cluster: node b \(\d+, pid \d+\) (started again|is gone)",
                    a.log_text()), "node a's log:\n" + a.log_tail())
    linked(a, b)
    check(cluster_status(a)[0]["b"]["id"] == id_before, "b kept its number")
    bob = im_login(b, bob_acct, resource="phone")
    expect_presence(alice, bob.jid)
    chat(alice, bob.jid, "welcome-back")
    bob.expect("message", attrs={"id": "welcome-back"}, skip=("presence",))


@time_limit(180)
def test_redis_lost_and_back(ctx):
    """Redis killed: the nodes' links carry on (chat both ways), the
    status says Redis does not answer; Redis started again, empty: the
    nodes register again and see each other alive, nobody was taken for
    dead (no presence went unavailable)."""
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    alice_acct, bob_acct = a.account("alice"), b.account("bob")
    alice = im_login(a, alice_acct, resource="desk")
    bob = im_login(b, bob_acct, resource="phone")
    wait_seen([a, b], [alice.jid, bob.jid])
    befriend(alice, bob)

    cl.redis.proc.kill()
    cl.redis.proc.wait()
    a.wait_log(r"cluster: lost redis", timeout=10)
    deadline = time.monotonic() + timeout_value(10)
    while "redis NOT ANSWERING" not in cluster_status(a)[1]:
        check(time.monotonic() < deadline, "a's status still has redis answering")
        time.sleep(0.2)
    time.sleep(5)       # longer than a key's life (4 s): nobody may die of it
    chat(alice, bob.jid, "no-redis-1")
    bob.expect("message", attrs={"id": "no-redis-1", "from": alice.jid})
    chat(bob, alice.jid, "no-redis-2")
    alice.expect("message", attrs={"id": "no-redis-2", "from": bob.jid})

    cl.redis.restart()
    linked(a, b)
    wait_status(a, lambda r: r["a"]["sessions"] == 1 and r["b"]["sessions"] == 1,
                "the directory written again")
    chat(alice, bob.jid, "redis-back")
    bob.expect("message", attrs={"id": "redis-back", "from": alice.jid})
    check(not re.search(r"cluster: node \S+ .* is gone", a.log_text() + b.log_text()),
          "a node was taken for dead")
    check(len(re.findall(r"warn .*cannot reach redis", a.log_text())) == 1,
          "the failed connects are not warned about each second")


@time_limit(120)
def test_wrong_secret_refused(ctx):
    cl = Cluster(ctx)
    a = node(cl, "a", "127.0.0.2")
    alice = im_login(a, a.account("alice"), resource="desk")
    # a node with another secret: lower or higher, one side connects and
    # the TLS handshake fails on both
    m = node(cl, "mallory", "127.0.0.3", secret="not the cluster's secret at all")
    a.wait_log(r"node link .*TLS handshake failed \(not a node, or another "
               r"cluster secret\)", timeout=10)
    m.wait_log(r"node link .*TLS handshake failed \(not a node, or another "
               r"cluster secret\)", timeout=10)
    rows, text = cluster_status(a)
    check(rows.get("mallory", {}).get("link") == "down", "status on a:\n" + text)
    check(alice.jid not in sessions_seen(m), "mallory's node learnt alice's session")


def closed_by_peer(sock, timeout):
    """Whether the peer closes sock within timeout seconds (what it
    sends before, a TLS alert, is read and dropped)."""
    deadline = time.monotonic() + timeout_value(timeout)
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except OSError:
        return False
    finally:
        sock.close()
    return False


@time_limit(120)
def test_link_port_refuses_what_is_not_a_node(ctx):
    """What is not a node on a node's link port: plain bytes in the shape
    of frames (a HELLO without TLS), a TLS client without the PSK, a
    connection that says nothing: each is closed, the node logs the TLS
    refusals, and its clients and links carry on."""
    import socket
    import ssl
    import struct
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    host, port = cluster_status(a)[0]["a"]["address"].rsplit(":", 1)
    addr = (host, int(port))

    plain = socket.create_connection(addr, 5)
    hello = struct.pack(">BHHHI", 1, 1, 2, 1, 4242)
    plain.sendall(struct.pack(">I", len(hello)) + hello + b"\x00" * 64)
    check(closed_by_peer(plain, 10), "plain bytes on the link port: not closed")

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(addr, 5)
    try:
        tls.wrap_socket(raw, server_hostname="a").close()
        check(False, "a TLS client without the secret got a session")
    except (ssl.SSLError, OSError):
        pass
    a.wait_log(r"node link from 127\.0\.0\.\d+:\d+ refused: TLS handshake failed",
               timeout=10)
    silent = socket.create_connection(addr, 5)

    alice, bob = a.account("alice"), a.account("bob")
    alice_c = im_login(a, alice, resource="desk")
    bob_c = im_login(b, bob, resource="phone")
    wait_seen([a, b], [alice_c.jid, bob_c.jid])
    chat(alice_c, bob_c.jid, "still-linked")
    bob_c.expect("message", attrs={"id": "still-linked"}, skip=("presence",))
    rows, text = cluster_status(a)
    check(rows["b"]["link"] == "up" and a.running, "after the strangers:\n" + text)
    # an accepted link names itself within 10 s, or goes
    check(closed_by_peer(silent, 20), "a silent connection stayed")


@time_limit(180)
def test_third_node_joins(ctx):
    cl = Cluster(ctx)
    a, b = node(cl, "a", "127.0.0.2"), node(cl, "b", "127.0.0.3")
    linked(a, b)
    pids = (a.proc.pid, b.proc.pid)
    alice_acct, bob_acct, carol_acct = (a.account("alice"), a.account("bob"),
                                        a.account("carol"))
    alice = im_login(a, alice_acct, resource="desk")
    bob = im_login(b, bob_acct, resource="phone")
    befriend(alice, bob)

    c = node(cl, "c", "127.0.0.4")
    linked(a, b, c)
    check((a.proc.pid, b.proc.pid) == pids and a.running and b.running,
          "a and b ran on")
    # c learnt the sessions of a and b over its new links
    wait_seen([c], [alice.jid, bob.jid])
    carol = im_login(c, carol_acct, resource="tab")
    wait_seen([a, b, c], [alice.jid, bob.jid, carol.jid])
    befriend(carol, alice)
    befriend(carol, bob)
    chat(carol, alice.jid, "c2a")
    alice.expect("message", attrs={"id": "c2a", "from": carol.jid})
    chat(bob, carol.bare, "b2c")
    carol.expect("message", attrs={"id": "b2c", "from": bob.jid})
    rows = wait_status(c, lambda r: all(r.get(n, {}).get("sessions") == 1
                                        for n in "abc"), "a session on each node")
    check(rows["c"]["id"] not in (rows["a"]["id"], rows["b"]["id"]),
          "node ids: %r" % rows)

    # c leaves cleanly: its user goes offline for the others, it is no
    # longer alive in the status
    c.stop()
    expect_presence(alice, carol.jid, "unavailable")
    expect_presence(bob, carol.jid, "unavailable")
    wait_status(a, lambda r: not r["c"]["alive"], "c left")


@time_limit(60)
def test_workers_and_cluster_refused(ctx):
    cl = Cluster(ctx)
    srv = node(cl, "w", "127.0.0.2", start=False, workers=2)
    try:
        srv.start(timeout=10)
    except ServerError:
        pass
    else:
        check(False, "a node started with workers = 2")
    check(re.search(r"cluster: workers = 2 and cluster together are not supported",
                    srv.log_text()), "the log says why:\n" + srv.log_text())


@time_limit(60)
def test_node_name_in_use_refused(ctx):
    """A second node with the name of a live one (another address): it
    does not start, and says why; the first runs on."""
    cl = Cluster(ctx)
    a = node(cl, "a", "127.0.0.2")
    twin = node(cl, "a", "127.0.0.3", start=False)
    try:
        twin.start(timeout=10)
    except ServerError:
        pass
    else:
        check(False, "a second node named a started")
    check(re.search(r"cluster: node name a is in use by a live node at 127\.0\.0\.2:\d+",
                    twin.log_text()), "the log says why:\n" + twin.log_text())
    rows, text = cluster_status(a)
    check(rows["a"]["alive"] and rows["a"]["address"].startswith("127.0.0.2:"),
          "a's status:\n" + text)

