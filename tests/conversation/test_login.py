"""Stream negotiation up to authentication: STARTTLS, direct TLS (XEP-0368),
SASL SCRAM (RFC 5802/7677, -PLUS with XEP-0440 channel binding) and PLAIN.

Channel binding: tls-server-end-point is computed from the server
certificate through Python's ssl module; tls-exporter needs the TLS
exporter, which Python's ssl module lacks, so those tests connect through
pyOpenSSL (python3-openssl, a dependency of python3-aioxmpp).
"""

from harness import check, fixture, raises
from xmpp import NS, AuthFailed, find, to_xml

ALL_MECHANISMS = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                  "SCRAM-SHA-1", "PLAIN"}


@fixture
def server(scope):
    # Failed logins are slowed down per address (tested on its own below);
    # this file fails many on purpose.
    return scope.server(options={"c2s_auth_failure_delay": 0})


def logged_in(c, account, resource="r"):
    """After SASL success: bind works and gives the account's JID."""
    check(find(c.features, "bind:bind") is not None,
          "no <bind/> in the features after SASL: %s" % to_xml(c.features))
    jid = c.bind(resource)
    check(jid == "%s/%s" % (account.jid, resource), "bound %s" % jid)


# -- features

def test_plain_stream_offers_only_required_starttls(server):
    c = server.client(tls=None)
    check(find(c.features, "tls:starttls/tls:required") is not None,
          "no <starttls><required/></starttls>: %s" % to_xml(c.features))
    check(find(c.features, "sasl:mechanisms") is None,
          "mechanisms offered before TLS: %s" % to_xml(c.features))
    check(c.header.get("from") == "localhost", "stream from %r"
          % c.header.get("from"))
    check(c.header.get("id"), "no stream id")
    check(c.header.get("version") == "1.0", "stream version %r"
          % c.header.get("version"))


def test_tls_stream_offers_all_mechanisms(server):
    c = server.client()
    mechs = set(c.mechanisms())
    check(ALL_MECHANISMS <= mechs, "mechanisms %s lack %s"
          % (sorted(mechs), sorted(ALL_MECHANISMS - mechs)))
    check(find(c.features, "tls:starttls") is None,
          "STARTTLS offered again after TLS")


def test_tls13_advertises_exporter_and_end_point_binding(server):
    c = server.client(version="1.3")
    types = c.channel_binding_types()
    check({"tls-exporter", "tls-server-end-point"} <= set(types),
          "channel binding types on TLS 1.3: %s" % types)


def test_tls13_does_not_advertise_tls_unique(server):
    # RFC 9266: tls-unique is not defined for TLS 1.3 (XEP-0440 clients
    # are not offered it; clients that ask anyway still get in, below).
    c = server.client(version="1.3")
    types = c.channel_binding_types()
    check("tls-unique" not in types, "tls-unique offered on TLS 1.3: %s" % types)


def test_tls12_advertises_end_point_binding(server):
    c = server.client(version="1.2")
    check(c.tls_version == "TLSv1.2", c.tls_version)
    types = c.channel_binding_types()
    check("tls-server-end-point" in types,
          "channel binding types on TLS 1.2: %s" % types)
    # with the extended master secret (OpenSSL's default), RFC 5929's
    # tls-unique is sound on TLS 1.2
    check("tls-unique" in types, "channel binding types on TLS 1.2: %s" % types)


def test_direct_tls_offers_mechanisms_without_starttls(server):
    c = server.client(tls="direct")
    check(find(c.features, "tls:starttls") is None, "STARTTLS on direct TLS")
    check(ALL_MECHANISMS <= set(c.mechanisms()), c.mechanisms())


# -- mechanisms

def test_scram_sha1_over_starttls(server):
    a = server.account("sha1")
    c = server.client()
    c.auth_scram(a.user, a.password, "SCRAM-SHA-1")
    logged_in(c, a)


