#!/usr/bin/python3
"""Multi-User Chat side by side: Starling's mod_muc, Prosody's and ejabberd's.

    python3 bench/muc.py [--occupants 100] [--talkers 10] [--messages 100]
                         [--rooms 1000] [--only starling,prosody,ejabberd]

Three figures per server, each from the server's own CPU time
(/proc/PID/stat, user + system) and resident memory (VmRSS):

  fanout   a room with --occupants occupants of which --talkers talk:
           each talker sends --messages groupchat messages (paced by what comes
           back); every occupant must get every message.
           deliveries per server CPU-second = occupants x talkers x
           messages / CPU seconds of the sending phase.
  joins    one client enters --rooms new rooms (8 joins outstanding):
           joins per server CPU-second, and per wall second.
  memory   the server's RSS growth over those rooms, each idle with its
           one occupant, per room.

The clients are Python (asyncio, plain TCP, SCRAM-SHA-256), in this process:
they count stanzas without parsing them, so that the servers, not the
clients, set the pace; every server is driven the same way. ejabberd
runs with bench/run.py's config and a mod_muc section (MucEjabberd says
what is set and why).
"""

import argparse
import asyncio
import base64
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "lib"))

import run as bench_run  # noqa: E402  bench/run.py: servers, accounts, machine info
from scram import ScramClient  # noqa: E402

SERVICE = "conference.localhost"
PASSWORD = bench_run.PASSWORD


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class MucStarling(bench_run.Starling):
    def write_config(self, mam=False):
        super().write_config(mam)
        with open(self.cfg, "a") as f:
            f.write('\nComponent "%s" "muc"\n    muc_room_locking = false\n'
                    '    muc_max_occupants = 100000\n    muc_max_rooms = 1000000\n'
                    '    muc_max_rooms_per_user = 1000000\n' % SERVICE)


class MucProsody(bench_run.Prosody):
    def write_config(self, mam=False):
        super().write_config(mam)
        with open(self.cfg, "a") as f:
            f.write('\nComponent "%s" "muc"\n    muc_room_locking = false\n'
                    '    muc_max_occupants = 100000\n' % SERVICE)
        self._chown()


class MucEjabberd(bench_run.Ejabberd):
    """Debian's ejabberd with its mod_muc on conference.localhost. Nothing
    that would refuse or slow the bench: no per-user or per-room shapers
    (user_message_shaper, user_presence_shaper, room_shaper: none, the
    defaults, written out), no minimum interval between a user's messages
    or presences, no cap on rooms per user (max_user_conferences) or
    occupants (max_users, and max_users_presence, above which ejabberd
    stops broadcasting presence); history_size 20 as the others' default.
    max_fsm_queue (a c2s session's or room's queue of stanzas not yet
    handled, default 10,000, over which it is closed) is raised so a
    burst never ends a session; the c2s listeners have shaper none
    (bench/run.py)."""

    def write_config(self, mam=False):
        super().write_config(mam)
        with open(self.cfg, "a") as f:
            f.write(f"""  mod_muc:
    hosts:
      - {SERVICE}
    access_create: all
    history_size: 20
    max_users: 100000
    max_users_presence: 100000
    max_user_conferences: 1000000
    user_message_shaper: none
    user_presence_shaper: none
    room_shaper: none
    min_message_interval: 0
    min_presence_interval: 0
    default_room_options:
      max_users: 100000
      mam: false
max_fsm_queue: 1000000
""")
        self._chown()

    def start(self):
        # On a loaded machine ejabberd (Erlang, mnesia) may take longer
        # than run.py's 30 s to listen: wait up to 180 s.
        wait = bench_run.wait_port
        bench_run.wait_port = lambda port, proc, timeout=30.0, host="127.0.0.1": \
            wait(port, proc, 180.0, host)
        try:
            super().start()
        finally:
            bench_run.wait_port = wait


