/*
 * store_archive.c - archive stores on any engine (store.h): items ordered
 * by time, indexed by 'with' and by id.
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
 * three, in the same batch.
 *
 * An id made here (id_generate) spells its item's time, so it needs no
 * archive_id record: locate reads the time off the id and checks that
 * the item is there, and only falls back to archive_id when not (an id
 * given by the caller, e.g. imported, that happens to look like ours).
 * That saves a third of the records, and of the pages a busy batch
 * dirties, on the path every archived message takes.
 */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <openssl/evp.h>

#define WITH_KEY_MAX 128
#define DAY_US INT64_C(86400000000)

/* An archive: engine and key prefix P. */
struct arch {
	const struct store_engine *e;
	struct sbuf p;
};

static int arch_init(struct arch *a, const struct store_engine *e,
		     const char *host, const char *user, const char *store)
{
	a->e = e;
	sbuf_init(&a->p);
	if (!e || !host || !user || !store || !*store)
		return -EINVAL;
	sbuf_add(&a->p, host, strlen(host) + 1);
	sbuf_add(&a->p, user, strlen(user) + 1);
	sbuf_add(&a->p, store, strlen(store) + 1);
	return a->p.len + 8 > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

static void arch_free(struct arch *a)
{
	sbuf_free(&a->p);
}

/* ---- encoding ---- */

static void put_t8(struct sbuf *b, int64_t t)
{
	uint64_t u = (uint64_t)t ^ (UINT64_C(1) << 63);
	unsigned char c[8];

	for (int i = 7; i >= 0; i--) {
		c[i] = u & 0xff;
		u >>= 8;
	}
	sbuf_add(b, c, 8);
}

static int64_t get_t8(const void *p)
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
static int rec_parse(const void *v, size_t vlen, struct store_arch_item *it)
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

static bool w_is_exact(const char *with, size_t wlen)
{
	return wlen <= WITH_KEY_MAX && !memchr(with, '\0', wlen);
}

static void prim_key(const struct arch *a, struct sbuf *k, int64_t t,
		     const char *id, size_t id_len)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	put_t8(k, t);
	sbuf_add(k, id, id_len);
}

/* P W \0 into k: the prefix of one with's index entries. */
static void with_prefix(const struct arch *a, struct sbuf *k,
			const char *with, size_t wlen)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	put_w(k, with, wlen);
	sbuf_addc(k, '\0');
}

static void id_key(const struct arch *a, struct sbuf *k, const char *id,
		   size_t id_len)
{
	sbuf_reset(k);
	sbuf_add(k, a->p.p, a->p.len);
	sbuf_add(k, id, id_len);
}

/* The least key above every key starting with prefix (every prefix here
 * ends in a NUL or another byte below 0xff). */
static void prefix_end(struct sbuf *hi, const struct sbuf *prefix)
{
	sbuf_reset(hi);
	sbuf_add(hi, prefix->p, prefix->len);
	while (hi->len && (unsigned char)hi->p[hi->len - 1] == 0xff)
		hi->len--;
	if (hi->len)
		hi->p[hi->len - 1]++;
}

