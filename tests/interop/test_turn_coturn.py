"""External services (XEP-0215, mod_external_services) against a real
TURN server: Debian's coturn on loopback with use-auth-secret and
static-auth-secret. A client asks Starling for its services, gets STUN
and TURN entries with REST-style credentials, and a TURN Allocate request
(RFC 5766, long-term credentials of RFC 5389 10.2) with them succeeds at
coturn; a wrong password and an expired username fail there. The
<credentials/> request answers the same way; a user of another host and
an unknown service are refused."""

import base64
import hashlib
import hmac
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import xmpp
from harness import check, fixture, skip, time_limit
from server import free_port
from xmpp import find, find_all, new_id

NS = "urn:xmpp:extdisco:2"
SECRET = "coturn-shared-secret-for-tests"
MAGIC = 0x2112A442

ALLOCATE, ALLOCATE_OK, ALLOCATE_ERR = 0x0003, 0x0103, 0x0113
A_USERNAME, A_MI, A_ERROR, A_REALM, A_NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
A_REQUESTED_TRANSPORT, A_XOR_RELAYED = 0x0019, 0x0016


def stun_attr(kind, value):
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * ((4 - len(value) % 4) % 4)


def stun_message(kind, attrs, tid, key=None):
    body = b"".join(attrs)
    if key is not None:         # MESSAGE-INTEGRITY over the header with its length
        head = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + tid
        body += stun_attr(A_MI, hmac.new(key, head + body, hashlib.sha1).digest())
    return struct.pack("!HHI", kind, len(body), MAGIC) + tid + body


def stun_parse(data):
    kind, length, _ = struct.unpack("!HHI", data[:8])
    attrs, pos = {}, 20
    while pos + 4 <= 20 + length:
        t, n = struct.unpack("!HH", data[pos:pos + 4])
        attrs.setdefault(t, data[pos + 4:pos + 4 + n])
        pos += 4 + n + (4 - n % 4) % 4
    return kind, data[8:20], attrs


def error_code(attrs):
    v = attrs.get(A_ERROR)
    return (v[2] & 7) * 100 + v[3] if v else None


def ask(sock, port, msg, tid):
    for _ in range(5):
        sock.sendto(msg, ("127.0.0.1", port))
        try:
            while True:
                data, _ = sock.recvfrom(4096)
                kind, rtid, attrs = stun_parse(data)
                if rtid == tid:
                    return kind, attrs
        except socket.timeout:
            continue
    raise AssertionError("no answer from coturn on port %d" % port)


