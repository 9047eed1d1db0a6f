"""The operator's side of name resolution for federation (docs/ADMIN.md,
"Federation: DNS"): s2s_static_hosts, dns_resolver, dns_hosts_file,
dns_trust_anchor and dns_timeout are checked at start (a wrong one stops
the server, naming the option) and on reload (a wrong one is reported
and the DNS settings stay as they were, while clients go on)."""

import os

from harness import check, exchange, raises
from server import ServerError

GOOD = {
    "s2s_static_hosts": {"example.net": "127.0.0.2:5269", "v6.example": "[::1]:5269"},
    "dns_resolver": ["127.0.0.1@5353", "[::1]:53"],
    "dns_hosts_file": False,
    "dns_timeout": 5,
}


def rewrite(srv):
    with open(srv.config_path, "w") as f:
        f.write(srv.config_text())


def refused(ctx, options, words):
    srv = ctx.server(start=False, options=options)
    raises(ServerError, srv.start)
    check(srv.exit_code not in (None, 0), "exit code %s" % srv.exit_code)
    log = srv.log_text()
    for w in words:
        check(w in log, "%r not in:\n%s" % (w, srv.log_tail(20)))


def test_good_options_start(ctx):
    srv = ctx.server(options=dict(GOOD))
    exchange(srv.login("alice"), srv.login("bob"))


def test_static_host_without_an_address_refused(ctx):
    refused(ctx, {"s2s_static_hosts": {"example.net": "xmpp.example.net:5269"}},
            ["s2s_static_hosts", "xmpp.example.net:5269"])


def test_bad_resolver_refused(ctx):
    refused(ctx, {"dns_resolver": "resolver.example"},
            ["dns_resolver", "resolver.example"])


def test_missing_trust_anchor_refused(ctx):
    refused(ctx, {"dns_trust_anchor": "/nonexistent/root.key"},
            ["dns_trust_anchor", "/nonexistent/root.key"])


def test_missing_hosts_file_refused(ctx):
    refused(ctx, {"dns_hosts_file": "/nonexistent/hosts"},
            ["dns_hosts_file", "/nonexistent/hosts"])


def test_reload_with_a_bad_static_host_keeps_serving(ctx):
    srv = ctx.server(options=dict(GOOD))
    a, b = srv.login("alice"), srv.login("bob")
    srv.options["s2s_static_hosts"] = {"example.net": "not an address"}
    rewrite(srv)
    srv.ctl("reload", check=False)
    srv.wait_log("the DNS settings stay as they were")
    check("not an address" in srv.log_text(), srv.log_tail(20))
    exchange(a, b)
    # fixed again: the reload applies without a complaint
    srv.options["s2s_static_hosts"] = {"example.net": "127.0.0.9"}
    rewrite(srv)
    srv.ctl("reload")
    exchange(a, b)
    check(srv.log_text().count("the DNS settings stay as they were") == 1,
          srv.log_tail(20))
