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

With --perf25 each run is this tree's bench/perf25.py (issue #25's
scenarios: open_1k, open_10k, paced20k_1k, ... full_1k) with --tree A or
B, so the "before" tree needs no perf25.py of its own:

    python3 bench/ab.py --perf25 --a /path/to/before --b . --runs 3 \
        --only open_1k,paced20k_1k -- --duration 15
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


def perf25_measures():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import perf25
    return [(row[0], row[0]) for row in perf25.ROWS]


def run_once(tree, only, extra, perf25=False):
    if perf25:
        here = os.path.dirname(os.path.abspath(__file__))
        cmd = [sys.executable, os.path.join(here, "perf25.py"), "--tree", tree,
               "--only", only, "--no-results"] + extra
        measures = perf25_measures()
    else:
        cmd = [sys.executable, os.path.join(tree, "bench", "run.py"), "--build", "build",
               "--servers", "starling", "--only", only, "--no-results"] + extra
        measures = MEASURES
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("%s: %s failed:\n%s" % (tree, cmd[1], out.stderr[-2000:]))
    found = {}
    for line in out.stdout.splitlines():
        for label, name in measures:
            if not line.startswith(label):
                continue
            if perf25:  # label, value, then the target (which ends in a number)
                m = re.match(r"\s+(-?\d+(?:\.\d+)?)", line[len(label):])
            else:
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
    p.add_argument("--only", default=None,
                   help="scenario keys (chat_fresh,chat_mam; with --perf25 open_1k,paced20k_1k)")
    p.add_argument("--perf25", action="store_true",
                   help="run bench/perf25.py's scenarios instead of run.py's")
    p.add_argument("extra", nargs="*", help="more run.py options (after --)")
    a = p.parse_args()
    if a.only is None:
        a.only = "open_1k,paced20k_1k" if a.perf25 else "chat_fresh,chat_mam"
    trees = {"A": os.path.abspath(a.a), "B": os.path.abspath(a.b)}
    runs = {"A": [], "B": []}
    for i in range(a.runs):
        for side in ("A", "B"):
            r = run_once(trees[side], a.only, a.extra, a.perf25)
            runs[side].append(r)
            print("run %d %s: %s" % (i + 1, side, ", ".join(
                "%s %g" % (k, v) for k, v in sorted(r.items()))), flush=True)
    measures = perf25_measures() if a.perf25 else MEASURES
    names = [n for _, n in measures if any(n in r for r in runs["A"] + runs["B"])]
    width = max([22] + [len(n) for n in names])
    print("\n%-*s %12s %12s %8s" % (width, "median", "A", "B", "B/A"))
    for n in names:
        va = [r[n] for r in runs["A"] if n in r]
        vb = [r[n] for r in runs["B"] if n in r]
        if not va or not vb:
            continue
        ma, mb = statistics.median(va), statistics.median(vb)
        print("%-*s %12.2f %12.2f %8.3f" % (width, n, ma, mb,
                                            mb / ma if ma else float("nan")))
        print("%-*s %s | %s" % (width, "  runs", " ".join("%g" % v for v in va),
                                 " ".join("%g" % v for v in vb)))
    print("\nA = %s\nB = %s" % (trees["A"], trees["B"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
