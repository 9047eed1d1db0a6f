/*
 * store.c - the LMDB engine behind store.h: the environment, the batch,
 * map growth, and the raw operations of store_lmdb.
 *
 * Transactions: one write transaction (the batch, st.wtxn) begun by the
 * first write and kept until store_commit(); one read-only transaction
 * (st.rtxn) for reads while no batch is open, kept live as a snapshot
 * until store_end_read() resets it (mdb_txn_reset) and renewed by the next
 * read (mdb_txn_renew). The environment has MDB_NOTLS, so the two can
 * exist in one thread. Beginning a batch resets the snapshot: reads go
 * through the batch while it is open and must see our own commits after.
 * No cursor outlives one call into this file; a scan callback may read
 * (through the same transaction) but not write.
 *
 * Map size: a new environment starts at STORE_MAP_INITIAL (or map_max if
 * smaller); an existing one keeps the size it has. The map grows by
 * doubling, never past map_max, and only while this process has no
 * transaction live (mdb_env_set_mapsize's rule):
 *   - before a batch begins, when more than STORE_GROW_PERCENT of the map
 *     is in use (high-water mark of the data file);
 *   - when a write or the commit hits MDB_MAP_FULL. LMDB then wants the
 *     transaction aborted, so every batch keeps a journal of its
 *     operations: abort, grow, begin again and replay the journal, then
 *     redo the failed operation. Nothing acknowledged is lost.
 *   - at map_max (or on MDB_TXN_FULL) the journal is replayed and
 *     committed early, and the operation is retried alone in a fresh
 *     batch (pages freed by the batch become reusable only after it
 *     commits); if it still does not fit it fails with -ENOSPC (-E2BIG).
 * Another process (starlingctl) may grow the map: a transaction begin or
 * renew then fails with MDB_MAP_RESIZED, and we adopt the size written in
 * the environment (mdb_env_set_mapsize(env, 0)) and retry once.
 *
 * The archive writer (the server starts it, store_writer_start): appends
 * to the archive (puts to STORE_ARCHIVE, what every archived message
 * costs) wait in aw.queue instead of joining the batch. At the end of
 * the loop iteration store_commit_async() commits the batch, then hands
 * the queue to a thread of the writer's own, which writes it in a
 * transaction of its own and commits (synced) while the loop goes on
 * with the next iteration; XEP-0198 acks covering those appends wait
 * until the writer is done (sm.h, points; core/main.c). One hand-over at
 * a time: the next waits for the last (store_writer_join). Whatever could see the
 * queued appends (any other operation on STORE_ARCHIVE, a range delete,
 * store_commit) first waits for the writer and applies the queue to the
 * batch, so reads see every append before them. The loop never holds the
 * batch open while the writer works (batch_begin waits for it first),
 * so neither waits for the other's LMDB write lock. A flight that fails
 * is redone in the batch and committed at once.
 *
 * Durability: commits are synced (no MDB_NOSYNC / MDB_NOMETASYNC), so a
 * committed batch survives a crash of the process or of the machine.
 */
#include "store.h"
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <lmdb.h>

#define STORE_MAP_INITIAL ((size_t)64 << 20)
#define STORE_MAP_DEFAULT_MAX ((size_t)1 << 40)	/* map_max 0 */
#define STORE_GROW_PERCENT 80
#define STORE_MAXDBS 16		/* ours plus room for more */

/* Journal operations: what a batch did, to replay it. */
enum store_op { OP_PUT = 1, OP_DEL, OP_DEL_PREFIX };

struct journal_hdr {
	uint8_t op;
	uint8_t db;
	uint32_t klen;
	uint32_t vlen;
};

static const char *const db_names[STORE_NDB] = {
	[STORE_ACCOUNTS] = "accounts",
	[STORE_KEYVAL] = "keyval",
	[STORE_MAP] = "map",
	[STORE_ARCHIVE] = "archive",
	[STORE_ARCHIVE_WITH] = "archive_with",
	[STORE_ARCHIVE_ID] = "archive_id",
	[STORE_ARCHIVE_META] = "archive_meta",
};

static struct {
	MDB_env *env;
	MDB_dbi dbi[STORE_NDB];
	MDB_txn *wtxn;		/* the open batch, or NULL */
	MDB_txn *rtxn;		/* the read handle, live or reset, or NULL */
	bool rtxn_live;
	size_t map_max;
	size_t max_key;
	struct sbuf journal;	/* the batch's operations */
	int batch_err;		/* a lost batch's error, for store_commit */
} st;

