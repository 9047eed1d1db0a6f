"""mod_cloud_notify (XEP-0357 push notifications): what an app server sees.

The app server here is a logged-in account's full JID that answers the
server's publish requests as a real app server would (a result, or an
error): XEP-0357 lets any XMPP entity be one."""

import signal

from harness import check, fixture, sync, time_limit
from xmpp import esc, find, find_all, new_id

PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"
SM = "urn:xmpp:sm:3"
CMD = "http://jabber.org/protocol/commands"
SETTINGS = "urn:starling:push:settings"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks", "disco",
           "adhoc", "cloud_notify"]


@fixture
def server(scope):
    return scope.server(modules=MODULES, options={
        "smacks_max_ack_delay_stanzas": 100, "push_retry_delay": 0.2})


def app_server(srv, name="app"):
    app = srv.login(name, resource="push", presence=True)
    return app


def enable(c, app, node, secret=None, extra=""):
    form = ""
    if secret:
        form = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE'>"
                "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                "<field var='secret'><value>%s</value></field></x>" % (DATA, esc(secret)))
    iq = new_id("en")
    c.send("<iq type='set' id='%s'><enable xmlns='%s' jid='%s' node='%s'>%s</enable>%s</iq>"
           % (iq, PUSH, esc(app.jid), esc(node), form, extra))
    return c.expect("iq", attrs={"id": iq})


def disable(c, app, node=None):
    """Disables pushes to node of app, or to all its nodes: the server says yes."""
    iq = new_id("dis")
    c.send("<iq type='set' id='%s'><disable xmlns='%s' jid='%s'%s/></iq>"
           % (iq, PUSH, esc(app.jid), " node='%s'" % esc(node) if node else ""))
    c.expect("iq", attrs={"id": iq, "type": "result"})


def sm_enable(c):
    c.send("<enable xmlns='%s' resume='true'/>" % SM)
    return c.expect("{%s}enabled" % SM).get("id")


def chat(sender, to, ident, body=None):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, esc(body or ident)))


def summary(push_iq):
    """The summary form's fields of a publish request, as {var: value}."""
    x = find(push_iq, "{%s}pubsub/{%s}publish/{%s}item/{%s}notification/{%s}x"
             % (PUBSUB, PUBSUB, PUBSUB, PUSH, DATA))
    check(x is not None, "no summary form in %r" % push_iq)
    out = {}
    for f in find_all(x, "{%s}field" % DATA):
        v = find(f, "{%s}value" % DATA)
        out[f.get("var")] = v.text if v is not None else None
    return out


def expect_push(app, node, answer="result", error=None):
    iq = app.expect("iq", attrs={"type": "set"})
    pub = find(iq, "{%s}pubsub/{%s}publish" % (PUBSUB, PUBSUB))
    check(pub is not None and pub.get("node") == node,
          "expected a publish to node %s: %r" % (node, iq))
    if answer == "result":
        app.send("<iq type='result' to='%s' id='%s'/>" % (esc(iq.get("from")), iq.get("id")))
    elif answer == "error":
        refuse(app, iq, *error)
    return iq


def refuse(app, iq, etype, cond):
    """The app server answers a publish request with an error."""
    app.send("<iq type='error' to='%s' id='%s'><error type='%s'><%s xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
             % (esc(iq.get("from")), iq.get("id"), etype, cond))


def log_out(c):
    """The client ends its stream: no session, no hibernation."""
    c.send("</stream:stream>")
    c.expect_closed()


def check_no_push(sender, app, why):
    """Nothing reached the app server after what sender sent: a message
    the app server sends itself is the next thing it gets."""
    sync(sender, app)
    app.send("<message to='%s' id='probe'/>" % esc(app.jid))
    got = app.expect("message")
    check(got.get("id") == "probe", "%s: %r" % (why, got))


def phone_and_friend(srv, n, user):
    """An app server, an account's phone and a friend who writes to it."""
    app = app_server(srv, "app%d" % n)
    acct = srv.account(user)
    a = srv.login(acct, resource="phone", presence=True)
    b = srv.login("friend%d" % n, presence=True)
    return app, acct, a, b


def hibernate(srv, c, name):
    c.close()
    srv.wait_log(r"%s.*hibernating" % name)


