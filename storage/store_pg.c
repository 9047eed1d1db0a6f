/*
 * store_pg.c - the PostgreSQL engine (store_pg, store.h): the key spaces
 * of store.h as tables of one PostgreSQL database, so that several
 * server processes (the nodes of a cluster, on one machine or many)
 * share accounts, rosters, offline messages and archives.
 *
 * table:   one per db, "starling_<db name>" (k bytea primary key, v bytea
 *          not null). bytea orders bytewise, as LMDB orders its keys, so
 *          the record layouts above (store_records.c, store_archive*.c)
 *          work unchanged. Made on the first open (store_pg_open), under
 *          an advisory lock so nodes starting together do not race.
 * batch:   the loop's writes go into one transaction, begun by the first
 *          write after a commit and ended by store_pg_commit(), which
 *          store_commit() calls at the end of the loop iteration before
 *          anything is written to a socket: as with LMDB's batch, nothing
 *          is acknowledged before it is committed, and reads see the
 *          open batch. A write that fails aborts the transaction: the
 *          rest of the batch fails too and the commit reports it lost.
 * reads:   outside a batch, each read sees what every node committed.
 * scan:    keyset pages of SCAN_PAGE records, each page read whole before
 *          fn sees its records, so fn may read (as the engine API allows).
 * counter: a put to a STORE_DB_F_COUNTER db locks the row (SELECT ... FOR
 *          UPDATE) and adds in C, so adds of two nodes never lose one
 *          another.
 *
 * Every call waits for the server's answer on the loop's thread: a read
 * costs one round trip, a put one (a counter three), the commit one and
 * the server's fsync, like LMDB's commit. Only the loop uses the engine.
 */
#include "store.h"
#include "log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_PAGE 256		/* the LIMIT of the scan statements */

/* The prepared statements, per db: name "<op><db>". */
enum pg_op {
	OP_GET, OP_PUT, OP_DEL, OP_DELRANGE, OP_DELFROM, OP_SCAN, OP_RSCAN,
	OP_LOCK, OP_TOUCH, OP_N
};

static const char *const op_sql[OP_N] = {
	[OP_GET] = "SELECT v FROM %s WHERE k = $1",
	[OP_PUT] = "INSERT INTO %s (k, v) VALUES ($1, $2) "
		   "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
	[OP_DEL] = "DELETE FROM %s WHERE k = $1",
	[OP_DELRANGE] = "DELETE FROM %s WHERE k >= $1 AND k < $2",
	[OP_DELFROM] = "DELETE FROM %s WHERE k >= $1",
	[OP_SCAN] = "SELECT k, v FROM %s WHERE k >= $1 AND k < $2 "
		    "ORDER BY k LIMIT 256",
	[OP_RSCAN] = "SELECT k, v FROM %s WHERE k >= $1 AND k < $2 "
		     "ORDER BY k DESC LIMIT 256",
	[OP_LOCK] = "SELECT v FROM %s WHERE k = $1 FOR UPDATE",
	[OP_TOUCH] = "INSERT INTO %s (k, v) VALUES ($1, '') "
		     "ON CONFLICT (k) DO NOTHING",
};

static struct {
	PGconn *conn;
	bool in_batch;			/* BEGIN sent, no COMMIT yet */
	int batch_err;			/* the first error of the open batch */
	bool indexer;			/* holds the index job's lock */
} pg;

static int pg_fail(PGresult *r, const char *what)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(pg.conn);

	log_error("store: postgresql %s: %s", what, msg && *msg ? msg :
		  "no answer");
	if (r)
		PQclear(r);
	return -EIO;
}

