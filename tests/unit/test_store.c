/*
 * test_store.c - the LMDB store (store.c), the memory engine
 * (store_mem.c), records (store_records.c), accounts (accounts.c) and the
 * Lua bindings (lx_store.c, lx_accounts.c), on environments in temporary
 * directories that are removed at the end.
 */
#include "harness.h"
#include "store.h"
#include "accounts.h"
#include "log.h"
#include "lx.h"
#include "lx_admin.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <lmdb.h>

static char base[] = "/tmp/starling-test-store-XXXXXX";
static char dir[256];
static int ndirs;

/* A fresh directory for one test's environment. */
static const char *new_dir(void)
{
	snprintf(dir, sizeof(dir), "%s/env%d", base, ++ndirs);
	return dir;
}

/* A handle on engine e for store name of host (a few in turn, so one
 * call may take two). */
static const struct store *on(const struct store_engine *e,
			      enum store_kind kind, const char *host,
			      const char *name)
{
	static struct store hs[4];
	static int next;
	struct store *s = &hs[next++ % 4];

	CHECK(store_init(s, e, host, name, kind) == 0);
	return s;
}

/* The same on LMDB. */
static const struct store *H(enum store_kind kind, const char *host,
			     const char *name)
{
	return on(&store_lmdb, kind, host, name);
}

static int get_str(enum store_kind kind, const char *host, const char *user,
		   const char *store, const char *mapkey, struct sbuf *out)
{
	return store_get(H(kind, host, store), user, mapkey,
			 mapkey ? strlen(mapkey) : 0, out);
}

static int put_str(enum store_kind kind, const char *host, const char *user,
		   const char *store, const char *mapkey, const char *val)
{
	return store_put(H(kind, host, store), user, mapkey,
			 mapkey ? strlen(mapkey) : 0, val, strlen(val));
}

/* Whether a record exists and (val non-NULL) holds val. */
static bool has(enum store_kind db, const char *host, const char *user,
		const char *store, const char *mapkey, const char *val)
{
	struct sbuf b;
	bool ok;

	sbuf_init(&b);
	ok = get_str(db, host, user, store, mapkey, &b) == 0 &&
	     (!val || (b.len == strlen(val) && memcmp(b.p, val, b.len) == 0));
	sbuf_free(&b);
	return ok;
}

/* An environment made with LMDB directly with a small map, so the store
 * opens it at that size (it keeps an existing environment's size). */
static void make_small_env(const char *path, size_t mapsize)
{
	MDB_env *env;

	mkdir(path, 0700);
	if (mdb_env_create(&env) == 0) {
		mdb_env_set_mapsize(env, mapsize);
		CHECK(mdb_env_open(env, path, 0, 0600) == 0);
		mdb_env_close(env);
	}
}

static void test_put_get_del(void)
{
	struct sbuf b;

	sbuf_init(&b);
	CHECK(!store_is_open());
	CHECK(store_get(H(STORE_KIND_KEYVAL, "h", "s"), "u", NULL, 0, &b) == -ENXIO);
	CHECK(store_open(new_dir(), 0) == 0);
	CHECK(store_is_open());
	CHECK(store_open(dir, 0) == -EBUSY);
	CHECK(get_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, &b) == -ENOENT);
	CHECK(put_str(STORE_KIND_ACCOUNTS, "h", "u", NULL, NULL, "acct") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "kv") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "u", "s", "k", "mv") == 0);
	CHECK(store_put(H(STORE_KIND_MAP, "h", "s"), "u", "k\0x", 3, "nul", 3) == 0);
	CHECK(has(STORE_KIND_ACCOUNTS, "h", "u", NULL, NULL, "acct"));
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "kv"));
	CHECK(has(STORE_KIND_MAP, "h", "u", "s", "k", "mv"));
	CHECK(store_get(H(STORE_KIND_MAP, "h", "s"), "u", "k\0x", 3, &b) == 0 &&
	      b.len == 3 && memcmp(b.p, "nul", 3) == 0);
	/* the dbs are separate */
	CHECK(!has(STORE_KIND_KEYVAL, "h", "u", "t", NULL, NULL));
	CHECK(!has(STORE_KIND_MAP, "h", "u", "s", "kk", NULL));
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "kv2") == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "kv2"));
	CHECK(store_del(H(STORE_KIND_KEYVAL, "h", "s"), "u", NULL, 0) == 0);
	CHECK(store_del(H(STORE_KIND_KEYVAL, "h", "s"), "u", NULL, 0) == -ENOENT);
	CHECK(!has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, NULL));
	CHECK(store_del(H(STORE_KIND_MAP, "h", "s"), "u", "k", 1) == 0);
	CHECK(!has(STORE_KIND_MAP, "h", "u", "s", "k", NULL));
	CHECK(store_del(H(STORE_KIND_ACCOUNTS, "h", NULL), "u", NULL, 0) == 0);
	CHECK(!has(STORE_KIND_ACCOUNTS, "h", "u", NULL, NULL, NULL));
	/* bad arguments and keys over LMDB's limit */
	CHECK(store_put(H(STORE_KIND_MAP, "h", "s"), "u", NULL, 0, "x", 1) == -EINVAL);
	CHECK(store_put(H(STORE_KIND_KEYVAL, "h", NULL), "u", NULL, 0, "x", 1) == -EINVAL);
	char big[600];
	memset(big, 'k', sizeof(big));
	CHECK(store_put(H(STORE_KIND_MAP, "h", "s"), "u", big, sizeof(big), "x", 1) ==
	      -ENAMETOOLONG);
	CHECK(store_commit() == 0);
	store_close();
	CHECK(!store_is_open());
	sbuf_free(&b);
}

