"""XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind, driven by a BOSH
client written here (raw HTTP on sockets, tests/lib/boshclient.py): the
session creation response; SCRAM login, restart, bind and chat with a TCP
client; rid order (a request that comes early waits for the one before
it), retransmission (a repeated rid gets the same answer), hold and wait;
inactivity ends the session, or with XEP-0198 hibernates it so that a TCP
client resumes it; terminate; a page reload continues the session; CORS
preflights and answers for both endpoints, http_cors_override; host-meta
naming the endpoint; metrics and starlingctl status counting BOSH
sessions. Hostile: unknown sid, a rid outside the window, too many
requests at once, too often polled, bad XML, a huge body, a stanza over
the limit, a 'to' we do not serve, a slow body; bystanders unaffected."""

import json
import socket
import time

from boshclient import BoshClient, bosh_login, http_post, NS_HTTPBIND, NS_XBOSH
from harness import bystanders, check, exchange, fixture
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from server import free_port
from wsclient import wait_for_port
from xmpp import esc, text_of

SM = "urn:xmpp:sm:3"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks", "csi",
           "carbons", "ping", "bosh", "websocket", "host_meta", "http_openmetrics"]
LIMIT = 16 * 1024
ORIGIN = "https://chat.example.net"


@fixture
def server(scope):
    http = free_port()
    srv = scope.server(modules=MODULES, options={
        "http_ports": [http], "https_ports": [],
        "consider_bosh_secure": True,
        "c2s_stanza_size_limit": LIMIT,
        "bosh_max_inactivity": 4,
        "bosh_max_wait": 30,
        "http_request_timeout": 2,
        "smacks_hibernation_time": 60,
        "cross_domain_bosh": [ORIGIN],
        "http_cors_override": {"websocket": {"enabled": True,
                                             "origins": ["https://ws.example.org"]}},
    })
    srv.http_port = http
    wait_for_port(http)
    return srv


def quiet(c, timeout=15):
    """Stops c's polling and waits until it holds no request (each held
    one is answered by its wait at the latest)."""
    c.poll = False
    deadline = time.monotonic() + timeout
    while c.pending:
        if not c._fill(deadline) and time.monotonic() > deadline:
            raise AssertionError("%s: requests still held" % c.name)


def children(answer):
    return list(answer.xml())


def test_session_creation_response(server):
    c = BoshClient(server.http_port, wait=20, hold=1)
    feats = c.open_stream()
    body = c.created
    check(body.tag == "{%s}body" % NS_HTTPBIND, "answer is %s" % body.tag)
    check(body.get("sid") and body.get("authid"), "no sid or authid")
    check(body.get("wait") == "20" and body.get("hold") == "1",
          "wait/hold %s/%s" % (body.get("wait"), body.get("hold")))
    check(body.get("requests") == "2", "requests %s" % body.get("requests"))
    check(body.get("inactivity") == "4" and body.get("polling") == "5",
          "inactivity/polling %s/%s" % (body.get("inactivity"), body.get("polling")))
    check(body.get("from") == "localhost", "from %s" % body.get("from"))
    check(body.get("{%s}version" % NS_XBOSH) == "1.0", "no xmpp:version")
    check(body.get("{%s}restartlogic" % NS_XBOSH) == "true", "no xmpp:restartlogic")
    check(body.get("ver") and body.get("secure") == "true", "no ver or secure")
    check("SCRAM-SHA-256" in c.mechanisms(), "mechanisms %s" % c.mechanisms())
    check(feats.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None,
          "STARTTLS offered over BOSH")
    # A wait over bosh_max_wait is cut down to it.
    c2 = BoshClient(server.http_port, wait=3600)
    c2.open_stream()
    check(c2.created.get("wait") == "30", "wait %s" % c2.created.get("wait"))


def test_login_and_chat_with_a_tcp_client(server):
    a = server.account("web")
    t = server.login("tcp")
    b = bosh_login(server.http_port, a, resource="browser")
    check(b.jid == a.user + "@localhost/browser", "bound JID %s" % b.jid)
    exchange(b, t)
    exchange(t, b)
    b.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    b.expect("iq", attrs={"type": "result", "id": "r1"}, child="{jabber:iq:roster}query")
    # Carbons and CSI work as on any client stream.
    b.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
    b.expect("iq", attrs={"type": "result", "id": "cb"})
    other = server.login(a, resource="phone")
    t.send("<message to='%s' type='chat'><body>to the phone</body></message>"
           % esc(other.jid))
    other.expect("message", child="body", text="to the phone")
    b.expect("message", child="{urn:xmpp:carbons:2}received")
    b.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    exchange(t, b)                  # a message matters: it goes at once


