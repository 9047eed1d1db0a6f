/*
 * store_archive_summary.c - per-with counts of an archive store
 * (summary) and the days that have items (dates); the layout is in
 * store_archive.c.
 *
 * group:  the items of one with found in a run of the scan: its count,
 *         first and last time. Groups of one with are merged at the end.
 */
#include "store_archive.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

#define DAY_US INT64_C(86400000000)

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
	it.when = arch_get_t8(nul + 1);
	if ((s->q->has_start && it.when < s->q->start) ||
	    (s->q->has_end && it.when > s->q->end) || it.when >= s->until)
		return 0;
	if (s->open && s->w.len == wlen && memcmp(s->w.p, c, wlen) == 0 &&
	    (!s->q->with || arch_w_is_exact(s->q->with, s->q->with_len))) {
		group_add(s, it.when);
		return 0;
	}
	/* a new W (or a hashed one to check): the with from the record */
	rc = arch_item_read(s->a, it.when, nul + 9, (size_t)(c + rest - nul - 9),
		       &s->k, &s->v, &it);
	if (rc == -ENOENT || (rc == 0 && !arch_with_matches(s->q, &it)))
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

	if (klen < s->a->p.len + 8 || arch_rec_parse(v, vlen, &it))
		return -EILSEQ;
	it.when = arch_get_t8((const char *)k + s->a->p.len);
	if (it.with && arch_with_matches(s->q, &it)) {
		group_open(s, "", 0, &it);
		group_add(s, it.when);
		s->open = false;
	}
	return 0;
}

/* The groups sorted by with, those of one with merged, handed to fn. */
static void summary_emit(struct summary *s,
			 int (*fn)(void *ctx, const char *with, size_t wlen,
				   size_t count, int64_t first, int64_t last),
			 void *ctx)
{
	size_t n;
	const char **gs = arch_lenkey_sort(&s->groups,
				      sizeof(size_t) + 2 * sizeof(int64_t), &n);

	for (size_t i = 0; i < n; ) {
		size_t wlen, count = 0, c;
		int64_t first = INT64_MAX, last = INT64_MIN, t;
		size_t j = i;
		memcpy(&wlen, gs[i], sizeof(wlen));
		for (; j < n && arch_lenkey_cmp(&gs[i], &gs[j]) == 0; j++) {
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

int store_archive_summary(const struct store *store, const char *user,
			  const struct store_arch_query *q,
			  int (*fn)(void *ctx, const char *with, size_t wlen,
				    size_t count, int64_t first,
				    int64_t last), void *ctx)
{
	struct summary s = { .q = q };
	struct sbuf base, lo, hi;
	struct arch a;
	int rc = arch_init(&a, store, user);

	s.a = &a;
	sbuf_init(&s.groups);
	sbuf_init(&s.w);
	sbuf_init(&s.k);
	sbuf_init(&s.v);
	sbuf_init(&base);
	sbuf_init(&lo);
	sbuf_init(&hi);
	if (q->with)
		arch_with_prefix(&a, &base, q->with, q->with_len);
	else
		sbuf_add(&base, a.p.p, a.p.len);
	arch_prefix_end(&hi, &base);
	if (rc == 0)
		rc = arch_indexed_until(&a, &s.until);
	if (rc == 0)
		rc = a.e->scan(STORE_ARCHIVE_WITH, base.p, base.len, hi.p, hi.len,
			     false, on_summary_entry, &s);
	if (rc == 0 && s.until < INT64_MAX) {
		struct store_arch_query qt = *q;
		if (!qt.has_start || qt.start < s.until) {
			qt.has_start = true;
			qt.start = s.until;
		}
		s.q = &qt;
		s.open = false;
		if (arch_scan_bounds(&qt, &a.p, false, &lo, &hi))
			rc = a.e->scan(STORE_ARCHIVE, lo.p, lo.len, hi.p, hi.len,
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
	f->t = arch_get_t8((const char *)k + f->base_len);
	f->found = true;
	return 1;
}

int store_archive_dates(const struct store *s, const char *user,
			int (*fn)(void *ctx, int64_t day), void *ctx)
{
	struct first_time f = { 0 };
	struct sbuf lo, hi;
	struct arch a;
	int rc = arch_init(&a, s, user);

	sbuf_init(&lo);
	sbuf_init(&hi);
	f.base_len = a.p.len;
	arch_prefix_end(&hi, &a.p);
	sbuf_add(&lo, a.p.p, a.p.len);
	while (rc == 0) {
		f.found = false;
		rc = a.e->scan(STORE_ARCHIVE, lo.p, lo.len, hi.p, hi.len, false,
			     first_time, &f);
		if (rc || !f.found)
			break;
		int64_t day = f.t / DAY_US - (f.t % DAY_US < 0);
		if (fn(ctx, day * DAY_US) || day >= INT64_MAX / DAY_US - 1)
			break;
		sbuf_reset(&lo);
		sbuf_add(&lo, a.p.p, a.p.len);
		arch_put_t8(&lo, (day + 1) * DAY_US);
	}
	sbuf_free(&lo);
	sbuf_free(&hi);
	arch_free(&a);
	return rc;
}

