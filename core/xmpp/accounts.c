/*
 * accounts.c - user accounts on the "accounts" db of the store.
 *
 * Record (key host \0 user), version 2:
 *   u8 version (2)
 *   one or more, in ascending hash order, each hash once:
 *     u8 hash (1 SHA-1, 2 SHA-256), u32 iterations (big endian),
 *     u8 salt_len, salt, StoredKey, ServerKey (20 bytes each for SHA-1,
 *     32 for SHA-256)
 * Version 1 (still read): u8 1, then the SHA-1 part and the SHA-256 part
 * without their hash bytes. A record that does not parse is reported
 * (-EIO) and never used.
 */
#include "accounts.h"
#include "fast.h"
#include "store.h"
#include "log.h"

#include <errno.h>
#include <openssl/crypto.h>

#define ACCOUNTS_V1 1
#define ACCOUNTS_VERSION 2

static const enum sasl_hash record_hashes[] = { SASL_HASH_SHA1, SASL_HASH_SHA256 };

static size_t key_len(enum sasl_hash hash)
{
	return hash == SASL_HASH_SHA1 ? 20 : 32;
}

static void put_creds(struct sbuf *b, const struct scram_creds *c)
{
	unsigned char h[6] = {
		(unsigned char)c->hash,
		(unsigned char)(c->iterations >> 24), (unsigned char)(c->iterations >> 16),
		(unsigned char)(c->iterations >> 8), (unsigned char)c->iterations,
		(unsigned char)c->salt_len,
	};

	sbuf_add(b, h, sizeof(h));
	sbuf_add(b, c->salt, c->salt_len);
	sbuf_add(b, c->stored_key, key_len(c->hash));
	sbuf_add(b, c->server_key, key_len(c->hash));
}

/* Parses the part for one hash at *off (after its hash byte): 0 or
 * -EIO. */
static int get_creds(const struct sbuf *b, size_t *off, enum sasl_hash hash,
		     struct scram_creds *out)
{
	const unsigned char *p = (const unsigned char *)b->p + *off;
	size_t left = b->len - *off, klen = key_len(hash);

	if (left < 5)
		return -EIO;
	memset(out, 0, sizeof(*out));
	out->hash = hash;
	out->iterations = (unsigned)p[0] << 24 | (unsigned)p[1] << 16 |
			  (unsigned)p[2] << 8 | p[3];
	out->salt_len = p[4];
	if (out->iterations == 0 || out->iterations > INT32_MAX ||
	    out->salt_len == 0 || out->salt_len > SASL_MAX_SALT ||
	    left < 5 + out->salt_len + 2 * klen)
		return -EIO;
	p += 5;
	memcpy(out->salt, p, out->salt_len);
	p += out->salt_len;
	memcpy(out->stored_key, p, klen);
	memcpy(out->server_key, p + klen, klen);
	*off += 5 + out->salt_len + 2 * klen;
	return 0;
}

/* Finds the credentials for hash in a record: 0, -ENOENT or -EIO. */
static int parse_record(const struct sbuf *b, enum sasl_hash hash,
			struct scram_creds *out)
{
	struct scram_creds c;
	size_t off = 1;
	int rc = -ENOENT, prev = 0;

	if (b->len < 1)
		return -EIO;
	if ((unsigned char)b->p[0] == ACCOUNTS_V1) {
		for (size_t i = 0; i < ARRAY_SIZE(record_hashes) && rc != -EIO; i++) {
			int r = get_creds(b, &off, record_hashes[i], &c);
			if (r)
				rc = r;
			else if (record_hashes[i] == hash)
				*out = c, rc = 0;
		}
	} else if ((unsigned char)b->p[0] == ACCOUNTS_VERSION) {
		if (off >= b->len)
			rc = -EIO;
		while (rc != -EIO && off < b->len) {
			int h = (unsigned char)b->p[off++];
			if (h <= prev || h > SASL_HASH_SHA256 ||
			    get_creds(b, &off, (enum sasl_hash)h, &c) != 0)
				rc = -EIO;
			else if (h == (int)hash)
				*out = c, rc = 0;
			prev = h;
		}
	} else {
		rc = -EIO;
	}
	if (rc == 0 && off != b->len)
		rc = -EIO;
	OPENSSL_cleanse(&c, sizeof(c));
	return rc;
}

/* The accounts of host: on LMDB, or on PostgreSQL in a cluster. */
static struct store accounts_of(const char *host)
{
	struct store s;