static void test_batch(void)
{
	CHECK(store_open(new_dir(), 0) == 0);
	CHECK(!store_pending());
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v1") == 0);
	CHECK(store_pending());
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v1"));
	CHECK(store_commit() == 0);
	CHECK(!store_pending());
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v1"));
	/* a read snapshot taken before our own commit must not hide it */
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v2") == 0);
	CHECK(store_commit() == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v2"));
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "t", NULL, "w") == 0);
	store_close();		/* commits what is pending */
	CHECK(store_open(dir, 0) == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "v2"));
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "t", NULL, "w"));
	store_close();
}

static void fill_user(const char *host, const char *user)
{
	CHECK(put_str(STORE_KIND_ACCOUNTS, host, user, NULL, NULL, "a") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, host, user, "roster", NULL, "r") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, host, user, "vcard", NULL, "v") == 0);
	CHECK(put_str(STORE_KIND_MAP, host, user, "pep", "n1", "p1") == 0);
	CHECK(put_str(STORE_KIND_MAP, host, user, "pep", "n2", "p2") == 0);
}

static bool user_intact(const char *host, const char *user)
{
	return has(STORE_KIND_ACCOUNTS, host, user, NULL, NULL, "a") &&
	       has(STORE_KIND_KEYVAL, host, user, "roster", NULL, "r") &&
	       has(STORE_KIND_KEYVAL, host, user, "vcard", NULL, "v") &&
	       has(STORE_KIND_MAP, host, user, "pep", "n1", "p1") &&
	       has(STORE_KIND_MAP, host, user, "pep", "n2", "p2");
}

static bool user_gone(const char *host, const char *user)
{
	return !has(STORE_KIND_ACCOUNTS, host, user, NULL, NULL, NULL) &&
	       !has(STORE_KIND_KEYVAL, host, user, "roster", NULL, NULL) &&
	       !has(STORE_KIND_KEYVAL, host, user, "vcard", NULL, NULL) &&
	       !has(STORE_KIND_MAP, host, user, "pep", "n1", NULL) &&
	       !has(STORE_KIND_MAP, host, user, "pep", "n2", NULL);
}

static void test_purge(void)
{
	CHECK(store_open(new_dir(), 0) == 0);
	fill_user("h", "al");
	fill_user("h", "alice");
	fill_user("h", "a");
	fill_user("h", "bob");
	fill_user("h2", "al");
	CHECK(store_commit() == 0);
	CHECK(store_purge_user("h", "al") == 0);
	CHECK(user_gone("h", "al"));
	CHECK(user_intact("h", "alice"));
	CHECK(user_intact("h", "a"));
	CHECK(user_intact("h", "bob"));
	CHECK(user_intact("h2", "al"));
	CHECK(store_commit() == 0);
	CHECK(user_gone("h", "al"));
	CHECK(user_intact("h", "alice"));
	CHECK(store_purge_user("h", "nobody") == 0);
	store_close();
}

struct names {
	char buf[512];
	int n;
	int stop_after;
};

static int collect(void *ctx, const char *user)
{
	struct names *nm = ctx;

	strcat(nm->buf, user);
	strcat(nm->buf, ",");
	return ++nm->n == nm->stop_after;
}

static const char *users_of(enum store_kind db, const char *host,
			    const char *store, struct names *nm)
{
	memset(nm, 0, sizeof(*nm));
	CHECK(store_users(H(db, host, store), collect, nm) == 0);
	return nm->buf;
}

static void test_users(void)
{
	struct names nm;

	CHECK(store_open(new_dir(), 0) == 0);
	CHECK_STR(users_of(STORE_KIND_KEYVAL, "h", NULL, &nm), "");
	fill_user("h", "bob");
	fill_user("h", "al");
	fill_user("h", "alice");
	fill_user("h.org", "zed");
	fill_user("g", "gus");
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "carl", "other", NULL, "x") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "dora", "other", "k", "x") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "", "roster", NULL, "host-wide") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "", "pep", "k", "host-wide") == 0);
	CHECK_STR(users_of(STORE_KIND_ACCOUNTS, "h", NULL, &nm), "al,alice,bob,");
	CHECK_STR(users_of(STORE_KIND_KEYVAL, "h", NULL, &nm), "al,alice,bob,carl,");
	CHECK_STR(users_of(STORE_KIND_KEYVAL, "h", "roster", &nm), "al,alice,bob,");
	CHECK_STR(users_of(STORE_KIND_KEYVAL, "h", "other", &nm), "carl,");
	CHECK_STR(users_of(STORE_KIND_KEYVAL, "h", "rost", &nm), "");
	CHECK_STR(users_of(STORE_KIND_MAP, "h", "pep", &nm), "al,alice,bob,");
	CHECK_STR(users_of(STORE_KIND_MAP, "h", "other", &nm), "dora,");
	CHECK_STR(users_of(STORE_KIND_MAP, "h", NULL, &nm), "al,alice,bob,dora,");
	CHECK_STR(users_of(STORE_KIND_ACCOUNTS, "h.org", NULL, &nm), "zed,");
	CHECK_STR(users_of(STORE_KIND_ACCOUNTS, "", NULL, &nm), "");
	memset(&nm, 0, sizeof(nm));
	nm.stop_after = 2;
	CHECK(store_users(H(STORE_KIND_ACCOUNTS, "h", NULL), collect, &nm) == 0);
	CHECK_STR(nm.buf, "al,alice,");
	CHECK(store_commit() == 0);
	CHECK_STR(users_of(STORE_KIND_ACCOUNTS, "h", NULL, &nm), "al,alice,bob,");
	store_close();
}

