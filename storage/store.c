/*
 * store.c - the LMDB engine behind store.h: the environment, the batch
 * and map growth. The engine's operations are in store_lmdb.c, the
 * archive writer (hand-overs) in store_writer.c; store_lmdb.h is what
 * they share.
 *
 * Transactions: one write transaction (the batch, lmdb.wtxn) begun by the
 * first write and kept until store_commit(); one read-only transaction
 * (lmdb.rtxn) for reads while no batch is open, kept live as a snapshot
 * until store_end_read() resets it (mdb_txn_reset) and renewed by the next
 * read (mdb_txn_renew). The environment has MDB_NOTLS, so the two can
 * exist in one thread. Beginning a batch resets the snapshot: reads go
 * through the batch while it is open and must see our own commits after.
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
 * Room on disk: the data file is allocated (fallocate) to the whole map
 * before LMDB may use it, at open and at every growth. A disk without
 * room for a growth is then a map at its limit, which a write meets and
 * reports (-ENOSPC) while the batch is still whole, instead of a commit
 * that fails half-written and takes the batch with it. Where the disk
 * has less room than an old map, the map shrinks to what can be
 * allocated (never below the data). File systems without fallocate keep
 * the old behaviour.
 * Another process (starlingctl) may grow the map: a transaction begin or
 * renew then fails with MDB_MAP_RESIZED, and we adopt the size written in
 * the environment (mdb_env_set_mapsize(env, 0)) and retry once.
 *
 * Durability: commits are synced (no MDB_NOSYNC / MDB_NOMETASYNC), so a
 * committed batch survives a crash of the process or of the machine.
 */
#include "store_lmdb.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define STORE_MAP_INITIAL ((size_t)16 << 20)
#define STORE_RESERVE_STEP ((size_t)1 << 20)	/* smallest growth tried */
#define STORE_MAP_DEFAULT_MAX ((size_t)1 << 40)	/* map_max 0 */
#define STORE_GROW_PERCENT 80
#define STORE_MAXDBS 16		/* ours plus room for more */

struct lmdb_state lmdb;

/* The one translator of LMDB results: 0 or a negative errno, logged with
 * what we were doing (not for MDB_NOTFOUND, which is an answer). */
int lmdb_err(int rc, const char *what)
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
	if (lmdb_health_failing() && (e == ENOSPC || e == EIO))
		log_debug("store: %s: %s", what, mdb_strerror(rc));
	else
		log_error("store: %s: %s", what, mdb_strerror(rc));
	return -e;
}

/* ---- transactions ---- */

void lmdb_rtxn_reset(void)
{
	if (lmdb.rtxn_live) {
		mdb_txn_reset(lmdb.rtxn);
		lmdb.rtxn_live = false;
	}
}

/* Another process grew the map past ours: take its size. */
static int adopt_mapsize(void)
{
	MDB_envinfo info;
	int rc;

	store_writer_join();	/* no transaction of ours may be live */
	lmdb_rtxn_reset();
	rc = mdb_env_set_mapsize(lmdb.env, 0);
	if (rc == 0 && mdb_env_info(lmdb.env, &info) == 0)
		log_info("store: map resized by another process to %zu MiB",
			 info.me_mapsize >> 20);
	return rc;
}

/* The transaction reads go through: the batch, else the snapshot. */
int lmdb_read_txn(MDB_txn **out)
{
	int rc = 0;

	if (!lmdb.env)
		return -ENXIO;
	if (lmdb.wtxn) {
		*out = lmdb.wtxn;
		return 0;
	}
	for (int tries = 0; !lmdb.rtxn_live && tries < 2; tries++) {
		if (lmdb.rtxn)
			rc = mdb_txn_renew(lmdb.rtxn);
		else
			rc = mdb_txn_begin(lmdb.env, NULL, MDB_RDONLY, &lmdb.rtxn);
		if (rc == 0)
			lmdb.rtxn_live = true;
		else if (rc != MDB_MAP_RESIZED || (rc = adopt_mapsize()) != 0)
			break;
	}
	if (!lmdb.rtxn_live) {
		if (lmdb.rtxn)
			mdb_txn_abort(lmdb.rtxn);
		lmdb.rtxn = NULL;
		return lmdb_err(rc ? rc : MDB_MAP_RESIZED, "begin read");
	}
	*out = lmdb.rtxn;
	return 0;
}

