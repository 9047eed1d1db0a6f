/*
 * fast.h - FAST tokens (XEP-0484) and the HT-SHA-256 mechanisms that log in
 * with them (draft-schmaus-kitten-sasl-ht): a client that logged in fully
 * over SASL2 gets a token; later it logs in with one message, username NUL
 * HMAC(token, "Initiator" || channel binding data), and the server answers
 * HMAC(token, "Responder" || channel binding data).
 *
 * token:   72 random characters [A-Za-z0-9]. Being longer than a SHA-256
 *          block, HMAC keys with SHA-256(token): that digest is what the
 *          store keeps, never the token itself.
 * client:  one SASL2 user-agent id of one account; it holds two slots.
 * slots:   'new' (issued, not used yet) and 'current' (the last one used),
 *          as XEP-0484 section 5.1 describes: a token handed out on a
 *          connection that broke never locks the client out, and using
 *          the new one retires the old.
 * count:   the replay counter of XEP-0484: a count the client gives must
 *          be above every count seen for that token.
 *
 * Records live in the map store "fast_tokens" of the host (LMDB), keyed
 * by user-agent id under the user, so deleting the account deletes them.
 */
#ifndef STARLING_FAST_H
#define STARLING_FAST_H

#include "util.h"

#define NS_FAST "urn:xmpp:fast:0"
#define FAST_TOKEN_LEN 72
#define FAST_UA_ID_MAX 128		/* bytes of a user-agent id we keep */

/* The HT-SHA-256 family, by channel binding. */
enum fast_mech { FAST_NONE, FAST_UNIQ, FAST_ENDP, FAST_EXPR, FAST_NMECH };

/* "HT-SHA-256-NONE" ...; and back: -1 when name is none of them. */
const char *fast_mech_name(enum fast_mech m);
int fast_mech_find(const char *name);
/* The channel binding type of m ("tls-unique", ...), NULL for NONE. */
const char *fast_cb_type(enum fast_mech m);

/* One login with a token, as the client sent it. */
struct fast_attempt {
	const char *host;
	const char *user;		/* prepared localpart */
	const char *ua_id;
	enum fast_mech mech;
	const unsigned char *mac;	/* HMAC(token, "Initiator" || cb) */
	size_t mac_len;
	const unsigned char *cb;	/* channel binding data (NULL: none) */
	size_t cb_len;
	bool has_count;
	uint32_t count;
};

/* What a successful check found. */
struct fast_used {
	unsigned char responder[32];	/* HMAC(token, "Responder" || cb) */
	double expiry;			/* of the token used, wall clock */
};

/* Checks a login at wall-clock time now. 0: the token matched (a token
 * in 'new' moved to 'current', the count was recorded); -EACCES: no
 * token matched, or it was for another mechanism, or the count was
 * replayed; -EKEYEXPIRED: it matched but has expired; -EIO: the store
 * failed. The work is the same whichever token (if any) matches. */
int fast_check(const struct fast_attempt *a, double now, struct fast_used *out);

/* A new token for mech into the client's 'new' slot (replacing one never
 * used), valid for ttl seconds: token gets FAST_TOKEN_LEN characters and
 * a NUL, *expiry its end. 0 or -errno. */
int fast_issue(const char *host, const char *user, const char *ua_id,
	       enum fast_mech mech, double now, double ttl,
	       char token[FAST_TOKEN_LEN + 1], double *expiry);

/* Forgets the client's tokens (XEP-0484 invalidation, a logout). */
int fast_invalidate(const char *host, const char *user, const char *ua_id);

/* Forgets every token of the account (its password changed, or an admin
 * revoked them): 0 or -errno; *n (may be NULL) gets how many clients. */
int fast_revoke_user(const char *host, const char *user, size_t *n);

/* The login parts of an HT initial response: authcid NUL mac. 0, or
 * -EINVAL (no NUL, an empty name, a mac that is not 32 bytes). user
 * gets the authcid (NUL-terminated, unprepared). */
int fast_parse_response(const char *in, size_t len, struct sbuf *user,
			const unsigned char **mac, size_t *mac_len);

#endif
