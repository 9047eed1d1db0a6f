/* dns.c - SRV, A/AAAA and TLSA resolution inside the loop (libunbound),
 * static hosts and IP-literal domains. */
#include "dns.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <idna.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <netinet/in.h>
#include <unistd.h>
#include <unbound.h>

#define T_A	1
#define T_AAAA	28
#define T_SRV	33
#define T_TLSA	52
#define C_IN	1
#define DEFAULT_TIMEOUT 10.0
#define MAX_SRV 64		/* records used from one SRV answer */
#define MAX_ADDRS 16		/* addresses used from one A or AAAA answer */

/* One libunbound context: the current one, or one a reload replaced that
 * still has queries. */
struct resolver {
	struct ub_ctx *ctx;
	ev_io io;
	unsigned refs;		/* queries on it, plus one while current */
	double timeout;
};

/* One SRV record (or the domain itself on fallback) and its addresses. */
struct srv {
	uint16_t prio, weight, port;
	bool tls, secure, bogus;
	char *host;
	struct in6_addr a6[MAX_ADDRS];
	struct in_addr a4[MAX_ADDRS];
	size_t n6, n4;
	bool sec6, sec4;
};

/* One ub_resolve_async under way. */
struct lookup {
	struct dns_query *q;
	int id, rrtype;
	size_t idx;		/* the srv it is for */
	struct lookup *next;
};

enum stage { STAGE_SRV, STAGE_ADDR, STAGE_TLSA, STAGE_DONE };

/* What the answers of a stage said, for the error when nothing is left. */
enum { SEEN_NXDOMAIN = 1, SEEN_SERVFAIL = 2, SEEN_BOGUS = 4, SEEN_DOT = 8 };

struct dns_query {
	enum stage stage;
	char *name;		/* the domain (ASCII), or the TLSA owner name */
	dns_xmpp_fn cb;
	dns_tlsa_fn tcb;
	void *arg;
	struct resolver *res;	/* NULL for static and literal answers */
	struct lookup *lookups;
	ev_timer timer;
	struct srv *srv;
	size_t n_srv;
	unsigned seen;
	bool xmpp_dot;		/* _xmpp-server._tcp said "." */
	int err;
	struct dns_target *t;
	size_t n_t;
	struct dns_tlsa *tlsa;
	size_t n_tlsa;
	struct ub_result *tlsa_res;
	bool cancelled;
	struct dns_query *prev, *next;	/* live queries */
	struct dns_query *ready_next;	/* finished, callback owed */
};

static struct ev_loop *loop;
static struct resolver *current;
static struct dns_query *live, *ready_head, **ready_tail = &ready_head;
static ev_timer ready_timer;
static struct dns_static_host *statics;
static size_t n_statics;

/* --- addresses ---------------------------------------------------------------- */

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static socklen_t set_addr(struct sockaddr_storage *ss, int family, const void *a,
			  uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET6)
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, a, 16);
	else
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, a, 4);
	set_port(ss, port);
	return family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* An IP address alone: "127.0.0.1", "::1" or "[::1]". */
static int parse_ip(const char *s, size_t len, struct sockaddr_storage *ss,
		    socklen_t *sl, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN + 2];
	unsigned char a[16];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
		s++, len -= 2;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, a) == 1)
		*sl = set_addr(ss, AF_INET, a, port);
	else if (inet_pton(AF_INET6, buf, a) == 1)
		*sl = set_addr(ss, AF_INET6, a, port);
	else
		return -EINVAL;
	return 0;
}

int dns_parse_addr(const char *s, uint16_t defport, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	const char *colon = strrchr(s, ':'), *end = s + strlen(s);
	long port = defport;

	/* a port after "a.b.c.d:" or "[v6]:"; "::1" alone has none */
	if (colon && (s[0] == '[' ? colon > s && colon[-1] == ']'
				  : strchr(s, ':') == colon)) {
		char *e;
		port = strtol(colon + 1, &e, 10);
		if (colon[1] == '\0' || *e || port <= 0 || port > 65535)
			return -EINVAL;
		end = colon;
	}
	return parse_ip(s, (size_t)(end - s), ss, len, (uint16_t)port);
}

const char *dns_addr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s]:%u", ip, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(buf, n, "%s:%u", ip, ntohs(a->sin_port));
	}
	return buf;
}

/* --- static hosts --------------------------------------------------------------- */

