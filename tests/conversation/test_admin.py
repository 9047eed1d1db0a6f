"""starlingctl's commands for a running server, over the admin socket:
status, sessions, kick, user create/password/delete on the live server,
module list/load/unload/reload/info, the Lua shell, log reopen."""

import re
import signal

from harness import check, exchange, fixture, sync, time_limit
from xmpp import AuthFailed, esc, new_id

NS_PROBE = "urn:example:admin-probe"

# A module the tests reload: it answers an iq get with its version and a
# counter that module.save()/module.restore() carry over reloads.
PROBE = """\
local st = require "util.stanza"
local NS = "%s"
local count = 0

module:add_feature(NS)

module:hook("iq-get/host/" .. NS .. ":query", function(event)
    count = count + 1
    event.origin:send(st.reply(event.stanza)
        :tag("query", { xmlns = NS, version = "VERSION", count = tostring(count) }))
    return true
end)

function module.save() return { count = count } end
function module.restore(state) count = state.count end
""" % NS_PROBE

MODULES = ["roster", "presence", "message", "iq", "disco"]


def probe_source(version):
    return PROBE.replace("VERSION", version)


@fixture
def server(scope):
    return scope.server(modules=MODULES, plugins={"probe": probe_source("v1")})


def ask_probe(client, server):
    iq_id = new_id("probe")
    client.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>"
                % (server.domain, iq_id, NS_PROBE))
    return client.expect("iq", attrs={"id": iq_id, "type": "result"},
                         child="{%s}query" % NS_PROBE)


def write_plugin(server, name, source):
    with open("%s/mod_%s.lua" % (server.plugin_dir, name), "w") as f:
        f.write(source)


def test_status_counts_connections_and_sessions(server):
    a = server.login("status")
    server.client()                                 # negotiating, not bound
    out = server.ctl("status").stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    print(out)
    check(fields["version"] == "0.1.0", out)
    check(fields["hosts"] == "localhost", out)
    check(int(fields["connections"]) >= 2, out)
    check(int(fields["sessions"]) >= 1, out)
    check(re.match(r"[\d.]+ MiB resident", fields["memory"]), out)
    check(re.match(r"[\d.]+ MiB", fields["lua memory"]), out)
    loop = re.match(r"(\d+) iterations, mean ([\d.]+) ms, longest ([\d.]+) ms in the last "
                    r"minute$", fields["loop"])
    check(loop and int(loop.group(1)) > 0 and float(loop.group(3)) > 0, out)
    exchange(a, a)


def test_sessions_lists_jid_ip_tls_and_cipher(server):
    a = server.login("lister", resource="desk")
    b = server.login("lister", resource="direct", tls="direct")
    out = server.ctl("sessions", "localhost").stdout
    print(out)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    for c in (a, b):
        row = rows.get(c.jid)
        check(row is not None, "%s not listed:\n%s" % (c.jid, out))
        check(row[1].startswith("127.0.0.1:"), row)
        check(row[2] in ("TLSv1.2", "TLSv1.3"), row)
        check(row[3] not in ("-", "none"), row)
        check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", row[4]), row)


def test_kick_closes_one_session_or_all_of_an_account(server):
    account = server.account("kicked")
    one = server.login(account, resource="one")
    two = server.login(account, resource="two")
    three = server.login(account, resource="three")
    other = server.login("bystander")
    out = server.ctl("kick", one.jid, "go", "away").stdout
    check("kicked 1 session" in out, out)
    err = one.expect_stream_error("policy-violation")
    check("go away" in "".join(err.itertext()), "reason not in the stream error")
    exchange(two, other)
    out = server.ctl("kick", account.jid).stdout
    check("kicked 2 session" in out, out)
    two.expect_stream_error("policy-violation")
    three.expect_stream_error("policy-violation")
    proc = server.ctl("kick", account.jid, check=False)
    check(proc.returncode == 1 and "no session" in proc.stderr, proc.stderr)
    exchange(other, other)


def test_user_create_password_delete_on_the_live_server(server):
    jid = "live%s@%s" % (new_id("u").lower(), server.domain)
    user = jid.split("@")[0]
    out = server.ctl("user", "create", jid, "first-pw").stdout
    check("created" in out, out)
    proc = server.ctl("user", "create", jid, "again", check=False)
    check(proc.returncode == 1 and "already exists" in proc.stderr, proc.stderr)

    from server import Account
    c = server.login(Account(user, "first-pw", server.domain), resource="r1")
    server.ctl("user", "password", jid, input="second-pw\n")    # prompted
    c2 = server.login(Account(user, "second-pw", server.domain), resource="r2")
    try:
        server.login(Account(user, "first-pw", server.domain), resource="r3")
        raise AssertionError("the old password still works")
    except AuthFailed:
        pass
    out = server.ctl("user", "delete", jid).stdout
    check("deleted" in out and "2 sessions closed" in out, out)
    c.expect_stream_error("not-authorized")
    c2.expect_stream_error("not-authorized")
    try:
        server.login(Account(user, "second-pw", server.domain), resource="r4")
        raise AssertionError("a deleted account can log in")
    except AuthFailed:
        pass


