"""Pubsub and PEP with client libraries we did not write: slixmpp 1.8.3
(its xep_0060, xep_0163 and xep_0084 plugins; slixmpp has no xep_0402, so
Bookmarks 2 goes through its xep_0060 with publish-options and is read
back through its xep_0048 from private storage) and aioxmpp 0.13.3 (its
PubSubClient: create, subscribe, publish with the event, items and
max_items, retract with notify, unsubscribe, delete). Each scenario runs in its own process
(tests/lib/pubsub_agent.py) and reports what the library saw."""

import json
import os
import subprocess
import sys

from harness import check, fixture, time_limit

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "pubsub_agent.py")
SVC = "pubsub.localhost"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco",
                                 "private", "pep", "bookmarks"],
                        components={SVC: "pubsub"})


def play(server, scenario, *prefixes):
    accounts = [server.account(p) for p in prefixes]
    proc = subprocess.run(
        [sys.executable, AGENT, "--scenario", scenario, "--port", str(server.port),
         "--service", SVC, "--accounts",
         json.dumps([[a.jid, a.password] for a in accounts])],
        capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0, "%s failed:\n%s" % (scenario, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1]), accounts


@time_limit(150)
def test_slixmpp_avatar_and_bookmarks_over_pep(server):
    out, _ = play(server, "slixmpp-pep", "slixa", "slixb")
    check(out["subscribed"], "subscribed: %r" % out)
    check(out["avatar_event"] and out["avatar_bytes_ok"], "avatar: %r" % out)
    check(out["bookmark_event"] == "elsinore@conference.localhost", "bookmark event: %r" % out)
    check(out["private_bookmarks"] == ["elsinore@conference.localhost"],
          "XEP-0048 sees it: %r" % out)


@time_limit(150)
def test_slixmpp_pubsub_component(server):
    out, _ = play(server, "slixmpp-pubsub", "slixown", "slixsub")
    check(out["event"] == "i0", "first event: %r" % out)
    check(out["items"] == ["i3", "i2", "i1"], "three kept: %r" % out)
    check(out["max_items"] == "3", "config: %r" % out)
    check(out["retract_event"] and out["after_purge"] == [] and out["delete_event"], repr(out))


@time_limit(150)
def test_aioxmpp_pubsub_component_and_pep(server):
    out, _ = play(server, "aioxmpp-pubsub", "aioown", "aiosub")
    check(out["published_id"] == "first" and out["event"] == "first", repr(out))
    check(out["items"] == [["first", "hello"]], repr(out))
    check(out["subscriptions"] == ["aio"], repr(out))
    check(out["newest_two"] == ["second", "third"], repr(out))
    check(out["retract_event"] == "first", repr(out))
    check(out["after_retract"] == ["second", "third"], repr(out))
    check(out["subscriptions_after"] == [], repr(out))
    check(out["deleted"] is True, repr(out))
    check(out["pep_items"] == [["current", "pep"]], repr(out))
