/*
 * lx_store.c - the "starling.store" Lua module: the stores modules open
 * (module:open_store wraps it). One userdata type, "starling.store": a
 * store handle (store.h: engine, host, name, kind) with its strings.
 *
 *   open(host, name[, kind[, engine]])
 *        kind "keyval" (the default), "map" or "archive". The engine is
 *        the config's choice unless given: storage = "memory" (every
 *        store), storage = { roster = "memory", ... } (per store name),
 *        else default_storage, else "lmdb" (cfg:get(host, key): the
 *        host's section, then the global one). Engines: "lmdb" (alias
 *        "internal"), "memory". An unknown one: nil, "message".
 *
 * keyval store:
 *   get(user)                    the value, or nil when there is none
 *   set(user, value)             true; a nil value deletes
 *   users()                      iterator over the users having a record
 * map store:
 *   get(user, key)               the value, or nil
 *   get(user)                    { key = value, ... } of all the user's keys
 *   set(user, key, value)        true; a nil value deletes
 *   set_keys(user, { key = value, ... })   true
 *   get_all(key)                 { user = value, ... } for every user
 *   delete_all(key)              true: key removed for every user
 *   users()                      as for keyval
 * archive store: see lx_store_archive.c.
 *
 * user nil means data of the host itself (stored under user ""). Keys are
 * strings. Values are what value.c encodes. A storage failure answers
 * nil, "message" (as Prosody's storage API does); a wrong argument type
 * raises. LMDB writes join the current batch (store.h): they are on disk
 * once the server commits it, before any reply goes out.
 */
#include "lx_store.h"
#include "lx_config.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

const char lx_store_mt[] = "starling.store";

/* The kinds open takes, by name. */
static const char *const kind_names[] = { "keyval", "map", "archive", NULL };
static const enum store_kind kinds[] = {
	STORE_KIND_KEYVAL, STORE_KIND_MAP, STORE_KIND_ARCHIVE,
};

struct store *lx_store_check(lua_State *L)
{
	struct lx_store *ls = lx_checkudata(L, 1, STORE_MT);

	return &ls->st;
}

struct store *lx_store_check_kind(lua_State *L, enum store_kind kind,
				  const char *method)
{
	struct store *s = lx_store_check(L);

	if (s->kind != kind)
		luaL_error(L, "%s: store '%s' is not a%s %s store", method,
			   s->name, kind == STORE_KIND_ARCHIVE ? "n" : "",
			   store_kind_name(kind));
	return s;
}

int lx_store_fail(lua_State *L, int rc)
{
	lua_pushnil(L);
	if (rc == -ENXIO)
		lua_pushliteral(L, "storage is not open");
	else if (rc == -EILSEQ)
		lua_pushliteral(L, "corrupt stored value");
	else if (rc == -ENAMETOOLONG)
		lua_pushliteral(L, "storage key too long");
	else if (rc == -ENOENT)
		lua_pushliteral(L, "item-not-found");
	else if (rc == -ENOSPC || rc == -EDQUOT)
		lua_pushliteral(L, "storage full");
	else if (rc == -EIO || rc == -EROFS)
		lua_pushliteral(L, "storage failing");
	else
		lua_pushfstring(L, "storage error: %s", strerror(-rc));
	return 2;
}

const char *lx_store_arg_user(lua_State *L, int idx)
{
	size_t len;
	const char *u;

	if (lua_isnoneornil(L, idx))
		return "";
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_typeerror(L, idx, "string or nil");
	u = lua_tolstring(L, idx, &len);
	return strlen(u) == len ? u : NULL;
}

static const char *arg_key(lua_State *L, int idx, size_t *len)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_typeerror(L, idx, "string");
	return lua_tolstring(L, idx, len);
}

int lx_store_fail_user(lua_State *L)
{
	lua_pushnil(L);
	lua_pushliteral(L, "invalid user name");
	return 2;
}

int lx_store_push_value(lua_State *L, const struct store *s,
			const void *data, size_t len)
{
	if (value_decode(L, data, len) == 0)
		return 0;
	log_error("store %s/%s: a stored value does not decode", s->host,
		  s->name);
	return -EILSEQ;
}

int lx_store_encode(lua_State *L, int idx, struct sbuf *out)
{
	return value_encode(L, idx, out) == 0 ? 0 : -EDOM;
}

/* Stores the value at idx (nil deletes) for user [/key]. */
static int put_value(lua_State *L, const struct store *s, const char *user,
		     const char *key, size_t klen, int idx)
{
	struct sbuf b;
	int rc;

	if (lua_isnil(L, idx)) {
		rc = store_del(s, user, key, klen);
		return rc == -ENOENT ? 0 : rc;
	}
	sbuf_init(&b);
	rc = lx_store_encode(L, idx, &b);
	if (rc == 0)
		rc = store_put(s, user, key, klen, b.p, b.len);
	sbuf_free(&b);
	return rc;
}

