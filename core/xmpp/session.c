/* session.c - the stream layer every role shares: the connection, the
 * XML parser, stream headers, features, STARTTLS, stream errors, limits
 * and timeouts; the role adds its own negotiation (c2s.c). */
#include "session.h"
#include "ipstate.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "store.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"

static struct session *dead_sessions;
static struct session *all_sessions;
static size_t n_sessions;
static struct sbuf out_buf;		/* serialization scratch, reused */

static void on_data(struct conn *c, const char *buf, size_t len);
static void on_closed(struct conn *c, const char *reason);
static void on_tls_ready(struct conn *c);
static void on_connected(struct conn *c);

static const struct conn_events session_conn_events = {
	.data = on_data,
	.closed = on_closed,
	.tls_ready = on_tls_ready,
	.connected = on_connected,
};

size_t session_count(void)
{
	return n_sessions;
}

struct session *session_first(void)
{
	return all_sessions;
}

void (*session_forget_hook)(struct session *s);

/* --- events ------------------------------------------------------------- */

/* Fires name on the session's host with ev: 1 when a handler stopped it. */
int session_fire(struct session *s, const char *name, struct event *ev)
{
	return route_fire(s->host ? route_host(s->host) : NULL, name, ev);
}

/* Fires the event named by the format (a stanza of s in doc): true when a
 * handler took it. */
bool session_fire_stanza(struct session *s, struct st_doc *doc,
			const char *fmt, const char *a, const char *b,
			const char *c)
{
	char name[512];
	int n = snprintf(name, sizeof(name), fmt, a, b, c);
	struct event ev = { .origin = s, .doc = doc, .stanza = doc->root };

	if (n < 0 || (size_t)n >= sizeof(name))
		return false;
	return session_fire(s, name, &ev) != 0;
}

static void fire_features(struct session *s, struct st_doc *d,
			  struct st_node *features)
{
	struct event ev = { .origin = s, .doc = d, .features = features };

	d->cursor = features;
	session_fire(s, "stream-features", &ev);
}

const char *session_src(const struct session *s)
{
	return s->full_jid ? s->full_jid : s->peer ? s->peer :
	       s->conn ? s->conn->ip : s->id;
}

void session_send_raw(struct session *s, const char *data, size_t len)
{
	if (s->conn && !(s->flags & SESS_F_DEAD))
		conn_send(s->conn, data, len);
}

void session_send_str(struct session *s, const char *str)
{
	session_send_raw(s, str, strlen(str));
}

/* A serialized stanza on its way out: past the role (XEP-0198 keeps a
 * copy), then to the connection. */
static int send_stanza_bytes(struct session *s, const char *data, size_t len)
{
	if (s->role->sending && s->role->sending(s, data, len) != 0) {
		if (s->conn)
			session_close(s, "resource-constraint",
				      "too many unacknowledged stanzas");
		else
			session_expire(s, "too many stanzas while hibernating");
		return -ENOBUFS;
	}
	if (!s->conn)
		return 0;	/* hibernating: queued until it resumes */
	return conn_send(s->conn, data, len);
}

static bool can_send(const struct session *s)
{
	return !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)) &&
	       (s->conn || (s->flags & SESS_F_HIBERNATING));
}

int session_send_serialized(struct session *s, const char *data, size_t len)
{
	if (!can_send(s))
		return -EPIPE;
	return send_stanza_bytes(s, data, len);
}

int session_send(struct session *s, const struct st_node *node)
{
	if (!can_send(s))
		return -EPIPE;
	for (struct session_filter *f = s->filters; f; f = f->next) {
		int r = f->ops->filter(s, node, f->data);
		if (r != SESSION_FILTER_PASS)
			return r < 0 ? r : 0;
		if (!can_send(s))
			return -EPIPE;	/* what the filter flushed ended it */
	}
	/* Trees hold stanzas in jabber:client whatever stream they came
	 * from; written without xmlns they take the stream's namespace. */
	sbuf_reset(&out_buf);
	st_serialize(node, NS_CLIENT, &out_buf);
	return send_stanza_bytes(s, out_buf.p, out_buf.len);
}

/* --- outgoing filters ----------------------------------------------------- */

void session_filter_add(struct session *s, const struct session_filter_ops *ops,
			void *data)
{
	struct session_filter *f = xmalloc(sizeof(*f)), **pp = &s->filters;

	f->ops = ops;
	f->data = data;
	f->next = NULL;
	while (*pp)
		pp = &(*pp)->next;
	*pp = f;
}

void session_filter_add_first(struct session *s, const struct session_filter_ops *ops,
			      void *data)
{
	struct session_filter *f = xmalloc(sizeof(*f));

	f->ops = ops;
	f->data = data;
	f->next = s->filters;
	s->filters = f;
}

