"""storage = "sql" on PostgreSQL (issue #23, item 3: the data of a domain
served by several nodes). Each test starts its own PostgreSQL (initdb and
pg_ctl in a temporary directory, tests/lib/pgserver.py).

- The store unit tests pass on the PostgreSQL engine as on LMDB and memory.
- Two servers (nodes) of one domain on one database, each with a data
  directory of its own: an account made with starlingctl logs in on
  either; a roster set on one is there on the other; a message kept
  offline on one is delivered on the other; the archive written on one is
  found on the other.
- SIGKILL after acknowledgements: a new server with an empty data
  directory on the same database has every acknowledged roster item,
  offline message and archived message.
- A database that does not answer: the server does not start and says why.
- A write PostgreSQL refuses (its table dropped under the server): the
  whole batch is rolled back and lost; the session that wrote into it is
  closed with resource-constraint and never sees an <a/> covering the
  write; the server goes on with the next batch.
- The database stops in the middle of a stream of messages to an offline
  user: every message the sender was acknowledged (XEP-0198 <a/>) and
  not answered with an error is delivered once the database is back.
- starlingctl migrate: a server filled through clients on LMDB (accounts,
  roster, private XML, vCard, archive, offline messages; a persistent MUC
  room, a PEP item) is copied to PostgreSQL, where a server on the
  database alone has it all; and back into an LMDB (refused while the
  target holds records, unless --replace).
- A commit the database is slow to answer (a trigger sleeps in it) does
  not stop the server: its admin socket answers meanwhile, while the
  writer's answer waits for the commit.
- The database goes away and comes back: meanwhile logins fail with
  temporary-auth-failure and a message that cannot be stored is answered
  with an error (never acknowledged as kept); the server connects again by
  itself, and then logs in and keeps messages as before.
"""

import os
import re
import signal
import subprocess
import threading
import time

from harness import check, raises, skip, time_limit
import muc
from im import befriend, expect_push, expect_result, im_login, roster_get, roster_set
from pgserver import PgServer, pg_bindir
from server import ServerError, free_port
from xmpp import (AuthFailed, ConnectionClosed, ExpectError, STREAM_END, esc,
                  new_id, to_xml)

MODULES = ["roster", "presence", "message", "iq", "carbons", "mam", "offline",
           "disco", "smacks"]
SM = "urn:xmpp:sm:3"
NS_MAM = "urn:xmpp:mam:2"


def postgres(ctx):
    if not pg_bindir():
        skip("PostgreSQL is not installed (Debian: postgresql)")
    pg = PgServer().start()
    ctx.cleanup(pg.stop)
    return pg


def sql_options(pg, db):
    """The config of a node on database db, in Prosody's words."""
    return {"sql": {"driver": "PostgreSQL", "database": db,
                    "username": "starling", "host": "127.0.0.1",
                    "port": pg.port},
            "default_storage": "sql"}


def chat(sender, to, ident):
    sender.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (esc(to), ident, ident))


def enable_sm(c):
    c.send("<enable xmlns='%s'/>" % SM)
    c.expect("{%s}enabled" % SM, skip=("presence",))


def acked(c, h):
    """Until the server acknowledged h stanzas (XEP-0198 <a/>)."""
    c.send("<r xmlns='%s'/>" % SM)
    c.expect("{%s}a" % SM, attrs={"h": str(h)}, skip=("presence", "iq"))


def mam_bodies(c, with_jid):
    """The bodies of the account's archive with with_jid, oldest first."""
    qid = new_id("mam")
    c.send("<iq type='set' id='%s'><query xmlns='%s' queryid='%s'><x xmlns='jabber:x:data' "
           "type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>"
           "<field var='with'><value>%s</value></field></x></query></iq>"
           % (qid, NS_MAM, qid, NS_MAM, esc(with_jid)))
    bodies = []
    while True:
        el = c.expect(skip=("presence",))
        if el.tag.endswith("iq"):
            check(el.get("id") == qid and el.get("type") == "result", "mam: %r" % el)
            return bodies
        for body in el.iter("{jabber:client}body"):
            bodies.append(body.text)


@time_limit(300)
def test_store_unit_tests_on_postgresql(ctx):
    pg = postgres(ctx)
    env = dict(os.environ, STARLING_TEST_PG=pg.conninfo())
    for name in ("test_store_archive", "test_store_usage"):
        path = os.path.join(ctx.build_dir, "tests", name)
        if not os.access(path, os.X_OK):
            skip("%s is not built (make unit)" % path)
        r = subprocess.run([path], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=280)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0 and re.search(r"\d+ passed, 0 failed", out)
              and "on postgresql" not in out, "%s on postgresql:\n%s" % (name, out))


