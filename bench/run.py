#!/usr/bin/env python3
"""bench/run.py - Starling side by side with the XMPP servers Debian ships.

    make bench                          (builds, then runs this)
    python3 bench/run.py [--build build] [--servers starling,prosody]
                         [--scale 0.5] [--only login,chat_open] [--jobs 1]
                         [--no-results] [--keep]

For each server that is there (build/starling; Debian's prosody), it starts
an instance on random 127.0.0.1 ports with its own temporary config and data
directory, creates the same accounts, runs the same load generator scenarios
against it (build/loadgen), stops it, and prints one table with the ratios.
The results, the machine and the exact command line are appended to
bench/HISTORY.md as a dated section.

Every connection goes to 127.0.0.0/8; every run is bounded in time.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import platform
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = 1     # --workers: Starling's worker processes
PASSWORD = "p"
DOMAIN = "localhost"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0, host="127.0.0.1"):
    """True once something accepts on host:port (and proc still runs)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def machine():
    model = "?"
    mem = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "loadavg": "%.2f %.2f %.2f" % os.getloadavg(),
    }


def make_cert(work, domain=DOMAIN):
    crt, key = os.path.join(work, domain + ".crt"), os.path.join(work, domain + ".key")
    # ECDSA P-256, as operators deploy today: an RSA-2048 signature per TLS
    # handshake would be most of a login's server CPU for every server.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "30", "-subj", "/CN=" + domain,
                    "-addext", "subjectAltName=DNS:" + domain,
                    "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return crt, key


def dpkg_version(pkg):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


# --------------------------------------------------------------------------
# servers


class Federation:
    """What a server needs to federate (bench/s2s.py): the loopback address
    it listens on (c2s and s2s), its s2s port, and the peers it talks to,
    {domain: (address, s2s port)}, with the private DNS server that
    publishes them ("127.0.0.1@PORT"; Starling pins them instead)."""

    def __init__(self, address, s2s_port, peers, resolver):
        self.address = address
        self.s2s_port = s2s_port
        self.peers = peers
        self.resolver = resolver


class Server:
    """One server instance on its own ports, config and data directory;
    with fed (a Federation) it serves `domain` on fed.address and speaks
    server to server, else `localhost` on 127.0.0.1 without s2s."""

    name = "?"
    mech = "SCRAM-SHA-256"
    per_user_salt = True  # the load generator then needs a warm-up pass
    user = None  # the user the server runs as, when not this one

    def __init__(self, work, cert, domain=DOMAIN, fed=None):
        self.domain = domain
        self.fed = fed
        self.host = fed.address if fed else "127.0.0.1"
        self.dir = os.path.join(work, self.name if domain == DOMAIN
                                else "%s-%s" % (self.name, domain))
        os.makedirs(self.dir, exist_ok=True)
        self.cert = cert
        self.port = free_port(self.host)
        self.tls_port = free_port(self.host)
        self.proc = None
        self.logf = None
        self.version = "?"
        self.crashes = []

    def _chown(self):
        """Gives the instance directory to the user the server runs as."""
        if not self.user or os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            return
        for base, dirs, files in os.walk(self.dir):
            os.chown(base, pw.pw_uid, pw.pw_gid)
            for n in files:
                os.chown(os.path.join(base, n), pw.pw_uid, pw.pw_gid)

    @property
    def pid(self):
        return self.proc.pid if self.proc else 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    env = None  # extra environment for the server's processes

    def launch(self, argv, user=None):
        self.logf = open(os.path.join(self.dir, "server.log"), "ab")
        kwargs = {"env": dict(os.environ, **self.env)} if self.env else {}
        if user:
            kwargs["user"] = user
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, **kwargs)
        if not wait_port(self.port, self.proc, host=self.host) or (
                self.fed and not wait_port(self.fed.s2s_port, self.proc, host=self.host)):
            tail = self.log_tail()
            self.stop()
            raise RuntimeError("%s did not start: %s" % (self.name, tail))

    def log_tail(self, n=8):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None


