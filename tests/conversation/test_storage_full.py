"""Storage that runs out of room: the data directory on a 5 MB tmpfs, and
separately a tiny storage_max_size. Clients write as fast as they can
(roster sets; offline messages archived for sender and recipient, under
XEP-0198) until the server refuses writes. Then:

- every write got an answer: a roster set its result or a wait error
  (resource-constraint), a message its <a/> or a bounce; a stream the
  server had to close says resource-constraint;
- the server keeps serving what needs no write (a bystander's ping,
  roster read and an unarchived message), says so in `starlingctl status`
  and `metrics`, and has logged the condition once, not per write;
- once room is made (the tmpfs grown; an account deleted) it takes writes
  again by itself, without a restart;
- after a restart every acknowledged write is there (starlingctl export).
"""

import os
import re
import subprocess
import tempfile
import time

from harness import bystanders, check, drain, skip, time_limit
from pie_export import archived_bodies, exported, offline_bodies, roster_jids
from xmpp import esc, new_id

SM = "urn:xmpp:sm:3"
CLIENT = "{jabber:client}"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MODULES = ["roster", "presence", "message", "iq", "ping", "offline", "mam",
           "smacks", "disco", "private"]
OPTIONS = {"offline_max_messages": 1000000, "roster_max_items": 1000000}
PAD = "x" * 400


def condition_of(el):
    err = el.find(CLIENT + "error")
    if err is None:
        return None, None
    for child in err:
        if child.tag.startswith("{%s}" % STANZAS) and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), None


