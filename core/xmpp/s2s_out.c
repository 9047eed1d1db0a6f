/* s2s_out.c - the outgoing server-to-server role and its links: one
 * stream per (local, remote) pair, made on demand when a stanza or a
 * dialback verification needs it, reused while it lives. Resolution is
 * core/net/dns.c's; each target is tried in order within one deadline
 * (s2s_connect_timeout); STARTTLS, then Server Dialback (XEP-0220) to
 * prove our domain. Stanzas wait in order until the stream is
 * authenticated; when it cannot be, each is bounced once. */
#include "s2s.h"
#include "certid.h"
#include "dns.h"
#include "hmap.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"

enum link_state {
	LINK_IDLE,		/* nothing under way */
	LINK_RESOLVING,		/* waiting for DNS */
	LINK_CONNECTING,	/* a stream is being negotiated */
	LINK_SASL,		/* SASL EXTERNAL asked for */
	LINK_READY,		/* negotiated (TLS): dialback may go */
	LINK_AUTHED,		/* the peer accepted our domain */
};

struct queued {
	struct st_doc *doc;	/* a reference */
	struct st_node *node;
};

/* A <db:verify/> we carry for an incoming stream. */
struct out_verify {
	char *id, *key;
	bool sent;
	struct out_verify *next;
};

struct link {
	char *local, *remote;
	char *name;			/* "local remote": its key in links */
	enum link_state state;
	struct session *s;		/* the stream, or NULL */
	char *stream_id;		/* the peer's id for our stream */
	bool result_sent;
	struct queued *q;
	size_t n_q, cap_q;
	struct out_verify *verifies;
	struct dns_query *dq;
	struct dns_target *targets;	/* copies: addresses and names */
	size_t n_targets, next_target;
	bool direct_tls;		/* the current target's */
	ev_timer deadline;		/* connect and negotiate */
	/* the current target's certificate, and DANE (RFC 7673) */
	struct dns_query *tq;		/* its TLSA records, asked for */
	struct dns_tlsa *tlsa;		/* copies (data included) */
	size_t n_tlsa;
	struct s2s_cert cert;
	bool cert_valid;
	const char *cert_how;		/* static */
	bool sasl_sent, sasl_ok, sasl_failed;
	const char *method;		/* how we authenticated (static) */
	char *why;			/* the last target's failure, for the bounce log */
};

static struct hmap links;
static bool links_ready;
static bool stopping;

/* --- links ----------------------------------------------------------------------- */

static struct link *link_get(const char *local, const char *remote, bool create)
{
	char name[2 * JID_PART_MAX + 2];
	struct link *l;

	snprintf(name, sizeof(name), "%s %s", local, remote);
	if (!links_ready) {
		if (!create)
			return NULL;
		hmap_init(&links);
		links_ready = true;
	}
	l = hmap_get(&links, name);
	if (l || !create)
		return l;
	l = xcalloc(1, sizeof(*l));
	l->local = xstrdup(local);
	l->remote = xstrdup(remote);
	l->name = xstrdup(name);
	hmap_set(&links, name, l);
	return l;
}

static void free_tlsa(struct link *l)
{
	for (size_t i = 0; i < l->n_tlsa; i++)
		free((void *)l->tlsa[i].data);
	free(l->tlsa);
	l->tlsa = NULL;
	l->n_tlsa = 0;
}