static void free_statics(struct dns_static_host *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)h[i].domain);
		free((char *)h[i].addr);
	}
	free(h);
}

int dns_set_static_hosts(const struct dns_static_host *h, size_t n, struct sbuf *err)
{
	struct dns_static_host *copy = n ? xcalloc(n, sizeof(*copy)) : NULL;
	struct sockaddr_storage ss;
	socklen_t sl;

	for (size_t i = 0; i < n; i++) {
		if (!h[i].domain || !*h[i].domain || !h[i].addr ||
		    dns_parse_addr(h[i].addr, DNS_XMPP_PORT, &ss, &sl) != 0) {
			sbuf_printf(err, "option 's2s_static_hosts': '%s' must map to an IP "
				    "address with an optional port (\"127.0.0.2:5269\", "
				    "\"[::1]:5269\"), not '%s'", h[i].domain ? h[i].domain : "?",
				    h[i].addr ? h[i].addr : "?");
			free_statics(copy, i);
			return -EINVAL;
		}
		copy[i].domain = xstrdup(h[i].domain);
		copy[i].addr = xstrdup(h[i].addr);
	}
	free_statics(statics, n_statics);
	statics = copy;
	n_statics = n;
	return 0;
}

static const char *static_addr(const char *domain)
{
	for (size_t i = 0; i < n_statics; i++)
		if (strcasecmp(statics[i].domain, domain) == 0)
			return statics[i].addr;
	return NULL;
}

/* --- queries: life and delivery -------------------------------------------------- */

static void resolver_unref(struct resolver *r);

static void on_ready(struct ev_loop *l, ev_timer *w, int revents);

static void use_loop(struct ev_loop *l)
{
	if (loop)
		return;
	loop = l;
	ev_timer_init(&ready_timer, on_ready, 0., 0.);
}

static struct dns_query *query_new(const char *name, dns_xmpp_fn cb, dns_tlsa_fn tcb,
				   void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	/* answers are deferred to a loop even before dns_start (static
	 * hosts need no resolver): the default one then */
	use_loop(ev_default_loop(0));

	q->name = xstrdup(name);
	q->cb = cb;
	q->tcb = tcb;
	q->arg = arg;
	q->next = live;
	if (live)
		live->prev = q;
	live = q;
	return q;
}

static void lookups_cancel(struct dns_query *q)
{
	struct lookup *l, *next;

	for (l = q->lookups; l; l = next) {
		next = l->next;
		ub_cancel(q->res->ctx, l->id);
		free(l);
	}
	q->lookups = NULL;
}

static void query_free(struct dns_query *q)
{
	lookups_cancel(q);
	if (loop)
		ev_timer_stop(loop, &q->timer);
	if (q->prev)
		q->prev->next = q->next;
	else if (live == q)
		live = q->next;
	if (q->next)
		q->next->prev = q->prev;
	for (size_t i = 0; i < q->n_srv; i++)
		free(q->srv[i].host);
	free(q->srv);
	for (size_t i = 0; i < q->n_t; i++)
		free(q->t[i].host);
	free(q->t);
	free(q->tlsa);
	if (q->tlsa_res)
		ub_resolve_free(q->tlsa_res);
	if (q->res)
		resolver_unref(q->res);
	free(q->name);
	free(q);
}

/* The answer is complete: the callback is owed, from the loop. */
static void query_finish(struct dns_query *q, int err)
{
	lookups_cancel(q);
	ev_timer_stop(loop, &q->timer);
	q->err = err;
	q->stage = STAGE_DONE;
	q->ready_next = NULL;
	*ready_tail = q;
	ready_tail = &q->ready_next;
	if (!ev_is_active(&ready_timer)) {
		ev_timer_set(&ready_timer, 0., 0.);
		ev_timer_start(loop, &ready_timer);
	}
}

/* Callbacks of finished queries; one a callback starts waits for the next
 * round (it is queued after those taken now). */
static void deliver_ready(void)
{
	struct dns_query *q = ready_head;

	ready_head = NULL;
	ready_tail = &ready_head;
	while (q) {
		struct dns_query *next = q->ready_next;
		if (!q->cancelled) {
			q->cancelled = true;	/* dns_cancel inside the callback: no-op */
			if (q->tcb)
				q->tcb(q->arg, q->err, q->tlsa, q->n_tlsa);
			else
				q->cb(q->arg, q->err, q->t, q->n_t);
		}
		query_free(q);
		q = next;
	}
}

