/*
 * store_pg_conn.c - the PostgreSQL engine's connection: pipeline,
 * segments, flights, reconnection (see store_pg.h).
 *
 * items:   what was sent and is still to be answered, in order: one per
 *          statement (a write, a read, a step of the setup) and one per
 *          sync point. libpq gives each statement's result then a NULL,
 *          and each sync a PGRES_PIPELINE_SYNC, in the order sent.
 * setup:   after connecting, the session's settings, the tables and the
 *          counter function (made when missing, under an advisory lock so
 *          nodes starting together do not race) and the prepared
 *          statements, sent as one segment; the connection is up when
 *          its sync comes back clean.
 */
#include "store_pg.h"
#include "store_lmdb.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 10000		/* a read waits this long, then the
				 * connection is given up */
#define RETRY_FIRST 0.5
#define RETRY_MAX 30.

enum pg_state { PG_CLOSED, PG_DOWN, PG_CONNECTING, PG_SETUP, PG_UP };
enum item_kind { IT_WRITE, IT_READ, IT_SETUP, IT_SYNC };

struct item {
	unsigned char kind;	/* enum item_kind */
	bool got;		/* its result came; the NULL is next */
	bool writes;		/* a sync: its segment wrote */
	bool report;		/* a sync: a loss goes to lmdb_health_lost
				 * (else to the waiter, sync_err) */
	unsigned long no;	/* a sync: the batch's number */
};

static struct {
	PGconn *conn;
	char *conninfo;
	enum pg_state state;
	bool async;		/* batch ends do not wait for the sync */
	bool flushing;		/* libpq holds output the socket refused */
	/* the open segment (sending side) */
	bool seg_open, seg_writes, seg_lost;
	/* the answers (receiving side) */
	struct item *q;
	size_t head, tail, cap;
	unsigned long sent, done;	/* items, by sequence */
	int cur_err;		/* an error in the segment being answered */
	int sync_err;		/* cur_err at the last sync answered */
	unsigned flights;	/* syncs with writes not answered */
	PGresult *read_res;	/* the answer of the read waited for */
	double retry_at, retry_wait;
	bool indexer;
	/* the loop's waits (reads, and batch ends when not async) */
	unsigned long waits;
	double waited, longest;
	/* per db, the sequence of its last write; below synced: committed
	 * (or lost), so the db is clean (store_pg_read.c) */
	unsigned long dirty[STORE_NDB];
	unsigned long synced;
} pc;

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- items ---- */

static void item_push(enum item_kind kind, bool writes, unsigned long no)
{
	if (pc.tail == pc.cap) {
		if (pc.head > 0) {
			memmove(pc.q, pc.q + pc.head,
				(pc.tail - pc.head) * sizeof(*pc.q));
			pc.tail -= pc.head;
			pc.head = 0;
		} else {
			pc.cap = pc.cap ? pc.cap * 2 : 64;
			pc.q = xrealloc(pc.q, pc.cap * sizeof(*pc.q));
		}
	}
	pc.q[pc.tail++] = (struct item){ .kind = kind, .writes = writes,
					 .no = no };
	pc.sent++;
}

static void item_pop(void)
{
	if (++pc.head == pc.tail)
		pc.head = pc.tail = 0;
	pc.done++;
}

/* ---- losing the connection ---- */

/* The connection is gone: every flight is lost, the open segment too
 * (its batch end says so), and a new one is tried after a wait. */
static void conn_lost(const char *why)
{
	if (pc.state == PG_CLOSED)
		return;
	if (pc.state == PG_UP || pc.state == PG_SETUP)
		log_error("store: postgresql connection lost (%s): %s", why,
			  pc.conn ? PQerrorMessage(pc.conn) : "");
	for (size_t i = pc.head; i < pc.tail; i++)
		if (pc.q[i].kind == IT_SYNC && pc.q[i].writes && pc.q[i].report)
			lmdb_health_lost(pc.q[i].no);
	pc.done += pc.tail - pc.head;
	pc.synced = pc.done;
	pc.head = pc.tail = 0;
	pgr_close();
	pc.flights = 0;
	pc.cur_err = 0;
	if (pc.seg_writes)
		pc.seg_lost = true;
	pc.seg_open = false;
	if (pc.read_res)
		PQclear(pc.read_res);
	pc.read_res = NULL;
	pc.indexer = false;
	pc.flushing = false;
	if (pc.conn)
		PQfinish(pc.conn);
	pc.conn = NULL;
	pc.state = PG_DOWN;
	pc.retry_wait = pc.retry_wait ? MIN(pc.retry_wait * 2, RETRY_MAX)
				      : RETRY_FIRST;
	pc.retry_at = mono_now() + pc.retry_wait;
}

