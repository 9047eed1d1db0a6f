#!/usr/bin/env python3
"""bench/perf25.py - issue #25's CPU figures: many users online, paced chat,
every module on; with the load generator's own floor (bench/nullserver.c).

    python3 bench/perf25.py [--tree .] [--build build] [--duration 20]
                            [--only open_1k,open_10k,...] [--perf DIR]
                            [--no-results]

Scenarios, each on a freshly started Starling (run.py's config: plain TCP,
the minimal module set) unless said:

  open_1k        chat, 1,000 users online, open loop (window 8)
  open_10k       the same with 10,000 users online
  paced20k_1k    chat at 20,000 msgs/s among 1,000 users
  paced50k_1k    chat at 50,000 msgs/s among 1,000 users
  paced20k_10k   chat at 20,000 msgs/s among 10,000 users
  null20k_10k    the same load against build/nullserver (SASL PLAIN):
                 what the generator measures against a server that does
                 nothing but forward bytes
  full_1k        open_1k with example.cfg's modules_enabled (every module
                 an operator gets out of the box; s2s off as in run.py)

Each Starling run also reports its loop iterations over the measured
part, from the server's metrics (`starlingctl metrics`, read every 2 s):
iterations per second, the mean iteration and the longest one
(loop_longest_ms: the "longest in the last 10 s" gauge, read from 10 s
into the run on; loop_longest_ms_bound and loop_p99_ms_bound are bucket
bounds of the histogram).

And the verdicts (issue #25's "must show"): open_10k / open_1k in msgs per
server CPU-second (>= 0.8), server CPU per message at 20k paced (<= 15 us),
p99 at 50k paced (<= 10 ms), p99 at 20k among 10,000 minus the null
server's (<= 10 ms), full_1k / open_1k (>= 0.6). It prints a table (the
lines bench/ab.py reads) and appends it with the raw JSON to
bench/RESULTS.md unless --no-results.

--tree runs another work tree's binaries, lua/ and modules/ with this
script (bench/ab.py --perf25 uses it for the "before" side). --perf DIR
records `perf record -g` of the server through each scenario's measured
part into DIR/KEY.data.
"""

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (run.py: servers, loadgen runner, machine info)

ROOT = run.ROOT

# key: (server kind, loadgen options)
SCENARIOS = [
    ("open_1k", "minimal", ["--users", "1000", "--window", "8"]),
    ("open_10k", "minimal", ["--users", "10000", "--window", "8"]),
    ("paced20k_1k", "minimal", ["--users", "1000", "--rate", "20000"]),
    ("paced50k_1k", "minimal", ["--users", "1000", "--rate", "50000"]),
    ("paced20k_10k", "minimal", ["--users", "10000", "--rate", "20000"]),
    ("null20k_10k", "null", ["--users", "10000", "--rate", "20000"]),
    ("full_1k", "full", ["--users", "1000", "--window", "8"]),
]


def example_modules(tree):
    """The modules example.cfg enables (its modules_enabled block, comments
    left out)."""
    with open(os.path.join(tree, "example.cfg")) as f:
        text = f.read()
    m = re.search(r"^modules_enabled\s*=\s*\{(.*?)^\}", text, re.S | re.M)
    if not m:
        raise RuntimeError("no modules_enabled block in example.cfg")
    names = []
    for line in m.group(1).splitlines():
        line = line.split("--", 1)[0]
        names += re.findall(r'"([A-Za-z0-9_]+)"', line)
    return names


