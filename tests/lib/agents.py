"""Interop clients in subprocesses: each Agent runs xmpp_agent.py with
slixmpp, aioxmpp or nbxmpp, so a library that hangs fails the test instead of the
suite.

    bob = Agent("slixmpp", server, account, resource="slix", mech="SCRAM-SHA-1")
    bob.ready()                                 # the bound JID
    bob.send(alice_jid, "hello")
    msg = bob.wait_message(body="hi back")      # the message event (a dict)

    carol = Agent("slixmpp", server, account, plugins=["xep_0191"])
    carol.block([bob_jid])                      # XEP-0191, through slixmpp

    dave = Agent("slixmpp", server, account, im=True, plugins=["xep_0203"])
    dave.subscribe(bob_jid)                     # RFC 6121 subscriptions
    dave.wait_presence(**{"from": bob_full_jid, "type": "available"})
    dave.roster(ver="")                         # {"empty", "ver", "items"}

    eve = Agent("slixmpp", server, account, plugins=["xep_0198", "xep_0280",
                                                      "xep_0313"])
    eve.wait("sm_enabled")                      # XEP-0198, with resumption
    eve.cut(); eve.reconnect()                  # drop TCP, then resume
    eve.carbons()                               # XEP-0280 enable
    eve.mam(max=50, reverse=True)               # every archive item (XEP-0313)
    eve.raw("<inactive xmlns='urn:xmpp:csi:0'/>")
"""

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import server as server_mod
from harness import check
import xmpp

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xmpp_agent.py")


class AgentError(AssertionError):
    pass


