"""The last hostile inputs of issue 17: probing usernames through in-band
registration, guessing passwords on a new connection per guess, streams
in an encoding other than UTF-8 (RFC 6120 11.6), and a second stream
header inside an open stream. Each runs with two bystanders who chat
before and after: nobody else may notice."""

import re
import time

from harness import bystanders, check, fixture, raises
from xmpp import AuthFailed, NS, RAW_C2S_HEADER as HEADER, esc, new_id, text_of, \
    to_xml

NS_REG = "jabber:iq:register"
REG_MODULES = ["roster", "presence", "message", "iq", "register"]


@fixture
def server(scope):
    return scope.server()


def reg_set(client, username, password="pw"):
    iq_id = new_id("reg")
    client.send("<iq type='set' id='%s'><query xmlns='%s'><username>%s"
                "</username><password>%s</password></query></iq>"
                % (iq_id, NS_REG, esc(username), esc(password)))
    return iq_id


def wait_of(el):
    """The seconds an error's text says to wait."""
    text = text_of(el, "error/stanzas:text") or ""
    m = re.search(r"try again in (\d+) s", text)
    check(m is not None, "no wait in the error text: %r" % text)
    return int(m.group(1))


def throttled(client, username):
    el = client.expect_error("iq", "policy-violation", type="wait",
                             attrs={"id": reg_set(client, username)})
    return wait_of(el)


# -- username probing through in-band registration (XEP-0077)

def throttled_server(ctx, max_attempts, period):
    """A server open to registration with no wait between accounts, where
    an address gets max_attempts probes per period seconds."""
    return ctx.server(modules=REG_MODULES, options={
        "allow_registration": True, "min_seconds_between_registrations": 0,
        "registration_throttle_max": max_attempts,
        "registration_throttle_period": period})


def test_registration_probes_are_throttled_per_address(ctx):
    srv = throttled_server(ctx, max_attempts=3, period=3)
    taken = srv.account("taken")
    with bystanders(srv):
        prober = srv.client()
        prober.expect_error("iq", "conflict", type="cancel",
                            attrs={"id": reg_set(prober, taken.user)})
        prober.expect_error("iq", "conflict", type="cancel",
                            attrs={"id": reg_set(prober, taken.user)})
        prober.expect("iq", attrs={"id": reg_set(prober, "fresh1"),
                                   "type": "result"})
        # the address's budget is spent: a new connection, a taken name
        # and a free one all get the same answer, so nothing is learnt
        for name in (taken.user, "fresh2"):
            other = srv.client()
            wait = throttled(other, name)
            check(1 <= wait <= 3, "wait %d s" % wait)
        # one attempt too many on one connection ends its stream
        reg_set(prober, "fresh3")
        prober.expect_stream_error("policy-violation")
        # another address is not concerned
        elsewhere = srv.client(source="127.0.0.2")
        elsewhere.expect("iq", attrs={"id": reg_set(elsewhere, "fresh4"),
                                      "type": "result"})
        # an honest registration after the wait it was told
        time.sleep(wait)
        honest = srv.client()
        honest.expect("iq", attrs={"id": reg_set(honest, "fresh5", "s3cret"),
                                   "type": "result"})
        honest.auth_scram("fresh5", "s3cret")
        check(honest.bind("r") == "fresh5@localhost/r", "bound")
    users = srv.ctl("list", "localhost").stdout.split()
    check("fresh4@localhost" in users and "fresh5@localhost" in users
          and "fresh2@localhost" not in users
          and "fresh3@localhost" not in users, "accounts: %s" % users)


def test_one_connection_gets_a_limited_number_of_attempts(ctx):
    srv = throttled_server(ctx, max_attempts=2, period=1)
    taken = srv.account("held")
    with bystanders(srv):
        c = srv.client()
        for _ in range(2):
            c.expect_error("iq", "conflict",
                           attrs={"id": reg_set(c, taken.user)})
        time.sleep(1.2)     # the address's budget is back, not the stream's
        reg_set(c, taken.user)
        c.expect_stream_error("policy-violation")
        fresh = srv.client()
        fresh.expect("iq", attrs={"id": reg_set(fresh, "afterwards"),
                                  "type": "result"})


def test_a_taken_name_is_not_told_apart_while_the_address_waits(ctx):
    # min_seconds_between_registrations: after an account was made, the
    # address's further attempts all answer alike (before: conflict for a
    # taken name, not-acceptable for a free one)
    srv = ctx.server(modules=REG_MODULES, options={
        "allow_registration": True, "min_seconds_between_registrations": 300})
    taken = srv.account("known")
    with bystanders(srv):
        c = srv.client()
        c.expect("iq", attrs={"id": reg_set(c, "mine"), "type": "result"})
        for name in (taken.user, "unknown-name"):
            d = srv.client()
            check(throttled(d, name) > 200, "the wait of the interval")