void *session_filter_data(const struct session *s,
			  const struct session_filter_ops *ops)
{
	for (struct session_filter *f = s->filters; f; f = f->next)
		if (f->ops == ops)
			return f->data;
	return NULL;
}

int session_filter_remove(struct session *s, const struct session_filter_ops *ops)
{
	for (struct session_filter **pp = &s->filters; *pp; pp = &(*pp)->next) {
		struct session_filter *f = *pp;
		if (f->ops != ops)
			continue;
		*pp = f->next;
		if (ops->detach)
			ops->detach(s, f->data);
		free(f);
		return 0;
	}
	return -ENOENT;
}

int session_send_nonza(struct session *s, const struct st_node *node)
{
	if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD) || !s->conn)
		return -EPIPE;
	sbuf_reset(&out_buf);
	st_serialize(node, NS_CLIENT, &out_buf);
	return conn_send(s->conn, out_buf.p, out_buf.len);
}

static void send_header(struct session *s)
{
	bool out = s->flags & SESS_F_OUTGOING;
	struct sbuf b;

	sbuf_init(&b);
	sbuf_adds(&b, "<?xml version='1.0'?><stream:stream xmlns='");
	sbuf_adds(&b, s->role->ns);
	sbuf_adds(&b, "' xmlns:stream='http://etherx.jabber.org/streams'");
	if (s->role->header_attrs) {
		sbuf_addc(&b, ' ');
		sbuf_adds(&b, s->role->header_attrs);
	}
	if (!out) {	/* the initiating entity's header has no id */
		random_id(s->id, 16);
		sbuf_adds(&b, " id='");
		sbuf_adds(&b, s->id);
		sbuf_addc(&b, '\'');
	}
	sbuf_adds(&b, " version='1.0' xml:lang='en'");
	if (s->host) {
		sbuf_adds(&b, " from='");
		xml_escape(&b, s->host, strlen(s->host));
		sbuf_addc(&b, '\'');
	}
	if (s->peer) {
		sbuf_adds(&b, " to='");
		xml_escape(&b, s->peer, strlen(s->peer));
		sbuf_addc(&b, '\'');
	}
	sbuf_addc(&b, '>');
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
	s->flags |= SESS_F_OPENED;
}

/* Marks the session ended: out of the directory, invisible to Lua, freed
 * at the end of the loop iteration. */
void session_end(struct session *s, const char *reason)
{
	if (s->flags & SESS_F_DEAD)
		return;
	s->flags |= SESS_F_CLOSING;
	ev_timer_stop(conn_loop(), &s->timer);
	ev_timer_stop(conn_loop(), &s->delay_timer);
	ev_timer_stop(conn_loop(), &s->quiet_timer);
	ev_timer_stop(conn_loop(), &s->pause_timer);
	if ((s->flags & SESS_F_COUNTED) && s->conn) {
		ipstate_unauth_del(s->conn->ip);
		s->flags &= ~SESS_F_COUNTED;
	}
	if (s->role->ended)
		s->role->ended(s, reason);
	s->flags |= SESS_F_DEAD;
	if (session_forget_hook)
		session_forget_hook(s);
	s->dead_next = dead_sessions;
	dead_sessions = s;
}

void session_expire(struct session *s, const char *reason)
{
	s->flags &= ~SESS_F_HIBERNATING;
	session_end(s, reason);
}

void session_close(struct session *s, const char *condition, const char *text)
{
	struct sbuf b;

	if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
		return;
	if (!s->conn) {		/* hibernating: nobody to tell */
		session_expire(s, condition ? condition : "closed");
		return;
	}
	sbuf_init(&b);
	if (condition) {
		if (!(s->flags & SESS_F_OPENED))
			send_header(s);
		sbuf_adds(&b, "<stream:error><");
		sbuf_adds(&b, condition);
		sbuf_adds(&b, " xmlns='" NS_STREAM_ERR "'/>");
		if (text) {
			sbuf_adds(&b, "<text xmlns='" NS_STREAM_ERR "'>");
			xml_escape(&b, text, strlen(text));
			sbuf_adds(&b, "</text>");
		}
		sbuf_adds(&b, "</stream:error>");
		log_debug("%s: stream error %s%s%s", session_src(s), condition,
			  text ? ": " : "", text ? text : "");
	}
	if (s->flags & SESS_F_OPENED)
		sbuf_adds(&b, "</stream:stream>");
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
	s->flags |= SESS_F_CLOSING;
	conn_close(s->conn, condition ? condition : "closed");
}