/* A statement without parameters; 0 or -EIO. */
static int pg_exec(const char *sql, const char *what)
{
	PGresult *r = PQexec(pg.conn, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return pg_fail(r, what);
	PQclear(r);
	return 0;
}

static int pg_setup(void);

/* A connection that broke between batches is made again, once per call. */
static int pg_ready(enum store_db db)
{
	if (!pg.conn)
		return -ENXIO;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (PQstatus(pg.conn) == CONNECTION_OK)
		return 0;
	if (pg.in_batch)
		return -EIO;		/* the batch died with the connection */
	log_warn("store: postgresql connection lost, connecting again");
	PQreset(pg.conn);
	if (PQstatus(pg.conn) != CONNECTION_OK)
		return pg_fail(NULL, "reset");
	return pg_setup();	/* statements die with the session */
}

static int check_key(enum store_db db, size_t klen)
{
	int rc = pg_ready(db);

	if (rc)
		return rc;
	if (klen == 0)
		return -EINVAL;
	return klen > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* Runs the prepared statement op of db with n binary parameters; the
 * result (to PQclear), or NULL with the error logged. */
static PGresult *pg_run(enum pg_op op, enum store_db db, int n,
			const void *const *vals, const size_t *lens,
			ExecStatusType want)
{
	char name[16];
	const char *pv[2];
	int pl[2], pf[2] = { 1, 1 };
	PGresult *r;

	for (int i = 0; i < n; i++) {
		pv[i] = vals[i] ? vals[i] : "";
		pl[i] = (int)lens[i];
	}
	snprintf(name, sizeof(name), "s%d_%d", op, db);
	r = PQexecPrepared(pg.conn, name, n, pv, pl, pf, 1);
	if (PQresultStatus(r) != want) {
		pg_fail(r, store_dbs[db].name);
		return NULL;
	}
	return r;
}

/* A write joins the batch (the first begins it), counted so that its
 * writer is told should the batch be lost (store_writes). */
static int batch_write(void)
{
	int rc = pg.batch_err;

	if (rc == 0 && !pg.in_batch) {
		rc = pg_exec("BEGIN", "begin");
		pg.in_batch = rc == 0;
	}
	if (rc == 0)
		store_wrote();
	return rc;
}

/* A write of the batch failed: the transaction is aborted. */
static int batch_fail(int rc)
{
	if (pg.in_batch && !pg.batch_err)
		pg.batch_err = rc;
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
	if (pg.batch_err)
		return pg.batch_err;
	r = pg_run(OP_GET, db, 1, v, l, PGRES_TUPLES_OK);
	if (!r)
		return batch_fail(-EIO);
	rc = -ENOENT;
	if (PQntuples(r) == 1) {
		sbuf_reset(out);
		sbuf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* A put to a counter db: the row made if missing, locked, summed. */
static int counter_put(enum store_db db, const void *k, size_t klen,
		       const void *add, size_t addlen)
{
	unsigned char sum[STORE_COUNTER_MAX];
	const void *v[2] = { k, sum };
	size_t l[2] = { klen, 0 };
	PGresult *r;

	r = pg_run(OP_TOUCH, db, 1, v, l, PGRES_COMMAND_OK);
	if (!r)
		return -EIO;
	PQclear(r);
	r = pg_run(OP_LOCK, db, 1, v, l, PGRES_TUPLES_OK);
	if (!r)
		return -EIO;
	if (PQntuples(r) == 1)
		l[1] = store_counter_add(sum, PQgetvalue(r, 0, 0),
					 (size_t)PQgetlength(r, 0, 0), add,
					 addlen);
	else
		l[1] = store_counter_add(sum, NULL, 0, add, addlen);
	PQclear(r);
	r = pg_run(OP_PUT, db, 2, v, l, PGRES_COMMAND_OK);
	if (!r)
		return -EIO;
	PQclear(r);
	return 0;
}

static int pg_put(enum store_db db, const void *k, size_t klen,
		  const void *val, size_t vlen)
{
	const void *v[2] = { k, val };
	size_t l[2] = { klen, vlen };
	int rc = check_key(db, klen);
	PGresult *r;

	if (rc == 0)
		rc = batch_write();
	if (rc)
		return rc;
	if (store_dbs[db].flags & STORE_DB_F_COUNTER)
		return batch_fail(counter_put(db, k, klen, val, vlen));
	r = pg_run(OP_PUT, db, 2, v, l, PGRES_COMMAND_OK);
	if (!r)
		return batch_fail(-EIO);
	PQclear(r);
	return 0;
}

static int pg_del(enum store_db db, const void *k, size_t klen)
{
	const void *v[1] = { k };
	size_t l[1] = { klen };
	int rc = check_key(db, klen);
	PGresult *r;

	if (rc == 0)
		rc = batch_write();
	if (rc)
		return rc;
	r = pg_run(OP_DEL, db, 1, v, l, PGRES_COMMAND_OK);
	if (!r)
		return batch_fail(-EIO);
	rc = strcmp(PQcmdTuples(r), "0") == 0 ? -ENOENT : 0;
	PQclear(r);
	return rc;
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
	PGresult *r;

	if (rc == 0)
		rc = batch_write();
	if (rc)
		return rc;
	l[1] = prefix_end(k, klen, end);
	r = pg_run(l[1] ? OP_DELRANGE : OP_DELFROM, db, l[1] ? 2 : 1, v, l,
		   PGRES_COMMAND_OK);
	if (!r)
		return batch_fail(-EIO);
	PQclear(r);
	return 0;
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
	if (n < SCAN_PAGE)
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
	int rc = pg_ready(db), done = 0;

	if (rc)
		return rc;
	if (pg.batch_err)
		return pg.batch_err;
	sbuf_init(&from);
	sbuf_init(&to);
	sbuf_add(&from, lo, lolen);
	sbuf_add(&to, hi, hilen);
	while (!done) {
		v[0] = from.p, l[0] = from.len;
		v[1] = to.p, l[1] = to.len;
		PGresult *r = pg_run(reverse ? OP_RSCAN : OP_SCAN, db, 2, v, l,
				     PGRES_TUPLES_OK);
		if (!r) {
			rc = batch_fail(-EIO);
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

/* ---- the connection ---- */

/* The session's settings, the tables (made when missing) and the
 * statements of every db. */
static int pg_setup(void)
{
	char sql[512], name[16];
	int rc = pg_exec("SET client_min_messages = warning", "set");

	pg.indexer = false;		/* a new session holds no lock */

	if (rc == 0)
		rc = pg_exec("SET synchronous_commit = on", "set");
	if (rc == 0)
		rc = pg_exec("BEGIN", "begin");

	if (rc == 0)
		rc = pg_exec("SELECT pg_advisory_xact_lock(7468291)", "lock");
	for (int db = 0; db < STORE_NDB && rc == 0; db++) {
		snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS "
			 "starling_%s (k bytea PRIMARY KEY, v bytea NOT NULL)",
			 store_dbs[db].name);
		rc = pg_exec(sql, "create table");
	}
	rc = rc ? rc : pg_exec("COMMIT", "commit");
	for (int db = 0; db < STORE_NDB && rc == 0; db++) {
		for (int op = 0; op < OP_N && rc == 0; op++) {
			char table[64];
			snprintf(table, sizeof(table), "starling_%s",
				 store_dbs[db].name);
			snprintf(sql, sizeof(sql), op_sql[op], table);
			snprintf(name, sizeof(name), "s%d_%d", op, db);
			PGresult *r = PQprepare(pg.conn, name, sql, 0, NULL);
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				rc = pg_fail(r, "prepare");
			else
				PQclear(r);
		}
	}
	return rc;
}

/* The archive index job runs on one node at a time: the one whose
 * session holds this advisory lock (released when it dies). */
bool store_pg_indexer(void)
{
	/* a session's lock: a batch rolled back later keeps it */
	if (!pg.conn || pg.indexer || pg.batch_err)
		return pg.conn && pg.indexer;
	PGresult *r = PQexec(pg.conn, "SELECT pg_try_advisory_lock(7468292)");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		pg.indexer = true;
		log_info("store: this node runs the postgresql archive index job");
	}
	PQclear(r);
	return pg.indexer;
}

int store_pg_open(const char *conninfo)
{
	int rc;

	store_pg_close();
	pg.conn = PQconnectdb(conninfo);
	if (PQstatus(pg.conn) != CONNECTION_OK) {
		log_error("store: cannot connect to postgresql: %s",
			  PQerrorMessage(pg.conn));
		PQfinish(pg.conn);
		pg.conn = NULL;
		return -ECONNREFUSED;
	}
	rc = pg_setup();
	if (rc) {
		PQfinish(pg.conn);
		pg.conn = NULL;
		return rc;
	}
	log_info("store: postgresql database %s on %s", PQdb(pg.conn),
		 PQhost(pg.conn));
	return 0;
}

bool store_pg_is_open(void)
{
	return pg.conn != NULL;
}

int store_pg_commit(void)
{
	int rc = pg.batch_err;

	if (!pg.in_batch)
		return 0;
	pg.in_batch = false;
	pg.batch_err = 0;
	if (rc) {
		pg_exec("ROLLBACK", "rollback");
		return rc;
	}
	return pg_exec("COMMIT", "commit");
}

int store_pg_clear(void)
{
	char sql[128];
	int rc = pg.conn ? 0 : -ENXIO;

	if (rc == 0)
		rc = store_pg_commit();
	for (int db = 0; db < STORE_NDB && rc == 0; db++) {
		snprintf(sql, sizeof(sql), "TRUNCATE starling_%s",
			 store_dbs[db].name);
		rc = pg_exec(sql, "truncate");
	}
	return rc;
}

void store_pg_close(void)
{
	if (!pg.conn)
		return;
	if (store_pg_commit() != 0)
		log_error("store: postgresql: the last batch was lost");
	if (pg.indexer)		/* at once: the session ends behind PQfinish */
		pg_exec("SELECT pg_advisory_unlock_all()", "unlock");
	pg.indexer = false;
	PQfinish(pg.conn);
	pg.conn = NULL;
}
