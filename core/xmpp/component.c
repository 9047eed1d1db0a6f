/* component.c - the external component role (XEP-0114): the handshake,
 * the component's stanzas into the router, and each external domain's
 * link (its streams, and what waits while it has none). */
#include "component.h"
#include "hmap.h"
#include "ipstate.h"
#include "jid.h"
#include "log.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/evp.h>

bool (*component_options_hook)(const char *domain, struct component_options *out);

/* A stanza waiting for its domain's component. */
struct queued {
	struct st_doc *doc;
	struct st_node *node;
	double at;		/* monotonic, s */
	struct queued *next;
};

/* One external domain. */
struct link {
	char *domain;
	struct session **streams;	/* authenticated, in connection order */
	size_t n, cap;
	struct queued *head, **tail;
	size_t queued;
	ev_timer expiry;		/* the oldest queued stanza's */
};

/* A component stream's own state (s->role_data). */
struct comp {
	struct link *link;		/* set once authenticated */
	double since;			/* wall clock */
	unsigned long in, out;
};

static struct hmap links;		/* domain -> struct link */
static bool links_ready;

static bool options(const char *domain, struct component_options *o)
{
	memset(o, 0, sizeof(*o));
	o->max_connections = 1;
	o->queue_timeout = 30;
	return component_options_hook && component_options_hook(domain, o);
}

/* --- links ------------------------------------------------------------------------ */

static void on_expiry(struct ev_loop *loop, ev_timer *t, int revents);

static struct link *link_get(const char *domain)
{
	struct link *l;

	if (!links_ready) {
		hmap_init(&links);
		links_ready = true;
	}
	if ((l = hmap_get(&links, domain)))
		return l;
	l = xcalloc(1, sizeof(*l));
	l->domain = xstrdup(domain);
	l->tail = &l->head;
	ev_timer_init(&l->expiry, on_expiry, 0., 0.);
	hmap_set(&links, domain, l);
	return l;
}

static struct queued *queue_pop(struct link *l)
{
	struct queued *q = l->head;

	if (!q)
		return NULL;
	l->head = q->next;
	if (!l->head)
		l->tail = &l->head;
	l->queued--;
	return q;
}

/* Whether the link holds nothing and can go. */
static void link_maybe_free(struct link *l)
{
	if (l->n || l->head)
		return;
	ev_timer_stop(conn_loop(), &l->expiry);
	hmap_del(&links, l->domain);
	free(l->streams);
	free(l->domain);
	free(l);
}

/* RFC 6121 8.5 (as for an account that is not there): messages and
 * iq get/set get service-unavailable, presence is dropped. */
static void bounce(const struct st_node *node, const char *text)
{
	if (node->name[0] == 'p')
		return;
	route_bounce(node, "cancel", "service-unavailable", text);
}

static void arm_expiry(struct link *l)
{
	struct component_options o;

	ev_timer_stop(conn_loop(), &l->expiry);
	if (!l->head)
		return;
	options(l->domain, &o);
	double left = l->head->at + o.queue_timeout - now_mono();
	ev_timer_set(&l->expiry, left > 0 ? left : 0., 0.);
	ev_timer_start(conn_loop(), &l->expiry);
}

/* Queued stanzas that waited past component_queue_timeout bounce. */
static void on_expiry(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct link *l = container_of(t, struct link, expiry);
	struct component_options o;
	double now = now_mono();

	options(l->domain, &o);
	while (l->head && l->head->at + o.queue_timeout <= now) {
		struct queued *q = queue_pop(l);
		bounce(q->node, "the component did not come back in time");
		st_doc_unref(q->doc);
		free(q);
	}
	arm_expiry(l);
	link_maybe_free(l);
}

static bool usable(const struct session *s)
{
	return !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD));
}

/* The stream a stanza from 'from' goes to: one sender's stanzas keep
 * one stream (their order), senders spread over the streams. A stream
 * that is closing (its end not yet seen) is passed over; NULL when no
 * stream is left. */
static struct session *pick(struct link *l, const struct st_node *node)
{
	const char *from = st_attr_get(node, "from");
	unsigned long hash = 5381;

	if (!l->n)
		return NULL;
	for (const char *p = from; p && *p && *p != '/'; p++)
		hash = hash * 33 + (unsigned char)*p;
	for (size_t i = 0; i < l->n; i++) {
		struct session *s = l->streams[(hash + i) % l->n];
		if (usable(s))
			return s;
	}
	return NULL;
}

static void send_to(struct session *s, const struct st_node *node)
{
	struct comp *c = s->role_data;

	c->out++;
	session_send(s, node);
}

