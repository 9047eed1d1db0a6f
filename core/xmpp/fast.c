/*
 * fast.c - FAST tokens over the store, and the HT-SHA-256 check.
 *
 * Record (map store "fast_tokens", key: the user-agent id), version 1:
 *   u8 version (1)
 *   two slots, 'new' then 'current', each:
 *     u8 present, u8 mechanism (enum fast_mech), i64 expiry (seconds
 *     since the epoch, big endian), u32 the highest count seen (big
 *     endian), 32 bytes SHA-256(token)
 * A record that does not parse is treated as none (and replaced by the
 * next token issued).
 */
#include "fast.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define FAST_STORE "fast_tokens"
#define FAST_VERSION 1
#define SLOT_NEW 0
#define SLOT_CURRENT 1
#define SLOT_BYTES (1 + 1 + 8 + 4 + 32)
#define RECORD_BYTES (1 + 2 * SLOT_BYTES)

struct fast_slot {
	bool present;
	enum fast_mech mech;
	int64_t expiry;
	uint32_t count;
	unsigned char key[32];		/* SHA-256(token) */
};

struct fast_record {
	struct fast_slot slot[2];
};

static const char *const mech_names[FAST_NMECH] = {
	"HT-SHA-256-NONE", "HT-SHA-256-UNIQ", "HT-SHA-256-ENDP", "HT-SHA-256-EXPR",
};

static const char *const cb_types[FAST_NMECH] = {
	NULL, "tls-unique", "tls-server-end-point", "tls-exporter",
};

const char *fast_mech_name(enum fast_mech m)
{
	return m < FAST_NMECH ? mech_names[m] : NULL;
}

int fast_mech_find(const char *name)
{
	for (int i = 0; name && i < FAST_NMECH; i++)
		if (strcmp(name, mech_names[i]) == 0)
			return i;
	return -1;
}

const char *fast_cb_type(enum fast_mech m)
{
	return m < FAST_NMECH ? cb_types[m] : NULL;
}

static struct store tokens_of(const char *host)
{
	struct store s;

	store_init(&s, store_accounts_engine(), host, FAST_STORE, STORE_KIND_MAP);
	return s;
}

/* ---- the record ---- */

static void put_slot(unsigned char *p, const struct fast_slot *sl)
{
	uint64_t e = (uint64_t)sl->expiry;

	memset(p, 0, SLOT_BYTES);
	if (!sl->present)
		return;
	p[0] = 1;
	p[1] = (unsigned char)sl->mech;
	for (int i = 0; i < 8; i++)
		p[2 + i] = (unsigned char)(e >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		p[10 + i] = (unsigned char)(sl->count >> (24 - 8 * i));
	memcpy(p + 14, sl->key, 32);
}

static int get_slot(const unsigned char *p, struct fast_slot *sl)
{
	uint64_t e = 0;

	memset(sl, 0, sizeof(*sl));
	if (p[0] == 0)
		return 0;
	if (p[0] != 1 || p[1] >= FAST_NMECH)
		return -EIO;
	sl->present = true;
	sl->mech = (enum fast_mech)p[1];
	for (int i = 0; i < 8; i++)
		e = e << 8 | p[2 + i];
	sl->expiry = (int64_t)e;
	for (int i = 0; i < 4; i++)
		sl->count = sl->count << 8 | p[10 + i];
	memcpy(sl->key, p + 14, 32);
	return 0;
}

/* 0, -ENOENT (none, or one that does not parse), -EIO. */
static int record_get(const char *host, const char *user, const char *ua_id,
		      struct fast_record *r)
{
	struct store s = tokens_of(host);
	struct sbuf b;
	int rc;

	memset(r, 0, sizeof(*r));
	sbuf_init(&b);
	rc = store_get(&s, user, ua_id, strlen(ua_id), &b);
	if (rc == 0 && (b.len != RECORD_BYTES || (unsigned char)b.p[0] != FAST_VERSION ||
			get_slot((unsigned char *)b.p + 1, &r->slot[SLOT_NEW]) != 0 ||
			get_slot((unsigned char *)b.p + 1 + SLOT_BYTES, &r->slot[SLOT_CURRENT]) != 0)) {
		log_warn("fast: the tokens of %s@%s for one client are corrupt; ignored",
			 user, host);
		memset(r, 0, sizeof(*r));
		rc = -ENOENT;
	}
	if (b.p)
		OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&b);
	return rc == -ENOENT || rc == 0 ? rc : -EIO;
}

