#!/usr/bin/env python3
"""Chat with workers = 1 against workers = 2 (issue #23): run.py's open
loop chat alternating (1, 2, 1, 2, ...) so that the machine's drift falls
on both, with the load average before each run; prints every run, then
the medians of msgs per server CPU-second (every worker's CPU and the
master's counted) and their ratio.

    /usr/bin/python3 bench/workers.py --runs 5 [--build build] [-- RUN.PY OPTIONS]

Default run.py options: --scale 0.1 --duration 8.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL = "chat open loop: msgs per server CPU-s"
DELIVERED = "chat open loop: delivered msgs/s"


def run_once(build, workers, extra):
    cmd = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--build", build,
           "--servers", "starling", "--only", "chat_open", "--no-results",
           "--workers", str(workers)] + extra
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("run.py failed:\n%s" % out.stderr[-2000:])
    found = {}
    for line in out.stdout.splitlines():
        for label in (LABEL, DELIVERED):
            if line.startswith(label):
                found[label] = float(re.search(r"(-?\d+(?:\.\d+)?)\s*$", line).group(1))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--build", default="build")
    p.add_argument("extra", nargs="*", help="run.py options (after --)")
    a = p.parse_args()
    extra = a.extra or ["--scale", "0.1", "--duration", "8"]
    per = {1: [], 2: []}
    for i in range(a.runs):
        for w in (1, 2):
            with open("/proc/loadavg") as f:
                load = " ".join(f.read().split()[:3])
            r = run_once(a.build, w, extra)
            per[w].append(r.get(LABEL, float("nan")))
            print("run %d workers %d (load %s): %g msgs per server CPU-s, %g delivered/s"
                  % (i + 1, w, load, r.get(LABEL, float("nan")),
                     r.get(DELIVERED, float("nan"))), flush=True)
    m1, m2 = statistics.median(per[1]), statistics.median(per[2])
    print("\nmedian msgs per server CPU-s: workers=1 %.0f, workers=2 %.0f, 2/1 %.3f"
          % (m1, m2, m2 / m1 if m1 else float("nan")))
    print("per pair: " + " ".join("%.2f" % (b / a_) for a_, b in zip(per[1], per[2]) if a_))


if __name__ == "__main__":
    main()
