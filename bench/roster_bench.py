#!/usr/bin/python3
"""Roster sets: the server's CPU per set at several roster sizes, and a
bystander's round trip while one client hammers its roster (issue 17).

    /usr/bin/python3 bench/roster_bench.py [--build build] [--sizes 10,100,1000]
        [--sets 3000] [--window 16] [--hammer-seconds 10] [--json]

For each size an account gets that many items (filled with the cost
budget off), then --sets roster sets renaming its items go out with
--window of them unanswered at a time; the server's CPU (utime + stime
from /proc/PID/stat) over those sets, divided by their number, is the CPU
per set. Then one client hammers its roster of the largest size the same
way for --hammer-seconds while another account (a bystander) sends XEP-0199
pings to the server one after the other; the bystander's round trips are
reported (median, p99, max), once with the cost budget as configured by
default and once with it off (account_cost_rate = 0), and the hammer's
answered sets per second.

It drives the server with the test suite's client (tests/lib), so it runs
against any build directory: the numbers before a change come from the
same script pointed at a build of the older tree. Only ratios matter on a
shared machine.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import server as srvlib  # noqa: E402
import xmpp  # noqa: E402

ROSTER = "jabber:iq:roster"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def set_xml(iq_id, contact, name):
    return ("<iq type='set' id='%s'><query xmlns='%s'><item jid='%s' name='%s'>"
            "<group>Bench</group></item></query></iq>" % (iq_id, ROSTER, contact, name))


def fill(c, n):
    sent = 0
    while sent < n:
        chunk = min(200, n - sent)
        c.send("".join(set_xml("f%d" % (sent + i), "c%05d@example.net" % (sent + i),
                               "Contact %d" % (sent + i)) for i in range(chunk)))
        for i in range(chunk):
            c.expect("iq", attrs={"id": "f%d" % (sent + i)}, timeout=60)
        sent += chunk


def hammer(c, n_items, sets, window, seconds=None):
    """Roster sets renaming items, window unanswered at a time, until sets
    are answered or seconds have passed. Returns (answered, refused)."""
    sent = answered = refused = 0
    deadline = time.monotonic() + seconds if seconds else None

    def send_one():
        nonlocal sent
        c.send(set_xml("h%d" % sent, "c%05d@example.net" % (sent % n_items),
                       "Renamed %d" % sent))
        sent += 1

    for _ in range(window):
        send_one()
    while answered + refused < sent:
        el = c.expect("iq", timeout=60)
        if el.get("type") == "result":
            answered += 1
        else:
            refused += 1
        more = sets is None or sent < sets
        if more and (deadline is None or time.monotonic() < deadline):
            send_one()
    return answered, refused


def hammer_process(port, user, password, n_items, window, seconds, out):
    c = xmpp_login(port, user, password, "hammer")
    t0 = time.monotonic()
    answered, refused = hammer(c, n_items, None, window, seconds)
    out.put((answered, refused, time.monotonic() - t0))


def xmpp_login(port, user, password, resource):
    c = xmpp.Client("127.0.0.1", port, "localhost", name=user + "/" + resource)
    c.connect(tls=False)
    c.open_stream()
    c.starttls()
    c.auth_scram(user, password)
    c.bind(resource)
    return c


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def start(build, options):
    opts = {"log": {"level": "warn"}}
    opts.update(options)
    srv = srvlib.Server(build, modules=["roster", "presence", "message", "iq", "ping"],
                        options=opts)
    return srv.start()


def cpu_per_set(build, sizes, sets, window):
    out = {}
    srv = start(build, {"account_cost_rate": 0})
    try:
        for n in sizes:
            acct = srv.account("size%d" % n)
            c = srv.login(acct)
            fill(c, n)
            hammer(c, n, min(200, sets), window)          # warm up
            before = cpu_seconds(srv.proc.pid)
            t0 = time.monotonic()
            answered, refused = hammer(c, n, sets, window)
            cpu = cpu_seconds(srv.proc.pid) - before
            wall = time.monotonic() - t0
            out[n] = {"sets": answered, "cpu_ms_per_set": 1000 * cpu / answered,
                      "sets_per_s": answered / wall}
            c.close()
    finally:
        srv.stop()
    return out


def bystander_rtt(build, n_items, window, seconds, options):
    srv = start(build, options)
    try:
        acct = srv.account("hammer")
        c = srv.login(acct)
        # filled at once: the budget (when on) only slows the fill down
        fill(c, n_items)
        c.close()
        by = srv.login("bystander")
        # idle round trips first
        idle = []
        for i in range(50):
            t0 = time.monotonic()
            by.send("<iq type='get' id='i%d' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>" % i)
            by.expect("iq", attrs={"id": "i%d" % i})
            idle.append(1000 * (time.monotonic() - t0))
        q = multiprocessing.Queue()
        p = multiprocessing.Process(target=hammer_process, args=(
            srv.port, acct.user, acct.password, n_items, window, seconds, q))
        before = cpu_seconds(srv.proc.pid)
        p.start()
        time.sleep(1.0)                   # the hammer is logged in and going
        rtts, i = [], 0
        end = time.monotonic() + seconds - 2
        while time.monotonic() < end:
            t0 = time.monotonic()
            by.send("<iq type='get' id='b%d' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>" % i)
            by.expect("iq", attrs={"id": "b%d" % i}, timeout=30)
            rtts.append(1000 * (time.monotonic() - t0))
            i += 1
            time.sleep(0.01)
        answered, refused, wall = q.get(timeout=seconds + 120)
        p.join()
        cpu = cpu_seconds(srv.proc.pid) - before
        return {
            "idle_median_ms": statistics.median(idle),
            "median_ms": statistics.median(rtts), "p99_ms": percentile(rtts, 0.99),
            "max_ms": max(rtts), "pings": len(rtts),
            "hammer_sets_per_s": answered / wall, "hammer_refused": refused,
            "server_cpu_share": cpu / wall,
        }
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--sets", type=int, default=3000)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--hammer-seconds", type=float, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    res = {"cpu": cpu_per_set(args.build, sizes, args.sets, args.window)}
    res["bystander_default"] = bystander_rtt(args.build, max(sizes), args.window,
                                             args.hammer_seconds, {})
    res["bystander_no_budget"] = bystander_rtt(args.build, max(sizes), args.window,
                                               args.hammer_seconds, {"account_cost_rate": 0})
    if args.json:
        print(json.dumps(res))
        return
    print("roster items | server CPU per set | sets/s (one client, window %d)" % args.window)
    for n in sizes:
        r = res["cpu"][n]
        print("%12d | %15.3f ms | %8.0f" % (n, r["cpu_ms_per_set"], r["sets_per_s"]))
    for name in ("bystander_default", "bystander_no_budget"):
        b = res[name]
        print("%s: bystander ping idle %.2f ms; while one client hammers a roster of %d: "
              "median %.2f ms, p99 %.2f ms, max %.2f ms (%d pings); hammer %.0f sets/s "
              "answered, %d refused; server CPU %.0f%% of a core"
              % (name, b["idle_median_ms"], max(sizes), b["median_ms"], b["p99_ms"],
                 b["max_ms"], b["pings"], b["hammer_sets_per_s"], b["hammer_refused"],
                 100 * b["server_cpu_share"]))


if __name__ == "__main__":
    main()
