"""Peers for server-to-server tests: federated Starlings, a raw server
stream a test drives by hand, and Debian's Prosody 0.12 and ejabberd 23.01
as private instances (ProsodyPeer, EjabberdPeer: see the "Real peers"
section below and docs/INTEROP.md).

    a, b = starling_pair(scope, "a.example", "b.example")  # pinned to each other
    raw = RawServer(a, "evil.example")     # a peer stream to a's s2s port
    raw.open_stream(to="a.example")

The Starlings listen on 127.0.0.1 with ports of their own, their domains
pinned with s2s_static_hosts, so no DNS is involved."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import server as server_mod
import xmpp
from xmpp import NS, esc

S2S_MODULES = ["roster", "presence", "message", "iq", "disco", "ping"]
NS_DB = "jabber:server:dialback"


def pin(domain, port, host="127.0.0.1"):
    return {domain: "%s:%d" % (host, port)}


def starling_pair(scope, domain_a, domain_b, options=None, modules=None):
    """Two Starlings, each serving one domain and pinned to the other's."""
    opts = dict(options or {})
    a = server_mod.Server(scope.build_dir, hosts=(domain_a,),
                          modules=modules or S2S_MODULES, options=dict(opts))
    b = server_mod.Server(scope.build_dir, hosts=(domain_b,),
                          modules=modules or S2S_MODULES, options=dict(opts))
    a.options.setdefault("s2s_static_hosts", {}).update(pin(domain_b, b.s2s_port))
    b.options.setdefault("s2s_static_hosts", {}).update(pin(domain_a, a.s2s_port))
    for srv in (a, b):
        scope.servers.append(srv)
        srv.start()
    return a, b


class RawServer(xmpp.Client):
    """A server-to-server stream to srv's s2s port that a test writes by
    hand: the stream header and dialback elements of a (hostile) peer."""

    def __init__(self, srv, domain, name=None):
        super().__init__("127.0.0.1", srv.s2s_port, srv.domain,
                         name=name or "s2s-peer-%s" % domain)
        self.peer_domain = domain
        for hook in server_mod.CLIENT_CREATED:
            hook(self)
        self.connect()

    def stream_header(self, to=None, version="1.0", lang="en", extra=""):
        """An s2s header from peer_domain (lang is not written)."""
        return "<?xml version='1.0'?><stream:stream %s>" % self.header_attrs(
            ["xmlns='jabber:server'", "xmlns:db='%s'" % NS_DB,
             "xmlns:stream='http://etherx.jabber.org/streams'",
             "from='%s'" % esc(self.peer_domain)],
            to, version, None, extra)

    def open_stream(self, to=None, **kw):
        self.send(self.stream_header(to, **kw))
        header = self.expect_stream_header()
        if header.namespaces.get("") != "jabber:server":
            raise xmpp.ExpectError("%s: s2s stream namespace is %r"
                                   % (self.name, header.namespaces.get("")))
        self.stream_id = header.get("id")
        return self.expect_features()

    def starttls(self, backend="ssl", version=None):
        self.send("<starttls xmlns='%s'/>" % NS["tls"])
        self.expect("tls:proceed")
        self.reset_parser()
        self._wrap_tls(backend, version)
        return self.open_stream()


class Listener:
    """A TCP port on 127.0.0.1 (self.port) whose thread hands every
    connection it accepts to self._accepted(c) until close()."""

    def __init__(self, backlog):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self._accepted(c)

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


class SilentListener(Listener):
    """A TCP port that accepts connections and never says a word."""

    def __init__(self):
        self.conns = []
        super().__init__(16)

    def _accepted(self, c):
        self.conns.append(c)

    def close(self):
        super().close()
        for c in self.conns:
            c.close()