class Starling(Server):
    name = "starling"
    env = {"STARLING_HOME": ROOT}  # lua/ and modules/ of this tree
    modules = None      # a module list instead of the minimal set

    def __init__(self, work, cert, build, **kw):
        super().__init__(work, cert, **kw)
        self.bin = os.path.join(ROOT, build, "starling")
        self.ctl = os.path.join(ROOT, build, "starlingctl")
        self.cfg = os.path.join(self.dir, "starling.cfg")
        self.version = "git " + (self.git_rev() or "?")
        self.write_config()

    @staticmethod
    def available(build):
        return all(os.access(os.path.join(ROOT, build, b), os.X_OK)
                   for b in ("starling", "starlingctl"))

    @staticmethod
    def git_rev():
        try:
            out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=10)
            return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None

    def write_config(self, mam=False):
        crt, key = self.cert
        modules = '"roster", "presence", "message", "iq", "disco", "ping"'
        extra = ""
        if self.modules is not None:
            modules = ", ".join('"%s"' % m for m in self.modules)
            extra = "storage_max_size = 8589934592\n"
        if mam:
            modules += ', "smacks", "mam"'
            # the archive's by-contact index job runs through the measured
            # window (passes a second or two apart), not after it; a 20 s
            # run archives over 1 GiB (the default storage_max_size)
            extra = "archive_index_delay = 0\nstorage_max_size = 8589934592\n"
        if self.fed:
            # the peers pinned to their addresses: no DNS on this side
            pins = ", ".join('["%s"] = "%s:%d"' % (d, addr, port)
                             for d, (addr, port) in sorted(self.fed.peers.items()))
            extra += ("s2s_ports = {{ {} }}\ns2s_static_hosts = {{ {} }}\n"
                      "dns_resolver = \"{}\"\n").format(
                          self.fed.s2s_port, pins, self.fed.resolver)
        else:
            extra += "modules_disabled = { \"s2s\" }\n"
        if WORKERS > 1:
            extra += "workers = %d\n" % WORKERS
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        with open(self.cfg, "w") as f:
            f.write(f"""-- written by bench/run.py
interfaces = {{ "{self.host}" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{ {self.tls_port} }}
data_path = "{self.dir}/data"
log = {{ level = "warn" }}
c2s_require_encryption = false
modules_enabled = {{ {modules} }}
ssl = {{ certificate = "{crt}", key = "{key}" }}
{extra}VirtualHost "{self.domain}"
""")

    def has_register_many(self):
        out = subprocess.run([self.ctl, "--help"], capture_output=True, text=True,
                             timeout=30, env=self.ctl_env())
        return "register-many" in (out.stdout + out.stderr)

    def create_accounts(self, prefix, first, last):
        """Accounts prefix<first>..prefix<last>, created while the server is down."""
        if self.has_register_many():
            subprocess.run([self.ctl, "-c", self.cfg, "register-many", prefix,
                            str(first), str(last), PASSWORD, self.domain],
                           check=True, timeout=3600, env=self.ctl_env())
            return "starlingctl register-many"
        procs = []
        width = max(2, 2 * (os.cpu_count() or 1))
        for i in range(first, last + 1):
            procs.append(subprocess.Popen(
                [self.ctl, "-c", self.cfg, "register", f"{prefix}{i}", self.domain, PASSWORD],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.ctl_env()))
            if len(procs) >= width:
                self._reap(procs.pop(0))
        for p in procs:
            self._reap(p)
        return "starlingctl register, one process per account"

    def ctl_env(self):
        return dict(os.environ, **self.env)

    @staticmethod
    def _reap(p):
        _, err = p.communicate(timeout=120)
        if p.returncode != 0:
            raise RuntimeError("starlingctl register failed: " + err.decode(errors="replace"))

    def start(self):
        self.launch([self.bin, "-c", self.cfg])


