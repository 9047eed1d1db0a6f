"""SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484): a full login
with SCRAM and inline carbons, CSI and stream management; a mobile
reconnect in one round trip (a FAST token and an inline XEP-0198
resumption in one <authenticate/>); tokens requested, used, rotated and
refused (expired, revoked by a password change, the wrong channel
binding, a replayed count), and a wrong password under SASL2. Each
refusal leaves a chatting bystander unaffected.

slixmpp in Debian 12 (1.8.3) has neither SASL2 nor FAST, so these are raw
XML conversations only."""

import base64
import hashlib
import hmac
import re
import time
import uuid

import scram
from harness import bystanders, check, fixture, sync, time_limit
from xmpp import AuthFailed, ExpectError, esc, find, find_all, text_of

SASL2 = "urn:xmpp:sasl:2"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND2 = "urn:xmpp:bind:0"
FAST = "urn:xmpp:fast:0"
SM = "urn:xmpp:sm:3"
CARBONS = "urn:xmpp:carbons:2"
CSI = "urn:xmpp:csi:0"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks",
           "carbons", "csi", "ping"]


@fixture
def server(scope):
    return scope.server(modules=MODULES,
                        options={"smacks_max_ack_delay_stanzas": 100,
                                 "c2s_auth_failure_delay": 1})


def q(ns, name):
    return "{%s}%s" % (ns, name)


def user_agent(ua_id, software="TestClient", device="test phone"):
    return ("<user-agent id='%s'><software>%s</software><device>%s</device>"
            "</user-agent>" % (ua_id, software, device))


class Sasl2Error(AssertionError):
    def __init__(self, condition, element):
        super().__init__("SASL2 failure <%s/>" % condition)
        self.condition, self.element = condition, element


def sasl2_answer(c, timeout=None):
    el = c.expect(timeout=timeout)
    if el.tag == q(SASL2, "failure"):
        cond = next((c_.tag.split("}")[1] for c_ in el
                     if c_.tag.startswith("{%s}" % SASL)), None)
        raise Sasl2Error(cond, el)
    check(el.tag in (q(SASL2, "challenge"), q(SASL2, "success")),
          "not a SASL2 answer: %s" % el.tag)
    return el


def scram_sasl2(c, account, mech="SCRAM-SHA-256", inline="", ua_id=None,
                cb_type=None):
    """A full SASL2 SCRAM login; returns <success/> (after checking the
    server signature in its additional-data) and expects the features
    that follow it, with no stream restart."""
    cb_data = None
    if mech.endswith("-PLUS"):
        cb_type = cb_type or "tls-server-end-point"
        cb_data = c.transport.channel_binding(cb_type)
    s = scram.ScramClient(mech, account.user, account.password, cb_type, cb_data)
    c.send("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s"
           "</initial-response>%s%s</authenticate>"
           % (SASL2, mech, base64.b64encode(s.first()).decode(),
              user_agent(ua_id) if ua_id else "", inline))
    ch = sasl2_answer(c)
    check(ch.tag == q(SASL2, "challenge"), "expected a challenge")
    c.send("<response xmlns='%s'>%s</response>"
           % (SASL2, base64.b64encode(s.final(base64.b64decode(ch.text))).decode()))
    ok = sasl2_answer(c)
    check(ok.tag == q(SASL2, "success"), "expected success")
    s.verify(base64.b64decode(text_of(ok, q(SASL2, "additional-data"))))
    c.features = c.expect("stream:features")
    c.username = account.user
    return ok


def ht_response(user, token, cb=b""):
    mac = hmac.new(token.encode(), b"Initiator" + cb, hashlib.sha256).digest()
    return base64.b64encode(user.encode() + b"\0" + mac).decode()


def fast_sasl2(c, account, token, ua_id, mech="HT-SHA-256-NONE", inline="",
               count=None, invalidate=False, cb=None):
    """A FAST login: one <authenticate/>, one <success/> (whose
    additional-data must be the responder's HMAC)."""
    cb_types = {"HT-SHA-256-NONE": None, "HT-SHA-256-ENDP": "tls-server-end-point",
                "HT-SHA-256-UNIQ": "tls-unique", "HT-SHA-256-EXPR": "tls-exporter"}
    if cb is None:
        cb = (c.transport.channel_binding(cb_types[mech])
              if cb_types[mech] else b"")
    attrs = ""
    if count is not None:
        attrs += " count='%d'" % count
    if invalidate:
        attrs += " invalidate='true'"
    c.send("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s"
           "</initial-response>%s<fast xmlns='%s'%s/>%s</authenticate>"
           % (SASL2, mech, ht_response(account.user, token, cb),
              user_agent(ua_id), FAST, attrs, inline))
    ok = sasl2_answer(c)
    check(ok.tag == q(SASL2, "success"), "one round trip: %s" % ok.tag)
    want = hmac.new(token.encode(), b"Responder" + cb, hashlib.sha256).digest()
    got = base64.b64decode(text_of(ok, q(SASL2, "additional-data")))
    check(hmac.compare_digest(got, want), "the server's HT answer is wrong")
    return ok