static void map_usage(size_t *used, size_t *size)
{
	MDB_envinfo info;
	MDB_stat stat;

	mdb_env_info(lmdb.env, &info);
	mdb_env_stat(lmdb.env, &stat);
	*used = ((size_t)info.me_last_pgno + 1) * stat.ms_psize;
	*size = info.me_mapsize;
}

/* The room kept beyond the map for commits: LMDB's commit may need pages
 * of its own (the free list's records) after every write of the batch
 * fitted, and a commit that fails loses the batch. Writes stop at the
 * map; a commit that does not fit may grow the map into the headroom,
 * which the disk has already given (and storage_max_size allows). */
static size_t headroom(size_t size)
{
	return MAX((size_t)1 << 20, size / 16);
}

/* The largest map writes may use: storage_max_size less its headroom. */
static size_t soft_max(void)
{
	size_t h = headroom(lmdb.map_max);

	return lmdb.map_max > 2 * h ? lmdb.map_max - h : lmdb.map_max / 2;
}

/* Allocates the data file's blocks for a map of size and its headroom:
 * 0, -ENOSPC when the disk has no room, 0 too when the file system
 * cannot allocate ahead (then LMDB meets a full disk at the commit, as
 * it would without this). */
static int reserve(size_t size)
{
	size_t want = MIN(size + headroom(size), MAX(size, lmdb.map_max));
	int fd;

	if (mdb_env_get_fd(lmdb.env, &fd) != 0)
		return 0;
	if (fallocate(fd, 0, 0, (off_t)want) == 0) {
		lmdb.reserved = MAX(lmdb.reserved, want);
		return 0;
	}
	if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
		return -ENOSPC;
	lmdb.reserved = SIZE_MAX;	/* no allocation ahead here */
	return 0;
}

/* The largest map between lo and hi (multiples of the step) the disk has
 * room for, with its headroom; lo when none bigger. */