class Prosody(Server):
    name = "prosody"
    user = "prosody"
    per_user_salt = False

    def __init__(self, work, cert, **kw):
        super().__init__(work, cert, **kw)
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.data = os.path.join(self.dir, "data")
        self.version = "prosody " + (dpkg_version("prosody") or "?")
        self.write_config()

    @staticmethod
    def available(build):
        return shutil.which("prosody") is not None and dpkg_version("prosody") is not None

    # Prosody's side of Starling's example.cfg modules (bench/perf25.py's
    # full set): the same features, by Prosody's module names
    FULL = ["smacks", "mam", "carbons", "csi_simple", "offline", "blocklist",
            "cloud_notify", "pep", "bookmarks", "vcard_legacy", "private",
            "version", "time", "uptime", "lastactivity", "register", "adhoc",
            "admin_adhoc"]
    full = False

    def write_config(self, mam=False):
        modules = '"roster", "saslauth", "tls", "disco", "ping"'
        if mam:
            modules += ', "smacks", "mam"'
        if self.full:
            modules += "".join(', "%s"' % m for m in self.FULL)
        # its own copy of the certificate: it runs as the prosody user
        crt, key = (os.path.join(self.dir, os.path.basename(f)) for f in self.cert)
        for src, dst in zip(self.cert, (crt, key)):
            shutil.copyfile(src, dst)
        os.chmod(key, 0o600)
        for sub in ("accounts", "roster"):
            os.makedirs(os.path.join(self.data, self.store_dir(), sub), exist_ok=True)
        if self.fed:
            # dialback over STARTTLS with self-signed certificates; names
            # from the private DNS server only (luaunbound's options)
            s2s = f"""s2s_ports = {{ {self.fed.s2s_port} }}
s2s_require_encryption = true
s2s_secure_auth = false
-- TCP_NODELAY on its sockets: with Nagle's algorithm the one s2s stream
-- waits for delayed ACKs (about 40 ms a round) and the run measures that
network_settings = {{ tcp_backlog = 1024, nagle = false }}
unbound = {{ resolvconf = false; hoststxt = false; forward = "{self.fed.resolver}" }}
"""
            modules += ', "dialback"'
            disabled = '"offline"'
        else:
            s2s = "s2s_ports = { }\n"
            disabled = '"s2s"' if self.full else '"s2s", "offline"'
        storage = 'storage = "internal"'
        if self.full and dpkg_version("lua-dbi-sqlite3"):
            # the archive on SQLite, as Prosody's documentation advises for
            # MAM beyond a small server (its file store rewrites lists)
            storage = ('storage = { archive = "sql" }\n'
                       'sql = { driver = "SQLite3", database = "prosody.sqlite" }')
        with open(self.cfg, "w") as f:
            f.write(f"""-- written by bench/run.py
pidfile = "{self.dir}/prosody.pid"
data_path = "{self.data}"
interfaces = {{ "{self.host}" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{ {self.tls_port} }}
{s2s}network_backend = "epoll"
{"" if self.fed else "network_settings = { tcp_backlog = 1024 } "}-- Starling listens with 1024 too
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
password_hash = "SHA-256"
{storage}
modules_enabled = {{ {modules} }}
modules_disabled = {{ {disabled} }}
default_archive_policy = true
log = {{ warn = "{self.dir}/prosody.log" }}
certificates = "{self.dir}/certs"
ssl = {{ certificate = "{crt}", key = "{key}" }}
VirtualHost "{self.domain}"
ssl = {{ certificate = "{crt}", key = "{key}" }}
""")
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        self._chown()

    def create_accounts(self, prefix, first, last):
        """Writes Prosody's internal_hashed account files (what prosodyctl
        register writes), with one salt for all so the load generator's
        SaltedPassword cache holds; the server's per-login work is the same."""
        salt = "starling-bench-salt"
        iters = 10000
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), iters)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).hexdigest()
        server = hmac.new(salted, b"Server Key", "sha256").hexdigest()
        body = ('return {\n\t["iteration_count"] = %d;\n\t["stored_key"] = "%s";\n'
                '\t["server_key"] = "%s";\n\t["salt"] = "%s";\n};\n'
                % (iters, stored, server, salt))
        d = os.path.join(self.data, self.store_dir(), "accounts")
        for i in range(first, last + 1):
            with open(os.path.join(d, f"{prefix}{i}.dat"), "w") as f:
                f.write(body)
        self._chown()
        return "account files written directly (prosodyctl register format)"

    def store_dir(self):
        """The host's directory under data_path: Prosody writes every
        character but letters and digits as %xx (a.example: a%2eexample)."""
        return "".join(c if c.isalnum() else "%%%02x" % ord(c) for c in self.domain)

    def start(self):
        user = self.user if os.geteuid() == 0 else None
        self.launch(["prosody", "--config", self.cfg], user=user)


