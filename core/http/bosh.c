/* bosh.c - XMPP over BOSH (XEP-0124, XEP-0206): sessions, rid order,
 * held requests and the session framing (see bosh.h). */
#include "bosh.h"
#include "hmap.h"
#include "jid.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <openssl/sha.h>

#define CONTENT_TYPE "Content-Type: text/xml; charset=utf-8\r\n"
#define MAX_RID 9007199254740991ULL	/* 2^53 - 1, XEP-0124 5 */
#define BOSH_VER "1.11"

/* One request of a session: arrived early (ahead, its body still to be
 * handled) or handled and waiting for its answer (held). */
struct bosh_req {
	struct bosh_req *next;
	struct bosh *b;
	struct http_request *req;
	struct st_doc *doc;		/* its <body/>, until handled */
	uint64_t rid;
	double deadline;		/* held: answered by then */
};

/* An answer kept for a client that asks again (retransmission). */
struct bosh_cached {
	uint64_t rid;
	char *body;
	size_t len;
};

struct bosh {
	char sid[24];
	char authid[20];		/* the stream's id */
	struct conn *vc;		/* the session's detached connection */
	char *host, *lang;
	uint64_t next_rid;		/* the rid handled next */
	unsigned wait, hold, requests, inactivity, polling;
	size_t max_body, max_out;
	struct bosh_req *held, *ahead;	/* each ordered by rid */
	unsigned n_held, n_ahead;
	struct sbuf out;		/* elements for the next answer */
	struct bosh_cached *cache;	/* `requests` answers, a ring */
	unsigned cache_next;
	char key[2 * SHA_DIGEST_LENGTH + 1];	/* the next key's SHA-1, hex */
	double last_empty;		/* an empty request was answered empty */
	double rate, burst, tokens, refilled_at;	/* body bytes/s */
	ev_timer wait_timer, idle_timer, throttle_timer;
	const char *condition;		/* the terminal binding condition */
	bool created;			/* the creation response went */
	bool terminated;		/* the session is over: answer so */
	bool stream_error;		/* ... with the stream error in out */
	bool mapped, ready;
	struct bosh *ready_next, *ready_prev;
};

static const struct session_listen *c2s_listen;
static struct hmap sessions;		/* sid -> struct bosh */
static struct bosh *ready_head;		/* to flush at the iteration's end */

void bosh_init(const struct session_listen *c2s)
{
	c2s_listen = c2s;
	hmap_init(&sessions);
}

size_t bosh_count(void)
{
	return sessions.count;
}

static void set_ready(struct bosh *b)
{
	if (b->ready)
		return;
	b->ready = true;
	b->ready_prev = NULL;
	b->ready_next = ready_head;
	if (ready_head)
		ready_head->ready_prev = b;
	ready_head = b;
}

static void unset_ready(struct bosh *b)
{
	if (!b->ready)
		return;
	if (b->ready_prev)
		b->ready_prev->ready_next = b->ready_next;
	else
		ready_head = b->ready_next;
	if (b->ready_next)
		b->ready_next->ready_prev = b->ready_prev;
	b->ready = false;
}

static void unmap(struct bosh *b)
{
	if (b->mapped)
		hmap_del(&sessions, b->sid);
	b->mapped = false;
}

/* The session the requests feed, while it has its connection. */
static struct session *live_session(const struct bosh *b)
{
	struct session *s;

	if (!b->vc || (b->vc->flags & (CONN_F_CLOSING | CONN_F_DEAD)))
		return NULL;
	s = b->vc->owner;
	return s && !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)) ? s : NULL;
}

/* --- answers ------------------------------------------------------------ */

