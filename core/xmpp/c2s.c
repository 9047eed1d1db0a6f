/* c2s.c - the client role (RFC 6120, 6121): SASL, resource binding, and
 * the client's stanzas into the router. The stream itself (connection,
 * header, features, STARTTLS, errors) is session.c's. */
#include "c2s.h"
#include "accounts.h"
#include "anon.h"
#include "ipstate.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "sasl2.h"
#include "sm.h"
#include "tls.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"

static unsigned char server_secret[32];

static void drop_request(struct session *s);

void c2s_global_init(const unsigned char secret[32])
{
	memcpy(server_secret, secret, sizeof(server_secret));
}

/* The session ended with stanzas the client never acked (XEP-0198):
 * "smacks-unacked" gets them; takes the docs and the array. */
static void fire_unacked(struct session *s, struct st_doc **docs, size_t n)
{
	struct event ev = { .session = s, .stanzas = docs, .n_stanzas = n };

	if (n)
		session_fire(s, "smacks-unacked", &ev);
	for (size_t i = 0; i < n; i++)
		st_doc_unref(docs[i]);
	free(docs);
}

static enum host_auth host_auth(const struct session *s)
{
	const struct host *h = s->host ? route_host(s->host) : NULL;

	return h ? h->auth : HOST_AUTH_INTERNAL;
}

bool c2s_host_internal(const struct session *s)
{
	return host_auth(s) == HOST_AUTH_INTERNAL;
}

static void add_mechanism(struct st_doc *d, struct st_node *m, const char *name)
{
	struct st_node *e = st_elem_new(d, m, "mechanism", NULL);

	st_text_add(d, e, name, strlen(name));
}

/* PLAIN sends the password itself: over TLS, or where allowed without. */
static bool plain_allowed(const struct session *s)
{
	return (s->flags & SESS_F_TLS) || s->cfg->allow_plain_unencrypted;
}

/* A host of temporary accounts offers ANONYMOUS only; the test-only
 * backend PLAIN only (the first login must carry the password to make
 * the account from), under the usual encryption rules. */
static struct st_node *special_mechanisms(struct session *s, struct st_doc *d,
					  struct st_node *f)
{
	enum host_auth auth = host_auth(s);
	struct st_node *m;

	if (auth == HOST_AUTH_INTERNAL)
		return NULL;
	s->plus_offered = false;
	m = st_elem_new(d, f, "mechanisms", NS_SASL);
	if (auth == HOST_AUTH_ANONYMOUS)
		add_mechanism(d, m, "ANONYMOUS");
	else if (plain_allowed(s))
		add_mechanism(d, m, "PLAIN");
	return m;
}

/* Whether mech is one the stream's host offers (see add_mechanisms). */
static bool mech_of_host(const struct session *s, const char *mech)
{
	switch (host_auth(s)) {
	case HOST_AUTH_ANONYMOUS:
		return strcmp(mech, "ANONYMOUS") == 0;
	case HOST_AUTH_INSECURE:
		return strcmp(mech, "PLAIN") == 0;
	default:
		return strcmp(mech, "ANONYMOUS") != 0;
	}
}

static void add_binding(struct st_doc *d, struct st_node *cb, const char *type)
{
	struct st_node *t = st_elem_new(d, cb, "channel-binding", NULL);

	st_attr_set(d, t, "type", type);
}

