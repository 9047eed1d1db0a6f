/*
 * scram.c - the client side of SASL PLAIN and SCRAM (RFC 5802, 7677).
 *
 * PBKDF2 is the expensive part of a SCRAM login, and a load generator that
 * ran it for every login would measure itself. The keys derived from one
 * (hash, password, salt, iterations) are kept in a hash table shared by all
 * workers: accounts created with one salt cost one PBKDF2 in all, and for
 * servers that give every account its own salt the table can be saved to a
 * file (--scram-cache) by an unmeasured warm-up run and loaded by the
 * measured ones.
 *
 * Passwords are used as given (no SASLprep): keep benchmark passwords ASCII.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define MAX_HASH 32
#define GS2_HEADER "n,,"

struct scram_keys {
	bool used;
	enum lg_mech mech;
	int iterations;
	char *password;
	unsigned char *salt;
	size_t salt_len;
	unsigned char client_key[MAX_HASH];
	unsigned char stored_key[MAX_HASH];
	unsigned char server_key[MAX_HASH];
};

struct lg_scram {
	enum lg_mech mech;
	char *password;
	char cnonce[33];
	struct lg_buf first_bare;	/* n=USER,r=CNONCE */
	unsigned char server_sig[MAX_HASH];
	bool final_sent;
	bool verified;	/* server-final came as a challenge and was good */
};

static const char *forced_nonce;	/* the self-test's, else NULL */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scram_keys *cache;	/* open addressing, linear probing */
static size_t cache_cap, cache_used;
static bool cache_dirty;
static _Atomic uint64_t pbkdf2_count;

const char *lg_mech_name(enum lg_mech m)
{
	switch (m) {
	case LG_MECH_SCRAM_SHA256: return "SCRAM-SHA-256";
	case LG_MECH_SCRAM_SHA1: return "SCRAM-SHA-1";
	case LG_MECH_PLAIN: return "PLAIN";
	}
	return "?";
}

static const EVP_MD *mech_md(enum lg_mech m)
{
	return m == LG_MECH_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

uint64_t lg_sasl_pbkdf2_count(void)
{
	return atomic_load(&pbkdf2_count);
}

static uint64_t cache_hash(enum lg_mech m, const char *pw, const unsigned char *salt,
			   size_t salt_len, int iter)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)m ^ ((uint64_t)iter << 8);

	for (const char *p = pw; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (size_t i = 0; i < salt_len; i++)
		h = (h ^ salt[i]) * 1099511628211ull;
	return h;
}

static bool cache_match(const struct scram_keys *k, enum lg_mech m, const char *pw,
			const unsigned char *salt, size_t salt_len, int iter)
{
	return k->used && k->mech == m && k->iterations == iter &&
	       k->salt_len == salt_len && memcmp(k->salt, salt, salt_len) == 0 &&
	       strcmp(k->password, pw) == 0;
}

/* The slot holding these inputs, or the empty slot where they would go.
 * Called with the lock held and cache_cap > 0. */
static struct scram_keys *cache_find(enum lg_mech m, const char *pw,
				     const unsigned char *salt, size_t salt_len, int iter)
{
	size_t i = cache_hash(m, pw, salt, salt_len, iter) & (cache_cap - 1);

	while (cache[i].used && !cache_match(&cache[i], m, pw, salt, salt_len, iter))
		i = (i + 1) & (cache_cap - 1);
	return &cache[i];
}

/* Grows the table so one more entry keeps it at most 70% full. */
static void cache_grow(void)
{
	struct scram_keys *old = cache;
	size_t old_cap = cache_cap;

	if (cache_cap && (cache_used + 1) * 10 <= cache_cap * 7)
		return;
	cache_cap = cache_cap ? 2 * cache_cap : 1024;
	cache = lg_xcalloc(cache_cap, sizeof(*cache));
	for (size_t i = 0; i < old_cap; i++) {
		struct scram_keys *k = &old[i];

		if (k->used)
			*cache_find(k->mech, k->password, k->salt, k->salt_len,
				    k->iterations) = *k;
	}
	free(old);
}