void component_deliver(struct host *h, struct st_node *node)
{
	struct link *l = links_ready ? hmap_get(&links, h->name) : NULL;
	struct session *s = l ? pick(l, node) : NULL;
	struct component_options o;

	if (s) {
		send_to(s, node);
		return;
	}
	options(h->name, &o);
	if (!o.queue || (l && l->queued >= o.queue)) {
		bounce(node, "the component is not connected");
		return;
	}
	l = link_get(h->name);
	struct queued *q = xcalloc(1, sizeof(*q));
	q->doc = st_clone(node);
	q->node = q->doc->root;
	q->at = now_mono();
	*l->tail = q;
	l->tail = &q->next;
	if (!l->queued++)
		arm_expiry(l);
}

static void link_add(struct link *l, struct session *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 2;
		l->streams = xrealloc(l->streams, l->cap * sizeof(*l->streams));
	}
	l->streams[l->n++] = s;
	/* What waited goes out now, in order. */
	ev_timer_stop(conn_loop(), &l->expiry);
	for (struct queued *q; (q = queue_pop(l)); ) {
		send_to(s, q->node);
		st_doc_unref(q->doc);
		free(q);
	}
}

static void link_remove(struct link *l, struct session *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->streams[i] == s) {
			memmove(&l->streams[i], &l->streams[i + 1],
				(l->n - i - 1) * sizeof(*l->streams));
			l->n--;
			break;
		}
	}
	link_maybe_free(l);
}

int component_each(int (*fn)(void *ctx, const struct component_info *ci), void *ctx)
{
	for (struct session *s = session_first(); s; s = s->all_next) {
		const struct comp *c = s->role_data;
		if (s->role != &component_role || !c || !c->link ||
		    (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			continue;
		struct component_info ci = {
			.domain = c->link->domain, .ip = s->conn ? s->conn->ip : "-",
			.port = s->conn ? s->conn->port : 0, .since = c->since,
			.in = c->in, .out = c->out,
		};
		int r = fn(ctx, &ci);
		if (r)
			return r;
	}
	return 0;
}

void component_free_all(void)
{
	size_t pos = 0;
	const char *k;
	void *v;

	if (!links_ready)
		return;
	while (hmap_next(&links, &pos, &k, &v)) {
		struct link *l = v;
		for (struct queued *q; (q = queue_pop(l)); ) {
			st_doc_unref(q->doc);
			free(q);
		}
		ev_timer_stop(conn_loop(), &l->expiry);
		free(l->streams);
		free(l->domain);
		free(l);
	}
	hmap_free(&links);
	links_ready = false;
}

/* --- the handshake (XEP-0114 3) ------------------------------------------------------ */

/* hex(SHA-1(stream id + secret)) into out (41 bytes). */
static void handshake_digest(const char *id, const char *secret, char out[41])
{
	unsigned char md[20];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, id, strlen(id)) != 1 ||
	    EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 20)
		abort();
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Lower-case hex of 40 digits, compared in constant time. */
static bool digest_ok(const char *given, const char *want)
{
	char low[41];
	size_t n = given ? strlen(given) : 0;

	if (n != 40)
		return false;
	for (size_t i = 0; i < 40; i++)
		low[i] = (char)(given[i] >= 'A' && given[i] <= 'F' ? given[i] + 32 : given[i]);
	low[40] = '\0';
	return ct_memcmp(low, want, 40) == 0;
}

static void authenticated(struct session *s, struct link *l)
{
	struct comp *c = s->role_data;

	s->flags |= SESS_F_AUTHED | SESS_F_BOUND;
	if ((s->flags & SESS_F_COUNTED) && s->conn) {
		ipstate_unauth_del(s->conn->ip);
		s->flags &= ~SESS_F_COUNTED;
	}
	/* A component's stream may be quiet for long: no idle timeout. */
	ev_timer_stop(conn_loop(), &s->timer);
	c->link = l;
	c->since = now_wall();
	session_send_str(s, "<handshake/>");
	log_info("component %s connected (%s:%d, %zu stream%s)", l->domain,
		 s->conn ? s->conn->ip : "?", s->conn ? s->conn->port : 0,
		 l->n + 1, l->n ? "s" : "");
	link_add(l, s);
	struct event ev = { .session = s };
	route_fire(route_host(l->domain), "component-connected", &ev);
}

static void handle_handshake(struct session *s, struct st_doc *doc, struct st_node *n)
{
	struct component_options o;
	char want[41];
	struct link *l;

	if (s->flags & SESS_F_AUTHED) {
		session_close(s, "not-authorized", "already authenticated");
		return;
	}
	if (!options(s->host, &o) || !o.secret || !*o.secret) {
		log_warn("component %s: no component_secret in its Component section: "
			 "refused", s->host);
		session_close(s, "not-authorized", "no secret is configured for this domain");
		return;
	}
	handshake_digest(s->id, o.secret, want);
	if (!digest_ok(st_text(doc, n), want)) {
		log_info("component %s: wrong secret (%s)", s->host, session_src(s));
		session_close(s, "not-authorized", NULL);
		return;
	}
	l = link_get(s->host);
	size_t live = 0;
	for (size_t i = 0; i < l->n; i++)
		live += usable(l->streams[i]);
	if (live >= o.max_connections) {
		log_info("component %s: already connected (%zu of %u): refused %s",
			 s->host, live, o.max_connections, session_src(s));
		session_close(s, "conflict", "a component is connected for this domain");
		link_maybe_free(l);
		return;
	}
	authenticated(s, l);
}

/* --- stanzas ------------------------------------------------------------------------- */

/* Whether domain is the component's or a subdomain of it. */
static bool own_domain(const char *domain, const char *ours)
{
	size_t n = strlen(domain), k = strlen(ours);

	return strcmp(domain, ours) == 0 ||
	       (n > k + 1 && domain[n - k - 1] == '.' && strcmp(domain + n - k, ours) == 0);
}

/* XEP-0114 and RFC 6120 8.1: 'from' within the component's domain
 * (invalid-from), a 'to' (improper-addressing). Takes doc. */
static void handle_stanza(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;
	struct comp *c = s->role_data;
	const char *from = st_attr_get(n, "from"), *to = st_attr_get(n, "to");
	struct jid jf;

	if (!(s->flags & SESS_F_AUTHED)) {
		session_close(s, "not-authorized", "send the handshake first");
		goto out;
	}
	if (!from) {
		session_close(s, "improper-addressing", "a stanza needs a 'from'");
		goto out;
	}
	if (jid_parse(from, &jf) != 0 || !own_domain(jf.domain, c->link->domain)) {
		log_info("component %s: stanza from %s: invalid-from", c->link->domain, from);
		session_close(s, "invalid-from", NULL);
		goto out;
	}
	if (!to) {
		session_close(s, "improper-addressing", "a stanza needs a 'to'");
		goto out;
	}
	c->in++;
	st_rename_ns(n, NS_COMPONENT, NS_CLIENT);
	struct event ev = { .origin = s, .doc = doc, .stanza = n };
	if (route_fire(route_host(c->link->domain), "route/component", &ev))
		goto out;
	route_stanza(doc, n, s);
out:
	st_doc_unref(doc);
}

/* --- the role ------------------------------------------------------------------------ */

static void comp_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;

	if (strcmp(n->ns, NS_COMPONENT) == 0 &&
	    (strcmp(n->name, "message") == 0 || strcmp(n->name, "presence") == 0 ||
	     strcmp(n->name, "iq") == 0)) {
		handle_stanza(s, doc);		/* takes doc */
		return;
	}
	if (strcmp(n->ns, NS_COMPONENT) == 0 && strcmp(n->name, "handshake") == 0)
		handle_handshake(s, doc, n);
	else if (!(s->flags & SESS_F_AUTHED))
		session_close(s, "not-authorized", NULL);
	else
		session_close(s, "unsupported-stanza-type", NULL);
	st_doc_unref(doc);
}

