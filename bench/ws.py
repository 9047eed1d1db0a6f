#!/usr/bin/env python3
"""bench/ws.py - chat over WebSocket (RFC 7395) beside chat over TCP, and
idle memory per WebSocket connection: Starling and Prosody (issue #21).

    python3 bench/ws.py [--build build] [--servers starling,prosody]
                        [--scale 1] [--duration 20] [--window 8] [--rounds 2]
                        [--idle-users 5000] [--no-results]

Each server gets its c2s port and an HTTP port (http_ports, loopback only)
with mod_websocket at /xmpp-websocket (consider_websocket_secure, since
the bench runs without TLS as run.py's plain scenarios do). The load
generator logs 1,000 accounts in (--scale multiplies) and chats open loop
(at most --window unanswered messages per sender), once over TCP and once
over WebSocket (build/loadgen chat --transport ws: the HTTP upgrade, masked
frames, one element per frame, <open/>/<close/>), --rounds times
alternating, each on the same running server. The machine is shared, so
only ratios within one run mean anything: "ws / tcp" is the WebSocket
run's delivered messages per server CPU-second over the TCP run's just
before it; the verdict takes the median of the rounds (target at least 0.8).

Idle memory: the server restarted, --idle-users connections online and
idle over TCP, then again (restarted) over WebSocket; bytes_per_conn is the
server's RSS growth over the connections (VmRSS before and after).

Results: a table, appended to bench/HISTORY.md as a dated section (not with
--no-results). Every connection goes to 127.0.0.1; every run is bounded in
time.
"""

import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: the server classes, loadgen runs)

WS_PATH = "/xmpp-websocket"


def with_websocket(cls):
    """cls whose config also has an HTTP port with mod_websocket."""
    class WithWebSocket(cls):
        def write_config(self, mam=False):
            if not hasattr(self, "http_port"):
                self.http_port = run.free_port(self.host)
            super().write_config(mam=mam)
            with open(self.cfg) as f:
                text = f.read()
            first, _, rest = text.partition("\n")   # the "written by" line
            head = ('http_ports = { %d }\nhttp_interfaces = { "%s" }\nhttps_ports = { }\n'
                    'consider_websocket_secure = true\n' % (self.http_port, self.host))
            rest = rest.replace("modules_enabled = { ", 'modules_enabled = { "websocket", ', 1)
            with open(self.cfg, "w") as f:
                f.write(first + "\n" + head + rest)
    WithWebSocket.__name__ = cls.__name__
    return WithWebSocket


def users(a):
    return max(2, int(1000 * a.scale))


def idle_users(a):
    return max(2, int(a.idle_users * a.scale))


def scenarios(a, srv):
    ws = ["--port", str(srv.http_port), "--transport", "ws", "--ws-path", WS_PATH]
    chat = ["--users", str(users(a)), "--window", str(a.window),
            "--duration", str(a.duration)]
    idle = ["--users", str(idle_users(a)), "--settle", str(a.settle)]
    out = []
    for r in range(1, a.rounds + 1):
        out.append(("chat_tcp_%d" % r, "chat", chat, False))
        out.append(("chat_ws_%d" % r, "chat", chat + ws, False))
    out.append(("idle_tcp", "idle", idle, True))
    out.append(("idle_ws", "idle", idle + ws, True))
    return out


def bench(a, cls, work, cert):
    srv = (cls(work, cert, a.build) if cls.name == "starling" else cls(work, cert))
    res = run.bench_server(a, srv, scenarios(a, srv))
    for r in range(1, a.rounds + 1):
        tcp, ws = res.get("chat_tcp_%d" % r, {}), res.get("chat_ws_%d" % r, {})
        if tcp.get("delivered_per_server_cpu_s") and ws.get("delivered_per_server_cpu_s"):
            ws["ws_over_tcp"] = (ws["delivered_per_server_cpu_s"]
                                 / tcp["delivered_per_server_cpu_s"])
    return srv, res


def rows(a):
    out = []
    for r in range(1, a.rounds + 1):
        for t in ("tcp", "ws"):
            key = "chat_%s_%d" % (t, r)
            out += [
                ("%s: delivered msgs/s" % key, key, "delivered_per_s", "%.0f"),
                ("%s: msgs per server CPU-s" % key, key, "delivered_per_server_cpu_s", "%.0f"),
                ("%s: server CPU (cores)" % key, key, "server_cpu_util", "%.2f"),
                ("%s: latency p99 ms" % key, key, "latency_p99_ms", "%.2f"),
                ("%s: lost" % key, key, "lost", "%.0f"),
            ]
        out.append(("round %d: ws / tcp, msgs per server CPU-s" % r,
                    "chat_ws_%d" % r, "ws_over_tcp", "%.2f"))
    for t in ("tcp", "ws"):
        out += [("idle_%s: online" % t, "idle_" + t, "online", "%.0f"),
                ("idle_%s: server bytes per connection" % t, "idle_" + t,
                 "bytes_per_conn", "%.0f")]
    return out


def table(a, results, names):
    labelled = []
    for label, key, field, fmt in rows(a):
        cells = []
        for x in names:
            r = results[x].get(key, {"error": "no result"})
            v = None if "error" in r else r.get(field)
            cells.append((v, "failed" if "error" in r else
                          ("n/a" if v is None else fmt % v)))
        labelled.append((label, cells))
    return run.compare(names, labelled)


def verdicts(a, results):
    out = []
    for name, res in results.items():
        ratios = [res["chat_ws_%d" % r]["ws_over_tcp"] for r in range(1, a.rounds + 1)
                  if "ws_over_tcp" in res.get("chat_ws_%d" % r, {})]
        if ratios:
            out.append("%s: WebSocket / TCP, msgs per server CPU-s, median of %d "
                       "round(s): %.2f (target at least 0.80)"
                       % (name, len(ratios), statistics.median(ratios)))
        idle = res.get("idle_ws", {}).get("bytes_per_conn")
        if idle:
            out.append("%s: idle memory per WebSocket connection: %.1f KiB "
                       "(over TCP: %s)" % (name, idle / 1024, "%.1f KiB" % (
                           res["idle_tcp"]["bytes_per_conn"] / 1024)
                           if res.get("idle_tcp", {}).get("bytes_per_conn") else "n/a"))
    return out


def main():
    a = run.side_by_side_args(__doc__.split("\n")[0], rounds=(int, 2),
                              idle_users=(int, 5000), settle=(float, 3))
    return run.side_by_side(
        a, "ws", with_websocket, bench,
        lambda results, names: table(a, results, names),
        lambda results: verdicts(a, results),
        "Chat over WebSocket beside TCP, idle WebSocket memory",
        lambda versions: "Servers: %s. Chat: %d users, open loop, window %d, %g s a "
        "run, %d round(s) of TCP then WebSocket on one running server. Idle: %d "
        "connections, each transport on a freshly started server." % (
            ", ".join(versions), users(a), a.window, a.duration, a.rounds,
            idle_users(a)))


if __name__ == "__main__":
    sys.exit(main())
