/* test_sasl.c - PLAIN and SCRAM on the server side (core/sasl.c). */
#include "harness.h"
#include "sasl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- a small account table and channel binding provider ---- */

struct user {
	const char *name;
	struct scram_creds sha1, sha256;
};

struct ctx {
	struct user users[4];
	size_t n_users;
	int lookup_error;	/* returned by lookup when nonzero */
	const char *cb_type;	/* the one type the "connection" has */
	unsigned char cb[32];
	size_t cb_len;
	int lookups;
};

static int t_lookup(void *p, const char *user, enum sasl_hash hash,
		    struct scram_creds *out)
{
	struct ctx *c = p;

	c->lookups++;
	if (c->lookup_error)
		return c->lookup_error;
	for (size_t i = 0; i < c->n_users; i++) {
		if (strcmp(c->users[i].name, user) == 0) {
			*out = hash == SASL_HASH_SHA1 ? c->users[i].sha1
						      : c->users[i].sha256;
			return 0;
		}
	}
	return -ENOENT;
}

static int t_cb_data(void *p, const char *type, unsigned char *out,
		     size_t *len)
{
	struct ctx *c = p;

	if (!c->cb_type || strcmp(type, c->cb_type) != 0 || *len < c->cb_len)
		return -ENOTSUP;
	memcpy(out, c->cb, c->cb_len);
	*len = c->cb_len;
	return 0;
}

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

static void add_user(struct ctx *c, const char *name, const char *pw)
{
	struct user *u = &c->users[c->n_users++];

	u->name = name;
	scram_derive(SASL_HASH_SHA1, pw, NULL, 0, 4096, &u->sha1);
	scram_derive(SASL_HASH_SHA256, pw, NULL, 0, 4096, &u->sha256);
}

static struct ctx tctx;

static struct sasl_params params(bool plus)
{
	struct sasl_params p = {
		.lookup = t_lookup,
		.ctx = &tctx,
		.cb_data = plus ? t_cb_data : NULL,
		.plus_offered = plus,
		.secret = secret,
		.fake_iterations = 4096,
	};
	return p;
}

static void setup(void)
{
	memset(&tctx, 0, sizeof(tctx));
	add_user(&tctx, "user", "pencil");
	add_user(&tctx, "a,b=c", "secret");
	add_user(&tctx, "IX", "I\xe2\x85\xa8");	/* password: "I" U+2168 */
	tctx.cb_type = "tls-exporter";
	tctx.cb_len = 32;
	for (size_t i = 0; i < 32; i++)
		tctx.cb[i] = (unsigned char)(0xa0 + i);
}

/* ---- a SCRAM client, written out from RFC 5802 for the tests ---- */

static void hexdec(const char *hex, unsigned char *out)
{
	for (size_t i = 0; hex[2 * i]; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
}

/* Value of attribute a in a SCRAM message, copied into buf. */
static const char *attr(const char *msg, char a, char *buf, size_t n)
{
	for (const char *p = msg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (p[0] == a && p[1] == '=') {
			size_t l = strcspn(p + 2, ",");
			if (l >= n)
				return NULL;
			memcpy(buf, p + 2, l);
			buf[l] = '\0';
			return buf;
		}
	}
	return NULL;
}

/* Builds client-final for password from the messages so far; cbind is
 * what goes (base64) into c=. */
static void client_final(enum sasl_hash h, const char *pw, const char *cfb,
			 const char *sfirst, const void *cbind, size_t cblen,
			 struct sbuf *out)
{
	const EVP_MD *md = h == SASL_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
	size_t hl = (size_t)EVP_MD_get_size(md);
	unsigned char salted[32], ckey[32], skey[32], csig[32], proof[32];
	char nonce[256], salt64[128], iter[16];
	struct sbuf salt, am;
	unsigned n;

	sbuf_init(&salt);
	sbuf_init(&am);
	attr(sfirst, 'r', nonce, sizeof(nonce));
	attr(sfirst, 's', salt64, sizeof(salt64));
	attr(sfirst, 'i', iter, sizeof(iter));
	b64_decode(&salt, salt64, strlen(salt64));
	PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), (unsigned char *)salt.p,
			  (int)salt.len, atoi(iter), md, (int)hl, salted);
	HMAC(md, salted, (int)hl, (const unsigned char *)"Client Key", 10,
	     ckey, &n);
	EVP_Digest(ckey, hl, skey, NULL, md, NULL);
	sbuf_adds(out, "c=");
	b64_encode(out, cbind, cblen);
	sbuf_printf(out, ",r=%s", nonce);
	sbuf_printf(&am, "%s,%s,%s", cfb, sfirst, out->p);
	HMAC(md, skey, (int)hl, (unsigned char *)am.p, am.len, csig, &n);
	for (size_t i = 0; i < hl; i++)
		proof[i] = ckey[i] ^ csig[i];
	sbuf_adds(out, ",p=");
	b64_encode(out, proof, hl);
	sbuf_free(&salt);
	sbuf_free(&am);
}

