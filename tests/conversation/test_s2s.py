"""Federation between two Starlings (RFC 6120 server-to-server streams,
XEP-0220 Server Dialback over STARTTLS with self-signed certificates):
a.example and b.example on 127.0.0.1, pinned to each other with
s2s_static_hosts. Users of each talk to users of the other as to local
contacts: messages, a subscription that ends in "both", presence, iq."""

import time

from harness import check, fixture, sync
import server as server_mod
from xmpp import NS, find, find_all, new_id
import peers


@fixture
def pair(scope):
    return peers.starling_pair(scope, "a.example", "b.example")


def login(srv, prefix):
    c = srv.login(prefix, ignore_presence=False)
    return c


def test_a_chat_message_goes_both_ways(pair):
    a, b = pair
    alice = a.login("alice")
    bob = b.login("bob")
    alice.send("<message to='%s' type='chat' id='m1'><body>hello b</body></message>"
               % bob.jid)
    bob.expect("message", attrs={"from": alice.jid, "to": bob.jid, "type": "chat"},
               child="body", text="hello b", timeout=15)
    bob.send("<message to='%s' type='chat' id='m2'><body>hello a</body></message>"
             % alice.jid)
    alice.expect("message", attrs={"from": bob.jid, "to": alice.jid},
                 child="body", text="hello a", timeout=15)
    a.wait_log(r"s2s outgoing a\.example -> b\.example authenticated \(dialback")
    b.wait_log(r"s2s incoming a\.example -> b\.example authenticated \(dialback")
    b.wait_log(r"s2s outgoing b\.example -> a\.example authenticated \(dialback")


def test_messages_keep_their_order_over_the_new_stream(pair):
    a, b = pair
    alice = a.login("order")
    bob = b.login("order")
    for i in range(20):
        alice.send("<message to='%s' type='chat'><body>n%d</body></message>"
                   % (bob.jid, i))
    for i in range(20):
        bob.expect("message", child="body", text="n%d" % i, timeout=15)


def test_a_subscription_ends_in_both_and_presence_flows(pair):
    a, b = pair
    alice = a.login("suba", ignore_presence=False)
    bob = b.login("subb", ignore_presence=False)
    alice.presence()
    bob.presence()
    alice.expect("presence", attrs={"from": alice.jid})
    bob.expect("presence", attrs={"from": bob.jid})
    ab, bb = alice.account.jid, bob.account.jid

    # alice asks, bob approves
    alice.send("<presence to='%s' type='subscribe'/>" % bb)
    bob.wait_for("presence", attrs={"from": ab, "type": "subscribe"}, timeout=15)
    bob.send("<presence to='%s' type='subscribed'/>" % ab)
    alice.wait_for("presence", attrs={"from": bob.jid}, timeout=15)
    # bob asks back, alice approves
    bob.send("<presence to='%s' type='subscribe'/>" % ab)
    alice.wait_for("presence", attrs={"from": bb, "type": "subscribe"}, timeout=15)
    alice.send("<presence to='%s' type='subscribed'/>" % bb)
    bob.wait_for("presence", attrs={"from": alice.jid}, timeout=15)

    for c, other in ((alice, bb), (bob, ab)):
        iq = new_id("r")
        c.send("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>" % iq)
        r = c.wait_for("iq", attrs={"id": iq, "type": "result"})
        items = [i for i in find_all(r, "{jabber:iq:roster}query/{jabber:iq:roster}item")
                 if i.get("jid") == other]
        check(items and items[0].get("subscription") == "both",
              "roster item of %s: %s" % (other, [dict(i.attrib) for i in items]))

    # presence flows afterwards, both ways
    alice.send("<presence><show>away</show></presence>")
    bob.wait_for("presence", attrs={"from": alice.jid}, child="show", text="away",
                 timeout=15)
    bob.send("<presence><show>dnd</show></presence>")
    alice.wait_for("presence", attrs={"from": bob.jid}, child="show", text="dnd",
                   timeout=15)
    bob.send("<presence type='unavailable'/>")
    alice.wait_for("presence", attrs={"from": bob.jid, "type": "unavailable"},
                   timeout=15)


def test_iq_to_the_remote_server_is_answered(pair):
    a, b = pair
    alice = a.login("iq")
    alice.send("<iq type='get' id='p1' to='b.example'><ping xmlns='urn:xmpp:ping'/></iq>")
    alice.expect("iq", attrs={"id": "p1", "type": "result", "from": "b.example"},
                 timeout=15)
    alice.send("<iq type='get' id='d1' to='b.example'>"
               "<query xmlns='%s'/></iq>" % NS["disco"])
    r = alice.expect("iq", attrs={"id": "d1", "type": "result", "from": "b.example"},
                     timeout=15)
    feats = [f.get("var") for f in find_all(r, "{%s}query/{%s}feature"
                                            % (NS["disco"], NS["disco"]))]
    check("urn:xmpp:ping" in feats, "b.example's features: %s" % feats)


def test_a_message_to_a_remote_user_who_does_not_exist_bounces(pair):
    a, b = pair
    alice = a.login("nobody")
    alice.send("<message to='ghost@b.example' id='g1'><body>?</body></message>")
    alice.expect_error("message", "service-unavailable",
                       attrs={"id": "g1", "from": "ghost@b.example"}, timeout=15)


