/*
 * sqlstore.h - the PostgreSQL database of the config, opened as the
 * "sql" storage engine (storage/store_pg.c) by the server and by
 * starlingctl alike.
 *
 * Options (Prosody's names):
 *   sql = { driver = "PostgreSQL", database = "starling", username =,
 *           password =, host =, port = }
 *   sql = "postgresql://user@host:port/db"    -- a libpq URI or conninfo
 *   storage = "sql" / default_storage = "sql" / storage = { name = "sql" }
 * A store whose engine is "sql" (or "postgresql") lives in the database;
 * accounts (with the server's secret and FAST tokens) do when the engine
 * the config gives the store "accounts" is sql.
 *
 * On the server's loop the connection is nonblocking (storage/store_pg.h):
 * writes and commits never wait; reads wait for their answer.
 */
#ifndef STARLING_SQLSTORE_H
#define STARLING_SQLSTORE_H

/* Opens the database when the config has a sql option (nothing to do
 * otherwise): 0, or -1 with the reason logged. */
int sqlstore_open(void);

/* The server's loop (after sqlstore_open): the connection's answers are
 * read as they come, commits are not waited for (the pipeline holds the
 * output they cover), a lost connection is made again. stop: back to
 * waiting (the last commits at shutdown). */
struct ev_loop;
void sqlstore_start(struct ev_loop *loop);
void sqlstore_stop(void);
/* After the engine was used: the loop's watcher follows its socket. */
void sqlstore_watch(void);

#endif
