"""A Starling server for one test or one test file.

    srv = Server(build_dir, modules=["roster", "presence", "message", "iq"],
                 options={"c2s_timeout": 2}, plugins={"faulty": LUA_SOURCE})
    srv.start()                       # waits until every port accepts
    alice = srv.account("alice")      # registers alice<N> with starlingctl
    c = srv.login(alice, resource="laptop", presence=5)
    ...
    srv.stop()                        # SIGTERM; raises ServerError when the
                                      # exit code is not 0 or the log shows a
                                      # sanitizer report

Each server gets its own temporary directory (config, data, plugins, log)
and free random ports on 127.0.0.1. The self-signed certificate for
"localhost" is made once per run (run.py passes STARLING_TEST_CERT_DIR to
its workers) or once per process otherwise.
"""

import atexit
import ctypes
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import xmpp

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "runtime error:", "WARNING: ThreadSanitizer",
                      "ERROR: ThreadSanitizer")

DEFAULT_MODULES = ["roster", "presence", "message", "iq"]


# Called with every Client a Server makes (the harness closes them after
# the test that made them).
CLIENT_CREATED = []

_counter = itertools.count(1)
_cert_dir = None


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, so a
    killed worker leaves no server behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ServerError(AssertionError):
    """The server failed to start, or stopped badly."""


