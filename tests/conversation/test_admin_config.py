"""Reloading the config (starlingctl reload and SIGHUP): modules and hosts
added and removed, option changes delivered through "config-reloaded",
TLS certificates swapped for new connections only, a broken config
changing nothing; SIGUSR1 reopening the log file; SIGTERM removing the
pid file and the admin socket; per-module log levels; starlingctl
check."""

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import xmpp
from harness import check, exchange
import server as server_mod
from admin import Admin
from server import make_cert
from xmpp import new_id, timeout_value

BASE = ["roster", "presence", "message", "iq", "disco"]
NS_WATCH = "urn:example:watcher"

# Answers an iq with the option watcher_greeting as it is now: read again
# on every "config-reloaded", which it also logs with the changed options.
WATCHER = """\
local st = require "util.stanza"
local greeting = module:get_option_string("watcher_greeting", "hello")

module:hook("config-reloaded", function(event)
    greeting = module:get_option_string("watcher_greeting", "hello")
    module:log("info", "config-reloaded on %%s, changed: %%s", event.host,
        table.concat(event.changed, ","))
end)

module:hook_global("config-reloaded", function(event)
    module:log("info", "global config-reloaded, changed: %%s", table.concat(event.changed, ","))
end)

module:hook("iq-get/host/%s:query", function(event)
    event.origin:send(st.reply(event.stanza):tag("query", { xmlns = "%s", greeting = greeting }))
    return true
end)
""" % (NS_WATCH, NS_WATCH)


def rewrite(srv):
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text())


def greeting(client, domain="localhost"):
    iq_id = new_id("w")
    client.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>"
                % (domain, iq_id, NS_WATCH))
    el = client.expect("iq", attrs={"id": iq_id, "type": "result"})
    return el.find("{%s}query" % NS_WATCH).get("greeting")


def version_answered(client):
    iq_id = new_id("v")
    client.send("<iq type='get' to='localhost' id='%s'><query xmlns='jabber:iq:version'/></iq>"
                % iq_id)
    el = client.expect("iq", attrs={"id": iq_id})
    return el.get("type") == "result"


def login_to(srv, domain, user, password):
    c = xmpp.Client("127.0.0.1", srv.port, domain, name="%s@%s" % (user, domain))
    for hook in server_mod.CLIENT_CREATED:      # closed after the test
        hook(c)
    c.connect()
    c.open_stream()
    c.starttls()
    c.auth_scram(user, password)
    c.bind("r")
    return c


def test_reload_applies_modules_hosts_and_options(ctx):
    srv = ctx.server(modules=BASE, plugins={"watcher": WATCHER})
    a = srv.login("reloader")
    check(greeting(a) == "hello", "watcher is not serving")
    check(not version_answered(a), "version answered before it was enabled")

    srv.modules.append("version")
    srv.options["watcher_greeting"] = "hello again"
    srv.hosts.append("second.test")
    rewrite(srv)
    out = srv.ctl("reload").stdout
    print(out)
    for line in ("host added: second.test", "localhost: loaded version",
                 "second.test: loaded watcher", "TLS certificates reloaded (2 hosts)"):
        check(line in out, "%r missing from:\n%s" % (line, out))
    check(version_answered(a), "version is not serving after the reload")
    check(greeting(a) == "hello again", "the option change did not reach the module")
    srv.wait_log(r"localhost:watcher: config-reloaded on localhost, changed: "
                 r"modules_enabled,watcher_greeting")
    srv.wait_log(r"global config-reloaded, changed: modules_enabled,watcher_greeting")
    check("second.test" in srv.ctl("status").stdout, "the new host is not listed")

    srv.ctl("user", "create", "guest@second.test", "guest-pw")
    g = login_to(srv, "second.test", "guest", "guest-pw")
    check(greeting(g, "second.test") == "hello again", "second.test modules")

    srv.modules.remove("version")
    srv.hosts.remove("second.test")
    rewrite(srv)
    out = srv.ctl("reload").stdout
    print(out)
    check("host removed: second.test (1 streams closed)" in out, out)
    check("localhost: unloaded version" in out, out)
    g.expect_stream_error("host-gone")
    check(not version_answered(a), "version still answers after its removal")
    check("second.test" not in srv.ctl("status").stdout, "the removed host is listed")
    exchange(a, a)


