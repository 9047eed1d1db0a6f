"""mod_adhoc (XEP-0050) and mod_admin_adhoc (XEP-0133): an admin runs the
service administration commands from a client and sees their effect as
any user would (an account that can log in, a session that ends, a
headline that arrives); a user who is not an admin neither sees nor runs
them."""

from harness import bystanders, check, fixture
from xmpp import esc, find, find_all, new_id

CMD = "http://jabber.org/protocol/commands"
ADMIN = "http://jabber.org/protocol/admin"
DATA = "jabber:x:data"
ITEMS = "http://jabber.org/protocol/disco#items"
INFO = "http://jabber.org/protocol/disco#info"
MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "adhoc",
           "admin_adhoc", "vcard"]


@fixture
def server(scope):
    srv = scope.server(modules=MODULES, options={"admins": ["boss@localhost"]})
    srv.register("boss", "boss-pw")
    return srv


def boss(srv):
    return srv.login(srv.accounts["boss@localhost"])


def execute(c, node, action="execute", sessionid=None, fields=None):
    """Sends a <command/>; returns the answer (result or error)."""
    iq = new_id("c")
    attrs = "node='%s' action='%s'" % (node, action)
    if sessionid:
        attrs += " sessionid='%s'" % sessionid
    form = ""
    if fields is not None:
        form = "<x xmlns='%s' type='submit'>%s</x>" % (DATA, "".join(
            "<field var='%s'>%s</field>" % (var, "".join(
                "<value>%s</value>" % esc(v) for v in (vals if isinstance(vals, list) else [vals])))
            for var, vals in fields.items()))
    c.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' %s>%s</command></iq>"
           % (iq, CMD, attrs, form))
    return c.expect("iq", attrs={"id": iq}, skip=("message",))


def run(c, name, fields):
    """A two-stage command: execute, check the form, submit it. The final
    <command/>."""
    node = "%s#%s" % (ADMIN, name)
    first = execute(c, node)
    check(first.get("type") == "result", "execute %s: %s" % (name, first))
    cmd = find(first, "{%s}command" % CMD)
    check(cmd.get("status") == "executing", "%s is not executing" % name)
    check(find(cmd, "{%s}x" % DATA) is not None, "%s offers no form" % name)
    done = execute(c, node, "complete", cmd.get("sessionid"), fields)
    check(done.get("type") == "result", "complete %s: %s" % (name, done))
    cmd = find(done, "{%s}command" % CMD)
    check(cmd.get("status") == "completed", "%s did not complete" % name)
    return cmd


def notes(cmd):
    return [(n.get("type"), n.text or "") for n in find_all(cmd, "{%s}note" % CMD)]


def field_values(cmd, var):
    for f in find_all(cmd, "{%s}x/{%s}field" % (DATA, DATA)):
        if f.get("var") == var:
            return [v.text for v in find_all(f, "{%s}value" % DATA)]
    return None


def command_nodes(c):
    iq = new_id("d")
    c.send("<iq type='get' to='localhost' id='%s'><query xmlns='%s' node='%s'/></iq>"
           % (iq, ITEMS, CMD))
    el = c.expect("iq", attrs={"id": iq, "type": "result"})
    return {i.get("node") for i in find_all(el, "{%s}query/{%s}item" % (ITEMS, ITEMS))}


def test_the_admin_sees_the_commands_a_user_does_not(server):
    admin, user = boss(server), server.login("plain")
    nodes = command_nodes(admin)
    for name in ("add-user", "delete-user", "change-user-password", "end-user-session",
                 "get-online-users-num", "get-registered-users-num", "announce"):
        check("%s#%s" % (ADMIN, name) in nodes, "%s is not listed for the admin" % name)
    check(not any(n.startswith(ADMIN) for n in command_nodes(user)),
          "admin commands listed for a plain user")
    iq = new_id("i")
    admin.send("<iq type='get' to='localhost' id='%s'><query xmlns='%s' node='%s#add-user'/></iq>"
               % (iq, INFO, ADMIN))
    el = admin.expect("iq", attrs={"id": iq, "type": "result"})
    check(find(el, "{%s}query/{%s}identity" % (INFO, INFO)).get("type") == "command-node",
          "the command's node is not a command-node")


