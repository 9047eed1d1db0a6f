/*
 * store_archive_usage.c - how many items each archive holds and their
 * bytes (store.h, "usage"), and shrinking an archive to a quota, oldest
 * items first.
 *
 *   archive_usage  P -> int64 items, int64 bytes, int64 whole
 *                       (little-endian; P as in store_archive.c)
 *
 * The db is a counter db (STORE_DB_F_COUNTER): every put adds its terms
 * to the record's. An append adds (1, bytes, 0) right after its item's
 * put, a delete (-1, -bytes, 0) right after its item's delete, and the
 * db trails the archive's (STORE_DB_F_TRAILS): on LMDB the add is queued
 * behind an append's put for the archive writer, or joins the batch
 * behind a delete. So a record always commits in the transaction that
 * holds the items it counts: after a crash both are there or neither,
 * and a hand-over redone in the batch redoes its adds with its puts.
 * Adds commute, so they also stay right beside another process (LMDB
 * serialises the writers; each adds within its own transaction).
 *
 * whole is 1 in a record made by counting the archive, which deletes the
 * record and adds (items, bytes, 1) in the batch; adds keep it. A record
 * made by adds alone (an archive older than the counter, or one purged)
 * has whole 0 and is counted again when read. An add that fails deletes
 * the record instead (deletes are always taken), so a count is never
 * silently wrong: it is counted again.
 *
 * known: this process's usage of each archive it read (key: the engine's
 * name and P, NULs spelt \x1f), kept up to date by its own adds, so an
 * append can be checked against a quota without a storage read (which on
 * LMDB would wait for the writer). Forgotten when a batch or hand-over is
 * lost, an environment closes, the memory engine is cleared, a user is
 * purged, or when it grows past KNOWN_MAX.
 */
#include "store_archive.h"
#include "hmap.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

#define REC_LEN 24		/* items, bytes, whole */
#define KNOWN_MAX 100000	/* archives whose usage is kept */
#define SHRINK_CHUNK 10000	/* items collected per pass */

/* ---- counter records (any counter db) ---- */

static int64_t get_le64(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	return (int64_t)u;
}

static void put_le64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 0; i < 8; i++, u >>= 8)
		p[i] = u & 0xff;
}

size_t store_counter_add(void *out, const void *old, size_t oldlen,
			 const void *add, size_t addlen)
{
	const unsigned char *o = old, *d = add;
	size_t n = MIN(MAX(oldlen, addlen), STORE_COUNTER_MAX) / 8;

	for (size_t i = 0; i < n; i++) {
		uint64_t a = i * 8 + 8 <= oldlen ? (uint64_t)get_le64(o + i * 8) : 0;
		uint64_t b = i * 8 + 8 <= addlen ? (uint64_t)get_le64(d + i * 8) : 0;
		put_le64((unsigned char *)out + i * 8, (int64_t)(a + b));
	}
	return n * 8;
}

/* ---- what this process knows ---- */

static struct hmap known;

/* The key of a's usage in known, into k; false when a name holds the
 * separator (such an archive is never cached). */
static bool known_key(const struct arch *a, struct sbuf *k)
{
	size_t n = strlen(a->e->name);
	char *p;

	if (memchr(a->p.p, '\x1f', a->p.len))
		return false;
	sbuf_reset(k);
	sbuf_reserve(k, n + a->p.len + 2);	/* one pass, no per-byte call */
	p = k->p;
	memcpy(p, a->e->name, n);
	p[n] = '\x1f';
	p += n + 1;
	for (size_t i = 0; i < a->p.len; i++)
		p[i] = a->p.p[i] ? a->p.p[i] : '\x1f';
	p[a->p.len] = '\0';
	k->len = n + a->p.len + 2;
	return true;
}

static void known_clear(void)
{
	size_t pos = 0;
	const char *key;
	void *val;

	while (hmap_next(&known, &pos, &key, &val))
		free(val);
	hmap_free(&known);
	hmap_init(&known);
}

static struct store_arch_usage *known_get(const struct arch *a)
{
	static struct sbuf k;		/* scratch, kept (the loop's) */
	struct store_arch_usage *u = NULL;

	/* Another process's appends change it: never trust a copy. */
	if (known.cap && !store_shared() && known_key(a, &k))
		u = hmap_getn(&known, k.p, k.len - 1);
	sbuf_recycle(&k, 4096);
	return u;
}

static void known_set(const struct arch *a, const struct store_arch_usage *u)
{
	struct sbuf k;

	sbuf_init(&k);
	if (known_key(a, &k)) {
		struct store_arch_usage *e = hmap_get(&known, k.p);
		if (!e) {
			if (known.count >= KNOWN_MAX)
				known_clear();
			e = xmalloc(sizeof(*e));
			hmap_set(&known, k.p, e);
		}
		*e = *u;
	}
	sbuf_free(&k);
}

