"""Prosody's community modules, loaded unchanged from Debian's
prosody-modules package (plugin_paths = /usr/lib/prosody/modules, where
they live one folder per module beside Prosody's own core plugins), each
doing what its documentation says."""

import os
import re
import urllib.request

from server import free_port
from wsclient import wait_for_port
from harness import check, fixture, sync
from seed import ROSTER_SEED, roster_item
from xmpp import AuthFailed, esc, find, new_id

PROSODY_MODULES = "/usr/lib/prosody/modules"
BASE = ["roster", "presence", "message", "iq", "ping"]
CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


def prosody_server(scope, modules, **kw):
    opts = dict(kw.pop("options", {}))
    opts["plugin_paths"] = [PROSODY_MODULES]
    return scope.server(modules=BASE + modules, options=opts, **kw)


def go_inactive(c):
    c.send("<inactive xmlns='%s'/>" % CSI)
    c.roundtrip()


@fixture
def battery_srv(scope):
    return prosody_server(scope, ["csi", "csi_battery_saver"])


def test_loaded_from_debians_folder_unchanged(battery_srv):
    for name in ("block_strangers", "filter_chatstates", "lastlog", "log_auth",
                 "broadcast", "default_bookmarks", "throttle_presence",
                 "csi_battery_saver", "stanza_counter"):
        path = os.path.join(PROSODY_MODULES, "mod_%s" % name, "mod_%s.lua" % name)
        check(os.path.exists(path), "Debian's prosody-modules has no %s" % path)
    srv = battery_srv
    line = srv.wait_log(r"localhost:csi_battery_saver.*loaded from")
    check("/usr/lib/prosody/modules/mod_csi_battery_saver/mod_csi_battery_saver.lua"
          in line, line)
    # Prosody's own mod_csi.lua sits in the same folder: Starling's serves
    srv.wait_log(r"localhost:csi.*loaded from .*/modules/mod_csi.lua")
    check("/usr/lib/prosody/modules/mod_csi.lua" not in srv.log_text(),
          "Prosody's core mod_csi was loaded")


# --- mod_block_strangers -------------------------------------------------------

@fixture
def strangers(scope):
    return prosody_server(scope, ["block_strangers", "version"],
                          plugins={"test_roster_seed": ROSTER_SEED})


def test_block_strangers(strangers):
    b = strangers.login("guarded", presence=True)
    friend = strangers.login("friend", presence=True)
    stranger = strangers.login("stranger", presence=True)
    roster_item(b, friend.bare, "from")      # friend may see b's presence
    # a contact's message arrives
    friend.send("<message to='%s' type='chat' id='hello'><body>hi</body></message>"
                % esc(b.bare))
    b.expect("message", attrs={"id": "hello"}, child="body", text="hi")
    # a stranger's message, to the bare or the full JID, is dropped
    stranger.send("<message to='%s' type='chat' id='spam1'><body>buy</body></message>"
                  % esc(b.bare))
    stranger.send("<message to='%s' type='chat' id='spam2'><body>buy</body></message>"
                  % esc(b.jid))
    # a stranger's iq to the full JID is refused, never delivered
    stranger.send("<iq to='%s' type='get' id='probe'><query xmlns='jabber:iq:version'/></iq>"
                  % esc(b.jid))
    stranger.expect_error("iq", "service-unavailable", attrs={"id": "probe"})
    sync(friend, b)                          # nothing from the stranger came
    # the account's own resources are never strangers
    other = strangers.login(b.account, resource="second", presence=True)
    other.send("<message to='%s' type='chat' id='self'><body>me</body></message>"
               % esc(b.jid))
    b.expect("message", attrs={"id": "self"})


def test_block_strangers_directed_presence(strangers):
    b = strangers.login("directed", presence=True)
    stranger = strangers.login("pen-pal", presence=True)
    friend = strangers.login("dfriend", presence=True)
    roster_item(b, friend.bare, "from")
    # once b sent directed presence to the stranger, its messages come in
    b.send("<presence to='%s'/>" % esc(stranger.bare))
    b.roundtrip()
    stranger.send("<message to='%s' type='chat' id='reply'><body>ok</body></message>"
                  % esc(b.jid))
    b.expect("message", attrs={"id": "reply"})