def test_unqualified_stanzas_are_client_stanzas(server):
    """Children in the body's own namespace are jabber:client (XEP-0206
    2: what many clients send)."""
    t = server.login("tcpplain")
    b = bosh_login(server.http_port, server.account("plain"), wait=2)
    quiet(b)
    a = b.request("<message to='%s' type='chat'><body>bare</body></message>"
                  % esc(t.jid), attrs="")
    check(a.status == 200, "status %d" % a.status)
    t.expect("message", attrs={"from": b.jid}, child="body", text="bare")


def test_retransmitted_rid_gets_the_same_answer(server):
    b = bosh_login(server.http_port, server.account("rt"))
    quiet(b)
    rid = b.next_rid()
    first = b.request("<iq type='get' id='again' xmlns='jabber:client'>"
                      "<query xmlns='jabber:iq:roster'/></iq>", rid=rid)
    check(first.status == 200 and any(e.get("id") == "again" for e in children(first)),
          "no roster answer: %r" % first.body)
    second = b.request("<iq type='get' id='again' xmlns='jabber:client'>"
                       "<query xmlns='jabber:iq:roster'/></iq>", rid=rid)
    check(second.body == first.body, "retransmission answered %r, first %r"
          % (second.body, first.body))
    # The session goes on with the next rid; the iq was handled once.
    b.poll = True
    b.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    b.expect("iq", attrs={"id": "p1", "type": "result"})


def test_requests_out_of_order_are_handled_in_rid_order(server):
    t = server.login("ordered")
    b = bosh_login(server.http_port, server.account("ooo"), wait=2)
    quiet(b)
    r1, r2 = b.next_rid(), b.next_rid()
    msg = "<message xmlns='jabber:client' to='%s' type='chat'><body>%s</body></message>"
    late = b.post(b.wrap(msg % (esc(t.jid), "second"), r2), r2)
    early = b.post(b.wrap(msg % (esc(t.jid), "first"), r1), r1)
    t.expect("message", child="body", text="first")
    t.expect("message", child="body", text="second")
    b.poll = True
    deadline = time.monotonic() + 40
    while b.pending and time.monotonic() < deadline:
        b._fill(deadline)
    check(not b.pending, "requests not answered")
    check(late.rid == r2 and early.rid == r1, "rids")


def test_hold_and_wait(server):
    t = server.login("holder")
    b = bosh_login(server.http_port, server.account("hold"), wait=2, hold=1)
    quiet(b)
    r1 = b.next_rid()
    p1 = b.post(b.wrap("", r1), r1)
    # A message for the held request: it is answered with it.
    t.send("<message to='%s' type='chat'><body>to the held one</body></message>"
           % esc(b.jid))
    b.poll = False
    b.expect("message", child="body", text="to the held one")
    check(p1 not in b.pending, "the held request was not answered")
    # Two empty requests: the second releases the first, empty; the
    # second is answered empty when its wait runs out.
    r2, r3 = b.next_rid(), b.next_rid()
    p2 = b.post(b.wrap("", r2), r2)
    time.sleep(0.2)
    n = len(b.bodies)
    p3 = b.post(b.wrap("", r3), r3)
    deadline = time.monotonic() + 10
    while (p2 in b.pending or p3 in b.pending) and time.monotonic() < deadline:
        b._fill(deadline)
    check(p2 not in b.pending and p3 not in b.pending, "held requests not answered")
    check(all(len(list(x)) == 0 and x.get("type") is None for x in b.bodies[n:]),
          "empty requests got %r" % [list(x) for x in b.bodies[n:]])


def test_inactivity_ends_the_session(server):
    t = server.login("caller")
    b = bosh_login(server.http_port, server.account("idle"))
    exchange(t, b)
    quiet(b)
    sid = b.sid
    b.close()
    time.sleep(6)                   # bosh_max_inactivity is 4 s
    a = http_post(server.http_port, "<body rid='%d' sid='%s' xmlns='%s'/>"
                  % (b.rid + 1, sid, NS_HTTPBIND))
    check(a.xml().get("type") == "terminate" and
          a.xml().get("condition") == "item-not-found", "answer %r" % a.body)
    t.send("<message to='%s' type='chat' id='gone'><body>x</body></message>" % esc(b.jid))
    # The full JID is gone: the message goes to the bare JID (offline).
    t.roundtrip()


