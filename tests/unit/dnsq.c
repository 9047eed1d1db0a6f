/* dnsq.c - asks core/net/dns.c what a server-to-server connection or DANE
 * would ask, and prints each answer as one JSON line: the driver of
 * tests/interop/test_dns_resolver.py (not a unit test: it needs a DNS
 * server, tests/lib/dnsserver.py).
 *
 *   dnsq [-r RESOLVER]... [-a TRUST_ANCHOR] [-H HOSTS_FILE] [-t TIMEOUT]
 *        [-n COUNT] [-c CANCEL_AFTER] xmpp DOMAIN | tlsa HOST PORT
 *
 * -n asks COUNT times, one query after the other (weights over many
 * runs); -c cancels the query CANCEL_AFTER seconds after it started and
 * waits for twice the timeout: no answer may be printed then. */
#include "dns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct ev_loop *loop;
static int remaining, answers;
static const char *kind, *name;
static uint16_t port;
static struct dns_query *pending;

static void ask(void);

static void print_err(int err)
{
	printf("{\"err\": %d, \"error\": \"%s\"", err, err ? strerror(-err) : "");
}

static void on_xmpp(void *arg, int err, const struct dns_target *t, size_t n)
{
	char buf[80];

	pending = NULL;
	answers++;
	print_err(err);
	printf(", \"targets\": [");
	for (size_t i = 0; i < n; i++)
		printf("%s{\"addr\": \"%s\", \"host\": \"%s\", \"port\": %u, "
		       "\"direct_tls\": %s, \"secure\": %s}", i ? ", " : "",
		       dns_addr_str(&t[i].addr, buf, sizeof(buf)), t[i].host,
		       t[i].port, t[i].direct_tls ? "true" : "false",
		       t[i].secure ? "true" : "false");
	printf("]}\n");
	fflush(stdout);
	if (--remaining > 0)
		ask();
}

static void on_tlsa(void *arg, int err, const struct dns_tlsa *r, size_t n)
{
	pending = NULL;
	answers++;
	print_err(err);
	printf(", \"tlsa\": [");
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"usage\": %u, \"selector\": %u, \"mtype\": %u, \"data\": \"",
		       i ? ", " : "", r[i].usage, r[i].selector, r[i].mtype);
		for (size_t k = 0; k < r[i].len; k++)
			printf("%02x", r[i].data[k]);
		printf("\"}");
	}
	printf("]}\n");
	fflush(stdout);
	if (--remaining > 0)
		ask();
}

static void ask(void)
{
	if (strcmp(kind, "tlsa") == 0)
		pending = dns_resolve_tlsa(name, port, on_tlsa, NULL);
	else
		pending = dns_resolve_xmpp_server(name, on_xmpp, NULL);
}

static void on_cancel(struct ev_loop *l, ev_timer *w, int revents)
{
	dns_cancel(pending);
	pending = NULL;
}

static void on_end(struct ev_loop *l, ev_timer *w, int revents)
{
	ev_break(l, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	const char *resolvers[8];
	struct dns_options o = { .resolvers = resolvers };
	double cancel_after = -1;
	ev_timer cancel_w, end_w;
	struct sbuf err;
	int opt;

	remaining = 1;
	while ((opt = getopt(argc, argv, "r:a:H:t:n:c:")) != -1) {
		switch (opt) {
		case 'r':
			if (o.n_resolvers < 8)
				resolvers[o.n_resolvers++] = optarg;
			break;
		case 'a': o.trust_anchor = optarg; break;
		case 'H': o.hosts_file = optarg; break;
		case 't': o.timeout = atof(optarg); break;
		case 'n': remaining = atoi(optarg); break;
		case 'c': cancel_after = atof(optarg); break;
		default: return 2;
		}
	}
	if (argc - optind < 2 || (strcmp(argv[optind], "tlsa") == 0 && argc - optind < 3)) {
		fprintf(stderr, "usage: dnsq [options] xmpp DOMAIN | tlsa HOST PORT\n");
		return 2;
	}
	kind = argv[optind];
	name = argv[optind + 1];
	if (strcmp(kind, "tlsa") == 0)
		port = (uint16_t)atoi(argv[optind + 2]);
	loop = ev_default_loop(0);
	sbuf_init(&err);
	if (dns_start(loop, &o, &err) != 0) {
		fprintf(stderr, "dnsq: %s\n", err.p);
		sbuf_free(&err);
		return 1;
	}
	sbuf_free(&err);
	ask();
	if (cancel_after >= 0) {
		ev_timer_init(&cancel_w, on_cancel, cancel_after, 0.);
		ev_timer_start(loop, &cancel_w);
		ev_timer_init(&end_w, on_end, 2 * (o.timeout > 0 ? o.timeout : 10), 0.);
		ev_timer_start(loop, &end_w);
		ev_run(loop, 0);
		ev_timer_stop(loop, &end_w);
	} else {
		while (remaining > 0 && ev_run(loop, EVRUN_ONCE))
			;
		while (remaining > 0 && pending)
			ev_run(loop, EVRUN_ONCE);
	}
	dns_stop();
	ev_loop_destroy(loop);
	printf("{\"answers\": %d}\n", answers);
	return 0;
}
