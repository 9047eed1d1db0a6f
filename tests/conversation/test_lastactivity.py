"""mod_lastactivity: XEP-0012 Last Activity of accounts, answered by the
server: 0 while a resource is available, else the seconds since the last
logout and the status of the last unavailable presence; forbidden to
whoever may not see the account's presence."""

from harness import check, fixture
from seed import ROSTER_SEED, roster_item
from xmpp import esc, find, new_id

NS_LAST = "jabber:iq:last"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "ping", "lastactivity"],
                        plugins={"test_roster_seed": ROSTER_SEED})


def ask(client, to=None):
    iq_id = new_id("last")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='get' id='%s'%s><query xmlns='%s'/></iq>"
                % (iq_id, to_attr, NS_LAST))
    return iq_id


def answer(client, iq_id):
    """(seconds, text) of the result."""
    el = client.expect("iq", attrs={"id": iq_id, "type": "result"},
                       child="{%s}query" % NS_LAST)
    q = find(el, "{%s}query" % NS_LAST)
    return int(q.get("seconds")), (q.text or "")


def friends(server, prefix):
    """An account (not logged in) and a logged-in contact it shares its
    presence with (set up through a short login of the account)."""
    owner = server.account(prefix)
    friend = server.login(prefix + "friend")
    c = server.login(owner, resource="setup")
    roster_item(c, friend.bare, "from")
    return owner, friend, c


def available(client):
    """Initial presence, then a ping round trip: the server has handled
    the presence before anyone else asks."""
    client.presence()
    iq_id = new_id("ping")
    client.send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                % iq_id)
    client.expect("iq", attrs={"id": iq_id, "type": "result"})


def log_out(client, status=None):
    if status is not None:
        client.send("<presence type='unavailable'><status>%s</status></presence>"
                    % esc(status))
    client.end_stream()
    check(client.closed_within(5), "%s: the server did not close" % client.name)


def test_available_account_is_zero(server):
    owner, friend, setup = friends(server, "online")
    available(setup)
    seconds, text = answer(friend, ask(friend, owner.jid))
    check(seconds == 0 and text == "", (seconds, text))


def test_own_last_activity(server):
    c = server.login("self")
    available(c)
    for to in (None, c.bare):
        seconds, _ = answer(c, ask(c, to))
        check(seconds == 0, seconds)


def test_logged_out_account_with_status(server):
    owner, friend, setup = friends(server, "gone")
    setup.presence()
    log_out(setup, "Heading Home")
    seconds, text = answer(friend, ask(friend, owner.jid))
    check(0 <= seconds < 30, seconds)
    check(text == "Heading Home", "status text %r" % text)


def test_seconds_count_from_the_logout(server):
    owner, friend, setup = friends(server, "counted")
    log_out(setup)
    # Ask until a second has passed since the logout (at most 5 s).
    for _ in range(50):
        seconds, text = answer(friend, ask(friend, owner.jid))
        if seconds >= 1:
            break
        friend.closed_within(0.1)
    check(seconds >= 1, "seconds stayed at %s" % seconds)
    check(text == "", "no unavailable presence was sent, text %r" % text)


def test_available_again_forgets_the_old_status(server):
    owner, friend, setup = friends(server, "back")
    setup.presence()
    setup.send("<presence type='unavailable'><status>brb</status></presence>")
    setup.presence()
    log_out(setup)
    _, text = answer(friend, ask(friend, owner.jid))
    check(text == "", "status text %r" % text)


def test_not_subscribed_is_forbidden(server):
    owner = server.login("secretive")
    available(owner)
    stranger = server.login("nosy")
    roster_item(owner, stranger.bare, "to")    # owner sees nosy, not reverse
    iq_id = ask(stranger, owner.bare)
    stranger.expect_error("iq", "forbidden", type="auth", attrs={"id": iq_id})


def test_not_subscribed_offline_is_forbidden(server):
    owner = server.account("offline")
    stranger = server.login("nosy")
    iq_id = ask(stranger, owner.jid)
    stranger.expect_error("iq", "forbidden", type="auth", attrs={"id": iq_id})


def test_account_that_does_not_exist(server):
    c = server.login("lastnobody")
    iq_id = ask(c, "nobody-here@" + server.domain)
    c.expect_error("iq", "service-unavailable", type="cancel",
                   attrs={"id": iq_id})


# XEP-0012 section 3 and its Implementation Notes: a query to a bare JID
# tells the time since the user last logged out, i.e. was last connected
# to its server; an account with a connected resource has not logged out,
# whether or not that resource is available (a client may be connected and
# send no presence, or unavailable presence, without ending its session).
# The answer for it is 0 seconds with no status, exactly as for an
# available one; the authorization rule (forbidden unless the asker may
# see the account's presence) holds first.

def expect_zero(friend, owner, iq_id):
    friend.expect_exactly(
        "<iq type='result' id='%s' from='%s' to='%s'>"
        "<query xmlns='%s' seconds='0'/></iq>"
        % (esc(iq_id), esc(owner.jid), esc(friend.jid), NS_LAST))


def test_connected_without_presence_is_zero(server):
    owner, friend, setup = friends(server, "nopres")
    # setup is connected and sent no presence; no logout was ever recorded
    setup.roundtrip()
    expect_zero(friend, owner, ask(friend, owner.jid))


def test_connected_after_unavailable_is_zero(server):
    owner, friend, setup = friends(server, "unavail")
    setup.presence()
    setup.send("<presence type='unavailable'><status>brb</status></presence>")
    setup.roundtrip()
    expect_zero(friend, owner, ask(friend, owner.jid))


def test_connected_again_after_a_logout_is_zero(server):
    """A logout is on record, but the account is connected again (without
    presence): the old logout is not its last activity any more."""
    owner, friend, setup = friends(server, "again")
    setup.presence()
    log_out(setup, "Heading Home")
    back = server.login(owner, resource="back")
    back.roundtrip()
    expect_zero(friend, owner, ask(friend, owner.jid))
    # and once it logs out again, the new logout counts
    back.send("<presence type='unavailable'><status>gone again</status>"
              "</presence>")
    log_out(back)
    seconds, text = answer(friend, ask(friend, owner.jid))
    check(0 <= seconds < 30, seconds)
    check(text == "gone again", "status text %r" % text)


def test_connected_unavailable_not_subscribed_is_forbidden(server):
    owner = server.login("hidden")
    owner.send("<presence type='unavailable'/>")
    owner.roundtrip()
    stranger = server.login("nosy")
    iq_id = ask(stranger, owner.bare)
    stranger.expect_exactly(
        "<iq type='error' id='%s' from='%s' to='%s'>"
        "<error type='auth'><forbidden xmlns='%s'/></error></iq>"
        % (esc(iq_id), esc(owner.bare), esc(stranger.jid),
           "urn:ietf:params:xml:ns:xmpp-stanzas"))