def closed_port():
    """A port on 127.0.0.1 where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeAuthoritative(Listener):
    """The authoritative server of `domain` for dialback, as simple as it
    gets: a plain stream (no TLS: the server under test must have
    s2s_require_encryption = false) that answers every <db:verify/> with
    `answer` ("valid" or "invalid")."""

    def __init__(self, domain, answer="valid"):
        import re
        self.re = re
        self.domain, self.answer = domain, answer
        self.verified = []
        super().__init__(8)

    def _serve(self, c):
        buf = b""
        c.settimeout(0.2)
        opened = False
        while not self.done:
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            if not opened and b"<stream:stream" in buf and b">" in buf.split(b"<stream:stream", 1)[1]:
                opened = True
                c.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                           "xmlns:db='%s' xmlns:stream='http://etherx.jabber.org/"
                           "streams' id='fake-%d' from='%s' version='1.0'>"
                           "<stream:features><dialback xmlns='urn:xmpp:features:"
                           "dialback'/></stream:features>"
                           % (NS_DB, self.port, self.domain)).encode())
            for m in self.re.finditer(rb"<db:verify([^>]*)>([^<]*)</db:verify>", buf):
                attrs = dict(self.re.findall(rb"(\w+)=['\"]([^'\"]*)['\"]", m.group(1)))
                self.verified.append(attrs.get(b"id", b"").decode())
                c.sendall(("<db:verify from='%s' to='%s' id='%s' type='%s'/>"
                           % (self.domain, attrs.get(b"from", b"").decode(),
                              attrs.get(b"id", b"").decode(), self.answer)).encode())
            if b"</db:verify>" in buf:
                buf = buf.rsplit(b"</db:verify>", 1)[1]

    def _accepted(self, c):
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()


# --- Real peers: Debian's Prosody and ejabberd as private instances --------
#
# Each peer is a process of its own that the test starts and stops (never
# the system service): its own config file, data directory and log in a
# temporary directory, its c2s and s2s ports on a loopback address of its
# own (127.0.0.x, x >= 2, on 5269 when free), a certificate from
# tests/lib/pki.py. Names are resolved by a private NSD (tests/lib/
# dnsserver.py) that every server of the test asks: SRV records
# _xmpp-server._tcp.DOMAIN pointing at the server's address and port.
#
#     fed = Federation(scope)                    # DNS and certificates
#     srv = fed.starling("st.example")           # Starling, asking fed's DNS
#     pro = fed.prosody("pro.example")           # a private Prosody
#     ej = fed.ejabberd("ej.example")            # a private ejabberd node
#     fed.start()                                # DNS first, then the servers
#     alice = srv.login("alice")
#     bob = pro.login("bob")                     # a client of Prosody's c2s
#
# docs/INTEROP.md says what each peer needs and why.

PEER_START_TIMEOUT = 40


def _free_on(address, ports):
    for port in ports:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_loopback_address(ports=(5269, 5222)):
    """A loopback address 127.0.x.y (y >= 2) of its own for a peer, the way
    servers of different domains have addresses of their own on the
    Internet: one where ports are free if there is one (a system service
    listening on every address takes them everywhere; the peer then gets
    free ports instead, see ExternalPeer)."""
    import random
    candidates = ["127.0.%d.%d" % (random.randint(0, 3), random.randint(2, 250))
                  for _ in range(50)]
    for address in candidates:
        if _free_on(address, ports):
            return address
    return candidates[0]


def _which(*names):
    for name in names:
        if shutil.which(name):
            return shutil.which(name)
    return None


class ExternalPeer:
    """What Prosody and ejabberd peers have in common: a directory, a
    process (its own process group: stop() ends it and every child), a
    log, accounts and clients."""

    kind = "peer"

    def __init__(self, domain, cert, key, resolver, cafile=None,
                 secure_auth=False, address=None):
        self.domain = domain
        self.cert, self.key = cert, key
        self.resolver = resolver          # "127.0.0.1@PORT" of the NSD
        self.cafile = cafile              # trust store for peer certificates
        self.secure_auth = secure_auth
        self.address = address or free_loopback_address()
        self.s2s_port = 5269 if _free_on(self.address, (5269,)) else server_mod.free_port()
        self.c2s_port = 5222 if _free_on(self.address, (5222,)) else server_mod.free_port()
        self.dir = tempfile.mkdtemp(prefix="starling-%s-" % self.kind)
        self.log_path = os.path.join(self.dir, "%s.log" % self.kind)
        self.proc = None
        self.accounts = {}
        self._n = 0

    # -- process

    def _spawn(self, argv, env=None):
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        try:
            full_env = dict(os.environ)
            full_env.update(env or {})
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, cwd=self.dir, env=full_env,
                                    start_new_session=True,
                                    preexec_fn=server_mod._die_with_parent)
        finally:
            out.close()

    def _wait_ports(self, timeout=PEER_START_TIMEOUT):
        deadline = time.monotonic() + timeout
        waiting = [self.c2s_port, self.s2s_port]
        while waiting:
            if self.proc.poll() is not None:
                raise server_mod.ServerError("%s %s exited with %s:\n%s"
                                             % (self.kind, self.domain,
                                                self.proc.returncode, self.log_tail()))
            try:
                socket.create_connection((self.address, waiting[0]), 0.5).close()
                waiting.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    raise server_mod.ServerError(
                        "%s %s does not listen on %s:%d after %ds:\n%s"
                        % (self.kind, self.domain, self.address, waiting[0],
                           timeout, self.log_tail()))
                time.sleep(0.1)

    @staticmethod
    def _end(proc, timeout=10):
        """SIGTERM to the process group, SIGKILL after timeout."""
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        # children that outlived the leader (same group)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        self._end(self.proc)
        self.proc = None
        if os.environ.get("STARLING_KEEP_PEER_DIRS"):
            return
        shutil.rmtree(self.dir, True)

    # -- log

    def log_text(self):
        out = []
        for path in (self.log_path, os.path.join(self.dir, "stdout.log")):
            try:
                with open(path, "rb") as f:
                    out.append(f.read().decode(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def log_tail(self, lines=60):
        text = self.log_text().splitlines()
        return "\n".join(["--- last %d lines of %s %s log (%s) ---"
                          % (min(lines, len(text)), self.kind, self.domain,
                             self.dir)] + text[-lines:])

    def wait_log(self, pattern, timeout=10):
        return server_mod.wait_line(
            self.log_text, pattern, timeout,
            lambda: "no line matching /%s/ in the %s log of %s\n%s"
            % (pattern, self.kind, self.domain, self.log_tail()))

    # -- accounts and clients

    def account(self, prefix="user"):
        self._n += 1
        user = "%s%d%d" % (prefix, os.getpid() % 1000, self._n)
        password = "pw-%s-%d" % (user, time.monotonic_ns() % 100000)
        self.register(user, password)
        account = server_mod.Account(user, password, self.domain)
        self.accounts[account.jid] = account
        return account

    def login(self, account="user", resource=None, ignore_presence=True):
        """A client of the peer's c2s port: STARTTLS, SCRAM-SHA-1 (what
        both peers store by default), bound."""
        if not isinstance(account, server_mod.Account):
            account = self.account(account)
        c = xmpp.Client(self.address, self.c2s_port, self.domain,
                        name="%s@%s/%s" % (account.user, self.kind, resource or "*"))
        for hook in server_mod.CLIENT_CREATED:
            hook(c)
        c.connect()
        c.open_stream()
        c.starttls()
        c.auth_scram(account.user, account.password, "SCRAM-SHA-1")
        c.account = account
        c.bind(resource)
        if ignore_presence:
            c.ignore = ("presence",)
        return c


PROSODY_CONFIG = """-- written by tests/lib/peers.py
run_as_root = true            -- the test runs as root: no switch to 'prosody'
certificates = "{dir}/certs"  -- nothing there: the ssl options say where
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ debug = "{log}" }}
interfaces = {{ "{address}" }}
c2s_ports = {{ {c2s_port} }}
s2s_ports = {{ {s2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_direct_tls_ports = {{ }}
network_backend = "epoll"
authentication = "internal_hashed"
storage = "internal"
modules_enabled = {{ "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
                    "version"; "time" }}
modules_disabled = {{ "offline"; "admin_shell" }}
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = {secure_auth}
-- Names of other servers: the test's NSD only (luaunbound's options)
unbound = {{ resolvconf = false; hoststxt = false; forward = "{resolver}" }}
ssl = {{ certificate = "{cert}"; key = "{key}";{cafile} }}
VirtualHost "{domain}"
    ssl = {{ certificate = "{cert}"; key = "{key}";{cafile} }}
"""


class ProsodyPeer(ExternalPeer):
    """Debian's Prosody 0.12 (`prosody -F --config FILE`), serving one
    domain."""

    kind = "prosody"

    def config_text(self):
        cafile = ' cafile = "%s";' % self.cafile if self.cafile else ""
        return PROSODY_CONFIG.format(
            dir=self.dir, log=self.log_path, address=self.address,
            c2s_port=self.c2s_port, s2s_port=self.s2s_port,
            secure_auth="true" if self.secure_auth else "false",
            resolver=self.resolver, cert=self.cert, key=self.key,
            cafile=cafile, domain=self.domain)

    def start(self):
        if not _which("prosody"):
            raise server_mod.ServerError("prosody is not installed (make test-deps)")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        self.config_path = os.path.join(self.dir, "prosody.cfg.lua")
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        self.proc = self._spawn(["prosody", "-F", "--config", self.config_path])
        self._wait_ports()
        return self

    def register(self, user, password):
        p = subprocess.run(["prosodyctl", "--config", self.config_path, "register",
                            user, self.domain, password],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise server_mod.ServerError("prosodyctl register %s: %s%s"
                                         % (user, p.stdout, p.stderr))


EJABBERD_CONFIG = """# written by tests/lib/peers.py
hosts:
  - "{domain}"
loglevel: debug
log_rotate_count: 0
certfiles:
  - "{pem}"
{cafile}
listen:
  -
    port: {c2s_port}
    ip: "{address}"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    access: c2s
  -
    port: {s2s_port}
    ip: "{address}"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
s2s_use_starttls: required
s2s_dns_timeout: 5
s2s_dns_retries: 1
auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_version: {{}}
  mod_time: {{}}
{dialback}"""


class EjabberdPeer(ExternalPeer):
    """Debian's ejabberd 23.01, run the way ejabberdctl's `foreground`
    runs it but as the test's user, with an Erlang distribution of its own:
    a private epmd on a free port (ERL_EPMD_PORT), a node name and cookie
    for this instance, ERL_INETRC pointing Erlang's resolver at the test's
    NSD. Accounts are made with ejabberd_ctl over that distribution (what
    `ejabberdctl register` does)."""

    kind = "ejabberd"
    ERL_LIBS = "/usr/lib/x86_64-linux-gnu"

    def __init__(self, *args, dialback=True, **kw):
        super().__init__(*args, **kw)
        self.dialback = dialback
        self.hosts_entries = {}       # name -> address, for getaddrinfo
        self.epmd = None
        tag = os.path.basename(self.dir).rsplit("-", 1)[-1].lower()
        self.node = "ej%s@localhost" % "".join(ch for ch in tag if ch.isalnum())
        self.cookie = "cookie%d" % (time.monotonic_ns() % 10 ** 12)

    def _env(self):
        return {
            "HOME": self.dir,                        # .erlang.cookie, if any
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_LIBS": self.ERL_LIBS,
            "ERL_INETRC": os.path.join(self.dir, "inetrc"),
            "ERL_CRASH_DUMP": os.path.join(self.dir, "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
            "EJABBERD_CONFIG_PATH": os.path.join(self.dir, "ejabberd.yml"),
            "EJABBERD_LOG_PATH": self.log_path,
        }

    def config_text(self):
        pem = os.path.join(self.dir, "server.pem")
        with open(self.cert) as f:
            leaf = f.read().split("-----END CERTIFICATE-----")[0]
        with open(self.key) as f:
            key = f.read()
        with open(pem, "w") as out:
            # the server's certificate and key: the CA of a chain file is not
            # the server's (ejabberd warns of a self-signed certificate)
            out.write(leaf + "-----END CERTIFICATE-----\n" + key)
        os.chmod(pem, 0o600)
        return EJABBERD_CONFIG.format(
            domain=self.domain, pem=pem, address=self.address,
            c2s_port=self.c2s_port, s2s_port=self.s2s_port,
            cafile='s2s_cafile: "%s"' % self.cafile if self.cafile else "",
            dialback="  mod_s2s_dialback: {}\n" if self.dialback else "")

    def inetrc_text(self):
        host, port = self.resolver.split("@")
        return ("{lookup, [file, dns]}.\n"
                "{resolv_conf, \"\"}.\n"
                "{hosts_file, \"\"}.\n"
                "{host, {127,0,0,1}, [\"localhost\"]}.\n"
                "{nameserver, {%s}, %s}.\n"
                % (host.replace(".", ","), port))

    def start(self):
        if not _which("erl") or not os.path.isdir(self.ERL_LIBS):
            raise server_mod.ServerError("ejabberd is not installed (make test-deps)")
        with open(os.path.join(self.dir, "ejabberd.yml"), "w") as f:
            f.write(self.config_text())
        with open(os.path.join(self.dir, "inetrc"), "w") as f:
            f.write(self.inetrc_text())
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self._start_epmd()
        # ejabberd asks Erlang's resolver (inetrc: the test's NSD) for SRV
        # records but the C library (getaddrinfo) for addresses, which
        # reads /etc/hosts and port 53 only: the node runs in a mount
        # namespace of its own where /etc/hosts is the test's.
        hosts = os.path.join(self.dir, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n")
            for name, address in sorted(self.hosts_entries.items()):
                f.write("%s %s\n" % (address, name))
        self.proc = self._spawn(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc/hosts && exec "$@"', hosts,
             "erl", "-sname", self.node, "-setcookie", self.cookie, "-noinput",
             "+K", "true", "-mnesia", "dir", '"%s"' % self.spool,
             "-s", "ejabberd"], env=self._env())
        try:
            self._wait_ports()
        except Exception:
            self.stop()
            raise
        return self

    def _start_epmd(self):
        """A private epmd on a free port, listening before the node starts
        (else erl would start a daemon of its own there)."""
        for _ in range(3):
            self.epmd_port = server_mod.free_port()
            self.epmd = self._spawn(["epmd", "-port", str(self.epmd_port),
                                     "-address", "127.0.0.1"])
            deadline = time.monotonic() + 5
            while self.epmd.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.epmd_port), 0.5).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self._end(self.epmd)
        self.epmd = None
        raise server_mod.ServerError("epmd did not start:\n" + self.log_tail())

    def ctl(self, *args, timeout=60):
        """ejabberd_ctl on this node, as `ejabberdctl ARGS` would run it."""
        self._n += 1
        p = subprocess.run(
            ["erl", "-sname", "ctl%d%s" % (self._n, self.node.split("@")[0]),
             "-setcookie", self.cookie, "-hidden", "-noinput",
             "-s", "ejabberd_ctl", "-extra", self.node] + list(args),
            capture_output=True, text=True, timeout=timeout, cwd=self.dir,
            env=dict(os.environ, **self._env()))
        if p.returncode != 0:
            raise server_mod.ServerError("ejabberdctl %s exited %d: %s%s"
                                         % (" ".join(args), p.returncode,
                                            p.stdout, p.stderr))
        return p.stdout

    def register(self, user, password):
        self.ctl("register", user, self.domain, password)

    def stop(self):
        self._end(self.proc)
        self.proc = None
        self._end(self.epmd)
        self.epmd = None
        super().stop()


class Federation:
    """The servers of one federation test and the DNS that joins them: a
    private NSD serving, for each domain, _xmpp-server._tcp.DOMAIN SRV ->
    xmpp.DOMAIN:PORT and xmpp.DOMAIN A -> the server's loopback address.

    shared_ca: every server's certificate comes from one CA and every
    server trusts it (the SASL EXTERNAL setting); otherwise each peer gets
    a CA of its own, trusted by nobody else, and Starling keeps its
    self-signed test certificate (the dialback setting)."""

    def __init__(self, scope, shared_ca=False):
        from dnsserver import DnsServer, free_udp_tcp_port
        import pki
        self.pki = pki
        self.scope = scope
        self.dns = DnsServer()
        self.dns.port = free_udp_tcp_port()
        self.ca = pki.CA() if shared_ca else None
        self.cas = [self.ca] if self.ca else []
        self.starlings, self.peers = [], []
        self.addresses = {}           # SRV target -> address
        scope.cleanup(self.close)

    def _serve(self, domain, address, port):
        z = self.dns.zone(domain)
        z.srv("_xmpp-server._tcp", 0, 0, port, "xmpp")
        z.a("xmpp", address)
        self.addresses["xmpp." + domain] = address

    def _cert(self, domain):
        ca = self.ca
        if ca is None:
            ca = self.pki.CA(name="CA of %s only" % domain)
            self.cas.append(ca)
        # dNSName only, as public CAs issue them: ejabberd 23.01 crashes
        # (xmpp_stream_pkix:get_cert_domains, badarg) on a peer
        # certificate that carries an id-on-xmppAddr name
        cert, key = ca.issue(domain, xmpp_addr=False)
        return ca.chain(cert), key

    def starling(self, domain, options=None, modules=None):
        opts = {"dns_resolver": self.dns.resolver, "dns_hosts_file": False,
                "dns_timeout": 5}
        if self.ca:
            cert, key = self._cert(domain)
            opts["ssl"] = {"certificate": cert, "key": key, "cafile": self.ca.cert}
            opts["s2s_secure_auth"] = True
        opts.update(options or {})
        srv = server_mod.Server(self.scope.build_dir, hosts=(domain,),
                                modules=modules or S2S_MODULES, options=opts)
        self.scope.servers.append(srv)
        self._serve(domain, "127.0.0.1", srv.s2s_port)
        self.starlings.append(srv)
        return srv

    def _peer(self, cls, domain, **kw):
        cert, key = self._cert(domain)
        peer = cls(domain, cert, key, self.dns.resolver,
                   cafile=self.ca.cert if self.ca else None,
                   secure_auth=self.ca is not None, **kw)
        self.scope.cleanup(peer.stop)
        self._serve(domain, peer.address, peer.s2s_port)
        self.peers.append(peer)
        return peer

    def prosody(self, domain, **kw):
        return self._peer(ProsodyPeer, domain, **kw)

    def ejabberd(self, domain, **kw):
        return self._peer(EjabberdPeer, domain, **kw)

    def start(self):
        self.dns.start()
        for srv in self.starlings:
            srv.start()
        for peer in self.peers:
            if hasattr(peer, "hosts_entries"):
                peer.hosts_entries.update(self.addresses)
            peer.start()
        return self

    def close(self):
        self.dns.stop()
        for ca in self.cas:
            ca.close()