static void known_drop(const struct arch *a)
{
	struct sbuf k;

	sbuf_init(&k);
	if (known.cap && known_key(a, &k))
		free(hmap_del(&known, k.p));
	sbuf_free(&k);
}

void store_archive_usage_forget(const char *host, const char *user)
{
	struct sbuf mid;
	size_t pos = 0;
	const char *key;
	void *val;

	if (!known.cap)
		return;
	if (!host || !user) {
		known_clear();
		return;
	}
	/* keys are engine \x1f host \x1f user \x1f store \x1f */
	sbuf_init(&mid);
	sbuf_addc(&mid, '\x1f');
	sbuf_adds(&mid, host);
	sbuf_addc(&mid, '\x1f');
	sbuf_adds(&mid, user);
	sbuf_addc(&mid, '\x1f');
	sbuf_addc(&mid, '\0');
	while (hmap_next(&known, &pos, &key, &val)) {
		const char *at = strchr(key, '\x1f');
		if (at && strncmp(at, mid.p, mid.len - 1) == 0) {
			free(hmap_del(&known, key));
			pos = 0;	/* deleting may move what follows */
		}
	}
	sbuf_free(&mid);
}

/* ---- adds, reads and counting ---- */

uint64_t arch_item_bytes(size_t id_len, const void *rec, size_t rlen)
{
	struct store_arch_item it;

	if (arch_rec_parse(rec, rlen, &it) != 0)
		return id_len + rlen;
	return id_len + it.with_len + it.val_len;
}

int arch_usage_add(const struct arch *a, int64_t items, int64_t bytes)
{
	unsigned char v[REC_LEN];
	struct store_arch_usage *u = known_get(a);
	int rc;

	put_le64(v, items);
	put_le64(v + 8, bytes);
	put_le64(v + 16, 0);
	rc = a->e->put(STORE_ARCHIVE_USAGE, a->p.p, a->p.len, v, sizeof(v));
	if (rc == 0) {
		if (u) {
			u->items += (uint64_t)items;
			u->bytes += (uint64_t)bytes;
		}
		return 0;
	}
	/* counted again when next read */
	known_drop(a);
	int r2 = a->e->del(STORE_ARCHIVE_USAGE, a->p.p, a->p.len);
	if (r2 == 0 || r2 == -ENOENT)
		return 0;
	log_error("store: the usage of an archive of %s may be wrong: %s",
		  a->host, strerror(-rc));
	return rc;
}

struct count {
	size_t plen;
	struct store_arch_usage u;
};

static int count_item(void *ctx, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	struct count *c = ctx;
	size_t id_len = klen - c->plen - 8;

	c->u.items++;
	c->u.bytes += arch_item_bytes(id_len, v, vlen);
	return 0;
}

/* Counts the archive and writes a whole record of it. */
static int usage_count(const struct arch *a, struct store_arch_usage *u)
{
	struct count c = { .plen = a->p.len };
	unsigned char v[REC_LEN];
	struct sbuf hi;
	int rc;

	sbuf_init(&hi);
	arch_prefix_end(&hi, &a->p);
	rc = a->e->scan(STORE_ARCHIVE, a->p.p, a->p.len, hi.p, hi.len, false,
			count_item, &c);
	sbuf_free(&hi);
	if (rc)
		return rc;
	*u = c.u;
	rc = a->e->del(STORE_ARCHIVE_USAGE, a->p.p, a->p.len);
	put_le64(v, (int64_t)u->items);
	put_le64(v + 8, (int64_t)u->bytes);
	put_le64(v + 16, 1);
	if (rc == 0 || rc == -ENOENT)
		rc = a->e->put(STORE_ARCHIVE_USAGE, a->p.p, a->p.len, v,
			       sizeof(v));
	if (rc)		/* the count holds; it is made again next time */
		store_log_debug(a->e, "store: usage of an archive of %s not "
				"kept: %s", a->host, strerror(-rc));
	return 0;
}

/* The usage as stored, counted again when the record is not whole. */
static int usage_read(const struct arch *a, struct store_arch_usage *u)
{
	struct sbuf v;
	int rc;

	sbuf_init(&v);
	rc = a->e->get(STORE_ARCHIVE_USAGE, a->p.p, a->p.len, &v);
	if (rc == 0 && v.len >= REC_LEN &&
	    get_le64((unsigned char *)v.p + 16) > 0 &&
	    get_le64((unsigned char *)v.p) >= 0 &&
	    get_le64((unsigned char *)v.p + 8) >= 0) {
		u->items = (uint64_t)get_le64((unsigned char *)v.p);
		u->bytes = (uint64_t)get_le64((unsigned char *)v.p + 8);
	} else if (rc == 0 || rc == -ENOENT) {
		rc = usage_count(a, u);
	}
	sbuf_free(&v);
	return rc;
}

