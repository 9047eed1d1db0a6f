"""XEP-0115 entity capabilities as a test client shows them: a presence
with <c/>, and the answer to the server's disco#info query for it."""

import base64
import hashlib

from xmpp import esc

NS_CAPS = "http://jabber.org/protocol/caps"
NS_INFO = "http://jabber.org/protocol/disco#info"
NODE = "https://starling.example/test-client"
IDENTITY = ("client", "pc", "", "Test")


def ver(features):
    s = "/".join(IDENTITY) + "<" + "".join(f + "<" for f in sorted(set(features)))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def presence(c, features, to=None, extra=""):
    """Available presence carrying the caps of features."""
    to_attr = " to='%s'" % esc(to) if to else ""
    c.send("<presence%s><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>%s</presence>"
           % (to_attr, NS_CAPS, NODE, ver(features), extra))


def answer(c, features):
    """Waits for the server's disco#info query and answers it with the
    identity and features (passing over anything else): returns the
    query's node."""
    iq = c.wait_for("iq", attrs={"type": "get"}, child="{%s}query" % NS_INFO)
    node = iq.find("{%s}query" % NS_INFO).get("node")
    node_attr = " node='%s'" % esc(node) if node else ""
    c.send("<iq type='result' id='%s' to='%s'><query xmlns='%s'%s>"
           "<identity category='%s' type='%s' name='%s'/>%s</query></iq>"
           % (esc(iq.get("id")), esc(iq.get("from")), NS_INFO, node_attr,
              IDENTITY[0], IDENTITY[1], IDENTITY[3],
              "".join("<feature var='%s'/>" % esc(f) for f in sorted(set(features)))))
    return node


def notify(*nodes):
    """The features of a client interested in nodes."""
    return [NS_INFO, NS_CAPS] + [n + "+notify" for n in nodes]
