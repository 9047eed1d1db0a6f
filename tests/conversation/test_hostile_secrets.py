"""Passwords never reach the log, even at debug level: not as sent (PLAIN,
in-band registration and password change), not base64-encoded as they
travel in SASL, and not for failed attempts. test_login.py checks that a
wrong password and an unknown user fail the same way."""

import base64

from harness import check, raises
from xmpp import AuthFailed, esc, new_id
import scram

NS_REG = "jabber:iq:register"


def encodings(secret):
    """Ways a password could show up in a log line."""
    raw = secret.encode()
    forms = {secret, raw.hex()}
    # base64 of the secret at each of the three alignments it can have
    # inside a longer base64 text (the SASL payloads)
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + raw).decode().rstrip("=")
        skip = (pad * 4 + 2) // 3 + 1       # characters touched by the pad
        forms.add(enc[skip:-2])             # and by what would follow
    return {f for f in forms if len(f) >= 8}


def test_passwords_never_appear_in_the_debug_log(ctx):
    srv = ctx.server(modules=["roster", "presence", "message", "iq",
                              "register"],
                     options={"allow_registration": True,
                              "min_seconds_between_registrations": 0,
                              "c2s_auth_failure_delay": 0})
    secrets = []

    def secret(tag):
        s = "Pw-%s-%s-Zq9" % (tag, new_id("s"))
        secrets.append(s)
        return s

    # SCRAM (both hashes, and -PLUS) and PLAIN, successes and failures
    a = srv.register("secretive", secret("scram"))
    for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"):
        c = srv.client()
        c.auth_scram(a.user, a.password, mech)
        c.bind("r")
        c = srv.client()
        raises(AuthFailed, c.auth_scram, a.user, secret("wrong-" + mech), mech)
    c = srv.client()
    c.auth_plain(a.user, a.password)
    c.bind("plain")
    c = srv.client()
    raises(AuthFailed, c.auth_plain, a.user, secret("wrong-plain"))
    c = srv.client()
    raises(AuthFailed, c.auth_plain, "nobody-" + a.user, secret("nobody"))
    # PLAIN as it goes on the wire, for the base64 check below
    plain_b64 = base64.b64encode(scram.plain_message(a.user, a.password)).decode()

    # in-band registration (XEP-0077) before authentication
    c = srv.client()
    user, pw = "reg" + new_id("u"), secret("register")
    c.send("<iq type='set' id='r1'><query xmlns='%s'><username>%s</username>"
           "<password>%s</password></query></iq>" % (NS_REG, user, esc(pw)))
    c.expect("iq", attrs={"id": "r1", "type": "result"})
    # and a password change after it
    c = srv.client()
    c.auth_scram(user, pw)
    c.bind("r")
    c.send("<iq type='set' id='r2' to='localhost'><query xmlns='%s'><username>%s</username>"
           "<password>%s</password></query></iq>"
           % (NS_REG, user, esc(secret("changed"))))
    c.expect("iq", attrs={"id": "r2", "type": "result"})

    log = srv.log_text()
    check("debug" in log, "the server did not log at debug level")
    check("authenticated as" in log, "the log does not show the logins")
    for s in secrets:
        for form in encodings(s):
            check(form not in log, "the log contains the password %r (as %r)"
                  % (s, form))
    check(plain_b64 not in log, "the log contains the PLAIN message")
