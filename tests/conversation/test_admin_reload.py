"""Hot reload: every enabled module and the config reloaded 100 times under
a steady chat load (no connection drops, every message delivered); a
module file dropped into plugin_paths loaded with `starlingctl module
load` and unloaded again (its hooks, disco features and timers go);
timers of a reloaded module's old instance stop; a module's dependents
are reloaded with it."""

import json
import os
import subprocess
import threading
import time

from admin import Admin
from harness import check, exchange, fixture, sync, time_limit
from xmpp import NS, esc, find_all, new_id, timeout_value

MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "version",
           "time", "uptime", "lastactivity", "vcard", "private", "blocklist",
           "register", "offline", "carbons", "smacks", "csi"]
ROUNDS = 100
USERS = 30
PAUSE = 0.02        # between rounds, so the reloads spread over the load

NS_TICKER = "urn:example:ticker"

# Dropped into plugin_paths while the server runs. Its timer sends the
# JID that asked a "tick <instance> <n>" message every 0.1 s.
TICKER = """\
local st = require "util.stanza"
local NS = "%s"
local instance = tostring(math.random(1, 1000000000))
local subscriber
local n = 0

module:add_feature(NS)

module:hook("iq-get/host/" .. NS .. ":query", function(event)
    subscriber = event.stanza.attr.from
    event.origin:send(st.reply(event.stanza)
        :tag("query", { xmlns = NS, instance = instance }))
    return true
end)

module:add_timer(0.1, function()
    if subscriber then
        n = n + 1
        module:send(st.message({ to = subscriber, from = module.host, type = "chat" })
            :text_tag("body", "tick " .. instance .. " " .. n))
    end
    return 0.1
end)

function module.save() return { subscriber = subscriber } end
function module.restore(state) subscriber = state.subscriber end
""" % NS_TICKER


# --- the load -----------------------------------------------------------------------

class PythonChatLoad(threading.Thread):
    """Pairs of clients: in each round every sender sends its partner one
    message, then every partner must receive it. Counts what was sent and
    received; any error (a dropped stream, a lost message) stops it."""

    def __init__(self, pairs):
        super().__init__(daemon=True)
        self.pairs = pairs
        self.sent = self.received = 0
        self.error = None
        self.stopping = False

    def run(self):
        try:
            n = 0
            while not self.stopping:
                bodies = []
                for a, b in self.pairs:
                    n += 1
                    body = "load %d" % n
                    a.send("<message to='%s' type='chat'><body>%s</body></message>"
                           % (esc(b.jid), body))
                    self.sent += 1
                    bodies.append(body)
                for (a, b), body in zip(self.pairs, bodies):
                    b.expect("message", attrs={"from": a.jid}, child="body",
                             text=body, timeout=20)
                    self.received += 1
        except Exception as e:          # reported by the test
            self.error = e

    def finish(self):
        self.stopping = True
        self.join(timeout_value(30))
        check(not self.is_alive(), "the Python load did not stop")
        print("python load: sent %d, received %d" % (self.sent, self.received))
        check(self.error is None, "the Python load failed: %r" % (self.error,))
        check(self.sent == self.received and self.sent > 0,
              "sent %d, received %d" % (self.sent, self.received))


