"""A real IRC gateway end to end (issue #19): Debian's biboumi connects to
Starling as an external component (XEP-0114) and to an ngircd on a
loopback port; a slixmpp user joins #test through the gateway while a
plain IRC client (a socket, a few lines of the IRC protocol) sits in the
channel. Messages go both ways, the user leaves; biboumi is killed, the
user's stanzas to it bounce with service-unavailable, biboumi comes back
and the same works again, Starling running all along. A second biboumi
with a wrong password is refused (not-authorized), one for a domain
already served gets conflict, and a bystander keeps chatting.

biboumi learns the IRC server's port from the user's XEP-0050
"configure" command on the IRC server's JID (its documented way: the
per-server "Ports" list, kept in its sqlite database)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import server as server_mod
from agents import Agent
from component import component_port, component_server
from harness import bystanders, check, fixture, skip, time_limit

DOMAIN = "biboumi.localhost"
SECRET = "biboumi-secret"
IRC_HOST = "127.0.0.1"


def need(binary):
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not path:
        skip("%s is not installed (make test-deps)" % binary)
    return path


class Process:
    """A program of the test in its own process group, with a log."""

    def __init__(self, argv, directory, name):
        self.name, self.dir = name, directory
        self.log_path = os.path.join(directory, name + ".log")
        out = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=out, cwd=directory,
                                         start_new_session=True,
                                         preexec_fn=server_mod._die_with_parent)
        finally:
            out.close()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_ngircd(directory, port):
    conf = os.path.join(directory, "ngircd.conf")
    with open(conf, "w") as f:
        f.write("[Global]\n Name = irc.test\n Info = Starling gateway test\n"
                " Listen = %s\n Ports = %d\n PidFile = %s/ngircd.pid\n"
                " MotdPhrase = hello\n"
                "[Limits]\n MaxConnectionsIP = 0\n"
                "[Options]\n Ident = no\n PAM = no\n DNS = no\n" % (IRC_HOST, port, directory))
    return Process([need("ngircd"), "-n", "-f", conf], directory, "ngircd")


def start_biboumi(directory, comp_port, password=SECRET, hostname=DOMAIN, name="biboumi"):
    conf = os.path.join(directory, name + ".cfg")
    with open(conf, "w") as f:
        f.write("hostname=%s\npassword=%s\nxmpp_server_ip=127.0.0.1\nport=%d\n"
                "db_name=%s/biboumi.sqlite\nidentd_port=0\nlog_level=0\n"
                "realname_customization=true\npolicy_directory=%s\n"
                % (hostname, password, comp_port, directory, directory))
    return Process([need("biboumi"), conf], directory, name)


def wait_port(host, port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise AssertionError("%s exited:\n%s" % (proc.name, proc.log()))
        try:
            socket.create_connection((host, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("%s does not listen on %d:\n%s" % (proc.name, port, proc.log()))


class IrcClient:
    """A plain IRC client: NICK/USER, JOIN, PRIVMSG, and the lines read."""

    def __init__(self, port, nick):
        self.nick = nick
        self.sock = socket.create_connection((IRC_HOST, port), 10)
        self.buf = b""
        self.lines = []
        self.send("NICK %s" % nick)
        self.send("USER %s 0 * :Starling test" % nick)
        self.wait(" 001 ")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def wait(self, needle, timeout=20):
        """The first line read from now containing needle (PINGs answered)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" in self.buf:
                raw, self.buf = self.buf.split(b"\r\n", 1)
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if line.startswith("PING"):
                    self.send("PONG" + line[4:])
                if needle in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("IRC %s: no line with %r; last lines: %s"
                                     % (self.nick, needle, self.lines[-15:]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError("IRC %s: connection closed; last lines: %s"
                                     % (self.nick, self.lines[-15:]))
            self.buf += data

    def close(self):
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        self.sock.close()


@fixture
def setup(scope):
    need("ngircd")
    need("biboumi")
    srv = component_server(scope, {DOMAIN: {"component_secret": SECRET,
                                            "name": "IRC"}},
                           modules=["roster", "presence", "message", "iq", "disco"])
    directory = tempfile.mkdtemp(prefix="starling-gateway-")
    irc_port = server_mod.free_port()
    ngircd = start_ngircd(directory, irc_port)
    scope.cleanup(lambda: shutil.rmtree(directory, True))
    scope.cleanup(ngircd.stop)
    wait_port(IRC_HOST, irc_port, ngircd)
    return {"server": srv, "dir": directory, "irc_port": irc_port, "scope": scope}


def connect_biboumi(setup, **kw):
    srv = setup["server"]
    before = srv.log_text().count("component %s connected" % DOMAIN)
    b = start_biboumi(setup["dir"], component_port(srv), **kw)
    setup["scope"].cleanup(b.stop)
    deadline = time.monotonic() + 20
    while srv.log_text().count("component %s connected" % DOMAIN) == before:
        if b.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("biboumi did not connect:\n%s\n%s"
                                 % (b.log(), srv.log_tail(30)))
        time.sleep(0.1)
    return b


def room(port_setup):
    return "#test%%%s@%s" % (IRC_HOST, DOMAIN)


def join_and_talk(agent, irc, nick, round_):
    """The user joins #test, each side's message reaches the other, the
    user leaves."""
    r = room(None)
    agent.raw("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
              % (r, nick))
    # biboumi's self-presence once the IRC JOIN is through
    agent.wait_presence(timeout=40, **{"from": "%s/%s" % (r, nick)})
    irc.wait("JOIN", timeout=20)
    text = "hello from xmpp %d" % round_
    agent.send(r, text, type="groupchat")
    line = irc.wait(text)
    check(line.startswith(":%s!" % nick) and "PRIVMSG #test" in line, line)
    text = "hello from irc %d" % round_
    irc.send("PRIVMSG #test :%s" % text)
    got = agent.wait_message(timeout=20, body=text)
    check(got["from"] == "%s/%s" % (r, irc.nick) and got["type"] == "groupchat", got)
    agent.raw("<presence type='unavailable' to='%s/%s'/>" % (r, nick))
    line = irc.wait(":%s!" % nick, timeout=20)
    check(" PART " in line or " QUIT " in line, line)


@time_limit(240)
def test_irc_through_biboumi_survives_a_gateway_restart(setup):
    srv = setup["server"]
    bib = connect_biboumi(setup)
    irc = IrcClient(setup["irc_port"], "ircuser")
    irc.send("JOIN #test")
    irc.wait("366")                     # end of NAMES: in the channel
    account = srv.account("gw")
    agent = Agent("slixmpp", srv, account, resource="desk", im=True,
                  plugins=["xep_0050"], lifetime=200)
    setup["scope"].cleanup(agent.close)
    agent.ready()
    # the IRC server's port, with biboumi's own ad-hoc command
    ev = agent.adhoc("configure", to="%s@%s" % (IRC_HOST, DOMAIN),
                     fields={"ports": [str(setup["irc_port"])], "tls_ports": []})
    check(ev["ok"] and ev["status"] == "completed", "configure: %r" % ev)

    with bystanders(srv):
        join_and_talk(agent, irc, "xmppuser", 1)

        # the gateway goes away: the user's stanzas bounce
        bib.stop(signal.SIGKILL)
        srv.wait_log("component %s disconnected" % DOMAIN, timeout=10)
        agent.send(room(None), "anyone there?", type="groupchat", id="gone1")
        err = agent.wait("message_error", timeout=20, id="gone1")
        check(err["condition"] == "service-unavailable", err)

        # it comes back, Starling never stopped
        bib = connect_biboumi(setup)
        join_and_talk(agent, irc, "xmppuser", 2)
    irc.close()
    bib.stop()
    wait_disconnected(srv)


def wait_disconnected(srv, timeout=20):
    deadline = time.monotonic() + timeout
    while DOMAIN in srv.ctl("components").stdout.split("not connected:")[0]:
        check(time.monotonic() < deadline, "biboumi is still connected")
        time.sleep(0.2)


@time_limit(120)
def test_wrong_password_and_a_second_gateway_are_refused(setup):
    srv = setup["server"]
    wait_disconnected(srv)
    with bystanders(srv):
        wrong = start_biboumi(setup["dir"], component_port(srv), password="not-it",
                              name="biboumi-wrong")
        setup["scope"].cleanup(wrong.stop)
        srv.wait_log("component %s: wrong secret" % DOMAIN, timeout=20)
        first = connect_biboumi(setup)
        second = start_biboumi(setup["dir"], component_port(srv), name="biboumi-second")
        setup["scope"].cleanup(second.stop)
        srv.wait_log("component %s: already connected" % DOMAIN, timeout=20)
        check(first.proc.poll() is None, "the first gateway is still there")
        out = srv.ctl("components").stdout
        check(out.count(DOMAIN) == 1, out)