class Ejabberd(Server):
    """Debian's ejabberd, run as its own user straight from erl (no
    distribution, no ejabberdctl): accounts go through mod_http_api on a
    loopback-only HTTP listener."""

    name = "ejabberd"
    user = "ejabberd"

    def __init__(self, work, cert, **kw):
        super().__init__(work, cert, **kw)
        self.api_port = free_port()
        self.cfg = os.path.join(self.dir, "ejabberd.yml")
        self.version = "ejabberd " + (dpkg_version("ejabberd") or "?")
        self.write_config()

    @staticmethod
    def available(build):
        return shutil.which("erl") is not None and dpkg_version("ejabberd") is not None

    # ejabberd's side of Starling's example.cfg modules (bench/perf25.py's
    # full set), by ejabberd's module names
    FULL = """  mod_mam:
    default: always
  mod_stream_mgmt: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_offline: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_push: {}
  mod_caps: {}
  mod_pubsub:
    plugins:
      - flat
      - pep
  mod_private: {}
  mod_vcard: {}
  mod_version: {}
  mod_time: {}
  mod_last: {}
  mod_adhoc: {}
"""
    full = False

    def write_config(self, mam=False):
        extra = ("  mod_mam:\n    default: always\n  mod_stream_mgmt: {}\n" if mam
                 else "")
        if self.full:
            extra = self.FULL
        pem = os.path.join(self.dir, self.domain + ".pem")
        with open(pem, "w") as out:
            for f in self.cert:
                with open(f) as src:
                    out.write(src.read())
        os.chmod(pem, 0o600)
        for sub in ("db", "logs"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        c2s = f"""    ip: "{self.host}"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 1024
"""
        s2s = s2s_global = ""
        if self.fed:
            s2s_global = """s2s_use_starttls: required
s2s_access: all
outgoing_s2s_families:
  - ipv4
s2s_dns_timeout: 5
"""
            # dialback over STARTTLS with self-signed certificates
            s2s = f"""  -
    port: {self.fed.s2s_port}
    ip: "{self.host}"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
    shaper: none
"""
            extra += "  mod_s2s_dialback: {}\n"
        with open(self.cfg, "w") as f:
            f.write(f"""# written by bench/run.py
hosts:
  - {self.domain}
loglevel: warning
log_rotate_count: 0
certfiles:
  - "{pem}"
listen:
  -
    port: {self.port}
{c2s}    starttls: true
  -
    port: {self.tls_port}
{c2s}    tls: true
  -
    port: {self.api_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /api: mod_http_api
{s2s}{s2s_global}auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: all
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
api_permissions:
  "bench accounts":
    from:
      - mod_http_api
    who:
      access:
        allow:
          - acl: loopback
    what:
      - register
modules:
  mod_roster: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_http_api: {{}}
{extra}""")
        self._chown()

    def start(self):
        env = {
            "EJABBERD_CONFIG_PATH": self.cfg,
            "EJABBERD_LOG_PATH": os.path.join(self.dir, "logs", "ejabberd.log"),
            "ERL_CRASH_DUMP": os.path.join(self.dir, "logs", "erl_crash.dump"),
            "ERL_LIBS": self.erl_libs(),
            "ERL_MAX_PORTS": "65536",
            "ERL_MAX_ETS_TABLES": "1400",
            "HOME": self.dir,
        }
        if self.fed:
            # Erlang's resolver (inet_res) asks the private DNS server only
            env["ERL_INETRC"] = self.inetrc()
        self.env = env
        user = self.user if os.geteuid() == 0 else None
        self.launch(["erl", "-noinput", "+K", "true", "+P", "1000000",
                     "-mnesia", "dir", '"%s"' % os.path.join(self.dir, "db"),
                     "-s", "ejabberd"], user=user)
        # the c2s port opens before the HTTP one: wait for both
        if not wait_port(self.api_port, self.proc):
            raise RuntimeError("ejabberd: no HTTP API: " + self.log_tail())

    def inetrc(self):
        addr, port = self.fed.resolver.split("@")
        path = os.path.join(self.dir, "inetrc")
        with open(path, "w") as f:
            # resolv_conf first: read after the nameserver, it drops it
            f.write("{resolv_conf, \"\"}.\n{hosts_file, \"\"}.\n"
                    "{nameserver, {%s}, %s}.\n{lookup, [dns]}.\n"
                    % (addr.replace(".", ","), port))
        os.chmod(path, 0o644)
        return path

    @staticmethod
    def erl_libs():
        """Where Debian's ejabberd keeps its Erlang applications (what
        ejabberdctl sets), e.g. /usr/lib/x86_64-linux-gnu."""
        try:
            with open(shutil.which("ejabberdctl") or "/usr/sbin/ejabberdctl") as f:
                for line in f:
                    if line.startswith("ERL_LIBS="):
                        return line.split("=", 1)[1].strip().strip("'\"")
        except OSError:
            pass
        return "/usr/lib/x86_64-linux-gnu"

    def create_accounts(self, prefix, first, last):
        """POST /api/register for each account (one keep-alive connection);
        the server must be running, so it is started here when it is not."""
        import http.client
        if not self.alive():
            self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=60)
        for i in range(first, last + 1):
            body = json.dumps({"user": f"{prefix}{i}", "host": self.domain,
                               "password": PASSWORD})
            conn.request("POST", "/api/register", body,
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            text = r.read().decode(errors="replace")
            if r.status != 200 and "already registered" not in text:
                conn.close()
                raise RuntimeError("ejabberd register %s%d: %d %s"
                                   % (prefix, i, r.status, text[:200]))
        conn.close()
        return "mod_http_api register, one request per account"

    def log_tail(self, n=8):
        tail = super().log_tail(n)
        try:
            with open(os.path.join(self.dir, "logs", "ejabberd.log"),
                      errors="replace") as f:
                tail += " | " + " | ".join(f.read().splitlines()[-n:])
        except OSError:
            pass
        return tail


SERVER_CLASSES = {"starling": Starling, "prosody": Prosody, "ejabberd": Ejabberd}


# --------------------------------------------------------------------------
# scenarios


def scenario_list(a):
    """(key, loadgen scenario, options, fresh) in the order they run; fresh
    scenarios get a newly started server (memory is measured from its start)."""
    s = a.scale

    def n(x):
        return str(max(2, int(x * s)))

    common = ["--duration", str(a.duration)]
    return [
        ("login", "login", ["--users", n(2000), "--count", n(2000), "--concurrency", "200"],
         False),
        ("login_tls", "login", ["--users", n(1000), "--count", n(1000),
                                "--concurrency", "100", "--tls", "starttls"], False),
        ("chat_open", "chat", ["--users", n(1000), "--window", "8"] + common, False),
        ("chat_rate", "chat", ["--users", n(1000), "--rate", str(a.chat_rate)] + common,
         False),
        # the latency target: p99 at half the rate this server
        # reached in chat_open (HALF_OPEN is filled in when it is known)
        ("chat_half", "chat", ["--users", n(1000), "--rate", "HALF_OPEN"]
         + common, False),
        # chat_open again on a server restarted for it: the plain side of
        # the chat_mam ratio, with the same history (none) as chat_mam
        ("chat_fresh", "chat", ["--users", n(1000), "--window", "8"] + common, True),
        # issue #7: the chat_open run with stream management (the generator
        # enables it and answers every <r/>) and the archive (every message
        # kept for sender and recipient); on a server restarted for it
        ("chat_mam", "chat", ["--users", n(1000), "--window", "8", "--smacks"] + common,
         "mam"),
        # issue #25's idle memory, 10,000 connections on a server started
        # for each: plain read 5 s after the last login (a quiet stream
        # gives its parser back after c2s_parser_release_after, 2 s), TLS
        # (STARTTLS and direct TLS, XEP-0368) after --idle-settle
        ("idle_plain", "idle", ["--users", n(10000), "--settle", "5"], True),
        ("idle_tls", "idle", ["--users", n(10000), "--settle", str(a.idle_settle),
                              "--tls", "starttls"], True),
        ("idle_direct", "idle", ["--users", n(10000), "--settle", str(a.idle_settle),
                                 "--tls", "direct"], True),
        ("rosters", "rosters", ["--users", n(1000), "--user-prefix", "r",
                                "--contacts", str(a.contacts), "--duration", "120"], False),
        ("presence", "presence", ["--users", n(1000), "--user-prefix", "r",
                                  "--contacts", str(a.contacts), "--changes", "10",
                                  "--duration", str(max(a.duration, 30))], False),
    ]


def run_loadgen(a, server, scenario, opts, jobs=None, second=None):
    """One loadgen run against server (and the second server, whose
    accounts are the upper half of --users: bench/s2s.py)."""
    direct = "--tls" in opts and opts[opts.index("--tls") + 1] == "direct"
    port = server.tls_port if direct else server.port
    argv = [a.loadgen, scenario, "--host", server.host, "--port", str(port),
            "--domain", server.domain,
            "--password", PASSWORD, "--mech", server.mech, "--server-pid",
            str(server.pid), "-j", str(jobs or a.jobs), "--json", "--quiet",
            "--scram-cache", os.path.join(server.dir, "scram-keys")] + opts
    if second:
        argv += ["--host2", second.host, "--port2", str(second.port),
                     "--domain2", second.domain, "--server-pid2", str(second.pid)]
    log("  $ loadgen %s %s" % (scenario, " ".join(opts)))
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": "loadgen timed out after %d s" % a.timeout}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": "loadgen exit %d: %s" % (out.returncode, out.stderr.strip()[-300:])}
    return json.loads(lines[-1])


