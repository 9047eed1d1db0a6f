"""Moving from Prosody: what Debian's Prosody exports with prosody-migrator
and its xep0227 driver imports into Starling, and the users log in with
their old passwords and find their rosters.

Prosody's side, in a temporary directory: accounts made with prosodyctl
register (internal_hashed: SCRAM-SHA-1 credentials only), a roster with a
pending subscription request, a vCard and private XML written as the
internal file store's .dat files, then prosody-migrator (internal ->
xep0227). Prosody 0.12's migrator writes where its CFG_DATADIR says, so
the test runs a copy of /usr/bin/prosody-migrator pointed at the
temporary directory.

Skipped (with the reason) only when Prosody is not installed; `make
test-deps` installs it.
"""

import os
import pwd
import shutil
import subprocess
import tempfile

from harness import check, fixture, skip
from server import Account
from xmpp import AuthFailed, find_all, text_of

MODULES = ["roster", "presence", "message", "iq", "vcard", "private"]

PROSODY_CFG = """
data_path = "{data}"
pidfile = "{tmp}/prosody.pid"
certificates = "{tmp}/certs"
log = {{ {{ levels = {{ min = "error" }}, to = "console" }} }}
authentication = "internal_hashed"
storage = "internal"
modules_enabled = {{ "roster"; "vcard_legacy"; "private" }}
VirtualHost "localhost"
"""

MIGRATOR_CFG = """
local stores = {{ "accounts"; "roster"; "vcard"; "private" }}
input {{ type = "internal"; path = "{data}"; hosts = {{ ["localhost"] = stores }} }}
output {{ type = "xep0227"; path = "{out}"; hosts = {{ ["localhost"] = stores }} }}
"""

# Prosody's internal store: data/<host>/<store>/<user>.dat, Lua tables.
ROSTER_DAT = """return {
	[false] = { ["version"] = 3; ["pending"] = { ["carol@example.org"] = true; }; };
	["bob@localhost"] = { ["subscription"] = "both"; ["groups"] = { ["Friends"] = true; };
		["name"] = "Bobby"; };
	["dave@example.net"] = { ["subscription"] = "none"; ["ask"] = "subscribe";
		["groups"] = {}; };
};
"""

VCARD_DAT = """return {
	["name"] = "vCard"; ["attr"] = { ["xmlns"] = "vcard-temp"; };
	[1] = { ["name"] = "FN"; ["attr"] = {}; [1] = "Alice Liddell"; };
};
"""

PRIVATE_DAT = """return {
	["exodus:exodus:prefs"] = { ["name"] = "exodus"; ["attr"] = { ["xmlns"] = "exodus:prefs"; };
		[1] = { ["name"] = "defaultnick"; ["attr"] = {}; [1] = "Ally"; }; };
};
"""

USERS = {"alice": "alice-Pw1", "bob": "bob-Pw2"}


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    check(proc.returncode == 0, "%s exited %d:\n%s%s"
          % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


def give_to_prosody(path):
    """As root, prosodyctl and the migrator switch to the prosody user."""
    if os.geteuid() != 0:
        return
    uid, gid = pwd.getpwnam("prosody")[2:4]
    for dirpath, dirs, files in os.walk(path):
        os.chown(dirpath, uid, gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), uid, gid)


def prosody_export(tmp):
    """Prosody data made the way Prosody makes it, exported to XEP-0227:
    the list of files written."""
    data, out = os.path.join(tmp, "pdata"), os.path.join(tmp, "out")
    for d in (data, out, os.path.join(tmp, "certs")):
        os.makedirs(d)
    cfg = os.path.join(tmp, "prosody.cfg.lua")
    with open(cfg, "w") as f:
        f.write(PROSODY_CFG.format(data=data, tmp=tmp))
    give_to_prosody(tmp)
    for user, password in USERS.items():
        run(["prosodyctl", "--config", cfg, "register", user, "localhost", password])
    for store, text in (("roster", ROSTER_DAT), ("vcard", VCARD_DAT),
                        ("private", PRIVATE_DAT)):
        os.makedirs(os.path.join(data, "localhost", store), exist_ok=True)
        with open(os.path.join(data, "localhost", store, "alice.dat"), "w") as f:
            f.write(text)
    mcfg = os.path.join(tmp, "migrator.cfg.lua")
    with open(mcfg, "w") as f:
        f.write(MIGRATOR_CFG.format(data=data, out=out))
    migrator = os.path.join(tmp, "prosody-migrator")
    with open(shutil.which("prosody-migrator")) as f:
        source = f.read()
    check("CFG_DATADIR='/var/lib/prosody';" in source, "unknown prosody-migrator")
    with open(migrator, "w") as f:
        f.write(source.replace("CFG_DATADIR='/var/lib/prosody';", "CFG_DATADIR='%s';" % out))
    os.chmod(migrator, 0o755)
    give_to_prosody(tmp)
    run([migrator, "--config=" + mcfg, "input", "output"])
    files = sorted(os.path.join(out, n) for n in os.listdir(out) if n.endswith(".xml"))
    check([os.path.basename(p) for p in files]
          == ["alice@localhost.xml", "bob@localhost.xml"], files)
    return files


