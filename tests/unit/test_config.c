/*
 * test_config.c - the config's C API (config.h) over a real config file:
 * the kinds of options, host-then-global lookups, fields and pairs of
 * table options, hosts in order; the bridge's trial of a config that is
 * not the server's (lx_config_try) and its replacement; and the log
 * settings server.c reads through that API.
 */
#include "harness.h"
#include "config.h"
#include "log.h"
#include "lx_config.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/starling-test-config-XXXXXX";
static char main_cfg[128], other_cfg[128], log_file[128];

static const char main_src[] =
	"name = 'global'\n"
	"c2s_timeout = 30\n"
	"half = 2.5\n"
	"flag = true\n"
	"fn = function() end\n"
	"c2s_ports = { 5222, '5223', {}, 5269 }\n"
	"single = 'only'\n"
	"ssl = { certificate = 'g.crt', key = 'g.key' }\n"
	"limits = { c2s = { rate = 2048, burst = '3s' } }\n"
	"log = { level = 'warn', modules = { roster = 'debug', [1] = 'info' } }\n"
	"VirtualHost 'a.example'\n"
	"  name = 'host-a'\n"
	"  ssl = 'not a table'\n"
	"VirtualHost 'b.example'\n"
	"  flag = false\n"
	"Component 'c.example' 'muc'\n";

static const char other_src[] =
	"name = 'other'\n"
	"VirtualHost 'z.example'\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void test_kinds(void)
{
	CHECK(config_kind(NULL, "nothing", NULL) == CONFIG_UNSET);
	CHECK(config_kind(NULL, "name", NULL) == CONFIG_STRING);
	CHECK(config_kind(NULL, "c2s_timeout", NULL) == CONFIG_NUMBER);
	CHECK(config_kind(NULL, "flag", NULL) == CONFIG_BOOLEAN);
	CHECK(config_kind(NULL, "ssl", NULL) == CONFIG_TABLE);
	CHECK(config_kind(NULL, "fn", NULL) == CONFIG_OTHER);
	CHECK(config_kind("a.example", "ssl", NULL) == CONFIG_STRING);
	CHECK(config_kind("b.example", "ssl", NULL) == CONFIG_TABLE);
}

static void test_scalars(void)
{
	CHECK_STR(config_string("*", "name", "def"), "global");
	CHECK_STR(config_string(NULL, "name", "def"), "global");
	CHECK_STR(config_string("a.example", "name", "def"), "host-a");
	CHECK_STR(config_string("b.example", "name", "def"), "global");
	CHECK_STR(config_string("*", "nothing", "def"), "def");
	CHECK_STR(config_string("*", "c2s_timeout", "def"), "def");	/* not a string */
	CHECK(config_int("*", "c2s_timeout", 60) == 30);
	CHECK(config_int("*", "half", 60) == 60);		/* not whole */
	CHECK(config_int("*", "name", 60) == 60);
	CHECK(config_bool("*", "flag", false) == true);
	CHECK(config_bool("b.example", "flag", true) == false);
	CHECK(config_bool("*", "nothing", true) == true);
	CHECK(config_bool("*", "name", false) == false);
}

struct items {
	char all[256];
	int stop_at, seen;
};

static int add_item(void *ctx, const char *item)
{
	struct items *it = ctx;

	strcat(it->all, item);
	strcat(it->all, ",");
	return ++it->seen == it->stop_at ? 42 : 0;
}

static void test_each(void)
{
	struct items it = { "", 0, 0 };

	/* {} is not a string or number: skipped (and logged) */
	CHECK(config_each("*", "c2s_ports", add_item, &it) == 0);
	CHECK_STR(it.all, "5222,5223,5269,");
	it = (struct items){ "", 2, 0 };
	CHECK(config_each("*", "c2s_ports", add_item, &it) == 42);
	CHECK_STR(it.all, "5222,5223,");
	it = (struct items){ "", 0, 0 };
	CHECK(config_each("*", "single", add_item, &it) == 0);
	CHECK_STR(it.all, "only,");
	it = (struct items){ "", 0, 0 };
	CHECK(config_each("*", "nothing", add_item, &it) == 0);
	CHECK(it.seen == 0);
}

static void test_fields(void)
{
	double d = -1;

	CHECK_STR(config_field_string("*", "ssl", "certificate"), "g.crt");
	CHECK_STR(config_field_string("b.example", "ssl", "key"), "g.key");
	CHECK_STR(config_field_string("*", "name", NULL), "global");
	CHECK(config_field_string("*", "ssl", "nothing") == NULL);
	/* a field of a string is unset, not an error */
	CHECK(config_field_string("a.example", "ssl", "certificate") == NULL);
	CHECK(config_kind("a.example", "ssl", "certificate") == CONFIG_UNSET);
	/* paths */
	CHECK(config_kind("*", "limits", "c2s") == CONFIG_TABLE);
	CHECK(config_field_number("*", "limits", "c2s.rate", &d) && d == 2048);
	d = -1;
	CHECK(!config_field_number("*", "limits", "c2s.burst", &d) && d == -1);
	CHECK_STR(config_field_string("*", "limits", "c2s.burst"), "3s");
	CHECK(config_kind("*", "limits", "c2s.rate.deeper") == CONFIG_UNSET);
	CHECK(config_kind("*", "limits", "nothing.rate") == CONFIG_UNSET);
}