static void body_open(struct sbuf *o, const struct bosh *b, const char *type,
		      const char *condition)
{
	sbuf_adds(o, "<body xmlns='" NS_HTTPBIND "' xmlns:stream="
		  "'http://etherx.jabber.org/streams'");
	if (b && !b->created) {	/* XEP-0124 7.1, XEP-0206 3 */
		sbuf_printf(o, " sid='%s' wait='%u' hold='%u' requests='%u'"
			    " inactivity='%u' polling='%u' ver='" BOSH_VER "'"
			    " secure='true' authid='%s' xmlns:xmpp='" NS_XBOSH "'"
			    " xmpp:version='1.0' xmpp:restartlogic='true' from='",
			    b->sid, b->wait, b->hold, b->requests, b->inactivity,
			    b->polling, b->authid);
		xml_escape(o, b->host, strlen(b->host));
		sbuf_addc(o, '\'');
	}
	if (type)
		sbuf_printf(o, " type='%s'", type);
	if (condition)
		sbuf_printf(o, " condition='%s'", condition);
}

/* A terminal binding error for a request outside any session, or an
 * empty answer (condition NULL). */
static void respond_terminate(struct http_request *req, int status,
			      const char *condition)
{
	struct sbuf o;

	sbuf_init(&o);
	body_open(&o, NULL, condition ? "terminate" : NULL, condition);
	sbuf_adds(&o, "/>");
	http_respond(req, status, CONTENT_TYPE, o.p, o.len);
	sbuf_free(&o);
}

static void req_free(struct bosh_req *h)
{
	if (h->doc)
		st_doc_unref(h->doc);
	free(h);
}

/* Answers h, which is on no list any more, and frees it. */
static void respond(struct bosh_req *h, const char *body, size_t len)
{
	struct http_request *req = h->req;

	req->done = NULL;
	http_respond(req, 200, CONTENT_TYPE, body, len);
	req_free(h);
}

static void cache_put(struct bosh *b, uint64_t rid, const char *body, size_t len)
{
	struct bosh_cached *c = &b->cache[b->cache_next];

	b->cache_next = (b->cache_next + 1) % b->requests;
	free(c->body);
	c->rid = rid;
	c->body = xmalloc(len);
	c->len = len;
	memcpy(c->body, body, len);
}

static const struct bosh_cached *cache_get(const struct bosh *b, uint64_t rid)
{
	for (unsigned i = 0; i < b->requests; i++)
		if (b->cache[i].body && b->cache[i].rid == rid)
			return &b->cache[i];
	return NULL;
}

/* Answers the oldest held request: with what is queued when payload,
 * with the terminal condition once the session is over. */
static void answer_oldest(struct bosh *b, bool payload)
{
	struct bosh_req *h = b->held;
	const char *cond = b->condition;
	struct sbuf o;

	b->held = h->next;
	b->n_held--;
	sbuf_init(&o);
	if (b->terminated && payload && b->stream_error && !cond)
		cond = "remote-stream-error";
	body_open(&o, b, b->terminated ? "terminate" : NULL, cond);
	b->created = true;
	if (payload && b->out.len) {
		sbuf_addc(&o, '>');
		sbuf_add(&o, b->out.p, b->out.len);
		sbuf_adds(&o, "</body>");
		sbuf_reset(&b->out);
	} else {
		sbuf_adds(&o, "/>");
	}
	cache_put(b, h->rid, o.p, o.len);
	respond(h, o.p, o.len);
	sbuf_free(&o);
}

static void arm_timers(struct bosh *b)
{
	struct ev_loop *loop = conn_loop();

	ev_timer_stop(loop, &b->wait_timer);
	ev_timer_stop(loop, &b->idle_timer);
	if (b->terminated)
		return;
	if (b->held) {
		double left = b->held->deadline - ev_now(loop);
		ev_timer_set(&b->wait_timer, left > 0 ? left : 0., 0.);
		ev_timer_start(loop, &b->wait_timer);
	} else {
		ev_timer_set(&b->idle_timer, b->inactivity, 0.);
		ev_timer_start(loop, &b->idle_timer);
	}
}

/* Everything still waiting is answered: the session is over. */
static void answer_all_terminated(struct bosh *b)
{
	bool first = true;

	while (b->held) {
		answer_oldest(b, first);
		first = false;
	}
	while (b->ahead) {
		struct bosh_req *h = b->ahead;
		b->ahead = h->next;
		b->n_ahead--;
		h->req->done = NULL;
		respond_terminate(h->req, 200, b->condition ? b->condition :
				  "item-not-found");
		req_free(h);
	}
	sbuf_free(&b->out);
}

