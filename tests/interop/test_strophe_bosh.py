"""Interop over BOSH with strophe.js, the JavaScript library web clients
(Converse.js's ancestors, many hand-written pages) use: Debian's
libjs-strophe 1.2.14 run under node (tests/interop/strophe_bosh.js gives
it the browser objects it needs). It logs in with SCRAM over BOSH, chats
with a TCP client, the page "goes away" with its requests open, and a
second run, as a reloaded page, restores the session from its
sessionStorage (same sid, next rid) without logging in again, gets the
message sent meanwhile, answers and disconnects."""

import os
import shutil
import subprocess
import tempfile

from harness import check, fixture, skip
from server import free_port
from wsclient import wait_for_port
from xmpp import esc, timeout_value

HERE = os.path.dirname(os.path.abspath(__file__))
STROPHE = "/usr/share/javascript/strophe/strophe.js"
XMLDOM = "/usr/share/nodejs/@xmldom/xmldom"


@fixture
def server(scope):
    http = free_port()
    srv = scope.server(modules=["roster", "presence", "message", "iq", "offline",
                                "bosh"],
                       options={"http_ports": [http], "https_ports": [],
                                "consider_bosh_secure": True,
                                "bosh_max_inactivity": 30})
    srv.http_port = http
    wait_for_port(http)
    return srv


def strophe(mode, server, account, storage, peer):
    return subprocess.Popen(
        ["node", os.path.join(HERE, "strophe_bosh.js"), mode,
         "http://127.0.0.1:%d/http-bind" % server.http_port,
         account.jid, account.password, storage, peer],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_until(proc, prefix):
    """Lines of proc's output up to one starting with prefix (returned)."""
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith(prefix):
            return line.strip()
        if line.startswith(("FAILED", "TIMEOUT")):
            break
    raise AssertionError("strophe.js said %r (stderr %r)"
                         % (seen, proc.stderr.read()[-2000:]))


def test_strophe_login_chat_and_page_reload(server):
    if not (shutil.which("node") and os.path.exists(STROPHE) and os.path.exists(XMLDOM)):
        skip("node, libjs-strophe or node-xmldom is not installed (make test-deps)")
    a = server.account("strophe")
    t = server.login("tcppeer", resource="desk")
    storage = os.path.join(tempfile.mkdtemp(prefix="starling-strophe-"), "session.json")
    p = strophe("login", server, a, storage, t.jid)
    line = lines_until(p, "CONNECTED")
    check(line.startswith("CONNECTED %s@localhost/" % a.user), line)
    t.expect("message", child="body", text="hello from strophe")
    sender = line.split(" ", 1)[1]
    t.send("<message to='%s' type='chat'><body>first</body></message>" % esc(sender))
    check(lines_until(p, "GOT") == "GOT first", "first message")
    p.wait(timeout_value(20))
    check(p.returncode == 0, "strophe.js exited %s" % p.returncode)
    # While no page is there, a message waits in the BOSH session.
    t.send("<message to='%s' type='chat'><body>while reloading</body></message>"
           % esc(sender))
    t.roundtrip()
    p2 = strophe("reload", server, a, storage, t.jid)
    line = lines_until(p2, "RESTORED")
    check(line == "RESTORED " + sender, "restored as %r, not %s" % (line, sender))
    check(lines_until(p2, "GOT") == "GOT while reloading", "message during the reload")
    t.expect("message", attrs={"from": sender}, child="body", text="after reload")
    lines_until(p2, "DONE")
    p2.wait(timeout_value(20))
    check(p2.returncode == 0, "strophe.js exited %s" % p2.returncode)
