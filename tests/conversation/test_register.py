"""mod_register: XEP-0077 In-Band Registration: off by default; when on,
accounts are made before authentication (one per connection, rate
limited per IP address); logged-in users change their password and
remove their account, which leaves nothing of theirs in any store."""

import signal
import subprocess

from harness import check, fixture
from seed import ROSTER_SEED, roster_item
from xmpp import AuthFailed, esc, find, new_id, text_of

NS_REG = "jabber:iq:register"
Q = "{%s}query" % NS_REG
FEATURE = "{http://jabber.org/features/iq-register}register"

MODULES = ["roster", "presence", "message", "iq", "register"]


@fixture
def closed_server(scope):
    return scope.server(modules=MODULES,
                        plugins={"test_roster_seed": ROSTER_SEED})


@fixture
def open_server(scope):
    return scope.server(modules=MODULES,
                        options={"allow_registration": True,
                                 "min_seconds_between_registrations": 0,
                                 "registration_throttle_max": 0})


def reg_get(client):
    iq_id = new_id("reg")
    client.send("<iq type='get' id='%s'><query xmlns='%s'/></iq>" % (iq_id, NS_REG))
    return iq_id


def reg_set(client, inner, to=None):
    iq_id = new_id("regset")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='set' id='%s'%s><query xmlns='%s'>%s</query></iq>"
                % (iq_id, to_attr, NS_REG, inner))
    return iq_id


def creds(username, password):
    return ("<username>%s</username><password>%s</password>"
            % (esc(username), esc(password)))


def can_log_in(server, user, password):
    c = server.client()
    try:
        c.auth_scram(user, password)
    except AuthFailed:
        return False
    c.bind("check")
    return True


# -- registration off (the default)

def test_registration_is_off_by_default(closed_server):
    c = closed_server.client()
    check(find(c.features, FEATURE) is None, "register feature offered")
    c.expect_error("iq", "service-unavailable", type="cancel",
                   attrs={"id": reg_get(c)})
    c.expect_error("iq", "service-unavailable", type="cancel",
                   attrs={"id": reg_set(c, creds("intruder", "secret"))})
    check(not can_log_in(closed_server, "intruder", "secret"),
          "an account was made")


def test_logged_in_user_sees_registration_when_off(closed_server):
    c = closed_server.login("member")
    el = c.expect("iq", attrs={"id": reg_get(c), "type": "result"},
                  child=Q + "/{%s}registered" % NS_REG)
    check(text_of(el, Q + "/{%s}username" % NS_REG) == c.account.user,
          "username in the answer")


# -- registration on

def test_feature_only_before_authentication(open_server):
    c = open_server.client()
    check(find(c.features, FEATURE) is not None, "no register feature")
    acct = open_server.account("featured")
    c.auth_scram(acct.user, acct.password)
    check(find(c.features, FEATURE) is None, "register offered after auth")


def test_registration_form(open_server):
    c = open_server.client()
    c.expect("iq", attrs={"id": reg_get(c), "type": "result"},
             child=[Q + "/{%s}username" % NS_REG, Q + "/{%s}password" % NS_REG])


def test_register_then_log_in(open_server):
    c = open_server.client()
    c.expect("iq", attrs={"id": reg_set(c, creds("Newbie", "s3cret pw")),
                          "type": "result"})
    c.auth_scram("newbie", "s3cret pw")
    jid = c.bind("first")
    check(jid == "newbie@localhost/first", jid)


def test_one_account_per_connection(open_server):
    c = open_server.client()
    c.expect("iq", attrs={"id": reg_set(c, creds("onlyone", "pw1")),
                          "type": "result"})
    c.expect_error("iq", "not-acceptable",
                   attrs={"id": reg_set(c, creds("another", "pw2"))})
    check(not can_log_in(open_server, "another", "pw2"), "second account made")


def test_taken_username_is_a_conflict(open_server):
    taken = open_server.account("taken")
    c = open_server.client()
    c.expect_error("iq", "conflict", type="cancel",
                   attrs={"id": reg_set(c, creds(taken.user, "hijack"))})
    check(can_log_in(open_server, taken.user, taken.password),
          "the old password no longer works")


