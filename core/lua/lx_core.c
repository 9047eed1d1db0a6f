/* lx_core.c - starling.core: routing, sessions, timers, log (its hook
 * functions are lx_hooks.c's). */
#include "lx.h"
#include "lx_hooks.h"
#include "accounts.h"
#include "lx_config.h"
#include "conn.h"
#include "fanout.h"
#include "jid.h"
#include "log.h"
#include "lx_session.h"
#include "route.h"
#include "session.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>

static const char TIMER_MT[] = "starling.timer";

static double started_at;
static char *dir_lua, *dir_modules;

void lx_core_set_dirs(const char *lua_dir, const char *modules_dir)
{
	free(dir_lua);
	free(dir_modules);
	dir_lua = lua_dir ? xstrdup(lua_dir) : NULL;
	dir_modules = modules_dir ? xstrdup(modules_dir) : NULL;
	started_at = now_mono();
}

static int l_route(lua_State *L)
{
	struct st_doc *doc;
	struct st_node *n = lx_stanza_check(L, 1, &doc);
	struct session *origin = NULL;

	if (!lua_isnoneornil(L, 2))
		origin = lx_session_check(L, 2);
	if (!n->name || (strcmp(n->name, "message") && strcmp(n->name, "presence") &&
			 strcmp(n->name, "iq")))
		return luaL_argerror(L, 1, "not a message, presence or iq");
	st_doc_ref(doc);
	route_stanza(doc, n, origin);
	st_doc_unref(doc);
	return 0;
}

/* core.fanout(stanza, jids): a copy of stanza routed to each JID of the
 * array jids, as core.route would route it with that 'to' (fanout.h);
 * returns how many copies it took. */
static int l_fanout(lua_State *L)
{
	struct st_node *n = lx_stanza_check(L, 1, NULL);
	lua_Integer k;
	const char **to;
	size_t copies;

	luaL_checktype(L, 2, LUA_TTABLE);
	if (!n->name || (strcmp(n->name, "message") && strcmp(n->name, "presence")))
		return luaL_argerror(L, 1, "not a message or presence");
	k = luaL_len(L, 2);
	if (k <= 0) {
		lua_pushinteger(L, 0);
		return 1;
	}
	to = xmalloc((size_t)k * sizeof(*to));
	for (lua_Integer i = 1; i <= k; i++) {
		/* anchored in the table for the call */
		if (lua_rawgeti(L, 2, i) != LUA_TSTRING) {
			free(to);
			return luaL_argerror(L, 2, "expected an array of JIDs");
		}
		to[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	copies = fanout_route(n, to, (size_t)k);
	free(to);
	lua_pushinteger(L, (lua_Integer)copies);
	return 1;
}

/* The data of the deliver_full native: it has none, but a native's data
 * must not be NULL (NULL marks one collected). */
static char deliver_full_data;

static void no_ref(void *data)
{
	(void)data;
}

static int l_sessions(lua_State *L)
{
	const char *bare = luaL_checkstring(L, 1);
	int i = 0;

	lua_newtable(L);
	for (struct session *s = route_find_bare(bare); s; s = s->user_next) {
		if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD))
			continue;
		lx_session_push(L, s);
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static int l_session(lua_State *L)
{
	struct session *s = route_find_full(luaL_checkstring(L, 1));

	if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		lua_pushnil(L);
	else
		lx_session_push(L, s);
	return 1;
}

static int l_hosts(lua_State *L)
{
	size_t pos = 0;
	const char *name, *type, *module;
	int i = 0;

	lua_newtable(L);
	while (config_host_next(&pos, &name, &type, &module)) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, type ? type : "local");
		lua_setfield(L, -2, "type");
		if (module) {
			lua_pushstring(L, module);
			lua_setfield(L, -2, "module");
		}
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static int l_is_local_host(lua_State *L)
{
	struct host *h = route_host(luaL_checkstring(L, 1));

	lua_pushboolean(L, h && h->type != HOST_GLOBAL);
	return 1;
}

static int l_user_exists(lua_State *L)
{
	const char *user = luaL_checkstring(L, 1);
	const char *host = luaL_checkstring(L, 2);
	char node[JID_PART_MAX], bare[2 * JID_PART_MAX + 2];
	size_t nl, hl = strlen(host);
	bool exists = false;

	if (jid_nodeprep(user, node) == 0 && route_host(host) &&
	    (nl = strlen(node)) + 1 + hl < sizeof(bare)) {
		/* An account with a bound session exists: no storage read. */
		memcpy(bare, node, nl);
		bare[nl] = '@';
		memcpy(bare + nl + 1, host, hl + 1);
		exists = route_find_bare(bare) || accounts_exists(host, node);
	}
	lua_pushboolean(L, exists);
	return 1;
}

static int push_result(lua_State *L, int r)
{
	if (r == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, strerror(-r));
	return 2;
}

static int l_user_set_password(lua_State *L)
{
	const char *user = luaL_checkstring(L, 1);
	const char *host = luaL_checkstring(L, 2);
	const char *password = luaL_checkstring(L, 3);
	char node[JID_PART_MAX];

	if (jid_nodeprep(user, node) != 0 || !*node)
		return push_result(L, -EINVAL);
	return push_result(L, accounts_set_password(host, node, password,
						    ACCOUNTS_DEFAULT_ITERATIONS));
}

static int l_user_delete(lua_State *L)
{
	const char *user = luaL_checkstring(L, 1);
	const char *host = luaL_checkstring(L, 2);
	char node[JID_PART_MAX];

	if (jid_nodeprep(user, node) != 0)
		return push_result(L, -EINVAL);
	return push_result(L, accounts_delete(host, node));
}

static int add_user(void *ctx, const char *user)
{
	lua_State *L = ctx;

	lua_pushstring(L, user);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	return 0;
}

/* core.users(host): the usernames of host's accounts, or nil, error. */
static int l_users(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);

	lua_newtable(L);
	int rc = accounts_list(host, add_user, L);
	return rc ? push_result(L, rc) : 1;
}

/* core.random_token(n): n characters of [A-Za-z0-9] from the
 * cryptographically secure generator (tokens, secrets; 1 <= n <= 128). */
static int l_random_token(lua_State *L)
{
	lua_Integer n = luaL_optinteger(L, 1, 24);
	char buf[129];

	luaL_argcheck(L, n >= 1 && n <= 128, 1, "1 to 128 characters");
	random_id(buf, (size_t)n);
	lua_pushlstring(L, buf, (size_t)n);
	return 1;
}

static int l_log(lua_State *L)
{
	static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
	int level = luaL_checkoption(L, 1, NULL, levels);
	const char *source = luaL_checkstring(L, 2);
	const char *msg = luaL_checkstring(L, 3);

	log_msg((enum log_level)level, source, "%s", msg);
	return 0;
}

static int l_log_enabled(lua_State *L)
{
	static const char *const levels[] = { "debug", "info", "warn", "error", NULL };

	enum log_level level = (enum log_level)luaL_checkoption(L, 1, NULL, levels);
	const char *source = luaL_optstring(L, 2, NULL);

	/* With a source ("host:module"), its own level decides. */
	lua_pushboolean(L, source ? log_source_enabled(level, source) : log_enabled(level));
	return 1;
}

static int l_now(lua_State *L)
{
	lua_pushnumber(L, now_wall());
	return 1;
}

static int l_uptime(lua_State *L)
{
	lua_pushnumber(L, now_mono() - started_at);
	return 1;
}

static int l_config(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	return 1;
}

static int l_session_count(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)session_count());
	lua_pushinteger(L, (lua_Integer)route_session_count());
	return 2;
}

