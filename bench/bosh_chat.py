#!/usr/bin/python3
"""Chat over BOSH against chat over TCP: delivered messages per server
CPU-second (utime + stime of the server process, /proc/PID/stat).

    python3 bench/bosh_chat.py [--build build] [--pairs 20] [--rounds 200]

Each pair is two clients of the same kind (BOSH clients of
tests/lib/boshclient.py as a browser page drives BOSH: one request held,
one more to send; or plain TCP clients of tests/lib/xmpp.py) that play
ping-pong: A sends B a message, B answers A; the pairs take turns. The
clients are Python and run in this process: only the server's CPU counts.
Debug logging is off. A rough figure, for the ratio, not a benchmark of
record (bench/run.py and the loadgen are that, for TCP)."""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import server as server_mod            # noqa: E402
from boshclient import bosh_login      # noqa: E402
from wsclient import wait_for_port     # noqa: E402
from xmpp import esc                   # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(srv, pairs, rounds, kind):
    clients = []
    for i in range(pairs):
        pair = []
        for j in range(2):
            a = srv.account("%s%d_%d_" % (kind, i, j))
            if kind == "bosh":
                c = bosh_login(srv.http_port, a, wait=30)
            else:
                c = srv.login(a, tls=None)
            c.ignore = ("presence",)
            pair.append(c)
        clients.append(pair)
    t0, c0 = time.monotonic(), cpu_seconds(srv.proc.pid)
    n = 0
    for r in range(rounds):
        for a, b in clients:
            for x, y in ((a, b), (b, a)):
                x.send("<message to='%s' type='chat'><body>m%d</body></message>"
                       % (esc(y.jid), r))
                y.expect("message", child="body", text="m%d" % r)
                n += 1
    cpu = cpu_seconds(srv.proc.pid) - c0
    wall = time.monotonic() - t0
    for pair in clients:
        for c in pair:
            c.close()
    return n, cpu, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    http = server_mod.free_port()
    srv = server_mod.Server(args.build, modules=["roster", "presence", "message",
                                                 "iq", "bosh"],
                            options={"http_ports": [http], "https_ports": [],
                                     "consider_bosh_secure": True,
                                     "c2s_require_encryption": False,
                                     "log": {"level": "warn"}})
    srv.http_port = http
    srv.start()
    wait_for_port(http)
    try:
        for kind in ("tcp", "bosh"):
            n, cpu, wall = run(srv, args.pairs, args.rounds, kind)
            print("%-5s %6d messages, server CPU %.2f s, wall %.1f s: "
                  "%.0f messages per server CPU-second"
                  % (kind, n, cpu, wall, n / cpu if cpu else float("inf")))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
