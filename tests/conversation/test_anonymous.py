"""SASL ANONYMOUS (RFC 4505, XEP-0175) on a host with
authentication = "anonymous": only ANONYMOUS is offered, each login gets a
fresh random JID, two anonymous users chat, and their temporary accounts
are gone once they leave. And the test-only backend
authentication = "insecure": the first PLAIN login makes the account, later
ones need the same password, and the server refuses to start without
insecure_authentication_on_purpose."""

import base64
import time

from harness import check, fixture, raises
from server import ServerError
from xmpp import NS, AuthFailed, esc, new_id

ANON = {"localhost": {"authentication": "anonymous"}}
INSECURE = {"localhost": {"authentication": "insecure",
                          "insecure_authentication_on_purpose": True}}


@fixture
def anon_server(scope):
    return scope.server(host_options=ANON)


@fixture
def insecure_server(scope):
    return scope.server(host_options=INSECURE)


def auth_anonymous(c, trace="tester@example.org"):
    """ANONYMOUS with trace as the initial response; returns the answer's
    local name (success or failure) and the element."""
    data = base64.b64encode(trace.encode()).decode() if trace else "="
    c.send("<auth xmlns='%s' mechanism='ANONYMOUS'>%s</auth>" % (NS["sasl"], data))
    el = c.expect()
    return el.tag.split("}")[1], el


def anon_login(server, trace="tester@example.org"):
    c = server.client()
    check(c.mechanisms() == ["ANONYMOUS"], "mechanisms %s" % c.mechanisms())
    kind, el = auth_anonymous(c, trace)
    check(kind == "success", "ANONYMOUS answered <%s/>" % kind)
    c.restart()
    c.bind()
    c.ignore = ("presence",)
    c.presence()
    return c


def users(server):
    """The localparts starlingctl list shows for localhost."""
    return [w.split("@")[0] for w in server.ctl("list", "localhost").stdout.split()]


