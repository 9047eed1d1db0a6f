/* s2s_in.c - the incoming server-to-server role: a peer's stream to us.
 * It authenticates each of the peer's domains with Server Dialback
 * (XEP-0220: the key it sends is checked with its authoritative server
 * over our own outgoing stream, s2s_out.c), answers the verifications
 * other servers ask of us, and hands the stanzas of authenticated domains
 * to the router. The stream itself is session.c's. */
#include "s2s.h"
#include "hmap.h"
#include "ipstate.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

enum pair_state { PAIR_PENDING, PAIR_VALID };

#define SASL_FAILURES_MAX 3	/* per stream, then not-authorized */

/* One (local, remote) pair the peer asked to authenticate. */
struct in_pair {
	char *local, *remote;
	enum pair_state state;
	const char *method;	/* how it authenticated (static) */
	struct in_pair *next;
};

struct s2s_in {
	struct in_pair *pairs;
	char id[20];		/* the stream id under which it is in by_id */
	struct s2s_cert cert;	/* judged once, after TLS */
	bool sasl_done;		/* SASL EXTERNAL succeeded on this stream */
	unsigned sasl_failures;
};

/* Incoming streams waiting for (or having had) a verification, by the
 * stream id the key was made for. */
static struct hmap by_id;
static bool by_id_ready;

static struct s2s_in *state_of(struct session *s)
{
	if (!s->role_data)
		s->role_data = xcalloc(1, sizeof(struct s2s_in));
	return s->role_data;
}

static struct in_pair *find_pair(const struct session *s, const char *local,
				 const char *remote)
{
	const struct s2s_in *in = s->role_data;

	for (struct in_pair *p = in ? in->pairs : NULL; p; p = p->next)
		if (strcmp(p->remote, remote) == 0 &&
		    (!local || strcmp(p->local, local) == 0))
			return p;
	return NULL;
}

static bool has_valid(const struct session *s, const char *remote)
{
	const struct s2s_in *in = s->role_data;

	for (struct in_pair *p = in ? in->pairs : NULL; p; p = p->next)
		if (p->state == PAIR_VALID && (!remote || strcmp(p->remote, remote) == 0))
			return true;
	return false;
}

bool s2s_in_has(const struct session *s, const char *remote)
{
	return has_valid(s, remote);
}

const char *s2s_in_method(const struct session *s)
{
	const struct s2s_in *in = s->role_data;

	for (struct in_pair *p = in ? in->pairs : NULL; p; p = p->next)
		if (p->state == PAIR_VALID)
			return p->method;
	return "-";
}

const struct s2s_cert *s2s_in_cert(const struct session *s)
{
	const struct s2s_in *in = s->role_data;

	return in ? &in->cert : NULL;
}

/* The peer's certificate, judged at its first use after TLS. */
static const struct s2s_cert *peer_cert(struct session *s)
{
	struct s2s_in *in = state_of(s);

	if (!in->cert.checked && (s->flags & SESS_F_TLS) && s->conn)
		s2s_cert_check(s, &in->cert, NULL, 0);
	return &in->cert;
}

/* Whether the peer's certificate is valid for remote; how says why (or
 * why not). */
static bool cert_valid_for(struct session *s, const char *remote, const char **how)
{
	const struct s2s_cert *c = peer_cert(s);

	if (!c->checked) {
		*how = "no TLS";
		return false;
	}
	return s2s_cert_valid_for(s, c, remote, NULL, how);
}

const char *s2s_in_domains(const struct session *s, char *buf, size_t n)
{
	const struct s2s_in *in = s->role_data;
	size_t used = 0;

	buf[0] = '\0';
	for (struct in_pair *p = in ? in->pairs : NULL; p; p = p->next) {
		if (p->state != PAIR_VALID)
			continue;
		int k = snprintf(buf + used, n - used, "%s%s", used ? " " : "", p->remote);
		if (k < 0 || (size_t)k >= n - used)
			break;
		used += (size_t)k;
	}
	return buf;
}

static void pair_remove(struct session *s, struct in_pair *gone)
{
	struct s2s_in *in = s->role_data;

	for (struct in_pair **pp = &in->pairs; *pp; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			free(gone->local);
			free(gone->remote);
			free(gone);
			return;
		}
	}
}

