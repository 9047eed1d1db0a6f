"""Interop with sendxmpp (Debian 12's sendxmpp 1.24, a Perl script over
Net::XMPP and XML::Stream): the command-line sender logs in over STARTTLS
and sends a message to a slixmpp listener (tests/lib/xmpp_agent.py).

sendxmpp connects to --jserver host:port and names the domain with
--component (otherwise it would ask for the host's name, 127.0.0.1, as the
stream's to). Our certificate is self-signed, so it runs with
--no-tls-verify; HOME is a directory of the test's own, so no user's
.sendxmpprc is read (an empty one of mode 0600 is given, as sendxmpp
insists on a config file it may read).

Of the mechanisms offered it takes PLAIN, with an authzid: its own bare
JID (user@domain NUL user NUL password), which the server accepts; after
bind it still asks for a session (RFC 3921), answered with a result.
"""

import os
import shutil
import subprocess
import tempfile

from agents import Agent
from harness import check, fixture, skip, time_limit
from xmpp import timeout_value

SENDXMPP = "sendxmpp"


@fixture
def server(scope):
    return scope.server()


def sendxmpp(server, account, to, body, home, extra=()):
    """Run sendxmpp once over STARTTLS; returns the CompletedProcess."""
    if not shutil.which(SENDXMPP):
        skip("sendxmpp is not installed (apt-get install sendxmpp, "
             "or make test-deps)")
    rc = os.path.join(home, ".sendxmpprc")
    with open(rc, "w"):
        pass
    os.chmod(rc, 0o600)
    cmd = [SENDXMPP, "-d", "--tls", "--no-tls-verify",
           "--jserver", "127.0.0.1:%d" % server.port,
           "--component", server.domain,
           "--username", account.user, "--password", account.password,
           "--resource", "sendxmpp"] + list(extra) + [to]
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8"}
    return subprocess.run(cmd, input=body, capture_output=True, text=True,
                          env=env, timeout=timeout_value(30))


@time_limit(60)
def test_sendxmpp_over_starttls_reaches_a_slixmpp_listener(server):
    sender, receiver = server.account("psend"), server.account("plisten")
    listener = Agent("slixmpp", server, receiver, resource="listener")
    jid = listener.ready()
    check(jid == receiver.jid + "/listener", "listener bound %s" % jid)
    home = tempfile.mkdtemp(prefix="starling-sendxmpp-")
    try:
        body = "hello from sendxmpp %d" % os.getpid()
        proc = sendxmpp(server, sender, receiver.jid, body, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    wire = proc.stdout + proc.stderr
    check(proc.returncode == 0,
          "sendxmpp exited %d:\n%s" % (proc.returncode, wire[-4000:]))
    got = listener.wait_message(body=body)
    check(got["from"] == sender.jid + "/sendxmpp",
          "message from %s, sent by %s" % (got["from"], sender.jid))
    check(got["to"] in (receiver.jid, jid), "message to %s" % got["to"])
    check("<stream:error" not in wire and "type='error'" not in wire
          and 'type="error"' not in wire,
          "an error on sendxmpp's wire:\n%s" % wire[-4000:])