static void set_why(struct link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_why(struct link *l, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(l->why);
	l->why = xstrdup(buf);
}

static void free_targets(struct link *l)
{
	for (size_t i = 0; i < l->n_targets; i++)
		free(l->targets[i].host);
	free(l->targets);
	l->targets = NULL;
	l->n_targets = l->next_target = 0;
}

/* Out of the map and its stream; what it held is the caller's. */
static void link_unlink(struct link *l)
{
	if (hmap_get(&links, l->name) == l)
		hmap_del(&links, l->name);
	ev_timer_stop(conn_loop(), &l->deadline);
	dns_cancel(l->dq);
	l->dq = NULL;
	dns_cancel(l->tq);
	l->tq = NULL;
	if (l->s) {
		l->s->role_data = NULL;
		l->s = NULL;
	}
}

static void link_free(struct link *l)
{
	link_unlink(l);
	for (size_t i = 0; i < l->n_q; i++)
		st_doc_unref(l->q[i].doc);
	free(l->q);
	while (l->verifies) {
		struct out_verify *v = l->verifies;
		l->verifies = v->next;
		free(v->id);
		free(v->key);
		free(v);
	}
	free_targets(l);
	free_tlsa(l);
	free(l->why);
	free(l->stream_id);
	free(l->local);
	free(l->remote);
	free(l->name);
	free(l);
	if (links_ready && !links.count) {
		hmap_free(&links);
		links_ready = false;
	}
}

/* The link cannot be made: every stanza waiting bounces once with cond,
 * every verification is answered as failed. */
static void link_fail(struct link *l, const char *cond, const char *why)
{
	struct session *s = l->s;
	struct queued *q = l->q;
	size_t n = l->n_q;
	struct out_verify *v = l->verifies;
	char *local = xstrdup(l->local), *remote = xstrdup(l->remote);
	bool timeout = strcmp(cond, "remote-server-timeout") == 0;

	log_info("s2s outgoing %s -> %s failed: %s (%zu stanza%s bounced)", local,
		 remote, why, n, n == 1 ? "" : "s");
	link_unlink(l);
	l->q = NULL;
	l->n_q = 0;
	l->verifies = NULL;
	link_free(l);
	if (s)
		session_close(s, NULL, NULL);
	/* The link is gone first: what the bounces make starts afresh. */
	for (size_t i = 0; i < n; i++) {
		route_bounce(q[i].node, timeout ? "wait" : "cancel", cond, NULL);
		st_doc_unref(q[i].doc);
	}
	free(q);
	while (v) {
		struct out_verify *next = v->next;
		s2s_in_verified(v->id, local, remote, -1,
				timeout ? "remote-server-timeout" : "remote-connection-failed");
		free(v->id);
		free(v->key);
		free(v);
		v = next;
	}
	free(local);
	free(remote);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct link *l = container_of(t, struct link, deadline);

	link_fail(l, "remote-server-timeout", "no stream within s2s_connect_timeout");
}

/* Connects to t: true when under way. */
static bool connect_target(struct link *l, const struct dns_target *t)
{
	const struct s2s_config *cfg = s2s_config();
	struct session *s = session_new_outgoing(&s2s_out_role, &cfg->out,
						 l->local, l->remote);
	char addr[64];

	s->role_data = l;
	l->s = s;
	l->state = LINK_CONNECTING;
	l->result_sent = false;
	l->direct_tls = t->direct_tls;
	l->sasl_sent = l->sasl_ok = l->sasl_failed = false;
	l->cert_valid = false;
	l->cert_how = NULL;
	memset(&l->cert, 0, sizeof(l->cert));
	for (struct out_verify *v = l->verifies; v; v = v->next)
		v->sent = false;
	log_debug("s2s outgoing %s -> %s: connecting to %s%s%s", l->local,
		  l->remote, dns_addr_str(&t->addr, addr, sizeof(addr)),
		  t->direct_tls ? " (direct TLS)" : "",
		  l->n_tlsa ? " (DANE)" : "");
	if (session_connect(s, (const struct sockaddr *)&t->addr, t->addrlen) == 0)
		return true;
	s->role_data = NULL;
	l->s = NULL;
	session_end(s, "cannot connect");
	return false;
}

static const struct dns_target *current_target(const struct link *l)
{
	return l->next_target && l->next_target <= l->n_targets ?
	       &l->targets[l->next_target - 1] : NULL;
}

static void try_next(struct link *l);

/* The TLSA records of the current target: with usable ones its
 * certificate must match one (RFC 7673); bogus ones, or no answer, and
 * the target is not used (RFC 7671 4). */
static void on_tlsa(void *arg, int err, const struct dns_tlsa *recs, size_t n)
{
	struct link *l = arg;
	const struct dns_target *t = current_target(l);

	l->tq = NULL;
	if (err || !t) {
		set_why(l, "DANE: the TLSA records of %s:%u %s", t ? t->host : "?",
			t ? t->port : 0, err == -EBADMSG ? "are bogus (DNSSEC)" :
			"could not be looked up");
		log_info("s2s outgoing %s -> %s: %s: next target", l->local, l->remote, l->why);
		try_next(l);
		return;
	}
	l->tlsa = n ? xcalloc(n, sizeof(*l->tlsa)) : NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char *d = xmalloc(recs[i].len ? recs[i].len : 1);
		memcpy(d, recs[i].data, recs[i].len);
		l->tlsa[i] = recs[i];
		l->tlsa[i].data = d;
	}
	l->n_tlsa = n;
	if (!connect_target(l, t))
		try_next(l);
}