def test_inactivity_hibernates_with_stream_management(server):
    a = server.account("smb")
    t = server.login("smtalker")
    b = bosh_login(server.http_port, a, resource="web")
    b.send("<enable xmlns='%s' resume='true'/>" % SM)
    sm_id = b.expect("{%s}enabled" % SM).get("id")
    exchange(t, b, "before")
    quiet(b)
    b.close()
    time.sleep(6)                   # inactive: the session hibernates
    t.send("<message to='%s' type='chat' id='away'><body>while away</body></message>"
           % esc(b.jid))
    t.roundtrip()
    c = server.client(name="resumer")
    c.auth_scram(a.user, a.password)
    c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, sm_id))
    c.expect("{%s}resumed" % SM)
    c.ignore = ("presence", "{%s}r" % SM)
    c.expect("message", child="body", text="before")
    c.expect("message", attrs={"id": "away"}, child="body", text="while away")
    c.jid = b.jid
    exchange(t, c, "after")


def test_restart_and_terminate(server):
    a = server.account("term")
    b = BoshClient(server.http_port)
    b.open_stream()
    b.auth_scram(a.user, a.password)        # success, then xmpp:restart
    check(b.features.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None,
          "no bind after the restart")
    b.bind("r")
    b.ignore = ("presence",)
    b.presence()
    b.roundtrip()
    sid = b.sid
    b.terminate()
    b.expect_terminated()
    check(b.terminated == "", "terminated with %r" % b.terminated)
    a2 = http_post(server.http_port, "<body rid='%d' sid='%s' xmlns='%s'/>"
                   % (b.rid + 1, sid, NS_HTTPBIND))
    check(a2.xml().get("condition") == "item-not-found", "after terminate: %r" % a2.body)


def test_page_reload_continues_the_session(server):
    t = server.login("friend")
    b = bosh_login(server.http_port, server.account("reload"), resource="tab")
    exchange(t, b)
    quiet(b)
    b.close()                       # the page goes
    t.send("<message to='%s' type='chat'><body>during the reload</body></message>"
           % esc(b.jid))
    t.roundtrip()
    c = b.continued("reloaded")     # same sid, next rid, new connections
    c.expect("message", child="body", text="during the reload")
    exchange(c, t)
    exchange(t, c)


