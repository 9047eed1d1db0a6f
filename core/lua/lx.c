/* lx.c - the Lua state, protected calls, the starling.* preloads. */
#include "lx.h"
#include "log.h"
#include "lx_session.h"
#include "lx_csi.h"

#include <stdio.h>
#include <stdlib.h>

static lua_State *state;

lua_State *lx_state(void)
{
	return state;
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
				      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* The metatables made by lx_newmetatable, by the address of their type
 * name, as the registry holds them (for as long as the state lives, so
 * their addresses stay): lx_testudata compares a userdata's metatable
 * with one of these instead of looking the name up in the registry,
 * which it does 10 times per routed message. */
#define MT_KNOWN_MAX 32
static struct {
	const char *tname;
	const void *mt;
} mt_known[MT_KNOWN_MAX];
static size_t mt_known_len;

static const void *known_mt(const char *tname)
{
	for (size_t i = 0; i < mt_known_len; i++) {
		if (mt_known[i].tname == tname)
			return mt_known[i].mt;
	}
	return NULL;
}

int lx_newmetatable(lua_State *L, const char *tname)
{
	if (!luaL_newmetatable(L, tname))
		return 0;
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, tname);
	if (L == state && mt_known_len < MT_KNOWN_MAX) {
		mt_known[mt_known_len].tname = tname;
		mt_known[mt_known_len].mt = lua_topointer(L, -1);
		mt_known_len++;
	}
	return 1;
}

void lx_setmetatable(lua_State *L, const char *tname)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, tname);
	lua_setmetatable(L, -2);
}

void *lx_testudata(lua_State *L, int idx, const char *tname)
{
	void *p = lua_touserdata(L, idx);
	const void *want = L == state ? known_mt(tname) : NULL;
	bool same;

	if (!p || !lua_getmetatable(L, idx))
		return NULL;
	if (want) {
		same = lua_topointer(L, -1) == want;
		lua_pop(L, 1);
		return same ? p : NULL;
	}
	lua_rawgetp(L, LUA_REGISTRYINDEX, tname);
	same = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return same ? p : NULL;
}

void *lx_checkudata(lua_State *L, int idx, const char *tname)
{
	void *p = lx_testudata(L, idx, tname);

	if (!p)
		luaL_typeerror(L, idx, tname);
	return p;
}

int lx_pcall(lua_State *L, int nargs, int nresults, const char *source)
{
	int base = lua_gettop(L) - nargs;
	int r;

	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	r = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	if (r != LUA_OK) {
		log_msg(LOG_ERROR, source ? source : "lua", "%s",
			lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
		lua_pop(L, 1);
	}
	return r;
}

static void preload(lua_State *L, const char *name, lua_CFunction fn)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, fn);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

/* As lauxlib's: an error outside any protected call is fatal. */
static int on_panic(lua_State *L)
{
	const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;

	fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
		msg ? msg : "error object is not a string");
	return 0;	/* Lua aborts */
}

int lx_init(const char *lua_dir)
{
	/* luaL_newstate with lx_alloc.c's allocator (warnings stay off, as
	 * luaL_newstate leaves them) */
	lua_State *L = lua_newstate(lx_alloc, NULL);

	if (!L)
		return -1;
	lua_atpanic(L, on_panic);
	state = L;
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_pop(L, 1);
	preload(L, "starling.stanza", luaopen_starling_stanza);
	preload(L, "starling.jid", luaopen_starling_jid);
	preload(L, "starling.store", luaopen_starling_store);
	preload(L, "starling.core", luaopen_starling_core);
	preload(L, "starling.csi", luaopen_starling_csi);
	preload(L, "starling.hashes", luaopen_starling_hashes);
	lx_session_register(L);
	return 0;
}

void lx_close(void)
{
	if (state)
		lua_close(state);
	state = NULL;
	mt_known_len = 0;
	lx_alloc_trim();
}

/* Calls function fn of the module required as name (no arguments). */
static int call_required(const char *name, const char *fn)
{
	lua_State *L = state;

	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	if (lx_pcall(L, 1, 1, name) != 0)
		return -1;
	lua_getfield(L, -1, fn);
	lua_remove(L, -2);
	return lx_pcall(L, 0, 0, name) == 0 ? 0 : -1;
}

int lx_modules(const char *fn)
{
	return call_required("starling.modulemanager", fn);
}

void lx_reload(void)
{
	call_required("starling.admin", "reload");
}

static bool gc_generational;

void lx_gc_mode(bool incremental)
{
	gc_generational = !incremental;
	lua_gc(state, incremental ? LUA_GCINC : LUA_GCGEN, 0, 0, 0);
	lx_gc_tune();
}

/* A minor collection comes when the heap has grown by genminormul
 * percent of what it was after the last one (Lua's default 20: about
 * 1.4 MB with the 7-8 MB heap of 1,000 or 10,000 users chatting). Young
 * objects are then swept and put back on the allocator's free lists
 * (lx_alloc.c) long after they were touched, and with 10,000 streams'
 * parsers, sessions and sockets in between, that is a cache miss each:
 * the sweep and the free lists' pops were what grew most from 1,000 to
 * 10,000 users online (issue #25). The multiplier is kept so that about
 * GC_YOUNG_KB is allocated between two minor collections, whatever the
 * size of the heap (open-loop chat with 10,000 users: about a fifth
 * more messages per server CPU-second, 1,000 users unchanged;
 * bench/RESULTS.md). */
#define GC_YOUNG_KB 256

void lx_gc_tune(void)
{
	static int applied;
	int kb, mul;

	if (!state || !gc_generational)
		return;
	kb = lua_gc(state, LUA_GCCOUNT);
	mul = kb > 0 ? (GC_YOUNG_KB * 100 + kb - 1) / kb : 20;
	mul = MAX(1, MIN(mul, 20));
	if (mul != applied) {
		lua_gc(state, LUA_GCGEN, mul, 0);
		applied = mul;
	}
}

void lx_gc_type(lua_State *L, const char *tname, lua_CFunction gc)
{
	if (lx_newmetatable(L, tname)) {
		lua_pushcfunction(L, gc);
		lua_setfield(L, -2, "__gc");
		lua_pushstring(L, tname);
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
}
