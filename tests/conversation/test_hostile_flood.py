"""Hostile numbers: ten thousand abandoned connections, running out of
file descriptors, and a stream of large stanzas.

- 10,000 connections opened and abandoned (some say nothing, some open a
  stream and stop, some close at once, a quarter on the direct TLS port),
  from many loopback source addresses so that the per-address limit
  (c2s_max_unauthenticated_per_ip, default 32) is not what stops them:
  the server stays responsive for the bystanders, drops each one at the
  pre-auth timeout, and gives back its descriptors and memory. The per-
  address limit itself refuses the 33rd connection from one address.
- At its file descriptor limit the server must neither spin nor flood its
  log while new connections wait in the listen backlog.
- Large stanzas delivered and read must not accumulate in the server.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hostile"))

from harness import check, exchange, time_limit  # noqa: E402
from xmpp import esc, timeout_value  # noqa: E402
import hostile  # noqa: E402
from hostile import Flood, Guard, STREAM_HEADER, sources  # noqa: E402

PREAUTH = 10


@time_limit(90)
def test_10000_abandoned_connections(ctx):
    # this process and the server (which inherits the limit) each need a
    # descriptor per connection
    soft = hostile.raise_fd_limit(12000)
    n = min(10000, soft - 1500)
    check(n >= 5000, "RLIMIT_NOFILE too low for this test: %d" % soft)
    srv = ctx.server(options={"c2s_timeout": PREAUTH})
    header = STREAM_HEADER.encode()
    flood = Flood()
    ctx.cleanup(flood.close_all)
    conns = []
    with Guard(srv, peak_conns=n, settle=20) as g:
        start = time.monotonic()
        for i, src in enumerate(sources(n, per_address=32)):
            kind = i % 4
            port = srv.tls_port if kind == 3 else srv.port
            conns.append(flood.open(src, port, kind=kind,
                                    data=header if kind == 0 else b"",
                                    close_when_connected=(kind == 2)))
            if i % 500 == 499:
                flood.pump(0)
                g.chat()
        opened = time.monotonic() - start
        # nobody was refused: the addresses are spread out
        flood.pump_until(lambda: all(c.connected or c.refused for c in conns),
                         10)
        check(not any(c.refused for c in conns),
              "%d connections refused" % sum(c.refused for c in conns))
        # the per-address limit: 32 from one address wait, the rest are
        # told policy-violation at once
        extra = [flood.open("127.0.250.1", srv.port, kind="extra")
                 for _ in range(40)]
        flood.pump_until(lambda: sum(c.closed_at is not None
                                     for c in extra) >= 8, 5)
        refused = [c for c in extra if c.closed_at is not None]
        check(len(refused) == 8, "%d of 40 connections from one address "
              "were closed at once, expected 8" % len(refused))
        for c in refused:
            check(b"policy-violation" in c.head,
                  "refused without policy-violation: %r" % c.head[:300])
        # the bystanders are served while the server holds them all
        while time.monotonic() - start < PREAUTH - 2:
            g.chat()
            flood.pump(0.2)
        # every one is dropped at the pre-auth timeout
        flood.pump_until(lambda: len(flood) == 0, PREAUTH + 15)
        still = len(flood)
        check(still == 0, "%d connections still open %.0f s after the first "
              "was opened" % (still, time.monotonic() - start))
        for c in conns + extra:
            if c.kind == 2 or c.closed_at is None or c in refused:
                continue
            lived = c.closed_at - c.opened
            check(PREAUTH - 0.5 <= lived <= PREAUTH + timeout_value(8),
                  "a connection (kind %s) was closed after %.1f s, "
                  "c2s_timeout is %d s" % (c.kind, lived, PREAUTH))
            if c.kind == 0:
                check(b"connection-timeout" in c.head,
                      "no connection-timeout stream error: %r" % c.head[-300:])
        g.chat()
        check(max(g.latencies) < timeout_value(1.0),
              "bystanders slowed down (opened %d connections in %.1f s): "
              "slowest round trip %.3f s" % (n, opened, max(g.latencies)))


@time_limit(60)
def test_out_of_descriptors_the_server_neither_spins_nor_floods_its_log(ctx):
    # With RLIMIT_NOFILE reached, accept() fails with EMFILE while the
    # connection stays in the listen backlog, so the listening socket
    # stays readable: a server that only logs and returns is called again
    # at once, forever (100% CPU, and a log line each time).
    with hostile.fd_limit(64):
        srv = ctx.server(options={"c2s_max_unauthenticated_per_ip": 1000,
                                  "c2s_timeout": 30})
    watch = hostile.ProcWatch(srv.proc.pid)
    b = srv.login("bystander")
    c = srv.login("bystander")
    flood = Flood()
    ctx.cleanup(flood.close_all)
    conns = [flood.open(src, srv.port) for src in sources(100, per_address=20)]
    flood.pump_until(lambda: all(x.connected for x in conns), 5)
    log_before = len(srv.log_text())
    cpu_before = watch.cpu()
    t = time.monotonic()
    exchange(b, c)                       # still served
    while time.monotonic() - t < 2:
        flood.pump(0.1)
    cpu = watch.cpu() - cpu_before
    logged = len(srv.log_text()) - log_before
    check(cpu < timeout_value(0.5), "the server used %.2f s of CPU in 2 s at its "
          "descriptor limit" % cpu)
    check(logged < 64 * 1024, "the server wrote %d bytes of log in 2 s at "
          "its descriptor limit" % logged)
    # once descriptors are free again, the waiting connections are served
    flood.close_all()
    d = srv.login("after")
    exchange(d, b)


@time_limit(90)
def test_large_stanzas_do_not_accumulate(ctx):
    # 600 messages of 250 KB, each delivered and read: the server's memory
    # must not grow with the number of stanzas routed. (Each stanza is
    # handed to Lua as a small userdata over its C arena; the arena is
    # freed when the collector frees the userdata.)
    srv = ctx.server(options={"limits": {"c2s": {"rate": "100mb/s"}}})
    with Guard(srv) as g:
        a = srv.login("big")
        b = srv.login("big")
        body = "x" * 250000
        for i in range(600):
            a.send("<message to='%s' type='chat' id='big%d'><body>%s</body>"
                   "</message>" % (esc(b.jid), i, body))
            b.expect("message", attrs={"id": "big%d" % i})
            if i % 100 == 0:
                g.chat()
        hostile.leave(a)
        hostile.leave(b)