/* Runs a whole SCRAM exchange; returns the final status. */
static enum sasl_status scram_run(const char *mech, bool plus,
				  const char *gs2, const char *cfb,
				  const char *pw, const void *cbdata,
				  size_t cblen, struct sasl **sp)
{
	struct sasl_params p = params(plus);
	struct sasl *s = sasl_new(mech, &p);
	enum sasl_hash h = strstr(mech, "256") ? SASL_HASH_SHA256
					       : SASL_HASH_SHA1;
	struct sbuf in, out, final, cbind;
	enum sasl_status st;

	*sp = s;
	if (!s)
		return SASL_FAIL;
	sbuf_init(&in);
	sbuf_init(&out);
	sbuf_init(&final);
	sbuf_init(&cbind);
	sbuf_printf(&in, "%s%s", gs2, cfb);
	st = sasl_step(s, in.p, in.len, &out);
	if (st != SASL_CONTINUE)
		goto out;
	sbuf_adds(&cbind, gs2);
	sbuf_add(&cbind, cbdata, cblen);
	client_final(h, pw, cfb, out.p, cbind.p, cbind.len, &final);
	st = sasl_step(s, final.p, final.len, &out);
	if (st == SASL_OK)
		CHECK(out.len > 2 && memcmp(out.p, "v=", 2) == 0);
out:
	sbuf_free(&in);
	sbuf_free(&out);
	sbuf_free(&final);
	sbuf_free(&cbind);
	return st;
}

/* ---- the RFC examples ---- */

static void rfc_example(const char *mech, enum sasl_hash h,
			const char *salt64, const char *stored_hex,
			const char *server_hex, const char *cfirst,
			const char *snonce, const char *sfirst,
			const char *cfinal, const char *sfinal)
{
	struct sbuf salt, out;
	struct scram_creds c;
	unsigned char stored[32], server[32];
	size_t hl = h == SASL_HASH_SHA1 ? 20 : 32;

	sbuf_init(&salt);
	sbuf_init(&out);
	CHECK(b64_decode(&salt, salt64, strlen(salt64)) == 0);
	CHECK(scram_derive(h, "pencil", (unsigned char *)salt.p, salt.len,
			   4096, &c) == 0);
	hexdec(stored_hex, stored);
	hexdec(server_hex, server);
	CHECK(c.hash == h && c.iterations == 4096 && c.salt_len == salt.len);
	CHECK(memcmp(c.stored_key, stored, hl) == 0);
	CHECK(memcmp(c.server_key, server, hl) == 0);

	memset(&tctx, 0, sizeof(tctx));
	tctx.users[0].name = "user";
	tctx.users[0].sha1 = c;
	tctx.users[0].sha256 = c;
	tctx.n_users = 1;
	struct sasl_params p = params(false);
	struct sasl *s = sasl_new(mech, &p);
	CHECK(s != NULL);
	sasl_set_nonce_for_test(s, snonce);
	CHECK(sasl_step(s, cfirst, strlen(cfirst), &out) == SASL_CONTINUE);
	CHECK_STR(out.p, sfirst);
	CHECK(sasl_step(s, cfinal, strlen(cfinal), &out) == SASL_OK);
	CHECK_STR(out.p, sfinal);
	CHECK_STR(sasl_username(s), "user");
	CHECK(sasl_authzid(s) == NULL);
	CHECK(sasl_condition(s) == NULL);
	sasl_free(s);
	sbuf_free(&salt);
	sbuf_free(&out);
}

