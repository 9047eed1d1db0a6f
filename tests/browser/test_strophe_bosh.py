"""strophe.js (npm) over BOSH in Debian's chromium (#21): a page served
from 127.0.0.1 (tests/browser/strophe_bosh.js; every request off loopback
refused) logs in at /http-bind from its own origin (CORS,
cross_domain_bosh), chats with a slixmpp user both ways, and is reloaded
(page.reload()). strophe.js, made with keepalive: true, kept the
session's sid and rid in sessionStorage; the reloaded page restore()s them
and is the same session again, with no new login: the message the slixmpp
user sent while no page was there reaches it, and it sends one more.

Kept: BUILD/artifacts/browser/strophe_bosh/console.log (the page's console
and every BOSH request and answer) and page.png (failure.png when it
fails)."""

from agents import Agent
from browser import Page, artifacts, need_browser
from harness import check, fixture, time_limit
from server import free_port
from wsclient import wait_for_port


@fixture
def server(scope):
    http, site = free_port(), free_port()
    srv = scope.server(
        modules=["roster", "presence", "message", "iq", "offline", "disco",
                 "ping", "bosh"],
        options={"http_ports": [http], "https_ports": [],
                 "consider_bosh_secure": True,
                 "cross_domain_bosh": ["http://127.0.0.1:%d" % site],
                 "bosh_max_inactivity": 60})
    srv.http_port, srv.site_port = http, site
    wait_for_port(http)
    return srv


def logins(server):
    return server.log_text().count("authenticated as ")


@time_limit(90)
def test_strophe_chats_over_bosh_and_survives_a_page_reload(ctx, server):
    need_browser()
    web, slix = server.account("strophe"), server.account("slixbosh")
    peer = Agent("slixmpp", server, slix, resource="desk")
    peer_jid = peer.ready()
    kept = artifacts(server.build_dir, "strophe_bosh")
    page = Page(ctx, "strophe_bosh.js",
                ["http://127.0.0.1:%d/http-bind" % server.http_port,
                 web.jid, web.password, peer_jid, kept, str(server.site_port)],
                kept)
    how, bound, sid = page.said("ONLINE", timeout=45).split(" ")
    check(how == "login" and bound.startswith(web.jid + "/"),
          "the page logged in as %r (%s)" % (bound, how))

    peer.send(web.jid, "hello, strophe.js")
    page.tell("EXPECT hello, strophe.js")
    check(page.said("GOT") == peer_jid + " hello, strophe.js", "message in the page")
    page.tell("SEND hello, slixmpp")
    page.said("SENT")
    msg = peer.wait_message(body="hello, slixmpp")
    check(msg["from"] == bound, "from %r, not %s" % (msg["from"], bound))
    before = logins(server)

    # The page goes; while there is none, the slixmpp user writes. Its
    # roster query answered, the server has routed the message (one
    # stream, in order) to the BOSH session, which has no request to
    # answer with it.
    page.tell("RELOAD")
    page.said("RELOADING")
    peer.send(web.jid, "sent while reloading")
    peer.roster()
    page.tell("CONTINUE")
    how, again, sid2 = page.said("ONLINE", timeout=45).split(" ")
    check(how == "restored", "the reloaded page %s instead of restoring" % how)
    check((again, sid2) == (bound, sid), "restored %s (sid %s), not %s (sid %s)"
          % (again, sid2, bound, sid))
    page.tell("EXPECT sent while reloading")
    check(page.said("GOT") == peer_jid + " sent while reloading",
          "the message sent during the reload")
    page.tell("SEND back after the reload")
    page.said("SENT")
    msg = peer.wait_message(body="back after the reload")
    check(msg["from"] == bound, "from %r, not %s" % (msg["from"], bound))
    check(logins(server) == before, "the reload logged in again")
    check(page.quit() == 0, "driver exit status")
    check(page.blocked == [], "requests off loopback: %r" % page.blocked)
