"""Byte transports for the raw test client: plain TCP, TLS through Python's
ssl module, and TLS through pyOpenSSL.

Python's ssl module cannot export keying material, so the tls-exporter
channel binding (RFC 9266) needs pyOpenSSL (python3-openssl, which
python3-aioxmpp depends on). Everything else uses the ssl module.

Every blocking call takes a timeout in seconds and raises TimeoutError when
it runs out. recv() returns b"" at end of stream; a reset connection counts
as the end of the stream too (TransportClosed is never raised by recv), so a
server that closes a socket with unread data still reads as "closed".
"""

import hashlib
import select
import socket
import ssl
import time


class TransportClosed(Exception):
    """Sending failed because the peer closed or reset the connection."""


CB_EXPORTER_LABEL = b"EXPORTER-Channel-Binding"

# signatureAlgorithm OIDs (DER content bytes) -> hash for tls-server-end-point
# (RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256).
_SIG_HASHES = {
    "1.2.840.113549.1.1.4": "sha256",    # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "sha256",    # sha1WithRSAEncryption
    "1.2.840.113549.1.1.11": "sha256",   # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.10045.4.1": "sha256",       # ecdsa-with-SHA1
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}


def _der_item(buf, pos):
    """(tag, content_start, content_end) of the DER item at pos."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _oid_text(content):
    first = content[0]
    parts = [str(first // 40), str(first % 40)]
    value = 0
    for b in content[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def cert_signature_oid(der):
    """The signatureAlgorithm OID of an X.509 certificate in DER form."""
    _, start, _ = _der_item(der, 0)               # Certificate SEQUENCE
    _, _, tbs_end = _der_item(der, start)         # tbsCertificate
    _, alg_start, _ = _der_item(der, tbs_end)     # signatureAlgorithm
    tag, oid_start, oid_end = _der_item(der, alg_start)
    if tag != 0x06:
        raise ValueError("certificate signatureAlgorithm has no OID")
    return _oid_text(der[oid_start:oid_end])


def server_end_point(der):
    """tls-server-end-point channel binding data (RFC 5929 4.1)."""
    name = _SIG_HASHES.get(cert_signature_oid(der), "sha256")
    return hashlib.new(name, der).digest()


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + timeout


def _left(deadline):
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


class PlainTransport:
    """A connected TCP socket."""

    kind = "tcp"

    def __init__(self, sock):
        self.sock = sock

    def send(self, data, timeout=10):
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except socket.timeout as e:
            raise TimeoutError("send timed out") from e
        except (BrokenPipeError, ConnectionResetError) as e:
            raise TransportClosed(str(e)) from e

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            return self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError("recv timed out") from e
        except ConnectionResetError:
            return b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def detach(self):
        """The raw socket, for wrapping in TLS."""
        return self.sock

    def channel_binding(self, cb_type):
        raise ValueError("no channel binding without TLS")


def _client_context(version, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    elif version is not None:
        raise ValueError("tls version must be None, '1.2' or '1.3'")
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class SSLTransport(PlainTransport):
    """TLS via Python's ssl module (no certificate verification)."""

    kind = "tls"

    def __init__(self, sock, version=None, alpn=None, server_name="localhost",
                 timeout=10):
        ctx = _client_context(version, alpn)
        sock.settimeout(timeout)
        try:
            self.sock = ctx.wrap_socket(sock, server_hostname=server_name)
        except socket.timeout as e:
            raise TimeoutError("TLS handshake timed out") from e

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            return self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError("recv timed out") from e
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return b""

    def send(self, data, timeout=10):
        try:
            super().send(data, timeout)
        except ssl.SSLError as e:
            raise TransportClosed(str(e)) from e

    @property
    def version(self):
        return self.sock.version()

    def peer_cert(self):
        return self.sock.getpeercert(binary_form=True)

    def channel_binding(self, cb_type):
        if cb_type == "tls-server-end-point":
            return server_end_point(self.peer_cert())
        if cb_type == "tls-unique":
            return self.sock.get_channel_binding("tls-unique")
        raise ValueError("Python's ssl module cannot compute %s; "
                         "connect with tls_backend='pyopenssl'" % cb_type)


class PyOpenSSLTransport:
    """TLS via pyOpenSSL over a non-blocking socket, for tls-exporter."""

    kind = "tls"

    def __init__(self, sock, version=None, alpn=None, server_name="localhost",
                 timeout=10):
        from OpenSSL import SSL
        self._SSL = SSL
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)
        if version == "1.2":
            ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
            ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        elif version == "1.3":
            ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
            ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        if alpn:
            ctx.set_alpn_protos([p.encode() for p in alpn])
        sock.setblocking(False)
        self.raw = sock
        self.conn = SSL.Connection(ctx, sock)
        self.conn.set_tlsext_host_name(server_name.encode())
        self.conn.set_connect_state()
        deadline = _deadline(timeout)
        self._retry(self.conn.do_handshake, deadline)

    def _wait(self, readable, deadline):
        left = _left(deadline)
        r, w, _ = select.select([self.raw] if readable else [],
                                [] if readable else [self.raw], [], left)
        if not r and not w:
            raise TimeoutError("timed out")

    def _retry(self, fn, deadline, *args):
        SSL = self._SSL
        while True:
            try:
                return fn(*args)
            except SSL.WantReadError:
                self._wait(True, deadline)
            except SSL.WantWriteError:
                self._wait(False, deadline)

    def send(self, data, timeout=10):
        SSL = self._SSL
        deadline = _deadline(timeout)
        view = memoryview(data)
        try:
            while view:
                n = self._retry(self.conn.send, deadline, bytes(view[:16384]))
                view = view[n:]
        except (SSL.Error, OSError) as e:
            raise TransportClosed(str(e)) from e

    def recv(self, timeout):
        SSL = self._SSL
        try:
            return self._retry(self.conn.recv, _deadline(timeout), 65536)
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError:
            return b""
        except ConnectionResetError:
            return b""

    def close(self):
        try:
            self.raw.close()
        except OSError:
            pass

    @property
    def version(self):
        return self.conn.get_protocol_version_name()

    def peer_cert(self):
        from OpenSSL import crypto
        cert = self.conn.get_peer_certificate()
        return crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)

    def channel_binding(self, cb_type):
        if cb_type == "tls-exporter":
            return self.conn.export_keying_material(CB_EXPORTER_LABEL, 32, b"")
        if cb_type == "tls-server-end-point":
            return server_end_point(self.peer_cert())
        if cb_type == "tls-unique":
            return self.conn.get_finished()
        raise ValueError("unknown channel binding type %s" % cb_type)


def wrap_tls(plain, backend="ssl", version=None, alpn=None,
             server_name="localhost", timeout=10):
    """Start TLS on a PlainTransport; backend is 'ssl' or 'pyopenssl'."""
    sock = plain.detach()
    if backend == "ssl":
        return SSLTransport(sock, version, alpn, server_name, timeout)
    if backend == "pyopenssl":
        return PyOpenSSLTransport(sock, version, alpn, server_name, timeout)
    raise ValueError("tls backend must be 'ssl' or 'pyopenssl'")