/* Takes a copy of the inputs; the keys are copied from k. Lock held. */
static void cache_put(const struct scram_keys *k)
{
	struct scram_keys *slot;

	cache_grow();
	slot = cache_find(k->mech, k->password, k->salt, k->salt_len, k->iterations);
	if (slot->used)
		return;
	*slot = *k;
	slot->used = true;
	slot->password = lg_xstrdup(k->password);
	slot->salt = lg_xmalloc(k->salt_len ? k->salt_len : 1);
	memcpy(slot->salt, k->salt, k->salt_len);
	cache_used++;
	cache_dirty = true;
}

/* Fills *out with the keys for these inputs, from the cache or computed. */
static int scram_keys_get(enum lg_mech m, const char *pw, const unsigned char *salt,
			  size_t salt_len, int iter, struct scram_keys *out)
{
	const EVP_MD *md = mech_md(m);
	unsigned hlen = (unsigned)EVP_MD_get_size(md);
	unsigned char salted[MAX_HASH];
	struct scram_keys *k;

	pthread_mutex_lock(&cache_lock);
	if (cache_cap) {
		k = cache_find(m, pw, salt, salt_len, iter);
		if (k->used) {
			*out = *k;
			pthread_mutex_unlock(&cache_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&cache_lock);

	/* computed outside the lock: other workers go on meanwhile */
	if (!PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len, iter, md,
			       (int)hlen, salted))
		return -1;
	atomic_fetch_add(&pbkdf2_count, 1);
	memset(out, 0, sizeof(*out));
	HMAC(md, salted, (int)hlen, (const unsigned char *)"Client Key", 10,
	     out->client_key, NULL);
	EVP_Digest(out->client_key, hlen, out->stored_key, NULL, md, NULL);
	HMAC(md, salted, (int)hlen, (const unsigned char *)"Server Key", 10,
	     out->server_key, NULL);
	out->mech = m;
	out->iterations = iter;
	out->password = (char *)pw;
	out->salt = (unsigned char *)salt;
	out->salt_len = salt_len;

	pthread_mutex_lock(&cache_lock);
	cache_put(out);
	pthread_mutex_unlock(&cache_lock);
	return 0;
}

/* ---- the cache file: one entry a line, hex fields ---- */

static void put_hex(FILE *f, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fputc(n ? ' ' : '-', f);
	if (!n)
		fputc(' ', f);
}

static size_t get_hex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	if (s[0] == '-')
		return 0;
	while (n < cap && sscanf(s + 2 * n, "%2x", &v) == 1) {
		out[n++] = (unsigned char)v;
		if (!s[2 * n] || s[2 * n] == ' ')
			break;
	}
	return n;
}

int lg_sasl_cache_load(const char *path)
{
	char line[2048], pwhex[512], salthex[512], ck[80], sk[80], svk[80];
	unsigned char pw[256], salt[256];
	struct scram_keys k;
	int mech, iter, n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;	/* no file yet */
	while (fgets(line, sizeof(line), f)) {
		size_t pwlen;

		if (sscanf(line, "%d %d %511s %511s %79s %79s %79s", &mech, &iter, pwhex,
			   salthex, ck, sk, svk) != 7 || mech < 0 || mech > LG_MECH_PLAIN)
			continue;
		memset(&k, 0, sizeof(k));
		pwlen = get_hex(pwhex, pw, sizeof(pw) - 1);
		pw[pwlen] = '\0';
		k.mech = (enum lg_mech)mech;
		k.iterations = iter;
		k.password = (char *)pw;
		k.salt = salt;
		k.salt_len = get_hex(salthex, salt, sizeof(salt));
		get_hex(ck, k.client_key, MAX_HASH);
		get_hex(sk, k.stored_key, MAX_HASH);
		get_hex(svk, k.server_key, MAX_HASH);
		pthread_mutex_lock(&cache_lock);
		cache_put(&k);
		pthread_mutex_unlock(&cache_lock);
		n++;
	}
	fclose(f);
	cache_dirty = false;
	return n;
}

