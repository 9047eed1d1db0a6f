"""mod_disco: XEP-0030 service discovery of the server and of accounts,
the features and identities loaded modules contribute, XEP-0128 forms,
and the XEP-0157 contact addresses of the option contact_info."""

from harness import check, fixture
from seed import ROSTER_SEED, roster_item
from xmpp import NS, esc, find_all, new_id

INFO = NS["disco"]
ITEMS = "http://jabber.org/protocol/disco#items"
DATA = "jabber:x:data"

MODULES = ["roster", "presence", "message", "iq", "disco", "ping", "version",
           "time", "uptime", "lastactivity", "vcard", "private", "blocklist",
           "register"]

CONTACT_INFO = {
    "abuse": ["mailto:abuse@localhost", "xmpp:abuse@localhost"],
    "admin": "mailto:xmpp@localhost",
    "security": ["https://localhost/security"],
}

FORM_EXTENSION = """\
-- contributes a XEP-0128 form to the host's disco#info
local st = require "util.stanza"
module:add_extension(st.stanza("x", { xmlns = "jabber:x:data", type = "result" })
    :tag("field", { var = "FORM_TYPE", type = "hidden" })
        :text_tag("value", "urn:example:test-info"):up()
    :tag("field", { var = "answer" }):text_tag("value", "42"):up())
module:add_identity("directory", "user", "Test directory")
module:add_item("disco-item", { jid = "users.localhost", name = "Users" })
"""


@fixture
def server(scope):
    return scope.server(modules=MODULES,
                        options={"contact_info": CONTACT_INFO},
                        plugins={"test_roster_seed": ROSTER_SEED,
                                 "testform": FORM_EXTENSION})


def query(client, to, ns=INFO, node=None):
    iq_id = new_id("disco")
    attrs = " node='%s'" % esc(node) if node else ""
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='get' id='%s'%s><query xmlns='%s'%s/></iq>"
                % (iq_id, to_attr, ns, attrs))
    return iq_id


def info(client, to, node=None):
    iq_id = query(client, to, INFO, node)
    return client.expect("iq", attrs={"id": iq_id, "type": "result"},
                         child="disco:query")


def features(el):
    return [f.get("var") for f in find_all(el, "disco:query/disco:feature")]


def identities(el):
    return [(i.get("category"), i.get("type"), i.get("name"))
            for i in find_all(el, "disco:query/disco:identity")]


def form_fields(el, form_type):
    """{var: [values]} of the data form with that FORM_TYPE."""
    for form in find_all(el, "disco:query/{%s}x" % DATA):
        fields = {}
        for field in form.findall("{%s}field" % DATA):
            fields[field.get("var")] = [v.text for v in
                                        field.findall("{%s}value" % DATA)]
        if fields.get("FORM_TYPE") == [form_type]:
            return fields
    return None


def test_server_identity_and_module_features(server):
    c = server.login("discoer")
    el = info(c, server.domain)
    check(("server", "im", "Starling") in identities(el), identities(el))
    check(("directory", "user", "Test directory") in identities(el),
          identities(el))
    have = features(el)
    for ns in (INFO, ITEMS, "urn:xmpp:ping", "jabber:iq:version",
               "urn:xmpp:time", "jabber:iq:last", "vcard-temp",
               "jabber:iq:private", "urn:xmpp:blocking", "jabber:iq:register"):
        check(ns in have, "feature %s missing from %s" % (ns, have))
    check(have == sorted(set(have)), "features not sorted and unique: %s" % have)


def test_contact_addresses_form(server):
    c = server.login("contacts")
    fields = form_fields(info(c, server.domain),
                         "http://jabber.org/network/serverinfo")
    check(fields is not None, "no serverinfo form")
    check(fields.get("abuse-addresses") == CONTACT_INFO["abuse"], fields)
    check(fields.get("admin-addresses") == ["mailto:xmpp@localhost"], fields)
    check(fields.get("security-addresses") == ["https://localhost/security"],
          fields)
    check("sales-addresses" not in fields, fields)


def test_extension_form_from_a_module(server):
    c = server.login("extform")
    fields = form_fields(info(c, server.domain), "urn:example:test-info")
    check(fields == {"FORM_TYPE": ["urn:example:test-info"], "answer": ["42"]},
          fields)


def test_server_items(server):
    c = server.login("items")
    iq_id = query(c, server.domain, ITEMS)
    el = c.expect("iq", attrs={"id": iq_id, "type": "result"},
                  child="{%s}query" % ITEMS)
    got = [(i.get("jid"), i.get("name"))
           for i in el.findall("{%s}query/{%s}item" % (ITEMS, ITEMS))]
    check(got == [("users.localhost", "Users")], got)


def test_unknown_node_is_item_not_found(server):
    c = server.login("nodes")
    iq_id = query(c, server.domain, INFO, node="no-such-node")
    c.expect_error("iq", "item-not-found", type="cancel", attrs={"id": iq_id})


def test_own_account_info(server):
    c = server.login("account")
    for to in (None, c.bare):
        el = info(c, to)
        check(("account", "registered", None) in identities(el), identities(el))
        have = features(el)
        for ns in (INFO, ITEMS, "jabber:iq:last", "vcard-temp", "urn:xmpp:ping"):
            check(ns in have, "account feature %s missing: %s" % (ns, have))
        check("jabber:iq:private" not in have, have)


def test_account_info_for_a_subscribed_contact(server):
    owner = server.login("shares")
    friend = server.login("friend")
    roster_item(owner, friend.bare, "from")
    el = info(friend, owner.bare)
    check(("account", "registered", None) in identities(el), identities(el))


def test_account_info_hidden_from_strangers(server):
    owner = server.login("private")
    stranger = server.login("stranger")
    roster_item(owner, stranger.bare, "to")   # owner sees them, not the reverse
    iq_id = query(stranger, owner.bare)
    stranger.expect_error("iq", "service-unavailable", type="cancel",
                          attrs={"id": iq_id})


def test_account_that_does_not_exist(server):
    c = server.login("asker")
    iq_id = query(c, "nobody-here@" + server.domain)
    c.expect_error("iq", "service-unavailable", attrs={"id": iq_id})


def test_bad_contact_info_stops_the_module(ctx):
    srv = ctx.server(modules=["iq", "disco"],
                     options={"contact_info": {"nonsense": ["mailto:x@y"]}})
    line = srv.wait_log(r"disco.*failed to load")
    check("unknown kind 'nonsense'" in line, line)
    c = srv.login("nodisco")
    iq_id = query(c, srv.domain)
    c.expect_error("iq", "service-unavailable", attrs={"id": iq_id})