def wait_gone(server, names, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [n for n in names if n in users(server)]
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError("still listed after logout: %s" % left)


def test_two_anonymous_users_chat_and_are_gone_after(anon_server):
    a = anon_login(anon_server)
    b = anon_login(anon_server, trace="")
    na, nb = a.jid.split("@")[0], b.jid.split("@")[0]
    check(na != nb and len(na) >= 16, "localparts %r %r" % (na, nb))
    check(a.jid.split("/")[0].endswith("@localhost"), a.jid)
    listed = users(anon_server)
    check(na in listed and nb in listed, "list while online: %s" % listed)

    a.send("<message to='%s' type='chat'><body>hi b</body></message>" % b.jid)
    b.expect("message", attrs={"from": a.jid, "type": "chat"}, child="body")
    bare_a = a.jid.split("/")[0]
    b.send("<message to='%s' type='chat'><body>hi a</body></message>" % bare_a)
    a.expect("message", attrs={"from": b.jid}, child="body")
    # something stored under the temporary account: a roster item
    rid = new_id()
    a.send("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'><item jid='%s'/>"
           "</query></iq>" % (rid, esc(b.jid.split("/")[0])))
    a.expect("iq", attrs={"id": rid, "type": "result"})

    a.end_stream()
    b.end_stream()
    wait_gone(anon_server, [na, nb])
    # a message to a gone temporary account bounces: no such user
    c = anon_login(anon_server)
    check(c.jid.split("@")[0] not in (na, nb), "reused a JID: %s" % c.jid)
    c.send("<message to='%s' type='chat' id='m1'><body>anyone?</body></message>" % bare_a)
    c.expect_error("message", "service-unavailable")
    nc = c.jid.split("@")[0]
    c.close()
    wait_gone(anon_server, [nc])


def test_anonymous_host_offers_no_other_mechanism(anon_server):
    c = anon_server.client()
    for mech in ("PLAIN", "SCRAM-SHA-256"):
        try:
            if mech == "PLAIN":
                c.auth_plain("someone", "password")
            else:
                c.auth_scram("someone", "password", mechanism=mech)
            raise AssertionError("%s accepted on an anonymous host" % mech)
        except AuthFailed as e:
            check(e.condition == "invalid-mechanism", "%s: %s" % (mech, e.condition))


def test_anonymous_needs_tls_first(anon_server):
    c = anon_server.client(tls=None)
    check(c.mechanisms() == [], "mechanisms before TLS: %s" % c.mechanisms())
    kind, el = auth_anonymous(c)
    check(kind == "failure" and el.find("{%s}encryption-required" % NS["sasl"])
          is not None, "before TLS: <%s/>" % kind)
    c.starttls()
    check(c.mechanisms() == ["ANONYMOUS"], "after TLS: %s" % c.mechanisms())
    kind, el = auth_anonymous(c)
    check(kind == "success", "after TLS: <%s/>" % kind)


def test_anonymous_trace_over_255_characters_is_malformed(anon_server):
    c = anon_server.client()
    kind, el = auth_anonymous(c, "x" * 256)
    check(kind == "failure" and el.find("{%s}malformed-request" % NS["sasl"])
          is not None, "long trace: <%s/>" % kind)


def test_anonymous_account_cannot_get_a_password(ctx):
    anon_server = ctx.server(host_options={"localhost": dict(
        ANON["localhost"], allow_registration=True)},
        modules=["roster", "presence", "message", "iq", "register"])
    a = anon_login(anon_server)
    node = a.jid.split("@")[0]
    rid = new_id()
    a.send("<iq type='set' id='%s'><query xmlns='jabber:iq:register'><username>%s"
           "</username><password>keep-me</password></query></iq>" % (rid, node))
    a.expect_error("iq", "not-allowed")
    # nor register a permanent account before authentication
    c = anon_server.client()
    rid = new_id()
    c.send("<iq type='set' id='%s'><query xmlns='jabber:iq:register'><username>perm"
           "</username><password>pw</password></query></iq>" % rid)
    c.expect_error("iq", "service-unavailable")
    check("perm" not in users(anon_server), "a permanent account was made")
    a.close()
    wait_gone(anon_server, [node])


def host_client(server, domain):
    c = server.client(tls=None, open_stream=False)
    c.domain = domain
    c.open_stream()
    c.starttls()
    return c


def test_anonymous_is_per_host(ctx):
    srv = ctx.server(hosts=("localhost", "normal.test"), host_options=ANON)
    c = host_client(srv, "normal.test")
    check("ANONYMOUS" not in c.mechanisms() and "SCRAM-SHA-256" in c.mechanisms(),
          "normal host: %s" % c.mechanisms())
    kind, el = auth_anonymous(c)
    check(kind == "failure" and el.find("{%s}invalid-mechanism" % NS["sasl"])
          is not None, "ANONYMOUS on a normal host: <%s/>" % kind)
    c = host_client(srv, "localhost")
    check(c.mechanisms() == ["ANONYMOUS"], "anonymous host: %s" % c.mechanisms())


def test_anonymous_accounts_left_by_a_crash_are_removed_at_start(ctx):
    anon_server = ctx.server(host_options=ANON)
    a = anon_login(anon_server)
    node = a.jid.split("@")[0]
    rid = new_id()
    a.send("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'><item jid='x@y'/>"
           "</query></iq>" % rid)
    a.expect("iq", attrs={"id": rid, "type": "result"})
    anon_server.crash()
    check(node in users(anon_server), "not stored before the crash")
    anon_server.restart()
    check(node not in users(anon_server), "left over after restart")


# -- the test-only backend ------------------------------------------------------

def test_insecure_first_login_creates_then_needs_the_same_password(insecure_server):
    user = "first%s" % new_id()
    check(user not in users(insecure_server), "exists before")
    c = insecure_server.client()
    check(c.mechanisms() == ["PLAIN"], "mechanisms %s" % c.mechanisms())
    c.auth_plain(user, "chosen-pw")
    c.bind()
    c.close()
    check(user in users(insecure_server), "no account after the first login")
    c = insecure_server.client()
    e = raises(AuthFailed, c.auth_plain, user, "other-pw")
    check(e.condition == "not-authorized", e.condition)
    c = insecure_server.client()
    c.auth_plain(user, "chosen-pw")
    c.bind()


def test_insecure_account_has_scram_credentials_not_the_password(insecure_server):
    user = "scram%s" % new_id()
    c = insecure_server.client()
    c.auth_plain(user, "derived-pw-%s" % user)
    c.bind()
    out = insecure_server.ctl("export", "localhost").stdout
    check(user in out and "SCRAM-SHA-256" in out and "SCRAM-SHA-1" in out,
          "export: %s" % out[:2000])
    check("derived-pw-" not in out, "the password is stored as it is")


def test_insecure_needs_tls_for_plain(insecure_server):
    user = "x%s" % new_id()
    c = insecure_server.client(tls=None)
    check(c.mechanisms() == [], "before TLS: %s" % c.mechanisms())
    e = raises(AuthFailed, c.auth_plain, user, "pw")
    check(e.condition == "encryption-required", e.condition)
    check(user not in users(insecure_server), "made before TLS")
    c.starttls()
    check(c.mechanisms() == ["PLAIN"], "after TLS: %s" % c.mechanisms())
    c.auth_plain(user, "pw")


def test_insecure_refused_at_start_without_the_flag(ctx):
    srv = ctx.server(start=False, host_options={
        "localhost": {"authentication": "insecure"}})
    raises(ServerError, srv.start)
    check(srv.exit_code not in (None, 0), "exit code %s" % srv.exit_code)
    log = srv.log_text()
    check("host localhost" in log and "insecure_authentication_on_purpose" in log
          and 'authentication = "insecure"' in log, srv.log_tail(20))


def test_unknown_authentication_refused_at_start(ctx):
    srv = ctx.server(start=False, host_options={
        "localhost": {"authentication": "ldap"}})
    raises(ServerError, srv.start)
    check(srv.exit_code not in (None, 0), "exit code %s" % srv.exit_code)
    check("option 'authentication'" in srv.log_text(), srv.log_tail(20))


def test_check_reports_both_options(ctx):
    srv = ctx.server(host_options={"localhost": {"authentication": "anonymous"},
                                     "other.test": INSECURE["localhost"]},
                       hosts=("localhost", "other.test"))
    r = srv.ctl("check", "config", check=False)
    out = r.stdout + r.stderr
    check('host localhost: authentication = "anonymous"' in out, out)
    check('host other.test: authentication = "insecure"' in out, out)
    check(r.returncode == 0, "check failed: %s" % out)
    bad = ctx.server(start=False, host_options={
        "localhost": {"authentication": "insecure"}})
    raises(ServerError, bad.start)
    r = bad.ctl("check", "config", check=False)
    out = r.stdout + r.stderr
    check(r.returncode != 0 and "insecure_authentication_on_purpose" in out, out)


def test_reload_checks_and_applies_authentication(ctx):
    srv = ctx.server()
    srv.host_options = {"localhost": {"authentication": "insecure"}}
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text())
    r = srv.ctl("reload", check=False)
    out = r.stdout + r.stderr
    check(r.returncode != 0 and "insecure_authentication_on_purpose" in out
          and "nothing was changed" in out, out)
    c = srv.client()
    check("SCRAM-SHA-256" in c.mechanisms(), "changed anyway: %s" % c.mechanisms())
    srv.host_options = ANON
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text())
    srv.ctl("reload")
    c = srv.client()
    check(c.mechanisms() == ["ANONYMOUS"], "after reload: %s" % c.mechanisms())
    kind, _ = auth_anonymous(c)
    check(kind == "success", "ANONYMOUS after reload: <%s/>" % kind)
