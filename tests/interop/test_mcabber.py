"""Interop with mcabber (Debian's mcabber 1.1, over loudmouth): it logs in
over STARTTLS with its default settings, asks the server what it supports
(disco#info), and delivers a message a user types, here through its FIFO.
Requests a user makes of <domain>/mcabber (RFC 6120 10.5.2: the server's
own) are answered from the domain. Its trace log must hold no warning and
no error stanza.

mcabber is a terminal program: it runs in a detached tmux session (a tty of
its own), with a config file of its own and a bounded time."""

import os
import re
import time

from harness import check, fixture, time_limit
from tmux import TmuxProgram

MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "version",
           "time", "uptime", "lastactivity", "vcard", "private", "carbons"]


@fixture
def server(scope):
    return scope.server(modules=MODULES)


class Mcabber(TmuxProgram):
    """mcabber in a detached tmux session, logged in as account."""

    name = "mcabber"

    def __init__(self, server, account, resource="mcabber"):
        super().__init__("mcabber")
        os.makedirs(os.path.join(self.home, ".mcabber"), mode=0o700)
        self.trace = os.path.join(self.dir, "mcabber.log")
        self.fifo = os.path.join(self.dir, "mcabber.fifo")
        self.rc = os.path.join(self.dir, "mcabberrc")
        settings = [
            ("jid", account.jid),
            ("password", account.password),
            ("server", "127.0.0.1"),
            ("port", str(server.port)),
            ("resource", resource),
            ("disable_random_resource", "1"),
            ("tls", "1"),
            # the test server's certificate is self-signed
            ("ssl_ignore_checks", "1"),
            ("tracelog_level", "3"),
            ("tracelog_file", self.trace),
            ("fifo_name", self.fifo),
            ("logging", "0"),
        ]
        with open(self.rc, "w") as f:
            for key, value in settings:
                f.write("set %s = %s\n" % (key, value))
            f.write("module load fifo\n")
        os.chmod(self.rc, 0o600)     # mcabber refuses a readable password
        self.start("mcabber -f %s" % self.rc, 160, 48)

    def trace_text(self):
        try:
            with open(self.trace, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    log_tail = trace_text

    def command(self, line):
        """A command as if typed, through mcabber's FIFO."""
        self.wait("FIFO", lambda: os.path.exists(self.fifo))
        with open(self.fifo, "w") as f:
            f.write(line + "\n")

    def answer_to(self, iq_id, timeout=20):
        """The attributes of the iq that answered mcabber's iq_id, from
        the trace log's record of what it received."""
        rx = re.compile(r"<iq( [^>]*id='%s'[^>]*)>" % re.escape(iq_id))
        self.wait("an answer to iq %s" % iq_id,
                  lambda: rx.search(self.trace_text()), timeout)
        attrs = rx.search(self.trace_text()).group(1)
        return dict(re.findall(r"([\w:]+)='([^']*)'", attrs))


def warnings_in(trace):
    """The trace log's lines that tell of a problem: mcabber's warnings
    and errors, and any error stanza it received."""
    bad = re.compile(r"warning|error|type=['\"]error['\"]", re.I)
    return [line for line in trace.splitlines() if bad.search(line)]


@time_limit(90)
def test_mcabber_logs_in_and_delivers_a_message(server, ctx):
    account = server.account("mcab")
    reader = server.login("mcabreader")
    mc = Mcabber(server, account)
    ctx.cleanup(mc.close)
    server.wait_log(re.escape(account.jid) + r"/mcabber: bound", timeout=30)
    # what mcabber asks the server once it is in (its disco#info, to the
    # domain here), answered
    disco = re.compile(r"<iq[^>]*from=['\"]%s['\"][^>]*>\s*<query xmlns="
                       r"['\"]http://jabber.org/protocol/disco#info['\"]"
                       % re.escape(server.domain))
    mc.wait("disco#info answer from %s" % server.domain,
            lambda: disco.search(mc.trace_text()))
    body = "hello from mcabber %d" % os.getpid()
    mc.command("/say_to %s %s" % (reader.jid, body))
    got = reader.expect("message", attrs={"from": account.jid + "/mcabber"},
                        text={"body": body}, timeout=20)
    check(got is not None, "no message")
    # what a user asks of the server's domain with a resource (RFC 6120
    # 10.5.2), where issue 16 saw mcabber send its disco#info: answered as
    # the domain answers, from the domain
    for request, ns in (("version", "jabber:iq:version"),
                        ("ping", "urn:xmpp:ping")):
        mc.command("/request %s %s/mcabber" % (request, server.domain))
        sent = re.compile(r"<iq [^>]*to=\"%s/mcabber\" id=\"([^\"]+)\"><\w+ "
                          r"xmlns=\"%s\"" % (re.escape(server.domain), ns))
        mc.wait("the %s request in the trace log" % request,
                lambda: sent.search(mc.trace_text()))
        iq_id = sent.search(mc.trace_text()).group(1)
        answer = mc.answer_to(iq_id)
        check(answer.get("type") == "result" and
              answer.get("from") == server.domain,
              "the answer to mcabber's %s request: %s" % (request, answer))
    # give a late answer the time to arrive before judging the log
    mc.command("/echo starling-check")
    mc.wait("the echo", lambda: "starling-check" in mc.trace_text())
    problems = warnings_in(mc.trace_text())
    check(not problems, "mcabber's trace log:\n%s" % "\n".join(problems))
