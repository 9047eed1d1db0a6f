"""mod_uptime: XEP-0012 Last Activity of the server: its uptime."""

from harness import check, fixture
from xmpp import find, new_id

NS_LAST = "jabber:iq:last"


@fixture
def server(scope):
    return scope.server(modules=["iq", "uptime"])


def test_server_uptime(server):
    c = server.login("uptime")
    iq_id = new_id("last")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>"
           % (iq_id, server.domain, NS_LAST))
    el = c.expect("iq", attrs={"id": iq_id, "type": "result",
                               "from": server.domain},
                  child="{%s}query" % NS_LAST)
    q = find(el, "{%s}query" % NS_LAST)
    seconds = q.get("seconds")
    check(seconds is not None and seconds.isdigit(), "seconds=%r" % seconds)
    check(int(seconds) < 600, "the server just started, seconds=%s" % seconds)
    check(not (q.text or "").strip(), "text in the server's answer: %r" % q.text)
