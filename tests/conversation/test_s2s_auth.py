"""Authentication of federated peers with certificates: SASL EXTERNAL
(RFC 6120 6.4, XEP-0178) between Starlings whose certificates come from a
private CA (ssl.cafile), s2s_secure_auth / s2s_insecure_domains, a
certificate for another domain, and DANE (RFC 7673) with a DNSSEC-signed
zone from a private NSD (SRV + A + TLSA, no static hosts)."""

import hashlib
import os
import shutil
import subprocess
import tempfile

from harness import check, sync
from dnsserver import DnsServer
from pki import CA
import peers
import server as server_mod
import transport as tr


def tls_opts(cert, key, cafile=None):
    o = {"certificate": cert, "key": key}
    if cafile:
        o["cafile"] = cafile
    return o


def server(scope, domain, ssl, options=None):
    """A Starling for domain whose host has its own ssl option."""
    srv = server_mod.Server(scope.build_dir, hosts=(domain,), modules=peers.S2S_MODULES,
                            options=dict(options or {}),
                            host_options={domain: {"ssl": ssl}})
    scope.servers.append(srv)
    return srv


def pin_and_start(a, b):
    a.options.setdefault("s2s_static_hosts", {}).update(peers.pin(b.domain, b.s2s_port))
    b.options.setdefault("s2s_static_hosts", {}).update(peers.pin(a.domain, a.s2s_port))
    a.start()
    b.start()


def chat(a, b, prefix, text="hi"):
    alice = a.login(prefix)
    bob = b.login(prefix)
    alice.send("<message to='%s' type='chat' id='%s1'><body>%s</body></message>"
               % (bob.jid, prefix, text))
    bob.expect("message", attrs={"from": alice.jid}, child="body", text=text, timeout=15)
    return alice, bob


def s2s_rows(srv):
    return [l for l in srv.ctl("s2s", "list").stdout.splitlines()
            if l.startswith("incoming") or l.startswith("outgoing")]


def self_signed(directory, domain):
    """A self-signed certificate for domain (dNSName): (cert, key)."""
    cert = os.path.join(directory, domain + ".self.crt")
    key = os.path.join(directory, domain + ".self.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % domain, "-addext", "subjectAltName=DNS:%s" % domain,
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def spki_sha256(cert):
    der = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der,
                          check=True, capture_output=True).stdout
    return hashlib.sha256(spki).hexdigest()


# --- SASL EXTERNAL ------------------------------------------------------------


def test_a_shared_ca_authenticates_with_sasl_external(ctx):
    with CA() as ca:
        a = server(ctx, "a.example", tls_opts(*ca.issue("a.example"), cafile=ca.cert))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert))
        pin_and_start(a, b)
        alice, bob = chat(a, b, "ext", "over EXTERNAL")
        bob.send("<message to='%s' type='chat'><body>back</body></message>" % alice.jid)
        alice.expect("message", attrs={"from": bob.jid}, child="body", text="back",
                     timeout=15)
        a.wait_log(r"s2s outgoing a\.example -> b\.example authenticated \(SASL EXTERNAL"
                   r".*certificate valid \((SRV-ID|XmppAddr|DNS-ID)\)")
        b.wait_log(r"s2s incoming a\.example -> b\.example authenticated \(SASL EXTERNAL"
                   r".*certificate valid")
        rows = s2s_rows(a)
        out = [r for r in rows if r.startswith("outgoing")]
        check(out and "SASL EXTERNAL" in out[0] and " valid " in out[0] + " ", rows)
        rows = s2s_rows(b)
        inc = [r for r in rows if r.startswith("incoming")]
        check(inc and "SASL EXTERNAL" in inc[0] and "valid" in inc[0], rows)
        check("dialback" not in a.log_text().split("authenticated (")[1][:20],
              "a used dialback")


def test_without_the_ca_the_peers_fall_back_to_dialback(ctx):
    """Certificates from a CA the peer does not trust: no EXTERNAL offered,
    dialback works (s2s_secure_auth is off by default), and s2s list says
    the certificate is not valid."""
    with CA() as ca:
        a = server(ctx, "a.example", tls_opts(*ca.issue("a.example")))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example")))
        pin_and_start(a, b)
        chat(a, b, "nodb")
        a.wait_log(r"s2s outgoing a\.example -> b\.example authenticated \(dialback, "
                   r".*certificate invalid: ")
        rows = s2s_rows(b)
        inc = [r for r in rows if r.startswith("incoming") and "authenticated" in r]
        check(inc and "dialback" in inc[0] and "invalid" in inc[0], rows)


