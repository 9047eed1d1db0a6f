"""The Debian package (`make deb`, packaging/): built with dpkg-buildpackage,
installed with dpkg on a throw-away copy of this machine's root, started
the way its systemd unit starts it, and a client logs in; `apt-get remove`
keeps the data and the config, purge deletes them.

The copy of the root: an overlay (this machine's / below, a tmpfs above)
in a mount namespace of its own (unshare), entered with nsenter + chroot.
Nothing of it reaches the real root: the namespace and its tmpfs go when
the test ends. The test machine runs no systemd, so the unit is checked
with `systemd-analyze verify` inside the copy, and the server is started
as the unit says: as the user starling, ExecStart's command line, with a
$NOTIFY_SOCKET the test listens on (Type=notify: READY=1 once it listens,
RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 at SIGTERM).

STARLING_TEST_DEB_DIR=DIR takes the package from DIR instead of building
it (for work on this test).

The one change made to the installed config, as an operator would: the
ports and interface (a free port on 127.0.0.1, not 5222 on every address,
which other tests use).
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import server as server_mod
import xmpp
from harness import check, skip, time_limit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = ("dpkg-buildpackage", "dh", "unshare", "nsenter", "setpriv", "systemd-analyze")

INSTALLED = [
    "./usr/bin/starling", "./usr/bin/starlingctl",
    "./usr/share/starling/lua/starling/admin.lua",
    "./usr/share/starling/modules/mod_roster.lua",
    "./lib/systemd/system/starling.service",
    "./etc/starling/starling.cfg.lua", "./etc/logrotate.d/starling",
]


class RootCopy:
    """This machine's root under an overlay, in a mount namespace held open
    by a process of ours (its own process group; close() ends it)."""

    def __init__(self, shared):
        self.top = tempfile.mkdtemp(prefix="starling-deb-root-")
        self.merged = os.path.join(self.top, "m")
        os.makedirs(self.merged)
        script = (
            "set -e; t=%(top)s; mount -t tmpfs tmpfs $t/m; "
            "mkdir -p $t/m/u $t/m/w $t/m/root; "
            "mount -t overlay overlay -o lowerdir=/,upperdir=$t/m/u,workdir=$t/m/w $t/m/root; "
            "r=$t/m/root; mount -t proc proc $r/proc; mount --rbind /dev $r/dev; "
            "mount --rbind /sys $r/sys; mount -t tmpfs tmpfs $r/tmp; "
            "mkdir -p $r/run/test; mount --bind %(shared)s $r/run/test; "
            "echo ready; exec sleep 3600"
        ) % {"top": self.top, "shared": shared}
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                        "sh", "-c", script],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, start_new_session=True)
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise AssertionError("cannot make the copy of the root: %s"
                                 % self.holder.stderr.read())

    def argv(self, *cmd):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--",
                "chroot", self.merged + "/root"] + list(cmd)

    def run(self, *cmd, stdin=None, ok=True, timeout=300):
        p = subprocess.run(self.argv(*cmd), input=stdin, capture_output=True,
                           text=True, timeout=timeout,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if ok and p.returncode != 0:
            raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode,
                                                         p.stdout, p.stderr))
        return p

    def exists(self, path):
        return self.run("test", "-e", path, ok=False).returncode == 0

    def close(self):
        if self.holder.poll() is None:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait()
        shutil.rmtree(self.top, True)


def notifications(sock, want, timeout=30):
    """The datagrams sent to the notify socket until one holds want."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return got
    raise AssertionError("no %s from the server; it said: %r" % (want, got))


def login(port, user, password):
    c = xmpp.Client("127.0.0.1", port, "localhost", name=user)
    c.connect()
    c.open_stream()
    c.starttls()
    c.auth_scram(user, password, "SCRAM-SHA-256")
    c.bind()
    return c