def refused(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Sasl2Error as e:
        return e.condition
    raise AssertionError("the login was not refused")


def take_token(success):
    t = find(success, q(FAST, "token"))
    check(t is not None, "no FAST token in %s" % success)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t.get("expiry")),
          "expiry %r" % t.get("expiry"))
    return t.get("token")


def token_login(server, account, ua_id, mech="HT-SHA-256-NONE", version=None,
                backend="ssl"):
    """A full login that asks for a token; returns the token."""
    c = server.client(version=version, backend=backend)
    ok = scram_sasl2(c, account, ua_id=ua_id, inline="<request-token xmlns='%s' "
                     "mechanism='%s'/>" % (FAST, mech))
    c.end_stream()
    return take_token(ok)


def bound_client(c, success):
    c.jid = text_of(success, q(SASL2, "authorization-identifier"))
    c.ignore = ("presence",)
    return c


def test_features_offer_sasl2_bind2_and_fast(server):
    c = server.client(version="1.3", backend="pyopenssl")
    auth = find(c.features, q(SASL2, "authentication"))
    check(auth is not None, "no SASL2 feature")
    mechs = [m.text for m in find_all(auth, q(SASL2, "mechanism"))]
    check("SCRAM-SHA-256" in mechs and "SCRAM-SHA-256-PLUS" in mechs, mechs)
    bind_feats = [f.get("var") for f in find_all(
        auth, "%s/%s/%s/%s" % (q(SASL2, "inline"), q(BIND2, "bind"),
                               q(BIND2, "inline"), q(BIND2, "feature")))]
    check(set(bind_feats) == {CARBONS, CSI, SM}, bind_feats)
    check(find(auth, "%s/%s" % (q(SASL2, "inline"), q(SM, "sm"))) is not None,
          "no inline resumption offered")
    fast = [m.text for m in find_all(auth, "%s/%s/%s" % (
        q(SASL2, "inline"), q(FAST, "fast"), q(FAST, "mechanism")))]
    check(set(fast) == {"HT-SHA-256-NONE", "HT-SHA-256-ENDP", "HT-SHA-256-EXPR"},
          fast)     # no tls-unique on TLS 1.3
    types = c.channel_binding_types()
    check("tls-exporter" in types and "tls-server-end-point" in types, types)
    plain = server.client(tls=None)
    check(find(plain.features, "%s/%s/%s" % (q(SASL2, "authentication"),
          q(SASL2, "inline"), q(FAST, "fast"))) is None, "FAST offered without TLS")


def test_full_login_with_bind2_carbons_csi_and_sm(server):
    acct = server.account("full")
    other = server.login(acct, resource="desk")
    c = server.client()
    ok = scram_sasl2(c, acct, ua_id=str(uuid.uuid4()), inline=(
        "<bind xmlns='%s'><tag>Phone</tag><enable xmlns='%s'/>"
        "<inactive xmlns='%s'/><enable xmlns='%s' resume='true'/></bind>"
        % (BIND2, CARBONS, CSI, SM)))
    jid = text_of(ok, q(SASL2, "authorization-identifier"))
    check(re.fullmatch(re.escape(acct.jid) + r"/Phone/[A-Za-z0-9]{10}", jid), jid)
    enabled = find(ok, "%s/%s" % (q(BIND2, "bound"), q(SM, "enabled")))
    check(enabled is not None and enabled.get("resume") == "true", "no <enabled/>")
    check(find(c.features, "bind:bind") is None, "bind offered after Bind2")
    check(find(c.features, q(SM, "sm")) is not None, "features after success")
    bound_client(c, ok)
    # carbons: what the account's other resource sends is copied here
    peer = server.login("peer")
    other.send("<message to='%s' type='chat' id='c1'><body>hi</body></message>"
               % peer.jid)
    peer.expect("message", attrs={"id": "c1"})
    c.expect("message", child="{%s}sent" % CARBONS)
    # CSI: the session started inactive, so presence is held back until a
    # message that matters
    peer.send("<presence to='%s'/>" % esc(jid))
    peer.roundtrip()
    c.ignore = ()
    c.roundtrip()
    check(not any(getattr(e, "tag", "").endswith("presence") for e in c.queue),
          "presence reached an inactive session")
    c.send("<r xmlns='%s'/>" % SM)      # stream management counts
    c.expect(q(SM, "a"), attrs={"h": "1"})
    peer.send("<message to='%s' type='chat' id='m1'><body>to phone</body></message>"
              % esc(jid))
    c.expect("presence", attrs={"from": peer.jid})
    c.expect("message", attrs={"id": "m1"})


