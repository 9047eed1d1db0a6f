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

Results: a table, appended to bench/HISTORY.md as a dated section (not with
--no-results). Every connection goes to 127.0.0.1; every run is bounded in
time.
"""

import os
import sys

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
    a = run.side_by_side_args(__doc__.split("\n")[0])
    return run.side_by_side(
        a, "component", with_component, bench, table, verdict,
        "Chat through an echo component (XEP-0114)",
        lambda versions: "Servers: %s. %d users, open loop, window %d, %d s; load "
        "generator and its echo component on the same host." % (
            ", ".join(versions), users(a), a.window, a.duration))


if __name__ == "__main__":
    sys.exit(main())