int lx_store_fail_put(lua_State *L, int rc)
{
	if (rc != -EDOM)
		return lx_store_fail(L, rc);
	lua_pushnil(L);
	lua_pushliteral(L, "value cannot be stored (a function, userdata, "
			   "NaN key, or tables nested too deep or in a cycle)");
	return 2;
}

/* ---- get ---- */

static int get_one(lua_State *L, const struct store *s, const char *user,
		   const char *key, size_t klen)
{
	struct sbuf b;
	int rc;

	sbuf_init(&b);
	rc = store_get(s, user, key, klen, &b);
	if (rc == 0)
		rc = lx_store_push_value(L, s, b.p, b.len);
	sbuf_free(&b);
	if (rc == -ENOENT) {
		lua_pushnil(L);
		return 1;
	}
	return rc ? lx_store_fail(L, rc) : 1;
}

/* Records collected by an iterator: [size_t klen][size_t vlen][k][v]... */
static int collect_record(void *ctx, const char *key, size_t klen,
			  const void *val, size_t vlen)
{
	struct sbuf *b = ctx;

	sbuf_add(b, &klen, sizeof(klen));
	sbuf_add(b, &vlen, sizeof(vlen));
	sbuf_add(b, key, klen);
	sbuf_add(b, val, vlen);
	return 0;
}

static int get_keys(lua_State *L, const struct store *s, const char *user)
{
	struct sbuf recs;
	size_t off = 0, kl, vl;
	int rc;

	sbuf_init(&recs);
	rc = store_map_each(s, user, collect_record, &recs);
	if (rc)
		goto out;
	lua_newtable(L);
	while (off < recs.len && rc == 0) {
		memcpy(&kl, recs.p + off, sizeof(kl));
		memcpy(&vl, recs.p + off + sizeof(kl), sizeof(vl));
		off += sizeof(kl) + sizeof(vl);
		lua_pushlstring(L, recs.p + off, kl);
		rc = lx_store_push_value(L, s, recs.p + off + kl, vl);
		off += kl + vl;
		if (rc == 0)
			lua_rawset(L, -3);
		else
			lua_pop(L, 2);
	}
out:
	sbuf_free(&recs);
	return rc ? lx_store_fail(L, rc) : 1;
}

static int l_get(lua_State *L)
{
	struct store *s = lx_store_check(L);
	const char *user = lx_store_arg_user(L, 2);
	const char *key;
	size_t klen;

	if (s->kind == STORE_KIND_ARCHIVE)
		return lx_store_archive_get(L, s);
	if (s->kind == STORE_KIND_KEYVAL) {
		if (!user)
			return lx_store_fail_user(L);
		return get_one(L, s, user, NULL, 0);
	}
	if (lua_isnoneornil(L, 3)) {
		if (!user)
			return lx_store_fail_user(L);
		return get_keys(L, s, user);
	}
	key = arg_key(L, 3, &klen);
	if (!user)
		return lx_store_fail_user(L);
	return get_one(L, s, user, key, klen);
}

/* ---- set ---- */

static int l_set(lua_State *L)
{
	struct store *s = lx_store_check(L);
	const char *user = lx_store_arg_user(L, 2);
	const char *key = NULL;
	size_t klen = 0;
	int vidx = 3, rc;

	if (s->kind == STORE_KIND_ARCHIVE)
		return luaL_error(L, "set: store '%s' is an archive store "
				  "(use append)", s->name);
	if (s->kind == STORE_KIND_MAP) {
		key = arg_key(L, 3, &klen);
		vidx = 4;
	}
	if (!user)
		return lx_store_fail_user(L);
	lua_settop(L, vidx);
	rc = put_value(L, s, user, key, klen, vidx);
	if (rc)
		return lx_store_fail_put(L, rc);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_set_keys(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_MAP, "set_keys");
	const char *user = lx_store_arg_user(L, 2);
	const char *key;
	size_t klen;
	int rc = 0;

	luaL_checktype(L, 3, LUA_TTABLE);
	if (!user)
		return lx_store_fail_user(L);
	lua_settop(L, 3);
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			return luaL_error(L, "set_keys: keys must be strings");
		key = lua_tolstring(L, -2, &klen);
		rc = put_value(L, s, user, key, klen, lua_gettop(L));
		lua_pop(L, 1);
		if (rc)
			return lx_store_fail_put(L, rc);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- host-wide ---- */

static int collect_user(void *ctx, const char *user)
{
	sbuf_add(ctx, user, strlen(user) + 1);
	return 0;
}

static int l_get_all(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_MAP, "get_all");
	struct sbuf users, v;
	size_t klen;
	const char *key = arg_key(L, 2, &klen);
	int rc;

	sbuf_init(&users);
	sbuf_init(&v);
	rc = store_users(s, collect_user, &users);
	if (rc)
		goto out;
	lua_newtable(L);
	for (size_t off = 0; off < users.len && (rc == 0 || rc == -ENOENT); ) {
		const char *u = users.p + off;
		off += strlen(u) + 1;
		rc = store_get(s, u, key, klen, &v);
		if (rc == 0)
			rc = lx_store_push_value(L, s, v.p, v.len);
		if (rc == 0)
			lua_setfield(L, -2, u);
	}
	if (rc == -ENOENT)
		rc = 0;
out:
	sbuf_free(&users);
	sbuf_free(&v);
	return rc ? lx_store_fail(L, rc) : 1;
}