def test_plus_login_and_legacy_bind_after_sasl2(server):
    acct = server.account("plus")
    c = server.client()
    ok = scram_sasl2(c, acct, mech="SCRAM-SHA-256-PLUS")
    check(text_of(ok, q(SASL2, "authorization-identifier")) == acct.jid,
          "bare JID without Bind2")
    check(find(c.features, "bind:bind") is not None, "no bind feature")
    c.bind("legacy")                    # RFC 6120 binding still works
    c.roundtrip()


@time_limit(60)
def test_reconnect_with_fast_and_inline_resume_in_one_round_trip(server):
    acct = server.account("mobile")
    ua = str(uuid.uuid4())
    c = server.client()
    ok = scram_sasl2(c, acct, ua_id=ua, inline=(
        "<request-token xmlns='%s' mechanism='HT-SHA-256-NONE'/>"
        "<bind xmlns='%s'><tag>Mobile</tag><enable xmlns='%s' resume='true'/></bind>"
        % (FAST, BIND2, SM)))
    token = take_token(ok)
    smid = find(ok, "%s/%s" % (q(BIND2, "bound"), q(SM, "enabled"))).get("id")
    bound_client(c, ok)
    sender = server.login("sender")
    for i in range(3):
        sender.send("<message to='%s' type='chat' id='m%d'><body>%d</body></message>"
                    % (esc(c.jid), i, i))
        c.expect("message", attrs={"id": "m%d" % i})
    c.close()                           # the phone loses its network
    server.wait_log(r"mobile.*hibernating")
    sender.send("<message to='%s' type='chat' id='m3'><body>3</body></message>"
                % esc(c.jid))
    sender.roundtrip()
    again = server.client(name="again")
    ok = fast_sasl2(again, acct, token, ua, inline=(
        "<resume xmlns='%s' previd='%s' h='1'/>"
        "<bind xmlns='%s'><tag>Mobile</tag></bind>" % (SM, smid, BIND2)))
    resumed = find(ok, q(SM, "resumed"))
    check(resumed is not None and resumed.get("previd") == smid, "not resumed")
    check(find(ok, q(BIND2, "bound")) is None, "bound although resumed")
    check(text_of(ok, q(SASL2, "authorization-identifier")) == c.jid,
          "the resumed session's full JID")
    again.features = again.expect("stream:features")
    again.ignore = ("presence",)
    got = [again.expect("message").get("id") for _ in range(3)]
    check(got == ["m1", "m2", "m3"], "redelivered: %s" % got)
    again.expect(q(SM, "r"))
    again.jid = c.jid
    sync(sender, again)                 # the same session, reachable


def test_fast_token_none_then_channel_bound(server):
    acct = server.account("fast")
    ua = str(uuid.uuid4())
    token = token_login(server, acct, ua)
    c = server.client()
    ok = fast_sasl2(c, acct, token, ua, inline="<bind xmlns='%s'/>" % BIND2)
    bound_client(c, ok)
    c.roundtrip()
    c.end_stream()
    # a channel-bound token (tls-server-end-point) for another client
    ua2 = str(uuid.uuid4())
    token2 = token_login(server, acct, ua2, mech="HT-SHA-256-ENDP")
    d = server.client()
    fast_sasl2(d, acct, token2, ua2, mech="HT-SHA-256-ENDP", count=1)
    d.end_stream()
    # and tls-exporter on TLS 1.3
    ua3 = str(uuid.uuid4())
    token3 = token_login(server, acct, ua3, mech="HT-SHA-256-EXPR",
                         version="1.3", backend="pyopenssl")
    e = server.client(version="1.3", backend="pyopenssl")
    fast_sasl2(e, acct, token3, ua3, mech="HT-SHA-256-EXPR")


def test_fast_refusals(server):
    acct = server.account("refused")
    ua = str(uuid.uuid4())
    with bystanders(server):
        token = token_login(server, acct, ua, mech="HT-SHA-256-ENDP")
        # the wrong channel binding: forged data, and another mechanism
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, ua, mech="HT-SHA-256-ENDP",
                      cb=b"\0" * 32) == "not-authorized", "forged binding")
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, ua) == "not-authorized",
              "a token bound to ENDP used with NONE")
        # the token of another client
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, str(uuid.uuid4()),
                      mech="HT-SHA-256-ENDP") == "not-authorized", "another client")
        # a replayed count
        c = server.client()
        fast_sasl2(c, acct, token, ua, mech="HT-SHA-256-ENDP", count=5)
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, ua, mech="HT-SHA-256-ENDP",
                      count=5) == "not-authorized", "count 5 again")
        c = server.client()
        fast_sasl2(c, acct, token, ua, mech="HT-SHA-256-ENDP", count=6)


