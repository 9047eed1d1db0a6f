"""Limits a client meets: unauthenticated connections per address,
resources per account, the read rate, the send queue of a peer that does
not read. Each offender gets the right error while others chat on."""

import socket
import time

from harness import bystanders, check, exchange, time_limit
from xmpp import NS, esc


def test_unauthenticated_connections_per_address(ctx):
    srv = ctx.server(options={"c2s_max_unauthenticated_per_ip": 3})
    with bystanders(srv):
        waiting = [srv.client(tls=None) for _ in range(3)]
        extra = srv.client(tls=None, open_stream=False)
        extra.send(extra.stream_header())
        extra.expect_stream_error("policy-violation")
        # logging in frees a place
        a = srv.account("limited")
        waiting[0].starttls()
        waiting[0].auth_scram(a.user, a.password)
        again = srv.client(tls=None)
        check(again.header is not None, "no stream for a freed place")


def test_resources_per_account(ctx):
    srv = ctx.server(options={"max_resources_per_account": 2})
    a = srv.account("many")
    srv.login(a, resource="one")
    srv.login(a, resource="two")
    c = srv.client()
    c.auth_scram(a.user, a.password)
    c.send("<iq type='set' id='b3'><bind xmlns='%s'><resource>three</resource>"
           "</bind></iq>" % NS["bind"])
    c.expect_error("iq", "resource-constraint", type="wait", attrs={"id": "b3"})
    # the same resource again is a replacement, not a new resource
    srv.login(a, resource="two", name="replacement")


@time_limit(60)
def test_read_rate_is_limited_not_dropped(ctx):
    # 4 KiB/s with a 1 s burst: 20 KiB of messages take seconds to arrive,
    # and all of them arrive.
    srv = ctx.server(options={"limits": {"c2s": {"rate": "4kb/s", "burst": "1s"}}})
    a = srv.login("fast")
    b = srv.login("slow")
    body = "x" * 1000
    start = time.monotonic()
    for i in range(20):
        a.send("<message to='%s' type='chat' id='r%d'><body>%s</body></message>"
               % (esc(b.jid), i, body))
    for i in range(20):
        b.expect("message", attrs={"id": "r%d" % i}, timeout=30)
    took = time.monotonic() - start
    check(took >= 2.5, "20 KiB at 4 KiB/s arrived in %.2f s" % took)


@time_limit(90)
def test_peer_that_never_reads_is_dropped_alone(ctx):
    srv = ctx.server(options={"c2s_send_queue_limit": 256 * 1024,
                              "limits": {"c2s": {"rate": "100mb/s"}}})
    stuck = srv.login("stuck")
    stuck.transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sender = srv.login("flooder")
    with bystanders(srv):
        body = "y" * 4000
        # 8 MB of headlines (dropped without a bounce once the reader is
        # gone) towards a reader that stopped reading
        for i in range(2000):
            sender.send("<message to='%s' type='headline'><body>%s</body></message>"
                        % (esc(stuck.jid), body))
        srv.wait_log(r"send queue over", timeout=30)
    # the sender was not punished
    other = srv.login("afterwards")
    exchange(sender, other)