def bench_server(a, server, scenarios):
    results = {}
    need = {}
    for _key, _scenario, opts, _fresh in scenarios:
        prefix = opts[opts.index("--user-prefix") + 1] if "--user-prefix" in opts else "u"
        users = int(opts[opts.index("--users") + 1])
        need[prefix] = max(need.get(prefix, 0), users)
    t = time.monotonic()
    how = None
    for prefix, count in sorted(need.items()):
        how = server.create_accounts(prefix, 1, count)
    log("  accounts: %s in %.1f s (%s)" % (
        ", ".join("%s1..%s%d" % (p, p, c) for p, c in sorted(need.items())),
        time.monotonic() - t, how))
    if not server.alive():
        server.start()
    log("  started %s (pid %d) on ports %d/%d" % (server.name, server.pid, server.port,
                                                   server.tls_port))
    try:
        if server.per_user_salt:
            # every account has its own salt: derive the SCRAM keys of all of
            # them once, unmeasured, so the measured runs do no PBKDF2
            t = time.monotonic()
            for prefix, count in sorted(need.items()):
                r = run_loadgen(a, server, "login", [
                    "--users", str(count), "--user-prefix", prefix, "--no-session",
                    "--concurrency", "100"], jobs=os.cpu_count() or 1)
                if "error" in r or r.get("login_failed"):
                    log("  warm-up %s: %s" % (prefix, summary("login", r)))
            log("  warm-up (SCRAM keys of every account) took %.1f s"
                % (time.monotonic() - t))
        for key, scenario, opts, fresh in scenarios:
            if fresh or not server.alive():
                if not server.alive():
                    server.crashes.append("%s had died before %s: %s" % (
                        server.name, key, server.log_tail()))
                server.stop()
                server.write_config(mam=fresh == "mam")
                try:
                    server.start()
                except RuntimeError as e:
                    results[key] = {"error": str(e)}
                    continue
                log("  restarted %s (pid %d) for %s" % (server.name, server.pid, key))
                time.sleep(2)
            if "HALF_OPEN" in opts:
                top = results.get("chat_open", {}).get("delivered_per_s")
                if not top:
                    results[key] = {"error": "no chat_open maximum to halve"}
                    continue
                opts = [str(int(top / 2)) if o == "HALF_OPEN" else o for o in opts]
            r = run_loadgen(a, server, scenario, opts)
            plain = results.get("chat_fresh", {})
            if key == "chat_mam" and "error" not in r and plain.get("delivered_per_s"):
                # what the archive and stream management leave of plain chat
                r["vs_plain_msgs_per_s"] = r["delivered_per_s"] / plain["delivered_per_s"]
                if plain.get("delivered_per_server_cpu_s"):
                    r["vs_plain_per_server_cpu_s"] = (
                        r["delivered_per_server_cpu_s"] / plain["delivered_per_server_cpu_s"])
            results[key] = r
            log("    %s: %s" % (key, summary(key, r)))
            time.sleep(1)
    finally:
        server.stop()
    return results