class Conn:
    """One logged-in client; counts what it receives by patterns."""

    def __init__(self, server, user):
        self.server, self.user = server, user
        self.buf = b""
        self.counts = {}
        self.watch = {}
        self.event = asyncio.Event()

    async def _until(self, pattern):
        while True:
            m = re.search(pattern, self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            data = await self.reader.read(65536)
            if not data:
                raise RuntimeError("%s: connection closed: %r" % (self.user, self.buf[-300:]))
            self.buf += data

    def _open(self):
        self.writer.write(("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams' to='%s' "
                           "version='1.0'>" % self.server.domain).encode())

    async def login(self):
        self.reader, self.writer = await asyncio.open_connection(self.server.host, self.server.port)
        self._open()
        await self._until(rb"</stream:features>")
        s = ScramClient("SCRAM-SHA-256", self.user, PASSWORD)
        self.writer.write(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism="
                          b"'SCRAM-SHA-256'>" + base64.b64encode(s.first()) + b"</auth>")
        m = await self._until(rb"<challenge[^>]*>([^<]*)</challenge>")
        final = s.final(base64.b64decode(m.group(1)))
        self.writer.write(b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                          + base64.b64encode(final) + b"</response>")
        await self._until(rb"<success[^>]*?(/>|>[^<]*</success>)")
        self._open()
        await self._until(rb"</stream:features>")
        self.writer.write(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                          b"<resource>b</resource></bind></iq>")
        await self._until(rb"</iq>")
        self.buf = b""

    def count(self, name, pattern):
        self.watch[name] = re.compile(pattern)
        self.counts[name] = 0

    async def pump(self):
        """Reads until the connection ends, counting the watched patterns
        (a match split across reads is found on the next, as the tail of
        the previous read is kept)."""
        keep = 64
        tail = b""
        while True:
            data = await self.reader.read(262144)
            if not data:
                return
            chunk = tail + data
            for name, pat in self.watch.items():
                # what lies wholly in the tail was counted last time
                self.counts[name] += len(pat.findall(chunk)) - len(pat.findall(tail))
            tail = chunk[-keep:]
            self.event.set()

    def send(self, xml):
        self.writer.write(xml.encode())


async def wait_counts(conns, name, want, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if all(c.counts[name] >= want for c in conns):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)


async def fanout(server, a):
    users = ["m%d" % i for i in range(1, a.occupants + 1)]
    conns = [Conn(server, u) for u in users]
    for c in conns:
        await c.login()
    room = "fanout@" + SERVICE
    pumps = []
    for i, c in enumerate(conns):
        c.count("joined", rb"code=['\"]110['\"]")
        c.count("body", rb"<body>")
        pumps.append(asyncio.ensure_future(c.pump()))
        c.send("<presence to='%s/n%d'><x xmlns='http://jabber.org/protocol/muc'>"
               "<history maxstanzas='0'/></x></presence>" % (room, i))
        await wait_counts([c], "joined", 1, 30)
    talkers = conns[:a.talkers]
    total = a.talkers * a.messages
    window = 4  # flush every 4 messages; at most 16 of a talker's in flight
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()

    async def talk(c, k):
        for j in range(a.messages):
            # a talker sees its own messages come back among the others
            while j - c.counts["body"] // a.talkers >= window * 4:
                await asyncio.sleep(0.001)
            c.send("<message to='%s' type='groupchat'><body>t%d m%d</body></message>"
                   % (room, k, j))
            if j % window == window - 1:
                await c.writer.drain()
    await asyncio.gather(*(talk(c, k) for k, c in enumerate(talkers)))
    ok = await wait_counts(conns, "body", total, 120)
    cpu, wall = cpu_seconds(server.pid) - cpu0, time.monotonic() - t0
    for c in conns:
        c.writer.close()
    for p in pumps:
        p.cancel()
    got = sum(min(c.counts["body"], total) for c in conns)
    return {"deliveries": got, "complete": ok, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "deliveries_per_cpu_s": round(got / cpu) if cpu > 0 else None}


async def joins(server, a):
    c = Conn(server, "j1")
    await c.login()
    c.count("joined", rb"code=['\"]110['\"]")
    pump = asyncio.ensure_future(c.pump())
    rss0, cpu0, t0 = rss_kib(server.pid), cpu_seconds(server.pid), time.monotonic()
    outstanding = 8
    for i in range(a.rooms):
        c.send("<presence to='r%d@%s/j'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
               % (i, SERVICE))
        while i + 1 - c.counts["joined"] > outstanding:
            await asyncio.sleep(0.0005)
    ok = await wait_counts([c], "joined", a.rooms, 120)
    cpu, wall = cpu_seconds(server.pid) - cpu0, time.monotonic() - t0
    await asyncio.sleep(1)
    rss = rss_kib(server.pid) - rss0
    c.writer.close()
    pump.cancel()
    return {"joins": c.counts["joined"], "complete": ok, "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "joins_per_cpu_s": round(c.counts["joined"] / cpu) if cpu > 0 else None,
            "joins_per_s": round(c.counts["joined"] / wall),
            "kib_per_idle_room": round(rss / a.rooms, 2)}


def bench(cls, work, cert, a, **kw):
    server = cls(work, cert, **kw)
    server.create_accounts("m", 1, a.occupants)
    server.create_accounts("j", 1, 1)
    if not server.alive():  # ejabberd's accounts are made through it, running
        server.start()
    try:
        time.sleep(1)
        out = {"server": server.name, "version": server.version}
        # the rooms first: the fan-out's garbage would blur their memory
        out["joins"] = asyncio.run(joins(server, a))
        out["fanout"] = asyncio.run(fanout(server, a))
        return out
    finally:
        server.stop()


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summary(runs):
    """One row per server: the medians of its runs."""
    f = [r["fanout"] for r in runs]
    j = [r["joins"] for r in runs]
    return {
        "version": runs[0]["version"],
        "runs": len(runs),
        "deliveries_per_cpu_s": median([x["deliveries_per_cpu_s"] for x in f if x["complete"]]),
        "fanout_cpu_s": median([x["cpu_s"] for x in f if x["complete"]]),
        "joins_per_cpu_s": median([x["joins_per_cpu_s"] for x in j if x["complete"]]),
        "joins_per_s": median([x["joins_per_s"] for x in j if x["complete"]]),
        "kib_per_idle_room": median([x["kib_per_idle_room"] for x in j if x["complete"]]),
        "incomplete": sum(1 for x in f + j if not x["complete"]),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--occupants", type=int, default=100)
    p.add_argument("--talkers", type=int, default=10)
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--rooms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=1,
                   help="runs per server, the servers taking turns; medians are shown")
    p.add_argument("--build", default="build")
    p.add_argument("--only", default="starling,prosody,ejabberd")
    a = p.parse_args()
    bench_run.raise_nofile()
    work = tempfile.mkdtemp(prefix="muc-bench-")
    os.chmod(work, 0o755)  # prosody and ejabberd run as their own users
    cert = bench_run.make_cert(work)
    classes = {"starling": MucStarling, "prosody": MucProsody, "ejabberd": MucEjabberd}
    names = []
    for name in a.only.split(","):
        if name not in classes:
            p.error("unknown server " + name)
        if name != "starling" and not classes[name].available(a.build):
            print("%s is not installed (make bench-deps)" % name)
            continue
        names.append(name)
    print("machine:", bench_run.machine(), flush=True)
    runs = {name: [] for name in names}
    for i in range(a.runs):
        for name in names:
            kw = {"build": a.build} if name == "starling" else {}
            try:
                r = bench(classes[name], work, cert, a, **kw)
            except RuntimeError as e:  # a server that did not start: the others go on
                print("run %d %s: failed: %s" % (i + 1, name, e), flush=True)
                continue
            runs[name].append(r)
            print("run %d %s: %r" % (i + 1, name, r), flush=True)
    print("load average after:", os.getloadavg())
    rows = [summary(runs[n]) for n in names if runs[n]]
    head = ("server", "runs", "deliveries/CPU-s", "fan-out CPU s", "joins/CPU-s", "joins/s",
            "KiB per idle room")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| %s | %d%s | %s | %s | %s | %s | %s |" % (
            r["version"], r["runs"], " (%d incomplete)" % r["incomplete"] if r["incomplete"] else "",
            r["deliveries_per_cpu_s"], r["fanout_cpu_s"], r["joins_per_cpu_s"], r["joins_per_s"],
            r["kib_per_idle_room"]))
    ours = [r for r, n in zip(rows, [n for n in names if runs[n]]) if n == "starling"]
    peers = [r for r, n in zip(rows, [n for n in names if runs[n]]) if n != "starling"]
    if ours and peers:
        for key, label in (("deliveries_per_cpu_s", "fan-out per CPU-s"),
                           ("joins_per_cpu_s", "joins per CPU-s")):
            best = max((r[key] or 0) for r in peers)
            if best and ours[0][key]:
                print("starling / the better peer, %s: %.1f" % (label, ours[0][key] / best))


if __name__ == "__main__":
    main()
