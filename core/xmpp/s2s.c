/* s2s.c - what both directions of server-to-server streams share: the
 * settings, module events, dialback elements, administration. The roles
 * are s2s_in.c and s2s_out.c; keys are dialback.c's. */
#include "s2s.h"
#include "certid.h"
#include "hmap.h"
#include "jid.h"
#include "log.h"

#include <stdio.h>

static struct s2s_config config = {
	.queue_max = 1000,
	.connect_timeout = 10,
};

static bool federating;

void s2s_init(const unsigned char secret[32])
{
	dialback_init(secret);
	federating = true;
}

bool s2s_enabled(void)
{
	return federating;
}

void s2s_configure(const struct s2s_config *cfg)
{
	config = *cfg;
}

const struct s2s_config *s2s_config(void)
{
	return &config;
}

void s2s_free_all(void)
{
	s2s_out_free_all();
	s2s_set_policy(false, NULL, 0, NULL, 0);
}

/* --- who must present a valid certificate --------------------------------------- */

static bool secure_auth;
static struct hmap secure_domains, insecure_domains;	/* values: (void *)1 */
static bool policy_ready;

static void fill(struct hmap *m, const char *const *d, size_t n)
{
	char prepped[JID_PART_MAX];

	for (size_t i = 0; i < n; i++)
		hmap_set(m, jid_nameprep(d[i], prepped) == 0 ? prepped : d[i], (void *)1);
}

void s2s_set_policy(bool secure, const char *const *sec, size_t n_sec,
		    const char *const *insec, size_t n_insec)
{
	if (policy_ready) {
		hmap_free(&secure_domains);
		hmap_free(&insecure_domains);
		policy_ready = false;
	}
	secure_auth = secure;
	if (!sec && !insec)
		return;
	hmap_init(&secure_domains);
	hmap_init(&insecure_domains);
	policy_ready = true;
	fill(&secure_domains, sec, n_sec);
	fill(&insecure_domains, insec, n_insec);
}

bool s2s_secure_required(const char *remote)
{
	if (policy_ready && hmap_get(&insecure_domains, remote))
		return false;
	if (secure_auth)
		return true;
	return policy_ready && hmap_get(&secure_domains, remote) != NULL;
}

/* --- the peer's certificate --------------------------------------------------- */

void s2s_cert_check(struct session *s, struct s2s_cert *c,
		    const struct dns_tlsa *recs, size_t n)
{
	SSL *ssl = s->conn ? s->conn->ssl : NULL;

	memset(c, 0, sizeof(*c));
	c->checked = true;
	c->present = tls_peer_cert(ssl) != NULL;
	c->chain_ok = c->present && tls_peer_chain(ssl, s->host, c->why, sizeof(c->why)) == 0;
	c->dane = n ? tls_peer_dane(ssl, recs, n) : TLS_DANE_UNUSABLE;
	if (!c->present)
		snprintf(c->why, sizeof(c->why), "no certificate");
	if (c->dane == TLS_DANE_EE || c->dane == TLS_DANE_TA)
		snprintf(c->state, sizeof(c->state), "valid (DANE-%s)",
			 c->dane == TLS_DANE_EE ? "EE" : "TA");
	else if (c->dane == TLS_DANE_MISMATCH)
		snprintf(c->state, sizeof(c->state), "invalid: no TLSA record matches");
	else if (c->chain_ok)
		snprintf(c->state, sizeof(c->state), "valid");
	else if (!c->present)
		snprintf(c->state, sizeof(c->state), "none");
	else
		snprintf(c->state, sizeof(c->state), "invalid: %s", c->why);
}

bool s2s_cert_valid_for(const struct session *s, const struct s2s_cert *c,
			const char *domain, const char *target, const char **how)
{
	X509 *cert = tls_peer_cert(s->conn ? s->conn->ssl : NULL);
	enum certid_match m;

	*how = "no certificate";
	if (!c->checked || !cert)
		return false;
	if (c->dane == TLS_DANE_EE) {	/* RFC 7671 5.1: no name checks */
		*how = "no name check";
		return true;
	}
	if (c->dane == TLS_DANE_MISMATCH) {
		*how = "no TLSA record matches";
		return false;
	}
	if (!c->chain_ok && c->dane != TLS_DANE_TA) {
		*how = "not trusted";
		return false;
	}
	m = certid_match(cert, domain, true);
	if (m == CERTID_NONE && target)
		m = certid_match(cert, target, false);
	if (m == CERTID_NONE) {
		*how = "issued for another domain";
		return false;
	}
	*how = certid_match_name(m);
	return true;
}

const char *s2s_auth_method(const struct session *s)
{
	if (s->role == &s2s_in_role)
		return s2s_in_method(s);
	if (s->role == &s2s_out_role)
		return s2s_out_method(s);
	return "-";
}

const char *s2s_cert_state(const struct session *s)
{
	const struct s2s_cert *c = s->role == &s2s_in_role ? s2s_in_cert(s) :
				   s->role == &s2s_out_role ? s2s_out_cert(s) : NULL;

	return c && c->checked ? c->state : "-";
}

bool s2s_is(const struct session *s)
{
	return s->role == &s2s_in_role || s->role == &s2s_out_role;
}

void s2s_fire(struct session *s, const char *local, const char *name,
	      const char *reason)
{
	struct event ev = { .session = s, .error = reason };

	route_fire(local ? route_host(local) : NULL, name, &ev);
}

static void add_attr(struct sbuf *b, const char *name, const char *value)
{
	if (!value)
		return;
	sbuf_printf(b, " %s='", name);
	xml_escape(b, value, strlen(value));
	sbuf_addc(b, '\'');
}

void s2s_send_db(struct session *s, const char *name, const char *from,
		 const char *to, const char *id, const char *type,
		 const char *text)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_printf(&b, "<db:%s", name);
	add_attr(&b, "from", from);
	add_attr(&b, "to", to);
	add_attr(&b, "id", id);
	add_attr(&b, "type", type);
	if (text) {
		sbuf_addc(&b, '>');
		sbuf_adds(&b, text);	/* a key (hex) or an <error/> we made */
		sbuf_printf(&b, "</db:%s>", name);
	} else {
		sbuf_adds(&b, "/>");
	}
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
}

size_t s2s_close_domain(const char *domain)
{
	size_t n = 0;

	for (struct session *s = session_first(); s; s = s->all_next) {
		if (!s2s_is(s) || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			continue;
		if ((s->peer && strcmp(s->peer, domain) == 0) ||
		    (s->role == &s2s_in_role && s2s_in_has(s, domain))) {
			log_info("s2s %s %s: closed by the administrator",
				 s->role == &s2s_in_role ? "incoming" : "outgoing",
				 domain);
			session_close(s, "policy-violation", "closed by the administrator");
			n++;
		}
	}
	return n;
}