/* A users callback that writes: the iteration must survive it. */
static int write_during(void *ctx, const char *user)
{
	int *n = ctx;

	(*n)++;
	CHECK(put_str(STORE_KIND_KEYVAL, "h", user, "seen", NULL, "1") == 0);
	if (*n == 2)
		CHECK(store_commit() == 0);
	return 0;
}

static void test_users_callback_writes(void)
{
	int n = 0;

	CHECK(store_open(new_dir(), 0) == 0);
	fill_user("h", "u1");
	fill_user("h", "u2");
	fill_user("h", "u3");
	CHECK(store_commit() == 0);
	CHECK(store_users(H(STORE_KIND_ACCOUNTS, "h", NULL), write_during, &n) == 0);
	CHECK(n == 3);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u3", "seen", NULL, "1"));
	store_close();
}

struct pairs {
	char buf[512];
};

static int collect_pair(void *ctx, const char *key, size_t klen,
			const void *val, size_t vlen)
{
	struct pairs *p = ctx;
	size_t n = strlen(p->buf);

	for (size_t i = 0; i < klen; i++)
		p->buf[n++] = key[i] ? key[i] : '0';
	p->buf[n++] = '=';
	memcpy(p->buf + n, val, vlen);
	n += vlen;
	p->buf[n++] = ';';
	p->buf[n] = '\0';
	return 0;
}

/* Map keys (NUL-terminated, one after another). */
static int collect_record_names(void *ctx, const char *key, size_t klen,
				const void *val, size_t vlen)
{
	sbuf_add(ctx, key, klen);
	sbuf_addc(ctx, '\0');
	return 0;
}

static const char *map_of(const char *host, const char *user,
			  const char *store, struct pairs *p)
{
	memset(p, 0, sizeof(*p));
	CHECK(store_map_each(H(STORE_KIND_MAP, host, store), user, collect_pair, p) == 0);
	return p->buf;
}

static void test_map(void)
{
	struct pairs p;

	CHECK(store_open(new_dir(), 0) == 0);
	CHECK_STR(map_of("h", "u", "m", &p), "");
	CHECK(put_str(STORE_KIND_MAP, "h", "u", "m", "b", "2") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "u", "m", "a", "1") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "u", "m", "", "e") == 0);
	CHECK(store_put(H(STORE_KIND_MAP, "h", "m"), "u", "a\0b", 3, "n", 1) == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "u", "mm", "a", "other store") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "uu", "m", "a", "other user") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "m", NULL, "keyval") == 0);
	CHECK_STR(map_of("h", "u", "m", &p), "=e;a=1;a0b=n;b=2;");
	CHECK_STR(map_of("h", "uu", "m", &p), "a=other user;");
	CHECK_STR(map_of("h", "u", "mm", &p), "a=other store;");
	/* delete_all("a") in store m: every user, no other store or key */
	CHECK(put_str(STORE_KIND_MAP, "h", "al", "m", "a", "x") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "al", "m", "ab", "y") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h2", "u", "m", "a", "other host") == 0);
	CHECK(store_map_delete_key(H(STORE_KIND_MAP, "h", "m"), "a", 1) == 0);
	CHECK_STR(map_of("h", "u", "m", &p), "=e;a0b=n;b=2;");
	CHECK_STR(map_of("h", "uu", "m", &p), "");
	CHECK_STR(map_of("h", "al", "m", &p), "ab=y;");
	CHECK_STR(map_of("h", "u", "mm", &p), "a=other store;");
	CHECK_STR(map_of("h2", "u", "m", &p), "a=other host;");
	CHECK(store_commit() == 0);
	CHECK_STR(map_of("h", "u", "m", &p), "=e;a0b=n;b=2;");
	store_close();
}

/* ~100 MB of values in ten commits, starting from a 1 MiB map: the map
 * grows before batches and, mid-batch, on MDB_MAP_FULL (journal
 * replay). */
static void test_growth(void)
{
	enum { VAL = 100000, PER_BATCH = 100, BATCHES = 10 };
	char *val = xmalloc(VAL);
	struct sbuf b;
	char key[32];
	bool ok = true;

	sbuf_init(&b);
	make_small_env(new_dir(), 1 << 20);
	CHECK(store_open(dir, (size_t)1 << 30) == 0);
	for (int i = 0; i < BATCHES; i++) {
		for (int j = 0; j < PER_BATCH; j++) {
			snprintf(key, sizeof(key), "k%03d", i * PER_BATCH + j);
			memset(val, 'a' + (i + j) % 26, VAL);
			if (store_put(H(STORE_KIND_MAP, "h", "big"), "u", key,
				      strlen(key), val, VAL) != 0)
				ok = false;
		}
		if (store_commit() != 0)
			ok = false;
	}
	CHECK(ok);
	store_close();
	CHECK(store_open(dir, (size_t)1 << 30) == 0);
	for (int i = 0; i < BATCHES * PER_BATCH && ok; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		ok = store_get(H(STORE_KIND_MAP, "h", "big"), "u", key, strlen(key), &b) == 0 &&
		     b.len == VAL && b.p[0] == 'a' + (i / PER_BATCH + i % PER_BATCH) % 26 &&
		     b.p[VAL - 1] == b.p[0];
	}
	CHECK(ok);
	store_close();
	sbuf_free(&b);
	free(val);
}

/* At map_max a write fails with -ENOSPC; what the batch held before it
 * survives, and the store goes on working. */