def test_a_user_who_is_not_an_admin_is_forbidden(server):
    with bystanders(server):
        user = server.login("plain")
        el = execute(user, "%s#add-user" % ADMIN)
        check(find(el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden") is not None,
              "a plain user ran add-user: %s" % el)


def test_add_user_then_the_new_account_logs_in(server):
    admin = boss(server)
    cmd = run(admin, "add-user", {"accountjid": "newbie@localhost", "password": "n3w",
                                  "password-verify": "n3w"})
    check(any(t == "info" for t, _ in notes(cmd)), "no info note: %s" % notes(cmd))
    from server import Account
    server.login(Account("newbie", "n3w", "localhost"))
    # the same account again is refused, with a note saying why
    cmd = run(admin, "add-user", {"accountjid": "newbie@localhost", "password": "x",
                                  "password-verify": "x"})
    check(any(t == "error" and "exists" in text for t, text in notes(cmd)),
          "adding an existing user: %s" % notes(cmd))


def test_change_password_and_delete_user(server):
    admin = boss(server)
    victim = server.account("victim")
    run(admin, "change-user-password", {"accountjid": victim.jid, "password": "changed"})
    from server import Account
    c = server.login(Account(victim.user, "changed", "localhost"))
    run(admin, "delete-user", {"accountjids": [victim.jid]})
    c.expect_stream_error("not-authorized")
    cmd = run(admin, "delete-user", {"accountjids": [victim.jid]})
    check(any(t == "error" for t, _ in notes(cmd)), "deleting a missing user: %s" % notes(cmd))


def test_end_user_session(server):
    admin = boss(server)
    target = server.login("target")
    run(admin, "end-user-session", {"accountjids": [target.jid]})
    target.expect_stream_error("policy-violation")


def test_counts_lists_and_announcement(server):
    admin = boss(server)
    others = [server.login("online") for _ in range(2)]
    num = execute(admin, "%s#get-online-users-num" % ADMIN)
    cmd = find(num, "{%s}command" % CMD)
    check(cmd.get("status") == "completed", "get-online-users-num did not complete")
    check(int(field_values(cmd, "onlineusersnum")[0]) >= 3, "online count: %s" % num)
    reg = find(execute(admin, "%s#get-registered-users-num" % ADMIN), "{%s}command" % CMD)
    check(int(field_values(reg, "registeredusersnum")[0]) >= 3, "registered count")
    listed = run(admin, "get-online-users-list", {"max_items": "100"})
    jids = set(field_values(listed, "onlineuserjids") or [])
    for o in others:
        check(o.account.jid in jids, "%s not in the online list" % o.account.jid)
    run(admin, "announce", {"subject": "Maintenance", "announcement": ["Down at", "noon"]})
    for o in others:
        m = o.expect("message", attrs={"type": "headline", "from": "localhost"})
        check(find(m, "body").text == "Down at\nnoon", "announcement body: %s" % m)


def test_reload_modules_and_status(server):
    admin = boss(server)
    watcher = server.login("watcher")
    cmd = run(admin, "reload-modules", {"modules": ["vcard"]})
    check(any("reloaded vcard" in text for _, text in notes(cmd)), "reload: %s" % notes(cmd))
    watcher.roundtrip()         # still connected
    status = find(execute(admin, "%s#server-status" % ADMIN), "{%s}command" % CMD)
    check(any("uptime" in text for _, text in notes(status)), "status: %s" % notes(status))


def test_sessions_are_checked(server):
    admin = boss(server)
    node = "%s#add-user" % ADMIN
    first = find(execute(admin, node), "{%s}command" % CMD)
    el = execute(admin, node, "complete", "not-a-session", {"accountjid": "x@localhost"})
    check(find(el, "error/{%s}bad-sessionid" % CMD) is not None, "bad sessionid: %s" % el)
    el = execute(admin, node, "prev", first.get("sessionid"))
    check(find(el, "error/{%s}bad-action" % CMD) is not None, "bad action: %s" % el)
    el = execute(admin, node, "dance", first.get("sessionid"))
    check(find(el, "error/{%s}malformed-action" % CMD) is not None, "malformed action: %s" % el)
    done = find(execute(admin, node, "cancel", first.get("sessionid")), "{%s}command" % CMD)
    check(done.get("status") == "canceled", "cancel: %s" % done)
    el = execute(admin, node, "complete", first.get("sessionid"), {"accountjid": "x@localhost"})
    check(find(el, "error/{%s}bad-sessionid" % CMD) is not None,
          "a canceled session went on: %s" % el)
