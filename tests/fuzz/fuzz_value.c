/*
 * fuzz_value.c - the stored-value decoder (value.c) on arbitrary bytes.
 *
 * Input: the bytes value_decode() is given (the store's record).
 *
 * Checks: decode pushes exactly one value or nothing; what decodes
 * encodes again (value_encode() accepts everything value_decode() can
 * make) and that encoding decodes to a value equal to the first (deep
 * equality: same types, integer/float subtypes, float bits, table
 * contents with table and stanza keys matched structurally, stanza trees
 * node by node); decoded stanzas serialize.
 */
#include "fuzz_common.h"
#include "lx.h"

#include <errno.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static lua_State *vf_L;

static bool vf_equal(lua_State *L, int a, int b);

/* Keys that are tables or stanzas: compared by structure, not identity. */
static bool vf_is_ref(lua_State *L, int idx)
{
	int t = lua_type(L, idx);

	return t == LUA_TTABLE || t == LUA_TUSERDATA;
}

static size_t vf_count(lua_State *L, int t)
{
	size_t n = 0;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		n++;
		lua_pop(L, 1);
	}
	return n;
}

/* Whether b holds a key structurally equal to the key at k (a reference
 * key) whose value equals the value at v, among the keys not used yet
 * (used: a table at index u, keys of b that were matched). */
static bool vf_find_ref(lua_State *L, int b, int k, int v, int u)
{
	lua_pushnil(L);
	while (lua_next(L, b)) {
		int bk = lua_gettop(L) - 1, bv = lua_gettop(L);
		if (vf_is_ref(L, bk)) {
			lua_pushvalue(L, bk);
			lua_rawget(L, u);
			bool used = lua_toboolean(L, -1);
			lua_pop(L, 1);
			if (!used && vf_equal(L, k, bk) && vf_equal(L, v, bv)) {
				lua_pushvalue(L, bk);
				lua_pushboolean(L, 1);
				lua_rawset(L, u);
				lua_pop(L, 2);
				return true;
			}
		}
		lua_pop(L, 1);
	}
	return false;
}

static bool vf_table_equal(lua_State *L, int a, int b)
{
	bool eq = true;
	int u;

	FUZZ_CHECK(lua_checkstack(L, 16));
	if (vf_count(L, a) != vf_count(L, b))
		return false;
	lua_newtable(L);
	u = lua_gettop(L);
	lua_pushnil(L);
	while (eq && lua_next(L, a)) {
		int k = lua_gettop(L) - 1, v = lua_gettop(L);
		if (vf_is_ref(L, k)) {
			eq = vf_find_ref(L, b, k, v, u);
		} else {
			lua_pushvalue(L, k);
			lua_rawget(L, b);
			eq = vf_equal(L, v, lua_gettop(L));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	if (!eq)
		lua_pop(L, 1);	/* the key lua_next left */
	lua_pop(L, 1);
	return eq;
}

static bool vf_equal(lua_State *L, int a, int b)
{
	struct st_node *x, *y;
	lua_Number fa, fb;

	a = lua_absindex(L, a);
	b = lua_absindex(L, b);
	if (lua_type(L, a) != lua_type(L, b))
		return false;
	switch (lua_type(L, a)) {
	case LUA_TNIL:
		return true;
	case LUA_TBOOLEAN:
		return lua_toboolean(L, a) == lua_toboolean(L, b);
	case LUA_TNUMBER:
		if (lua_isinteger(L, a) != lua_isinteger(L, b))
			return false;
		if (lua_isinteger(L, a))
			return lua_tointeger(L, a) == lua_tointeger(L, b);
		fa = lua_tonumber(L, a);
		fb = lua_tonumber(L, b);
		return memcmp(&fa, &fb, sizeof(fa)) == 0;
	case LUA_TSTRING:
		return lua_rawequal(L, a, b);	/* interned or compared */
	case LUA_TTABLE:
		return vf_table_equal(L, a, b);
	case LUA_TUSERDATA:
		x = lx_stanza_test(L, a, NULL);
		y = lx_stanza_test(L, b, NULL);
		FUZZ_CHECK(x && y);
		return fuzz_tree_equal(x, y);
	default:
		FUZZ_CHECK(!"a type value_decode does not make");
		return false;
	}
}

/* Serializes every stanza inside the value at idx. */
static void vf_serialize_all(lua_State *L, int idx, struct sbuf *out)
{
	struct st_node *n;

	idx = lua_absindex(L, idx);
	FUZZ_CHECK(lua_checkstack(L, 8));
	if (lua_type(L, idx) == LUA_TUSERDATA) {
		n = lx_stanza_test(L, idx, NULL);
		FUZZ_CHECK(n);
		sbuf_reset(out);
		st_serialize(n, "", out);
		FUZZ_CHECK(out->len > 0);
		return;
	}
	if (lua_type(L, idx) != LUA_TTABLE)
		return;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		vf_serialize_all(L, -2, out);
		vf_serialize_all(L, -1, out);
		lua_pop(L, 1);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	lua_State *L;
	struct sbuf enc;
	int top, rc;

	if (!vf_L) {
		fuzz_quiet_log();
		vf_L = luaL_newstate();
		FUZZ_CHECK(vf_L);
	}
	L = vf_L;
	lua_settop(L, 0);
	rc = value_decode(L, data, size);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	FUZZ_CHECK(lua_gettop(L) == (rc == 0 ? 1 : 0));
	if (rc != 0)
		goto out;
	sbuf_init(&enc);
	rc = value_encode(L, 1, &enc);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(lua_gettop(L) == 1);
	rc = value_decode(L, enc.p, enc.len);
	FUZZ_CHECK(rc == 0 && lua_gettop(L) == 2);
	FUZZ_CHECK(vf_equal(L, 1, 2));
	top = lua_gettop(L);
	vf_serialize_all(L, 1, &enc);
	FUZZ_CHECK(lua_gettop(L) == top);
	sbuf_free(&enc);
out:
	lua_settop(L, 0);
	lua_gc(L, LUA_GCCOLLECT);
	return 0;
}