/* Tries the targets from the next one on; a target found through
 * DNSSEC-secure answers first has its TLSA records looked up. */
static void try_next(struct link *l)
{
	while (l->next_target < l->n_targets) {
		const struct dns_target *t = &l->targets[l->next_target++];

		free_tlsa(l);
		if (t->secure && t->host) {
			l->state = LINK_CONNECTING;
			l->tq = dns_resolve_tlsa(t->host, t->port, on_tlsa, l);
			return;
		}
		if (connect_target(l, t))
			return;
	}
	link_fail(l, "remote-server-not-found", l->why ? l->why :
		  "no address could be reached");
}

static void on_resolved(void *arg, int err, const struct dns_target *t, size_t n)
{
	struct link *l = arg;

	l->dq = NULL;
	if (err || !n) {
		link_fail(l, err == -ETIMEDOUT ? "remote-server-timeout"
			  : "remote-server-not-found", err == -ETIMEDOUT ?
			  "DNS timed out" : "the domain has no XMPP server");
		return;
	}
	free_targets(l);
	l->targets = xcalloc(n, sizeof(*l->targets));
	for (size_t i = 0; i < n; i++) {
		l->targets[i] = t[i];
		l->targets[i].host = t[i].host ? xstrdup(t[i].host) : NULL;
	}
	l->n_targets = n;
	l->next_target = 0;
	try_next(l);
}

/* Starts making the stream, unless it is under way. */
static void link_start(struct link *l)
{
	if (l->state != LINK_IDLE || stopping)
		return;
	l->state = LINK_RESOLVING;
	ev_timer_init(&l->deadline, on_deadline, s2s_config()->connect_timeout, 0.);
	ev_timer_start(conn_loop(), &l->deadline);
	l->dq = dns_resolve_xmpp_server(l->remote, on_resolved, l);
}

/* --- dialback ---------------------------------------------------------------------- */

static void send_result(struct link *l)
{
	char key[65];

	dialback_key(l->remote, l->local, l->stream_id ? l->stream_id : "", key);
	s2s_send_db(l->s, "result", l->local, l->remote, NULL, NULL, key);
	l->result_sent = true;
}

static void send_verifies(struct link *l)
{
	for (struct out_verify *v = l->verifies; v; v = v->next) {
		if (v->sent)
			continue;
		s2s_send_db(l->s, "verify", l->local, l->remote, v->id, NULL, v->key);
		v->sent = true;
	}
}

/* Negotiated: dialback for our domain if stanzas wait, and the
 * verifications we carry. */
static void link_ready(struct link *l)
{
	l->state = LINK_READY;
	send_verifies(l);
	if (l->n_q && !l->result_sent)
		send_result(l);
}

static void link_authed(struct link *l, const char *method)
{
	struct session *s = l->s;
	struct queued *q = l->q;
	size_t n = l->n_q;

	l->state = LINK_AUTHED;
	l->method = method;
	ev_timer_stop(conn_loop(), &l->deadline);
	s->flags |= SESS_F_AUTHED | SESS_F_BOUND;
	ev_timer_stop(conn_loop(), &s->timer);
	s->timer.repeat = s->cfg->idle_timeout;
	ev_timer_again(conn_loop(), &s->timer);
	free_targets(l);
	free_tlsa(l);
	log_info("s2s outgoing %s -> %s authenticated (%s, %s, %s:%d, certificate %s (%s))",
		 l->local, l->remote, method, s->conn ? tls_version(s->conn->ssl) : "none",
		 s->conn ? s->conn->ip : "?", s->conn ? s->conn->port : 0,
		 s2s_cert_state(s), l->cert_how ? l->cert_how : "-");
	s2s_fire(s, l->local, "s2sout-established", NULL);
	send_verifies(l);	/* those that waited for SASL */
	l->q = NULL;
	l->n_q = l->cap_q = 0;
	for (size_t i = 0; i < n; i++) {
		if (l->s == s)
			session_send(s, q[i].node);
		else	/* the stream went while we sent: the rest bounces */
			route_bounce(q[i].node, "cancel", "remote-server-not-found", NULL);
		st_doc_unref(q[i].doc);
	}
	free(q);
}