	store_init(&s, store_accounts_engine(), host, NULL, STORE_KIND_ACCOUNTS);
	return s;			/* host NULL: calls answer -EINVAL */
}

int accounts_get(const char *host, const char *user, enum sasl_hash hash,
		 struct scram_creds *out)
{
	struct store s = accounts_of(host);
	struct sbuf b;
	int rc;

	sbuf_init(&b);
	rc = store_get(&s, user, NULL, 0, &b);
	if (rc == 0)
		rc = parse_record(&b, hash, out);
	if (rc == -EIO)
		log_error("accounts: the record of %s@%s is corrupt", user, host);
	if (b.p)
		OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&b);
	return rc;
}

bool accounts_exists(const char *host, const char *user)
{
	struct store s = accounts_of(host);
	struct sbuf b;
	int rc;

	sbuf_init(&b);
	rc = store_get(&s, user, NULL, 0, &b);
	sbuf_free(&b);
	return rc == 0;
}

static bool creds_valid(const struct scram_creds *c)
{
	return (c->hash == SASL_HASH_SHA1 || c->hash == SASL_HASH_SHA256) &&
	       c->iterations > 0 && c->iterations <= INT32_MAX &&
	       c->salt_len > 0 && c->salt_len <= SASL_MAX_SALT;
}

int accounts_set_creds(const char *host, const char *user,
		       const struct scram_creds *creds, size_t n)
{
	struct store s = accounts_of(host);
	struct sbuf b;
	int rc;

	if (n == 0 || n > ARRAY_SIZE(record_hashes))
		return -EINVAL;
	for (size_t j = 0; j < n; j++) {
		if (!creds_valid(&creds[j]))
			return -EINVAL;
		for (size_t k = 0; k < j; k++)
			if (creds[k].hash == creds[j].hash)
				return -EINVAL;
	}
	sbuf_init(&b);
	sbuf_addc(&b, ACCOUNTS_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(record_hashes); i++)
		for (size_t j = 0; j < n; j++)
			if (creds[j].hash == record_hashes[i])
				put_creds(&b, &creds[j]);
	rc = store_put(&s, user, NULL, 0, b.p, b.len);
	OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&b);
	/* New credentials: the FAST tokens the old ones earned go. */
	if (rc == 0)
		rc = fast_revoke_user(host, user, NULL);
	return rc;
}

int accounts_set_password(const char *host, const char *user,
			  const char *password, unsigned iterations)
{
	struct scram_creds c[ARRAY_SIZE(record_hashes)];
	int rc = 0;

	if (!iterations)
		iterations = ACCOUNTS_DEFAULT_ITERATIONS;
	for (size_t i = 0; i < ARRAY_SIZE(record_hashes) && rc == 0; i++)
		rc = scram_derive(record_hashes[i], password, NULL, 0,
				  iterations, &c[i]);
	if (rc == 0)
		rc = accounts_set_creds(host, user, c, ARRAY_SIZE(c));
	OPENSSL_cleanse(c, sizeof(c));
	return rc;
}

int accounts_delete(const char *host, const char *user)
{
	bool existed = accounts_exists(host, user);
	int rc = store_purge_user(host, user);

	if (rc == 0 && !existed)
		rc = -ENOENT;
	return rc;
}

int accounts_list(const char *host, int (*fn)(void *ctx, const char *user),
		  void *ctx)
{
	struct store s = accounts_of(host);

	return store_users(&s, fn, ctx);
}

int accounts_check_password(const char *host, const char *user,
			    const char *password)
{
	struct scram_creds have, got;
	int rc, derived;

	rc = accounts_get(host, user, SASL_HASH_SHA256, &have);
	if (rc == -ENOENT && accounts_exists(host, user))
		rc = accounts_get(host, user, SASL_HASH_SHA1, &have);
	if (rc == -ENOENT) {
		/* Spend the same work as for a real user, so the time
		 * taken does not tell whether the account exists. */
		scram_derive(SASL_HASH_SHA256, password, NULL, 0,
			     ACCOUNTS_DEFAULT_ITERATIONS, &got);
		OPENSSL_cleanse(&got, sizeof(got));
		return -ENOENT;
	}
	if (rc)
		return rc;
	derived = scram_derive(have.hash, password, have.salt, have.salt_len,
			       have.iterations, &got);
	if (derived == 0 && ct_memcmp(got.stored_key, have.stored_key,
				      key_len(have.hash)) == 0)
		rc = 0;
	else
		rc = -EACCES;
	OPENSSL_cleanse(&have, sizeof(have));
	OPENSSL_cleanse(&got, sizeof(got));
	return rc;
}