/* ---- answers ---- */

static void sync_done(const struct item *it)
{
	if (it->writes) {
		pc.flights--;
		if (pc.cur_err) {
			log_error("store: postgresql: batch %lu rolled back",
				  it->no);
			if (it->report)
				lmdb_health_lost(it->no);
		}
	}
	if (pc.state == PG_SETUP) {
		if (pc.cur_err) {
			pc.cur_err = 0;
			conn_lost("setup");
			return;
		}
		log_info("store: postgresql database %s on %s%s", PQdb(pc.conn),
			 PQhost(pc.conn), pc.retry_wait ? ", connected again" : "");
		pc.state = PG_UP;
		pc.retry_wait = 0;
	}
	pc.sync_err = pc.cur_err;
	pc.cur_err = 0;
}

/* The result r of the statement at the head. */
static void result_of(struct item *it, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok && st != PGRES_PIPELINE_ABORTED && !pc.cur_err)
		log_error("store: postgresql: %s", PQresultErrorMessage(r));
	if (!ok)
		pc.cur_err = -EIO;
	if (it->kind == IT_READ) {
		if (pc.read_res)
			PQclear(pc.read_res);
		pc.read_res = r;
		return;
	}
	PQclear(r);
}

/* Handles every answer that came: 0, or -EIO (the connection is lost). */
static int drain(void)
{
	if (!pc.conn)
		return -EIO;
	if (!PQconsumeInput(pc.conn)) {
		conn_lost("read");
		return -EIO;
	}
	while (pc.head < pc.tail && !PQisBusy(pc.conn)) {
		struct item *it = &pc.q[pc.head];
		PGresult *r = PQgetResult(pc.conn);

		if (it->kind == IT_SYNC) {
			if (!r)
				break;
			if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
				/* the commit itself failed */
				result_of(it, r);
				continue;
			}
			PQclear(r);
			struct item done = *it;
			item_pop();
			pc.synced = pc.done;
			sync_done(&done);
			if (!pc.conn)
				return -EIO;
			continue;
		}
		if (!it->got) {
			if (!r) {	/* cannot be: one result per statement */
				conn_lost("protocol");
				return -EIO;
			}
			result_of(it, r);
			it->got = true;
		} else if (r) {
			result_of(it, r);	/* a second one: an error */
		} else {
			item_pop();
		}
	}
	if (PQstatus(pc.conn) == CONNECTION_BAD) {
		conn_lost("status");
		return -EIO;
	}
	return 0;
}

static int flush(void)
{
	int f = PQflush(pc.conn);

	if (f < 0) {
		conn_lost("write");
		return -EIO;
	}
	pc.flushing = f == 1;
	return 0;
}

static int wait_until(unsigned long seq, double until);

/* Waits until item seq is answered: 0, or -EIO (lost, or no answer for
 * WAIT_MS). Counted (store_pg_close logs it). */
void pgc_count_wait(double took)
{
	pc.waits++;
	pc.waited += took;
	pc.longest = MAX(pc.longest, took);
}

static int wait_for(unsigned long seq)
{
	double t0 = mono_now(), until = t0 + WAIT_MS / 1000.;
	int rc = wait_until(seq, until);

	pgc_count_wait(mono_now() - t0);
	return rc;
}

static int wait_until(unsigned long seq, double until)
{
	while (pc.done < seq) {
		if (flush() || drain())
			return -EIO;
		if (pc.done >= seq)
			break;
		double left = until - mono_now();
		struct pollfd p = { .fd = PQsocket(pc.conn),
				    .events = POLLIN | (pc.flushing ? POLLOUT : 0) };
		if (left <= 0 || (poll(&p, 1, (int)(left * 1000) + 1) < 0 &&
				  errno != EINTR)) {
			conn_lost("no answer");
			return -EIO;
		}
	}
	return 0;
}

