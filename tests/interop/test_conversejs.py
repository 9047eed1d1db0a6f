"""Converse.js, the web client, in Debian's chromium over XMPP over
WebSocket (#21): playwright-core drives the browser (tests/browser/
conversejs.js); the page and Converse.js's files come from a server of the
driver's own on 127.0.0.1 and every request that is not to 127.0.0.1 is
refused. Converse.js logs in with the account's password, a slixmpp user
sends it a message that shows in the page, the page's user types an answer
and presses Enter and the slixmpp user gets it. The screenshot of the
conversation is kept: BUILD/artifacts/conversejs/conversation.png."""

import os
import queue
import shutil
import subprocess
import threading

from agents import Agent
from harness import check, fixture, skip, time_limit
from server import free_port
from wsclient import wait_for_port
from xmpp import timeout_value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER = os.path.join(ROOT, "tests", "browser")
DRIVER = os.path.join(BROWSER, "conversejs.js")
CHROMIUM = "/usr/bin/chromium"


@fixture
def server(scope):
    http, site = free_port(), free_port()
    srv = scope.server(modules=["roster", "presence", "message", "iq", "offline",
                                "smacks", "csi", "disco", "websocket"],
                       options={"http_ports": [http], "https_ports": [],
                                "consider_websocket_secure": True,
                                # the page's origin, as an operator names
                                # the site that serves the web client
                                "cross_domain_websocket": [
                                    "http://127.0.0.1:%d" % site]})
    srv.http_port, srv.site_port = http, site
    wait_for_port(http)
    return srv


class Page:
    """The driver process: commands on stdin, answers on stdout."""

    def __init__(self, scope, args):
        self.proc = subprocess.Popen(["node", DRIVER] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, STEP_TIMEOUT_MS=str(
                                         int(timeout_value(20) * 1000))))
        self.lines = queue.Queue()
        self.blocked = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()
        scope.cleanup(self.close)

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("BLOCKED "):
                self.blocked.append(line[8:])
            else:
                self.lines.put(line)
        self.lines.put(None)

    def _stderr(self):
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def said(self, prefix, timeout=30):
        """The driver's next line; it must start with prefix."""
        try:
            line = self.lines.get(timeout=timeout_value(timeout))
        except queue.Empty:
            line = "(nothing in time)"
        if line is None or not line.startswith(prefix):
            raise AssertionError("the browser said %r, not %s...; refused: %r;"
                                 " its log:\n%s" % (line, prefix, self.blocked,
                                                    "\n".join(self.err[-40:])))
        return line[len(prefix):].strip()

    def tell(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def artifact(server, name):
    return os.path.join(server.build_dir, "artifacts", "conversejs", name)


@time_limit(60)
def test_conversejs_logs_in_over_websocket_and_chats(ctx, server):
    if not (shutil.which("node") and os.path.exists(CHROMIUM)):
        skip("node or chromium is not installed (make test-deps)")
    if not os.path.isdir(os.path.join(BROWSER, "node_modules", "playwright-core")):
        skip("tests/browser/node_modules is missing (make browser-deps)")
    web = server.account("web")
    peer_account = server.account("slix")
    peer = Agent("slixmpp", server, peer_account, resource="desk")
    peer_jid = peer.ready()
    shot = artifact(server, "conversation.png")
    if os.path.exists(shot):
        os.unlink(shot)

    page = Page(ctx, ["ws://127.0.0.1:%d/xmpp-websocket" % server.http_port,
                        web.jid, web.password, peer_account.jid, shot,
                        str(server.site_port)])
    bound = page.said("LOGGED_IN", timeout=40)
    check(bound.startswith(web.jid + "/"), "Converse.js bound %r" % bound)

    peer.send(web.jid, "Hello from slixmpp, Converse!")
    page.tell("EXPECT Hello from slixmpp, Converse!")
    check(page.said("GOT") == "Hello from slixmpp, Converse!", "message in the page")

    page.tell("REPLY Hi slixmpp, this is Chromium")
    check(page.said("SENT") == "Hi slixmpp, this is Chromium", "reply shown")
    msg = peer.wait_message(body="Hi slixmpp, this is Chromium")
    check(msg.get("from") == bound, "reply from %r, not %s" % (msg.get("from"), bound))

    page.tell("SHOT")
    check(page.said("SCREENSHOT") == shot, "screenshot path")
    with open(shot, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the screenshot is a PNG")
    page.tell("QUIT")
    page.said("DONE")
    check(page.proc.wait(timeout_value(20)) == 0, "driver exit status")
    # Refused, not sent: Converse.js's login form shows its sponsors' logos
    # from conversejs.org. The chat above worked without them.
    print("refused requests off loopback: %r" % page.blocked)