def raw_peer_with_certificate(ctx, srv, domain, cert, key):
    """A hand-driven stream from domain to srv that presents cert in TLS:
    its features after STARTTLS."""
    orig = tr._client_context

    def with_cert(*a, **kw):
        c = orig(*a, **kw)
        c.load_cert_chain(cert, key)
        return c
    raw = peers.RawServer(srv, domain)
    ctx.clients.append(raw)
    raw.open_stream()
    tr._client_context = with_cert
    try:
        feats = raw.starttls()
    finally:
        tr._client_context = orig
    return raw, feats


def test_dialback_with_a_valid_certificate_needs_no_verify_round_trip(ctx):
    """XEP-0344: a peer whose certificate is valid for the domain it
    claims is accepted at once (a.example has no server anyone could ask:
    a verify round trip would fail)."""
    with CA() as ca:
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert),
                   options={"s2s_secure_auth": True})
        b.start()
        bob = b.login("dbcert")
        raw, feats = raw_peer_with_certificate(ctx, b, "a.example", *ca.issue("a.example"))
        mechs = [m.text for m in feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]
        check(mechs == ["EXTERNAL"], "mechanisms offered: %s" % mechs)
        raw.send("<db:result from='a.example' to='b.example'>%s</db:result>" % ("0" * 64))
        raw.expect("{jabber:server:dialback}result",
                   attrs={"type": "valid", "from": "b.example", "to": "a.example"})
        raw.send("<message xmlns='jabber:server' from='x@a.example/r' to='%s' "
                 "type='chat'><body>with cert</body></message>" % bob.jid)
        bob.expect("message", attrs={"from": "x@a.example/r"}, child="body",
                   text="with cert")
        b.wait_log(r"s2s incoming a\.example -> b\.example authenticated "
                   r"\(dialback\+cert, .*certificate valid\)")
        rows = [r for r in s2s_rows(b) if r.startswith("incoming")]
        check(rows and "dialback+cert" in rows[0] and "valid" in rows[0], rows)


def test_sasl_external_with_an_authzid_by_hand(ctx):
    with CA() as ca:
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert))
        b.start()
        bob = b.login("authzid")
        raw, feats = raw_peer_with_certificate(ctx, b, "a.example", *ca.issue("a.example"))
        ns = "urn:ietf:params:xml:ns:xmpp-sasl"
        raw.send("<auth xmlns='%s' mechanism='EXTERNAL'>YS5leGFtcGxl</auth>" % ns)
        raw.expect("{%s}success" % ns)
        raw.reset_parser()
        feats = raw.open_stream()
        check(feats.find("{%s}mechanisms" % ns) is None, "SASL offered again")
        raw.send("<message xmlns='jabber:server' from='y@a.example' to='%s'>"
                 "<body>sasl</body></message>" % bob.jid)
        bob.expect("message", attrs={"from": "y@a.example"}, child="body", text="sasl")
        # another domain on this stream is not covered by the certificate
        raw.send("<message xmlns='jabber:server' from='z@c.example' to='%s'>"
                 "<body>no</body></message>" % bob.jid)
        raw.expect_stream_error("invalid-from")


# --- s2s_secure_auth -----------------------------------------------------------


def test_secure_auth_refuses_a_self_signed_peer_and_the_stanza_bounces(ctx):
    with CA() as ca:
        # a: the tests' self-signed localhost certificate, no CA
        a = server(ctx, "a.example", tls_opts(*server_mod.certificate()))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert),
                   options={"s2s_secure_auth": True})
        pin_and_start(a, b)
        alice = a.login("refused")
        bystander = a.login("bystander")
        alice.send("<message to='bob@b.example' id='r1'><body>x</body></message>")
        alice.expect_error("message", "remote-server-not-found", type="cancel",
                           attrs={"id": "r1", "from": "bob@b.example"}, timeout=20)
        b.wait_log(r"s2s incoming a\.example -> b\.example refused: a valid "
                   r"certificate is required")
        a.wait_log(r"s2s outgoing a\.example -> b\.example failed: stream error "
                   r"not-authorized")
        sync(bystander, alice)


def test_insecure_domains_let_a_peer_in_with_dialback(ctx):
    with CA() as ca:
        a = server(ctx, "a.example", tls_opts(*server_mod.certificate()))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert),
                   options={"s2s_secure_auth": True,
                            "s2s_insecure_domains": ["a.example"]})
        pin_and_start(a, b)
        chat(a, b, "insec")
        b.wait_log(r"s2s incoming a\.example -> b\.example authenticated \(dialback,")