/* ---- sending ---- */

int pgc_ready(void)
{
	if (pc.state == PG_CLOSED)
		return -ENXIO;
	return pc.state == PG_UP ? 0 : -EIO;
}

/* Sends a statement (sql, or the prepared op of db): 0 or -EIO. */
static int send(const char *sql, enum pg_op op, enum store_db db, int n,
		const void *const *vals, const size_t *lens)
{
	const char *pv[2];
	int pl[2], pf[2] = { 1, 1 }, ok;
	char name[16];

	for (int i = 0; i < n; i++) {
		pv[i] = vals[i] ? vals[i] : "";
		pl[i] = (int)lens[i];
	}
	if (sql) {
		ok = PQsendQueryParams(pc.conn, sql, n, NULL, pv, pl, pf, 0);
	} else {
		snprintf(name, sizeof(name), "s%d_%d", op, db);
		ok = PQsendQueryPrepared(pc.conn, name, n, pv, pl, pf, 1);
	}
	if (!ok) {
		conn_lost("send");
		return -EIO;
	}
	pc.seg_open = true;
	return 0;
}

int pgc_write(enum pg_op op, enum store_db db, int n,
	      const void *const *vals, const size_t *lens)
{
	int rc = pgc_ready();

	if (rc == 0)
		rc = send(NULL, op, db, n, vals, lens);
	if (rc)
		return rc;
	item_push(IT_WRITE, false, 0);
	pc.seg_writes = true;
	pc.dirty[db] = pc.sent;
	return 0;
}

int pgc_write_sql(const char *sql)
{
	int rc = pgc_ready();

	if (rc == 0)
		rc = send(sql, 0, 0, 0, NULL, NULL);
	if (rc)
		return rc;
	item_push(IT_WRITE, false, 0);
	pc.seg_writes = true;
	for (int db = 0; db < STORE_NDB; db++)
		pc.dirty[db] = pc.sent;
	return 0;
}

PGresult *pgc_read(const char *sql, enum pg_op op, enum store_db db, int n,
		   const void *const *vals, const size_t *lens,
		   ExecStatusType want)
{
	PGresult *r;
	bool used;

	if (pgc_ready())
		return NULL;
	if (!sql && pc.dirty[db] < pc.synced) {	/* clean: the reader */
		r = pgr_read(op, db, n, vals, lens, want, &used);
		if (used)
			return r;
	}
	if (send(sql, op, db, n, vals, lens))
		return NULL;
	item_push(IT_READ, false, 0);
	if (!PQsendFlushRequest(pc.conn)) {
		conn_lost("flush request");
		return NULL;
	}
	if (wait_for(pc.sent))
		return NULL;
	r = pc.read_res;
	pc.read_res = NULL;
	if (r && PQresultStatus(r) != want) {
		PQclear(r);
		r = NULL;
	}
	return r;
}

/* ---- batches ---- */

/* Ends the open segment with a sync: wait, until it is answered. */
static int batch_end(unsigned long no, bool wait)
{
	bool writes = pc.seg_writes;

	if (pc.seg_lost) {
		pc.seg_lost = pc.seg_writes = false;
		return -EIO;
	}
	pc.seg_writes = false;
	if (!pc.seg_open || pc.state != PG_UP)
		return 0;
	pc.seg_open = false;
	if (!PQpipelineSync(pc.conn)) {
		conn_lost("sync");
		return writes ? -EIO : 0;
	}
	item_push(IT_SYNC, writes, no);
	pc.q[pc.tail - 1].report = !wait;
	if (writes)
		pc.flights++;
	if (flush())
		return writes && wait ? -EIO : 0;
	if (!wait || !writes)
		return 0;
	pc.sync_err = 0;
	if (wait_for(pc.sent))
		return -EIO;
	return pc.sync_err;
}

int store_pg_batch_end(unsigned long no)
{
	return batch_end(no, !pc.async);
}

int store_pg_commit(void)
{
	int rc = batch_end(lmdb_batch_no, true);

	/* and the flights before it */
	if (pc.state == PG_UP && wait_for(pc.sent) && rc == 0)
		rc = -EIO;
	return rc;
}

void store_pg_set_async(bool on)
{
	pc.async = on;
}

bool store_pg_flight(void)
{
	return pc.flights > 0;
}