# --- mod_filter_chatstates -------------------------------------------------------

@fixture
def chatstates_srv(scope):
    return prosody_server(scope, ["csi", "filter_chatstates"])


def test_filter_chatstates(chatstates_srv):
    srv = chatstates_srv
    b = srv.login("typing-to", presence=True)
    a = srv.login("typist", presence=True)
    go_inactive(b)
    # a chat state alone never reaches the inactive client; with a body
    # the message comes without its chat state
    a.send("<message to='%s' type='chat' id='c1'><composing xmlns='%s'/></message>"
           % (esc(b.jid), NS_CHATSTATES))
    a.send("<message to='%s' type='chat' id='m1'><body>done</body><active xmlns='%s'/>"
           "</message>" % (esc(b.jid), NS_CHATSTATES))
    m = b.expect("message", attrs={"id": "m1"}, child="body", text="done")
    check(find(m, "{%s}active" % NS_CHATSTATES) is None,
          "chat state still there: %s" % m)
    # active again: chat states come through
    b.send("<active xmlns='%s'/>" % CSI)
    b.roundtrip()
    a.send("<message to='%s' type='chat' id='m2'><body>again</body><active xmlns='%s'/>"
           "</message>" % (esc(b.jid), NS_CHATSTATES))
    m = b.expect("message", attrs={"id": "m2"})
    check(find(m, "{%s}active" % NS_CHATSTATES) is not None,
          "chat state removed while active: %s" % m)


# --- mod_throttle_presence -------------------------------------------------------------

@fixture
def throttle_srv(scope):
    return prosody_server(scope, ["csi", "throttle_presence"])


def test_throttle_presence(throttle_srv):
    srv = throttle_srv
    b = srv.login("throttled", presence=True)
    b.ignore = ()
    b.expect("presence")                     # its own
    a = srv.login("chatty", presence=True)
    c = srv.login("quiet", presence=True)
    go_inactive(b)
    for n in (1, 2, 3):
        a.send("<presence to='%s'><status>a%d</status></presence>" % (esc(b.jid), n))
    # someone else's message does not let a's presence through
    c.send("<message to='%s' type='chat' id='from-c'><body>hi</body></message>"
           % esc(b.jid))
    b.expect("message", attrs={"id": "from-c"})
    # a's own message brings a's newest presence first
    a.send("<message to='%s' type='chat' id='from-a'><body>yo</body></message>"
           % esc(b.jid))
    p = b.expect("presence", attrs={"from": a.jid})
    check(p.findtext("{jabber:client}status") == "a3", "presence %s" % p)
    b.expect("message", attrs={"id": "from-a"})
    # buffered presence of others comes when b goes active
    c.send("<presence to='%s'><status>c1</status></presence>" % esc(b.jid))
    a.roundtrip()
    c.roundtrip()
    b.send("<active xmlns='%s'/>" % CSI)
    p = b.expect("presence", attrs={"from": c.jid})
    check(p.findtext("{jabber:client}status") == "c1", "presence %s" % p)
    sync(a, b)


# --- mod_csi_battery_saver ---------------------------------------------------------------

def test_csi_battery_saver(battery_srv):
    srv = battery_srv
    b = srv.login("battery", presence=True)
    b.ignore = ()
    b.expect("presence")
    a = srv.login("talker", presence=True)
    go_inactive(b)
    a.send("<presence to='%s'><status>away</status></presence>" % esc(b.jid))
    a.send("<message to='%s' type='headline' id='news'><body>n</body></message>"
           % esc(b.jid))
    a.roundtrip()
    # an important message flushes the queue: the presence and the headline
    # come first, each stamped with when it was queued
    a.send("<message to='%s' type='chat' id='urgent'><body>call me</body></message>"
           % esc(b.jid))
    p = b.expect("presence", attrs={"from": a.jid})
    delay = find(p, "{urn:xmpp:delay}delay")
    check(delay is not None and delay.get("from") == b.bare, "no delay stamp: %s" % p)
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", delay.get("stamp") or ""),
          "stamp %s" % delay.get("stamp"))
    b.expect("message", attrs={"id": "news"})
    m = b.expect("message", attrs={"id": "urgent"})
    check(find(m, "{urn:xmpp:delay}delay") is None, "important stanza stamped: %s" % m)
    # active: delivered at once again (still stamped, as the module does)
    b.send("<active xmlns='%s'/>" % CSI)
    a.send("<presence to='%s'><status>back</status></presence>" % esc(b.jid))
    b.expect("presence", attrs={"from": a.jid}, child="status", text="back")


