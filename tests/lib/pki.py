"""A private certificate authority for tests, made with the openssl CLI:
server certificates for XMPP domains that peers verify against this CA
only (never the system store).

    from pki import CA

    ca = CA()                               # a new CA in a temporary dir
    cert, key = ca.issue("a.example")       # PEM files
    cert, key = ca.issue("b.example", names=["conference.b.example"])
    ca.cert                                 # the CA certificate (PEM), the
                                            # trust store a peer is given
    ca.close()                              # removes the directory
    with CA() as ca: ...                    # closed at the end of the block

Each server certificate has (RFC 6125, RFC 6120 13.7.1.2, XEP-0178):
subjectAltName dNSName for the domain and the extra names,
id-on-xmppAddr (1.3.6.1.5.5.7.8.5) for each of them, CN = the domain,
extendedKeyUsage serverAuth and clientAuth (a server authenticates as a
client with SASL EXTERNAL on its outgoing streams), ECDSA P-256 keys, 30
days of validity (from one hour ago, for clock skew).
"""

import os
import shutil
import subprocess
import tempfile

XMPP_ADDR_OID = "1.3.6.1.5.5.7.8.5"


class PkiError(AssertionError):
    pass


def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise PkiError("openssl %s: %s" % (" ".join(args), p.stderr))
    return p.stdout


class CA:
    def __init__(self, name="Starling Test CA", directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="starling-pki-")
        self._own_dir = directory is None
        self.cert = os.path.join(self.dir, "ca.crt")
        self.key = os.path.join(self.dir, "ca.key")
        self._serial = 1
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                 "-subj", "/O=Starling tests/CN=%s" % name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", self.key, "-out", self.cert)
        os.chmod(self.key, 0o600)

    def issue(self, domain, names=(), xmpp_addr=True, name=None):
        """A server certificate for domain (and names): (cert, key) paths.
        name: the files' base name (default: the domain)."""
        base = os.path.join(self.dir, name or domain)
        all_names = [domain] + [n for n in names if n != domain]
        san = ["DNS:%s" % n for n in all_names]
        if xmpp_addr:
            san += ["otherName:%s;UTF8:%s" % (XMPP_ADDR_OID, n) for n in all_names]
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n"
                    "subjectAltName=%s\n" % ",".join(san))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes",
                 "-subj", "/CN=%s" % domain, "-keyout", base + ".key",
                 "-out", base + ".csr")
        self._serial += 1
        _openssl("x509", "-req", "-in", base + ".csr", "-CA", self.cert,
                 "-CAkey", self.key, "-set_serial", str(self._serial),
                 "-days", "30", "-extfile", ext, "-out", base + ".crt")
        os.chmod(base + ".key", 0o600)
        return base + ".crt", base + ".key"

    def chain(self, cert):
        """cert followed by the CA certificate, in one file (for servers
        that want the chain in the certificate file)."""
        path = cert[:-4] + ".chain.crt" if cert.endswith(".crt") else cert + ".chain"
        with open(path, "w") as out:
            for p in (cert, self.cert):
                with open(p) as f:
                    out.write(f.read())
        return path

    def close(self):
        if self._own_dir:
            shutil.rmtree(self.dir, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
