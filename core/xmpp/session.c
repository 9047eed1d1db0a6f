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
#include "tls13.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"

static struct session *dead_sessions;
static struct session *all_sessions;
static size_t n_sessions;
static struct sbuf out_buf;		/* serialization scratch, reused */
static struct session_stats stats;

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

const struct session_stats *session_stats(void)
{
	return &stats;
}

/* 0 message, 1 presence, 2 iq, -1 anything else. */
static int stanza_kind(const char *name)
{
	switch (name[0]) {
	case 'm': return strcmp(name, "message") == 0 ? 0 : -1;
	case 'p': return strcmp(name, "presence") == 0 ? 1 : -1;
	case 'i': return strcmp(name, "iq") == 0 ? 2 : -1;
	default: return -1;
	}
}

void session_count_out(const char *name)
{
	int kind = name ? stanza_kind(name) : -1;

	if (kind >= 0)
		stats.out[kind]++;
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

static void send_header(struct session *s)
{
	bool out = s->flags & SESS_F_OUTGOING;
	struct sbuf b;

	sbuf_init(&b);
	if (s->framing) {	/* RFC 7395 3.3.1 */
		sbuf_adds(&b, "<open xmlns='" NS_FRAMING "'");
	} else {
		sbuf_adds(&b, "<?xml version='1.0'?><stream:stream xmlns='");
		sbuf_adds(&b, s->role->ns);
		sbuf_adds(&b, "' xmlns:stream='http://etherx.jabber.org/streams'");
	}
	if (s->role->header_attrs && !s->framing) {
		sbuf_addc(&b, ' ');
		sbuf_adds(&b, s->role->header_attrs);
	}
	if (!out) {	/* the initiating entity's header has no id */
		random_id(s->id, 16);
		sbuf_adds(&b, " id='");
		sbuf_adds(&b, s->id);
		sbuf_addc(&b, '\'');
	}
	if (!s->role->no_features)
		sbuf_adds(&b, " version='1.0'");
	sbuf_adds(&b, " xml:lang='en'");
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
	sbuf_adds(&b, s->framing ? "/>" : ">");
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
		sbuf_adds(&b, s->framing ? "<stream:error xmlns:stream="
			  "'http://etherx.jabber.org/streams'><" : "<stream:error><");
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
	if (s->framing) {	/* each element a message, then <close/> */
		if (b.len)
			session_send_raw(s, b.p, b.len);
		session_send_str(s, "<close xmlns='" NS_FRAMING "'/>");
		s->framing->close(s, s->framing_data);
	} else {
		if (s->flags & SESS_F_OPENED)
			sbuf_adds(&b, "</stream:stream>");
		session_send_raw(s, b.p, b.len);
	}
	sbuf_free(&b);
	s->flags |= SESS_F_CLOSING;
	conn_close(s->conn, condition ? condition : "closed");
}

void session_close_all(const char *condition,
		       bool (*spare)(const struct session *s))
{
	struct session *s = all_sessions;

	while (s) {
		struct session *next = s->all_next;
		if (!spare || !spare(s))
			session_close(s, condition, NULL);
		s = next;
	}
}

/* The framing's state goes: when the session is freed, or when another
 * connection takes its place (XEP-0198), never from inside its input. */
static void drop_framing(struct session *s)
{
	if (s->framing && s->framing->free)
		s->framing->free(s->framing_data);
	s->framing = NULL;
	s->framing_data = NULL;
}

void session_drop_conn(struct session *s, const char *condition)
{
	struct conn *c = s->conn;

	if (!c) {
		drop_framing(s);	/* a hibernating session's, stale */
		return;
	}
	if (s->framing) {
		struct sbuf b;
		sbuf_init(&b);
		sbuf_printf(&b, "<stream:error xmlns:stream='http://etherx.jabber.org/"
			    "streams'><%s xmlns='" NS_STREAM_ERR "'/></stream:error>",
			    condition);
		session_write(s, b.p, b.len);
		sbuf_free(&b);
		session_write(s, "<close xmlns='" NS_FRAMING "'/>",
			      sizeof("<close xmlns='" NS_FRAMING "'/>") - 1);
		s->framing->close(s, s->framing_data);
	} else {
		struct sbuf b;
		sbuf_init(&b);
		sbuf_printf(&b, "<stream:error><%s xmlns='" NS_STREAM_ERR "'/>"
			    "</stream:error></stream:stream>", condition);
		conn_send(c, b.p, b.len);
		sbuf_free(&b);
	}
	c->owner = NULL;
	conn_close(c, condition);
	s->conn = NULL;
	drop_framing(s);
}

/* --- timers --------------------------------------------------------- */

static void framing_conn_gone(struct session *s)
{
	if (s->framing && s->framing->conn_gone)
		s->framing->conn_gone(s, s->framing_data);
}

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
			framing_conn_gone(s);
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

/* STARTTLS: on a stream of its own (a framed one has its transport's
 * TLS, or none). */
static bool tls_available(struct session *s)
{
	return !s->framing && tls_default_ctx() != NULL;
}

void session_send_features(struct session *s)
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
	sbuf_adds(&out_buf, s->framing ? "<stream:features xmlns:stream="
		  "'http://etherx.jabber.org/streams'>" : "<stream:features>");
	for (struct st_node *c = f->first; c; c = c->next)
		st_serialize(c, NS_STREAMS, &out_buf);
	sbuf_adds(&out_buf, "</stream:features>");
	session_send_raw(s, out_buf.p, out_buf.len);
	st_doc_unref(d);
}

