"""Rosters (RFC 6121 section 2, mod_roster): get, set, remove, pushes to
interested resources, versioning (2.6), the size limit, and the error
cases of a roster set."""

from harness import check, fixture, sync
from im import (NS_PREAPPROVAL, NS_ROSTERVER, ROSTER, expect_push,
                expect_result, items_of, roster_get, roster_request,
                roster_set)
from xmpp import ABSENT, esc, find, find_all, new_id


@fixture
def server(scope):
    return scope.server()


@fixture
def small(scope):
    return scope.server(options={"roster_max_items": 2,
                                 "roster_max_name_length": 8,
                                 "roster_max_group_length": 5})


def test_stream_features_after_auth_offer_versioning_and_preapproval(server):
    c = server.login("feat")
    check(find(c.features, "{%s}ver" % NS_ROSTERVER) is not None,
          "no rosterver feature")
    check(find(c.features, "{%s}sub" % NS_PREAPPROVAL) is not None,
          "no pre-approval feature")
    before = server.client()                 # not authenticated yet
    check(find(before.features, "{%s}ver" % NS_ROSTERVER) is None,
          "rosterver offered before authentication")


def test_empty_roster(server):
    c = server.login("empty")
    el = roster_get(c, full=True)
    query = find(el, "roster:query")
    check(query is not None and len(query) == 0, "empty <query/> expected")
    check(query.get("ver") is None, "no ver when the client sent none")


def test_add_update_and_remove_with_pushes(server):
    acct = server.account("pushy")
    one = server.login(acct, resource="one")
    two = server.login(acct, resource="two")
    quiet = server.login(acct, resource="quiet")   # never asks for the roster
    roster_get(one)
    roster_get(two)
    contact = "romeo-%s@localhost" % new_id()

    iq_id = roster_set(one, contact, name="Romeo", groups=["Friends", "Verona"])
    expect_push(one, contact, "none", name="Romeo")
    expect_result(one, iq_id)
    item = expect_push(two, contact, "none", name="Romeo")
    check(sorted(g.text for g in item) == ["Friends", "Verona"], "groups")
    check(roster_get(two)[contact] == {"subscription": "none", "ask": None,
                                       "approved": None, "name": "Romeo",
                                       "groups": ["Friends", "Verona"]},
          "stored item")

    iq_id = roster_set(two, contact, name="R.", groups=["Lovers"])
    expect_push(two, contact, "none", name="R.")
    expect_result(two, iq_id)
    expect_push(one, contact, "none", name="R.")
    check(roster_get(one)[contact]["groups"] == ["Lovers"], "groups replaced")

    iq_id = roster_set(one, contact, subscription="remove")
    expect_push(one, contact, "remove")
    expect_result(one, iq_id)
    expect_push(two, contact, "remove")
    check(contact not in roster_get(one), "item removed")
    sync(one, quiet)                           # no pushes for quiet


def test_items_come_sorted_and_complete(server):
    c = server.login("many")
    roster_get(c)
    jids = ["c%s@localhost" % new_id(), "a%s@localhost" % new_id(),
            "b@example.org"]
    for j in jids:
        expect_result_after_push(c, roster_set(c, j), j)
    el = roster_get(c, full=True)
    got = [i.get("jid") for i in find_all(el, "roster:query/roster:item")]
    check(got == sorted(jids), "items %r" % got)


def expect_result_after_push(c, iq_id, jid):
    expect_push(c, jid)
    expect_result(c, iq_id)


def test_remove_of_unknown_item_is_item_not_found(server):
    c = server.login("rmunknown")
    iq_id = roster_set(c, "ghost@localhost", subscription="remove")
    c.expect_error("iq", "item-not-found", type="cancel", attrs={"id": iq_id})


def test_set_on_another_users_roster_is_forbidden(server):
    victim = server.account("victim")
    c = server.login("intruder")
    iq_id = new_id("rs")
    c.send("<iq type='set' id='%s' to='%s'><query xmlns='%s'><item "
           "jid='x@localhost'/></query></iq>" % (iq_id, esc(victim.jid), ROSTER))
    c.expect_error("iq", "forbidden", type="auth", attrs={"id": iq_id})
    iq_id = new_id("rg")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>"
           % (iq_id, esc(victim.jid), ROSTER))
    c.expect_error("iq", "forbidden", type="auth", attrs={"id": iq_id})
    v = server.login(victim)
    check(roster_get(v) == {}, "victim's roster untouched")


def test_set_to_own_bare_jid_is_allowed(server):
    c = server.login("ownto")
    iq_id = new_id("rs")
    c.send("<iq type='set' id='%s' to='%s'><query xmlns='%s'><item "
           "jid='x@localhost'/></query></iq>" % (iq_id, esc(c.bare), ROSTER))
    expect_result(c, iq_id)


def test_set_with_several_items_is_bad_request(server):
    c = server.login("several")
    iq_id = new_id("rs")
    c.send("<iq type='set' id='%s'><query xmlns='%s'><item jid='a@localhost'/>"
           "<item jid='b@localhost'/></query></iq>" % (iq_id, ROSTER))
    c.expect_error("iq", "bad-request", type="modify", attrs={"id": iq_id})
    iq_id = new_id("rs")
    c.send("<iq type='set' id='%s'><query xmlns='%s'/></iq>" % (iq_id, ROSTER))
    c.expect_error("iq", "bad-request", type="modify", attrs={"id": iq_id})
    check(roster_get(c) == {}, "nothing added")