def test_secure_domains_require_a_certificate_of_those_only(ctx):
    with CA() as ca:
        a = server(ctx, "a.example", tls_opts(*server_mod.certificate()))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert),
                   options={"s2s_secure_domains": ["a.example"]})
        pin_and_start(a, b)
        alice = a.login("secdom")
        alice.send("<message to='bob@b.example' id='s1'><body>x</body></message>")
        alice.expect_error("message", "remote-server-not-found",
                           attrs={"id": "s1"}, timeout=20)
        b.wait_log(r"refused: a valid certificate is required")


def test_a_certificate_for_another_domain_is_refused(ctx):
    with CA() as ca:
        # a.example presents a certificate of the trusted CA for c.example
        cert, key = ca.issue("c.example")
        a = server(ctx, "a.example", tls_opts(cert, key))
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert),
                   options={"s2s_secure_auth": True})
        pin_and_start(a, b)
        alice = a.login("other")
        alice.send("<message to='bob@b.example' id='o1'><body>x</body></message>")
        alice.expect_error("message", "remote-server-not-found",
                           attrs={"id": "o1"}, timeout=20)
        b.wait_log(r"s2s incoming a\.example -> b\.example refused: .*\(issued for "
                   r"another domain\)")


def test_a_raw_peer_gets_sasl_failures(ctx):
    """By hand: EXTERNAL on a stream without a valid certificate is
    not-authorized; another mechanism is invalid-mechanism; an authzid
    other than the stream's 'from' is invalid-authzid."""
    with CA() as ca:
        b = server(ctx, "b.example", tls_opts(*ca.issue("b.example"), cafile=ca.cert))
        b.start()
        raw = peers.RawServer(b, "a.example")
        raw.open_stream()
        feats = raw.starttls()
        check(feats.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms") is None,
              "EXTERNAL offered to a peer without a certificate")
        ns = "urn:ietf:params:xml:ns:xmpp-sasl"
        raw.send("<auth xmlns='%s' mechanism='PLAIN'>AGEAYg==</auth>" % ns)
        f = raw.expect("{%s}failure" % ns)
        check(f.find("{%s}invalid-mechanism" % ns) is not None, f)
        raw.send("<auth xmlns='%s' mechanism='EXTERNAL'>=</auth>" % ns)
        f = raw.expect("{%s}failure" % ns)
        check(f.find("{%s}not-authorized" % ns) is not None, f)
        raw.send("<auth xmlns='%s' mechanism='EXTERNAL'>Yy5leGFtcGxl</auth>" % ns)  # c.example
        f = raw.expect("{%s}failure" % ns)
        check(f.find("{%s}invalid-authzid" % ns) is not None, f)
        # three failures: the stream ends
        raw.expect_stream_error("not-authorized")
        # and the server serves others
        u = b.login("still")
        u.send("<iq type='get' id='p' to='b.example'><ping xmlns='urn:xmpp:ping'/></iq>")
        u.expect("iq", attrs={"id": "p", "type": "result"})


def test_secure_auth_on_the_outgoing_side_requires_a_verified_peer(ctx):
    with CA() as ca:
        a = server(ctx, "a.example", tls_opts(*ca.issue("a.example"), cafile=ca.cert),
                   options={"s2s_secure_auth": True})
        b = server(ctx, "b.example", tls_opts(*server_mod.certificate()))
        pin_and_start(a, b)
        alice = a.login("outsec")
        alice.send("<message to='bob@b.example' id='v1'><body>x</body></message>")
        alice.expect_error("message", "remote-server-not-found",
                           attrs={"id": "v1"}, timeout=20)
        a.wait_log(r"s2s outgoing a\.example -> b\.example: the certificate of b\.example "
                   r"is invalid: .*s2s_secure_auth requires a valid one")


# --- DANE ------------------------------------------------------------------------


