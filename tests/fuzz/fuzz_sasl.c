/*
 * fuzz_sasl.c - the server side of SASL (sasl.c): PLAIN, SCRAM-SHA-1,
 * SCRAM-SHA-256 and the -PLUS variants, fed the client's messages.
 *
 * Input: one control byte, then the client's messages separated by 0xff
 * (a byte no message we accept can hold).
 *   bits 0-2  the mechanism: PLAIN, SCRAM-SHA-1, SCRAM-SHA-1-PLUS,
 *             SCRAM-SHA-256, SCRAM-SHA-256-PLUS, two names we do not have
 *             (sasl_new() must refuse them), or 7: SASLprep and
 *             scram_derive() on each message instead of an exchange
 *   bit 3     plus_offered
 *   bit 4     accept_y_with_plus
 *   bit 5     the connection has TLS (cb_data is set): tls-exporter
 *   bit 6     and tls-server-end-point too
 *   bit 7     a random server nonce (else the RFC 5802 / RFC 7677 one,
 *             so their example exchanges replay and pass)
 *
 * Accounts: "user" / "pencil" with the salts and iteration counts of the
 * RFC examples; "juliet" / "r0m30" (one iteration, cheap); "error" makes
 * the lookup fail, "insane" returns credentials no exchange may use;
 * everyone else is unknown.
 *
 * Checks: sasl_new() refuses exactly what it should; after success or
 * failure every further step fails; at most two challenges; a failure
 * names one of our conditions; success only for a known account, with
 * PLAIN only for its password (SASLprepped), with -PLUS only when c=
 * carried our binding data, and never for "y" when -PLUS was offered and
 * "y" is not accepted; SCRAM's success data is v= and a signature.
 */
#include "fuzz_common.h"
#include "sasl.h"

#include <errno.h>
#include <stringprep.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define SF_PLUS_OFFERED	0x08
#define SF_ACCEPT_Y	0x10
#define SF_TLS		0x20
#define SF_END_POINT	0x40
#define SF_RANDOM_NONCE	0x80
#define SF_SEP		0xff
#define SF_PREP_MODE	7

static const char *const sf_mechs[8] = {
	"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
	"SCRAM-SHA-256-PLUS", "SCRAM-SHA-512", "plain", NULL,
};

static const unsigned char sf_secret[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
static const unsigned char sf_exporter[32] = "exporter-exporter-exporter-expor";
static const unsigned char sf_end_point[32] = "end-point-end-point-end-point-en";

static struct scram_creds sf_user_sha1, sf_user_sha256;
static struct scram_creds sf_juliet_sha1, sf_juliet_sha256;

static void sf_salt(const char *b64, struct sbuf *out)
{
	sbuf_reset(out);
	FUZZ_CHECK(b64_decode(out, b64, strlen(b64)) == 0);
}

static void sf_init(void)
{
	static bool done;
	struct sbuf salt;

	if (done)
		return;
	done = true;
	fuzz_quiet_log();
	sbuf_init(&salt);
	sf_salt("QSXCR+Q6sek8bf92", &salt);		/* RFC 5802 */
	FUZZ_CHECK(scram_derive(SASL_HASH_SHA1, "pencil",
				(unsigned char *)salt.p, salt.len, 4096,
				&sf_user_sha1) == 0);
	sf_salt("W22ZaJ0SNY7soEsUEjb6gQ==", &salt);	/* RFC 7677 */
	FUZZ_CHECK(scram_derive(SASL_HASH_SHA256, "pencil",
				(unsigned char *)salt.p, salt.len, 4096,
				&sf_user_sha256) == 0);
	FUZZ_CHECK(scram_derive(SASL_HASH_SHA1, "r0m30",
				(const unsigned char *)"juliet-salt", 11, 1,
				&sf_juliet_sha1) == 0);
	FUZZ_CHECK(scram_derive(SASL_HASH_SHA256, "r0m30",
				(const unsigned char *)"juliet-salt", 11, 1,
				&sf_juliet_sha256) == 0);
	sbuf_free(&salt);
}

static int sf_lookup(void *ctx, const char *user, enum sasl_hash hash,
		     struct scram_creds *out)
{
	bool sha1 = hash == SASL_HASH_SHA1;

	FUZZ_CHECK(hash == SASL_HASH_SHA1 || hash == SASL_HASH_SHA256);
	if (strcmp(user, "user") == 0) {
		*out = sha1 ? sf_user_sha1 : sf_user_sha256;
		return 0;
	}
	if (strcmp(user, "juliet") == 0) {
		*out = sha1 ? sf_juliet_sha1 : sf_juliet_sha256;
		return 0;
	}
	if (strcmp(user, "error") == 0)
		return -EIO;
	if (strcmp(user, "insane") == 0) {
		*out = sha1 ? sf_juliet_sha1 : sf_juliet_sha256;
		out->salt_len = 0;
		return 0;
	}
	return -ENOENT;
}

static int sf_cb_data(void *ctx, const char *type, unsigned char *out,
		      size_t *len)
{
	uint8_t flags = *(const uint8_t *)ctx;
	const unsigned char *d;

	if (strcmp(type, "tls-exporter") == 0)
		d = sf_exporter;
	else if (strcmp(type, "tls-server-end-point") == 0 &&
		 (flags & SF_END_POINT))
		d = sf_end_point;
	else
		return -ENOTSUP;
	FUZZ_CHECK(*len >= 32);
	memcpy(out, d, 32);
	*len = 32;
	return 0;
}

/* The password of a PLAIN message for a known user, SASLprepped as a
 * query, equals the user's. */
static bool sf_plain_password_ok(const char *user, const uint8_t *msg,
				 size_t len)
{
	const uint8_t *nul1 = memchr(msg, 0, len), *nul2;
	char *pw, *prepped = NULL;
	bool ok;

	FUZZ_CHECK(nul1);
	nul2 = memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - msg));
	FUZZ_CHECK(nul2);
	pw = xstrndup((const char *)nul2 + 1, len - (size_t)(nul2 + 1 - msg));
	ok = stringprep_profile(pw, &prepped, "SASLprep", 0) ==
		     STRINGPREP_OK &&
	     strcmp(prepped, strcmp(user, "user") == 0 ? "pencil" : "r0m30") == 0;
	free(prepped);
	free(pw);
	return ok;
}

