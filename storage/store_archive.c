/*
 * store_archive.c - archive stores on any engine (store.h): items ordered
 * by time, indexed by 'with' and by id. This file has the layout (keys,
 * records, ids), appending and reading one item; store_archive_query.c
 * finds and deletes, store_archive_summary.c counts per with and lists
 * days, store_archive_index.c writes the with index behind the traffic.
 *
 * P (the archive's prefix) is host \0 user \0 store \0; T8 is a time in
 * microseconds as 8 big-endian bytes with the sign bit flipped, so keys
 * sort by time (before 1970 too).
 *
 *   archive       P T8 id        -> varint(with_len + 1, or 0: none) with
 *                                   value (value.c's bytes, as given)
 *   archive_with  P W \0 T8 id   -> (empty)
 *   archive_id    P id           -> T8   (only for ids not made here)
 *
 * W is the item's 'with' when it is at most WITH_KEY_MAX bytes without a
 * NUL, else "\1" and the hex SHA-256 of it; whatever W is, items are
 * matched against the 'with' stored in the record, so two long withs that
 * shared a W would still be told apart. Items are ordered by (time, id):
 * key order. An item is written as up to three records and deleted as
 * three, in the same batch, each time with an add to the archive's usage
 * record (store_archive_usage.c).
 *
 * An id made here (id_generate) spells its item's time, so it needs no
 * archive_id record: arch_locate reads the time off the id and checks that
 * the item is there, and only falls back to archive_id when not (an id
 * given by the caller, e.g. imported, that happens to look like ours).
 * That saves a third of the records, and of the pages a busy batch
 * dirties, on the path every archived message takes.
 *
 * The with index is written later for the items that pass by (appended
 * now, with a made id): their with entries land at random places in the
 * index (one per conversation), and a page dirtied for each one is most
 * of what archiving a message would cost. A job writes them in batches,
 * user by user, sorted, so a batch of a user's items shares pages:
 *
 *   archive_meta  host \0 store -> T8 until, T8 floor
 *
 * Items before until have their with entries. A pass of the job
 * (store_archive_index_step) takes [until, target) with target some time
 * behind now: it first sets floor to target, writes the entries of every
 * user's items in that span, then sets until to target. An append defers
 * its entry only when its time is at or after floor; any other (an
 * explicit time, an id given, a clock that went back) writes it at once.
 * A query by with reads the index before until and scans the archive
 * itself, filtered by with, from until on, so it sees every item at any
 * time. No meta record: nothing was ever deferred, the index is whole.
 */
#include "store_archive.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <openssl/evp.h>

#define WITH_KEY_MAX 128
#define SCRATCH_KEEP 65536	/* bytes a scratch buffer keeps */

int arch_init(struct arch *a, const struct store *s, const char *user)
{
	const char *host = s->host, *store = s->name;

	a->e = s->engine;
	a->host = host;
	a->store = store;
	sbuf_init(&a->p);
	if (s->kind != STORE_KIND_ARCHIVE || !user || !store)
		return -EINVAL;
	sbuf_reserve(&a->p, strlen(host) + strlen(user) + strlen(store) + 3);
	sbuf_add(&a->p, host, strlen(host) + 1);
	sbuf_add(&a->p, user, strlen(user) + 1);
	sbuf_add(&a->p, store, strlen(store) + 1);
	return a->p.len + 8 > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

void arch_free(struct arch *a)
{
	sbuf_free(&a->p);
}

/* ---- encoding ---- */

void arch_put_t8(struct sbuf *b, int64_t t)
{
	uint64_t u = (uint64_t)t ^ (UINT64_C(1) << 63);
	unsigned char c[8];

	for (int i = 7; i >= 0; i--) {
		c[i] = u & 0xff;
		u >>= 8;
	}
	sbuf_add(b, c, 8);
}

int64_t arch_get_t8(const void *p)
{
	const unsigned char *c = p;
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = u << 8 | c[i];
	return (int64_t)(u ^ (UINT64_C(1) << 63));
}

static void put_varint(struct sbuf *b, uint64_t v)
{
	do {
		unsigned char c = v & 0x7f;
		v >>= 7;
		if (v)
			c |= 0x80;
		sbuf_addc(b, (char)c);
	} while (v);
}

/* The record of an item: its with and value. -EILSEQ when corrupt. */
int arch_rec_parse(const void *v, size_t vlen, struct store_arch_item *it)
{
	const unsigned char *p = v, *end = p + vlen;
	uint64_t n = 0;
	int shift = 0;

	for (;;) {
		if (p >= end || shift > 56)
			return -EILSEQ;
		n |= (uint64_t)(*p & 0x7f) << shift;
		shift += 7;
		if (!(*p++ & 0x80))
			break;
	}
	if (n > (uint64_t)(end - p) + 1)
		return -EILSEQ;
	it->with = n ? (const char *)p : NULL;
	it->with_len = n ? (size_t)n - 1 : 0;
	p += it->with_len;
	it->val = p;
	it->val_len = (size_t)(end - p);
	return 0;
}

/* W (see the top) appended to b. */
static void put_w(struct sbuf *b, const char *with, size_t wlen)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	if (wlen <= WITH_KEY_MAX && !memchr(with, '\0', wlen)) {
		sbuf_add(b, with, wlen);
		return;
	}
	EVP_Digest(with, wlen, md, &mdlen, EVP_sha256(), NULL);
	sbuf_addc(b, '\1');
	for (unsigned i = 0; i < mdlen; i++) {
		sbuf_addc(b, hex[md[i] >> 4]);
		sbuf_addc(b, hex[md[i] & 15]);
	}
}