def test_a_broken_config_or_certificate_changes_nothing(ctx):
    srv = ctx.server(modules=BASE)
    a = srv.login("steady")
    before = srv.ctl("module", "list").stdout
    with open(srv.config_path) as f:
        good = f.read()
    with open(srv.config_path, "a") as f:
        f.write('modules_enabled = { "version"\n')          # syntax error
    # (starlingctl itself needs the config to find the socket: ask the
    # socket directly, as SIGHUP would.)
    adm = Admin.of(srv)
    status, text = adm.request("reload")
    print(text)
    check(status == "error", "a broken config reloaded")
    check("starling.cfg:" in text and "nothing was changed" in text, text)
    adm.close()

    srv.modules.append("version")
    srv.options["ssl"] = {"certificate": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}
    rewrite(srv)
    proc = srv.ctl("reload", check=False)
    print(proc.stderr)
    check(proc.returncode == 1 and "/nonexistent/cert.pem" in proc.stderr, proc.stderr)
    check(srv.ctl("module", "list").stdout == before, "modules changed anyway")
    with open(srv.config_path, "w") as f:
        f.write(good)
    exchange(a, a)
    b = srv.login("after")                   # TLS still works for new streams
    exchange(a, b)


def test_reloaded_certificate_serves_new_connections_only(ctx):
    certs = tempfile.mkdtemp(prefix="starling-reload-cert-")
    ctx.cleanup(lambda: shutil.rmtree(certs, True))
    first = os.path.join(certs, "first")
    second = os.path.join(certs, "second")
    os.makedirs(first)
    os.makedirs(second)
    cert, key = make_cert(first)
    srv = ctx.server(modules=BASE, options={"ssl": {"certificate": cert, "key": key}})
    old = srv.login("tls-old")
    old_der = old.transport.peer_cert()
    new_cert, new_key = make_cert(second)
    shutil.copy(new_cert, cert)
    shutil.copy(new_key, key)
    out = srv.ctl("reload").stdout
    check("TLS certificates reloaded (1 hosts)" in out, out)
    new = srv.login("tls-new")
    new_der = new.transport.peer_cert()
    check(new_der != old_der, "a new connection still gets the old certificate")
    with open(new_cert) as f:
        check(new_der == ssl.PEM_cert_to_DER_cert(f.read()),
              "a new connection does not get the new certificate")
    exchange(old, new)                     # the old connection keeps its context
    exchange(new, old)


def test_sighup_reloads_the_config(ctx):
    srv = ctx.server(modules=BASE)
    a = srv.login("hup")
    srv.modules.append("version")
    rewrite(srv)
    srv.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload: localhost: loaded version")
    check(version_answered(a), "SIGHUP did not load the module")
    exchange(a, a)


def test_sigusr1_reopens_the_log_file(ctx):
    logdir = tempfile.mkdtemp(prefix="starling-log-")
    ctx.cleanup(lambda: shutil.rmtree(logdir, True))
    path = os.path.join(logdir, "starling.log")
    srv = ctx.server(modules=BASE, options={"log": {"level": "info", "to": path}})
    deadline = time.monotonic() + timeout_value(10)
    while "started" not in open(path).read():
        check(time.monotonic() < deadline, "the log file has no start line")
        time.sleep(0.05)
    os.rename(path, path + ".1")
    srv.send_signal(signal.SIGUSR1)
    while not (os.path.exists(path) and "log reopened" in open(path).read()):
        check(time.monotonic() < deadline, "SIGUSR1 did not reopen the log")
        time.sleep(0.05)
    srv.login("after-rotation")
    check("started" not in open(path).read(), "old lines in the new file")


