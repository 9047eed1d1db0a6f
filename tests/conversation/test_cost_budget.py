"""The per-account budget of costly requests (util.cost; options
account_cost_rate and account_cost_burst): roster gets and sets, private
XML storage, vCards, archive queries and registration changes draw from
one bucket per account. A client that waits for its answers is only
slowed down (its stream is read later); what a client pipelines past the
budget is answered resource-constraint (type wait) and not done; other
accounts are served all along."""

from harness import bystanders, check, exchange, fixture, time_limit
from im import ROSTER, expect_result, roster_get, roster_set
from xmpp import find, new_id

MODULES = ["roster", "presence", "message", "iq", "private", "vcard", "mam", "ping"]


def sets(n, prefix):
    """n roster sets of new items, as one string, and their ids."""
    ids, out = [], []
    for i in range(n):
        iq_id = new_id("h")
        ids.append(iq_id)
        out.append("<iq type='set' id='%s'><query xmlns='%s'><item jid='%s%03d@example.net'/>"
                   "</query></iq>" % (iq_id, ROSTER, prefix, i))
    return "".join(out), ids


def answers(c, ids):
    """{id: 'result' | 'resource-constraint'} for every id, in order."""
    out = {}
    for iq_id in ids:
        el = c.expect("iq", attrs={"id": iq_id})
        if el.get("type") == "result":
            out[iq_id] = "result"
        else:
            err = find(el, "error")
            check(err is not None and err.get("type") == "wait"
                  and find(el, "error/stanzas:resource-constraint") is not None,
                  "a refused request is resource-constraint, type wait: %r" % el.attrib)
            out[iq_id] = "resource-constraint"
    return out


@time_limit(60)
def test_a_client_hammering_its_roster_is_refused_past_its_budget(ctx):
    srv = ctx.server(modules=list(MODULES),
                     options={"account_cost_rate": 10, "account_cost_burst": 20})
    with bystanders(srv) as (b, c):
        hammer = srv.login("hammer")
        data, ids = sets(200, "h")
        hammer.send(data)
        # while the hammer's stream waits, the others are answered
        exchange(b, c)
        iq_id = roster_set(b, "friend@example.net", name="Friend")
        expect_result(b, iq_id)
        b.send("<iq type='get' id='bp' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        b.expect("iq", attrs={"id": "bp", "type": "result"})
        got = answers(hammer, ids)
        done = [i for i in ids if got[i] == "result"]
        refused = [i for i in ids if got[i] == "resource-constraint"]
        check(refused, "a pipelined flood past the budget is refused in part")
        check(len(done) >= 20, "the budget and more were served: %d" % len(done))
        # exactly the sets that were answered with a result are stored
        roster = roster_get(hammer)
        wanted = {"h%03d@example.net" % ids.index(i) for i in done}
        check(set(roster) == wanted, "stored: %d items, answered: %d"
              % (len(roster), len(done)))
        check(roster_get(b) == {"friend@example.net": {
            "subscription": "none", "ask": None, "approved": None,
            "name": "Friend", "groups": []}}, "the bystander's roster")


@time_limit(60)
def test_a_client_that_waits_for_its_answers_is_only_slowed(ctx):
    srv = ctx.server(modules=list(MODULES),
                     options={"account_cost_rate": 20, "account_cost_burst": 5})
    c = srv.login("patient")
    for i in range(30):
        iq_id = roster_set(c, "p%02d@example.net" % i)
        expect_result(c, iq_id)
    check(len(roster_get(c)) == 30, "every set done")


PRIVATE_GET = ("<iq type='get' id='%s'><query xmlns='jabber:iq:private'>"
               "<prefs xmlns='urn:example:prefs'/></query></iq>")
VCARD_GET = "<iq type='get' id='%s'><vCard xmlns='vcard-temp'/></iq>"
MAM_QUERY = "<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2'/></iq>"


@time_limit(60)
def test_private_vcard_and_archive_share_the_accounts_budget(ctx):
    srv = ctx.server(modules=list(MODULES),
                     options={"account_cost_rate": 0.5, "account_cost_burst": 3})
    acct = srv.account("sharing")
    hammer = srv.login(acct, resource="hammer")
    other = srv.login(acct, resource="other")
    data, ids = sets(6, "s")      # 6 units: the burst and as much debt
    hammer.send(data + PRIVATE_GET % "pg" + VCARD_GET % "vg" + MAM_QUERY % "mq")
    got = answers(hammer, ids)
    check(list(got.values()) == ["result"] * 6, "the roster sets fit: %r" % got)
    for iq_id in ("pg", "vg", "mq"):
        hammer.expect_error("iq", "resource-constraint", type="wait", attrs={"id": iq_id})
    # the account's other resource draws from the same bucket
    other.send(PRIVATE_GET % "og")
    other.expect_error("iq", "resource-constraint", type="wait", attrs={"id": "og"})
    # another account has a budget of its own
    fresh = srv.login("unrelated")
    fresh.send(PRIVATE_GET % "fg" + VCARD_GET % "fv" + MAM_QUERY % "fm")
    fresh.expect("iq", attrs={"id": "fg", "type": "result"})
    fresh.expect("iq", attrs={"id": "fv", "type": "result"})
    fresh.expect("iq", attrs={"id": "fm", "type": "result"})
    exchange(fresh, other)