bool arch_w_is_exact(const char *with, size_t wlen)
{
	return wlen <= WITH_KEY_MAX && !memchr(with, '\0', wlen);
}

void arch_prim_key(const struct arch *a, struct sbuf *k, int64_t t,
		   const char *id, size_t id_len)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	arch_put_t8(k, t);
	sbuf_add(k, id, id_len);
}

/* P W \0 into k: the prefix of one with's index entries. */
void arch_with_prefix(const struct arch *a, struct sbuf *k,
		      const char *with, size_t wlen)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	put_w(k, with, wlen);
	sbuf_addc(k, '\0');
}

void arch_id_key(const struct arch *a, struct sbuf *k, const char *id,
		 size_t id_len)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	sbuf_add(k, id, id_len);
}

/* The least key above every key starting with prefix (every prefix here
 * ends in a NUL or another byte below 0xff). */
void arch_prefix_end(struct sbuf *hi, const struct sbuf *prefix)
{
	sbuf_reset(hi);
	sbuf_add(hi, prefix->p, prefix->len);
	while (hi->len && (unsigned char)hi->p[hi->len - 1] == 0xff)
		hi->len--;
	if (hi->len)
		hi->p[hi->len - 1]++;
}

int arch_buf_cmp(const struct sbuf *a, const struct sbuf *b)
{
	int c = memcmp(a->p, b->p, MIN(a->len, b->len));

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Records of a buffer that start with a length-prefixed key (size_t len,
 * len bytes) followed by tail bytes: compared by key, and listed sorted
 * (pointers into the buffer, *n of them; free the array). */
int arch_lenkey_cmp(const void *x, const void *y)
{
	const char *a = *(const char *const *)x, *b = *(const char *const *)y;
	size_t la, lb;
	int c;

	memcpy(&la, a, sizeof(la));
	memcpy(&lb, b, sizeof(lb));
	c = memcmp(a + sizeof(la), b + sizeof(lb), MIN(la, lb));
	return c ? c : (la > lb) - (la < lb);
}

const char **arch_lenkey_sort(const struct sbuf *buf, size_t tail,
			      size_t *n)
{
	size_t cap = 16;
	const char **rs = xcalloc(cap, sizeof(*rs));

	*n = 0;
	for (size_t off = 0; off < buf->len; (*n)++) {
		size_t len;
		if (*n == cap)
			rs = xrealloc(rs, (cap *= 2) * sizeof(*rs));
		rs[*n] = buf->p + off;
		memcpy(&len, rs[*n], sizeof(len));
		off += sizeof(len) + len + tail;
	}
	qsort(rs, *n, sizeof(*rs), arch_lenkey_cmp);
	return rs;
}

/* ---- ids ---- */

static const char id_alphabet[] =
	"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/* 11 characters of the time of appending (strictly increasing in this
 * process), then 4 characters drawn once per process (two processes
 * appending in the same microsecond still differ): unique, and sorted by
 * when they were made. out has STORE_ID_GEN_LEN + 1 bytes. Returns the
 * time spelt, in microseconds. */