static void flush_one(struct bosh *b)
{
	if (b->terminated) {
		answer_all_terminated(b);
		arm_timers(b);
		return;
	}
	if (b->out.len && b->held)
		answer_oldest(b, true);
	while (b->n_held > b->hold)
		answer_oldest(b, false);
	arm_timers(b);
}

void bosh_flush(void)
{
	while (ready_head) {
		struct bosh *b = ready_head;
		unset_ready(b);
		flush_one(b);
	}
}

/* The BOSH session ends with a terminal binding condition: the XMPP
 * session loses its connection as a TCP client's would (XEP-0198 may
 * keep it), and what is held is answered with the condition. */
static void bosh_fail(struct bosh *b, const char *condition)
{
	struct conn *c = b->vc;

	if (!b->condition)
		b->condition = condition;
	b->terminated = true;
	unmap(b);
	set_ready(b);
	b->vc = NULL;
	if (c)
		conn_close(c, condition ? condition : "BOSH inactivity");
}

/* --- timers -------------------------------------------------------------- */

static void on_wait(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bosh *b = container_of(t, struct bosh, wait_timer);

	while (b->held && b->held->deadline <= ev_now(loop) + 0.001)
		answer_oldest(b, true);
	arm_timers(b);
}

static void on_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bosh *b = container_of(t, struct bosh, idle_timer);
	struct session *s = live_session(b);

	log_info("%s: BOSH session %s inactive for %u s", s ? session_src(s) : "?",
		 b->sid, b->inactivity);
	bosh_fail(b, NULL);
}

static void run(struct bosh *b);

static void on_throttle(struct ev_loop *loop, ev_timer *t, int revents)
{
	run(container_of(t, struct bosh, throttle_timer));
}

/* --- the framing ------------------------------------------------------------ */

static bool is_framing(const char *buf, size_t len, const char *start)
{
	size_t n = strlen(start);

	return len > n && memcmp(buf, start, n) == 0;
}

static int framing_send(struct session *s, void *data, const char *buf, size_t len)
{
	struct bosh *b = data;

	if (b->terminated)
		return -EPIPE;
	/* The stream header and its end are the body's attributes and
	 * type='terminate' (XEP-0206 3, 7). */
	if (is_framing(buf, len, "<open xmlns='" NS_FRAMING "'") ||
	    is_framing(buf, len, "<close xmlns='" NS_FRAMING "'"))
		return 0;
	if (is_framing(buf, len, "<stream:error"))
		b->stream_error = true;
	if (b->out.len + len > b->max_out) {
		log_info("%s: BOSH queue over %zu bytes, closing", session_src(s),
			 b->max_out);
		bosh_fail(b, "policy-violation");
		return -ENOBUFS;
	}
	sbuf_add(&b->out, buf, len);
	set_ready(b);
	return 0;
}

/* Never called: a detached connection reads nothing. */
static void framing_input(struct session *s, void *data, const char *buf, size_t len)
{
}

static void framing_close(struct session *s, void *data)
{
	struct bosh *b = data;

	b->terminated = true;
	b->vc = NULL;
	unmap(b);
	set_ready(b);
}

static void framing_conn_gone(struct session *s, void *data)
{
	framing_close(s, data);
}

static void framing_free(void *data)
{
	struct bosh *b = data;
	struct ev_loop *loop = conn_loop();

	b->terminated = true;
	answer_all_terminated(b);
	unset_ready(b);
	unmap(b);
	ev_timer_stop(loop, &b->wait_timer);
	ev_timer_stop(loop, &b->idle_timer);
	ev_timer_stop(loop, &b->throttle_timer);
	for (unsigned i = 0; i < b->requests; i++)
		free(b->cache[i].body);
	free(b->cache);
	sbuf_free(&b->out);
	free(b->host);
	free(b->lang);
	free(b);
}