@time_limit(900)
def test_deb_builds_installs_starts_answers_login_remove_keeps_data(ctx):
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        skip("not installed: %s (make test-deps)" % ", ".join(missing))
    tmp = tempfile.mkdtemp(prefix="starling-deb-")
    ctx.cleanup(lambda: shutil.rmtree(tmp, True))
    if os.environ.get("STARLING_TEST_DEB_DIR"):
        # a package make deb built before (while working on this test)
        debs = glob.glob(os.environ["STARLING_TEST_DEB_DIR"] + "/starling_*_*.deb")
    else:
        p = subprocess.run(["make", "-C", ROOT, "deb", "BUILD=%s/b" % tmp],
                           capture_output=True, text=True, timeout=800)
        check(p.returncode == 0, "make deb failed:\n%s%s"
              % (p.stdout[-3000:], p.stderr[-3000:]))
        debs = glob.glob("%s/b/deb/starling_*_*.deb" % tmp)
    check(len(debs) == 1, "make deb made %r" % debs)
    deb = debs[0]

    # what it holds: the programs, Lua, modules, unit, config, logrotate
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    paths = [line.split()[-1] for line in listing.splitlines()]
    for want in INSTALLED:
        check(want in paths, "%s is not in the package:\n%s" % (want, listing))
    conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"],
                               capture_output=True, text=True).stdout.split()
    check("/etc/starling/starling.cfg.lua" in conffiles,
          "the config is not a conffile: %r" % conffiles)
    if shutil.which("lintian"):
        lint = subprocess.run(["lintian", "--no-tag-display-limit", deb],
                              capture_output=True, text=True, timeout=300)
        errors = [l for l in lint.stdout.splitlines() if l.startswith("E:")]
        check(not errors, "lintian errors:\n%s" % "\n".join(errors))

    shared = os.path.join(tmp, "shared")
    os.makedirs(shared)
    shutil.copy(deb, shared)
    os.chmod(shared, 0o777)
    root = RootCopy(shared)
    ctx.cleanup(root.close)
    check(not root.exists("/usr/bin/starling"), "the copy already has /usr/bin/starling")
    root.run("dpkg", "-i", "/run/test/" + os.path.basename(deb))

    # what postinst made: the user, its directories, a first certificate
    root.run("getent", "passwd", "starling")
    owner = root.run("stat", "-c", "%U:%G %a", "/var/lib/starling").stdout.strip()
    check(owner == "starling:starling 750", "/var/lib/starling is %s" % owner)
    key = root.run("stat", "-c", "%U:%G %a", "/etc/starling/certs/localhost.key").stdout.strip()
    check(key == "root:starling 640", "the key is %s" % key)
    verify = root.run("systemd-analyze", "verify", "/lib/systemd/system/starling.service",
                      ok=False)
    check(verify.returncode == 0 and "starling.service" not in verify.stderr,
          "systemd-analyze verify: exit %d\n%s%s" % (verify.returncode, verify.stdout,
                                                    verify.stderr))
    unit = root.run("cat", "/lib/systemd/system/starling.service").stdout
    for line in ("Type=notify", "User=starling", "ProtectSystem=strict",
                 "NoNewPrivileges=true", "ExecReload=/bin/kill -HUP $MAINPID"):
        check(line in unit.splitlines(), "the unit has no %s" % line)
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()

    # the operator's one edit: where to listen
    port, s2s_port = server_mod.free_port(), server_mod.free_port()
    cfg = root.run("cat", "/etc/starling/starling.cfg.lua").stdout
    cfg = cfg.replace('interfaces = { "*" }', 'interfaces = { "127.0.0.1" }')
    cfg = cfg.replace("c2s_ports = { 5222 }", "c2s_ports = { %d }\ns2s_ports = { %d }"
                      % (port, s2s_port))
    cfg = cfg.replace("c2s_direct_tls_ports = { 5223 }", "c2s_direct_tls_ports = { }")
    root.run("sh", "-c", "cat > /etc/starling/starling.cfg.lua", stdin=cfg)
    check(root.run(*(["setpriv", "--reuid=starling", "--regid=starling", "--init-groups",
                      "/usr/bin/starlingctl", "check"])).returncode == 0, "check failed")

    # started as the unit starts it; the test is its service manager
    notify_path = os.path.join(shared, "notify")
    sd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ctx.cleanup(sd.close)
    sd.bind(notify_path)
    os.chmod(notify_path, 0o777)
    root.run("install", "-d", "-o", "starling", "-g", "starling", "/run/starling")
    proc = subprocess.Popen(root.argv("setpriv", "--reuid=starling", "--regid=starling",
                                      "--init-groups", "env",
                                      "NOTIFY_SOCKET=/run/test/notify", *exec_start),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def end():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ctx.cleanup(end)
    notifications(sd, "READY=1")
    pid = int(root.run("cat", "/run/starling/starling.pid").stdout)
    # starlingctl as the server's user (the admin socket admits only it)
    root.run("setpriv", "--reuid=starling", "--regid=starling", "--init-groups",
             "starlingctl", "user", "create", "alice@localhost", "s3cret-pw")
    c = login(port, "alice", "s3cret-pw")
    c.roundtrip()

    # a reload (ExecReload: SIGHUP) tells systemd, and the client stays
    root.run("kill", "-HUP", str(pid))
    said = notifications(sd, "READY=1")
    check(any("RELOADING=1" in m.split("\n") for m in said),
          "no RELOADING=1 before READY=1: %r" % said)
    c.roundtrip()
    c.close()

    root.run("kill", "-TERM", str(pid))
    notifications(sd, "STOPPING=1")
    check(proc.wait(30) == 0, "the server exited with %s:\n%s"
          % (proc.returncode, proc.stdout.read().decode(errors="replace")))
    log = root.run("cat", "/var/log/starling/starling.log").stdout
    check("started" in log, "the log file has no start:\n%s" % log)

    # remove: the program goes, data and config stay; purge: all goes
    root.run("apt-get", "remove", "-y", "starling")
    check(not root.exists("/usr/bin/starling"), "remove left /usr/bin/starling")
    check(root.exists("/var/lib/starling/data.mdb"), "remove deleted the data")
    check(root.exists("/etc/starling/starling.cfg.lua"), "remove deleted the config")
    root.run("dpkg", "--purge", "starling")
    for gone in ("/var/lib/starling", "/etc/starling", "/var/log/starling"):
        check(not root.exists(gone), "purge left %s" % gone)