class Agent:
    def __init__(self, lib, server, account, resource=None, direct_tls=False,
                 mech=None, priority=0, lifetime=60, name=None, plugins=(),
                 im=False):
        self.lib = lib
        self.name = name or "%s:%s" % (lib, account.user)
        self.events = queue.Queue()
        self.seen = []
        self.jid = None
        jid = account.jid + ("/" + resource if resource else "")
        port = server.tls_port if direct_tls else server.port
        cmd = [sys.executable, AGENT, "--lib", lib, "--jid", jid,
               "--password", account.password, "--port", str(port),
               "--host", getattr(server, "ip", "127.0.0.1"),
               "--priority", str(priority),
               "--lifetime", str(xmpp.timeout_value(lifetime))]
        if direct_tls:
            cmd.append("--direct-tls")
        if mech:
            cmd += ["--mech", mech]
        if plugins:
            cmd += ["--plugins", ",".join(plugins)]
        if im:
            cmd.append("--im")
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, env=env)
        for hook in server_mod.CLIENT_CREATED:
            hook(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "garbage", "line": line})
        self.events.put({"event": "exited"})

    def wait(self, event, timeout=20, **match):
        """The next event of this kind with these fields; a 'failed' or
        'exited' event on the way fails the test."""
        deadline = time.monotonic() + xmpp.timeout_value(timeout)
        while True:
            left = deadline - time.monotonic()
            try:
                ev = self.events.get(timeout=max(left, 0))
            except queue.Empty:
                raise AgentError("%s: no %s event %s within %ss; seen: %s"
                                 % (self.name, event, match, timeout,
                                    self.seen[-10:])) from None
            self.seen.append(ev)
            if ev["event"] == event and all(ev.get(k) == v
                                            for k, v in match.items()):
                return ev
            if ev["event"] in ("failed", "exited", "disconnected"):
                raise AgentError("%s: %s while waiting for %s %s: %s"
                                 % (self.name, ev["event"], event, match, ev))

    def ready(self, timeout=30):
        self.jid = self.wait("ready", timeout)["jid"]
        return self.jid

    def send(self, to, body, type="chat", id=None):
        cmd = {"cmd": "send", "to": to, "body": body, "type": type}
        if id:
            cmd["id"] = id
        self._command(cmd)

    def wait_message(self, timeout=20, **match):
        return self.wait("message", timeout, **match)

    def _blocking(self, cmd, timeout):
        self._command(cmd)
        return self.wait("iq_result", timeout, cmd=cmd["cmd"])

    def block(self, jids, timeout=20):
        """XEP-0191 block (slixmpp with plugins=["xep_0191"]): the
        iq_result event ({"ok": ..., "condition": ...})."""
        return self._blocking({"cmd": "block", "jids": list(jids)}, timeout)

    def unblock(self, jids, timeout=20):
        return self._blocking({"cmd": "unblock", "jids": list(jids)}, timeout)

    def blocklist(self, timeout=20):
        """The blocked JIDs, sorted."""
        ev = self._blocking({"cmd": "blocklist"}, timeout)
        if not ev.get("ok"):
            raise AgentError("%s: blocklist failed: %s" % (self.name, ev))
        return ev["jids"]

    def adhoc(self, node, fields=None, timeout=20, to=None):
        """XEP-0050 command node at the server (or at the JID to) (slixmpp
        with plugins=["xep_0050"]), its form filled with fields: the adhoc
        event ({"ok", "status", "notes", "fields"} or {"ok": False,
        "condition"})."""
        self._command({"cmd": "adhoc", "node": node, "fields": fields or {},
                       "to": to})
        return self.wait("adhoc", timeout=timeout, node=node)

    def upload(self, path, type=None, timeout=60):
        """XEP-0363 upload of the file at path (slixmpp with
        plugins=["xep_0363"]): the GET URL."""
        self._command({"cmd": "upload", "path": path, "type": type})
        ev = self.wait("upload", timeout=timeout)
        if not ev.get("ok"):
            raise AgentError("%s: upload failed: %s" % (self.name, ev.get("error")))
        return ev["url"]

    def subscribe(self, jid):
        """Send a presence subscription request (the library then handles
        the answers; slixmpp approves and subscribes back by default)."""
        self._command({"cmd": "subscribe", "to": jid})

    def wait_presence(self, timeout=20, **match):
        """The next presence event (agents made with im=True) matching."""
        return self.wait("presence", timeout, **match)

    def roster(self, ver=None, timeout=20):
        """A roster get with 'ver' (None: without): the roster event
        ({"ok", "empty", "ver", "items": {jid: subscription}})."""
        self._command({"cmd": "roster", "ver": ver})
        ev = self.wait("roster", timeout)
        if not ev.get("ok"):
            raise AgentError("%s: roster get failed: %s" % (self.name, ev))
        return ev

    def presence(self, show=None, status=None):
        """Broadcast presence with this show and status."""
        self._command({"cmd": "presence", "show": show, "status": status})

    def raw(self, xml):
        """Send XML as it is (a nonza such as XEP-0352 <inactive/>)."""
        self._command({"cmd": "raw", "xml": xml})

    def cut(self, timeout=20):
        """Drop the TCP connection without closing the stream (a phone
        losing its network); returns once the library noticed."""
        self._command({"cmd": "cut"})
        return self.wait("cut", timeout)

    def reconnect(self, timeout=20):
        """Connect again after cut(); with xep_0198 the library resumes
        the stream (the 'resumed' event)."""
        self._command({"cmd": "reconnect"})
        return self.wait("resumed", timeout)

    def carbons(self, enable=True, timeout=20):
        """XEP-0280 enable (or disable): the iq_result event."""
        return self._blocking({"cmd": "carbons", "enable": enable}, timeout)

    def mam(self, max=50, reverse=False, with_jid=None, timeout=60):
        """Page through the account's archive with the library's XEP-0313
        and XEP-0059 iterator: the mam event ({"ok", "pages", "items":
        [[id, body, stamp], ...]} in the order received)."""
        self._command({"cmd": "mam", "max": max, "reverse": reverse,
                       "with": with_jid})
        ev = self.wait("mam", timeout)
        if not ev.get("ok"):
            raise AgentError("%s: archive query failed: %s" % (self.name, ev))
        return ev

    def _command(self, cmd):
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise AgentError("%s: agent is gone (%s)" % (self.name, e)) from None

    def close(self):
        if self.proc.poll() is None:
            try:
                self._command({"cmd": "quit"})
                self.proc.stdin.close()
            except (AgentError, OSError):
                pass
            try:
                self.proc.wait(xmpp.timeout_value(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def dump(self, limit=40):
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").splitlines()
        out = ["--- %s events: %s" % (self.name, self.seen[-20:]),
               "--- %s log (last %d lines) ---" % (self.name, limit)]
        return "\n".join(out + [l[:500] for l in lines[-limit:]])


def auth_failures(agent):
    """The SASL <failure/>s the agent's library met, as reported so far."""
    return [e for e in agent.seen if e["event"] == "auth_failure"]


def login_without_failures(lib, server, account, mech, direct_tls=False):
    """The library as it comes logs in at the first attempt: no <failure/>
    on the way, with mech. Returns the ready agent."""
    agent = Agent(lib, server, account, resource="default", direct_tls=direct_tls)
    agent.ready()
    check(not auth_failures(agent),
          "SASL failures before the login: %s" % auth_failures(agent))
    used = agent.seen[-1].get("mech")
    check(used == mech, "logged in with %s" % used)
    return agent


def failures_with_a_wrong_password(lib, server, account):
    """The <failure/>s the library reports with a wrong password (it must
    not log in)."""
    bad = server_mod.Account(account.user, account.password + "x", account.host)
    agent = Agent(lib, server, bad, resource="wrong")
    try:
        agent.ready()
    except AgentError:
        pass
    else:
        check(False, "logged in with a wrong password")
    return auth_failures(agent)
