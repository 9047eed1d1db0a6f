#!/usr/bin/env python3
"""What a message costs in system calls when it crosses a cluster's node
link (issue #23): one user sends N chat messages to another, first with
both on one node, then with each on a node of its own, in a burst (all
sent, then all read) and paced (each sent once the previous one arrived) (a cluster on
127.0.0.2 and 127.0.0.3 with a private Redis, links over TCP with TLS).
`strace -c -f` is attached to each node for the burst: system calls per
message, summed over the nodes, and the ones of the link (read, write,
writev on any socket are not told apart: the difference between the two
setups is the link's). Counts do not depend on the machine's load.
With --callgrind the nodes run under valgrind's callgrind instead, each
setup twice (N and 2N paced messages): the difference over N is the
instructions of a message, summed over the nodes.

    /usr/bin/python3 bench/cluster_link_cost.py [--build build] [--messages 2000]
    STARLING_TEST_TIMEOUT_SCALE=10 /usr/bin/python3 bench/cluster_link_cost.py \
        --callgrind --messages 500
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from redisserver import RedisServer  # noqa: E402
from server import Server, free_port  # noqa: E402

MODULES = ["roster", "presence", "message", "iq"]


class CallgrindServer(Server):
    """A node under callgrind."""
    wrapper = None

    @property
    def binary(self):
        return self.wrapper


def callgrind_wrapper(build, out_dir):
    path = os.path.join(out_dir, "starling-callgrind")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind "
                "--callgrind-out-file=%s/callgrind.out.%%p %s \"$@\"\n"
                % (out_dir, os.path.abspath(os.path.join(build, "starling"))))
    os.chmod(path, 0o755)
    return path


def node(build, name, ip, redis, callgrind=None):
    opts = {"interfaces": [ip], "log": {"level": "info"}}
    if redis:
        opts["cluster"] = {"node": name, "redis": redis.url,
                           "address": "%s:%d" % (ip, free_port()),
                           "secret": "a secret for the benchmark only"}
    if callgrind:
        srv = CallgrindServer(build, name=name, modules=MODULES, options=opts)
        srv.wrapper = callgrind
        return srv.start(timeout=30)
    return Server(build, name=name, modules=MODULES, options=opts).start()


def attach(pid):
    out = tempfile.NamedTemporaryFile(prefix="strace-", delete=False).name
    p = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", out],
                         stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return p, out


def detach(p, out):
    p.send_signal(signal.SIGINT)
    p.wait(30)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    calls = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 5 and re.match(r"^\d", cells[0]) and cells[-1] != "total":
            calls[cells[-1]] = int(cells[3])
    return calls


def instructions_total(out_dir):
    """The instructions in the callgrind files of out_dir (the nodes that
    exited), which are removed."""
    total = 0
    for name in os.listdir(out_dir):
        if name.startswith("callgrind.out."):
            with open(os.path.join(out_dir, name)) as f:
                for line in f:
                    if line.startswith("totals:") or line.startswith("summary:"):
                        total += int(line.split()[1])
                        break
            os.unlink(os.path.join(out_dir, name))
    return total


def burst(sender, receiver, n, paced=False):
    if paced:           # one at a time: each message a wake-up of its own
        for i in range(n):
            sender.send("<message to='%s' type='chat' id='m%d'><body>hello %d</body>"
                        "</message>" % (receiver.jid, i, i))
            receiver.expect("message", timeout=60)
        return
    for i in range(n):
        sender.send("<message to='%s' type='chat' id='m%d'><body>hello %d</body>"
                    "</message>" % (receiver.jid, i, i))
    for i in range(n):
        receiver.expect("message", timeout=60)


def measure(servers, alice, bob, n, paced):
    burst(alice, bob, 50)       # warm
    probes = [attach(s.proc.pid) for s in servers]
    burst(alice, bob, n, paced)
    time.sleep(0.3)
    total = {}
    for p, out in probes:
        for k, v in detach(p, out).items():
            total[k] = total.get(k, 0) + v
    return total


def wait_linked(a, b):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = a.ctl("cluster", "status").stdout
        if re.search(r"^%s\s.*\sup$" % b.name, out, re.M):
            return
        time.sleep(0.2)
    raise RuntimeError("not linked:\n" + out)


def report(label, calls, n):
    tot = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    print("%-28s %6.2f syscalls/msg  (%s)" % (
        label, tot / n, ", ".join("%s %.2f" % (k, v / n) for k, v in top)))
    return tot / n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--callgrind", action="store_true")
    a = p.parse_args()
    n = a.messages
    redis = RedisServer().start()
    started = []
    if a.callgrind:
        return callgrind_main(a, redis, started)
    try:
        one = node(a.build, "one", "127.0.0.2", None)
        started.append(one)
        alice = one.login("alice", resource="r")
        bob = one.login("bob", resource="r")
        single = [report("one node, %s" % m, measure([one], alice, bob, n, m == "paced"), n)
                  for m in ("burst", "paced")]
        alice.close()
        bob.close()
        one.stop()
        started.remove(one)

        na = node(a.build, "a", "127.0.0.2", redis)
        nb = node(a.build, "b", "127.0.0.3", redis)
        started += [na, nb]
        wait_linked(na, nb)
        alice = na.login("alice", resource="r")
        bob = nb.login("bob", resource="r")
        time.sleep(1.5)          # bob's bind reached a over the link
        cluster = [report("two nodes, %s" % m, measure([na, nb], alice, bob, n,
                                                       m == "paced"), n)
                   for m in ("burst", "paced")]
        print("the link's share: %+.2f syscalls/msg in a burst, %+.2f paced"
              % (cluster[0] - single[0], cluster[1] - single[1]))
    finally:
        for s in started:
            s.stop()
        redis.stop()


def callgrind_run(a, redis, wrapper, out_dir, cluster, n):
    """Instructions of a whole run (start, logins, n paced messages,
    stop) of one node or two."""
    servers = []
    try:
        if cluster:
            servers = [node(a.build, "a", "127.0.0.2", redis, wrapper),
                       node(a.build, "b", "127.0.0.3", redis, wrapper)]
            wait_linked(*servers)
        else:
            servers = [node(a.build, "one", "127.0.0.2", None, wrapper)]
        alice = servers[0].login("alice", resource="r")
        bob = servers[-1].login("bob", resource="r")
        time.sleep(3)
        burst(alice, bob, n, paced=True)
        alice.close()
        bob.close()
    finally:
        for s in servers:
            s.stop(timeout=60)
    return instructions_total(out_dir)


def callgrind_main(a, redis, started):
    """Each setup run twice, with n and 2n paced messages: the difference
    over n is a message's instructions, without the start-up and logins."""
    n = a.messages
    out_dir = tempfile.mkdtemp(prefix="callgrind-")
    wrapper = callgrind_wrapper(a.build, out_dir)
    try:
        per = {}
        for cluster in (False, True):
            runs = [callgrind_run(a, redis, wrapper, out_dir, cluster, k)
                    for k in (n, 2 * n)]
            per[cluster] = (runs[1] - runs[0]) / n
            print("%-10s paced: %8.0f instructions/msg%s" % (
                "two nodes" if cluster else "one node", per[cluster],
                " (both nodes)" if cluster else ""), flush=True)
        print("the link's share: %+8.0f instructions/msg" % (per[True] - per[False]))
    finally:
        redis.stop()

if __name__ == "__main__":
    main()
