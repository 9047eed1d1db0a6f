"""mod_version: XEP-0092 Software Version of the server."""

import re

from harness import check, fixture
from xmpp import find, new_id, text_of

NS_VERSION = "jabber:iq:version"


def ask(client, to):
    iq_id = new_id("ver")
    client.send("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>"
                % (iq_id, to, NS_VERSION))
    return iq_id


@fixture
def server(scope):
    return scope.server(modules=["iq", "version"])


def test_server_version(server):
    c = server.login("ver")
    iq_id = ask(c, server.domain)
    el = c.expect("iq", attrs={"id": iq_id, "type": "result",
                               "from": server.domain},
                  child="{%s}query/{%s}name" % (NS_VERSION, NS_VERSION))
    q = "{%s}query/{%s}" % (NS_VERSION, NS_VERSION)
    check(text_of(el, q + "name") == "Starling", text_of(el, q + "name"))
    check(re.fullmatch(r"\d+\.\d+.*", text_of(el, q + "version") or ""),
          "version is %r" % text_of(el, q + "version"))
    check(find(el, q + "os") is None, "os sent without version_os")


def test_os_from_the_option(ctx):
    srv = ctx.server(modules=["iq", "version"],
                     options={"version_os": "Debian GNU/Linux 12"})
    c = srv.login("veros")
    iq_id = ask(c, srv.domain)
    c.expect("iq", attrs={"id": iq_id, "type": "result"},
             text={"{%s}query/{%s}os" % (NS_VERSION, NS_VERSION):
                   "Debian GNU/Linux 12"})


def test_version_of_an_account_is_not_the_servers(server):
    c = server.login("verbare")
    iq_id = ask(c, c.bare)
    c.expect_error("iq", "service-unavailable", attrs={"id": iq_id})
