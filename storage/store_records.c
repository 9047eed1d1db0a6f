/*
 * store_records.c - store handles, and the records of accounts, keyval and
 * map stores on any engine (store.h): key layout, users, map iteration,
 * delete_all, purge; the table of dbs the engines keep.
 *
 * Keys: host \0 user [\0 store [\0 mapkey]] (accounts stop after user,
 * keyval after store). Iterations that hand records to a callback which
 * may write (users, map_each) copy one record per lookup and seek past it
 * for the next, so no scan is open while the callback runs.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>

const struct store_db_info store_dbs[STORE_NDB] = {
	[STORE_ACCOUNTS] = { "accounts", 0 },
	[STORE_KEYVAL] = { "keyval", 0 },
	[STORE_MAP] = { "map", 0 },
	[STORE_ARCHIVE] = { "archive", STORE_DB_F_HANDOVER },
	[STORE_ARCHIVE_WITH] = { "archive_with", 0 },
	[STORE_ARCHIVE_ID] = { "archive_id", 0 },
	[STORE_ARCHIVE_META] = { "archive_meta", STORE_DB_F_HOSTWIDE },
	[STORE_ARCHIVE_USAGE] = { "archive_usage",
				  STORE_DB_F_COUNTER | STORE_DB_F_TRAILS },
};

static const struct store_engine *accounts_engine = &store_lmdb;

const struct store_engine *store_accounts_engine(void)
{
	return accounts_engine;
}

void store_set_accounts_engine(const struct store_engine *e)
{
	accounts_engine = e;
}

/* ---- handles ---- */

static const char *const kind_names[STORE_NKIND] = {
	[STORE_KIND_ACCOUNTS] = "accounts",
	[STORE_KIND_KEYVAL] = "keyval",
	[STORE_KIND_MAP] = "map",
	[STORE_KIND_ARCHIVE] = "archive",
};

/* The db of a kind's records (archives: their items). */
static const enum store_db kind_dbs[STORE_NKIND] = {
	[STORE_KIND_ACCOUNTS] = STORE_ACCOUNTS,
	[STORE_KIND_KEYVAL] = STORE_KEYVAL,
	[STORE_KIND_MAP] = STORE_MAP,
	[STORE_KIND_ARCHIVE] = STORE_ARCHIVE,
};

int store_init(struct store *s, const struct store_engine *e,
	       const char *host, const char *name, enum store_kind kind)
{
	memset(s, 0, sizeof(*s));
	if (!e || !host || (unsigned)kind >= STORE_NKIND)
		return -EINVAL;
	if (kind == STORE_KIND_ACCOUNTS)
		name = NULL;
	else if (name && !*name)
		return -EINVAL;
	s->engine = e;
	s->host = host;
	s->name = name;
	s->kind = kind;
	return 0;
}

const char *store_kind_name(enum store_kind kind)
{
	return (unsigned)kind < STORE_NKIND ? kind_names[kind] : "?";
}

int store_kind_find(const char *name)
{
	for (int k = 0; name && k < STORE_NKIND; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -EINVAL;
}

/* ---- keys ---- */

/* host \0 user [\0 store [\0 mapkey]] into key (reset first). */
static int key_build(struct sbuf *key, enum store_db db, const char *host,
		     const char *user, const char *store, const char *mapkey,
		     size_t mapkey_len)
{
	if ((unsigned)db > STORE_MAP || !host || !user)
		return -EINVAL;
	if (db != STORE_ACCOUNTS && !store)
		return -EINVAL;
	if ((db == STORE_MAP) != (mapkey != NULL))
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

/* The key of user's record in s (not an archive's). */
static int record_key(struct sbuf *key, const struct store *s,
		      const char *user, const char *mapkey, size_t mapkey_len)
{
	if (s->kind == STORE_KIND_ARCHIVE)
		return -EINVAL;
	return key_build(key, kind_dbs[s->kind], s->host, user, s->name,
			 mapkey, mapkey_len);
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

int store_get(const struct store *s, const char *user, const char *key,
	      size_t klen, struct sbuf *out)
{
	struct sbuf k;
	int rc;

	sbuf_init(&k);
	rc = record_key(&k, s, user, key, klen);
	if (rc == 0)
		rc = s->engine->get(kind_dbs[s->kind], k.p, k.len, out);
	sbuf_free(&k);
	return rc;
}

int store_put(const struct store *s, const char *user, const char *key,
	      size_t klen, const void *val, size_t len)
{
	struct sbuf k;
	int rc;

	sbuf_init(&k);
	rc = record_key(&k, s, user, key, klen);
	if (rc == 0)
		rc = s->engine->put(kind_dbs[s->kind], k.p, k.len, val, len);
	sbuf_free(&k);
	return rc;
}

int store_del(const struct store *s, const char *user, const char *key,
	      size_t klen)
{
	struct sbuf k;
	int rc;

	sbuf_init(&k);
	rc = record_key(&k, s, user, key, klen);
	if (rc == 0)
		rc = s->engine->del(kind_dbs[s->kind], k.p, k.len);
	sbuf_free(&k);
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

int store_users(const struct store *s,
		int (*fn)(void *ctx, const char *user), void *ctx)
{
	const struct store_engine *e = s->engine;
	enum store_db db = kind_dbs[s->kind];
	const char *host = s->host, *store = s->name;
	struct sbuf prefix, seek, key, user;
	size_t hlen;
	int rc;

	if (!e || !host)
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

int store_map_each(const struct store *s, const char *user,
		   int (*fn)(void *ctx, const char *key, size_t klen,
			     const void *val, size_t vlen), void *ctx)
{
	struct sbuf prefix, seek, key, val;
	int rc = s->kind == STORE_KIND_MAP ? 0 : -EINVAL;

	sbuf_init(&prefix);
	sbuf_init(&seek);
	sbuf_init(&key);
	sbuf_init(&val);
	if (rc == 0)
		rc = record_key(&prefix, s, user, "", 0);
	if (rc)
		goto out;
	sbuf_add(&seek, prefix.p, prefix.len);
	for (;;) {
		rc = seek_copy(s->engine, STORE_MAP, &seek, prefix.p, prefix.len,
			       &key, &val);
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
	const struct store *s;
	const char *key;
	size_t klen;
	int rc;
};

static int del_key_of(void *ctx, const char *user)
{
	struct del_key *d = ctx;
	int rc = store_del(d->s, user, d->key, d->klen);

	if (rc && rc != -ENOENT && rc != -ENAMETOOLONG) {
		d->rc = rc;
		return 1;
	}
	return 0;
}

int store_map_delete_key(const struct store *s, const char *key,
			 size_t klen)
{
	struct del_key d = { s, key, klen, 0 };
	int rc;

	if (s->kind != STORE_KIND_MAP || !s->name || !key)
		return -EINVAL;
	del_key_of(&d, "");		/* the host's own */
	if (d.rc)
		return d.rc;
	rc = store_users(s, del_key_of, &d);
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
		if (!(store_dbs[db].flags & STORE_DB_F_HOSTWIDE))
			rc = e->del_prefix((enum store_db)db, prefix.p, prefix.len);
out:
	sbuf_free(&prefix);
	return rc;
}

int store_purge_user(const char *host, const char *user)
{
	int rc = purge_in(&store_memory, host, user);

	store_archive_usage_forget(host, user);

	if (rc == 0 && store_is_open())
		rc = purge_in(&store_lmdb, host, user);
	if (rc == 0 && store_pg_is_open())
		rc = purge_in(&store_pg, host, user);
	return rc;
}
