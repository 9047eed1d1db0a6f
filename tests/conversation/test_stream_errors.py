"""Stream errors (RFC 6120 section 4.9) and restricted XML (section 11).

Each test runs with two bystanders: logged-in clients of the same server
that exchange messages before and after the bad client, so a bad stream
must never hurt anyone else. After the error the server must send
</stream:stream> and close the connection (expect_stream_error checks).
"""

from harness import bystanders, fixture, time_limit
from xmpp import RAW_C2S_HEADER as HEADER, esc


@fixture
def server(scope):
    return scope.server()


def raw(server):
    """A plain TCP client that has sent nothing yet."""
    return server.client(tls=None, open_stream=False)


# -- XML

def test_not_well_formed_before_auth(server):
    with bystanders(server):
        c = server.client(tls=None)
        c.send("<message><body>mismatched</message>")
        c.expect_stream_error("not-well-formed")


def test_not_well_formed_after_login(server):
    with bystanders(server):
        c = server.login("badxml")
        c.send("<presence><<</presence>")
        c.expect_stream_error("not-well-formed")


def test_not_well_formed_in_stream_header(server):
    with bystanders(server):
        c = raw(server)
        c.send("<stream:stream xmlns='jabber:client' to='localhost' "
               "version='1.0' xmlns:stream='http://etherx.jabber.org/streams'"
               " to='twice'>")
        c.expect_stream_error("not-well-formed")


def test_doctype_is_restricted_xml(server):
    with bystanders(server):
        c = raw(server)
        c.send("<?xml version='1.0'?><!DOCTYPE stream:stream>" + HEADER)
        c.expect_stream_error("restricted-xml")


def test_entity_declaration_is_restricted_xml(server):
    with bystanders(server):
        c = raw(server)
        c.send("<?xml version='1.0'?><!DOCTYPE stream:stream ["
               "<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>"
               + HEADER)
        c.expect_stream_error("restricted-xml")


def test_comment_is_restricted_xml(server):
    with bystanders(server):
        c = server.login("comment")
        c.send("<!-- a comment -->")
        c.expect_stream_error("restricted-xml")


def test_comment_inside_a_stanza_is_restricted_xml(server):
    with bystanders(server) as (b, _):
        c = server.login("comment2")
        c.send("<message to='%s'><body>x<!-- hidden --></body></message>"
               % esc(b.jid))
        c.expect_stream_error("restricted-xml")


def test_processing_instruction_is_restricted_xml(server):
    with bystanders(server):
        c = server.login("pi")
        c.send("<?php echo 1; ?>")
        c.expect_stream_error("restricted-xml")


# -- limits

def test_stanza_within_the_limits_is_delivered(server):
    a = server.login("roomy")
    b = server.login("roomy")
    body = "y" * 200000                 # under the default 256 KiB
    a.send("<message to='%s' type='chat'><body>%s</body></message>"
           % (esc(b.jid), body))
    b.expect("message", attrs={"from": a.jid}, child="body", text=body)
    nested = "<x xmlns='urn:test:deep'>" * 20 + "</x>" * 20
    attrs = " ".join("a%d='%d'" % (i, i) for i in range(50))
    a.send("<message to='%s' type='chat'><body>fits</body>%s"
           "<y xmlns='urn:test:attrs' %s/></message>" % (esc(b.jid), nested, attrs))
    b.expect("message", child=["body", "{urn:test:deep}x", "{urn:test:attrs}y"],
             text={"body": "fits"})


def test_configured_stanza_size_limit(ctx):
    srv = ctx.server(options={"c2s_stanza_size_limit": 16384})
    with bystanders(srv) as (b, _):
        c = srv.login("limited")
        c.send("<message to='%s' type='chat'><body>%s</body></message>"
               % (esc(b.jid), "s" * 12000))
        b.expect("message", attrs={"from": c.jid}, child="body", text="s" * 12000)
        c.send("<message to='%s' type='chat'><body>%s</body></message>"
               % (esc(b.jid), "S" * 20000))
        c.expect_stream_error("policy-violation")


def test_oversized_stanza_is_policy_violation(server):
    with bystanders(server) as (b, _):
        c = server.login("big")
        body = "x" * (262144 + 4096)       # over the default 256 KiB
        c.send("<message to='%s' type='chat'><body>%s</body></message>"
               % (esc(b.jid), body))
        c.expect_stream_error("policy-violation", timeout=15)


def test_too_deep_stanza_is_policy_violation(server):
    with bystanders(server) as (b, _):
        c = server.login("deep")
        depth = 40                          # default limit 32
        c.send("<message to='%s'>%s%s</message>"
               % (esc(b.jid), "<x xmlns='urn:test:deep'>" * depth,
                  "</x>" * depth))
        c.expect_stream_error("policy-violation")


def test_too_many_attributes_is_policy_violation(server):
    with bystanders(server) as (b, _):
        c = server.login("attrs")
        attrs = " ".join("a%d='%d'" % (i, i) for i in range(100))  # limit 64
        c.send("<message to='%s'><x xmlns='urn:test:attrs' %s/></message>"
               % (esc(b.jid), attrs))
        c.expect_stream_error("policy-violation")


# -- stream header

def test_wrong_stream_namespace_is_invalid_namespace(server):
    with bystanders(server):
        c = raw(server)
        c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://example.com/not-streams' to='localhost' "
               "version='1.0'>")
        c.expect_stream_error("invalid-namespace")


def test_wrong_content_namespace_is_invalid_namespace(server):
    with bystanders(server):
        c = raw(server)
        c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:nonsense' "
               "xmlns:stream='http://etherx.jabber.org/streams' "
               "to='localhost' version='1.0'>")
        c.expect_stream_error("invalid-namespace")


def test_unknown_host_is_host_unknown(server):
    with bystanders(server):
        c = raw(server)
        c.send(c.stream_header(to="no-such-host.example"))
        c.expect_stream_error("host-unknown")


# -- stanzas

def test_forged_from_is_invalid_from(server):
    with bystanders(server) as (b, c):
        bad = server.login("forger")
        bad.send("<message from='%s' to='%s' type='chat'><body>it is me"
                 "</body></message>" % (esc(c.jid), esc(b.jid)))
        bad.expect_stream_error("invalid-from")


def test_forged_from_other_domain_is_invalid_from(server):
    with bystanders(server):
        bad = server.login("forger")
        bad.send("<iq type='get' id='f1' from='admin@example.org/x' "
                 "to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        bad.expect_stream_error("invalid-from")


# -- timeout

@time_limit(60)
def test_pre_auth_timeout_is_connection_timeout(ctx):
    srv = ctx.server(options={"c2s_timeout": 2})
    with bystanders(srv):
        c = srv.client(tls=None)        # stream open, never authenticates
        c.expect_stream_error("connection-timeout", timeout=15)
        t = srv.client()                # TLS done, never authenticates
        t.expect_stream_error("connection-timeout", timeout=15)
