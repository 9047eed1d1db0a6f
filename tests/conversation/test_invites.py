"""mod_invites: a user invites someone (XEP-0401), who registers with the
token (XEP-0445) on a host that is otherwise closed and ends up subscribed
to the inviter both ways; an admin's account invite reserves a username;
an existing user redeems a contact invite with a subscription request
carrying the token (XEP-0379); a used or expired token is refused."""

import re
import time

from harness import check, fixture
from server import Account
from xmpp import AuthFailed, esc, find, find_all, new_id

CMD = "http://jabber.org/protocol/commands"
DATA = "jabber:x:data"
PARS = "urn:xmpp:pars:0"
REG = "jabber:iq:register"
ROSTER = "jabber:iq:roster"
MODULES = ["roster", "presence", "message", "iq", "disco", "register", "adhoc", "invites"]


@fixture
def server(scope):
    srv = scope.server(modules=MODULES, options={
        "admins": ["root@localhost"], "allow_user_invites": True,
        "min_seconds_between_registrations": 0})
    srv.register("root", "root-pw")
    return srv


def invite(c, node, fields=None):
    """Runs an invite command; the uri field of its result."""
    iq = new_id("inv")
    c.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' node='%s' "
           "action='execute'/></iq>" % (iq, CMD, node))
    el = c.expect("iq", attrs={"id": iq, "type": "result"})
    cmd = find(el, "{%s}command" % CMD)
    if cmd.get("status") == "executing":
        iq = new_id("inv")
        form = "".join("<field var='%s'><value>%s</value></field>" % (k, esc(v))
                       for k, v in (fields or {}).items())
        c.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' node='%s' "
               "sessionid='%s' action='complete'><x xmlns='%s' type='submit'>%s</x>"
               "</command></iq>" % (iq, CMD, node, cmd.get("sessionid"), DATA, form))
        cmd = find(c.expect("iq", attrs={"id": iq, "type": "result"}), "{%s}command" % CMD)
    check(cmd.get("status") == "completed", "invite command: %s" % cmd)
    values = {f.get("var"): find(f, "{%s}value" % DATA).text
              for f in find_all(cmd, "{%s}x/{%s}field" % (DATA, DATA))}
    check(values.get("expire"), "no expire field: %s" % values)
    return values["uri"]


def token_of(uri):
    return re.search(r"preauth=([A-Za-z0-9]+)", uri).group(1)


def preauth(srv, token):
    """A new connection that shows token: (client, the answer)."""
    c = srv.client()
    check(find(c.features, "{urn:xmpp:ibr-token:0}register") is not None,
          "no ibr-token feature")
    iq = new_id("pa")
    c.send("<iq type='set' to='localhost' id='%s'><preauth xmlns='%s' token='%s'/></iq>"
           % (iq, PARS, esc(token)))
    return c, c.expect("iq", attrs={"id": iq})


def register(c, user, password):
    iq = new_id("reg")
    c.send("<iq type='set' id='%s'><query xmlns='%s'><username>%s</username>"
           "<password>%s</password></query></iq>" % (iq, REG, esc(user), esc(password)))
    return c.expect("iq", attrs={"id": iq})


def roster_of(c):
    iq = new_id("r")
    c.send("<iq type='get' id='%s'><query xmlns='%s'/></iq>" % (iq, ROSTER))
    el = c.wait_for("iq", attrs={"id": iq, "type": "result"})  # past roster pushes
    return {i.get("jid"): i.get("subscription")
            for i in find_all(el, "{%s}query/{%s}item" % (ROSTER, ROSTER))}


def not_found(el):
    return el.get("type") == "error" and find(
        el, "error/{urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found") is not None


