#!/usr/bin/env python3
"""bench/s2s.py - chat between two servers over server-to-server streams:
two Starlings, two Prosodys, two ejabberds, side by side (issue #18).

    python3 bench/s2s.py [--build build] [--servers starling,prosody,ejabberd]
                         [--scale 0.1] [--duration 20] [--rate 5000]
                         [--no-results] [--keep]

For each kind of server it starts two instances, a.example and b.example,
each on a loopback address of its own (c2s and s2s; s2s on 5269 when that
is free there), with 1,000 accounts each (--scale multiplies). Account i on
a.example is paired with account i on b.example; the load generator logs
every account in on its own server and each one sends chat messages to its
partner only, so every message crosses from one server to the other. One
message from every account first opens the streams both ways (STARTTLS,
dialback) and is not measured. Then:

  s2s_open   open loop, at most 8 unanswered messages per sender (--window)
  s2s_rate   paced, --rate messages per second in all

Server CPU is both servers' utime + stime (/proc/PID/stat) over the
measured part; "delivered per server CPU-second" counts both. The same
invocation runs Starling's local chat (one server, 1,000 accounts, the
open loop of run.py's chat_open, on a fresh server) so the s2s figure can
be read against it.

How the servers find each other, with no change to the machine:
Starlings pin the other domain to its address (s2s_static_hosts); Prosody
(luaunbound's `forward`) and ejabberd (Erlang's resolver, ERL_INETRC) ask a
private NSD on 127.0.0.1 (tests/lib/dnsserver.py) that serves
_xmpp-server._tcp SRV records of both domains (their target the
address itself, which getaddrinfo() takes as it is: ejabberd resolves SRV
targets through the machine's resolver) and A records. Each server has a
self-signed certificate for its domain; peers authenticate with dialback
over STARTTLS (Prosody s2s_secure_auth = false, ejabberd mod_s2s_dialback).

Results: one table, appended to bench/HISTORY.md as a dated section (not
with --no-results). Every connection goes to 127.0.0.0/8; every run is
bounded in time.
"""

import argparse
import datetime
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))

import run  # noqa: E402  (bench/run.py: the server classes, loadgen runs)
from dnsserver import DnsServer  # noqa: E402