/* An answer to a verification we carried. */
static void verify_answer(struct link *l, const struct st_node *n)
{
	const char *id = st_attr_get(n, "id"), *type = st_attr_get(n, "type");
	struct out_verify **pp = &l->verifies, *v;

	while ((v = *pp) && (!id || strcmp(v->id, id) != 0))
		pp = &v->next;
	if (!v)
		return;
	*pp = v->next;
	s2s_in_verified(v->id, l->local, l->remote,
			type && strcmp(type, "valid") == 0 ? 1 :
			type && strcmp(type, "invalid") == 0 ? 0 : -1,
			"remote-connection-failed");
	free(v->id);
	free(v->key);
	free(v);
	/* A stream made only to verify has done its work. */
	if (l->s && !l->verifies && !l->n_q && l->state != LINK_AUTHED)
		session_close(l->s, NULL, NULL);
}

void s2s_out_verify(const char *local, const char *remote, const char *id,
		    const char *key)
{
	struct link *l = link_get(local, remote, true);
	struct out_verify *v = xcalloc(1, sizeof(*v));

	v->id = xstrdup(id);
	v->key = xstrdup(key);
	v->next = l->verifies;
	l->verifies = v;
	if (l->state == LINK_READY || l->state == LINK_AUTHED)
		send_verifies(l);
	else
		link_start(l);
}

/* --- stanzas ---------------------------------------------------------------------- */

void s2s_route(struct st_doc *doc, struct st_node *node, const char *from,
	       const char *to)
{
	struct link *l = s2s_enabled() ? link_get(from, to, !stopping) : NULL;

	if (!l) {
		route_bounce(node, "cancel", "remote-server-not-found", NULL);
		return;
	}
	if (l->state == LINK_AUTHED && l->s) {
		l->s->last_activity = now_mono();
		session_send(l->s, node);
		return;
	}
	if (l->n_q >= s2s_config()->queue_max) {
		route_bounce(node, "wait", "resource-constraint",
			     "too many stanzas wait for the remote server");
		return;
	}
	if (l->n_q == l->cap_q) {
		l->cap_q = l->cap_q ? 2 * l->cap_q : 8;
		l->q = xrealloc(l->q, l->cap_q * sizeof(*l->q));
	}
	l->q[l->n_q].doc = st_doc_ref(doc);
	l->q[l->n_q++].node = node;
	if (l->state == LINK_READY && !l->result_sent)
		send_result(l);
	link_start(l);
}

void s2s_out_free_all(void)
{
	size_t pos = 0;
	const char *k;
	void *v;

	stopping = true;
	while (links_ready && (pos = 0, hmap_next(&links, &pos, &k, &v))) {
		struct link *l = v;
		struct session *s = l->s;
		link_free(l);
		if (s)
			session_close(s, "system-shutdown", NULL);
	}
}

/* --- the role ---------------------------------------------------------------------- */

static struct link *link_of(struct session *s)
{
	return s->role_data;
}

const char *s2s_out_method(const struct session *s)
{
	const struct link *l = s->role_data;

	return l && l->state == LINK_AUTHED && l->method ? l->method : "-";
}

const struct s2s_cert *s2s_out_cert(const struct session *s)
{
	const struct link *l = s->role_data;

	return l ? &l->cert : NULL;
}

static void out_connected(struct session *s)
{
	struct link *l = link_of(s);

	if (l && l->direct_tls)		/* XEP-0368: TLS from the first byte */
		conn_start_tls_client(s->conn, tls_client_ctx(), s->peer);
	else
		session_open_stream(s);
}

