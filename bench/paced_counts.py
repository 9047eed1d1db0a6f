#!/usr/bin/env python3
"""bench/paced_counts.py - user-space instructions and mallocs per routed
message in paced chat, counted by callgrind: figures that do not depend on
the machine's load (issue #25, paced traffic).

    python3 bench/paced_counts.py [--tree .] [--build build] [--users 300]
                                  [--rate 1500] [--window 8] [--settle 5]
                                  [--keep]

Starling (run.py's config: plain TCP, the minimal modules) runs under
`valgrind --tool=callgrind --instr-atstart=no`; the load generator logs
--users in and sends --rate msgs/s among them; a second into the chat,
instrumentation is switched on for --window seconds. Callgrind slows the
server down many times: keep the rate low enough that it keeps up (p50 of
a few ms), or the batching of a server that fell behind changes what is
counted. Prints instructions per routed message (program total over the
calls of route_from_client), mallocs per message, and the loop's
iterations per message (end-of-iteration calls).

--tree runs another work tree's binaries, lua/ and modules/ (a "before").
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def calls_into(annotated, fn):
    """Calls of fn (a file:function suffix) in callgrind_annotate
    --tree=caller output: the sum of its callers' counts."""
    total, block = 0, []
    for line in annotated.splitlines():
        if not line.strip():
            block = []
            continue
        if re.search(r"\*\s+\S*%s(\s|$)" % re.escape(fn), line):
            for b in block:
                m = re.search(r"\(([\d,]+)x\)", b)
                if m:
                    total += int(m.group(1).replace(",", ""))
            return total
        if re.match(r"\s*[\d,]+ .*<", line):
            block.append(line)
    return total


def calls_into_from(annotated, fn, caller):
    """Calls of fn from callers whose name contains caller."""
    block = []
    for line in annotated.splitlines():
        if not line.strip():
            block = []
            continue
        if re.search(r"\*\s+\S*%s(\s|$)" % re.escape(fn), line):
            return sum(int(re.search(r"\(([\d,]+)x\)", b).group(1).replace(",", ""))
                       for b in block if caller in b and re.search(r"\(([\d,]+)x\)", b))
        if re.match(r"\s*[\d,]+ .*<", line):
            block.append(line)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", default=run.ROOT)
    p.add_argument("--build", default="build")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--rate", type=int, default=1500)
    p.add_argument("--window", type=float, default=8)
    p.add_argument("--settle", type=float, default=5,
                   help="seconds of chat before counting (the Lua heap grows at first)")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    tree = os.path.abspath(a.tree)
    loadgen = os.path.join(run.ROOT, a.build, "loadgen")
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit("needs %s (apt-get install valgrind)" % tool)
    run.raise_nofile()
    work = tempfile.mkdtemp(prefix="starling-counts-")
    os.chmod(work, 0o755)
    out = os.path.join(work, "callgrind.out")
    try:
        cert = run.make_cert(work)
        star = run.Starling(work, cert, a.build)
        star.env = {"STARLING_HOME": tree}
        star.bin = os.path.join(tree, a.build, "starling")
        star.ctl = os.path.join(tree, a.build, "starlingctl")
        star.create_accounts("u", 1, a.users)
        star.launch(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                     "--callgrind-out-file=" + out, star.bin, "-c", star.cfg])
        argv = [loadgen, "chat", "--host", star.host, "--port", str(star.port),
                "--domain", star.domain, "--password", run.PASSWORD, "--mech", star.mech,
                "--server-pid", str(star.pid), "--json", "--users", str(a.users),
                "--rate", str(a.rate), "--duration", str(a.settle + a.window + 4),
                "--scram-cache", os.path.join(star.dir, "scram-keys")]
        lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in lg.stderr:
            if "] chat " in line:
                break
        time.sleep(a.settle)
        subprocess.run(["callgrind_control", "-i", "on", str(star.pid)],
                       capture_output=True, check=True)
        time.sleep(a.window)
        subprocess.run(["callgrind_control", "-i", "off", str(star.pid)],
                       capture_output=True, check=True)
        rest, _ = lg.communicate(timeout=300)
        star.stop()
        res = [ln for ln in rest.splitlines() if ln.startswith("{")]
        annotated = subprocess.run(["callgrind_annotate", "--tree=caller", "--inclusive=yes",
                                    "--threshold=100",
                                    out], capture_output=True, text=True,
                                   check=True).stdout
        m = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", annotated)
        total = int(m.group(1).replace(",", "")) if m else 0
        msgs = calls_into(annotated, "route.c:route_from_client")
        mallocs = calls_into(annotated, "malloc.c:malloc")
        lua_refills = calls_into_from(annotated, "malloc.c:malloc", "lx_alloc.c:")
        iters = calls_into(annotated, "pipeline.c:on_prepare")
        if not msgs:
            sys.exit("no routed message counted (see %s)" % out)
        print("tree %s, %d users, %d msgs/s, %.0f s counted" % (tree, a.users, a.rate,
                                                             a.window))
        if res:
            import json
            r = json.loads(res[-1])
            print("generator: p50 %.2f ms, p99 %.2f ms (under callgrind)" % (
                r.get("latency_p50_ms", 0), r.get("latency_p99_ms", 0)))
        print("routed messages       %d" % msgs)
        print("instructions/message  %.0f" % (total / msgs))
        print("mallocs/message       %.3f (of which Lua's allocator refilling its "
              "lists: %.3f)" % (mallocs / msgs, lua_refills / msgs))
        print("iterations/message    %.3f" % (iters / msgs))
    finally:
        if a.keep:
            print("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
