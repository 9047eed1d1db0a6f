/*
 * ctl_migrate.c - starlingctl migrate: every record of one storage
 * engine copied into another (LMDB in data_path, PostgreSQL of the
 * config's sql option).
 *
 * Both engines keep the same key spaces in the same byte order
 * (storage/store.h), so a copy of every db, record by record, moves
 * everything a server keeps: accounts with their SCRAM credentials, the
 * server's secret and FAST tokens, rosters, offline messages, archives
 * with their indexes and usage counters, MUC rooms, PubSub nodes,
 * private XML, vCards. The target must hold nothing yet (a counter db
 * adds, and a partial copy would mix two servers' data), or --replace
 * empties it first (a server started once on it has written its secret);
 * the copy is committed every COMMIT_EVERY records and at the end.
 */
#include "ctl_migrate.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMIT_EVERY 2000

struct copy {
	const struct store_engine *to;
	enum store_db db;
	unsigned long n;
	int err;
};

static int count_one(void *ctx, const void *k, size_t klen, const void *v,
		     size_t vlen)
{
	(*(unsigned long *)ctx)++;
	return 1;
}

static int copy_one(void *ctx, const void *k, size_t klen, const void *v,
		    size_t vlen)
{
	struct copy *c = ctx;
	int rc = c->to->put(c->db, k, klen, v, vlen);

	if (rc) {
		c->err = rc;
		return rc;
	}
	if (++c->n % COMMIT_EVERY == 0) {
		rc = store_commit();
		if (rc) {
			c->err = rc;
			return rc;
		}
	}
	return 0;
}

/* Up to COMMIT_EVERY keys of a scan, to delete after it. */
struct keys {
	struct sbuf buf;		/* per key: its length (size_t), bytes */
	unsigned n;
};

static int collect_key(void *ctx, const void *k, size_t klen, const void *v,
		       size_t vlen)
{
	struct keys *ks = ctx;

	sbuf_add(&ks->buf, &klen, sizeof(klen));
	sbuf_add(&ks->buf, k, klen);
	return ++ks->n == COMMIT_EVERY;
}

/* Keys start with a host's name (UTF-8: never 0xff), so [\0, \xff)
 * holds every key of a db. */
static const char lo[1] = { 0 }, hi[1] = { (char)0xff };

/* Deletes every record of e, COMMIT_EVERY at a time; *n counts them. */
static int clear_engine(const struct store_engine *e, unsigned long *n)
{
	struct keys ks = { .n = 1 };
	int rc = 0;

	sbuf_init(&ks.buf);
	for (int db = 0; db < STORE_NDB && rc == 0; db++) {
		ks.n = 1;
		while (rc == 0 && ks.n) {
			sbuf_reset(&ks.buf);
			ks.n = 0;
			rc = e->scan((enum store_db)db, lo, 1, hi, 1, false,
				     collect_key, &ks);
			for (size_t at = 0; rc == 0 && at < ks.buf.len;) {
				size_t klen;
				memcpy(&klen, ks.buf.p + at, sizeof(klen));
				at += sizeof(klen);
				rc = e->del((enum store_db)db, ks.buf.p + at, klen);
				rc = rc == -ENOENT ? 0 : rc;
				at += klen;
			}
			*n += ks.n;
			if (rc == 0)
				rc = store_commit();
		}
	}
	sbuf_free(&ks.buf);
	return rc;
}


static const struct store_engine *engine_arg(const char *name)
{
	if (strcmp(name, "sql") == 0 || strcmp(name, "postgresql") == 0) {
		if (!store_pg_is_open())
			fprintf(stderr, "starlingctl migrate: the config has no "
				"sql option (sql = { driver = \"PostgreSQL\", "
				"database = ..., ... })\n");
		return store_pg_is_open() ? &store_pg : NULL;
	}
	if (strcmp(name, "lmdb") == 0 || strcmp(name, "internal") == 0)
		return store_is_open() ? &store_lmdb : NULL;
	fprintf(stderr, "starlingctl migrate: unknown engine '%s' (lmdb or "
		"sql)\n", name);
	return NULL;
}

int ctl_migrate(int argc, char **argv)
{
	const struct store_engine *from = NULL, *to = NULL;
	bool replace = false, bad = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--replace") == 0)
			replace = true;
		else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = engine_arg(argv[++i]);
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = engine_arg(argv[++i]);
		else
			bad = true;
	}
	if (bad || !from || !to || from == to) {
		fprintf(stderr, "usage: starlingctl migrate --from lmdb|sql "
			"--to sql|lmdb [--replace]\n");
		return 2;
	}
	if (replace) {
		unsigned long n = 0;
		int rc = clear_engine(to, &n);
		if (rc) {
			fprintf(stderr, "starlingctl migrate: emptying %s: %s\n",
				to->name, strerror(-rc));
			return 1;
		}
		printf("removed %lu records from %s\n", n, to->name);
	}
	for (int db = 0; db < STORE_NDB; db++) {
		unsigned long n = 0;
		int rc = to->scan((enum store_db)db, lo, 1, hi, 1, false,
				  count_one, &n);
		if (rc || n) {
			fprintf(stderr, "starlingctl migrate: the %s target "
				"already holds %s (%s): start from an empty "
				"one, or --replace\n", to->name, store_dbs[db].name,
				rc ? strerror(-rc) : "records");
			return 1;
		}
	}
	unsigned long total = 0;
	for (int db = 0; db < STORE_NDB; db++) {
		struct copy c = { .to = to, .db = (enum store_db)db };
		int rc = from->scan(c.db, lo, 1, hi, 1, false, copy_one, &c);
		if (rc == 0)
			rc = store_commit();
		if (rc || c.err) {
			fprintf(stderr, "starlingctl migrate: %s: %s\n",
				store_dbs[db].name, strerror(-(rc ? rc : c.err)));
			return 1;
		}
		printf("%s: %lu records\n", store_dbs[db].name, c.n);
		total += c.n;
	}
	printf("migrated %lu records from %s to %s\n", total, from->name,
	       to->name);
	return 0;
}
