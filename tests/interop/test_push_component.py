"""Interop: push notifications (XEP-0357) to an app server written with
slixmpp's component support (tests/lib/push_app_server.py), connected as an
external component (XEP-0114). Exactly one notification per message that
arrives for a hibernated session, with the summary form; disabling stops
them; an app server's error disables the registration as the XEP says."""

import json
import os
import queue
import subprocess
import sys
import threading

from component import component_port, component_server
from harness import check, fixture, time_limit
from xmpp import esc, new_id

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib",
                   "push_app_server.py")
PUSH = "urn:xmpp:push:0"
SM = "urn:xmpp:sm:3"
DOMAIN = "push.localhost"
SECRET = "app-secret"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks", "disco",
           "ping", "cloud_notify"]


class AppServer:
    def __init__(self, srv):
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, APP, "--port", str(component_port(srv)), "--domain", DOMAIN,
             "--secret", SECRET], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        check(self.next(20) == "ready", "the app server did not connect")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout=10):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise AssertionError("nothing from the app server within %ss %s" % (timeout, err))

    def marker(self, sender, text):
        """Everything the server sent before text reached the app server.
        Notifications leave at the end of the loop iteration that queued
        the stanza: a ping answered first puts the marker after them."""
        ping = new_id("sync")
        sender.send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % ping)
        sender.expect("iq", attrs={"id": ping})
        sender.send("<message to='%s'><body>%s</body></message>" % (DOMAIN, esc(text)))
        got = []
        while True:
            item = self.next()
            if item == {"message": text}:
                return got
            got.append(item)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@fixture
def server(scope):
    return component_server(scope, {DOMAIN: {"component_secret": SECRET}},
                            options={"smacks_max_ack_delay_stanzas": 100},
                            modules=MODULES)


@fixture
def app(scope, server):
    a = AppServer(server)
    scope.cleanup(a.stop)
    return a


def enable(c, node, extra=""):
    iq = new_id("en")
    c.send("<iq type='set' id='%s'><enable xmlns='%s' jid='%s' node='%s'>%s</enable></iq>"
           % (iq, PUSH, DOMAIN, node, extra))
    c.expect("iq", attrs={"id": iq, "type": "result"})


def disable(c, node):
    iq = new_id("dis")
    c.send("<iq type='set' id='%s'><disable xmlns='%s' jid='%s' node='%s'/></iq>"
           % (iq, PUSH, DOMAIN, node))
    c.expect("iq", attrs={"id": iq, "type": "result"})


def hibernating(srv, acct, node, extra=""):
    """acct's phone: push enabled to node, stream management with
    resumption, then the connection cut: its session hibernates."""
    c = srv.login(acct, resource="phone", presence=True)
    enable(c, node, extra)
    c.send("<enable xmlns='%s' resume='true'/>" % SM)
    smid = c.expect("{%s}enabled" % SM).get("id")
    c.close()
    srv.wait_log(r"%s.*hibernating" % acct.user)
    return smid


def chat(sender, to, ident):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, ident))


@time_limit(90)
def test_one_notification_per_message_with_the_summary(server, app):
    acct = server.account("phone")
    secret = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
              "http://jabber.org/protocol/pubsub#publish-options</value></field>"
              "<field var='secret'><value>tok-123</value></field></x>")
    hibernating(server, acct, "dev-1", secret)
    bob = server.login("bob", presence=True)
    for i in range(4):
        chat(bob, acct.jid + "/phone", "m%d" % i)
    got = app.marker(bob, "after four")
    check(len(got) == 4, "notifications for 4 messages: %s" % got)
    for i, n in enumerate(got):
        check(n["node"] == "dev-1" and n["from"] == acct.jid, "addressing: %s" % n)
        check(n["fields"].get("FORM_TYPE") == "urn:xmpp:push:summary", "form: %s" % n)
        check(n["fields"].get("message-count") == str(i + 1), "count: %s" % n)
        check(n["publish_options"].get("secret") == "tok-123", "options: %s" % n)
        check(n["priority"] == "high", "a message is high priority: %s" % n)
        check(n["fields"].get("last-message-body") != "m%d" % i,
              "the body went out without consent: %s" % n)
    # a chat state is not a message: no notification after the first
    bob.send("<message to='%s' type='chat'><composing "
             "xmlns='http://jabber.org/protocol/chatstates'/></message>" % (acct.jid + "/phone"))
    check(app.marker(bob, "after composing") == [], "a chat state was pushed")


@time_limit(90)
def test_disable_stops_notifications(server, app):
    acct = server.account("quitter")
    smid = hibernating(server, acct, "dev-2")
    bob = server.login("bob", presence=True)
    chat(bob, acct.jid + "/phone", "before")
    check(len(app.marker(bob, "mark-1")) == 1, "no notification before disabling")
    c = server.client(name="resumed")
    c.auth_scram(acct.user, acct.password)
    c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
    c.expect("{%s}resumed" % SM)
    c.ignore = ("presence", "message", "{%s}r" % SM)
    disable(c, "dev-2")
    c.close()
    server.wait_log(r"%s.*hibernating" % acct.user)
    chat(bob, acct.jid + "/phone", "after")
    check(app.marker(bob, "mark-2") == [], "notified after disable")


@time_limit(90)
def test_app_server_error_disables_the_registration(server, app):
    acct = server.account("forgotten")
    hibernating(server, acct, "gone-dev")
    bob = server.login("bob", presence=True)
    chat(bob, acct.jid + "/phone", "first")
    got = app.marker(bob, "mark-a")
    check(len(got) == 1 and got[0]["node"] == "gone-dev", "first: %s" % got)
    server.wait_log(r"gone-dev of %s.*disabled" % acct.user)
    chat(bob, acct.jid + "/phone", "second")
    check(app.marker(bob, "mark-b") == [], "notified after item-not-found")
