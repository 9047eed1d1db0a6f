/* session.c - client streams: negotiation, then stanzas to the router. */
#include "session.h"
#include "accounts.h"
#include "ipstate.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "sm.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"

static struct session *dead_sessions;
static struct session *all_sessions;
static size_t n_sessions;
static unsigned char server_secret[32];
static struct sbuf out_buf;		/* serialization scratch, reused */

static void on_data(struct conn *c, const char *buf, size_t len);
static void on_closed(struct conn *c, const char *reason);
static void on_tls_ready(struct conn *c);

static const struct conn_events session_conn_events = {
	.data = on_data,
	.closed = on_closed,
	.tls_ready = on_tls_ready,
};

void session_global_init(const unsigned char secret[32])
{
	memcpy(server_secret, secret, sizeof(server_secret));
}

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
static int fire(struct session *s, const char *name, struct event *ev)
{
	return route_fire(s->host ? route_host(s->host) : NULL, name, ev);
}

/* Fires the event named by the format (a stanza of s in doc): true when a
 * handler took it. */
static bool fire_stanza(struct session *s, struct st_doc *doc,
			const char *fmt, const char *a, const char *b,
			const char *c)
{
	char name[512];
	int n = snprintf(name, sizeof(name), fmt, a, b, c);
	struct event ev = { .origin = s, .doc = doc, .stanza = doc->root };

	if (n < 0 || (size_t)n >= sizeof(name))
		return false;
	return fire(s, name, &ev) != 0;
}

static void fire_features(struct session *s, struct st_doc *d,
			  struct st_node *features)
{
	struct event ev = { .origin = s, .doc = d, .features = features };

	d->cursor = features;
	fire(s, "stream-features", &ev);
}

/* The session ended with stanzas the client never acked (XEP-0198):
 * "smacks-unacked" gets them; takes the docs and the array. */
static void fire_unacked(struct session *s, struct st_doc **docs, size_t n)
{
	struct event ev = { .session = s, .stanzas = docs, .n_stanzas = n };

	if (n)
		fire(s, "smacks-unacked", &ev);
	for (size_t i = 0; i < n; i++)
		st_doc_unref(docs[i]);
	free(docs);
}

static const char *src(struct session *s)
{
	return s->full_jid ? s->full_jid : s->conn ? s->conn->ip : s->id;
}

static void send_raw(struct session *s, const char *data, size_t len)
{
	if (s->conn && !(s->flags & SESS_F_DEAD))
		conn_send(s->conn, data, len);
}

static void send_str(struct session *s, const char *str)
{
	send_raw(s, str, strlen(str));
}

/* A serialized stanza on its way out: through stream management, then
 * to the connection. */
