"""starlingctl account commands against a running server: what a client
sees after register, adduser, passwd and deluser; and list."""

from harness import check, fixture
from xmpp import AuthFailed, new_id


@fixture
def server(scope):
    return scope.server()


def can_login(server, user, password):
    c = server.client()
    try:
        c.auth_scram(user, password)
    except AuthFailed as e:
        check(e.condition == "not-authorized", "condition %s" % e.condition)
        return False
    c.bind()
    return True


def test_register_then_login(server):
    user = "reg%s" % new_id()
    server.ctl("register", user, "localhost", "s3cret")
    check(can_login(server, user, "s3cret"), "cannot log in after register")


def test_adduser_reads_the_password_from_stdin(server):
    user = "add%s" % new_id()
    server.ctl("adduser", "%s@localhost" % user, input="from-stdin\n")
    check(can_login(server, user, "from-stdin"), "cannot log in after adduser")


def test_passwd_changes_the_password(server):
    a = server.account("pw")
    server.ctl("passwd", a.jid, input="new-password\n")
    check(not can_login(server, a.user, a.password), "old password still works")
    check(can_login(server, a.user, "new-password"), "new password fails")


def test_deluser_removes_the_account(server):
    a = server.account("gone")
    check(can_login(server, a.user, a.password), "cannot log in before deluser")
    server.ctl("deluser", a.jid)
    check(not can_login(server, a.user, a.password), "still logs in after deluser")


def test_deluser_closes_the_sessions_of_a_running_server(server):
    a = server.account("online")
    other = server.account("stays")
    c = server.login(a)
    o = server.login(other)
    out = server.ctl("deluser", a.jid).stdout
    check("1 sessions closed" in out, "deluser said: %r" % out)
    c.expect_stream_error("not-authorized")
    check(not can_login(server, a.user, a.password), "still logs in after deluser")
    # everyone else is still served
    pid = new_id()
    o.send("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>" % pid)
    o.expect("iq", attrs={"id": pid, "type": "result"})


def test_adduser_and_deluser_refuse_what_cannot_be(server):
    a = server.account("exists")
    r = server.ctl("adduser", a.jid, input="whatever\n", check=False)
    check(r.returncode != 0 and "already exists" in r.stderr, "adduser: %r" % r.stderr)
    check(can_login(server, a.user, a.password), "adduser changed an existing account")
    r = server.ctl("deluser", "nobody%s@localhost" % new_id(), check=False)
    check(r.returncode != 0 and "no such user" in r.stderr, "deluser: %r" % r.stderr)
    r = server.ctl("passwd", a.jid, input="", check=False)
    check(r.returncode != 0, "passwd with no password succeeded")
    check(can_login(server, a.user, a.password), "passwd with no password changed it")


def test_list_shows_the_host_users(server):
    a = server.account("listed")
    b = server.account("listed")
    out = server.ctl("list", "localhost").stdout
    names = out.split()
    for acct in (a, b):
        check(acct.user in names or acct.jid in names,
              "%s missing from list output:\n%s" % (acct.user, out))


def test_unicode_password(server):
    a = server.register("uni%s" % new_id(), "p\u00e4ssw\u00f6rd-\u2603")
    check(can_login(server, a.user, a.password), "unicode password fails")
    check(not can_login(server, a.user, "passwort"), "wrong password works")


def test_register_many_creates_a_numbered_range(server):
    prefix = "bulk%s-" % new_id()
    r = server.ctl("register-many", prefix, "3", "27", "bulk-pw", "localhost")
    check("25 accounts" in r.stderr, "register-many says: %r" % r.stderr)
    names = server.ctl("list", "localhost").stdout.split()
    made = sorted(n for n in names if n.startswith(prefix))
    check(len(made) == 25, "accounts listed: %s" % made)
    for i in (3, 15, 27):
        check(can_login(server, "%s%d" % (prefix, i), "bulk-pw"), "%s%d cannot log in"
              % (prefix, i))
    check(not can_login(server, "%s2" % prefix, "bulk-pw"), "an account below FIRST exists")
    check(not can_login(server, "%s28" % prefix, "bulk-pw"), "an account past LAST exists")
    for bad in (["x", "5", "4", "pw", "localhost"], ["x", "a", "4", "pw", "localhost"],
                ["x", "1", "2", "", "localhost"], ["x", "1", "2", "pw", "elsewhere.example"]):
        r = server.ctl("register-many", *bad, check=False)
        check(r.returncode != 0 and r.stderr.strip(), "register-many %s: %r" % (bad, r))