# --- mod_lastlog -------------------------------------------------------------------------

@fixture
def lastlog_srv(scope):
    return prosody_server(scope, ["lastlog"], options={"lastlog_ip_address": True})


def test_lastlog(lastlog_srv):
    srv = lastlog_srv
    acct = srv.account("logger")
    out = srv.ctl("mod_lastlog", acct.jid, check=False)
    check(out.returncode != 0 and "No record found" in out.stdout + out.stderr,
          out.stdout + out.stderr)
    c = srv.login(acct)
    out = srv.ctl("mod_lastlog", acct.jid).stdout
    check(re.search(r"Last login: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out), out)
    check("IP address: 127.0.0.1" in out, out)
    c.close()
    srv.wait_log(r"resource-unbind|unbound|ended", timeout=5)
    for _ in range(50):
        out = srv.ctl("mod_lastlog", acct.jid).stdout
        if "Last logout" in out:
            break
    check("Last logout:" in out, out)


@fixture
def lastlog_reg_srv(scope):
    return prosody_server(scope, ["register", "lastlog"],
                         options={"allow_registration": True})


def test_lastlog_registration(lastlog_reg_srv):
    srv = lastlog_reg_srv
    c = srv.client()
    c.send("<iq type='set' id='reg'><query xmlns='jabber:iq:register'>"
           "<username>newbie</username><password>s3cret-pass</password></query></iq>")
    c.expect("iq", attrs={"id": "reg", "type": "result"})
    out = srv.ctl("mod_lastlog", "newbie@localhost").stdout
    check(re.search(r"Last registered: \d{4}-", out), out)


# --- mod_log_auth ------------------------------------------------------------------------

@fixture
def log_auth_srv(scope):
    return prosody_server(scope, ["log_auth"], options={"log_auth_ips": "all"})


def test_log_auth(log_auth_srv):
    srv = log_auth_srv
    acct = srv.account("audited")
    c = srv.client()
    try:
        c.auth_plain(acct.user, "wrong password")
        check(False, "a wrong password was accepted")
    except AuthFailed:
        pass
    srv.wait_log(r"Failed authentication attempt \(not-authorized\) for user \S+@localhost"
                 r" from IP: 127\.0\.0\.1")
    srv.login(acct)
    srv.wait_log(r"Successful authentication as %s from IP: 127\.0\.0\.1"
                 % re.escape(acct.jid))


# --- mod_broadcast ---------------------------------------------------------------------------

@fixture
def broadcast_srv(scope):
    return scope.server(modules=BASE, hosts=("localhost", "broadcast.localhost"),
                       options={"plugin_paths": [PROSODY_MODULES],
                                "admins": ["boss@localhost"]},
                       host_options={"broadcast.localhost": {"modules_enabled": ["broadcast"]}})


def test_broadcast(broadcast_srv):
    srv = broadcast_srv
    boss = srv.login(srv.register("boss", "boss-password"), presence=True)
    alice = srv.login("alice", presence=True)
    bob = srv.login("bob", presence=True)
    boss.send("<message to='all@broadcast.localhost' id='bc'><body>maintenance at 5</body>"
              "</message>")
    for c in (alice, bob):
        m = c.expect("message", child="body", text="maintenance at 5")
        check(m.get("from") == boss.jid, "from %s" % m.get("from"))
    # someone who is not allowed is not broadcast
    alice.send("<message to='all@broadcast.localhost' id='nope'><body>spam</body></message>")
    srv.wait_log(r"Broadcasting is not allowed for %s" % re.escape(alice.jid))
    sync(alice, bob)


# --- mod_default_bookmarks ---------------------------------------------------------------------

@fixture
def bookmarks_srv(scope):
    return prosody_server(scope, ["private", "default_bookmarks"], options={
        "default_bookmarks": [{"jid": "lobby@conference.localhost", "name": "Lobby"},
                              "help@conference.localhost"]})


def test_default_bookmarks(bookmarks_srv):
    srv = bookmarks_srv
    c = srv.login("bookworm")
    get = ("<iq type='get' id='%s'><query xmlns='jabber:iq:private'>"
           "<storage xmlns='storage:bookmarks'/></query></iq>")
    iq_id = new_id("bm")
    c.send(get % iq_id)
    r = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    confs = r.findall(".//{storage:bookmarks}conference")
    check([(x.get("jid"), x.get("name"), x.get("autojoin")) for x in confs]
          == [("lobby@conference.localhost", "Lobby", "1"),
              ("help@conference.localhost", "help", "1")], "bookmarks %s" % r)
    check(confs[0].findtext("{storage:bookmarks}nick") == c.account.user, "nick")
    # once the user stored bookmarks of their own, those are what they get
    c.send("<iq type='set' id='set'><query xmlns='jabber:iq:private'>"
           "<storage xmlns='storage:bookmarks'><conference jid='mine@conference.localhost'"
           " name='Mine'/></storage></query></iq>")
    c.expect("iq", attrs={"id": "set", "type": "result"})
    iq_id = new_id("bm")
    c.send(get % iq_id)
    r = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    confs = r.findall(".//{storage:bookmarks}conference")
    check([x.get("jid") for x in confs] == ["mine@conference.localhost"], "bookmarks %s" % r)


# --- mod_stanza_counter -------------------------------------------------------------------------

def counters(srv):
    out = srv.ctl("shell", "return prosody.stanza_counter.message.incoming,"
                  " prosody.stanza_counter.presence.incoming").stdout
    m = re.search(r"(\d+)\s+(\d+)", out)
    check(m, "no counters in %r" % out)
    return int(m.group(1)), int(m.group(2))


@fixture
def counter_srv(scope):
    return prosody_server(scope, ["stanza_counter"])


def test_stanza_counter(counter_srv):
    srv = counter_srv
    a = srv.login("counted", presence=True)
    b = srv.login("counter", presence=True)
    a.send("<message to='%s' type='chat'><body>one</body></message>" % esc(b.bare))
    b.expect("message")
    msgs, pres = counters(srv)
    for n in range(3):
        a.send("<message to='%s' type='chat'><body>%d</body></message>" % (esc(b.bare), n))
        b.expect("message", child="body", text=str(n))
    a.send("<presence to='%s'><status>here</status></presence>" % esc(b.jid))
    b.ignore = ()
    b.expect("presence", child="status", text="here")
    msgs2, pres2 = counters(srv)
    check(msgs2 - msgs == 3, "messages counted %d -> %d" % (msgs, msgs2))
    check(pres2 - pres == 1, "presence counted %d -> %d" % (pres, pres2))


# --- mod_server_status: the counters over HTTP ---------------------------------------------------

@fixture
def status_srv(scope):
    port = free_port()
    srv = prosody_server(scope, ["stanza_counter", "server_status"],
                         options={"http_ports": [port], "https_ports": [],
                                  "server_status_show_hosts": ["localhost"]})
    srv.http_port = port
    wait_for_port(port)
    return srv


def test_server_status_serves_the_stanza_counters(status_srv):
    a = status_srv.login("still", presence=True)
    b = status_srv.login("serving", presence=True)
    sync(a, b)
    body = urllib.request.urlopen("http://127.0.0.1:%d/server-status/" % status_srv.http_port,
                                  timeout=10).read().decode()
    m = re.search(r'<incoming iq="(\d+)" message="(\d+)" presence="(\d+)" />', body)
    # mod_stanza_counter starts counting at the first stanza it sees (the
    # sync message)
    check(m and int(m.group(2)) >= 1, "server-status page: %s" % body)
    check('<status name="localhost" current="online" />' in body,
          "server-status page has no host status: %s" % body)