/* The peer's stream header (or, framed, its <open/>, whose namespace is
 * the framing's: the content namespace is the role's by definition). */
static void handle_header(struct session *s, const struct st_node *hdr)
{
	const char *to = st_attr_get(hdr, "to");
	const char *version = st_attr_get(hdr, "version");
	char host[JID_PART_MAX];

	if (s->role->header && s->role->header(s, hdr))
		return;
	const struct host *h = to && jid_nameprep(to, host) == 0 ? route_host(host) : NULL;

	if (!h || (h->type != s->role->host_type &&
		   !(s->role->components_too && h->type == HOST_COMPONENT))) {
		session_close(s, "host-unknown", NULL);
		return;
	}
	if (s->host && strcmp(s->host, host) != 0) {
		session_close(s, "host-unknown", "the host changed at a restart");
		return;
	}
	if (!s->host)
		s->host = xstrdup(host);
	if (!s->framing && strcmp(hdr->ns, s->role->ns) != 0) {
		session_close(s, "invalid-namespace", NULL);
		return;
	}
	if (s->role->no_features) {
		send_header(s);
		return;
	}
	if (!version || strncmp(version, "1.", 2) != 0) {
		session_close(s, "unsupported-version", NULL);
		return;
	}
	send_header(s);
	session_send_features(s);
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

	if (s->framing && strcmp(n->ns, NS_FRAMING) == 0) {
		if (strcmp(n->name, "open") == 0)
			handle_header(s, n);
		else if (strcmp(n->name, "close") == 0)
			session_close(s, NULL, NULL);
		else
			session_close(s, "unsupported-stanza-type", NULL);
		st_doc_unref(doc);
		return;
	}
	if (s->framing && !(s->flags & SESS_F_OPENED)) {
		session_close(s, "not-authorized", "open the stream first");
		st_doc_unref(doc);
		return;
	}
	if (strcmp(n->ns, NS_TLS) == 0 && strcmp(n->name, "starttls") == 0 &&
	    !(s->flags & SESS_F_AUTHED)) {
		handle_starttls(s);
		st_doc_unref(doc);
		return;
	}
	int kind = strcmp(n->ns, s->role->ns) == 0 ? stanza_kind(n->name) : -1;
	if (kind >= 0)
		stats.in[kind]++;
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

/* A quiet TLS 1.3 stream gives its SSL back too, keeping only the record
 * keys (tls13.h); when something is still in flight (output queued, a
 * record read ahead) it tries again after another quiet spell. A stream
 * already released drops the cipher contexts it made when busy. */
static void quiet_tls(struct session *s)
{
	if (s->conn && s->conn->tls13)
		tls13_quiet(s->conn);
	if (!s->cfg->tls_compact || !s->conn || !s->conn->ssl)
		return;
	if (tls13_compact(s->conn) == -EAGAIN) {
		s->quiet_timer.repeat = s->cfg->parser_release_after;
		ev_timer_again(conn_loop(), &s->quiet_timer);
		return;
	}
	if (!s->conn->ssl)
		log_debug("%s: quiet, TLS state released", s->full_jid);
}

/* An idle stream keeps no XML parser (expat's state is most of what a
 * quiet connection costs): after a quiet spell the parser is parked
 * (xs_park: shared by the quiet streams of the same context), and the
 * next bytes take a parked one back, or get a new one primed to the
 * same point of the stream. */
static void on_quiet(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, quiet_timer);
	double quiet = now_mono() - s->last_activity;

	ev_timer_stop(loop, t);
	if (!(s->flags & SESS_F_BOUND))
		return;
	if (quiet < s->cfg->parser_release_after) {
		/* bytes came since the timer was set: the rest of the spell */
		t->repeat = s->cfg->parser_release_after - quiet;
		ev_timer_again(loop, t);
		return;
	}
	if (s->xs) {
		if (!xs_quiet(s->xs))
			return;
		if (!s->xs_context && !(s->xs_context = xs_take_context(s->xs)))
			return;
		xs_park(s->xs, s->xs_context);
		s->xs = NULL;
		log_debug("%s: quiet, parser released", s->full_jid);
	}
	quiet_tls(s);
}

