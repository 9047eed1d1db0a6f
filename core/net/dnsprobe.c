/* dnsprobe.c - blocking lookups for starlingctl check (libunbound). */
#include "dnsprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unbound.h>

#define DEFAULT_TIMEOUT 10.0
#define MAX_RR 64

struct dns_probe {
	struct ub_ctx *ctx;
	double timeout;
};

/* One question under way: filled in by on_result. */
struct pending {
	bool done;
	int err;
	struct ub_result *r;
};

struct dns_probe *dns_probe_new(const struct dns_options *o, struct sbuf *err)
{
	struct ub_ctx *ctx = dns_ctx_new(o, err);
	struct dns_probe *p;

	if (!ctx)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->ctx = ctx;
	p->timeout = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
	return p;
}

void dns_probe_free(struct dns_probe *p)
{
	if (!p)
		return;
	ub_ctx_delete(p->ctx);
	free(p);
}

void dns_answer_free(struct dns_answer *a)
{
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

const char *dns_answer_strerror(int err)
{
	switch (err) {
	case 0: return "no error";
	case -ENOENT: return "the name does not exist";
	case -ETIMEDOUT: return "no answer in time (dns_timeout)";
	case -EAGAIN: return "the resolver failed (SERVFAIL)";
	case -EBADMSG: return "the answer failed DNSSEC validation (bogus)";
	case -EINVAL: return "not a domain name";
	default: return strerror(-err);
	}
}

static void on_result(void *data, int err, struct ub_result *r)
{
	struct pending *pd = data;

	pd->done = true;
	pd->err = err;
	pd->r = r;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for pd until the deadline: 0 or -ETIMEDOUT (the query cancelled). */
static int wait_result(struct dns_probe *p, struct pending *pd, int id)
{
	double deadline = now() + p->timeout;
	struct pollfd pfd = { .fd = ub_fd(p->ctx), .events = POLLIN };

	while (!pd->done) {
		double left = deadline - now();
		if (left <= 0) {
			ub_cancel(p->ctx, id);
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0)
			ub_process(p->ctx);
	}
	return 0;
}

static void add_srv(struct dns_answer *a, const unsigned char *d, size_t len)
{
	struct dns_rr *rr = &a->rr[a->n];
	char *target;

	if (len < 7 || !(target = dns_wire_name(d + 6, len - 6)))
		return;
	rr->prio = (uint16_t)(d[0] << 8 | d[1]);
	rr->weight = (uint16_t)(d[2] << 8 | d[3]);
	rr->port = (uint16_t)(d[4] << 8 | d[5]);
	snprintf(rr->text, sizeof(rr->text), "%s", target);
	free(target);
	a->n++;
}

static void add_addr(struct dns_answer *a, int rrtype, const unsigned char *d, size_t len)
{
	int family = rrtype == DNS_T_AAAA ? AF_INET6 : AF_INET;

	if (len != (family == AF_INET6 ? 16u : 4u))
		return;
	if (inet_ntop(family, d, a->rr[a->n].text, sizeof(a->rr[a->n].text)))
		a->n++;
}

static void fill(struct dns_answer *a, int rrtype, const struct ub_result *r)
{
	size_t count = 0;

	a->secure = r->secure;
	if (r->bogus) {
		a->err = -EBADMSG;
		return;
	}
	if (r->nxdomain) {
		a->err = -ENOENT;
		return;
	}
	if (r->rcode != 0) {
		a->err = -EAGAIN;
		return;
	}
	while (r->havedata && r->data[count] && count < MAX_RR)
		count++;
	a->rr = count ? xcalloc(count, sizeof(*a->rr)) : NULL;
	for (size_t i = 0; i < count; i++) {
		if (rrtype == DNS_T_SRV)
			add_srv(a, (const unsigned char *)r->data[i], (size_t)r->len[i]);
		else
			add_addr(a, rrtype, (const unsigned char *)r->data[i], (size_t)r->len[i]);
	}
}

void dns_probe_ask(struct dns_probe *p, const char *name, int rrtype, struct dns_answer *a)
{
	struct pending pd = { 0 };
	char *ascii = dns_ascii_domain(name);
	int id, e;

	memset(a, 0, sizeof(*a));
	if (!ascii) {
		a->err = -EINVAL;
		return;
	}
	e = ub_resolve_async(p->ctx, ascii, rrtype, 1, &pd, on_result, &id);
	free(ascii);
	if (e != 0) {
		a->err = -EAGAIN;
		return;
	}
	a->err = wait_result(p, &pd, id);
	if (a->err == 0 && pd.err != 0)
		a->err = -EAGAIN;
	if (a->err == 0 && pd.r)
		fill(a, rrtype, pd.r);
	if (pd.r)
		ub_resolve_free(pd.r);
}
