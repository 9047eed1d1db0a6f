#!/usr/bin/env python3
"""Two builds of Starling side by side: run.py's scenarios on each tree in
turn, alternating (A, B, A, B, ...) so that the machine's drift falls on
both, and the median of each measure.

    python3 bench/ab.py --a /path/to/before --b . --runs 5 \
        --only chat_fresh,chat_mam,idle_plain

--a and --b are work trees, each built (make all build/loadgen); each run
uses that tree's own bench/run.py, binaries, lua/ and modules/. Every run's
figures are printed as they come, then a table of medians with B's change
against A.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

# run.py's table rows worth comparing (label prefix -> short name)
MEASURES = [
    ("chat open loop, restarted server: msgs/s", "chat msgs/s"),
    ("chat open loop, restarted server: per server CPU-s", "chat msgs/CPU-s"),
    ("chat smacks+mam: delivered msgs/s", "mam msgs/s"),
    ("chat smacks+mam: msgs per server CPU-s", "mam msgs/CPU-s"),
    ("chat smacks+mam: latency p99 ms", "mam p99 ms"),
    ("chat smacks+mam / restarted open loop: msgs/s", "mam/plain msgs/s"),
    ("idle plain: server bytes/conn", "idle bytes/conn"),
    ("idle plain, 5 s after the last login: server bytes/conn", "idle bytes/conn"),
    ("idle TLS: server bytes/conn", "idle TLS bytes/conn"),
    ("idle STARTTLS: server bytes/conn", "idle TLS bytes/conn"),
    ("idle direct TLS: server bytes/conn", "idle direct TLS bytes/conn"),
]


def run_once(tree, only, extra):
    cmd = [sys.executable, os.path.join(tree, "bench", "run.py"), "--build", "build",
           "--servers", "starling", "--only", only, "--no-results"] + extra
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("%s: run.py failed:\n%s" % (tree, out.stderr[-2000:]))
    found = {}
    for line in out.stdout.splitlines():
        for label, name in MEASURES:
            if line.startswith(label):
                m = re.search(r"(-?\d+(?:\.\d+)?)\s*$", line)
                if m:
                    found[name] = float(m.group(1))
    for line in out.stdout.splitlines():
        if line.startswith("note:"):
            print("  " + line, flush=True)
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="work tree A (before)")
    p.add_argument("--b", required=True, help="work tree B (after)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", default="chat_fresh,chat_mam")
    p.add_argument("extra", nargs="*", help="more run.py options (after --)")
    a = p.parse_args()
    trees = {"A": os.path.abspath(a.a), "B": os.path.abspath(a.b)}
    runs = {"A": [], "B": []}
    for i in range(a.runs):
        for side in ("A", "B"):
            r = run_once(trees[side], a.only, a.extra)
            runs[side].append(r)
            print("run %d %s: %s" % (i + 1, side, ", ".join(
                "%s %g" % (k, v) for k, v in sorted(r.items()))), flush=True)
    names = [n for _, n in MEASURES if any(n in r for r in runs["A"] + runs["B"])]
    print("\n%-22s %12s %12s %8s" % ("median", "A", "B", "B/A"))
    for n in names:
        va = [r[n] for r in runs["A"] if n in r]
        vb = [r[n] for r in runs["B"] if n in r]
        if not va or not vb:
            continue
        ma, mb = statistics.median(va), statistics.median(vb)
        print("%-22s %12.2f %12.2f %8.3f" % (n, ma, mb, mb / ma if ma else float("nan")))
        print("%-22s %s | %s" % ("  runs", " ".join("%g" % v for v in va),
                                 " ".join("%g" % v for v in vb)))
    print("\nA = %s\nB = %s" % (trees["A"], trees["B"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