class Writer:
    """One account's stream of writes: roster sets from alice, offline
    messages from bob to carol under XEP-0198. Records what was
    acknowledged, what was refused and how."""

    def __init__(self, srv, alice, bob, carol):
        self.srv, self.alice_acct, self.bob_acct, self.carol = srv, alice, bob, carol
        self.sets = {}            # id -> contact
        self.set_ok = set()       # contacts whose set got a result
        self.set_errors = []      # (type, condition) of refused sets
        self.bodies = {}          # message id -> body
        self.counted = []         # bob's stanzas since <enable/>: body or None
        self.msg_acked = set()    # bodies an <a/> covered
        self.bounced = []         # (body, type, condition)
        self.closed = []          # stream errors the server closed with
        self.n = 0
        self.dropped = 0          # sets unanswered when a stream was closed
        self.alice = self.bob = None
        self.connect()

    def connect(self):
        if self.alice is None:
            self.alice = self.srv.login(self.alice_acct)
        if self.bob is None:
            self.bob = self.srv.login(self.bob_acct)
            self.bob.send("<enable xmlns='%s'/>" % SM)
            self.bob.expect("{%s}enabled" % SM)
            self.counted = []

    def on_alice(self, el):
        contact = self.sets.get(el.get("id"))
        if contact is None:
            return
        if el.get("type") == "result":
            self.set_ok.add(contact)
        elif el.get("type") == "error":
            self.set_errors.append(condition_of(el))
        self.sets.pop(el.get("id"))

    def on_bob(self, el):
        if el.tag == "{%s}a" % SM:
            h = int(el.get("h"))
            self.msg_acked.update(b for b in self.counted[:h] if b)
        elif el.tag == CLIENT + "message" and el.get("type") == "error":
            body = self.bodies.get(el.get("id"))
            if body:
                self.bounced.append((body,) + condition_of(el))

    def drain(self, client, fn, timeout=0.0):
        """drain(), recording the stream error a closed stream ended with."""
        def on_item(item):
            if item.tag == "{http://etherx.jabber.org/streams}error":
                self.closed.append([c.tag.split("}", 1)[1] for c in item][0])
            else:
                fn(item)
        return drain(client, on_item, timeout)

    def round(self):
        """A batch of writes from both, pipelined, then what came back."""
        out = []
        for _ in range(2):
            self.n += 1
            iq = new_id("r")
            contact = "c%d@example.com" % self.n
            self.sets[iq] = contact
            out.append("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'>"
                       "<item jid='%s'/></query></iq>" % (iq, contact))
        self.alice.send("".join(out))
        out = []
        for _ in range(10):
            self.n += 1
            mid, body = new_id("m"), "m%d %s" % (self.n, PAD)
            self.bodies[mid] = body
            self.counted.append(body)
            out.append("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                       % (esc(self.carol.jid), mid, body))
        out.append("<r xmlns='%s'/>" % SM)
        self.bob.send("".join(out))
        if not self.drain(self.alice, self.on_alice, 0.01):
            # what the closed stream had not answered was reported by its
            # stream error (checked: resource-constraint)
            self.dropped += len(self.sets)
            self.sets, self.alice = {}, None
        if not self.drain(self.bob, self.on_bob, 0.01):
            self.bob = None
        self.connect()

    def settle(self):
        """Waits until every roster set and message of the live streams
        has its answer: a ping after them answered, then an <a/> for all."""
        ping = new_id("p")
        self.alice.send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % ping)
        deadline = time.monotonic() + 20
        while ping and time.monotonic() < deadline:
            el = self.alice.next_item(timeout=5)
            if el is not None and el.get("id") == ping:
                ping = None
            elif el is not None:
                self.on_alice(el)
        check(ping is None, "alice's ping after her roster sets was not answered")
        check(not self.sets, "roster sets never answered: %d" % len(self.sets))
        self.bob.send("<r xmlns='%s'/>" % SM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            el = self.bob.next_item(timeout=5)
            if el is None:
                continue
            self.on_bob(el)
            if el.tag == "{%s}a" % SM and int(el.get("h")) == len(self.counted):
                return
        check(False, "bob's stanzas were never all acknowledged (%d sent)" % len(self.counted))

    def fill(self, seconds=60):
        """Writes until the server has refused both kinds for a while."""
        deadline = time.monotonic() + seconds
        refused_at = None
        while time.monotonic() < deadline:
            self.round()
            refused = len(self.set_errors) >= 20 and len(self.bounced) >= 20
            if refused and refused_at is None:
                refused_at = self.n
            if refused_at is not None and self.n > refused_at + 200:
                break
        check(len(self.set_errors) >= 20 and len(self.bounced) >= 20,
              "the server never refused writes: %d roster errors, %d bounces"
              % (len(self.set_errors), len(self.bounced)))
        self.settle()

    def check_refusals(self):
        """Every refusal was a wait error saying the server lacks room."""
        for kind, conds in (("roster set", self.set_errors),
                            ("message", [b[1:] for b in self.bounced])):
            bad = [c for c in conds if c != ("wait", "resource-constraint")]
            check(not bad, "%s refused with %s, not wait/resource-constraint"
                  % (kind, sorted(set(bad))))
        check(all(c == "resource-constraint" for c in self.closed),
              "streams closed with %s" % self.closed)
        # a bounced message is counted by <a/> (it was handled) but must
        # not be stored: checked after the restart
        self.stored_expected = self.msg_acked - {b[0] for b in self.bounced}
        check(self.stored_expected, "no message was stored before the disk filled")
        check(self.set_ok, "no roster set succeeded before the disk filled")

    def check_after_restart(self, srv):
        users = exported(srv)
        missing = self.set_ok - roster_jids(users.get(self.alice_acct.user))
        check(not missing, "%d acknowledged roster items lost, e.g. %s"
              % (len(missing), sorted(missing)[:3]))
        offline = offline_bodies(users.get(self.carol.user))
        missing = self.stored_expected - offline
        check(not missing, "%d acknowledged offline messages lost" % len(missing))
        for who in (self.bob_acct, self.carol):
            missing = self.stored_expected - archived_bodies(users.get(who.user))
            check(not missing, "%d acknowledged messages missing from %s's archive"
                  % (len(missing), who.user))
        bounced = {b[0] for b in self.bounced}
        check(not (bounced & offline), "bounced messages were stored offline")


def check_serving_while_full(srv, b, c):
    """What needs no write still works for someone else."""
    b.roundtrip()
    b.send("<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>")
    b.expect("iq", attrs={"type": "result", "id": "rg"})
    body = "unarchived %s" % new_id()
    b.send("<message to='%s' type='chat'><body>%s</body>"
           "<no-permanent-store xmlns='urn:xmpp:hints'/></message>" % (esc(c.jid), body))
    c.expect("message", child="body", text=body)


def check_reported(srv):
    status = srv.ctl("status").stdout
    check(re.search(r"^storage: FAILING since .*writes refused", status, re.M),
          "status does not say storage fails:\n%s" % status)
    metrics = srv.ctl("metrics").stdout
    check(re.search(r"^starling_storage_ok 0$", metrics, re.M),
          "metrics do not say storage fails:\n%s" % metrics)
    log = srv.log_text()
    fails = len(re.findall(r"store: writes fail ", log))
    resumed = len(re.findall(r"store: writes succeed again", log))
    check(fails == resumed + 1, "the failure was logged %d times (%d resumptions)"
          % (fails, resumed))
    per_write = len(re.findall(r" error .*(cannot store|cannot archive)", log))
    check(per_write == 0, "%d writes logged one by one as errors" % per_write)


def wait_writable(srv, client, seconds=45):
    """A roster set, once a second, until one succeeds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        iq = new_id("w")
        client.send("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'>"
                    "<item jid='after-%s@example.com'/></query></iq>" % (iq, iq))
        el = client.expect("iq", attrs={"id": iq})
        if el.get("type") == "result":
            return
        time.sleep(1)
    check(False, "the server did not take writes again within %d s" % seconds)


def restart(srv):
    srv.send_signal(15)
    check(srv.wait_exit(20) == 0, "the server did not stop cleanly")
    srv.restart()


def run(ctx, srv, make_room):
    try:
        run_checks(srv, make_room)
    except AssertionError:
        # what the storage said, for whoever reads the failure
        lines = [l for l in srv.log_text().splitlines()
                 if re.search(r"(warn|error|info) .*(store|admin|accounts|purge|delete)", l)]
        print("\n".join(lines[:40]))
        raise


def run_checks(srv, make_room):
    alice, bob, carol = srv.account("alice"), srv.account("bob"), srv.account("carol")
    w = Writer(srv, alice, bob, carol)
    with bystanders(srv) as (b, c):
        w.fill()
        w.check_refusals()
        check_serving_while_full(srv, b, c)
        check_reported(srv)
        make_room()
        wait_writable(srv, w.alice)
        status = srv.ctl("status").stdout
        check(re.search(r"^storage: ok \(failed", status, re.M),
              "status after recovery:\n%s" % status)
    restart(srv)
    w.check_after_restart(srv)
    print("%d roster sets acknowledged, %d refused; %d messages stored, %d bounced; "
          "%d streams closed" % (len(w.set_ok), len(w.set_errors), len(w.stored_expected),
                                 len(w.bounced), len(w.closed)))


@time_limit(240)
def test_full_disk_refuses_writes_loses_nothing_and_recovers(ctx):
    if os.geteuid() != 0:
        skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tempfile.mkdtemp(prefix="starling-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", mnt], check=True)
    ctx.cleanup(lambda: (subprocess.run(["umount", "-l", mnt]), os.rmdir(mnt)))
    os.mkdir(os.path.join(mnt, "data"))
    opts = dict(OPTIONS, data_path=os.path.join(mnt, "data"))
    srv = ctx.server(modules=MODULES, options=opts)

    def grow():
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)

    run(ctx, srv, grow)


@time_limit(240)
def test_storage_max_size_refuses_writes_loses_nothing_and_recovers(ctx):
    srv = ctx.server(modules=MODULES, options=dict(OPTIONS, storage_max_size=5 << 20))
    # an account holding two megabytes of private XML, deleted to make room
    filler = srv.account("filler")
    f = srv.login(filler)
    for i in range(50):
        f.send("<iq type='set' id='f%d'><query xmlns='jabber:iq:private'>"
               "<data xmlns='urn:example:%d'>%s</data></query></iq>"
               % (i, i, "y" * 40000))
        f.expect("iq", attrs={"type": "result", "id": "f%d" % i})
    f.close()

    def delete_filler():
        srv.ctl("user", "delete", filler.jid)

    run(ctx, srv, delete_filler)
