/* lx_hooks.c - Lua functions as hook handlers; event tables for Lua. */
#include "lx_hooks.h"
#include "lx_session.h"
#include "node.h"
#include "route.h"

#include <errno.h>
#include <stdlib.h>

static const char NATIVE_MT[] = "starling.handler";

/* A Lua function on a chain: a registry reference the chain owns. */
struct lx_handler {
	int ref;
};

struct lx_native {
	int (*fn)(struct event *ev, const struct hook_handler *h);
	void *data;
	void (*ref)(void *data);
	void (*unref)(void *data);
};

/* --- the event table -------------------------------------------------------- */

static void release_table(struct event *ev)
{
	lua_settop(lx_state(), ev->lua_table - 1);
	ev->lua_table = 0;
	ev->lua_result = 0;
	ev->release = NULL;
}

static void set_session(lua_State *L, struct session *s, const char *field)
{
	if (s) {
		lx_session_push(L, s);
		lua_setfield(L, -2, field);
	}
}

static void set_node(lua_State *L, struct st_doc *doc, struct st_node *n,
		     const char *field)
{
	if (n) {
		lx_stanza_push(L, doc, n);
		lua_setfield(L, -2, field);
	}
}

static void push_table(lua_State *L, struct event *ev)
{
	lua_createtable(L, 0, 2);
	set_session(L, ev->origin, "origin");
	set_session(L, ev->session, "session");
	set_node(L, ev->doc, ev->stanza, "stanza");
	set_node(L, ev->doc, ev->features, "features");
	if (ev->error) {
		lua_pushstring(L, ev->error);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, "error");
		lua_setfield(L, -2, "condition");	/* Prosody's name */
	}
	if (ev->stanzas) {
		lua_createtable(L, (int)ev->n_stanzas, 0);
		for (size_t i = 0; i < ev->n_stanzas; i++) {
			lx_stanza_push(L, ev->stanzas[i], ev->stanzas[i]->root);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "stanzas");
	}
	ev->lua_table = lua_gettop(L);
	ev->release = release_table;
}

/* --- Lua functions as handlers ---------------------------------------------- */

int lx_hooks_call(struct event *ev, int ref, const char *owner)
{
	lua_State *L = lx_state();

	if (!ev->lua_table)
		push_table(L, ev);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_pushvalue(L, ev->lua_table);
	if (lx_pcall(L, 1, 1, owner) != 0) {
		hook_error();
		return HOOK_PASS;
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return HOOK_PASS;
	}
	if (ev->keep_result)
		ev->lua_result = lua_gettop(L);
	else
		lua_pop(L, 1);
	return HOOK_STOP;
}

static int call_lua(struct event *ev, const struct hook_handler *h)
{
	return lx_hooks_call(ev, ((const struct lx_handler *)h->data)->ref, h->owner);
}

static void free_lua(void *data)
{
	struct lx_handler *lh = data;
	lua_State *L = lx_state();

	if (L)
		luaL_unref(L, LUA_REGISTRYINDEX, lh->ref);
	free(lh);
}

/* --- native handlers -------------------------------------------------------- */

void lx_native_push(lua_State *L,
		    int (*fn)(struct event *ev, const struct hook_handler *h),
		    void *data, void (*ref)(void *data),
		    void (*unref)(void *data))
{
	struct lx_native *n = lua_newuserdatauv(L, sizeof(*n), 0);

	n->fn = fn;
	n->data = data;
	n->ref = ref;
	n->unref = unref;
	ref(data);
	lx_setmetatable(L, NATIVE_MT);
}

static int native_gc(lua_State *L)
{
	struct lx_native *n = lx_checkudata(L, 1, NATIVE_MT);

	if (n->data) {
		n->unref(n->data);
		n->data = NULL;
	}
	return 0;
}

/* --- finding a handler again ------------------------------------------------ */

struct match {
	lua_State *L;
	int idx;			/* the function or native at idx */
	const struct lx_native *native;
};

static bool same_handler(const struct hook_handler *h, void *ctx)
{
	struct match *m = ctx;
	bool same;

	if (m->native)
		return h->fn == m->native->fn && h->data == m->native->data;
	if (h->fn != call_lua)
		return false;
	lua_rawgeti(m->L, LUA_REGISTRYINDEX, ((struct lx_handler *)h->data)->ref);
	same = lua_rawequal(m->L, -1, m->idx);
	lua_pop(m->L, 1);
	return same;
}

static struct host *check_host(lua_State *L, int idx)
{
	const char *name = luaL_checkstring(L, idx);
	struct host *h = route_host(name);

	if (!h)
		luaL_error(L, "unknown host '%s'", name);
	return h;
}

static struct match check_handler(lua_State *L, int idx)
{
	struct match m = { L, lua_absindex(L, idx), NULL };

	if (lua_type(L, idx) != LUA_TFUNCTION) {
		m.native = lx_testudata(L, idx, NATIVE_MT);
		if (!m.native || !m.native->data)
			luaL_typeerror(L, idx, "function or native handler");
	}
	return m;
}

/* --- starling.core's hook functions ----------------------------------------- */

