/*
 * store_records.c - the records of accounts, keyval and map stores on any
 * engine (store.h): key layout, users, map iteration, delete_all, purge.
 *
 * Keys: host \0 user [\0 store [\0 mapkey]] (accounts stop after user,
 * keyval after store). Iterations that hand records to a callback which
 * may write (users, map_each) copy one record per lookup and seek past it
 * for the next, so no scan is open while the callback runs.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

/* host \0 user [\0 store [\0 mapkey]] into key (reset first). */
static int key_build(struct sbuf *key, enum store_db db, const char *host,
		     const char *user, const char *store, const char *mapkey,
		     size_t mapkey_len)
{
	if ((unsigned)db > STORE_MAP || !host || !user)
		return -EINVAL;
	if (db != STORE_ACCOUNTS && !store)
		return -EINVAL;
	if (db == STORE_MAP && !mapkey)
		return -EINVAL;
	sbuf_reset(key);
	sbuf_add(key, host, strlen(host) + 1);
	sbuf_adds(key, user);
	if (db != STORE_ACCOUNTS) {
		sbuf_addc(key, '\0');
		sbuf_adds(key, store);
	}
	if (db == STORE_MAP) {
		sbuf_addc(key, '\0');
		sbuf_add(key, mapkey, mapkey_len);
	}
	return key->len > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* The user part of a key under the hlen bytes of "host\0". */
static size_t key_user_len(const char *k, size_t klen, size_t hlen)
{
	const char *end = memchr(k + hlen, '\0', klen - hlen);

	return end ? (size_t)(end - k - hlen) : klen - hlen;
}

/* The least key greater than every key starting with prefix (prefixes
 * here end in a byte below 0xff: a NUL separator or a name). */
static void prefix_end(struct sbuf *hi, const void *prefix, size_t len)
{
	sbuf_reset(hi);
	sbuf_add(hi, prefix, len);
	while (hi->len && (unsigned char)hi->p[hi->len - 1] == 0xff)
		hi->len--;
	if (hi->len)
		hi->p[hi->len - 1]++;
	else
		sbuf_add(hi, "\xff\xff\xff\xff", 4);
}

int store_get_in(const struct store_engine *e, enum store_db db,
		 const char *host, const char *user, const char *store,
		 const char *mapkey, size_t mapkey_len, struct sbuf *out)
{
	struct sbuf key;
	int rc;

	sbuf_init(&key);
	rc = key_build(&key, db, host, user, store, mapkey, mapkey_len);
	if (rc == 0)
		rc = e->get(db, key.p, key.len, out);
	sbuf_free(&key);
	return rc;
}

int store_put_in(const struct store_engine *e, enum store_db db,
		 const char *host, const char *user, const char *store,
		 const char *mapkey, size_t mapkey_len,
		 const void *val, size_t len)
{
	struct sbuf key;
	int rc;

	sbuf_init(&key);
	rc = key_build(&key, db, host, user, store, mapkey, mapkey_len);
	if (rc == 0)
		rc = e->put(db, key.p, key.len, val, len);
	sbuf_free(&key);
	return rc;
}

int store_del_in(const struct store_engine *e, enum store_db db,
		 const char *host, const char *user, const char *store,
		 const char *mapkey, size_t mapkey_len)
{
	struct sbuf key;
	int rc;

	sbuf_init(&key);
	rc = key_build(&key, db, host, user, store, mapkey, mapkey_len);
	if (rc == 0)
		rc = e->del(db, key.p, key.len);
	sbuf_free(&key);
	return rc;
}

/* ---- iteration ---- */

struct copy_first {
	struct sbuf *key, *val;
	bool found;
};

static int copy_first(void *ctx, const void *k, size_t klen, const void *v,
		      size_t vlen)
{
	struct copy_first *c = ctx;

	sbuf_reset(c->key);
	sbuf_add(c->key, k, klen);
	if (c->val) {
		sbuf_reset(c->val);
		sbuf_add(c->val, v, vlen);
	}
	c->found = true;
	return 1;
}

/* The first record at or after seek that starts with prefix, copied into
 * key (and val unless NULL). 0, -ENOENT or another -errno. */
static int seek_copy(const struct store_engine *e, enum store_db db,
		     const struct sbuf *seek, const void *prefix, size_t plen,
		     struct sbuf *key, struct sbuf *val)
{
	struct copy_first c = { key, val, false };
	struct sbuf hi;
	int rc;

	sbuf_init(&hi);
	prefix_end(&hi, prefix, plen);
	rc = e->scan(db, seek->p, seek->len, hi.p, hi.len, false, copy_first, &c);
	sbuf_free(&hi);
	if (rc == 0 && !c.found)
		rc = -ENOENT;
	return rc;
}

/* Whether the user under prefix (host \0 user \0) has a record in store. */
static int user_has_store(const struct store_engine *e, enum store_db db,
			  const struct sbuf *user_prefix, const char *store)
{
	struct sbuf seek, key;
	int rc;

	sbuf_init(&seek);
	sbuf_init(&key);
	sbuf_add(&seek, user_prefix->p, user_prefix->len);
	sbuf_adds(&seek, store);
	if (db != STORE_KEYVAL)
		sbuf_addc(&seek, '\0');
	rc = seek_copy(e, db, &seek, seek.p, seek.len, &key, NULL);
	if (rc == 0 && db == STORE_KEYVAL && key.len != seek.len)
		rc = -ENOENT;
	sbuf_free(&seek);
	sbuf_free(&key);
	return rc;
}

int store_users_in(const struct store_engine *e, enum store_db db,
		   const char *host, const char *store,
		   int (*fn)(void *ctx, const char *user), void *ctx)
{
	struct sbuf prefix, seek, key, user;
	size_t hlen;
	int rc;

	if ((unsigned)db >= STORE_NDB || !host)
		return -EINVAL;
	hlen = strlen(host) + 1;
	sbuf_init(&prefix);
	sbuf_init(&seek);
	sbuf_init(&key);
	sbuf_init(&user);
	sbuf_add(&prefix, host, hlen);
	sbuf_add(&seek, host, hlen);
	for (;;) {
		rc = seek_copy(e, db, &seek, prefix.p, prefix.len, &key, NULL);
		if (rc)
			break;
		size_t ulen = key_user_len(key.p, key.len, hlen);
		sbuf_reset(&user);
		sbuf_add(&user, key.p + hlen, ulen);
		sbuf_reset(&seek);
		sbuf_add(&seek, key.p, hlen + ulen);
		sbuf_addc(&seek, '\0');
		if (ulen && store && db != STORE_ACCOUNTS) {
			rc = user_has_store(e, db, &seek, store);
			if (rc && rc != -ENOENT)
				break;
		}
		seek.p[seek.len - 1] = '\1';		/* past this user */
		if (ulen && rc == 0 && fn(ctx, user.p))
			break;
	}
	sbuf_free(&prefix);
	sbuf_free(&seek);
	sbuf_free(&key);
	sbuf_free(&user);
	return rc == -ENOENT ? 0 : rc;
}

int store_map_each_in(const struct store_engine *e, const char *host,
		      const char *user, const char *store,
		      int (*fn)(void *ctx, const char *key, size_t klen,
				const void *val, size_t vlen), void *ctx)
{
	struct sbuf prefix, seek, key, val;
	int rc;

	sbuf_init(&prefix);
	sbuf_init(&seek);
	sbuf_init(&key);
	sbuf_init(&val);
	rc = key_build(&prefix, STORE_MAP, host, user, store, "", 0);
	if (rc)
		goto out;
	sbuf_add(&seek, prefix.p, prefix.len);
	for (;;) {
		rc = seek_copy(e, STORE_MAP, &seek, prefix.p, prefix.len, &key, &val);
		if (rc)
			break;
		sbuf_reset(&seek);
		sbuf_add(&seek, key.p, key.len);
		sbuf_addc(&seek, '\0');		/* the next key after this */
		if (fn(ctx, key.p + prefix.len, key.len - prefix.len, val.p, val.len))
			break;
	}
	if (rc == -ENOENT)
		rc = 0;
out:
	sbuf_free(&prefix);
	sbuf_free(&seek);
	sbuf_free(&key);
	sbuf_free(&val);
	return rc;
}

struct del_key {
	const struct store_engine *e;
	const char *host, *store, *mapkey;
	size_t mapkey_len;
	int rc;
};

static int del_key_of(void *ctx, const char *user)
{
	struct del_key *d = ctx;
	int rc = store_del_in(d->e, STORE_MAP, d->host, user, d->store,
			      d->mapkey, d->mapkey_len);

	if (rc && rc != -ENOENT && rc != -ENAMETOOLONG) {
		d->rc = rc;
		return 1;
	}
	return 0;
}

int store_map_delete_key_in(const struct store_engine *e, const char *host,
			    const char *store, const char *mapkey,
			    size_t mapkey_len)
{
	struct del_key d = { e, host, store, mapkey, mapkey_len, 0 };
	int rc;

	if (!host || !store || !mapkey)
		return -EINVAL;
	del_key_of(&d, "");		/* the host's own */
	if (d.rc)
		return d.rc;
	rc = store_users_in(e, STORE_MAP, host, store, del_key_of, &d);
	return rc ? rc : d.rc;
}

/* ---- purge ---- */

static int purge_in(const struct store_engine *e, const char *host,
		    const char *user)
{
	struct sbuf prefix;
	int rc;

	sbuf_init(&prefix);
	rc = key_build(&prefix, STORE_ACCOUNTS, host, user, NULL, NULL, 0);
	if (rc)
		goto out;
	rc = e->del(STORE_ACCOUNTS, prefix.p, prefix.len);
	if (rc && rc != -ENOENT)
		goto out;
	sbuf_addc(&prefix, '\0');
	rc = 0;
	for (int db = STORE_KEYVAL; db < STORE_NDB && rc == 0; db++)
		if (db != STORE_ARCHIVE_META)	/* no users in its keys */
			rc = e->del_prefix((enum store_db)db, prefix.p, prefix.len);
out:
	sbuf_free(&prefix);
	return rc;
}

int store_purge_user(const char *host, const char *user)
{
	int rc = purge_in(&store_memory, host, user);

	if (rc == 0 && store_is_open())
		rc = purge_in(&store_lmdb, host, user);
	return rc;
}

/* ---- LMDB shortcuts ---- */

int store_get(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len,
	      struct sbuf *out)
{
	return store_get_in(&store_lmdb, db, host, user, store, mapkey,
			    mapkey_len, out);
}

int store_put(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len,
	      const void *val, size_t len)
{
	return store_put_in(&store_lmdb, db, host, user, store, mapkey,
			    mapkey_len, val, len);
}

int store_del(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len)
{
	return store_del_in(&store_lmdb, db, host, user, store, mapkey,
			    mapkey_len);
}

int store_users(enum store_db db, const char *host, const char *store,
		int (*fn)(void *ctx, const char *user), void *ctx)
{
	return store_users_in(&store_lmdb, db, host, store, fn, ctx);
}

int store_map_each(const char *host, const char *user, const char *store,
		   int (*fn)(void *ctx, const char *key, size_t klen,
			     const void *val, size_t vlen), void *ctx)
{
	return store_map_each_in(&store_lmdb, host, user, store, fn, ctx);
}

int store_map_delete_key(const char *host, const char *store,
			 const char *mapkey, size_t mapkey_len)
{
	return store_map_delete_key_in(&store_lmdb, host, store, mapkey,
				       mapkey_len);
}
