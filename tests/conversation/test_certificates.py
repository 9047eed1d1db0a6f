"""Certificates the way operators handle them (issue #24, item 3): the
`certificates` directory (Prosody's option: HOST.crt + HOST.key, or
HOST/fullchain.pem + HOST/privkey.pem), `starlingctl cert import DIR`
picking each host's certificate out of a Let's Encrypt live/ directory by
the names it carries, and the running server taking the new certificate
without dropping a client: the connected one goes on, a new one is shown
the new certificate. A certificate about to expire is logged and shown by
`starlingctl status`.
"""

import os
import shutil
import ssl
import stat

import pki
from harness import check


def der_of(path):
    with open(path) as f:
        text = f.read()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def lets_encrypt_dir(root, domain, cert_chain, key):
    """live/DOMAIN/{fullchain,privkey}.pem, as certbot lays them out."""
    d = os.path.join(root, "live", domain)
    os.makedirs(d)
    shutil.copy(cert_chain, os.path.join(d, "fullchain.pem"))
    shutil.copy(key, os.path.join(d, "privkey.pem"))
    return os.path.join(root, "live")


def test_cert_import_and_hot_reload_with_a_client_connected(ctx):
    with pki.CA() as ca:
        certs = os.path.join(ca.dir, "server-certs")
        os.makedirs(certs)
        first, first_key = ca.issue("localhost", name="first")
        shutil.copy(ca.chain(first), os.path.join(certs, "localhost.crt"))
        shutil.copy(first_key, os.path.join(certs, "localhost.key"))
        srv = ctx.server(options={"ssl": {}, "certificates": certs,
                                  "certificate_expiry_warning": 45})
        a = srv.login("alice")
        check(a.transport.peer_cert() == der_of(first),
              "the server does not use the certificate of the certificates directory")

        # a renewed certificate, and one for another domain beside it
        le = os.path.join(ca.dir, "letsencrypt")
        renewed, renewed_key = ca.issue("localhost", name="renewed")
        live = lets_encrypt_dir(le, "localhost", ca.chain(renewed), renewed_key)
        other, other_key = ca.issue("other.example", name="other")
        lets_encrypt_dir(os.path.join(ca.dir, "le2"), "other.example", ca.chain(other),
                         other_key)
        shutil.copytree(os.path.join(ca.dir, "le2", "live", "other.example"),
                        os.path.join(live, "other.example"))
        out = srv.ctl("cert", "import", live).stdout
        check("localhost: %s/localhost/fullchain.pem" % live in out, out)
        check("reloaded" in out, "no reload after the import:\n%s" % out)
        check(der_of(os.path.join(certs, "localhost.crt")) == der_of(renewed),
              "the renewed certificate was not copied")
        mode = stat.S_IMODE(os.stat(os.path.join(certs, "localhost.key")).st_mode)
        check(mode == 0o640, "the key was copied with mode %o" % mode)

        # the connected client goes on; a new one gets the new certificate
        a.roundtrip()
        b = srv.login("bob")
        check(b.transport.peer_cert() == der_of(renewed),
              "a new connection still gets the old certificate")
        a.send("<message to='%s' type='chat'><body>still here</body></message>" % b.jid)
        b.expect("message", child="body", text="still here")

        # 30 days left (issued an hour ago), under the 45 of certificate_expiry_warning
        srv.wait_log(r"host localhost: certificate .*localhost.crt expires in (29|30)\.\d days")
        status = srv.ctl("status").stdout
        check("certificate localhost: %s/localhost.crt" % certs in status and
              "EXPIRES SOON" in status, status)


def test_cert_import_finds_nothing_for_a_host_it_has_no_certificate_of(ctx):
    with pki.CA() as ca:
        other, other_key = ca.issue("other.example", name="other")
        live = lets_encrypt_dir(os.path.join(ca.dir, "le"), "other.example",
                                ca.chain(other), other_key)
        srv = ctx.server(options={"certificates": os.path.join(ca.dir, "certs")})
        p = srv.ctl("cert", "import", live, check=False)
        check(p.returncode == 1, "exit %d" % p.returncode)
        check("localhost: no certificate for it in %s" % live in p.stdout, p.stdout)
        check(not os.path.exists(os.path.join(ca.dir, "certs", "localhost.crt")))


def test_check_finds_a_wrong_certificate_and_a_misspelt_option_with_their_fixes(ctx):
    """starlingctl check: the certificate of the certificates directory
    names another domain (an error, with the fix), an option with a typo
    (did you mean...); after the fixes, check passes."""
    with pki.CA() as ca:
        certs = os.path.join(ca.dir, "server-certs")
        os.makedirs(certs)
        wrong, wrong_key = ca.issue("other.example", name="wrong")
        shutil.copy(ca.chain(wrong), os.path.join(certs, "localhost.crt"))
        shutil.copy(wrong_key, os.path.join(certs, "localhost.key"))
        srv = ctx.server(start=False, options={"ssl": {}, "certificates": certs,
                                               "c2s_idle_timout": 900})
        srv.start()
        p = srv.ctl("check", check=False)
        check(p.returncode == 1, "check passed:\n%s" % p.stdout)
        check("does not name localhost" in p.stdout and "starlingctl cert import" in p.stdout,
              p.stdout)
        check("unknown option 'c2s_idle_timout'" in p.stdout
              and "did you mean 'c2s_idle_timeout'?" in p.stdout, p.stdout)
        # the fixes: the right certificate, the option's name
        right, right_key = ca.issue("localhost", name="right")
        live = lets_encrypt_dir(os.path.join(ca.dir, "le"), "localhost", ca.chain(right),
                                right_key)
        srv.ctl("cert", "import", live)
        with open(srv.config_path) as f:
            text = f.read()
        with open(srv.config_path, "w") as f:
            f.write(text.replace("c2s_idle_timout", "c2s_idle_timeout"))
        p = srv.ctl("check", check=False)
        check(p.returncode == 0, p.stdout)
        check("does not name" not in p.stdout and "c2s_idle_timout" not in p.stdout, p.stdout)