static void add_mechanisms(struct session *s, struct st_doc *d, struct st_node *f)
{
	bool tls = s->flags & SESS_F_TLS;
	static const char *const mechs[] = {
		"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",	/* TLS only */
		"SCRAM-SHA-256", "SCRAM-SHA-1",
	};
	struct st_node *m, *cb;

	if ((m = special_mechanisms(s, d, f))) {
		sasl2_features(s, d, f, m);
		return;
	}
	/* Channel binding needs the TLS in our hands: not a proxy's in
	 * front of a WebSocket (consider_websocket_secure). */
	tls = tls && s->conn->ssl;
	m = st_elem_new(d, f, "mechanisms", NS_SASL);
	s->plus_offered = tls;
	for (size_t i = tls ? 0 : 2; i < ARRAY_SIZE(mechs); i++)
		add_mechanism(d, m, mechs[i]);
	if (plain_allowed(s))
		add_mechanism(d, m, "PLAIN");
	sasl2_features(s, d, f, m);
	if (!tls)
		return;
	/* XEP-0440: the types this TLS channel has, for SASL1 and SASL2 */
	cb = st_elem_new(d, f, "sasl-channel-binding", NS_SASL_CB);
	add_binding(d, cb, "tls-server-end-point");
	if (SSL_version(s->conn->ssl) == TLS1_3_VERSION)
		add_binding(d, cb, "tls-exporter");
	if (tls_unique_defined(s->conn->ssl))
		add_binding(d, cb, "tls-unique");
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


/* The test-only backend: a PLAIN login for an unknown user makes the
 * account, with SCRAM credentials derived from the password given. */
static int creds_create(void *ctx, const char *user, const char *password)
{
	struct session *s = ctx;
	char node[JID_PART_MAX];
	int rc;

	if (jid_nodeprep(user, node) != 0 || !*node)
		return -EINVAL;
	rc = accounts_set_password(s->host, node, password,
				   ACCOUNTS_DEFAULT_ITERATIONS);
	if (rc == 0)
		log_warn("%s: account %s@%s made by its first login "
			 "(authentication = \"insecure\")", session_src(s), node, s->host);
	return rc;
}


static int cb_data(void *ctx, const char *type, unsigned char *out, size_t *len)
{
	struct session *s = ctx;

	return tls_channel_binding(s->conn ? s->conn->ssl : NULL, type, out, len);
}


/* Sends the failure (text may be NULL) and applies the attempt limit. */
static void send_failure(struct session *s, const char *condition,
			 const char *text, bool counts)
{
	bool v2 = s->role_data && c2s_data(s)->sasl2;

	session_send_sasl_failure(s, v2 ? NS_SASL2 : NS_SASL, condition, text);
	if (counts && ++s->auth_failures >= s->cfg->max_auth_failures)
		session_close(s, "policy-violation", "too many failed authentication attempts");
}


static void on_failure_delay(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct session *s = container_of(t, struct session, delay_timer);

	send_failure(s, s->delayed_failure, NULL, true);
	s->delayed_failure = NULL;
	if (s->conn && !(s->flags & SESS_F_CLOSING))
		conn_hold(s->conn, false);
}


/* condition is a static string. Failed credentials from an address that
 * failed recently are answered late, and the stream reads nothing more
 * until then. */
void c2s_sasl_failure(struct session *s, const char *condition)
{
	bool counts = strcmp(condition, "aborted") != 0 &&
		      !sasl_cb_type_unsupported(s->sasl);
	double delay = 0;

	sasl_free(s->sasl);
	s->sasl = NULL;
	drop_request(s);
	session_fire(s, "authentication-failure",
		     &(struct event){ .session = s, .error = condition });
	if (counts && strcmp(condition, "not-authorized") == 0 && s->conn)
		delay = ipstate_auth_failed(s->conn->ip, s->cfg->auth_failure_delay);
	if (delay <= 0 || !s->conn) {
		/* SASL's temporary failure is storage's (sasl.c) */
		send_failure(s, condition, strcmp(condition,
			     "temporary-auth-failure") == 0 ? "the account "
			     "store does not answer; try again later" : NULL,
			     counts);
		return;
	}
	log_info("%s:%d: failed login, answering in %.1f s", s->conn->ip,
		 s->conn->port, delay);
	s->delayed_failure = condition;
	conn_hold(s->conn, true);
	ev_timer_init(&s->delay_timer, on_failure_delay, delay, 0.);
	ev_timer_start(conn_loop(), &s->delay_timer);
}


/* While the client's address pays for its failed logins (ipstate.h), no
 * credentials are tried on any of its connections: the attempt fails at
 * once with temporary-auth-failure (RFC 6120 6.5.12), counted against the
 * stream's limit. Without this, a client opening a connection per guess
 * would learn from a quick <success/> what the delayed failures hide. */
bool c2s_under_penalty(struct session *s)
{
	double wait = s->conn ? ipstate_auth_penalty(s->conn->ip) : 0;
	char text[96];

	if (wait <= 0)
		return false;
	log_info("%s:%d: login refused, the address fails for %.1f s more",
		 s->conn->ip, s->conn->port, wait);
	snprintf(text, sizeof(text), "too many failed logins from your address; "
		 "try again in %.0f s", ceil(wait));
	sasl_free(s->sasl);
	s->sasl = NULL;
	drop_request(s);
	session_fire(s, "authentication-failure",
		     &(struct event){ .session = s, .error = "temporary-auth-failure" });
	send_failure(s, "temporary-auth-failure", text, true);
	return true;
}


static void drop_request(struct session *s)
{
	struct c2s_data *cd = s->role_data;

	if (cd && cd->request) {
		st_doc_unref(cd->request);
		cd->request = NULL;
	}
}

void c2s_authenticated(struct session *s, const char *user, const char *authzid,
		       bool anonymous, const struct sbuf *data)
{
	bool v2 = s->role_data && c2s_data(s)->sasl2;
	char node[JID_PART_MAX];
	struct sbuf b;

	if (anonymous) {
		if (anon_account_new(s->host, node) != 0) {
			c2s_sasl_failure(s, "temporary-auth-failure");
			return;
		}
		s->flags |= SESS_F_ANONYMOUS;
	} else if (!user || jid_nodeprep(user, node) != 0) {
		c2s_sasl_failure(s, "not-authorized");
		return;
	}
	if (authzid && *authzid) {
		struct jid j;
		if (jid_parse(authzid, &j) != 0 || j.has_resource ||
		    strcmp(j.node, node) != 0 || strcmp(j.domain, s->host) != 0) {
			c2s_sasl_failure(s, "invalid-authzid");
			return;
		}
	}
	if (!v2) {
		sbuf_init(&b);
		sbuf_adds(&b, "<success xmlns='" NS_SASL "'>");
		if (data->len)
			b64_encode(&b, data->p, data->len);
		sbuf_adds(&b, "</success>");
		session_send_raw(s, b.p, b.len);
		sbuf_free(&b);
	}
	s->username = xstrdup(node);
	if (s->flags & SESS_F_COUNTED) {
		ipstate_unauth_del(s->conn->ip);
		s->flags &= ~SESS_F_COUNTED;
	}
	sbuf_init(&b);
	sbuf_printf(&b, "%s@%s", node, s->host);
	s->bare_jid = b.p;
	s->flags |= SESS_F_AUTHED | (v2 ? 0 : SESS_F_RESTART);
	sasl_free(s->sasl);
	s->sasl = NULL;
	log_info("%s:%d: authenticated as %s%s", s->conn->ip, s->conn->port,
		 s->bare_jid, v2 ? " (SASL2)" : "");
	session_fire(s, "authentication-success", &(struct event){ .session = s });
	if (v2 && !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		sasl2_success(s, data);	/* SASL2: no restart; inline requests */
	drop_request(s);
}


static void send_challenge(struct session *s, const struct sbuf *data)
{
	const char *ns = s->role_data && c2s_data(s)->sasl2 ? NS_SASL2 : NS_SASL;
	struct sbuf b;

	sbuf_init(&b);
	sbuf_printf(&b, "<challenge xmlns='%s'>", ns);
	b64_encode(&b, data->p, data->len);
	sbuf_adds(&b, "</challenge>");
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
}


void c2s_sasl_step(struct session *s, const char *text, bool initial, bool present)
{
	struct sbuf in, out;
	size_t tlen = strlen(text);

	sbuf_init(&in);
	sbuf_init(&out);
	if (initial && !present) {
		/* No initial response: ask for it with an empty challenge. */
		send_challenge(s, &out);
		goto out;
	}
	if (b64_decode(&in, text, tlen) != 0) {
		c2s_sasl_failure(s, "incorrect-encoding");
		goto out;
	}
	if (c2s_under_penalty(s))
		goto out;
	switch (sasl_step(s->sasl, in.p ? in.p : "", in.len, &out)) {
	case SASL_CONTINUE:
		send_challenge(s, &out);
		break;
	case SASL_OK:
		c2s_authenticated(s, sasl_username(s->sasl), sasl_authzid(s->sasl),
				  sasl_anonymous(s->sasl), &out);
		break;
	case SASL_FAIL:
		c2s_sasl_failure(s, sasl_condition(s->sasl));
		break;
	}
out:
	sbuf_free(&in);
	sbuf_free(&out);
}


bool c2s_sasl_begin(struct session *s, const char *mech)
{
	bool tls = s->flags & SESS_F_TLS;
	struct sasl_params p = {
		.lookup = creds_lookup, .ctx = s,
		.cb_data = tls ? cb_data : NULL,
		.plus_offered = s->plus_offered,
		.accept_y_with_plus = !s->cfg->strict_channel_binding,
		.create = host_auth(s) == HOST_AUTH_INSECURE ? creds_create : NULL,
		.anonymous = host_auth(s) == HOST_AUTH_ANONYMOUS,
		.secret = server_secret,
		.fake_iterations = ACCOUNTS_DEFAULT_ITERATIONS,
	};

	if (!tls && s->cfg->require_encryption) {
		c2s_sasl_failure(s, "encryption-required");
		return false;
	}
	sasl_free(s->sasl);
	s->sasl = NULL;
	if (!mech || !mech_of_host(s, mech) ||
	    ((!tls || !s->conn->ssl) && strstr(mech, "-PLUS")) ||
	    (strcmp(mech, "PLAIN") == 0 && !plain_allowed(s)) ||
	    !(s->sasl = sasl_new(mech, &p))) {
		c2s_sasl_failure(s, "invalid-mechanism");
		return false;
	}
	return true;
}


static void handle_sasl(struct session *s, const struct st_node *n)
{
	const char *text = n->first && !n->first->name ? n->first->text : "";

	if (s->flags & SESS_F_AUTHED) {
		session_close(s, "policy-violation", "already authenticated");
		return;
	}
	if (s->role_data && c2s_data(s)->sasl2 && strcmp(n->name, "auth") != 0) {
		c2s_sasl_failure(s, "malformed-request");	/* SASL2 under way */
		return;
	}
	if (s->role_data) {
		c2s_data(s)->sasl2 = false;
		drop_request(s);
	}
	if (strcmp(n->name, "auth") == 0) {
		if (c2s_sasl_begin(s, st_attr_get(n, "mechanism")))
			c2s_sasl_step(s, text, true, *text != '\0');
	} else if (strcmp(n->name, "response") == 0 && s->sasl) {
		c2s_sasl_step(s, text, false, true);
	} else if (strcmp(n->name, "abort") == 0) {
		c2s_sasl_failure(s, "aborted");
	} else {
		c2s_sasl_failure(s, "malformed-request");
	}
}


static void bind_error(struct session *s, const struct st_node *iq,
		       const char *type, const char *cond)
{
	struct st_doc *e = st_error_reply(iq, type, cond, NULL);

	st_attr_set(e, e->root, "to", NULL);
	st_attr_set(e, e->root, "from", NULL);
	session_send(s, e->root);
	st_doc_unref(e);
}


int c2s_bind(struct session *s, const char *res, const char **type,
	     const char **cond)
{
	struct sbuf full;

	sbuf_init(&full);
	sbuf_printf(&full, "%s/%s", s->bare_jid, res);
	if (full.len >= 3071) {
		sbuf_free(&full);
		*type = "modify", *cond = "bad-request";
		return -1;
	}
	if (s->cfg->max_resources && !route_find_full(full.p) &&
	    route_count_bare(s->bare_jid) >= s->cfg->max_resources) {
		sbuf_free(&full);
		*type = "wait", *cond = "resource-constraint";
		return -1;
	}
	s->resource = xstrdup(res);
	s->full_jid = full.p;
	route_bind(s);		/* closes a session with the same full JID */
	s->flags |= SESS_F_BOUND;
	ev_timer_stop(conn_loop(), &s->timer);
	s->timer.repeat = s->cfg->idle_timeout;
	ev_timer_again(conn_loop(), &s->timer);
	log_info("%s: bound (%s:%d, %s)", s->full_jid, s->conn->ip,
		 s->conn->port, tls_version(s->conn->ssl));
	return 0;
}


static void handle_bind(struct session *s, struct st_doc *doc, struct st_node *b)
{
	struct st_node *iq = doc->root;
	const char *want = st_child_text(doc, b, "resource", NULL);
	const char *type, *cond;
	char res[JID_PART_MAX];

	if (want && *want) {
		if (jid_resourceprep(want, res) != 0 || !*res) {
			bind_error(s, iq, "modify", "bad-request");
			return;
		}
	} else {
		random_id(res, 16);
	}
	if (c2s_bind(s, res, &type, &cond) != 0) {
		bind_error(s, iq, type, cond);
		return;
	}
	struct st_doc *r = st_reply(iq);
	st_attr_set(r, r->root, "to", NULL);
	st_attr_set(r, r->root, "from", NULL);
	struct st_node *bn = st_elem_new(r, r->root, "bind", NS_BIND);
	struct st_node *j = st_elem_new(r, bn, "jid", NULL);
	st_text_add(r, j, s->full_jid, strlen(s->full_jid));
	session_send(s, r->root);
	st_doc_unref(r);
	session_fire(s, "resource-bind", &(struct event){ .session = s });
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
		    !session_fire_stanza(s, doc, "pre-auth/iq-%s/%s:%s", type,
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


static void c2s_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;

	if (strcmp(n->ns, NS_CLIENT) == 0) {
		handle_client_stanza(s, doc);	/* takes doc */
		return;
	}
	if (strcmp(n->ns, NS_SASL) == 0)
		handle_sasl(s, n);
	else if (strcmp(n->ns, NS_SASL2) == 0)
		sasl2_element(s, doc);
	else if (!(s->flags & SESS_F_AUTHED))
		session_close(s, "not-authorized", NULL);
	else if (strcmp(n->ns, NS_SM) == 0 && sm_handle(s, n->name, st_attr_get(n, "h")))
		;	/* <r/>, <a/>: the hot path stays in C */
	else if (!session_fire_stanza(s, doc, "stream-element/%s:%s", n->ns, n->name, NULL))
		session_close(s, "unsupported-stanza-type", NULL);
	st_doc_unref(doc);
}


void session_transplant(struct session *o, struct session *n)
{
	struct xs *xs = o->xs;

	/* The old connection, if it is still there, loses the session. */
	session_drop_conn(o, "conflict");
	o->framing = n->framing;	/* the new connection's framing */
	o->framing_data = n->framing_data;
	n->framing = NULL;
	n->framing_data = NULL;
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


/* --- the role ------------------------------------------------------------ */

static void c2s_features(struct session *s, struct st_doc *d, struct st_node *f)
{
	if (!(s->flags & SESS_F_AUTHED)) {
		add_mechanisms(s, d, f);
		return;
	}
	if (s->flags & SESS_F_BOUND)
		return;		/* SASL2 with Bind2: bound already */
	st_elem_new(d, f, "bind", NS_BIND);
	struct st_node *se = st_elem_new(d, f, "session", NS_SESSION);
	st_elem_new(d, se, "optional", NULL);
}

/* XEP-0198: a copy of every stanza waits for the client's ack. */
static int c2s_sending(struct session *s, const char *data, size_t len)
{
	return s->sm ? sm_outgoing(s, data, len) : 0;
}

/* The connection is gone or silent: a session with XEP-0198 resumption
 * waits for the client to come back. */
static bool c2s_lost(struct session *s)
{
	return s->sm && sm_hibernate(s);
}

static void c2s_ended(struct session *s, const char *reason)
{
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
	/* A temporary account has one session (its name is this login's):
	 * after what the handlers above stored, it goes with all of it. */
	if (s->flags & SESS_F_ANONYMOUS) {
		s->flags &= ~SESS_F_ANONYMOUS;
		anon_account_end(s->host, s->username);
	}
	c2s_data_free(s);
}

const struct session_role c2s_role = {
	.name = "c2s",
	.ns = NS_CLIENT,
	.host_type = HOST_LOCAL,
	.features_event = true,
	.features = c2s_features,
	.element = c2s_element,
	.sending = c2s_sending,
	.lost = c2s_lost,
	.ended = c2s_ended,
};