static void test_full(void)
{
	enum { VAL = 100000 };
	char *val = xcalloc(1, VAL);
	char key[32];
	int rc = 0, i;

	make_small_env(new_dir(), 1 << 20);
	CHECK(store_open(dir, 4 << 20) == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "first", NULL, "kept") == 0);
	for (i = 0; i < 200 && rc == 0; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		rc = store_put(H(STORE_KIND_MAP, "h", "big"), "u", key, strlen(key), val, VAL);
	}
	CHECK(rc == -ENOSPC);
	CHECK(i > 10 && i < 200);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "first", NULL, "kept"));
	CHECK(store_commit() == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "first", NULL, "kept"));
	/* writes are refused at once while the store is full */
	CHECK(store_health()->err == -ENOSPC);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "refused", NULL, "no") == -ENOSPC);
	CHECK(store_probe() == -ENOSPC);
	/* freeing space makes room again, once a probe write succeeds */
	CHECK(store_purge_user("h", "u") == 0);
	CHECK(store_commit() == 0);
	CHECK(store_probe() == 0);
	CHECK(store_health()->err == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "again", NULL, "yes") == 0);
	CHECK(store_commit() == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "again", NULL, "yes"));
	store_close();
	free(val);
}

/* The child: another process writing with LMDB directly, with a bigger
 * map, as starlingctl would. */
static int child_write(const char *path)
{
	static const char key[] = "h\0u\0s";
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { sizeof(key) - 1, (void *)key }, v = { 3, "new" };
	char fill[4096];
	int rc;

	memset(fill, 'f', sizeof(fill));
	rc = mdb_env_create(&env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(env, 8);
	if (rc == 0)
		rc = mdb_env_set_mapsize(env, 64 << 20);
	if (rc == 0)
		rc = mdb_env_open(env, path, MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "keyval", 0, &dbi);
	if (rc == 0)
		rc = mdb_put(txn, dbi, &k, &v, 0);
	for (int i = 0; i < 2000 && rc == 0; i++) {
		char fk[32];
		int n = snprintf(fk, sizeof(fk), "h_fill_%d", i);
		fk[1] = fk[6] = '\0';	/* host h, user fill, store <i> */
		MDB_val kk = { (size_t)n, fk }, vv = { sizeof(fill), fill };
		rc = mdb_put(txn, dbi, &kk, &vv, 0);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc == 0 ? 0 : 1;
}

static void test_other_process(void)
{
	int status = -1;
	pid_t pid;

	make_small_env(new_dir(), 1 << 20);
	CHECK(store_open(dir, 0) == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "old") == 0);
	CHECK(store_commit() == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "old"));	/* snapshot */
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(child_write(dir));
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* still the snapshot */
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "old"));
	store_end_read();
	/* the child grew the map past ours: MDB_MAP_RESIZED, adopted */
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "s", NULL, "new"));
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "u", "t", NULL, "after") == 0);
	CHECK(store_commit() == 0);
	CHECK(has(STORE_KIND_KEYVAL, "h", "u", "t", NULL, "after"));
	store_close();
}

/* ---- accounts ---- */

static int count_user(void *ctx, const char *user)
{
	(*(int *)ctx)++;
	return 0;
}

static void test_accounts(void)
{
	struct scram_creds c1, c256, want;
	int n = 0;

	CHECK(store_open(new_dir(), 0) == 0);
	CHECK(!accounts_exists("h", "juliet"));
	CHECK(accounts_check_password("h", "juliet", "pw") == -ENOENT);
	CHECK(accounts_get("h", "juliet", SASL_HASH_SHA1, &c1) == -ENOENT);
	CHECK(accounts_set_password("h", "juliet", "r0meo", 0) == 0);
	CHECK(accounts_set_password("h", "romeo", "", 0) == -EINVAL);
	CHECK(!accounts_exists("h", "romeo"));
	CHECK(accounts_exists("h", "juliet"));
	CHECK(!accounts_exists("h2", "juliet"));
	CHECK(accounts_check_password("h", "juliet", "r0meo") == 0);
	CHECK(accounts_check_password("h", "juliet", "r0me0") == -EACCES);
	CHECK(accounts_check_password("h", "juliet", "") == -EACCES);
	CHECK(accounts_get("h", "juliet", SASL_HASH_SHA1, &c1) == 0);
	CHECK(accounts_get("h", "juliet", SASL_HASH_SHA256, &c256) == 0);
	CHECK(c1.hash == SASL_HASH_SHA1 && c256.hash == SASL_HASH_SHA256);
	CHECK(c1.iterations == ACCOUNTS_DEFAULT_ITERATIONS);
	CHECK(c1.salt_len == 16 && c256.salt_len == 16);
	CHECK(memcmp(c1.salt, c256.salt, 16) != 0);	/* a fresh salt each */
	CHECK(scram_derive(SASL_HASH_SHA1, "r0meo", c1.salt, c1.salt_len,
			   c1.iterations, &want) == 0);
	CHECK(memcmp(want.stored_key, c1.stored_key, 20) == 0);
	CHECK(memcmp(want.server_key, c1.server_key, 20) == 0);
	CHECK(scram_derive(SASL_HASH_SHA256, "r0meo", c256.salt, c256.salt_len,
			   c256.iterations, &want) == 0);
	CHECK(memcmp(want.stored_key, c256.stored_key, 32) == 0);
	CHECK(memcmp(want.server_key, c256.server_key, 32) == 0);
	/* a new password, other iterations */
	CHECK(accounts_set_password("h", "juliet", "balcony", 5000) == 0);
	CHECK(accounts_check_password("h", "juliet", "r0meo") == -EACCES);
	CHECK(accounts_check_password("h", "juliet", "balcony") == 0);
	CHECK(accounts_get("h", "juliet", SASL_HASH_SHA1, &c1) == 0 &&
	      c1.iterations == 5000);
	/* a corrupt record is not used */
	CHECK(put_str(STORE_KIND_ACCOUNTS, "h", "broken", NULL, NULL, "\1\0\0") == 0);
	CHECK(accounts_get("h", "broken", SASL_HASH_SHA256, &c1) == -EIO);
	CHECK(accounts_check_password("h", "broken", "x") == -EIO);
	CHECK(store_del(H(STORE_KIND_ACCOUNTS, "h", NULL), "broken", NULL, 0) == 0);
	/* list and delete with the user's data */
	CHECK(accounts_set_password("h", "jul", "pw", 0) == 0);
	CHECK(accounts_list("h", count_user, &n) == 0 && n == 2);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "juliet", "roster", NULL, "r") == 0);
	CHECK(put_str(STORE_KIND_MAP, "h", "juliet", "pep", "k", "p") == 0);
	CHECK(put_str(STORE_KIND_KEYVAL, "h", "jul", "roster", NULL, "r") == 0);
	CHECK(store_commit() == 0);
	CHECK(accounts_delete("h", "juliet") == 0);
	CHECK(!accounts_exists("h", "juliet"));
	CHECK(!has(STORE_KIND_KEYVAL, "h", "juliet", "roster", NULL, NULL));
	CHECK(!has(STORE_KIND_MAP, "h", "juliet", "pep", "k", NULL));
	CHECK(has(STORE_KIND_KEYVAL, "h", "jul", "roster", NULL, "r"));
	CHECK(accounts_check_password("h", "jul", "pw") == 0);
	CHECK(accounts_delete("h", "juliet") == -ENOENT);
	CHECK(store_commit() == 0);
	n = 0;
	CHECK(accounts_list("h", count_user, &n) == 0 && n == 1);
	store_close();
}

