/*
 * lx_store.c - the "starling.store" Lua module: the stores modules open
 * (module:open_store wraps it). One userdata type, "starling.store",
 * holding a host, a store name and a kind.
 *
 *   open(host, name[, kind])     kind "keyval" (the default) or "map"
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
 *
 * user nil means data of the host itself (stored under user ""). Keys are
 * strings. Values are what value.c encodes. A storage failure answers
 * nil, "message" (as Prosody's storage API does); a wrong argument type
 * raises. Writes join the current batch (store.h): they are on disk once
 * the server commits it, before any reply goes out.
 */
#include "lx.h"
#include "store.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

#define STORE_MT "starling.store"

enum lx_store_kind { KIND_KEYVAL, KIND_MAP };

static const char *const kind_names[] = { "keyval", "map", NULL };

struct lx_store {
	char *host;		/* owned */
	char *name;		/* owned */
	enum lx_store_kind kind;
};

static struct lx_store *check_store(lua_State *L)
{
	return luaL_checkudata(L, 1, STORE_MT);
}

static struct lx_store *check_map(lua_State *L, const char *method)
{
	struct lx_store *s = check_store(L);

	if (s->kind != KIND_MAP)
		luaL_error(L, "%s: store '%s' is not a map store", method, s->name);
	return s;
}

/* nil, "message" for a failed operation; returns 2 for the caller. */
static int push_fail(lua_State *L, int rc)
{
	lua_pushnil(L);
	if (rc == -ENXIO)
		lua_pushliteral(L, "storage is not open");
	else if (rc == -EILSEQ)
		lua_pushliteral(L, "corrupt stored value");
	else if (rc == -ENAMETOOLONG)
		lua_pushliteral(L, "storage key too long");
	else
		lua_pushfstring(L, "storage error: %s", strerror(-rc));
	return 2;
}

/* The user argument: nil is the host itself (""); a string with a NUL
 * gives NULL; other types raise. */
static const char *arg_user(lua_State *L, int idx)
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

static int fail_user(lua_State *L)
{
	lua_pushnil(L);
	lua_pushliteral(L, "invalid user name");
	return 2;
}

/* Decodes a stored record and pushes it: 0, or -EILSEQ (logged) pushing
 * nothing. */
static int push_value(lua_State *L, const struct lx_store *s,
		      const struct sbuf *b)
{
	if (value_decode(L, b->p, b->len) == 0)
		return 0;
	log_error("store %s/%s: a stored value does not decode", s->host,
		  s->name);
	return -EILSEQ;
}

/* Stores the value at idx (nil deletes) for user [/key]. */
static int put_value(lua_State *L, const struct lx_store *s, const char *user,
		     const char *key, size_t klen, int idx)
{
	enum store_db db = s->kind == KIND_MAP ? STORE_MAP : STORE_KEYVAL;
	struct sbuf b;
	int rc;

	if (lua_isnil(L, idx)) {
		rc = store_del(db, s->host, user, s->name, key, klen);
		return rc == -ENOENT ? 0 : rc;
	}
	sbuf_init(&b);
	rc = value_encode(L, idx, &b);
	if (rc == 0)
		rc = store_put(db, s->host, user, s->name, key, klen, b.p, b.len);
	else
		rc = -EDOM;
	sbuf_free(&b);
	return rc;
}

static int fail_put(lua_State *L, int rc)
{
	if (rc != -EDOM)
		return push_fail(L, rc);
	lua_pushnil(L);
	lua_pushliteral(L, "value cannot be stored (a function, userdata, "
			   "NaN key, or tables nested too deep or in a cycle)");
	return 2;
}

/* ---- get ---- */

