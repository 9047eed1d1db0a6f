/*
 * sasl.c - the server side of PLAIN, SCRAM-SHA-1/-256(-PLUS) and ANONYMOUS.
 *
 * One struct sasl is one exchange. PLAIN and ANONYMOUS are a single
 * step. SCRAM has two:
 * client-first -> server-first (SASL_CONTINUE), client-final ->
 * server-final (SASL_OK). A client that sends no initial response gets
 * one empty challenge first.
 *
 * Failures: syntax -> "malformed-request"; a wrong password or proof, an
 * unknown user, a channel binding mismatch or downgrade ->
 * "not-authorized"; a storage error -> "temporary-auth-failure".
 *
 * The authzid is only collected (sasl_authzid()); the caller decides
 * whether it is acceptable (invalid-authzid).
 *
 * Secrets (passwords, salted passwords, keys, channel binding data) live
 * in buffers wiped with OPENSSL_cleanse before they are freed, and never
 * reach the log.
 */
#include "sasl.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stringprep.h>

#define SASL_MAX_MSG 8192	/* one client message */
#define PLAIN_MAX_PART 1023	/* authzid, authcid, passwd */
#define SCRAM_NONCE_LEN 32	/* random characters we add */
#define SCRAM_SALT_LEN 16	/* default for scram_derive */
#define SCRAM_FAKE_SALT_LEN 16
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SASL_MAX_CB 64		/* channel binding data (SHA-512) */

#define COND_NOT_AUTHORIZED "not-authorized"
#define COND_MALFORMED "malformed-request"
#define COND_TEMPORARY "temporary-auth-failure"

enum sasl_state { ST_START, ST_FINAL, ST_DONE };

#define ANON_TRACE_MAX 255	/* RFC 4505: up to 255 characters */

struct mech_desc {
	const char *name;
	bool scram;
	bool plus;
	bool anonymous;
	enum sasl_hash hash;
};

static const struct mech_desc mechs[] = {
	{ "PLAIN", false, false, false, SASL_HASH_SHA256 },
	{ "SCRAM-SHA-1", true, false, false, SASL_HASH_SHA1 },
	{ "SCRAM-SHA-1-PLUS", true, true, false, SASL_HASH_SHA1 },
	{ "SCRAM-SHA-256", true, false, false, SASL_HASH_SHA256 },
	{ "SCRAM-SHA-256-PLUS", true, true, false, SASL_HASH_SHA256 },
	{ "ANONYMOUS", false, false, true, 0 },
};

struct sasl {
	struct sasl_params params;	/* copied; ctx and secret borrowed */
	const struct mech_desc *mech;
	enum sasl_state state;
	bool sent_empty;		/* the empty challenge went out */
	bool known;			/* creds are the user's, not fake */
	bool cb_unsupported;		/* failed on an unknown binding type */
	const char *condition;
	char *username;
	char *authzid;
	char *test_nonce;		/* sasl_set_nonce_for_test() */
	struct scram_creds creds;
	struct sbuf cbind;		/* expected c=: gs2 header + cb data */
	struct sbuf client_first_bare;
	struct sbuf server_first;
	struct sbuf nonce;		/* client nonce + server nonce */
};

/* ---- hashes ---- */

