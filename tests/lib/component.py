"""An external component (XEP-0114) as a test drives one: a raw stream to
the server's component port, the handshake, then stanzas like a Client's.

    comp = ExternalComponent(srv, "irc.localhost", "s3cret").connect()
    comp.send("<message from='bot@irc.localhost' to='%s'>..." % user.jid)
    comp.expect("message", attrs={"to": "bot@irc.localhost"})

The server's component port is the option component_ports of the Server
(component_server() below makes one with a free port).
"""

import hashlib

import server as server_mod
import xmpp
from xmpp import esc

NS_COMPONENT = "jabber:component:accept"
NS_STREAM = "http://etherx.jabber.org/streams"


def component_server(scope, components, options=None, **kw):
    """A server of the scope with the Component sections `components`
    ({name: {"component_secret": ..., "module": ...}}) and its component
    port on 127.0.0.1."""
    opts = {"component_ports": [server_mod.free_port()],
            "component_interfaces": ["127.0.0.1"]}
    opts.update(options or {})
    return scope.server(options=opts, components=components, **kw)


def component_port(srv):
    return srv.options["component_ports"][0]


class ExternalComponent(xmpp.Client):
    """A component's stream; expect() and friends are the Client's."""

    def __init__(self, srv, domain, secret, name=None):
        super().__init__("127.0.0.1", component_port(srv), domain=domain,
                         name=name or "component-" + domain)
        self.secret = secret
        self.stream_id = None
        for hook in server_mod.CLIENT_CREATED:    # closed after the test
            hook(self)

    def open(self, to=None):
        """Connects and sends the header; returns the server's header."""
        super().connect()
        self.send("<?xml version='1.0'?><stream:stream xmlns='%s' "
                  "xmlns:stream='%s' to='%s'>"
                  % (NS_COMPONENT, NS_STREAM, esc(to or self.domain)))
        header = self.expect_stream_header()
        self.stream_id = header.get("id")
        return header

    def handshake_value(self, secret=None):
        secret = self.secret if secret is None else secret
        return hashlib.sha1((self.stream_id + secret).encode()).hexdigest()

    def connect(self, secret=None):
        """Header and handshake: the server's empty <handshake/>."""
        self.open()
        self.send("<handshake>%s</handshake>" % self.handshake_value(secret))
        self.expect("{%s}handshake" % NS_COMPONENT)
        return self
