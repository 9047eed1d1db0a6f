"""Starling's resolver for server-to-server connections (core/net/dns.c,
through libunbound) against a real DNS server: Debian's NSD on 127.0.0.1
with one zone signed by ldns-signzone (secure.example, whose DS is the
resolver's only trust anchor) and one unsigned (plain.example); see
tests/lib/dnsserver.py. build/tests/dnsq asks what a server-to-server
connection or DANE would ask and prints each answer as a JSON line.

What a peer operator sees: SRV records tried in RFC 2782 order, the "."
target honoured, A/AAAA on 5269 when there is no SRV, XEP-0368 direct TLS
targets, -ENOENT for a name that does not exist, -ETIMEDOUT within
dns_timeout when the DNS server says nothing, /etc/hosts-style names,
secure=true only where DNSSEC validated, TLSA records only when secure,
and a cancelled query that never calls back."""

import errno
import json
import os
import subprocess
import tempfile

from dnsserver import DnsServer, SilentServer
from harness import check, fixture, time_limit
import server as server_mod

SIGNED, PLAIN = "secure.example", "plain.example"
TLSA_HEX = "8f" * 32


@fixture
def dns(scope):
    d = DnsServer()
    s = d.zone(SIGNED, signed=True)
    # a.secure.example: two priorities, XEP-0368 and plain records mixed
    s.srv("_xmpps-server._tcp.a", 5, 0, 5270, "xmpp1")
    s.srv("_xmpp-server._tcp.a", 10, 0, 5269, "xmpp1")
    s.srv("_xmpp-server._tcp.a", 20, 0, 5269, "xmpp2")
    s.a("xmpp1", "127.0.0.2").aaaa("xmpp1", "::1")
    s.a("xmpp2", "127.0.0.3")
    s.tlsa("_5269._tcp.xmpp1", 3, 1, 1, TLSA_HEX)
    s.a("fallback", "127.0.0.4")
    p = d.zone(PLAIN)
    # priorities in the zone out of order: 30, 10, 20
    p.srv("_xmpp-server._tcp.prio", 30, 0, 5269, "third")
    p.srv("_xmpp-server._tcp.prio", 10, 0, 5269, "first")
    p.srv("_xmpp-server._tcp.prio", 20, 0, 5269, "second")
    p.a("first", "127.0.0.11").a("second", "127.0.0.12").a("third", "127.0.0.13")
    # weights 90 and 10 within one priority
    p.srv("_xmpp-server._tcp.weights", 10, 90, 5269, "heavy")
    p.srv("_xmpp-server._tcp.weights", 10, 10, 5269, "light")
    p.a("heavy", "127.0.0.21").a("light", "127.0.0.22")
    # "." : decidedly no service, though the domain has an address
    p.srv("_xmpp-server._tcp.noservice", 0, 0, 0, ".")
    p.a("noservice", "127.0.0.31")
    # "." for direct TLS only: the plain record is used
    p.srv("_xmpps-server._tcp.notls", 0, 0, 0, ".")
    p.srv("_xmpp-server._tcp.notls", 0, 0, 5269, "notls")
    p.a("notls", "127.0.0.32")
    # no SRV at all: A and AAAA on 5269
    p.a("fallback", "127.0.0.41").aaaa("fallback", "::1")
    p.a("fallback", "127.0.0.42")
    p.add("fallback", "TXT", '"no srv here"')
    p.tlsa("_5269._tcp.fallback", 3, 1, 1, TLSA_HEX)
    # internationalized: bücher.plain.example in A-labels
    p.a("xn--bcher-kva", "127.0.0.51")
    d.start()
    scope.cleanup(d.stop)
    return d


def dnsq(build_dir, dns, *args, resolver=None, trust=True, hosts=None,
         timeout=5, extra=()):
    exe = os.path.join(build_dir, "tests", "dnsq")
    cmd = [exe, "-r", resolver or dns.resolver, "-t", str(timeout),
           "-H", hosts or ""]
    if trust:
        cmd += ["-a", trust if isinstance(trust, str) else dns.trust_anchor]
    cmd += list(extra) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    for pat in server_mod.SANITIZER_PATTERNS:
        check(pat not in p.stderr, "dnsq: %s\n%s" % (pat, p.stderr[-3000:]))
    check(p.returncode == 0, "dnsq exited %d: %s" % (p.returncode, p.stderr))
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    answers = lines[:-1]
    check(lines[-1] == {"answers": len(answers)}, lines)
    return answers