static const struct session_framing bosh_framing = {
	.name = "bosh",
	.send = framing_send,
	.input = framing_input,
	.close = framing_close,
	.free = framing_free,
	.conn_gone = framing_conn_gone,
};

/* --- requests, in rid order ----------------------------------------------- */

/* The request's connection went before its answer. */
static void req_done(struct http_request *req, void *data)
{
	struct bosh_req *h = data, **pp;
	struct bosh *b = h->b;

	for (pp = &b->held; *pp && *pp != h; pp = &(*pp)->next)
		;
	if (*pp) {
		b->n_held--;
	} else {
		for (pp = &b->ahead; *pp && *pp != h; pp = &(*pp)->next)
			;
		if (*pp)
			b->n_ahead--;
	}
	if (*pp)
		*pp = h->next;
	req_free(h);
	arm_timers(b);
}

static void feed(struct bosh *b, const char *buf, size_t len)
{
	struct session *s = live_session(b);

	if (s)
		session_input(s, buf, len);
}

/* The stream header the session expects: at creation and at each
 * restart (XEP-0206 5). */
static void feed_open(struct bosh *b)
{
	struct sbuf o;

	sbuf_init(&o);
	sbuf_adds(&o, "<open xmlns='" NS_FRAMING "' version='1.0' to='");
	xml_escape(&o, b->host, strlen(b->host));
	sbuf_adds(&o, "' xml:lang='");
	xml_escape(&o, b->lang, strlen(b->lang));
	sbuf_adds(&o, "'/>");
	feed(b, o.p, o.len);
	sbuf_free(&o);
}

/* Each child element of the body, as one message of the stream. Children
 * in the body's namespace are taken as jabber:client (XEP-0206 2). */
static bool feed_children(struct bosh *b, const struct st_node *body)
{
	struct sbuf o;
	bool any = false;

	sbuf_init(&o);
	for (const struct st_node *n = body->first; n; n = n->next) {
		if (!n->name)
			continue;
		any = true;
		sbuf_reset(&o);
		st_serialize(n, strcmp(n->ns, NS_HTTPBIND) == 0 ? NS_HTTPBIND : NULL, &o);
		feed(b, o.p, o.len);
	}
	sbuf_free(&o);
	return any;
}

static void sha1_hex(const char *in, char out[2 * SHA_DIGEST_LENGTH + 1])
{
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)in, strlen(in), md);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* XEP-0124 15: each key hashes to the one before it. */
static bool key_ok(struct bosh *b, const struct st_node *body)
{
	const char *key = st_attr_get(body, "key");
	const char *newkey = st_attr_get(body, "newkey");
	char hex[2 * SHA_DIGEST_LENGTH + 1];

	if (b->key[0]) {
		if (!key)
			return false;
		sha1_hex(key, hex);
		if (ct_memcmp(hex, b->key, sizeof(hex) - 1) != 0)
			return false;
		snprintf(b->key, sizeof(b->key), "%s", newkey ? newkey : key);
	} else if (newkey) {
		snprintf(b->key, sizeof(b->key), "%s", newkey);
	}
	return true;
}

/* A request in its turn: its body goes to the session, it is held. */
static void handle(struct bosh *b, struct bosh_req *h)
{
	const struct st_node *body = h->doc->root;
	const char *type = st_attr_get(body, "type");
	const char *restart = st_attr_get(body, NS_XBOSH "\1restart");
	struct session *s = live_session(b);
	struct bosh_req **pp;

	b->next_rid++;
	for (pp = &b->held; *pp; pp = &(*pp)->next)
		;
	*pp = h;
	h->next = NULL;
	b->n_held++;
	h->deadline = ev_now(conn_loop()) + b->wait;
	set_ready(b);
	if (!key_ok(b, body)) {
		bosh_fail(b, "item-not-found");
		return;
	}
	if (s)
		s->last_activity = now_mono();
	if (type && strcmp(type, "terminate") == 0) {
		feed_children(b, body);
		if ((s = live_session(b)))
			session_close(s, NULL, NULL);
	} else if (restart && (strcmp(restart, "true") == 0 || strcmp(restart, "1") == 0)) {
		feed_open(b);
	} else if (!feed_children(b, body) && !b->out.len && b->n_held > b->hold) {
		/* An empty request that only makes us answer the one before
		 * it empty: no faster than `polling` (XEP-0124 12). */
		double now = ev_now(conn_loop());
		if (b->last_empty && now - b->last_empty < b->polling) {
			log_info("%s: BOSH session %s polls too often", s ? session_src(s)
				 : "?", b->sid);
			bosh_fail(b, "policy-violation");
			return;
		}
		b->last_empty = now;
	}
	st_doc_unref(h->doc);
	h->doc = NULL;
}