def make_cert(directory):
    """A self-signed certificate for localhost: (cert_path, key_path)."""
    cert = os.path.join(directory, "localhost.crt")
    key = os.path.join(directory, "localhost.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "30", "-subj", "/CN=localhost", "-sha256",
         "-addext", "subjectAltName=DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.chmod(key, 0o600)
    return cert, key


def certificate():
    """(cert, key) for localhost, made at most once per process."""
    global _cert_dir
    shared = os.environ.get("STARLING_TEST_CERT_DIR")
    if shared and os.path.exists(os.path.join(shared, "localhost.crt")):
        return (os.path.join(shared, "localhost.crt"),
                os.path.join(shared, "localhost.key"))
    if _cert_dir is None:
        _cert_dir = tempfile.mkdtemp(prefix="starling-cert-")
        atexit.register(shutil.rmtree, _cert_dir, True)
        make_cert(_cert_dir)
    return (os.path.join(_cert_dir, "localhost.crt"),
            os.path.join(_cert_dir, "localhost.key"))


def free_port():
    """A port on 127.0.0.1 that is free now, outside the ephemeral range
    (so outgoing connections do not take it before the server binds)."""
    for _ in range(200):
        port = random.randint(10000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerError("no free port found")



def wait_line(log_text, pattern, timeout, failure):
    """The first line of log_text() matching the regex pattern, read again
    until timeout (scaled like every test timeout); then AssertionError
    with failure() as its message."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + xmpp.timeout_value(timeout)
    while True:
        for line in log_text().splitlines():
            if rx.search(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(failure())
        time.sleep(0.05)

def lua_key(key):
    """A table key: a name as it is, anything else as ["..."]."""
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        return key
    return "[%s]" % lua(key)


def lua(value):
    """A Python value as a Lua literal (config writing)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"%s"' % (value.replace("\\", "\\\\").replace('"', '\\"')
                         .replace("\n", "\\n"))
    if isinstance(value, (list, tuple, set)):
        return "{ %s }" % ", ".join(lua(v) for v in value)
    if isinstance(value, dict):
        return "{ %s }" % ", ".join("%s = %s" % (lua_key(k), lua(v))
                                    for k, v in value.items())
    raise TypeError("cannot write %r as Lua" % (value,))


class Account:
    def __init__(self, user, password, host):
        self.user, self.password, self.host = user, password, host

    @property
    def jid(self):
        return "%s@%s" % (self.user, self.host)

    def __repr__(self):
        return "Account(%s)" % self.jid


class Server:
    def __init__(self, build_dir, name=None, modules=None, options=None,
                 host_options=None, plugins=None, hosts=("localhost",),
                 components=None):
        self.build_dir = os.path.abspath(build_dir)
        self.name = name or "server%d" % next(_counter)
        self.modules = list(DEFAULT_MODULES if modules is None else modules)
        self.options = dict(options or {})
        self.host_options = dict(host_options or {})
        self.plugins = dict(plugins or {})
        self.hosts = list(hosts)
        # Component sections: {name: module}, {name: (module, {option:
        # value})} or {name: {"module": "echo", "component_secret":
        # "s3cret", ...}} (without "module": an external component's).
        self.components = dict(components or {})
        self.domain = self.hosts[0]
        self.proc = None
        self.dir = None
        self.exit_code = None
        self.accounts = {}
        # Chosen now, so that a peer's config can name it before start().
        self.s2s_port = free_port()

    # -- paths and config

    @property
    def binary(self):
        return os.path.join(self.build_dir, "starling")

    @property
    def ctl_binary(self):
        return os.path.join(self.build_dir, "starlingctl")

    def _write_plugins(self):
        for name, source in self.plugins.items():
            with open(os.path.join(self.plugin_dir, "mod_%s.lua" % name),
                      "w") as f:
                f.write(source)

    def config_text(self):
        cert, key = certificate()
        opts = {
            "interfaces": ["127.0.0.1"],
            "c2s_ports": [self.port],
            "c2s_direct_tls_ports": [self.tls_port],
            "s2s_ports": [self.s2s_port],
            "data_path": self.data_dir,
            "log": {"level": "debug"},
            "plugin_paths": [self.plugin_dir],
            "modules_enabled": self.modules + [p for p in self.plugins
                                               if p not in self.modules],
            "ssl": {"certificate": cert, "key": key},
            # tests talk to loopback only: a domain no test pinned or served
            # from its own DNS server asks a port where nobody answers
            "dns_resolver": "127.0.0.1@%d" % self.s2s_port,
            "dns_timeout": 3,
        }
        opts.update(self.options)
        if "plugin_paths" in self.options:  # the test's own plugins still load
            opts["plugin_paths"] = list(self.options["plugin_paths"]) + [self.plugin_dir]
        lines = ["-- written by tests/lib/server.py for %s" % self.name]
        lines += ["%s = %s" % (k, lua(v)) for k, v in opts.items()]
        for host in self.hosts:
            lines.append('')
            lines.append('VirtualHost %s' % lua(host))
            for k, v in self.host_options.get(host, {}).items():
                lines.append("    %s = %s" % (k, lua(v)))
        for name, spec in self.components.items():
            if isinstance(spec, str):
                module, conf = spec, {}
            elif isinstance(spec, tuple):
                module, conf = spec[0], dict(spec[1])
            else:
                conf = dict(spec)
                module = conf.pop("module", None)
            lines.append('')
            lines.append('Component %s%s' % (lua(name), " " + lua(module)
                                              if module else ""))
            for k, v in conf.items():
                lines.append("    %s = %s" % (k, lua(v)))
        return "\n".join(lines) + "\n"

    # -- lifecycle

    def start(self, timeout=10):
        for name in (self.binary, self.ctl_binary):
            if not os.access(name, os.X_OK):
                raise ServerError("%s is missing: build first (make)" % name)
        self.dir = tempfile.mkdtemp(prefix="starling-%s-" % self.name)
        self.data_dir = os.path.join(self.dir, "data")
        self.plugin_dir = os.path.join(self.dir, "plugins")
        os.makedirs(self.data_dir)
        os.makedirs(self.plugin_dir)
        self._write_plugins()
        self.log_path = os.path.join(self.dir, "server.log")
        self.config_path = os.path.join(self.dir, "starling.cfg")
        for attempt in range(3):
            self.port, self.tls_port = free_port(), free_port()
            while self.tls_port in (self.port, self.s2s_port):
                self.tls_port = free_port()
            while self.port == self.s2s_port:
                self.port = free_port()
            with open(self.config_path, "w") as f:
                f.write(self.config_text())
            if self._launch(timeout):
                return self
            if "in use" not in self.log_text():
                break
        self.proc = None        # reported here, not again at stop()
        raise ServerError("%s did not start (ports %d, %d; exit code %s):\n%s"
                          % (self.name, self.port, self.tls_port,
                             self.exit_code, self.log_tail(80)))

    def _launch(self, timeout):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.config_path], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.dir,
                preexec_fn=_die_with_parent)
        finally:
            log.close()
        deadline = time.monotonic() + xmpp.timeout_value(timeout)
        waiting = [self.port, self.tls_port]
        if ("s2s_ports" not in self.options
                and "s2s" not in self.options.get("modules_disabled", ())):
            waiting.append(self.s2s_port)
        while waiting and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                return False
            try:
                socket.create_connection((self.ip, waiting[0]), 0.5).close()
                waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        if waiting:
            self.proc.kill()
            self.proc.wait()
            return False
        return True

    @property
    def ip(self):
        """The loopback address clients reach: the first of the
        interfaces option (127.0.0.1 by default; a cluster's node may
        have another, 127.0.0.2, ...)."""
        first = (self.options.get("interfaces") or ["127.0.0.1"])[0]
        return "127.0.0.1" if first in ("*", "0.0.0.0") else first

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, signum):
        self.proc.send_signal(signum)

    def wait_exit(self, timeout=10):
        """Wait for the process to end; returns its exit code (or None)."""
        try:
            self.exit_code = self.proc.wait(xmpp.timeout_value(timeout))
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def crash(self):
        """Kill the server with SIGKILL, as a crash would (no shutdown, no
        last commit), and wait for it. The directory, config and ports stay
        for restart(); stop() afterwards has nothing to check."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.exit_code = self.proc.returncode
        self.proc = None

    def restart(self, timeout=10):
        """Start the server again on the same directory, config and ports
        (after crash() or a stop signal sent with send_signal())."""
        if self.running:
            raise ServerError("%s is still running" % self.name)
        if not self._launch(timeout):
            self.proc = None
            raise ServerError("%s did not restart (exit code %s):\n%s"
                              % (self.name, self.exit_code, self.log_tail(80)))
        return self

    def stop(self, signum=signal.SIGTERM, timeout=10):
        """Stop the server and check how it went; raises ServerError."""
        if self.proc is None:
            return
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            if self.wait_exit(timeout) is None:
                self.proc.kill()
                self.proc.wait()
                problems.append("server did not exit within %ss of %s"
                                % (timeout, signal.Signals(signum).name))
        self.exit_code = self.proc.returncode
        if self.exit_code != 0 and not problems:
            problems.append("server exited with code %s" % self.exit_code)
        problems += self.sanitizer_reports()
        self.proc = None
        if problems:
            raise ServerError("%s: %s\n%s" % (self.name, "; ".join(problems),
                                              self.log_tail(80)))
        shutil.rmtree(self.dir, ignore_errors=True)

    def sanitizer_reports(self):
        text = self.log_text()
        return ["log shows %r" % p for p in SANITIZER_PATTERNS if p in text]

    # -- log

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        head = "--- last %d lines of %s log (%s) ---" % (
            min(lines, len(text)), self.name, getattr(self, "log_path", "?"))
        return "\n".join([head] + text[-lines:])

    def wait_log(self, pattern, timeout=5):
        """The first log line matching the regex, waiting for it."""
        return wait_line(self.log_text, pattern, timeout,
                         lambda: "no line matching /%s/ in the %s log"
                         % (pattern, self.name))

    # -- accounts

    def ctl(self, *args, input=None, check=True, timeout=30):
        """Run starlingctl -c CONFIG ARGS; returns the CompletedProcess."""
        proc = subprocess.run(
            [self.ctl_binary, "-c", self.config_path] + list(args),
            input=input, capture_output=True, text=True,
            timeout=xmpp.timeout_value(timeout))
        for p in SANITIZER_PATTERNS:
            if p in proc.stderr:
                raise ServerError("starlingctl %s: %s\n%s"
                                  % (" ".join(args), p, proc.stderr))
        if check and proc.returncode != 0:
            raise ServerError("starlingctl %s exited %d:\n%s%s"
                              % (" ".join(args), proc.returncode,
                                 proc.stdout, proc.stderr))
        return proc

    def register(self, user, password, host=None):
        self.ctl("register", user, host or self.domain, password)
        account = Account(user, password, host or self.domain)
        self.accounts[account.jid] = account
        return account

    def account(self, prefix="user", password=None, host=None):
        """Register a new account with a unique name starting with prefix."""
        user = "%s%d" % (prefix, next(_counter))
        return self.register(user, password or "pw-%s-%04x" % (
            user, random.getrandbits(16)), host)

    # -- clients

    def client(self, tls="starttls", backend="ssl", version=None, name=None,
               open_stream=True, source=None):
        """A connected client. tls: 'starttls' (stream opened, TLS done),
        'direct' (TLS port), or None (plain, stream opened unless
        open_stream is False). source: the loopback address to connect
        from (default 127.0.0.1)."""
        port = self.tls_port if tls == "direct" else self.port
        c = xmpp.Client(self.ip, port, self.domain, name=name)
        for hook in CLIENT_CREATED:
            hook(c)
        c.connect(tls=(tls == "direct"), backend=backend, version=version,
                  source=source)
        if open_stream or tls:
            c.open_stream()
        if tls == "starttls":
            c.starttls(backend, version)
        return c

    def login(self, account="user", resource=None, mech=None,
              tls="starttls", presence=None, name=None, backend="ssl",
              ignore_presence=True):
        """A client logged in and bound. account: an Account or a name
        prefix for a new one. presence: None (none sent), True (initial
        presence) or a priority. With ignore_presence the client's expect()
        passes over incoming <presence/> (the echo of its own initial
        presence and its contacts'); set client.ignore = () to see them."""
        if not isinstance(account, Account):
            account = self.account(account)
        c = self.client(tls=tls, backend=backend,
                        name=name or (account.user + "/" + (resource or "*")))
        mech = mech or xmpp.DEFAULT_MECH
        if mech == "PLAIN":
            c.auth_plain(account.user, account.password)
        else:
            c.auth_scram(account.user, account.password, mech)
        c.account = account
        c.bind(resource)
        if ignore_presence:
            c.ignore = ("presence",)
        if presence is True:
            c.presence()
        elif presence is not None:
            c.presence(priority=presence)
        if presence is not None:
            # the server has made the session available before the test
            # goes on (another client's stanza could otherwise overtake it)
            c.roundtrip()
        return c