def test_account_advertises_push(server):
    a = server.login("disco", presence=True)
    iq = new_id("d")
    a.send("<iq type='get' id='%s' to='%s'><query xmlns="
           "'http://jabber.org/protocol/disco#info'/></iq>" % (iq, a.bare))
    r = a.expect("iq", attrs={"id": iq, "type": "result"})
    feats = [f.get("var") for f in find_all(r, "{http://jabber.org/protocol/disco#info}"
                                              "query/{http://jabber.org/protocol/disco#info}feature")]
    check(PUSH in feats, "urn:xmpp:push:0 not among the account's features: %s" % feats)


def test_enable_needs_a_jid(server):
    a = server.login("nojid", presence=True)
    iq = new_id("en")
    a.send("<iq type='set' id='%s'><enable xmlns='%s' node='x'/></iq>" % (iq, PUSH))
    a.expect_error("iq", "bad-request", type="modify", attrs={"id": iq})
    iq = new_id("en")
    a.send("<iq type='set' id='%s'><enable xmlns='%s' jid='app@localhost' node='x'>"
           "<x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>urn:other</value>"
           "</field></x></enable></iq>" % (iq, PUSH, DATA))
    a.expect_error("iq", "bad-request", type="modify", attrs={"id": iq})


@time_limit(60)
def test_hibernated_session_pushes_then_resumes(server):
    app, acct, a, b = phone_and_friend(server, 1, "phone1")
    check(enable(a, app, "node-a", secret="s3cret").get("type") == "result", "enable refused")
    smid = sm_enable(a)
    hibernate(server, a, "phone1")
    chat(b, acct.jid + "/phone", "wake", body="Wherefore art thou?")
    iq = expect_push(app, "node-a")
    check(iq.get("from") == acct.jid, "the push comes from the account: %r" % iq.get("from"))
    fields = summary(iq)
    check(fields.get("FORM_TYPE") == "urn:xmpp:push:summary", "form type: %s" % fields)
    check(fields.get("message-count") == "1", "message-count: %s" % fields)
    check(fields.get("last-message-body") != "Wherefore art thou?",
          "the body went out without the user's consent: %s" % fields)
    check("last-message-sender" not in fields, "the sender went out: %s" % fields)
    prio = find(iq, "{%s}pubsub/{%s}publish/{%s}item/{%s}notification/"
                "{tigase:push:priority:0}priority" % (PUBSUB, PUBSUB, PUBSUB, PUSH))
    check(prio is not None and prio.text == "high", "an important message is high priority")
    opts = find(iq, "{%s}pubsub/{%s}publish-options/{%s}x" % (PUBSUB, PUBSUB, DATA))
    secret = [f for f in find_all(opts, "{%s}field" % DATA) if f.get("var") == "secret"]
    check(secret and find(secret[0], "{%s}value" % DATA).text == "s3cret",
          "publish-options carry the client's secret: %r" % opts)
    # a second message, also important: pushed with the count grown
    chat(b, acct.jid + "/phone", "again")
    check(summary(expect_push(app, "node-a")).get("message-count") == "2", "count grows")
    # the client comes back: both messages are there
    c = server.client(name="resumed")
    c.auth_scram(acct.user, acct.password)
    c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
    c.expect("{%s}resumed" % SM)
    c.ignore = ("presence", "{%s}r" % SM)
    c.expect("message", attrs={"id": "wake"})
    c.expect("message", attrs={"id": "again"})
    # a connected client gets no pushes: the next one goes to it only
    chat(b, acct.jid + "/phone", "live")
    c.expect("message", attrs={"id": "live"})
    check_no_push(b, app, "a push for a connected session")


@time_limit(60)
def test_no_session_pushes_for_offline_messages(server):
    app, acct, a, b = phone_and_friend(server, 2, "phone2")
    enable(a, app, "node-b")
    log_out(a)
    chat(b, acct.jid, "offline-1")
    fields = summary(expect_push(app, "node-b"))
    check(fields.get("message-count") == "1", "message-count: %s" % fields)
    # a subscription request wakes it too
    b.send("<presence to='%s' type='subscribe'/>" % acct.jid)
    fields = summary(expect_push(app, "node-b"))
    check(fields.get("pending-subscription-count") == "1", "subscription: %s" % fields)
    # the message waited in offline storage
    again = server.login(acct, resource="laptop")
    again.presence()
    again.expect("message", attrs={"id": "offline-1"})


@time_limit(60)
def test_desktop_online_phone_gone_still_pushes(server):
    app = app_server(server, "app3")
    acct = server.account("multi")
    phone = server.login(acct, resource="phone", presence=True)
    desk = server.login(acct, resource="desk", presence=True)
    b = server.login("friend3", presence=True)
    enable(phone, app, "node-c")
    log_out(phone)
    chat(b, acct.jid, "both")
    desk.expect("message", attrs={"id": "both"})
    expect_push(app, "node-c")