int lg_sasl_cache_save(const char *path)
{
	char tmp[4096];
	unsigned hlen;
	FILE *f;
	int n = 0;

	if (!cache_dirty)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < cache_cap; i++) {
		struct scram_keys *k = &cache[i];

		if (!k->used)
			continue;
		hlen = (unsigned)EVP_MD_get_size(mech_md(k->mech));
		fprintf(f, "%d %d ", (int)k->mech, k->iterations);
		put_hex(f, (const unsigned char *)k->password, strlen(k->password));
		put_hex(f, k->salt, k->salt_len);
		put_hex(f, k->client_key, hlen);
		put_hex(f, k->stored_key, hlen);
		put_hex(f, k->server_key, hlen);
		fputc('\n', f);
		n++;
	}
	pthread_mutex_unlock(&cache_lock);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return n;
}

void lg_sasl_cache_free(void)
{
	for (size_t i = 0; i < cache_cap; i++)
		if (cache[i].used) {
			free(cache[i].password);
			free(cache[i].salt);
		}
	free(cache);
	cache = NULL;
	cache_cap = cache_used = 0;
}

/* saslname: '=' and ',' are escaped (RFC 5802 section 5.1). */
static void add_saslname(struct lg_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '=')
			lg_buf_adds(b, "=3D");
		else if (*s == ',')
			lg_buf_adds(b, "=2C");
		else
			lg_buf_add(b, s, 1);
	}
}

void lg_sasl_set_nonce(const char *nonce)
{
	forced_nonce = nonce;
}

void lg_sasl_start(enum lg_mech m, const char *user, const char *password,
		   struct lg_scram **st, struct lg_buf *out)
{
	struct lg_scram *s;
	struct lg_buf msg = { 0 };
	unsigned char rnd[24];