/* The archive writer (see the top). queue is the loop's; flight, busy
 * and rc are the writer's while busy, under mu. */
static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool running, busy, stop;
	int rc;				/* LMDB code of the last flight */
	struct sbuf queue;		/* per put: journal_hdr, key, value */
	struct sbuf flight;
	int64_t flight_time;		/* when it was handed over (µs) */
	void (*done)(void);		/* called on the writer's thread */
	MDB_txn *txn;			/* the writer's, while it writes */
	bool job_wanted;		/* a step of the index job, with: */
	int64_t job_delay;
	size_t job_budget;
	int job_rc;			/* an LMDB code that ended the step */
	int job_more;			/* its answer (store_archive_index_step) */
	struct sbuf notes;		/* debug lines for the loop to log */
} aw = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* The one translator of LMDB results: 0 or a negative errno, logged with
 * what we were doing (not for MDB_NOTFOUND, which is an answer). */
static int lmdb_err(int rc, const char *what)
{
	int e;

	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		e = EEXIST;
		break;
	case MDB_MAP_FULL:
		e = ENOSPC;
		break;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
		e = E2BIG;
		break;
	case MDB_DBS_FULL:
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
		e = EMFILE;
		break;
	case MDB_MAP_RESIZED:
		e = EAGAIN;
		break;
	case MDB_PAGE_NOTFOUND:
	case MDB_CORRUPTED:
	case MDB_PANIC:
		e = EIO;
		break;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
		e = EPROTO;
		break;
	case MDB_BAD_VALSIZE:
		e = ENAMETOOLONG;
		break;
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
		e = EINVAL;
		break;
	default:
		e = rc > 0 ? rc : EIO;
		break;
	}
	log_error("store: %s: %s", what, mdb_strerror(rc));
	return -e;
}

/* ---- transactions ---- */

static void rtxn_reset(void)
{
	if (st.rtxn_live) {
		mdb_txn_reset(st.rtxn);
		st.rtxn_live = false;
	}
}

/* Another process grew the map past ours: take its size. */
static int adopt_mapsize(void)
{
	MDB_envinfo info;
	int rc;

	store_writer_join();	/* no transaction of ours may be live */
	rtxn_reset();
	rc = mdb_env_set_mapsize(st.env, 0);
	if (rc == 0 && mdb_env_info(st.env, &info) == 0)
		log_info("store: map resized by another process to %zu MiB",
			 info.me_mapsize >> 20);
	return rc;
}

/* The transaction reads go through: the batch, else the snapshot. */
static int read_txn(MDB_txn **out)
{
	int rc = 0;

	if (!st.env)
		return -ENXIO;
	if (st.wtxn) {
		*out = st.wtxn;
		return 0;
	}
	for (int tries = 0; !st.rtxn_live && tries < 2; tries++) {
		if (st.rtxn)
			rc = mdb_txn_renew(st.rtxn);
		else
			rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &st.rtxn);
		if (rc == 0)
			st.rtxn_live = true;
		else if (rc != MDB_MAP_RESIZED || (rc = adopt_mapsize()) != 0)
			break;
	}
	if (!st.rtxn_live) {
		if (st.rtxn)
			mdb_txn_abort(st.rtxn);
		st.rtxn = NULL;
		return lmdb_err(rc ? rc : MDB_MAP_RESIZED, "begin read");
	}
	*out = st.rtxn;
	return 0;
}

static void map_usage(size_t *used, size_t *size)
{
	MDB_envinfo info;
	MDB_stat stat;

	mdb_env_info(st.env, &info);
	mdb_env_stat(st.env, &stat);
	*used = ((size_t)info.me_last_pgno + 1) * stat.ms_psize;
	*size = info.me_mapsize;
}

/* Doubles the map (at least to need bytes), up to map_max. No
 * transaction of ours may be live. MDB_MAP_FULL when at the limit. */
static int map_grow(size_t need)
{
	size_t used, size, next;
	int rc;

	map_usage(&used, &size);
	if (size >= st.map_max)
		return MDB_MAP_FULL;
	next = size;
	do
		next = next > st.map_max / 2 ? st.map_max : next * 2;
	while (next < need && next < st.map_max);
	rtxn_reset();
	rc = mdb_env_set_mapsize(st.env, next);
	if (rc == 0)
		log_info("store: map grown from %zu to %zu MiB (%zu MiB used)",
			 size >> 20, next >> 20, used >> 20);
	return rc;
}