@time_limit(60)
def test_user_allows_body_and_sender(server):
    app, acct, a, b = phone_and_friend(server, 4, "consent")
    iq = new_id("c")
    a.send("<iq type='set' id='%s' to='localhost'><command xmlns='%s' node='%s' "
           "action='execute'/></iq>" % (iq, CMD, SETTINGS))
    r = a.expect("iq", attrs={"id": iq, "type": "result"})
    sid = find(r, "{%s}command" % CMD).get("sessionid")
    iq = new_id("c")
    a.send("<iq type='set' id='%s' to='localhost'><command xmlns='%s' node='%s' "
           "sessionid='%s' action='complete'><x xmlns='%s' type='submit'>"
           "<field var='FORM_TYPE'><value>%s</value></field>"
           "<field var='body'><value>1</value></field>"
           "<field var='sender'><value>true</value></field></x></command></iq>"
           % (iq, CMD, SETTINGS, sid, DATA, SETTINGS))
    r = a.expect("iq", attrs={"id": iq, "type": "result"})
    check(find(r, "{%s}command" % CMD).get("status") == "completed", "settings: %r" % r)
    enable(a, app, "node-d")
    log_out(a)
    chat(b, acct.jid, "hello", body="Meet at noon")
    fields = summary(expect_push(app, "node-d"))
    check(fields.get("last-message-body") == "Meet at noon", "body: %s" % fields)
    check(fields.get("last-message-sender") == b.jid,
          "sender: %s" % fields)
    # an encrypted message's body never goes out
    b.send("<message to='%s' type='chat' id='enc'><body>I sent you an OMEMO message</body>"
           "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>"
           "</message>" % acct.jid)
    fields = summary(expect_push(app, "node-d"))
    check(fields.get("last-message-body") != "I sent you an OMEMO message",
          "an encrypted message's body went out: %s" % fields)


@time_limit(60)
def test_auth_error_disables_and_wait_error_retries(server):
    app, acct, a, b = phone_and_friend(server, 5, "errs")
    enable(a, app, "node-gone")
    enable(a, app, "node-busy")
    log_out(a)
    chat(b, acct.jid, "one")
    seen = {}
    for _ in range(2):
        iq = app.expect("iq", attrs={"type": "set"})
        seen[find(iq, "{%s}pubsub/{%s}publish" % (PUBSUB, PUBSUB)).get("node")] = iq
    check(set(seen) == {"node-gone", "node-busy"}, "pushed to %s" % list(seen))
    gone, busy = seen["node-gone"], seen["node-busy"]
    refuse(app, gone, "auth", "not-authorized")
    refuse(app, busy, "wait", "resource-constraint")
    # the busy one comes again (a new request id), the same notification
    retry = expect_push(app, "node-busy")
    check(retry.get("id") != busy.get("id"), "a retry is a new request")
    check(summary(retry) == summary(busy), "the retry carries the same summary")
    # the refused registration is gone: the next message pushes node-busy only
    chat(b, acct.jid, "two")
    expect_push(app, "node-busy")
    check_no_push(b, app, "node-gone still pushed after an auth error")


@time_limit(60)
def test_disable_stops_pushes(server):
    app, acct, a, b = phone_and_friend(server, 6, "quits")
    enable(a, app, "n1")
    enable(a, app, "n2")
    disable(a, app, "n1")
    log_out(a)
    chat(b, acct.jid, "m")
    expect_push(app, "n2")
    a2 = server.login(acct, resource="phone2", presence=True)
    a2.ignore = ("message", "presence")
    disable(a2, app)                   # every node of the app server
    log_out(a2)
    chat(b, acct.jid, "m2")
    check_no_push(b, app, "pushed after disable")


@time_limit(60)
def test_registrations_survive_a_restart(ctx):
    srv = ctx.server(modules=MODULES)
    acct = srv.account("keeper")
    app = app_server(srv, "app7")
    a = srv.login(acct, resource="phone", presence=True)
    enable(a, app, "kept")
    log_out(a)
    app.close()
    srv.send_signal(signal.SIGTERM)
    srv.wait_exit()
    srv.restart()
    app = srv.login(app.account, resource="push", presence=True)
    b = srv.login("friend7", presence=True)
    chat(b, acct.jid, "after-restart")
    expect_push(app, "kept")