/* c= of a client-final message decodes to something ending in our
 * binding data for the type the first message named. */
static bool sf_final_bound(const uint8_t *first, size_t flen,
			   const uint8_t *msg, size_t len)
{
	const unsigned char *want = sf_exporter;
	const char *comma;
	struct sbuf cb;
	bool ok;

	if (flen > 23 && memcmp(first, "p=tls-server-end-point,", 23) == 0)
		want = sf_end_point;
	if (len < 2 || memcmp(msg, "c=", 2) != 0)
		return false;
	comma = memchr(msg, ',', len);
	sbuf_init(&cb);
	ok = b64_decode(&cb, (const char *)msg + 2,
			(size_t)((comma ? (const uint8_t *)comma : msg + len) -
				 msg - 2)) == 0 &&
	     cb.len >= 32 && memcmp(cb.p + cb.len - 32, want, 32) == 0;
	sbuf_free(&cb);
	return ok;
}

static void sf_check_fail(struct sasl *s)
{
	const char *c = sasl_condition(s);

	FUZZ_CHECK(c);
	FUZZ_CHECK(strcmp(c, "not-authorized") == 0 ||
		   strcmp(c, "malformed-request") == 0 ||
		   strcmp(c, "temporary-auth-failure") == 0);
	FUZZ_CHECK(sasl_username(s) == NULL && sasl_authzid(s) == NULL);
}

struct sf_msg {
	const uint8_t *p;
	size_t len;
};

static void sf_check_ok(struct sasl *s, uint8_t flags, unsigned mech,
			const struct sf_msg *first, const struct sf_msg *last,
			const struct sbuf *out)
{
	const char *user = sasl_username(s);
	bool plus = mech == 2 || mech == 4;

	FUZZ_CHECK(user && !sasl_condition(s));
	FUZZ_CHECK(strcmp(user, "user") == 0 || strcmp(user, "juliet") == 0);
	if (mech == 0) {
		FUZZ_CHECK(sf_plain_password_ok(user, last->p, last->len));
		return;
	}
	FUZZ_CHECK(out->len > 2 && memcmp(out->p, "v=", 2) == 0);
	FUZZ_CHECK(first->len > 0);
	if (plus) {
		FUZZ_CHECK(first->p[0] == 'p');
		FUZZ_CHECK(sf_final_bound(first->p, first->len, last->p,
					  last->len));
	} else {
		FUZZ_CHECK(first->p[0] == 'n' || first->p[0] == 'y');
		FUZZ_CHECK(first->p[0] != 'y' || !(flags & SF_PLUS_OFFERED) ||
			   (flags & SF_ACCEPT_Y));
	}
}