/* ---- the Lua binding ---- */

static const char lua_test[] =
	"local store = require 'starling.store'\n"
	"local kv = store.open('h', 'roster')\n"
	"assert(tostring(kv):match('roster'))\n"
	"assert(kv:get('romeo') == nil)\n"
	"assert(kv:set('romeo', { contacts = { 'juliet@h', n = 2 }, v = 1.5 }) == true)\n"
	"local r = kv:get('romeo')\n"
	"assert(r.contacts[1] == 'juliet@h' and r.contacts.n == 2 and r.v == 1.5)\n"
	"assert(kv:set(nil, 'host data'))\n"
	"assert(kv:get() == 'host data')\n"
	"assert(kv:set('tybalt', false))\n"
	"assert(kv:get('tybalt') == false)\n"
	"local seen = {}\n"
	"for u in kv:users() do seen[#seen + 1] = u end\n"
	"assert(table.concat(seen, ',') == 'romeo,tybalt', table.concat(seen, ','))\n"
	"assert(kv:set('tybalt', nil))\n"
	"assert(kv:get('tybalt') == nil)\n"
	"assert(kv:set('nobody', nil))\n"
	"local ok, err = kv:set('romeo', function() end)\n"
	"assert(ok == nil and err:match('cannot be stored'))\n"
	"ok, err = kv:set('a\\0b', 1)\n"
	"assert(ok == nil and err == 'invalid user name')\n"
	"assert(not pcall(kv.set, kv, 42, 1))\n"
	"assert(not pcall(kv.get, {}, 'x'))\n"
	"assert(not pcall(kv.set_keys, kv, 'romeo', {}))\n"
	"local m = store.open('h', 'pep', 'map')\n"
	"assert(m:get('romeo', 'mood') == nil)\n"
	"assert(m:set('romeo', 'mood', 'happy'))\n"
	"assert(m:set('juliet', 'mood', 'sad'))\n"
	"assert(m:set('juliet', 'tune', { 'x' }))\n"
	"assert(m:set_keys('romeo', { tune = 'la', ['k\\0'] = 7 }))\n"
	"assert(m:get('romeo', 'mood') == 'happy')\n"
	"local all = m:get('romeo')\n"
	"assert(all.mood == 'happy' and all.tune == 'la' and all['k\\0'] == 7)\n"
	"local moods = m:get_all('mood')\n"
	"assert(moods.romeo == 'happy' and moods.juliet == 'sad')\n"
	"local n = 0 for _ in pairs(moods) do n = n + 1 end assert(n == 2)\n"
	"assert(m:delete_all('mood'))\n"
	"assert(m:get('romeo', 'mood') == nil and m:get('juliet', 'mood') == nil)\n"
	"assert(m:get('juliet', 'tune')[1] == 'x')\n"
	"assert(next(m:get_all('mood')) == nil)\n"
	"assert(m:set('romeo', 'tune', nil))\n"
	"assert(m:get('romeo').tune == nil)\n"
	"assert(not pcall(m.get, m, 'romeo', 5))\n"
	"assert(not pcall(store.open, 'h', 'x', 'archives'))\n"
	"assert(getmetatable(kv) == 'starling.store')\n"
	"assert(kv:set('offline', { st, { st } }))\n"
	"local back = kv:get('offline')\n"
	"assert(type(back[1]) == 'userdata' and type(back[2][1]) == 'userdata')\n"
	"assert(back[1] ~= st)\n"
	"return true\n";

static void test_lua(void)
{
	lua_State *L = luaL_newstate();

	luaL_openlibs(L);
	luaL_requiref(L, "starling.store", luaopen_starling_store, 0);
	lua_pop(L, 1);
	/* before the store is open: nil, message */
	CHECK(luaL_dostring(L, "local s = require 'starling.store'.open('h', 'x')\n"
			       "local v, err = s:get('u')\n"
			       "assert(v == nil and err == 'storage is not open')") == 0);
	CHECK(store_open(new_dir(), 0) == 0);
	struct st_doc *d = st_doc_new();
	st_elem_new(d, NULL, "message", NS_CLIENT);
	lx_stanza_push(L, d, d->root);
	lua_setglobal(L, "st");
	st_doc_unref(d);
	if (luaL_dostring(L, lua_test) != 0) {
		fprintf(stderr, "  lua: %s\n", lua_tostring(L, -1));
		CHECK(0);
	}
	CHECK(store_commit() == 0);
	lua_close(L);
	store_close();
}