bool store_pg_pending(void)
{
	return pc.seg_writes || pc.seg_lost;
}

const char *pgc_conninfo(void)
{
	return pc.conninfo;
}

/* ---- the loop's side ---- */

int store_pg_fd(int *events)
{
	*events = 0;
	if (!pc.conn || pc.state == PG_DOWN)
		return -1;
	if (pc.state == PG_CONNECTING) {
		*events = pc.flushing ? 2 : 1;	/* what PQconnectPoll asked */
		return PQsocket(pc.conn);
	}
	*events = 1 | (pc.flushing ? 2 : 0);
	return PQsocket(pc.conn);
}

static void setup_send(void);

static void connect_poll(void)
{
	switch (PQconnectPoll(pc.conn)) {
	case PGRES_POLLING_OK:
		pc.flushing = false;
		if (PQsetnonblocking(pc.conn, 1) != 0 ||
		    !PQenterPipelineMode(pc.conn)) {
			conn_lost("pipeline mode");
			return;
		}
		pc.state = PG_SETUP;
		setup_send();
		return;
	case PGRES_POLLING_WRITING:
		pc.flushing = true;
		return;
	case PGRES_POLLING_FAILED:
		log_warn("store: postgresql: cannot connect: %s",
			 PQerrorMessage(pc.conn));
		conn_lost("connect");
		return;
	default:
		pc.flushing = false;
		return;
	}
}

void store_pg_io(void)
{
	if (pc.state == PG_CONNECTING) {
		connect_poll();
		return;
	}
	if (!pc.conn)
		return;
	if (pc.flushing && flush())
		return;
	drain();
}

void store_pg_maintain(void)
{
	if (pc.state != PG_DOWN || mono_now() < pc.retry_at)
		return;
	log_info("store: postgresql: connecting again");
	pc.conn = PQconnectStart(pc.conninfo);
	pc.state = PG_CONNECTING;
	if (!pc.conn || PQstatus(pc.conn) == CONNECTION_BAD) {
		conn_lost("connect");
		return;
	}
	pc.state = PG_CONNECTING;
	pc.flushing = true;	/* PQconnectStart: wait until writable */
}

/* ---- the connection ---- */

static const char counter_fn[] =
	"CREATE OR REPLACE FUNCTION starling_counter_add(o bytea, d bytea) "
	"RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $$ "
	"DECLARE n int := least(greatest(length(o), length(d)), 64) / 8; "
	"r bytea := ''; a bigint; b bigint; s bigint; w bytea; "
	"BEGIN FOR i IN 0 .. n - 1 LOOP a := 0; b := 0; "
	"FOR j IN 0 .. 7 LOOP "
	"IF i * 8 + 8 <= length(o) THEN "
	"a := a | (get_byte(o, i * 8 + j)::bigint << (8 * j)); END IF; "
	"IF i * 8 + 8 <= length(d) THEN "
	"b := b | (get_byte(d, i * 8 + j)::bigint << (8 * j)); END IF; "
	"END LOOP; s := a + b; w := '\\x0000000000000000'::bytea; "
	"FOR j IN 0 .. 7 LOOP w := set_byte(w, j, ((s >> (8 * j)) & 255)::int); "
	"END LOOP; r := r || w; END LOOP; RETURN r; END $$";

const char *const pg_op_sql[PGOP_N] = {
	[PGOP_GET] = "SELECT v FROM %s WHERE k = $1",
	[PGOP_PUT] = "INSERT INTO %s (k, v) VALUES ($1, $2) "
		   "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
	[PGOP_DEL] = "DELETE FROM %s WHERE k = $1",
	[PGOP_DELRANGE] = "DELETE FROM %s WHERE k >= $1 AND k < $2",
	[PGOP_DELFROM] = "DELETE FROM %s WHERE k >= $1",
	[PGOP_SCAN] = "SELECT k, v FROM %s WHERE k >= $1 AND k < $2 "
		    "ORDER BY k LIMIT 256",
	[PGOP_RSCAN] = "SELECT k, v FROM %s WHERE k >= $1 AND k < $2 "
		     "ORDER BY k DESC LIMIT 256",
	[PGOP_COUNTER] = "INSERT INTO %1$s AS t (k, v) VALUES ($1, "
		       "starling_counter_add('', $2)) ON CONFLICT (k) DO UPDATE "
		       "SET v = starling_counter_add(t.v, EXCLUDED.v)",
};

