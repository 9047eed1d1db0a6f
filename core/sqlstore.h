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
 */
#ifndef STARLING_SQLSTORE_H
#define STARLING_SQLSTORE_H

/* Opens the database when the config has a sql option (nothing to do
 * otherwise): 0, or -1 with the reason logged. */
int sqlstore_open(void);

#endif
