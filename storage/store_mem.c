/*
 * store_mem.c - the memory engine: the same sorted key spaces as LMDB
 * (store.h), in this process only, gone at exit. For tests and for data
 * that need not survive a restart; the config selects it per store.
 *
 * Each db is a skip list (levels chosen with probability 1/4, at most
 * MEM_MAX_LEVEL) ordered like LMDB's default comparison: memcmp over the
 * common length, then the shorter key first. Level 0 is doubly linked so
 * reverse scans walk back without searching. Writes apply at once; a
 * scan callback may read but must not write (the node it stands on could
 * go away).
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

#define MEM_MAX_LEVEL 24

struct mem_node {
	char *key;			/* owned */
	size_t klen;
	char *val;			/* owned */
	size_t vlen;
	struct mem_node *prev;		/* level 0, NULL for the first */
	int level;
	struct mem_node *next[];	/* level entries */
};

struct mem_db {
	struct mem_node *head[MEM_MAX_LEVEL];
	int level;			/* levels in use */
	size_t count;
};

static struct mem_db dbs[STORE_NDB];
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static int random_level(void)
{
	int level = 1;

	/* xorshift64: a fixed sequence is all a skip list needs */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	for (uint64_t r = rng_state; (r & 3) == 0 && level < MEM_MAX_LEVEL; r >>= 2)
		level++;
	return level;
}

static int key_cmp(const struct mem_node *n, const void *k, size_t klen)
{
	int c = memcmp(n->key, k, MIN(n->klen, klen));

	if (c)
		return c;
	return n->klen < klen ? -1 : n->klen > klen;
}

/* The first node with key >= k; update[i] (if not NULL) gets the last
 * node before it at level i, or NULL for the head. */
static struct mem_node *find_ge(struct mem_db *d, const void *k, size_t klen,
				struct mem_node **update)
{
	struct mem_node *x = NULL;	/* NULL: the head */

	for (int i = MEM_MAX_LEVEL - 1; i >= d->level && update; i--)
		update[i] = NULL;
	for (int i = d->level - 1; i >= 0; i--) {
		struct mem_node *n = x ? x->next[i] : d->head[i];
		while (n && key_cmp(n, k, klen) < 0) {
			x = n;
			n = n->next[i];
		}
		if (update)
			update[i] = x;
	}
	if (d->level == 0)
		return NULL;
	return x ? x->next[0] : d->head[0];
}

