/*
 * sasl2.h - SASL2 (XEP-0388) with Bind2 (XEP-0386), XEP-0198 inline and
 * FAST (XEP-0484) for the client role: sasl2.c, beside c2s.c, which keeps
 * the exchange itself (mechanisms, limits, failure delays) for both
 * profiles. Internal to the c2s role.
 *
 * profile:  SASL1 (RFC 6120: <auth/>, a stream restart after success) or
 *           SASL2 (<authenticate/>, no restart, inline requests answered
 *           inside <success/>); the exchange under way has one.
 * inline:   what the client asks for in <authenticate/> besides logging
 *           in: resource binding with session features (Bind2), stream
 *           resumption, a FAST token.
 * client:   the SASL2 user-agent id: FAST tokens are per client, and a new
 *           Bind2 session replaces the client's earlier ones.
 */
#ifndef STARLING_SASL2_H
#define STARLING_SASL2_H

#include "fast.h"
#include "session.h"

#define NS_SASL2 "urn:xmpp:sasl:2"
#define NS_BIND2 "urn:xmpp:bind:0"

/* A c2s session's role_data: made when first needed, freed at the end. */
struct c2s_data {
	bool sasl2;			/* the exchange under way is SASL2's */
	struct st_doc *request;		/* its <authenticate/>, held until done */
	char *ua_id;			/* the client's user-agent id, or NULL */
	int fast_mech;			/* -1, or the HT mechanism logged in with */
	struct fast_used fast;		/* what that token login found */
};

struct c2s_data *c2s_data(struct session *s);
void c2s_data_free(struct session *s);

/* c2s.c: the exchange, for both profiles. */
/* Starts an exchange with mech: false when it failed (answered). */
bool c2s_sasl_begin(struct session *s, const char *mech);
/* Feeds the client's base64 text; initial with present false: the client
 * sent no initial response. */
void c2s_sasl_step(struct session *s, const char *b64, bool initial, bool present);
/* Fails the exchange (condition static), with delay and limits. */
void c2s_sasl_failure(struct session *s, const char *condition);
/* Whether the address pays for failed logins (then answered). */
bool c2s_under_penalty(struct session *s);
/* The login succeeded as user (a SASL username; NULL with anonymous). */
void c2s_authenticated(struct session *s, const char *user, const char *authzid,
		       bool anonymous, const struct sbuf *data);
/* Binds resource res: 0, or -1 with the stanza error's type and
 * condition. */
int c2s_bind(struct session *s, const char *res, const char **type,
	     const char **cond);
/* Whether the stream's host logs in with stored accounts (FAST). */
bool c2s_host_internal(const struct session *s);

/* sasl2.c */
/* Adds <authentication/> after SASL1's <mechanisms/> m. */
void sasl2_features(struct session *s, struct st_doc *d, struct st_node *f,
		    const struct st_node *m);
/* A top-level element in NS_SASL2 (does not take doc). */
void sasl2_element(struct session *s, struct st_doc *doc);
/* The exchange succeeded and s is authenticated: the inline requests,
 * <success/>, the features. */
void sasl2_success(struct session *s, const struct sbuf *data);

#endif