def test_scram_sha256_over_starttls(server):
    a = server.account("sha256")
    c = server.client()
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256")
    logged_in(c, a)


def test_scram_sha256_plus_server_end_point_tls13(server):
    a = server.account("plus")
    c = server.client(version="1.3")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256-PLUS",
                 cb_type="tls-server-end-point")
    logged_in(c, a)


def test_scram_sha256_plus_server_end_point_tls12(server):
    a = server.account("plus")
    c = server.client(version="1.2")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256-PLUS",
                 cb_type="tls-server-end-point")
    logged_in(c, a)


def test_scram_sha1_plus_server_end_point(server):
    a = server.account("plus")
    c = server.client()
    c.auth_scram(a.user, a.password, "SCRAM-SHA-1-PLUS",
                 cb_type="tls-server-end-point")
    logged_in(c, a)


def test_scram_sha256_plus_tls_unique_tls12(server):
    a = server.account("unique12")
    c = server.client(version="1.2")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256-PLUS", cb_type="tls-unique")
    logged_in(c, a)


def test_scram_plus_tls_unique_on_tls13_as_stock_clients_compute_it(server):
    # slixmpp and aioxmpp ignore XEP-0440 and bind with tls-unique as
    # CPython's ssl (or pyOpenSSL) computes it on TLS 1.3 too: the client's
    # Finished of the handshake. Their default login must succeed at once.
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"):
        a = server.account("unique13")
        c = server.client(version="1.3")
        check(c.tls_version == "TLSv1.3", c.tls_version)
        c.auth_scram(a.user, a.password, mech, cb_type="tls-unique")
        logged_in(c, a)


def test_scram_plus_with_wrong_tls_unique_data_fails(server):
    a = server.account("badunique")
    c = server.client(version="1.3")
    real = c.transport.channel_binding("tls-unique")
    forged = bytes([real[0] ^ 1]) + real[1:]
    raises(AuthFailed, c.auth_scram, a.user, a.password, "SCRAM-SHA-256-PLUS",
           cb_type="tls-unique", cb_data=forged)


def test_scram_sha256_plus_tls_exporter(server):
    a = server.account("exporter")
    c = server.client(backend="pyopenssl", version="1.3")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256-PLUS",
                 cb_type="tls-exporter")
    logged_in(c, a)


def test_scram_plus_with_wrong_binding_data_fails(server):
    a = server.account("badcb")
    c = server.client()
    real = c.transport.channel_binding("tls-server-end-point")
    forged = bytes([real[0] ^ 1]) + real[1:]
    raises(AuthFailed, c.auth_scram, a.user, a.password, "SCRAM-SHA-256-PLUS",
           cb_type="tls-server-end-point", cb_data=forged)


def test_scram_y_flag_is_accepted_by_default(server):
    # A client whose only channel-binding types are ones this server lacks
    # (slixmpp 1.8: tls-unique, undefined on TLS 1.3) says 'y' although
    # -PLUS is offered (XEP-0440); by default Starling lets it log in.
    a = server.account("yflagok")
    c = server.client()
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256", cb_flag="y")
    logged_in(c, a)


def test_scram_y_flag_fails_when_strict(ctx):
    # RFC 5802 section 6: 'y' says "I support channel binding but think the
    # server does not"; with c2s_strict_channel_binding a server that
    # offered -PLUS fails it as a downgrade.
    srv = ctx.server(options={"c2s_strict_channel_binding": True})
    a = srv.account("yflag")
    c = srv.client()
    raises(AuthFailed, c.auth_scram, a.user, a.password, "SCRAM-SHA-256",
           cb_flag="y")


def test_unsupported_binding_type_does_not_use_up_attempts(server):
    # tls-unique-for-telnet (RFC 5929's other type) is not one we have:
    # such attempts fail without counting towards c2s_max_auth_failures,
    # so a client can fall back.
    a = server.account("cbfallback")
    c = server.client()
    for _ in range(4):
        raises(AuthFailed, c.auth_scram, a.user, a.password,
               "SCRAM-SHA-256-PLUS", cb_type="tls-unique-for-telnet",
               cb_data=b"x" * 12)
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256")
    logged_in(c, a)