/* Whether the body may be handled now (the c2s read rate, on body bytes);
 * if not, the throttle timer runs until it may. */
static bool tokens_allow(struct bosh *b, size_t len)
{
	double now = ev_now(conn_loop());

	if (!b->rate)
		return true;
	b->tokens = MIN(b->burst, b->tokens + (now - b->refilled_at) * b->rate);
	b->refilled_at = now;
	if (b->tokens >= (double)len || b->tokens >= b->burst) {
		b->tokens -= (double)len;
		return true;
	}
	ev_timer_set(&b->throttle_timer,
		     (MIN((double)len, b->burst) - b->tokens) / b->rate, 0.);
	ev_timer_start(conn_loop(), &b->throttle_timer);
	return false;
}

static void run(struct bosh *b)
{
	ev_timer_stop(conn_loop(), &b->throttle_timer);
	while (b->ahead && b->ahead->rid == b->next_rid && !b->terminated) {
		struct bosh_req *h = b->ahead;
		if (b->vc && (b->vc->flags & CONN_F_HELD)) {
			/* A module paused the session's reading
			 * (session_pause_reading): its requests wait too. */
			ev_timer_set(&b->throttle_timer, 0.25, 0.);
			ev_timer_start(conn_loop(), &b->throttle_timer);
			return;
		}
		if (!tokens_allow(b, h->req->body.len))
			return;
		b->ahead = h->next;
		b->n_ahead--;
		handle(b, h);
	}
	arm_timers(b);
}

static struct bosh_req *find(struct bosh_req *list, uint64_t rid)
{
	for (; list; list = list->next)
		if (list->rid == rid)
			return list;
	return NULL;
}

/* The client sends again a rid it sent before: the new request takes
 * the place of the old one (whose connection the client gave up), or
 * gets the answer the old one had. */
static void repeated(struct bosh *b, struct http_request *req, struct st_doc *doc,
		     uint64_t rid)
{
	struct bosh_req *h = find(b->held, rid);
	const struct bosh_cached *c;

	if (!h)
		h = find(b->ahead, rid);
	if (h) {
		struct http_request *old = h->req;
		old->done = NULL;
		respond_terminate(old, 200, NULL);
		h->req = req;
		req->done = req_done;
		req->done_data = h;
		http_watch(req);
		if (h->doc) {	/* not handled yet: the new body counts */
			st_doc_unref(h->doc);
			h->doc = doc;
		} else {
			st_doc_unref(doc);
		}
		return;
	}
	st_doc_unref(doc);
	c = cache_get(b, rid);
	if (c) {
		http_respond(req, 200, CONTENT_TYPE, c->body, c->len);
		return;
	}
	respond_terminate(req, 200, "item-not-found");
	bosh_fail(b, "item-not-found");
}

static void on_request(struct bosh *b, struct http_request *req,
		       struct st_doc *doc, uint64_t rid)
{
	struct bosh_req *h, **pp;

