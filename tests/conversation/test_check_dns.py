"""`starlingctl check dns` (issue #24, item 4): each host's SRV records
(_xmpp-client, _xmpps-client, _xmpp-server, _xmpps-server, for the ports
the config listens on) and their targets' A/AAAA, looked up through the
server's own resolver settings (here: the test's NSD on loopback), checked
against this machine's addresses and the configured ports. Each finding
names the record to add or change; errors make the exit code 1.
"""

import re

from dnsserver import DnsServer, free_udp_tcp_port
from harness import check


def dns_and_server(ctx, hosts, components=None):
    """A DNS server on a port chosen now (the config names it), not yet
    started, and a started server whose resolver it is."""
    dns = DnsServer(port=free_udp_tcp_port())
    ctx.cleanup(dns.stop)
    srv = ctx.server(hosts=hosts, components=components,
                     options={"dns_resolver": "127.0.0.1@%d" % dns.port,
                              "dns_hosts_file": False})
    return dns, srv


def full_records(z, srv, target="xmpp"):
    """What a host needs: SRV for clients (STARTTLS and direct TLS) and
    servers, pointing at a target on this machine, on the server's ports."""
    z.srv("_xmpp-client._tcp", 0, 5, srv.port, target)
    z.srv("_xmpps-client._tcp", 0, 5, srv.tls_port, target)
    z.srv("_xmpp-server._tcp", 0, 5, srv.s2s_port, target)
    z.a(target, "127.0.0.1")


def check_dns(srv):
    p = srv.ctl("check", "dns", check=False)
    return p.returncode, p.stdout


def test_a_missing_client_srv_record_is_found_with_its_fix_and_passes_once_added(ctx):
    dns, srv = dns_and_server(ctx, ("one.example", "two.example"))
    full_records(dns.zone("one.example"), srv)
    two = dns.zone("two.example")
    two.a("@", "127.0.0.1")
    two.srv("_xmpps-client._tcp", 0, 5, srv.tls_port, "@")
    two.srv("_xmpp-server._tcp", 0, 5, srv.s2s_port, "@")
    dns.start()

    code, out = check_dns(srv)
    check(code == 1, "check passed:\n%s" % out)
    # clients without the SRV record try two.example:5222, where nobody listens
    check(re.search(r"error: host two\.example: no _xmpp-client\._tcp\.two\.example SRV "
                    r"record, and clients that fall back to two\.example's A/AAAA try "
                    r"port 5222, where the server does not listen \(c2s_ports: %d\)"
                    % srv.port, out), out)
    fix = "_xmpp-client._tcp.two.example. 3600 IN SRV 0 5 %d two.example." % srv.port
    check("  fix: add " + fix in out, out)
    check("host one.example" not in out, "one.example has all its records:\n%s" % out)

    # the operator adds the record exactly as the fix says
    two.records.append(fix)
    dns.reload()
    code, out = check_dns(srv)
    check(code == 0, "check still fails after the fix:\n%s" % out)
    check("two.example" not in out and "OK (0 warnings)" in out, out)

    # the server itself still serves its hosts
    srv.login("alice").roundtrip()


def test_wrong_port_no_address_no_records_and_an_unreachable_component(ctx):
    dns, srv = dns_and_server(ctx, ("port.example", "target.example", "void.example"),
                              components={"rooms.port.example": "muc"})
    # the client record says 5222, the server listens on srv.port
    z = dns.zone("port.example")
    z.srv("_xmpp-client._tcp", 0, 5, 5222, "xmpp")
    z.srv("_xmpp-server._tcp", 0, 5, srv.s2s_port, "xmpp")
    z.a("xmpp", "127.0.0.1")
    # the SRV target has no address
    t = dns.zone("target.example")
    t.srv("_xmpp-client._tcp", 0, 5, srv.port, "gone")
    t.srv("_xmpp-server._tcp", 0, 5, srv.s2s_port, "gone")
    # void.example: the zone exists, the host has no records at all
    dns.zone("void.example")
    dns.start()

    code, out = check_dns(srv)
    check(code == 1, out)
    check("error: host port.example: _xmpp-client._tcp.port.example SRV says port 5222, "
          "but the server listens for it on %d (c2s_ports)" % srv.port in out, out)
    check("fix: change the record to _xmpp-client._tcp.port.example. 3600 IN SRV 0 5 %d "
          "xmpp.port.example." % srv.port in out, out)
    check("error: host target.example: _xmpp-client._tcp.target.example SRV points at "
          "gone.target.example, which has no A or AAAA record" in out, out)
    check(out.count("fix: add gone.target.example. 3600 IN A 127.0.0.1") == 1,
          "the target's fix is given once, for its two records:\n%s" % out)
    check("error: host void.example: no SRV records and no A or AAAA record" in out, out)
    check("fix: add _xmpp-client._tcp.void.example. 3600 IN SRV 0 5 %d xmpp.void.example."
          % srv.port in out, out)
    # a component is reached by remote servers only: a warning, with its fix
    check("warning: host rooms.port.example: no SRV records and no A or AAAA record: "
          "remote servers cannot reach this component" in out, out)
    # pointing at the target of the VirtualHost it is under
    check("fix: add _xmpp-server._tcp.rooms.port.example. 3600 IN SRV 0 5 %d "
          "xmpp.port.example." % srv.s2s_port in out, out)
    # one each: the target both records point at is one finding
    check("3 errors" in out, out)


def test_check_without_a_part_runs_every_part(ctx):
    """`check` alone is config, certs and dns together: an unknown option
    and a missing record both show."""
    dns = DnsServer(port=free_udp_tcp_port())
    ctx.cleanup(dns.stop)
    srv = ctx.server(hosts=("all.example",),
                     options={"dns_resolver": "127.0.0.1@%d" % dns.port,
                              "dns_hosts_file": False, "c2s_idle_timout": 900})
    dns.zone("all.example")
    dns.start()
    p = srv.ctl("check", check=False)
    check(p.returncode == 1, p.stdout)
    check("unknown option 'c2s_idle_timout'" in p.stdout, p.stdout)
    check("host all.example: no SRV records and no A or AAAA record" in p.stdout, p.stdout)
    # the config part alone knows nothing of DNS
    p = srv.ctl("check", "config", check=False)
    check("unknown option 'c2s_idle_timout'" in p.stdout and "SRV" not in p.stdout, p.stdout)


def test_a_resolver_that_does_not_answer_is_an_error_naming_the_timeout(ctx):
    from dnsserver import SilentServer
    silent = SilentServer()
    ctx.cleanup(silent.close)
    srv = ctx.server(hosts=("quiet.example",),
                     options={"dns_resolver": silent.resolver, "dns_hosts_file": False,
                              "dns_timeout": 1})
    code, out = check_dns(srv)
    check(code == 1, out)
    check("error: host quiet.example: A lookup of quiet.example: no answer in time "
          "(dns_timeout)" in out, out)
