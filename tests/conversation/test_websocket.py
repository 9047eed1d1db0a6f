"""XMPP over WebSocket (RFC 7395) at /xmpp-websocket: SCRAM login, bind
and chat with a TCP client, over ws:// (behind a "proxy":
consider_websocket_secure) and wss://; stream management resumed on a
new WebSocket; pings; the handshake's refusals; origin checks; a message
over the stanza limit; web client discovery (XEP-0156)."""

import json
import socket
import ssl
import xml.etree.ElementTree as ET

from harness import bystanders, check, exchange, fixture
from server import free_port
from websockets.frames import Opcode
from wsclient import HandshakeRefused, WSClient, wait_for_port, ws_login
from xmpp import esc

SM = "urn:xmpp:sm:3"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks", "csi",
           "websocket", "host_meta"]
LIMIT = 16 * 1024


@fixture
def server(scope):
    http, https = free_port(), free_port()
    srv = scope.server(modules=MODULES, options={
        "http_ports": [http], "https_ports": [https],
        "consider_websocket_secure": True,
        "c2s_stanza_size_limit": LIMIT,
        "cross_domain_websocket": ["https://chat.example.net"],
    })
    srv.http_port, srv.https_port = http, https
    wait_for_port(http)
    wait_for_port(https)
    return srv


