/*
 * store.h - storage: ordered records in engines, and the record layouts
 * of accounts, keyval, map and archive stores on top of them.
 *
 * engine:  where records live. "lmdb" (store.c, store_lmdb.c,
 *          store_writer.c): one LMDB environment in data_path, durable.
 *          "memory" (store_mem.c): this process only, gone at exit, for
 *          tests and data that need not persist. Both keep the same
 *          sorted key spaces, so every layer above behaves the same on
 *          either; the config picks one per store.
 * dbs:     the key spaces of an engine: "accounts", "keyval", "map", and
 *          for archives "archive" (items by time), "archive_with" (index
 *          by the 'with' of an item), "archive_id" (index by item id) and
 *          "archive_meta" (how far each archive store's 'with' index
 *          reaches; keyed host \0 store, no user). Engines know of a db
 *          only its name and flags (store_dbs[]).
 * store:   a handle (struct store): engine, host, store name and kind
 *          (accounts, keyval, map, archive), opened once with store_init
 *          and passed to every record and archive call.
 * key:     host \0 user \0 store [\0 mapkey]; every record of a user sits
 *          under the prefix host \0 user \0, so purging a user is one
 *          range delete per db. "accounts" keys are host \0 user. Archive
 *          layouts are in store_archive.c.
 * batch:   LMDB writes go into one write transaction that stays open until
 *          store_commit(); the server commits once per loop iteration,
 *          before it writes anything to a socket, so nothing is
 *          acknowledged before it is on disk. Reads see the open batch.
 *          Memory writes are applied at once.
 * user "": the data of the host itself.
 *
 * Other processes (starlingctl) may use the same LMDB environment at the
 * same time; LMDB serialises writers.
 */
#ifndef STARLING_STORE_H
#define STARLING_STORE_H

#include "util.h"

enum store_db {
	STORE_ACCOUNTS, STORE_KEYVAL, STORE_MAP,
	STORE_ARCHIVE, STORE_ARCHIVE_WITH, STORE_ARCHIVE_ID,
	STORE_ARCHIVE_META, STORE_ARCHIVE_USAGE,
	STORE_NDB
};

/* What engines know of a db: its name and how it is written. */
#define STORE_DB_F_HANDOVER 0x1	/* puts may be committed later, by the
				 * LMDB writer's thread (store_writer.c);
				 * other calls on the db wait for them */
#define STORE_DB_F_HOSTWIDE 0x2	/* keys start host \0, no user: a user's
				 * purge leaves the db alone */
#define STORE_DB_F_COUNTER 0x4	/* a put adds: its value (int64s, little-
				 * endian) is added to the record's, term
				 * by term (a missing record or term: 0);
				 * store_counter_add does the sum */
#define STORE_DB_F_TRAILS 0x8	/* a put goes where the last write to a
				 * STORE_DB_F_HANDOVER db went (queued right
				 * behind a queued put, else into the
				 * batch), so it commits with the write it
				 * accounts for; other calls on the db wait
				 * for the writer as on a HANDOVER db */

struct store_db_info {
	const char *name;
	unsigned flags;			/* STORE_DB_F_* */
};

/* Every db, by enum store_db (store_records.c). */
extern const struct store_db_info store_dbs[STORE_NDB];

/* A put to a STORE_DB_F_COUNTER db: the record old (oldlen bytes, or
 * NULL) plus the terms of add, into out (STORE_COUNTER_MAX bytes: a
 * counter has at most 8 terms). Returns its length. */
#define STORE_COUNTER_MAX 64
size_t store_counter_add(void *out, const void *old, size_t oldlen,
			 const void *add, size_t addlen);

/* The longest key any engine takes (LMDB's limit), so data moves between
 * engines; longer keys are -ENAMETOOLONG. */
#define STORE_KEY_MAX 511

/* ---- engines ---- */

/* Called for each record of a scan, with borrowed bytes valid until it
 * returns. It may read (engine get) but not write. Returns 0 to go on, 1
 * to stop, or a negative error that ends the scan and is returned. */
typedef int (*store_scan_fn)(void *ctx, const void *k, size_t klen,
			     const void *v, size_t vlen);

/* The operations of an engine on raw keys. All return 0 or -errno
 * (-ENOENT: no such record; -ENXIO: the engine is not open). */