static int ensure_parser(struct session *s)
{
	if (s->xs)
		return 0;
	if (!s->xs_context)
		return -EINVAL;
	s->xs = xs_unpark(s->xs_context, &s->cfg->limits);
	if (s->xs)
		return 0;
	s->xs = xs_new(&s->cfg->limits);
	return xs_prime(s->xs, xstrdup(s->xs_context));
}

/* Arms the quiet timer unless it runs: a read only stamps last_activity
 * (on_data), and on_quiet moves the timer on by what is left, so a busy
 * stream costs no timer heap work per read (issue #25: with 10,000
 * streams each ev_timer_again walked a heap of 10,000). */
static void quiet_later(struct session *s)
{
	if (s->cfg->parser_release_after > 0 && (s->flags & SESS_F_BOUND) &&
	    !ev_is_active(&s->quiet_timer)) {
		s->quiet_timer.repeat = s->cfg->parser_release_after;
		ev_timer_again(conn_loop(), &s->quiet_timer);
	}
}

/* The root a framed stream's parser is primed with: each message then
 * parses as one of its children. */
static char *framed_root(const struct session *s)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_adds(&b, "<stream:stream xmlns='");
	sbuf_adds(&b, s->role->ns);
	sbuf_adds(&b, "' xmlns:stream='http://etherx.jabber.org/streams'>");
	return b.p;
}

static void on_data(struct conn *c, const char *buf, size_t len)
{
	struct session *s = c->owner;

	if (!s || s->flags & (SESS_F_CLOSING | SESS_F_STARTTLS))
		return;		/* after <starttls/>: plaintext is dropped */
	if (s->framing)
		s->framing->input(s, s->framing_data, buf, len);
	else
		session_input(s, buf, len);
}

void session_input(struct session *s, const char *buf, size_t len)
{
	struct conn *c = s->conn;
	enum xs_event ev;

	if (!c || s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
		return;
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
				conn_start_tls_client(s->conn, tls_client_ctx_for(s->host),
						      s->peer);
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
			/* an outgoing stream speaks first (after SASL,
			 * RFC 6120 6.4.6) */
			if (s->flags & SESS_F_OUTGOING)
				send_header(s);
			if (s->framing && xs_prime(s->xs, framed_root(s)) != 0) {
				session_close(s, "internal-server-error", NULL);
				return;
			}
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
	framing_conn_gone(s);
	if ((s->flags & SESS_F_CLOSING) || !s->role->lost || !s->role->lost(s)) {
		s->conn = c;	/* session_end still reads the address */
		session_end(s, reason);
		s->conn = NULL;
	}
	/* The framing's state stays until the session is freed or resumed
	 * (it may be on the stack: the framing's input closed it). */
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

struct session *session_new_remote(const struct session_role *role,
				   const struct session_config *cfg)
{
	struct session *s = session_new(role, cfg);

	xs_free(s->xs);
	s->xs = NULL;
	ev_timer_stop(conn_loop(), &s->timer);
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
	if (sl->role->peer_certificate)
		s->conn->flags |= CONN_F_PEER_CERT;
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

struct session *session_accept_conn(struct conn *c, const struct session_listen *sl,
				    const struct session_framing *framing,
				    void *framing_data, bool secure)
{
	const struct session_config *cfg = sl->cfg;
	struct session *s = session_new(sl->role, cfg);

	s->conn = c;
	s->framing = framing;
	s->framing_data = framing_data;
	conn_set_owner(c, &session_conn_events, s);
	c->wq_limit = cfg->send_queue_limit;
	if (secure)
		s->flags |= SESS_F_TLS;
	if (framing && xs_prime(s->xs, framed_root(s)) != 0) {
		session_close(s, "internal-server-error", NULL);
		return s;
	}
	log_debug("%s:%d: connected (%s over %s)", c->ip, c->port, sl->role->name,
		  framing ? framing->name : "a taken connection");
	if (cfg->rate)
		conn_set_rate(c, cfg->rate, cfg->burst);
	if (!ipstate_unauth_add(c->ip, cfg->max_unauth_per_ip)) {
		log_info("%s:%d: too many unauthenticated connections", c->ip, c->port);
		session_close(s, "policy-violation",
			      "too many unauthenticated connections from your address");
		return s;
	}
	s->flags |= SESS_F_COUNTED;
	return s;
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
		drop_framing(s);
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