/* ---- the memory engine: the same records, the same order ---- */

static const struct store_engine *M = &store_memory;

static bool mhas(enum store_kind db, const char *user, const char *store,
		 const char *mapkey, const char *val)
{
	struct sbuf b;
	bool ok;

	sbuf_init(&b);
	ok = store_get(on(M, db, "h", store), user, mapkey,
			  mapkey ? strlen(mapkey) : 0, &b) == 0 &&
	     (!val || (b.len == strlen(val) && memcmp(b.p, val, b.len) == 0));
	sbuf_free(&b);
	return ok;
}

static int mput(enum store_kind db, const char *user, const char *store,
		const char *mapkey, const char *val)
{
	return store_put(on(M, db, "h", store), user, mapkey,
			    mapkey ? strlen(mapkey) : 0, val, strlen(val));
}

static int collect_m(void *ctx, const char *user)
{
	strcat(ctx, user);
	strcat(ctx, ",");
	return 0;
}

static int collect_item_id(void *ctx, const struct store_arch_item *it)
{
	sbuf_add(ctx, it->id, it->id_len);
	sbuf_addc(ctx, ';');
	return 0;
}

/* Handles: what store_init takes, and each kind reaching its own records
 * and refusing the calls of the others. */
static void test_handle_kinds(void)
{
	struct store s, kv, map, acc, arc, any;
	struct store_arch_item it = { .when = STORE_WHEN_NOW, .val = "i",
				      .val_len = 1 };
	struct store_arch_query all = { 0 };
	char users[64] = "", id[STORE_ID_MAX + 1];
	struct sbuf b, ids;
	size_t n;

	store_memory_clear();
	sbuf_init(&b);
	sbuf_init(&ids);
	CHECK(store_init(&s, NULL, "h", "s", STORE_KIND_KEYVAL) == -EINVAL);
	CHECK(store_init(&s, M, NULL, "s", STORE_KIND_KEYVAL) == -EINVAL);
	CHECK(store_init(&s, M, "h", "", STORE_KIND_MAP) == -EINVAL);
	CHECK(store_init(&s, M, "h", "s", STORE_NKIND) == -EINVAL);
	CHECK(store_init(&s, M, "h", "s", (enum store_kind)-1) == -EINVAL);
	CHECK(store_init(&acc, M, "h", "ignored", STORE_KIND_ACCOUNTS) == 0 &&
	      acc.name == NULL && acc.engine == M && acc.kind == STORE_KIND_ACCOUNTS);
	for (int k = 0; k < STORE_NKIND; k++)
		CHECK(store_kind_find(store_kind_name((enum store_kind)k)) == k);
	CHECK_STR(store_kind_name(STORE_KIND_ARCHIVE), "archive");
	CHECK(store_kind_find("archives") == -EINVAL);
	CHECK(store_kind_find(NULL) == -EINVAL);
	CHECK(store_init(&kv, M, "h", "s", STORE_KIND_KEYVAL) == 0);
	CHECK(store_init(&map, M, "h", "s", STORE_KIND_MAP) == 0);
	CHECK(store_init(&arc, M, "h", "s", STORE_KIND_ARCHIVE) == 0);
	/* one name, four kinds: four sets of records */
	CHECK(store_put(&kv, "u", NULL, 0, "kv", 2) == 0);
	CHECK(store_put(&map, "u", "k", 1, "map", 3) == 0);
	CHECK(store_put(&acc, "u", NULL, 0, "acc", 3) == 0);
	CHECK(store_archive_append(&arc, "u", &it, id) == 0);
	CHECK(store_get(&kv, "u", NULL, 0, &b) == 0 && b.len == 2 &&
	      memcmp(b.p, "kv", 2) == 0);
	CHECK(store_get(&map, "u", "k", 1, &b) == 0 && b.len == 3 &&
	      memcmp(b.p, "map", 3) == 0);
	CHECK(store_get(&acc, "u", NULL, 0, &b) == 0 && b.len == 3 &&
	      memcmp(b.p, "acc", 3) == 0);
	CHECK(store_archive_find(&arc, "u", &all, collect_item_id, &ids,
				 NULL) == 0);
	CHECK(ids.len == strlen(id) + 1 && memcmp(ids.p, id, strlen(id)) == 0);
	/* the calls of other kinds are refused */
	CHECK(store_get(&arc, "u", NULL, 0, &b) == -EINVAL);
	CHECK(store_put(&arc, "u", NULL, 0, "x", 1) == -EINVAL);
	CHECK(store_del(&arc, "u", NULL, 0) == -EINVAL);
	CHECK(store_get(&kv, "u", "k", 1, &b) == -EINVAL);	/* no keys */
	CHECK(store_get(&map, "u", NULL, 0, &b) == -EINVAL);	/* a key */
	CHECK(store_map_each(&kv, "u", collect_pair, NULL) == -EINVAL);
	CHECK(store_map_delete_key(&kv, "k", 1) == -EINVAL);
	CHECK(store_archive_append(&kv, "u", &it, NULL) == -EINVAL);
	CHECK(store_archive_find(&map, "u", &all, collect_item_id, &ids,
				 NULL) == -EINVAL);
	CHECK(store_archive_delete(&acc, "u", &all, 0, &n) == -EINVAL);
	/* a nameless handle lists the users of every store of its kind */
	CHECK(store_put(on(M, STORE_KIND_KEYVAL, "h", "t"), "w", NULL, 0, "x",
			1) == 0);
	CHECK(store_init(&any, M, "h", NULL, STORE_KIND_KEYVAL) == 0);
	CHECK(store_get(&any, "u", NULL, 0, &b) == -EINVAL);
	CHECK(store_users(&any, collect_m, users) == 0);
	CHECK_STR(users, "u,w,");
	*users = '\0';
	CHECK(store_users(&kv, collect_m, users) == 0);
	CHECK_STR(users, "u,");
	*users = '\0';
	CHECK(store_users(&arc, collect_m, users) == 0);
	CHECK_STR(users, "u,");
	/* deleting through one kind leaves the others */
	CHECK(store_del(&kv, "u", NULL, 0) == 0);
	CHECK(store_get(&map, "u", "k", 1, &b) == 0);
	CHECK(store_archive_delete(&arc, "u", &all, 0, &n) == 0 && n == 1);
	CHECK(store_get(&acc, "u", NULL, 0, &b) == 0);
	store_memory_clear();
	sbuf_free(&b);
	sbuf_free(&ids);
}

