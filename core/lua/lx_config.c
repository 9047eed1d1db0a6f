/* lx_config.c - config lookups from C into the config object held in Lua. */
#include "lx_config.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

static int cfg_ref = LUA_NOREF;
static char *cfg_path;

int config_load(const char *path)
{
	lua_State *L = lx_state();

	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.config");
	if (lx_pcall(L, 1, 1, "config") != 0)
		return -1;
	lua_getfield(L, -1, "load");
	lua_pushstring(L, path);
	if (lx_pcall(L, 1, 2, "config") != 0) {
		lua_pop(L, 1);
		return -1;
	}
	if (lua_isnil(L, -2)) {
		log_error("cannot load config %s: %s", path, lua_tostring(L, -1));
		lua_pop(L, 3);
		return -1;
	}
	lua_pop(L, 1);
	free(cfg_path);
	cfg_path = xstrdup(path);
	lx_config_replace(L, -1);
	lua_pop(L, 2);
	return 0;
}

void lx_config_replace(lua_State *L, int idx)
{
	lua_pushvalue(L, idx);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	if (cfg_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, cfg_ref);
	cfg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void config_free(void)
{
	lua_State *L = lx_state();

	if (L && cfg_ref != LUA_NOREF) {
		luaL_unref(L, LUA_REGISTRYINDEX, cfg_ref);
		lua_pushnil(L);
		lua_setfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	}
	cfg_ref = LUA_NOREF;
	free(cfg_path);
	cfg_path = NULL;
}

const char *config_path(void)
{
	return cfg_path;
}

void lx_config_push(const char *host, const char *key)
{
	lua_State *L = lx_state();

	lua_rawgeti(L, LUA_REGISTRYINDEX, cfg_ref);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return;
	}
	lua_getfield(L, -1, "get");
	lua_pushvalue(L, -2);
	lua_pushstring(L, host ? host : "*");
	lua_pushstring(L, key);
	if (lx_pcall(L, 3, 1, "config") != 0)
		lua_pushnil(L);
	lua_remove(L, -2);
}

const char *config_string(const char *host, const char *key, const char *def)
{
	lua_State *L = lx_state();
	const char *v = def;

	lx_config_push(host, key);
	if (lua_type(L, -1) == LUA_TSTRING)
		v = lua_tostring(L, -1);	/* anchored in the config table */
	else if (!lua_isnil(L, -1))
		log_warn("option '%s' should be a string; using the default", key);
	lua_pop(L, 1);
	return v;
}

long config_int(const char *host, const char *key, long def)
{
	lua_State *L = lx_state();
	long v = def;
	int isnum = 0;

	lx_config_push(host, key);
	if (!lua_isnil(L, -1)) {
		lua_Integer i = lua_tointegerx(L, -1, &isnum);
		if (isnum && lua_type(L, -1) == LUA_TNUMBER)
			v = (long)i;
		else
			log_warn("option '%s' should be a whole number; using %ld", key, def);
	}
	lua_pop(L, 1);
	return v;
}

bool config_bool(const char *host, const char *key, bool def)
{
	lua_State *L = lx_state();
	bool v = def;

	lx_config_push(host, key);
	if (lua_isboolean(L, -1))
		v = lua_toboolean(L, -1);
	else if (!lua_isnil(L, -1))
		log_warn("option '%s' should be true or false; using %s", key,
			 def ? "true" : "false");
	lua_pop(L, 1);
	return v;
}

int config_port(const char *key, const char *item)
{
	int port = atoi(item);

	if (port <= 0 || port > 65535) {
		log_error("option '%s': bad port '%s'", key, item);
		return 0;
	}
	return port;
}

int config_each(const char *host, const char *key,
		int (*fn)(void *ctx, const char *item), void *ctx)
{
	lua_State *L = lx_state();
	int r = 0;

	lx_config_push(host, key);
	if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
		r = fn(ctx, lua_tostring(L, -1));
	} else if (lua_istable(L, -1)) {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n && r == 0; i++) {
			lua_rawgeti(L, -1, i);
			if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
				r = fn(ctx, lua_tostring(L, -1));
			else
				log_warn("option '%s': item %lld is not a string or number",
					 key, (long long)i);
			lua_pop(L, 1);
		}
	} else if (!lua_isnil(L, -1)) {
		log_warn("option '%s' should be a list", key);
	}
	lua_pop(L, 1);
	return r;
}