def test_plain_over_starttls(server):
    a = server.account("plain")
    c = server.client()
    c.auth_plain(a.user, a.password)
    logged_in(c, a)


def test_direct_tls_login(server):
    a = server.account("direct")
    c = server.client(tls="direct")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256")
    logged_in(c, a)


def test_direct_tls_scram_plus(server):
    a = server.account("directplus")
    c = server.client(tls="direct")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-1-PLUS")
    logged_in(c, a)


# -- failures

def test_wrong_password_and_unknown_user_look_the_same(server):
    a = server.account("victim")
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"):
        failures = []
        for user, password in ((a.user, a.password + "x"),
                               ("nosuchuser" + a.user, a.password)):
            c = server.client()
            if mech == "PLAIN":
                e = raises(AuthFailed, c.auth_plain, user, password)
            else:
                e = raises(AuthFailed, c.auth_scram, user, password, mech)
            check(e.condition == "not-authorized",
                  "%s %s: %s" % (mech, user, to_xml(e.element)))
            failures.append((to_xml(e.element), e.stage))
        check(failures[0] == failures[1],
              "%s: wrong password and unknown user differ: %s" % (mech, failures))


def test_repeated_failures_from_one_address_are_answered_late(ctx):
    import time
    srv = ctx.server()
    a = srv.account("guessed")
    took = []
    for _ in range(4):
        c = srv.client()
        start = time.monotonic()
        e = raises(AuthFailed, c.auth_plain, a.user, "guess")
        took.append(time.monotonic() - start)
        check(e.condition == "not-authorized", to_xml(e.element))
    # the first two are answered at once, later ones after a growing delay
    check(took[2] >= 0.4 and took[3] >= 0.9, "failure timings: %s" % took)
    # the right password still works (after its own wait for nothing)
    c = srv.client()
    c.auth_plain(a.user, a.password)
    logged_in(c, a)


def test_unknown_user_gets_a_scram_challenge(server):
    # failing only after the proof keeps user names from being probed
    c = server.client()
    e = raises(AuthFailed, c.auth_scram, "nobody-here", "whatever",
               "SCRAM-SHA-256")
    check(e.stage == "client-final-message",
          "unknown user failed after the %s" % e.stage)


def test_retry_after_failure_on_the_same_stream(server):
    a = server.account("retry")
    c = server.client()
    raises(AuthFailed, c.auth_scram, a.user, "wrong", "SCRAM-SHA-256")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256")
    logged_in(c, a)


def test_auth_before_tls_is_encryption_required(server):
    a = server.account("early")
    c = server.client(tls=None)
    e = raises(AuthFailed, c.auth_plain, a.user, a.password)
    check(e.condition == "encryption-required", to_xml(e.element))


def test_unknown_mechanism_is_invalid_mechanism(server):
    c = server.client()
    c.send("<auth xmlns='%s' mechanism='X-NO-SUCH-MECH'>AAAA</auth>"
           % NS["sasl"])
    c.expect("sasl:failure", child="sasl:invalid-mechanism")


def test_encryption_not_required_allows_scram_on_plain_streams(ctx):
    srv = ctx.server(options={"c2s_require_encryption": False})
    c = srv.client(tls=None)
    check(find(c.features, "tls:starttls") is not None, "STARTTLS not offered")
    check(find(c.features, "tls:starttls/tls:required") is None,
          "STARTTLS required although c2s_require_encryption = false")
    check("SCRAM-SHA-256" in c.mechanisms(), c.mechanisms())
    a = srv.account("cleartext")
    c.auth_scram(a.user, a.password, "SCRAM-SHA-256")
    logged_in(c, a)