class LoadgenChat:
    """build/loadgen chat against the server (bench/README.md)."""

    def __init__(self, srv, users, duration):
        binary = os.path.join(srv.build_dir, "loadgen")
        self.proc = subprocess.Popen(
            [binary, "chat", "--port", str(srv.port), "--users", str(users),
             "--tls", "starttls", "--rate", "1000", "--duration", "%d" % duration,
             "--drain", "5", "--timeout", "30", "--json", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, users):
        check(self.proc.poll() is None, "the load ended before the reloads did")
        out, err = self.proc.communicate(timeout=timeout_value(120))
        check(self.proc.returncode == 0, "loadgen exited %d: %s" % (self.proc.returncode, err))
        report = json.loads(out.strip().splitlines()[-1])
        print("loadgen chat: online %s, sent %s, received %s, lost %s, error "
              "bounces %s" % (report["online"], report["sent"], report["received"],
                              report["lost"], report["errors_received"]))
        errors = {k: v for k, v in report.items() if k.startswith("err_")}
        check(not errors, "connections failed during the reloads: %r %s"
              % (errors, report.get("first_error", "")))
        check(report["online"] == users, "online %s of %d" % (report["online"], users))
        check(report["sent"] > 0 and report["lost"] == 0 and report["received"] == report["sent"],
              "messages lost: %r" % report)
        check(report["errors_received"] == 0, "error bounces: %r" % report)


def wait_sessions(adm, n, timeout=30):
    deadline = time.monotonic() + timeout_value(timeout)
    while True:
        text = adm.ok("status")
        fields = dict(line.split(": ", 1) for line in text.splitlines())
        if int(fields["sessions"]) >= n:
            return fields
        check(time.monotonic() < deadline, "only %s sessions online:\n%s"
              % (fields["sessions"], text))
        time.sleep(0.05)


def reload_round(adm, modules):
    adm.ok("reload")
    for name in modules:
        adm.ok("module", "reload", name, "localhost")


@time_limit(240)
def test_reload_everything_100_times_under_chat_load(ctx):
    srv = ctx.server(modules=MODULES)
    adm = Admin.of(srv, timeout=60)
    modules = adm.ok("module", "list", "localhost").split(": ", 1)[1].split()
    check(set(MODULES) <= set(modules), "not every module loaded: %s" % modules)
    t0 = time.monotonic()
    for _ in range(3):
        reload_round(adm, modules)
    per_round = (time.monotonic() - t0) / 3
    use_loadgen = os.access(os.path.join(srv.build_dir, "loadgen"), os.X_OK)
    if use_loadgen:
        for i in range(1, USERS + 1):
            adm.ok("user", "create", "u%d@localhost" % i, "p")
        load = LoadgenChat(srv, USERS, duration=ROUNDS * (per_round + PAUSE) * 2 + 5)
        wait_sessions(adm, USERS)
    else:
        print("build/loadgen not built: a Python chat load instead")
        pairs = [(srv.login("loada%d" % i), srv.login("loadb%d" % i)) for i in range(8)]
        load = PythonChatLoad(pairs)
        load.start()
    watch_a, watch_b = srv.login("watcher"), srv.login("watcher")
    started = time.monotonic()
    for r in range(ROUNDS):
        reload_round(adm, modules)
        if r % 10 == 9:
            exchange(watch_a, watch_b)
        time.sleep(PAUSE)
    print("%d rounds of reload + %d module reloads in %.1f s"
          % (ROUNDS, len(modules), time.monotonic() - started))
    fields = wait_sessions(adm, 2)
    print("during the load: %s sessions, %s connections" % (fields["sessions"],
                                                            fields["connections"]))
    if use_loadgen:
        check(int(fields["sessions"]) >= USERS + 2, "sessions dropped: %r" % fields)
        load.finish(USERS)
    else:
        load.finish()
    exchange(watch_b, watch_a)
    adm.close()


# --- dropping a module in ----------------------------------------------------------------

@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco"])


def disco_features(client, server):
    iq_id = new_id("disco")
    client.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>"
                % (server.domain, iq_id, NS["disco"]))
    el = client.expect("iq", attrs={"id": iq_id, "type": "result"})
    return {f.get("var") for f in find_all(el, "disco:query/disco:feature")}


def ask_ticker(client, server, ns=NS_TICKER):
    iq_id = new_id("tick")
    client.send("<iq type='get' to='%s' id='%s'><query xmlns='%s'/></iq>"
                % (server.domain, iq_id, ns))
    return iq_id


def next_tick(client, server, timeout=10):
    el = client.expect("message", attrs={"from": server.domain}, child="body",
                       timeout=timeout)
    return el.findtext("{jabber:client}body").split()


