"""Closing streams and stopping the server: a client's </stream:stream> is
answered with </stream:stream> and a close; SIGTERM and SIGINT end every
stream with <system-shutdown/> and the process exits 0."""

import signal

from harness import check, exchange, fixture
from xmpp import ConnectionClosed


@fixture
def server(scope):
    return scope.server()


def test_clean_close_after_login(server):
    a = server.login("closer")
    b = server.login("watcher")
    exchange(a, b)
    a.end_stream()
    a.expect_closed()
    exchange(b, b)                      # the server goes on


def test_clean_close_before_tls(server):
    c = server.client(tls=None)
    c.end_stream()
    c.expect_closed()


def test_clean_close_after_tls_before_auth(server):
    c = server.client()
    c.end_stream()
    c.expect_closed()


def test_dropped_connection_does_not_hurt_others(server):
    a = server.login("dropper", presence=0)
    b = server.login("watcher", presence=0)
    exchange(a, b)
    a.close()                           # TCP close without </stream:stream>
    exchange(b, b)
    c = server.login(a.account, presence=0)
    exchange(b, c)


def _shutdown(ctx, signum):
    srv = ctx.server()
    a = srv.login("online", presence=0)
    b = srv.login("online", presence=0)
    exchange(a, b)
    pre_tls = srv.client(tls=None)
    pre_auth = srv.client()
    srv.send_signal(signum)
    for c in (a, b, pre_tls, pre_auth):
        c.expect_stream_error("system-shutdown", timeout=10)
    code = srv.wait_exit(10)
    check(code == 0, "server exit code after %s: %r"
          % (signal.Signals(signum).name, code))
    try:
        srv.client(tls=None)
    except (ConnectionRefusedError, ConnectionClosed, OSError):
        pass
    else:
        raise AssertionError("server still accepts connections after exiting")


def test_sigterm_closes_every_stream_with_system_shutdown(ctx):
    _shutdown(ctx, signal.SIGTERM)


def test_sigint_closes_every_stream_with_system_shutdown(ctx):
    _shutdown(ctx, signal.SIGINT)
