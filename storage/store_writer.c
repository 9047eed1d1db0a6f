/*
 * store_writer.c - the LMDB engine's archive writer: puts to the dbs
 * flagged STORE_DB_F_HANDOVER (the archive's items, what every archived
 * message costs) committed on a thread of their own (store_lmdb.h has the
 * words).
 *
 * The server starts it (store_writer_start); from then on those puts
 * wait in aw.queue instead of joining the batch. At the end of the loop
 * iteration store_commit_async() commits the batch, then hands
 * the queue to a thread of the writer's own, which writes it in a
 * transaction of its own and commits (synced) while the loop goes on
 * with the next iteration; XEP-0198 acks covering those appends wait
 * until the writer is done (sm.h, points; core/main.c). One hand-over at
 * a time: the next waits for the last (store_writer_join). Whatever
 * could see the queued puts (any other operation on such a db,
 * store_commit) first waits for the writer and applies the queue to the
 * batch, so reads see every append before them. The loop never holds the
 * batch open while the writer works (batch_begin waits for it first),
 * so neither waits for the other's LMDB write lock. A flight that fails
 * is redone in the batch and committed at once.
 *
 * The writer's transaction also runs steps of the archive stores' index
 * job (store_archive_index.c) through an engine of its own
 * (store_lmdb_writer), so the loop never writes the index itself.
 */
#include "store_lmdb.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
	unsigned long flight_no;	/* the batch it was queued in */
	void (*done)(void);		/* called on the writer's thread */
	MDB_txn *txn;			/* the writer's, while it writes */
	bool job_wanted;		/* a step of the index job, with: */
	int64_t job_delay;
	size_t job_budget;
	int job_rc;			/* an LMDB code that ended the step */
	int job_more;			/* its answer (store_archive_index_step) */
	struct sbuf notes;		/* debug lines for the loop to log */
	bool trailing;			/* the last HANDOVER write was queued */
} aw = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* The puts of buf, in order, through txn: an LMDB code. */
static int puts_apply(MDB_txn *txn, const struct sbuf *buf)
{
	for (size_t off = 0; off < buf->len;) {
		struct journal_hdr h;
		memcpy(&h, buf->p + off, sizeof(h));
		off += sizeof(h);
		int rc = lmdb_put_txn(txn, h.db, buf->p + off, h.klen,
				      buf->p + off + h.klen, h.vlen);
		off += (size_t)h.klen + h.vlen;
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
		int rc = mdb_txn_begin(lmdb.env, NULL, 0, &txn);
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
static int queue_to_batch(const struct sbuf *buf)
{
	int first = 0;

	for (size_t off = 0; off < buf->len;) {
		struct journal_hdr h;
		memcpy(&h, buf->p + off, sizeof(h));
		off += sizeof(h);
		int rc = lmdb_batch_op(OP_PUT, h.db, buf->p + off, h.klen,
				       buf->p + off + h.klen, h.vlen, "put");
		off += (size_t)h.klen + h.vlen;
		if (rc && !lmdb.batch_err)
			lmdb.batch_err = rc;
		if (rc && !first)
			first = rc;
	}
	return first;
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
		bool lost = queue_to_batch(&redo) != 0;
		sbuf_free(&redo);
		if (lmdb.wtxn) {
			int rc = lmdb_batch_commit();
			if (rc) {
				lost = true;
				rc = lmdb_err(rc, "commit");
				lmdb_health_fail(rc, "commit");
				if (!lmdb.batch_err)
					lmdb.batch_err = rc;
				/* the open batch went with it */
				lmdb_health_lost(lmdb_batch_no);
			}
		}
		if (lost)
			lmdb_health_lost(aw.flight_no);
	}
	sbuf_recycle(&aw.flight, (size_t)1 << 24);
	lmdb_rtxn_reset();		/* the next read sees the flight */
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
void lmdb_queue_settle(void)
{
	struct sbuf q;

	aw.trailing = false;
	store_writer_join();
	if (!aw.queue.len)
		return;
	q = aw.queue;
	sbuf_init(&aw.queue);
	if (queue_to_batch(&q))
		lmdb_health_lost(lmdb_batch_no);
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
	if (!aw.busy && !aw.queue.len && !lmdb.wtxn) {
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

	if (aw.running || !lmdb.env)
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
	lmdb_queue_settle();		/* what is left joins the batch */
	sbuf_free(&aw.flight);
}

int store_commit_async(bool *handed)
{
	int rc;

	*handed = false;
	if (!aw.running || !aw.queue.len)
		return store_commit();
	store_writer_join();
	unsigned long no = lmdb_batch_no;
	rc = lmdb_batch_finish();
	lmdb_map_grow_early();
	pthread_mutex_lock(&aw.mu);
	aw.flight_no = no;
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

bool store_pending(void)
{
	return lmdb.wtxn != NULL || aw.queue.len || store_writer_busy();
}

bool lmdb_queue_put(enum store_db db, const void *k, size_t klen,
		    const void *v, size_t vlen)
{
	struct journal_hdr h = { OP_PUT, (uint8_t)db, (uint32_t)klen,
				 (uint32_t)vlen };

	if (!aw.running || vlen > UINT32_MAX)
		return false;
	if (store_dbs[db].flags & STORE_DB_F_HANDOVER)
		aw.trailing = true;
	sbuf_reserve(&aw.queue, sizeof(h) + klen + vlen);
	sbuf_add(&aw.queue, &h, sizeof(h));
	sbuf_add(&aw.queue, k, klen);
	sbuf_add(&aw.queue, v, vlen);
	return true;
}

bool lmdb_queue_trailing(void)
{
	return aw.trailing;
}

void lmdb_queue_untrail(void)
{
	aw.trailing = false;
}

/* ---- the index job's engine ---- */

/* The engine the index job uses on the writer's thread: the writer's
 * transaction (aw.txn), which the job reads and writes through. */
static int wr_get(enum store_db db, const void *k, size_t klen,
		  struct sbuf *out)
{
	int rc = lmdb_get_txn(aw.txn, db, k, klen, out);

	/* no lmdb_err here: it logs, and the log is the loop's */
	return rc == MDB_NOTFOUND ? -ENOENT : rc ? -EIO : 0;
}

static int wr_put(enum store_db db, const void *k, size_t klen,
		  const void *v, size_t vlen)
{
	int rc = lmdb_put_txn(aw.txn, db, k, klen, v, vlen);

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
	return lmdb_scan_txn(aw.txn, db, lo, lolen, hi, hilen, reverse, fn, ctx);
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