static int get_one(lua_State *L, const struct lx_store *s, enum store_db db,
		   const char *user, const char *key, size_t klen)
{
	struct sbuf b;
	int rc;

	sbuf_init(&b);
	rc = store_get(db, s->host, user, s->name, key, klen, &b);
	if (rc == 0)
		rc = push_value(L, s, &b);
	sbuf_free(&b);
	if (rc == -ENOENT) {
		lua_pushnil(L);
		return 1;
	}
	return rc ? push_fail(L, rc) : 1;
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

static int get_keys(lua_State *L, const struct lx_store *s, const char *user)
{
	struct sbuf recs, v;
	size_t off = 0, kl, vl;
	int rc;

	sbuf_init(&recs);
	sbuf_init(&v);
	rc = store_map_each(s->host, user, s->name, collect_record, &recs);
	if (rc)
		goto out;
	lua_newtable(L);
	while (off < recs.len && rc == 0) {
		memcpy(&kl, recs.p + off, sizeof(kl));
		memcpy(&vl, recs.p + off + sizeof(kl), sizeof(vl));
		off += sizeof(kl) + sizeof(vl);
		lua_pushlstring(L, recs.p + off, kl);
		sbuf_reset(&v);
		sbuf_add(&v, recs.p + off + kl, vl);
		off += kl + vl;
		rc = push_value(L, s, &v);
		if (rc == 0)
			lua_rawset(L, -3);
		else
			lua_pop(L, 2);
	}
out:
	sbuf_free(&recs);
	sbuf_free(&v);
	return rc ? push_fail(L, rc) : 1;
}

static int l_get(lua_State *L)
{
	struct lx_store *s = check_store(L);
	const char *user = arg_user(L, 2);
	const char *key;
	size_t klen;

	if (s->kind == KIND_KEYVAL) {
		if (!user)
			return fail_user(L);
		return get_one(L, s, STORE_KEYVAL, user, NULL, 0);
	}
	if (lua_isnoneornil(L, 3)) {
		if (!user)
			return fail_user(L);
		return get_keys(L, s, user);
	}
	key = arg_key(L, 3, &klen);
	if (!user)
		return fail_user(L);
	return get_one(L, s, STORE_MAP, user, key, klen);
}

/* ---- set ---- */

static int l_set(lua_State *L)
{
	struct lx_store *s = check_store(L);
	const char *user = arg_user(L, 2);
	const char *key = NULL;
	size_t klen = 0;
	int vidx = 3, rc;

	if (s->kind == KIND_MAP) {
		key = arg_key(L, 3, &klen);
		vidx = 4;
	}
	if (!user)
		return fail_user(L);
	lua_settop(L, vidx);
	rc = put_value(L, s, user, key, klen, vidx);
	if (rc)
		return fail_put(L, rc);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_set_keys(lua_State *L)
{
	struct lx_store *s = check_map(L, "set_keys");
	const char *user = arg_user(L, 2);
	const char *key;
	size_t klen;
	int rc = 0;

	luaL_checktype(L, 3, LUA_TTABLE);
	if (!user)
		return fail_user(L);
	lua_settop(L, 3);
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			return luaL_error(L, "set_keys: keys must be strings");
		key = lua_tolstring(L, -2, &klen);
		rc = put_value(L, s, user, key, klen, lua_gettop(L));
		lua_pop(L, 1);
		if (rc)
			return fail_put(L, rc);
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
	struct lx_store *s = check_map(L, "get_all");
	struct sbuf users, v;
	size_t klen;
	const char *key = arg_key(L, 2, &klen);
	int rc;

	sbuf_init(&users);
	sbuf_init(&v);
	rc = store_users(STORE_MAP, s->host, s->name, collect_user, &users);
	if (rc)
		goto out;
	lua_newtable(L);
	for (size_t off = 0; off < users.len && (rc == 0 || rc == -ENOENT); ) {
		const char *u = users.p + off;
		off += strlen(u) + 1;
		rc = store_get(STORE_MAP, s->host, u, s->name, key, klen, &v);
		if (rc == 0)
			rc = push_value(L, s, &v);
		if (rc == 0)
			lua_setfield(L, -2, u);
	}
	if (rc == -ENOENT)
		rc = 0;
out:
	sbuf_free(&users);
	sbuf_free(&v);
	return rc ? push_fail(L, rc) : 1;
}

static int l_delete_all(lua_State *L)
{
	struct lx_store *s = check_map(L, "delete_all");
	size_t klen;
	const char *key = arg_key(L, 2, &klen);
	int rc = store_map_delete_key(s->host, s->name, key, klen);

	if (rc)
		return push_fail(L, rc);
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
	struct lx_store *s = check_store(L);
	enum store_db db = s->kind == KIND_MAP ? STORE_MAP : STORE_KEYVAL;
	struct sbuf users;
	lua_Integer n = 0;
	int rc;

	sbuf_init(&users);
	rc = store_users(db, s->host, s->name, collect_user, &users);
	if (rc) {
		sbuf_free(&users);
		return push_fail(L, rc);
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

static int l_gc(lua_State *L)
{
	struct lx_store *s = check_store(L);

	free(s->host);
	s->host = NULL;
	free(s->name);
	s->name = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct lx_store *s = check_store(L);

	lua_pushfstring(L, "store %s/%s (%s)", s->host ? s->host : "?",
			s->name ? s->name : "?", kind_names[s->kind]);
	return 1;
}

static const char *arg_name(lua_State *L, int idx)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	luaL_argcheck(L, strlen(s) == len, idx, "contains a NUL");
	return s;
}

static int l_open(lua_State *L)
{
	const char *host = arg_name(L, 1);
	const char *name = arg_name(L, 2);
	int kind = luaL_checkoption(L, 3, "keyval", kind_names);
	struct lx_store *s;

	luaL_argcheck(L, *host, 1, "empty host");
	luaL_argcheck(L, *name, 2, "empty store name");
	s = lua_newuserdatauv(L, sizeof(*s), 0);
	s->host = NULL;
	s->name = NULL;
	s->kind = (enum lx_store_kind)kind;
	luaL_setmetatable(L, STORE_MT);
	s->host = xstrdup(host);
	s->name = xstrdup(name);
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
	{ "__gc", l_gc },
	{ "__tostring", l_tostring },
	{ NULL, NULL },
};

int luaopen_starling_store(lua_State *L)
{
	if (luaL_newmetatable(L, STORE_MT)) {
		luaL_setfuncs(L, store_meta, 0);
		luaL_newlib(L, store_methods);
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
