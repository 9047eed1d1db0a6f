/*
 * store_pg.h - inside the PostgreSQL engine: the connection and its
 * pipeline (store_pg_conn.c), under the key-space operations of
 * store_pg.c.
 *
 * pipeline: the connection is nonblocking and in libpq's pipeline mode.
 *           A write is sent and not waited for; a read is sent and its
 *           answer waited for (the answers of what was sent before it
 *           come first and are handled on the way).
 * segment:  what was sent since the last sync point. Its statements are
 *           one implicit transaction: committed at the sync, or, when one
 *           of them failed, rolled back whole (the rest are skipped).
 *           The loop's batch is one segment: store_pg_batch_end sends
 *           the sync with the batch's number.
 * flight:   a segment with writes whose sync is sent and not yet
 *           answered. In async mode (the server's loop) the batch end
 *           does not wait for it; its answer comes through
 *           store_pg_io(), and a lost one is reported to store_health
 *           (lmdb_health_lost) under its batch's number.
 * reader:   a second connection (store_pg_read.c) for reads of a db
 *           with no write of ours waiting for its commit: they need not
 *           wait behind the pipeline.
 * down:     no connection (it broke, or the server would not answer): every
 *           call fails with -EIO at once; store_pg_maintain() connects
 *           again (nonblocking) after a wait that doubles from 0.5 s to
 *           30 s.
 */
#ifndef STARLING_STORE_PG_H
#define STARLING_STORE_PG_H

#include "store.h"

#include <libpq-fe.h>

/* The prepared statements, per db: name "s<op>_<db>". */
enum pg_op {
	PGOP_GET, PGOP_PUT, PGOP_DEL, PGOP_DELRANGE, PGOP_DELFROM, PGOP_SCAN, PGOP_RSCAN,
	PGOP_COUNTER, PGOP_N
};

#define PG_SCAN_PAGE 256	/* the LIMIT of the scan statements */

/* The statements' SQL, %s the table (store_pg_conn.c). */
extern const char *const pg_op_sql[PGOP_N];

/* Whether statements can be sent now (0), or why not: -ENXIO never
 * opened, -EIO down. */
int pgc_ready(void);
/* Sends a write (prepared op of db, n binary parameters) into the open
 * segment: 0, or -EIO when down. */
int pgc_write(enum pg_op op, enum store_db db, int n,
	      const void *const *vals, const size_t *lens);
/* Sends a statement without parameters as a write (TRUNCATE...). */
int pgc_write_sql(const char *sql);
/* Sends a read and waits for its answer: the result (to PQclear) when
 * its status is want, else NULL (logged). sql NULL: the prepared op of
 * db. */
PGresult *pgc_read(const char *sql, enum pg_op op, enum store_db db, int n,
		   const void *const *vals, const size_t *lens,
		   ExecStatusType want);

/* The conninfo the engine was opened with (NULL: closed). */
const char *pgc_conninfo(void);
/* Counts a wait of the loop (store_pg_close logs them). */
void pgc_count_wait(double seconds);

/* ---- the reader (store_pg_read.c) ---- */

/* A read of the prepared op of db (PGOP_GET, _SCAN, _RSCAN) on the
 * reader: the result (to PQclear) when its status is want, else NULL.
 * *used false: the reader could not answer (no connection); ask the
 * pipeline. */
PGresult *pgr_read(enum pg_op op, enum store_db db, int n,
		   const void *const *vals, const size_t *lens,
		   ExecStatusType want, bool *used);
void pgr_close(void);

#endif