DOMAINS = ("a.example", "b.example")
WARMUP_S = 60  # at most, for every account's first message to arrive


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def port_free(address, port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_addresses():
    """Two loopback addresses for a.example and b.example, outside the
    generator's source addresses (127.0.0.2..) and preferring ones where
    5269 is free, with the s2s port each will use."""
    picked = []
    for _ in range(200):
        address = "127.0.%d.%d" % (random.randint(8, 250), random.randint(1, 250))
        if address in (a for a, _ in picked):
            continue
        if port_free(address, 5269):
            picked.append((address, 5269))
        if len(picked) == 2:
            return picked
    while len(picked) < 2:
        address = "127.0.%d.%d" % (random.randint(8, 250), random.randint(1, 250))
        picked.append((address, run.free_port(address)))
    return picked


def make_pair(a, cls, work, certs, places, resolver):
    """Two instances of cls, a.example and b.example, each knowing the
    other's address."""
    pair = []
    for i, domain in enumerate(DOMAINS):
        other = DOMAINS[1 - i]
        fed = run.Federation(places[i][0], places[i][1],
                             {other: places[1 - i]}, resolver)
        kw = {"domain": domain, "fed": fed}
        srv = (cls(work, certs[domain], a.build, **kw) if cls is run.Starling
               else cls(work, certs[domain], **kw))
        pair.append(srv)
    return pair


def scenarios(a, n):
    common = ["--users", str(2 * n), "--duration", str(a.duration),
              "--warmup", str(WARMUP_S), "--timeout", "60"]
    return [
        ("s2s_open", common + ["--window", str(a.window)]),
        ("s2s_rate", common + ["--rate", str(a.rate)]),
    ]


def bench_pair(a, pair, n):
    first, second = pair
    results = {}
    t = time.monotonic()
    first.create_accounts("u", 1, n)
    second.create_accounts("u", n + 1, 2 * n)
    log("  accounts: u1..u%d@%s, u%d..u%d@%s in %.1f s" % (
        n, first.domain, n + 1, 2 * n, second.domain, time.monotonic() - t))
    try:
        for srv in pair:
            if not srv.alive():
                srv.start()
            log("  started %s %s (pid %d) on %s, c2s %d, s2s %d" % (
                srv.name, srv.domain, srv.pid, srv.host, srv.port, srv.fed.s2s_port))
        if first.per_user_salt:
            t = time.monotonic()
            r = run.run_loadgen(a, first, "login", [
                "--users", str(2 * n), "--no-session", "--concurrency", "100"],
                jobs=os.cpu_count() or 1, second=second)
            if "error" in r or r.get("login_failed"):
                log("  warm-up: %s" % summary(r))
            log("  warm-up (SCRAM keys of every account) took %.1f s"
                % (time.monotonic() - t))
        for key, opts in scenarios(a, n):
            for srv in pair:
                if not srv.alive():
                    srv.crashes.append("%s %s had died before %s: %s" % (
                        srv.name, srv.domain, key, srv.log_tail()))
            if not all(srv.alive() for srv in pair):
                results[key] = {"error": "a server is down"}
                continue
            r = run.run_loadgen(a, first, "chat", opts, second=second)
            results[key] = r
            log("    %s: %s" % (key, summary(r)))
            time.sleep(1)
    finally:
        for srv in pair:
            srv.stop()
    return results


def local_chat(a, work, cert):
    """Starling's local chat: one server, the same users per server, open
    loop, window 8 (run.py's chat_open, here on a fresh server)."""
    srv = run.Starling(work, cert, a.build)
    n = users(a)
    scen = [("chat_local", "chat", ["--users", str(n), "--window", str(a.window),
                                    "--duration", str(a.duration)], False)]
    return run.bench_server(a, srv, scen).get("chat_local")


def users(a):
    return max(2, int(1000 * a.scale))


def summary(r):
    if "error" in r:
        return "FAILED " + r["error"]
    keys = ("delivered_per_s", "delivered_per_server_cpu_s", "latency_p50_ms",
            "latency_p99_ms", "lost", "server_cpu_util", "warmup_received",
            "warmup_s", "first_error")
    return " ".join("%s=%s" % (k, r[k]) for k in keys if k in r)


# (label, scenario key, field, format)
ROWS = [
    ("s2s open loop: delivered msgs/s", "s2s_open", "delivered_per_s", "%.0f"),
    ("s2s open loop: msgs per server CPU-s (both)", "s2s_open",
     "delivered_per_server_cpu_s", "%.0f"),
    ("s2s open loop: server CPU (cores, both)", "s2s_open", "server_cpu_util", "%.2f"),
    ("s2s open loop: latency p50 ms", "s2s_open", "latency_p50_ms", "%.2f"),
    ("s2s open loop: latency p99 ms", "s2s_open", "latency_p99_ms", "%.2f"),
    ("s2s open loop: latency p99.9 ms", "s2s_open", "latency_p999_ms", "%.2f"),
    ("s2s open loop: lost", "s2s_open", "lost", "%.0f"),
    ("s2s fixed rate: delivered msgs/s", "s2s_rate", "delivered_per_s", "%.0f"),
    ("s2s fixed rate: server CPU (cores, both)", "s2s_rate", "server_cpu_util", "%.2f"),
    ("s2s fixed rate: msgs per server CPU-s (both)", "s2s_rate",
     "delivered_per_server_cpu_s", "%.0f"),
    ("s2s fixed rate: latency p50 ms", "s2s_rate", "latency_p50_ms", "%.2f"),
    ("s2s fixed rate: latency p99 ms", "s2s_rate", "latency_p99_ms", "%.2f"),
    ("s2s fixed rate: lost", "s2s_rate", "lost", "%.0f"),
    ("warm-up: first messages in (of sent)", "s2s_open", None, None),
    ("warm-up: seconds", "s2s_open", "warmup_s", "%.1f"),
]


def cell(results, key, field, fmt):
    r = results.get(key)
    if r is None:
        return None, "-"
    if "error" in r:
        return None, "failed"
    if field is None:
        return None, "%d/%d" % (r.get("warmup_received", 0), r.get("warmup_sent", 0))
    v = r.get(field)
    if v is None:
        return None, "n/a"
    return v, fmt % v


def table(all_results, names):
    return run.compare(names, [
        (label, [cell(all_results[x], key, field, fmt) for x in names])
        for label, key, field, fmt in ROWS])


def verdict(all_results, local):
    """The issue's two targets, in words."""
    out = []
    st = all_results.get("starling", {}).get("s2s_open", {})
    mine = st.get("delivered_per_server_cpu_s")
    if mine and local and local.get("delivered_per_server_cpu_s"):
        lc = local["delivered_per_server_cpu_s"]
        out.append("Starling s2s / Starling local chat, msgs per server CPU-s: "
                   "%.0f / %.0f = %.2f (target at least 0.50)" % (mine, lc, mine / lc))
    peers = [(x, r.get("s2s_open", {}).get("delivered_per_server_cpu_s"))
             for x, r in all_results.items() if x != "starling"]
    peers = [(x, v) for x, v in peers if v]
    if mine and peers:
        best, v = max(peers, key=lambda p: p[1])
        out.append("Starling s2s / the better peer's (%s), msgs per server CPU-s: "
                   "%.0f / %.0f = %.1f (target at least 10)" % (best, mine, v, mine / v))
    return out


def write_results(path, a, mach, mach_end, servers, all_results, local, head, rows,
                  notes, verdicts):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n = users(a)
    lines = ["", "## Chat over s2s, %s" % now, "",
             "Command: `%s`" % " ".join(["python3", "bench/s2s.py"] + sys.argv[1:]), "",
             "Machine: %s CPUs (%s), %s memory, Linux %s; load average %s at the "
             "start, %s at the end." % (mach["nproc"], mach["cpu"], mach["memory"],
                                        mach["kernel"], mach["loadavg"], mach_end),
             "Servers: %s. %d users on each of two servers (%d in all), each "
             "writing to its partner on the other; %d s per run; load generator "
             "build/loadgen, %d worker thread(s), same host." % (
                 ", ".join(servers), n, 2 * n, a.duration, a.jobs), ""]
    if local and "error" not in local:
        lines += ["Starling local chat in the same run (one server, %d users, open "
                  "loop, window %d): %.0f msgs/s, %.0f msgs per server CPU-s, "
                  "latency p99 %.2f ms." % (n, a.window, local.get("delivered_per_s", 0),
                                             local.get("delivered_per_server_cpu_s", 0),
                                             local.get("latency_p99_ms", 0)), ""]
    lines += [run.markdown(head, rows), ""]
    if verdicts:
        lines += ["- " + v for v in verdicts] + [""]
    if notes:
        lines += ["Notes:", ""] + ["- " + x for x in notes] + [""]
    lines += ["<details><summary>raw results (JSON)</summary>", "", "```json",
              json.dumps({"local": local, "s2s": all_results}, indent=1, sort_keys=True),
              "```", "</details>", ""]
    with open(path, "a") as f:
        f.write("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--loadgen", default=None, help="default: BUILD/loadgen")
    p.add_argument("--servers", default="starling,prosody,ejabberd")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies the 1,000 users per server")
    p.add_argument("--duration", type=float, default=20, help="seconds per chat run")
    p.add_argument("--rate", type=float, default=5000,
                   help="messages/s in all of the paced run")
    p.add_argument("--window", type=int, default=8,
                   help="open loop: unanswered messages per sender")
    p.add_argument("--jobs", type=int, default=1, help="load generator threads")
    p.add_argument("--no-local", action="store_true",
                   help="skip Starling's local chat run")
    p.add_argument("--timeout", type=int, default=600, help="seconds per loadgen run")
    p.add_argument("--results", default=os.path.join(HERE, "HISTORY.md"))
    p.add_argument("--no-results", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args()

    a.loadgen = a.loadgen or os.path.join(run.ROOT, a.build, "loadgen")
    if not os.access(a.loadgen, os.X_OK):
        sys.exit("no %s: run make %s/loadgen" % (a.loadgen, a.build))
    run.raise_nofile()
    mach = run.machine()
    n = users(a)
    work = tempfile.mkdtemp(prefix="starling-s2sbench-")
    os.chmod(work, 0o755)
    notes, servers, all_results, local = [], [], {}, None
    places = pick_addresses()
    dns = DnsServer(workdir=os.path.join(work, "dns"))
    for domain, (address, port) in zip(DOMAINS, places):
        # the SRV target is the address itself: ejabberd looks SRV records
        # up with Erlang's resolver (ERL_INETRC) but the target's address
        # with getaddrinfo(), which asks the machine's resolver
        dns.zone(domain).a("@", address).srv("_xmpp-server._tcp", 0, 5, port,
                                             address + ".")
    try:
        dns.start()
        certs = {d: run.make_cert(work, d) for d in DOMAINS}
        if "starling" in a.servers.split(",") and not a.no_local:
            if run.Starling.available(a.build):
                log("starling, local chat")
                local = local_chat(a, work, run.make_cert(work))
        for name in a.servers.split(","):
            cls = run.SERVER_CLASSES.get(name)
            if cls is None or not cls.available(a.build):
                notes.append("%s: not installed or not built; skipped" % name)
                continue
            pair = make_pair(a, cls, work, certs, places, dns.resolver)
            log("%s (%s): %s on %s:%d, %s on %s:%d" % (
                name, pair[0].version, DOMAINS[0], places[0][0], places[0][1],
                DOMAINS[1], places[1][0], places[1][1]))
            try:
                all_results[name] = bench_pair(a, pair, n)
                servers.append("%s (%s)" % (name, pair[0].version))
                for srv in pair:
                    notes.extend(srv.crashes)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                notes.append("%s: %s" % (name, e))
                log("%s: %s" % (name, e))
                for srv in pair:
                    srv.stop()
        for name, res in all_results.items():
            for key, r in res.items():
                if "error" in r:
                    notes.append("%s %s: %s" % (name, key, r["error"]))
                elif r.get("first_error"):
                    notes.append("%s %s: first error: %s" % (name, key, r["first_error"]))
                elif r.get("warmup_received", 0) < r.get("warmup_sent", 0):
                    notes.append("%s %s: %d of %d warm-up messages arrived" % (
                        name, key, r.get("warmup_received", 0), r.get("warmup_sent", 0)))
    finally:
        dns.stop()
        if a.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if not all_results:
        print("no server could be benchmarked:\n  " + "\n  ".join(notes))
        return 1
    mach_end = "%.2f %.2f %.2f" % os.getloadavg()
    names = list(all_results)
    head, rows = table(all_results, names)
    verdicts = verdict(all_results, local)
    print()
    if local:
        print("starling local chat: " + summary(local))
    print(run.plain(head, rows))
    for v in verdicts:
        print(v)
    for x in notes:
        print("note: " + x)
    if not a.no_results:
        write_results(a.results, a, mach, mach_end, servers, all_results, local,
                      head, rows, notes, verdicts)
        print("\nappended to " + os.path.relpath(a.results, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
