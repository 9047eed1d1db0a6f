"""mod_pep's limits and bad input: nodes per account (pep_max_nodes), the
cap on max_items (pep_max_items, and "max"), item size
(pep_max_item_size), malformed forms and items; the items survive a
restart and go with the account."""

import signal

from harness import check, fixture
from pubsub import fails, item_ids, items, ok, publish

OPTS = {"pep_max_nodes": 3, "pep_max_items": 5, "pep_max_item_size": 1024}


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco", "pep"],
                        options=OPTS)


def note(n):
    return "<note xmlns='urn:example:notes'>%s</note>" % n


def test_nodes_per_account(server):
    c = server.login("nodes")
    for i in range(3):
        publish(c, "urn:example:n%d" % i, "current", note(i))
    fails(c, "set", "<publish node='urn:example:n3'><item>%s</item></publish>" % note(3),
          "resource-constraint", "max-nodes-exceeded")
    # the existing nodes still take items
    publish(c, "urn:example:n0", "current", note("again"))


def test_max_items_is_capped(server):
    c = server.login("capped")
    fails(c, "set", "<publish node='urn:example:many'><item>%s</item></publish>"
          "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
          "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
          "<field var='pubsub#max_items'><value>1000</value></field></x></publish-options>" % note(1),
          "conflict", "precondition-not-met")
    for i in range(8):
        publish(c, "urn:example:many", "i%d" % i, note(i), options={"pubsub#max_items": "max"})
    check(item_ids(items(c, "urn:example:many")) == ["i7", "i6", "i5", "i4", "i3"], "five kept")


def test_item_size_and_malformed_input(server):
    c = server.login("sizes")
    fails(c, "set", "<publish node='urn:example:big'><item>%s</item></publish>" % note("x" * 2000),
          "not-acceptable", "payload-too-big")
    fails(c, "set", "<publish node='urn:example:big'><item/></publish>", "bad-request",
          "payload-required")
    fails(c, "set", "<publish node='urn:example:big'/>", "bad-request", "item-required")
    fails(c, "set", "<create/>", "not-acceptable", "nodeid-required")
    fails(c, "set", "<publish node='urn:example:big'><item>%s</item></publish>"
          "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
          "<value>urn:wrong</value></field></x></publish-options>" % note(1), "bad-request")
    fails(c, "get", "<items node='urn:example:none'/>", "item-not-found")
    fails(c, "get", "<items node='urn:example:none' max_items='many'/>", "item-not-found")
    # a node with items, then max_items that is not a number
    publish(c, "urn:example:small", "a", note("a"))
    fails(c, "get", "<items node='urn:example:small' max_items='many'/>", "bad-request")
    ok(c, "set", "<delete node='urn:example:small'/>", owner=True)
    fails(c, "get", "<items node='urn:example:small'/>", "item-not-found")


def test_items_survive_a_restart_and_go_with_the_account(ctx):
    srv = ctx.server(modules=["roster", "presence", "message", "iq", "disco", "pep"])
    c = srv.login("keep")
    publish(c, "urn:example:kept", "k", note("kept"), options={"pubsub#access_model": "open"})
    c.close()
    srv.send_signal(signal.SIGTERM)
    srv.wait_exit()
    srv.restart()
    c = srv.login(c.account)
    check(item_ids(items(c, "urn:example:kept")) == ["k"], "kept across the restart")
    c.close()
    srv.ctl("user", "delete", c.account.jid)
    srv.ctl("user", "create", c.account.jid, "new-password")
    from server import Account
    again = srv.login(Account(c.account.user, "new-password", "localhost"))
    fails(again, "get", "<items node='urn:example:kept'/>", "item-not-found")