static int wtxn_begin(void)
{
	int rc = 0;

	rtxn_reset();
	for (int tries = 0; tries < 2; tries++) {
		rc = mdb_txn_begin(st.env, NULL, 0, &st.wtxn);
		if (rc != MDB_MAP_RESIZED || (rc = adopt_mapsize()) != 0)
			break;
	}
	if (rc)
		st.wtxn = NULL;
	return rc;
}

static void wtxn_abort(void)
{
	if (st.wtxn)
		mdb_txn_abort(st.wtxn);
	st.wtxn = NULL;
}

/* Opens the batch if none is open, growing the map first when it is
 * nearly full. An LMDB code. */
/* Grows the map when it is nearly full. No transaction of ours may be
 * live (the writer's included). */
static void map_grow_early(void)
{
	size_t used, size;

	map_usage(&used, &size);
	if (used / STORE_GROW_PERCENT > size / 100 && size < st.map_max) {
		int rc = map_grow(used * 2);
		if (rc)
			lmdb_err(rc, "grow map");	/* go on at this size */
	}
}

static int batch_begin(void)
{
	if (st.wtxn)
		return 0;
	store_writer_join();
	map_grow_early();
	return wtxn_begin();
}

/* ---- operations ---- */

static bool has_prefix(const MDB_val *k, const void *prefix, size_t len)
{
	return k->mv_size >= len && memcmp(k->mv_data, prefix, len) == 0;
}

/* Deletes every key starting with prefix. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const MDB_val *prefix)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return rc;
	for (;;) {
		k = *prefix;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc || !has_prefix(&k, prefix->mv_data, prefix->mv_size))
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int op_apply(MDB_txn *txn, int op, int db, const void *kp, size_t klen,
		    const void *vp, size_t vlen)
{
	MDB_val k = { klen, (void *)kp }, v = { vlen, (void *)vp };

	switch (op) {
	case OP_PUT:
		return mdb_put(txn, st.dbi[db], &k, &v, 0);
	case OP_DEL:
		return mdb_del(txn, st.dbi[db], &k, NULL);
	case OP_DEL_PREFIX:
		return del_prefix(txn, st.dbi[db], &k);
	}
	return EINVAL;
}

static void journal_add(int op, int db, const void *k, size_t klen,
			const void *v, size_t vlen)
{
	struct journal_hdr h = { (uint8_t)op, (uint8_t)db, (uint32_t)klen,
				 (uint32_t)vlen };

	sbuf_add(&st.journal, &h, sizeof(h));
	sbuf_add(&st.journal, k, klen);
	sbuf_add(&st.journal, v, vlen);
}

/* Begins a batch and applies the journal to it. An LMDB code; on failure
 * no batch is open. */
static int batch_rebuild(void)
{
	size_t off = 0;
	int rc = wtxn_begin();

	while (rc == 0 && off < st.journal.len) {
		struct journal_hdr h;
		const char *p = st.journal.p + off;

		memcpy(&h, p, sizeof(h));
		p += sizeof(h);
		rc = op_apply(st.wtxn, h.op, h.db, p, h.klen, p + h.klen, h.vlen);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		off += sizeof(h) + h.klen + h.vlen;
	}
	if (rc)
		wtxn_abort();
	return rc;
}

/* The batch could not be rebuilt: what it held is gone. */
static void batch_lost(int rc)
{
	wtxn_abort();
	sbuf_reset(&st.journal);
	if (!st.batch_err)
		st.batch_err = lmdb_err(rc, "batch lost");
}

/* Commits the batch, growing the map and replaying the journal while the
 * commit does not fit. An LMDB code; no batch is open afterwards. */
static int batch_commit(void)
{
	int rc;

	for (;;) {
		rc = mdb_txn_commit(st.wtxn);
		st.wtxn = NULL;
		if (rc != MDB_MAP_FULL || map_grow(0) != 0)
			break;
		rc = batch_rebuild();
		if (rc)
			break;
	}
	sbuf_reset(&st.journal);
	return rc;
}

/* An operation failed with MDB_MAP_FULL or MDB_TXN_FULL and LMDB wants
 * the batch aborted: grow and redo the batch with the operation, or
 * commit the batch and retry the operation alone. An LMDB code; on
 * success the batch is open and holds the operation. */