def test_password_change_and_admin_revoke_tokens(server):
    acct = server.account("revoked")
    ua = str(uuid.uuid4())
    with bystanders(server):
        token = token_login(server, acct, ua)
        acct.password = "a new password"
        server.ctl("user", "password", acct.jid, acct.password)
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, ua) == "not-authorized",
              "a token from before the password change")
        c = server.client()
        scram_sasl2(c, acct)            # the new password works
        # an admin revokes the tokens without touching the password
        token = token_login(server, acct, ua)
        out = server.ctl("user", "revoke-tokens", acct.jid).stdout
        check("revoked 1 login tokens" in out, "revoke-tokens said: %s" % out)
        c = server.client()
        check(refused(fast_sasl2, c, acct, token, ua) == "not-authorized",
              "a revoked token")
        c = server.client()
        scram_sasl2(c, acct)            # the password still works


def test_invalidate_on_logout(server):
    acct = server.account("logout")
    ua = str(uuid.uuid4())
    token = token_login(server, acct, ua)
    c = server.client()
    ok = fast_sasl2(c, acct, token, ua, invalidate=True)
    check(find(ok, q(FAST, "token")) is None, "a new token after invalidation")
    c.end_stream()
    c = server.client()
    check(refused(fast_sasl2, c, acct, token, ua) == "not-authorized",
          "an invalidated token")


@time_limit(60)
def test_expired_token_and_rotation(ctx):
    srv = ctx.server(modules=MODULES, options={
        "sasl2_fast_token_ttl": 4, "sasl2_fast_token_min_ttl": 3})
    acct = srv.account("expiring")
    ua = str(uuid.uuid4())
    with bystanders(srv):
        token = token_login(srv, acct, ua)
        time.sleep(1.5)                 # under the minimum left: rotated
        c = srv.client()
        ok = fast_sasl2(c, acct, token, ua)
        fresh = take_token(ok)
        check(fresh != token, "the same token again")
        c.end_stream()
        # the old one stays until a new one is used; a second new one
        # replaces the first, never used (XEP-0484 5.1)
        c = srv.client()
        fresh = take_token(fast_sasl2(c, acct, token, ua))
        c.end_stream()
        c = srv.client()
        fast_sasl2(c, acct, fresh, ua)  # using the new one retires the old
        c.end_stream()
        c = srv.client()
        check(refused(fast_sasl2, c, acct, token, ua) == "not-authorized",
              "the old token after the new one was used")
        time.sleep(4.5)
        c = srv.client()
        check(refused(fast_sasl2, c, acct, fresh, ua) == "credentials-expired",
              "an expired token")


@time_limit(60)
def test_wrong_password_under_sasl2_fails_late(ctx):
    srv = ctx.server(modules=MODULES, options={"c2s_auth_failure_delay": 2})
    acct = srv.account("wrong")
    bad = type(acct)(acct.user, "not the password", acct.host)
    with bystanders(srv):
        for _ in range(3):              # the third is answered late
            c = srv.client()
            check(refused(scram_sasl2, c, bad) == "not-authorized", "wrong password")
        srv.wait_log(r"failed login, answering in")
        c = srv.client()
        scram_sasl2(c, acct)            # the right one, once the delay is over


def test_sasl2_protocol_errors(server):
    acct = server.account("proto")
    c = server.client()
    c.send("<authenticate xmlns='%s' mechanism='NOPE'/>" % SASL2)
    check(refused(sasl2_answer, c) == "invalid-mechanism", "unknown mechanism")
    c.send("<authenticate xmlns='%s' mechanism='HT-SHA-256-NONE'><initial-response>"
           "%s</initial-response></authenticate>" % (SASL2, ht_response(acct.user, "x" * 72)))
    check(refused(sasl2_answer, c) == "malformed-request", "FAST without user-agent")
    d = server.client()
    d.send("<authenticate xmlns='%s' mechanism='SCRAM-SHA-256'/>" % SASL2)
    ch = sasl2_answer(d)                # no initial response: an empty challenge
    check(ch.tag == q(SASL2, "challenge") and not (ch.text or ""), "empty challenge")
    d.send("<abort xmlns='%s'/>" % SASL2)
    check(refused(sasl2_answer, d) == "aborted", "abort")
    e = server.client()
    scram_sasl2(e, acct)
    e.send("<authenticate xmlns='%s' mechanism='SCRAM-SHA-256'/>" % SASL2)
    e.expect_stream_error("policy-violation")