static void test_rfc5802_sha1(void)
{
	rfc_example("SCRAM-SHA-1", SASL_HASH_SHA1, "QSXCR+Q6sek8bf92",
		    "e9d94660c39d65c38fbad91c358f14da0eef2bd6",
		    "0fe09258b3ac852ba502cc62ba903eaacdbf7d31",
		    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		    "3rfcNHYJY1ZVvWVs7j",
		    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "s=QSXCR+Q6sek8bf92,i=4096",
		    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		    "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677_sha256(void)
{
	rfc_example("SCRAM-SHA-256", SASL_HASH_SHA256,
		    "W22ZaJ0SNY7soEsUEjb6gQ==",
		    "586e5df283e6dceb5c3e791d8b8528ec"
		    "191e664045ce971792e2e6b5bb13e2a6",
		    "c1f3cbc1c13a9d35a14c0990eed97629"
		    "ea225863e566a4314ab99f3f00e5d9d5",
		    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		    "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)"
		    "hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* ---- credentials and SASLprep ---- */

static void test_scram_derive(void)
{
	struct scram_creds a, b;
	unsigned char salt[SASL_MAX_SALT + 1] = { 1 };

	CHECK(scram_derive(SASL_HASH_SHA256, "pw", NULL, 0, 4096, &a) == 0);
	CHECK(scram_derive(SASL_HASH_SHA256, "pw", NULL, 0, 4096, &b) == 0);
	CHECK(a.salt_len == 16 && b.salt_len == 16);
	CHECK(memcmp(a.salt, b.salt, 16) != 0);
	CHECK(memcmp(a.stored_key, b.stored_key, 32) != 0);
	/* the same salt gives the same keys */
	CHECK(scram_derive(SASL_HASH_SHA256, "pw", a.salt, 16, 4096, &b) == 0);
	CHECK(memcmp(a.stored_key, b.stored_key, 32) == 0);
	CHECK(memcmp(a.server_key, b.server_key, 32) == 0);
	/* SASLprep applies: U+00AD is mapped to nothing */
	CHECK(scram_derive(SASL_HASH_SHA256, "p\xc2\xadw", a.salt, 16, 4096,
			   &b) == 0);
	CHECK(memcmp(a.stored_key, b.stored_key, 32) == 0);
	CHECK(scram_derive(SASL_HASH_SHA1, "a\x07", NULL, 0, 4096, &b) ==
	      -EINVAL);
	CHECK(scram_derive(SASL_HASH_SHA1, "", NULL, 0, 4096, &b) == -EINVAL);
	CHECK(scram_derive(SASL_HASH_SHA1, "\xc2\xad", NULL, 0, 4096, &b) ==
	      -EINVAL);
	CHECK(scram_derive(SASL_HASH_SHA1, "pw", NULL, 0, 0, &b) == -EINVAL);
	CHECK(scram_derive(SASL_HASH_SHA1, "pw", salt, sizeof(salt), 1, &b) ==
	      -EINVAL);
	CHECK(scram_derive(SASL_HASH_SHA1, "pw", salt, 0, 1, &b) == -EINVAL);
	CHECK(scram_derive((enum sasl_hash)7, "pw", NULL, 0, 1, &b) ==
	      -EINVAL);
}

static void test_saslprep(void)
{
	/* RFC 4013 section 3 */
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "I\xc2\xadX", "IX" }, { "user", "user" }, { "USER", "USER" },
		{ "\xc2\xaa", "a" }, { "\xe2\x85\xa8", "IX" },
		{ "a\xe2\x80\x80z", "a z" },	/* non-ASCII space -> space */
	};
	static const char *const bad[] = {
		"\x07", "\xd8\xa7\x31", "a\xff", "\xc0\xaf",
	};
	struct sbuf b;

	sbuf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		sbuf_reset(&b);
		CHECK(sasl_saslprep(ok[i].in, &b) == 0);
		CHECK_STR(b.p, ok[i].out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(sasl_saslprep(bad[i], &b) == -EINVAL);
	sbuf_free(&b);
}

static void test_mechs(void)
{
	struct sasl_params p = params(true), np = params(false);
	struct sasl *s;

	CHECK(sasl_mech_known("PLAIN"));
	CHECK(sasl_mech_known("SCRAM-SHA-1"));
	CHECK(sasl_mech_known("SCRAM-SHA-256-PLUS"));
	CHECK(!sasl_mech_known("DIGEST-MD5"));
	CHECK(!sasl_mech_known("scram-sha-1"));
	CHECK(!sasl_mech_known(""));
	CHECK(sasl_new("X-OAUTH2", &p) == NULL);
	/* -PLUS needs an offer and channel binding data */
	CHECK(sasl_new("SCRAM-SHA-1-PLUS", &np) == NULL);
	np.cb_data = t_cb_data;
	CHECK(sasl_new("SCRAM-SHA-1-PLUS", &np) == NULL);
	s = sasl_new("SCRAM-SHA-1-PLUS", &p);
	CHECK(s != NULL);
	sasl_free(s);
	sasl_free(NULL);
}

/* ---- SCRAM behaviour ---- */

static void test_scram_good_and_wrong(void)
{
	struct sasl *s;

	setup();
	CHECK(scram_run("SCRAM-SHA-1", false, "n,,", "n=user,r=abcdef",
			"pencil", NULL, 0, &s) == SASL_OK);
	CHECK_STR(sasl_username(s), "user");
	sasl_free(s);
	CHECK(scram_run("SCRAM-SHA-256", false, "n,,", "n=user,r=abcdef",
			"pencil", NULL, 0, &s) == SASL_OK);
	sasl_free(s);
	CHECK(scram_run("SCRAM-SHA-256", false, "n,,", "n=user,r=abcdef",
			"pencil2", NULL, 0, &s) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	CHECK(sasl_username(s) == NULL);
	sasl_free(s);
	/* escaped username; extensions after the nonce are ignored */
	CHECK(scram_run("SCRAM-SHA-256", false, "n,,",
			"n=a=2Cb=3Dc,r=xyz,x=ext", "secret", NULL, 0, &s) ==
	      SASL_OK);
	CHECK_STR(sasl_username(s), "a,b=c");
	sasl_free(s);
	/* SASLprep of the name (U+2168 -> "IX") and the password */
	CHECK(scram_run("SCRAM-SHA-1", false, "n,,", "n=\xe2\x85\xa8,r=q",
			"IIX", NULL, 0, &s) == SASL_OK);
	CHECK_STR(sasl_username(s), "IX");
	sasl_free(s);
	/* authzid, with escapes */
	CHECK(scram_run("SCRAM-SHA-1", false, "n,a=user@example.com,",
			"n=user,r=q", "pencil", NULL, 0, &s) == SASL_OK);
	CHECK_STR(sasl_authzid(s), "user@example.com");
	sasl_free(s);
	CHECK(scram_run("SCRAM-SHA-1", false, "n,a=x=2Cy=3D,", "n=user,r=q",
			"pencil", NULL, 0, &s) == SASL_OK);
	CHECK_STR(sasl_authzid(s), "x,y=");
	sasl_free(s);
}

/* The server-first of an unknown user: our nonce appended, a 16-byte
 * salt that depends on the name only, the configured iterations. */
static void check_plausible(const char *sfirst, const char *cnonce,
			    char *salt_out)
{
	char r[256], s64[128], it[16];
	struct sbuf salt;

	sbuf_init(&salt);
	CHECK(attr(sfirst, 'r', r, sizeof(r)) != NULL);
	CHECK(attr(sfirst, 's', s64, sizeof(s64)) != NULL);
	CHECK(attr(sfirst, 'i', it, sizeof(it)) != NULL);
	CHECK(strncmp(r, cnonce, strlen(cnonce)) == 0);
	CHECK(strlen(r) >= strlen(cnonce) + 24);
	CHECK(b64_decode(&salt, s64, strlen(s64)) == 0 && salt.len == 16);
	CHECK_STR(it, "4096");
	strcpy(salt_out, s64);
	sbuf_free(&salt);
}

static void test_scram_unknown_user(void)
{
	struct sasl_params p;
	struct sasl *s;
	struct sbuf out;
	char salt1[128], salt2[128], salt3[128];
	const char *cf = "n,,n=nobody,r=abcdefgh";

	setup();
	p = params(false);
	sbuf_init(&out);
	s = sasl_new("SCRAM-SHA-256", &p);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_CONTINUE);
	check_plausible(out.p, "abcdefgh", salt1);
	sasl_free(s);
	s = sasl_new("SCRAM-SHA-256", &p);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_CONTINUE);
	check_plausible(out.p, "abcdefgh", salt2);
	sasl_free(s);
	CHECK_STR(salt1, salt2);
	cf = "n,,n=somebody,r=abcdefgh";
	s = sasl_new("SCRAM-SHA-256", &p);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_CONTINUE);
	check_plausible(out.p, "abcdefgh", salt3);
	CHECK(strcmp(salt1, salt3) != 0);
	sasl_free(s);
	sbuf_free(&out);

	/* The final step fails as a wrong password does. */
	CHECK(scram_run("SCRAM-SHA-256", false, "n,,", "n=nobody,r=abc",
			"pencil", NULL, 0, &s) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
	CHECK(scram_run("SCRAM-SHA-1", false, "n,,", "n=nobody,r=abc", "",
			NULL, 0, &s) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
}

static void test_scram_storage_error(void)
{
	struct sasl_params p;
	struct sasl *s;
	struct sbuf out;
	const char *cf = "n,,n=user,r=abc";

	setup();
	log_setup("error", NULL);	/* the failures are logged as warnings */
	tctx.lookup_error = -EIO;
	p = params(false);
	sbuf_init(&out);
	s = sasl_new("SCRAM-SHA-1", &p);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "temporary-auth-failure");
	sasl_free(s);
	s = sasl_new("PLAIN", &p);
	CHECK(sasl_step(s, "\0user\0pencil", 12, &out) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "temporary-auth-failure");
	sasl_free(s);
	sbuf_free(&out);
	log_setup("info", NULL);
}

static void test_scram_channel_binding(void)
{
	unsigned char wrong[32];
	struct sasl *s;

	setup();
	CHECK(scram_run("SCRAM-SHA-256-PLUS", true, "p=tls-exporter,,",
			"n=user,r=abc", "pencil", tctx.cb, tctx.cb_len,
			&s) == SASL_OK);
	sasl_free(s);
	CHECK(scram_run("SCRAM-SHA-1-PLUS", true, "p=tls-exporter,a=user,",
			"n=user,r=abc", "pencil", tctx.cb, tctx.cb_len,
			&s) == SASL_OK);
	CHECK_STR(sasl_authzid(s), "user");
	sasl_free(s);
	/* other data (another TLS session: a MITM) */
	memcpy(wrong, tctx.cb, 32);
	wrong[31] ^= 1;
	CHECK(scram_run("SCRAM-SHA-256-PLUS", true, "p=tls-exporter,,",
			"n=user,r=abc", "pencil", wrong, 32, &s) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
	/* the data missing from c= */
	CHECK(scram_run("SCRAM-SHA-256-PLUS", true, "p=tls-exporter,,",
			"n=user,r=abc", "pencil", NULL, 0, &s) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
	/* a type the connection does not have */
	CHECK(scram_run("SCRAM-SHA-256-PLUS", true, "p=tls-unique,,",
			"n=user,r=abc", "pencil", tctx.cb, 32, &s) ==
	      SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
	tctx.cb_type = "tls-server-end-point";
	CHECK(scram_run("SCRAM-SHA-256-PLUS", true,
			"p=tls-server-end-point,,", "n=user,r=abc", "pencil",
			tctx.cb, tctx.cb_len, &s) == SASL_OK);
	sasl_free(s);
}

static void expect_first_fail(const char *mech, bool plus, const char *cf,
			      const char *cond)
{
	struct sasl_params p = params(plus);
	struct sasl *s = sasl_new(mech, &p);
	struct sbuf out;

	sbuf_init(&out);
	CHECK(s != NULL);
	if (!s)
		return;
	if (sasl_step(s, cf, strlen(cf), &out) != SASL_FAIL) {
		fprintf(stderr, "  %s accepted: %s\n", mech, cf);
		h_cur_failed = 1;
	} else if (strcmp(sasl_condition(s), cond) != 0) {
		fprintf(stderr, "  %s: %s gave %s\n", mech, cf,
			sasl_condition(s));
		h_cur_failed = 1;
	}
	CHECK(out.len == 0);
	sasl_free(s);
	sbuf_free(&out);
}

static void test_scram_downgrade(void)
{
	struct sasl *s;

	setup();
	/* "y" when -PLUS was offered: stripped on the way */
	expect_first_fail("SCRAM-SHA-256", true, "y,,n=user,r=abc",
			  "not-authorized");
	/* ... unless the server chose to accept it (XEP-0440 clients whose
	 * binding types we lack) */
	{
		struct sasl_params lp = params(true);
		struct sbuf o;
		lp.accept_y_with_plus = true;
		sbuf_init(&o);
		s = sasl_new("SCRAM-SHA-256", &lp);
		CHECK(sasl_step(s, "y,,n=user,r=abc", 15, &o) == SASL_CONTINUE);
		sasl_free(s);
		/* an unknown binding type is told apart from a bad password */
		s = sasl_new("SCRAM-SHA-256-PLUS", &lp);
		CHECK(sasl_step(s, "p=tls-unique,,n=user,r=abc", 26, &o) == SASL_FAIL);
		CHECK(sasl_cb_type_unsupported(s));
		sasl_free(s);
		sbuf_free(&o);
	}
	/* "y" when it was not offered is fine */
	CHECK(scram_run("SCRAM-SHA-256", false, "y,,", "n=user,r=abc",
			"pencil", NULL, 0, &s) == SASL_OK);
	sasl_free(s);
	/* "n" where nothing was offered, or the client cannot bind */
	CHECK(scram_run("SCRAM-SHA-256", true, "n,,", "n=user,r=abc",
			"pencil", NULL, 0, &s) == SASL_OK);
	sasl_free(s);
	/* binding asked for under a mechanism without it */
	expect_first_fail("SCRAM-SHA-256", true,
			  "p=tls-exporter,,n=user,r=abc", "not-authorized");
	expect_first_fail("SCRAM-SHA-1", false,
			  "p=tls-exporter,,n=user,r=abc", "not-authorized");
	/* -PLUS without binding */
	expect_first_fail("SCRAM-SHA-256-PLUS", true, "n,,n=user,r=abc",
			  "not-authorized");
	expect_first_fail("SCRAM-SHA-256-PLUS", true, "y,,n=user,r=abc",
			  "not-authorized");
	/* c= that does not repeat the gs2 header */
	struct sasl_params p = params(false);
	struct sbuf out, fin;
	const char *cf = "y,,n=user,r=abc";
	sbuf_init(&out);
	sbuf_init(&fin);
	s = sasl_new("SCRAM-SHA-1", &p);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_CONTINUE);
	client_final(SASL_HASH_SHA1, "pencil", "n=user,r=abc", out.p, "n,,",
		     3, &fin);
	CHECK(sasl_step(s, fin.p, fin.len, &out) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "not-authorized");
	sasl_free(s);
	sbuf_free(&out);
	sbuf_free(&fin);
}

static void test_scram_malformed_first(void)
{
	static const char *const bad[] = {
		"", "n", "n,", "n,,", "x,,n=user,r=a", "nn,,n=user,r=a",
		"p,,n=user,r=a", "p=,,n=user,r=a", "p=tls exporter,,n=u,r=a",
		"n,a,n=user,r=a", "n,a=,n=user,r=a", "n,b=x,n=user,r=a",
		"n,a=x=2c,n=user,r=a", "n,a=x=,n=user,r=a", "n,a=x\xff,n=u,r=a",
		"n,,m=ext,n=user,r=a", "n,,n=user", "n,,n=user,", "n,,r=a",
		"n,,n=user,r=", "n,,n=user,r=a,", "n,,n=user,r=a,m=x",
		"n,,n=user,r=a,x", "n,,n=user,r=a,x=", "n,,n=,r=a",
		"n,,n=us=er,r=a", "n,,n=us=3d,r=a", "n,,n=user,r=a b",
		"n,,n=user,r=a\x7f", "n,,user,r=a", "n,,n=user,x=1,r=a",
		"n,,n=user,r=a,1=b", "n,,n=user,,r=a",
	};
	static const char *const unauth[] = {
		"n,,n=\x07,r=a", "n,,n=\xc2\xad,r=a",
	};

	setup();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* "" asks for the initial response; the second empty fails */
		if (!*bad[i])
			continue;
		expect_first_fail("SCRAM-SHA-1", false, bad[i],
				  "malformed-request");
	}
	for (size_t i = 0; i < ARRAY_SIZE(unauth); i++)
		expect_first_fail("SCRAM-SHA-1", false, unauth[i],
				  "not-authorized");

	/* a NUL inside */
	struct sasl_params p = params(false);
	struct sasl *s = sasl_new("SCRAM-SHA-1", &p);
	struct sbuf out;
	sbuf_init(&out);
	CHECK(sasl_step(s, "n,,n=us\0er,r=a", 14, &out) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "malformed-request");
	sasl_free(s);
	/* too long */
	char *big = malloc(20000);
	memset(big, 'a', 20000);
	memcpy(big, "n,,n=user,r=", 12);
	s = sasl_new("SCRAM-SHA-1", &p);
	CHECK(sasl_step(s, big, 20000, &out) == SASL_FAIL);
	sasl_free(s);
	free(big);
	sbuf_free(&out);
}

/* A client-final variant against a fresh exchange. */
static const char *final_result(const char *fin)
{
	struct sasl_params p = params(false);
	struct sasl *s = sasl_new("SCRAM-SHA-1", &p);
	struct sbuf out;
	static char cond[64];
	const char *cf = "n,,n=user,r=abc";

	sbuf_init(&out);
	sasl_set_nonce_for_test(s, "SERVER");
	sasl_step(s, cf, strlen(cf), &out);
	if (sasl_step(s, fin, strlen(fin), &out) == SASL_OK)
		strcpy(cond, "ok");
	else
		snprintf(cond, sizeof(cond), "%s", sasl_condition(s));
	sasl_free(s);
	sbuf_free(&out);
	return cond;
}

static void test_scram_malformed_final(void)
{
	static const struct {
		const char *fin, *cond;
	} cases[] = {
		{ "", "malformed-request" },
		{ "c=biws", "malformed-request" },
		{ "c=biws,r=abcSERVER", "malformed-request" },
		{ "c=biws,r=abcSERVER,p=", "malformed-request" },
		{ "c=biws,r=abcSERVER,p=AAAA", "malformed-request" },
		{ "c=biws,r=abcSERVER,p=!!!!", "malformed-request" },
		{ "r=abcSERVER,c=biws,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "malformed-request" },
		{ "c=,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "malformed-request" },
		{ "c=bi,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "malformed-request" },
		{ "c=biws,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "malformed-request" },
		{ "c=biws,r=abcSERVER,m=x,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "malformed-request" },
		{ "c=biws,r=abcSERVER,,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "malformed-request" },
		{ "c=biws,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=,x=y",
		  "malformed-request" },
		{ "c=biws,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "not-authorized" },
		{ "c=biws,r=abcSERVER,x=y,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "not-authorized" },
		{ "c=biws,r=abcOTHER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "not-authorized" },
		{ "c=biws,r=abc,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "not-authorized" },
		{ "c=eSws,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		  "not-authorized" },
	};

	setup();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *got = final_result(cases[i].fin);
		if (strcmp(got, cases[i].cond) != 0) {
			fprintf(stderr, "  final %s: got %s, expected %s\n",
				cases[i].fin, got, cases[i].cond);
			h_cur_failed = 1;
		}
	}
}

/* Random mutations of good messages: anything may come back, nothing
 * may crash (run under ASan). */
static void test_scram_mutations(void)
{
	static const char *const seeds[] = {
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"p=tls-exporter,a=user=2C,n=user,r=abc,x=y",
		"y,,n=a=3Db,r=%%%",
	};
	struct sasl_params p = params(true);
	struct sbuf out;
	char buf[128];
	unsigned seed = 12345;

	setup();
	sbuf_init(&out);
	for (int round = 0; round < 3000; round++) {
		const char *src = seeds[round % ARRAY_SIZE(seeds)];
		size_t n = strlen(src);
		memcpy(buf, src, n);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			size_t pos = (seed >> 8) % n;
			seed = seed * 1103515245 + 12345;
			buf[pos] = (char)(seed >> 16);
		}
		seed = seed * 1103515245 + 12345;
		size_t len = 1 + (seed >> 8) % n;
		struct sasl *s = sasl_new(round & 1 ? "SCRAM-SHA-256-PLUS"
						    : "SCRAM-SHA-1", &p);
		enum sasl_status st = sasl_step(s, buf, len, &out);
		if (st == SASL_CONTINUE) {
			st = sasl_step(s, buf, len, &out);
			CHECK(st == SASL_FAIL);
		}
		CHECK(st != SASL_OK);
		sasl_free(s);
	}
	sbuf_free(&out);
}

static void test_empty_initial_and_done(void)
{
	struct sasl_params p;
	struct sasl *s;
	struct sbuf out;
	const char *cf = "n,,n=user,r=abc";

	setup();
	p = params(false);
	sbuf_init(&out);
	s = sasl_new("SCRAM-SHA-256", &p);
	CHECK(sasl_step(s, "", 0, &out) == SASL_CONTINUE);
	CHECK(out.len == 0);
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_CONTINUE);
	CHECK(strncmp(out.p, "r=abc", 5) == 0);
	sasl_free(s);
	s = sasl_new("SCRAM-SHA-256", &p);
	CHECK(sasl_step(s, "", 0, &out) == SASL_CONTINUE);
	CHECK(sasl_step(s, "", 0, &out) == SASL_FAIL);
	CHECK_STR(sasl_condition(s), "malformed-request");
	CHECK(sasl_step(s, cf, strlen(cf), &out) == SASL_FAIL);
	sasl_free(s);
	s = sasl_new("PLAIN", &p);
	CHECK(sasl_step(s, "", 0, &out) == SASL_CONTINUE);
	CHECK(sasl_step(s, "\0user\0pencil", 12, &out) == SASL_OK);
	CHECK(sasl_step(s, "\0user\0pencil", 12, &out) == SASL_FAIL);
	sasl_free(s);
	sbuf_free(&out);
}

/* ---- PLAIN ---- */

static const char *plain(const char *msg, size_t len, const char **authzid)
{
	static char res[64], az[64];
	struct sasl_params p = params(false);
	struct sasl *s = sasl_new("PLAIN", &p);
	struct sbuf out;

	sbuf_init(&out);
	if (sasl_step(s, msg, len, &out) == SASL_OK) {
		snprintf(res, sizeof(res), "ok:%s", sasl_username(s));
		snprintf(az, sizeof(az), "%s",
			 sasl_authzid(s) ? sasl_authzid(s) : "(none)");
		if (authzid)
			*authzid = az;
	} else {
		snprintf(res, sizeof(res), "%s", sasl_condition(s));
	}
	CHECK(out.len == 0);
	sasl_free(s);
	sbuf_free(&out);
	return res;
}

#define PLAIN(lit) plain(lit, sizeof(lit) - 1, NULL)

static void test_plain(void)
{
	const char *az = NULL;

	setup();
	CHECK_STR(PLAIN("\0user\0pencil"), "ok:user");
	CHECK_STR(PLAIN("\0user\0pencil2"), "not-authorized");
	CHECK_STR(PLAIN("\0user\0Pencil"), "not-authorized");
	CHECK_STR(PLAIN("\0nobody\0pencil"), "not-authorized");
	CHECK_STR(PLAIN("\0a,b=c\0secret"), "ok:a,b=c");
	/* SASLprep: the name maps to "IX", the password is "I" U+2168 */
	CHECK_STR(PLAIN("\0\xe2\x85\xa8\0I\xe2\x85\xa8"), "ok:IX");
	CHECK_STR(PLAIN("\0IX\0IIX"), "ok:IX");
	CHECK_STR(PLAIN("\0us\xc2\xad" "er\0pen\xc2\xad" "cil"), "ok:user");
	CHECK_STR(plain("user@example.com\0user\0pencil", 28, &az),
		  "ok:user");
	CHECK_STR(az, "user@example.com");
	CHECK_STR(plain("\0user\0pencil", 12, &az), "ok:user");
	CHECK_STR(az, "(none)");
	/* prohibited characters: can never match */
	CHECK_STR(PLAIN("\0us\x07" "er\0pencil"), "not-authorized");
	CHECK_STR(PLAIN("\0user\0pen\x07"), "not-authorized");
	/* malformed */
	CHECK_STR(PLAIN("userpencil"), "malformed-request");
	CHECK_STR(PLAIN("\0userpencil"), "malformed-request");
	CHECK_STR(PLAIN("\0user\0pencil\0"), "malformed-request");
	CHECK_STR(PLAIN("\0\0pencil"), "malformed-request");
	CHECK_STR(PLAIN("\0user\0"), "malformed-request");
	CHECK_STR(PLAIN("\0\0"), "malformed-request");
	CHECK_STR(PLAIN("a\xff\0user\0pencil"), "malformed-request");
	char big[1100];
	memset(big, 'x', sizeof(big));
	big[0] = '\0';
	memcpy(big + 1, "user", 4);
	big[5] = '\0';
	CHECK_STR(plain(big, sizeof(big), NULL), "malformed-request");
}

/* ---- ANONYMOUS (RFC 4505) ---- */

static const char *anonymous(const char *msg, size_t len)
{
	static char res[64];
	struct sasl_params p = params(false);
	struct sasl *s;
	struct sbuf out;

	p.anonymous = true;
	s = sasl_new("ANONYMOUS", &p);
	sbuf_init(&out);
	if (sasl_step(s, msg, len, &out) == SASL_OK)
		snprintf(res, sizeof(res), "ok:%s:%d", sasl_username(s) ? "name" : "none",
			 sasl_anonymous(s));
	else
		snprintf(res, sizeof(res), "%s", sasl_condition(s));
	sasl_free(s);
	sbuf_free(&out);
	return res;
}

static void test_anonymous(void)
{
	struct sasl_params p = params(false);
	char trace[600];
	struct sasl *s;

	setup();
	/* only where the caller allows it */
	CHECK(sasl_new("ANONYMOUS", &p) == NULL);
	s = sasl_new("PLAIN", &p);
	CHECK(!sasl_anonymous(s));
	sasl_free(s);
	CHECK_STR(anonymous("", 0), "ok:none:1");
	CHECK_STR(anonymous("sirhc@example.org", 17), "ok:none:1");
	memset(trace, 'x', sizeof(trace));
	CHECK_STR(anonymous(trace, 255), "ok:none:1");
	CHECK_STR(anonymous(trace, 256), "malformed-request");
	/* 255 characters of two bytes each */
	for (size_t i = 0; i + 1 < sizeof(trace); i += 2)
		memcpy(trace + i, "\xc3\xa9", 2);
	CHECK_STR(anonymous(trace, 255 * 2), "ok:none:1");
	CHECK_STR(anonymous(trace, 256 * 2), "malformed-request");
	CHECK_STR(anonymous("a\0b", 3), "malformed-request");
	CHECK_STR(anonymous("a\xff", 2), "malformed-request");
}

/* ---- PLAIN making the account (the test-only backend) ---- */

static int t_create(void *p, const char *user, const char *password)
{
	struct ctx *c = p;

	if (strcmp(password, "refused") == 0)
		return -EINVAL;
	add_user(c, strcmp(user, "newbie") == 0 ? "newbie" : "other", password);
	return 0;
}

static const char *plain_create(const char *msg, size_t len)
{
	static char res[64];
	struct sasl_params p = params(false);
	struct sasl *s;
	struct sbuf out;

	p.create = t_create;
	s = sasl_new("PLAIN", &p);
	sbuf_init(&out);
	if (sasl_step(s, msg, len, &out) == SASL_OK)
		snprintf(res, sizeof(res), "ok:%s", sasl_username(s));
	else
		snprintf(res, sizeof(res), "%s", sasl_condition(s));
	sasl_free(s);
	sbuf_free(&out);
	return res;
}

static void test_plain_create(void)
{
	setup();
	size_t before = tctx.n_users;
	CHECK_STR(plain_create("\0newbie\0refused", 15), "not-authorized");
	CHECK(tctx.n_users == before);
	CHECK_STR(plain_create("\0newbie\0first", 13), "ok:newbie");
	CHECK(tctx.n_users == before + 1);
	/* now it exists: the password it was made with, and no other */
	CHECK_STR(plain_create("\0newbie\0second", 14), "not-authorized");
	CHECK_STR(plain_create("\0newbie\0first", 13), "ok:newbie");
	CHECK_STR(plain_create("\0user\0wrong", 11), "not-authorized");
	CHECK(tctx.n_users == before + 1);
	/* without create an unknown user is refused as before */
	CHECK_STR(PLAIN("\0stranger\0pw"), "not-authorized");
}

int main(void)
{
	RUN(test_rfc5802_sha1);
	RUN(test_rfc7677_sha256);
	RUN(test_scram_derive);
	RUN(test_saslprep);
	RUN(test_mechs);
	RUN(test_scram_good_and_wrong);
	RUN(test_scram_unknown_user);
	RUN(test_scram_storage_error);
	RUN(test_scram_channel_binding);
	RUN(test_scram_downgrade);
	RUN(test_scram_malformed_first);
	RUN(test_scram_malformed_final);
	RUN(test_scram_mutations);
	RUN(test_empty_initial_and_done);
	RUN(test_plain);
	RUN(test_anonymous);
	RUN(test_plain_create);
	TEST_END();
}