static int64_t id_generate(char *out)
{
	static uint64_t last;
	static char salt[4];
	uint64_t now = (uint64_t)(now_wall() * 1e6);

	if (!salt[0]) {
		unsigned char rnd[4];
		random_bytes(rnd, sizeof(rnd));
		for (int i = 0; i < 4; i++)
			salt[i] = id_alphabet[rnd[i] & 63];
	}
	if (now <= last)
		now = last + 1;
	last = now;
	for (int i = 10, u = 0; i >= 0; i--, u += 6)
		out[i] = id_alphabet[(now >> u) & 63];
	memcpy(out + 11, salt, 4);
	out[STORE_ID_GEN_LEN] = '\0';
	return (int64_t)now;
}

/* The time an id of id_generate's shape spells; false when it has not
 * that shape (it may still be an id given by a caller). */
static bool id_time(const char *id, size_t id_len, int64_t *t)
{
	uint64_t u = 0;

	if (id_len != STORE_ID_GEN_LEN)
		return false;
	for (size_t i = 0; i < id_len; i++) {
		const char *c = memchr(id_alphabet, id[i], 64);
		if (!c || !id[i])
			return false;
		if (i < 11)
			u = u << 6 | (uint64_t)(c - id_alphabet);
	}
	if (u > INT64_MAX)
		return false;
	*t = (int64_t)u;
	return true;
}

static int id_check(const char *id, size_t id_len)
{
	if (!id || id_len == 0)
		return -EINVAL;
	return id_len > STORE_ID_MAX ? -ENAMETOOLONG : 0;
}