static int batch_recover(int rc, int op, int db, const void *k, size_t klen,
			 const void *v, size_t vlen)
{
	while (rc == MDB_MAP_FULL) {
		wtxn_abort();
		if (map_grow(0) != 0)
			break;
		rc = batch_rebuild();
		if (rc == 0)
			rc = op_apply(st.wtxn, op, db, k, klen, v, vlen);
		else if (rc != MDB_MAP_FULL) {
			batch_lost(rc);
			return rc;
		}
	}
	if (rc != MDB_MAP_FULL && rc != MDB_TXN_FULL)
		return rc;
	wtxn_abort();
	if (st.journal.len) {
		int r2 = batch_rebuild();
		if (r2 == 0)
			r2 = batch_commit();
		if (r2) {
			batch_lost(r2);
			return rc;
		}
	}
	rc = wtxn_begin();
	if (rc == 0)
		rc = op_apply(st.wtxn, op, db, k, klen, v, vlen);
	return rc;
}

/* Runs one write operation in the batch and journals it. */
static int batch_op(int op, int db, const void *k, size_t klen,
		    const void *v, size_t vlen, const char *what)
{
	int rc;

	if (!st.env)
		return -ENXIO;
	if (klen > UINT32_MAX || vlen > UINT32_MAX)
		return -E2BIG;
	rc = batch_begin();
	if (rc)
		return lmdb_err(rc, "begin write");
	rc = op_apply(st.wtxn, op, db, k, klen, v, vlen);
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		rc = batch_recover(rc, op, db, k, klen, v, vlen);
	if (rc == 0 || rc == MDB_NOTFOUND) {
		journal_add(op, db, k, klen, v, vlen);
	} else {
		/* The transaction may be unusable now: rebuild it without
		 * the failed operation. */
		wtxn_abort();
		if (st.journal.len) {
			int r2 = batch_rebuild();
			if (r2)
				batch_lost(r2);
		}
	}
	return lmdb_err(rc, what);
}

/* ---- the archive writer (see the top) ---- */

/* The puts of buf, in order, through txn: an LMDB code. */
static int puts_apply(MDB_txn *txn, const struct sbuf *buf)
{
	for (size_t off = 0; off < buf->len;) {
		struct journal_hdr h;
		memcpy(&h, buf->p + off, sizeof(h));
		off += sizeof(h);
		MDB_val k = { h.klen, buf->p + off };
		MDB_val v = { h.vlen, buf->p + off + h.klen };
		off += (size_t)h.klen + h.vlen;
		int rc = mdb_put(txn, st.dbi[STORE_ARCHIVE], &k, &v, 0);
		if (rc)
			return rc;
	}
	return 0;
}

static const struct store_engine store_lmdb_writer;

/* A step of the LMDB archives' index job in the flight's transaction.
 * Items before the hand-over are in it or committed; the ones the loop
 * appended since were made later (a second's margin for ids made ahead
 * of the clock), so the pass ends before them. */
static int job_step(MDB_txn *txn)
{
	int r;

	pthread_mutex_lock(&aw.mu);
	int64_t delay = aw.job_delay;
	size_t budget = aw.job_budget;
	aw.job_wanted = false;
	pthread_mutex_unlock(&aw.mu);
	aw.txn = txn;
	aw.job_rc = 0;
	r = store_archive_index_step_on(&store_lmdb_writer, delay, budget,
					aw.flight_time - 1000000);
	aw.txn = NULL;
	pthread_mutex_lock(&aw.mu);
	aw.job_more = r;
	pthread_mutex_unlock(&aw.mu);
	return aw.job_rc;
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&aw.mu);
	for (;;) {
		while (!aw.busy && !aw.stop)
			pthread_cond_wait(&aw.cv, &aw.mu);
		if (!aw.busy)
			break;
		bool job = aw.job_wanted;
		pthread_mutex_unlock(&aw.mu);

		MDB_txn *txn = NULL;
		int rc = mdb_txn_begin(st.env, NULL, 0, &txn);
		if (rc == 0)
			rc = puts_apply(txn, &aw.flight);
		job = job && rc == 0;
		if (job)
			rc = job_step(txn);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else if (txn)
			mdb_txn_abort(txn);
		if (rc && job)
			store_archive_index_abandon(&store_lmdb_writer);

		pthread_mutex_lock(&aw.mu);
		aw.rc = rc;
		aw.busy = false;
		pthread_cond_broadcast(&aw.cv);
		if (aw.done)
			aw.done();
	}
	pthread_mutex_unlock(&aw.mu);
	return NULL;
}