/* TLS is up: the peer's certificate is judged now. A DANE mismatch
 * ends the target; so does an invalid certificate where a valid one is
 * required (s2s_secure_auth): the next target is tried. */
static void out_tls_ready(struct session *s)
{
	struct link *l = link_of(s);
	const struct dns_target *t = l ? current_target(l) : NULL;

	if (!l) {
		session_open_stream(s);
		return;
	}
	s2s_cert_check(s, &l->cert, l->tlsa, l->n_tlsa);
	l->cert_valid = s2s_cert_valid_for(s, &l->cert, l->remote,
					   t && t->secure ? t->host : NULL, &l->cert_how);
	if (l->cert.dane == TLS_DANE_MISMATCH) {
		set_why(l, "DANE: no TLSA record of %s:%u matches the certificate of %s",
			t ? t->host : "?", t ? t->port : 0, s->conn ? s->conn->ip : "?");
	} else if (!l->cert_valid && s2s_secure_required(l->remote)) {
		set_why(l, "the certificate of %s is %s (%s), and s2s_secure_auth "
			"requires a valid one", l->remote, l->cert.state, l->cert_how);
	} else {
		session_open_stream(s);
		return;
	}
	log_info("s2s outgoing %s -> %s: %s", l->local, l->remote, l->why);
	session_close(s, NULL, NULL);
}

/* Whether we present a certificate that names our domain: SASL
 * EXTERNAL can work. */
static bool can_external(struct session *s, struct link *l)
{
	X509 *own = s->conn && s->conn->ssl ? SSL_get_certificate(s->conn->ssl) : NULL;

	return own && certid_match(own, l->local, true) != CERTID_NONE;
}

static bool offers_external(const struct st_node *f)
{
	const struct st_node *m = st_child(f, "mechanisms", NS_SASL);

	for (const struct st_node *c = m ? m->first : NULL; c; c = c->next)
		if (c->name && strcmp(c->name, "mechanism") == 0 && c->first &&
		    !c->first->name && c->first->len == 8 &&
		    memcmp(c->first->text, "EXTERNAL", 8) == 0)
			return true;
	return false;
}

/* <auth mechanism='EXTERNAL'>: our domain as the authorization identity
 * (XEP-0178 4; older servers want it named). */
static void send_external(struct session *s, struct link *l)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_adds(&b, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>");
	b64_encode(&b, l->local, strlen(l->local));
	sbuf_adds(&b, "</auth>");
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
	l->sasl_sent = true;
	l->state = LINK_SASL;
}

/* The peer's header: its stream id is what our dialback key covers. */
static bool out_header(struct session *s, const struct st_node *hdr)
{
	struct link *l = link_of(s);
	const char *id = st_attr_get(hdr, "id");
	const char *version = st_attr_get(hdr, "version");

	if (!l)
		return true;
	if (strcmp(hdr->ns, NS_SERVER) != 0) {
		session_close(s, "invalid-namespace", NULL);
		return true;
	}
	free(l->stream_id);
	l->stream_id = xstrdup(id ? id : "");
	/* A pre-1.0 peer sends no features: dialback at once. */
	if (!version || strncmp(version, "1.", 2) != 0) {
		if (s->cfg->require_encryption)
			session_close(s, "policy-violation", "encryption is required");
		else
			link_ready(l);
	}
	return true;
}

static void handle_features(struct session *s, struct link *l, const struct st_node *f)
{
	if (!(s->flags & SESS_F_TLS)) {
		if (st_child(f, "starttls", NS_TLS) && tls_client_ctx()) {
			session_send_str(s, "<starttls xmlns='" NS_TLS "'/>");
			return;
		}
		if (s->cfg->require_encryption) {
			link_fail(l, "remote-server-not-found",
				  "the peer offers no TLS and s2s_require_encryption is on");
			return;
		}
		if (s2s_secure_required(l->remote)) {
			link_fail(l, "remote-server-not-found", "the peer offers no TLS "
				  "and s2s_secure_auth requires its certificate");
			return;
		}
	}
	if (l->sasl_ok) {		/* the stream after SASL's restart */
		link_authed(l, "SASL EXTERNAL");
		return;
	}
	if (l->n_q && !l->sasl_failed && offers_external(f) && can_external(s, l)) {
		send_external(s, l);
		return;
	}
	link_ready(l);
}