struct store_engine {
	const char *name;
	int (*get)(enum store_db db, const void *k, size_t klen,
		   struct sbuf *out);
	int (*put)(enum store_db db, const void *k, size_t klen,
		   const void *v, size_t vlen);
	int (*del)(enum store_db db, const void *k, size_t klen);
	/* Deletes every key that starts with the klen bytes of k. */
	int (*del_prefix)(enum store_db db, const void *k, size_t klen);
	/* Calls fn for each record with lo <= key < hi, ascending (or
	 * descending when reverse). */
	int (*scan)(enum store_db db, const void *lo, size_t lolen,
		    const void *hi, size_t hilen, bool reverse,
		    store_scan_fn fn, void *ctx);
	/* Used on the archive writer's thread: no caches of the loop's. */
	bool own_thread;
};

extern const struct store_engine store_lmdb;	/* store_lmdb.c */
extern const struct store_engine store_memory;	/* store_mem.c */
extern const struct store_engine store_pg;	/* store_pg.c */

/* An engine by config name: "lmdb" (also "internal", Prosody's name for
 * its default), "memory", "sql" (also "postgresql": only once
 * store_pg_open succeeded); NULL when unknown. */
const struct store_engine *store_engine_find(const char *name);

/* Frees everything the memory engine holds (tests; exit). */
void store_memory_clear(void);

/* ---- the PostgreSQL database (store_pg.c) ----
 *
 * Its batch is committed by store_commit() and store_commit_async()
 * with LMDB's, under the same batch number (a failed commit loses it:
 * store_take_lost). */

/* Connects (conninfo: libpq's "key=value ..." or a postgresql:// URI)
 * and makes the tables when missing. 0 or -errno (logged). */
int store_pg_open(const char *conninfo);
bool store_pg_is_open(void);
/* Commits the open batch and waits for it and every commit before it:
 * 0, or the error of a write of it or of the commit (rolled back). */
int store_pg_commit(void);
/* The batch no ends (lmdb_batch_finish): its commit is sent; waited for
 * unless async. 0, or -EIO when it is lost already (async: a loss found
 * later is reported under no, store_take_lost). */
int store_pg_batch_end(unsigned long no);
/* The server's loop: batch ends do not wait (pipeline.c holds the
 * output until store_pg_flight() is false). */
void store_pg_set_async(bool on);
/* A commit is sent and not answered yet. */
bool store_pg_flight(void);
/* Writes are sent that no commit covers yet. */
bool store_pg_pending(void);
/* For the loop's watcher: the socket (-1: none now) and the events
 * wanted (1 readable, 2 writable, or both). */
int store_pg_fd(int *events);
/* The socket is ready: answers are handled, output flushed, a
 * connection under way goes on. */
void store_pg_io(void);
/* Now and then: a lost connection is made again when its wait is over
 * (from 0.5 s, doubling up to 30 s). */
void store_pg_maintain(void);
/* Whether this process runs the archive index job on PostgreSQL: one
 * node at a time does (an advisory lock its session holds; another node
 * takes it when that one dies). Asked once per step of the job. */
bool store_pg_indexer(void);
/* Deletes every record of every db (tests). */
int store_pg_clear(void);
void store_pg_close(void);

/* The engine of accounts, of the server's secret and of FAST tokens:
 * LMDB unless the config puts accounts on PostgreSQL (shared by every
 * node of a cluster). */
const struct store_engine *store_accounts_engine(void);
void store_set_accounts_engine(const struct store_engine *e);

/* ---- the LMDB environment ---- */

/* Opens (creating dir and the environment when missing). map_max is the
 * largest map size in bytes the environment may grow to. 0 or -errno. */
int store_open(const char *dir, size_t map_max);
/* Commits what is pending, then closes. */
void store_close(void);
bool store_is_open(void);
/* Several server processes write the environment (the workers of one
 * server): what this one keeps in memory of the store's state that the
 * others change (archive usage) is read from the store each time, and
 * only the one that is the indexer runs the archive index job. */
void store_set_shared(bool indexer);
bool store_shared(void);
bool store_indexer(void);

/* Commits the open batch (fsynced). 0, or a negative error (logged; the
 * batch is lost and the error is returned to whoever asks next). */