/* The batch's operations on the queued puts, journalled as any. */
static void queue_to_batch(const struct sbuf *buf)
{
	for (size_t off = 0; off < buf->len;) {
		struct journal_hdr h;
		memcpy(&h, buf->p + off, sizeof(h));
		off += sizeof(h);
		int rc = batch_op(OP_PUT, STORE_ARCHIVE, buf->p + off, h.klen,
				  buf->p + off + h.klen, h.vlen, "append");
		off += (size_t)h.klen + h.vlen;
		if (rc && !st.batch_err)
			st.batch_err = rc;
	}
}

void store_writer_join(void)
{
	bool waited = false;

	if (!aw.running)
		return;
	pthread_mutex_lock(&aw.mu);
	while (aw.busy) {
		waited = true;
		pthread_cond_wait(&aw.cv, &aw.mu);
	}
	pthread_mutex_unlock(&aw.mu);
	if (!waited && !aw.flight.len)
		return;
	if (aw.rc) {
		/* Redone in the batch (which grows the map if that was it),
		 * and durable before this returns, as the flight would be. */
		struct sbuf redo = aw.flight;
		log_warn("store: archive writer: %s; writing its %zu bytes here",
			 mdb_strerror(aw.rc), redo.len);
		aw.rc = 0;
		sbuf_init(&aw.flight);
		queue_to_batch(&redo);
		sbuf_free(&redo);
		if (st.wtxn) {
			int rc = batch_commit();
			if (rc && !st.batch_err)
				st.batch_err = lmdb_err(rc, "commit");
		}
	}
	sbuf_recycle(&aw.flight, (size_t)1 << 24);
	rtxn_reset();		/* the next read sees the flight */
	store_gen++;
}

bool store_writer_busy(void)
{
	bool busy;

	if (!aw.running)
		return false;
	pthread_mutex_lock(&aw.mu);
	busy = aw.busy;
	pthread_mutex_unlock(&aw.mu);
	return busy;
}

/* Whatever could see the queued appends waits for the writer and finds
 * them in the batch. */
static void queue_settle(void)
{
	struct sbuf q;

	store_writer_join();
	if (!aw.queue.len)
		return;
	q = aw.queue;
	sbuf_init(&aw.queue);
	queue_to_batch(&q);
	sbuf_free(&q);
}

void store_log_debug(const struct store_engine *e, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!e->own_thread) {
		log_debug("%s", line);
		return;
	}
	pthread_mutex_lock(&aw.mu);
	if (aw.notes.len < 65536) {
		sbuf_adds(&aw.notes, line);
		sbuf_addc(&aw.notes, '\n');
	}
	pthread_mutex_unlock(&aw.mu);
}

int store_writer_index(int64_t delay, size_t budget)
{
	int more;

	if (!aw.running)
		return -ENXIO;
	pthread_mutex_lock(&aw.mu);
	for (char *l = aw.notes.p, *nl; l && (nl = strchr(l, '\n')); l = nl + 1) {
		*nl = '\0';
		log_debug("%s", l);
	}
	sbuf_reset(&aw.notes);
	aw.job_delay = delay;
	aw.job_budget = budget;
	aw.job_wanted = true;
	more = aw.job_more;
	/* A flight of its own, unless the loop has one to hand over or its
	 * batch open (the writer would wait for its lock). */
	if (!aw.busy && !aw.queue.len && !st.wtxn) {
		aw.flight_time = (int64_t)(now_wall() * 1e6);
		aw.busy = true;
		pthread_cond_signal(&aw.cv);
	}
	pthread_mutex_unlock(&aw.mu);
	return more;
}

int store_writer_start(void (*done)(void))
{
	int rc;

	if (aw.running || !st.env)
		return aw.running ? 0 : -ENXIO;
	aw.done = done;
	aw.stop = false;
	rc = pthread_create(&aw.thread, NULL, writer_main, NULL);
	if (rc)
		return -rc;
	aw.running = true;
	return 0;
}

void store_writer_stop(void)
{
	if (!aw.running)
		return;
	store_writer_join();
	pthread_mutex_lock(&aw.mu);
	aw.stop = true;
	pthread_cond_broadcast(&aw.cv);
	pthread_mutex_unlock(&aw.mu);
	pthread_join(aw.thread, NULL);
	aw.running = false;
	sbuf_free(&aw.notes);
	queue_settle();		/* what is left joins the batch */
	sbuf_free(&aw.flight);
}

