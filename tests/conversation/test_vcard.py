"""mod_vcard: XEP-0054 vcard-temp: one's own vCard (get, set), another
account's (get on its bare JID), and the error cases of section 3."""

from harness import check, fixture
from xmpp import esc, find, new_id, text_of

NS_VCARD = "vcard-temp"
VCARD = "{%s}vCard" % NS_VCARD
CARD = ("<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN>"
        "<N><FAMILY>Capulet</FAMILY><GIVEN>Juliet</GIVEN></N>"
        "<NICKNAME>jc</NICKNAME></vCard>")


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "vcard"],
                        options={"vcard_max_size": 2048})


def get(client, to=None):
    iq_id = new_id("vc")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='get' id='%s'%s><vCard xmlns='vcard-temp'/></iq>"
                % (iq_id, to_attr))
    return iq_id


def set_card(client, card, to=None):
    iq_id = new_id("vcset")
    to_attr = " to='%s'" % esc(to) if to else ""
    client.send("<iq type='set' id='%s'%s>%s</iq>" % (iq_id, to_attr, card))
    return iq_id


def test_own_vcard_is_empty_at_first(server):
    c = server.login("fresh")
    el = c.expect("iq", attrs={"id": get(c), "type": "result"}, child=VCARD)
    check(len(find(el, VCARD)) == 0, "not empty: %r" % list(find(el, VCARD)))


def test_set_and_get_own_vcard(server):
    c = server.login("juliet")
    c.expect("iq", attrs={"id": set_card(c, CARD), "type": "result"})
    for to in (None, c.bare):
        el = c.expect("iq", attrs={"id": get(c, to), "type": "result"},
                      child=VCARD + "/{vcard-temp}FN")
        check(text_of(el, VCARD + "/{vcard-temp}FN") == "Juliet Capulet",
              text_of(el, VCARD + "/{vcard-temp}FN"))
        check(text_of(el, VCARD + "/{vcard-temp}N/{vcard-temp}GIVEN") == "Juliet",
              "N/GIVEN missing")


def test_set_replaces_the_whole_vcard(server):
    c = server.login("replace")
    c.expect("iq", attrs={"id": set_card(c, CARD), "type": "result"})
    c.expect("iq", attrs={"id": set_card(
        c, "<vCard xmlns='vcard-temp'><NICKNAME>new</NICKNAME></vCard>"),
        "type": "result"})
    el = c.expect("iq", attrs={"id": get(c), "type": "result"},
                  text={VCARD + "/{vcard-temp}NICKNAME": "new"})
    check(find(el, VCARD + "/{vcard-temp}FN") is None, "old FN kept")


def test_another_accounts_vcard(server):
    owner = server.login("romeo")
    owner.expect("iq", attrs={"id": set_card(owner, CARD), "type": "result"})
    reader = server.login("reader")
    reader.expect("iq", attrs={"id": get(reader, owner.bare), "type": "result",
                               "from": owner.bare},
                  text={VCARD + "/{vcard-temp}NICKNAME": "jc"})


def test_another_account_without_vcard(server):
    owner = server.login("nocard")
    reader = server.login("reader")
    reader.expect_error("iq", "service-unavailable", type="cancel",
                        attrs={"id": get(reader, owner.bare)})


def test_account_that_does_not_exist(server):
    reader = server.login("reader")
    reader.expect_error("iq", "service-unavailable", type="cancel",
                        attrs={"id": get(reader, "nobody-here@localhost")})


def test_set_on_another_account_is_forbidden(server):
    owner = server.login("victim")
    other = server.login("vandal")
    other.expect_error("iq", "forbidden", type="auth",
                       attrs={"id": set_card(other, CARD, owner.bare)})
    el = owner.expect("iq", attrs={"id": get(owner), "type": "result"},
                      child=VCARD)
    check(len(find(el, VCARD)) == 0, "the vCard was changed")


def test_too_large_vcard(server):
    c = server.login("bigcard")
    big = "<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>" % ("x" * 4000)
    c.expect_error("iq", "policy-violation", type="modify",
                   attrs={"id": set_card(c, big)})
    el = c.expect("iq", attrs={"id": get(c), "type": "result"}, child=VCARD)
    check(len(find(el, VCARD)) == 0, "the large vCard was stored")


def test_empty_vcard_removes_it(server):
    owner = server.login("eraser")
    owner.expect("iq", attrs={"id": set_card(owner, CARD), "type": "result"})
    owner.expect("iq", attrs={"id": set_card(owner, "<vCard xmlns='vcard-temp'/>"),
                              "type": "result"})
    reader = server.login("reader")
    reader.expect_error("iq", "service-unavailable",
                        attrs={"id": get(reader, owner.bare)})