	*st = NULL;
	if (m == LG_MECH_PLAIN) {
		lg_buf_add(&msg, "", 1);
		lg_buf_adds(&msg, user);
		lg_buf_add(&msg, "", 1);
		lg_buf_adds(&msg, password);
		lg_b64_encode(out, msg.p, msg.len);
		lg_buf_free(&msg);
		return;
	}
	s = lg_xcalloc(1, sizeof(*s));
	s->mech = m;
	s->password = lg_xstrdup(password);
	if (forced_nonce) {
		snprintf(s->cnonce, sizeof(s->cnonce), "%s", forced_nonce);
	} else {
		RAND_bytes(rnd, sizeof(rnd));
		for (size_t i = 0; i < sizeof(rnd); i++)
			s->cnonce[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789+/"[rnd[i] & 63];
		s->cnonce[sizeof(rnd)] = '\0';
	}
	lg_buf_adds(&s->first_bare, "n=");
	add_saslname(&s->first_bare, user);
	lg_buf_adds(&s->first_bare, ",r=");
	lg_buf_adds(&s->first_bare, s->cnonce);
	lg_buf_adds(&msg, GS2_HEADER);
	lg_buf_add(&msg, s->first_bare.p, s->first_bare.len);
	lg_b64_encode(out, msg.p, msg.len);
	lg_buf_free(&msg);
	*st = s;
}

/* Finds "k=" in a comma separated attribute list; sets *len. */
static const char *scram_attr(const char *msg, char key, size_t *len)
{
	const char *p = msg;

	while (*p) {
		const char *end = strchr(p, ',');

		if (!end)
			end = p + strlen(p);
		if (p[0] == key && p[1] == '=') {
			*len = (size_t)(end - p - 2);
			return p + 2;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

/* Handles server-first-message; appends the base64 client-final to out. */
static int scram_final(struct lg_scram *s, const char *sfirst, struct lg_buf *out)
{
	const EVP_MD *md = mech_md(s->mech);
	unsigned hlen = (unsigned)EVP_MD_get_size(md);
	const char *nonce, *salt64, *iter_s;
	size_t nlen, slen, ilen;
	unsigned char salt[256], sig[MAX_HASH], proof[MAX_HASH];
	struct scram_keys k;
	struct lg_buf auth = { 0 }, final = { 0 };
	int salt_len, iter, rc = -1;

	nonce = scram_attr(sfirst, 'r', &nlen);
	salt64 = scram_attr(sfirst, 's', &slen);
	iter_s = scram_attr(sfirst, 'i', &ilen);
	if (!nonce || !salt64 || !iter_s || nlen <= strlen(s->cnonce) ||
	    strncmp(nonce, s->cnonce, strlen(s->cnonce)) != 0)
		goto out;
	salt_len = lg_b64_decode(salt, sizeof(salt), salt64, slen);
	iter = atoi(iter_s);
	if (salt_len <= 0 || iter < 1 || iter > 10000000)
		goto out;
	if (scram_keys_get(s->mech, s->password, salt, (size_t)salt_len, iter, &k) != 0)
		goto out;

	lg_buf_adds(&final, "c=biws,r=");
	lg_buf_add(&final, nonce, nlen);
	lg_buf_add(&auth, s->first_bare.p, s->first_bare.len);
	lg_buf_adds(&auth, ",");
	lg_buf_adds(&auth, sfirst);
	lg_buf_adds(&auth, ",");
	lg_buf_add(&auth, final.p, final.len);

	HMAC(md, k.stored_key, (int)hlen, (unsigned char *)auth.p, auth.len, sig, NULL);
	for (unsigned i = 0; i < hlen; i++)
		proof[i] = k.client_key[i] ^ sig[i];
	HMAC(md, k.server_key, (int)hlen, (unsigned char *)auth.p, auth.len,
	     s->server_sig, NULL);
	lg_buf_adds(&final, ",p=");
	lg_b64_encode(&final, proof, hlen);
	lg_b64_encode(out, final.p, final.len);
	s->final_sent = true;
	rc = 0;
out:
	lg_buf_free(&auth);
	lg_buf_free(&final);
	return rc;
}

/* Checks server-final-message "v=..." (decoded). */
static int scram_verify(struct lg_scram *s, const char *sfinal)
{
	unsigned hlen = (unsigned)EVP_MD_get_size(mech_md(s->mech));
	unsigned char sig[MAX_HASH + 4];
	const char *v;
	size_t vlen;
	int n;

	if (!s->final_sent)
		return -1;
	v = scram_attr(sfinal, 'v', &vlen);
	if (!v)
		return -1;
	n = lg_b64_decode(sig, sizeof(sig), v, vlen);
	if (n != (int)hlen || CRYPTO_memcmp(sig, s->server_sig, hlen) != 0)
		return -1;
	return 0;
}

static char *b64_text(const char *b64)
{
	size_t n = strlen(b64);
	char *txt = lg_xmalloc(n + 1);
	int len = lg_b64_decode((unsigned char *)txt, n, b64, n);

	if (len < 0) {
		free(txt);
		return NULL;
	}
	txt[len] = '\0';
	if (strlen(txt) != (size_t)len) {	/* embedded NUL */
		free(txt);
		return NULL;
	}
	return txt;
}

int lg_sasl_step(struct lg_scram *s, const char *b64, struct lg_buf *out)
{
	char *txt;
	int rc;

	if (!s)
		return -1;
	txt = b64_text(b64);
	if (!txt)
		return -1;
	if (!s->final_sent) {
		rc = scram_final(s, txt, out);
	} else {
		/* server-final sent as a challenge: verify, answer empty */
		rc = scram_verify(s, txt);
		if (rc == 0) {
			s->verified = true;
			lg_buf_adds(out, "=");
		}
	}
	free(txt);
	return rc;
}

int lg_sasl_finish(struct lg_scram *s, const char *b64)
{
	char *txt;
	int rc;

	if (!s)
		return 0;	/* PLAIN */
	if (s->verified)
		return 0;
	if (!*b64)
		return -1;	/* SCRAM must carry v= in success */
	txt = b64_text(b64);
	if (!txt)
		return -1;
	rc = scram_verify(s, txt);
	free(txt);
	return rc;
}

void lg_sasl_free(struct lg_scram *s)
{
	if (!s)
		return;
	free(s->password);
	lg_buf_free(&s->first_bare);
	free(s);
}
