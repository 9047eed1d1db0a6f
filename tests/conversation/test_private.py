"""mod_private: XEP-0049 Private XML Storage: fragments stored and read
back by element name and namespace, only by the account itself, with the
error cases of section 2.3 and the size limits."""

from harness import check, fixture
from xmpp import esc, find, new_id, to_xml

NS_PRIVATE = "jabber:iq:private"
Q = "{%s}query" % NS_PRIVATE
PREFS = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "private"],
                        options={"private_max_size": 1024,
                                 "private_max_items": 3})


def private(client, kind, inner, to=None):
    iq_id = new_id("priv")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='%s' id='%s'%s><query xmlns='%s'>%s</query></iq>"
                % (kind, iq_id, to_attr, NS_PRIVATE, inner))
    return iq_id


def test_store_and_read_back(server):
    c = server.login("hamlet")
    c.expect("iq", attrs={"id": private(c, "set", PREFS), "type": "result"})
    c.expect("iq", attrs={"id": private(c, "get", "<exodus xmlns='exodus:prefs'/>"),
                          "type": "result"},
             text={Q + "/{exodus:prefs}exodus/{exodus:prefs}defaultnick": "Hamlet"})


def test_nothing_stored_gives_the_empty_element(server):
    c = server.login("empty")
    el = c.expect("iq", attrs={"id": private(c, "get", "<prefs xmlns='x:none'/>"),
                               "type": "result"}, child=Q + "/{x:none}prefs")
    check(len(find(el, Q + "/{x:none}prefs")) == 0, to_xml(el))


def test_fragments_are_kept_apart(server):
    c = server.login("apart")
    c.expect("iq", attrs={"id": private(
        c, "set", "<a xmlns='x:one'>1</a><b xmlns='x:two'>2</b>"), "type": "result"})
    c.expect("iq", attrs={"id": private(c, "set", "<a xmlns='x:two'>3</a>"),
                          "type": "result"})
    c.expect("iq", attrs={"id": private(c, "get", "<a xmlns='x:one'/>"),
                          "type": "result"}, text={Q + "/{x:one}a": "1"})
    c.expect("iq", attrs={"id": private(c, "get", "<a xmlns='x:two'/>"),
                          "type": "result"}, text={Q + "/{x:two}a": "3"})
    c.expect("iq", attrs={"id": private(c, "get", "<b xmlns='x:two'/>"),
                          "type": "result"}, text={Q + "/{x:two}b": "2"})


def test_set_replaces_a_fragment(server):
    c = server.login("replaces")
    c.expect("iq", attrs={"id": private(c, "set", "<a xmlns='x:r'>old</a>"),
                          "type": "result"})
    c.expect("iq", attrs={"id": private(c, "set", "<a xmlns='x:r'>new</a>"),
                          "type": "result"})
    c.expect("iq", attrs={"id": private(c, "get", "<a xmlns='x:r'/>"),
                          "type": "result"}, text={Q + "/{x:r}a": "new"})


def test_jabber_namespace_is_not_acceptable(server):
    c = server.login("reserved")
    for inner in ("<query xmlns='jabber:iq:roster'/>",
                  "<x xmlns='http://jabber.org/protocol/muc'/>",
                  "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>"):
        c.expect_error("iq", "not-acceptable", type="modify",
                       attrs={"id": private(c, "set", inner)})
        c.expect_error("iq", "not-acceptable", type="modify",
                       attrs={"id": private(c, "get", inner)})


def test_query_without_a_child_is_not_acceptable(server):
    c = server.login("childless")
    c.expect_error("iq", "not-acceptable", attrs={"id": private(c, "get", "")})
    c.expect_error("iq", "not-acceptable", attrs={"id": private(c, "set", "")})


def test_get_of_two_elements_is_a_bad_request(server):
    c = server.login("greedy")
    c.expect_error("iq", "bad-request", attrs={"id": private(
        c, "get", "<a xmlns='x:one'/><b xmlns='x:two'/>")})


def test_another_accounts_data_is_forbidden(server):
    owner = server.login("owner")
    owner.expect("iq", attrs={"id": private(owner, "set", PREFS), "type": "result"})
    other = server.login("snoop")
    other.expect_error("iq", "forbidden", attrs={"id": private(
        other, "get", "<exodus xmlns='exodus:prefs'/>", owner.bare)})
    other.expect_error("iq", "forbidden", attrs={"id": private(
        other, "set", "<exodus xmlns='exodus:prefs'>mine</exodus>", owner.bare)})
    owner.expect("iq", attrs={"id": private(owner, "get", "<exodus xmlns='exodus:prefs'/>"),
                              "type": "result"},
                 text={Q + "/{exodus:prefs}exodus/{exodus:prefs}defaultnick": "Hamlet"})


def test_limits(server):
    c = server.login("limits")
    c.expect_error("iq", "policy-violation", type="modify", attrs={"id": private(
        c, "set", "<big xmlns='x:big'>%s</big>" % ("y" * 2000))})
    c.expect("iq", attrs={"id": private(
        c, "set", "<a xmlns='x:1'/><a xmlns='x:2'/><a xmlns='x:3'/>"),
        "type": "result"})
    c.expect("iq", attrs={"id": private(c, "set", "<a xmlns='x:2'>again</a>"),
                          "type": "result"})          # a replacement is no new item
    c.expect_error("iq", "policy-violation", attrs={"id": private(
        c, "set", "<a xmlns='x:4'/>")})