static int record_put(const char *host, const char *user, const char *ua_id,
		      const struct fast_record *r)
{
	struct store s = tokens_of(host);
	unsigned char buf[RECORD_BYTES];
	int rc;

	if (!r->slot[SLOT_NEW].present && !r->slot[SLOT_CURRENT].present) {
		rc = store_del(&s, user, ua_id, strlen(ua_id));
		return rc == -ENOENT ? 0 : rc;
	}
	buf[0] = FAST_VERSION;
	put_slot(buf + 1, &r->slot[SLOT_NEW]);
	put_slot(buf + 1 + SLOT_BYTES, &r->slot[SLOT_CURRENT]);
	rc = store_put(&s, user, ua_id, strlen(ua_id), buf, sizeof(buf));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* ---- HT-SHA-256 ---- */

/* HMAC-SHA-256 keyed with SHA-256(token), of label || cb. */
static void ht_mac(const unsigned char key[32], const char *label,
		   const unsigned char *cb, size_t cb_len, unsigned char out[32])
{
	unsigned char msg[16 + 64];
	size_t ll = strlen(label);
	unsigned int olen = 32;

	memcpy(msg, label, ll);
	if (cb_len > sizeof(msg) - ll)
		cb_len = sizeof(msg) - ll;	/* cb data is at most 64 bytes */
	if (cb_len)
		memcpy(msg + ll, cb, cb_len);
	if (!HMAC(EVP_sha256(), key, 32, msg, ll + cb_len, out, &olen)) {
		fputs("starling: HMAC-SHA-256 failed\n", stderr);
		abort();
	}
	OPENSSL_cleanse(msg, sizeof(msg));
}

int fast_parse_response(const char *in, size_t len, struct sbuf *user,
			const unsigned char **mac, size_t *mac_len)
{
	const char *nul = memchr(in, '\0', len);

	if (!nul || nul == in || (size_t)(nul - in) > 1023 ||
	    len - (size_t)(nul - in) - 1 != 32)
		return -EINVAL;
	sbuf_add(user, in, (size_t)(nul - in));
	if (!utf8_valid(user->p, user->len))
		return -EINVAL;
	*mac = (const unsigned char *)nul + 1;
	*mac_len = 32;
	return 0;
}

/* Whether slot sl holds the token a's mac was made with; both slots are
 * always computed, so the time taken tells nothing. */
static bool slot_matches(const struct fast_slot *sl, const struct fast_attempt *a,
			 unsigned char expect[32])
{
	static const unsigned char zero[32];

	ht_mac(sl->present ? sl->key : zero, "Initiator", a->cb, a->cb_len, expect);
	return ct_memcmp(expect, a->mac, 32) == 0 && sl->present && a->mac_len == 32;
}

int fast_check(const struct fast_attempt *a, double now, struct fast_used *out)
{
	struct fast_record r;
	unsigned char mac[2][32];
	bool hit[2];
	int rc, i;

	rc = record_get(a->host, a->user, a->ua_id, &r);
	if (rc == -EIO)
		return -EIO;
	hit[SLOT_NEW] = slot_matches(&r.slot[SLOT_NEW], a, mac[0]);
	hit[SLOT_CURRENT] = slot_matches(&r.slot[SLOT_CURRENT], a, mac[1]);
	OPENSSL_cleanse(mac, sizeof(mac));
	i = hit[SLOT_NEW] ? SLOT_NEW : hit[SLOT_CURRENT] ? SLOT_CURRENT : -1;
	if (i < 0 || r.slot[i].mech != a->mech) {
		rc = -EACCES;	/* XEP-0484: a token is bound to its mechanism */
		goto out;
	}
	if ((double)r.slot[i].expiry <= now) {
		rc = -EKEYEXPIRED;
		goto out;
	}
	if (a->has_count && a->count <= r.slot[i].count) {
		log_info("fast: a replayed count (%u) for %s@%s", a->count,
			 a->user, a->host);
		rc = -EACCES;
		goto out;
	}
	if (a->has_count)
		r.slot[i].count = a->count;
	if (i == SLOT_NEW) {	/* the new one is used: the old one goes */
		r.slot[SLOT_CURRENT] = r.slot[SLOT_NEW];
		memset(&r.slot[SLOT_NEW], 0, sizeof(r.slot[SLOT_NEW]));
	}
	ht_mac(r.slot[SLOT_CURRENT].key, "Responder", a->cb, a->cb_len, out->responder);
	out->expiry = (double)r.slot[SLOT_CURRENT].expiry;
	rc = record_put(a->host, a->user, a->ua_id, &r) == 0 ? 0 : -EIO;
out:
	OPENSSL_cleanse(&r, sizeof(r));
	return rc;
}

int fast_issue(const char *host, const char *user, const char *ua_id,
	       enum fast_mech mech, double now, double ttl,
	       char token[FAST_TOKEN_LEN + 1], double *expiry)
{
	struct fast_record r;
	struct fast_slot *sl;
	unsigned int olen = 32;
	int rc;

	if (mech >= FAST_NMECH || ttl <= 0)
		return -EINVAL;
	rc = record_get(host, user, ua_id, &r);
	if (rc == -EIO)
		return rc;
	random_id(token, FAST_TOKEN_LEN);
	sl = &r.slot[SLOT_NEW];
	memset(sl, 0, sizeof(*sl));
	sl->present = true;
	sl->mech = mech;
	sl->expiry = (int64_t)(now + ttl);
	if (!EVP_Digest(token, FAST_TOKEN_LEN, sl->key, &olen, EVP_sha256(), NULL)) {
		fputs("starling: SHA-256 failed\n", stderr);
		abort();
	}
	*expiry = (double)sl->expiry;
	rc = record_put(host, user, ua_id, &r);
	OPENSSL_cleanse(&r, sizeof(r));
	if (rc != 0)
		OPENSSL_cleanse(token, FAST_TOKEN_LEN + 1);
	return rc;
}

int fast_invalidate(const char *host, const char *user, const char *ua_id)
{
	struct store s = tokens_of(host);
	int rc = store_del(&s, user, ua_id, strlen(ua_id));

	return rc == -ENOENT ? 0 : rc;
}

struct revoke_ctx {
	struct store *s;
	const char *user;
	size_t n;
	int rc;
};

static int revoke_one(void *ctx, const char *key, size_t klen,
		      const void *val, size_t vlen)
{
	struct revoke_ctx *rc = ctx;
	int r = store_del(rc->s, rc->user, key, klen);

	if (r != 0 && r != -ENOENT) {
		rc->rc = r;
		return 1;
	}
	rc->n++;
	return 0;
}

int fast_revoke_user(const char *host, const char *user, size_t *n)
{
	struct store s = tokens_of(host);
	struct revoke_ctx ctx = { &s, user, 0, 0 };
	int rc = store_map_each(&s, user, revoke_one, &ctx);

	if (rc == 0)
		rc = ctx.rc;
	if (n)
		*n = ctx.n;
	if (ctx.n)
		log_info("fast: %zu client token(s) of %s@%s revoked", ctx.n, user, host);
	return rc == -ENOENT ? 0 : rc;
}