static void on_ready(struct ev_loop *l, ev_timer *w, int revents)
{
	deliver_ready();
}

void dns_cancel(struct dns_query *q)
{
	if (!q || q->cancelled)
		return;
	q->cancelled = true;
	if (q->stage != STAGE_DONE)
		query_free(q);	/* else freed when the ready list is delivered */
}

static void add_target(struct dns_query *q, const struct sockaddr_storage *ss,
		       socklen_t sl, const char *host, uint16_t port, bool tls, bool secure)
{
	struct dns_target *t;

	q->t = xrealloc(q->t, (q->n_t + 1) * sizeof(*q->t));
	t = &q->t[q->n_t++];
	memset(t, 0, sizeof(*t));
	t->addr = *ss;
	t->addrlen = sl;
	set_port(&t->addr, port);
	t->host = xstrdup(host);
	t->port = port;
	t->direct_tls = tls;
	t->secure = secure;
}

/* --- names ---------------------------------------------------------------------- */

/* domain as DNS wants it: IDNA A-labels, no trailing dot, sane lengths.
 * NULL when it is not a domain name. Freed by the caller. */
char *dns_ascii_domain(const char *domain)
{
	char *out = NULL;
	size_t len, label = 0;

	for (const unsigned char *p = (const unsigned char *)domain; *p; p++)
		if (*p >= 0x80) {
			if (idna_to_ascii_8z(domain, &out, 0) != IDNA_SUCCESS)
				return NULL;
			break;
		}
	if (!out)
		out = xstrdup(domain);
	len = strlen(out);
	if (len && out[len - 1] == '.')
		out[--len] = '\0';
	if (len == 0 || len > 253)
		goto bad;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63)
				goto bad;
			label = 0;
		} else if (c <= ' ' || c >= 0x7f || c == '\\' || c == '@' || c == '/') {
			goto bad;
		} else {
			label++;
		}
	}
	return out;
bad:
	free(out);
	return NULL;
}

/* A name in wire format (rdata, uncompressed) as text without the final
 * dot: "." for the root. NULL when it is malformed or has a byte a host
 * name cannot have. */
char *dns_wire_name(const unsigned char *p, size_t n)
{
	struct sbuf b;
	size_t i = 0;

	sbuf_init(&b);
	while (i < n && p[i]) {
		size_t l = p[i++];
		if (l > 63 || i + l > n)
			goto bad;
		if (b.len)
			sbuf_addc(&b, '.');
		for (size_t j = 0; j < l; j++) {
			unsigned char c = p[i + j];
			if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\')
				goto bad;
			sbuf_addc(&b, (char)tolower(c));
		}
		i += l;
	}
	if (i >= n)
		goto bad;
	if (!b.len)
		sbuf_addc(&b, '.');
	return b.p;
bad:
	sbuf_free(&b);
	return NULL;
}

/* --- libunbound ------------------------------------------------------------------ */

static void on_answer(void *data, int err, struct ub_result *r);

static void resolver_free(struct resolver *r)
{
	ev_ref(loop);		/* it was unreferenced when started */
	ev_io_stop(loop, &r->io);
	ub_ctx_delete(r->ctx);
	free(r);
}

static void resolver_unref(struct resolver *r)
{
	if (--r->refs == 0)
		resolver_free(r);
}

static void on_ub_fd(struct ev_loop *l, ev_io *w, int revents)
{
	struct resolver *r = container_of(w, struct resolver, io);
	int err;

	r->refs++;		/* a query freed below must not free r yet */
	if ((err = ub_process(r->ctx)) != 0)
		log_warn("dns: %s", ub_strerror(err));
	resolver_unref(r);
	deliver_ready();
}

static int lookup_start(struct dns_query *q, const char *name, int rrtype, size_t idx)
{
	struct lookup *l = xcalloc(1, sizeof(*l));
	int err;

	l->q = q;
	l->rrtype = rrtype;
	l->idx = idx;
	err = ub_resolve_async(q->res->ctx, name, rrtype, C_IN, l, on_answer, &l->id);
	if (err) {
		log_warn("dns: cannot ask for %s: %s", name, ub_strerror(err));
		free(l);
		return -EAGAIN;
	}
	l->next = q->lookups;
	q->lookups = l;
	return 0;
}