def test_missing_or_empty_fields_are_not_acceptable(open_server):
    c = open_server.client()
    for inner in ("<username>nopw</username>",
                  "<username>emptypw</username><password/>",
                  "<password>nouser</password>",
                  creds("bad@name", "pw")):
        c.expect_error("iq", "not-acceptable", type="modify",
                       attrs={"id": reg_set(c, inner)})


def test_remove_before_authentication(open_server):
    c = open_server.client()
    c.expect_error("iq", "unexpected-request",
                   attrs={"id": reg_set(c, "<remove/>")})


def test_other_iqs_before_authentication_end_the_stream(open_server):
    c = open_server.client()
    c.send("<iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq>")
    c.expect_stream_error("not-authorized")


def test_rate_limit_per_address(ctx):
    srv = ctx.server(modules=MODULES, options={"allow_registration": True})
    first = srv.client()
    first.expect("iq", attrs={"id": reg_set(first, creds("early", "pw")),
                              "type": "result"})
    second = srv.client()
    el = second.expect_error("iq", "policy-violation", type="wait",
                             attrs={"id": reg_set(second, creds("late", "pw"))})
    check("try again in" in (text_of(el, "error/stanzas:text") or ""),
          "error text")
    # a taken name answers the same while the address waits: nothing to probe
    second.expect_error("iq", "policy-violation", type="wait",
                        attrs={"id": reg_set(second, creds("early", "pw"))})
    check(can_log_in(srv, "early", "pw"), "the first account")
    check(not can_log_in(srv, "late", "pw"), "the rate-limited account")


# -- after authentication

def test_change_password(open_server):
    acct = open_server.account("changer")
    c = open_server.login(acct)
    c.expect("iq", attrs={"id": reg_set(c, creds(acct.user, "brand new"),
                                        to="localhost"),
                          "type": "result"})
    check(can_log_in(open_server, acct.user, "brand new"), "new password")
    check(not can_log_in(open_server, acct.user, acct.password), "old password")


def test_change_password_errors(open_server):
    acct = open_server.account("careful")
    other = open_server.account("someoneelse")
    c = open_server.login(acct)
    c.expect_error("iq", "bad-request",
                   attrs={"id": reg_set(c, creds(other.user, "stolen"))})
    c.expect_error("iq", "not-acceptable",
                   attrs={"id": reg_set(c, creds(acct.user, ""))})
    c.expect_error("iq", "bad-request",
                   attrs={"id": reg_set(c, "<password>only</password>")})
    check(can_log_in(open_server, acct.user, acct.password), "password kept")
    check(can_log_in(open_server, other.user, other.password), "other kept")


def test_remove_with_other_children_is_a_bad_request(open_server):
    acct = open_server.account("cautious")
    c = open_server.login(acct)
    c.expect_error("iq", "bad-request", type="modify",
                   attrs={"id": reg_set(c, "<remove/><username>x</username>")})
    check(can_log_in(open_server, acct.user, acct.password), "account kept")


def test_remove_account_closes_every_session(closed_server):
    acct = closed_server.account("leaver")
    c = closed_server.login(acct, resource="one")
    other = closed_server.login(acct, resource="two")
    iq_id = reg_set(c, "<remove/>")
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
    c.expect_stream_error("not-authorized")
    other.expect_stream_error("not-authorized")
    check(not can_log_in(closed_server, acct.user, acct.password),
          "the removed account still logs in")


def test_remove_account_cancels_subscriptions(closed_server):
    leaver = closed_server.account("unsubscriber")
    friend = closed_server.login("staying")
    c = closed_server.login(leaver)
    roster_item(c, friend.bare, "both")
    roster_item(friend, leaver.jid, "both")
    friend.ignore = ()
    friend.presence()
    friend.expect("presence", attrs={"from": friend.jid})     # its own echo
    c.expect("iq", attrs={"id": reg_set(c, "<remove/>"), "type": "result"})
    # RFC 6121 3.2 and 3.3: both subscriptions are cancelled (the friend
    # may also see unavailable presence in between).
    for kind in ("unsubscribe", "unsubscribed"):
        friend.wait_for("presence", attrs={"from": leaver.jid, "type": kind})