def test_an_unreachable_domain_bounces_once(ctx):
    silent = peers.SilentListener()
    srv = ctx.server(hosts=("c.example",), options={
        "s2s_connect_timeout": 3,
        "s2s_static_hosts": {"dead.example": "127.0.0.1:%d" % peers.closed_port(),
                             "silent.example": "127.0.0.1:%d" % silent.port}})
    try:
        alice = srv.login("bounce")
        bob = srv.login("bystander")
        alice.send("<message to='x@dead.example' id='d1'><body>1</body></message>")
        alice.send("<message to='y@dead.example' id='d2'><body>2</body></message>")
        alice.expect_error("message", "remote-server-not-found", type="cancel",
                           attrs={"id": "d1", "from": "x@dead.example"}, timeout=15)
        alice.expect_error("message", "remote-server-not-found", type="cancel",
                           attrs={"id": "d2", "from": "y@dead.example"}, timeout=15)
        alice.send("<message to='z@silent.example' id='s1'><body>3</body></message>")
        alice.expect_error("message", "remote-server-timeout",
                           attrs={"id": "s1", "from": "z@silent.example"}, timeout=15)
        # exactly once each: the next message bob sends is the next thing
        sync(bob, alice)
        check(len(silent.conns) >= 1, "silent.example was never connected to")
    finally:
        silent.close()


def test_federation_off_bounces_at_once_and_listens_for_no_server(ctx):
    import socket
    srv = ctx.server(hosts=("c.example",), options={
        "modules_disabled": ["s2s"],
        "s2s_static_hosts": {"d.example": "127.0.0.1:%d" % peers.closed_port()}})
    alice = srv.login("alone")
    alice.send("<message to='x@d.example' id='o1'><body>1</body></message>")
    alice.expect_error("message", "remote-server-not-found", type="cancel",
                       attrs={"id": "o1", "from": "x@d.example"})
    try:
        socket.create_connection(("127.0.0.1", srv.s2s_port), 2).close()
        listening = True
    except OSError:
        listening = False
    check(not listening, "the s2s port listens with federation off")
    check("federation is off" in srv.log_text(), "the log does not say federation is off")


def test_starlingctl_lists_counts_and_closes_s2s_streams(pair):
    a, b = pair
    alice = a.login("ops")
    bob = b.login("ops")
    alice.send("<message to='%s' type='chat'><body>up</body></message>" % bob.jid)
    bob.expect("message", child="body", text="up", timeout=15)
    out = a.ctl("s2s", "list").stdout
    check("outgoing" in out and "b.example" in out and "authenticated" in out
          and "dialback" in out, out)
    status = a.ctl("status").stdout
    check("s2s streams: " in status and "1 outgoing" in status, status)
    out = a.ctl("s2s", "close", "b.example").stdout
    check(out.startswith("1 ") or out.startswith("2 "), out)
    a.wait_log(r"s2s outgoing a\.example -> b\.example closed")
    # the next message makes a new stream
    alice.send("<message to='%s' type='chat'><body>again</body></message>" % bob.jid)
    bob.expect("message", child="body", text="again", timeout=15)


def test_a_domain_that_does_not_resolve_bounces_once(ctx):
    """No static host: the private DNS server answers for zone.example
    zone, where nothere has no records at all (NXDOMAIN): the message
    bounces remote-server-not-found, once."""
    from dnsserver import DnsServer
    dns = DnsServer()
    zone = dns.zone("zone.example")
    zone.a("someone", "127.0.0.1")
    dns.start()
    ctx.cleanup(dns.stop)
    srv = ctx.server(hosts=("c.example",), options={"dns_resolver": dns.resolver,
                                                    "dns_hosts_file": False})
    alice = srv.login("lost")
    bob = srv.login("bystander")
    alice.send("<message to='x@nothere.zone.example' id='n1'><body>1</body></message>")
    alice.expect_error("message", "remote-server-not-found", type="cancel",
                       attrs={"id": "n1", "from": "x@nothere.zone.example"}, timeout=30)
    sync(bob, alice)     # exactly once: the next message alice sees is bob's


S2S_WATCH = """
for _, name in ipairs({ "s2sin-established", "s2sout-established", "s2s-destroyed" }) do
    module:hook(name, function() module:log("info", "watched %s", name) end)
end
"""


def test_idle_streams_close_after_s2s_timeout_and_modules_see_it(ctx):
    """s2s_timeout = 2: once the chat is over both streams close by
    themselves; modules saw them established and destroyed."""
    a = server_mod.Server(ctx.build_dir, hosts=("a.example",), modules=peers.S2S_MODULES,
                          plugins={"s2swatch": S2S_WATCH}, options={"s2s_timeout": 2})
    b = server_mod.Server(ctx.build_dir, hosts=("b.example",), modules=peers.S2S_MODULES,
                          options={"s2s_timeout": 2})
    a.options["s2s_static_hosts"] = peers.pin("b.example", b.s2s_port)
    b.options["s2s_static_hosts"] = peers.pin("a.example", a.s2s_port)
    for srv in (a, b):
        ctx.servers.append(srv)
        srv.start()
    alice, bob = a.login("idle"), b.login("idle")
    alice.send("<message to='%s' type='chat'><body>hi</body></message>" % bob.jid)
    bob.expect("message", child="body", text="hi", timeout=15)
    bob.send("<message to='%s' type='chat'><body>hi back</body></message>" % alice.jid)
    alice.expect("message", child="body", text="hi back", timeout=15)
    a.wait_log(r"watched s2sout-established")
    a.wait_log(r"watched s2sin-established")
    a.wait_log(r"watched s2s-destroyed", timeout=15)
    rows = [l for l in a.ctl("s2s", "list").stdout.splitlines()
            if l.startswith("incoming") or l.startswith("outgoing")]
    deadline = time.monotonic() + 15
    while rows and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = [l for l in a.ctl("s2s", "list").stdout.splitlines()
                if l.startswith("incoming") or l.startswith("outgoing")]
    check(not rows, "streams still open after s2s_timeout: %s" % rows)
    # a new message opens a new stream
    alice.send("<message to='%s' type='chat'><body>again</body></message>" % bob.jid)
    bob.expect("message", child="body", text="again", timeout=15)