static void lookup_unlink(struct lookup *l)
{
	struct lookup **pp = &l->q->lookups;

	while (*pp && *pp != l)
		pp = &(*pp)->next;
	if (*pp)
		*pp = l->next;
}

/* SRV rdata: priority, weight, port, target (RFC 2782). */
static void add_srv_records(struct dns_query *q, const struct ub_result *r, bool tls)
{
	for (size_t i = 0; r->data[i] && q->n_srv < MAX_SRV; i++) {
		const unsigned char *d = (const unsigned char *)r->data[i];
		char *host;
		if (r->len[i] < 7 || !(host = dns_wire_name(d + 6, (size_t)r->len[i] - 6)))
			continue;
		if (strcmp(host, ".") == 0) {
			/* "." alone: decidedly not offered (RFC 2782) */
			if (!tls)
				q->xmpp_dot = true;
			q->seen |= SEEN_DOT;
			free(host);
			continue;
		}
		q->srv = xrealloc(q->srv, (q->n_srv + 1) * sizeof(*q->srv));
		struct srv *s = &q->srv[q->n_srv++];
		memset(s, 0, sizeof(*s));
		s->prio = (uint16_t)(d[0] << 8 | d[1]);
		s->weight = (uint16_t)(d[2] << 8 | d[3]);
		s->port = (uint16_t)(d[4] << 8 | d[5]);
		s->tls = tls;
		s->secure = r->secure;
		s->host = host;
	}
}

static uint32_t random_below(uint32_t n)
{
	uint32_t v;

	random_bytes(&v, sizeof(v));
	return n ? v % n : 0;
}

static int by_priority(const void *a, const void *b)
{
	const struct srv *x = a, *y = b;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	/* weight 0 first within a priority, as RFC 2782 arranges them */
	return (x->weight != 0) - (y->weight != 0);
}

/* RFC 2782 order: priority ascending; within a priority, repeatedly pick
 * a record at random with probability weight / (sum of the weights left),
 * zero-weight records having a small chance before the others. */
static void order_srv(struct srv *s, size_t n)
{
	qsort(s, n, sizeof(*s), by_priority);
	for (size_t i = 0; i < n;) {
		size_t end = i;
		while (end < n && s[end].prio == s[i].prio)
			end++;
		for (size_t k = i; k < end; k++) {
			uint32_t sum = 0, pick, run = 0;
			size_t j;
			for (j = k; j < end; j++)
				sum += s[j].weight;
			pick = random_below(sum + 1);
			for (j = k; j < end; j++) {
				run += s[j].weight;
				if (run >= pick)
					break;
			}
			if (j == end)
				j = end - 1;
			/* j goes to k; the rest keep their order (zeros first) */
			struct srv picked = s[j];
			memmove(&s[k + 1], &s[k], (j - k) * sizeof(*s));
			s[k] = picked;
		}
		i = end;
	}
}

/* Asks for A and AAAA of every srv. */
static void start_addresses(struct dns_query *q)
{
	q->stage = STAGE_ADDR;
	q->seen &= SEEN_DOT;
	for (size_t i = 0; i < q->n_srv; i++) {
		if (lookup_start(q, q->srv[i].host, T_AAAA, i) != 0 ||
		    lookup_start(q, q->srv[i].host, T_A, i) != 0) {
			query_finish(q, -EAGAIN);
			return;
		}
	}
}

static void srv_done(struct dns_query *q)
{
	if (q->seen & SEEN_BOGUS) {
		query_finish(q, -EBADMSG);
		return;
	}
	if (q->n_srv) {
		order_srv(q->srv, q->n_srv);
		start_addresses(q);
		return;
	}
	if (q->xmpp_dot) {
		query_finish(q, -ENOENT);
		return;
	}
	/* no SRV records (or no answer about them): the domain on 5269
	 * (RFC 6120 3.2.2) */
	q->srv = xcalloc(1, sizeof(*q->srv));
	q->n_srv = 1;
	q->srv[0].host = xstrdup(q->name);
	q->srv[0].port = DNS_XMPP_PORT;
	q->srv[0].secure = true;	/* only the addresses' answer counts */
	start_addresses(q);
}

