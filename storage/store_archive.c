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
#include "store.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <openssl/evp.h>

#define WITH_KEY_MAX 128
#define DAY_US INT64_C(86400000000)
#define SCRATCH_KEEP 65536	/* bytes a scratch buffer keeps */

/* An archive: engine, its names and key prefix P. */
struct arch {
	const struct store_engine *e;
	const char *host, *store;
	struct sbuf p;
};

static int arch_init(struct arch *a, const struct store_engine *e,
		     const char *host, const char *user, const char *store)
{
	a->e = e;
	a->host = host;
	a->store = store;
	sbuf_init(&a->p);
	if (!e || !host || !user || !store || !*store)
		return -EINVAL;
	sbuf_reserve(&a->p, strlen(host) + strlen(user) + strlen(store) + 3);
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

/* ---- how far the with index reaches ---- */

struct meta {
	int64_t until, floor;
};

static void meta_key(struct sbuf *k, const char *host, const char *store)
{
	sbuf_reset(k);
	sbuf_add(k, host, strlen(host) + 1);
	sbuf_add(k, store, strlen(store));
}

/* 0, or -ENOENT when nothing was ever deferred (the index is whole). */
static int meta_get(const struct store_engine *e, const char *host,
		    const char *store, struct meta *m)
{
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	meta_key(&k, host, store);
	rc = e->get(STORE_ARCHIVE_META, k.p, k.len, &v);
	if (rc == 0 && v.len != 16)
		rc = -EILSEQ;
	if (rc == 0) {
		m->until = get_t8(v.p);
		m->floor = get_t8(v.p + 8);
	}
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

static int meta_put(const struct store_engine *e, const char *host,
		    const char *store, const struct meta *m)
{
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	meta_key(&k, host, store);
	put_t8(&v, m->until);
	put_t8(&v, m->floor);
	rc = e->put(STORE_ARCHIVE_META, k.p, k.len, v.p, v.len);
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

/* The time before which items have their with entries: INT64_MAX when
 * all have. */
static int indexed_until(const struct arch *a, int64_t *until)
{
	struct meta m;
	int rc = meta_get(a->e, a->host, a->store, &m);

	*until = rc == 0 ? m.until : INT64_MAX;
	return rc == -ENOENT ? 0 : rc;
}

/* Items deferred since the last step of the job (the loop appends,
 * the job may run on the writer's thread). */
static _Atomic size_t deferred_since;

/* The floor last read or written, per archive store, while store_gen
 * stays the same (a loop iteration): thousands of appends to one store
 * read it once. The job's meta_put goes through floor_set. */
#define FLOOR_CACHE 8

static struct floor_entry {
	const struct store_engine *e;
	char *host, *store;
	int64_t floor;
	unsigned gen;
} floors[FLOOR_CACHE];

static struct floor_entry *floor_find(const struct store_engine *e,
				      const char *host, const char *store)
{
	for (int i = 0; i < FLOOR_CACHE; i++) {
		struct floor_entry *f = &floors[i];
		if (f->e == e && f->gen == store_gen &&
		    strcmp(f->host, host) == 0 && strcmp(f->store, store) == 0)
			return f;
	}
	return NULL;
}

static void floor_set(const struct store_engine *e, const char *host,
		      const char *store, int64_t floor)
{
	struct floor_entry *f = floor_find(e, host, store);
	static int next;

	if (!f) {
		f = &floors[next];
		next = (next + 1) % FLOOR_CACHE;
		free(f->host);
		free(f->store);
		f->e = e;
		f->host = xstrdup(host);
		f->store = xstrdup(store);
		f->gen = store_gen;
	}
	f->floor = floor;
}

static int meta_set(const struct store_engine *e, const char *host,
		    const char *store, const struct meta *m)
{
	int rc = meta_put(e, host, store, m);

	if (rc == 0 && !e->own_thread)	/* the cache is the loop's */
		floor_set(e, host, store, m->floor);
	return rc;
}

/* Whether an item appended now at time t may leave its with entry to
 * the job. The first such item starts the deferring: all before it were
 * indexed as they came. */
static int may_defer(const struct arch *a, int64_t t, bool *defer)
{
	struct floor_entry *f = floor_find(a->e, a->host, a->store);
	struct meta m;
	int rc = 0;

	if (f) {
		m.floor = f->floor;
	} else {
		rc = meta_get(a->e, a->host, a->store, &m);
		if (rc == -ENOENT) {
			m.until = m.floor = t;
			rc = meta_set(a->e, a->host, a->store, &m);
		} else if (rc == 0) {
			floor_set(a->e, a->host, a->store, m.floor);
		}
	}
	*defer = rc == 0 && t >= m.floor;
	deferred_since += *defer;
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
	prim_key(a, &k, when, id, id_len);
	rc = a->e->put(STORE_ARCHIVE, k.p, k.len, v.p, v.len);
	if (rc == 0 && with && !deferred) {
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
	sbuf_recycle(&k, SCRATCH_KEEP);
	sbuf_recycle(&v, SCRATCH_KEEP);
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
	bool indexed = true, deferred = false;
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
		if (when == STORE_WHEN_NOW) {
			when = made;
			if (with)
				rc = may_defer(&a, made, &deferred);
		}
		indexed = when != made;
	}
	if (when == STORE_WHEN_NOW)
		when = (int64_t)llround(now_wall() * 1e6);
	if (rc == 0)
		rc = item_write(&a, when, id, id_len, with, with_len, val,
				val_len, deferred, indexed);
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
	bool stopped;			/* by the limit or the caller */
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
			return f->stopped = true;
		f->left--;
	}
	r = f->fn(f->ctx, it);
	if (r > 0 || (r == 0 && f->q->has_limit && f->left == 0))
		return f->stopped = true;
	return r;
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
	if (rc == 0 && !with_matches(f->q, &it))
		return 0;			/* past the with index */
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
	struct store_arch_item it;

	if (f->q->with) {		/* past the with index */
		if (rec_parse(v, vlen, &it))
			return -EILSEQ;
		if (!with_matches(f->q, &it))
			return 0;
	}
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

/* A query by with in two parts: the index for the items before until
 * (qi), the archive itself, filtered, from until on (qt). */
struct with_parts {
	struct store_arch_query qi, qt;
	bool use_index, use_tail;
	struct sbuf wbase;		/* P W \0 */
};

/* Counts (total set) or delivers the parts in the query's order: the
 * older first, unless going back. */
static int with_scan(struct find *f, struct with_parts *w, size_t *total)
{
	const struct store_arch_query *q = f->q;
	size_t n = 0;
	int rc = 0;

	for (int part = 0; part < 2 && rc == 0 && !f->stopped; part++) {
		bool index = (part == 0) != q->reverse;
		if (index ? !w->use_index : !w->use_tail)
			continue;
		f->q = index ? &w->qi : &w->qt;
		f->base_len = index ? w->wbase.len : f->a->p.len;
		f->exact_w = index && w_is_exact(q->with, q->with_len);
		rc = scan_range(f, index ? STORE_ARCHIVE_WITH : STORE_ARCHIVE,
				index ? &w->wbase : &f->a->p, total != NULL, &n);
		if (total)
			*total += n;
		f->q = q;
	}
	return rc;
}

static int find_with(struct find *f, int64_t until, size_t *total)
{
	const struct store_arch_query *q = f->q;
	struct with_parts w = { .qi = *q, .qt = *q };
	int rc = 0;

	w.use_index = !q->has_start || q->start < until;
	w.use_tail = until < INT64_MAX && (!q->has_end || q->end >= until);
	if (until < INT64_MAX && (!q->has_end || q->end >= until)) {
		w.qi.has_end = true;
		w.qi.end = until - 1;
	}
	if (!q->has_start || q->start < until) {
		w.qt.has_start = true;
		w.qt.start = until;
	}
	sbuf_init(&w.wbase);
	with_prefix(f->a, &w.wbase, q->with, q->with_len);
	if (total) {
		*total = 0;
		rc = with_scan(f, &w, total);
	}
	if (rc == 0)
		rc = with_scan(f, &w, NULL);
	sbuf_free(&w.wbase);
	return rc;
}

int store_archive_find(const struct store_engine *e, const char *host,
		       const char *user, const char *store,
		       const struct store_arch_query *q,
		       int (*fn)(void *ctx, const struct store_arch_item *it),
		       void *ctx, size_t *total)
{
	struct find f = { .q = q, .fn = fn, .ctx = ctx, .left = q->limit };
	struct arch a;
	int64_t until;
	int rc = arch_init(&a, e, host, user, store);

	f.a = &a;
	sbuf_init(&f.k);
	sbuf_init(&f.v);
	if (rc)
		goto out;
	if (q->ids) {
		rc = find_ids(&f, total);
	} else if (q->with) {
		rc = indexed_until(&a, &until);
		if (rc == 0)
			rc = find_with(&f, until, total);
	} else {
		f.base_len = a.p.len;
		if (total)
			rc = scan_range(&f, STORE_ARCHIVE, &a.p, true, total);
		if (rc == 0)
			rc = scan_range(&f, STORE_ARCHIVE, &a.p, false, NULL);
	}
out:
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
	int64_t until;			/* the index's reach */
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
	    (s->q->has_end && it.when > s->q->end) || it.when >= s->until)
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

/* An item past the with index: a group of its own, merged later. */
static int on_summary_item(void *ctx, const void *k, size_t klen,
			   const void *v, size_t vlen)
{
	struct summary *s = ctx;
	struct store_arch_item it;

	if (klen < s->a->p.len + 8 || rec_parse(v, vlen, &it))
		return -EILSEQ;
	it.when = get_t8((const char *)k + s->a->p.len);
	if (it.with && with_matches(s->q, &it)) {
		group_open(s, "", 0, &it);
		group_add(s, it.when);
		s->open = false;
	}
	return 0;
}

/* Records of a buffer that start with a length-prefixed key (size_t len,
 * len bytes) followed by tail bytes: compared by key, and listed sorted
 * (pointers into the buffer, *n of them; free the array). */
static int lenkey_cmp(const void *x, const void *y)
{
	const char *a = *(const char *const *)x, *b = *(const char *const *)y;
	size_t la, lb;
	int c;

	memcpy(&la, a, sizeof(la));
	memcpy(&lb, b, sizeof(lb));
	c = memcmp(a + sizeof(la), b + sizeof(lb), MIN(la, lb));
	return c ? c : (la > lb) - (la < lb);
}

static const char **lenkey_sort(const struct sbuf *buf, size_t tail,
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
	qsort(rs, *n, sizeof(*rs), lenkey_cmp);
	return rs;
}

/* The groups sorted by with, those of one with merged, handed to fn. */
static void summary_emit(struct summary *s,
			 int (*fn)(void *ctx, const char *with, size_t wlen,
				   size_t count, int64_t first, int64_t last),
			 void *ctx)
{
	size_t n;
	const char **gs = lenkey_sort(&s->groups,
				      sizeof(size_t) + 2 * sizeof(int64_t), &n);

	for (size_t i = 0; i < n; ) {
		size_t wlen, count = 0, c;
		int64_t first = INT64_MAX, last = INT64_MIN, t;
		size_t j = i;
		memcpy(&wlen, gs[i], sizeof(wlen));
		for (; j < n && lenkey_cmp(&gs[i], &gs[j]) == 0; j++) {
			const char *p = gs[j] + sizeof(size_t) + wlen;
			memcpy(&c, p, sizeof(c));
			count += c;
			memcpy(&t, p + sizeof(c), sizeof(t));
			first = MIN(first, t);
			memcpy(&t, p + sizeof(c) + sizeof(t), sizeof(t));
			last = MAX(last, t);
		}
		if (fn(ctx, gs[i] + sizeof(size_t), wlen, count, first, last))
			break;
		i = j;
	}
	free(gs);
}

int store_archive_summary(const struct store_engine *e, const char *host,
			  const char *user, const char *store,
			  const struct store_arch_query *q,
			  int (*fn)(void *ctx, const char *with, size_t wlen,
				    size_t count, int64_t first,
				    int64_t last), void *ctx)
{
	struct summary s = { .q = q };
	struct sbuf base, lo, hi;
	struct arch a;
	int rc = arch_init(&a, e, host, user, store);

	s.a = &a;
	sbuf_init(&s.groups);
	sbuf_init(&s.w);
	sbuf_init(&s.k);
	sbuf_init(&s.v);
	sbuf_init(&base);
	sbuf_init(&lo);
	sbuf_init(&hi);
	if (q->with)
		with_prefix(&a, &base, q->with, q->with_len);
	else
		sbuf_add(&base, a.p.p, a.p.len);
	prefix_end(&hi, &base);
	if (rc == 0)
		rc = indexed_until(&a, &s.until);
	if (rc == 0)
		rc = e->scan(STORE_ARCHIVE_WITH, base.p, base.len, hi.p, hi.len,
			     false, on_summary_entry, &s);
	if (rc == 0 && s.until < INT64_MAX) {
		struct store_arch_query qt = *q;
		if (!qt.has_start || qt.start < s.until) {
			qt.has_start = true;
			qt.start = s.until;
		}
		s.q = &qt;
		s.open = false;
		if (scan_bounds(&qt, &a.p, false, &lo, &hi))
			rc = e->scan(STORE_ARCHIVE, lo.p, lo.len, hi.p, hi.len,
				     false, on_summary_item, &s);
		s.q = q;
	}
	if (rc == 0)
		summary_emit(&s, fn, ctx);
	sbuf_free(&base);
	sbuf_free(&lo);
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

/* ---- the indexing job ---- */

/* The pass under way: one archive store (host, store) on engine e, from
 * its until to the target; cursor is the next archive key to look at. */
struct job {
	const struct store_engine *e;
	struct sbuf host, store, cursor;
	int64_t from, to;
	size_t items;			/* entries written in this pass */
};

/* The memory engine's job and LMDB's (on the archive writer's thread
 * when it runs, store.c), each used by one thread at a time; jp is the
 * one the calling thread is running. */
static struct job jobs[2];
static _Thread_local struct job *jp;

/* The first key at or after lo and below hi, copied into out. */
static int first_key(void *ctx, const void *k, size_t klen, const void *v,
		     size_t vlen)
{
	struct sbuf *out = ctx;

	sbuf_reset(out);
	sbuf_add(out, k, klen);
	return 1;
}

static int seek(const struct store_engine *e, enum store_db db,
		const struct sbuf *lo, const struct sbuf *hi, struct sbuf *out)
{
	int rc;

	sbuf_reset(out);
	rc = e->scan(db, lo->p, lo->len, hi->p, hi->len, false, first_key, out);
	return rc ? rc : out->len ? 0 : -ENOENT;
}

/* Picks an archive store whose unindexed span is over window long (and
 * over a second) and starts a pass to now - delay, or to target_max if
 * that is earlier. -ENOENT: none. */
static int job_pick(const struct store_engine *e, int64_t delay,
		    int64_t target_max)
{
	int64_t now = (int64_t)(now_wall() * 1e6);
	int64_t window = MAX(delay, INT64_C(1000000));
	struct sbuf lo, hi, k;
	struct meta m;
	int rc;

	sbuf_init(&lo);
	sbuf_init(&hi);
	sbuf_init(&k);
	sbuf_addc(&lo, '\0');		/* LMDB takes no empty key */
	sbuf_addc(&hi, '\xff');
	for (;;) {
		rc = seek(e, STORE_ARCHIVE_META, &lo, &hi, &k);
		if (rc)
			break;
		const char *nul = memchr(k.p, '\0', k.len);
		sbuf_reset(&lo);
		sbuf_add(&lo, k.p, k.len);
		sbuf_addc(&lo, '\0');
		if (!nul)
			continue;
		sbuf_reset(&jp->host);
		sbuf_add(&jp->host, k.p, (size_t)(nul - k.p));
		sbuf_addc(&jp->host, '\0');
		sbuf_reset(&jp->store);
		sbuf_add(&jp->store, nul + 1, (size_t)(k.p + k.len - nul - 1));
		sbuf_addc(&jp->store, '\0');
		rc = meta_get(e, jp->host.p, jp->store.p, &m);
		if (rc)
			break;
		if (m.until <= now - delay - window && m.until < target_max) {
			jp->e = e;
			jp->from = m.until;
			jp->to = m.floor = MIN(now - delay, target_max);
			jp->items = 0;
			sbuf_reset(&jp->cursor);
			sbuf_add(&jp->cursor, jp->host.p, jp->host.len);
			rc = meta_set(e, jp->host.p, jp->store.p, &m);
			break;
		}
	}
	sbuf_free(&lo);
	sbuf_free(&hi);
	sbuf_free(&k);
	return rc;
}

/* Collected with entries of one user's items, up to a budget. */
struct collect {
	const struct arch *a;
	struct sbuf keys;		/* size_t len, key; repeated */
	struct sbuf last;		/* the last archive key seen */
	struct sbuf w;			/* scratch: one entry's key */
	size_t n, budget;
};

static int collect_entry(void *ctx, const void *k, size_t klen,
			 const void *v, size_t vlen)
{
	struct collect *c = ctx;
	struct store_arch_item it;
	size_t plen = c->a->p.len;

	if (c->n == c->budget)
		return 1;
	c->n++;
	sbuf_reset(&c->last);
	sbuf_add(&c->last, k, klen);
	if (klen <= plen + 8 || rec_parse(v, vlen, &it))
		return 0;			/* not ours to judge here */
	if (!it.with)
		return 0;
	with_prefix(c->a, &c->w, it.with, it.with_len);
	sbuf_add(&c->w, (const char *)k + plen, klen - plen);	/* T8 id */
	sbuf_add(&c->keys, &c->w.len, sizeof(c->w.len));
	sbuf_add(&c->keys, c->w.p, c->w.len);
	return 0;
}

/* Writes the collected entries in key order, so neighbours share pages. */
static int put_sorted(const struct store_engine *e, struct collect *c)
{
	size_t n;
	const char **ks = lenkey_sort(&c->keys, 0, &n);
	int rc = 0;

	jp->items += n;
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t len;
		memcpy(&len, ks[i], sizeof(len));
		rc = e->put(STORE_ARCHIVE_WITH, ks[i] + sizeof(len), len, "", 0);
	}
	free(ks);
	return rc;
}

/* One user's items in the span from the cursor on, up to budget; the
 * cursor moves past what was done. */
static int job_user(const char *user, const struct sbuf *k, size_t *done,
		    size_t budget)
{
	struct collect c = { .budget = budget - *done };
	struct sbuf lo, hi;
	struct arch a;
	int rc = arch_init(&a, jp->e, jp->host.p, user, jp->store.p);

	c.a = &a;
	sbuf_init(&c.keys);
	sbuf_init(&c.last);
	sbuf_init(&c.w);
	sbuf_init(&lo);
	sbuf_init(&hi);
	sbuf_add(&lo, a.p.p, a.p.len);
	put_t8(&lo, jp->from);
	sbuf_add(&hi, a.p.p, a.p.len);
	put_t8(&hi, jp->to);
	sbuf_reset(&jp->cursor);
	if (rc == 0 && buf_cmp(k, &lo) < 0) {
		sbuf_add(&jp->cursor, lo.p, lo.len);	/* to the span */
	} else if (rc == 0 && buf_cmp(k, &hi) < 0) {
		rc = jp->e->scan(STORE_ARCHIVE, k->p, k->len, hi.p, hi.len,
				 false, collect_entry, &c);
		if (rc == 0)
			rc = put_sorted(jp->e, &c);
		*done += c.n;
		if (c.n == c.budget) {			/* more, maybe */
			sbuf_add(&jp->cursor, c.last.p, c.last.len);
			sbuf_addc(&jp->cursor, '\0');
		}
	}
	if (!jp->cursor.len) {				/* past this user */
		sbuf_add(&jp->cursor, jp->host.p, jp->host.len);
		sbuf_add(&jp->cursor, user, strlen(user));
		sbuf_addc(&jp->cursor, '\1');
	}
	(*done)++;
	sbuf_free(&c.keys);
	sbuf_free(&c.last);
	sbuf_free(&c.w);
	sbuf_free(&lo);
	sbuf_free(&hi);
	arch_free(&a);
	return rc;
}

/* Goes on with the pass under way; ends it when every user is done. */
static int job_run(size_t *done, size_t budget)
{
	struct sbuf hi, k, user;
	struct meta m;
	int rc = meta_get(jp->e, jp->host.p, jp->store.p, &m);

	if (rc == 0 && m.floor != jp->to)
		rc = -ESTALE;		/* not ours any more */
	sbuf_init(&hi);
	sbuf_init(&k);
	sbuf_init(&user);
	prefix_end(&hi, &jp->host);
	while (rc == 0 && *done < budget) {
		rc = seek(jp->e, STORE_ARCHIVE, &jp->cursor, &hi, &k);
		if (rc == -ENOENT) {		/* every user done */
			m.until = jp->to;
			rc = meta_set(jp->e, jp->host.p, jp->store.p, &m);
			store_log_debug(jp->e, "archive store %s of %s (%s): %zu "
					"items indexed, %.1f s behind",
					jp->store.p, jp->host.p, jp->e->name,
					jp->items,
					(now_wall() * 1e6 - (double)jp->to) / 1e6);
			jp->e = NULL;
			break;
		}
		const char *u = k.p + jp->host.len;
		const char *nul = memchr(u, '\0', k.len - jp->host.len);
		if (rc || !nul)
			break;
		sbuf_reset(&user);
		sbuf_add(&user, u, (size_t)(nul - u) + 1);
		rc = job_user(user.p, &k, done, budget);
	}
	if (rc)
		jp->e = NULL;	/* started again at a later step */
	if (rc == -ENOENT || rc == -ESTALE)
		rc = 0;
	sbuf_free(&hi);
	sbuf_free(&k);
	sbuf_free(&user);
	return rc;
}

void store_archive_index_abandon(const struct store_engine *e)
{
	jobs[e == &store_memory ? 0 : 1].e = NULL;	/* from until again */
}

size_t store_archive_index_budget(size_t base)
{
	/* twice what came in since, so a pass outruns the traffic */
	size_t since = atomic_exchange(&deferred_since, 0);

	return MIN(base + 2 * since, 16 * base);
}

int store_archive_index_step_on(const struct store_engine *e, int64_t delay,
				size_t budget, int64_t target_max)
{
	size_t done = 0;
	int rc = 0;

	jp = &jobs[e == &store_memory ? 0 : 1];
	if (!jp->e) {
		rc = job_pick(e, delay, target_max);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc == 0 && jp->e)
		rc = job_run(&done, budget);
	return rc < 0 ? rc : jp->e != NULL;
}

int store_archive_index_step(int64_t delay, size_t budget)
{
	int more, rc;

	budget = store_archive_index_budget(budget);
	more = rc = store_archive_index_step_on(&store_memory, delay, budget,
						INT64_MAX);
	if (rc >= 0 && store_is_open()) {
		rc = store_archive_index_step_on(&store_lmdb, delay, budget,
						 INT64_MAX);
		more |= rc > 0;
	}
	return rc < 0 ? rc : more;
}