class Tree(run.Starling):
    """Starling from a given work tree (binaries, lua/, modules/), with the
    minimal module set or example.cfg's."""

    def __init__(self, work, cert, tree, build):
        self.tree = tree
        self.env = {"STARLING_HOME": tree}
        self.modules = None
        super().__init__(work, cert, build)
        self.bin = os.path.join(tree, build, "starling")
        self.ctl = os.path.join(tree, build, "starlingctl")
        self.version = "git " + (self.rev() or "?")

    def rev(self):
        out = subprocess.run(["git", "-C", self.tree, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()


class Null(run.Server):
    """build/nullserver: canned login, messages forwarded as bytes."""
    name = "nullserver"
    mech = "PLAIN"
    per_user_salt = False

    def __init__(self, work, cert, tree, build):
        super().__init__(work, cert)
        self.bin = os.path.join(tree, build, "nullserver")
        self.version = "bench/nullserver.c"

    def start(self):
        self.launch([self.bin, "--host", self.host, "--port", str(self.port),
                     "--domain", self.domain])


def loop_metrics(server):
    """starlingctl metrics' loop samples ({"seconds_count": n, ...,
    'longest_seconds{window="10s"}': s}), with the time they were read;
    None for a server without them (the null server, an older tree)."""
    if not isinstance(server, run.Starling):
        return None
    try:
        out = subprocess.run([server.ctl, "-c", server.cfg, "metrics"], capture_output=True,
                             text=True, timeout=30, env=server.ctl_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    d = {}
    for line in out.stdout.splitlines():
        m = re.match(r"starling_loop_iteration_(\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            d[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    if not d:
        return None
    d["at"] = time.monotonic()
    return d


def loop_window(polls):
    """The loop's iterations between the first and the last poll: how
    many per second, the mean, the p99 (a bucket's bound) and the longest.
    The longest is exact (the 10 s gauge read every 2 s, from 10 s into
    the window on) when the window is long enough, else the bound of the
    highest bucket that got an iteration."""
    polls = [p for p in polls if p]
    if len(polls) < 2:
        return {}
    first, last = polls[0], polls[-1]
    n = last["seconds_count"] - first["seconds_count"]
    if n <= 0:
        return {}
    les = sorted((float(k[len('seconds_bucket{le="'):-2]), k) for k in last
                 if k.startswith("seconds_bucket"))
    r = {"loop_iterations_per_s": n / (last["at"] - first["at"]),
         "loop_mean_ms": (last["seconds_sum"] - first["seconds_sum"]) * 1e3 / n}
    for le, k in les:
        got = last[k] - first.get(k, 0)
        if "loop_p99_ms_bound" not in r and got >= 0.99 * n:
            r["loop_p99_ms_bound"] = le * 1e3
        if got >= n:
            r["loop_longest_ms_bound"] = le * 1e3
            break
    late = [p['longest_seconds{window="10s"}'] for p in polls[1:]
            if p["at"] - first["at"] >= 10 and 'longest_seconds{window="10s"}' in p]
    if late:
        r["loop_longest_ms"] = max(late) * 1e3
    return r


def run_measured(a, key, server, opts):
    """run.run_loadgen, reading the server's loop metrics every 2 s from
    the generator's first "chat" progress line (a second into the
    measured part) to its end; with `perf record -g` of the server from
    that line until the drain begins when --perf is given."""
    argv = [a.loadgen, "chat", "--host", server.host, "--port", str(server.port),
            "--domain", server.domain, "--password", run.PASSWORD, "--mech", server.mech,
            "--server-pid", str(server.pid), "-j", str(a.jobs), "--json",
            "--scram-cache", os.path.join(server.dir, "scram-keys")] + opts
    run.log("  $ loadgen chat %s" % " ".join(opts))
    lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    perf, polls, polled = None, [], 0.0
    if a.perf:
        os.makedirs(a.perf, exist_ok=True)
    for line in lg.stderr:
        if "] chat " in line:
            if time.monotonic() - polled >= 2:
                polls.append(loop_metrics(server))
                polled = time.monotonic()
            if a.perf and perf is None:
                perf = subprocess.Popen(["perf", "record", "--call-graph", a.perf_calls,
                                         "-F", "999", "-o",
                                         os.path.join(a.perf, key + ".data"),
                                         "-p", str(server.pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif perf is not None and "] drain " in line:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            perf = None
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    out, _ = lg.communicate(timeout=a.timeout)
    polls.append(loop_metrics(server))
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lg.returncode != 0 or not lines:
        return {"error": "loadgen exit %d" % lg.returncode}
    r = json.loads(lines[-1])
    r.update(loop_window(polls))
    return r


def derive(res):
    """The issue's figures from the runs' JSON."""
    d = {}

    def get(key, field):
        r = res.get(key) or {}
        return None if "error" in r else r.get(field)

    for key in res:
        cpu, got = get(key, "server_cpu_s"), get(key, "received")
        if cpu is not None and got:
            res[key]["server_us_per_msg"] = cpu * 1e6 / got
    a, b = get("open_1k", "delivered_per_server_cpu_s"), get("open_10k",
                                                              "delivered_per_server_cpu_s")
    if a and b:
        d["open_10k_vs_1k"] = b / a
    f = get("full_1k", "delivered_per_server_cpu_s")
    if a and f:
        d["full_vs_minimal"] = f / a
    p, n = get("paced20k_10k", "latency_p99_ms"), get("null20k_10k", "latency_p99_ms")
    if p is not None and n is not None:
        d["paced20k_10k_p99_over_null_ms"] = p - n
    return d


# (label, key, field, format, target text); bench/ab.py reads these labels
ROWS = [
    ("open 1k: msgs/s", "open_1k", "delivered_per_s", "%.0f", ""),
    ("open 1k: msgs per server CPU-s", "open_1k", "delivered_per_server_cpu_s", "%.0f", ""),
    ("open 1k: server us/msg", "open_1k", "server_us_per_msg", "%.2f", ""),
    ("open 1k: p99 ms", "open_1k", "latency_p99_ms", "%.2f", ""),
    ("open 1k: longest iteration ms", "open_1k", "loop_longest_ms", "%.1f", ""),
    ("open 10k: msgs/s", "open_10k", "delivered_per_s", "%.0f", ""),
    ("open 10k: msgs per server CPU-s", "open_10k", "delivered_per_server_cpu_s", "%.0f", ""),
    ("open 10k / open 1k per server CPU-s", "derived", "open_10k_vs_1k", "%.3f", ">= 0.8"),
    ("paced 20k 1k: msgs/s", "paced20k_1k", "delivered_per_s", "%.0f", ""),
    ("paced 20k 1k: server us/msg", "paced20k_1k", "server_us_per_msg", "%.2f", "<= 15"),
    ("paced 20k 1k: p50 ms", "paced20k_1k", "latency_p50_ms", "%.2f", ""),
    ("paced 20k 1k: p99 ms", "paced20k_1k", "latency_p99_ms", "%.2f", ""),
    ("paced 20k 1k: skipped sends", "paced20k_1k", "sends_skipped", "%.0f", ""),
    ("paced 20k 1k: loop iterations/s", "paced20k_1k", "loop_iterations_per_s", "%.0f", ""),
    ("paced 20k 1k: mean iteration ms", "paced20k_1k", "loop_mean_ms", "%.3f", ""),
    ("paced 20k 1k: longest iteration ms", "paced20k_1k", "loop_longest_ms", "%.1f", ""),
    ("paced 50k 1k: msgs/s", "paced50k_1k", "delivered_per_s", "%.0f", ""),
    ("paced 50k 1k: server us/msg", "paced50k_1k", "server_us_per_msg", "%.2f", ""),
    ("paced 50k 1k: p50 ms", "paced50k_1k", "latency_p50_ms", "%.2f", ""),
    ("paced 50k 1k: p99 ms", "paced50k_1k", "latency_p99_ms", "%.2f", "<= 10"),
    ("paced 50k 1k: skipped sends", "paced50k_1k", "sends_skipped", "%.0f", ""),
    ("paced 50k 1k: loop iterations/s", "paced50k_1k", "loop_iterations_per_s", "%.0f", ""),
    ("paced 50k 1k: mean iteration ms", "paced50k_1k", "loop_mean_ms", "%.3f", ""),
    ("paced 50k 1k: longest iteration ms", "paced50k_1k", "loop_longest_ms", "%.1f", ""),
    ("paced 20k 10k: msgs/s", "paced20k_10k", "delivered_per_s", "%.0f", ""),
    ("paced 20k 10k: server us/msg", "paced20k_10k", "server_us_per_msg", "%.2f", ""),
    ("paced 20k 10k: p50 ms", "paced20k_10k", "latency_p50_ms", "%.2f", ""),
    ("paced 20k 10k: p99 ms", "paced20k_10k", "latency_p99_ms", "%.2f", ""),
    ("paced 20k 10k: loop iterations/s", "paced20k_10k", "loop_iterations_per_s", "%.0f", ""),
    ("paced 20k 10k: mean iteration ms", "paced20k_10k", "loop_mean_ms", "%.3f", ""),
    ("paced 20k 10k: longest iteration ms", "paced20k_10k", "loop_longest_ms", "%.1f", ""),
    ("null 20k 10k: msgs/s", "null20k_10k", "delivered_per_s", "%.0f", ""),
    ("null 20k 10k: p50 ms", "null20k_10k", "latency_p50_ms", "%.2f", ""),
    ("null 20k 10k: p99 ms", "null20k_10k", "latency_p99_ms", "%.2f", ""),
    ("paced 20k 10k p99 - null p99 ms", "derived", "paced20k_10k_p99_over_null_ms", "%.2f",
     "<= 10"),
    ("full set 1k: msgs/s", "full_1k", "delivered_per_s", "%.0f", ""),
    ("full set 1k: msgs per server CPU-s", "full_1k", "delivered_per_server_cpu_s", "%.0f",
     ""),
    ("full set 1k: server us/msg", "full_1k", "server_us_per_msg", "%.2f", ""),
    ("full set / minimal per server CPU-s", "derived", "full_vs_minimal", "%.3f", ">= 0.6"),
]


def table(res, derived):
    rows = []
    for label, key, field, fmt, target in ROWS:
        r = derived if key == "derived" else res.get(key)
        if r is None:
            continue
        if "error" in r:
            rows.append((label, "failed", target))
            continue
        v = r.get(field)
        if v is not None:
            rows.append((label, fmt % v, target))
    return rows


def bench(a, keys):
    work = tempfile.mkdtemp(prefix="starling-perf25-")
    os.chmod(work, 0o755)
    res = {}
    try:
        cert = run.make_cert(work)
        star = Tree(work, cert, a.tree, a.build)
        users = max(int(o[o.index("--users") + 1]) for k, kind, o in SCENARIOS
                    if k in keys and kind != "null")
        if any(kind != "null" for k, kind, _ in SCENARIOS if k in keys):
            t = time.monotonic()
            star.create_accounts("u", 1, users)
            star.start()
            run.log("accounts u1..u%d in %.1f s; SCRAM warm-up" % (users,
                                                                 time.monotonic() - t))
            run.run_loadgen(a, star, "login", ["--users", str(users), "--no-session",
                                               "--concurrency", "100"],
                            jobs=os.cpu_count() or 1)
            star.stop()
        full = example_modules(a.tree)
        for key, kind, opts in SCENARIOS:
            if key not in keys:
                continue
            server = star
            if kind == "null":
                server = Null(work, cert, ROOT, a.build)
            else:
                star.modules = full if kind == "full" else None
                star.write_config()
            try:
                server.start()
            except RuntimeError as e:
                res[key] = {"error": str(e)}
                continue
            time.sleep(1)
            try:
                r = run_measured(a, key, server, opts + ["--duration", str(a.duration)])
            finally:
                if not server.alive():
                    r = {"error": "%s died: %s" % (server.name, server.log_tail())}
                server.stop()
            r["loadavg"] = "%.2f %.2f %.2f" % os.getloadavg()
            res[key] = r
            run.log("  %s: %s" % (key, " ".join(
                "%s=%s" % (f, r.get(f)) for f in ("delivered_per_s",
                                                  "delivered_per_server_cpu_s",
                                                  "latency_p50_ms", "latency_p99_ms",
                                                  "sends_skipped", "error") if f in r)))
    finally:
        if a.keep:
            run.log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", default=ROOT, help="the work tree whose Starling runs")
    p.add_argument("--build", default="build")
    p.add_argument("--loadgen", default=None, help="default: this tree's BUILD/loadgen")
    p.add_argument("--duration", type=float, default=20, help="seconds per run")
    p.add_argument("--jobs", type=int, default=1, help="load generator threads")
    p.add_argument("--only", default="", help="comma separated scenario keys")
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--perf", default=None, help="perf record each run into this folder")
    p.add_argument("--perf-calls", default="fp",
                   help="perf's --call-graph: fp, or dwarf (libc and Lua have no frame "
                   "pointers; dwarf sees through them, with bigger files)")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    p.add_argument("--no-results", action="store_true")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    a.tree = os.path.abspath(a.tree)
    a.loadgen = a.loadgen or os.path.join(ROOT, a.build, "loadgen")
    for b in (a.loadgen, os.path.join(ROOT, a.build, "nullserver")):
        if not os.access(b, os.X_OK):
            sys.exit("no %s: make %s/loadgen %s/nullserver" % (b, a.build, a.build))
    run.raise_nofile()
    mach = run.machine()
    keys = a.only.split(",") if a.only else [k for k, _, _ in SCENARIOS]
    res = bench(a, keys)
    derived = derive(res)
    rows = table(res, derived)
    width = max(len(r[0]) for r in rows) if rows else 10
    print()
    for label, val, target in rows:
        print("%-*s %12s  %s" % (width, label, val, target))
    if not a.no_results:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = ["", "## Issue #25 figures, %s" % now, "",
                 "Command: `%s`" % " ".join(["python3", "bench/perf25.py"] + sys.argv[1:]),
                 "", "Machine: %s CPUs (%s), load average %s at the start." % (
                     mach["nproc"], mach["cpu"], mach["loadavg"]), "",
                 "| figure | value | target |", "|---|---:|---|"]
        lines += ["| %s | %s | %s |" % r for r in rows]
        lines += ["", "<details><summary>raw results (JSON)</summary>", "", "```json",
                  json.dumps(res, indent=1, sort_keys=True), "```", "</details>", ""]
        with open(a.results, "a") as f:
            f.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
