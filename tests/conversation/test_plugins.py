"""Lua plugin modules loaded from plugin_paths: a module whose handler
raises is logged with the module's name, and the stanza still reaches its
recipient (the default handlers run at priority -1, after it)."""

from harness import check, exchange, fixture, sync
from xmpp import esc

FAULTY = """\
-- A module that fails on every message: the server must survive it.
module:hook("message/bare", function(event)
    error("faulty-plugin-boom-bare", 0)
end, 10)

module:hook("message/full", function(event)
    error("faulty-plugin-boom-full", 0)
end, 10)
"""

ECHO = """\
-- A module that works: it answers "ping-plugin" sent to any bare JID
-- itself and stops the chain, so the addressee never sees it.
local st = require "util.stanza"

local function on_message(event)
    local stanza = event.stanza
    if stanza:get_child_text("body") ~= "ping-plugin" then
        return nil
    end
    module:log("info", "echoplug answering %s", stanza.attr.from)
    module:send(st.message({ to = stanza.attr.from, from = stanza.attr.to,
                             type = "chat" })
        :tag("body"):text("pong-plugin"):up())
    return true
end

module:hook("message/bare", on_message, 10)
"""


@fixture
def server(scope):
    return scope.server(plugins={"faultyplug": FAULTY})


@fixture
def echo_server(scope):
    return scope.server(plugins={"echoplug": ECHO})


def test_faulty_bare_handler_is_logged_and_message_arrives(server):
    a = server.login("alice", presence=0)
    bob = server.account("bob")
    b = server.login(bob, presence=0)
    for n in (1, 2):                    # and again: the module stays harmless
        a.send("<message to='%s' type='chat' id='bare-%d'><body>bare %d"
               "</body></message>" % (esc(bob.jid), n, n))
        b.expect("message", attrs={"from": a.jid, "id": "bare-%d" % n},
                 child="body", text="bare %d" % n)
    line = server.wait_log(r"faulty-plugin-boom-bare")
    check("faultyplug" in line,
          "the error line does not name the module: %r" % line)


def test_faulty_full_handler_is_logged_and_message_arrives(server):
    a = server.login("alice")
    b = server.login("bob")
    exchange(a, b)
    line = server.wait_log(r"faulty-plugin-boom-full")
    check("faultyplug" in line,
          "the error line does not name the module: %r" % line)


def test_plugin_handler_can_answer_and_stop_the_chain(echo_server):
    server = echo_server
    a = server.login("alice", presence=0)
    bob = server.account("bob")
    b = server.login(bob, presence=0)
    a.send("<message to='%s' type='chat' id='echo-1'><body>ping-plugin"
           "</body></message>" % esc(bob.jid))
    a.expect("message", attrs={"from": bob.jid, "to": a.jid}, child="body",
             text="pong-plugin")
    sync(a, b)                          # the chain stopped before delivery
    server.wait_log(r"echoplug answering " + a.jid)
