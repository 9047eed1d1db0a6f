"""A private DNS server for tests: Debian's NSD (authoritative only) on a
loopback address and a free port, serving zones the test writes, some of
them signed with ldnsutils' ldns-signzone.

    from dnsserver import DnsServer

    dns = DnsServer()                    # nothing runs yet
    z = dns.zone("secure.example", signed=True)
    z.srv("_xmpp-server._tcp", 5, 10, 5269, "xmpp1")   # owner relative
    z.a("xmpp1", "127.0.0.2")
    z.aaaa("xmpp1", "::1")
    z.tlsa("_5269._tcp.xmpp1", 3, 1, 1, "ab12...")
    dns.zone("plain.example").a("@", "127.0.0.3")
    dns.start()
    z.srv("_xmpp-client._tcp", 0, 5, 5222, "xmpp1")
    dns.reload()                         # NSD serves the changed zones
    dns.resolver        # "127.0.0.1@PORT": Starling's dns_resolver
    dns.trust_anchor    # a file with the DS records of the signed zones:
                        # Starling's dns_trust_anchor
    dns.stop()

How the signed zones are made: ldns-keygen makes a key-signing key (flags
257) and a zone-signing key (256), ECDSA P-256, for each signed zone;
ldns-signzone signs the zone file with both (NSEC, so a name that does
not exist is proven not to exist); NSD serves the .signed file. The DS of
each key-signing key (ldns-keygen writes it beside the key) goes into the
trust anchor file: a validating resolver given it as its only anchor
answers names of that zone secure, and names of the unsigned zones
insecure (no anchor covers them), which is what DANE tests need.

Names are absolute when they end with "."; "@" is the zone itself. Only
loopback addresses are served and given out.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

NSD = "/usr/sbin/nsd"


class DnsError(AssertionError):
    pass


def free_udp_tcp_port(address="127.0.0.1"):
    """A port free on address for UDP and TCP both, outside the ephemeral
    range."""
    for _ in range(200):
        port = random.randint(10000, 32000)
        u, t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket()
        try:
            u.bind((address, port))
            t.bind((address, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise DnsError("no free port on %s" % address)


class Zone:
    def __init__(self, name, signed):
        self.name = name.rstrip(".").lower()
        self.signed = signed
        self.records = []
        self.serial = 1

    def _owner(self, owner):
        if owner == "@":
            return self.name + "."
        if owner.endswith("."):
            return owner
        return "%s.%s." % (owner, self.name)

    def add(self, owner, rtype, data, ttl=60):
        """Any record: data in zone-file form."""
        self.records.append("%s %d IN %s %s" % (self._owner(owner), ttl, rtype, data))
        return self

    def a(self, owner, addr):
        return self.add(owner, "A", addr)

    def aaaa(self, owner, addr):
        return self.add(owner, "AAAA", addr)

    def srv(self, owner, priority, weight, port, target):
        """target "." is the "no service here" record (RFC 2782)."""
        t = target if target == "." else self._owner(target)
        return self.add(owner, "SRV", "%d %d %d %s" % (priority, weight, port, t))

    def tlsa(self, owner, usage, selector, mtype, hexdata):
        return self.add(owner, "TLSA", "%d %d %d %s" % (usage, selector, mtype, hexdata))

    def cname(self, owner, target):
        return self.add(owner, "CNAME", self._owner(target))

    def text(self):
        head = [
            "$ORIGIN %s." % self.name,
            "$TTL 60",
            "@ IN SOA ns.%s. hostmaster.%s. %d 3600 600 86400 60"
            % (self.name, self.name, self.serial),
            "@ IN NS ns.%s." % self.name,
            "ns IN A 127.0.0.1",
        ]
        return "\n".join(head + self.records) + "\n"


class DnsServer:
    def __init__(self, address="127.0.0.1", port=None, workdir=None):
        if not address.startswith("127."):
            raise DnsError("tests serve DNS on loopback only, not %s" % address)
        if not os.path.exists(NSD):
            raise DnsError("nsd is not installed (apt-get install nsd)")
        self.address = address
        self.port = port
        self.dir = workdir or tempfile.mkdtemp(prefix="starling-dns-")
        self._own_dir = workdir is None
        self.zones = {}
        self.proc = None
        self.trust_anchor = None

    @property
    def resolver(self):
        """The server as Starling's dns_resolver wants it."""
        return "%s@%d" % (self.address, self.port)

    def zone(self, name, signed=False):
        z = Zone(name, signed)
        self.zones[z.name] = z
        return z

    # --- signing ---------------------------------------------------------

    def _run(self, args, cwd):
        p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise DnsError("%s: %s" % (" ".join(args), p.stderr or p.stdout))
        return p.stdout.strip()

    def _sign(self, z, path):
        """path.signed from path; returns the DS records of its KSK."""
        kdir = os.path.join(self.dir, "keys-" + z.name)
        os.makedirs(kdir, exist_ok=True)
        ksk = self._run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", z.name], kdir)
        zsk = self._run(["ldns-keygen", "-a", "ECDSAP256SHA256", z.name], kdir)
        self._run(["ldns-signzone", "-f", path + ".signed", path,
                   os.path.join(kdir, ksk), os.path.join(kdir, zsk)], self.dir)
        with open(os.path.join(kdir, ksk + ".ds")) as f:
            return f.read()

    # --- running ---------------------------------------------------------

    def _config(self):
        lines = [
            "server:",
            "  ip-address: %s@%d" % (self.address, self.port),
            "  do-ip6: no",
            "  server-count: 1",
            "  username: \"\"",
            "  chroot: \"\"",
            "  zonesdir: \"%s\"" % self.dir,
            "  pidfile: \"%s/nsd.pid\"" % self.dir,
            "  xfrdfile: \"%s/xfrd.state\"" % self.dir,
            "  xfrdir: \"%s/xfr\"" % self.dir,
            "  zonelistfile: \"%s/zone.list\"" % self.dir,
            "  database: \"\"",
            "  logfile: \"%s/nsd.log\"" % self.dir,
            "  verbosity: 1",
            "  hide-version: yes",
            "remote-control:",
            "  control-enable: no",
        ]
        for z in self.zones.values():
            lines += ["zone:", "  name: %s" % z.name,
                      "  zonefile: \"%s\"" % z.path]
        return "\n".join(lines) + "\n"

    def start(self):
        if self.port is None:
            self.port = free_udp_tcp_port(self.address)
        os.makedirs(os.path.join(self.dir, "xfr"), exist_ok=True)
        self._write_zones()
        conf = os.path.join(self.dir, "nsd.conf")
        with open(conf, "w") as f:
            f.write(self._config())
        self.proc = subprocess.Popen([NSD, "-d", "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "nsd.err"), "w"))
        self._wait_ready()
        return self

    def reload(self):
        """Writes the zones again (records added since start) with the
        next serial and has NSD read them (SIGHUP); returns once it
        serves the new serial of every zone. Unsigned zones only (a
        signed zone would get new keys)."""
        for z in self.zones.values():
            if z.signed:
                raise DnsError("reload of the signed zone %s" % z.name)
            z.serial += 1
        self._write_zones()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        for z in self.zones.values():
            while self.soa_serial(z.name) != z.serial:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise DnsError("nsd did not load serial %d of %s: %s"
                                   % (z.serial, z.name, self.log()))
                time.sleep(0.05)

    def soa_serial(self, zone):
        """The serial NSD serves for zone (a UDP query), or None."""
        qid = random.randint(0, 0xffff)
        q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
        q += b"".join(bytes([len(l)]) + l.encode() for l in zone.split(".")) + b"\0"
        q += struct.pack(">HH", 6, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            s.sendto(q, (self.address, self.port))
            try:
                r = s.recv(4096)
            except OSError:
                return None
        if len(r) < 12 or struct.unpack(">H", r[:2])[0] != qid or \
                struct.unpack(">H", r[6:8])[0] < 1:
            return None
        # the answer's SOA: after the question, a compressed owner name,
        # type, class, TTL, length, then MNAME and RNAME (compressed
        # pointers or labels) and the serial
        i = len(q)
        i += 2 if r[i] & 0xc0 == 0xc0 else 0
        i += 10
        for _ in range(2):
            while r[i] and r[i] & 0xc0 != 0xc0:
                i += r[i] + 1
            i += 2 if r[i] & 0xc0 == 0xc0 else 1
        return struct.unpack(">I", r[i:i + 4])[0]

    def _write_zones(self):
        anchors = []
        for z in self.zones.values():
            path = os.path.join(self.dir, z.name + ".zone")
            with open(path, "w") as f:
                f.write(z.text())
            z.path = path
            if z.signed:
                anchors.append(self._sign(z, path))
                z.path = path + ".signed"
        if anchors:
            self.trust_anchor = os.path.join(self.dir, "trust-anchor.ds")
            with open(self.trust_anchor, "w") as f:
                f.write("".join(anchors))

    def _wait_ready(self):
        """Until the server answers a TCP connection (it loads its zones
        before it listens)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DnsError("nsd exited: %s" % self.log())
            try:
                socket.create_connection((self.address, self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise DnsError("nsd did not start: %s" % self.log())

    def log(self):
        out = []
        for name in ("nsd.err", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    out.append(f.read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SilentServer:
    """A UDP and TCP socket on loopback that never answers: a resolver
    whose server does not answer."""

    def __init__(self, address="127.0.0.1"):
        self.address = address
        self.port = free_udp_tcp_port(address)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, self.port))
        self.tcp = socket.socket()
        self.tcp.bind((address, self.port))
        self.tcp.listen(16)

    @property
    def resolver(self):
        return "%s@%d" % (self.address, self.port)

    def close(self):
        self.udp.close()
        self.tcp.close()
