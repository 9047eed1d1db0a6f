"""The test PKI (tests/lib/pki.py) that federation tests share: a server
certificate from the private CA is verified by a TLS client that trusts
that CA only, for the domain and the extra names it was issued for, with
the XMPP address (id-on-xmppAddr) in it; another name, or a client without
the CA, is refused."""

import socket
import ssl
import subprocess

from harness import check, raises
from pki import CA


def tls_connect(srv, cafile, hostname):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", srv.tls_port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname=hostname) as s:
            return s.getpeercert()


def test_certificate_from_the_private_ca_verifies(ctx):
    ca = CA()
    ctx.cleanup(ca.close)
    cert, key = ca.issue("localhost", names=["conference.localhost"])
    srv = ctx.server(options={"ssl": {"certificate": cert, "key": key}})
    peer = tls_connect(srv, ca.cert, "localhost")
    check(("DNS", "localhost") in peer["subjectAltName"], peer)
    check(tls_connect(srv, ca.cert, "conference.localhost"), "extra name")
    # another name, and a client that does not trust the CA: refused
    raises(ssl.SSLCertVerificationError, tls_connect, srv, ca.cert, "other.localhost")
    other = CA(name="Another CA")
    ctx.cleanup(other.close)
    raises(ssl.SSLCertVerificationError, tls_connect, srv, other.cert, "localhost")
    # id-on-xmppAddr for each name, and usable as a client certificate
    # (SASL EXTERNAL on outgoing s2s streams)
    text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext",
                           "subjectAltName,extendedKeyUsage"],
                          capture_output=True, text=True).stdout
    check("XmppAddr::localhost" in text and "XmppAddr::conference.localhost" in text
          and "TLS Web Client Authentication" in text, text)