/* <success/> or <failure/> for our SASL EXTERNAL. A failure falls back
 * to dialback, which the peer may still accept (XEP-0178 4). */
static void sasl_answer(struct session *s, struct link *l, const struct st_node *n)
{
	if (!l->sasl_sent || l->state != LINK_SASL) {
		session_close(s, "unsupported-stanza-type", NULL);
		return;
	}
	l->sasl_sent = false;
	if (strcmp(n->name, "success") == 0) {
		l->sasl_ok = true;
		s->flags |= SESS_F_RESTART;	/* session.c sends a new header */
		return;
	}
	l->sasl_failed = true;
	log_info("s2s outgoing %s -> %s: SASL EXTERNAL refused (%s): dialback",
		 l->local, l->remote, n->first && n->first->name ? n->first->name : "?");
	link_ready(l);
}

static void out_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;
	struct link *l = link_of(s);

	if (!l) {
		session_close(s, NULL, NULL);
	} else if (strcmp(n->ns, NS_STREAMS) == 0 && strcmp(n->name, "features") == 0) {
		handle_features(s, l, n);
	} else if (strcmp(n->ns, NS_STREAMS) == 0 && strcmp(n->name, "error") == 0) {
		const char *cond = n->first && n->first->name ? n->first->name : "?";
		char why[96];
		snprintf(why, sizeof(why), "stream error %s", cond);
		link_fail(l, "remote-server-not-found", why);
	} else if (strcmp(n->ns, NS_TLS) == 0 && strcmp(n->name, "proceed") == 0) {
		s->flags |= SESS_F_STARTTLS;	/* session.c starts TLS */
	} else if (strcmp(n->ns, NS_TLS) == 0) {
		link_fail(l, "remote-server-not-found", "the peer refused STARTTLS");
	} else if (strcmp(n->ns, NS_SASL) == 0 &&
		   (strcmp(n->name, "success") == 0 || strcmp(n->name, "failure") == 0)) {
		sasl_answer(s, l, n);
	} else if (strcmp(n->ns, NS_DIALBACK) == 0 && strcmp(n->name, "verify") == 0) {
		verify_answer(l, n);
	} else if (strcmp(n->ns, NS_DIALBACK) == 0 && strcmp(n->name, "result") == 0) {
		const char *type = st_attr_get(n, "type");
		if (type && strcmp(type, "valid") == 0 && l->result_sent)
			link_authed(l, "dialback");
		else if (l->result_sent)
			link_fail(l, "remote-server-not-found", "dialback refused by the peer");
	} else {
		log_debug("s2s outgoing %s -> %s: ignoring <%s/> from the peer",
			  l->local, l->remote, n->name);
	}
	st_doc_unref(doc);
}

static void out_features(struct session *s, struct st_doc *d, struct st_node *f)
{
}

static void out_ended(struct session *s, const char *reason)
{
	struct link *l = link_of(s);
	bool was_authed;

	if (!l)
		return;
	was_authed = l->state == LINK_AUTHED;
	l->s = NULL;
	s->role_data = NULL;
	if (was_authed) {
		log_info("s2s outgoing %s -> %s closed: %s", l->local, l->remote, reason);
		s2s_fire(s, l->local, "s2s-destroyed", reason);
		l->state = LINK_IDLE;
		if (!l->n_q && !l->verifies)
			link_free(l);
		else
			link_start(l);
		return;
	}
	log_debug("s2s outgoing %s -> %s: %s", l->local, l->remote, reason);
	if (!l->n_q && !l->verifies)
		link_free(l);
	else
		try_next(l);
}

const struct session_role s2s_out_role = {
	.name = "s2sout",
	.ns = NS_SERVER,
	.host_type = HOST_LOCAL,
	.header_attrs = "xmlns:db='" NS_DIALBACK "'",
	.routes_sends = true,
	.header = out_header,
	.connected = out_connected,
	.tls_ready = out_tls_ready,
	.features = out_features,
	.element = out_element,
	.ended = out_ended,
};
