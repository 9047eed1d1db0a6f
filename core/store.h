/*
 * store.h - persistent storage on LMDB: one environment in data_path.
 *
 * dbs:     named LMDB databases, one per store kind: "accounts",
 *          "keyval", "map" (and "archive" later).
 * key:     host \0 user \0 store [\0 mapkey]; every record of a user sits
 *          under the prefix host \0 user \0, so purging a user is one
 *          range delete per db. "accounts" keys are host \0 user.
 * batch:   writes go into one write transaction that stays open until
 *          store_commit(); the server commits once per loop iteration,
 *          before it writes anything to a socket, so nothing is
 *          acknowledged before it is on disk. Reads see the open batch.
 *
 * Other processes (starlingctl) may use the same environment at the same
 * time; LMDB serialises writers.
 */
#ifndef STARLING_STORE_H
#define STARLING_STORE_H

#include "util.h"

enum store_db { STORE_ACCOUNTS, STORE_KEYVAL, STORE_MAP, STORE_NDB };

/* Opens (creating dir and the environment when missing). map_max is the
 * largest map size in bytes the environment may grow to. 0 or -errno. */
int store_open(const char *dir, size_t map_max);
/* Commits what is pending, then closes. */
void store_close(void);
bool store_is_open(void);

/* Commits the open batch (fsynced). 0, or a negative error (logged; the
 * batch is lost and the error is returned to whoever asks next). */
int store_commit(void);
bool store_pending(void);
/* Ends the read snapshot so the next read sees other processes' writes. */
void store_end_read(void);

/* Records by parts; mapkey NULL for keyval and accounts. */
int store_get(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len,
	      struct sbuf *out);			/* 0 or -ENOENT */
int store_put(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len,
	      const void *val, size_t len);
int store_del(enum store_db db, const char *host, const char *user,
	      const char *store, const char *mapkey, size_t mapkey_len);

/* Calls fn for each distinct user of host that has a record in db (for
 * keyval/map: in this store; store NULL = any). Stops when fn returns
 * nonzero. */
int store_users(enum store_db db, const char *host, const char *store,
		int (*fn)(void *ctx, const char *user), void *ctx);

/* Calls fn for each map key (and value) of (host, user, store). */
int store_map_each(const char *host, const char *user, const char *store,
		   int (*fn)(void *ctx, const char *key, size_t klen,
			     const void *val, size_t vlen), void *ctx);
/* Deletes every record of (host, store, mapkey) for all users
 * ("delete_all(key)"). */
int store_map_delete_key(const char *host, const char *store,
			 const char *mapkey, size_t mapkey_len);

/* Removes every record of host/user from every db, account included. */
int store_purge_user(const char *host, const char *user);

#endif
