#!/usr/bin/env python3
"""bench/component.py - chat with an external component (XEP-0114) that
echoes: Starling and Prosody side by side, in the same run (issue #19).

    python3 bench/component.py [--build build] [--servers starling,prosody]
                               [--scale 0.1] [--duration 20] [--window 8]
                               [--no-results]

Each server gets a Component "echo.localhost" with component_secret on a
component port of its own (component_ports, loopback only), beside its
VirtualHost "localhost" with 1,000 accounts (--scale multiplies). The load
generator (build/loadgen chat --component ...) connects the echo
component itself (bench/loadgen/component.c: one XEP-0114 stream on a
thread of its own) and logs every account in; each account sends chat
messages to u<N>@echo.localhost, its contact at the component, which sends
each one back with 'from' and 'to' swapped. Open loop, at most --window
unanswered messages per sender. A delivered message is one that came back:
two stanzas routed by the server (user to component, component to user).

Server CPU is the server's utime + stime (/proc/PID/stat) over the
measured part; "msgs per server CPU-second" is delivered / that. The
load generator's own CPU (and the component's) is not in it.

Results: a table, appended to bench/RESULTS.md as a dated section (not with
--no-results). Every connection goes to 127.0.0.1; every run is bounded in
time.
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: the server classes, loadgen runs)

COMPONENT = "echo.localhost"
SECRET = "bench-echo-secret"


def component_lines(port):
    return ('component_ports = { %d }\ncomponent_interfaces = { "127.0.0.1" }\n' % port,
            'Component "%s"\n    component_secret = "%s"\n' % (COMPONENT, SECRET))


def with_component(cls):
    """cls whose config also has the echo Component and a component port."""
    class WithComponent(cls):
        def write_config(self, mam=False):
            if not hasattr(self, "component_port"):
                self.component_port = run.free_port(self.host)
            super().write_config(mam=mam)
            head, tail = component_lines(self.component_port)
            with open(self.cfg) as f:
                text = f.read()
            first, _, rest = text.partition("\n")   # the "written by" line
            with open(self.cfg, "w") as f:
                f.write(first + "\n" + head + rest + "\n" + tail)
    WithComponent.__name__ = cls.__name__
    return WithComponent


def users(a):
    return max(2, int(1000 * a.scale))


def bench(a, cls, work, cert):
    srv = (cls(work, cert, a.build) if cls.name == "starling" else cls(work, cert))
    opts = ["--users", str(users(a)), "--window", str(a.window),
            "--duration", str(a.duration), "--component", COMPONENT,
            "--component-port", str(srv.component_port),
            "--component-secret", SECRET]
    res = run.bench_server(a, srv, [("component_echo", "chat", opts, False)])
    return srv, res.get("component_echo", {"error": "no result"})


ROWS = [
    ("echo via component: delivered msgs/s", "delivered_per_s", "%.0f"),
    ("echo via component: msgs per server CPU-s", "delivered_per_server_cpu_s", "%.0f"),
    ("echo via component: server CPU (cores)", "server_cpu_util", "%.2f"),
    ("echo via component: latency p50 ms", "latency_p50_ms", "%.2f"),
    ("echo via component: latency p99 ms", "latency_p99_ms", "%.2f"),
    ("echo via component: echoed by the component", "component_echoed", "%.0f"),
    ("echo via component: lost", "lost", "%.0f"),
]


def table(results, names):
    labelled = []
    for label, field, fmt in ROWS:
        cells = []
        for x in names:
            r = results[x]
            v = None if "error" in r else r.get(field)
            cells.append((v, "failed" if "error" in r else
                          ("n/a" if v is None else fmt % v)))
        labelled.append((label, cells))
    return run.compare(names, labelled)


def verdict(results):
    mine = results.get("starling", {}).get("delivered_per_server_cpu_s")
    theirs = results.get("prosody", {}).get("delivered_per_server_cpu_s")
    if mine and theirs:
        return ["Starling / Prosody, msgs per server CPU-s through the echo "
                "component: %.0f / %.0f = %.1f (target at least 10)"
                % (mine, theirs, mine / theirs)]
    return []


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--loadgen", default=None, help="default: BUILD/loadgen")
    p.add_argument("--servers", default="starling,prosody")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--no-results", action="store_true")
    a = p.parse_args()
    a.loadgen = a.loadgen or os.path.join(run.ROOT, a.build, "loadgen")
    if not os.access(a.loadgen, os.X_OK):
        sys.exit("no %s: run make %s/loadgen" % (a.loadgen, a.build))
    run.raise_nofile()
    mach = run.machine()
    work = tempfile.mkdtemp(prefix="starling-compbench-")
    os.chmod(work, 0o755)
    results, versions, notes = {}, [], []
    try:
        cert = run.make_cert(work)
        for name in a.servers.split(","):
            base = run.SERVER_CLASSES.get(name)
            if base is None or not base.available(a.build):
                notes.append("%s: not installed or not built; skipped" % name)
                continue
            run.log(name)
            srv, r = bench(a, with_component(base), work, cert)
            results[name] = r
            versions.append("%s (%s)" % (name, srv.version))
            notes.extend(srv.crashes)
            if "error" in r:
                notes.append("%s: %s" % (name, r["error"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not results:
        print("nothing benchmarked: " + "; ".join(notes))
        return 1
    names = list(results)
    head, rows = table(results, names)
    verdicts = verdict(results)
    print(run.plain(head, rows))
    for v in verdicts + ["note: " + n for n in notes]:
        print(v)
    if not a.no_results:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = ["", "## Chat through an echo component (XEP-0114), %s" % now, "",
                 "Command: `%s`" % " ".join(["python3", "bench/component.py"] + sys.argv[1:]),
                 "", "Machine: %s CPUs (%s), %s memory, Linux %s; load average %s at "
                 "the start, %.2f %.2f %.2f at the end." % (
                     mach["nproc"], mach["cpu"], mach["memory"], mach["kernel"],
                     mach["loadavg"], *os.getloadavg()),
                 "Servers: %s. %d users, open loop, window %d, %d s; load generator "
                 "and its echo component on the same host." % (
                     ", ".join(versions), users(a), a.window, a.duration), "",
                 run.markdown(head, rows), ""]
        lines += ["- " + v for v in verdicts] + [""]
        if notes:
            lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
        lines += ["<details><summary>raw results (JSON)</summary>", "", "```json",
                  json.dumps(results, indent=1, sort_keys=True), "```", "</details>", ""]
        with open(a.results, "a") as f:
            f.write("\n".join(lines))
        print("\nappended to " + os.path.relpath(a.results, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