/* The next message: [p, next 0xff) or to the end. */
static bool sf_next_msg(struct fuzz_in *in, bool *more, struct sf_msg *m)
{
	const uint8_t *sep;

	if (!*more)
		return false;
	sep = memchr(in->p, SF_SEP, in->left);
	m->p = in->p;
	m->len = sep ? (size_t)(sep - in->p) : in->left;
	*more = sep != NULL;
	in->p += m->len + (sep ? 1 : 0);
	in->left -= m->len + (sep ? 1 : 0);
	return true;
}

static void sf_exchange(uint8_t flags, struct fuzz_in *in)
{
	uint8_t ctx = flags;
	unsigned mech = flags & 7;
	struct sasl_params p = {
		.lookup = sf_lookup,
		.ctx = &ctx,
		.cb_data = (flags & SF_TLS) ? sf_cb_data : NULL,
		.plus_offered = (flags & SF_PLUS_OFFERED) != 0,
		.accept_y_with_plus = (flags & SF_ACCEPT_Y) != 0,
		.secret = sf_secret,
		.fake_iterations = 1,
	};
	bool plus = mech == 2 || mech == 4, more = true, done = false;
	struct sf_msg m, first = { NULL, 0 };
	unsigned challenges = 0;
	struct sasl *s;
	struct sbuf out;

	s = sasl_new(sf_mechs[mech], &p);
	FUZZ_CHECK(sasl_mech_known(sf_mechs[mech]) == (mech < 5));
	if (mech >= 5 || (plus && !(p.plus_offered && p.cb_data))) {
		FUZZ_CHECK(s == NULL);
		return;
	}
	FUZZ_CHECK(s != NULL);
	if (!(flags & SF_RANDOM_NONCE))
		sasl_set_nonce_for_test(s, mech <= 2 ? "3rfcNHYJY1ZVvWVs7j"
					: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
	sbuf_init(&out);
	while (sf_next_msg(in, &more, &m)) {
		enum sasl_status st = sasl_step(s, (const char *)m.p, m.len,
						&out);
		if (done) {
			FUZZ_CHECK(st == SASL_FAIL);
			continue;
		}
		if (!first.p && m.len)
			first = m;
		if (st == SASL_CONTINUE) {
			FUZZ_CHECK(++challenges <= 2);
			FUZZ_CHECK(!sasl_cb_type_unsupported(s));
			if (m.len)
				FUZZ_CHECK(out.len > 2 &&
					   memcmp(out.p, "r=", 2) == 0);
			continue;
		}
		done = true;
		if (st == SASL_OK) {
			sf_check_ok(s, flags, mech, &first, &m, &out);
			FUZZ_CHECK(!sasl_cb_type_unsupported(s));
		} else {
			FUZZ_CHECK(st == SASL_FAIL);
			sf_check_fail(s);
		}
	}
	sbuf_free(&out);
	sasl_free(s);
}

/* SASLprep and scram_derive() agree on what a password may be. */
static void sf_prep(struct fuzz_in *in)
{
	bool more = true;
	struct sf_msg m;

	while (sf_next_msg(in, &more, &m)) {
		char *s = xstrndup((const char *)m.p, m.len);
		struct scram_creds c;
		struct sbuf out;
		int rc, drc;

		sbuf_init(&out);
		rc = sasl_saslprep(s, &out);
		drc = scram_derive(SASL_HASH_SHA256, s,
				   (const unsigned char *)"salt", 4, 1, &c);
		FUZZ_CHECK(drc == ((rc == 0 && out.len > 0) ? 0 : -EINVAL));
		if (rc == 0)
			FUZZ_CHECK(out.len == strlen(out.p ? out.p : ""));
		sbuf_free(&out);
		free(s);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags;

	sf_init();
	if (size == 0)
		return 0;
	flags = fuzz_byte(&in);
	if ((flags & 7) == SF_PREP_MODE)
		sf_prep(&in);
	else
		sf_exchange(flags, &in);
	return 0;
}