/* Every srv's addresses, interleaved IPv6 first (RFC 8305 4). */
static void addresses_done(struct dns_query *q)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	for (size_t i = 0; i < q->n_srv; i++) {
		struct srv *s = &q->srv[i];
		if (s->bogus)
			continue;
		for (size_t k = 0; k < MAX(s->n6, s->n4); k++) {
			if (k < s->n6) {
				sl = set_addr(&ss, AF_INET6, &s->a6[k], s->port);
				add_target(q, &ss, sl, s->host, s->port, s->tls,
					   s->secure && s->sec6);
			}
			if (k < s->n4) {
				sl = set_addr(&ss, AF_INET, &s->a4[k], s->port);
				add_target(q, &ss, sl, s->host, s->port, s->tls,
					   s->secure && s->sec4);
			}
		}
	}
	if (q->n_t)
		query_finish(q, 0);
	else if (q->seen & SEEN_BOGUS)
		query_finish(q, -EBADMSG);
	else if (q->seen & SEEN_SERVFAIL)
		query_finish(q, -EAGAIN);
	else
		query_finish(q, -ENOENT);
}

static void add_addresses(struct srv *s, const struct ub_result *r)
{
	bool v6 = r->qtype == T_AAAA;
	size_t want = v6 ? 16 : 4;

	for (size_t i = 0; r->data[i]; i++) {
		if ((size_t)r->len[i] != want)
			continue;
		if (v6 && s->n6 < MAX_ADDRS)
			memcpy(&s->a6[s->n6++], r->data[i], 16);
		else if (!v6 && s->n4 < MAX_ADDRS)
			memcpy(&s->a4[s->n4++], r->data[i], 4);
	}
	if (v6)
		s->sec6 = r->secure;
	else
		s->sec4 = r->secure;
}

/* TLSA rdata: usage, selector, matching type, data (RFC 6698 2.1). */
static void tlsa_answer(struct dns_query *q, struct ub_result *r)
{
	if (r->bogus) {
		query_finish(q, -EBADMSG);
		ub_resolve_free(r);
		return;
	}
	if (r->rcode == 2) {
		query_finish(q, -EAGAIN);
		ub_resolve_free(r);
		return;
	}
	if (r->secure && r->havedata) {
		size_t n = 0;
		while (r->data[n])
			n++;
		q->tlsa = xcalloc(n, sizeof(*q->tlsa));
		for (size_t i = 0; i < n; i++) {
			const unsigned char *d = (const unsigned char *)r->data[i];
			if (r->len[i] < 4)
				continue;
			struct dns_tlsa *t = &q->tlsa[q->n_tlsa++];
			t->usage = d[0];
			t->selector = d[1];
			t->mtype = d[2];
			t->data = d + 3;
			t->len = (size_t)r->len[i] - 3;
		}
	}
	q->tlsa_res = r;
	query_finish(q, 0);
}

/* libunbound's callback, inside ub_process(): records what the answer
 * says; callbacks of ours run after ub_process() returns. */
static void on_answer(void *data, int err, struct ub_result *r)
{
	struct lookup *l = data;
	struct dns_query *q = l->q;

	lookup_unlink(l);
	if (err || !r) {
		log_debug("dns: %s: %s", q->name, ub_strerror(err));
		q->seen |= SEEN_SERVFAIL;
	} else if (q->stage == STAGE_TLSA) {
		free(l);
		tlsa_answer(q, r);
		return;
	} else if (r->bogus) {
		log_warn("dns: DNSSEC validation failed for %s: %s", r->qname,
			 r->why_bogus ? r->why_bogus : "bogus");
		q->seen |= SEEN_BOGUS;
		if (q->stage == STAGE_ADDR)
			q->srv[l->idx].bogus = true;
	} else if (r->rcode && !r->nxdomain) {
		q->seen |= SEEN_SERVFAIL;	/* SERVFAIL, REFUSED */
	} else if (r->nxdomain) {
		q->seen |= SEEN_NXDOMAIN;
	} else if (r->havedata && q->stage == STAGE_SRV) {
		add_srv_records(q, r, l->idx == 1);
	} else if (r->havedata) {
		add_addresses(&q->srv[l->idx], r);
	}
	if (r)
		ub_resolve_free(r);
	free(l);
	if (q->lookups)
		return;
	if (q->stage == STAGE_SRV)
		srv_done(q);
	else if (q->stage == STAGE_ADDR)
		addresses_done(q);
	else if (q->stage == STAGE_TLSA)
		query_finish(q, -EAGAIN);
}

