"""Storage durability: the server is killed with SIGKILL in the middle of
a storm of roster sets and offline messages, 20 times. Whatever a client
saw acknowledged must be there after the restart, and the LMDB
environment must open cleanly every time. The messages are archived too
(mod_mam), for the sender and the recipient, by the server's archive
writer thread: a message the sender saw acknowledged by XEP-0198 must be
in both archives.

Acknowledged: a roster set when its iq result arrived; an offline message
when an iq ping sent after it on the same connection was answered (the
server commits the storage batch of a loop iteration before it writes any
reply, so the ping's answer covers every stanza handled before it).

What is there is read with `starlingctl export` (XEP-0227) while the
server runs: the roster of each round's writer and the offline messages
of each round's recipient.
"""

import os
import random
import re
import shutil
import subprocess
import time

from harness import check, drain, time_limit
from pie_export import archived_bodies, exported, offline_bodies, roster_jids
from xmpp import esc, new_id

SM = "urn:xmpp:sm:3"

ROUNDS = 20


def roster_set(round_no, i):
    return ("<iq type='set' id='r%d-%d'><query xmlns='jabber:iq:roster'>"
            "<item jid='c%d-%d@example.com' name='Contact %d'><group>g</group>"
            "</item></query></iq>" % (round_no, i, round_no, i, i))


