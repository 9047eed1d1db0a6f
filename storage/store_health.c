/*
 * store_health.c - what the LMDB engine knows of its own health (store.h,
 * "health"): the batch numbers, the batches lost, and the failing state in
 * which puts are refused at once until a probe write succeeds.
 *
 * Why refuse instead of trying: once the disk or storage_max_size is
 * full, every put that is tried aborts and replays the batch and commits
 * what came before it early (store.c, batch_recover), a synced commit per
 * failing write, which would stall every session for nothing. A refusal
 * costs nothing; the server probes with a backoff and takes writes again
 * by itself when there is room.
 */
#include "store_lmdb.h"
#include "log.h"

#include <errno.h>
#include <string.h>

#define LOST_MAX 16
#define PROBE_BYTES 1024	/* in a leaf page: freed pages serve it */
/* Writes are taken again only with this much room: a store that has just
 * a page or two free would take them and refuse them by turns. */
#define PROBE_ROOM ((size_t)512 << 10)

static struct store_health health;
static unsigned long writes;
static unsigned long lost[LOST_MAX];
static size_t n_lost;

unsigned long lmdb_batch_no = 1;

const struct store_health *store_health(void)
{
	return &health;
}

unsigned long store_batch_no(void)
{
	return lmdb_batch_no;
}

unsigned long store_writes(void)
{
	return writes;
}

void lmdb_health_reset(void)
{
	memset(&health, 0, sizeof(health));
	n_lost = 0;
}

void lmdb_health_wrote(void)
{
	writes++;
}

void store_wrote(void)
{
	writes++;
}

/* Whether rc means there is no room or the disk fails: the errors a
 * retry of the same write would meet again. */
static bool lasting(int rc)
{
	return rc == -ENOSPC || rc == -EIO || rc == -EDQUOT || rc == -EROFS;
}

bool lmdb_health_failing(void)
{
	return health.err != 0;
}

int lmdb_health_refuse(void)
{
	if (!health.err)
		return 0;
	health.refused++;
	return health.err;
}

void lmdb_health_fail(int rc, const char *why)
{
	if (!lasting(rc) || health.err)
		return;
	health.err = rc;
	health.why = why;
	health.since = now_wall();
	health.failures++;
	log_error("store: writes fail (%s: %s): refusing them until a probe "
		  "write succeeds", why, strerror(-rc));
}

void lmdb_health_lost(unsigned long no)
{
	/* the usage this process knows may count what was lost */
	store_archive_usage_forget(NULL, NULL);
	for (size_t i = 0; i < n_lost; i++)
		if (lost[i] == no)
			return;
	if (n_lost == LOST_MAX) {
		memmove(lost, lost + 1, sizeof(lost[0]) * (LOST_MAX - 1));
		n_lost--;
	}
	lost[n_lost++] = no;
	health.lost++;
	log_error("store: the writes of batch %lu are lost; whoever made them "
		  "is told", no);
}

size_t store_take_lost(unsigned long *nos, size_t max)
{
	size_t n = MIN(n_lost, max);

	memcpy(nos, lost + (n_lost - n), n * sizeof(*nos));
	n_lost = 0;
	return n;
}

/* One write transaction of the probe: puts the probe record (del false)
 * or deletes it, and commits. An LMDB code. */
static int probe_txn(bool del)
{
	static const char key[] = "\0starling-probe";
	static char val[PROBE_BYTES];
	MDB_val k = { sizeof(key) - 1, (void *)key }, v = { sizeof(val), val };
	MDB_txn *txn;
	int rc;

	for (int tries = 0; tries < 2; tries++) {
		lmdb_rtxn_reset();
		rc = mdb_txn_begin(lmdb.env, NULL, 0, &txn);
		if (rc)
			return rc;
		rc = del ? mdb_del(txn, lmdb.dbi[STORE_KEYVAL], &k, NULL)
			 : mdb_put(txn, lmdb.dbi[STORE_KEYVAL], &k, &v, 0);
		if (rc == 0 || rc == MDB_NOTFOUND)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc != MDB_MAP_FULL || lmdb_map_grow(0) != 0)
			break;
	}
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Bytes the map has for new writes: its pages never used, and the pages
 * on LMDB's free list (the free DB, dbi 0: each record a count and then
 * that many page numbers). */
static size_t room(void)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t pages = 0;

	if (mdb_env_info(lmdb.env, &info) || mdb_env_stat(lmdb.env, &st))
		return 0;
	if (mdb_txn_begin(lmdb.env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (mdb_cursor_open(txn, 0, &cur) == 0) {
		while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t))
				pages += *(const size_t *)v.mv_data;
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	size_t used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
	return pages * st.ms_psize +
	       (info.me_mapsize > used ? info.me_mapsize - used : 0);
}

int store_probe(void)
{
	int rc;

	if (!lmdb.env)
		return -ENXIO;
	if (!health.err)
		return 0;
	if (lmdb.wtxn)
		return -EBUSY;
	store_writer_join();
	lmdb_rtxn_reset();
	lmdb_map_grow_early();
	if (room() < PROBE_ROOM && (lmdb_map_grow(0) != 0 || room() < PROBE_ROOM)) {
		log_debug("store: probe: %zu KiB free", room() >> 10);
		return -ENOSPC;
	}
	rc = probe_txn(false);
	if (rc == 0)
		rc = probe_txn(true);
	if (rc) {
		log_debug("store: probe write: %s", mdb_strerror(rc));
		return rc == MDB_MAP_FULL ? -ENOSPC : -EIO;
	}
	log_warn("store: writes succeed again after %.0f s (%lu refused, "
		 "%lu batches lost)", now_wall() - health.since, health.refused,
		 health.lost);
	health.err = 0;
	health.why = NULL;
	health.since = now_wall();
	return 0;
}
