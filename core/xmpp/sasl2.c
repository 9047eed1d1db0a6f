/*
 * sasl2.c - SASL2 (XEP-0388) for clients, with what it carries inline:
 * Bind2 (XEP-0386) and its session features, XEP-0198 resumption, and
 * FAST tokens (XEP-0484). The exchange itself (mechanisms, limits,
 * failure delays) is c2s.c's for both profiles; this file reads
 * <authenticate/>, logs in with HT-SHA-256 tokens, and answers with
 * <success/> and the stream's features, without a stream restart.
 *
 * Events for modules (the policies stay theirs; Prosody's names):
 *   advertise-sasl-features  features: SASL2's <inline/> (mod_smacks: <sm/>)
 *   advertise-bind-features  features: Bind2's <inline/>, for <feature var/>
 *   enable-bind-features     session bound by Bind2; stanza: the <bind/>
 *                            request, features: the <bound/> answer that
 *                            handlers add to (mod_smacks: <enabled/>)
 */
#include "sasl2.h"
#include "c2s.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "sm.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/crypto.h>

#define MAX_REPLACED 64		/* earlier sessions of a client closed at once */

struct c2s_data *c2s_data(struct session *s)
{
	struct c2s_data *cd = s->role_data;

	if (!cd) {
		cd = xcalloc(1, sizeof(*cd));
		cd->fast_mech = -1;
		s->role_data = cd;
	}
	return cd;
}

static void data_free(struct c2s_data *cd)
{
	if (!cd)
		return;
	if (cd->request)
		st_doc_unref(cd->request);
	free(cd->ua_id);
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
}

void c2s_data_free(struct session *s)
{
	data_free(s->role_data);
	s->role_data = NULL;
}

/* --- features ------------------------------------------------------------ */

/* Whether the connection has channel binding data of type. */
static bool cb_available(struct session *s, const char *type)
{
	unsigned char buf[64];
	size_t len = sizeof(buf);
	bool ok = s->conn && s->conn->ssl &&
		  tls_channel_binding(s->conn->ssl, type, buf, &len) == 0 && len;

	OPENSSL_cleanse(buf, sizeof(buf));
	return ok;
}

/* FAST over this stream: TLS only (XEP-0484 section 7), stored accounts,
 * and for a channel-bound mechanism the binding type. */
static bool fast_offered(struct session *s, enum fast_mech m)
{
	const char *type = fast_cb_type(m);

	if (!(s->flags & SESS_F_TLS) || !c2s_host_internal(s))
		return false;
	if (m == FAST_UNIQ && !tls_unique_defined(s->conn->ssl))
		return false;	/* none on TLS 1.3 (RFC 9266) */
	return !type || cb_available(s, type);
}

static void fire_features(struct session *s, const char *name,
			  struct st_doc *d, struct st_node *n)
{
	d->cursor = n;
	session_fire(s, name, &(struct event){ .origin = s, .doc = d, .features = n });
}

void sasl2_features(struct session *s, struct st_doc *d, struct st_node *f,
		    const struct st_node *m)
{
	struct st_node *a = st_elem_new(d, f, "authentication", NS_SASL2);
	struct st_node *in, *b, *fast;

	for (const struct st_node *c = m->first; c; c = c->next) {
		if (c->name && c->first && !c->first->name) {
			struct st_node *e = st_elem_new(d, a, "mechanism", NULL);
			st_text_add(d, e, c->first->text, c->first->len);
		}
	}
	in = st_elem_new(d, a, "inline", NULL);
	b = st_elem_new(d, in, "bind", NS_BIND2);
	fire_features(s, "advertise-bind-features", d, st_elem_new(d, b, "inline", NULL));
	if (fast_offered(s, FAST_NONE)) {
		fast = st_elem_new(d, in, "fast", NS_FAST);
		for (int i = FAST_NMECH - 1; i >= 0; i--) {
			if (!fast_offered(s, (enum fast_mech)i))
				continue;
			struct st_node *e = st_elem_new(d, fast, "mechanism", NULL);
			st_text_add(d, e, fast_mech_name(i), strlen(fast_mech_name(i)));
		}
	}
	fire_features(s, "advertise-sasl-features", d, in);
	d->cursor = d->root;
}

/* --- logging in with a token --------------------------------------------- */

/* Base64 text of an element without the whitespace a client may wrap it
 * in (XEP-0388 examples do). */
static void b64_text(struct st_doc *doc, const struct st_node *n, struct sbuf *out)
{
	const char *t = st_text(doc, n);

	for (; *t; t++)
		if (*t != ' ' && *t != '\t' && *t != '\r' && *t != '\n')
			sbuf_addc(out, *t);
	if (!out->p)
		sbuf_adds(out, "");
}