static const EVP_MD *hash_md(enum sasl_hash h)
{
	return h == SASL_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

static size_t hash_len(enum sasl_hash h)
{
	return h == SASL_HASH_SHA1 ? 20 : 32;
}

/* A login's hashing goes through digests fetched once and one reused
 * context: OpenSSL 3 looks the algorithm up by name on every HMAC() and
 * on every EVP_Digest with EVP_sha256(), which cost a SCRAM login more
 * than the hashing itself (callgrind: 26,000 instructions an HMAC). The
 * server is single-threaded. */
static EVP_MD_CTX *md_ctx(enum sasl_hash h, const EVP_MD **md)
{
	static EVP_MD *fetched[2];
	static EVP_MD_CTX *ctx;
	int i = h == SASL_HASH_SHA1 ? 0 : 1;

	if (!fetched[i])
		fetched[i] = EVP_MD_fetch(NULL, i ? "SHA256" : "SHA1", NULL);
	if (!ctx)
		ctx = EVP_MD_CTX_new();
	if (!fetched[i] || !ctx) {
		fputs("starling: cannot set up SHA-1/SHA-256\n", stderr);
		abort();
	}
	*md = fetched[i];
	return ctx;
}

static void digest_parts(enum sasl_hash h, const void *a, size_t alen,
			 const void *b, size_t blen, unsigned char *out)
{
	const EVP_MD *md;
	EVP_MD_CTX *ctx = md_ctx(h, &md);

	if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1) {
		fputs("starling: digest failed\n", stderr);
		abort();
	}
}

static void digest(enum sasl_hash h, const void *data, size_t len,
		   unsigned char *out)
{
	digest_parts(h, data, len, NULL, 0, out);
}

/* HMAC (RFC 2104): H(K ^ opad || H(K ^ ipad || data)), both hashes
 * with a 64-byte block. */
static void hmac(enum sasl_hash h, const void *key, size_t klen,
		 const void *data, size_t dlen, unsigned char *out)
{
	unsigned char k[64] = { 0 }, pad[64], inner[SASL_MAX_KEY];

	if (klen > sizeof(k))
		digest(h, key, klen, k);
	else
		memcpy(k, key, klen);
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	digest_parts(h, pad, sizeof(pad), data, dlen, inner);
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	digest_parts(h, pad, sizeof(pad), inner, hash_len(h), out);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(inner, sizeof(inner));
}

/* SaltedPassword := Hi(password, salt, i), which is PBKDF2-HMAC. */
static void salted_password(enum sasl_hash h, const char *pw, size_t pwlen,
			    const unsigned char *salt, size_t salt_len,
			    unsigned iterations, unsigned char *out)
{
	if (!PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)salt_len,
			       (int)iterations, hash_md(h),
			       (int)hash_len(h), out)) {
		fputs("starling: PBKDF2 failed\n", stderr);
		abort();
	}
}

/* ClientKey := HMAC(SaltedPassword, "Client Key"); the caller wipes it. */
static void client_key(enum sasl_hash h, const unsigned char *salted,
		       unsigned char *out)
{
	hmac(h, salted, hash_len(h), "Client Key", 10, out);
}

static void sbuf_wipe(struct sbuf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	sbuf_free(b);
}

/* ---- strings ---- */

static int saslprep_flags(const char *s, struct sbuf *out, int flags)
{
	char *res = NULL;
	int rc;

	rc = stringprep_profile(s, &res, "SASLprep",
				(Stringprep_profile_flags)flags);
	if (rc != STRINGPREP_OK) {
		free(res);
		return -EINVAL;
	}
	sbuf_adds(out, res);
	OPENSSL_cleanse(res, strlen(res));
	free(res);
	return 0;
}

/* Stored-string semantics: unassigned code points are refused. */
int sasl_saslprep(const char *s, struct sbuf *out)
{
	return saslprep_flags(s, out, STRINGPREP_NO_UNASSIGNED);
}

/* RFC 5802 saslname: "=2C" -> ',', "=3D" -> '=', any other '=' or a NUL
 * is an error. The result must be non-empty UTF-8. */
static int saslname_decode(const char *s, size_t n, struct sbuf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0' || s[i] == ',')
			return -EINVAL;
		if (s[i] != '=') {
			sbuf_addc(out, s[i]);
			continue;
		}
		if (n - i < 3)
			return -EINVAL;
		if (s[i + 1] == '2' && s[i + 2] == 'C')
			sbuf_addc(out, ',');
		else if (s[i + 1] == '3' && s[i + 2] == 'D')
			sbuf_addc(out, '=');
		else
			return -EINVAL;
		i += 2;
	}
	if (out->len == 0 || !utf8_valid(out->p, out->len))
		return -EINVAL;
	return 0;
}

