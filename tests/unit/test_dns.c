/* test_dns.c - core/net/dns.c without a DNS server: static hosts, IP
 * literal domains, address parsing, the callback deferred to the loop and
 * cancellation. The resolver against a real DNS server is tested by
 * tests/dns/ (tests/lib/dnsserver.py). */
#include "harness.h"
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

struct answer {
	int calls, err;
	size_t n;
	char addr[8][64], host[8][64];
	uint16_t port[8];
	bool tls[8], secure[8];
};

static void on_xmpp(void *arg, int err, const struct dns_target *t, size_t n)
{
	struct answer *a = arg;

	a->calls++;
	a->err = err;
	a->n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		dns_addr_str(&t[i].addr, a->addr[i], sizeof(a->addr[i]));
		snprintf(a->host[i], sizeof(a->host[i]), "%s", t[i].host);
		a->port[i] = t[i].port;
		a->tls[i] = t[i].direct_tls;
		a->secure[i] = t[i].secure;
	}
}

static void run_loop(void)
{
	ev_run(ev_default_loop(0), 0);
}

static void test_parse_addr(void)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char buf[64];

	CHECK(dns_parse_addr("127.0.0.2", 5269, &ss, &sl) == 0);
	CHECK_STR(dns_addr_str(&ss, buf, sizeof(buf)), "127.0.0.2:5269");
	CHECK(sl == sizeof(struct sockaddr_in));
	CHECK(dns_parse_addr("127.0.0.2:5270", 5269, &ss, &sl) == 0);
	CHECK_STR(dns_addr_str(&ss, buf, sizeof(buf)), "127.0.0.2:5270");
	CHECK(dns_parse_addr("::1", 5269, &ss, &sl) == 0);
	CHECK_STR(dns_addr_str(&ss, buf, sizeof(buf)), "[::1]:5269");
	CHECK(sl == sizeof(struct sockaddr_in6));
	CHECK(dns_parse_addr("[::1]:5299", 5269, &ss, &sl) == 0);
	CHECK_STR(dns_addr_str(&ss, buf, sizeof(buf)), "[::1]:5299");
	CHECK(dns_parse_addr("[::1]", 5269, &ss, &sl) == 0);
	CHECK_STR(dns_addr_str(&ss, buf, sizeof(buf)), "[::1]:5269");
	static const char *const bad[] = {
		"", "example.net", "127.0.0.2:", "127.0.0.2:0", "127.0.0.2:65536",
		"127.0.0.2:x", "[::1]:", "[::1", "::1]:5269", "1.2.3.4.5", "[127.0.0.1]x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (dns_parse_addr(bad[i], 5269, &ss, &sl) != -EINVAL) {
			fprintf(stderr, "  accepted: '%s'\n", bad[i]);
			CHECK(0);
		}
	}
}

static void test_static_hosts(void)
{
	struct dns_static_host h[] = {
		{ "example.net", "127.0.0.2:5269" },
		{ "v6.example", "[::1]:5270" },
		{ "Plain.Example", "127.0.0.3" },
	};
	struct answer a = { 0 }, b = { 0 }, c = { 0 };
	struct sbuf err;

	sbuf_init(&err);
	CHECK(dns_set_static_hosts(h, ARRAY_SIZE(h), &err) == 0);
	dns_resolve_xmpp_server("example.net", on_xmpp, &a);
	dns_resolve_xmpp_server("v6.example", on_xmpp, &b);
	dns_resolve_xmpp_server("plain.example", on_xmpp, &c);
	/* never inside the call */
	CHECK(a.calls == 0 && b.calls == 0 && c.calls == 0);
	run_loop();
	CHECK(a.calls == 1 && a.err == 0 && a.n == 1);
	CHECK_STR(a.addr[0], "127.0.0.2:5269");
	CHECK_STR(a.host[0], "example.net");
	CHECK(a.port[0] == 5269 && !a.tls[0] && !a.secure[0]);
	CHECK(b.calls == 1 && b.err == 0 && b.n == 1);
	CHECK_STR(b.addr[0], "[::1]:5270");
	CHECK(b.port[0] == 5270);
	CHECK(c.calls == 1 && c.n == 1);
	CHECK_STR(c.addr[0], "127.0.0.3:5269");

	/* a bad entry changes nothing */
	struct dns_static_host bad[] = {
		{ "other.example", "127.0.0.9" }, { "example.net", "example.org:5269" },
	};
	CHECK(dns_set_static_hosts(bad, ARRAY_SIZE(bad), &err) == -EINVAL);
	CHECK(strstr(err.p, "example.org:5269") != NULL);
	memset(&a, 0, sizeof(a));
	dns_resolve_xmpp_server("example.net", on_xmpp, &a);
	run_loop();
	CHECK(a.calls == 1 && a.n == 1);
	CHECK_STR(a.addr[0], "127.0.0.2:5269");

	/* replaced as a whole (a reload) */
	CHECK(dns_set_static_hosts(h + 1, 1, &err) == 0);
	memset(&a, 0, sizeof(a));
	dns_resolve_xmpp_server("example.net", on_xmpp, &a);
	run_loop();
	/* no resolver started here: the name needs DNS now */
	CHECK(a.calls == 1 && a.err == -ENOTCONN && a.n == 0);
	CHECK(dns_set_static_hosts(NULL, 0, &err) == 0);
	sbuf_free(&err);
}

static void test_literals(void)
{
	struct answer a = { 0 }, b = { 0 }, c = { 0 };

	dns_resolve_xmpp_server("127.0.0.5", on_xmpp, &a);
	dns_resolve_xmpp_server("[::1]", on_xmpp, &b);
	dns_resolve_xmpp_server("bad..name", on_xmpp, &c);
	CHECK(a.calls == 0 && b.calls == 0 && c.calls == 0);
	run_loop();
	CHECK(a.calls == 1 && a.err == 0 && a.n == 1);
	CHECK_STR(a.addr[0], "127.0.0.5:5269");
	CHECK(b.calls == 1 && b.err == 0 && b.n == 1);
	CHECK_STR(b.addr[0], "[::1]:5269");
	CHECK(c.calls == 1 && c.err == -EINVAL && c.n == 0);
}

static void test_cancel(void)
{
	struct dns_static_host h[] = { { "example.net", "127.0.0.2" } };
	struct answer a = { 0 }, b = { 0 };
	struct sbuf err;

	sbuf_init(&err);
	CHECK(dns_set_static_hosts(h, 1, &err) == 0);
	struct dns_query *q = dns_resolve_xmpp_server("example.net", on_xmpp, &a);
	dns_resolve_xmpp_server("example.net", on_xmpp, &b);
	dns_cancel(q);
	dns_cancel(NULL);
	run_loop();
	CHECK(a.calls == 0);
	CHECK(b.calls == 1 && b.n == 1);
	sbuf_free(&err);
}

/* dns_stop with answers owed: none is given, nothing leaks (ASan). */
static void test_stop(void)
{
	struct answer a = { 0 };

	dns_resolve_xmpp_server("127.0.0.1", on_xmpp, &a);
	dns_stop();
	run_loop();
	CHECK(a.calls == 0);
}

int main(void)
{
	RUN(test_parse_addr);
	RUN(test_static_hosts);
	RUN(test_literals);
	RUN(test_cancel);
	RUN(test_stop);
	TEST_END();
}
