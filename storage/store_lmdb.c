/*
 * store_lmdb.c - the operations of the LMDB engine (store_lmdb, store.h)
 * on the environment of store.c: reads through the batch or the
 * snapshot, writes into the batch, puts to STORE_DB_F_HANDOVER dbs
 * queued for the archive writer (store_writer.c) while it runs. No
 * cursor outlives one call; a scan callback may read (through the same
 * transaction) but not write.
 */
#include "store_lmdb.h"

#include <errno.h>

/* Whether puts to db may wait for the writer: then every other call on
 * the db first settles the queue (lmdb_queue_settle). */
static bool handed_over(enum store_db db)
{
	return store_dbs[db].flags & (STORE_DB_F_HANDOVER | STORE_DB_F_TRAILS);
}

/* Whether a put to db goes to the writer's queue: always for a HANDOVER
 * db (while the writer runs), and for a TRAILS db when the last write to
 * a HANDOVER db was queued. */
static bool queued(enum store_db db)
{
	unsigned f = store_dbs[db].flags;

	return (f & STORE_DB_F_HANDOVER) ||
	       ((f & STORE_DB_F_TRAILS) && lmdb_queue_trailing());
}

static int check_key(enum store_db db, size_t klen)
{
	if (!lmdb.env)
		return -ENXIO;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (klen == 0)
		return -EINVAL;
	if (klen > lmdb.max_key || klen > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int lmdb_get_txn(MDB_txn *txn, enum store_db db, const void *k,
		 size_t klen, struct sbuf *out)
{
	MDB_val key = { klen, (void *)k }, v;
	int rc = mdb_get(txn, lmdb.dbi[db], &key, &v);

	if (rc == 0) {
		sbuf_reset(out);
		sbuf_add(out, v.mv_data, v.mv_size);
	}
	return rc;
}

int lmdb_put_txn(MDB_txn *txn, enum store_db db, const void *k, size_t klen,
		 const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v }, old;
	unsigned char sum[STORE_COUNTER_MAX];
	int rc;

	if (!(store_dbs[db].flags & STORE_DB_F_COUNTER))
		return mdb_put(txn, lmdb.dbi[db], &key, &val, 0);
	rc = mdb_get(txn, lmdb.dbi[db], &key, &old);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	val.mv_size = store_counter_add(sum, rc ? NULL : old.mv_data,
					rc ? 0 : old.mv_size, v, vlen);
	val.mv_data = sum;
	return mdb_put(txn, lmdb.dbi[db], &key, &val, 0);
}

static int lmdb_get(enum store_db db, const void *k, size_t klen,
		    struct sbuf *out)
{
	MDB_txn *txn;
	int rc = check_key(db, klen);

	if (rc == 0 && handed_over(db))
		lmdb_queue_settle();
	if (rc == 0)
		rc = lmdb_read_txn(&txn);
	if (rc)
		return rc;
	return lmdb_err(lmdb_get_txn(txn, db, k, klen, out), "get");
}

static int lmdb_put(enum store_db db, const void *k, size_t klen,
		    const void *v, size_t vlen)
{
	int rc = check_key(db, klen);

	/* a counter's add goes with a write that was taken (a delete is
	 * taken while failing), and is refused only with it */
	if (rc == 0 && !(store_dbs[db].flags & STORE_DB_F_COUNTER))
		rc = lmdb_health_refuse();
	if (rc)
		return rc;
	if (queued(db) && lmdb_queue_put(db, k, klen, v, vlen)) {
		lmdb_health_wrote();
		return 0;
	}
	if (store_dbs[db].flags & STORE_DB_F_HANDOVER)
		lmdb_queue_untrail();
	return lmdb_batch_op(OP_PUT, db, k, klen, v, vlen, "put");
}

static int lmdb_del(enum store_db db, const void *k, size_t klen)
{
	int rc = check_key(db, klen);

	if (rc == 0 && handed_over(db))
		lmdb_queue_settle();
	return rc ? rc : lmdb_batch_op(OP_DEL, db, k, klen, NULL, 0, "delete");
}

static int lmdb_del_prefix(enum store_db db, const void *k, size_t klen)
{
	int rc = check_key(db, klen);

	if (rc == 0 && handed_over(db))
		lmdb_queue_settle();
	return rc ? rc : lmdb_batch_op(OP_DEL_PREFIX, db, k, klen, NULL, 0,
				  "delete range");
}

static int key_cmp(const MDB_val *a, const void *b, size_t blen)
{
	int c = memcmp(a->mv_data, b, MIN(a->mv_size, blen));

	if (c)
		return c;
	return a->mv_size < blen ? -1 : a->mv_size > blen;
}

/* The cursor at the first record of the scan: 0 or an LMDB code. */
static int scan_first(MDB_cursor *cur, const void *lo, size_t lolen,
		      const void *hi, size_t hilen, bool reverse, MDB_val *k,
		      MDB_val *v)
{
	int rc;

	if (!reverse) {
		*k = (MDB_val){ lolen, (void *)lo };
		return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	}
	*k = (MDB_val){ hilen, (void *)hi };
	rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	if (rc == 0)
		return mdb_cursor_get(cur, k, v, MDB_PREV);
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(cur, k, v, MDB_LAST);
	return rc;
}

int lmdb_scan_txn(MDB_txn *txn, enum store_db db, const void *lo,
		  size_t lolen, const void *hi, size_t hilen, bool reverse,
		  store_scan_fn fn, void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, r = 0;

	rc = mdb_cursor_open(txn, lmdb.dbi[db], &cur);
	if (rc)
		return lmdb_err(rc, "open cursor");
	rc = scan_first(cur, lo, lolen, hi, hilen, reverse, &k, &v);
	while (rc == 0) {
		if (key_cmp(&k, lo, lolen) < 0 || key_cmp(&k, hi, hilen) >= 0)
			break;
		r = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (r)
			break;
		rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (r < 0)
		return r;
	return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "scan");
}

static int lmdb_scan(enum store_db db, const void *lo, size_t lolen,
		     const void *hi, size_t hilen, bool reverse,
		     store_scan_fn fn, void *ctx)
{
	MDB_txn *txn;
	int rc;

	if (!lmdb.env)
		return -ENXIO;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (handed_over(db))
		lmdb_queue_settle();
	rc = lmdb_read_txn(&txn);
	if (rc)
		return rc;
	return lmdb_scan_txn(txn, db, lo, lolen, hi, hilen, reverse, fn, ctx);
}

const struct store_engine store_lmdb = {
	.name = "lmdb",
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.del_prefix = lmdb_del_prefix,
	.scan = lmdb_scan,
};