int lx_config_try(lua_State *L, int idx, int (*fn)(void *ctx), void *ctx)
{
	int saved = cfg_ref, r;

	lua_pushvalue(L, idx);
	cfg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	r = fn(ctx);
	luaL_unref(L, LUA_REGISTRYINDEX, cfg_ref);
	cfg_ref = saved;
	return r;
}

/* Pushes what field (a path of names joined by dots; NULL: the option
 * itself) holds inside the option key, or nil. Raw lookups: a metatable
 * in a config table runs no code here. */
static void push_field(lua_State *L, const char *host, const char *key,
		       const char *field)
{
	lx_config_push(host, key);
	while (field) {
		const char *dot = strchr(field, '.');
		size_t len = dot ? (size_t)(dot - field) : strlen(field);

		if (!lua_istable(L, -1)) {
			lua_pop(L, 1);
			lua_pushnil(L);
			return;
		}
		lua_pushlstring(L, field, len);
		lua_rawget(L, -2);
		lua_remove(L, -2);
		field = dot ? dot + 1 : NULL;
	}
}

enum config_kind config_kind(const char *host, const char *key, const char *field)
{
	lua_State *L = lx_state();
	enum config_kind k;

	push_field(L, host, key, field);
	switch (lua_type(L, -1)) {
	case LUA_TNIL: k = CONFIG_UNSET; break;
	case LUA_TBOOLEAN: k = CONFIG_BOOLEAN; break;
	case LUA_TNUMBER: k = CONFIG_NUMBER; break;
	case LUA_TSTRING: k = CONFIG_STRING; break;
	case LUA_TTABLE: k = CONFIG_TABLE; break;
	default: k = CONFIG_OTHER; break;
	}
	lua_pop(L, 1);
	return k;
}

const char *config_field_string(const char *host, const char *key, const char *field)
{
	lua_State *L = lx_state();
	const char *v = NULL;

	push_field(L, host, key, field);
	if (lua_type(L, -1) == LUA_TSTRING)
		v = lua_tostring(L, -1);	/* anchored in the config table */
	lua_pop(L, 1);
	return v;
}

bool config_field_number(const char *host, const char *key, const char *field,
			 double *v)
{
	lua_State *L = lx_state();
	bool found;

	push_field(L, host, key, field);
	found = lua_type(L, -1) == LUA_TNUMBER;
	if (found)
		*v = (double)lua_tonumber(L, -1);
	lua_pop(L, 1);
	return found;
}

int config_each_pair(const char *host, const char *key, const char *field,
		     int (*fn)(void *ctx, const char *name, const char *value),
		     void *ctx)
{
	lua_State *L = lx_state();
	int t, r = 0;

	push_field(L, host, key, field);
	t = lua_gettop(L);
	if (lua_istable(L, t)) {
		lua_pushnil(L);
		while (r == 0 && lua_next(L, t)) {
			/* No lua_tostring on a number key: it would change the
			 * key under lua_next. Strings are anchored in the table. */
			const char *name = lua_type(L, -2) == LUA_TSTRING ?
				lua_tostring(L, -2) : NULL;
			const char *value = lua_type(L, -1) == LUA_TSTRING ?
				lua_tostring(L, -1) : NULL;
			r = fn(ctx, name, value);
			lua_pop(L, r ? 2 : 1);
		}
	}
	lua_settop(L, t - 1);
	return r;
}

bool config_host_next(size_t *pos, const char **name, const char **type,
		      const char **module)
{
	lua_State *L = lx_state();
	bool found = false;

	lua_rawgeti(L, LUA_REGISTRYINDEX, cfg_ref);
	lua_getfield(L, -1, "hosts");
	if (lua_rawgeti(L, -1, (lua_Integer)*pos + 1) == LUA_TTABLE) {
		/* Only strings: they stay anchored in the table once popped
		 * (lua_tostring of a number would make one only the stack
		 * holds). */
		*name = lua_getfield(L, -1, "name") == LUA_TSTRING ?
			lua_tostring(L, -1) : NULL;
		*type = lua_getfield(L, -2, "type") == LUA_TSTRING ?
			lua_tostring(L, -1) : NULL;
		*module = lua_getfield(L, -3, "module") == LUA_TSTRING ?
			lua_tostring(L, -1) : NULL;
		lua_pop(L, 3);
		found = *name != NULL;
		(*pos)++;
	}
	lua_pop(L, 3);
	return found;
}