# --------------------------------------------------------------------------
# the table


# (label, scenario key, field, format, higher is better)
ROWS = [
    ("logins/s", "login", "logins_per_s", "%.0f", True),
    ("login latency p50 ms", "login", "login_latency_p50_ms", "%.1f", False),
    ("login latency p99 ms", "login", "login_latency_p99_ms", "%.1f", False),
    ("logins per server CPU-s", "login", "logins_per_server_cpu_s", "%.0f", True),
    ("STARTTLS logins/s", "login_tls", "logins_per_s", "%.0f", True),
    ("STARTTLS login p99 ms", "login_tls", "login_latency_p99_ms", "%.1f", False),
    ("STARTTLS logins per server CPU-s", "login_tls", "logins_per_server_cpu_s", "%.0f", True),
    ("STARTTLS negotiated", "login_tls", "tls_negotiated", "%s", True),
    ("chat open loop: delivered msgs/s", "chat_open", "delivered_per_s", "%.0f", True),
    ("chat open loop: latency p50 ms", "chat_open", "latency_p50_ms", "%.2f", False),
    ("chat open loop: latency p99 ms", "chat_open", "latency_p99_ms", "%.2f", False),
    ("chat open loop: latency p99.9 ms", "chat_open", "latency_p999_ms", "%.2f", False),
    ("chat open loop: msgs per server CPU-s", "chat_open", "delivered_per_server_cpu_s", "%.0f", True),
    ("chat open loop: lost", "chat_open", "lost", "%.0f", False),
    ("chat fixed rate: delivered msgs/s", "chat_rate", "delivered_per_s", "%.0f", True),
    ("chat fixed rate: latency p50 ms", "chat_rate", "latency_p50_ms", "%.2f", False),
    ("chat fixed rate: latency p99 ms", "chat_rate", "latency_p99_ms", "%.2f", False),
    ("chat fixed rate: latency p99.9 ms", "chat_rate", "latency_p999_ms", "%.2f", False),
    ("chat fixed rate: server CPU (cores)", "chat_rate", "server_cpu_util", "%.2f", False),
    ("chat fixed rate: lost", "chat_rate", "lost", "%.0f", False),
    ("chat at half its max: msgs/s", "chat_half", "delivered_per_s", "%.0f", True),
    ("chat at half its max: latency p50 ms", "chat_half", "latency_p50_ms", "%.2f", False),
    ("chat at half its max: latency p99 ms", "chat_half", "latency_p99_ms", "%.2f", False),
    ("chat at half its max: latency p99.9 ms", "chat_half", "latency_p999_ms", "%.2f", False),
    ("chat at half its max: lost", "chat_half", "lost", "%.0f", False),
    ("chat open loop, restarted server: msgs/s", "chat_fresh", "delivered_per_s", "%.0f",
     True),
    ("chat open loop, restarted server: per server CPU-s", "chat_fresh",
     "delivered_per_server_cpu_s", "%.0f", True),
    ("chat smacks+mam: delivered msgs/s", "chat_mam", "delivered_per_s", "%.0f", True),
    ("chat smacks+mam: msgs per server CPU-s", "chat_mam", "delivered_per_server_cpu_s",
     "%.0f", True),
    ("chat smacks+mam: latency p99 ms", "chat_mam", "latency_p99_ms", "%.2f", False),
    ("chat smacks+mam: lost", "chat_mam", "lost", "%.0f", False),
    ("chat smacks+mam / restarted open loop: msgs/s", "chat_mam", "vs_plain_msgs_per_s",
     "%.2f", True),
    ("chat smacks+mam / restarted open loop: per server CPU-s", "chat_mam",
     "vs_plain_per_server_cpu_s", "%.2f", True),
    ("idle plain: connections held", "idle_plain", "online", "%.0f", True),
    ("idle plain, 5 s after the last login: server bytes/conn", "idle_plain",
     "bytes_per_conn", "%.0f", False),
    ("idle STARTTLS: connections held", "idle_tls", "online", "%.0f", True),
    ("idle STARTTLS: server bytes/conn", "idle_tls", "bytes_per_conn", "%.0f", False),
    ("idle direct TLS: connections held", "idle_direct", "online", "%.0f", True),
    ("idle direct TLS: server bytes/conn", "idle_direct", "bytes_per_conn", "%.0f", False),
    ("rosters: subscriptions done", "rosters", "subscribed_received", "%.0f", True),
    ("presence: delivered/s", "presence", "delivered_per_s", "%.0f", True),
    ("presence: latency p99 ms", "presence", "latency_p99_ms", "%.1f", False),
    ("presence: per server CPU-s", "presence", "delivered_per_server_cpu_s", "%.0f", True),
    ("presence: received/expected", "presence", None, None, True),
]


