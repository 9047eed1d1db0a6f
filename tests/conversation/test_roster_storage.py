"""How rosters are stored (util.roster): one record per item in the map
store "roster" and one for the version, so a roster set writes the item it
changes and the version record, never the whole roster; rosters an older
server kept as one keyval value move into the map when mod_roster loads,
with their versions, and are readable (export) before they move.

What is stored is read the way an operator would: mdb_dump of the data
directory, and `starlingctl export`."""

import signal
import subprocess

from harness import check, fixture
from im import (ROSTER, expect_push, expect_result, roster_get,
                roster_request, roster_set)
from xmpp import find, new_id


def dump(data_dir, db):
    """{key: value} of one db of the environment, as bytes."""
    proc = subprocess.run(["mdb_dump", "-s", db, data_dir],
                          capture_output=True)
    if proc.returncode != 0:
        if b"MDB_NOTFOUND" in proc.stderr:
            return {}                   # the db does not exist (yet)
        raise AssertionError("mdb_dump -s %s failed: %s" % (db, proc.stderr.decode()))
    lines, data = [], False
    for line in proc.stdout.decode("latin-1").split("\n"):
        if line == "HEADER=END":
            data = True
        elif line == "DATA=END":
            data = False
        elif data:
            lines.append(bytes.fromhex(line.strip()))
    return dict(zip(lines[0::2], lines[1::2]))


def roster_records(data_dir, user):
    """{map key: value bytes} of user@localhost's roster map records."""
    prefix = b"localhost\0" + user.encode() + b"\0roster\0"
    return {k[len(prefix):]: v for k, v in dump(data_dir, "map").items()
            if k.startswith(prefix)}


def keyval_roster(data_dir, user):
    return dump(data_dir, "keyval").get(b"localhost\0%s\0roster" % user.encode())


def changed(before, after):
    """The keys whose records were added, changed or removed."""
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))


def fill(c, n, prefix):
    """n roster sets sent at once; every one answered with a result."""
    ids, chunk = [], []
    for i in range(n):
        iq_id = new_id("fill")
        ids.append(iq_id)
        chunk.append("<iq type='set' id='%s'><query xmlns='%s'><item jid='%s%04d@example.net'"
                     " name='Contact %d'><group>Many</group></item></query></iq>"
                     % (iq_id, ROSTER, prefix, i, i))
        if len(chunk) == 100:
            c.send("".join(chunk))
            chunk = []
    c.send("".join(chunk))
    for iq_id in ids:
        expect_result(c, iq_id)


@fixture
def server(scope):
    # filling a roster of 1000 items at once: no cost budget to pace it
    return scope.server(options={"account_cost_rate": 0})


def test_a_set_in_a_roster_of_1000_writes_one_item_and_the_version(server):
    acct = server.account("big")
    c = server.login(acct)
    fill(c, 1000, "many")
    check(len(roster_get(c)) == 1000, "1000 items stored")
    user = acct.user
    before = roster_records(server.data_dir, user)
    check(len(before) == 1001, "one record per item and one for the version: %d"
          % len(before))
    check(keyval_roster(server.data_dir, user) is None, "nothing in the keyval store")

    contact = "many0500@example.net"
    iq_id = roster_set(c, contact, name="Renamed", groups=["Few"])
    expect_push(c, contact, "none", name="Renamed")
    expect_result(c, iq_id)
    after = roster_records(server.data_dir, user)
    check(changed(before, after) == [b"@meta", contact.encode()],
          "a set changes its item and the version record: %r"
          % changed(before, after)[:5])
    check(b"Renamed" in after[contact.encode()], "the item holds the new name")

    # a removal leaves a removal record (for versioning) in place of the item
    el = roster_get(c, ver="", full=True)
    ver = find(el, "roster:query").get("ver")
    gone = "many0007@example.net"
    iq_id = roster_set(c, gone, subscription="remove")
    expect_push(c, gone, "remove")
    expect_result(c, iq_id)
    removed = roster_records(server.data_dir, user)
    check(changed(after, removed) == [b"@meta", gone.encode()],
          "a removal changes its item and the version record: %r"
          % changed(after, removed)[:5])

    # a client that knew the version before the removal gets it as a push
    iq_id = roster_request(c, ver=ver)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
    expect_push(c, gone, "remove")
    items = roster_get(c)
    check(len(items) == 999 and gone not in items
          and items[contact]["name"] == "Renamed", "the roster after both changes")