void session_close_all(const char *condition)
{
	struct session *s = all_sessions;

	while (s) {
		struct session *next = s->all_next;
		session_close(s, condition, NULL);
		s = next;
	}
}

/* --- timers --------------------------------------------------------- */

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, timer);

	if (!(s->flags & SESS_F_BOUND)) {
		session_close(s, "connection-timeout", "not authenticated in time");
		return;
	}
	double idle = now_mono() - s->last_activity;
	if (idle >= s->cfg->idle_timeout) {
		if (s->conn && !(s->flags & SESS_F_CLOSING) && s->role->lost &&
		    s->role->lost(s)) {
			/* A silent connection is a lost one: the role keeps the
			 * session without it (XEP-0198 hibernation). */
			struct conn *c = s->conn;
			s->conn = NULL;
			c->owner = NULL;
			conn_close(c, "idle");
			return;
		}
		session_close(s, "connection-timeout", NULL);
		return;
	}
	t->repeat = s->cfg->idle_timeout - idle;
	ev_timer_again(loop, t);
}

/* --- stream features ---------------------------------------------------- */

static bool tls_available(struct session *s)
{
	return tls_default_ctx() != NULL;
}

static void send_features(struct session *s)
{
	struct st_doc *d = st_doc_new();
	struct st_node *f = st_elem_new(d, NULL, "features", NS_STREAMS);

	if (!(s->flags & SESS_F_AUTHED) && !(s->flags & SESS_F_TLS) &&
	    tls_available(s)) {
		struct st_node *t = st_elem_new(d, f, "starttls", NS_TLS);
		if (s->cfg->require_encryption)
			st_elem_new(d, t, "required", NULL);
	}
	/* Before TLS where it is required, STARTTLS is all there is. */
	if ((s->flags & (SESS_F_AUTHED | SESS_F_TLS)) || !s->cfg->require_encryption) {
		s->role->features(s, d, f);
		if (s->role->features_event)
			fire_features(s, d, f);	/* e.g. register, csi, sm */
	}
	sbuf_reset(&out_buf);
	sbuf_adds(&out_buf, "<stream:features>");
	for (struct st_node *c = f->first; c; c = c->next)
		st_serialize(c, NS_STREAMS, &out_buf);
	sbuf_adds(&out_buf, "</stream:features>");
	session_send_raw(s, out_buf.p, out_buf.len);
	st_doc_unref(d);
}

static void handle_header(struct session *s, const struct st_node *hdr)
{
	const char *to = st_attr_get(hdr, "to");
	const char *version = st_attr_get(hdr, "version");
	char host[JID_PART_MAX];

	if (s->role->header && s->role->header(s, hdr))
		return;
	if (!to || jid_nameprep(to, host) != 0 || !route_host(host) ||
	    route_host(host)->type != s->role->host_type) {
		session_close(s, "host-unknown", NULL);
		return;
	}
	if (s->host && strcmp(s->host, host) != 0) {
		session_close(s, "host-unknown", "the host changed at a restart");
		return;
	}
	if (!s->host)
		s->host = xstrdup(host);
	if (strcmp(hdr->ns, s->role->ns) != 0) {
		session_close(s, "invalid-namespace", NULL);
		return;
	}
	if (!version || strncmp(version, "1.", 2) != 0) {
		session_close(s, "unsupported-version", NULL);
		return;
	}
	send_header(s);
	send_features(s);
}

/* --- STARTTLS --------------------------------------------------------------- */

/* <starttls/>: <proceed/>, and TLS once it is flushed (on_data). */
static void handle_starttls(struct session *s)
{
	if ((s->flags & SESS_F_TLS) || !tls_available(s)) {
		session_send_str(s, "<failure xmlns='" NS_TLS "'/>");
		session_close(s, NULL, NULL);
		return;
	}
	session_send_str(s, "<proceed xmlns='" NS_TLS "'/>");
	s->flags |= SESS_F_STARTTLS;
}

static void on_tls_ready(struct conn *c)
{
	struct session *s = c->owner;

	if (!s)
		return;
	s->flags |= SESS_F_TLS;
	s->flags &= ~SESS_F_STARTTLS;
	log_debug("%s:%d: %s %s", c->ip, c->port, tls_version(c->ssl),
		  tls_cipher(c->ssl));
	if (s->role->tls_ready)
		s->role->tls_ready(s);
}

static void on_connected(struct conn *c)
{
	struct session *s = c->owner;

	log_debug("%s:%d: connected (%s, for %s)", c->ip, c->port,
		  s->role->name, s->peer);
	if (s->role->connected)
		s->role->connected(s);
}