def test_sigterm_broadcasts_unavailable_and_removes_pidfile_and_socket(ctx):
    pidfile = os.path.join(tempfile.mkdtemp(prefix="starling-pid-"), "starling.pid")
    ctx.cleanup(lambda: shutil.rmtree(os.path.dirname(pidfile), True))
    srv = ctx.server(modules=BASE, options={"pidfile": pidfile})
    srv.wait_log(r"Starling .* started")        # the pid file is written just before
    with open(pidfile) as f:
        check(int(f.read()) == srv.proc.pid, "the pid file does not hold the pid")
    sock = os.path.join(srv.data_dir, "starling.sock")
    check(os.path.exists(sock), "no admin socket")
    account = srv.account("leaving")
    first = srv.login(account, resource="first", presence=True)
    second = srv.login(account, resource="second", presence=True)
    first.ignore = ()
    first.wait_for("presence", attrs={"from": second.jid})
    srv.send_signal(signal.SIGTERM)
    first.wait_for("presence", attrs={"from": second.jid, "type": "unavailable"})
    first.expect_stream_error("system-shutdown")
    check(srv.wait_exit(10) == 0, "exit code %r" % srv.exit_code)
    check(not os.path.exists(pidfile), "the pid file is still there")
    check(not os.path.exists(sock), "the admin socket is still there")


PLUGIN_LOG = """\
module:log("debug", "%s-debug-line")
module:log("info", "%s-info-line")
"""


def test_log_levels_per_module(ctx):
    srv = ctx.server(modules=BASE + ["quiet", "chatty", "hosty"],
                     plugins={"quiet": PLUGIN_LOG % ("quiet", "quiet"),
                              "chatty": PLUGIN_LOG % ("chatty", "chatty"),
                              "hosty": PLUGIN_LOG % ("hosty", "hosty")},
                     options={"log": {"level": "info",
                                      "modules": {"chatty": "debug",
                                                  "localhost:hosty": "debug",
                                                  "roster": "error"}}})
    srv.wait_log(r"localhost:hosty: hosty-debug-line")
    text = srv.log_text()
    check("localhost:chatty: chatty-debug-line" in text, "chatty's debug line missing")
    check("quiet-info-line" in text, "quiet's info line missing")
    check("quiet-debug-line" not in text, "quiet's debug line was logged")
    check(" debug core:" not in text, "core debug lines at level info")


def ctl_check(ctx, srv, options=None, host_lines="", extra_files=None):
    """starlingctl check on srv's config with options (global) changed and
    host_lines appended."""
    saved = dict(srv.options)
    srv.options.update(options or {})
    text = srv.config_text() + host_lines
    srv.options = saved
    d = tempfile.mkdtemp(prefix="starling-check-")
    ctx.cleanup(lambda: shutil.rmtree(d, True))
    for name, (content, mode) in (extra_files or {}).items():
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, mode)
    path = os.path.join(d, "check.cfg")
    with open(path, "w") as f:
        f.write(text)
    proc = subprocess.run([os.path.join(ctx.build_dir, "starlingctl"), "check", path],
                          capture_output=True, text=True, timeout=timeout_value(30))
    print(proc.stdout, proc.stderr)
    return proc