def test_a_new_item_adds_one_record_and_the_roster_stays_versioned(server):
    acct = server.account("grow")
    c = server.login(acct)
    fill(c, 10, "few")
    el = roster_get(c, ver="", full=True)
    ver = find(el, "roster:query").get("ver")
    before = roster_records(server.data_dir, acct.user)
    iq_id = roster_set(c, "newcomer@example.net", name="New")
    expect_push(c, "newcomer@example.net", "none", name="New")
    expect_result(c, iq_id)
    after = roster_records(server.data_dir, acct.user)
    check(changed(before, after) == [b"@meta", b"newcomer@example.net"],
          "one record added, the version record changed")
    iq_id = roster_request(c, ver=ver)
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
    expect_push(c, "newcomer@example.net", "none", name="New")
    el = roster_get(c, ver="", full=True)
    now = find(el, "roster:query").get("ver")
    iq_id = roster_request(c, ver=now)
    reply = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    check(find(reply, "roster:query") is None, "current version: empty result")


# What an older server kept: the whole roster of "moved" as one keyval
# value, versioned (epoch 0badc0de, version 5; items changed at versions
# 1, 2 and 4, a removal at 5).
SEED = """\
local kv = module:open_store("roster", "keyval")
assert(kv:set("moved", {
    version = 5, epoch = "0badc0de", floor = 1,
    items = {
        ["benvolio@example.com"] = { subscription = "to", groups = {}, ver = 1 },
        ["juliet@example.com"] = { name = "Juliet", subscription = "both",
                                   groups = { "Friends" }, ver = 2 },
        ["nurse@example.com"] = { subscription = "none", ask = "subscribe",
                                  groups = {}, ver = 4 },
    },
    removed = { ["tybalt@example.com"] = 5 },
}))
"""

NOT_ROSTER = ["message", "iq", "disco"]


def test_a_keyval_roster_of_before_moves_to_the_map_with_its_versions(ctx):
    srv = ctx.server(modules=list(NOT_ROSTER), plugins={"rosterseed": SEED})
    acct = srv.register("moved", "pw-moved")
    srv.send_signal(signal.SIGTERM)
    check(srv.wait_exit() == 0, "server did not stop cleanly")
    check(keyval_roster(srv.data_dir, "moved") is not None, "the old roster is there")

    # readable before it moves: starlingctl works on the data directly
    out = srv.ctl("export", "localhost").stdout
    check("juliet@example.com" in out and "Juliet" in out
          and "nurse@example.com" in out and "tybalt" not in out,
          "export reads the keyval roster: %s" % out)

    srv.modules[:0] = ["roster", "presence"]
    srv.plugins.clear()
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text())
    srv.restart()
    srv.wait_log(r"moved 1 rosters to the map store")
    c = srv.login(acct)             # by now the move is committed
    check(keyval_roster(srv.data_dir, "moved") is None, "the keyval roster is gone")
    records = roster_records(srv.data_dir, "moved")
    check(sorted(records) == [b"@meta", b"benvolio@example.com", b"juliet@example.com", b"nurse@example.com",
                              b"tybalt@example.com"],
          "items, the removal and the version in the map: %r" % sorted(records))

    items = roster_get(c)
    check(items == {
        "benvolio@example.com": {"subscription": "to", "ask": None, "approved": None,
                                 "name": None, "groups": []},
        "juliet@example.com": {"subscription": "both", "ask": None, "approved": None,
                               "name": "Juliet", "groups": ["Friends"]},
        "nurse@example.com": {"subscription": "none", "ask": "subscribe",
                              "approved": None, "name": None, "groups": []},
    }, "the roster came over: %r" % items)
    # the versions came over: after 3, the change at 4 and the removal at 5
    iq_id = roster_request(c, ver="0badc0de-3")
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
    expect_push(c, "nurse@example.com", "none", ask="subscribe")
    expect_push(c, "tybalt@example.com", "remove")
    iq_id = roster_request(c, ver="0badc0de-5")
    reply = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    check(find(reply, "roster:query") is None, "version 5 is the current one")

    # and it goes on from there
    iq_id = roster_set(c, "romeo@example.com", name="Romeo")
    expect_push(c, "romeo@example.com", "none", name="Romeo")
    expect_result(c, iq_id)
    el = roster_get(c, full=True)
    check(find(el, "roster:query").get("ver") is None, "no ver asked, none given")
    iq_id = roster_request(c, ver="0badc0de-5")
    c.expect("iq", attrs={"id": iq_id, "type": "result"})
    push = expect_push(c, "romeo@example.com", "none", name="Romeo")
    check(push is not None, "version 6 follows 5")
    out = srv.ctl("export", "localhost").stdout
    check(all(j in out for j in ("juliet@example.com", "nurse@example.com",
                                 "romeo@example.com")), "export after the move")
