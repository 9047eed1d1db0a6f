/*
 * lx_store_archiver.c - archive:archiver(payloads, wanted): mod_mam's
 * handle on the archiving step in C (core/features/archiver.h,
 * docs/modules/mam.md).
 *
 *   local incoming, outgoing, forget =
 *           archive:archiver(payloads, wanted[, answers_max])
 *
 * payloads  { [namespace] = true }: children that make a message without
 *           a body worth keeping (OMEMO, markers, reactions, ...).
 * wanted    wanted(username, host, other, bare): whether messages with
 *           `other` go to the archive of username@host, and a second
 *           result true when that holds for every contact (archiver.h).
 *           Called only when the archiver keeps no answer for the account.
 * incoming, outgoing
 *           native hook handlers (lx_hooks.h) for module:hook.
 * forget    forget(username): the kept answer of that account goes (its
 *           preferences changed, it was deleted or created); forget()
 *           forgets them all. answers_max defaults to 10000.
 */
#include "lx_store.h"
#include "lx_hooks.h"
#include "archiver.h"

#include <stdlib.h>

static const char ARCHIVER_MT[] = "starling.archiver";

/* The policy: the module's wanted function, a registry reference. */
struct wanted_fn {
	int ref;
};

static bool call_wanted(void *ctx, const char *username, const char *host,
			const char *other, const char *with, bool *uniform)
{
	struct wanted_fn *w = ctx;
	lua_State *L = lx_state();
	bool ok;

	lua_rawgeti(L, LUA_REGISTRYINDEX, w->ref);
	lua_pushstring(L, username);
	lua_pushstring(L, host);
	lua_pushstring(L, other);
	lua_pushstring(L, with);
	if (lx_pcall(L, 4, 2, "mam: wanted") != 0)
		return false;
	ok = lua_toboolean(L, -2);
	*uniform = lua_toboolean(L, -1);
	lua_pop(L, 2);
	return ok;
}

static void free_wanted(void *ctx)
{
	struct wanted_fn *w = ctx;
	lua_State *L = lx_state();

	if (L)
		luaL_unref(L, LUA_REGISTRYINDEX, w->ref);
	free(w);
}

/* The userdata forget() keeps as its upvalue: one archiver reference. */
struct lx_archiver {
	struct archiver *a;
};

static int archiver_gc(lua_State *L)
{
	struct lx_archiver *u = lx_checkudata(L, 1, ARCHIVER_MT);

	archiver_unref(u->a);
	u->a = NULL;
	return 0;
}

static int archive_forget(lua_State *L)
{
	struct lx_archiver *u = lua_touserdata(L, lua_upvalueindex(1));

	archiver_forget(u->a, lua_isnoneornil(L, 1) ? NULL : luaL_checkstring(L, 1));
	return 0;
}

/* The payload namespaces of the table at idx (its keys), on the stack
 * while the archiver copies them. */
static const char **payload_list(lua_State *L, int idx, size_t *n)
{
	const char **list = NULL;
	size_t cap = 0;

	*n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			list = xrealloc(list, cap * sizeof(*list));
		}
		list[(*n)++] = lua_tostring(L, -1);	/* anchored in the table */
	}
	return list;
}

static int l_archiver(lua_State *L)
{
	lua_Integer max = luaL_optinteger(L, 4, 10000);
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "archiver");
	struct archiver_policy pol = { call_wanted, NULL, free_wanted };
	struct wanted_fn *w;
	const char **payloads;
	size_t n;

	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	luaL_argcheck(L, max >= 0, 4, "expected a count of 0 or more");
	lua_settop(L, 3);
	struct lx_archiver *u = lua_newuserdatauv(L, sizeof(*u), 0);
	u->a = NULL;
	lx_setmetatable(L, ARCHIVER_MT);
	w = xmalloc(sizeof(*w));
	lua_pushvalue(L, 3);
	w->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	pol.ctx = w;
	payloads = payload_list(L, 2, &n);
	u->a = archiver_new(s, payloads, n, (size_t)max, &pol);
	free(payloads);
	lx_native_push(L, archiver_incoming, u->a, archiver_ref, archiver_unref);
	lx_native_push(L, archiver_outgoing, u->a, archiver_ref, archiver_unref);
	lua_pushvalue(L, 4);
	lua_pushcclosure(L, archive_forget, 1);
	return 3;
}

void lx_store_archiver_register(lua_State *L)
{
	lx_gc_type(L, ARCHIVER_MT, archiver_gc);
	lua_pushcfunction(L, l_archiver);
	lua_setfield(L, -2, "archiver");
}