static int send_stanza_bytes(struct session *s, const char *data, size_t len)
{
	if (s->sm && sm_outgoing(s, data, len) != 0) {
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
	struct sbuf b;

	random_id(s->id, 16);
	sbuf_init(&b);
	sbuf_adds(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		      "xmlns:stream='http://etherx.jabber.org/streams' id='");
	sbuf_adds(&b, s->id);
	sbuf_adds(&b, "' version='1.0' xml:lang='en'");
	if (s->host) {
		sbuf_adds(&b, " from='");
		xml_escape(&b, s->host, strlen(s->host));
		sbuf_addc(&b, '\'');
	}
	sbuf_addc(&b, '>');
	send_raw(s, b.p, b.len);
	sbuf_free(&b);
	s->flags |= SESS_F_OPENED;
}

/* Marks the session ended: out of the directory, invisible to Lua, freed
 * at the end of the loop iteration. */
static void session_end(struct session *s, const char *reason)
{
	if (s->flags & SESS_F_DEAD)
		return;
	s->flags |= SESS_F_CLOSING;
	ev_timer_stop(conn_loop(), &s->timer);
	ev_timer_stop(conn_loop(), &s->delay_timer);
	ev_timer_stop(conn_loop(), &s->quiet_timer);
	if ((s->flags & SESS_F_COUNTED) && s->conn) {
		ipstate_unauth_del(s->conn->ip);
		s->flags &= ~SESS_F_COUNTED;
	}
	if (s->flags & SESS_F_BOUND) {
		log_info("%s: session ended: %s", s->full_jid, reason);
		route_unbind(s);
	}
	if (s->sm) {
		size_t n;
		struct st_doc **docs = sm_take_unacked(s, &n);
		fire_unacked(s, docs, n);
		sm_free(s);
	}
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

void session_transplant(struct session *o, struct session *n)
{
	struct xs *xs = o->xs;

	if (o->conn) {
		/* The old connection is still there: it loses the session. */
		static const char err[] = "<stream:error><conflict xmlns="
			"'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";
		struct conn *old = o->conn;
		old->owner = NULL;
		conn_send(old, err, sizeof(err) - 1);
		conn_close(old, "session resumed elsewhere");
	}
	o->conn = n->conn;
	o->conn->owner = o;
	o->xs = n->xs;
	n->xs = xs;
	free(o->xs_context);
	o->xs_context = n->xs_context;
	n->xs_context = NULL;
	n->conn = NULL;
	o->flags &= ~(SESS_F_HIBERNATING | SESS_F_TLS | SESS_F_DIRECT_TLS);
	o->flags |= n->flags & (SESS_F_TLS | SESS_F_DIRECT_TLS | SESS_F_OPENED);
	memcpy(o->id, n->id, sizeof(o->id));
	o->last_activity = now_mono();
	ev_timer_stop(conn_loop(), &o->timer);
	o->timer.repeat = o->cfg->idle_timeout;
	ev_timer_again(conn_loop(), &o->timer);
	session_end(n, "resumed into another session");
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
		log_debug("%s: stream error %s%s%s", src(s), condition,
			  text ? ": " : "", text ? text : "");
	}
	if (s->flags & SESS_F_OPENED)
		sbuf_adds(&b, "</stream:stream>");
	send_raw(s, b.p, b.len);
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
		if (s->sm && s->conn && !(s->flags & SESS_F_CLOSING) && sm_hibernate(s)) {
			/* A silent connection is a lost one: wait for a resume. */
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

static void add_mechanisms(struct session *s, struct st_doc *d, struct st_node *f)
{
	struct st_node *m = st_elem_new(d, f, "mechanisms", NS_SASL);
	bool tls = s->flags & SESS_F_TLS;
	static const char *const plus[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS" };
	static const char *const scram[] = { "SCRAM-SHA-256", "SCRAM-SHA-1" };

	s->plus_offered = tls;
	for (size_t i = 0; tls && i < ARRAY_SIZE(plus); i++) {
		struct st_node *e = st_elem_new(d, m, "mechanism", NULL);
		st_text_add(d, e, plus[i], strlen(plus[i]));
	}
	for (size_t i = 0; i < ARRAY_SIZE(scram); i++) {
		struct st_node *e = st_elem_new(d, m, "mechanism", NULL);
		st_text_add(d, e, scram[i], strlen(scram[i]));
	}
	if (tls || s->cfg->allow_plain_unencrypted) {
		struct st_node *e = st_elem_new(d, m, "mechanism", NULL);
		st_text_add(d, e, "PLAIN", 5);
	}
	if (tls) {
		struct st_node *cb = st_elem_new(d, f, "sasl-channel-binding", NS_SASL_CB);
		struct st_node *t = st_elem_new(d, cb, "channel-binding", NULL);
		st_attr_set(d, t, "type", "tls-server-end-point");
		if (SSL_version(s->conn->ssl) == TLS1_3_VERSION) {
			t = st_elem_new(d, cb, "channel-binding", NULL);
			st_attr_set(d, t, "type", "tls-exporter");
		}
	}
}

static void send_features(struct session *s)
{
	struct st_doc *d = st_doc_new();
	struct st_node *f = st_elem_new(d, NULL, "features", NS_STREAMS);

	if (!(s->flags & SESS_F_AUTHED)) {
		if (!(s->flags & SESS_F_TLS) && tls_available(s)) {
			struct st_node *t = st_elem_new(d, f, "starttls", NS_TLS);
			if (s->cfg->require_encryption)
				st_elem_new(d, t, "required", NULL);
		}
		if ((s->flags & SESS_F_TLS) || !s->cfg->require_encryption) {
			add_mechanisms(s, d, f);
			fire_features(s, d, f);	/* e.g. register */
		}
	} else {
		st_elem_new(d, f, "bind", NS_BIND);
		struct st_node *se = st_elem_new(d, f, "session", NS_SESSION);
		st_elem_new(d, se, "optional", NULL);
		fire_features(s, d, f);
	}
	sbuf_reset(&out_buf);
	sbuf_adds(&out_buf, "<stream:features>");
	for (struct st_node *c = f->first; c; c = c->next)
		st_serialize(c, NS_STREAMS, &out_buf);
	sbuf_adds(&out_buf, "</stream:features>");
	send_raw(s, out_buf.p, out_buf.len);
	st_doc_unref(d);
}

static void handle_header(struct session *s, const struct st_node *hdr)
{
	const char *to = st_attr_get(hdr, "to");
	const char *version = st_attr_get(hdr, "version");
	char host[JID_PART_MAX];

	if (!to || jid_nameprep(to, host) != 0 || !route_host(host) ||
	    route_host(host)->type != HOST_LOCAL) {
		session_close(s, "host-unknown", NULL);
		return;
	}
	if (s->host && strcmp(s->host, host) != 0) {
		session_close(s, "host-unknown", "the host changed at a restart");
		return;
	}
	if (!s->host)
		s->host = xstrdup(host);
	if (strcmp(hdr->ns, NS_CLIENT) != 0) {
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

/* --- STARTTLS and SASL --------------------------------------------------- */

static void handle_starttls(struct session *s)
{
	if ((s->flags & SESS_F_TLS) || !tls_available(s)) {
		send_str(s, "<failure xmlns='" NS_TLS "'/>");
		session_close(s, NULL, NULL);
		return;
	}
	send_str(s, "<proceed xmlns='" NS_TLS "'/>");
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
}

static int creds_lookup(void *ctx, const char *user, enum sasl_hash hash,
			struct scram_creds *out)
{
	struct session *s = ctx;
	char node[JID_PART_MAX];

	if (jid_nodeprep(user, node) != 0)
		return -ENOENT;
	return accounts_get(s->host, node, hash, out);
}

static int cb_data(void *ctx, const char *type, unsigned char *out, size_t *len)
{
	struct session *s = ctx;

	return tls_channel_binding(s->conn ? s->conn->ssl : NULL, type, out, len);
}

/* Sends the failure and applies the attempt limit. */
static void send_failure(struct session *s, const char *condition, bool counts)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_printf(&b, "<failure xmlns='" NS_SASL "'><%s/></failure>", condition);
	send_raw(s, b.p, b.len);
	sbuf_free(&b);
	if (counts && ++s->auth_failures >= s->cfg->max_auth_failures)
		session_close(s, "policy-violation", "too many failed authentication attempts");
}

static void on_failure_delay(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, delay_timer);

	send_failure(s, s->delayed_failure, true);
	s->delayed_failure = NULL;
	if (s->conn && !(s->flags & SESS_F_CLOSING))
		conn_hold(s->conn, false);
}

/* condition is a static string. Failed credentials from an address that
 * failed recently are answered late, and the stream reads nothing more
 * until then. */
static void sasl_failure(struct session *s, const char *condition)
{
	bool counts = strcmp(condition, "aborted") != 0 &&
		      !sasl_cb_type_unsupported(s->sasl);
	double delay = 0;

	sasl_free(s->sasl);
	s->sasl = NULL;
	fire(s, "authentication-failure", &(struct event){ .session = s });
	if (counts && strcmp(condition, "not-authorized") == 0 && s->conn)
		delay = ipstate_auth_failed(s->conn->ip, s->cfg->auth_failure_delay);
	if (delay <= 0 || !s->conn) {
		send_failure(s, condition, counts);
		return;
	}
	log_info("%s:%d: failed login, answering in %.1f s", s->conn->ip,
		 s->conn->port, delay);
	s->delayed_failure = condition;
	conn_hold(s->conn, true);
	ev_timer_init(&s->delay_timer, on_failure_delay, delay, 0.);
	ev_timer_start(conn_loop(), &s->delay_timer);
}

static void sasl_success(struct session *s, const struct sbuf *data)
{
	const char *user = sasl_username(s->sasl);
	const char *authzid = sasl_authzid(s->sasl);
	char node[JID_PART_MAX];
	struct sbuf b;

	if (jid_nodeprep(user, node) != 0) {
		sasl_failure(s, "not-authorized");
		return;
	}
	if (authzid && *authzid) {
		struct jid j;
		if (jid_parse(authzid, &j) != 0 || j.has_resource ||
		    strcmp(j.node, node) != 0 || strcmp(j.domain, s->host) != 0) {
			sasl_failure(s, "invalid-authzid");
			return;
		}
	}
	sbuf_init(&b);
	sbuf_adds(&b, "<success xmlns='" NS_SASL "'>");
	if (data->len)
		b64_encode(&b, data->p, data->len);
	sbuf_adds(&b, "</success>");
	send_raw(s, b.p, b.len);
	sbuf_free(&b);
	s->username = xstrdup(node);
	if (s->flags & SESS_F_COUNTED) {
		ipstate_unauth_del(s->conn->ip);
		s->flags &= ~SESS_F_COUNTED;
	}
	sbuf_init(&b);
	sbuf_printf(&b, "%s@%s", node, s->host);
	s->bare_jid = b.p;
	s->flags |= SESS_F_AUTHED | SESS_F_RESTART;
	sasl_free(s->sasl);
	s->sasl = NULL;
	log_info("%s:%d: authenticated as %s", s->conn->ip, s->conn->port, s->bare_jid);
	fire(s, "authentication-success", &(struct event){ .session = s });
}

static void sasl_step_with(struct session *s, const struct st_node *n, bool initial)
{
	struct sbuf in, out;
	const char *text = n->first && !n->first->name ? n->first->text : "";
	size_t tlen = strlen(text);

	sbuf_init(&in);
	sbuf_init(&out);
	if (initial && tlen == 0) {
		/* No initial response: ask for it with an empty challenge. */
		send_str(s, "<challenge xmlns='" NS_SASL "'/>");
		goto out;
	}
	if (b64_decode(&in, text, tlen) != 0) {
		sasl_failure(s, "incorrect-encoding");
		goto out;
	}
	switch (sasl_step(s->sasl, in.p ? in.p : "", in.len, &out)) {
	case SASL_CONTINUE: {
		struct sbuf b;
		sbuf_init(&b);
		sbuf_adds(&b, "<challenge xmlns='" NS_SASL "'>");
		b64_encode(&b, out.p, out.len);
		sbuf_adds(&b, "</challenge>");
		send_raw(s, b.p, b.len);
		sbuf_free(&b);
		break;
	}
	case SASL_OK:
		sasl_success(s, &out);
		break;
	case SASL_FAIL:
		sasl_failure(s, sasl_condition(s->sasl));
		break;
	}
out:
	sbuf_free(&in);
	sbuf_free(&out);
}

static void handle_sasl(struct session *s, const struct st_node *n)
{
	if (s->flags & SESS_F_AUTHED) {
		session_close(s, "policy-violation", "already authenticated");
		return;
	}
	if (strcmp(n->name, "auth") == 0) {
		const char *mech = st_attr_get(n, "mechanism");
		bool tls = s->flags & SESS_F_TLS;
		struct sasl_params p = {
			.lookup = creds_lookup, .ctx = s,
			.cb_data = tls ? cb_data : NULL,
			.plus_offered = s->plus_offered,
			.accept_y_with_plus = !s->cfg->strict_channel_binding,
			.secret = server_secret,
			.fake_iterations = ACCOUNTS_DEFAULT_ITERATIONS,
		};
		if (!tls && s->cfg->require_encryption) {
			sasl_failure(s, "encryption-required");
			return;
		}
		sasl_free(s->sasl);
		s->sasl = NULL;
		if (!mech || (!tls && strstr(mech, "-PLUS")) ||
		    (!tls && strcmp(mech, "PLAIN") == 0 && !s->cfg->allow_plain_unencrypted) ||
		    !(s->sasl = sasl_new(mech, &p))) {
			sasl_failure(s, "invalid-mechanism");
			return;
		}
		sasl_step_with(s, n, true);
	} else if (strcmp(n->name, "response") == 0 && s->sasl) {
		sasl_step_with(s, n, false);
	} else if (strcmp(n->name, "abort") == 0) {
		sasl_failure(s, "aborted");
	} else {
		sasl_failure(s, "malformed-request");
	}
}

/* --- binding and stanzas ------------------------------------------------ */

static void bind_error(struct session *s, const struct st_node *iq,
		       const char *type, const char *cond)
{
	struct st_doc *e = st_error_reply(iq, type, cond, NULL);

	st_attr_set(e, e->root, "to", NULL);
	st_attr_set(e, e->root, "from", NULL);
	session_send(s, e->root);
	st_doc_unref(e);
}

static void handle_bind(struct session *s, struct st_doc *doc, struct st_node *b)
{
	struct st_node *iq = doc->root;
	const char *want = st_child_text(doc, b, "resource", NULL);
	char res[JID_PART_MAX];
	struct sbuf full;

	if (want && *want) {
		if (jid_resourceprep(want, res) != 0 || !*res) {
			bind_error(s, iq, "modify", "bad-request");
			return;
		}
	} else {
		random_id(res, 16);
	}
	sbuf_init(&full);
	sbuf_printf(&full, "%s/%s", s->bare_jid, res);
	if (full.len >= 3071) {
		sbuf_free(&full);
		bind_error(s, iq, "modify", "bad-request");
		return;
	}
	if (s->cfg->max_resources && !route_find_full(full.p) &&
	    route_count_bare(s->bare_jid) >= s->cfg->max_resources) {
		sbuf_free(&full);
		bind_error(s, iq, "wait", "resource-constraint");
		return;
	}
	s->resource = xstrdup(res);
	s->full_jid = full.p;
	route_bind(s);		/* closes a session with the same full JID */
	s->flags |= SESS_F_BOUND;
	ev_timer_stop(conn_loop(), &s->timer);
	s->timer.repeat = s->cfg->idle_timeout;
	ev_timer_again(conn_loop(), &s->timer);

	struct st_doc *r = st_reply(iq);
	st_attr_set(r, r->root, "to", NULL);
	st_attr_set(r, r->root, "from", NULL);
	struct st_node *bn = st_elem_new(r, r->root, "bind", NS_BIND);
	struct st_node *j = st_elem_new(r, bn, "jid", NULL);
	st_text_add(r, j, s->full_jid, strlen(s->full_jid));
	session_send(s, r->root);
	st_doc_unref(r);
	log_info("%s: bound (%s:%d, %s)", s->full_jid, s->conn->ip,
		 s->conn->port, tls_version(s->conn->ssl));
	fire(s, "resource-bind", &(struct event){ .session = s });
}

static struct st_node *only_child(const struct st_node *n)
{
	struct st_node *found = NULL;

	for (struct st_node *c = n->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (found)
			return NULL;
		found = c;
	}
	return found;
}

static void handle_client_stanza(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;
	bool is_iq = strcmp(n->name, "iq") == 0;

	if (!is_iq && strcmp(n->name, "message") != 0 &&
	    strcmp(n->name, "presence") != 0) {
		session_close(s, "unsupported-stanza-type", NULL);
		goto out;
	}
	const char *type = st_attr_get(n, "type");
	struct st_node *child = is_iq ? only_child(n) : NULL;
	if (!(s->flags & SESS_F_AUTHED)) {
		/* Before authentication only modules that ask for it see an
		 * iq (in-band registration, XEP-0077), over TLS if required. */
		if (!child || !type || !st_attr_get(n, "id") ||
		    (!(s->flags & SESS_F_TLS) && s->cfg->require_encryption) ||
		    !fire_stanza(s, doc, "pre-auth/iq-%s/%s:%s", type,
				 child->ns, child->name))
			session_close(s, "not-authorized", NULL);
		goto out;
	}
	if (!(s->flags & SESS_F_BOUND)) {
		if (is_iq && type && strcmp(type, "set") == 0 && child &&
		    strcmp(child->name, "bind") == 0 && strcmp(child->ns, NS_BIND) == 0)
			handle_bind(s, doc, child);
		else
			session_close(s, "not-authorized", "bind a resource first");
		goto out;
	}
	if (is_iq && type && strcmp(type, "set") == 0 && child &&
	    !st_attr_get(n, "to") && strcmp(child->ns, NS_SESSION) == 0) {
		struct st_doc *r = st_reply(n);	/* RFC 3921 session: a no-op */
		st_attr_set(r, r->root, "from", NULL);
		st_attr_set(r, r->root, "to", NULL);
		session_send(s, r->root);
		st_doc_unref(r);
		goto out;
	}
	if (s->sm)
		sm_count_in(s->sm);
	route_from_client(s, doc);
	return;
out:
	st_doc_unref(doc);
}

static void handle_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;

	if (strcmp(n->ns, NS_CLIENT) == 0) {
		handle_client_stanza(s, doc);	/* takes doc */
		return;
	}
	if (strcmp(n->ns, NS_TLS) == 0 && strcmp(n->name, "starttls") == 0 &&
	    !(s->flags & SESS_F_AUTHED))
		handle_starttls(s);
	else if (strcmp(n->ns, NS_SASL) == 0)
		handle_sasl(s, n);
	else if (!(s->flags & SESS_F_AUTHED))
		session_close(s, "not-authorized", NULL);
	else if (strcmp(n->ns, NS_SM) == 0 && sm_handle(s, n->name, st_attr_get(n, "h")))
		;	/* <r/>, <a/>: the hot path stays in C */
	else if (!fire_stanza(s, doc, "stream-element/%s:%s", n->ns, n->name, NULL))
		session_close(s, "unsupported-stanza-type", NULL);
	st_doc_unref(doc);
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
			conn_start_tls(s->conn, tls_default_ctx());
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

static void on_closed(struct conn *c, const char *reason)
{
	struct session *s = c->owner;

	if (!s)
		return;		/* its session moved on (XEP-0198) */
	s->conn = NULL;
	if ((s->flags & SESS_F_CLOSING) || !sm_hibernate(s)) {
		s->conn = c;	/* session_end still reads the address */
		session_end(s, reason);
		s->conn = NULL;
	}
}

void session_accept(int fd, const char *ip, int port,
		    const struct session_config *cfg, bool direct_tls)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->cfg = cfg;
	random_id(s->id, 16);
	s->connected_at = now_wall();
	s->last_activity = now_mono();
	s->xs = xs_new(&cfg->limits);
	s->conn = conn_new(fd, ip, port, &session_conn_events, s);
	s->conn->wq_limit = cfg->send_queue_limit;
	s->all_next = all_sessions;
	if (all_sessions)
		all_sessions->all_prev = s;
	all_sessions = s;
	n_sessions++;
	ev_timer_init(&s->timer, on_timer, cfg->preauth_timeout, 0.);
	ev_timer_start(conn_loop(), &s->timer);
	log_debug("%s:%d: connected%s", ip, port, direct_tls ? " (direct TLS)" : "");
	if (cfg->rate)
		conn_set_rate(s->conn, cfg->rate, cfg->burst);
	ev_timer_init(&s->delay_timer, on_failure_delay, 1., 0.);
	ev_timer_init(&s->quiet_timer, on_quiet, 0., 0.);
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
