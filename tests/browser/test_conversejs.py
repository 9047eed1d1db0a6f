"""Converse.js, the web client, in Debian's chromium over XMPP over
WebSocket (#21): playwright-core drives the browser (tests/browser/
conversejs.js); the page and Converse.js's files come from a server of the
driver's own on 127.0.0.1 and every request that is not to 127.0.0.1 is
refused. Converse.js logs in with the account's password at
/xmpp-websocket, a slixmpp user who is its contact (a mutual subscription,
in both rosters before the test) sends it a message that shows in the
page, the page's user types an answer and presses Enter, and chooses an
image in the chat's file input: Converse.js finds the upload component in
the domain's disco#items, asks a slot, PUTs the file from the page's
origin (CORS) and sends the URL, which the slixmpp user gets and downloads
byte-identical.

Kept: BUILD/artifacts/browser/conversejs/conversation.png, the screenshot
of the conversation, and console.log, the page's console and every
WebSocket frame (failure.png too when it fails)."""

import os
import struct
import urllib.request
import zlib

from agents import Agent
from browser import Page, artifacts, need_browser
from harness import check, fixture, note, time_limit
from seed import ROSTER_SEED, roster_item
from server import free_port
from wsclient import wait_for_port


@fixture
def server(scope):
    http, site = free_port(), free_port()
    srv = scope.server(
        # what a web client's server runs: Converse.js asks for all of these
        modules=["roster", "presence", "message", "iq", "offline", "smacks",
                 "csi", "disco", "blocklist", "carbons", "mam", "vcard",
                 "vcard_legacy", "pep", "private", "bookmarks", "ping",
                 "websocket"],
        options={"http_ports": [http], "https_ports": [],
                 "consider_websocket_secure": True,
                 # the page's origin, as an operator names the site that
                 # serves the web client
                 "cross_domain_websocket": ["http://127.0.0.1:%d" % site]},
        components={"upload.localhost": ("http_file_share", {
            "http_external_url": "http://127.0.0.1:%d/" % http})},
        plugins={"test_roster_seed": ROSTER_SEED})
    srv.http_port, srv.site_port = http, site
    wait_for_port(http)
    return srv


def png(width, height, seed):
    """A real PNG image (RGB, one colour band a row) that chromium shows."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = b"".join(b"\x00" + bytes(((y * 7 + seed) % 256, (y * 3) % 256,
                                     (255 - y) % 256)) * width
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def contacts(server, a, b):
    """a and b in each other's roster with subscription both."""
    for me, other in ((a, b), (b, a)):
        c = server.login(me, resource="seed")
        roster_item(c, other.jid, "both")
        c.close()


@time_limit(90)
def test_conversejs_chats_and_uploads_an_image_over_websocket(ctx, server):
    need_browser()
    web, slix = server.account("web"), server.account("slix")
    contacts(server, web, slix)
    peer = Agent("slixmpp", server, slix, resource="desk")
    peer.ready()
    kept = artifacts(server.build_dir, "conversejs")

    page = Page(ctx, "conversejs.js",
                ["ws://127.0.0.1:%d/xmpp-websocket" % server.http_port,
                 web.jid, web.password, slix.jid, kept, str(server.site_port)],
                kept)
    bound = page.said("LOGGED_IN", timeout=45)
    check(bound.startswith(web.jid + "/"), "Converse.js bound %r" % bound)

    peer.send(web.jid, "Hello from slixmpp, Converse!")
    page.tell("EXPECT Hello from slixmpp, Converse!")
    check(page.said("GOT") == "Hello from slixmpp, Converse!", "message in the page")

    page.tell("REPLY Hi slixmpp, this is Chromium")
    check(page.said("SENT") == "Hi slixmpp, this is Chromium", "reply shown")
    msg = peer.wait_message(body="Hi slixmpp, this is Chromium")
    check(msg["from"] == bound, "reply from %r, not %s" % (msg["from"], bound))

    # An image chosen in the page, through Converse.js's XEP-0363 upload.
    image = os.path.join(server.dir, "sunset.png")
    data = png(160, 120, 41)
    with open(image, "wb") as f:
        f.write(data)
    page.tell("UPLOAD " + image)
    url = page.said("UPLOADED")
    check(url.startswith("http://127.0.0.1:%d/" % server.http_port)
          and url.endswith("/sunset.png"), "the GET URL %r" % url)
    msg = peer.wait_message(body=url)
    check(msg["from"] == bound, "upload message from %r" % msg["from"])
    with urllib.request.urlopen(msg["body"], timeout=30) as r:
        got = r.read()
        check(r.headers["Content-Type"] == "image/png", r.headers["Content-Type"])
    check(got == data, "%d bytes downloaded, %d uploaded" % (len(got), len(data)))

    page.tell("SHOT")
    shot = page.said("SCREENSHOT")
    with open(shot, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")
    note("screenshot of the conversation: %s" % shot)
    check(page.quit() == 0, "driver exit status")
    # Refused, not sent: Converse.js's login form shows its sponsors' logos
    # from conversejs.org. The chat above worked without them.
    print("refused requests off loopback: %r" % page.blocked)