void session_open_stream(struct session *s)
{
	send_header(s);
}

/* A top-level element: STARTTLS before authentication is every role's,
 * the rest the role's own. Takes doc. */
static void handle_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;

	if (strcmp(n->ns, NS_TLS) == 0 && strcmp(n->name, "starttls") == 0 &&
	    !(s->flags & SESS_F_AUTHED)) {
		handle_starttls(s);
		st_doc_unref(doc);
		return;
	}
	unsigned long w = store_writes();
	s->role->element(s, doc);
	if (store_writes() != w) {
		unsigned long no = store_batch_no();
		if (s->wrote[0] != no) {
			s->wrote[1] = s->wrote[0];
			s->wrote[0] = no;
		}
	}
}

size_t session_writes_lost(unsigned long batch)
{
	size_t n = 0;

	for (struct session *s = all_sessions; s; s = s->all_next) {
		if ((s->wrote[0] != batch && s->wrote[1] != batch) ||
		    (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			continue;
		n++;
		if (!s->conn) {		/* hibernating: it can never be acked */
			session_expire(s, "storage failed");
			continue;
		}
		conn_discard_unreleased(s->conn);
		log_warn("%s: closed: what it sent was not stored", session_src(s));
		session_close(s, "resource-constraint",
			      "storage failed: the stanzas you sent last were "
			      "not stored");
	}
	return n;
}

/* --- input -------------------------------------------------------------- */

/* An idle stream keeps no XML parser (expat's state is most of what a
 * quiet connection costs): after a quiet spell the parser is freed, and
 * the next bytes get a new one primed to the same point of the stream. */
static void on_quiet(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, quiet_timer);
	char *ctx;

	ev_timer_stop(loop, t);
	if (!s->xs || !(s->flags & SESS_F_BOUND) || !xs_quiet(s->xs))
		return;
	ctx = xs_take_context(s->xs);
	if (!ctx)
		return;
	free(s->xs_context);
	s->xs_context = ctx;
	xs_free(s->xs);
	s->xs = NULL;
	log_debug("%s: quiet, parser released", s->full_jid);
}

static int ensure_parser(struct session *s)
{
	char *ctx;

	if (s->xs)
		return 0;
	s->xs = xs_new(&s->cfg->limits);
	ctx = s->xs_context;
	s->xs_context = NULL;
	return xs_prime(s->xs, ctx);
}

static void quiet_later(struct session *s)
{
	if (s->cfg->parser_release_after > 0 && (s->flags & SESS_F_BOUND)) {
		s->quiet_timer.repeat = s->cfg->parser_release_after;
		ev_timer_again(conn_loop(), &s->quiet_timer);
	}
}

static void on_data(struct conn *c, const char *buf, size_t len)
{
	struct session *s = c->owner;
	enum xs_event ev;

	if (!s || s->flags & (SESS_F_CLOSING | SESS_F_STARTTLS))
		return;		/* after <starttls/>: plaintext is dropped */
	s->last_activity = now_mono();
	if (ensure_parser(s) != 0) {
		session_close(s, "internal-server-error", NULL);
		return;
	}
	ev = xs_feed(s->xs, buf, len);
	for (;;) {
		switch (ev) {
		case XS_NEED_MORE:
			quiet_later(s);
			return;
		case XS_ERROR: {
			const char *text = NULL;
			const char *cond = xs_error(s->xs, &text);
			session_close(s, cond, text);
			return;
		}
		case XS_STREAM_OPEN:
			handle_header(s, xs_header(s->xs));
			break;
		case XS_STANZA:
			handle_element(s, xs_take_stanza(s->xs));
			if (c->owner != s) {	/* XEP-0198 resumed another one */
				s = c->owner;
				if (!s)
					return;
			}
			break;
		case XS_STREAM_CLOSE:
			session_close(s, NULL, NULL);
			return;
		}
		if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
			return;
		if (s->flags & SESS_F_STARTTLS) {
			s->flags &= ~SESS_F_OPENED;
			xs_reset(s->xs);
			conn_flush(s->conn);
			if (s->flags & SESS_F_OUTGOING)
				conn_start_tls_client(s->conn, tls_client_ctx(), s->peer);
			else
				conn_start_tls(s->conn, tls_ctx_for(s->host));
			return;
		}
		if (s->flags & SESS_F_RESTART) {
			const char *rest;
			size_t n = xs_unparsed(s->xs, &rest);
			/* a new stream: our next words start with a new header */
			s->flags &= ~(SESS_F_RESTART | SESS_F_OPENED);
			xs_reset(s->xs);
			if (!n)
				return;
			ev = xs_feed(s->xs, rest, n);
			continue;
		}
		ev = xs_next(s->xs);
	}
}

static void on_pause_end(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, pause_timer);

	if (s->conn && !(s->flags & SESS_F_CLOSING))
		conn_hold(s->conn, false);
}