static int parse_count(const char *v, uint32_t *out)
{
	char *end;
	unsigned long long n;

	if (!v || *v < '0' || *v > '9')
		return -EINVAL;
	n = strtoull(v, &end, 10);
	if (*end || n > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

/* The HT authcid: a localpart, or the bare JID of this host. */
static int ht_user(struct session *s, const char *name, char node[JID_PART_MAX])
{
	struct jid j;

	if (strchr(name, '@')) {
		if (jid_parse(name, &j) != 0 || !j.has_node || j.has_resource ||
		    strcmp(j.domain, s->host) != 0)
			return -EINVAL;
		memcpy(node, j.node, JID_PART_MAX);
		return 0;
	}
	return jid_nodeprep(name, node) == 0 && *node ? 0 : -EINVAL;
}

static const char *fast_condition(int rc)
{
	return rc == -EKEYEXPIRED ? "credentials-expired"
	     : rc == -EIO ? "temporary-auth-failure" : "not-authorized";
}

static void fast_login(struct session *s, struct c2s_data *cd, enum fast_mech m,
		       const char *text)
{
	const struct st_node *req = cd->request->root;
	const struct st_node *f = st_child(req, "fast", NS_FAST);
	unsigned char cb[64];
	struct fast_attempt a = { .host = s->host, .ua_id = cd->ua_id, .mech = m };
	struct sbuf in, user;
	char node[JID_PART_MAX];
	int rc;

	sbuf_init(&in);
	sbuf_init(&user);
	if (!fast_offered(s, m) || (!(s->flags & SESS_F_TLS) && s->cfg->require_encryption)) {
		c2s_sasl_failure(s, "invalid-mechanism");
		goto out;
	}
	if (!text || !cd->ua_id || (f && st_attr_get(f, "count") &&
				    parse_count(st_attr_get(f, "count"), &a.count) != 0)) {
		c2s_sasl_failure(s, "malformed-request");
		goto out;
	}
	a.has_count = f && st_attr_get(f, "count");
	if (b64_decode(&in, text, strlen(text)) != 0) {
		c2s_sasl_failure(s, "incorrect-encoding");
		goto out;
	}
	if (c2s_under_penalty(s))
		goto out;
	if (fast_parse_response(in.p ? in.p : "", in.len, &user, &a.mac, &a.mac_len) != 0 ||
	    ht_user(s, user.p, node) != 0) {
		c2s_sasl_failure(s, "not-authorized");
		goto out;
	}
	a.user = node;
	if (fast_cb_type(m)) {
		a.cb_len = sizeof(cb);
		if (tls_channel_binding(s->conn->ssl, fast_cb_type(m), cb, &a.cb_len) != 0) {
			c2s_sasl_failure(s, "invalid-mechanism");
			goto out;
		}
		a.cb = cb;
	}
	rc = fast_check(&a, now_wall(), &cd->fast);
	if (rc != 0) {
		log_info("%s:%d: FAST login as %s failed (%s)", s->conn->ip,
			 s->conn->port, node, fast_condition(rc));
		c2s_sasl_failure(s, fast_condition(rc));
		goto out;
	}
	cd->fast_mech = (int)m;
	sbuf_reset(&in);
	sbuf_add(&in, cd->fast.responder, sizeof(cd->fast.responder));
	c2s_authenticated(s, node, NULL, false, &in);
out:
	OPENSSL_cleanse(cb, sizeof(cb));
	if (in.p)
		OPENSSL_cleanse(in.p, in.cap);
	sbuf_free(&in);
	sbuf_free(&user);
}

/* --- <authenticate/>, <response/>, <abort/> ------------------------------- */

static bool take_user_agent(struct session *s, struct c2s_data *cd,
			    const struct st_node *n)
{
	const struct st_node *ua = st_child(n, "user-agent", NS_SASL2);
	const char *id = ua ? st_attr_get(ua, "id") : NULL;

	if (!ua)
		return true;
	if (!id || !*id || strlen(id) > FAST_UA_ID_MAX)
		return false;
	free(cd->ua_id);
	cd->ua_id = xstrdup(id);
	return true;
}

static void authenticate(struct session *s, struct st_doc *doc)
{
	struct c2s_data *cd = c2s_data(s);
	const struct st_node *n = doc->root;
	const struct st_node *ir = st_child(n, "initial-response", NS_SASL2);
	const char *mech = st_attr_get(n, "mechanism");
	int fm = fast_mech_find(mech);
	struct sbuf text;

	cd->sasl2 = true;
	cd->fast_mech = -1;
	if (cd->request)
		st_doc_unref(cd->request);
	cd->request = st_doc_ref(doc);
	sbuf_init(&text);
	if (ir)
		b64_text(doc, ir, &text);
	if (!take_user_agent(s, cd, n))
		c2s_sasl_failure(s, "malformed-request");
	else if (fm >= 0)
		fast_login(s, cd, (enum fast_mech)fm, ir ? text.p : NULL);
	else if (c2s_sasl_begin(s, mech))
		c2s_sasl_step(s, ir ? text.p : "", true, ir != NULL);
	sbuf_free(&text);
}

void sasl2_element(struct session *s, struct st_doc *doc)
{
	const struct st_node *n = doc->root;
	struct c2s_data *cd = c2s_data(s);

	if (s->flags & SESS_F_AUTHED) {
		session_close(s, "policy-violation", "already authenticated");
		return;
	}
	if (strcmp(n->name, "authenticate") == 0) {
		authenticate(s, doc);
	} else if (strcmp(n->name, "response") == 0 && cd->sasl2 && s->sasl) {
		struct sbuf text;
		sbuf_init(&text);
		b64_text(doc, n, &text);
		c2s_sasl_step(s, text.p, false, true);
		sbuf_free(&text);
	} else if (strcmp(n->name, "abort") == 0) {
		cd->sasl2 = true;
		c2s_sasl_failure(s, "aborted");
	} else {
		cd->sasl2 = true;	/* <next/> (no tasks here), or out of turn */
		c2s_sasl_failure(s, "malformed-request");
	}
}

/* --- <success/> and what it carries ---------------------------------------- */

/* A FAST token for the client, when it asked for one or the one it used
 * runs out soon (XEP-0484 rotation); an invalidation comes first. */
static void fast_token(struct session *s, struct c2s_data *cd,
		       const struct st_node *req, struct sbuf *out)
{
	const struct st_node *f = st_child(req, "fast", NS_FAST);
	const struct st_node *rt = st_child(req, "request-token", NS_FAST);
	const char *inv = f ? st_attr_get(f, "invalidate") : NULL;
	bool invalidate = inv && (strcmp(inv, "true") == 0 || strcmp(inv, "1") == 0);
	int want = -1;
	char token[FAST_TOKEN_LEN + 1], when[32];
	double now = now_wall(), expiry;

	if (cd->fast_mech >= 0 && invalidate) {
		fast_invalidate(s->host, s->username, cd->ua_id);
		log_info("%s: FAST token invalidated by the client", s->bare_jid);
	}
	if (rt) {
		want = fast_mech_find(st_attr_get(rt, "mechanism"));
		if (want >= 0 && !fast_offered(s, (enum fast_mech)want))
			want = -1;
		if (!cd->ua_id)
			want = -1;	/* tokens are per client (XEP-0484 6.1) */
	} else if (cd->fast_mech >= 0 && !invalidate &&
		   cd->fast.expiry - now < s->cfg->fast_token_min_ttl) {
		want = cd->fast_mech;
	}
	if (want < 0)
		return;
	if (fast_issue(s->host, s->username, cd->ua_id, (enum fast_mech)want, now,
		       s->cfg->fast_token_ttl, token, &expiry) != 0) {
		log_warn("%s: no FAST token issued: the store failed", s->bare_jid);
		return;
	}
	time_t t = (time_t)expiry;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	sbuf_printf(out, "<token xmlns='" NS_FAST "' expiry='%s' token='%s'/>", when, token);
	OPENSSL_cleanse(token, sizeof(token));
}

static void success_open(struct sbuf *b, const struct sbuf *data, const char *authz)
{
	sbuf_adds(b, "<success xmlns='" NS_SASL2 "'>");
	if (data->len) {
		sbuf_adds(b, "<additional-data>");
		b64_encode(b, data->p, data->len);
		sbuf_adds(b, "</additional-data>");
	}
	sbuf_adds(b, "<authorization-identifier>");
	xml_escape(b, authz, strlen(authz));
	sbuf_adds(b, "</authorization-identifier>");
}

struct resumed_ctx {
	const struct sbuf *data;
	const struct sbuf *token;
	struct c2s_data *cd;
};

/* XEP-0198 in SASL2: <resumed/> goes inside <success/>, on the resumed
 * session o, which now has the connection. */
static void on_resumed(struct session *o, const char *resumed, void *arg)
{
	struct resumed_ctx *ctx = arg;
	struct c2s_data *od = c2s_data(o);
	struct sbuf b;

	sbuf_init(&b);
	success_open(&b, ctx->data, o->full_jid);
	sbuf_adds(&b, resumed);
	sbuf_add(&b, ctx->token->p, ctx->token->len);
	sbuf_adds(&b, "</success>");
	session_send_raw(o, b.p, b.len);
	OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&b);
	if (ctx->cd->ua_id) {
		free(od->ua_id);
		od->ua_id = xstrdup(ctx->cd->ua_id);
	}
	session_send_features(o);
}

/* Ends the account's other sessions of the same client (XEP-0386). */
static void replace_earlier(struct session *s, const char *ua_id)
{
	struct session *old[MAX_REPLACED];
	size_t n = 0;

	for (struct session *o = route_find_bare(s->bare_jid); o && n < MAX_REPLACED;
	     o = o->user_next) {
		const struct c2s_data *od = o->role_data;
		if (o != s && od && od->ua_id && strcmp(od->ua_id, ua_id) == 0)
			old[n++] = o;
	}
	for (size_t i = 0; i < n; i++) {
		log_info("%s: replaced by a new session of the same client", old[i]->full_jid);
		session_close(old[i], "conflict", "replaced by a new session of the same client");
	}
}

/* Bind2: a resource from the client's tag and a random part, then the
 * session features it asked for (enable-bind-features). 0, or -1 when
 * no resource could be bound (the login stands; the client may bind). */
static int bind2(struct session *s, struct c2s_data *cd, struct st_doc *rdoc,
		 const struct st_node *breq, struct sbuf *out)
{
	const char *tag = st_child_text(rdoc, breq, "tag", NS_BIND2);
	const char *type, *cond;
	char rnd[11], res[JID_PART_MAX];
	struct sbuf want;
	int rc = 0;

	random_id(rnd, 10);
	sbuf_init(&want);
	sbuf_printf(&want, "%s/%s", tag ? tag : "", rnd);
	if (!tag || !*tag || want.len >= JID_PART_MAX || jid_resourceprep(want.p, res) != 0)
		memcpy(res, rnd, sizeof(rnd));	/* a tag we cannot use: left out */
	sbuf_free(&want);
	if (cd->ua_id)
		replace_earlier(s, cd->ua_id);
	if (c2s_bind(s, res, &type, &cond) != 0) {
		log_info("%s: Bind2 failed: %s", s->bare_jid, cond);
		return -1;
	}
	struct st_doc *d = st_doc_new();
	struct st_node *root = st_elem_new(d, NULL, "bind2", NS_BIND2);
	struct st_node *req = st_copy_into(d, root, breq);
	struct st_node *bound = st_elem_new(d, root, "bound", NS_BIND2);
	d->cursor = bound;
	session_fire(s, "enable-bind-features", &(struct event){
		.origin = s, .session = s, .doc = d, .stanza = req, .features = bound });
	if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
		rc = -1;
	else
		st_serialize(bound, NS_SASL2, out);
	st_doc_unref(d);
	return rc;
}

static const char *resume_condition(int rc)
{
	return rc == -ENOENT ? "item-not-found" : "bad-request";
}

void sasl2_success(struct session *s, const struct sbuf *data)
{
	struct c2s_data *cd = c2s_data(s);
	struct st_doc *rdoc = cd->request ? st_doc_ref(cd->request) : NULL;
	const struct st_node *req = rdoc ? rdoc->root : NULL;
	const struct st_node *resume = req ? st_child(req, "resume", NS_SM) : NULL;
	const struct st_node *breq = req ? st_child(req, "bind", NS_BIND2) : NULL;
	struct sbuf token, extra, b;
	bool bound = false;

	sbuf_init(&token);
	sbuf_init(&extra);
	sbuf_init(&b);
	if (req)
		fast_token(s, cd, req, &token);
	if (resume) {
		struct resumed_ctx ctx = { data, &token, cd };
		int rc;
		s->role_data = NULL;	/* kept here: s ends if it resumes */
		rc = sm_resume_with(s, st_attr_get(resume, "previd"),
				    st_attr_get(resume, "h"), on_resumed, &ctx);
		if (rc == 0) {
			data_free(cd);
			goto out;
		}
		s->role_data = cd;
		sbuf_printf(&extra, "<failed xmlns='" NS_SM "'><%s xmlns='" NS_STANZAS "'/>"
			    "</failed>", resume_condition(rc));
	}
	if (breq)
		bound = bind2(s, cd, rdoc, breq, &extra) == 0;
	if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
		goto out;
	success_open(&b, data, bound ? s->full_jid : s->bare_jid);
	sbuf_add(&b, extra.p, extra.len);
	sbuf_add(&b, token.p, token.len);
	sbuf_adds(&b, "</success>");
	session_send_raw(s, b.p, b.len);
	session_send_features(s);
	if (bound)
		session_fire(s, "resource-bind", &(struct event){ .session = s });
out:
	if (token.p)
		OPENSSL_cleanse(token.p, token.cap);
	if (b.p)
		OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&token);
	sbuf_free(&extra);
	sbuf_free(&b);
	if (rdoc)
		st_doc_unref(rdoc);
}