@time_limit(120)
def test_two_nodes_share_one_database(ctx):
    pg = postgres(ctx)
    opts = sql_options(pg, pg.database())
    n1 = ctx.server(modules=MODULES, options=opts)
    n2 = ctx.server(modules=MODULES, options=opts)
    alice_acct, bob_acct = n1.account("alice"), n2.account("bob")
    carol_acct = n1.account("carol")

    # accounts made through either node's starlingctl log in on both
    alice = im_login(n2, alice_acct, resource="desk")
    bob = im_login(n1, bob_acct, resource="phone")
    bob.close()
    check(pg.psql(opts["sql"]["database"],
                  "SELECT count(*) FROM starling_accounts").strip() == "3",
          "the three accounts are rows of starling_accounts")

    # a roster set on node 2 is read on node 1
    rid = roster_set(alice, carol_acct.jid, name="Carol", groups=["Friends"])
    expect_push(alice, carol_acct.jid, name="Carol")
    expect_result(alice, rid)
    alice.close()
    alice = im_login(n1, alice_acct, resource="laptop", roster=False)
    items = roster_get(alice)
    check(items.get(carol_acct.jid, {}).get("name") == "Carol" and
          items[carol_acct.jid]["groups"] == ["Friends"],
          "alice's roster on node 1: %r" % items)

    # bob is offline everywhere: a message sent on node 1 is kept, in the
    # database, and delivered when he logs in on node 2; both archives
    # have it, whichever node is asked
    enable_sm(alice)
    chat(alice, bob_acct.jid, "while-away")
    acked(alice, 1)
    bob = im_login(n2, bob_acct, resource="phone")
    bob.expect("message", attrs={"id": "while-away", "from": alice.jid},
               skip=("presence",))
    got = mam_bodies(bob, alice_acct.jid)
    check(got == ["while-away"], "bob's archive on node 2: %r" % got)
    alice2 = im_login(n2, alice_acct, resource="tablet")
    got = mam_bodies(alice2, bob_acct.jid)
    check(got == ["while-away"], "alice's archive on node 2: %r" % got)


@time_limit(120)
def test_sigkill_keeps_what_was_acknowledged(ctx):
    pg = postgres(ctx)
    opts = sql_options(pg, pg.database())
    n1 = ctx.server(modules=MODULES, options=opts)
    alice_acct, bob_acct = n1.account("alice"), n1.account("bob")
    alice = im_login(n1, alice_acct, resource="desk")
    bob = im_login(n1, bob_acct, resource="phone")
    befriend(alice, bob)
    bob.close()
    enable_sm(alice)
    want = ["m%d" % i for i in range(20)]
    for ident in want:
        chat(alice, bob_acct.jid, ident)
    acked(alice, len(want))
    n1.crash()

    # a node with nothing of its own: everything comes from the database
    n2 = ctx.server(modules=MODULES, options=opts)
    bob = n2.login(bob_acct, resource="phone", ignore_presence=False)
    items = roster_get(bob)
    check(items.get(alice_acct.jid, {}).get("subscription") == "both",
          "bob's roster after the crash: %r" % items)
    bob.presence()
    got = []
    while len(got) < len(want):
        el = bob.expect("message", skip=("presence",))
        got.append(el.get("id"))
    check(got == want, "offline messages after the crash: %r" % got)
    check(mam_bodies(bob, alice_acct.jid) == want, "bob's archive after the crash")


@time_limit(60)
def test_database_not_answering(ctx):
    if not pg_bindir():
        skip("PostgreSQL is not installed (Debian: postgresql)")
    opts = {"sql": {"driver": "PostgreSQL", "database": "starling",
                    "host": "127.0.0.1", "port": free_port()},
            "default_storage": "sql"}
    srv = ctx.server(modules=MODULES, options=opts, start=False)
    try:
        srv.start(timeout=10)
    except ServerError:
        pass
    else:
        check(False, "the server started without its database")
    check(re.search(r"store: cannot connect to postgresql: .*127\.0\.0\.1",
                    srv.log_text()), "the log says why:\n" + srv.log_text())