	if (rid < b->next_rid || find(b->ahead, rid)) {
		repeated(b, req, doc, rid);
		return;
	}
	if (rid >= b->next_rid + b->requests) {
		st_doc_unref(doc);
		respond_terminate(req, 200, "item-not-found");
		bosh_fail(b, "item-not-found");
		return;
	}
	if (b->n_held + b->n_ahead + 1 > b->requests) {
		st_doc_unref(doc);
		log_info("%s:%d: BOSH session %s: more than %u requests at once",
			 req->ip, req->port, b->sid, b->requests);
		respond_terminate(req, 200, "policy-violation");
		bosh_fail(b, "policy-violation");
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->b = b;
	h->req = req;
	h->doc = doc;
	h->rid = rid;
	req->done = req_done;
	req->done_data = h;
	http_watch(req);
	for (pp = &b->ahead; *pp && (*pp)->rid < rid; pp = &(*pp)->next)
		;
	h->next = *pp;
	*pp = h;
	b->n_ahead++;
	ev_timer_stop(conn_loop(), &b->idle_timer);
	run(b);
}

/* --- session creation --------------------------------------------------- */

static unsigned attr_uint(const struct st_node *n, const char *name, unsigned def,
			  unsigned max)
{
	const char *v = st_attr_get(n, name);
	char *end;
	unsigned long x;

	if (!v || !*v)
		return MIN(def, max);
	x = strtoul(v, &end, 10);
	if (*end || x > max)
		return max;
	return (unsigned)x;
}

static bool parse_rid(const char *v, uint64_t *rid)
{
	char *end;
	unsigned long long x;

	if (!v || *v < '0' || *v > '9')
		return false;
	x = strtoull(v, &end, 10);
	if (*end || x == 0 || x > MAX_RID)
		return false;
	*rid = x;
	return true;
}

static void create(struct http_request *req, const struct bosh_options *o,
		   struct st_doc *doc, uint64_t rid)
{
	const struct st_node *body = doc->root;
	const struct session_config *cfg = c2s_listen->cfg;
	const char *to = st_attr_get(body, "to");
	const char *lang = st_attr_get(body, "xml:lang");
	char host[JID_PART_MAX];
	struct bosh *b;
	struct session *s;

