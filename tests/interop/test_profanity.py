"""Interop with profanity (Debian 12's profanity 0.13.1, over libstrophe):
the terminal client connects as a user types it (/connect ... tls force,
the password at its prompt), is told to trust the server's self-signed
certificate (/tls allow), and delivers a message typed with /msg to a
slixmpp listener (tests/lib/xmpp_agent.py).

profanity is a terminal program: it runs in a detached tmux session (a tty
of its own, its own tmux socket), with a HOME and XDG directories of its
own, and every wait bounded in time. Its debug log (-l DEBUG, written
out when it quits) must record no error stanza received: all it asks of
the server on login (roster, private bookmarks, blocklist, disco#info and
#items of the domain, carbons) is answered.

Debian's profanity continues the connection only once /tls allow is typed
at its certificate prompt; its own GLib-CRITICAL g_key_file_set_string
lines on stderr (an account without a stored password) are not the
server's doing and are not counted."""

import os
import re
import time

from agents import Agent
from harness import check, fixture, time_limit
from tmux import TmuxProgram

MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "version",
           "time", "uptime", "lastactivity", "vcard", "private", "carbons",
           # profanity asks for the blocklist on login, whatever disco says
           "blocklist"]


@fixture
def server(scope):
    return scope.server(modules=MODULES)


class Profanity(TmuxProgram):
    """profanity in a detached tmux session, not yet connected."""

    name = "profanity"

    def __init__(self):
        super().__init__("profanity")
        config = os.path.join(self.home, ".config")
        data = os.path.join(self.home, ".local", "share")
        for d in (os.path.join(config, "profanity"),
                  os.path.join(data, "profanity")):
            os.makedirs(d, mode=0o700)
        self.log = os.path.join(self.dir, "profanity.log")
        self.start("profanity -l DEBUG -f %s" % self.log, 200, 50,
                   unset=("DISPLAY",), XDG_CONFIG_HOME=config,
                   XDG_DATA_HOME=data)

    def log_text(self):
        # -f names a file under profanity's own log directory
        for path in (self.log, os.path.join(
                self.home, ".local", "share", "profanity", "logs",
                os.path.basename(self.log))):
            try:
                with open(path, "rb") as f:
                    return f.read().decode(errors="replace")
            except OSError:
                pass
        return ""

    def log_tail(self):
        return self.log_text()

    def wait_screen(self, pattern, timeout=20):
        rx = re.compile(pattern)
        self.wait("%r on the screen" % pattern,
                  lambda: rx.search(self.screen()), timeout)

    def type(self, line):
        """A line as if typed, then Enter."""
        self._tmux("send-keys", "-t", self.session, "-l", line)
        self._tmux("send-keys", "-t", self.session, "Enter")

    def quit(self, timeout=10):
        """/quit, and wait for the tmux session to end (the log is
        complete then)."""
        self.type("/quit")
        self.wait("exit after /quit",
                  lambda: self._tmux("has-session", "-t", self.session,
                                     check_rc=False).returncode != 0,
                  timeout)


@time_limit(90)
def test_profanity_connects_and_delivers_a_message(server, ctx):
    account, receiver = server.account("prof"), server.account("proflisten")
    listener = Agent("slixmpp", server, receiver, resource="listener")
    jid = listener.ready()
    check(jid == receiver.jid + "/listener", "listener bound %s" % jid)
    prof = Profanity()
    ctx.cleanup(prof.close)
    prof.wait_screen(r"Profanity|profanity")
    prof.type("/connect %s server 127.0.0.1 port %d tls force"
              % (account.jid, server.port))
    prof.wait_screen(r"(?i)password")
    prof.type(account.password)
    # the certificate is self-signed: profanity shows it and asks
    prof.wait_screen(r"/tls allow", timeout=30)
    prof.type("/tls allow")
    server.wait_log(re.escape(account.jid) + r"/\S+: bound", timeout=30)
    prof.wait_screen(r"Continuing with connection", timeout=10)
    prof.wait_screen(re.escape(account.jid) +
                     r"/\S+ logged in successfully", timeout=20)
    body = "hello from profanity %d" % os.getpid()
    prof.type("/msg %s %s" % (receiver.jid, body))
    got = listener.wait_message(body=body)
    check(got["from"].startswith(account.jid + "/"),
          "message from %s, sent by %s" % (got["from"], account.jid))
    check(got["to"] in (receiver.jid, jid), "message to %s" % got["to"])
    prof.quit()
    log = prof.log_text()
    check("RECV:" in log, "profanity's debug log holds no traffic:\n%s"
          % log[-2000:])
    problems = [line for line in log.splitlines()
                if re.search(r"RECV: .*type=['\"]error['\"]|"
                             r"prof: ERR|xmpp: ERR|conn: ERR", line)]
    check(not problems, "profanity's log:\n%s" % "\n".join(problems))