class Round:
    """One storm: alice sets roster items, bob sends messages to carol
    (offline) with a ping after every few; both pipelined."""

    def __init__(self, no, writer, sender, recipient):
        self.no = no
        self.writer, self.sender, self.recipient = writer, sender, recipient
        self.roster_sent = 0
        self.roster_acked = set()
        self.messages_sent = []
        self.pings = {}             # ping id -> messages sent before it
        self.messages_acked = set()
        self.answered = set()       # ping ids answered
        self.counted = []           # bob's stanzas since <enable/>: body or None
        self.archive_acked = set()  # bodies an <a/> counted

    def on_writer(self, el):
        if el.get("type") == "result" and (el.get("id") or "").startswith("r%d-" % self.no):
            self.roster_acked.add("c%d-%s@example.com" % (self.no, el.get("id").split("-", 1)[1]))

    def on_sender(self, el):
        if el.tag == "{%s}a" % SM:
            h = int(el.get("h"))
            self.archive_acked.update(b for b in self.counted[:h] if b)
            return
        covered = self.pings.get(el.get("id"))
        if el.get("type") == "result" and covered is not None:
            self.messages_acked.update(covered)
            self.answered.add(el.get("id"))

    def storm(self, alice, bob, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.send_batch(alice, bob)
            drain(alice, self.on_writer)
            drain(bob, self.on_sender)
        # a last batch the kill follows as soon as bob's messages are
        # acked (the archive writer's commit must come before that <a/>),
        # with roster sets from alice in flight whatever the server's
        # speed; a big one, so that its archive commit takes a while
        self.send_batch(alice, bob, messages=400)
        deadline = time.monotonic() + 5
        while (len(self.archive_acked) < len(self.messages_sent)
               and time.monotonic() < deadline):
            if not drain(bob, self.on_sender, timeout=0.001):
                break
        self.send_roster(alice)

    def send_roster(self, alice):
        batch = []
        for _ in range(8):
            batch.append(roster_set(self.no, self.roster_sent))
            self.roster_sent += 1
        alice.send("".join(batch))

    def send_batch(self, alice, bob, messages=8):
        self.send_roster(alice)
        out = []
        for _ in range(messages):
            body = "m%d-%d" % (self.no, len(self.messages_sent))
            self.messages_sent.append(body)
            out.append("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                       % (esc(self.recipient.jid), new_id("m"), body))
        self.counted.extend(self.messages_sent[-messages:])
        ping = "p%d-%d" % (self.no, len(self.pings))
        self.pings[ping] = list(self.messages_sent)
        out.append("<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
                   % ping)
        self.counted.append(None)
        out.append("<r xmlns='%s'/>" % SM)
        bob.send("".join(out))

    def collect_after_kill(self, alice, bob):
        # answers that reached our sockets before the kill are still there
        while drain(alice, self.on_writer, timeout=2):
            pass
        while drain(bob, self.on_sender, timeout=2):
            pass


def check_round(users, r):
    items = roster_jids(users.get(r.writer.user))
    missing = r.roster_acked - items
    check(not missing, "round %d: acknowledged roster items lost: %s"
          % (r.no, sorted(missing)[:10]))
    stray = {i for i in items if not re.fullmatch(r"c%d-\d+@example\.com" % r.no, i)}
    check(not stray, "round %d: roster items nobody set: %s" % (r.no, sorted(stray)[:5]))
    missing = r.messages_acked - offline_bodies(users.get(r.recipient.user))
    check(not missing, "round %d: acknowledged offline messages lost: %s"
          % (r.no, sorted(missing)[:10]))
    for who in (r.sender, r.recipient):
        missing = r.archive_acked - archived_bodies(users.get(who.user))
        check(not missing, "round %d: acknowledged messages missing from %s's archive: %s"
              % (r.no, who.user, sorted(missing)[:10]))


def check_environment(srv):
    """mdb_stat reads every db of the environment (when lmdb-utils is
    installed); the server's log shows no storage error."""
    if shutil.which("mdb_stat"):
        proc = subprocess.run(["mdb_stat", "-a", srv.data_dir],
                              capture_output=True, text=True, timeout=30)
        check(proc.returncode == 0, "mdb_stat failed: %s" % proc.stderr)
        for db in ("accounts", "keyval", "map"):
            check("Status of %s" % db in proc.stdout, "no db %s in mdb_stat" % db)
    errors = [l for l in srv.log_text().splitlines()
              if re.search(r" error [^ ]*: store: ", l)]
    check(not errors, "storage errors in the log:\n%s" % "\n".join(errors))


@time_limit(180)
def test_sigkill_during_storm_loses_nothing_acknowledged(ctx):
    srv = ctx.server(modules=["roster", "presence", "message", "iq", "ping", "offline",
                              "mam", "smacks"],
                     options={"offline_max_messages": 100000,
                              "roster_max_items": 100000,
                              # every message of 20 rounds stays in bob's archive
                              "archive_max_items": 0,
                              "account_cost_rate": 0})
    sender = srv.account("bob")
    rounds = [Round(n, srv.account("alice"), sender, srv.account("carol"))
              for n in range(ROUNDS)]
    rng = random.Random(os.environ.get("STARLING_CRASH_SEED", "227"))
    interrupted = 0
    for r in rounds:
        alice = srv.login(r.writer)
        bob = srv.login(sender)
        bob.send("<enable xmlns='%s'/>" % SM)
        bob.expect("{%s}enabled" % SM)
        r.storm(alice, bob, rng.uniform(0.08, 0.3))
        srv.crash()
        r.collect_after_kill(alice, bob)
        alice.close()
        bob.close()
        if r.roster_sent > len(r.roster_acked) or len(r.messages_sent) > len(r.messages_acked):
            interrupted += 1
        srv.restart()
        check_environment(srv)
        users = exported(srv)
        for earlier in rounds[:r.no + 1]:
            check_round(users, earlier)
    acked = sum(len(r.roster_acked) + len(r.messages_acked) + len(r.archive_acked)
                for r in rounds)
    check(all(r.archive_acked for r in rounds), "a round with no message acked")
    print("%d rounds, %d acknowledged writes checked, %d kills with writes in flight"
          % (ROUNDS, acked, interrupted))
    check(acked > ROUNDS * 10, "too few acknowledged writes to mean anything")
    check(interrupted >= ROUNDS // 2, "the kill rarely hit writes in flight")