def xmpp(build_dir, dns, domain, **kw):
    a = dnsq(build_dir, dns, "xmpp", domain, **kw)
    check(len(a) == 1, a)
    return a[0]


def addrs(answer):
    return [t["addr"] for t in answer["targets"]]


def test_srv_priorities_in_order(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "prio." + PLAIN)
    check(a["err"] == 0, a)
    check(addrs(a) == ["127.0.0.11:5269", "127.0.0.12:5269", "127.0.0.13:5269"], a)
    check([t["host"] for t in a["targets"]] ==
          ["first.plain.example", "second.plain.example", "third.plain.example"], a)


@time_limit(60)
def test_srv_weights_over_many_runs(ctx, dns):
    runs = 200
    answers = dnsq(ctx.build_dir, dns, "xmpp", "weights." + PLAIN, extra=["-n", str(runs)])
    check(len(answers) == runs, len(answers))
    first = [a["targets"][0]["host"] for a in answers]
    heavy = first.count("heavy.plain.example")
    light = first.count("light.plain.example")
    check(heavy + light == runs, first)
    # weight 90 against 10: the heavy one first about 90% of the time
    # (P(outside 150..199) < 1e-9 for a correct RFC 2782 selection)
    check(150 <= heavy <= 199, "heavy first %d of %d" % (heavy, runs))
    check(light >= 1, "light never first in %d runs" % runs)
    for a in answers:
        check(sorted(addrs(a)) == ["127.0.0.21:5269", "127.0.0.22:5269"], a)


def test_dot_target_means_no_service(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "noservice." + PLAIN)
    check(a["err"] == -errno.ENOENT and a["targets"] == [], a)


def test_dot_for_direct_tls_only_keeps_starttls(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "notls." + PLAIN)
    check(a["err"] == 0 and addrs(a) == ["127.0.0.32:5269"], a)
    check(a["targets"][0]["direct_tls"] is False, a)


def test_no_srv_falls_back_to_a_and_aaaa_on_5269(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "fallback." + PLAIN)
    check(a["err"] == 0, a)
    # IPv6 first, then interleaved
    got = addrs(a)
    check(got[0] == "[::1]:5269" and sorted(got[1:]) == ["127.0.0.41:5269",
                                                         "127.0.0.42:5269"], a)
    check(all(t["host"] == "fallback.plain.example" and t["port"] == 5269
              and not t["direct_tls"] for t in a["targets"]), a)


def test_direct_tls_targets_from_xmpps_server(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "a." + SIGNED)
    check(a["err"] == 0, a)
    check(addrs(a) == ["[::1]:5270", "127.0.0.2:5270", "[::1]:5269",
                       "127.0.0.2:5269", "127.0.0.3:5269"], a)
    check([t["direct_tls"] for t in a["targets"]] ==
          [True, True, False, False, False], a)
    check({t["host"] for t in a["targets"][:4]} == {"xmpp1.secure.example"}, a)


def test_nonexistent_domain_is_enoent(ctx, dns):
    for domain in ("nosuch." + PLAIN, "nosuch." + SIGNED):
        a = xmpp(ctx.build_dir, dns, domain)
        check(a["err"] == -errno.ENOENT and a["targets"] == [], (domain, a))


def test_silent_server_times_out(ctx, dns):
    silent = SilentServer()
    ctx.cleanup(silent.close)
    a = xmpp(ctx.build_dir, dns, "prio." + PLAIN, resolver=silent.resolver, timeout=1)
    check(a["err"] == -errno.ETIMEDOUT and a["targets"] == [], a)
    t = dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5269",
             resolver=silent.resolver, timeout=1)
    check(t[0]["err"] == -errno.ETIMEDOUT, t)