static int buf_cmp(const struct sbuf *a, const struct sbuf *b)
{
	int c = memcmp(a->p, b->p, MIN(a->len, b->len));

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
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

static int locate(const struct arch *a, const char *id, size_t id_len,
		  int64_t *t)
{
	struct sbuf k, v;
	int rc = id_check(id, id_len);

	if (rc)
		return rc;
	sbuf_init(&k);
	sbuf_init(&v);
	if (id_time(id, id_len, t)) {
		prim_key(a, &k, *t, id, id_len);
		rc = a->e->get(STORE_ARCHIVE, k.p, k.len, &v);
		if (rc != -ENOENT)
			goto out;
	}
	id_key(a, &k, id, id_len);
	rc = a->e->get(STORE_ARCHIVE_ID, k.p, k.len, &v);
	if (rc == 0 && v.len != 8)
		rc = -EILSEQ;
	if (rc == 0)
		*t = get_t8(v.p);
out:
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

/* ---- writing ---- */

/* Deletes the item (t, id) and its index entries. */
static int item_delete(const struct arch *a, int64_t t, const char *id,
		       size_t id_len)
{
	struct store_arch_item it;
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	prim_key(a, &k, t, id, id_len);
	rc = a->e->get(STORE_ARCHIVE, k.p, k.len, &v);
	if (rc == 0)
		rc = a->e->del(STORE_ARCHIVE, k.p, k.len);
	if (rc == 0 && rec_parse(v.p, v.len, &it) == 0 && it.with) {
		with_prefix(a, &k, it.with, it.with_len);
		put_t8(&k, t);
		sbuf_add(&k, id, id_len);
		rc = a->e->del(STORE_ARCHIVE_WITH, k.p, k.len);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc == 0 || rc == -ENOENT) {
		id_key(a, &k, id, id_len);
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

/* Writes the item and its index entries; the id index only when
 * indexed (see the top). */
static int item_write(const struct arch *a, int64_t when, const char *id,
		      size_t id_len, const char *with, size_t wlen,
		      const void *val, size_t vlen, bool indexed)
{
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	put_varint(&v, with ? (uint64_t)wlen + 1 : 0);
	if (with)
		sbuf_add(&v, with, wlen);
	sbuf_add(&v, val, vlen);
	prim_key(a, &k, when, id, id_len);
	rc = a->e->put(STORE_ARCHIVE, k.p, k.len, v.p, v.len);
	if (rc == 0 && with) {
		with_prefix(a, &k, with, wlen);
		put_t8(&k, when);
		sbuf_add(&k, id, id_len);
		rc = a->e->put(STORE_ARCHIVE_WITH, k.p, k.len, "", 0);
	}
	if (rc == 0 && indexed) {
		id_key(a, &k, id, id_len);
		sbuf_reset(&v);
		put_t8(&v, when);
		rc = a->e->put(STORE_ARCHIVE_ID, k.p, k.len, v.p, v.len);
	}
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

int store_archive_append(const struct store_engine *e, const char *host,
			 const char *user, const char *store,
			 const char *id, size_t id_len, int64_t when,
			 const char *with, size_t with_len,
			 const void *val, size_t val_len, char *idout)
{
	char gen[STORE_ID_GEN_LEN + 1];
	struct arch a;
	int64_t old, made = 0;
	bool indexed = true;
	int rc = arch_init(&a, e, host, user, store);

	if (rc == 0 && id) {
		rc = locate(&a, id, id_len, &old);
		if (rc == 0)
			rc = item_delete(&a, old, id, id_len);
		else if (rc == -ENOENT)
			rc = 0;
	} else if (rc == 0) {
		made = id_generate(gen);
		id = gen;
		id_len = STORE_ID_GEN_LEN;
		if (when == STORE_WHEN_NOW)
			when = made;
		indexed = when != made;
	}
	if (when == STORE_WHEN_NOW)
		when = (int64_t)llround(now_wall() * 1e6);
	if (rc == 0)
		rc = item_write(&a, when, id, id_len, with, with_len, val,
				val_len, indexed);
	if (rc == 0 && idout) {
		memcpy(idout, id, id_len);
		idout[id_len] = '\0';
	}
	arch_free(&a);
	return rc;
}

/* ---- reading one ---- */

int store_archive_locate(const struct store_engine *e, const char *host,
			 const char *user, const char *store,
			 const char *id, size_t id_len,
			 struct store_arch_pos *pos)
{
	struct arch a;
	int rc = arch_init(&a, e, host, user, store);

	if (rc == 0)
		rc = locate(&a, id, id_len, &pos->when);
	if (rc == 0) {
		pos->id = id;
		pos->id_len = id_len;
	}
	arch_free(&a);
	return rc;
}

/* Reads item (t, id) into it, its bytes in v. */
static int item_read(const struct arch *a, int64_t t, const char *id,
		     size_t id_len, struct sbuf *k, struct sbuf *v,
		     struct store_arch_item *it)
{
	int rc;

	prim_key(a, k, t, id, id_len);
	rc = a->e->get(STORE_ARCHIVE, k->p, k->len, v);
	if (rc == 0)
		rc = rec_parse(v->p, v->len, it);
	it->when = t;
	it->id = id;
	it->id_len = id_len;
	return rc;
}

int store_archive_get(const struct store_engine *e, const char *host,
		      const char *user, const char *store,
		      const char *id, size_t id_len,
		      int (*fn)(void *ctx, const struct store_arch_item *it),
		      void *ctx)
{
	struct store_arch_item it;
	struct sbuf k, v;
	struct arch a;
	int64_t t;
	int rc = arch_init(&a, e, host, user, store);

	sbuf_init(&k);
	sbuf_init(&v);
	if (rc == 0)
		rc = locate(&a, id, id_len, &t);
	if (rc == 0)
		rc = item_read(&a, t, id, id_len, &k, &v, &it);
	if (rc == 0)
		fn(ctx, &it);
	sbuf_free(&k);
	sbuf_free(&v);
	arch_free(&a);
	return rc;
}

/* ---- find ---- */

struct find {
	const struct arch *a;
	const struct store_arch_query *q;
	int (*fn)(void *ctx, const struct store_arch_item *it);
	void *ctx;
	size_t left;			/* items still wanted, with a limit */
	size_t base_len;		/* where T8 starts in scanned keys */
	bool exact_w;			/* the with index key is the with */
	struct sbuf k, v;		/* scratch for record reads */
	size_t count;
};

static bool with_matches(const struct store_arch_query *q,
			 const struct store_arch_item *it)
{
	return !q->with || (it->with && it->with_len == q->with_len &&
			    memcmp(it->with, q->with, q->with_len) == 0);
}

/* Hands an item to the caller: 0 to go on, 1 to stop, or an error. */
static int deliver(struct find *f, const struct store_arch_item *it)
{
	int r;

	if (f->q->has_limit) {
		if (f->left == 0)
			return 1;
		f->left--;
	}
	r = f->fn(f->ctx, it);
	if (r)
		return r < 0 ? r : 1;
	return f->q->has_limit && f->left == 0;
}

/* The time and id of a scanned key. */
static int key_pos(const struct find *f, const void *k, size_t klen,
		   struct store_arch_item *it)
{
	const char *c = k;

	if (klen <= f->base_len + 8)
		return -EILSEQ;
	it->when = get_t8(c + f->base_len);
	it->id = c + f->base_len + 8;
	it->id_len = klen - f->base_len - 8;
	return 0;
}

static int on_item(void *ctx, const void *k, size_t klen, const void *v,
		   size_t vlen)
{
	struct find *f = ctx;
	struct store_arch_item it;
	int rc = key_pos(f, k, klen, &it);

	if (rc == 0)
		rc = rec_parse(v, vlen, &it);
	return rc ? rc : deliver(f, &it);
}

static int on_with_entry(void *ctx, const void *k, size_t klen,
			 const void *v, size_t vlen)
{
	struct find *f = ctx;
	struct store_arch_item it;
	int rc = key_pos(f, k, klen, &it);

	if (rc == 0)
		rc = item_read(f->a, it.when, it.id, it.id_len, &f->k, &f->v, &it);
	if (rc == -ENOENT || (rc == 0 && !with_matches(f->q, &it)))
		return 0;
	return rc ? rc : deliver(f, &it);
}

static int count_item(void *ctx, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	struct find *f = ctx;

	f->count++;
	return 0;
}

static int count_with_entry(void *ctx, const void *k, size_t klen,
			    const void *v, size_t vlen)
{
	struct find *f = ctx;
	struct store_arch_item it;
	int rc;

	if (f->exact_w) {
		f->count++;
		return 0;
	}
	rc = key_pos(f, k, klen, &it);
	if (rc == 0)
		rc = item_read(f->a, it.when, it.id, it.id_len, &f->k, &f->v, &it);
	if (rc == 0 && with_matches(f->q, &it))
		f->count++;
	return rc == -ENOENT ? 0 : rc;
}

static void pos_key(struct sbuf *k, const struct sbuf *base,
		    const struct store_arch_pos *pos)
{
	sbuf_reset(k);
	sbuf_add(k, base->p, base->len);
	put_t8(k, pos->when);
	sbuf_add(k, pos->id, pos->id_len);
}

/* The key range [lo, hi) of a scan under base: the time range, and
 * (use_pos) narrowed by after and before. false when empty. */
static bool scan_bounds(const struct store_arch_query *q,
			const struct sbuf *base, bool use_pos,
			struct sbuf *lo, struct sbuf *hi)
{
	struct sbuf t;

	sbuf_reset(lo);
	sbuf_add(lo, base->p, base->len);
	if (q->has_start)
		put_t8(lo, q->start);
	if (q->has_end && q->end < INT64_MAX) {
		sbuf_reset(hi);
		sbuf_add(hi, base->p, base->len);
		put_t8(hi, q->end + 1);
	} else {
		prefix_end(hi, base);
	}
	sbuf_init(&t);
	if (use_pos && q->after) {
		pos_key(&t, base, q->after);
		sbuf_addc(&t, '\0');		/* just past it */
		if (buf_cmp(&t, lo) > 0) {
			sbuf_reset(lo);
			sbuf_add(lo, t.p, t.len);
		}
	}
	if (use_pos && q->before) {
		pos_key(&t, base, q->before);
		if (buf_cmp(&t, hi) < 0) {
			sbuf_reset(hi);
			sbuf_add(hi, t.p, t.len);
		}
	}
	sbuf_free(&t);
	return buf_cmp(lo, hi) < 0;
}

static int scan_range(struct find *f, enum store_db db,
		      const struct sbuf *base, bool counting, size_t *total)
{
	struct sbuf lo, hi;
	int rc = 0;

	sbuf_init(&lo);
	sbuf_init(&hi);
	if (counting) {
		f->count = 0;
		if (scan_bounds(f->q, base, false, &lo, &hi))
			rc = f->a->e->scan(db, lo.p, lo.len, hi.p, hi.len, false,
					   db == STORE_ARCHIVE ? count_item
							       : count_with_entry, f);
		*total = f->count;
	} else if ((!f->q->has_limit || f->q->limit > 0) &&
		   scan_bounds(f->q, base, true, &lo, &hi)) {
		rc = f->a->e->scan(db, lo.p, lo.len, hi.p, hi.len, f->q->reverse,
				   db == STORE_ARCHIVE ? on_item : on_with_entry, f);
	}
	sbuf_free(&lo);
	sbuf_free(&hi);
	return rc;
}

struct id_pos {
	int64_t t;
	const char *id;
	size_t len;
};

static int pos_cmp(int64_t t1, const char *id1, size_t l1, int64_t t2,
		   const char *id2, size_t l2)
{
	int c;

	if (t1 != t2)
		return t1 < t2 ? -1 : 1;
	c = memcmp(id1, id2, MIN(l1, l2));
	if (c)
		return c;
	return l1 < l2 ? -1 : l1 > l2;
}

static int id_pos_cmp(const void *a, const void *b)
{
	const struct id_pos *x = a, *y = b;

	return pos_cmp(x->t, x->id, x->len, y->t, y->id, y->len);
}

/* Whether an item at p passes after and before. */
static bool in_window(const struct store_arch_query *q, const struct id_pos *p)
{
	if (q->after && pos_cmp(p->t, p->id, p->len, q->after->when,
				q->after->id, q->after->id_len) <= 0)
		return false;
	return !q->before || pos_cmp(p->t, p->id, p->len, q->before->when,
				     q->before->id, q->before->id_len) < 0;
}

/* The ids given: located, sorted, deduplicated, then filtered. */
static int find_ids(struct find *f, size_t *total)
{
	const struct store_arch_query *q = f->q;
	struct id_pos *ps = xcalloc(q->nids ? q->nids : 1, sizeof(*ps));
	size_t n = 0, matched = 0;
	bool done = q->has_limit && q->limit == 0;
	int rc = 0;

	for (size_t i = 0; i < q->nids && rc == 0; i++) {
		rc = locate(f->a, q->ids[i], q->id_lens[i], &ps[n].t);
		if (rc == 0) {
			ps[n].id = q->ids[i];
			ps[n++].len = q->id_lens[i];
		} else if (rc == -ENOENT || rc == -EINVAL || rc == -ENAMETOOLONG) {
			rc = 0;		/* an id that names nothing */
		}
	}
	qsort(ps, n, sizeof(*ps), id_pos_cmp);
	for (size_t j = 0; j < n && rc == 0; j++) {
		size_t i = q->reverse ? n - 1 - j : j;
		struct store_arch_item it;
		if ((j > 0 && id_pos_cmp(&ps[i], &ps[q->reverse ? i + 1 : i - 1]) == 0) ||
		    (q->has_start && ps[i].t < q->start) ||
		    (q->has_end && ps[i].t > q->end))
			continue;
		rc = item_read(f->a, ps[i].t, ps[i].id, ps[i].len, &f->k, &f->v, &it);
		if (rc == -ENOENT || (rc == 0 && !with_matches(q, &it))) {
			rc = 0;
			continue;
		}
		matched++;
		if (rc == 0 && !done && in_window(q, &ps[i])) {
			rc = deliver(f, &it);
			done = rc != 0;
			rc = rc < 0 ? rc : 0;
		}
	}
	if (total)
		*total = matched;
	free(ps);
	return rc;
}

int store_archive_find(const struct store_engine *e, const char *host,
		       const char *user, const char *store,
		       const struct store_arch_query *q,
		       int (*fn)(void *ctx, const struct store_arch_item *it),
		       void *ctx, size_t *total)
{
	struct find f = { .q = q, .fn = fn, .ctx = ctx, .left = q->limit };
	enum store_db db = q->with ? STORE_ARCHIVE_WITH : STORE_ARCHIVE;
	struct sbuf base;
	struct arch a;
	int rc = arch_init(&a, e, host, user, store);

	f.a = &a;
	sbuf_init(&f.k);
	sbuf_init(&f.v);
	sbuf_init(&base);
	if (rc)
		goto out;
	if (q->ids) {
		rc = find_ids(&f, total);
		goto out;
	}
	if (q->with) {
		with_prefix(&a, &base, q->with, q->with_len);
		f.exact_w = w_is_exact(q->with, q->with_len);
	} else {
		sbuf_add(&base, a.p.p, a.p.len);
	}
	f.base_len = base.len;
	if (total)
		rc = scan_range(&f, db, &base, true, total);
	if (rc == 0)
		rc = scan_range(&f, db, &base, false, NULL);
out:
	sbuf_free(&base);
	sbuf_free(&f.k);
	sbuf_free(&f.v);
	arch_free(&a);
	return rc;
}

/* ---- delete ---- */

/* Collected items: int64 t, size_t len, id bytes; repeated. */
static int collect_item(void *ctx, const struct store_arch_item *it)
{
	struct sbuf *b = ctx;

	sbuf_add(b, &it->when, sizeof(it->when));
	sbuf_add(b, &it->id_len, sizeof(it->id_len));
	sbuf_add(b, it->id, it->id_len);
	return 0;
}

int store_archive_delete(const struct store_engine *e, const char *host,
			 const char *user, const char *store,
			 const struct store_arch_query *q, size_t keep_newest,
			 size_t *deleted)
{
	struct sbuf items;
	struct arch a;
	size_t n = 0, off = 0, count = 0;
	int rc;

	*deleted = 0;
	sbuf_init(&items);
	rc = store_archive_find(e, host, user, store, q, collect_item, &items,
				NULL);
	if (rc == 0)
		rc = arch_init(&a, e, host, user, store);
	else
		sbuf_init(&a.p);
	while (rc == 0 && off < items.len) {	/* how many */
		size_t len;
		memcpy(&len, items.p + off + sizeof(int64_t), sizeof(len));
		off += sizeof(int64_t) + sizeof(len) + len;
		n++;
	}
	for (off = 0; rc == 0 && off < items.len; count++) {
		int64_t t;
		size_t len;
		memcpy(&t, items.p + off, sizeof(t));
		memcpy(&len, items.p + off + sizeof(t), sizeof(len));
		off += sizeof(t) + sizeof(len);
		/* the newest are last going forward, first going back */
		bool keep = q->reverse ? count < keep_newest
				       : count + keep_newest >= n;
		if (!keep) {
			rc = item_delete(&a, t, items.p + off, len);
			if (rc == 0)
				(*deleted)++;
			else if (rc == -ENOENT)
				rc = 0;
		}
		off += len;
	}
	arch_free(&a);
	sbuf_free(&items);
	return rc;
}

#define TRIM_CHUNK 10000

struct trim {
	const struct store_engine *e;
	const char *host, *store;
	int64_t before;
	size_t deleted;
	int rc;
};

static int trim_user(void *ctx, const char *user)
{
	struct trim *t = ctx;
	struct store_arch_query q = {
		.has_end = true, .end = t->before - 1,
		.has_limit = true, .limit = TRIM_CHUNK,
	};
	size_t n;

	if (t->before == INT64_MIN)
		return 0;
	do {
		t->rc = store_archive_delete(t->e, t->host, user, t->store, &q,
					     0, &n);
		t->deleted += n;
	} while (t->rc == 0 && n == TRIM_CHUNK);
	return t->rc != 0;
}

int store_archive_trim(const struct store_engine *e, const char *host,
		       const char *user, const char *store, int64_t before,
		       size_t *deleted)
{
	struct trim t = { e, host, store, before, 0, 0 };
	int rc;

	if (user) {
		trim_user(&t, user);
		rc = t.rc;
	} else {
		trim_user(&t, "");
		rc = t.rc ? t.rc : store_users_in(e, STORE_ARCHIVE, host, store,
						   trim_user, &t);
		if (rc == 0)
			rc = t.rc;
	}
	*deleted = t.deleted;
	return rc;
}

/* ---- summary and dates ---- */

/* Groups gathered by a summary scan, emitted after it:
 * size_t wlen, with, size_t count, int64 first, int64 last. */
struct summary {
	const struct arch *a;
	const struct store_arch_query *q;
	struct sbuf groups;
	struct sbuf w;			/* W of the open group */
	size_t at;			/* where the open group starts */
	bool open;
	struct sbuf k, v;
};

static void group_open(struct summary *s, const char *w, size_t wlen,
		       const struct store_arch_item *it)
{
	size_t zero = 0;
	int64_t t = 0;

	sbuf_reset(&s->w);
	sbuf_add(&s->w, w, wlen);
	s->at = s->groups.len;
	s->open = true;
	sbuf_add(&s->groups, &it->with_len, sizeof(size_t));
	sbuf_add(&s->groups, it->with, it->with_len);
	sbuf_add(&s->groups, &zero, sizeof(zero));
	sbuf_add(&s->groups, &t, sizeof(t));
	sbuf_add(&s->groups, &t, sizeof(t));
}

static void group_add(struct summary *s, int64_t t)
{
	char *p = s->groups.p + s->at;
	size_t wlen, count;
	int64_t first;

	memcpy(&wlen, p, sizeof(wlen));
	p += sizeof(wlen) + wlen;
	memcpy(&count, p, sizeof(count));
	memcpy(&first, p + sizeof(count), sizeof(first));
	if (count == 0 || t < first)
		memcpy(p + sizeof(count), &t, sizeof(t));
	count++;
	memcpy(p, &count, sizeof(count));
	memcpy(p + sizeof(count) + sizeof(t), &t, sizeof(t));	/* ascending */
}

static int on_summary_entry(void *ctx, const void *k, size_t klen,
			    const void *v, size_t vlen)
{
	struct summary *s = ctx;
	const char *c = (const char *)k + s->a->p.len;
	size_t rest = klen - s->a->p.len;
	const char *nul = memchr(c, '\0', rest);
	struct store_arch_item it;
	size_t wlen;
	int rc;

	if (!nul || (size_t)(c + rest - nul) <= 9)
		return -EILSEQ;
	wlen = (size_t)(nul - c);
	it.when = get_t8(nul + 1);
	if ((s->q->has_start && it.when < s->q->start) ||
	    (s->q->has_end && it.when > s->q->end))
		return 0;
	if (s->open && s->w.len == wlen && memcmp(s->w.p, c, wlen) == 0 &&
	    (!s->q->with || w_is_exact(s->q->with, s->q->with_len))) {
		group_add(s, it.when);
		return 0;
	}
	/* a new W (or a hashed one to check): the with from the record */
	rc = item_read(s->a, it.when, nul + 9, (size_t)(c + rest - nul - 9),
		       &s->k, &s->v, &it);
	if (rc == -ENOENT || (rc == 0 && !with_matches(s->q, &it)))
		return 0;
	if (rc)
		return rc;
	if (!s->open || s->w.len != wlen || memcmp(s->w.p, c, wlen) != 0)
		group_open(s, c, wlen, &it);
	group_add(s, it.when);
	return 0;
}

int store_archive_summary(const struct store_engine *e, const char *host,
			  const char *user, const char *store,
			  const struct store_arch_query *q,
			  int (*fn)(void *ctx, const char *with, size_t wlen,
				    size_t count, int64_t first,
				    int64_t last), void *ctx)
{
	struct summary s = { .q = q };
	struct sbuf base, hi;
	struct arch a;
	int rc = arch_init(&a, e, host, user, store);

	s.a = &a;
	sbuf_init(&s.groups);
	sbuf_init(&s.w);
	sbuf_init(&s.k);
	sbuf_init(&s.v);
	sbuf_init(&base);
	sbuf_init(&hi);
	if (q->with)
		with_prefix(&a, &base, q->with, q->with_len);
	else
		sbuf_add(&base, a.p.p, a.p.len);
	prefix_end(&hi, &base);
	if (rc == 0)
		rc = e->scan(STORE_ARCHIVE_WITH, base.p, base.len, hi.p, hi.len,
			     false, on_summary_entry, &s);
	for (size_t off = 0; rc == 0 && off < s.groups.len; ) {
		size_t wlen, count;
		int64_t first, last;
		const char *w;
		memcpy(&wlen, s.groups.p + off, sizeof(wlen));
		w = s.groups.p + off + sizeof(wlen);
		off += sizeof(wlen) + wlen;
		memcpy(&count, s.groups.p + off, sizeof(count));
		memcpy(&first, s.groups.p + off + sizeof(count), sizeof(first));
		memcpy(&last, s.groups.p + off + sizeof(count) + sizeof(first),
		       sizeof(last));
		off += sizeof(count) + 2 * sizeof(int64_t);
		if (fn(ctx, w, wlen, count, first, last))
			break;
	}
	sbuf_free(&base);
	sbuf_free(&hi);
	sbuf_free(&s.groups);
	sbuf_free(&s.w);
	sbuf_free(&s.k);
	sbuf_free(&s.v);
	arch_free(&a);
	return rc;
}

struct first_time {
	size_t base_len;
	bool found;
	int64_t t;
};

static int first_time(void *ctx, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	struct first_time *f = ctx;

	if (klen < f->base_len + 8)
		return -EILSEQ;
	f->t = get_t8((const char *)k + f->base_len);
	f->found = true;
	return 1;
}

int store_archive_dates(const struct store_engine *e, const char *host,
			const char *user, const char *store,
			int (*fn)(void *ctx, int64_t day), void *ctx)
{
	struct first_time f = { 0 };
	struct sbuf lo, hi;
	struct arch a;
	int rc = arch_init(&a, e, host, user, store);

	sbuf_init(&lo);
	sbuf_init(&hi);
	f.base_len = a.p.len;
	prefix_end(&hi, &a.p);
	sbuf_add(&lo, a.p.p, a.p.len);
	while (rc == 0) {
		f.found = false;
		rc = e->scan(STORE_ARCHIVE, lo.p, lo.len, hi.p, hi.len, false,
			     first_time, &f);
		if (rc || !f.found)
			break;
		int64_t day = f.t / DAY_US - (f.t % DAY_US < 0);
		if (fn(ctx, day * DAY_US) || day >= INT64_MAX / DAY_US - 1)
			break;
		sbuf_reset(&lo);
		sbuf_add(&lo, a.p.p, a.p.len);
		put_t8(&lo, (day + 1) * DAY_US);
	}
	sbuf_free(&lo);
	sbuf_free(&hi);
	arch_free(&a);
	return rc;
}