void session_pause_reading(struct session *s, double seconds)
{
	struct ev_loop *loop = conn_loop();

	if (!s->conn || (s->flags & SESS_F_CLOSING) || seconds <= 0)
		return;
	if (ev_is_active(&s->pause_timer)) {
		if (ev_timer_remaining(loop, &s->pause_timer) >= seconds)
			return;
		ev_timer_stop(loop, &s->pause_timer);
	}
	conn_hold(s->conn, true);
	ev_timer_set(&s->pause_timer, seconds, 0.);
	ev_timer_start(loop, &s->pause_timer);
}

static void on_closed(struct conn *c, const char *reason)
{
	struct session *s = c->owner;

	if (!s)
		return;		/* its session moved on (XEP-0198) */
	s->conn = NULL;
	if ((s->flags & SESS_F_CLOSING) || !s->role->lost || !s->role->lost(s)) {
		s->conn = c;	/* session_end still reads the address */
		session_end(s, reason);
		s->conn = NULL;
	}
}

static struct session *session_new(const struct session_role *role,
				   const struct session_config *cfg)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->role = role;
	s->cfg = cfg;
	random_id(s->id, 16);
	s->connected_at = now_wall();
	s->last_activity = now_mono();
	s->xs = xs_new(&cfg->limits);
	s->all_next = all_sessions;
	if (all_sessions)
		all_sessions->all_prev = s;
	all_sessions = s;
	n_sessions++;
	ev_timer_init(&s->timer, on_timer, cfg->preauth_timeout, 0.);
	ev_timer_start(conn_loop(), &s->timer);
	ev_timer_init(&s->quiet_timer, on_quiet, 0., 0.);
	ev_timer_init(&s->pause_timer, on_pause_end, 0., 0.);
	return s;
}

struct session *session_new_outgoing(const struct session_role *role,
				     const struct session_config *cfg,
				     const char *host, const char *peer)
{
	struct session *s = session_new(role, cfg);

	s->flags |= SESS_F_OUTGOING;
	s->host = xstrdup(host);
	s->peer = xstrdup(peer);
	return s;
}

int session_connect(struct session *s, const struct sockaddr *sa, socklen_t len)
{
	int err = 0;

	s->conn = conn_connect(sa, len, &session_conn_events, s, &err);
	if (!s->conn)
		return err;
	s->conn->wq_limit = s->cfg->send_queue_limit;
	return 0;
}

void session_accept(int fd, const char *ip, int port, void *listen)
{
	const struct session_listen *sl = listen;
	const struct session_config *cfg = sl->cfg;
	bool direct_tls = sl->direct_tls;
	struct session *s = session_new(sl->role, cfg);

	s->conn = conn_new(fd, ip, port, &session_conn_events, s);
	s->conn->wq_limit = cfg->send_queue_limit;
	log_debug("%s:%d: connected (%s)%s", ip, port, sl->role->name,
		  direct_tls ? " (direct TLS)" : "");
	if (cfg->rate)
		conn_set_rate(s->conn, cfg->rate, cfg->burst);
	if (!ipstate_unauth_add(ip, cfg->max_unauth_per_ip)) {
		log_info("%s:%d: too many unauthenticated connections", ip, port);
		session_close(s, "policy-violation",
			      "too many unauthenticated connections from your address");
		return;
	}
	s->flags |= SESS_F_COUNTED;
	if (direct_tls) {
		s->flags |= SESS_F_DIRECT_TLS;
		conn_start_tls(s->conn, tls_default_ctx());
	}
}

size_t session_free_dead(void)
{
	size_t freed = 0;

	while (dead_sessions) {
		struct session *s = dead_sessions;
		dead_sessions = s->dead_next;
		if (s->all_prev)
			s->all_prev->all_next = s->all_next;
		else
			all_sessions = s->all_next;
		if (s->all_next)
			s->all_next->all_prev = s->all_prev;
		n_sessions--;
		s->flags |= SESS_F_CLOSING;
		while (s->filters)	/* nobody to send to any more */
			session_filter_remove(s, s->filters->ops);
		xs_free(s->xs);
		free(s->xs_context);
		sasl_free(s->sasl);
		free(s->host);
		free(s->peer);
		free(s->username);
		free(s->resource);
		free(s->bare_jid);
		free(s->full_jid);
		free(s);
		freed++;
	}
	if (!all_sessions)
		sbuf_free(&out_buf);
	return freed;
}
