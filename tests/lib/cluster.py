"""A cluster of Starling nodes for a test (issue #23): a private Redis
(tests/lib/redisserver.py) and PostgreSQL (tests/lib/pgserver.py), and
nodes on loopback addresses of their own (127.0.0.2, 127.0.0.3, ...),
each with the cluster option (docs/CLUSTER.md). Skips the test when
redis-server or PostgreSQL is missing or the addresses do not bind.

    cl = Cluster(ctx)                       # Redis and PostgreSQL, cleaned up
    a = cl.node("a", "127.0.0.2", modules=[...])
    b = cl.node("b", "127.0.0.3", modules=[...])
    linked(a, b)                            # both alive, their link up
    rows, text = cluster_status(a)          # `starlingctl cluster status`
    wait_seen([a, b], [jid])                # both directories have jid
"""

import socket
import time

from admin import Admin
from harness import skip
from pgserver import PgServer, pg_bindir
from redisserver import RedisServer, redis_installed
from server import free_port
from xmpp import timeout_value

SECRET = "a cluster secret for the tests only"


def loopback_usable(ip):
    s = socket.socket()
    try:
        s.bind((ip, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Cluster:
    """Redis and PostgreSQL for one test, and its nodes."""

    def __init__(self, ctx):
        if not redis_installed():
            skip("Redis is not installed (Debian: redis-server)")
        if not pg_bindir():
            skip("PostgreSQL is not installed (Debian: postgresql)")
        for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            if not loopback_usable(ip):
                skip("%s is not a usable loopback address here" % ip)
        self.ctx = ctx
        self.redis = RedisServer().start()
        ctx.cleanup(self.redis.stop)
        self.pg = PgServer().start()
        ctx.cleanup(self.pg.stop)
        self.db = self.pg.database()

    def options(self, name, ip, secret=SECRET):
        return {
            "interfaces": [ip],
            "sql": {"driver": "PostgreSQL", "database": self.db,
                    "username": "starling", "host": "127.0.0.1",
                    "port": self.pg.port},
            "default_storage": "sql",
            "cluster": {"node": name, "redis": self.redis.url,
                        "address": "%s:%d" % (ip, free_port()),
                        "secret": secret},
        }

    def node(self, name, ip, secret=SECRET, start=True, modules=None, **extra):
        """Node `name` (the server's name is node-NAME) listening on ip;
        extra: more options."""
        opts = self.options(name, ip, secret)
        opts.update(extra)
        return self.ctx.server(name="node-" + name, modules=modules,
                               options=opts, start=start)


def admin_ok(server, *words):
    a = Admin(server.data_dir + "/starling.sock")
    try:
        return a.ok(*words)
    finally:
        a.close()


def cluster_status(server):
    """{name: {"alive": bool, "sessions": int, "link": str, "address":
    str}} from `starlingctl cluster status` on server."""
    r = server.ctl("cluster", "status")
    text = r.stdout if hasattr(r, "stdout") else r
    if isinstance(text, bytes):
        text = text.decode()
    rows = {}
    for line in text.splitlines()[1:]:
        cells = line.split()
        if len(cells) == 6 and cells[3] in ("yes", "no"):
            rows[cells[0]] = {"id": int(cells[1]), "address": cells[2],
                              "alive": cells[3] == "yes",
                              "sessions": int(cells[4]), "link": cells[5]}
    return rows, text


def wait_status(server, want, what, timeout=15):
    """Until want(rows) holds for server's cluster status; returns the
    rows."""
    deadline = time.monotonic() + timeout_value(timeout)
    while True:
        rows, text = cluster_status(server)
        if want(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError("%s: %s\n%s" % (server.name, what, text))
        time.sleep(0.1)


def linked(*servers):
    """Until every node lists every other alive with its link up."""
    names = [s.name[len("node-"):] for s in servers]
    for s in servers:
        me = s.name[len("node-"):]
        wait_status(s, lambda rows: all(
            n in rows and rows[n]["alive"] and
            rows[n]["link"] == ("self" if n == me else "up") for n in names),
            "not linked to %r" % names)


def sessions_seen(server):
    """The full JIDs server's directory has (its own and proxies)."""
    text = admin_ok(server, "sessions")
    return {line.split()[0] for line in text.splitlines()[1:]
            if line.split() and "@" in line.split()[0]}


def wait_seen(servers, jids, gone=()):
    deadline = time.monotonic() + timeout_value(10)
    while True:
        views = [sessions_seen(s) for s in servers]
        if all(j in v for v in views for j in jids) and \
           not any(j in v for v in views for j in gone):
            return
        if time.monotonic() > deadline:
            raise AssertionError("the nodes do not agree on %r (gone %r): %r"
                                 % (jids, gone, views))
        time.sleep(0.05)
