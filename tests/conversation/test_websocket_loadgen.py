"""Many clients over WebSocket at once: build/loadgen's RFC 7395 client
(bench/loadgen/ws.c, the one bench/ws.py measures with) logs 40 accounts
in over ws:// and over wss:// and chats at a fixed rate; every message
arrives, no connection fails, and a TCP client chats alongside."""

import json
import os
import subprocess

from harness import check, exchange, fixture
from server import free_port
from wsclient import wait_for_port
from xmpp import timeout_value

MODULES = ["roster", "presence", "message", "iq", "websocket"]
USERS = 40


@fixture
def server(scope):
    http, https = free_port(), free_port()
    srv = scope.server(modules=MODULES, options={
        "http_ports": [http], "https_ports": [https],
        "consider_websocket_secure": True,
    })
    srv.http_port, srv.https_port = http, https
    wait_for_port(http)
    wait_for_port(https)
    for i in range(1, USERS + 1):
        srv.register("u%d" % i, "p")
    return srv


def loadgen_chat(srv, port, tls):
    binary = os.path.join(srv.build_dir, "loadgen")
    check(os.access(binary, os.X_OK), "no %s (make %s)" % (binary, binary))
    proc = subprocess.run(
        [binary, "chat", "--port", str(port), "--transport", "ws",
         "--ws-path", "/xmpp-websocket", "--tls", tls, "--users", str(USERS),
         "--rate", "400", "--duration", "2", "--drain", "5", "--timeout", "30",
         "--json", "--quiet"],
        capture_output=True, text=True, timeout=timeout_value(120))
    check(proc.returncode == 0, "loadgen exited %d: %s" % (proc.returncode, proc.stderr))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print("loadgen chat over %s: online %s, sent %s, received %s, lost %s"
          % ("wss" if tls == "direct" else "ws", report["online"], report["sent"],
             report["received"], report["lost"]))
    errors = {k: v for k, v in report.items() if k.startswith("err_") and v}
    check(not errors, "connections failed: %r %s" % (errors, report.get("first_error", "")))
    check(report["transport"] == "ws", "not over WebSocket: %r" % report)
    check(report["online"] == USERS, "online %s of %d" % (report["online"], USERS))
    check(report["sent"] > 0 and report["lost"] == 0 and report["received"] == report["sent"],
          "messages lost: %r" % report)
    check(report["errors_received"] == 0, "error bounces: %r" % report)


def test_forty_websocket_clients_chat_and_nothing_is_lost(server):
    loadgen_chat(server, server.http_port, "none")
    a, b = server.login(server.account()), server.login(server.account())
    exchange(a, b)


def test_forty_secure_websocket_clients_chat(server):
    loadgen_chat(server, server.https_port, "direct")