static void test_memory_records(void)
{
	struct pairs p;
	char users[256] = "";
	char big[600];

	store_memory_clear();
	CHECK(!mhas(STORE_KIND_KEYVAL, "u", "s", NULL, NULL));
	CHECK(mput(STORE_KIND_KEYVAL, "u", "s", NULL, "kv") == 0);
	CHECK(mput(STORE_KIND_KEYVAL, "u", "s", NULL, "kv2") == 0);	/* replaces */
	CHECK(mhas(STORE_KIND_KEYVAL, "u", "s", NULL, "kv2"));
	CHECK(store_del(on(M, STORE_KIND_KEYVAL, "h", "s"), "u", NULL, 0) == 0);
	CHECK(store_del(on(M, STORE_KIND_KEYVAL, "h", "s"), "u", NULL, 0) == -ENOENT);
	memset(big, 'k', sizeof(big));
	CHECK(store_put(on(M, STORE_KIND_MAP, "h", "s"), "u", big, sizeof(big), "x", 1) ==
	      -ENAMETOOLONG);
	/* many keys in random order come back sorted */
	for (int i = 0; i < 2000; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%04d", (i * 7) % 2000);
		CHECK(mput(STORE_KIND_MAP, "u", "m", k, "v") == 0);
	}
	CHECK(mput(STORE_KIND_MAP, "u", "m2", "a", "other") == 0);
	int n = 0;
	char last[16] = "";
	struct sbuf keys;
	sbuf_init(&keys);
	CHECK(store_map_each(on(M, STORE_KIND_MAP, "h", "m"), "u", collect_record_names, &keys) == 0);
	for (size_t off = 0; off < keys.len; off += strlen(keys.p + off) + 1) {
		CHECK(strcmp(last, keys.p + off) < 0);
		snprintf(last, sizeof(last), "%s", keys.p + off);
		n++;
	}
	CHECK(n == 2000);
	sbuf_free(&keys);
	/* users, delete_all, purge: as on LMDB */
	CHECK(mput(STORE_KIND_MAP, "al", "m", "k0001", "x") == 0);
	CHECK(mput(STORE_KIND_MAP, "", "m", "k0001", "host") == 0);
	CHECK(mput(STORE_KIND_ACCOUNTS, "al", NULL, NULL, "a") == 0);
	CHECK(store_users(on(M, STORE_KIND_MAP, "h", "m"), collect_m, users) == 0);
	CHECK_STR(users, "al,u,");
	CHECK(store_map_delete_key(on(M, STORE_KIND_MAP, "h", "m"), "k0001", 5) == 0);
	CHECK(!mhas(STORE_KIND_MAP, "al", "m", "k0001", NULL));
	CHECK(!mhas(STORE_KIND_MAP, "", "m", "k0001", NULL));
	CHECK(mhas(STORE_KIND_MAP, "u", "m", "k0002", "v"));
	memset(&p, 0, sizeof(p));
	CHECK(store_map_each(on(M, STORE_KIND_MAP, "h", "m2"), "u", collect_pair, &p) == 0);
	CHECK_STR(p.buf, "a=other;");
	CHECK(store_purge_user("h", "u") == 0);	/* LMDB is closed: memory only */
	CHECK(!mhas(STORE_KIND_MAP, "u", "m", "k0002", NULL));
	CHECK(!mhas(STORE_KIND_MAP, "u", "m2", "a", NULL));
	CHECK(mhas(STORE_KIND_ACCOUNTS, "al", NULL, NULL, "a"));
	store_memory_clear();
	CHECK(!mhas(STORE_KIND_ACCOUNTS, "al", NULL, NULL, NULL));
}

/* ---- accounts: SHA-1 only, old records, bad credentials ---- */

