/*
 * lx_jid.c - the "starling.jid" Lua module: JID splitting and preparation
 * for util.jid (lua/util/jid.lua), which module authors use.
 *
 * Functions, all taking strings and answering nil (one per result) for
 * nil, for strings with a NUL and for anything malformed:
 *   split(s)          node, host, resource, unprepared (nil when absent)
 *   prepped_split(s)  node, host, resource, prepared
 *   prep(s)           the prepared JID as one string
 *   bare(s)           "node@host" or "host", unprepared
 *   join(n, h, r)     the JID of the given parts (h required), unprepared
 *   nodeprep(s), nameprep(s), resourceprep(s)   one prepared part
 *
 * There is no userdata type here: JIDs are strings on the Lua side.
 */
#include "lx.h"
#include "jid.h"

/* The string argument at idx, or NULL for nil and for a string holding
 * a NUL (never a valid JID). Other types raise an argument error. */
static const char *opt_jid(lua_State *L, int idx, size_t *len)
{
	const char *s;

	if (lua_isnoneornil(L, idx))
		return NULL;
	s = luaL_checklstring(L, idx, len);
	if (strlen(s) != *len)
		return NULL;
	return s;
}

/* n nils: what every function answers for a malformed JID. */
static int push_nils(lua_State *L, int n)
{
	for (int i = 0; i < n; i++)
		lua_pushnil(L);
	return n;
}

static void push_span(lua_State *L, const struct jid_span *sp)
{
	if (sp->p)
		lua_pushlstring(L, sp->p, sp->len);
	else
		lua_pushnil(L);
}

static int l_split(lua_State *L)
{
	struct jid_span node, host, res;
	size_t len;
	const char *s = opt_jid(L, 1, &len);

	if (!s || !jid_split_raw(s, len, &node, &host, &res))
		return push_nils(L, 3);
	push_span(L, &node);
	push_span(L, &host);
	push_span(L, &res);
	return 3;
}

static int l_bare(lua_State *L)
{
	struct jid_span node, host, res;
	size_t len;
	const char *s = opt_jid(L, 1, &len);

	if (!s || !jid_split_raw(s, len, &node, &host, &res))
		return push_nils(L, 1);
	if (!res.p) {
		lua_pushvalue(L, 1);
		return 1;
	}
	lua_pushlstring(L, s, (size_t)(host.p + host.len - s));
	return 1;
}

static int l_prepped_split(lua_State *L)
{
	struct jid j;
	size_t len;
	const char *s = opt_jid(L, 1, &len);

	if (!s || jid_parse(s, &j) < 0)
		return push_nils(L, 3);
	if (j.has_node)
		lua_pushstring(L, j.node);
	else
		lua_pushnil(L);
	lua_pushstring(L, j.domain);
	if (j.has_resource)
		lua_pushstring(L, j.resource);
	else
		lua_pushnil(L);
	return 3;
}

static int l_prep(lua_State *L)
{
	struct jid j;
	luaL_Buffer b;
	size_t len;
	const char *s = opt_jid(L, 1, &len);

	if (!s || jid_parse(s, &j) < 0)
		return push_nils(L, 1);
	luaL_buffinit(L, &b);
	if (j.has_node) {
		luaL_addstring(&b, j.node);
		luaL_addchar(&b, '@');
	}
	luaL_addstring(&b, j.domain);
	if (j.has_resource) {
		luaL_addchar(&b, '/');
		luaL_addstring(&b, j.resource);
	}
	luaL_pushresult(&b);
	return 1;
}

static int l_join(lua_State *L)
{
	luaL_Buffer b;

	lua_settop(L, 3);	/* the buffer goes above the arguments */
	if (lua_isnil(L, 2))
		return push_nils(L, 1);
	luaL_checkstring(L, 2);
	luaL_buffinit(L, &b);
	if (!lua_isnil(L, 1)) {
		luaL_checkstring(L, 1);
		lua_pushvalue(L, 1);
		luaL_addvalue(&b);
		luaL_addchar(&b, '@');
	}
	lua_pushvalue(L, 2);
	luaL_addvalue(&b);
	if (!lua_isnil(L, 3)) {
		luaL_checkstring(L, 3);
		luaL_addchar(&b, '/');
		lua_pushvalue(L, 3);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 1;
}

static int prep_one(lua_State *L, int (*prep)(const char *, char *))
{
	char out[JID_PART_MAX];
	size_t len;
	const char *s = opt_jid(L, 1, &len);

	if (!s || prep(s, out) < 0)
		return push_nils(L, 1);
	lua_pushstring(L, out);
	return 1;
}

static int l_nodeprep(lua_State *L)
{
	return prep_one(L, jid_nodeprep);
}

static int l_nameprep(lua_State *L)
{
	return prep_one(L, jid_nameprep);
}

static int l_resourceprep(lua_State *L)
{
	return prep_one(L, jid_resourceprep);
}

static const luaL_Reg jid_funcs[] = {
	{ "split", l_split },
	{ "bare", l_bare },
	{ "prepped_split", l_prepped_split },
	{ "prep", l_prep },
	{ "join", l_join },
	{ "nodeprep", l_nodeprep },
	{ "nameprep", l_nameprep },
	{ "resourceprep", l_resourceprep },
	{ NULL, NULL },
};

int luaopen_starling_jid(lua_State *L)
{
	luaL_newlib(L, jid_funcs);
	return 1;
}