/* --- timers ------------------------------------------------------------- */

struct lx_timer {
	ev_timer w;
	int fn_ref;
	int self_ref;		/* keeps the userdata alive while armed */
	char owner[96];
};

static void timer_disarm(lua_State *L, struct lx_timer *t)
{
	ev_timer_stop(conn_loop(), &t->w);
	luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, t->self_ref);
	t->fn_ref = t->self_ref = LUA_NOREF;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lx_timer *t = container_of(w, struct lx_timer, w);
	lua_State *L = lx_state();

	lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);	/* pin during the call */
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
	if (lx_pcall(L, 0, 1, t->owner) == 0) {
		if (lua_type(L, -1) == LUA_TNUMBER && t->fn_ref != LUA_NOREF &&
		    lua_tonumber(L, -1) >= 0) {
			ev_timer_set(w, lua_tonumber(L, -1), 0.);
			ev_timer_start(loop, w);
			lua_pop(L, 2);
			return;
		}
		lua_pop(L, 1);
	}
	if (t->fn_ref != LUA_NOREF)
		timer_disarm(L, t);
	lua_pop(L, 1);
}

static int l_timer(lua_State *L)
{
	lua_Number secs = luaL_checknumber(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	const char *owner = luaL_optstring(L, 3, "timer");
	struct lx_timer *t = lua_newuserdatauv(L, sizeof(*t), 0);

	lx_setmetatable(L, TIMER_MT);
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	lua_pushvalue(L, 2);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, -1);
	t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	ev_timer_init(&t->w, on_timer, secs < 0 ? 0 : secs, 0.);
	ev_timer_start(conn_loop(), &t->w);
	return 1;
}

static int l_timer_stop(lua_State *L)
{
	struct lx_timer *t = lx_checkudata(L, 1, TIMER_MT);

	if (t->fn_ref != LUA_NOREF)
		timer_disarm(L, t);
	return 0;
}

static int l_timer_gc(lua_State *L)
{
	struct lx_timer *t = lx_checkudata(L, 1, TIMER_MT);

	/* Only reached when disarmed (armed timers are pinned), or at close. */
	ev_timer_stop(conn_loop(), &t->w);
	return 0;
}

int luaopen_starling_core(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "route", l_route },
		{ "fanout", l_fanout },
		{ "sessions", l_sessions },
		{ "session", l_session },
		{ "hosts", l_hosts },
		{ "is_local_host", l_is_local_host },
		{ "user_exists", l_user_exists },
		{ "user_set_password", l_user_set_password },
		{ "user_delete", l_user_delete },
		{ "users", l_users },
		{ "random_token", l_random_token },
		{ "timer", l_timer },
		{ "log", l_log },
		{ "log_enabled", l_log_enabled },
		{ "now", l_now },
		{ "uptime", l_uptime },
		{ "config", l_config },
		{ "session_count", l_session_count },
		{ NULL, NULL },
	};
	static const luaL_Reg timer_methods[] = {
		{ "stop", l_timer_stop },
		{ NULL, NULL },
	};

	lx_newmetatable(L, TIMER_MT);
	luaL_newlib(L, timer_methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_timer_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

	luaL_newlib(L, fns);
	lx_hooks_register(L);
	lx_gate_register(L);
	/* a native handler: message/full to a bound session (fanout.h) */
	lx_native_push(L, fanout_deliver_full, &deliver_full_data, no_ref, no_ref);
	lua_setfield(L, -2, "deliver_full");
	lua_pushliteral(L, STARLING_VERSION);
	lua_setfield(L, -2, "version");
	if (dir_lua) {
		lua_pushstring(L, dir_lua);
		lua_setfield(L, -2, "lua_dir");
	}
	if (dir_modules) {
		lua_pushstring(L, dir_modules);
		lua_setfield(L, -2, "modules_dir");
	}
	return 1;
}
