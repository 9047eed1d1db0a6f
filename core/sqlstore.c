/* sqlstore.c - the config's PostgreSQL database (see sqlstore.h). */
#include "sqlstore.h"
#include "config.h"
#include "log.h"
#include "store.h"

#include <ev.h>
#include <stdio.h>
#include <strings.h>

/* The connection's socket on the loop (store_pg_fd), and a timer that
 * has a lost connection made again (store_pg_maintain). */
static struct ev_loop *sql_loop;
static ev_io sql_io;
static ev_timer sql_timer;

/* Adds key='value' to conninfo, quoted as libpq wants. */
static void add_param(struct sbuf *ci, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	sbuf_printf(ci, "%s%s='", ci->len ? " " : "", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\'' || *p == '\\')
			sbuf_addc(ci, '\\');
		sbuf_addc(ci, *p);
	}
	sbuf_addc(ci, '\'');
}

/* The conninfo of the sql option's table: 0, or -1 (logged). */
static int table_conninfo(struct sbuf *ci)
{
	const char *driver = config_field_string("*", "sql", "driver");
	double port;

	if (driver && strcasecmp(driver, "PostgreSQL") != 0) {
		log_error("sql: driver \"%s\" is not supported (only "
			  "\"PostgreSQL\")", driver);
		return -1;
	}
	add_param(ci, "dbname", config_field_string("*", "sql", "database"));
	add_param(ci, "user", config_field_string("*", "sql", "username"));
	add_param(ci, "password", config_field_string("*", "sql", "password"));
	add_param(ci, "host", config_field_string("*", "sql", "host"));
	if (config_field_number("*", "sql", "port", &port)) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", (int)port);
		add_param(ci, "port", buf);
	} else {
		add_param(ci, "port", config_field_string("*", "sql", "port"));
	}
	add_param(ci, "application_name", "starling");
	return 0;
}

/* The engine name the config gives the accounts store (NULL: default). */
static const char *accounts_engine_name(void)
{
	enum config_kind k = config_kind("*", "storage", NULL);

	if (k == CONFIG_STRING)
		return config_string("*", "storage", NULL);
	if (k == CONFIG_TABLE && config_field_string("*", "storage", "accounts"))
		return config_field_string("*", "storage", "accounts");
	return config_string("*", "default_storage", NULL);
}

int sqlstore_open(void)
{
	enum config_kind k = config_kind("*", "sql", NULL);
	struct sbuf ci;
	int rc = 0;

	if (k == CONFIG_UNSET)
		return 0;
	sbuf_init(&ci);
	if (k == CONFIG_STRING)
		sbuf_adds(&ci, config_string("*", "sql", ""));
	else if (k == CONFIG_TABLE)
		rc = table_conninfo(&ci);
	else
		log_error("sql: a table or a connection string, please");
	if (k != CONFIG_STRING && k != CONFIG_TABLE)
		rc = -1;
	if (rc == 0 && store_pg_open(ci.p ? ci.p : "") != 0)
		rc = -1;
	sbuf_free(&ci);
	if (rc)
		return -1;
	const char *acc = accounts_engine_name();
	if (acc && store_engine_find(acc) == &store_pg) {
		store_set_accounts_engine(&store_pg);
		log_info("sql: accounts are kept in postgresql");
	}
	return 0;
}

/* Watches what the engine wants now: its socket may change (a new
 * connection), and so may the events (output libpq could not write). */
void sqlstore_watch(void)
{
	int events, fd;

	if (!sql_loop)
		return;
	fd = store_pg_fd(&events);
	int want = (events & 1 ? EV_READ : 0) | (events & 2 ? EV_WRITE : 0);
	if (ev_is_active(&sql_io) && fd == sql_io.fd &&
	    want == (sql_io.events & (EV_READ | EV_WRITE)))
		return;
	ev_io_stop(sql_loop, &sql_io);
	if (fd < 0 || !want)
		return;
	ev_io_set(&sql_io, fd, want);
	ev_io_start(sql_loop, &sql_io);
}

static void on_sql_io(struct ev_loop *loop, ev_io *w, int revents)
{
	store_pg_io();
	sqlstore_watch();
}

static void on_sql_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	store_pg_maintain();
	sqlstore_watch();
}

void sqlstore_start(struct ev_loop *loop)
{
	if (!store_pg_is_open())
		return;
	sql_loop = loop;
	store_pg_set_async(true);
	ev_init(&sql_io, on_sql_io);
	ev_timer_init(&sql_timer, on_sql_timer, 0.25, 0.25);
	ev_timer_start(loop, &sql_timer);
	ev_unref(loop);		/* the timer keeps nothing running */
	sqlstore_watch();
}

void sqlstore_stop(void)
{
	if (!sql_loop)
		return;
	store_pg_set_async(false);
	ev_io_stop(sql_loop, &sql_io);
	ev_ref(sql_loop);
	ev_timer_stop(sql_loop, &sql_timer);
	sql_loop = NULL;
}