/* The header names a Component of ours that no module serves. */
static bool comp_header(struct session *s, const struct st_node *hdr)
{
	const char *to = st_attr_get(hdr, "to");
	char domain[JID_PART_MAX];
	const struct host *h;

	if (!s->role_data)
		s->role_data = xcalloc(1, sizeof(struct comp));
	if (!to || jid_nameprep(to, domain) != 0 || !(h = route_host(domain)) ||
	    !h->external) {
		log_info("component stream from %s for %s: host-unknown", session_src(s),
			 to ? to : "(no 'to')");
		session_close(s, "host-unknown", NULL);
		return true;
	}
	return false;	/* the usual checks of 'to' and namespace */
}

static void comp_features(struct session *s, struct st_doc *d, struct st_node *f)
{
}

static void comp_ended(struct session *s, const char *reason)
{
	struct comp *c = s->role_data;

	if (!c)
		return;
	if (c->link) {
		log_info("component %s disconnected (%s): %s", c->link->domain,
			 session_src(s), reason);
		struct host *h = route_host(c->link->domain);
		link_remove(c->link, s);
		struct event ev = { .session = s, .error = reason };
		route_fire(h, "component-disconnected", &ev);
	}
	free(c);
	s->role_data = NULL;
}

const struct session_role component_role = {
	.name = "component",
	.ns = NS_COMPONENT,
	.host_type = HOST_COMPONENT,
	.no_features = true,
	.routes_sends = true,
	.header = comp_header,
	.features = comp_features,
	.element = comp_element,
	.ended = comp_ended,
};