def test_cors(server):
    pre = http_post(server.http_port, "", method="OPTIONS", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    check(pre.status in (200, 204), "preflight %d" % pre.status)
    check(pre.header("access-control-allow-origin") == ORIGIN,
          "preflight headers %r" % pre.headers)
    check("POST" in (pre.header("access-control-allow-methods") or ""), "methods")
    check("Content-Type" in (pre.header("access-control-allow-headers") or ""), "headers")
    check(pre.header("access-control-max-age") == "7200", "max-age")
    other = http_post(server.http_port, "", method="OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    check(other.header("access-control-allow-origin") is None,
          "a foreign origin allowed: %r" % other.headers)
    b = BoshClient(server.http_port)
    b.headers = {"Origin": ORIGIN}
    rid = b.next_rid()
    a = http_post(server.http_port, "<body rid='%d' to='localhost' wait='5' hold='1' "
                  "xmlns='%s' xmlns:xmpp='%s' xmpp:version='1.0'/>"
                  % (rid, NS_HTTPBIND, NS_XBOSH), headers={"Origin": ORIGIN})
    check(a.status == 200 and a.header("access-control-allow-origin") == ORIGIN,
          "answer headers %r" % a.headers)
    # The WebSocket endpoint: its origin from http_cors_override.
    ws = http_post(server.http_port, "", path="/xmpp-websocket", method="OPTIONS",
                   headers={"Origin": "https://ws.example.org",
                            "Access-Control-Request-Method": "GET"})
    check(ws.header("access-control-allow-origin") == "https://ws.example.org",
          "websocket preflight %r" % ws.headers)
    ws2 = http_post(server.http_port, "", path="/xmpp-websocket", method="OPTIONS",
                    headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    check(ws2.header("access-control-allow-origin") is None,
          "websocket allows %r" % ws2.headers)


def test_host_meta_metrics_and_status(server):
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
    s.sendall(b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: localhost\r\n"
              b"Connection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    links = {l["rel"]: l["href"] for l in
             json.loads(data.partition(b"\r\n\r\n")[2])["links"]}
    check(links.get("urn:xmpp:alt-connections:xbosh") ==
          "http://localhost/http-bind" or
          links.get("urn:xmpp:alt-connections:xbosh", "").endswith("/http-bind"),
          "host-meta links %r" % links)
    b = bosh_login(server.http_port, server.account("counted"))
    b.roundtrip()
    a = http_post(server.http_port, "", path="/metrics", method="GET")
    kinds = {}
    for fam in text_string_to_metric_families(a.body.decode()):
        for smp in fam.samples:
            if smp.name == "starling_connections":
                kinds[smp.labels["kind"]] = smp.value
    check(kinds.get("bosh", 0) >= 1, "metrics connections %r" % kinds)
    out = server.ctl("status").stdout
    check("bosh sessions: " in out and "bosh sessions: 0" not in out,
          "status: %s" % out)


# --- hostile ----------------------------------------------------------------


def test_unknown_sid_and_bad_requests(server):
    with bystanders(server):
        a = http_post(server.http_port, "<body rid='10' sid='nosuchsid' xmlns='%s'/>"
                      % NS_HTTPBIND)
        check(a.status == 200 and a.xml().get("type") == "terminate" and
              a.xml().get("condition") == "item-not-found", "unknown sid: %r" % a.body)
        bad = http_post(server.http_port, "<body rid='10' xmlns='%s'><unclosed>"
                        % NS_HTTPBIND)
        check(bad.status == 400 and bad.xml().get("condition") == "bad-request",
              "bad XML: %d %r" % (bad.status, bad.body))
        norid = http_post(server.http_port, "<body to='localhost' xmlns='%s'/>"
                          % NS_HTTPBIND)
        check(norid.xml().get("condition") == "bad-request", "no rid: %r" % norid.body)
        dtd = http_post(server.http_port, "<!DOCTYPE x [<!ENTITY a 'b'>]><body rid='1' "
                        "to='localhost' xmlns='%s'/>" % NS_HTTPBIND)
        check(dtd.xml().get("condition") == "bad-request", "DTD: %r" % dtd.body)
        c = BoshClient(server.http_port)
        c.open_stream(to="elsewhere.example")
        check(c.terminated == "host-unknown", "to elsewhere: %r" % c.terminated)


def test_rid_outside_the_window(server):
    with bystanders(server):
        b = bosh_login(server.http_port, server.account("win"))
        quiet(b)
        a = b.request("", rid=b.rid + 50)
        check(a.xml().get("condition") == "item-not-found", "answer %r" % a.body)
        again = b.request("")
        check(again.xml().get("condition") == "item-not-found",
              "the session went on: %r" % again.body)


def test_too_many_requests(server):
    with bystanders(server) as (x, y):
        t = server.login("observer")
        b = bosh_login(server.http_port, server.account("many"))
        quiet(b)
        for _ in range(3):          # requests='2'
            r = b.next_rid()
            b.post(b.wrap("", r), r)
        b.expect_terminated("policy-violation")
        exchange(x, t)


def test_polling_too_often(server):
    with bystanders(server):
        b = bosh_login(server.http_port, server.account("poll"), hold=0)
        quiet(b)
        first = b.request("")
        check(first.xml().get("type") is None, "first poll %r" % first.body)
        second = b.request("")
        check(second.xml().get("condition") == "policy-violation",
              "second poll within 'polling': %r" % second.body)


def test_huge_body_and_stanza_over_the_limit(server):
    with bystanders(server):
        b = bosh_login(server.http_port, server.account("huge"))
        quiet(b)
        big = "<message xmlns='jabber:client'><body>%s</body></message>" % ("x" * (3 * LIMIT))
        a = b.request(big)
        check(a.status == 413 and a.xml().get("condition") == "policy-violation",
              "huge body: %d %r" % (a.status, a.body[:200]))
        b = bosh_login(server.http_port, server.account("over"))
        over = "<message xmlns='jabber:client'><body>%s</body></message>" % ("y" * (LIMIT + 100))
        b.send(over)
        err = b.expect_stream_error("policy-violation")
        check(b.terminated == "remote-stream-error", "terminated %r" % b.terminated)
        check(err is not None, "no stream error")


def test_slow_body(server):
    with bystanders(server):
        t = server.login("slowpeer")
        b = bosh_login(server.http_port, server.account("slow"))
        s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        body = b.wrap("<message xmlns='jabber:client'/>", rid=b.rid + 1).encode()
        s.sendall(b"POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d"
                  b"\r\n\r\n" % len(body) + body[:20])
        exchange(t, b)              # the session and others go on meanwhile
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        check(data.startswith(b"HTTP/1.1 408"), "slow body: %r" % data[:100])


def test_key_sequence(server):
    """XEP-0124 15: each request's key hashes to the key before it."""
    import hashlib

    def sha1(x):
        return hashlib.sha1(x.encode()).hexdigest()
    k2 = "the client secret seed"
    k1 = sha1(k2)
    k0 = sha1(k1)
    with bystanders(server):
        b = BoshClient(server.http_port, wait=1)
        b.open_stream(attrs="newkey='%s'" % k0)
        b.poll = False
        ok = b.request("", attrs="key='%s'" % k1)
        check(ok.status == 200 and ok.xml().get("type") is None, "key 1: %r" % ok.body)
        ok = b.request("", attrs="key='%s'" % k2)
        check(ok.xml().get("type") is None, "key 2: %r" % ok.body)
        bad = b.request("", attrs="key='%s'" % k2)
        check(bad.xml().get("condition") == "item-not-found",
              "a key used twice: %r" % bad.body)
