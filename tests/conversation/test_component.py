"""External components (XEP-0114) and Lua components (issue #19): the
handshake and its refusals, routing to and from a component's domain and
the JIDs at it, bounces while it is away (or the queue), several streams
for one domain, disco, registration passing through, presence with a
gateway contact, a config reload adding and removing a Component, and a
Component served by a Lua module routed the same way."""

import os
import shutil
import tempfile

from component import ExternalComponent, component_server
import server as server_mod
from harness import bystanders, check, fixture, sync
from peers import pin
from xmpp import esc, find, find_all, new_id

SECRET = "s3cret-gateway"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"

# A component module: echoes messages to any JID at its domain, answers
# disco#info, and sends what its "send" command says (to test the
# routing of a module's own stanzas).
ECHO_MODULE = """\
local st = require "util.stanza"

local function echo(event)
    local s = event.stanza
    if s.attr.type == "error" then
        return true
    end
    local body = s:get_child_text("body") or ""
    local to = body:match("^send (%S+)$")
    local reply = st.message({ to = to or s.attr.from, from = s.attr.to,
        type = s.attr.type, id = s.attr.id })
        :text_tag("body", to and "sent by the module" or "echo: " .. body)
    module:send(reply)
    return true
end

module:hook("message/bare", echo)
module:hook("message/full", echo)
module:hook("message/host", echo)
module:hook("iq-get/host/http://jabber.org/protocol/disco#info:query", function(event)
    module:send(st.reply(event.stanza)
        :tag("query", { xmlns = "http://jabber.org/protocol/disco#info" })
        :tag("identity", { category = "component", type = "generic", name = "Echo" }))
    return true
end)
"""


@fixture
def server(scope):
    plugins = tempfile.mkdtemp(prefix="starling-echo-")
    with open(os.path.join(plugins, "mod_echo_component.lua"), "w") as f:
        f.write(ECHO_MODULE)
    scope.cleanup(lambda: shutil.rmtree(plugins, True))
    return component_server(scope, {
        "irc.localhost": {"component_secret": SECRET, "name": "IRC gateway"},
        "spread.localhost": {"component_secret": SECRET,
                             "component_max_connections": 2},
        "queued.localhost": {"component_secret": SECRET,
                             "component_queue": 10},
        "nosecret.localhost": {},
        "echo.localhost": {"module": "echo_component"},
    }, options={"plugin_paths": [plugins]},
        modules=["roster", "presence", "message", "iq", "disco"])


def msg(to, body, frm=None, mid=None, type_="chat"):
    return ("<message%s to='%s' type='%s' id='%s'><body>%s</body></message>"
            % (" from='%s'" % esc(frm) if frm else "", esc(to), type_,
               mid or new_id("m"), esc(body)))


# --- the handshake --------------------------------------------------------------------