static void setup_sql(const char *sql)
{
	if (PQsendQueryParams(pc.conn, sql, 0, NULL, NULL, NULL, NULL, 1))
		item_push(IT_SETUP, false, 0);
}

/* The settings, the tables and the statements of every db, as one
 * segment (see the top). */
static void setup_send(void)
{
	char sql[512], name[16], table[64];

	pc.indexer = false;		/* a new session holds no lock */
	setup_sql("SET client_min_messages = warning");
	setup_sql("SET synchronous_commit = on");
	setup_sql("SELECT pg_advisory_xact_lock(7468291)");
	for (int db = 0; db < STORE_NDB; db++) {
		snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS "
			 "starling_%s (k bytea PRIMARY KEY, v bytea NOT NULL)",
			 store_dbs[db].name);
		setup_sql(sql);
	}
	setup_sql(counter_fn);
	for (int db = 0; db < STORE_NDB; db++) {
		snprintf(table, sizeof(table), "starling_%s", store_dbs[db].name);
		for (int op = 0; op < PGOP_N; op++) {
			snprintf(sql, sizeof(sql), pg_op_sql[op], table);
			snprintf(name, sizeof(name), "s%d_%d", op, db);
			if (PQsendPrepare(pc.conn, name, sql, 0, NULL))
				item_push(IT_SETUP, false, 0);
		}
	}
	if (!PQpipelineSync(pc.conn)) {
		conn_lost("setup");
		return;
	}
	item_push(IT_SYNC, false, 0);
	flush();
}

int store_pg_open(const char *conninfo)
{
	store_pg_close();
	pc.conninfo = xstrdup(conninfo);
	pc.conn = PQconnectdb(conninfo);
	if (PQstatus(pc.conn) != CONNECTION_OK) {
		log_error("store: cannot connect to postgresql: %s",
			  PQerrorMessage(pc.conn));
		PQfinish(pc.conn);
		pc.conn = NULL;
		free(pc.conninfo);
		pc.conninfo = NULL;
		return -ECONNREFUSED;
	}
	pc.state = PG_SETUP;
	if (PQsetnonblocking(pc.conn, 1) != 0 || !PQenterPipelineMode(pc.conn))
		conn_lost("pipeline mode");
	else
		setup_send();
	if (pc.state == PG_SETUP)
		wait_for(pc.sent);
	if (pc.state != PG_UP) {
		store_pg_close();
		return -EIO;
	}
	return 0;
}

bool store_pg_is_open(void)
{
	return pc.state != PG_CLOSED;
}

/* The archive index job runs on one node at a time: the one whose
 * session holds this advisory lock (released when it dies). */
bool store_pg_indexer(void)
{
	if (pc.state != PG_UP || pc.indexer)
		return pc.state == PG_UP && pc.indexer;
	PGresult *r = pgc_read("SELECT pg_try_advisory_lock(7468292)", 0, 0, 0,
			       NULL, NULL, PGRES_TUPLES_OK);
	if (r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		pc.indexer = true;
		log_info("store: this node runs the postgresql archive index job");
	}
	if (r)
		PQclear(r);
	return pc.indexer;
}

void store_pg_close(void)
{
	if (pc.state == PG_CLOSED)
		return;
	log_info("store: postgresql: waited for %lu answers, %.1f ms in all, "
		 "the longest %.2f ms", pc.waits, pc.waited * 1e3,
		 pc.longest * 1e3);
	if (pc.state == PG_UP && store_pg_commit() != 0)
		log_error("store: postgresql: the last batch was lost");
	if (pc.state == PG_UP && pc.indexer) {
		/* at once: the session ends behind PQfinish */
		PGresult *r = pgc_read("SELECT pg_advisory_unlock_all()", 0, 0,
				       0, NULL, NULL, PGRES_TUPLES_OK);
		if (r)
			PQclear(r);
	}
	pgr_close();
	if (pc.conn)
		PQfinish(pc.conn);
	if (pc.read_res)
		PQclear(pc.read_res);
	free(pc.q);
	free(pc.conninfo);
	memset(&pc, 0, sizeof(pc));
}
