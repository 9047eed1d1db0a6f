"""A quiet TLS 1.3 stream gives its OpenSSL state back and keeps only its
record keys (core/net/tls13.c, c2s_tls_compact): what its client sends and
receives afterwards, small or larger than a record, in either TLS flavour,
reads as before; KeyUpdate from the client is answered; a close is clean."""

import base64
import os
import re
import socket
import ssl
import subprocess
import threading
import time

from harness import exchange, time_limit
from xmpp import esc

QUIET = {"c2s_parser_release_after": 1}


def _quiet(srv, user, what="TLS state", times=1, timeout=20):
    """Waits until user's stream has given its what back times times."""
    pattern = re.compile(r"%s\d*@\S+: quiet, %s released" % (re.escape(user), what))
    deadline = time.monotonic() + timeout
    while len(pattern.findall(srv.log_text())) < times:
        assert time.monotonic() < deadline, \
            "%s's %s was not released %d times" % (user, what, times)
        time.sleep(0.1)


def _big_exchange(a, b, size):
    body = ("%07d " % 0) * (size // 8)
    a.send("<message to='%s' type='chat' id='big'><body>%s</body></message>"
           % (esc(b.jid), body))
    got = b.expect("message", attrs={"id": "big"})
    assert got.findtext("{jabber:client}body") == body


@time_limit(90)
def test_chat_after_the_tls_state_was_released(ctx):
    srv = ctx.server(options=QUIET)
    a = srv.login("quietstarttls")
    b = srv.login("quietdirect", tls="direct")
    exchange(a, b)
    _quiet(srv, "quietstarttls")
    _quiet(srv, "quietdirect")
    exchange(a, b)
    exchange(b, a)
    # larger than a record (16 KiB) both ways: split and joined again
    _big_exchange(a, b, 50000)
    _big_exchange(b, a, 50000)
    a.roundtrip()
    b.roundtrip()
    # quiet again (the parser goes again), then on with the same keys
    _quiet(srv, "quietstarttls", "parser", 2)
    exchange(a, b)
    a.end_stream()
    a.expect_closed()


def _alert_after_raw(srv, user, raw, alert):
    """Bytes written under the client's TLS, on its socket, to a released
    stream: the server answers with alert (its name as OpenSSL gives it
    to the client) and closes; other streams go on."""
    c = srv.login(user)
    other = srv.login(user + "peer")
    _quiet(srv, user)
    sock = socket.socket(fileno=os.dup(c.transport.sock.fileno()))
    try:
        sock.sendall(raw)
    finally:
        sock.close()
    tls = c.transport.sock
    tls.settimeout(10)
    try:
        data = tls.recv(65536)
        raise AssertionError("no alert; read %r" % data)
    except ssl.SSLError as e:
        assert alert in str(e).lower(), e
    exchange(other, srv.login(user + "after"))


@time_limit(60)
def test_forged_record_gets_bad_record_mac(ctx):
    srv = ctx.server(options=QUIET)
    _alert_after_raw(srv, "forger", bytes.fromhex("1703030020") + os.urandom(32),
                     "bad record mac")


@time_limit(60)
def test_overlong_record_gets_record_overflow(ctx):
    srv = ctx.server(options=QUIET)
    _alert_after_raw(srv, "overlong", bytes.fromhex("1703034801") + b"\0" * 64,
                     "record overflow")


@time_limit(60)
def test_unprotected_record_gets_unexpected_message(ctx):
    srv = ctx.server(options=QUIET)
    _alert_after_raw(srv, "cleartext", bytes.fromhex("160303000501000001ff"),
                     "unexpected message")


def test_operator_still_sees_the_tls_of_a_released_stream(ctx):
    srv = ctx.server(options=QUIET)
    srv.login("operatorview")
    _quiet(srv, "operatorview")
    out = srv.ctl("sessions").stdout
    line = [l for l in out.splitlines() if "operatorview" in l]
    assert line and "TLSv1.3" in line[0] and "TLS_AES_256_GCM_SHA384" in line[0], out


class SClient:
    """openssl s_client on the direct TLS port, typing XML; -msg shows the
    TLS messages each way, so what the server's record layer sent (its
    KeyUpdate) can be seen."""

    def __init__(self, srv, suite):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
             "-servername", srv.domain, "-tls1_3", "-ciphersuites", suite,
             "-msg"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.out = b""
        self.lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                return
            with self.lock:
                self.out += data

    def text(self):
        with self.lock:
            return self.out.decode("utf-8", "replace")

    def wait(self, pattern, count=1, timeout=15):
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.text())) < count:
            assert time.monotonic() < deadline, \
                "s_client never showed %r %d times:\n%s" % (pattern, count,
                                                         self.text()[-3000:])
            assert self.proc.poll() is None, \
                "s_client exited:\n%s" % self.text()[-3000:]
            time.sleep(0.05)

    def line(self, text):
        """One write: s_client takes a read that starts with K, k or Q as
        a command, anything else as data."""
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        time.sleep(0.3)

    def login(self, srv, account):
        header = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  "to='%s' version='1.0'>" % srv.domain)
        self.line(header)
        self.wait(r"</stream:features>")
        cred = base64.b64encode(("\0%s\0%s" % (account.user, account.password))
                                .encode()).decode()
        self.line("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                  "mechanism='PLAIN'>%s</auth>" % cred)
        self.wait(r"<success ")
        self.line(header)
        self.wait(r"</stream:features>", 2)
        self.line("<iq type='set' id='b1'><bind "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.wait(r"id='b1' type='result'")
        return re.search(r"<jid>([^<]+)</jid>", self.text()).group(1)

    def ping(self, pid):
        """A roster get and its result: a stanza each way."""
        self.line("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/>"
                  "</iq>" % pid)
        self.wait(r"<iq (?=[^>]*id='%s')(?=[^>]*type='result')" % pid)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _key_updates_received(text):
    return len(re.findall(r"<<< TLS 1\.3, Handshake \[length 0005\], KeyUpdate", text))


def _key_update_session(srv, suite, user):
    a = srv.account(user)
    c = SClient(srv, suite)
    try:
        c.wait(r"Cipher is %s" % suite)
        full = c.login(srv, a)
        _quiet(srv, user)
        c.ping("before")
        assert _key_updates_received(c.text()) == 0
        # KeyUpdate asking for ours: the server reads on with the new keys
        # and sends its own KeyUpdate before its next record
        c.line("K")
        c.ping("after-K")
        assert _key_updates_received(c.text()) == 1, c.text()[-3000:]
        # one not asking for ours: no answer, reading goes on
        c.line("k")
        c.ping("after-k")
        assert _key_updates_received(c.text()) == 1, c.text()[-3000:]
        c.line("K")
        c.ping("after-K2")
        assert _key_updates_received(c.text()) == 2, c.text()[-3000:]
        # a stanza larger than a record, and its answer
        body = "x" * 40000
        c.line("<message to='%s' id='big'><body>%s</body></message>"
               % (full, body))
        # (s_client's -msg lines interleave its records; they hold no x)
        c.wait(r"id='big'[^>]*><body>[^/]*</body>")
        got = re.search(r"id='big'[^>]*><body>([^/]*)</body>", c.text()).group(1)
        assert got.count("x") == 40000
        # Q: close_notify; the server closes too
        c.line("Q")
        c.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while a.user in srv.ctl("sessions").stdout:
            assert time.monotonic() < deadline, "the session outlived close_notify"
            time.sleep(0.2)
    finally:
        c.close()


@time_limit(90)
def test_key_update_after_the_tls_state_was_released_aes256(ctx):
    srv = ctx.server(options=QUIET)
    _key_update_session(srv, "TLS_AES_256_GCM_SHA384", "kuaes256")


@time_limit(90)
def test_key_update_after_the_tls_state_was_released_aes128(ctx):
    srv = ctx.server(options=QUIET)
    _key_update_session(srv, "TLS_AES_128_GCM_SHA256", "kuaes128")


@time_limit(90)
def test_key_update_after_the_tls_state_was_released_chacha20(ctx):
    srv = ctx.server(options=QUIET)
    _key_update_session(srv, "TLS_CHACHA20_POLY1305_SHA256", "kuchacha")


@time_limit(90)
def test_key_update_before_quiet_keeps_openssl(ctx):
    """A KeyUpdate OpenSSL handled itself moves its keys on where the
    watch cannot follow: that stream keeps its SSL, and works on."""
    srv = ctx.server(options=QUIET)
    a = srv.account("kuearly")
    c = SClient(srv, "TLS_AES_256_GCM_SHA384")
    try:
        c.login(srv, a)
        c.line("K")
        c.ping("early")
        _quiet(srv, "kuearly", "parser")
        time.sleep(1.5)
        assert not re.search(r"kuearly\d*@\S+: quiet, TLS state released",
                             srv.log_text())
        c.ping("later")
    finally:
        c.close()


@time_limit(60)
def test_released_streams_outlive_a_reload(ctx):
    """A reload replaces the TLS contexts; released streams never used
    them and chat on, with the ciphers they were given."""
    srv = ctx.server(options=QUIET)
    a, b = srv.login("reloada"), srv.login("reloadb", tls="direct")
    _quiet(srv, "reloada")
    _quiet(srv, "reloadb")
    srv.ctl("reload")
    srv.wait_log(r"TLS certificates reloaded")
    exchange(a, b)
    exchange(b, a)


@time_limit(60)
def test_tls12_stream_keeps_openssl_and_chats_on(ctx):
    """Only TLS 1.3 streams are released: a quiet TLS 1.2 stream keeps its
    SSL (its parser still goes) and goes on as before."""
    srv = ctx.server(options=QUIET)
    acc = srv.account("oldtls")
    c = srv.client(version="1.2")
    assert c.tls_version == "TLSv1.2"
    c.auth_scram(acc.user, acc.password)
    c.bind()
    other = srv.login("oldtlspeer")
    _quiet(srv, "oldtls", "parser")
    _quiet(srv, "oldtlspeer")
    assert not re.search(r"oldtls\d+@\S+: quiet, TLS state released",
                         srv.log_text())
    exchange(c, other)
    exchange(other, c)
    line = [l for l in srv.ctl("sessions").stdout.splitlines()
            if acc.user + "@" in l]
    assert line and "TLSv1.2" in line[0], line