def test_dropped_in_module_loads_serves_and_unloads_completely(server):
    c = server.login("ticked")
    other = server.login("other")
    check(NS_TICKER not in disco_features(c, server), "feature before the load")
    with open(os.path.join(server.plugin_dir, "mod_ticker.lua"), "w") as f:
        f.write(TICKER)
    out = server.ctl("module", "load", "ticker", "localhost").stdout
    check("loaded ticker" in out, out)
    c.expect("iq", attrs={"id": ask_ticker(c, server), "type": "result"})  # its first stanza
    check(next_tick(c, server)[0] == "tick", "no tick from the module's timer")
    check(NS_TICKER in disco_features(c, server), "its feature is not in disco#info")
    out = server.ctl("module", "info", "ticker", "localhost").stdout
    check("1 hooks, 1 timers, 1 items" in out, out)

    out = server.ctl("module", "unload", "ticker", "localhost").stdout
    check("unloaded ticker" in out, out)
    # Ticks sent before the unload are passed over up to a first marker;
    # after five timer periods a second marker must be the next message.
    marker = "before-%s" % new_id()
    other.send("<message to='%s' type='chat'><body>%s</body></message>"
               % (esc(c.jid), marker))
    c.wait_for("message", child="body", text=marker)
    time.sleep(timeout_value(0.5))
    sync(other, c)
    count = server.ctl("shell", "return core.hook_count('localhost', 'iq-get/host/%s:query')"
                       % NS_TICKER).stdout.strip()
    check(count == "0", "hooks left behind: %s" % count)
    check(NS_TICKER not in disco_features(c, server), "its feature stays in disco#info")
    c.expect_error("iq", "service-unavailable", attrs={"id": ask_ticker(c, server)})
    os.unlink(os.path.join(server.plugin_dir, "mod_ticker.lua"))


def test_reload_cancels_the_old_instances_timers(server):
    ns = NS_TICKER + "2"
    with open(os.path.join(server.plugin_dir, "mod_ticker2.lua"), "w") as f:
        f.write(TICKER.replace(NS_TICKER, ns))
    server.ctl("module", "load", "ticker2", "localhost")
    c = server.login("ticked")
    first = c.expect("iq", attrs={"id": ask_ticker(c, server, ns), "type": "result"})
    instances = {first.find("{%s}query" % ns).get("instance")}
    for _ in range(3):
        server.ctl("module", "reload", "ticker2", "localhost")
    # The newest instance says who it is. Ticks from the instances that
    # ran between the reloads may still be on their way (they were sent
    # before their unload); once the newest has ticked, only it may tick.
    q = c.wait_for("iq", attrs={"id": ask_ticker(c, server, ns), "type": "result"})
    newest = q.find("{%s}query" % ns).get("instance")
    check(newest not in instances, "the reloads kept the first instance")
    deadline = time.monotonic() + timeout_value(10)
    while next_tick(c, server)[1] != newest:
        check(time.monotonic() < deadline, "no tick from the reloaded instance")
    seen = [next_tick(c, server)[1] for _ in range(5)]
    check(set(seen) == {newest}, "old instances still tick: %s" % seen)
    server.ctl("module", "unload", "ticker2", "localhost")
    os.unlink(os.path.join(server.plugin_dir, "mod_ticker2.lua"))


def test_reloading_a_module_reloads_its_dependents(server):
    adm = Admin.of(server)
    adm.ok("eval", "old_presence = modules.get_module('localhost', 'presence')")
    out = adm.ok("module", "reload", "roster", "localhost")
    check("reloaded roster" in out, out)
    same = adm.ok("eval", "return modules.get_module('localhost', 'presence') == old_presence")
    check(same.strip() == "false", "presence (which depends on roster) was not reloaded")
    loaded = adm.ok("eval", "return modules.is_loaded('localhost', 'presence')")
    check(loaded.strip() == "true", "presence is gone after the reload")
    adm.close()
    a, b = server.login("dep"), server.login("dep")
    exchange(a, b)