static size_t reserve_most(size_t lo, size_t hi)
{
	while (hi - lo > STORE_RESERVE_STEP) {
		size_t mid = lo + (hi - lo) / 2;
		mid -= mid % STORE_RESERVE_STEP;
		if (mid <= lo)
			break;
		if (reserve(mid) == 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Grows the map by doubling (at least to need bytes), up to the soft
 * limit and to what the disk has room for. No transaction of ours may be
 * live. MDB_MAP_FULL when it cannot grow. */
int lmdb_map_grow(size_t need)
{
	size_t used, size, next, top = soft_max();
	int rc;

	map_usage(&used, &size);
	if (size >= top)
		return MDB_MAP_FULL;
	next = size;
	do
		next = next > top / 2 ? top : next * 2;
	while (next < need && next < top);
	if (reserve(next) != 0) {
		size_t most = reserve_most(size, next - next % STORE_RESERVE_STEP);
		if (most < size + STORE_RESERVE_STEP) {
			log_debug("store: no room on disk to grow the map past "
				  "%zu MiB", size >> 20);
			return MDB_MAP_FULL;
		}
		next = most;
	}
	lmdb_rtxn_reset();
	rc = mdb_env_set_mapsize(lmdb.env, next);
	if (rc == 0)
		log_info("store: map grown from %zu to %zu MiB (%zu MiB used)",
			 size >> 20, next >> 20, used >> 20);
	return rc;
}

/* A commit did not fit: the map takes the headroom the disk gave it (up
 * to storage_max_size). MDB_MAP_FULL when there is none left. */
static int map_into_headroom(void)
{
	size_t used, size, next;
	int rc;

	map_usage(&used, &size);
	next = MIN(lmdb.reserved, lmdb.map_max);
	if (next <= size)
		return MDB_MAP_FULL;
	lmdb_rtxn_reset();
	rc = mdb_env_set_mapsize(lmdb.env, next);
	if (rc == 0)
		log_info("store: a commit took the map's headroom: %zu to %zu "
			 "MiB", size >> 20, next >> 20);
	return rc;
}

/* At open: the map's blocks are allocated, or the map shrinks to what the
 * disk has room for (not below the data). */
static void reserve_map(void)
{
	size_t used, size, most;

	map_usage(&used, &size);
	if (size > soft_max() && soft_max() >= used &&
	    mdb_env_set_mapsize(lmdb.env, soft_max()) == 0)
		map_usage(&used, &size);
	if (reserve(size) == 0)
		return;
	used += STORE_RESERVE_STEP - used % STORE_RESERVE_STEP;
	most = reserve_most(MIN(used, size), size - size % STORE_RESERVE_STEP);
	if (most < size && mdb_env_set_mapsize(lmdb.env, most) == 0)
		log_warn("store: the disk has room for %zu MiB only: map of "
			 "%zu MiB shrunk to that", most >> 20, size >> 20);
}

static int wtxn_begin(void)
{
	int rc = 0;

	lmdb_rtxn_reset();
	for (int tries = 0; tries < 2; tries++) {
		rc = mdb_txn_begin(lmdb.env, NULL, 0, &lmdb.wtxn);
		if (rc != MDB_MAP_RESIZED || (rc = adopt_mapsize()) != 0)
			break;
	}
	if (rc)
		lmdb.wtxn = NULL;
	return rc;
}

static void wtxn_abort(void)
{
	if (lmdb.wtxn)
		mdb_txn_abort(lmdb.wtxn);
	lmdb.wtxn = NULL;
}

void lmdb_map_grow_early(void)
{
	size_t used, size;

	map_usage(&used, &size);
	if (used / STORE_GROW_PERCENT > size / 100 && size < soft_max()) {
		int rc = lmdb_map_grow(used * 2);
		if (rc && rc != MDB_MAP_FULL)
			lmdb_err(rc, "grow map");	/* go on at this size */
	}
}

/* Opens the batch if none is open, growing the map first when it is
 * nearly full. An LMDB code. */
static int batch_begin(void)
{
	if (lmdb.wtxn)
		return 0;
	store_writer_join();
	lmdb_map_grow_early();
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
	MDB_val k = { klen, (void *)kp };

	switch (op) {
	case OP_PUT:
		return lmdb_put_txn(txn, (enum store_db)db, kp, klen, vp, vlen);
	case OP_DEL:
		return mdb_del(txn, lmdb.dbi[db], &k, NULL);
	case OP_DEL_PREFIX:
		return del_prefix(txn, lmdb.dbi[db], &k);
	}
	return EINVAL;
}

static void journal_add(int op, int db, const void *k, size_t klen,
			const void *v, size_t vlen)
{
	struct journal_hdr h = { (uint8_t)op, (uint8_t)db, (uint32_t)klen,
				 (uint32_t)vlen };

	sbuf_add(&lmdb.journal, &h, sizeof(h));
	sbuf_add(&lmdb.journal, k, klen);
	sbuf_add(&lmdb.journal, v, vlen);
}

/* Begins a batch and applies the journal to it. An LMDB code; on failure
 * no batch is open. */
static int batch_rebuild(void)
{
	size_t off = 0;
	int rc = wtxn_begin();

	while (rc == 0 && off < lmdb.journal.len) {
		struct journal_hdr h;
		const char *p = lmdb.journal.p + off;

		memcpy(&h, p, sizeof(h));
		p += sizeof(h);
		rc = op_apply(lmdb.wtxn, h.op, h.db, p, h.klen, p + h.klen, h.vlen);
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
	sbuf_reset(&lmdb.journal);
	lmdb_health_lost(lmdb_batch_no);
	int e = lmdb_err(rc, "batch lost");
	if (!lmdb.batch_err)
		lmdb.batch_err = e;
	lmdb_health_fail(e, "commit");
}

/* Commits the batch, growing the map and replaying the journal while the
 * commit does not fit. An LMDB code; no batch is open afterwards. */
int lmdb_batch_commit(void)
{
	int rc;

	for (;;) {
		rc = mdb_txn_commit(lmdb.wtxn);
		lmdb.wtxn = NULL;
		if (rc != MDB_MAP_FULL ||
		    (lmdb_map_grow(0) != 0 && map_into_headroom() != 0))
			break;
		rc = batch_rebuild();
		if (rc)
			break;
	}
	sbuf_reset(&lmdb.journal);
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
		if (lmdb_map_grow(0) != 0)
			break;
		rc = batch_rebuild();
		if (rc == 0)
			rc = op_apply(lmdb.wtxn, op, db, k, klen, v, vlen);
		else if (rc != MDB_MAP_FULL) {
			batch_lost(rc);
			return rc;
		}
	}
	if (rc != MDB_MAP_FULL && rc != MDB_TXN_FULL)
		return rc;
	wtxn_abort();
	if (lmdb.journal.len) {
		int r2 = batch_rebuild();
		if (r2 == 0)
			r2 = lmdb_batch_commit();
		if (r2) {
			batch_lost(r2);
			return rc;
		}
	}
	rc = wtxn_begin();
	if (rc == 0)
		rc = op_apply(lmdb.wtxn, op, db, k, klen, v, vlen);
	return rc;
}

/* Runs one write operation in the batch and journals it. */
int lmdb_batch_op(int op, int db, const void *k, size_t klen,
		  const void *v, size_t vlen, const char *what)
{
	int rc;

	if (!lmdb.env)
		return -ENXIO;
	if (klen > UINT32_MAX || vlen > UINT32_MAX)
		return -E2BIG;
	rc = batch_begin();
	if (rc)
		return lmdb_err(rc, "begin write");
	rc = op_apply(lmdb.wtxn, op, db, k, klen, v, vlen);
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		rc = batch_recover(rc, op, db, k, klen, v, vlen);
	if (rc == 0 || rc == MDB_NOTFOUND) {
		journal_add(op, db, k, klen, v, vlen);
		lmdb_health_wrote();
	} else {
		/* The transaction may be unusable now: rebuild it without
		 * the failed operation. */
		wtxn_abort();
		if (lmdb.journal.len) {
			int r2 = batch_rebuild();
			if (r2)
				batch_lost(r2);
		}
	}
	rc = lmdb_err(rc, what);
	lmdb_health_fail(rc, what);
	return rc;
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
	int rc = mdb_txn_begin(lmdb.env, NULL, 0, &txn);

	if (rc)
		return rc;
	for (int i = 0; i < STORE_NDB && rc == 0; i++)
		rc = mdb_dbi_open(txn, store_dbs[i].name, MDB_CREATE, &lmdb.dbi[i]);
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
	if (lmdb.env)
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
	lmdb.map_max = map_max ? map_max : STORE_MAP_DEFAULT_MAX;
	lmdb.reserved = 0;
	lmdb_health_reset();
	rc = mdb_env_create(&lmdb.env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(lmdb.env, STORE_MAXDBS);
	if (rc == 0 && fresh)
		rc = mdb_env_set_mapsize(lmdb.env, MIN(STORE_MAP_INITIAL, soft_max()));
	if (rc == 0)
		rc = mdb_env_open(lmdb.env, dir, MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_reader_check(lmdb.env, &dead);
	if (rc == 0)
		rc = open_dbs();
	if (rc) {
		if (lmdb.env)
			mdb_env_close(lmdb.env);
		lmdb.env = NULL;
		return lmdb_err(rc, dir);
	}
	reserve_map();
	lmdb.max_key = (size_t)mdb_env_get_maxkeysize(lmdb.env);
	sbuf_init(&lmdb.journal);
	lmdb.batch_err = 0;
	if (dead)
		log_info("store: cleared %d stale readers", dead);
	return 0;
}

void store_close(void)
{
	store_gen++;
	store_archive_usage_forget(NULL, NULL);
	store_pg_close();
	if (!lmdb.env)
		return;
	store_writer_stop();
	int rc = store_commit();
	if (rc)
		log_error("store: last batch not saved: %s", strerror(-rc));
	if (lmdb.rtxn)
		mdb_txn_abort(lmdb.rtxn);
	lmdb.rtxn = NULL;
	lmdb.rtxn_live = false;
	mdb_env_close(lmdb.env);
	lmdb.env = NULL;
	sbuf_free(&lmdb.journal);
}

bool store_is_open(void)
{
	return lmdb.env != NULL;
}

static bool shared, not_indexer;

void store_set_shared(bool indexer)
{
	shared = true;
	not_indexer = !indexer;
}

bool store_shared(void)
{
	return shared;
}

bool store_indexer(void)
{
	return !not_indexer;
}

int store_commit(void)
{
	lmdb_queue_settle();
	return lmdb_batch_finish();
}

int lmdb_batch_finish(void)
{
	int rc = lmdb.batch_err;
	unsigned long no = lmdb_batch_no++;
	/* PostgreSQL's batch ends with this one, under its number */
	int pr = store_pg_batch_end(no);

	if (pr)
		lmdb_health_lost(no);
	if (pr && !rc)
		rc = pr;
	lmdb.batch_err = 0;
	if (!lmdb.wtxn)
		return rc;
	int r2 = lmdb_batch_commit();
	if (r2) {
		r2 = lmdb_err(r2, "commit");
		lmdb_health_fail(r2, "commit");
		lmdb_health_lost(no);
		if (!rc)
			rc = r2;
	}
	return rc;
}

unsigned store_gen;

void store_end_read(void)
{
	lmdb_rtxn_reset();
	store_gen++;
}