int store_commit(void);
bool store_pending(void);

/* The archive writer (store_writer.c): puts to STORE_DB_F_HANDOVER dbs
 * (archive items) committed on a thread of their own. start: from now on (done is called on the
 * writer's thread whenever a hand-over is committed). stop: waits, ends
 * the thread; what is queued joins the batch (store_close stops it). */
int store_writer_start(void (*done)(void));
/* Asks for a step of the LMDB archives' index job on the writer's thread
 * (with the next hand-over, or one of its own when the loop has none
 * queued); returns what the last step returned. */
int store_writer_index(int64_t delay, size_t budget);
/* A debug line from code that runs on either thread: logged at once on
 * the loop's, else kept for the loop to log (store_writer_index). */
void store_log_debug(const struct store_engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void store_writer_stop(void);
/* Waits until the last hand-over is committed (then reads see it). */
void store_writer_join(void);
bool store_writer_busy(void);
/* store_commit, except that the queued appends go to the writer instead
 * (*handed): durable once it is done, not when this returns. */
int store_commit_async(bool *handed);
/* ---- health (store_health.c) ----
 *
 * batch number: the loop's batches are numbered; store_batch_no() is the
 *          one writes go into now, and each store_commit() or
 *          store_commit_async() ends it and opens the next. A hand-over
 *          keeps the number of the batch it was queued in.
 * lost:    a batch whose commit failed, or a hand-over the writer could
 *          not commit even when redone: what it covered is not on disk.
 *          store_take_lost() gives their numbers once, so the server can
 *          tell whoever wrote into them (they must never see an ack).
 * full:    after a write failed for want of room (the disk, or
 *          storage_max_size) or for an I/O error, puts are refused at
 *          once with that error (-ENOSPC, -EIO) instead of being tried:
 *          callers answer their clients with an error, and deletes still
 *          run (they may make room). store_probe() tries a small write
 *          and commit; when it succeeds writes are taken again. */
struct store_health {
	int err;			/* 0, or the -errno writes fail with */
	const char *why;		/* what failed, when err */
	double since;			/* wall clock of the last change */
	unsigned long refused;		/* puts refused while failing */
	unsigned long lost;		/* batches and hand-overs lost */
	unsigned long failures;		/* times the state went bad */
};

const struct store_health *store_health(void);
/* The number of the batch writes go into now. */
unsigned long store_batch_no(void);
/* How many writes (puts and deletes of the LMDB and PostgreSQL engines)
 * were taken so far: a caller compares two readings to learn whether it
 * wrote. store_wrote counts one of PostgreSQL's. */
unsigned long store_writes(void);
void store_wrote(void);
/* Fills nos with the numbers of batches lost since the last call (at
 * most max; older ones are dropped first). Returns how many. */
size_t store_take_lost(unsigned long *nos, size_t max);
/* While failing: a small write and commit. 0 when it succeeded (writes
 * are taken again), else the error. No batch may be open. */
int store_probe(void);

/* Ends the read snapshot so the next read sees other processes' writes. */
void store_end_read(void);
/* Bumped whenever what a cache of stored data saw may have changed under
 * it: a snapshot ended, an environment opened or closed, memory cleared. */
extern unsigned store_gen;

/* ---- handles (store_records.c) ---- */

/* What a store holds; each kind keeps its records in a db of its own
 * (archives in four). */
enum store_kind {
	STORE_KIND_ACCOUNTS,	/* credentials per user; no store names */
	STORE_KIND_KEYVAL,	/* one value per user */
	STORE_KIND_MAP,		/* values by key per user */
	STORE_KIND_ARCHIVE,	/* items in time order per user */
	STORE_NKIND
};

/* A store: opened once (store_init), passed to every call. host and name
 * are borrowed and must outlive the handle. name NULL: every store of
 * that kind on the host, which only store_users takes (accounts have no
 * name; it is ignored). */
struct store {
	const struct store_engine *engine;	/* static */
	const char *host;
	const char *name;
	enum store_kind kind;
};

/* Fills s: 0, or -EINVAL (no engine or host, an unknown kind, an empty
 * name). */
int store_init(struct store *s, const struct store_engine *e,
	       const char *host, const char *name, enum store_kind kind);
/* The kind's config name ("accounts", "keyval", "map", "archive"), and
 * back (-EINVAL when unknown). */
const char *store_kind_name(enum store_kind kind);
int store_kind_find(const char *name);

/* ---- records (store_records.c) ---- */

/* The record of user in an accounts, keyval or map store; key (klen
 * bytes, any) is the map key, NULL for the other kinds. -EINVAL for an
 * archive store, a nameless one, or a key where none fits. get: 0 or
 * -ENOENT; del: -ENOENT when there was none. */
int store_get(const struct store *s, const char *user, const char *key,
	      size_t klen, struct sbuf *out);
int store_put(const struct store *s, const char *user, const char *key,
	      size_t klen, const void *val, size_t len);
int store_del(const struct store *s, const char *user, const char *key,
	      size_t klen);

/* Calls fn for each distinct user of the host that has a record in the
 * store (in any store of the kind when it has no name), in byte order,
 * the host's own "" excluded. Stops when fn returns nonzero. fn may read
 * and write the store. */
int store_users(const struct store *s,
		int (*fn)(void *ctx, const char *user), void *ctx);

/* Calls fn for each key (and value) of user in a map store, in key
 * order; stops when fn returns nonzero. fn may read and write. */
int store_map_each(const struct store *s, const char *user,
		   int (*fn)(void *ctx, const char *key, size_t klen,
			     const void *val, size_t vlen), void *ctx);
/* Deletes key of every user of a map store, the host's own included
 * ("delete_all(key)"). */
int store_map_delete_key(const struct store *s, const char *key,
			 size_t klen);

/* Removes every record of host/user from every db of every engine (LMDB
 * when open, and memory), account and archives included. */
int store_purge_user(const char *host, const char *user);

/* ---- archives (store_archive*.c) ---- */

#define STORE_ID_MAX 255	/* bytes in an archive item id */
#define STORE_ID_GEN_LEN 15	/* length of a generated id */
#define STORE_WHEN_NOW INT64_MIN	/* append: the time of appending */

/* A place in an archive's order: (when, id). */
struct store_arch_pos {
	int64_t when;			/* microseconds since the epoch */
	const char *id;
	size_t id_len;
};

/* What find, delete and summary select. Times are microseconds since the
 * epoch, inclusive. after/before are exclusive positions (see
 * store_archive_locate); ids restricts to those items. limit counts in
 * the direction of the scan (newest first when reverse). */
struct store_arch_query {
	bool has_start, has_end;
	int64_t start, end;
	const char *with;		/* NULL: any */
	size_t with_len;
	const struct store_arch_pos *after, *before;	/* NULL: none */
	const char *const *ids;		/* NULL: any; else nids ids */
	const size_t *id_lens;
	size_t nids;
	bool has_limit;
	size_t limit;
	bool reverse;
};

/* One item as find hands it over, borrowed for the callback only. with
 * is NULL when the item has none. */
struct store_arch_item {
	int64_t when;
	const char *id;
	size_t id_len;
	const char *with;
	size_t with_len;
	const void *val;
	size_t val_len;
};

/* The calls below take an archive store (-EINVAL for any other, or one
 * without a name) and the user whose archive it is ("" the host's). */

/* Appends the item it: id NULL makes a new unique id, sortable by time of
 * appending; an id that exists replaces that item. when STORE_WHEN_NOW:
 * the time of appending (a made id's own time). with NULL: none. idout
 * (at least STORE_ID_MAX + 1 bytes, or NULL) gets the id, NUL-terminated. */
int store_archive_append(const struct store *s, const char *user,
			 const struct store_arch_item *it, char *idout);
/* The item with this id: fn is called once. -ENOENT when none. */
int store_archive_get(const struct store *s, const char *user,
		      const char *id, size_t id_len,
		      int (*fn)(void *ctx, const struct store_arch_item *it),
		      void *ctx);
/* Where the item with this id is: pos->id points to id. -ENOENT. */
int store_archive_locate(const struct store *s, const char *user,
			 const char *id, size_t id_len,
			 struct store_arch_pos *pos);
/* Calls fn for each item q selects, in order; fn returning nonzero stops
 * (a negative value is returned). fn may read but not write. total (if
 * not NULL) gets the number of items matching start, end, with and ids,
 * ignoring after, before and limit. */
int store_archive_find(const struct store *s, const char *user,
		       const struct store_arch_query *q,
		       int (*fn)(void *ctx, const struct store_arch_item *it),
		       void *ctx, size_t *total);
/* Deletes what q selects (keep_newest > 0: all but the newest that many
 * of them); *deleted gets the count. */
int store_archive_delete(const struct store *s, const char *user,
			 const struct store_arch_query *q, size_t keep_newest,
			 size_t *deleted);
/* Deletes every item older than before (user NULL: of every user, the
 * host's own included). */
int store_archive_trim(const struct store *s, const char *user,
		       int64_t before, size_t *deleted);
/* Per 'with' (items without one are not counted; no particular order):
 * the number of items q selects (its with, start and end apply) and the
 * times of the oldest and newest. */
int store_archive_summary(const struct store *s, const char *user,
			  const struct store_arch_query *q,
			  int (*fn)(void *ctx, const char *with, size_t wlen,
				    size_t count, int64_t first,
				    int64_t last), void *ctx);
/* Calls fn with the first microsecond of each UTC day that has items,
 * ascending. */
int store_archive_dates(const struct store *s, const char *user,
			int (*fn)(void *ctx, int64_t day), void *ctx);

/* ---- usage (store_archive_usage.c) ----
 *
 * usage:   how many items an archive holds and their bytes (an item's id,
 *          with and value as stored), kept in a counter record per
 *          archive that every append and delete adjusts in the same
 *          transaction as the item itself (on LMDB: the writer's
 *          hand-over for an append, the batch for a delete), so a crash
 *          leaves both or neither.
 * whole:   a counter record made by counting the archive; one that adds
 *          made from nothing (an archive written before the counter
 *          existed, or after a purge) is counted again when next read.
 * known:   this process keeps what it read and wrote of each archive's
 *          usage, so asking again costs a lookup and no storage read.
 *          Other processes' writes (starlingctl import) are seen at the
 *          next read that is not cached_only. */
struct store_arch_usage {
	uint64_t items;
	uint64_t bytes;
};

/* The archive's usage. cached_only: what this process knows, without
 * reading storage (-EAGAIN when it knows nothing yet); else read (and
 * counted again when not whole). */
int store_archive_usage(const struct store *s, const char *user,
			bool cached_only, struct store_arch_usage *u);
/* Deletes the oldest items until at most max_items remain and they hold
 * at most max_bytes (0: no limit on that). *deleted and *freed (either
 * may be NULL) get what went. */
int store_archive_shrink(const struct store *s, const char *user,
			 uint64_t max_items, uint64_t max_bytes,
			 size_t *deleted, uint64_t *freed);
/* Forgets what this process knows of the usage of host's archives of
 * user (NULL: of everything), after writes that bypass the archive
 * calls (a purge, a memory engine cleared, an environment closed). */
void store_archive_usage_forget(const char *host, const char *user);

/* The job that writes the with index of items appended as they passed
 * (store_archive_index.c): about budget items of it, on every engine, plus
 * twice the items deferred since the last step (up to 16 budgets), so
 * a pass keeps ahead of the traffic. A pass
 * over an archive store starts when its unindexed items span more than
 * delay (microseconds; and more than a second) beyond delay ago, and
 * indexes them up to delay ago (a negative delay: that far ahead, for
 * tests). Queries see every item at any time.
 * Returns 1 while a pass is under way (call again soon), 0 when idle, or
 * a negative error (the pass starts over later). */
int store_archive_index_step(int64_t delay, size_t budget);
/* The budget of a step: base, and twice what was deferred since the
 * last (so a pass outruns the traffic). */
size_t store_archive_index_budget(size_t base);
/* The pass under way on e's archives is void (its writes were lost): the
 * next step starts one over from where the index reaches. */
void store_archive_index_abandon(const struct store_engine *e);
/* A step of the job on one engine only, its pass ending no later than
 * target_max (the archive writer runs LMDB's this way, store_writer.c). */
int store_archive_index_step_on(const struct store_engine *e, int64_t delay,
				size_t budget, int64_t target_max);

#endif