int arch_locate(const struct arch *a, const char *id, size_t id_len,
		int64_t *t)
{
	struct sbuf k, v;
	int rc = id_check(id, id_len);

	if (rc)
		return rc;
	sbuf_init(&k);
	sbuf_init(&v);
	if (id_time(id, id_len, t)) {
		arch_prim_key(a, &k, *t, id, id_len);
		rc = a->e->get(STORE_ARCHIVE, k.p, k.len, &v);
		if (rc != -ENOENT)
			goto out;
	}
	arch_id_key(a, &k, id, id_len);
	rc = a->e->get(STORE_ARCHIVE_ID, k.p, k.len, &v);
	if (rc == 0 && v.len != 8)
		rc = -EILSEQ;
	if (rc == 0)
		*t = arch_get_t8(v.p);
out:
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

/* ---- writing ---- */

/* Deletes the item (t, id) and its index entries. */
int arch_item_delete(const struct arch *a, int64_t t, const char *id,
		     size_t id_len)
{
	struct store_arch_item it;
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	arch_prim_key(a, &k, t, id, id_len);
	rc = a->e->get(STORE_ARCHIVE, k.p, k.len, &v);
	if (rc == 0)
		rc = a->e->del(STORE_ARCHIVE, k.p, k.len);
	if (rc == 0)
		rc = arch_usage_add(a, -1,
			-(int64_t)arch_item_bytes(id_len, v.p, v.len));
	if (rc == 0 && arch_rec_parse(v.p, v.len, &it) == 0 && it.with) {
		arch_with_prefix(a, &k, it.with, it.with_len);
		arch_put_t8(&k, t);
		sbuf_add(&k, id, id_len);
		rc = a->e->del(STORE_ARCHIVE_WITH, k.p, k.len);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc == 0 || rc == -ENOENT) {
		arch_id_key(a, &k, id, id_len);
		int r2 = a->e->del(STORE_ARCHIVE_ID, k.p, k.len);
		if (r2 != -ENOENT)
			rc = r2;
		else if (rc == -ENOENT)
			rc = 0;		/* an index entry alone: gone now */
	}
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

/* Writes the item and its index entries: the with index unless
 * deferred, the id index only when indexed (see the top). */
static int item_write(const struct arch *a, int64_t when, const char *id,
		      size_t id_len, const char *with, size_t wlen,
		      const void *val, size_t vlen, bool deferred,
		      bool indexed)
{
	static struct sbuf k, v;	/* scratch, kept between appends */
	int rc;

	put_varint(&v, with ? (uint64_t)wlen + 1 : 0);
	if (with)
		sbuf_add(&v, with, wlen);
	sbuf_add(&v, val, vlen);
	arch_prim_key(a, &k, when, id, id_len);
	rc = a->e->put(STORE_ARCHIVE, k.p, k.len, v.p, v.len);
	if (rc == 0)
		rc = arch_usage_add(a, 1,
			(int64_t)(id_len + (with ? wlen : 0) + vlen));
	if (rc == 0 && with && !deferred) {
		arch_with_prefix(a, &k, with, wlen);
		arch_put_t8(&k, when);
		sbuf_add(&k, id, id_len);
		rc = a->e->put(STORE_ARCHIVE_WITH, k.p, k.len, "", 0);
	}
	if (rc == 0 && indexed) {
		arch_id_key(a, &k, id, id_len);
		sbuf_reset(&v);
		arch_put_t8(&v, when);
		rc = a->e->put(STORE_ARCHIVE_ID, k.p, k.len, v.p, v.len);
	}
	sbuf_recycle(&k, SCRATCH_KEEP);
	sbuf_recycle(&v, SCRATCH_KEEP);
	return rc;
}

int store_archive_append(const struct store *s, const char *user,
			 const struct store_arch_item *it, char *idout)
{
	char gen[STORE_ID_GEN_LEN + 1];
	const char *id = it->id;
	size_t id_len = it->id_len;
	int64_t when = it->when, old, made = 0;
	bool indexed = true, deferred = false;
	struct arch a;
	int rc = arch_init(&a, s, user);

	if (rc == 0 && id) {
		rc = arch_locate(&a, id, id_len, &old);
		if (rc == 0)
			rc = arch_item_delete(&a, old, id, id_len);
		else if (rc == -ENOENT)
			rc = 0;
	} else if (rc == 0) {
		made = id_generate(gen);
		id = gen;
		id_len = STORE_ID_GEN_LEN;
		if (when == STORE_WHEN_NOW) {
			when = made;
			if (it->with)
				rc = arch_may_defer(&a, made, &deferred);
		}
		indexed = when != made;
	}
	if (when == STORE_WHEN_NOW)
		when = (int64_t)llround(now_wall() * 1e6);
	if (rc == 0)
		rc = item_write(&a, when, id, id_len, it->with, it->with_len,
				it->val, it->val_len, deferred, indexed);
	if (rc == 0 && idout) {
		memcpy(idout, id, id_len);
		idout[id_len] = '\0';
	}
	arch_free(&a);
	return rc;
}

/* ---- reading one ---- */

int store_archive_locate(const struct store *s, const char *user,
			 const char *id, size_t id_len,
			 struct store_arch_pos *pos)
{
	struct arch a;
	int rc = arch_init(&a, s, user);

	if (rc == 0)
		rc = arch_locate(&a, id, id_len, &pos->when);
	if (rc == 0) {
		pos->id = id;
		pos->id_len = id_len;
	}
	arch_free(&a);
	return rc;
}

/* Reads item (t, id) into it, its bytes in v. */
int arch_item_read(const struct arch *a, int64_t t, const char *id,
		   size_t id_len, struct sbuf *k, struct sbuf *v,
		   struct store_arch_item *it)
{
	int rc;

	arch_prim_key(a, k, t, id, id_len);
	rc = a->e->get(STORE_ARCHIVE, k->p, k->len, v);
	if (rc == 0)
		rc = arch_rec_parse(v->p, v->len, it);
	it->when = t;
	it->id = id;
	it->id_len = id_len;
	return rc;
}

int store_archive_get(const struct store *s, const char *user,
		      const char *id, size_t id_len,
		      int (*fn)(void *ctx, const struct store_arch_item *it),
		      void *ctx)
{
	struct store_arch_item it;
	struct sbuf k, v;
	struct arch a;
	int64_t t;
	int rc = arch_init(&a, s, user);

	sbuf_init(&k);
	sbuf_init(&v);
	if (rc == 0)
		rc = arch_locate(&a, id, id_len, &t);
	if (rc == 0)
		rc = arch_item_read(&a, t, id, id_len, &k, &v, &it);
	if (rc == 0)
		fn(ctx, &it);
	sbuf_free(&k);
	sbuf_free(&v);
	arch_free(&a);
	return rc;
}