def test_an_invited_friend_registers_and_both_are_subscribed(server):
    alice_acct = server.account("alice")
    alice = server.login(alice_acct)
    roster_of(alice)                       # so that she gets roster pushes
    uri = invite(alice, "urn:xmpp:invite#invite")
    check(uri.startswith("xmpp:%s?roster;preauth=" % alice_acct.jid) and uri.endswith(";ibr=y"),
          "uri: %s" % uri)
    token = token_of(uri)
    # registration is closed without the token
    c = server.client()
    check(register(c, "intruder", "x").get("type") == "error", "closed host took a registration")
    c, answer = preauth(server, token)
    check(answer.get("type") == "result", "token refused: %s" % answer)
    check(register(c, "juliet", "balcony").get("type") == "result", "invited registration failed")
    push = alice.expect("iq", attrs={"type": "set"}, child="{%s}query" % ROSTER)
    item = find(push, "{%s}query/{%s}item" % (ROSTER, ROSTER))
    check(item.get("jid") == "juliet@localhost" and item.get("subscription") == "both",
          "push to the inviter: %s" % push)
    juliet = server.login(Account("juliet", "balcony", "localhost"))
    check(roster_of(juliet).get(alice_acct.jid) == "both", "juliet's roster")
    check(roster_of(alice).get("juliet@localhost") == "both", "alice's roster")
    # the token is used up
    c, answer = preauth(server, token)
    check(not_found(answer), "a used token was taken: %s" % answer)


def test_an_admin_account_invite_reserves_the_username(server):
    root = server.login(server.accounts["root@localhost"])
    uri = invite(root, "urn:xmpp:invite#create-account", {"username": "romeo"})
    check(uri.startswith("xmpp:romeo@localhost?register;preauth="), "uri: %s" % uri)
    c, answer = preauth(server, token_of(uri))
    check(answer.get("type") == "result", "token refused: %s" % answer)
    check(register(c, "mercutio", "x").get("type") == "error", "another username was taken")
    check(register(c, "romeo", "montague").get("type") == "result", "romeo could not register")
    server.login(Account("romeo", "montague", "localhost"))
    # a plain user may not make account invites
    plain = server.login("plain")
    iq = new_id("x")
    plain.send("<iq type='set' to='localhost' id='%s'><command xmlns='%s' "
               "node='urn:xmpp:invite#create-account' action='execute'/></iq>" % (iq, CMD))
    plain.expect_error("iq", "forbidden", attrs={"id": iq})


def test_starlingctl_invite_and_expiry(ctx):
    srv = ctx.server(modules=MODULES, options={"invite_expiry": 2,
                                                 "min_seconds_between_registrations": 0})
    out = srv.ctl("invite", "localhost").stdout
    uri = out.splitlines()[0]
    check(uri.startswith("xmpp:localhost?register;preauth="), "starlingctl invite: %s" % out)
    c, answer = preauth(srv, token_of(uri))
    check(answer.get("type") == "result", "fresh token refused: %s" % answer)
    check(register(c, "fromshell", "pw").get("type") == "result", "registration failed")
    uri = srv.ctl("invite", "localhost").stdout.splitlines()[0]
    time.sleep(3)
    c, answer = preauth(srv, token_of(uri))
    check(not_found(answer), "an expired token was taken: %s" % answer)
    try:
        srv.client().auth_scram("fromshell", "wrong")
        check(False, "a wrong password logged in")
    except AuthFailed:
        pass


def test_an_existing_user_subscribes_with_the_token(server):
    alice_acct, bob_acct = server.account("alice"), server.account("bob")
    alice, bob = server.login(alice_acct), server.login(bob_acct, presence=True)
    roster_of(alice), roster_of(bob)
    token = token_of(invite(alice, "urn:xmpp:invite#invite"))
    bob.ignore = ()
    bob.send("<presence to='%s' type='subscribe'><preauth xmlns='%s' token='%s'/></presence>"
             % (alice_acct.jid, PARS, token))
    bob.expect("presence", attrs={"from": alice_acct.jid, "type": "subscribed"},
               skip=("iq",))
    bob.expect("presence", attrs={"from": alice_acct.jid, "type": "subscribe"},
               skip=("iq",))
    check(roster_of(alice).get(bob_acct.jid) == "from", "alice's roster after the invite")
    check(roster_of(bob).get(alice_acct.jid) == "to", "bob's roster after the invite")
    # the token works once: a second request waits for alice as usual
    carol = server.login("carol")
    carol.send("<presence to='%s' type='subscribe'><preauth xmlns='%s' token='%s'/></presence>"
               % (alice_acct.jid, PARS, token))
    carol.roundtrip()
    check(carol.account.jid not in roster_of(alice) or
          roster_of(alice).get(carol.account.jid) == "none",
          "a used token approved another subscription")