def cell(results, key, field, fmt):
    r = results.get(key)
    if r is None:
        return None, "-"
    if "error" in r:
        return None, "failed"
    if field is None:  # presence received/expected
        return None, "%d/%d" % (r.get("presence_received", 0), r.get("presence_expected", 0))
    v = r.get(field)
    if v is None:
        return None, "n/a"
    if isinstance(v, str):  # no ratio for text
        return None, v
    return v, fmt % v


def summary(key, r):
    if "error" in r:
        return "FAILED " + r["error"]
    parts = []
    for label, k, field, fmt, _ in ROWS:
        if k == key and field:
            v = r.get(field)
            if v is not None:
                parts.append("%s=%s" % (field, fmt % v))
    if r.get("first_error"):
        parts.append("first_error=" + r["first_error"])
    return " ".join(parts[:6] + parts[-1:] if r.get("first_error") else parts[:6])


def compare(names, labelled):
    """A comparison table: head and rows. labelled holds (label, cells), a
    cell (value or None, text) per server in names; each row gains the ratio
    of starling's value (or the first server's) to each other server's."""
    base = "starling" if "starling" in names else names[0]
    others = [n for n in names if n != base]
    head = ["metric"] + names + ["%s/%s" % (base, o) for o in others]
    rows = []
    for label, vals in labelled:
        line = [label] + [text for _, text in vals]
        bv = vals[names.index(base)][0]
        for o in others:
            ov = vals[names.index(o)][0]
            line.append("%.2f" % (bv / ov) if bv is not None and ov else "-")
        rows.append(line)
    return head, rows


def table(all_results, names):
    labelled = []
    for label, key, field, fmt, _ in ROWS:
        vals = [cell(all_results[n], key, field, fmt) for n in names]
        if not all(text == "-" for _, text in vals):
            labelled.append((label, vals))
    return compare(names, labelled)


def markdown(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def plain(head, rows):
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = "  ".join("%-" + str(w) + "s" if i == 0 else "%" + str(w) + "s"
                    for i, w in enumerate(widths))
    return "\n".join(fmt % tuple(r) for r in [head] + rows)


def write_results(path, a, mach, servers, all_results, head, rows, notes):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["", "## Side by side, %s" % now, "",
             "Command: `%s`" % " ".join(["python3", "bench/run.py"] + sys.argv[1:]), "",
             "Machine: %s CPUs (%s), %s memory, Linux %s, descriptor limit %s; "
             "load average %s at the start (other work on the machine skews "
             "the numbers)." % (
                 mach["nproc"], mach["cpu"], mach["memory"], mach["kernel"],
                 mach["fd_limit"], mach["loadavg"]),
             "Servers: %s. Load generator: build/loadgen, %d worker thread(s), "
             "same host." % (", ".join("%s (%s)" % (s.name, s.version) for s in servers),
                             a.jobs), "",
             markdown(head, rows), ""]
    if notes:
        lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    lines += ["<details><summary>raw results (JSON)</summary>", "", "```json",
              json.dumps(all_results, indent=1, sort_keys=True), "```", "</details>", ""]
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# Benchmark results\n\nAppended by `make bench` (bench/run.py); "
                    "newest last.\n")
        f.write("\n".join(lines))



