/*
 * store_lmdb.h - what the files of the LMDB engine share (not for other
 * subsystems; store.h is the API): the environment and its batch
 * (store.c), the engine's operations (store_lmdb.c) and the archive
 * writer (store_writer.c).
 *
 * batch:     the loop's write transaction (lmdb.wtxn), open from the first
 *            write until the commit, with a journal of its operations.
 * snapshot:  the loop's read transaction (lmdb.rtxn) while no batch is
 *            open, renewed by the first read after store_end_read.
 * queue:     puts to STORE_DB_F_HANDOVER dbs waiting for the writer.
 * flight:    a queue handed to the writer, committed on its thread.
 */
#ifndef STARLING_STORE_LMDB_H
#define STARLING_STORE_LMDB_H

#include "store.h"

#include <lmdb.h>

/* Journal operations: what a batch did, to replay it. */
enum store_op { OP_PUT = 1, OP_DEL, OP_DEL_PREFIX };

/* A journal record (and a queued put): the header, key, then value. */
struct journal_hdr {
	uint8_t op;
	uint8_t db;
	uint32_t klen;
	uint32_t vlen;
};

/* The environment (store.c); the loop's. */
struct lmdb_state {
	MDB_env *env;
	MDB_dbi dbi[STORE_NDB];
	MDB_txn *wtxn;		/* the open batch, or NULL */
	MDB_txn *rtxn;		/* the read handle, live or reset, or NULL */
	bool rtxn_live;
	size_t map_max;
	size_t reserved;	/* data file bytes allocated (SIZE_MAX: the file
				 * system does not allocate ahead) */
	size_t max_key;
	struct sbuf journal;	/* the batch's operations */
	int batch_err;		/* a lost batch's error, for store_commit */
};

extern struct lmdb_state lmdb;

/* ---- store.c ---- */

/* The one translator of LMDB results: 0 or a negative errno, logged with
 * what we were doing (not for MDB_NOTFOUND, which is an answer). */
int lmdb_err(int rc, const char *what);
void lmdb_rtxn_reset(void);
/* The transaction reads go through: the batch, else the snapshot. */
int lmdb_read_txn(MDB_txn **out);
/* Grows the map when it is nearly full. No transaction of ours may be
 * live (the writer's included). */
void lmdb_map_grow_early(void);
/* Runs one write operation (OP_*) in the batch and journals it: 0 or
 * -errno. */
int lmdb_batch_op(int op, int db, const void *k, size_t klen,
		  const void *v, size_t vlen, const char *what);
/* Commits the batch, growing the map while it does not fit: an LMDB
 * code; no batch is open afterwards. */
int lmdb_batch_commit(void);
/* Commits the batch (the queue left out): 0, or the first -errno of it
 * or of a batch lost since the last. */
int lmdb_batch_finish(void);

/* Grows the map (at least to need bytes): an LMDB code, MDB_MAP_FULL at
 * storage_max_size or when the disk has no room for it. No transaction
 * of ours may be live. */
int lmdb_map_grow(size_t need);

/* ---- store_health.c ---- */

/* The number of the batch open now (store_batch_no). */
extern unsigned long lmdb_batch_no;
/* A new environment: healthy, nothing lost. */
void lmdb_health_reset(void);
/* A write was taken (store_writes counts them). */
void lmdb_health_wrote(void);
bool lmdb_health_failing(void);
/* 0, or the error a put gets at once while writes fail. */
int lmdb_health_refuse(void);
/* A write or commit failed with -errno rc while doing why (static): the
 * state turns failing when rc means no room or a failing disk. */
void lmdb_health_fail(int rc, const char *why);
/* What batch no (or its hand-over) wrote is not on disk. */
void lmdb_health_lost(unsigned long no);

/* ---- store_lmdb.c ---- */

/* A put through txn; to a STORE_DB_F_COUNTER db it adds v to the
 * record. An LMDB code. */
int lmdb_put_txn(MDB_txn *txn, enum store_db db, const void *k, size_t klen,
		 const void *v, size_t vlen);
/* The value of k in db, copied into out: an LMDB code. */
int lmdb_get_txn(MDB_txn *txn, enum store_db db, const void *k,
		 size_t klen, struct sbuf *out);
/* store_engine.scan through txn. */
int lmdb_scan_txn(MDB_txn *txn, enum store_db db, const void *lo,
		  size_t lolen, const void *hi, size_t hilen, bool reverse,
		  store_scan_fn fn, void *ctx);

/* ---- store_writer.c ---- */

/* Queues a put for the writer: false when it does not run (the put
 * joins the batch instead). */
bool lmdb_queue_put(enum store_db db, const void *k, size_t klen,
		    const void *v, size_t vlen);
/* Waits for the writer and moves the queue into the batch, so what
 * comes next sees every queued put. */
void lmdb_queue_settle(void);
/* Whether the last write to a STORE_DB_F_HANDOVER db was queued (a put
 * to a STORE_DB_F_TRAILS db then is too); untrail: it went to the batch. */
bool lmdb_queue_trailing(void);
void lmdb_queue_untrail(void);

#endif
