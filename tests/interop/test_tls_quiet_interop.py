"""slixmpp and aioxmpp after their quiet streams gave the server's OpenSSL
state back (core/net/tls13.c: the server keeps only the TLS 1.3 record
keys): messages both ways, one larger than a TLS record, over STARTTLS
and direct TLS."""

import re
import time

from agents import Agent
from harness import check, fixture, time_limit


@fixture
def server(scope):
    return scope.server(options={"c2s_parser_release_after": 1})


def released(server, jid, timeout=20):
    pattern = re.compile(r"%s/\S+: quiet, TLS state released" % re.escape(jid))
    deadline = time.monotonic() + timeout
    while not pattern.search(server.log_text()):
        check(time.monotonic() < deadline, "%s kept its TLS state" % jid)
        time.sleep(0.1)


def converse(server, direct_tls):
    a, s = server.account("aioq"), server.account("slixq")
    slix = Agent("slixmpp", server, s, resource="slix", direct_tls=direct_tls)
    aio = Agent("aioxmpp", server, a, resource="aio", direct_tls=direct_tls)
    js, ja = slix.ready(), aio.ready()
    released(server, s.jid)
    released(server, a.jid)

    aio.send(js, "hello from a quiet aioxmpp")
    got = slix.wait_message(body="hello from a quiet aioxmpp")
    check(got["from"] == ja, got)

    big = "0123456789" * 5000
    slix.send(ja, big)
    got = aio.wait_message(body=big)
    check(got["from"] == js, "the 50,000-byte body arrived whole")

    aio.send(js, big + "!")
    got = slix.wait_message(body=big + "!")
    check(got["from"] == ja, "the 50,001-byte body arrived whole")


@time_limit(90)
def test_quiet_streams_over_starttls(server):
    converse(server, direct_tls=False)


@time_limit(90)
def test_quiet_streams_over_direct_tls(server):
    converse(server, direct_tls=True)