/* dns_timeout: what has come in so far, else -ETIMEDOUT. */
static void on_timeout(struct ev_loop *l, ev_timer *w, int revents)
{
	struct dns_query *q = container_of(w, struct dns_query, timer);

	log_info("dns: no answer for %s within %.0f s", q->name, q->res->timeout);
	lookups_cancel(q);
	if (q->stage == STAGE_ADDR) {
		q->seen = 0;
		addresses_done(q);
		if (q->err == -ENOENT)
			q->err = -ETIMEDOUT;
	} else {
		query_finish(q, -ETIMEDOUT);
	}
}

static bool query_on_resolver(struct dns_query *q)
{
	if (!current) {
		query_finish(q, -ENOTCONN);
		return false;
	}
	q->res = current;
	current->refs++;
	ev_timer_init(&q->timer, on_timeout, current->timeout, 0.);
	ev_timer_start(loop, &q->timer);
	return true;
}

/* --- the API -------------------------------------------------------------------- */

struct dns_query *dns_resolve_xmpp_server(const char *domain, dns_xmpp_fn cb, void *arg)
{
	struct dns_query *q = query_new(domain, cb, NULL, arg);
	const char *fixed = static_addr(domain);
	struct sockaddr_storage ss;
	socklen_t sl;
	char *name, srv[300];

	if (fixed && dns_parse_addr(fixed, DNS_XMPP_PORT, &ss, &sl) == 0) {
		add_target(q, &ss, sl, domain, ntohs(ss.ss_family == AF_INET6 ?
			   ((struct sockaddr_in6 *)&ss)->sin6_port :
			   ((struct sockaddr_in *)&ss)->sin_port), false, false);
		query_finish(q, 0);
		return q;
	}
	if (parse_ip(domain, strlen(domain), &ss, &sl, DNS_XMPP_PORT) == 0) {
		add_target(q, &ss, sl, domain, DNS_XMPP_PORT, false, false);
		query_finish(q, 0);
		return q;
	}
	if (!(name = dns_ascii_domain(domain))) {
		query_finish(q, -EINVAL);
		return q;
	}
	free(q->name);
	q->name = name;
	if (!query_on_resolver(q))
		return q;
	q->stage = STAGE_SRV;
	snprintf(srv, sizeof(srv), "_xmpp-server._tcp.%s", name);
	if (lookup_start(q, srv, T_SRV, 0) != 0) {
		query_finish(q, -EAGAIN);
		return q;
	}
	snprintf(srv, sizeof(srv), "_xmpps-server._tcp.%s", name);
	if (lookup_start(q, srv, T_SRV, 1) != 0)
		query_finish(q, -EAGAIN);
	return q;
}

struct dns_query *dns_resolve_tlsa(const char *host, uint16_t port, dns_tlsa_fn cb, void *arg)
{
	struct dns_query *q = query_new(host, NULL, cb, arg);
	char *name, owner[300];

	if (!(name = dns_ascii_domain(host))) {
		query_finish(q, -EINVAL);
		return q;
	}
	snprintf(owner, sizeof(owner), "_%u._tcp.%s", port, name);
	free(name);
	free(q->name);
	q->name = xstrdup(owner);
	if (!query_on_resolver(q))
		return q;
	q->stage = STAGE_TLSA;
	if (lookup_start(q, owner, T_TLSA, 0) != 0)
		query_finish(q, -EAGAIN);
	return q;
}

/* --- the resolver's configuration ---------------------------------------------------- */

/* "addr", "addr@port", "addr:port" (IPv4), "[addr]:port" as unbound's
 * "addr@port" in out. */