# -- password guessing, one connection per guess

def test_failed_login_penalty_holds_for_every_connection_of_the_address(server):
    victim = server.account("victim")
    with bystanders(server):
        for _ in range(4):          # 2 free failures, then 0.5 s and 1 s
            c = server.client()
            raises(AuthFailed, c.auth_plain, victim.user, "guess")
        slow = server.client()
        slow.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                  % (NS["sasl"], plain_b64(victim.user, "guess")))
        server.wait_log(r"failed login, answering in 2\.0 s")
        # while that answer waits, a new connection learns nothing, not
        # even with the right password
        guesser = server.client()
        e = raises(AuthFailed, guesser.auth_plain, victim.user, victim.password)
        check(e.condition == "temporary-auth-failure", to_xml(e.element))
        check(re.search(r"try again in \d+ s", to_xml(e.element)),
              to_xml(e.element))
        slow.expect("sasl:failure", child="sasl:not-authorized")
        # once the delayed failure is out, the right password works
        guesser.auth_plain(victim.user, victim.password)
        check(guesser.bind("ok") == victim.user + "@localhost/ok", "bound")


def plain_b64(user, password):
    import base64
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


# -- encodings other than UTF-8 (RFC 6120 11.6)

UTF_FORMS = [
    ("utf-16 with BOM, little-endian", "\ufeff", "utf-16-le"),
    ("utf-16 with BOM, big-endian", "\ufeff", "utf-16-be"),
    ("utf-16 without BOM, little-endian", "", "utf-16-le"),
    ("utf-16 without BOM, big-endian", "", "utf-16-be"),
    ("utf-32 with BOM, little-endian", "\ufeff", "utf-32-le"),
    ("utf-32 with BOM, big-endian", "\ufeff", "utf-32-be"),
    ("utf-32 without BOM, little-endian", "", "utf-32-le"),
    ("utf-32 without BOM, big-endian", "", "utf-32-be"),
]


def test_utf16_and_utf32_streams_are_unsupported_encoding(server):
    with bystanders(server):
        for what, bom, codec in UTF_FORMS:
            c = server.client(tls=None, open_stream=False, name=what)
            c.send((bom + "<?xml version='1.0'?>" + HEADER).encode(codec))
            # RFC 6120 4.9.1.3: the server's own header, then the error
            c.expect_stream_header()
            c.expect_stream_error("unsupported-encoding")


def test_utf16_sent_a_byte_at_a_time_is_unsupported_encoding(server):
    with bystanders(server):
        c = server.client(tls=None, open_stream=False)
        data = HEADER.encode("utf-16-le")
        for i in range(4):
            c.send(data[i:i + 1])
            time.sleep(0.05)
        c.send(data[4:])
        c.expect_stream_error("unsupported-encoding")


def test_declared_utf16_is_unsupported_encoding(server):
    with bystanders(server):
        c = server.client(tls=None, open_stream=False)
        c.send("<?xml version='1.0' encoding='UTF-16'?>" + HEADER)
        c.expect_stream_error("unsupported-encoding")


def test_utf16_after_the_sasl_restart_is_unsupported_encoding(server):
    a = server.account("switcher")
    with bystanders(server):
        c = server.client()
        c.auth_scram(a.user, a.password, restart=False)
        c.reset_parser()
        c.send(("\ufeff" + HEADER).encode("utf-16-le"))
        c.expect_stream_error("unsupported-encoding")


def test_utf8_stream_still_works_after_refusals(server):
    with bystanders(server):
        bad = server.client(tls=None, open_stream=False)
        bad.send(HEADER.encode("utf-16-be"))
        bad.expect_stream_error("unsupported-encoding")
        good = server.login("utf8")
        good.send("<message to='%s' type='chat'><body>h\u00e9llo \u2603"
                  "</body></message>" % good.jid)
        good.expect("message", child="body", text="h\u00e9llo \u2603")


# -- a second stream header inside an open stream

def test_second_stream_header_before_auth_is_invalid_xml(server):
    with bystanders(server):
        c = server.client()
        c.send(HEADER)
        c.expect_stream_error("invalid-xml")


def test_second_stream_header_after_login_is_invalid_xml(server):
    with bystanders(server):
        c = server.login("twice")
        c.send(HEADER)
        c.expect_stream_error("invalid-xml")


def test_second_stream_header_on_a_plain_stream_is_invalid_xml(server):
    with bystanders(server):
        c = server.client(tls=None)
        c.send("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
               " xmlns='jabber:client' to='localhost' version='1.0'/>")
        c.expect_stream_error("invalid-xml")
