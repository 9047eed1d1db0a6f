/*
 * store_archive_query.c - reading archive stores by query (find) and
 * deleting what a query selects (delete, trim); the layout is in
 * store_archive.c.
 *
 * A query by time scans the archive db; by with, the with index before
 * the index's reach and the archive db, filtered, from there on; by ids,
 * each id located. after and before narrow the scan to exclusive
 * positions (when, id).
 */
#include "store_archive.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

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

bool arch_with_matches(const struct store_arch_query *q,
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
	it->when = arch_get_t8(c + f->base_len);
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
		rc = arch_rec_parse(v, vlen, &it);
	if (rc == 0 && !arch_with_matches(f->q, &it))
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
		rc = arch_item_read(f->a, it.when, it.id, it.id_len, &f->k, &f->v, &it);
	if (rc == -ENOENT || (rc == 0 && !arch_with_matches(f->q, &it)))
		return 0;
	return rc ? rc : deliver(f, &it);
}

static int count_item(void *ctx, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	struct find *f = ctx;
	struct store_arch_item it;

	if (f->q->with) {		/* past the with index */
		if (arch_rec_parse(v, vlen, &it))
			return -EILSEQ;
		if (!arch_with_matches(f->q, &it))
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
		rc = arch_item_read(f->a, it.when, it.id, it.id_len, &f->k, &f->v, &it);
	if (rc == 0 && arch_with_matches(f->q, &it))
		f->count++;
	return rc == -ENOENT ? 0 : rc;
}

static void pos_key(struct sbuf *k, const struct sbuf *base,
		    const struct store_arch_pos *pos)
{
	sbuf_reset(k);
	sbuf_add(k, base->p, base->len);
	arch_put_t8(k, pos->when);
	sbuf_add(k, pos->id, pos->id_len);
}

/* The key range [lo, hi) of a scan under base: the time range, and
 * (use_pos) narrowed by after and before. false when empty. */
bool arch_scan_bounds(const struct store_arch_query *q,
		      const struct sbuf *base, bool use_pos,
		      struct sbuf *lo, struct sbuf *hi)
{
	struct sbuf t;

	sbuf_reset(lo);
	sbuf_add(lo, base->p, base->len);
	if (q->has_start)
		arch_put_t8(lo, q->start);
	if (q->has_end && q->end < INT64_MAX) {
		sbuf_reset(hi);
		sbuf_add(hi, base->p, base->len);
		arch_put_t8(hi, q->end + 1);
	} else {
		arch_prefix_end(hi, base);
	}
	sbuf_init(&t);
	if (use_pos && q->after) {
		pos_key(&t, base, q->after);
		sbuf_addc(&t, '\0');		/* just past it */
		if (arch_buf_cmp(&t, lo) > 0) {
			sbuf_reset(lo);
			sbuf_add(lo, t.p, t.len);
		}
	}
	if (use_pos && q->before) {
		pos_key(&t, base, q->before);
		if (arch_buf_cmp(&t, hi) < 0) {
			sbuf_reset(hi);
			sbuf_add(hi, t.p, t.len);
		}
	}
	sbuf_free(&t);
	return arch_buf_cmp(lo, hi) < 0;
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
		if (arch_scan_bounds(f->q, base, false, &lo, &hi))
			rc = f->a->e->scan(db, lo.p, lo.len, hi.p, hi.len, false,
					   db == STORE_ARCHIVE ? count_item
							       : count_with_entry, f);
		*total = f->count;
	} else if ((!f->q->has_limit || f->q->limit > 0) &&
		   arch_scan_bounds(f->q, base, true, &lo, &hi)) {
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
		rc = arch_locate(f->a, q->ids[i], q->id_lens[i], &ps[n].t);
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
		rc = arch_item_read(f->a, ps[i].t, ps[i].id, ps[i].len, &f->k, &f->v, &it);
		if (rc == -ENOENT || (rc == 0 && !arch_with_matches(q, &it))) {
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
		f->exact_w = index && arch_w_is_exact(q->with, q->with_len);
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
	arch_with_prefix(f->a, &w.wbase, q->with, q->with_len);
	if (total) {
		*total = 0;
		rc = with_scan(f, &w, total);
	}
	if (rc == 0)
		rc = with_scan(f, &w, NULL);
	sbuf_free(&w.wbase);
	return rc;
}

int store_archive_find(const struct store *s, const char *user,
		       const struct store_arch_query *q,
		       int (*fn)(void *ctx, const struct store_arch_item *it),
		       void *ctx, size_t *total)
{
	struct find f = { .q = q, .fn = fn, .ctx = ctx, .left = q->limit };
	struct arch a;
	int64_t until;
	int rc = arch_init(&a, s, user);

	f.a = &a;
	sbuf_init(&f.k);
	sbuf_init(&f.v);
	if (rc)
		goto out;
	if (q->ids) {
		rc = find_ids(&f, total);
	} else if (q->with) {
		rc = arch_indexed_until(&a, &until);
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

int store_archive_delete(const struct store *s, const char *user,
			 const struct store_arch_query *q, size_t keep_newest,
			 size_t *deleted)
{
	struct sbuf items;
	struct arch a;
	size_t n = 0, off = 0, count = 0;
	int rc;

	*deleted = 0;
	sbuf_init(&items);
	rc = store_archive_find(s, user, q, collect_item, &items, NULL);
	if (rc == 0)
		rc = arch_init(&a, s, user);
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
			rc = arch_item_delete(&a, t, items.p + off, len);
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
	const struct store *s;
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
		t->rc = store_archive_delete(t->s, user, &q, 0, &n);
		t->deleted += n;
	} while (t->rc == 0 && n == TRIM_CHUNK);
	return t->rc != 0;
}

int store_archive_trim(const struct store *s, const char *user,
		       int64_t before, size_t *deleted)
{
	struct trim t = { s, before, 0, 0 };
	int rc;

	if (user) {
		trim_user(&t, user);
		rc = t.rc;
	} else {
		trim_user(&t, "");
		rc = t.rc ? t.rc : store_users(s, trim_user, &t);
		if (rc == 0)
			rc = t.rc;
	}
	*deleted = t.deleted;
	return rc;
}