static int forwarder(const char *s, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char ip[INET6_ADDRSTRLEN], tmp[INET6_ADDRSTRLEN + 16];
	const char *at = strchr(s, '@');
	uint16_t port;

	if (at) {
		char *e;
		long p = strtol(at + 1, &e, 10);
		if (at[1] == '\0' || *e || p <= 0 || p > 65535 ||
		    (size_t)(at - s) >= sizeof(tmp))
			return -EINVAL;
		snprintf(tmp, sizeof(tmp), "%.*s", (int)(at - s), s);
		if (dns_parse_addr(tmp, (uint16_t)p, &ss, &sl) != 0 || strchr(tmp, ']'))
			return -EINVAL;
	} else if (dns_parse_addr(s, 53, &ss, &sl) != 0) {
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	snprintf(out, n, "%s@%u", ip, port);
	return 0;
}

static int ub_fail(struct sbuf *err, const char *what, int e)
{
	sbuf_printf(err, "%s: %s", what, ub_strerror(e));
	return -EINVAL;
}

struct ub_ctx *dns_ctx_new(const struct dns_options *o, struct sbuf *err)
{
	struct ub_ctx *ctx = ub_ctx_create();
	char fwd[INET6_ADDRSTRLEN + 8];
	int e, r = 0;

	if (!ctx) {
		sbuf_printf(err, "dns: cannot create a resolver");
		return NULL;
	}
	/* resolvers on loopback (127.0.0.53, a local unbound) are usual */
	if ((e = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0)
		r = ub_fail(err, "dns", e);
	for (size_t i = 0; r == 0 && i < o->n_resolvers; i++) {
		if (forwarder(o->resolvers[i], fwd, sizeof(fwd)) != 0) {
			sbuf_printf(err, "option 'dns_resolver': '%s' is not an IP address "
				    "with an optional port (\"127.0.0.53\", \"127.0.0.1@5353\", "
				    "\"[::1]:53\")", o->resolvers[i]);
			r = -EINVAL;
		} else if ((e = ub_ctx_set_fwd(ctx, fwd)) != 0) {
			r = ub_fail(err, "option 'dns_resolver'", e);
		}
	}
	if (r == 0 && !o->n_resolvers && (e = ub_ctx_resolvconf(ctx, NULL)) != 0)
		r = ub_fail(err, "dns: /etc/resolv.conf", e);
	if (r == 0 && (!o->hosts_file || *o->hosts_file) &&
	    (e = ub_ctx_hosts(ctx, o->hosts_file)) != 0) {
		sbuf_printf(err, "option 'dns_hosts_file': cannot read %s: %s",
			    o->hosts_file ? o->hosts_file : "/etc/hosts", ub_strerror(e));
		r = -EINVAL;
	}
	/* libunbound reads it on the first query: say a bad path now */
	if (r == 0 && o->trust_anchor && access(o->trust_anchor, R_OK) != 0) {
		sbuf_printf(err, "option 'dns_trust_anchor': cannot read %s: %s",
			    o->trust_anchor, strerror(errno));
		r = -EINVAL;
	}
	if (r == 0 && o->trust_anchor && (e = ub_ctx_add_ta_file(ctx, o->trust_anchor)) != 0) {
		sbuf_printf(err, "option 'dns_trust_anchor': cannot read %s: %s",
			    o->trust_anchor, ub_strerror(e));
		r = -EINVAL;
	}
	/* a thread, not a forked process: nothing of ours is duplicated */
	if (r == 0 && (e = ub_ctx_async(ctx, 1)) != 0)
		r = ub_fail(err, "dns", e);
	if (r != 0) {
		ub_ctx_delete(ctx);
		return NULL;
	}
	return ctx;
}

int dns_check_options(const struct dns_options *o, struct sbuf *err)
{
	struct ub_ctx *ctx = dns_ctx_new(o, err);

	if (!ctx)
		return -EINVAL;
	ub_ctx_delete(ctx);
	return 0;
}

int dns_start(struct ev_loop *l, const struct dns_options *o, struct sbuf *err)
{
	struct ub_ctx *ctx = dns_ctx_new(o, err);
	struct resolver *r;

	if (!ctx)
		return -EINVAL;
	use_loop(l);
	r = xcalloc(1, sizeof(*r));
	r->ctx = ctx;
	r->refs = 1;
	r->timeout = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
	ev_io_init(&r->io, on_ub_fd, ub_fd(ctx), EV_READ);
	ev_io_start(loop, &r->io);
	ev_unref(loop);		/* the resolver alone keeps nothing running */
	if (current)
		resolver_unref(current);
	current = r;
	return 0;
}

void dns_stop(void)
{
	struct dns_query *q;

	while ((q = live)) {
		q->cancelled = true;
		if (q->stage == STAGE_DONE) {
			/* on the ready list: take it off by delivering nothing */
			live = q->next;
			if (live)
				live->prev = NULL;
			q->next = q->prev = NULL;
			continue;
		}
		query_free(q);
	}
	deliver_ready();	/* frees the cancelled ones, no callback */
	if (loop)
		ev_timer_stop(loop, &ready_timer);
	if (current) {
		resolver_unref(current);
		current = NULL;
	}
	free_statics(statics, n_statics);
	statics = NULL;
	n_statics = 0;
}