def test_user_commands_work_on_the_data_when_stopped(ctx):
    srv = ctx.server(modules=MODULES)
    srv.send_signal(signal.SIGTERM)
    check(srv.wait_exit(10) == 0, "the server did not stop cleanly")
    out = srv.ctl("user", "create", "offline@localhost", "pw-offline").stdout
    check("created" in out and "not running" in out, out)
    out = srv.ctl("list", "localhost").stdout
    check("offline@localhost" in out.split(), out)
    out = srv.ctl("user", "delete", "offline@localhost").stdout
    check("deleted" in out, out)
    check("offline@localhost" not in srv.ctl("list", "localhost").stdout.split(),
          "the account is still there")


def test_module_list_info_and_errors(server):
    out = server.ctl("module", "list").stdout
    check(re.search(r"^localhost: .*\bprobe\b", out, re.M), out)
    check(re.search(r"^localhost: .*\broster\b", out, re.M), out)
    out = server.ctl("module", "info", "probe", "localhost").stdout
    check(re.search(r"\d+ hooks, 0 timers, 1 items", out), out)
    proc = server.ctl("module", "load", "no_such_module", "localhost", check=False)
    check(proc.returncode == 1 and "not found" in proc.stderr, proc.stderr)
    proc = server.ctl("module", "reload", "probe", "nohost.example", check=False)
    check(proc.returncode == 1 and "unknown host" in proc.stderr, proc.stderr)
    proc = server.ctl("module", "frobnicate", "probe", check=False)
    check(proc.returncode == 1 and "usage" in proc.stderr, proc.stderr)


def test_module_reload_with_a_syntax_error_keeps_the_old_version(server):
    c = server.login("prober")
    el = ask_probe(c, server)
    first = int(el.find("{%s}query" % NS_PROBE).get("count"))
    write_plugin(server, "probe", probe_source("v2").replace("return true\nend)", "return true\n"))
    proc = server.ctl("module", "reload", "probe", check=False)
    print(proc.stderr)
    check(proc.returncode == 1, "a broken module reloaded: %s" % proc.stdout)
    check("mod_probe.lua" in proc.stderr and "expected" in proc.stderr,
          "the syntax error is not reported: %r" % proc.stderr)
    check("keeps running" in proc.stderr, proc.stderr)
    el = ask_probe(c, server).find("{%s}query" % NS_PROBE)
    check(el.get("version") == "v1", "the old version is not serving")
    check(int(el.get("count")) == first + 1, "the old instance lost its state")
    # Fixed: the new version loads, with the old instance's state.
    write_plugin(server, "probe", probe_source("v2"))
    out = server.ctl("module", "reload", "probe").stdout
    check("reloaded probe" in out, out)
    el = ask_probe(c, server).find("{%s}query" % NS_PROBE)
    check(el.get("version") == "v2", "the new version is not serving")
    check(int(el.get("count")) == first + 2, "state was not carried over")
    write_plugin(server, "probe", probe_source("v1"))
    server.ctl("module", "reload", "probe")


def test_module_that_fails_to_load_keeps_the_old_version(server):
    c = server.login("prober")
    ask_probe(c, server)
    write_plugin(server, "probe", 'error("cannot start: no frobnicator")\n')
    proc = server.ctl("module", "reload", "probe", check=False)
    check(proc.returncode == 1 and "no frobnicator" in proc.stderr, proc.stderr)
    el = ask_probe(c, server).find("{%s}query" % NS_PROBE)
    check(el.get("version") == "v1", "the old version is not serving")
    write_plugin(server, "probe", probe_source("v1"))


def test_shell_evaluates_lua_in_the_server(server):
    out = server.ctl("shell", "return", "1", "+", "1").stdout
    check(out.strip() == "2", out)
    out = server.ctl("shell", "return modules.list('localhost')").stdout
    check('"probe"' in out and '"roster"' in out, out)
    script = ("x = 20\n"
              "for i = 1, 2 do\n"
              "  print('line', i * x)\n"
              "end\n"
              "return server.counts().listeners\n"
              "error('shell-test-boom')\n"
              "return x + 1\n")
    proc = server.ctl("shell", input=script, check=False)
    print(proc.stdout, proc.stderr)
    check("line\t20\nline\t40\n3\n" in proc.stdout, proc.stdout)   # c2s, direct TLS, s2s
    check("21" in proc.stdout.splitlines()[-1], proc.stdout)
    check("shell-test-boom" in proc.stderr, proc.stderr)
    check(proc.returncode == 1, "an error in piped input must fail the run")
    proc = server.ctl("shell", "os.exit(1)", check=False)
    check(proc.returncode == 1 and "not available" in proc.stderr, proc.stderr)


@time_limit(60)
def test_shell_stops_a_runaway_loop_and_the_server_goes_on(server):
    a = server.login("runaway")
    proc = server.ctl("shell", "while true do end", check=False)
    check(proc.returncode == 1 and "stopped after" in proc.stderr, proc.stderr)
    exchange(a, a)


def test_help_and_unknown_commands(server):
    proc = server.ctl("frobnicate", check=False)
    check(proc.returncode == 2, "exit code %d" % proc.returncode)
    from admin import Admin
    adm = Admin.of(server)
    status, text = adm.request("frobnicate")
    check(status == "error" and "unknown command" in text, text)
    status, text = adm.request("help")
    check(status == "ok" and "reload" in text, text)
    adm.close()