/* ---- credentials ---- */

int scram_derive(enum sasl_hash hash, const char *password,
		 const unsigned char *salt, size_t salt_len,
		 unsigned iterations, struct scram_creds *out)
{
	unsigned char salted[SASL_MAX_KEY], ckey[SASL_MAX_KEY];
	struct sbuf pw;
	int rc;

	if ((hash != SASL_HASH_SHA1 && hash != SASL_HASH_SHA256) ||
	    iterations == 0 || iterations > INT32_MAX ||
	    (salt && (salt_len == 0 || salt_len > SASL_MAX_SALT)))
		return -EINVAL;
	sbuf_init(&pw);
	rc = sasl_saslprep(password, &pw);
	if (rc < 0)
		goto out;
	if (pw.len == 0) {
		rc = -EINVAL;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	out->hash = hash;
	out->iterations = iterations;
	out->salt_len = salt ? salt_len : SCRAM_SALT_LEN;
	if (salt)
		memcpy(out->salt, salt, salt_len);
	else
		random_bytes(out->salt, SCRAM_SALT_LEN);
	salted_password(hash, pw.p, pw.len, out->salt, out->salt_len,
			iterations, salted);
	client_key(hash, salted, ckey);
	digest(hash, ckey, hash_len(hash), out->stored_key);
	hmac(hash, salted, hash_len(hash), "Server Key", 10, out->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
out:
	sbuf_wipe(&pw);
	return rc;
}

/* Credentials for a user we do not have: a salt that is stable for the
 * name (so asking twice gives the same answer) and random keys. */
static void fake_creds(const struct sasl_params *p, enum sasl_hash hash,
		       const char *user, struct scram_creds *out)
{
	static unsigned char proc_secret[32];
	static bool have_proc_secret;
	unsigned char mac[32];
	const unsigned char *secret = p->secret;

	if (!secret) {
		/* No configured secret: one per process. Stable while the
		 * server runs, which is what the salt must be. */
		if (!have_proc_secret) {
			random_bytes(proc_secret, sizeof(proc_secret));
			have_proc_secret = true;
		}
		secret = proc_secret;
	}
	memset(out, 0, sizeof(*out));
	hmac(SASL_HASH_SHA256, secret, 32, user, strlen(user), mac);
	out->hash = hash;
	out->iterations = p->fake_iterations ? p->fake_iterations
					     : SCRAM_DEFAULT_ITERATIONS;
	out->salt_len = SCRAM_FAKE_SALT_LEN;
	memcpy(out->salt, mac, SCRAM_FAKE_SALT_LEN);
	random_bytes(out->stored_key, sizeof(out->stored_key));
	random_bytes(out->server_key, sizeof(out->server_key));
	OPENSSL_cleanse(mac, sizeof(mac));
}

static bool creds_sane(const struct scram_creds *c, enum sasl_hash hash)
{
	return c->hash == hash && c->iterations > 0 &&
	       c->iterations <= INT32_MAX && c->salt_len > 0 &&
	       c->salt_len <= SASL_MAX_SALT;
}

/* Fills s->creds for s->username: 0 (real or fake), or -EIO. */
static int load_creds(struct sasl *s)
{
	enum sasl_hash hash = s->mech->hash;
	int rc;

	rc = s->params.lookup(s->params.ctx, s->username, hash, &s->creds);
	if (rc == -ENOENT && !s->mech->scram) {
		/* PLAIN checks any credentials: an account imported from
		 * another server may have SHA-1 ones only. */
		rc = s->params.lookup(s->params.ctx, s->username,
				      SASL_HASH_SHA1, &s->creds);
		if (rc == 0)
			hash = SASL_HASH_SHA1;
	}
	if (rc == 0 && creds_sane(&s->creds, hash)) {
		s->known = true;
		return 0;
	}
	if (rc == -ENOENT) {
		fake_creds(&s->params, hash, s->username, &s->creds);
		s->known = false;
		return 0;
	}
	log_warn("sasl %s: credential lookup failed (%d)", s->mech->name,
		 rc ? rc : -EINVAL);
	return -EIO;
}

/* ---- the exchange ---- */

static const struct mech_desc *mech_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(mechs); i++)
		if (strcmp(mechs[i].name, name) == 0)
			return &mechs[i];
	return NULL;
}