@time_limit(120)
def test_database_lost_and_back(ctx):
    pg = postgres(ctx)
    opts = sql_options(pg, pg.database())
    n1 = ctx.server(modules=MODULES, options=opts)
    alice_acct, bob_acct = n1.account("alice"), n1.account("bob")
    alice = im_login(n1, alice_acct, resource="desk")
    enable_sm(alice)
    chat(alice, bob_acct.jid, "before")
    acked(alice, 1)

    pg.pause()
    n1.wait_log(r"store: postgresql connection lost")
    # no login while the accounts cannot be read
    c = n1.client()
    e = raises(AuthFailed, c.auth_plain, bob_acct.user, bob_acct.password)
    check(e.condition == "temporary-auth-failure" and
          "try again later" in to_xml(e.element), "login while the database "
          "is away: %s" % to_xml(e.element))
    # bob is offline: the message cannot be kept, and alice is told so
    chat(alice, bob_acct.jid, "while-away")
    el = alice.expect("message", attrs={"id": "while-away"}, skip=("presence",))
    check(el.get("type") == "error", "an unstored message: %r" % el)

    pg.resume()
    n1.wait_log(r"store: postgresql database \S+ on \S+, connected again",
                timeout=40)
    chat(alice, bob_acct.jid, "after")
    acked(alice, 3)
    bob = n1.login(bob_acct, resource="phone")
    bob.presence()
    got = [bob.expect("message", skip=("presence",)).get("id") for _ in range(2)]
    check(got == ["before", "after"], "bob's offline messages: %r" % got)
    bob.roundtrip()


VCARD = ("<iq type='set' id='vc1'><vCard xmlns='vcard-temp'><FN>%s</FN>"
         "</vCard></iq>")
PRIVATE = ("<iq type='%s' id='%s'><query xmlns='jabber:iq:private'>%s</query>"
           "</iq>")


def request(c, xml):
    """Sends an iq (its id is the first id='...' in xml); its result."""
    ident = re.search(r"id='([^']+)'", xml).group(1)
    c.send(xml)
    el = c.expect("iq", attrs={"id": ident}, skip=("presence", "message"))
    check(el.get("type") == "result", "iq %s: %r" % (ident, el))
    return el


def halt(srv):
    """Stops srv (SIGTERM), keeping its directory for starlingctl and a
    restart()."""
    srv.send_signal(signal.SIGTERM)
    check(srv.wait_exit(10) == 0, "%s stopped cleanly" % srv.name)


def check_user_data(srv, alice_acct, bob_acct, note):
    """What alice kept shows on srv: her password (SCRAM), roster, private
    XML, vCard and archive."""
    alice = srv.login(alice_acct, resource="check")
    items = roster_get(alice)
    check(items.get(bob_acct.jid, {}).get("subscription") == "both",
          "alice's roster: %r" % items)
    el = request(alice, PRIVATE % ("get", "p2", "<note xmlns='x:migrate'/>"))
    got = el.findtext(".//{x:migrate}note")
    check(got == note, "alice's private XML: %r" % got)
    el = request(alice, "<iq type='get' id='vc2'><vCard xmlns='vcard-temp'/></iq>")
    check(el.findtext(".//{vcard-temp}FN") == "Alice A.", "alice's vCard")
    check(mam_bodies(alice, bob_acct.jid) == ["kept-1", "kept-2"],
          "alice's archive")
    alice.close()