static int check(enum store_db db, size_t klen)
{
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (klen == 0)
		return -EINVAL;
	return klen > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

static int mem_get(enum store_db db, const void *k, size_t klen,
		   struct sbuf *out)
{
	struct mem_node *n;
	int rc = check(db, klen);

	if (rc)
		return rc;
	n = find_ge(&dbs[db], k, klen, NULL);
	if (!n || key_cmp(n, k, klen) != 0)
		return -ENOENT;
	sbuf_reset(out);
	sbuf_add(out, n->val, n->vlen);
	return 0;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *c = xmalloc(n ? n : 1);

	memcpy(c, p, n);
	return c;
}

static void link_node(struct mem_db *d, struct mem_node *n,
		      struct mem_node **update)
{
	for (int i = 0; i < n->level; i++) {
		struct mem_node **slot = update[i] ? &update[i]->next[i]
						   : &d->head[i];
		n->next[i] = *slot;
		*slot = n;
	}
	n->prev = update[0];
	if (n->next[0])
		n->next[0]->prev = n;
	if (n->level > d->level)
		d->level = n->level;
	d->count++;
}

static int mem_put_bytes(struct mem_db *d, struct mem_node *n,
			 struct mem_node **update, const void *k, size_t klen,
			 const void *v, size_t vlen);

static int mem_put(enum store_db db, const void *k, size_t klen,
		   const void *v, size_t vlen)
{
	struct mem_node *update[MEM_MAX_LEVEL], *n;
	struct mem_db *d = &dbs[db];
	int rc = check(db, klen);

	if (rc)
		return rc;
	n = find_ge(d, k, klen, update);
	if (n && key_cmp(n, k, klen) != 0)
		n = NULL;
	if (store_dbs[db].flags & STORE_DB_F_COUNTER) {
		unsigned char sum[STORE_COUNTER_MAX];
		size_t len = store_counter_add(sum, n ? n->val : NULL,
					       n ? n->vlen : 0, v, vlen);
		return mem_put_bytes(d, n, update, k, klen, sum, len);
	}
	return mem_put_bytes(d, n, update, k, klen, v, vlen);
}

/* Sets the value of node n (NULL: a new node after update) to v. */
static int mem_put_bytes(struct mem_db *d, struct mem_node *n,
			 struct mem_node **update, const void *k, size_t klen,
			 const void *v, size_t vlen)
{
	if (n) {
		free(n->val);
		n->val = dup_bytes(v, vlen);
		n->vlen = vlen;
		return 0;
	}
	int level = random_level();
	n = xmalloc(sizeof(*n) + (size_t)level * sizeof(n->next[0]));
	n->key = dup_bytes(k, klen);
	n->klen = klen;
	n->val = dup_bytes(v, vlen);
	n->vlen = vlen;
	n->level = level;
	link_node(d, n, update);
	return 0;
}

static void unlink_node(struct mem_db *d, struct mem_node *n,
			struct mem_node **update)
{
	for (int i = 0; i < n->level; i++) {
		struct mem_node **slot = update[i] ? &update[i]->next[i]
						   : &d->head[i];
		*slot = n->next[i];
	}
	if (n->next[0])
		n->next[0]->prev = n->prev;
	d->count--;
	free(n->key);
	free(n->val);
	free(n);
}

static int mem_del(enum store_db db, const void *k, size_t klen)
{
	struct mem_node *update[MEM_MAX_LEVEL], *n;
	int rc = check(db, klen);

	if (rc)
		return rc;
	n = find_ge(&dbs[db], k, klen, update);
	if (!n || key_cmp(n, k, klen) != 0)
		return -ENOENT;
	unlink_node(&dbs[db], n, update);
	return 0;
}

static int mem_del_prefix(enum store_db db, const void *k, size_t klen)
{
	struct mem_node *update[MEM_MAX_LEVEL], *n;
	int rc = check(db, klen);

	if (rc)
		return rc;
	for (;;) {
		n = find_ge(&dbs[db], k, klen, update);
		if (!n || n->klen < klen || memcmp(n->key, k, klen) != 0)
			return 0;
		unlink_node(&dbs[db], n, update);
	}
}

static int mem_scan(enum store_db db, const void *lo, size_t lolen,
		    const void *hi, size_t hilen, bool reverse,
		    store_scan_fn fn, void *ctx)
{
	struct mem_node *update[MEM_MAX_LEVEL], *n;
	struct mem_db *d;

	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	d = &dbs[db];
	if (!reverse) {
		for (n = find_ge(d, lo, lolen, NULL); n; n = n->next[0]) {
			if (key_cmp(n, hi, hilen) >= 0)
				break;
			int r = fn(ctx, n->key, n->klen, n->val, n->vlen);
			if (r)
				return r < 0 ? r : 0;
		}
		return 0;
	}
	find_ge(d, hi, hilen, update);
	for (n = update[0]; n; n = n->prev) {
		if (key_cmp(n, lo, lolen) < 0)
			break;
		int r = fn(ctx, n->key, n->klen, n->val, n->vlen);
		if (r)
			return r < 0 ? r : 0;
	}
	return 0;
}

void store_memory_clear(void)
{
	store_gen++;
	store_archive_usage_forget(NULL, NULL);
	for (int db = 0; db < STORE_NDB; db++) {
		struct mem_node *n = dbs[db].head[0];
		while (n) {
			struct mem_node *next = n->next[0];
			free(n->key);
			free(n->val);
			free(n);
			n = next;
		}
		memset(&dbs[db], 0, sizeof(dbs[db]));
	}
}

const struct store_engine store_memory = {
	.name = "memory",
	.get = mem_get,
	.put = mem_put,
	.del = mem_del,
	.del_prefix = mem_del_prefix,
	.scan = mem_scan,
};

const struct store_engine *store_engine_find(const char *name)
{
	if (!name)
		return NULL;
	if (strcmp(name, "lmdb") == 0 || strcmp(name, "internal") == 0)
		return &store_lmdb;
	if (strcmp(name, "memory") == 0)
		return &store_memory;
	if ((strcmp(name, "sql") == 0 || strcmp(name, "postgresql") == 0) &&
	    store_pg_is_open())
		return &store_pg;
	return NULL;
}
