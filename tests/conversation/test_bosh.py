"""XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind."""

from boshclient import BoshClient, bosh_login, http_post, NS_HTTPBIND
from harness import bystanders, check, exchange, fixture
from server import free_port
from wsclient import wait_for_port
from xmpp import esc

SM = "urn:xmpp:sm:3"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks", "csi",
           "carbons", "bosh", "websocket", "host_meta"]
LIMIT = 16 * 1024


@fixture
def server(scope):
    http = free_port()
    srv = scope.server(modules=MODULES, options={
        "http_ports": [http], "https_ports": [],
        "consider_bosh_secure": True,
        "c2s_stanza_size_limit": LIMIT,
        "bosh_max_inactivity": 3,
        "smacks_hibernation_time": 30,
        "cross_domain_bosh": ["https://chat.example.net"],
    })
    srv.http_port = http
    wait_for_port(http)
    return srv


def test_login_and_chat_with_a_tcp_client(server):
    a = server.account("web")
    b = bosh_login(server.http_port, a, resource="browser")
    check(b.jid == a.user + "@localhost/browser", "bound JID %s" % b.jid)
    t = server.login("tcp")
    exchange(b, t)
    exchange(t, b)
