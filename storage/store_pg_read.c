/*
 * store_pg_read.c - the PostgreSQL engine's reader: a second connection
 * for the reads that need not go down the pipeline (see store_pg.h).
 *
 * clean:   a db none of whose writes sent on the pipeline waits for its
 *          commit (store_pg_conn.c keeps, per db, where its last write
 *          is). A read of a clean db sees the same on this connection as
 *          behind the pipeline, only sooner: it does not wait for the
 *          commit in flight (its fsync) nor for the statements queued
 *          before it. A read of a db with writes in flight goes down the
 *          pipeline, so it sees them.
 * made:    when first needed (blocking, with a 2 s connect timeout: the
 *          main connection is up then), with the read statements
 *          prepared; dropped with the main connection and when it
 *          breaks, and tried again 5 s later at the earliest (meanwhile
 *          reads go down the pipeline).
 */
#include "store_pg.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RD_WAIT_MS 10000
#define RD_RETRY 5.

static struct {
	PGconn *conn;
	double retry_at;
} rd;

static double rd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void pgr_close(void)
{
	if (rd.conn)
		PQfinish(rd.conn);
	rd.conn = NULL;
}

static void rd_fail(const char *what)
{
	log_warn("store: postgresql reader: %s: %s", what,
		 rd.conn ? PQerrorMessage(rd.conn) : "no connection");
	pgr_close();
	rd.retry_at = rd_now() + RD_RETRY;
}

static bool rd_connect(void)
{
	static const enum pg_op ops[] = { PGOP_GET, PGOP_SCAN, PGOP_RSCAN };
	const char *kw[] = { "dbname", "connect_timeout", NULL };
	const char *val[] = { pgc_conninfo(), "2", NULL };
	char sql[512], name[16], table[64];

	if (rd.conn)
		return true;
	if (rd_now() < rd.retry_at || !val[0])
		return false;
	rd.conn = PQconnectdbParams(kw, val, 1);
	if (PQstatus(rd.conn) != CONNECTION_OK) {
		rd_fail("connect");
		return false;
	}
	for (int db = 0; db < STORE_NDB; db++) {
		snprintf(table, sizeof(table), "starling_%s", store_dbs[db].name);
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			snprintf(sql, sizeof(sql), pg_op_sql[ops[i]], table);
			snprintf(name, sizeof(name), "s%d_%d", ops[i], db);
			PGresult *r = PQprepare(rd.conn, name, sql, 0, NULL);
			bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			PQclear(r);
			if (!ok) {
				rd_fail("prepare");
				return false;
			}
		}
	}
	if (PQsetnonblocking(rd.conn, 1) != 0) {
		rd_fail("nonblocking");
		return false;
	}
	return true;
}

/* Waits for the answer of what was sent, RD_WAIT_MS at most: the last
 * result (to PQclear), or NULL when the connection failed. */
static PGresult *rd_answer(void)
{
	double until = rd_now() + RD_WAIT_MS / 1000.;
	PGresult *last = NULL, *r;

	for (;;) {
		int f = PQflush(rd.conn);
		if (f < 0 || !PQconsumeInput(rd.conn))
			break;
		while (!PQisBusy(rd.conn)) {
			r = PQgetResult(rd.conn);
			if (!r)
				return last;
			if (last)
				PQclear(last);
			last = r;
		}
		double left = until - rd_now();
		struct pollfd p = { .fd = PQsocket(rd.conn),
				    .events = POLLIN | (f ? POLLOUT : 0) };
		if (left <= 0 || (poll(&p, 1, (int)(left * 1000) + 1) < 0 &&
				  errno != EINTR))
			break;
	}
	if (last)
		PQclear(last);
	rd_fail("no answer");
	return NULL;
}

PGresult *pgr_read(enum pg_op op, enum store_db db, int n,
		   const void *const *vals, const size_t *lens,
		   ExecStatusType want, bool *used)
{
	const char *pv[2];
	int pl[2], pf[2] = { 1, 1 };
	char name[16];
	PGresult *r;

	*used = false;
	if (!rd_connect())
		return NULL;
	for (int i = 0; i < n; i++) {
		pv[i] = vals[i] ? vals[i] : "";
		pl[i] = (int)lens[i];
	}
	snprintf(name, sizeof(name), "s%d_%d", op, db);
	double t0 = rd_now();
	if (!PQsendQueryPrepared(rd.conn, name, n, pv, pl, pf, 1)) {
		rd_fail("send");
		return NULL;
	}
	r = rd_answer();
	pgc_count_wait(rd_now() - t0);
	if (!r)
		return NULL;		/* the pipeline answers instead */
	*used = true;
	if (PQresultStatus(r) != want) {
		log_error("store: postgresql: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}
