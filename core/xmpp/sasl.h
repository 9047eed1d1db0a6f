/*
 * sasl.h - the server side of SASL: PLAIN (RFC 4616), SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) and their -PLUS variants with
 * channel binding (tls-exporter, RFC 9266; tls-server-end-point, RFC 5929),
 * and ANONYMOUS (RFC 4505) where the caller allows it.
 *
 * credentials: what the accounts store keeps for a user and one hash:
 *              salt, iteration count, StoredKey, ServerKey. Never a password.
 * exchange:    one authentication attempt (struct sasl), fed the client's
 *              decoded messages one by one.
 *
 * An unknown user goes through the same exchange as a known one (SCRAM
 * answers with a salt derived from a server secret) and fails with the
 * same not-authorized, so the failure says nothing about which it was.
 */
#ifndef STARLING_SASL_H
#define STARLING_SASL_H

#include "util.h"

enum sasl_hash { SASL_HASH_SHA1 = 1, SASL_HASH_SHA256 = 2 };

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"

#define SASL_MAX_KEY 32		/* SHA-256 digest */
#define SASL_MAX_SALT 64

struct scram_creds {
	enum sasl_hash hash;
	unsigned iterations;
	size_t salt_len;
	unsigned char salt[SASL_MAX_SALT];
	unsigned char stored_key[SASL_MAX_KEY];
	unsigned char server_key[SASL_MAX_KEY];
};

/* Derives credentials for password (UTF-8, SASLprepped here) with a fresh
 * random 16-byte salt when salt is NULL. 0 or -EINVAL (SASLprep fails). */
int scram_derive(enum sasl_hash hash, const char *password,
		 const unsigned char *salt, size_t salt_len,
		 unsigned iterations, struct scram_creds *out);

/* SASLprep (RFC 4013, stored-string rules: unassigned code points are
 * refused) of s, appended to out; -EINVAL when prohibited. */
int sasl_saslprep(const char *s, struct sbuf *out);

struct sasl_params {
	/* Looks up the credentials of user (already nodeprepped by the
	 * callback's owner as it sees fit) for one hash: 0, or -ENOENT. */
	int (*lookup)(void *ctx, const char *user, enum sasl_hash hash,
		      struct scram_creds *out);
	void *ctx;
	/* Channel binding data of the connection for a type
	 * ("tls-exporter", "tls-server-end-point"): 0, or -ENOTSUP. *len
	 * is the size of out (64) on entry, the bytes written on return.
	 * NULL when the connection has no TLS. */
	int (*cb_data)(void *ctx, const char *type, unsigned char *out,
		       size_t *len);
	/* Whether the server offered -PLUS mechanisms on this connection
	 * (a client saying "y" then is a downgrade: fail). */
	bool plus_offered;
	/* Accept "y" even though -PLUS was offered. RFC 5802 calls that a
	 * downgrade; but a client whose only binding types are ones we do not
	 * offer (tls-unique, undefined on TLS 1.3) also says "y" (XEP-0440),
	 * and such clients (slixmpp 1.8) must still log in. */
	bool accept_y_with_plus;
	/* PLAIN for a user the lookup does not know: makes the account
	 * from the password given (as the client sent it) and succeeds when
	 * that returns 0. Only the test-only "insecure" backend sets it;
	 * NULL: an unknown user fails like a wrong password. */
	int (*create)(void *ctx, const char *user, const char *password);
	/* Whether ANONYMOUS may be used (sasl_new refuses it otherwise). */
	bool anonymous;
	/* 32 bytes known only to this server, for unknown users' fake
	 * salts. */
	const unsigned char *secret;
	unsigned fake_iterations;
};

enum sasl_status { SASL_CONTINUE, SASL_OK, SASL_FAIL };

struct sasl;

/* NULL for a mechanism we do not have (invalid-mechanism), and for a
 * -PLUS one unless params->plus_offered and params->cb_data. params is
 * copied; its ctx and secret are borrowed for the life of the exchange. */
struct sasl *sasl_new(const char *mech, const struct sasl_params *params);
void sasl_free(struct sasl *s);

/* Feeds the client's next message (decoded; the initial response may be
 * empty). On SASL_CONTINUE out holds the challenge, on SASL_OK the
 * additional data with success (SCRAM's server-final), on SASL_FAIL
 * sasl_condition() names the failure (RFC 6120 6.5: "not-authorized",
 * "malformed-request", "invalid-authzid", "encryption-required", ...). */
enum sasl_status sasl_step(struct sasl *s, const char *in, size_t len,
			   struct sbuf *out);
const char *sasl_condition(const struct sasl *s);
/* After SASL_OK: the authenticated username (as the lookup saw it). */
const char *sasl_username(const struct sasl *s);
/* After SASL_OK: whether it was ANONYMOUS (no username: the caller
 * gives the login an identity). */
bool sasl_anonymous(const struct sasl *s);
/* After SASL_OK: the authzid the client gave, or NULL. */
const char *sasl_authzid(const struct sasl *s);

/* Tests only: the server's part of the SCRAM nonce (normally random),
 * so the RFC examples can be replayed. Call before the first step. */
void sasl_set_nonce_for_test(struct sasl *s, const char *server_nonce);

/* After SASL_FAIL: whether it failed only because the client asked for a
 * channel binding type this connection does not have (not a wrong
 * credential: callers need not count it as a failed attempt). */
bool sasl_cb_type_unsupported(const struct sasl *s);

/* Whether mech is a mechanism name we implement. */
bool sasl_mech_known(const char *mech);

#endif
