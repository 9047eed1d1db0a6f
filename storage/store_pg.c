/*
 * store_pg.c - the PostgreSQL engine (store_pg, store.h): the key spaces
 * of store.h as tables of one PostgreSQL database, so that several
 * server processes (the nodes of a cluster, on one machine or many)
 * share accounts, rosters, offline messages and archives.
 *
 * table:   one per db, "starling_<db name>" (k bytea primary key, v bytea
 *          not null). bytea orders bytewise, as LMDB orders its keys, so
 *          the record layouts above (store_records.c, store_archive*.c)
 *          work unchanged. Made on connecting (store_pg_conn.c).
 * batch:   the loop's writes are sent down the connection's pipeline as
 *          they come, without waiting, and form one transaction (a
 *          segment, store_pg.h) that the batch's end commits with LMDB's
 *          (store_commit, store_commit_async). On the server's loop the
 *          commit is not waited for either: the pipeline (core/) holds
 *          the output it covers until PostgreSQL answers. A write that
 *          fails rolls the whole batch back, and the batch is reported
 *          lost (store_take_lost) so that its writers never see an ack.
 * reads:   waited for (the one thing that waits): down the pipeline,
 *          behind everything sent before them, when the db has writes
 *          not yet committed (so they see them), else on the reader
 *          connection (store_pg_read.c); either way they see whatever
 *          every node committed.
 * delete:  sent without waiting, so it cannot say whether there was a
 *          record: it returns 0 either way.
 * scan:    keyset pages of PG_SCAN_PAGE records, each page read whole
 *          before fn sees its records, so fn may read (as the engine API
 *          allows).
 * counter: a put to a STORE_DB_F_COUNTER db adds in the database
 *          (starling_counter_add, on the row INSERT ... ON CONFLICT
 *          locks), so adds of two nodes never lose one another.
 */
#include "store_pg.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_key(enum store_db db, size_t klen)
{
	int rc = pgc_ready();

	if (rc)
		return rc;
	if ((unsigned)db >= STORE_NDB || klen == 0)
		return -EINVAL;
	return klen > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* A write: sent, and counted so that its writer is told should the
 * batch be lost (store_writes). */
static int write_op(enum pg_op op, enum store_db db, int n,
		    const void *const *vals, const size_t *lens)
{
	int rc = pgc_write(op, db, n, vals, lens);

	if (rc == 0)
		store_wrote();
	return rc;
}

static int pg_get(enum store_db db, const void *k, size_t klen,
		  struct sbuf *out)
{
	const void *v[1] = { k };
	size_t l[1] = { klen };
	int rc = check_key(db, klen);
	PGresult *r;

	if (rc)
		return rc;
	r = pgc_read(NULL, PGOP_GET, db, 1, v, l, PGRES_TUPLES_OK);
	if (!r)
		return -EIO;
	rc = -ENOENT;
	if (PQntuples(r) == 1) {
		sbuf_reset(out);
		sbuf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

static int pg_put(enum store_db db, const void *k, size_t klen,
		  const void *val, size_t vlen)
{
	const void *v[2] = { k, val };
	size_t l[2] = { klen, vlen };
	int rc = check_key(db, klen);

	if (rc)
		return rc;
	if (store_dbs[db].flags & STORE_DB_F_COUNTER)
		return write_op(PGOP_COUNTER, db, 2, v, l);
	return write_op(PGOP_PUT, db, 2, v, l);
}

static int pg_del(enum store_db db, const void *k, size_t klen)
{
	const void *v[1] = { k };
	size_t l[1] = { klen };
	int rc = check_key(db, klen);

	return rc ? rc : write_op(PGOP_DEL, db, 1, v, l);
}

/* The least key above every key that starts with p (plen bytes), into
 * out: p with its last byte below 0xff raised by one and the rest cut.
 * Returns its length, 0 when there is none (p is all 0xff). */
static size_t prefix_end(const unsigned char *p, size_t plen,
			 unsigned char *out)
{
	while (plen && p[plen - 1] == 0xff)
		plen--;
	if (!plen)
		return 0;
	memcpy(out, p, plen);
	out[plen - 1]++;
	return plen;
}

static int pg_del_prefix(enum store_db db, const void *k, size_t klen)
{
	unsigned char end[STORE_KEY_MAX];
	const void *v[2] = { k, end };
	size_t l[2] = { klen, 0 };
	int rc = check_key(db, klen);

	if (rc)
		return rc;
	l[1] = prefix_end(k, klen, end);
	return write_op(l[1] ? PGOP_DELRANGE : PGOP_DELFROM, db, l[1] ? 2 : 1, v, l);
}

/* Hands the records of one page to fn; *last gets the page's last key
 * (where the next page starts). 1 when fn stopped the scan (or an error:
 * *rc), 0 to go on. */
static int scan_page(PGresult *r, store_scan_fn fn, void *ctx,
		     struct sbuf *last, int *rc)
{
	int n = PQntuples(r);

	for (int i = 0; i < n; i++) {
		int f = fn(ctx, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
			   PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
		if (f) {
			*rc = f < 0 ? f : 0;
			return 1;
		}
	}
	if (n < PG_SCAN_PAGE)
		return 1;
	sbuf_reset(last);
	sbuf_add(last, PQgetvalue(r, n - 1, 0), (size_t)PQgetlength(r, n - 1, 0));
	return 0;
}

static int pg_scan(enum store_db db, const void *lo, size_t lolen,
		   const void *hi, size_t hilen, bool reverse,
		   store_scan_fn fn, void *ctx)
{
	struct sbuf from, to;
	const void *v[2];
	size_t l[2];
	int rc = pgc_ready(), done = 0;

	if (rc)
		return rc;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	sbuf_init(&from);
	sbuf_init(&to);
	sbuf_add(&from, lo, lolen);
	sbuf_add(&to, hi, hilen);
	while (!done) {
		v[0] = from.p, l[0] = from.len;
		v[1] = to.p, l[1] = to.len;
		PGresult *r = pgc_read(NULL, reverse ? PGOP_RSCAN : PGOP_SCAN, db,
				       2, v, l, PGRES_TUPLES_OK);
		if (!r) {
			rc = -EIO;
			break;
		}
		/* forward: the next page starts just above the last key
		 * (last \0); backward: it ends at the last key */
		done = scan_page(r, fn, ctx, reverse ? &to : &from, &rc);
		PQclear(r);
		if (!done && !reverse)
			sbuf_addc(&from, '\0');
	}
	sbuf_free(&from);
	sbuf_free(&to);
	return rc;
}

const struct store_engine store_pg = {
	.name = "postgresql",
	.get = pg_get,
	.put = pg_put,
	.del = pg_del,
	.del_prefix = pg_del_prefix,
	.scan = pg_scan,
};

int store_pg_clear(void)
{
	char sql[128];
	int rc = store_pg_commit();

	for (int db = 0; db < STORE_NDB && rc == 0; db++) {
		snprintf(sql, sizeof(sql), "TRUNCATE starling_%s",
			 store_dbs[db].name);
		rc = pgc_write_sql(sql);
	}
	return rc ? rc : store_pg_commit();
}