struct pairs {
	int n, unnamed;
	const char *roster;
};

static int add_pair(void *ctx, const char *name, const char *value)
{
	struct pairs *p = ctx;

	p->n++;
	if (!name)
		p->unnamed++;
	else if (strcmp(name, "roster") == 0)
		p->roster = value;
	return 0;
}

static int stop_pair(void *ctx, const char *name, const char *value)
{
	(*(int *)ctx)++;
	return -7;
}

static void test_pairs(void)
{
	struct pairs p = { 0 };
	int calls = 0;

	CHECK(config_each_pair("*", "log", "modules", add_pair, &p) == 0);
	CHECK(p.n == 2 && p.unnamed == 1);
	CHECK_STR(p.roster, "debug");
	CHECK(config_each_pair("*", "log", "modules", stop_pair, &calls) == -7);
	CHECK(calls == 1);
	/* an option itself; something not a table calls nothing */
	p = (struct pairs){ 0 };
	CHECK(config_each_pair("*", "ssl", NULL, add_pair, &p) == 0 && p.n == 2);
	calls = 0;
	CHECK(config_each_pair("*", "name", NULL, stop_pair, &calls) == 0);
	CHECK(config_each_pair("*", "nothing", "x", stop_pair, &calls) == 0);
	CHECK(calls == 0);
}

static void test_hosts(void)
{
	const char *name, *type, *module;
	size_t pos = 0;

	CHECK(config_host_next(&pos, &name, &type, &module));
	CHECK_STR(name, "a.example");
	CHECK_STR(type, "local");
	CHECK(config_host_next(&pos, &name, &type, &module));
	CHECK_STR(name, "b.example");
	CHECK(config_host_next(&pos, &name, &type, &module));
	CHECK_STR(name, "c.example");
	CHECK_STR(type, "component");
	CHECK_STR(module, "muc");
	CHECK(!config_host_next(&pos, &name, &type, &module));
}

/* Pushes the config object that starling.config loads from path. */
static void push_loaded(const char *path)
{
	lua_State *L = lx_state();

	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.config");
	CHECK(lx_pcall(L, 1, 1, "test") == 0);
	lua_getfield(L, -1, "load");
	lua_pushstring(L, path);
	CHECK(lx_pcall(L, 1, 1, "test") == 0);
	lua_remove(L, -2);
	CHECK(lua_istable(L, -1));
}

static int read_during_try(void *ctx)
{
	const char *name, *type, *module;
	size_t pos = 0;

	*(const char **)ctx = config_string("*", "name", NULL);
	CHECK(config_host_next(&pos, &name, &type, &module));
	CHECK_STR(name, "z.example");
	CHECK(!config_host_next(&pos, &name, &type, &module));
	return 7;
}

static void test_try_and_replace(void)
{
	lua_State *L = lx_state();
	const char *seen = NULL;
	int top = lua_gettop(L);

	push_loaded(other_cfg);
	CHECK(lx_config_try(L, -1, read_during_try, &seen) == 7);
	CHECK_STR(seen, "other");
	/* the server's config again, and the registry never changed */
	CHECK_STR(config_string("*", "name", NULL), "global");
	lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	lua_getfield(L, -1, "path");
	CHECK_STR(lua_tostring(L, -1), main_cfg);
	lua_pop(L, 2);

	lx_config_replace(L, -1);
	CHECK_STR(config_string("*", "name", NULL), "other");
	lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	CHECK(lua_rawequal(L, -1, -2));
	lua_settop(L, top);
	CHECK(config_load(main_cfg) == 0);
	CHECK_STR(config_string("*", "name", NULL), "global");
	CHECK_STR(config_path(), main_cfg);
}

/* The log option as server.c reads it: each form, and each mistake named. */
static int apply_log(const char *option, struct sbuf *err)
{
	char src[1024];

	snprintf(src, sizeof(src), "log = %s\n", option);
	write_file(other_cfg, src);
	sbuf_reset(err);
	CHECK(config_load(other_cfg) == 0);
	return server_apply_log(err);
}

