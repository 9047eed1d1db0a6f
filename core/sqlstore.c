/* sqlstore.c - the config's PostgreSQL database (see sqlstore.h). */
#include "sqlstore.h"
#include "config.h"
#include "log.h"
#include "store.h"

#include <stdio.h>
#include <strings.h>

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
