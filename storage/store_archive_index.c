/*
 * store_archive_index.c - the with index of archive stores written
 * behind the traffic (store_archive.c has the layout): how far it
 * reaches per store (archive_meta, with a cache of the floor for the
 * append path), and the job that writes the deferred entries.
 *
 * until:  items before it have their with entries.
 * floor:  where the pass under way ends; an append at or after it may
 *         leave its entry to the job.
 * pass:   one archive store's span [until, target), indexed user by
 *         user, in slices (steps) between stanzas.
 */
#include "store_archive.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <stdatomic.h>

/* ---- how far the with index reaches ---- */

static void meta_key(struct sbuf *k, const char *host, const char *store)
{
	sbuf_reset(k);
	sbuf_add(k, host, strlen(host) + 1);
	sbuf_add(k, store, strlen(store));
}

/* 0, or -ENOENT when nothing was ever deferred (the index is whole). */
int arch_meta_get(const struct store_engine *e, const char *host,
		  const char *store, struct arch_meta *m)
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
		m->until = arch_get_t8(v.p);
		m->floor = arch_get_t8(v.p + 8);
	}
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

static int meta_put(const struct store_engine *e, const char *host,
		    const char *store, const struct arch_meta *m)
{
	struct sbuf k, v;
	int rc;

	sbuf_init(&k);
	sbuf_init(&v);
	meta_key(&k, host, store);
	arch_put_t8(&v, m->until);
	arch_put_t8(&v, m->floor);
	rc = e->put(STORE_ARCHIVE_META, k.p, k.len, v.p, v.len);
	sbuf_free(&k);
	sbuf_free(&v);
	return rc;
}

/* The time before which items have their with entries: INT64_MAX when
 * all have. */
int arch_indexed_until(const struct arch *a, int64_t *until)
{
	struct arch_meta m;
	int rc = arch_meta_get(a->e, a->host, a->store, &m);

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

int arch_meta_set(const struct store_engine *e, const char *host,
		  const char *store, const struct arch_meta *m)
{
	int rc = meta_put(e, host, store, m);

	if (rc == 0 && !e->own_thread)	/* the cache is the loop's */
		floor_set(e, host, store, m->floor);
	return rc;
}

/* Whether an item appended now at time t may leave its with entry to
 * the job. The first such item starts the deferring: all before it were
 * indexed as they came. */
int arch_may_defer(const struct arch *a, int64_t t, bool *defer)
{
	struct floor_entry *f = floor_find(a->e, a->host, a->store);
	struct arch_meta m;
	int rc = 0;

	if (f) {
		m.floor = f->floor;
	} else {
		rc = arch_meta_get(a->e, a->host, a->store, &m);
		if (rc == -ENOENT) {
			m.until = m.floor = t;
			rc = arch_meta_set(a->e, a->host, a->store, &m);
		} else if (rc == 0) {
			floor_set(a->e, a->host, a->store, m.floor);
		}
	}
	*defer = rc == 0 && t >= m.floor;
	deferred_since += *defer;
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

/* The memory engine's job, LMDB's (on the archive writer's thread
 * when it runs, store_writer.c) and PostgreSQL's, each used by one thread
 * at a time; jp is the one the calling thread is running. */
static struct job jobs[3];

static struct job *job_of(const struct store_engine *e)
{
	return &jobs[e == &store_memory ? 0 : e == &store_pg ? 2 : 1];
}

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
	struct arch_meta m;
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
		rc = arch_meta_get(e, jp->host.p, jp->store.p, &m);
		if (rc)
			break;
		if (m.until <= now - delay - window && m.until < target_max) {
			jp->e = e;
			jp->from = m.until;
			jp->to = m.floor = MIN(now - delay, target_max);
			jp->items = 0;
			sbuf_reset(&jp->cursor);
			sbuf_add(&jp->cursor, jp->host.p, jp->host.len);
			rc = arch_meta_set(e, jp->host.p, jp->store.p, &m);
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
	if (klen <= plen + 8 || arch_rec_parse(v, vlen, &it))
		return 0;			/* not ours to judge here */
	if (!it.with)
		return 0;
	arch_with_prefix(c->a, &c->w, it.with, it.with_len);
	sbuf_add(&c->w, (const char *)k + plen, klen - plen);	/* T8 id */
	sbuf_add(&c->keys, &c->w.len, sizeof(c->w.len));
	sbuf_add(&c->keys, c->w.p, c->w.len);
	return 0;
}

/* Writes the collected entries in key order, so neighbours share pages. */
static int put_sorted(const struct store_engine *e, struct collect *c)
{
	size_t n;
	const char **ks = arch_lenkey_sort(&c->keys, 0, &n);
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
	struct store s;
	int rc = store_init(&s, jp->e, jp->host.p, jp->store.p,
			    STORE_KIND_ARCHIVE);

	if (rc == 0)
		rc = arch_init(&a, &s, user);
	else
		sbuf_init(&a.p);
	c.a = &a;
	sbuf_init(&c.keys);
	sbuf_init(&c.last);
	sbuf_init(&c.w);
	sbuf_init(&lo);
	sbuf_init(&hi);
	sbuf_add(&lo, a.p.p, a.p.len);
	arch_put_t8(&lo, jp->from);
	sbuf_add(&hi, a.p.p, a.p.len);
	arch_put_t8(&hi, jp->to);
	sbuf_reset(&jp->cursor);
	if (rc == 0 && arch_buf_cmp(k, &lo) < 0) {
		sbuf_add(&jp->cursor, lo.p, lo.len);	/* to the span */
	} else if (rc == 0 && arch_buf_cmp(k, &hi) < 0) {
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
	struct arch_meta m;
	int rc = arch_meta_get(jp->e, jp->host.p, jp->store.p, &m);

	if (rc == 0 && m.floor != jp->to)
		rc = -ESTALE;		/* not ours any more */
	sbuf_init(&hi);
	sbuf_init(&k);
	sbuf_init(&user);
	arch_prefix_end(&hi, &jp->host);
	while (rc == 0 && *done < budget) {
		rc = seek(jp->e, STORE_ARCHIVE, &jp->cursor, &hi, &k);
		if (rc == -ENOENT) {		/* every user done */
			m.until = jp->to;
			rc = arch_meta_set(jp->e, jp->host.p, jp->store.p, &m);
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
	job_of(e)->e = NULL;	/* from until again */
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

	jp = job_of(e);
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
	if (rc >= 0 && store_pg_indexer()) {
		rc = store_archive_index_step_on(&store_pg, delay, budget,
						 INT64_MAX);
		more |= rc > 0;
	}
	return rc < 0 ? rc : more;
}

