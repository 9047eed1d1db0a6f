"""Stanzas to the server's domain with a resource (<domainpart/resourcepart>,
RFC 6120 10.5.2), such as the disco#info mcabber sends to localhost/mcabber:
the server handles them itself, exactly as it handles the same stanza to
<domainpart>, and what it answers comes from the domain (RFC 6120 8.1.2.1:
a stanza the server itself generates carries the server's bare JID)."""

import re

from harness import check, fixture
from xmpp import NS, esc, new_id, to_xml

INFO = NS["disco"]


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq",
                                 "disco", "ping", "version", "uptime"])


def as_expected(el, new_iq_id):
    """el serialized, with its id replaced: the answer expected to the same
    request under another id."""
    return re.sub(r" id='[^']*'", " id='%s'" % esc(new_iq_id), to_xml(el), 1)


def ask(client, to, payload):
    iq_id = new_id("dr")
    client.send("<iq type='get' id='%s' to='%s'>%s</iq>"
                % (iq_id, esc(to), payload))
    return iq_id


def test_disco_info_to_domain_with_resource(server):
    c = server.login("mcabberlike")
    payload = "<query xmlns='%s'/>" % INFO
    to_domain = c.expect("iq", attrs={"id": ask(c, server.domain, payload),
                                      "type": "result",
                                      "from": server.domain})
    for to in (server.domain + "/mcabber", server.domain.upper() + "/Other"):
        iq_id = ask(c, to, payload)
        c.expect_exactly(as_expected(to_domain, iq_id))


def test_exact_ping_answer(server):
    c = server.login("pinger")
    iq_id = ask(c, server.domain + "/mcabber",
                "<ping xmlns='urn:xmpp:ping'/>")
    c.expect_exactly("<iq type='result' id='%s' from='%s' to='%s'/>"
                     % (esc(iq_id), esc(server.domain), esc(c.jid)))


def test_unknown_payload_is_the_domains_error(server):
    c = server.login("unknown")
    payload = "<query xmlns='urn:example:nobody'/>"
    to_domain = c.expect_error("iq", "service-unavailable", type="cancel",
                               attrs={"id": ask(c, server.domain, payload),
                                      "from": server.domain})
    iq_id = ask(c, server.domain + "/mcabber", payload)
    c.expect_exactly(as_expected(to_domain, iq_id))


def test_message_is_answered_as_to_the_domain(server):
    c = server.login("writer")
    for t in ("normal", "chat"):
        mid = new_id("m")
        c.send("<message type='%s' id='%s' to='%s'><body>hello</body></message>"
               % (t, mid, esc(server.domain)))
        to_domain = c.expect("message", attrs={"id": mid, "type": "error",
                                               "from": server.domain})
        mid2 = new_id("m")
        c.send("<message type='%s' id='%s' to='%s/mcabber'><body>hello</body>"
               "</message>" % (t, mid2, esc(server.domain)))
        c.expect_exactly(as_expected(to_domain, mid2))
