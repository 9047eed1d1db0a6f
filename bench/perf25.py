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

and the verdicts (issue #25's "must show"): open_10k / open_1k in msgs per
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

    callgrind = None  # a file to start the server under callgrind into

    def start(self):
        argv = [self.bin, "-c", self.cfg]
        if self.callgrind:
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    "--callgrind-out-file=" + self.callgrind] + argv
        self.launch(argv)


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


def callgrind_switch(server, on):
    out = subprocess.run(["callgrind_control", "-i", "on" if on else "off",
                          str(server.pid)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or "OK" not in out.stdout:
        run.log("  callgrind_control: %s %s" % (out.stdout.strip(), out.stderr.strip()))


def callgrind_counts(path, counted="route_from_client"):
    """The instructions (Ir) a callgrind output file counted, and the
    calls of the function `counted` (once per stanza a client sent: in
    chat, per message)."""
    total, calls, names, cfn = 0, 0, {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = max(total, int(line.split()[1]))
            elif line.startswith("cfn=") or line.startswith("fn="):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("cfn="):
                    cfn = names.get(m.group(1)) if m else None
            elif line.startswith("calls=") and cfn == counted:
                calls += int(line[6:].split()[0])
    return total, calls


def run_profiled(a, key, server, opts):
    """run.run_loadgen, with `perf record -g` of the server through the
    measured part (from the generator's first "chat" progress line, a
    second into it, until its drain begins) when --perf is given, or
    callgrind's instruction counting over the same part (--callgrind)."""
    if not a.perf and not a.callgrind:
        return run.run_loadgen(a, server, "chat", opts)
    os.makedirs(a.perf or a.callgrind, exist_ok=True)
    argv = [a.loadgen, "chat", "--host", server.host, "--port", str(server.port),
            "--domain", server.domain, "--password", run.PASSWORD, "--mech", server.mech,
            "--server-pid", str(server.pid), "-j", str(a.jobs), "--json",
            "--scram-cache", os.path.join(server.dir, "scram-keys")] + opts
    lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    perf = None
    for line in lg.stderr:
        if a.callgrind:
            m = re.search(r"\] (chat|drain) ", line)
            if not m:
                continue
            if perf is None:
                callgrind_switch(server, True)
                perf = 0
            else:
                perf += 1
                if m.group(1) == "drain" or perf >= a.duration - 2:
                    callgrind_switch(server, False)
                    break
            continue
        if perf is None and "] chat " in line:
            perf = subprocess.Popen(["perf", "record", "--call-graph", a.perf_calls,
                                     "-F", "999", "-o",
                                     os.path.join(a.perf, key + ".data"),
                                     "-p", str(server.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif perf is not None and "] drain " in line:
            break
    if perf is not None and not a.callgrind:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    out, _ = lg.communicate(timeout=a.timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lg.returncode != 0 or not lines:
        return {"error": "loadgen exit %d" % lg.returncode}
    return json.loads(lines[-1])


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
    ("open 10k: msgs/s", "open_10k", "delivered_per_s", "%.0f", ""),
    ("open 10k: msgs per server CPU-s", "open_10k", "delivered_per_server_cpu_s", "%.0f", ""),
    ("open 10k / open 1k per server CPU-s", "derived", "open_10k_vs_1k", "%.3f", ">= 0.8"),
    ("paced 20k 1k: msgs/s", "paced20k_1k", "delivered_per_s", "%.0f", ""),
    ("paced 20k 1k: server us/msg", "paced20k_1k", "server_us_per_msg", "%.2f", "<= 15"),
    ("paced 20k 1k: p50 ms", "paced20k_1k", "latency_p50_ms", "%.2f", ""),
    ("paced 20k 1k: p99 ms", "paced20k_1k", "latency_p99_ms", "%.2f", ""),
    ("paced 20k 1k: skipped sends", "paced20k_1k", "sends_skipped", "%.0f", ""),
    ("paced 50k 1k: msgs/s", "paced50k_1k", "delivered_per_s", "%.0f", ""),
    ("paced 50k 1k: server us/msg", "paced50k_1k", "server_us_per_msg", "%.2f", ""),
    ("paced 50k 1k: p50 ms", "paced50k_1k", "latency_p50_ms", "%.2f", ""),
    ("paced 50k 1k: p99 ms", "paced50k_1k", "latency_p99_ms", "%.2f", "<= 10"),
    ("paced 50k 1k: skipped sends", "paced50k_1k", "sends_skipped", "%.0f", ""),
    ("paced 20k 10k: msgs/s", "paced20k_10k", "delivered_per_s", "%.0f", ""),
    ("paced 20k 10k: server us/msg", "paced20k_10k", "server_us_per_msg", "%.2f", ""),
    ("paced 20k 10k: p50 ms", "paced20k_10k", "latency_p50_ms", "%.2f", ""),
    ("paced 20k 10k: p99 ms", "paced20k_10k", "latency_p99_ms", "%.2f", ""),
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
    ("open 1k: instructions/msg (callgrind)", "open_1k", "ir_per_msg", "%.0f", ""),
    ("full set 1k: instructions/msg (callgrind)", "full_1k", "ir_per_msg", "%.0f", ""),
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
                if a.callgrind:
                    os.makedirs(a.callgrind, exist_ok=True)
                    star.callgrind = os.path.join(os.path.abspath(a.callgrind),
                                                  key + ".callgrind")
            try:
                server.start()
            except RuntimeError as e:
                res[key] = {"error": str(e)}
                run.log("  %s: %s" % (key, e))
                continue
            time.sleep(1)
            try:
                r = run_profiled(a, key, server, opts + ["--duration", str(a.duration)])
            finally:
                if not server.alive():
                    r = {"error": "%s died: %s" % (server.name, server.log_tail())}
                server.stop()
            if a.callgrind and "error" not in r:
                ir, msgs = callgrind_counts(server.callgrind)
                r["callgrind_ir"], r["callgrind_msgs"] = ir, msgs
                r["ir_per_msg"] = ir / max(1, msgs)
                run.log("  %s: %d instructions for %d messages routed: %.0f a message"
                        " (%s)" % (key, ir, msgs, r["ir_per_msg"], server.callgrind))
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
    p.add_argument("--callgrind", default=None,
                   help="run the server under callgrind, counting instructions over the "
                   "measured part, into this folder (KEY.callgrind); prints instructions "
                   "per delivered message (a figure the machine's load does not change)")
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
