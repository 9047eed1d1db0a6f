"""Interop with go-sendxmpp (Debian 12's go-sendxmpp 0.5.6, built on
go-xmpp): the command-line sender logs in and sends a message to a
slixmpp listener (tests/lib/xmpp_agent.py), over STARTTLS and over direct
TLS (XEP-0368).

go-sendxmpp writes a newline after SASL success and then the restarted
stream's header with its XML declaration; Starling once answered that
with the stream error not-well-formed ("XML or text declaration not at
start of entity") and go-sendxmpp failed with "expected element type
<features> but have <error>" (issue 16).

Our certificate is self-signed, so go-sendxmpp runs with --no-tls-verify;
HOME is a directory of the test's own, so no user's sendxmpprc is read.
"""

import os
import shutil
import subprocess
import tempfile

from agents import Agent
from harness import check, fixture, skip, time_limit
from xmpp import timeout_value

GO_SENDXMPP = "go-sendxmpp"


@fixture
def server(scope):
    return scope.server()


def go_sendxmpp(server, account, to, body, direct_tls, scope_dir):
    """Run go-sendxmpp once; returns the CompletedProcess."""
    if not shutil.which(GO_SENDXMPP):
        skip("go-sendxmpp is not installed (apt-get install go-sendxmpp, "
             "or make test-deps)")
    port = server.tls_port if direct_tls else server.port
    cmd = [GO_SENDXMPP, "--debug", "--no-tls-verify",
           "--jserver", "127.0.0.1:%d" % port,
           "--username", account.jid, "--password", account.password,
           "--timeout", "10"]
    if direct_tls:
        cmd.append("--tls")
    cmd.append(to)
    env = {"HOME": scope_dir, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(cmd, input=body, capture_output=True, text=True,
                          env=env, timeout=timeout_value(30))


def send_to_listener(server, direct_tls):
    sender, receiver = server.account("gosend"), server.account("golisten")
    listener = Agent("slixmpp", server, receiver, resource="listener")
    jid = listener.ready()
    check(jid == receiver.jid + "/listener", "listener bound %s" % jid)
    home = tempfile.mkdtemp(prefix="starling-go-sendxmpp-")
    try:
        body = "hello from go-sendxmpp (%s)" % (
            "direct TLS" if direct_tls else "STARTTLS")
        proc = go_sendxmpp(server, sender, receiver.jid, body, direct_tls, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    check(proc.returncode == 0,
          "go-sendxmpp exited %d:\n%s\n%s" % (proc.returncode,
                                              proc.stdout[-3000:],
                                              proc.stderr[-3000:]))
    got = listener.wait_message(body=body)
    check(got["from"].startswith(sender.jid + "/"),
          "message from %s, sent by %s" % (got["from"], sender.jid))
    check(got["to"] in (receiver.jid, jid), "message to %s" % got["to"])
    check("<error" not in proc.stdout,
          "a stream or stanza error on go-sendxmpp's wire:\n%s"
          % proc.stdout[-3000:])


@time_limit(60)
def test_go_sendxmpp_over_starttls_reaches_a_slixmpp_listener(server):
    send_to_listener(server, direct_tls=False)


@time_limit(60)
def test_go_sendxmpp_over_direct_tls_reaches_a_slixmpp_listener(server):
    send_to_listener(server, direct_tls=True)