/* --- dialback ------------------------------------------------------------------ */

static void send_db_error(struct session *s, const char *name, const char *from,
			  const char *to, const char *id, const char *cond)
{
	char err[160];

	snprintf(err, sizeof(err), "<error type='cancel'><%s xmlns='" NS_STANZAS
		 "'/></error>", cond);
	s2s_send_db(s, name, from, to, id, "error", err);
}

/* A domain of ours: a VirtualHost's, or a Component's (its stanzas to
 * and from other servers travel over our streams). */
static bool is_local(const char *domain)
{
	const struct host *h = route_host(domain);

	return h && h->type != HOST_GLOBAL;
}

static void authenticated(struct session *s, struct in_pair *p, const char *method);

/* Dialback for a domain that must present a valid certificate: refused.
 * A stream with no other domain ends (not-authorized, as Prosody);
 * one that carries others keeps them. */
static void refuse_insecure(struct session *s, const char *local,
			    const char *remote, const char *why)
{
	char text[JID_PART_MAX + 160];

	log_info("s2s incoming %s -> %s refused: a valid certificate is required "
		 "(s2s_secure_auth), and it is %s (%s)", remote, local,
		 peer_cert(s)->state, why);
	snprintf(text, sizeof(text), "a valid certificate for %s is required (%s)",
		 remote, why);
	if (!has_valid(s, NULL))
		session_close(s, "not-authorized", text);
	else
		send_db_error(s, "result", local, remote, NULL, "not-authorized");
}

/* <db:result from=remote to=local>key</db:result>: the peer claims
 * remote; its authoritative server is asked (XEP-0220 2.2). */