static int l_delete_all(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_MAP, "delete_all");
	size_t klen;
	const char *key = arg_key(L, 2, &klen);
	int rc = store_map_delete_key(s, key, klen);

	if (rc)
		return lx_store_fail(L, rc);
	lua_pushboolean(L, 1);
	return 1;
}

static int users_next(lua_State *L)
{
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;

	lua_pushinteger(L, i);
	lua_replace(L, lua_upvalueindex(2));
	lua_rawgeti(L, lua_upvalueindex(1), i);
	return 1;
}

static int l_users(lua_State *L)
{
	struct store *s = lx_store_check(L);
	struct sbuf users;
	lua_Integer n = 0;
	int rc;

	sbuf_init(&users);
	rc = store_users(s, collect_user, &users);
	if (rc) {
		sbuf_free(&users);
		return lx_store_fail(L, rc);
	}
	lua_newtable(L);
	for (size_t off = 0; off < users.len; ) {
		const char *u = users.p + off;
		off += strlen(u) + 1;
		lua_pushstring(L, u);
		lua_rawseti(L, -2, ++n);
	}
	sbuf_free(&users);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, users_next, 2);
	return 1;
}

/* ---- the type ---- */

static int l_tostring(lua_State *L)
{
	struct store *s = lx_store_check(L);

	lua_pushfstring(L, "store %s/%s (%s, %s)", s->host, s->name,
			store_kind_name(s->kind), s->engine->name);
	return 1;
}

static const char *arg_name(lua_State *L, int idx)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	luaL_argcheck(L, strlen(s) == len, idx, "contains a NUL");
	return s;
}

/* Pushes cfg:get(host, key), or nil when there is no config. */
static void config_lookup(lua_State *L, const char *host, const char *key)
{
	lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_REGISTRY_KEY);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return;
	}
	lua_getfield(L, -1, "get");
	lua_insert(L, -2);
	lua_pushstring(L, host);
	lua_pushstring(L, key);
	if (lx_pcall(L, 3, 1, "storage config") != 0)
		lua_pushnil(L);
}

/* The engine name the config gives store name of host (pushed; nil for
 * the default). */
static void config_engine(lua_State *L, const char *host, const char *name)
{
	config_lookup(L, host, "storage");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, name);
		lua_remove(L, -2);
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		config_lookup(L, host, "default_storage");
	}
}

static int l_open(lua_State *L)
{
	const char *host = arg_name(L, 1);
	const char *name = arg_name(L, 2);
	int kind = luaL_checkoption(L, 3, "keyval", kind_names);
	const struct store_engine *engine = &store_lmdb;
	size_t hlen = strlen(host), nlen = strlen(name);
	struct lx_store *ls;

	luaL_argcheck(L, *host, 1, "empty host");
	luaL_argcheck(L, *name, 2, "empty store name");
	if (lua_isnoneornil(L, 4))
		config_engine(L, host, name);
	else
		lua_pushvalue(L, 4);
	if (!lua_isnil(L, -1)) {
		const char *en = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
								: NULL;
		engine = store_engine_find(en);
		if (!engine) {
			lua_pushnil(L);
			lua_pushfstring(L, "unknown storage engine '%s' (there are "
					"'lmdb', 'memory' and, with the sql "
					"option, 'sql')", en ? en : luaL_typename(L, -2));
			return 2;
		}
	}
	lua_pop(L, 1);
	ls = lua_newuserdatauv(L, sizeof(*ls) + hlen + nlen + 2, 0);
	memcpy(ls->names, host, hlen + 1);
	memcpy(ls->names + hlen + 1, name, nlen + 1);
	store_init(&ls->st, engine, ls->names, ls->names + hlen + 1,
		   kinds[kind]);
	lx_setmetatable(L, STORE_MT);
	return 1;
}

static const luaL_Reg store_methods[] = {
	{ "get", l_get },
	{ "set", l_set },
	{ "set_keys", l_set_keys },
	{ "get_all", l_get_all },
	{ "delete_all", l_delete_all },
	{ "users", l_users },
	{ NULL, NULL },
};

static const luaL_Reg store_meta[] = {
	{ "__tostring", l_tostring },
	{ NULL, NULL },
};

int luaopen_starling_store(lua_State *L)
{
	if (lx_newmetatable(L, STORE_MT)) {
		luaL_setfuncs(L, store_meta, 0);
		luaL_newlib(L, store_methods);
		lx_store_archive_register(L);
		lua_setfield(L, -2, "__index");
		lua_pushliteral(L, "starling.store");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	lua_newtable(L);
	lua_pushcfunction(L, l_open);
	lua_setfield(L, -2, "open");
	return 1;
}