# -- nothing left behind

STORE_MODULES = ["roster", "presence", "message", "iq", "vcard", "private",
                 "blocklist", "lastactivity", "register"]


def parse_dump(text):
    """{db name: [key bytes]} from `mdb_dump -a -p` output."""
    def unescape(line):
        out, i = bytearray(), 1           # each data line starts with a space
        while i < len(line):
            if line[i] == "\\":
                if line[i + 1] == "\\":
                    out.append(0x5c)
                    i += 2
                else:
                    out.append(int(line[i + 1:i + 3], 16))
                    i += 3
            else:
                out += line[i].encode()
                i += 1
        return bytes(out)
    dbs, name, data, lines = {}, None, False, []
    for line in text.splitlines():
        if line.startswith("database="):
            name = line.split("=", 1)[1]
        elif line == "HEADER=END":
            data, lines = True, []
        elif line == "DATA=END":
            dbs[name or ""] = [unescape(k) for k in lines[0::2]]
            data, name = False, None
        elif data:
            lines.append(line)
    return dbs


def dump(data_dir):
    proc = subprocess.run(["mdb_dump", "-a", "-p", data_dir],
                          capture_output=True, text=True, check=True)
    return parse_dump(proc.stdout)


def records_of(dbs, user):
    """(db, key) of every record stored for user@localhost."""
    prefix = b"localhost\0" + user.encode() + b"\0"
    found = []
    for db, keys in dbs.items():
        for key in keys:
            if key.startswith(prefix) or (db == "accounts"
                                          and key == prefix[:-1]):
                found.append((db, key))
    return found


def fill(server, acct):
    """Something of acct in every store: roster, vCard, private XML,
    blocklist, and (at logout) last activity."""
    c = server.login(acct, resource="filler")
    steps = [
        "<query xmlns='jabber:iq:roster'><item jid='friend@localhost'/></query>",
        "<vCard xmlns='vcard-temp'><FN>%s</FN></vCard>" % acct.user,
        "<query xmlns='jabber:iq:private'><n xmlns='x:notes'>hi</n></query>",
        "<block xmlns='urn:xmpp:blocking'><item jid='pest@localhost'/></block>",
    ]
    for payload in steps:
        iq_id = new_id("fill")
        c.send("<iq type='set' id='%s'>%s</iq>" % (iq_id, payload))
        c.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    c.presence()
    c.send("<presence type='unavailable'><status>bye</status></presence>")
    c.end_stream()
    check(c.closed_within(5), "logout")


def test_deleted_accounts_leave_nothing_in_the_store(ctx):
    srv = ctx.server(modules=STORE_MODULES)
    by_ctl, by_remove, keeper = (srv.account("byctl"), srv.account("byremove"),
                                 srv.account("keeper"))
    for acct in (by_ctl, by_remove, keeper):
        fill(srv, acct)
    before = dump(srv.data_dir)
    for acct in (by_ctl, by_remove, keeper):
        dbs = {db for db, _ in records_of(before, acct.user)}
        check({"accounts", "keyval", "map"} <= dbs,
              "%s has records only in %s" % (acct.user, sorted(dbs)))
        check(len(records_of(before, acct.user)) >= 6,
              "%s: %s" % (acct.user, records_of(before, acct.user)))

    srv.ctl("deluser", by_ctl.jid)
    c = srv.login(by_remove, resource="leaving")
    c.expect("iq", attrs={"id": reg_set(c, "<remove/>"), "type": "result"})
    c.expect_stream_error("not-authorized")

    srv.send_signal(signal.SIGTERM)
    check(srv.wait_exit() == 0, "server exit code %s" % srv.exit_code)
    after = dump(srv.data_dir)
    check(records_of(after, by_ctl.user) == [],
          "left by deluser: %s" % records_of(after, by_ctl.user))
    check(records_of(after, by_remove.user) == [],
          "left by <remove/>: %s" % records_of(after, by_remove.user))
    check(records_of(after, keeper.user) == records_of(before, keeper.user),
          "the other account's records changed")