bool sasl_mech_known(const char *mech)
{
	return mech && mech_find(mech) != NULL;
}

struct sasl *sasl_new(const char *mech, const struct sasl_params *params)
{
	const struct mech_desc *m = mech ? mech_find(mech) : NULL;
	struct sasl *s;

	if (!m || !params->lookup)
		return NULL;
	/* ANONYMOUS exists only on hosts of temporary accounts. */
	if (m->anonymous && !params->anonymous)
		return NULL;
	/* -PLUS exists only where it was offered and can be bound. */
	if (m->plus && (!params->plus_offered || !params->cb_data))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->params = *params;
	s->mech = m;
	s->state = ST_START;
	sbuf_init(&s->cbind);
	sbuf_init(&s->client_first_bare);
	sbuf_init(&s->server_first);
	sbuf_init(&s->nonce);
	return s;
}

void sasl_free(struct sasl *s)
{
	if (!s)
		return;
	free(s->username);
	free(s->authzid);
	free(s->test_nonce);
	sbuf_wipe(&s->cbind);
	sbuf_wipe(&s->client_first_bare);
	sbuf_wipe(&s->server_first);
	sbuf_wipe(&s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

void sasl_set_nonce_for_test(struct sasl *s, const char *server_nonce)
{
	free(s->test_nonce);
	s->test_nonce = xstrdup(server_nonce);
}

const char *sasl_condition(const struct sasl *s)
{
	return s->condition;
}

const char *sasl_username(const struct sasl *s)
{
	return s->state == ST_DONE && !s->condition ? s->username : NULL;
}

bool sasl_anonymous(const struct sasl *s)
{
	return s->mech->anonymous && s->state == ST_DONE && !s->condition;
}

const char *sasl_authzid(const struct sasl *s)
{
	return s->state == ST_DONE && !s->condition ? s->authzid : NULL;
}

static enum sasl_status fail(struct sasl *s, const char *condition)
{
	s->condition = condition;
	s->state = ST_DONE;
	OPENSSL_cleanse(&s->creds, sizeof(s->creds));
	return SASL_FAIL;
}

/* ---- PLAIN (RFC 4616) ---- */

/* Whether password matches creds; the same work whatever the creds. */
static bool plain_verify(const struct scram_creds *c, const struct sbuf *pw)
{
	unsigned char salted[SASL_MAX_KEY], ckey[SASL_MAX_KEY];
	unsigned char stored[SASL_MAX_KEY];
	size_t hl = hash_len(c->hash);
	bool ok;

	salted_password(c->hash, pw->p, pw->len, c->salt, c->salt_len,
			c->iterations, salted);
	client_key(c->hash, salted, ckey);
	digest(c->hash, ckey, hl, stored);
	ok = ct_memcmp(stored, c->stored_key, hl) == 0;
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	OPENSSL_cleanse(stored, sizeof(stored));
	return ok;
}

static enum sasl_status plain_step(struct sasl *s, const char *in,
				   size_t len)
{
	const char *end = in + len, *authcid, *pw, *nul1, *nul2;
	struct sbuf user, pass;
	enum sasl_status st;
	char *raw = NULL;

	nul1 = memchr(in, '\0', len);
	if (!nul1)
		return fail(s, COND_MALFORMED);
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', (size_t)(end - authcid));
	if (!nul2)
		return fail(s, COND_MALFORMED);
	pw = nul2 + 1;
	if (memchr(pw, '\0', (size_t)(end - pw)) || nul2 == authcid ||
	    pw == end || nul1 - in > PLAIN_MAX_PART ||
	    nul2 - authcid > PLAIN_MAX_PART || end - pw > PLAIN_MAX_PART ||
	    !utf8_valid(in, (size_t)(nul1 - in)))
		return fail(s, COND_MALFORMED);
	sbuf_init(&user);
	sbuf_init(&pass);
	raw = xstrndup(pw, (size_t)(end - pw));
	/* Query semantics (unassigned allowed): a password that could
	 * never have been stored simply does not match. */
	if (saslprep_flags(authcid, &user, 0) < 0 ||
	    saslprep_flags(raw, &pass, 0) < 0 || user.len == 0 ||
	    pass.len == 0) {
		st = fail(s, COND_NOT_AUTHORIZED);
		goto out;
	}
	s->username = xstrdup(user.p);
	if (load_creds(s) < 0) {
		st = fail(s, COND_TEMPORARY);
		goto out;
	}
	if (!s->known && s->params.create) {
		/* The test-only backend: the first login makes the account. */
		if (s->params.create(s->params.ctx, s->username, raw) != 0) {
			st = fail(s, COND_NOT_AUTHORIZED);
			goto out;
		}
	} else if (!plain_verify(&s->creds, &pass) || !s->known) {
		st = fail(s, COND_NOT_AUTHORIZED);
		goto out;
	}
	if (nul1 > in)
		s->authzid = xstrndup(in, (size_t)(nul1 - in));
	s->state = ST_DONE;
	OPENSSL_cleanse(&s->creds, sizeof(s->creds));
	st = SASL_OK;
out:
	OPENSSL_cleanse(raw, (size_t)(end - pw));
	free(raw);
	sbuf_wipe(&user);
	sbuf_wipe(&pass);
	return st;
}

/* ---- ANONYMOUS (RFC 4505) ---- */

/* The message is optional trace information (an email address or up to
 * 255 characters of other text): checked, never kept or logged. The
 * caller chooses the identity (sasl_username() stays NULL). */
static enum sasl_status anonymous_step(struct sasl *s, const char *in,
				       size_t len)
{
	size_t chars = 0;

	if (memchr(in, '\0', len) || !utf8_valid(in, len))
		return fail(s, COND_MALFORMED);
	for (size_t i = 0; i < len; i++)
		chars += ((unsigned char)in[i] & 0xC0) != 0x80;
	if (chars > ANON_TRACE_MAX)
		return fail(s, COND_MALFORMED);
	s->state = ST_DONE;
	return SASL_OK;
}

/* ---- SCRAM (RFC 5802, RFC 7677) ---- */

/* A cursor over one SCRAM message: attributes "x=value" split by ','. */
struct attr_cursor {
	const char *p, *end;
};

/* The next attribute: its name in *name, its value in [*v, *v + *vlen).
 * 0, or -EINVAL when there is none or it is not ALPHA "=" value. */
static int attr_next(struct attr_cursor *c, char *name, const char **v,
		     size_t *vlen)
{
	const char *comma;

	if (c->end - c->p < 2 || c->p[1] != '=' ||
	    !((c->p[0] >= 'a' && c->p[0] <= 'z') ||
	      (c->p[0] >= 'A' && c->p[0] <= 'Z')))
		return -EINVAL;
	*name = c->p[0];
	*v = c->p + 2;
	comma = memchr(*v, ',', (size_t)(c->end - *v));
	*vlen = (size_t)((comma ? comma : c->end) - *v);
	c->p = comma ? comma + 1 : c->end;
	if (comma && c->p == c->end)
		return -EINVAL;	/* a trailing comma */
	return 0;
}

static bool cb_name_valid(const char *v, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

/* printable = %x21-2B / %x2D-7E */
static bool nonce_valid(const char *v, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
			return false;
	return true;
}

/* Checks the channel binding choice of the gs2 header against the
 * mechanism and what was offered, and sets s->cbind to what c= must be:
 * the header, plus the connection's binding data for "p=". */
static const char *gs2_policy(struct sasl *s, char flag, const char *cb,
			      size_t cblen)
{
	unsigned char data[SASL_MAX_CB];
	size_t dlen = sizeof(data);
	char type[33];

	if (flag == 'n' || flag == 'y') {
		if (s->mech->plus)
			return COND_NOT_AUTHORIZED;
		/* "y": the client could bind but thinks we cannot; we
		 * offered -PLUS, so someone removed it on the way. */
		if (flag == 'y' && s->params.plus_offered &&
		    !s->params.accept_y_with_plus)
			return COND_NOT_AUTHORIZED;
		return NULL;
	}
	if (!s->mech->plus || !s->params.cb_data)
		return COND_NOT_AUTHORIZED;
	memcpy(type, cb, cblen);
	type[cblen] = '\0';
	if (s->params.cb_data(s->params.ctx, type, data, &dlen) != 0 ||
	    dlen == 0 || dlen > sizeof(data)) {
		OPENSSL_cleanse(data, sizeof(data));
		s->cb_unsupported = true;
		return COND_NOT_AUTHORIZED;
	}
	sbuf_add(&s->cbind, data, dlen);
	OPENSSL_cleanse(data, sizeof(data));
	return NULL;
}

/* Parses gs2-header = gs2-cbind-flag "," [authzid] ",". Sets s->authzid
 * and s->cbind; *rest points past the header. NULL or a condition. */
static const char *gs2_parse(struct sasl *s, const char *in, size_t len,
			     const char **rest)
{
	const char *p = in, *end = in + len, *comma, *cb = NULL;
	size_t cblen = 0;
	char flag;

	comma = memchr(p, ',', len);
	if (!comma)
		return COND_MALFORMED;
	if (comma - p == 1 && (p[0] == 'n' || p[0] == 'y')) {
		flag = p[0];
	} else if (comma - p > 2 && p[0] == 'p' && p[1] == '=') {
		flag = 'p';
		cb = p + 2;
		cblen = (size_t)(comma - cb);
		if (!cb_name_valid(cb, cblen))
			return COND_MALFORMED;
	} else {
		return COND_MALFORMED;
	}
	p = comma + 1;
	comma = memchr(p, ',', (size_t)(end - p));
	if (!comma)
		return COND_MALFORMED;
	if (comma > p) {
		struct sbuf az;

		if (comma - p < 3 || p[0] != 'a' || p[1] != '=')
			return COND_MALFORMED;
		sbuf_init(&az);
		if (saslname_decode(p + 2, (size_t)(comma - p - 2), &az) < 0) {
			sbuf_free(&az);
			return COND_MALFORMED;
		}
		s->authzid = az.p;	/* takes the buffer */
	}
	*rest = comma + 1;
	sbuf_add(&s->cbind, in, (size_t)(*rest - in));
	return gs2_policy(s, flag, cb, cblen);
}

/* n=saslname: unescaped, then SASLprepped (query semantics) into
 * s->username. NULL or a condition. */
static const char *scram_username(struct sasl *s, const char *v,
				  size_t vlen)
{
	struct sbuf name, prepped;
	const char *cond = NULL;

	sbuf_init(&name);
	sbuf_init(&prepped);
	if (saslname_decode(v, vlen, &name) < 0) {
		cond = COND_MALFORMED;
		goto out;
	}
	if (saslprep_flags(name.p, &prepped, 0) < 0 || prepped.len == 0) {
		cond = COND_NOT_AUTHORIZED;
		goto out;
	}
	s->username = xstrdup(prepped.p);
out:
	sbuf_free(&name);
	sbuf_free(&prepped);
	return cond;
}

/* client-first-message-bare = [reserved-mext ","] username "," nonce
 * ["," extensions]. Sets s->username and the client nonce. */
static const char *scram_parse_bare(struct sasl *s, const char *p,
				    const char *end)
{
	struct attr_cursor c = { p, end };
	const char *v, *cond;
	size_t vlen;
	char a;

	if (attr_next(&c, &a, &v, &vlen) < 0 || a != 'n')
		return COND_MALFORMED;	/* "m=" (reserved) fails here too */
	cond = scram_username(s, v, vlen);
	if (cond)
		return cond;
	if (attr_next(&c, &a, &v, &vlen) < 0 || a != 'r' ||
	    !nonce_valid(v, vlen))
		return COND_MALFORMED;
	sbuf_add(&s->nonce, v, vlen);
	while (c.p < c.end) {	/* extensions: ignored, but well-formed */
		if (attr_next(&c, &a, &v, &vlen) < 0 || vlen == 0 || a == 'm')
			return COND_MALFORMED;
	}
	return NULL;
}

static void scram_server_first(struct sasl *s, struct sbuf *out)
{
	if (s->test_nonce) {
		sbuf_adds(&s->nonce, s->test_nonce);
	} else {
		char rnd[SCRAM_NONCE_LEN + 1];

		random_id(rnd, SCRAM_NONCE_LEN);
		sbuf_adds(&s->nonce, rnd);
	}
	sbuf_adds(&s->server_first, "r=");
	sbuf_add(&s->server_first, s->nonce.p, s->nonce.len);
	sbuf_adds(&s->server_first, ",s=");
	b64_encode(&s->server_first, s->creds.salt, s->creds.salt_len);
	sbuf_printf(&s->server_first, ",i=%u", s->creds.iterations);
	sbuf_add(out, s->server_first.p, s->server_first.len);
}

static enum sasl_status scram_first(struct sasl *s, const char *in,
				    size_t len, struct sbuf *out)
{
	const char *bare = NULL, *cond;

	if (memchr(in, '\0', len))
		return fail(s, COND_MALFORMED);
	cond = gs2_parse(s, in, len, &bare);
	if (cond)
		return fail(s, cond);
	cond = scram_parse_bare(s, bare, in + len);
	if (cond)
		return fail(s, cond);
	sbuf_add(&s->client_first_bare, bare, (size_t)(in + len - bare));
	if (load_creds(s) < 0)
		return fail(s, COND_TEMPORARY);
	scram_server_first(s, out);
	s->state = ST_FINAL;
	return SASL_CONTINUE;
}

/* Splits client-final into the part without proof and the proof.
 * 0 or -EINVAL. */
static int final_split(const char *in, size_t len, size_t *wo_len,
		       const char **proof, size_t *proof_len)
{
	const char *p = NULL;

	for (size_t i = len; i >= 3; i--) {
		if (memcmp(in + i - 3, ",p=", 3) == 0) {
			p = in + i - 3;
			break;
		}
	}
	if (!p || memchr(p + 3, ',', (size_t)(in + len - p - 3)))
		return -EINVAL;
	*wo_len = (size_t)(p - in);
	*proof = p + 3;
	*proof_len = (size_t)(in + len - *proof);
	return 0;
}

/* channel-binding "," nonce ["," extensions]: checks c= and r=. */
static const char *final_check_attrs(struct sasl *s, const char *in,
				     size_t len)
{
	struct attr_cursor c = { in, in + len };
	struct sbuf cb;
	const char *v;
	size_t vlen;
	char a;
	bool ok;

	if (attr_next(&c, &a, &v, &vlen) < 0 || a != 'c')
		return COND_MALFORMED;
	sbuf_init(&cb);
	if (b64_decode(&cb, v, vlen) < 0 || vlen == 0) {
		sbuf_wipe(&cb);
		return COND_MALFORMED;
	}
	ok = cb.len == s->cbind.len &&
	     ct_memcmp(cb.p, s->cbind.p, cb.len) == 0;
	sbuf_wipe(&cb);
	if (attr_next(&c, &a, &v, &vlen) < 0 || a != 'r')
		return COND_MALFORMED;
	while (c.p < c.end) {
		const char *ev;
		size_t elen;
		char ea;

		if (attr_next(&c, &ea, &ev, &elen) < 0 || elen == 0 ||
		    ea == 'm')
			return COND_MALFORMED;
	}
	if (!ok || vlen != s->nonce.len || memcmp(v, s->nonce.p, vlen) != 0)
		return COND_NOT_AUTHORIZED;
	return NULL;
}

/* AuthMessage := client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof. True when the proof is right;
 * sig (hash length) then gets the ServerSignature. */
static bool scram_verify(struct sasl *s, const char *wo, size_t wo_len,
			 const unsigned char *proof, unsigned char *sig)
{
	enum sasl_hash h = s->mech->hash;
	size_t hl = hash_len(h);
	unsigned char csig[SASL_MAX_KEY], ckey[SASL_MAX_KEY];
	unsigned char stored[SASL_MAX_KEY];
	struct sbuf am;
	bool ok;

	sbuf_init(&am);
	sbuf_add(&am, s->client_first_bare.p, s->client_first_bare.len);
	sbuf_addc(&am, ',');
	sbuf_add(&am, s->server_first.p, s->server_first.len);
	sbuf_addc(&am, ',');
	sbuf_add(&am, wo, wo_len);
	hmac(h, s->creds.stored_key, hl, am.p, am.len, csig);
	for (size_t i = 0; i < hl; i++)
		ckey[i] = proof[i] ^ csig[i];
	digest(h, ckey, hl, stored);
	ok = ct_memcmp(stored, s->creds.stored_key, hl) == 0;
	hmac(h, s->creds.server_key, hl, am.p, am.len, sig);
	OPENSSL_cleanse(csig, sizeof(csig));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	OPENSSL_cleanse(stored, sizeof(stored));
	sbuf_wipe(&am);
	return ok;
}

static enum sasl_status scram_final(struct sasl *s, const char *in,
				    size_t len, struct sbuf *out)
{
	unsigned char sig[SASL_MAX_KEY];
	const char *pv, *cond;
	size_t wo_len, pvlen;
	struct sbuf proof;
	enum sasl_status st;

	if (memchr(in, '\0', len) ||
	    final_split(in, len, &wo_len, &pv, &pvlen) < 0)
		return fail(s, COND_MALFORMED);
	cond = final_check_attrs(s, in, wo_len);
	if (cond)
		return fail(s, cond);
	sbuf_init(&proof);
	if (b64_decode(&proof, pv, pvlen) < 0 ||
	    proof.len != hash_len(s->mech->hash)) {
		st = fail(s, COND_MALFORMED);
		goto out;
	}
	if (!scram_verify(s, in, wo_len, (unsigned char *)proof.p, sig) ||
	    !s->known) {
		st = fail(s, COND_NOT_AUTHORIZED);
		goto out;
	}
	sbuf_adds(out, "v=");
	b64_encode(out, sig, hash_len(s->mech->hash));
	s->state = ST_DONE;
	OPENSSL_cleanse(&s->creds, sizeof(s->creds));
	st = SASL_OK;
out:
	OPENSSL_cleanse(sig, sizeof(sig));
	sbuf_wipe(&proof);
	return st;
}

enum sasl_status sasl_step(struct sasl *s, const char *in, size_t len,
			   struct sbuf *out)
{
	sbuf_reset(out);
	if (s->state == ST_DONE)
		return s->condition ? SASL_FAIL : fail(s, COND_MALFORMED);
	if (len > SASL_MAX_MSG)
		return fail(s, COND_MALFORMED);
	if (s->mech->anonymous)
		return anonymous_step(s, in, len);	/* the trace may be empty */
	if (s->state == ST_START && len == 0) {
		/* No initial response: ask for it once. */
		if (s->sent_empty)
			return fail(s, COND_MALFORMED);
		s->sent_empty = true;
		return SASL_CONTINUE;
	}
	if (!s->mech->scram)
		return plain_step(s, in, len);
	if (s->state == ST_START)
		return scram_first(s, in, len, out);
	return scram_final(s, in, len, out);
}

bool sasl_cb_type_unsupported(const struct sasl *s)
{
	return s && s->cb_unsupported;
}