static int l_hook_add(lua_State *L)
{
	struct host *h = check_host(L, 1);
	const char *event = luaL_checkstring(L, 2);
	struct match m = check_handler(L, 3);
	lua_Integer prio = luaL_optinteger(L, 4, 0);
	const char *owner = luaL_optstring(L, 5, h->name);

	if (prio < INT32_MIN || prio > INT32_MAX)
		return luaL_argerror(L, 4, "priority out of range");
	if (hook_find_handler(&h->hooks, event, same_handler, &m))
		return luaL_error(L, "this function is already hooked to '%s'", event);
	if (m.native) {
		m.native->ref(m.native->data);
		hook_add(&h->hooks, event, m.native->fn, m.native->data,
			 m.native->unref, (int)prio, owner);
		return 0;
	}
	struct lx_handler *lh = xmalloc(sizeof(*lh));
	lua_pushvalue(L, 3);
	lh->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	hook_add(&h->hooks, event, call_lua, lh, free_lua, (int)prio, owner);
	return 0;
}

static int l_hook_remove(lua_State *L)
{
	struct host *h = check_host(L, 1);
	const char *event = luaL_checkstring(L, 2);
	struct match m = check_handler(L, 3);
	struct hook_handler *found = hook_find_handler(&h->hooks, event,
						       same_handler, &m);

	lua_pushboolean(L, found && hook_remove(&h->hooks, event, found) == 0);
	return 1;
}

static int l_hook_count(lua_State *L)
{
	struct host *h = check_host(L, 1);
	struct hook_chain *ch = hook_find(&h->hooks, luaL_checkstring(L, 2));

	lua_pushinteger(L, ch ? (lua_Integer)ch->n : 0);
	return 1;
}

/* The C fields of an event fired from Lua, from its data table, so that
 * C handlers see what Lua handlers see. */
static void fields_from_table(lua_State *L, int idx, struct event *ev)
{
	if (!lua_istable(L, idx))
		return;
	if (lua_getfield(L, idx, "origin") == LUA_TUSERDATA)
		ev->origin = lx_session_test(L, -1);
	if (lua_getfield(L, idx, "session") == LUA_TUSERDATA)
		ev->session = lx_session_test(L, -1);
	if (lua_getfield(L, idx, "stanza") == LUA_TUSERDATA)
		ev->stanza = lx_stanza_test(L, -1, &ev->doc);
	/* The table keeps the string alive while the event fires. */
	if (lua_getfield(L, idx, "account") == LUA_TSTRING)
		ev->account = lua_tostring(L, -1);
	lua_pop(L, 4);
}

/* core.fire(host, event, data): the value a handler stopped the chain
 * with (true for a C handler), or nil. */
static int l_fire(lua_State *L)
{
	struct host *h = check_host(L, 1);
	struct hook_chain *ch = hook_find(&h->hooks, luaL_checkstring(L, 2));
	struct event ev = { .host = h, .lua_table = 3, .keep_result = true };

	lua_settop(L, 3);
	if (!ch) {
		lua_pushnil(L);
		return 1;
	}
	fields_from_table(L, 3, &ev);
	if (!hook_fire(ch, &ev)) {
		lua_settop(L, 3);
		lua_pushnil(L);
	} else if (!ev.lua_result) {
		lua_settop(L, 3);
		lua_pushboolean(L, 1);
	}
	return 1;
}

/* core.tell_nodes(host, event, username): event fires on host on every
 * other node (node_tell). */
static int l_tell_nodes(lua_State *L)
{
	struct host *h = check_host(L, 1);

	node_tell(h->name, luaL_checkstring(L, 2), luaL_checkstring(L, 3));
	return 0;
}

/* node_told_hook: another node's notice fires here with { username,
 * host, node }. */
static void fire_told(unsigned node, const char *host, const char *event,
		      const char *username)
{
	lua_State *L = lx_state();
	struct host *h = route_host(host);
	struct hook_chain *ch = h ? hook_find(&h->hooks, event) : NULL;

	if (!ch)
		return;
	lua_createtable(L, 0, 3);
	lua_pushstring(L, username);
	lua_setfield(L, -2, "username");
	lua_pushstring(L, host);
	lua_setfield(L, -2, "host");
	lua_pushinteger(L, (lua_Integer)node);
	lua_setfield(L, -2, "node");
	struct event ev = { .host = h, .lua_table = lua_gettop(L),
			    .release = release_table };
	hook_fire(ch, &ev);
	if (ev.release)
		ev.release(&ev);
}

static int l_hook_errors(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)hook_error_count());
	return 1;
}

void lx_hooks_register(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "hook_add", l_hook_add },
		{ "hook_remove", l_hook_remove },
		{ "hook_count", l_hook_count },
		{ "fire", l_fire },
		{ "hook_errors", l_hook_errors },
		{ "tell_nodes", l_tell_nodes },
		{ NULL, NULL },
	};

	luaL_setfuncs(L, fns, 0);
	lx_gc_type(L, NATIVE_MT, native_gc);
	node_told_hook = fire_told;
}
