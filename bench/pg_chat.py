#!/usr/bin/env python3
"""Chat with storage on PostgreSQL (issue #23): a private PostgreSQL
(tests/lib/pgserver.py, fsync on), Starling with default_storage = "sql"
(accounts, rosters, archives in the database) and run.py's chat_mam
modules (every message archived for both sides, acknowledged with
XEP-0198 after its commit), loadgen's open-loop chat with --smacks.
Prints delivered msgs/s, msgs per server CPU-second, latency (p50, p99,
max: the longest a message waited, the loop's stalls included), and the
server's own count of the loop's waits for PostgreSQL (logged at exit, by
builds that have it).

    /usr/bin/python3 bench/pg_chat.py [--build build] [--home DIR]
        [--users 200] [--duration 10] [--runs 1] [--index-delay S] [--strace]

--home: the tree whose lua/ and modules/ the build uses (default: this
one), so that an older build (git archive REV, made elsewhere) runs too.
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))

import run  # noqa: E402
from pgserver import PgServer, pg_bindir  # noqa: E402

FIELDS = [("delivered msgs/s", "delivered_per_s", "%.0f"),
          ("msgs per server CPU-s", "delivered_per_server_cpu_s", "%.0f"),
          ("latency p50 ms", "latency_p50_ms", "%.2f"),
          ("latency p99 ms", "latency_p99_ms", "%.2f"),
          ("latency max ms", "latency_max_ms", "%.1f"),
          ("lost", "lost", "%.0f"),
          ("loop iteration p99 ms", "loop_p99_ms", "%.2f"),
          ("longest loop iteration ms", "loop_longest_ms", "%.1f"),
          ("loop iterations", "loop_iterations", "%d")]


def loop_gaps(path, t0, t1):
    """From strace -tt -T of the loop's epoll_wait between wall clock t0
    and t1 (the chat run): the iterations' work (from one wait's return to
    the next wait's call), the longest and the 99th percentile, in ms."""
    gaps, last_end = [], None
    day = time.mktime(time.localtime(t0)[:3] + (0, 0, 0, 0, 0, -1))
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:\d+ +)?(\d+):(\d+):([\d.]+) epoll_p?wait\(.*<([\d.]+)>",
                         line)
            if not m:
                continue
            start = day + int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
            if not t0 <= start <= t1:
                continue
            if last_end is not None:
                gaps.append(max(0.0, start - last_end))
            last_end = start + float(m.group(4))
    if not gaps:
        return {}
    gaps.sort()
    return {"loop_longest_ms": gaps[-1] * 1e3,
            "loop_p99_ms": gaps[int(len(gaps) * 0.99)] * 1e3,
            "loop_iterations": len(gaps)}


def one_run(a, pg, work, cert):
    db = pg.database()
    s = run.Starling(work, cert, a.build)
    s.env = {"STARLING_HOME": os.path.abspath(a.home)}
    s.write_config(mam=True)
    with open(s.cfg) as f:
        cfg = f.read()
    cfg = cfg.replace('log = { level = "warn" }', 'log = { level = "info" }')
    if a.index_delay is not None:
        cfg = cfg.replace("archive_index_delay = 0", "archive_index_delay = %d"
                          % a.index_delay)
    cfg = cfg.replace("VirtualHost", (
        'sql = { driver = "PostgreSQL", database = "%s", username = "starling", '
        'host = "127.0.0.1", port = %d }\ndefault_storage = "sql"\n\nVirtualHost')
        % (db, pg.port), 1)
    with open(s.cfg, "w") as f:
        f.write(cfg)
    s.create_accounts("u", 1, a.users)
    trace = os.path.join(work, "strace.out")
    if a.strace:
        # the server under strace from its start (--seccomp-bpf: only the
        # traced calls stop it); loadgen then sees strace's pid, so the
        # CPU figures of a traced run mean nothing
        s.launch(["strace", "-q", "-f", "--seccomp-bpf", "-tt", "-T", "-e",
                  "trace=epoll_wait,epoll_pwait", "-o", trace, s.bin, "-c", s.cfg])
    else:
        s.start()
    try:
        time.sleep(1)
        run.run_loadgen(a, s, "login", ["--users", str(a.users), "--no-session",
                                        "--concurrency", "50"])
        t0 = time.time()
        r = run.run_loadgen(a, s, "chat", ["--users", str(a.users), "--window", "8",
                                           "--smacks", "--duration", str(a.duration)])
        t1 = time.time()
    finally:
        if a.strace and s.alive():
            with open("/proc/%d/task/%d/children" % (s.pid, s.pid)) as f:
                for child in f.read().split():
                    os.kill(int(child), signal.SIGTERM)
        s.stop()
    if a.strace:
        r.update(loop_gaps(trace, t0, t1))
    with open(os.path.join(s.dir, "server.log"), errors="replace") as f:
        m = re.search(r"waited for (\d+) answers, ([\d.]+) ms in all, "
                      r"the longest ([\d.]+) ms", f.read())
    if m:
        r["pg_waits"] = int(m.group(1))
        r["pg_waited_ms"] = float(m.group(2))
        r["pg_longest_wait_ms"] = float(m.group(3))
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--home", default=os.path.dirname(HERE))
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--index-delay", type=int, default=None,
                   help="archive_index_delay (run.py's chat_mam: 0, the index "
                   "job working through the run)")
    p.add_argument("--strace", action="store_true",
                   help="trace the loop's epoll_wait during the chat run: "
                   "the longest iteration (its work and every wait inside, "
                   "PostgreSQL's included; strace slows the server, so "
                   "compare traced runs with traced runs)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=int, default=600)
    a = p.parse_args()
    a.build = os.path.abspath(a.build)
    a.loadgen = os.path.join(os.path.dirname(HERE), "build", "loadgen")
    if not pg_bindir():
        sys.exit("PostgreSQL is not installed (Debian: postgresql)")
    work = tempfile.mkdtemp(prefix="pgchat-")
    pg = PgServer().start()
    results = []
    try:
        cert = run.make_cert(work)
        for i in range(a.runs):
            with open("/proc/loadavg") as f:
                load = " ".join(f.read().split()[:3])
            r = one_run(a, pg, os.path.join(work, "run%d" % i), cert)
            if "error" in r:
                sys.exit("run %d: %s" % (i + 1, r["error"]))
            results.append(r)
            print("run %d (load %s): %s" % (i + 1, load, ", ".join(
                "%s %s" % (label, fmt % r[key]) for label, key, fmt in FIELDS
                if key in r)), flush=True)
            if "pg_waits" in r:
                print("  the loop waited for PostgreSQL %d times, %.1f ms in "
                      "all, the longest %.2f ms" % (r["pg_waits"], r["pg_waited_ms"],
                                                   r["pg_longest_wait_ms"]))
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        print("median: " + ", ".join(
            "%s %s" % (label, fmt % statistics.median(r[key] for r in results))
            for label, key, fmt in FIELDS if all(key in r for r in results)))


if __name__ == "__main__":
    main()
