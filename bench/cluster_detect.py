#!/usr/bin/env python3
"""How long after a SIGKILL of a cluster's node its users' contacts on
another node see them go offline (issue #23: within 10 s). Two nodes on
127.0.0.2 and 127.0.0.3 with a private Redis and PostgreSQL; each run
starts node b, makes alice (on a) and bob (on b) contacts, kills b and
times alice's wait for bob's unavailable presence. The time is the key's
TTL (4 s after its last refresh, 0 to 1 s before the kill) plus up to
one look (1 s); load adds little.

    /usr/bin/python3 bench/cluster_detect.py [--build build] [--runs 5]
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from im import befriend, expect_presence, im_login  # noqa: E402
from pgserver import PgServer  # noqa: E402
from redisserver import RedisServer  # noqa: E402
from server import Server, free_port  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    redis = RedisServer().start()
    pg = PgServer().start()
    db = pg.database()

    def node(name, ip):
        return Server(a.build, name=name, modules=["roster", "presence", "message", "iq"],
                      options={"interfaces": [ip], "log": {"level": "info"},
                               "sql": {"driver": "PostgreSQL", "database": db,
                                       "username": "starling", "host": "127.0.0.1",
                                       "port": pg.port},
                               "default_storage": "sql",
                               "cluster": {"node": name, "redis": redis.url,
                                           "address": "%s:%d" % (ip, free_port()),
                                           "secret": "a secret for the benchmark only"}}
                      ).start()

    na = node("a", "127.0.0.2")
    times = []
    try:
        for i in range(a.runs):
            nb = node("b", "127.0.0.3")
            time.sleep(2.5)             # linked (a look, a connect)
            alice = im_login(na, na.account("alice"), resource="r")
            bob = im_login(nb, na.account("bob"), resource="r")
            time.sleep(0.5)
            befriend(alice, bob)
            nb.crash()
            t = time.monotonic()
            expect_presence(alice, bob.jid, "unavailable", timeout=15)
            times.append(time.monotonic() - t)
            print("run %d: unavailable %.2f s after SIGKILL" % (i + 1, times[-1]), flush=True)
            alice.close()
        print("max %.2f s, min %.2f s" % (max(times), min(times)))
    finally:
        na.stop()
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