def test_hosts_file_names(ctx, dns):
    with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as f:
        f.write("127.0.0.61 hostsonly.example\n::1 hostsonly.example\n")
    ctx.cleanup(lambda: os.unlink(f.name))
    # the DNS server knows nothing of this name: the SRV query fails, the
    # hosts file gives the addresses
    a = xmpp(ctx.build_dir, dns, "hostsonly.example", hosts=f.name)
    check(a["err"] == 0 and addrs(a) == ["[::1]:5269", "127.0.0.61:5269"], a)
    check(all(not t["secure"] for t in a["targets"]), a)
    # without the hosts file the name is not known
    a = xmpp(ctx.build_dir, dns, "hostsonly.example")
    check(a["err"] != 0 and a["targets"] == [], a)


def test_secure_only_for_the_signed_zone(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "a." + SIGNED)
    check(a["targets"] and all(t["secure"] for t in a["targets"]), a)
    a = xmpp(ctx.build_dir, dns, "fallback." + SIGNED)
    check(addrs(a) == ["127.0.0.4:5269"] and a["targets"][0]["secure"], a)
    a = xmpp(ctx.build_dir, dns, "prio." + PLAIN)
    check(a["targets"] and not any(t["secure"] for t in a["targets"]), a)
    # the same signed zone without a trust anchor: nothing is secure
    a = xmpp(ctx.build_dir, dns, "a." + SIGNED, trust=False)
    check(a["err"] == 0 and not any(t["secure"] for t in a["targets"]), a)


def test_tlsa_only_when_secure(ctx, dns):
    t = dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5269")
    check(t == [{"err": 0, "error": "", "tlsa": [
        {"usage": 3, "selector": 1, "mtype": 1, "data": TLSA_HEX}]}], t)
    # the unsigned zone has the same record: not given
    t = dnsq(ctx.build_dir, dns, "tlsa", "fallback." + PLAIN, "5269")
    check(t[0]["err"] == 0 and t[0]["tlsa"] == [], t)
    # nor without a trust anchor
    t = dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5269", trust=False)
    check(t[0]["err"] == 0 and t[0]["tlsa"] == [], t)
    # no record on another port
    t = dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5270")
    check(t[0]["err"] == 0 and t[0]["tlsa"] == [], t)


def test_bogus_answers_are_errors(ctx, dns):
    # a trust anchor that does not match the zone's key: every answer of
    # the zone fails validation (a forged zone, as a resolver sees it)
    bad = os.path.join(dns.dir, "wrong-anchor.ds")
    with open(bad, "w") as f:
        f.write("%s. 60 IN DS 4711 13 2 %s\n" % (SIGNED, "ab" * 32))
    a = xmpp(ctx.build_dir, dns, "a." + SIGNED, trust=bad)
    check(a["err"] == -errno.EBADMSG and a["targets"] == [], a)
    t = dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5269", trust=bad)
    check(t[0]["err"] == -errno.EBADMSG and t[0]["tlsa"] == [], t)
    # names outside the anchored zone are unaffected
    a = xmpp(ctx.build_dir, dns, "prio." + PLAIN, trust=bad)
    check(a["err"] == 0 and len(a["targets"]) == 3, a)


def test_internationalized_domain(ctx, dns):
    a = xmpp(ctx.build_dir, dns, "bücher." + PLAIN)
    check(a["err"] == 0 and addrs(a) == ["127.0.0.51:5269"], a)
    check(a["targets"][0]["host"] == "xn--bcher-kva.plain.example", a)


def test_cancelled_query_never_calls_back(ctx, dns):
    # at once, before any answer could come
    check(dnsq(ctx.build_dir, dns, "xmpp", "prio." + PLAIN, timeout=1,
               extra=["-c", "0"]) == [], "an answer after dns_cancel")
    # while the lookups are under way (the server never answers), and
    # past the time the timeout would have answered
    silent = SilentServer()
    ctx.cleanup(silent.close)
    check(dnsq(ctx.build_dir, dns, "xmpp", "prio." + PLAIN, timeout=1,
               resolver=silent.resolver, extra=["-c", "0.3"]) == [],
          "an answer after dns_cancel")
    check(dnsq(ctx.build_dir, dns, "tlsa", "xmpp1." + SIGNED, "5269", timeout=1,
               resolver=silent.resolver, extra=["-c", "0.3"]) == [],
          "an answer after dns_cancel")