def allocate(port, username, password):
    """A TURN Allocate with long-term credentials: (True, relayed port) or
    (False, error code)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1)
    try:
        transport = stun_attr(A_REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))
        tid = os.urandom(12)
        kind, attrs = ask(sock, port, stun_message(ALLOCATE, [transport], tid), tid)
        check(kind == ALLOCATE_ERR and error_code(attrs) == 401,
              "the first Allocate should be challenged: %#x %s" % (kind, error_code(attrs)))
        realm, nonce = attrs[A_REALM], attrs[A_NONCE]
        key = hashlib.md5(b"%s:%s:%s" % (username.encode(), realm, password.encode())).digest()
        tid = os.urandom(12)
        msg = stun_message(ALLOCATE, [transport, stun_attr(A_USERNAME, username.encode()),
                                      stun_attr(A_REALM, realm), stun_attr(A_NONCE, nonce)],
                           tid, key)
        kind, attrs = ask(sock, port, msg, tid)
        if kind == ALLOCATE_OK:
            relayed = attrs[A_XOR_RELAYED]
            return True, struct.unpack("!H", relayed[2:4])[0] ^ (MAGIC >> 16)
        return False, error_code(attrs)
    finally:
        sock.close()


@fixture
def coturn(scope):
    if not shutil.which("turnserver"):
        skip("coturn is not installed (make test installs TEST_DEPS)")
    d = tempfile.mkdtemp(prefix="coturn-")
    port = free_port()
    proc = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         "--listening-port=%d" % port, "--min-port=40000", "--max-port=40999",
         "--use-auth-secret", "--static-auth-secret=%s" % SECRET, "--realm=localhost",
         "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
         "--userdb=%s" % os.path.join(d, "turndb"), "--log-file=%s" % os.path.join(d, "log"),
         "--simple-log", "--pidfile=%s" % os.path.join(d, "pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)
    scope.cleanup(stop)
    deadline = time.monotonic() + 10       # up when it challenges an Allocate
    while True:
        try:
            allocate(port, "0:probe", "x")
            break
        except AssertionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
    return port


@fixture
def server(scope, coturn):
    srv = scope.server(modules=["roster", "presence", "message", "iq", "disco",
                                "external_services"],
                       hosts=("localhost", "other.localhost"),
                       options={"turn_external_host": "127.0.0.1",
                                "turn_external_port": coturn,
                                "turn_external_secret": SECRET,
                                "turn_external_ttl": 3600,
                                "turn_external_tcp": True})
    srv.coturn = coturn
    return srv


def services(client, to="localhost", type=None, ask_for="services", service=None):
    iq_id = new_id("ext")
    attrs = " type='%s'" % type if type else ""
    inner = service or ""
    client.send("<iq type='get' id='%s' to='%s'><%s xmlns='%s'%s>%s</%s></iq>"
                % (iq_id, to, ask_for, NS, attrs, inner, ask_for))
    return iq_id


def listed(client, **kw):
    el = client.expect("iq", attrs={"id": services(client, **kw), "type": "result"})
    return [dict(s.attrib) for s in find_all(el, "{%s}%s/{%s}service"
                                             % (NS, kw.get("ask_for", "services"), NS))]


@time_limit(60)
def test_turn_credentials_work_at_coturn(server):
    c = server.login("caller")
    got = listed(c)
    kinds = [(s["type"], s.get("transport")) for s in got]
    check(kinds == [("stun", "udp"), ("turn", "udp"), ("turn", "tcp")], repr(kinds))
    check(all(s["host"] == "127.0.0.1" and s["port"] == str(server.coturn) for s in got), repr(got))
    check("username" not in got[0], "STUN needs no credentials: %r" % got[0])
    turn = got[1]
    expires, user = turn["username"].split(":", 1)
    check(user == c.bare and 3500 < int(expires) - time.time() <= 3600, turn["username"])
    check(turn["password"] == base64.b64encode(hmac.new(
        SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode(), "password")
    check(turn.get("restricted") in ("1", "true") and turn.get("expires"), repr(turn))
    ok, relayed = allocate(server.coturn, turn["username"], turn["password"])
    check(ok and 40000 <= relayed <= 40999, "Allocate with Starling's credentials: %r" % relayed)
    ok, code = allocate(server.coturn, turn["username"], turn["password"][:-4] + "AAA=")
    check(not ok and code == 401, "a wrong password: %r" % code)
    past = "%d:%s" % (int(time.time()) - 60, c.bare)
    password = base64.b64encode(hmac.new(SECRET.encode(), past.encode(), hashlib.sha1).digest())
    ok, code = allocate(server.coturn, past, password.decode())
    check(not ok and code == 401, "an expired username: %r" % code)


def test_only_the_asked_type(server):
    c = server.login("stunner")
    got = listed(c, type="stun")
    check([s["type"] for s in got] == ["stun"], repr(got))


@time_limit(60)
def test_credentials_request(server):
    c = server.login("creds")
    got = listed(c, ask_for="credentials",
                 service="<service type='turn' host='127.0.0.1' port='%d'/>" % server.coturn)
    check(got and all(s["type"] == "turn" and s.get("password") for s in got), repr(got))
    ok, _ = allocate(server.coturn, got[0]["username"], got[0]["password"])
    check(ok, "Allocate with the credentials answer")
    c.expect_error("iq", "item-not-found", attrs={"id": services(
        c, ask_for="credentials", service="<service type='turn' host='turn.example'/>")})
    c.expect_error("iq", "bad-request", attrs={"id": services(c, ask_for="credentials")})


def test_other_hosts_users_are_refused(server):
    acct = server.account("outsider", host="other.localhost")
    c = xmpp.Client("127.0.0.1", server.port, "other.localhost", name="outsider")
    c.connect()
    c.open_stream()
    c.starttls()
    c.auth_scram(acct.user, acct.password, xmpp.DEFAULT_MECH)
    c.bind(None)
    el = c.expect_error("iq", "forbidden", type="auth", attrs={"id": services(c)})
    check(find(el, "{%s}services" % NS) is None, "services in the error")