def dane_pair(ctx, tlsa_for_b, secure_a=True):
    """a.example and b.example in DNSSEC-signed zones of a private NSD,
    each with SRV -> xmpp.<domain> on its s2s port, A 127.0.0.1, and TLSA
    for b's target (tlsa_for_b(cert) -> hex SHA-256 of the SPKI). Both use
    self-signed certificates; a requires secure authentication."""
    d = tempfile.mkdtemp(prefix="starling-dane-")
    ctx.cleanup(lambda: shutil.rmtree(d, True))
    ca_dir = d
    certs = {dom: self_signed(ca_dir, dom) for dom in ("a.example", "b.example")}
    a = server(ctx, "a.example", tls_opts(*certs["a.example"]),
               options={"s2s_secure_auth": secure_a})
    b = server(ctx, "b.example", tls_opts(*certs["b.example"]))
    dns = DnsServer()
    for srv in (a, b):
        z = dns.zone(srv.domain, signed=True)
        z.srv("_xmpp-server._tcp", 5, 10, srv.s2s_port, "xmpp")
        z.a("xmpp", "127.0.0.1")
    dns.zones["b.example"].tlsa("_%d._tcp.xmpp" % b.s2s_port, 3, 1, 1,
                                tlsa_for_b(certs["b.example"][0]))
    dns.zones["a.example"].tlsa("_%d._tcp.xmpp" % a.s2s_port, 3, 1, 1,
                                spki_sha256(certs["a.example"][0]))
    dns.start()
    ctx.cleanup(dns.stop)
    for srv in (a, b):
        srv.options.update({"dns_resolver": dns.resolver,
                            "dns_trust_anchor": dns.trust_anchor})
        srv.start()
    return a, b


def test_dane_with_a_matching_tlsa_record_authenticates_a_self_signed_peer(ctx):
    a, b = dane_pair(ctx, spki_sha256)
    alice, bob = chat(a, b, "dane", "signed and sealed")
    a.wait_log(r"s2s outgoing a\.example -> b\.example authenticated \(dialback, .*"
               r"certificate valid \(DANE-EE\)")
    rows = [r for r in s2s_rows(a) if r.startswith("outgoing")]
    check(rows and "DANE-EE" in rows[0], rows)


def test_dane_with_a_tlsa_record_that_does_not_match_fails(ctx):
    a, b = dane_pair(ctx, lambda cert: "ab" * 32, secure_a=False)
    alice = a.login("danefail")
    alice.send("<message to='bob@b.example' id='d1'><body>x</body></message>")
    alice.expect_error("message", "remote-server-not-found", type="cancel",
                       attrs={"id": "d1", "from": "bob@b.example"}, timeout=20)
    a.wait_log(r"DANE: no TLSA record of xmpp\.b\.example:\d+ matches the certificate")
    # b's dialback to a needs a to ask b's server, which a cannot reach
    # either: nothing goes through while the record is wrong
    bob = b.login("danefail")
    bob.send("<message to='%s' id='d2'><body>b to a</body></message>"
             % alice.jid.split("/")[0])
    bob.expect_error("message", "remote-server-not-found", attrs={"id": "d2"},
                     timeout=20)


def test_direct_tls_s2s_found_by_xmpps_server_srv(ctx):
    """XEP-0368: b.example listens for servers with TLS from the first byte
    (s2s_direct_tls_ports) and publishes it as _xmpps-server._tcp, with a
    _xmpp-server._tcp record of a lower preference for STARTTLS; a.example
    finds it through the private DNS server (no static hosts) and connects
    with Direct TLS. Messages go both ways."""
    d = tempfile.mkdtemp(prefix="starling-xmpps-")
    ctx.cleanup(lambda: shutil.rmtree(d, True))
    certs = {dom: self_signed(d, dom) for dom in ("a.example", "b.example")}
    direct = server_mod.free_port()
    a = server(ctx, "a.example", tls_opts(*certs["a.example"]))
    b = server(ctx, "b.example", tls_opts(*certs["b.example"]),
               options={"s2s_direct_tls_ports": [direct]})
    dns = DnsServer()
    za, zb = dns.zone("a.example"), dns.zone("b.example")
    za.srv("_xmpp-server._tcp", 5, 10, a.s2s_port, "xmpp")
    za.a("xmpp", "127.0.0.1")
    zb.srv("_xmpps-server._tcp", 1, 10, direct, "xmpp")
    zb.srv("_xmpp-server._tcp", 5, 10, b.s2s_port, "xmpp")
    zb.a("xmpp", "127.0.0.1")
    dns.start()
    ctx.cleanup(dns.stop)
    for srv in (a, b):
        srv.options.update({"dns_resolver": dns.resolver})
        srv.start()
    check("s2s, direct TLS" in b.log_text(), "b does not listen for direct TLS")
    alice, bob = chat(a, b, "xmpps", "straight to TLS")
    a.wait_log(r"connecting to 127\.0\.0\.1:%d \(direct TLS\)" % direct)
    b.wait_log(r"127\.0\.0\.1:\d+: connected \(s2sin\) \(direct TLS\)")
    bob.send("<message to='%s' type='chat' id='back'><body>and back</body></message>"
             % alice.jid)
    alice.expect("message", attrs={"from": bob.jid}, child="body", text="and back",
                 timeout=15)