	if (!to) {
		respond_terminate(req, 200, "improper-addressing");
		st_doc_unref(doc);
		return;
	}
	if (jid_nameprep(to, host) != 0 || !route_host(host) ||
	    route_host(host)->type != c2s_listen->role->host_type) {
		respond_terminate(req, 200, "host-unknown");
		st_doc_unref(doc);
		return;
	}
	b = xcalloc(1, sizeof(*b));
	random_id(b->sid, 20);
	b->host = xstrdup(host);
	b->lang = xstrdup(lang && strlen(lang) < 36 ? lang : "en");
	b->wait = attr_uint(body, "wait", o->max_wait, o->max_wait);
	b->hold = attr_uint(body, "hold", 1, o->max_hold);
	b->requests = MAX(b->hold + 1, o->max_requests);
	b->inactivity = o->max_inactivity;
	b->polling = o->max_polling;
	b->next_rid = rid;
	b->max_out = cfg->send_queue_limit;
	b->max_body = cfg->limits.max_stanza * 2 + 1024;
	b->rate = cfg->rate;
	b->burst = cfg->burst > 0 ? cfg->burst : cfg->rate;
	b->tokens = b->burst;
	b->refilled_at = ev_now(conn_loop());
	b->cache = xcalloc(b->requests, sizeof(*b->cache));
	sbuf_init(&b->out);
	ev_timer_init(&b->wait_timer, on_wait, 0., 0.);
	ev_timer_init(&b->idle_timer, on_idle, 0., 0.);
	ev_timer_init(&b->throttle_timer, on_throttle, 0., 0.);
	hmap_set(&sessions, b->sid, b);
	b->mapped = true;
	b->vc = conn_new_detached(req->ip, req->port, NULL, NULL);
	s = session_accept_conn(b->vc, c2s_listen, &bosh_framing, b,
				req->secure || o->consider_secure);
	memcpy(b->authid, s->id, sizeof(b->authid));
	log_debug("%s:%d: BOSH session %s for %s (wait %u, hold %u)", req->ip,
		  req->port, b->sid, host, b->wait, b->hold);
	if (!key_ok(b, body))
		b->key[0] = '\0';
	/* The creation request is the first held one; the session's header
	 * and features answer it. */
	struct bosh_req *h = xcalloc(1, sizeof(*h));
	h->b = b;
	h->req = req;
	h->rid = rid;
	h->deadline = ev_now(conn_loop()) + b->wait;
	req->done = req_done;
	req->done_data = h;
	http_watch(req);
	b->held = h;
	b->n_held = 1;
	b->next_rid = rid + 1;
	set_ready(b);
	st_doc_unref(doc);
	if (live_session(b)) {
		feed_open(b);
		if ((s = live_session(b)))
			memcpy(b->authid, s->id, sizeof(b->authid));
	}
}

/* --- the endpoint ----------------------------------------------------------- */

/* The <body/> of a request, parsed with the client stream limits (its
 * size apart): NULL when it does not parse or is not a BOSH body. */
static struct st_doc *parse_body(const char *p, size_t len, size_t max)
{
	const struct session_config *cfg = c2s_listen->cfg;
	struct xs_limits lim = { max, cfg->limits.max_depth + 1, cfg->limits.max_attrs };
	struct xs *xs = xs_new(&lim);
	struct st_doc *doc = NULL;
	const char *end = p + len;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (end - p > 5 && memcmp(p, "<?xml", 5) == 0) {	/* a declaration */
		const char *q = memchr(p, '>', (size_t)(end - p));
		p = q ? q + 1 : end;
	}
	if (xs_prime(xs, xstrdup("<stream:stream xmlns='" NS_HTTPBIND "' "
				 "xmlns:stream='http://etherx.jabber.org/streams'>")) == 0 &&
	    xs_feed(xs, p, (size_t)(end - p)) == XS_STANZA) {
		doc = xs_take_stanza(xs);
		if (xs_next(xs) != XS_NEED_MORE || strcmp(doc->root->name, "body") != 0 ||
		    strcmp(doc->root->ns, NS_HTTPBIND) != 0) {
			st_doc_unref(doc);
			doc = NULL;
		}
	}
	xs_free(xs);
	return doc;
}

static const char page[] =
	"<!DOCTYPE html>\n<html><head><title>BOSH</title></head><body>"
	"<p>This is an XMPP over BOSH endpoint (XEP-0124, XEP-0206): "
	"clients POST to it.</p></body></html>\n";

void bosh_serve(struct http_request *req, const char *rest,
		const struct http_route *route, void *data)
{
	const struct bosh_options *o = data;
	size_t max = c2s_listen ? c2s_listen->cfg->limits.max_stanza * 2 + 1024 : 0;
	struct st_doc *doc;
	const char *sid;
	struct bosh *b;
	uint64_t rid;

	if (!c2s_listen) {
		http_respond_status(req, 503, NULL);
		return;
	}
	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
		http_respond(req, 200, "Content-Type: text/html; charset=utf-8\r\n",
			     page, sizeof(page) - 1);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		http_respond_status(req, 405, NULL);
		return;
	}
	if (req->body.len > max) {
		log_info("%s:%d: BOSH body of %zu bytes refused", req->ip, req->port,
			 req->body.len);
		respond_terminate(req, 413, "policy-violation");
		return;
	}
	doc = parse_body(req->body.p ? req->body.p : "", req->body.len, max);
	if (!doc || !parse_rid(st_attr_get(doc->root, "rid"), &rid)) {
		if (doc)
			st_doc_unref(doc);
		respond_terminate(req, 400, "bad-request");
		return;
	}
	sid = st_attr_get(doc->root, "sid");
	if (!sid) {
		create(req, o, doc, rid);
		return;
	}
	b = hmap_get(&sessions, sid);
	if (!b) {
		st_doc_unref(doc);
		respond_terminate(req, 200, "item-not-found");
		return;
	}
	on_request(b, req, doc, rid);
}

struct bosh_options *bosh_options_new(const struct bosh_options *o)
{
	struct bosh_options *n = xmalloc(sizeof(*n));

	*n = *o;
	if (!n->max_requests)
		n->max_requests = 2;
	return n;
}

void bosh_options_free(void *options)
{
	free(options);
}