def raw_http(port, request, tls=False):
    """Sends request bytes; returns the status line and the whole answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(request)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and b"Connection: close" not in data \
                and b"Content-Length: " in data:
            head, _, body = data.partition(b"\r\n\r\n")
            n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(body) >= n:
                break
    s.close()
    return data.split(b"\r\n", 1)[0].decode(), data


def test_login_and_chat_with_a_tcp_client(server):
    a = server.account("web")
    w = ws_login(server.http_port, a, resource="browser")
    check(w.jid == a.user + "@localhost/browser", "bound JID %s" % w.jid)
    t = server.login("tcp")
    exchange(w, t)
    exchange(t, w)
    w.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    w.expect("iq", attrs={"type": "result", "id": "r1"}, child="{jabber:iq:roster}query")


def test_stream_framing_and_features(server):
    a = server.account("frame")
    w = WSClient(server.http_port, "localhost").connect()
    check(w.response.headers.get("Sec-WebSocket-Protocol") == "xmpp",
          "subprotocol not echoed: %r" % w.response.headers)
    feats = w.open_stream()
    check(w.header.get("from") == "localhost" and w.header.get("id"),
          "<open/> lacks from or id")
    check(w.header.get("version") == "1.0", "<open/> lacks version")
    check(w.features.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is None,
          "STARTTLS offered over WebSocket")
    check("SCRAM-SHA-256" in w.mechanisms(), "no SCRAM: %s" % w.mechanisms())
    check(not any(m.endswith("-PLUS") for m in w.mechanisms()),
          "-PLUS offered without TLS of our own")
    w.auth_scram(a.user, a.password)
    w.bind()
    w.end_stream()
    w.expect_closed()
    check(w.close_code == 1000, "close code %s" % w.close_code)


def test_login_over_wss_with_channel_binding(server):
    a = server.account("tls")
    w = WSClient(server.https_port, "localhost").connect(tls=True)
    w.open_stream()
    check("SCRAM-SHA-256-PLUS" in w.mechanisms(), "no -PLUS over wss")
    w.auth_scram(a.user, a.password, "SCRAM-SHA-256-PLUS")
    w.bind()
    t = server.login("peer")
    exchange(w, t)


def test_smacks_resume_on_a_new_websocket(server):
    a = server.account("sm")
    t = server.login("sender")
    w = ws_login(server.http_port, a, resource="r")
    w.send("<enable xmlns='%s' resume='true'/>" % SM)
    sm_id = w.expect("{%s}enabled" % SM).get("id")
    exchange(t, w, "before")
    w.close()                       # the connection is lost
    for i in range(3):
        t.send("<message to='%s' type='chat' id='q%d'><body>while away %d</body>"
               "</message>" % (esc(w.jid), i, i))
    t.roundtrip()
    w2 = WSClient(server.http_port, "localhost").connect()
    w2.open_stream()
    w2.auth_scram(a.user, a.password)
    w2.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, sm_id))
    w2.expect("{%s}resumed" % SM)
    w2.ignore = ("presence", "{%s}r" % SM)   # the server asks for acks
    w2.expect("message", child="body", text="before")
    for i in range(3):
        w2.expect("message", attrs={"id": "q%d" % i}, text=None)
    w2.jid = w.jid
    exchange(t, w2, "after")
    exchange(w2, t, "reply")


def test_csi_over_websocket(server):
    w = ws_login(server.http_port, server.account("csi"))
    t = server.login("talker")
    w.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    t.send("<message to='%s' type='chat'><body>held?</body></message>" % esc(w.jid))
    w.expect("message", child="body", text="held?")   # a message matters


def test_ping_is_answered(server):
    w = ws_login(server.http_port, server.account("ping"))
    w.send_frame(Opcode.PING, b"are you there")
    w.expect_pong = True
    w.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    w.expect("iq", attrs={"id": "p1"})
    check(any("pong" in str(t[2]) and "are you there" in str(t[2])
              for t in w.transcript), "no pong with the ping's data")


def test_message_over_the_limit_is_policy_violation(server):
    with bystanders(server):
        w = ws_login(server.http_port, server.account("big"))
        w.send("<message to='x@localhost'><body>%s</body></message>" % ("a" * LIMIT))
        w.expect_stream_error("policy-violation")
        check(w.close_code == 1009, "close code %s, not 1009" % w.close_code)


def test_binary_message_ends_the_stream(server):
    with bystanders(server):
        w = ws_login(server.http_port, server.account("bin"))
        w.send_frame(Opcode.BINARY, b"<presence/>")
        w.expect_stream_error("unsupported-encoding")
        check(w.close_code == 1003, "close code %s" % w.close_code)


def test_stanza_before_open_is_refused(server):
    w = WSClient(server.http_port, "localhost").connect()
    w.send("<message to='a@localhost'><body>x</body></message>")
    w.expect_stream_error("not-authorized")


def test_bad_upgrades_are_refused(server):
    with bystanders(server):
        path = b"GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\n"
        status, _ = raw_http(server.http_port, path + b"\r\n")
        check(status.startswith("HTTP/1.1 426"), "plain GET: %s" % status)
        status, _ = raw_http(server.http_port, path +
                             b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Version: 13\r\n"
                             b"Sec-WebSocket-Protocol: xmpp\r\n\r\n")
        check(status.startswith("HTTP/1.1 400"), "no key: %s" % status)
        status, _ = raw_http(server.http_port, path +
                             b"Upgrade: h2c\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             b"Sec-WebSocket-Version: 13\r\n\r\n")
        check(status.startswith("HTTP/1.1 400"), "Upgrade: h2c: %s" % status)
        try:
            WSClient(server.http_port, "localhost").connect(subprotocols=())
            check(False, "a handshake without the xmpp subprotocol was taken")
        except HandshakeRefused as e:
            check(e.status == 400, "no subprotocol: %d" % e.status)


def test_origins(server):
    ok = WSClient(server.http_port, "localhost").connect(
        origin="https://chat.example.net")
    ok.open_stream()
    same = WSClient(server.http_port, "localhost").connect(
        origin="http://127.0.0.1:%d" % server.http_port)
    same.open_stream()
    try:
        WSClient(server.http_port, "localhost").connect(origin="https://evil.example")
        check(False, "a foreign origin was let in")
    except HandshakeRefused as e:
        check(e.status == 403, "foreign origin: %d" % e.status)


def test_host_meta(server):
    status, data = raw_http(server.http_port,
                            b"GET /.well-known/host-meta HTTP/1.1\r\n"
                            b"Host: localhost:%d\r\nConnection: close\r\n\r\n"
                            % server.http_port)
    check(status == "HTTP/1.1 200 OK", status)
    head, _, body = data.partition(b"\r\n\r\n")
    check(b"Access-Control-Allow-Origin: *" in head, "no CORS header")
    xrd = ET.fromstring(body)
    links = {l.get("rel"): l.get("href") for l in
             xrd.findall("{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link")}
    check(links.get("urn:xmpp:alt-connections:websocket") ==
          "ws://localhost:%d/xmpp-websocket" % server.http_port, repr(links))
    status, data = raw_http(server.https_port,
                            b"GET /.well-known/host-meta.json HTTP/1.1\r\n"
                            b"Host: localhost\r\nConnection: close\r\n\r\n", tls=True)
    check(status == "HTTP/1.1 200 OK", status)
    doc = json.loads(data.partition(b"\r\n\r\n")[2])
    check(doc["links"] == [{"rel": "urn:xmpp:alt-connections:websocket",
                            "href": "wss://localhost/xmpp-websocket"}], repr(doc))