static void handle_result(struct session *s, struct st_doc *doc, struct st_node *n)
{
	const char *from = st_attr_get(n, "from"), *to = st_attr_get(n, "to");
	const char *key = st_text(doc, n);
	char local[JID_PART_MAX], remote[JID_PART_MAX];
	struct s2s_in *in = state_of(s);
	struct in_pair *p;
	const char *how;
	bool cert_ok;

	if (!from || jid_nameprep(from, remote) != 0 || !*remote || route_host(remote)) {
		session_close(s, "invalid-from", NULL);
		return;
	}
	if (!to || jid_nameprep(to, local) != 0 || !is_local(local)) {
		send_db_error(s, "result", to, from, NULL, "item-not-found");
		return;
	}
	if ((p = find_pair(s, local, remote))) {
		if (p->state == PAIR_VALID)
			s2s_send_db(s, "result", local, remote, NULL, "valid", NULL);
		return;		/* pending: its answer is on the way */
	}
	cert_ok = cert_valid_for(s, remote, &how);
	if (!cert_ok && s2s_secure_required(remote)) {
		refuse_insecure(s, local, remote, how);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->local = xstrdup(local);
	p->remote = xstrdup(remote);
	p->next = in->pairs;
	in->pairs = p;
	if (cert_ok) {
		/* XEP-0344 2.4: the certificate proves the domain; asking
		 * its server again would prove nothing more. */
		authenticated(s, p, "dialback+cert");
		return;
	}
	if (!in->id[0]) {
		if (!by_id_ready) {
			hmap_init(&by_id);
			by_id_ready = true;
		}
		memcpy(in->id, s->id, sizeof(in->id));
		hmap_set(&by_id, in->id, s);
	}
	log_debug("s2s incoming %s -> %s: dialback key, asking %s", remote, local, remote);
	s2s_out_verify(local, remote, s->id, key ? key : "");
}

/* <db:verify from=receiving to=ours id>key</db:verify>: another server
 * asks whether we made key (we are the authoritative server). */
static void handle_verify(struct session *s, struct st_doc *doc, struct st_node *n)
{
	const char *from = st_attr_get(n, "from"), *to = st_attr_get(n, "to");
	const char *id = st_attr_get(n, "id");
	const char *key = st_text(doc, n);
	char local[JID_PART_MAX], remote[JID_PART_MAX];
	bool ok;

	if (!from || !id || jid_nameprep(from, remote) != 0 || !*remote) {
		session_close(s, "invalid-from", NULL);
		return;
	}
	if (!to || jid_nameprep(to, local) != 0 || !is_local(local)) {
		send_db_error(s, "verify", to, from, id, "item-not-found");
		return;
	}
	ok = dialback_key_ok(remote, local, id, key);
	log_debug("s2s: %s asks about a key of %s: %s", remote, local,
		  ok ? "valid" : "invalid");
	s2s_send_db(s, "verify", local, remote, id, ok ? "valid" : "invalid", NULL);
}

static void authenticated(struct session *s, struct in_pair *p, const char *method)
{
	bool first = !(s->flags & SESS_F_AUTHED);

	p->state = PAIR_VALID;
	p->method = method;
	if (strcmp(method, "SASL EXTERNAL") != 0)
		s2s_send_db(s, "result", p->local, p->remote, NULL, "valid", NULL);
	if (first) {
		s->flags |= SESS_F_AUTHED | SESS_F_BOUND;
		free(s->peer);
		s->peer = xstrdup(p->remote);
		if ((s->flags & SESS_F_COUNTED) && s->conn) {
			ipstate_unauth_del(s->conn->ip);
			s->flags &= ~SESS_F_COUNTED;
		}
		ev_timer_stop(conn_loop(), &s->timer);
		s->timer.repeat = s->cfg->idle_timeout;
		ev_timer_again(conn_loop(), &s->timer);
	}
	log_info("s2s incoming %s -> %s authenticated (%s, %s, %s:%d, certificate %s)",
		 p->remote, p->local, method, s->conn ? tls_version(s->conn->ssl) : "none",
		 s->conn ? s->conn->ip : "?", s->conn ? s->conn->port : 0,
		 s2s_cert_state(s));
	s2s_fire(s, p->local, "s2sin-established", NULL);
}

void s2s_in_verified(const char *id, const char *local, const char *remote,
		     int valid, const char *cond)
{
	struct session *s = by_id_ready ? hmap_get(&by_id, id) : NULL;
	struct in_pair *p;

	if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		return;
	p = find_pair(s, local, remote);
	if (!p || p->state != PAIR_PENDING)
		return;
	if (valid > 0) {
		authenticated(s, p, "dialback");
		return;
	}
	if (valid == 0) {
		log_info("s2s incoming %s -> %s: dialback key invalid (%s)", remote,
			 local, s->conn ? s->conn->ip : "?");
		s2s_send_db(s, "result", local, remote, NULL, "invalid", NULL);
		pair_remove(s, p);
		if (!has_valid(s, NULL))
			session_close(s, "not-authorized", "dialback: the key is not valid");
		return;
	}
	log_info("s2s incoming %s -> %s: cannot verify (%s)", remote, local, cond);
	send_db_error(s, "result", local, remote, NULL, cond);
	pair_remove(s, p);
}

/* --- stanzas ------------------------------------------------------------------- */

/* RFC 6120 4.9.3 and 8.1.1.1: both addresses, 'from' one of the
 * peer's authenticated domains, 'to' one of ours. Takes doc. */
static void handle_stanza(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;
	const char *from = st_attr_get(n, "from"), *to = st_attr_get(n, "to");
	struct jid jf, jt;
	const struct host *h;

	if (!(s->flags & SESS_F_AUTHED)) {
		session_close(s, "not-authorized", "authenticate (dialback) first");
		goto out;
	}
	if (!from || !to) {
		session_close(s, "improper-addressing", "a stanza needs 'from' and 'to'");
		goto out;
	}
	if (jid_parse(from, &jf) != 0 || !has_valid(s, jf.domain)) {
		session_close(s, "invalid-from", NULL);
		goto out;
	}
	if (jid_parse(to, &jt) != 0) {
		session_close(s, "improper-addressing", "'to' is not a JID");
		goto out;
	}
	h = route_host(jt.domain);
	if (!h || h->type == HOST_GLOBAL) {
		session_close(s, "host-unknown", NULL);
		goto out;
	}
	st_rename_ns(n, NS_SERVER, NS_CLIENT);
	route_from_server(s, doc);
	return;
out:
	st_doc_unref(doc);
}

/* --- SASL EXTERNAL (RFC 6120 6.4, XEP-0178) ---------------------------------------- */

static void sasl_failure(struct session *s, const char *cond, const char *text)
{
	struct s2s_in *in = state_of(s);

	session_send_sasl_failure(s, NS_SASL, cond, text);
	if (++in->sasl_failures >= SASL_FAILURES_MAX)
		session_close(s, "not-authorized", "too many failed authentication attempts");
}

/* The domain the peer asks to be: its authzid, or (empty, "=") the
 * stream's 'from'. NULL after answering a failure. */
static const char *external_authzid(struct session *s, struct st_doc *doc,
				    struct st_node *n, char out[JID_PART_MAX])
{
	const char *text = st_text(doc, n);
	size_t len = text ? strlen(text) : 0;
	struct sbuf dec;
	int r;

	if (len == 0 || (len == 1 && text[0] == '=')) {
		if (!s->peer) {
			sasl_failure(s, "not-authorized", "name your domain in the "
				     "stream's 'from' or as the authorization identity");
			return NULL;
		}
		snprintf(out, JID_PART_MAX, "%s", s->peer);
		return out;
	}
	sbuf_init(&dec);
	r = b64_decode(&dec, text, len);
	if (r != 0) {
		sbuf_free(&dec);
		sasl_failure(s, "incorrect-encoding", NULL);
		return NULL;
	}
	sbuf_addc(&dec, '\0');
	r = strlen(dec.p) == dec.len - 1 ? jid_nameprep(dec.p, out) : -EINVAL;
	sbuf_free(&dec);
	if (r != 0 || !*out || strchr(out, '@') || strchr(out, '/')) {
		sasl_failure(s, "invalid-authzid", "not a domain");
		return NULL;
	}
	return out;
}

/* <auth mechanism='EXTERNAL'>[authzid]</auth>: the peer is the domain
 * its certificate names. */
static void handle_auth(struct session *s, struct st_doc *doc, struct st_node *n)
{
	const char *mech = st_attr_get(n, "mechanism");
	struct s2s_in *in = state_of(s);
	char domain[JID_PART_MAX];
	const char *how;
	struct in_pair *p;

	if (in->sasl_done || !s->host) {
		sasl_failure(s, "not-authorized", "already authenticated");
		return;
	}
	if (!mech || strcmp(mech, "EXTERNAL") != 0) {
		sasl_failure(s, "invalid-mechanism", NULL);
		return;
	}
	if (!(s->flags & SESS_F_TLS)) {
		sasl_failure(s, "encryption-required", NULL);
		return;
	}
	if (!external_authzid(s, doc, n, domain))
		return;
	if (route_host(domain) || (s->peer && strcmp(domain, s->peer) != 0)) {
		/* XEP-0178 3: the authzid is the stream's 'from', a remote one */
		log_info("s2s incoming %s: SASL EXTERNAL as %s refused (the stream "
			 "is from %s)", session_src(s), domain, s->peer ? s->peer : "?");
		sasl_failure(s, "invalid-authzid", "not the domain the stream is from");
		return;
	}
	if (!cert_valid_for(s, domain, &how)) {
		log_info("s2s incoming %s -> %s: SASL EXTERNAL refused: certificate %s (%s)",
			 domain, s->host, peer_cert(s)->state, how);
		sasl_failure(s, peer_cert(s)->chain_ok ? "invalid-authzid" : "not-authorized",
			     how);
		return;
	}
	if (!(p = find_pair(s, s->host, domain))) {
		p = xcalloc(1, sizeof(*p));
		p->local = xstrdup(s->host);
		p->remote = xstrdup(domain);
		p->next = in->pairs;
		in->pairs = p;
	}
	in->sasl_done = true;
	session_send_str(s, "<success xmlns='" NS_SASL "'/>");
	s->flags |= SESS_F_RESTART;	/* RFC 6120 6.4.6: a new stream */
	if (p->state != PAIR_VALID)
		authenticated(s, p, "SASL EXTERNAL");
}

/* --- the role ------------------------------------------------------------------ */

static void in_element(struct session *s, struct st_doc *doc)
{
	struct st_node *n = doc->root;

	if (strcmp(n->ns, NS_SERVER) == 0 &&
	    (strcmp(n->name, "message") == 0 || strcmp(n->name, "presence") == 0 ||
	     strcmp(n->name, "iq") == 0)) {
		handle_stanza(s, doc);		/* takes doc */
		return;
	}
	if (strcmp(n->ns, NS_SASL) == 0) {
		if (strcmp(n->name, "auth") == 0)
			handle_auth(s, doc, n);
		else if (strcmp(n->name, "abort") == 0)
			sasl_failure(s, "aborted", NULL);
		else
			session_close(s, "unsupported-stanza-type", NULL);
	} else if (strcmp(n->ns, NS_DIALBACK) == 0) {
		if (!(s->flags & SESS_F_TLS) && s->cfg->require_encryption)
			session_close(s, "policy-violation", "encryption is required");
		else if (strcmp(n->name, "result") == 0)
			handle_result(s, doc, n);
		else if (strcmp(n->name, "verify") == 0)
			handle_verify(s, doc, n);
		else
			session_close(s, "unsupported-stanza-type", NULL);
	} else if (!(s->flags & SESS_F_AUTHED)) {
		session_close(s, "not-authorized", NULL);
	} else {
		session_close(s, "unsupported-stanza-type", NULL);
	}
	st_doc_unref(doc);
}

/* The peer's header: 'from' names it (optional, RFC 6120 4.7.1). */
static bool in_header(struct session *s, const struct st_node *hdr)
{
	const char *from = st_attr_get(hdr, "from");
	char domain[JID_PART_MAX];

	if (!(s->flags & SESS_F_AUTHED) && from && jid_nameprep(from, domain) == 0) {
		free(s->peer);
		s->peer = xstrdup(domain);
	}
	return false;		/* the usual checks of 'to', namespace, version */
}

/* After TLS, SASL EXTERNAL when the certificate is valid for the domain
 * the stream says it is from (XEP-0178 3); dialback always, for the
 * domains the certificate does not cover (XEP-0220 8). */
static void in_features(struct session *s, struct st_doc *d, struct st_node *f)
{
	struct s2s_in *in = state_of(s);
	const char *how = "no TLS";
	struct st_node *db;

	if (!in->sasl_done && (s->flags & SESS_F_TLS) && s->peer && !route_host(s->peer) &&
	    cert_valid_for(s, s->peer, &how)) {
		struct st_node *m = st_elem_new(d, f, "mechanisms", NS_SASL);
		struct st_node *e = st_elem_new(d, m, "mechanism", NULL);
		st_text_add(d, e, "EXTERNAL", 8);
	} else if ((s->flags & SESS_F_TLS) && s->peer) {
		log_debug("s2s incoming %s: no SASL EXTERNAL for %s: certificate %s (%s)",
			  session_src(s), s->peer, peer_cert(s)->state, how);
	}
	db = st_elem_new(d, f, "dialback", NS_DIALBACK_FEATURE);

	st_elem_new(d, db, "errors", NULL);
}

static void in_ended(struct session *s, const char *reason)
{
	struct s2s_in *in = s->role_data;

	if (!in)
		return;
	if (in->id[0] && hmap_get(&by_id, in->id) == s)
		hmap_del(&by_id, in->id);
	while (in->pairs) {
		struct in_pair *p = in->pairs;
		if (p->state == PAIR_VALID) {
			log_info("s2s incoming %s -> %s closed: %s", p->remote,
				 p->local, reason);
			s2s_fire(s, p->local, "s2s-destroyed", reason);
		}
		pair_remove(s, p);
	}
	free(in);
	s->role_data = NULL;
	if (by_id_ready && !by_id.count) {
		hmap_free(&by_id);
		by_id_ready = false;
	}
}

const struct session_role s2s_in_role = {
	.name = "s2sin",
	.ns = NS_SERVER,
	.host_type = HOST_LOCAL,
	.components_too = true,
	.header_attrs = "xmlns:db='" NS_DIALBACK "'",
	.routes_sends = true,
	.peer_certificate = true,
	.header = in_header,
	.features = in_features,
	.element = in_element,
	.ended = in_ended,
};