int store_archive_usage(const struct store *s, const char *user,
			bool cached_only, struct store_arch_usage *u)
{
	struct arch a;
	int rc = arch_init(&a, s, user);

	if (rc == 0) {
		const struct store_arch_usage *k = known_get(&a);
		if (k && cached_only)
			*u = *k;
		else if (cached_only)
			rc = -EAGAIN;
		else if ((rc = usage_read(&a, u)) == 0)
			known_set(&a, u);
	}
	arch_free(&a);
	return rc;
}

/* ---- shrinking ---- */

/* The oldest items to delete: int64 t, size_t len, id bytes; repeated. */
struct shrink {
	struct store_arch_usage left;	/* what stays if they go */
	uint64_t max_items, max_bytes;
	size_t plen;
	struct sbuf doomed;
	size_t n;
};

static bool over(const struct shrink *s)
{
	return (s->max_items && s->left.items > s->max_items) ||
	       (s->max_bytes && s->left.bytes > s->max_bytes);
}

static int pick_oldest(void *ctx, const void *k, size_t klen, const void *v,
		       size_t vlen)
{
	struct shrink *s = ctx;
	const char *id = (const char *)k + s->plen + 8;
	size_t id_len = klen - s->plen - 8;
	int64_t t = arch_get_t8((const char *)k + s->plen);
	uint64_t b = arch_item_bytes(id_len, v, vlen);

	if (!over(s) || s->n == SHRINK_CHUNK)
		return 1;
	sbuf_add(&s->doomed, &t, sizeof(t));
	sbuf_add(&s->doomed, &id_len, sizeof(id_len));
	sbuf_add(&s->doomed, id, id_len);
	s->n++;
	s->left.items -= MIN(s->left.items, 1);
	s->left.bytes -= MIN(s->left.bytes, b);
	return 0;
}

/* One pass: collects up to SHRINK_CHUNK of the oldest items and deletes
 * them. *more: the archive is still over the quota. */
static int shrink_pass(const struct arch *a, struct shrink *s,
		       size_t *deleted, uint64_t *freed, bool *more)
{
	struct store_arch_usage before;
	struct sbuf hi;
	int rc = usage_read(a, &before);

	*more = false;
	s->left = before;
	s->n = 0;
	sbuf_reset(&s->doomed);
	if (rc || !over(s))
		return rc;
	sbuf_init(&hi);
	arch_prefix_end(&hi, &a->p);
	rc = a->e->scan(STORE_ARCHIVE, a->p.p, a->p.len, hi.p, hi.len, false,
			pick_oldest, s);
	sbuf_free(&hi);
	for (size_t off = 0; rc == 0 && off < s->doomed.len;) {
		int64_t t;
		size_t len;
		memcpy(&t, s->doomed.p + off, sizeof(t));
		memcpy(&len, s->doomed.p + off + sizeof(t), sizeof(len));
		off += sizeof(t) + sizeof(len);
		rc = arch_item_delete(a, t, s->doomed.p + off, len);
		if (rc == 0)
			(*deleted)++;
		else if (rc == -ENOENT)
			rc = 0;
		off += len;
	}
	if (rc == 0) {
		struct store_arch_usage after;
		rc = usage_read(a, &after);
		if (rc == 0) {
			*freed += before.bytes - MIN(before.bytes, after.bytes);
			s->left = after;
			*more = s->n == SHRINK_CHUNK && over(s);
		}
	}
	return rc;
}

int store_archive_shrink(const struct store *s, const char *user,
			 uint64_t max_items, uint64_t max_bytes,
			 size_t *deleted, uint64_t *freed)
{
	struct shrink sh = { .max_items = max_items, .max_bytes = max_bytes };
	size_t n = 0;
	uint64_t f = 0;
	bool more = true;
	struct arch a;
	int rc = arch_init(&a, s, user);

	sh.plen = a.p.len;
	sbuf_init(&sh.doomed);
	while (rc == 0 && more)
		rc = shrink_pass(&a, &sh, &n, &f, &more);
	if (rc == 0)
		known_set(&a, &sh.left);
	else
		known_drop(&a);
	sbuf_free(&sh.doomed);
	arch_free(&a);
	if (deleted)
		*deleted = n;
	if (freed)
		*freed = f;
	return rc;
}