@time_limit(180)
def test_migrate_lmdb_to_postgresql_and_back(ctx):
    pg = postgres(ctx)
    db = pg.database()
    mods = MODULES + ["private", "vcard"]
    sql = sql_options(pg, db)["sql"]
    # on LMDB, with the database named for starlingctl migrate
    s1 = ctx.server(modules=mods, options={"sql": sql})
    alice_acct, bob_acct = s1.account("alice"), s1.account("bob")
    alice = im_login(s1, alice_acct, resource="desk")
    bob = im_login(s1, bob_acct, resource="phone")
    befriend(alice, bob)
    bob.close()
    request(alice, PRIVATE % ("set", "p1", "<note xmlns='x:migrate'>one</note>"))
    request(alice, VCARD % "Alice A.")
    enable_sm(alice)
    chat(alice, bob_acct.jid, "kept-1")
    chat(alice, bob_acct.jid, "kept-2")
    acked(alice, 2)
    alice.close()
    halt(s1)

    out = s1.ctl("migrate", "--from", "lmdb", "--to", "sql").stdout
    check(re.search(r"accounts: [1-9]\d* records", out) and
          re.search(r"archive: [1-9]\d* records", out), out)
    # a second run finds the database holding data: refused
    r = s1.ctl("migrate", "--from", "lmdb", "--to", "sql", check=False)
    check(r.returncode == 1 and "already holds" in r.stderr, r.stderr)

    # a new node on PostgreSQL alone: everything is there
    s2 = ctx.server(modules=mods, options=sql_options(pg, db))
    check_user_data(s2, alice_acct, bob_acct, "one")
    alice = im_login(s2, alice_acct, resource="desk", roster=False)
    request(alice, PRIVATE % ("set", "p3", "<note xmlns='x:migrate'>two</note>"))
    alice.close()
    s2.stop()

    # and back, into a server's LMDB that already holds its own secret
    s3 = ctx.server(modules=mods, options={"sql": sql})
    halt(s3)
    r = s3.ctl("migrate", "--from", "sql", "--to", "lmdb", check=False)
    check(r.returncode == 1 and "already holds" in r.stderr, r.stderr)
    out = s3.ctl("migrate", "--from", "sql", "--to", "lmdb", "--replace").stdout
    check(re.search(r"removed [1-9]\d* records", out), out)
    s3.restart()
    check_user_data(s3, alice_acct, bob_acct, "two")
    # bob's offline messages came along both ways
    bob = s3.login(bob_acct, resource="phone")
    bob.presence()
    got = [bob.expect("message", skip=("presence",)).get("id") for _ in range(2)]
    check(got == ["kept-1", "kept-2"], "bob's offline messages: %r" % got)


@time_limit(120)
def test_refused_write_loses_its_batch(ctx):
    pg = postgres(ctx)
    db = pg.database()
    opts = sql_options(pg, db)
    n1 = ctx.server(modules=MODULES + ["private"], options=opts)
    alice_acct, bob_acct = n1.account("alice"), n1.account("bob")
    alice = im_login(n1, alice_acct, resource="desk")
    bob = im_login(n1, bob_acct, resource="phone")
    enable_sm(alice)
    chat(alice, bob_acct.jid, "archived")
    acked(alice, 1)

    # the archive's table goes: the next append fails in the database
    pg.psql(db, "DROP TABLE starling_archive")
    chat(alice, bob_acct.jid, "not-archived")
    alice.send("<r xmlns='%s'/>" % SM)
    alice.expect_stream_error("resource-constraint")
    def acks(h):
        return [text for _, way, text in alice.transcript if way == "S:"
                and re.search(r"<a [^>]*h=['\"]%d['\"]" % h, text)]
    check(acks(1) and not acks(2), "acks: %r, %r" % (acks(1), acks(2)))
    check(re.search(r"store: postgresql: batch \d+ rolled back", n1.log_text()),
          "the log says the batch was lost")

    # the next batches are committed as before
    carol = im_login(n1, n1.account("carol"), resource="desk")
    request(carol, PRIVATE % ("set", "c1", "<note xmlns='x:after'>three</note>"))
    el = request(carol, PRIVATE % ("get", "c2", "<note xmlns='x:after'/>"))
    check(el.findtext(".//{x:after}note") == "three", "private XML after the loss")
    bob.roundtrip()


@time_limit(180)
def test_database_stops_under_traffic_loses_no_ack(ctx):
    pg = postgres(ctx)
    opts = sql_options(pg, pg.database())
    n1 = ctx.server(modules=MODULES, options=opts)
    alice_acct, bob_acct = n1.account("alice"), n1.account("bob")
    alice = im_login(n1, alice_acct, resource="desk")
    enable_sm(alice)

    # rounds of 10 messages and an <r/> to offline bob; the database stops
    # (immediate: what was not committed is gone) while they flow
    stopper = threading.Timer(0.3, pg.stop_now)
    stopper.start()
    sent, errors, acked, closed = [], set(), 0, False
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and (not errors or pg.running):
            for _ in range(10):
                ident = "m%d" % len(sent)
                sent.append(ident)
                chat(alice, bob_acct.jid, ident)
            alice.send("<r xmlns='%s'/>" % SM)
            while True:
                el = alice.next_item(timeout=10)
                if el is STREAM_END:
                    raise ConnectionClosed("stream end")
                if el.tag == "{%s}a" % SM:
                    acked = int(el.get("h"))
                    break
                if el.tag.endswith("}message") and el.get("type") == "error":
                    errors.add(el.get("id"))
                elif el.tag.endswith("}error"):     # a stream error
                    raise ConnectionClosed("stream error")
    except (ConnectionClosed, OSError):
        closed = True
    stopper.join()
    check(errors or closed, "the loss went unnoticed: %d sent, %d acked"
          % (len(sent), acked))

    pg.resume()
    n1.wait_log(r"store: postgresql database \S+ on \S+, connected again",
                timeout=40)
    bob = n1.login(bob_acct, resource="phone")
    bob.presence()
    bob.send("<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>")
    got = set()
    while True:
        el = bob.expect(skip=("presence",))
        if el.tag.endswith("}iq"):
            break
        got.add(el.get("id"))
    want = set(sent[:acked]) - errors
    check(want <= got, "acknowledged, not refused and lost: %s (%d sent, %d "
          "acked, %d refused, %d delivered)" % (sorted(want - got)[:10], len(sent),
                                                acked, len(errors), len(got)))


