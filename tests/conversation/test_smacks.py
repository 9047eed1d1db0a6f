"""XEP-0198 Stream Management: enable, acks both ways, a cut connection
resumed with every queued stanza arriving exactly once, a hibernation that
runs out leaving its unacked messages in offline storage."""

from harness import check, fixture, sync, time_limit
from xmpp import esc

SM = "urn:xmpp:sm:3"
MODULES = ["roster", "presence", "message", "iq", "offline", "smacks"]


@fixture
def server(scope):
    return scope.server(modules=MODULES,
                        options={"smacks_max_ack_delay_stanzas": 100})


def enable(c, resume=True):
    c.send("<enable xmlns='%s'%s/>" % (SM, " resume='true'" if resume else ""))
    el = c.expect("{%s}enabled" % SM)
    return el.get("id")


def msg(sender, to, ident):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, ident))


def test_feature_offered_after_bind_only(server):
    a = server.account("feat")
    c = server.client()
    check(c.features.find("{%s}sm" % SM) is None, "sm offered before auth")
    c.auth_scram(a.user, a.password)
    check(c.features.find("{%s}sm" % SM) is not None, "no sm feature after auth")


def test_enable_before_bind_fails(server):
    a = server.account("early")
    c = server.client()
    c.auth_scram(a.user, a.password)
    c.send("<enable xmlns='%s'/>" % SM)
    c.expect("{%s}failed" % SM, child="stanzas:unexpected-request")


def test_acks_both_ways(server):
    a = server.login("acker", presence=True)
    b = server.login("peer")
    enable(a)
    for i in range(3):                  # three stanzas from a, counted
        msg(a, b.jid, "out%d" % i)
    a.send("<r xmlns='%s'/>" % SM)
    a.expect("{%s}a" % SM, attrs={"h": "3"})
    msg(b, a.jid, "in0")
    a.expect("message", attrs={"id": "in0"})
    a.send("<a xmlns='%s' h='1'/>" % SM)
    a.send("<r xmlns='%s'/>" % SM)      # still answered after a's ack
    a.expect("{%s}a" % SM, attrs={"h": "3"})


def test_ack_of_more_than_was_sent_is_an_error(server):
    a = server.login("liar", presence=True)
    enable(a)
    a.send("<a xmlns='%s' h='5'/>" % SM)
    a.expect_stream_error("undefined-condition")


@time_limit(60)
def test_cut_connection_resumes_and_delivers_exactly_once(server):
    acct = server.account("mobile")
    a = server.login(acct, resource="phone", presence=True)
    b = server.login("sender", presence=True)
    smid = enable(a)
    for i in range(3):
        msg(b, a.jid, "m%d" % i)
    for i in range(3):
        a.expect("message", attrs={"id": "m%d" % i})
    a.close()                           # the TCP connection is cut
    server.wait_log(r"mobile.*hibernating")
    for i in range(3, 5):               # sent while it hibernates
        msg(b, acct.jid + "/phone", "m%d" % i)
    sync(b, b)                          # the server has handled them
    c = server.client(name="resumed")
    c.auth_scram(acct.user, acct.password)
    c.send("<resume xmlns='%s' previd='%s' h='1'/>" % (SM, smid))
    c.expect("{%s}resumed" % SM, attrs={"previd": smid})
    c.ignore = ("presence",)
    c.jid = acct.jid + "/phone"
    got = []
    for _ in range(4):                  # m1..m4: m0 was acked
        got.append(c.expect("message").get("id"))
    check(got == ["m1", "m2", "m3", "m4"], "after resume: %s" % got)
    c.expect("{%s}r" % SM)
    c.send("<a xmlns='%s' h='5'/>" % SM)
    # the resumed session is the same one: its JID reaches it, once
    msg(b, acct.jid + "/phone", "after")
    c.expect("message", attrs={"id": "after"})
    sync(b, c)


def test_resume_of_unknown_or_foreign_session_fails(server):
    a = server.login("owner", presence=True)
    smid = enable(a)
    other = server.account("thief")
    c = server.client()
    c.auth_scram(other.user, other.password)
    c.send("<resume xmlns='%s' previd='%s' h='0'/>" % (SM, smid))
    c.expect("{%s}failed" % SM, child="stanzas:item-not-found")
    c.bind()                            # and may still start a new session


@time_limit(60)
def test_hibernation_timeout_leaves_unacked_messages_offline(ctx):
    srv = ctx.server(modules=MODULES, options={
        "smacks_hibernation_time": 1, "smacks_max_ack_delay_stanzas": 100})
    acct = srv.account("sleeper")
    a = srv.login(acct, resource="phone", presence=True)
    b = srv.login("writer", presence=True)
    enable(a)
    msg(b, a.jid, "lost1")
    a.expect("message", attrs={"id": "lost1"})    # received, never acked
    a.close()
    srv.wait_log(r"hibernation timed out", timeout=15)
    again = srv.login(acct, resource="laptop")
    again.presence()
    el = again.expect("message", attrs={"id": "lost1"}, child="{urn:xmpp:delay}delay")
    check(el.find("{jabber:client}body").text == "lost1", "offline copy: %r" % el)