def iq(c, payload, type="get"):
    iq_id = "p%d" % id(payload)
    c.send("<iq type='%s' id='%s'>%s</iq>" % (type, iq_id, payload))
    return c.expect("iq", attrs={"id": iq_id, "type": "result"})


@fixture
def imported(scope):
    """A Starling server holding what Prosody exported."""
    missing = [t for t in ("prosodyctl", "prosody-migrator") if not shutil.which(t)]
    if missing:
        return ("Prosody is not installed (%s missing; apt-get install prosody, "
                "or make test-deps)" % ", ".join(missing))
    tmp = tempfile.mkdtemp(prefix="starling-prosody-")
    scope.cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
    files = prosody_export(tmp)
    with open(files[0]) as f:
        text = f.read()
    check("mechanism='SCRAM-SHA-1'" in text and "SCRAM-SHA-256" not in text, text)
    srv = scope.server(modules=MODULES)
    proc = srv.ctl("import", *files)
    check("imported 2 users on 1 hosts" in proc.stderr, proc.stderr)
    return srv


def server_of(imported):
    if isinstance(imported, str):
        skip(imported)
    return imported


ALICE = Account("alice", USERS["alice"], "localhost")
BOB = Account("bob", USERS["bob"], "localhost")


def test_prosody_users_log_in_with_scram_sha1(imported):
    srv = server_of(imported)
    srv.login(ALICE, mech="SCRAM-SHA-1").close()
    srv.login(BOB, mech="SCRAM-SHA-1").close()


def test_prosody_users_have_no_sha256_credentials(imported):
    """Prosody kept SCRAM-SHA-1 only: SCRAM-SHA-256 fails like a wrong
    password."""
    srv = server_of(imported)
    c = srv.client()
    try:
        c.auth_scram("alice", USERS["alice"], "SCRAM-SHA-256")
        check(False, "SCRAM-SHA-256 worked without SHA-256 credentials")
    except AuthFailed as e:
        check(e.condition == "not-authorized", e.condition)


def test_prosody_users_log_in_with_plain(imported):
    """PLAIN checks the password against whatever credentials the account
    has (core/sasl.c falls back to SHA-1 for accounts without SHA-256)."""
    srv = server_of(imported)
    srv.login(ALICE, mech="PLAIN").close()
    srv.login(BOB, mech="PLAIN").close()


def test_prosody_roster_vcard_private_and_requests_arrive(imported):
    srv = server_of(imported)
    a = srv.login(ALICE, mech="SCRAM-SHA-1")
    el = iq(a, "<query xmlns='jabber:iq:roster'/>")
    items = {i.get("jid"): i for i in find_all(el, "roster:query/roster:item")}
    check(set(items) == {"bob@localhost", "dave@example.net"}, sorted(items))
    check(items["bob@localhost"].get("name") == "Bobby")
    check(items["bob@localhost"].get("subscription") == "both")
    check([g.text for g in find_all(items["bob@localhost"], "roster:group")] == ["Friends"])
    check(items["dave@example.net"].get("ask") == "subscribe")
    el = iq(a, "<vCard xmlns='vcard-temp'/>")
    check(text_of(el, "{vcard-temp}vCard/{vcard-temp}FN") == "Alice Liddell")
    el = iq(a, "<query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query>")
    check(text_of(el, "{jabber:iq:private}query/{exodus:prefs}exodus/"
                      "{exodus:prefs}defaultnick") == "Ally")
    # the request carol made while alice was offline reaches her
    a2 = srv.login(ALICE, mech="SCRAM-SHA-1", ignore_presence=False)
    a2.presence()
    a2.wait_for("presence", attrs={"type": "subscribe", "from": "carol@example.org"})