def test_check_validates_a_config_without_starting_anything(ctx):
    srv = ctx.server(start=False, modules=BASE)
    srv.dir = tempfile.mkdtemp(prefix="starling-check-srv-")
    ctx.cleanup(lambda: shutil.rmtree(srv.dir, True))
    srv.data_dir = os.path.join(srv.dir, "data")
    srv.plugin_dir = os.path.join(srv.dir, "plugins")
    os.makedirs(srv.data_dir)
    os.makedirs(srv.plugin_dir)
    srv.port, srv.tls_port = 5222, 5223
    proc = ctl_check(ctx, srv)
    check(proc.returncode == 0 and "OK (0 warnings)" in proc.stdout, proc.stdout)

    proc = ctl_check(ctx, srv, {"roster_max_items": 10, "frobnication_level": 3},
                     '  disco_name = "x"\n  frobnicate_host = 1\n')
    check(proc.returncode == 0, "an unknown option is only a warning")
    check("warning: unknown option 'frobnication_level' (global)" in proc.stdout, proc.stdout)
    check("warning: unknown option 'frobnicate_host' (host localhost)" in proc.stdout,
          proc.stdout)
    check("roster_max_items" not in proc.stdout and "disco_name" not in proc.stdout,
          "a module's option was called unknown")

    proc = ctl_check(ctx, srv, {"modules_enabled": BASE + ["no_such_module"]})
    check(proc.returncode == 1 and "module 'no_such_module' not found" in proc.stdout,
          proc.stdout)

    proc = ctl_check(ctx, srv, host_lines='VirtualHost "x.test"\n  ssl = { certificate = '
                     '"missing.crt", key = "missing.key" }\n')
    check(proc.returncode == 1 and "host x.test: certificate" in proc.stdout
          and "missing.crt" in proc.stdout, proc.stdout)

    cert, key = make_cert(srv.dir)
    with open(cert) as f:
        cert_pem = f.read()
    with open(key) as f:
        key_pem = f.read()
    proc = ctl_check(ctx, srv, host_lines='VirtualHost "open.test"\n  ssl = { certificate = '
                     '"c.crt", key = "k.key" }\n',
                     extra_files={"c.crt": (cert_pem, 0o644), "k.key": (key_pem, 0o644)})
    check(proc.returncode == 1 and "readable by everyone" in proc.stdout, proc.stdout)

    # host names are compared as prepared domainparts (RFC 7622 3.2)
    proc = ctl_check(ctx, srv, host_lines='VirtualHost "Caf\u00c9.TEST"\n  frobnicate_host = 1\n')
    check("unknown option 'frobnicate_host' (host caf\u00e9.test)" in proc.stdout, proc.stdout)
    proc = ctl_check(ctx, srv, host_lines='VirtualHost "bad..test"\n')
    check(proc.returncode == 1 and "not a valid domain name" in proc.stdout, proc.stdout)

    proc = ctl_check(ctx, srv, {"log": {"level": "loud"}})
    check(proc.returncode == 1 and "unknown level loud" in proc.stdout, proc.stdout)

    proc = ctl_check(ctx, srv, {"c2s_ports": ["http"]})
    check(proc.returncode == 1 and "c2s_ports" in proc.stdout, proc.stdout)

    proc = ctl_check(ctx, srv, {"lua_gc_mode": "incremental", "archive_index_delay": 60})
    check(proc.returncode == 0 and "OK (0 warnings)" in proc.stdout, proc.stdout)
    proc = ctl_check(ctx, srv, {"lua_gc_mode": "sometimes"})
    check(proc.returncode == 1 and "lua_gc_mode" in proc.stdout, proc.stdout)

    proc = ctl_check(ctx, srv, host_lines='VirtualHost "broken.test"\n  modules_enabled = {\n')
    check(proc.returncode == 1 and "check.cfg:" in proc.stdout, proc.stdout)

    with open(os.path.join(srv.plugin_dir, "mod_broken.lua"), "w") as f:
        f.write("module:hook('message/bare', function() end\n")
    proc = ctl_check(ctx, srv, {"modules_enabled": BASE + ["broken"]})
    check(proc.returncode == 1 and "module broken:" in proc.stdout, proc.stdout)


def test_sessions_survive_reloads(ctx):
    srv = ctx.server(modules=BASE + ["ping", "version"])
    a = srv.login("survivor", presence=True)
    b = srv.login("survivor", presence=True)
    for _ in range(5):
        srv.ctl("reload")
    out = srv.ctl("sessions").stdout
    check(a.jid in out and b.jid in out, out)
    exchange(a, b)
    c = srv.login(a.account, resource="third")
    exchange(c, a)
