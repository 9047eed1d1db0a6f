"""The archive's size quota (archive_max_size, issue 17 item 3): the
oldest items go first, as messages are archived (no query needed), the
account learns what is kept from the RSM count and the metadata, and the
count the quota works from stays right across a restart and a SIGKILL,
while a bystander chats on."""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import bystanders, check, exchange
from test_mam import MAM, MODULES, flood, query
from xmpp import find

QUOTA = 2048
PAD = "x" * 120


def trims(srv, user):
    """(items removed, bytes freed) of each trim of user's archive logged."""
    rx = re.compile(r"archive of %s@localhost over its quota of %d bytes: "
                    r"the (\d+) oldest removed \((\d+) bytes\)" % (user, QUOTA))
    return [(int(m.group(1)), int(m.group(2)))
            for m in map(rx.search, srv.log_text().splitlines()) if m]


def uniform_flood(sender, to, n, prefix):
    """n messages whose archived copies are all of one size."""
    return flood(sender, to, n, prefix + "-" + PAD)


def item_size(srv, user):
    """The bytes of one archived item, from the first trim of user's."""
    line = srv.wait_log(r"archive of %s@localhost over its quota of %d bytes: "
                        r"the \d+ oldest removed" % (user, QUOTA))
    n, freed = trims(srv, user)[0]
    check(n > 0 and freed % n == 0, "uniform items: %r" % line)
    return freed // n


def metadata_start(c):
    c.send("<iq type='get' id='meta'><metadata xmlns='%s'/></iq>" % MAM)
    el = c.expect("iq", attrs={"id": "meta", "type": "result"})
    start = find(el, "{%s}metadata/{%s}start" % (MAM, MAM))
    return start.get("id") if start is not None else None


def test_the_size_quota_trims_the_oldest_as_messages_come(ctx):
    srv = ctx.server(modules=MODULES, options={"archive_max_items": 0,
                                               "archive_max_size": "2 KiB"})
    with bystanders(srv) as (b, c):
        alice = srv.login("sizeq", presence=True)
        bob = srv.login("sizeqb", presence=True)
        bodies = uniform_flood(bob, alice.jid, 20, "s")
        for body in bodies:
            alice.expect("message", child="body", text=body)
        exchange(b, c)
        # trimmed without any query: on append
        size = item_size(srv, alice.username)
        kept = QUOTA // size
        check(0 < kept < 20, "an item of %d bytes" % size)
        exchange(b, c)
        page = query(alice)
        check(page.count == kept and page.bodies == bodies[-kept:] and page.complete,
              "the newest %d are kept: %d %r" % (kept, page.count, page.bodies))
        check(metadata_start(alice) == page.ids[0], "metadata starts at the oldest kept")
        # the sender's copies are under the same quota
        page = query(bob)
        check(page.count == kept and page.bodies == bodies[-kept:], "sender: %r" % page.count)
        # one more: one goes, the oldest
        more = uniform_flood(bob, alice.jid, 1, "t")
        alice.expect("message", child="body", text=more[0])
        page = query(alice)
        check(page.count == kept and page.bodies == (bodies + more)[-kept:],
              "after one more: %r" % page.bodies)
        exchange(b, c)


def test_the_count_survives_a_restart_and_a_crash(ctx):
    srv = ctx.server(modules=MODULES, options={"archive_max_items": 0,
                                               "archive_max_size": "2 KiB"})
    acct, bacct = srv.account("sizer"), srv.account("sizerb")
    alice, bob = srv.login(acct, presence=True), srv.login(bacct, presence=True)
    sent = uniform_flood(bob, alice.jid, 20, "a")
    for body in sent:
        alice.expect("message", child="body", text=body)
    kept = QUOTA // item_size(srv, acct.user)
    check(query(alice).count == kept, "before the restart")
    alice.close()
    bob.close()
    srv.send_signal(signal.SIGTERM)
    srv.wait_exit()
    srv.restart()
    alice, bob = srv.login(acct, presence=True), srv.login(bacct, presence=True)
    page = query(alice)
    check(page.count == kept and page.bodies == sent[-kept:], "after a restart: %r" % page.count)
    more = uniform_flood(bob, alice.jid, 4, "b")
    for body in more:
        alice.expect("message", child="body", text=body)
    sent += more
    page = query(alice)
    check(page.count == kept and page.bodies == sent[-kept:],
          "the counter went on after the restart: %d %r" % (page.count, page.bodies))
    # a crash in the middle of a flood: whatever of it is on disk, the
    # counter holds the same, so the next trim keeps exactly the quota
    flood_bodies = uniform_flood(bob, alice.jid, 30, "c")
    for body in flood_bodies[:6]:
        alice.expect("message", child="body", text=body)
    srv.crash()
    srv.restart()
    alice, bob = srv.login(acct, presence=True), srv.login(bacct, presence=True)
    last = uniform_flood(bob, alice.jid, 3, "d")
    for body in last:
        alice.expect("message", child="body", text=body)
    page = query(alice)
    check(page.count == kept and page.bodies[-3:] == last,
          "after a crash: %d kept, %r" % (page.count, page.bodies))
    check(all(body in sent + flood_bodies for body in page.bodies[:-3]),
          "older items are what was sent: %r" % page.bodies)