static void test_accounts_imported(void)
{
	struct scram_creds c1, c256, got, bad;
	struct sbuf v1;

	CHECK(store_open(new_dir(), 0) == 0);
	CHECK(scram_derive(SASL_HASH_SHA1, "old-pw", (const unsigned char *)"prosody-salt",
			   12, 10000, &c1) == 0);
	CHECK(accounts_set_creds("h", "imported", &c1, 1) == 0);
	CHECK(accounts_exists("h", "imported"));
	CHECK(accounts_get("h", "imported", SASL_HASH_SHA1, &got) == 0);
	CHECK(got.iterations == 10000 && got.salt_len == 12 &&
	      memcmp(got.stored_key, c1.stored_key, 20) == 0);
	CHECK(accounts_get("h", "imported", SASL_HASH_SHA256, &got) == -ENOENT);
	CHECK(accounts_check_password("h", "imported", "old-pw") == 0);
	CHECK(accounts_check_password("h", "imported", "wrong") == -EACCES);
	/* bad credentials are refused whole */
	bad = c1;
	bad.iterations = 0;
	CHECK(accounts_set_creds("h", "x", &bad, 1) == -EINVAL);
	bad = c1;
	bad.salt_len = 0;
	CHECK(accounts_set_creds("h", "x", &bad, 1) == -EINVAL);
	struct scram_creds two[2] = { c1, c1 };
	CHECK(accounts_set_creds("h", "x", two, 2) == -EINVAL);
	CHECK(accounts_set_creds("h", "x", two, 0) == -EINVAL);
	CHECK(!accounts_exists("h", "x"));
	/* a version 1 record (SHA-1 then SHA-256, no hash bytes) still reads */
	CHECK(scram_derive(SASL_HASH_SHA256, "v1-pw", NULL, 0, 4096, &c256) == 0);
	CHECK(scram_derive(SASL_HASH_SHA1, "v1-pw", NULL, 0, 4096, &c1) == 0);
	sbuf_init(&v1);
	sbuf_addc(&v1, 1);
	const struct scram_creds *cs[2] = { &c1, &c256 };
	for (int i = 0; i < 2; i++) {
		unsigned char h[5] = { 0, 0, 0x10, 0, (unsigned char)cs[i]->salt_len };
		size_t kl = i ? 32 : 20;
		sbuf_add(&v1, h, 5);
		sbuf_add(&v1, cs[i]->salt, cs[i]->salt_len);
		sbuf_add(&v1, cs[i]->stored_key, kl);
		sbuf_add(&v1, cs[i]->server_key, kl);
	}
	CHECK(store_put(H(STORE_KIND_ACCOUNTS, "h", NULL), "old", NULL, 0, v1.p, v1.len) == 0);
	CHECK(accounts_get("h", "old", SASL_HASH_SHA256, &got) == 0 &&
	      memcmp(got.server_key, c256.server_key, 32) == 0);
	CHECK(accounts_check_password("h", "old", "v1-pw") == 0);
	/* corrupt version 2 records: unknown hash, repeated hash, trailing */
	static const char *const corrupt[] = { "\2", "\2\3", "\2\1\0\0\0\1\1",
					       "\7\1" };
	for (size_t i = 0; i < ARRAY_SIZE(corrupt); i++) {
		CHECK(store_put(H(STORE_KIND_ACCOUNTS, "h", NULL), "bad", NULL, 0, corrupt[i],
				strlen(corrupt[i]) + (i == 0)) == 0);
		CHECK(accounts_get("h", "bad", SASL_HASH_SHA1, &got) == -EIO);
	}
	sbuf_free(&v1);
	store_close();
}

static const char lua_accounts_test[] =
	"local acc = require 'starling.accounts'\n"
	"assert(acc.get('h', 'nobody') == nil)\n"
	"assert(acc.set_password('h', 'alice', 'pw1', 5000))\n"
	"local c = acc.get('h', 'alice')\n"
	"local s1, s256 = c['SCRAM-SHA-1'], c['SCRAM-SHA-256']\n"
	"assert(s1.iterations == 5000 and #s1.stored_key == 28 and #s256.server_key == 44)\n"
	"assert(acc.set('h', 'copy', { ['SCRAM-SHA-1'] = s1 }))\n"
	"local d = acc.get('h', 'copy')\n"
	"assert(d['SCRAM-SHA-1'].salt == s1.salt and d['SCRAM-SHA-256'] == nil)\n"
	"assert(acc.exists('h', 'copy') and not acc.exists('h', 'nope'))\n"
	"local l = acc.list('h')\n"
	"assert(#l == 2 and l[1] == 'alice' and l[2] == 'copy')\n"
	"local ok, err = acc.set('h', 'bad', { ['SCRAM-SHA-1'] = { iterations = 1, salt = '!!',"
	"  stored_key = s1.stored_key, server_key = s1.server_key } })\n"
	"assert(ok == nil and err == 'bad salt')\n"
	"ok, err = acc.set('h', 'bad', { ['SCRAM-SHA-256'] = { iterations = 9, salt = 'YWJj',"
	"  stored_key = s1.stored_key, server_key = s1.server_key } })\n"
	"assert(ok == nil and err == 'bad stored key')\n"
	"ok, err = acc.set('h', 'bad', {})\n"
	"assert(ok == nil and err:match('no SCRAM'))\n"
	"assert(not pcall(acc.get, 'h', ''))\n"
	"assert(not acc.exists('h', 'bad'))\n"
	"return true\n";

static void test_lua_accounts(void)
{
	lua_State *L = luaL_newstate();
	struct scram_creds c;

	luaL_openlibs(L);
	luaL_requiref(L, "starling.accounts", luaopen_starling_accounts, 0);
	lua_pop(L, 1);
	CHECK(store_open(new_dir(), 0) == 0);
	if (luaL_dostring(L, lua_accounts_test) != 0) {
		fprintf(stderr, "  lua: %s\n", lua_tostring(L, -1));
		CHECK(0);
	}
	CHECK(accounts_get("h", "copy", SASL_HASH_SHA1, &c) == 0);
	CHECK(accounts_check_password("h", "copy", "pw1") == 0);
	lua_close(L);
	store_close();
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_put_get_del);
	RUN(test_batch);
	RUN(test_purge);
	RUN(test_users);
	RUN(test_users_callback_writes);
	RUN(test_map);
	RUN(test_growth);
	RUN(test_full);
	RUN(test_other_process);
	RUN(test_accounts);
	RUN(test_lua);
	RUN(test_memory_records);
	RUN(test_handle_kinds);
	RUN(test_accounts_imported);
	RUN(test_lua_accounts);
	h_rm_tree(base);
	TEST_END();
}