def side_by_side_args(description, **extra):
    """The options every side-by-side bench script takes (component.py,
    ws.py); extra: name -> (type, default) of its own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--build", default="build")
    p.add_argument("--loadgen", default=None, help="default: BUILD/loadgen")
    p.add_argument("--servers", default="starling,prosody")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--window", type=int, default=8)
    for name, (kind, default) in extra.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "HISTORY.md"))
    p.add_argument("--no-results", action="store_true")
    return p.parse_args()


def side_by_side(a, script, wrap, bench, table, verdicts, heading, describe):
    """Runs bench(a, wrap(ServerClass), work, cert) -> (server, results) for
    each of a.servers, prints table(results, names) -> (head, rows) and
    verdicts(results) -> [lines], and appends them with the machine, the
    command and the raw JSON to a.results (unless a.no_results) under
    "## heading, date"; describe(versions) says what ran. Returns the exit
    status."""
    a.loadgen = a.loadgen or os.path.join(ROOT, a.build, "loadgen")
    if not os.access(a.loadgen, os.X_OK):
        sys.exit("no %s: run make %s/loadgen" % (a.loadgen, a.build))
    raise_nofile()
    mach = machine()
    work = tempfile.mkdtemp(prefix="starling-%s-" % script)
    os.chmod(work, 0o755)
    results, versions, notes = {}, [], []
    try:
        cert = make_cert(work)
        for name in a.servers.split(","):
            base = SERVER_CLASSES.get(name)
            if base is None or not base.available(a.build):
                notes.append("%s: not installed or not built; skipped" % name)
                continue
            log(name)
            srv, r = bench(a, wrap(base), work, cert)
            results[name] = r
            versions.append("%s (%s)" % (name, srv.version))
            notes.extend(srv.crashes)
            if "error" in r:
                notes.append("%s: %s" % (name, r["error"]))
            for key, v in sorted(r.items()):
                if isinstance(v, dict) and "error" in v:
                    notes.append("%s %s: %s" % (name, key, v["error"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not results:
        print("nothing benchmarked: " + "; ".join(notes))
        return 1
    head, body = table(results, list(results))
    said = verdicts(results)
    print(plain(head, body))
    for v in said + ["note: " + n for n in notes]:
        print(v)
    if not a.no_results:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = ["", "## %s, %s" % (heading, now), "",
                 "Command: `%s`" % " ".join(["python3", "bench/%s.py" % script] + sys.argv[1:]),
                 "", "Machine: %s CPUs (%s), %s memory, Linux %s; load average %s at "
                 "the start, %.2f %.2f %.2f at the end." % (
                     mach["nproc"], mach["cpu"], mach["memory"], mach["kernel"],
                     mach["loadavg"], *os.getloadavg()),
                 describe(versions), "", markdown(head, body), ""]
        lines += ["- " + v for v in said] + [""]
        if notes:
            lines += ["Notes:", ""] + ["- " + n for n in notes] + [""]
        lines += ["<details><summary>raw results (JSON)</summary>", "", "```json",
                  json.dumps(results, indent=1, sort_keys=True), "```", "</details>", ""]
        with open(a.results, "a") as f:
            f.write("\n".join(lines))
        print("\nappended to " + os.path.relpath(a.results, os.getcwd()))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--loadgen", default=None, help="default: BUILD/loadgen")
    p.add_argument("--servers", default="starling,prosody,ejabberd",
                   help="comma separated; those not installed are skipped")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies every user count (0.1 for a quick look)")
    p.add_argument("--duration", type=float, default=20, help="seconds per chat run")
    p.add_argument("--chat-rate", type=float, default=5000,
                   help="messages/s of the fixed-rate chat run")
    p.add_argument("--contacts", type=int, default=10, help="roster size (even)")
    p.add_argument("--jobs", type=int, default=1, help="load generator threads")
    p.add_argument("--idle-settle", type=int, default=55,
                   help="seconds the idle connections rest before memory is read")
    p.add_argument("--only", default="", help="comma separated scenario keys")
    p.add_argument("--timeout", type=int, default=600, help="seconds per loadgen run")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "HISTORY.md"))
    p.add_argument("--no-results", action="store_true", help="do not write HISTORY.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--workers", type=int, default=1,
                   help="Starling's workers option (its CPU: master and workers)")
    a = p.parse_args()
    global WORKERS
    WORKERS = a.workers

    a.loadgen = a.loadgen or os.path.join(ROOT, a.build, "loadgen")
    if not os.access(a.loadgen, os.X_OK):
        sys.exit("no %s: run make %s/loadgen" % (a.loadgen, a.build))
    raise_nofile()
    mach = machine()
    scenarios = scenario_list(a)
    if a.only:
        keep = set(a.only.split(","))
        if "presence" in keep:
            keep.add("rosters")
        scenarios = [s for s in scenarios if s[0] in keep]

    work = tempfile.mkdtemp(prefix="starling-bench-")
    os.chmod(work, 0o755)
    notes = []
    servers, all_results = [], {}
    try:
        cert = make_cert(work)
        for name in a.servers.split(","):
            cls = SERVER_CLASSES.get(name)
            if cls is None:
                notes.append("%s: no such server in bench/run.py" % name)
                continue
            if not cls.available(a.build):
                notes.append("%s: not installed or not built; skipped" % name)
                log("%s: not available, skipped" % name)
                continue
            server = cls(work, cert, a.build) if cls is Starling else cls(work, cert)
            log("%s (%s)" % (name, server.version))
            try:
                all_results[name] = bench_server(a, server, scenarios)
                servers.append(server)
            except (RuntimeError, subprocess.SubprocessError, OSError) as e:
                notes.append("%s: %s" % (name, e))
                log("%s: %s" % (name, e))
                server.stop()
        for server in servers:
            notes.extend(server.crashes)
        for name, res in all_results.items():
            for key, r in res.items():
                if "error" in r:
                    notes.append("%s %s: %s" % (name, key, r["error"]))
                elif r.get("first_error"):
                    notes.append("%s %s: first error: %s" % (name, key, r["first_error"]))
    finally:
        if a.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    if not all_results:
        print("no server could be benchmarked:\n  " + "\n  ".join(notes))
        return 1
    names = list(all_results)
    head, rows = table(all_results, names)
    print()
    print(plain(head, rows))
    for n in notes:
        print("note: " + n)
    if not a.no_results:
        write_results(a.results, a, mach, servers, all_results, head, rows, notes)
        print("\nappended to " + os.path.relpath(a.results, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