def test_handshake_and_messages_both_ways(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    user = server.login("alice", resource="desk")
    user.send(msg("#test%irc@irc.localhost", "hello gateway", mid="g1"))
    comp.expect("message", attrs={"from": user.jid, "to": "#test%irc@irc.localhost",
                                  "id": "g1"}, child="body", text="hello gateway")
    comp.send(msg(user.jid, "hello user", frm="#test%irc@irc.localhost/nick"))
    user.expect("message", attrs={"from": "#test%irc@irc.localhost/nick"},
                child="body", text="hello user")
    # the domain itself and a subdomain JID are the component's too
    comp.send(msg(user.jid, "from the domain", frm="irc.localhost"))
    user.expect("message", attrs={"from": "irc.localhost"}, text=None)
    comp.send(msg(user.jid, "from a subdomain", frm="x@sub.irc.localhost"))
    user.expect("message", attrs={"from": "x@sub.irc.localhost"})


def test_server_header_has_the_stream_id_and_no_version(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET)
    header = comp.open()
    check(header.namespaces.get("") == "jabber:component:accept",
          "default namespace %r" % header.namespaces.get(""))
    check(header.get("from") == "irc.localhost", "from %r" % header.get("from"))
    check(header.get("id"), "no stream id")
    check(header.get("version") is None, "version %r" % header.get("version"))
    comp.send("<handshake>%s</handshake>" % comp.handshake_value())
    comp.expect("{jabber:component:accept}handshake")


def test_wrong_secret_is_not_authorized(server):
    with bystanders(server):
        comp = ExternalComponent(server, "irc.localhost", "wrong")
        comp.open()
        comp.send("<handshake>%s</handshake>" % comp.handshake_value())
        comp.expect_stream_error("not-authorized")
    # the right secret still works afterwards
    ExternalComponent(server, "irc.localhost", SECRET).connect()


def test_domain_without_secret_refuses_every_handshake(server):
    comp = ExternalComponent(server, "nosecret.localhost", "")
    comp.open()
    comp.send("<handshake>%s</handshake>" % comp.handshake_value())
    comp.expect_stream_error("not-authorized")


def test_unknown_domain_and_lua_component_are_host_unknown(server):
    with bystanders(server):
        for domain in ("nowhere.localhost", "localhost", "echo.localhost"):
            comp = ExternalComponent(server, domain, SECRET)
            comp.open()
            comp.expect_stream_error("host-unknown")


def test_stanza_before_handshake_is_not_authorized(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET)
    comp.open()
    comp.send(msg("someone@localhost", "too early", frm="bot@irc.localhost"))
    comp.expect_stream_error("not-authorized")


def test_second_component_for_a_domain_is_a_conflict(server):
    first = ExternalComponent(server, "irc.localhost", SECRET, name="first").connect()
    with bystanders(server):
        second = ExternalComponent(server, "irc.localhost", SECRET, name="second")
        second.open()
        second.send("<handshake>%s</handshake>" % second.handshake_value())
        second.expect_stream_error("conflict")
    user = server.login("carol")
    user.send(msg("bot@irc.localhost", "still the first"))
    first.expect("message", child="body", text="still the first")


def test_several_streams_share_a_domain_when_allowed(server):
    a = ExternalComponent(server, "spread.localhost", SECRET, name="spread-a").connect()
    b = ExternalComponent(server, "spread.localhost", SECRET, name="spread-b").connect()
    users = [server.login("spread") for _ in range(8)]
    for u in users:
        u.send(msg("bot@spread.localhost", "from " + u.jid))
    got = {}
    for comp in (a, b):
        while True:
            try:
                el = comp.expect("message", timeout=1)
            except AssertionError:
                break
            got.setdefault(comp.name, []).append(el.get("from"))
    check(sum(len(v) for v in got.values()) == 8, "got %r" % got)
    check(len(got) == 2, "one stream got them all: %r" % got)
    # a third is one too many
    c = ExternalComponent(server, "spread.localhost", SECRET, name="spread-c")
    c.open()
    c.send("<handshake>%s</handshake>" % c.handshake_value())
    c.expect_stream_error("conflict")


# --- what a component may send ----------------------------------------------------------

def test_from_outside_the_domain_is_invalid_from(server):
    with bystanders(server) as (b, _):
        comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
        comp.send(msg(b.jid, "spoofed", frm=b.jid))
        comp.expect_stream_error("invalid-from")
        # a domain that merely ends the same is not a subdomain
        comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
        comp.send(msg(b.jid, "spoofed", frm="x@evilirc.localhost"))
        comp.expect_stream_error("invalid-from")
    sync(server.login("after"), b)


def test_missing_from_or_to_is_improper_addressing(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    comp.send("<message to='x@localhost'><body>no from</body></message>")
    comp.expect_stream_error("improper-addressing")
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    comp.send("<message from='bot@irc.localhost'><body>no to</body></message>")
    comp.expect_stream_error("improper-addressing")


def test_malformed_to_gets_a_stanza_error(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    comp.send(msg("a@b@localhost", "bad to", frm="bot@irc.localhost", mid="bad1"))
    comp.expect_error("message", "jid-malformed", attrs={"id": "bad1"})
    # and to a user who does not exist: the usual bounce
    comp.send("<iq type='get' id='q1' from='bot@irc.localhost' to='nobody@localhost/x'>"
              "<query xmlns='jabber:iq:version'/></iq>")
    comp.expect_error("iq", "service-unavailable", attrs={"id": "q1"})


# --- while it is away --------------------------------------------------------------------

def test_away_component_bounces_messages_and_iqs_drops_presence(server):
    user = server.login("bounce", resource="r")
    user.send(msg("bot@irc.localhost", "anyone?", mid="away1"))
    user.expect_error("message", "service-unavailable", type="cancel",
                      attrs={"id": "away1", "from": "bot@irc.localhost"})
    user.send("<iq type='get' id='away2' to='irc.localhost'>"
              "<query xmlns='%s'/></iq>" % DISCO_INFO)
    user.expect_error("iq", "service-unavailable", attrs={"id": "away2"})
    user.send("<presence to='bot@irc.localhost'/>")
    user.ignore = ()
    sync(server.login("other"), user)     # no presence error came back


def test_reconnect_after_disconnect(server):
    user = server.login("recon", resource="r")
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    user.send(msg("bot@irc.localhost", "one"))
    comp.expect("message", child="body", text="one")
    comp.send("</stream:stream>")       # the server ends it, then closes
    comp.expect_closed()
    user.send(msg("bot@irc.localhost", "gone", mid="gone1"))
    user.expect_error("message", "service-unavailable", attrs={"id": "gone1"})
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    user.send(msg("bot@irc.localhost", "two"))
    comp.expect("message", child="body", text="two")


def test_queue_holds_stanzas_until_the_component_connects(server):
    user = server.login("queue", resource="r")
    for i in range(3):
        user.send(msg("bot@queued.localhost", "queued %d" % i))
    user.send("<iq type='get' id='qiq' to='queued.localhost'>"
              "<query xmlns='%s'/></iq>" % DISCO_INFO)
    sync(server.login("other"), user)       # nothing bounced
    comp = ExternalComponent(server, "queued.localhost", SECRET).connect()
    for i in range(3):
        comp.expect("message", child="body", text="queued %d" % i)
    comp.expect("iq", attrs={"id": "qiq", "from": user.jid})
    comp.send("<iq type='result' id='qiq' from='queued.localhost' to='%s'/>"
              % esc(user.jid))
    user.expect("iq", attrs={"type": "result", "id": "qiq"})


# --- what gateways expect around them -------------------------------------------------------

def test_disco_items_list_the_components_and_info_goes_to_them(server):
    user = server.login("disco", resource="r")
    user.send("<iq type='get' id='it1' to='localhost'><query xmlns='%s'/></iq>"
              % DISCO_ITEMS)
    reply = user.expect("iq", attrs={"id": "it1", "type": "result"})
    items = {i.get("jid"): i.get("name") for i in find_all(reply, "{%s}query/{%s}item" % (DISCO_ITEMS, DISCO_ITEMS))}
    for domain in ("irc.localhost", "spread.localhost", "echo.localhost"):
        check(domain in items, "%s not in %r" % (domain, items))
    check(items["irc.localhost"] == "IRC gateway", "name %r" % items["irc.localhost"])
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    user.send("<iq type='get' id='in1' to='irc.localhost'><query xmlns='%s'/></iq>"
              % DISCO_INFO)
    comp.expect("iq", attrs={"id": "in1", "from": user.jid, "type": "get"})
    comp.send("<iq type='result' id='in1' from='irc.localhost' to='%s'><query xmlns='%s'>"
              "<identity category='gateway' type='irc' name='IRC'/></query></iq>"
              % (esc(user.jid), DISCO_INFO))
    got = user.expect("iq", attrs={"id": "in1", "type": "result", "from": "irc.localhost"})
    check(find(got, "{%s}query/{%s}identity" % (DISCO_INFO, DISCO_INFO)).get("type") == "irc")


def test_registration_passes_through_to_the_gateway(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    user = server.login("reg", resource="r")
    user.send("<iq type='get' id='r1' to='irc.localhost'><query xmlns='jabber:iq:register'/></iq>")
    comp.expect("iq", attrs={"id": "r1", "type": "get", "from": user.jid},
                child="{jabber:iq:register}query")
    comp.send("<iq type='result' id='r1' from='irc.localhost' to='%s'>"
              "<query xmlns='jabber:iq:register'><username/><password/></query></iq>"
              % esc(user.jid))
    user.expect("iq", attrs={"id": "r1", "type": "result"})
    user.send("<iq type='set' id='r2' to='irc.localhost'><query xmlns='jabber:iq:register'>"
              "<username>nick</username><password>pw</password></query></iq>")
    comp.expect("iq", attrs={"id": "r2", "type": "set"})
    comp.send("<iq type='result' id='r2' from='irc.localhost' to='%s'/>" % esc(user.jid))
    user.expect("iq", attrs={"id": "r2", "type": "result"})


def test_presence_subscription_with_a_gateway_contact(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    account = server.account("sub")
    user = server.login(account, resource="r")
    user.send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
    user.expect("iq", attrs={"id": "roster1", "type": "result"})
    user.ignore = ()
    contact = "friend%irc@irc.localhost"
    user.send("<presence to='%s' type='subscribe'/>" % contact)
    user.expect("iq", attrs={"type": "set"}, child="roster:query/roster:item")
    comp.expect("presence", attrs={"type": "subscribe", "from": account.jid,
                                   "to": contact})
    comp.send("<presence from='%s' to='%s' type='subscribed'/>" % (contact, account.jid))
    push = user.expect("iq", attrs={"type": "set"}, child="roster:query/roster:item")
    item = find(push, "roster:query/roster:item")
    check(item.get("subscription") == "to", "subscription %r" % item.get("subscription"))
    # the user's initial presence probes the contact at the component; the
    # contact's presence reaches the user
    user.presence()
    probe = comp.wait_for("presence", attrs={"type": "probe", "to": contact})
    check(probe.get("from").split("/")[0] == account.jid, "from %r" % probe.get("from"))
    comp.send("<presence from='%s/irc' to='%s'/>" % (contact, account.jid))
    user.wait_for("presence", attrs={"from": contact + "/irc"})


def test_admin_lists_components(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    out = server.ctl("components").stdout
    check("irc.localhost" in out and "127.0.0.1:" in out, out)
    check("not connected:" in out and "queued.localhost" in out, out)
    status = server.ctl("status").stdout
    check("components: 1 connected" in status, status)
    comp.close()


# --- a Lua component ------------------------------------------------------------------------

def test_lua_component_echoes_and_its_stanzas_route_like_any(server):
    user = server.login("luac", resource="r")
    user.send(msg("anyone@echo.localhost/res", "hi module", mid="e1"))
    user.expect("message", attrs={"from": "anyone@echo.localhost/res", "id": "e1"},
                child="body", text="echo: hi module")
    user.send("<iq type='get' id='ei' to='echo.localhost'><query xmlns='%s'/></iq>"
              % DISCO_INFO)
    user.expect("iq", attrs={"id": "ei", "type": "result", "from": "echo.localhost"})
    # an iq it does not handle: the usual service-unavailable
    user.send("<iq type='get' id='ev' to='echo.localhost'>"
              "<query xmlns='jabber:iq:version'/></iq>")
    user.expect_error("iq", "service-unavailable", attrs={"id": "ev"})


def test_lua_component_and_external_component_talk(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    comp.send(msg("bot@echo.localhost", "hello module", frm="gw@irc.localhost"))
    comp.expect("message", attrs={"from": "bot@echo.localhost", "to": "gw@irc.localhost"},
                child="body", text="echo: hello module")


def test_lua_component_sends_its_own_stanzas(server):
    user = server.login("luab", resource="r")
    user.send(msg("x@echo.localhost", "send %s" % user.jid, mid="snd"))
    user.expect("message", attrs={"from": "x@echo.localhost"}, child="body",
                text="sent by the module")


# --- reload ------------------------------------------------------------------------------------

def test_reload_adds_and_removes_component_hosts(server):
    comp = ExternalComponent(server, "irc.localhost", SECRET).connect()
    saved = dict(server.components)
    try:
        server.components.pop("irc.localhost")
        server.components["new.localhost"] = {"component_secret": "new-secret"}
        with open(server.config_path, "w") as f:
            f.write(server.config_text())
        out = server.ctl("reload").stdout
        check("host removed: irc.localhost" in out, out)
        comp.expect_stream_error("host-gone")
        ExternalComponent(server, "new.localhost", "new-secret").connect()
        user = server.login("reload", resource="r")
        # no longer ours: a remote domain nobody serves
        user.send(msg("bot@irc.localhost", "to a removed host", mid="rm1"))
        user.expect_error("message", "remote-server-not-found", attrs={"id": "rm1"},
                          timeout=30)
    finally:
        server.components = saved
        with open(server.config_path, "w") as f:
            f.write(server.config_text())
        server.ctl("reload")


def test_check_config_knows_the_component_options(server):
    path = os.path.join(server.dir, "check.cfg")
    with open(path, "w") as f:
        f.write('data_path = "data"\ncomponent_ports = { 70000 }\n'
                'VirtualHost "localhost"\n'
                'Component "a.localhost"\n    component_queue = -1\n'
                'Component "b.localhost"\n    component_secret = "x"\n'
                '    component_max_connections = 2\n    name = "B"\n')
    out = server.ctl("check", path, check=False)
    text = out.stdout + out.stderr
    check(out.returncode == 1, text)
    check("a.localhost: an external component" in text, text)
    check("component_queue must be a whole number" in text, text)
    check("70000 is not a TCP port" in text, text)
    check("b.localhost" not in text and "unknown option" not in text, text)


def test_mam_and_carbons_treat_a_gateway_contact_like_any(ctx):
    srv = component_server(ctx, {"irc.localhost": {"component_secret": SECRET}},
                           modules=["roster", "presence", "message", "iq",
                                    "mam", "carbons"])
    comp = ExternalComponent(srv, "irc.localhost", SECRET).connect()
    acct = srv.account("mamgw")
    phone = srv.login(acct, resource="phone", presence=True)
    desk = srv.login(acct, resource="desk", presence=True)
    desk.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    desk.expect("iq", attrs={"id": "cb", "type": "result"})
    contact = "friend%irc@irc.localhost"
    phone.send(msg(contact, "to the gateway", mid="out1"))
    comp.expect("message", attrs={"id": "out1"})
    desk.expect("message", child="{urn:xmpp:carbons:2}sent")
    comp.send(msg(phone.jid, "from the gateway", frm=contact + "/irc", mid="in1"))
    phone.expect("message", attrs={"id": "in1"})
    desk.expect("message", child="{urn:xmpp:carbons:2}received")
    phone.send("<iq type='set' id='mq'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>")
    bodies = []
    while True:
        el = phone.expect(None)
        if el.tag.endswith("iq"):
            check(el.get("id") == "mq" and el.get("type") == "result", str(el.attrib))
            break
        body = find(el, "{urn:xmpp:mam:2}result/{urn:xmpp:forward:0}forwarded/"
                        "{jabber:client}message/{jabber:client}body")
        bodies.append(body.text if body is not None else None)
    check(bodies == ["to the gateway", "from the gateway"], "archive %r" % bodies)


def test_remote_users_reach_a_component_over_federation(ctx):
    comp_port = server_mod.free_port()
    a = server_mod.Server(ctx.build_dir, hosts=("a.example",),
                          components={"irc.a.example": {"component_secret": SECRET},
                                      "echo.a.example": {"module": "echo_component"}},
                          options={"component_ports": [comp_port],
                                   "component_interfaces": ["127.0.0.1"]})
    b = server_mod.Server(ctx.build_dir, hosts=("b.example",))
    a.options["s2s_static_hosts"] = pin("b.example", b.s2s_port)
    b.options["s2s_static_hosts"] = dict(pin("a.example", a.s2s_port),
                                         **pin("irc.a.example", a.s2s_port),
                                         **pin("echo.a.example", a.s2s_port))
    plugins = tempfile.mkdtemp(prefix="starling-echo-")
    with open(os.path.join(plugins, "mod_echo_component.lua"), "w") as f:
        f.write(ECHO_MODULE)
    ctx.cleanup(lambda: shutil.rmtree(plugins, True))
    a.options["plugin_paths"] = [plugins]
    for srv in (a, b):
        ctx.servers.append(srv)
        srv.start()
    comp = ExternalComponent(a, "irc.a.example", SECRET).connect()
    bob = b.login("remote", resource="r")
    bob.send(msg("bot@irc.a.example", "over s2s", mid="s1"))
    comp.expect("message", attrs={"id": "s1", "from": bob.jid}, child="body",
                text="over s2s", timeout=20)
    comp.send(msg(bob.jid, "and back", frm="bot@irc.a.example", mid="s2"))
    bob.expect("message", attrs={"id": "s2", "from": "bot@irc.a.example"}, timeout=20)
    # a Lua component is reached the same way
    bob.send(msg("x@echo.a.example", "lua over s2s", mid="s3"))
    bob.expect("message", attrs={"id": "s3", "from": "x@echo.a.example"},
               child="body", text="echo: lua over s2s", timeout=20)