/* ---- opening and closing ---- */

static int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

static int open_dbs(void)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st.env, NULL, 0, &txn);

	if (rc)
		return rc;
	for (int i = 0; i < STORE_NDB && rc == 0; i++)
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st.dbi[i]);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

int store_open(const char *dir, size_t map_max)
{
	struct sbuf path;
	struct stat sb;
	bool fresh;
	int rc, dead = 0;

	store_gen++;
	if (st.env)
		return -EBUSY;
	rc = mkdir_p(dir);
	if (rc) {
		log_error("store: cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	sbuf_init(&path);
	sbuf_printf(&path, "%s/data.mdb", dir);
	fresh = stat(path.p, &sb) != 0;
	sbuf_free(&path);
	st.map_max = map_max ? map_max : STORE_MAP_DEFAULT_MAX;
	rc = mdb_env_create(&st.env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(st.env, STORE_MAXDBS);
	if (rc == 0 && fresh)
		rc = mdb_env_set_mapsize(st.env, MIN(STORE_MAP_INITIAL, st.map_max));
	if (rc == 0)
		rc = mdb_env_open(st.env, dir, MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_reader_check(st.env, &dead);
	if (rc == 0)
		rc = open_dbs();
	if (rc) {
		if (st.env)
			mdb_env_close(st.env);
		st.env = NULL;
		return lmdb_err(rc, dir);
	}
	st.max_key = (size_t)mdb_env_get_maxkeysize(st.env);
	sbuf_init(&st.journal);
	st.batch_err = 0;
	if (dead)
		log_info("store: cleared %d stale readers", dead);
	return 0;
}

void store_close(void)
{
	store_gen++;
	if (!st.env)
		return;
	store_writer_stop();
	int rc = store_commit();
	if (rc)
		log_error("store: last batch not saved: %s", strerror(-rc));
	if (st.rtxn)
		mdb_txn_abort(st.rtxn);
	st.rtxn = NULL;
	st.rtxn_live = false;
	mdb_env_close(st.env);
	st.env = NULL;
	sbuf_free(&st.journal);
}

bool store_is_open(void)
{
	return st.env != NULL;
}

static int commit_batch(void);

int store_commit_async(bool *handed)
{
	int rc;

	*handed = false;
	if (!aw.running || !aw.queue.len)
		return store_commit();
	store_writer_join();
	rc = commit_batch();
	map_grow_early();
	pthread_mutex_lock(&aw.mu);
	struct sbuf t = aw.flight;
	aw.flight = aw.queue;
	aw.queue = t;
	aw.flight_time = (int64_t)(now_wall() * 1e6);
	aw.busy = true;
	pthread_cond_signal(&aw.cv);
	pthread_mutex_unlock(&aw.mu);
	*handed = true;
	return rc;
}

int store_commit(void)
{
	queue_settle();
	return commit_batch();
}

/* Commits the batch, the queued appends left out. */
static int commit_batch(void)
{
	int rc = st.batch_err;

	st.batch_err = 0;
	if (!st.wtxn)
		return rc;
	int r2 = batch_commit();
	if (r2) {
		r2 = lmdb_err(r2, "commit");
		if (!rc)
			rc = r2;
	}
	return rc;
}

bool store_pending(void)
{
	return st.wtxn != NULL || aw.queue.len || store_writer_busy();
}

unsigned store_gen;

void store_end_read(void)
{
	rtxn_reset();
	store_gen++;
}

/* ---- the engine's operations ---- */

static int check_key(enum store_db db, size_t klen)
{
	if (!st.env)
		return -ENXIO;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (klen == 0)
		return -EINVAL;
	if (klen > st.max_key || klen > STORE_KEY_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* The value of k, copied into out: an LMDB code. */
static int get_txn(MDB_txn *txn, enum store_db db, const void *k,
		   size_t klen, struct sbuf *out)
{
	MDB_val key = { klen, (void *)k }, v;
	int rc = mdb_get(txn, st.dbi[db], &key, &v);

	if (rc == 0) {
		sbuf_reset(out);
		sbuf_add(out, v.mv_data, v.mv_size);
	}
	return rc;
}

static int lmdb_get(enum store_db db, const void *k, size_t klen,
		    struct sbuf *out)
{
	MDB_txn *txn;
	int rc = check_key(db, klen);

	if (rc == 0 && db == STORE_ARCHIVE)
		queue_settle();
	if (rc == 0)
		rc = read_txn(&txn);
	if (rc)
		return rc;
	return lmdb_err(get_txn(txn, db, k, klen, out), "get");
}

static int lmdb_put(enum store_db db, const void *k, size_t klen,
		    const void *v, size_t vlen)
{
	int rc = check_key(db, klen);

	if (rc)
		return rc;
	if (db == STORE_ARCHIVE && aw.running && vlen <= UINT32_MAX) {
		struct journal_hdr h = { OP_PUT, STORE_ARCHIVE, (uint32_t)klen,
					 (uint32_t)vlen };
		sbuf_reserve(&aw.queue, sizeof(h) + klen + vlen);
		sbuf_add(&aw.queue, &h, sizeof(h));
		sbuf_add(&aw.queue, k, klen);
		sbuf_add(&aw.queue, v, vlen);
		return 0;
	}
	return batch_op(OP_PUT, db, k, klen, v, vlen, "put");
}

static int lmdb_del(enum store_db db, const void *k, size_t klen)
{
	int rc = check_key(db, klen);

	if (rc == 0 && db == STORE_ARCHIVE)
		queue_settle();
	return rc ? rc : batch_op(OP_DEL, db, k, klen, NULL, 0, "delete");
}

static int lmdb_del_prefix(enum store_db db, const void *k, size_t klen)
{
	int rc = check_key(db, klen);

	if (rc == 0)
		queue_settle();		/* a user's purge covers the archive */
	return rc ? rc : batch_op(OP_DEL_PREFIX, db, k, klen, NULL, 0,
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

static int scan_txn(MDB_txn *txn, enum store_db db, const void *lo,
		    size_t lolen, const void *hi, size_t hilen, bool reverse,
		    store_scan_fn fn, void *ctx);

static int lmdb_scan(enum store_db db, const void *lo, size_t lolen,
		     const void *hi, size_t hilen, bool reverse,
		     store_scan_fn fn, void *ctx)
{
	MDB_txn *txn;
	int rc;

	if (!st.env)
		return -ENXIO;
	if ((unsigned)db >= STORE_NDB)
		return -EINVAL;
	if (db == STORE_ARCHIVE)
		queue_settle();
	rc = read_txn(&txn);
	if (rc)
		return rc;
	return scan_txn(txn, db, lo, lolen, hi, hilen, reverse, fn, ctx);
}

static int scan_txn(MDB_txn *txn, enum store_db db, const void *lo,
		    size_t lolen, const void *hi, size_t hilen, bool reverse,
		    store_scan_fn fn, void *ctx)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, r = 0;

	rc = mdb_cursor_open(txn, st.dbi[db], &cur);
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

const struct store_engine store_lmdb = {
	.name = "lmdb",
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.del_prefix = lmdb_del_prefix,
	.scan = lmdb_scan,
};

/* The engine the index job uses on the writer's thread: the writer's
 * transaction (aw.txn), which the job reads and writes through. */
static int wr_get(enum store_db db, const void *k, size_t klen,
		  struct sbuf *out)
{
	int rc = get_txn(aw.txn, db, k, klen, out);

	/* no lmdb_err here: it logs, and the log is the loop's */
	return rc == MDB_NOTFOUND ? -ENOENT : rc ? -EIO : 0;
}

static int wr_put(enum store_db db, const void *k, size_t klen,
		  const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc = mdb_put(aw.txn, st.dbi[db], &key, &val, 0);

	if (rc && !aw.job_rc)
		aw.job_rc = rc;		/* the transaction is done for */
	return rc ? -EIO : 0;
}

static int wr_del(enum store_db db, const void *k, size_t klen)
{
	return -ENOTSUP;		/* the job never deletes */
}

static int wr_scan(enum store_db db, const void *lo, size_t lolen,
		   const void *hi, size_t hilen, bool reverse,
		   store_scan_fn fn, void *ctx)
{
	return scan_txn(aw.txn, db, lo, lolen, hi, hilen, reverse, fn, ctx);
}

static const struct store_engine store_lmdb_writer = {
	.name = "lmdb",
	.get = wr_get,
	.put = wr_put,
	.del = wr_del,
	.del_prefix = wr_del,
	.scan = wr_scan,
	.own_thread = true,
};