def test_bad_jids(server):
    c = server.login("badjid")
    iq_id = new_id("rs")
    c.send("<iq type='set' id='%s'><query xmlns='%s'><item name='x'/></query>"
           "</iq>" % (iq_id, ROSTER))
    c.expect_error("iq", "bad-request", type="modify", attrs={"id": iq_id})
    for bad in ("@localhost", "a@b@localhost", "user@", "x" * 1100 + "@localhost"):
        iq_id = roster_set(c, bad)
        c.expect_error("iq", "jid-malformed", type="modify", attrs={"id": iq_id})
    iq_id = roster_set(c, "juliet@localhost/balcony")
    c.expect_error("iq", "bad-request", type="modify", attrs={"id": iq_id})
    iq_id = roster_set(c, c.bare)
    c.expect_error("iq", "not-allowed", type="cancel", attrs={"id": iq_id})
    check(roster_get(c) == {}, "nothing added")


def test_groups_must_be_distinct_and_not_empty(server):
    c = server.login("groups")
    iq_id = roster_set(c, "g@localhost", groups=["A", "A"])
    c.expect_error("iq", "bad-request", type="modify", attrs={"id": iq_id})
    iq_id = roster_set(c, "g@localhost", groups=[""])
    c.expect_error("iq", "not-acceptable", type="modify", attrs={"id": iq_id})


def test_subscription_ask_and_approved_in_a_set_are_ignored(server):
    c = server.login("ignored")
    roster_get(c)
    for value in ("both", "from", "to", "none", "bogus"):
        contact = "s-%s@localhost" % value
        iq_id = roster_set(c, contact, subscription=value,
                           extra=" ask='subscribe' approved='true'")
        expect_push(c, contact, "none", ask=ABSENT, approved=ABSENT)
        expect_result(c, iq_id)
    items = roster_get(c)
    check(all(i["subscription"] == "none" and i["ask"] is None
              and i["approved"] is None for i in items.values()),
          "items %r" % items)


def test_limits(small):
    c = small.login("limits")
    roster_get(c)
    iq_id = roster_set(c, "n@localhost", name="123456789")
    c.expect_error("iq", "not-acceptable", type="modify", attrs={"id": iq_id})
    iq_id = roster_set(c, "n@localhost", groups=["123456"])
    c.expect_error("iq", "not-acceptable", type="modify", attrs={"id": iq_id})
    for n in range(2):
        expect_result_after_push(c, roster_set(c, "f%d@localhost" % n),
                                 "f%d@localhost" % n)
    iq_id = roster_set(c, "f2@localhost")
    err = c.expect_error("iq", "not-allowed", type="cancel", attrs={"id": iq_id})
    check("full" in (find(err, "error/stanzas:text").text or ""), "text")
    # an existing item can still be changed when the roster is full
    iq_id = roster_set(c, "f1@localhost", name="ok")
    expect_push(c, "f1@localhost", name="ok")
    expect_result(c, iq_id)


# -- versioning (2.6)

def test_unchanged_roster_answers_an_empty_result(server):
    c = server.login("verempty")
    roster_get(c)
    expect_result_after_push(c, roster_set(c, "v@localhost"), "v@localhost")
    el = roster_get(c, ver="", full=True)
    ver = find(el, "roster:query").get("ver")
    check(ver, "a version comes with the roster")
    again = server.login(c.account)
    el = roster_get(again, ver=ver, full=True)
    check(len(el) == 0, "empty result expected, got children %r" % list(el))


def test_unknown_version_gets_the_whole_roster(server):
    c = server.login("verunknown")
    roster_get(c)
    expect_result_after_push(c, roster_set(c, "u@localhost"), "u@localhost")
    for ver in ("bogus", "0-0", "ffff-1"):
        el = roster_get(c, ver=ver, full=True)
        query = find(el, "roster:query")
        check(query is not None and query.get("ver"), "versioned full roster")
        check(list(items_of(query)) == ["u@localhost"], "items")


def test_changes_since_a_known_version_arrive_as_pushes(server):
    acct = server.account("verpush")
    c = server.login(acct)
    roster_get(c)
    for j in ("keep1@localhost", "keep2@localhost", "keep3@localhost",
              "gone@localhost", "edit@localhost"):
        expect_result_after_push(c, roster_set(c, j), j)
    old = find(roster_get(c, ver="", full=True), "roster:query").get("ver")
    expect_result_after_push(c, roster_set(c, "new@localhost"), "new@localhost")
    iq_id = roster_set(c, "gone@localhost", subscription="remove")
    expect_push(c, "gone@localhost", "remove")
    expect_result(c, iq_id)
    iq_id = roster_set(c, "edit@localhost", name="Edited")
    expect_push(c, "edit@localhost", name="Edited")
    expect_result(c, iq_id)
    current = find(roster_get(c, ver="", full=True), "roster:query").get("ver")

    later = server.login(acct, resource="later")
    iq_id = roster_request(later, old)
    el = expect_result(later, iq_id)
    check(len(el) == 0, "empty result before the pushes")
    pushes = []
    for _ in range(3):
        el = later.expect("iq", attrs={"type": "set"},
                          child="roster:query/roster:item")
        pushes.append((find(el, "roster:query/roster:item").get("jid"),
                       find(el, "roster:query/roster:item").get("subscription"),
                       find(el, "roster:query").get("ver")))
    check([p[:2] for p in pushes] == [("new@localhost", "none"),
                                      ("gone@localhost", "remove"),
                                      ("edit@localhost", "none")],
          "pushes %r" % pushes)
    check(pushes[-1][2] == current, "the last push carries the current version")
    el = roster_get(later, ver=current, full=True)
    check(len(el) == 0, "and now the roster is current")


def test_versioning_can_be_turned_off(ctx):
    srv = ctx.server(options={"roster_versioning": False})
    c = srv.login("nover")
    check(find(c.features, "{%s}ver" % NS_ROSTERVER) is None, "feature")
    el = roster_get(c, ver="", full=True)
    check(find(el, "roster:query").get("ver") is None, "no ver")