static void test_server_log(void)
{
	struct sbuf err;
	char opt[512];

	sbuf_init(&err);
	CHECK(apply_log("{ level = 'warn', modules = { roster = 'debug' } }", &err) == 0);
	CHECK(!log_source_enabled(LOG_INFO, "disco"));
	CHECK(log_source_enabled(LOG_WARN, "disco"));
	CHECK(log_source_enabled(LOG_DEBUG, "roster"));
	CHECK(!log_source_enabled(LOG_DEBUG, "disco"));
	/* a level alone: the module levels of before are gone */
	CHECK(apply_log("'warn'", &err) == 0);
	CHECK(!log_enabled(LOG_INFO) && !log_source_enabled(LOG_DEBUG, "roster"));
	CHECK(apply_log("'debug'", &err) == 0 && log_enabled(LOG_DEBUG));
	/* Prosody's form: the lowest level given, its file */
	snprintf(opt, sizeof(opt), "{ error = '%s', warn = '%s' }", log_file, log_file);
	CHECK(apply_log(opt, &err) == 0);
	CHECK(access(log_file, F_OK) == 0);
	CHECK(!log_enabled(LOG_INFO) && log_enabled(LOG_WARN));
	CHECK(apply_log("{ level = 'info', to = 'stderr' }", &err) == 0);
	CHECK(log_enabled(LOG_INFO) && !log_enabled(LOG_DEBUG));

	CHECK(apply_log("{ level = 5 }", &err) == -EINVAL);
	CHECK(err.p && strstr(err.p, "level and to must be strings"));
	CHECK(apply_log("{ modules = { roster = 'loud' } }", &err) == -EINVAL);
	CHECK(err.p && strstr(err.p, "modules must map names to levels"));
	CHECK(apply_log("{ modules = { [1] = 'debug' } }", &err) == -EINVAL);
	CHECK(err.p && strstr(err.p, "modules must map names to levels"));
	CHECK(apply_log("{ modules = 'roster' }", &err) == -EINVAL);
	CHECK(err.p && strstr(err.p, "modules must be a table"));
	CHECK(apply_log("true", &err) == -EINVAL);
	CHECK(err.p && strstr(err.p, "must be a level, a destination or a table"));
	CHECK(apply_log("{ level = 'loud' }", &err) == -EINVAL);
	/* nothing of a failed apply stuck: still info to stderr */
	CHECK(log_enabled(LOG_INFO) && !log_enabled(LOG_DEBUG));
	sbuf_free(&err);
	CHECK(config_load(main_cfg) == 0);
}

static int load_tls(void *ctx)
{
	int *n = ctx;

	return server_load_tls(NULL, n);
}

struct tls_args {
	struct sbuf *err;
	int n;
};

static int load_tls_err(void *ctx)
{
	struct tls_args *t = ctx;

	return server_load_tls(t->err, &t->n);
}

/* The hosts' ssl options as server.c reads them, from the server's config
 * and from one being tried; no certificate is read before these pass. */
static void test_server_tls(void)
{
	lua_State *L = lx_state();
	struct sbuf err;
	struct tls_args t = { &err, -1 };
	int n = -1;

	sbuf_init(&err);
	CHECK(server_load_tls(&err, &n) == -EINVAL && n == -1);
	CHECK(err.p && strstr(err.p, "host a.example: ssl must be a table"));
	/* the tried config has no certificate anywhere: nothing to build */
	write_file(other_cfg, other_src);
	push_loaded(other_cfg);
	CHECK(lx_config_try(L, -1, load_tls, &n) == 0 && n == 0);
	lua_pop(L, 1);
	write_file(other_cfg, "VirtualHost 'y.example'\n"
		   "  ssl = { certificate = 'y.crt' }\n");
	push_loaded(other_cfg);
	sbuf_reset(&err);
	CHECK(lx_config_try(L, -1, load_tls_err, &t) == -EINVAL && t.n == -1);
	CHECK(err.p && strstr(err.p, "host y.example: ssl needs both certificate and key"));
	lua_pop(L, 1);
	CHECK_STR(config_string("*", "name", NULL), "global");
	sbuf_free(&err);
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(dir) || lx_init("lua") != 0) {
		perror("set-up");
		return 1;
	}
	snprintf(main_cfg, sizeof(main_cfg), "%s/main.cfg", dir);
	snprintf(other_cfg, sizeof(other_cfg), "%s/other.cfg", dir);
	snprintf(log_file, sizeof(log_file), "%s/x.log", dir);
	write_file(main_cfg, main_src);
	write_file(other_cfg, other_src);
	if (config_load(main_cfg) != 0) {
		fprintf(stderr, "cannot load %s\n", main_cfg);
		return 1;
	}
	RUN(test_kinds);
	RUN(test_scalars);
	RUN(test_each);
	RUN(test_fields);
	RUN(test_pairs);
	RUN(test_hosts);
	RUN(test_try_and_replace);
	RUN(test_server_tls);
	RUN(test_server_log);
	config_free();
	lx_close();
	log_setup("error", "stderr");
	unlink(main_cfg);
	unlink(other_cfg);
	unlink(log_file);
	rmdir(dir);
	TEST_END();
}
