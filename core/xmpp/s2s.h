/*
 * s2s.h - server-to-server streams (RFC 6120, XEP-0220, XEP-0185): the
 * roles s2sin (a peer's stream to us: s2s_in.c) and s2sout (ours to a
 * peer: s2s_out.c), and Server Dialback between them (dialback.c).
 *
 * pair:     (local domain, remote domain). An outgoing stream serves one
 *           pair; an incoming stream may carry several (XEP-0220 8,
 *           multiplexing), each authenticated on its own.
 * link:     what we keep per outgoing pair: its stream (or the attempt to
 *           make one), the stanzas waiting for it, the dialback
 *           verifications it carries for incoming streams.
 * key:      the dialback key of XEP-0185: HMAC-SHA256 over
 *           "receiving originating stream-id" with the hash of our secret.
 * verify:   <db:verify/>: an incoming stream's key, sent to the peer that
 *           claims to have made it (the authoritative server).
 *
 * cert:     what the peer's certificate proves (struct s2s_cert): its
 *           chain to a CA we trust (ssl.cafile/capath or the system's),
 *           DANE (outgoing, RFC 7673), and per domain its identities
 *           (core/net/certid.h). A valid certificate authenticates with
 *           SASL EXTERNAL (XEP-0178), or lets dialback skip its verify
 *           round trip ("dialback+cert", XEP-0344 2.4).
 * secure:   a pair whose peer must have a valid certificate
 *           (s2s_secure_auth, s2s_secure_domains, s2s_insecure_domains):
 *           dialback alone is not enough.
 *
 * Stanzas to a domain that is not ours come here from the router (after
 * the "route/remote" event) and go out on the pair's link, queued in order
 * while the stream is being set up; when it cannot be, each is bounced
 * once (remote-server-not-found, remote-server-timeout).
 */
#ifndef STARLING_S2S_H
#define STARLING_S2S_H

#include "session.h"
#include "tls.h"

#define NS_DIALBACK "jabber:server:dialback"
#define NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"

extern const struct session_role s2s_in_role;
extern const struct session_role s2s_out_role;

struct s2s_config {
	struct session_config in;	/* incoming streams */
	struct session_config out;	/* outgoing streams */
	size_t queue_max;		/* stanzas waiting per pair */
	double connect_timeout;		/* connect and negotiate, seconds */
};

/* The server's secret (dialback keys derive from it) and the settings;
 * s2s_configure again on reload (streams keep the settings they have). */
void s2s_init(const unsigned char secret[32]);
/* Whether s2s_init ran: federation is on (else remote stanzas bounce). */
bool s2s_enabled(void);
void s2s_configure(const struct s2s_config *cfg);
const struct s2s_config *s2s_config(void);
/* Ends every link (shutdown): queued stanzas bounce. */
void s2s_free_all(void);

/* A stanza from local domain `from` to remote domain `to` (not ours):
 * sent on the pair's stream, or queued until it is up. Takes a reference
 * on doc. */
void s2s_route(struct st_doc *doc, struct st_node *node, const char *from,
	       const char *to);

/* Closes every stream to and from domain: how many. */
size_t s2s_close_domain(const char *domain);
/* Whether s is a server-to-server stream. */
bool s2s_is(const struct session *s);
/* The remote domains authenticated on an incoming s, joined by spaces
 * into buf (for administration). */
const char *s2s_in_domains(const struct session *s, char *buf, size_t n);

/* Who must present a valid certificate (Prosody's options): every peer
 * when secure_auth, else the domains of secure; never the domains of
 * insecure. Copied; again on reload. */
void s2s_set_policy(bool secure_auth, const char *const *secure, size_t n_secure,
		    const char *const *insecure, size_t n_insecure);
/* Whether remote must authenticate with a valid certificate. */
bool s2s_secure_required(const char *remote);
/* For administration: how s authenticated ("SASL EXTERNAL", "dialback",
 * "dialback+cert", or "-") and what its peer's certificate is ("valid",
 * "valid (DANE)", "invalid: why", "none", "-" before TLS). */
const char *s2s_auth_method(const struct session *s);
const char *s2s_cert_state(const struct session *s);

/* --- between the files of s2s (not for other layers) ----------------------- */

/* What the peer's certificate proves on one stream, judged once after
 * the TLS handshake (s2s_cert_check). */
struct s2s_cert {
	bool checked;
	bool present;
	bool chain_ok;			/* PKIX: leads to a CA we trust */
	enum tls_dane dane;		/* outgoing with TLSA records */
	char why[112];			/* why the chain is not trusted */
	char state[128];		/* for administration, see s2s_cert_state */
};
/* Judges the certificate of s's peer against s->host's trust store, and
 * against TLSA records recs[n] (NULL, 0: none). */
void s2s_cert_check(struct session *s, struct s2s_cert *c,
		    const struct dns_tlsa *recs, size_t n);
/* Whether the certificate is valid for domain (its own identities,
 * SRV-IDs included) or for target (an SRV target reached by DNSSEC-secure
 * answers, RFC 7673; NULL: none); *how says by what (static string). */
bool s2s_cert_valid_for(const struct session *s, const struct s2s_cert *c,
			const char *domain, const char *target, const char **how);
/* s2s_in.c / s2s_out.c: the role's own side of s2s_auth_method and
 * s2s_cert_state. */
const char *s2s_in_method(const struct session *s);
const struct s2s_cert *s2s_in_cert(const struct session *s);
const char *s2s_out_method(const struct session *s);
const struct s2s_cert *s2s_out_cert(const struct session *s);

/* dialback.c: the HMAC key, from the server's secret. */
void dialback_init(const unsigned char secret[32]);
/* The key for (receiving, originating, stream id) as 64 hex
 * digits and a NUL in out[65]. */
void dialback_key(const char *receiving, const char *originating,
		  const char *stream_id, char out[65]);
/* Whether key is the one we would have made (constant time). */
bool dialback_key_ok(const char *receiving, const char *originating,
		     const char *stream_id, const char *key);

/* s2s_out.c: asks the authoritative server of remote, over the pair's
 * outgoing stream, whether key is valid for incoming stream id. The
 * answer comes to s2s_in_verified(). */
void s2s_out_verify(const char *local, const char *remote, const char *id,
		    const char *key);
/* s2s_in.c: the answer for incoming stream id, pair (local, remote):
 * 1 valid, 0 invalid, < 0 no answer (cond: a stanza error condition). */
void s2s_in_verified(const char *id, const char *local, const char *remote,
		     int valid, const char *cond);
/* s2s_in.c: whether remote is authenticated on incoming s. */
bool s2s_in_has(const struct session *s, const char *remote);
/* s2s_out.c: ends every link. */
void s2s_out_free_all(void);
/* s2s.c: fires name on the local host with the session. */
void s2s_fire(struct session *s, const char *local, const char *name,
	      const char *reason);
/* Sends a dialback element: <db:NAME from to [id] [type]>[text]</db:NAME>. */
void s2s_send_db(struct session *s, const char *name, const char *from,
		 const char *to, const char *id, const char *type,
		 const char *text);

#endif
