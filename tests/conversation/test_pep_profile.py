"""What lives in PEP besides OMEMO and bookmarks: avatars (XEP-0084) kept
in step with the vCard photo (XEP-0153, mod_vcard_legacy), the user
nickname (XEP-0172) and vCard4 over PEP (XEP-0292); a client that knows
only XEP-0084 has the avatar's hash put in its presence for contacts on
XEP-0153."""

import base64
import hashlib

from harness import check, fixture
from im import befriend, im_login
from pubsub import PS, NS, item_ids, items, publish
from xmpp import find, new_id, text_of

META = "urn:xmpp:avatar:metadata"
DATA = "urn:xmpp:avatar:data"
IMAGE = bytes(range(256)) * 3
B64 = base64.b64encode(IMAGE).decode()
SHA1 = hashlib.sha1(IMAGE).hexdigest()


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq", "disco",
                                 "vcard", "pep", "vcard_legacy"])


def get_vcard(c):
    iq_id = new_id("vc")
    c.send("<iq type='get' id='%s'><vCard xmlns='vcard-temp'/></iq>" % iq_id)
    return c.wait_for("iq", attrs={"id": iq_id, "type": "result"})


def test_vcard_photo_becomes_the_pep_avatar(server):
    c = server.login("photo")
    iq_id = new_id("vcset")
    c.send("<iq type='set' id='%s'><vCard xmlns='vcard-temp'><FN>Photo</FN><PHOTO>"
           "<TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard></iq>" % (iq_id, B64))
    c.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    el = items(c, META)
    check(item_ids(el) == [SHA1], "the metadata id is the image's sha-1")
    info = find(el, PS + "/{%s}items/{%s}item/{%s}metadata/{%s}info" % (NS, NS, META, META))
    check(info.get("bytes") == str(len(IMAGE)) and info.get("type") == "image/png", str(info.attrib))
    el = items(c, DATA, ids=[SHA1])
    data = text_of(el, PS + "/{%s}items/{%s}item/{%s}data" % (NS, NS, DATA))
    check(base64.b64decode(data) == IMAGE, "the image")


def test_pep_avatar_becomes_the_vcard_photo(server):
    c = server.login("avatar")
    publish(c, DATA, SHA1, "<data xmlns='%s'>%s</data>" % (DATA, B64))
    publish(c, META, SHA1, "<metadata xmlns='%s'><info id='%s' bytes='%d' type='image/webp'/>"
            "</metadata>" % (META, SHA1, len(IMAGE)))
    el = get_vcard(c)
    check(text_of(el, "{vcard-temp}vCard/{vcard-temp}PHOTO/{vcard-temp}TYPE") == "image/webp", "type")
    binval = text_of(el, "{vcard-temp}vCard/{vcard-temp}PHOTO/{vcard-temp}BINVAL")
    check(base64.b64decode(binval) == IMAGE, "the vCard photo is the avatar")
    # avatar disabled: the photo goes
    publish(c, META, "current", "<metadata xmlns='%s'/>" % META)
    el = get_vcard(c)
    check(find(el, "{vcard-temp}vCard/{vcard-temp}PHOTO") is None, "photo removed")


def test_nickname_and_vcard4_over_pep(server):
    c = server.login("nick")
    iq_id = new_id("vcset")
    c.send("<iq type='set' id='%s'><vCard xmlns='vcard-temp'><FN>N</FN><NICKNAME>old</NICKNAME>"
           "</vCard></iq>" % iq_id)
    c.wait_for("iq", attrs={"id": iq_id, "type": "result"})
    publish(c, "http://jabber.org/protocol/nick", "current",
            "<nick xmlns='http://jabber.org/protocol/nick'>Ophelia</nick>")
    check(text_of(get_vcard(c), "{vcard-temp}vCard/{vcard-temp}NICKNAME") == "Ophelia", "nickname")
    card = ("<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Ophelia</text></fn>"
            "<nickname><text>O</text></nickname></vcard>")
    publish(c, "urn:xmpp:vcard4", "current", card)
    el = items(c, "urn:xmpp:vcard4")
    check(text_of(el, PS + "/{%s}items/{%s}item/{urn:ietf:params:xml:ns:vcard-4.0}vcard/"
                         "{urn:ietf:params:xml:ns:vcard-4.0}fn/{urn:ietf:params:xml:ns:vcard-4.0}text"
                  % (NS, NS)) == "Ophelia", "vCard4 read back")


def photo_of(p):
    x = find(p, "{vcard-temp:x:update}x")
    return None if x is None else (text_of(x, "{vcard-temp:x:update}photo") or "")


def test_presence_carries_the_pep_avatar_hash(server):
    alice, bob = im_login(server, "hashalice"), im_login(server, "hashbob")
    befriend(alice, bob)
    alice.presence(show="away")           # no avatar yet: nothing added
    p = bob.wait_for("presence", attrs={"from": alice.jid})
    check(photo_of(p) is None, "no hash before any avatar")
    alice.ignore = ("presence",)
    publish(alice, DATA, SHA1, "<data xmlns='%s'>%s</data>" % (DATA, B64))
    publish(alice, META, SHA1, "<metadata xmlns='%s'><info id='%s' bytes='%d' type='image/png'/>"
            "</metadata>" % (META, SHA1, len(IMAGE)))
    alice.presence()
    p = bob.wait_for("presence", attrs={"from": alice.jid})
    check(photo_of(p) == SHA1, "the avatar's sha-1 in the presence")
    # a client's own x:update is left as it is
    alice.presence(extra="<x xmlns='vcard-temp:x:update'/>")
    p = bob.wait_for("presence", attrs={"from": alice.jid})
    check(photo_of(p) == "", "the client's element, untouched")
    # avatar disabled: an empty <photo/> says so
    publish(alice, META, "current", "<metadata xmlns='%s'/>" % META)
    alice.presence()
    p = bob.wait_for("presence", attrs={"from": alice.jid})
    check(photo_of(p) == "", "no avatar")
    check(find(find(p, "{vcard-temp:x:update}x"), "{vcard-temp:x:update}photo") is not None,
          "<photo/> present and empty")
