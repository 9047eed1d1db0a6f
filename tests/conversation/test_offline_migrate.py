"""Offline messages kept by an older mod_offline (the map store "offline":
"m%015d" -> message, "meta") are moved into the archive store when the
module loads, in order, and delivered like any others."""

import signal

from harness import check, fixture, sync
from xmpp import find

DELAY = "urn:xmpp:delay"

# What the older module left: two messages for "migrated", out of key
# order in the table (the keys give the order), and the counts.
SEED = """\
local st = require "util.stanza"
local old = module:open_store("offline", "map")
local function message(n)
    return st.message({ to = "migrated@localhost", from = "sender@localhost/r",
                        type = "chat" })
        :tag("body"):text("old " .. n):up()
        :tag("delay", { xmlns = "urn:xmpp:delay", from = "localhost",
                        stamp = "2020-01-02T03:04:05Z" }):text("Offline Storage"):up()
end
assert(old:set_keys("migrated", {
    m000000000000002 = message(2),
    m000000000000001 = message(1),
    meta = { next = 3, count = 2 },
}))
"""

MODULES = ["roster", "presence", "message", "iq", "disco"]


@fixture
def server(scope):
    return scope.server(modules=list(MODULES), plugins={"offseed": SEED})


def test_old_offline_messages_are_moved_and_delivered(server):
    bob = server.register("migrated", "pw-migrated")
    server.send_signal(signal.SIGTERM)
    check(server.wait_exit() == 0, "server did not stop cleanly")
    server.modules.append("offline")
    server.plugins.clear()
    with open(server.config_path, "w") as f:
        f.write(server.config_text())
    server.restart()
    server.wait_log(r"moved 2 offline messages of migrated")
    b = server.login(bob, ignore_presence=False)
    b.presence(priority=0)
    b.expect("presence", attrs={"from": b.jid})
    b.ignore = ("presence",)
    for n in (1, 2):
        el = b.expect("message", attrs={"from": "sender@localhost/r"},
                      child="body", text="old %d" % n)
        delay = find(el, "{%s}delay" % DELAY)
        check(delay is not None and delay.get("stamp") == "2020-01-02T03:04:05Z",
              "delay stamp kept: %r" % el)
    b.end_stream()
    b.expect_closed()
    again = server.login(bob, ignore_presence=False)
    again.presence(priority=0)
    again.expect("presence", attrs={"from": again.jid})
    again.ignore = ("presence",)
    sync(again, again)                  # delivered once, nothing left
    out = server.ctl("export", "localhost").stdout
    check("old 1" not in out and "old 2" not in out,
          "nothing left to export: %s" % out)