NS_PUBSUB = "http://jabber.org/protocol/pubsub"
PEP_NODE = "urn:xmpp:migrate:0"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


@time_limit(180)
def test_migrate_keeps_rooms_and_pep(ctx):
    pg = postgres(ctx)
    db = pg.database()
    sql = sql_options(pg, db)["sql"]
    mods = muc.MODULES + ["pep"]
    rooms = {muc.SERVICE: ("muc", {})}
    s1 = ctx.server(modules=mods, options={"sql": sql}, components=rooms)
    alice_acct = s1.account("alice")
    a = muc.login(s1, alice_acct)
    room = muc.room_jid("kept")
    muc.create(a, room)
    r = muc.configure(a, room, persistentroom=True, roomname="Kept Room")
    check(r.get("type") == "result", "room configured: %r" % r)
    a.send("<iq type='set' id='pub1'><pubsub xmlns='%s'><publish node='%s'>"
           "<item id='current'><note xmlns='%s'>from lmdb</note></item>"
           "</publish></pubsub></iq>" % (NS_PUBSUB, PEP_NODE, PEP_NODE))
    el = a.expect("iq", attrs={"id": "pub1"}, skip=("presence", "message"))
    check(el.get("type") == "result", "published: %r" % el)
    a.close()
    halt(s1)
    s1.ctl("migrate", "--from", "lmdb", "--to", "sql")

    s2 = ctx.server(modules=mods, options=sql_options(pg, db), components=rooms)
    a = muc.login(s2, alice_acct)
    a.send("<iq type='get' id='d1' to='%s'><query xmlns='%s'/></iq>"
           % (room, DISCO_INFO))
    info = a.expect("iq", attrs={"id": "d1"}, skip=("presence", "message"))
    idents = [i.get("name") for i in info.iter("{%s}identity" % DISCO_INFO)]
    feats = {f.get("var") for f in info.iter("{%s}feature" % DISCO_INFO)}
    check(idents == ["Kept Room"] and "muc_persistent" in feats,
          "the room on PostgreSQL: %r %r" % (idents, feats))
    r = muc.join(a, room, "again")
    check(muc.item(r["self"]).get("affiliation") == "owner",
          "alice still owns the room")
    a.send("<iq type='get' id='pub2' to='%s'><pubsub xmlns='%s'><items node='%s'/>"
           "</pubsub></iq>" % (alice_acct.jid, NS_PUBSUB, PEP_NODE))
    el = a.expect("iq", attrs={"id": "pub2"}, skip=("presence", "message"))
    check(el.findtext(".//{%s}note" % PEP_NODE) == "from lmdb",
          "alice's PEP item on PostgreSQL: %r" % el)


@time_limit(120)
def test_slow_commit_does_not_stop_the_server(ctx):
    pg = postgres(ctx)
    db = pg.database()
    n1 = ctx.server(modules=MODULES + ["private"], options=sql_options(pg, db))
    alice = n1.login(n1.account("alice"), resource="desk")
    pg.psql(db, "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$")
    pg.psql(db, "CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON starling_map "
            "FOR EACH ROW EXECUTE FUNCTION slow()")

    alice.send(PRIVATE % ("set", "p1", "<note xmlns='x:slow'>slow</note>"))
    time.sleep(0.5)             # her write is sent, its commit under way
    # the loop goes on meanwhile: the admin socket answers...
    out = n1.ctl("status").stdout
    check("uptime" in out.lower(), "starlingctl status: %r" % out)
    # ... while alice's answer still waits for her commit
    early = []
    try:
        early.append(alice.next_item(timeout=0.2))
    except ExpectError:
        pass
    check(not early, "alice's answer before her commit: %r" % early)
    el = alice.expect("iq", attrs={"id": "p1"}, timeout=20)
    check(el.get("type") == "result", "alice's write: %r" % el)
