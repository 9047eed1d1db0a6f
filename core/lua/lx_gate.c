/* lx_gate.c - core.gate: a Lua handler behind a C gate (core/features/
 * gate.h), as a native handler a module hooks like a function.
 *
 *   core.gate(fn, "record", sides, keyval_store)
 *   core.gate(fn, "carbons", sides)
 *   core.gate(fn, "quota", sides, archive_store, { items =, bytes = })
 *
 * sides: "origin", "to", "from", separated by spaces. fn runs only when
 * the gate opens; its event table and result are those of a plain Lua
 * handler. */
#include "gate.h"
#include "lx_hooks.h"
#include "lx_store.h"

#include <stdlib.h>
#include <string.h>

struct lx_gate {
	unsigned refs;
	int fn;				/* registry reference */
	struct gate gate;
};

static int call_gated(struct event *ev, const struct hook_handler *h)
{
	const struct lx_gate *g = h->data;

	if (!gate_open(&g->gate, ev))
		return HOOK_PASS;
	return lx_hooks_call(ev, g->fn, h->owner);
}

static void gate_ref(void *data)
{
	((struct lx_gate *)data)->refs++;
}

static void gate_unref(void *data)
{
	struct lx_gate *g = data;
	lua_State *L;

	if (!g || --g->refs)
		return;
	L = lx_state();
	if (L)
		luaL_unref(L, LUA_REGISTRYINDEX, g->fn);
	gate_deinit(&g->gate);
	free(g);
}

static unsigned check_sides(lua_State *L, int idx)
{
	static const char *const names[] = { "origin", "to", "from" };
	const char *s = luaL_checkstring(L, idx);
	unsigned sides = 0;

	while (*s) {
		size_t n = strcspn(s, " ");
		size_t i = 0;

		while (i < 3 && (strlen(names[i]) != n || strncmp(s, names[i], n) != 0))
			i++;
		if (n && i == 3)
			luaL_argerror(L, idx, "sides are \"origin\", \"to\" and \"from\"");
		if (n)
			sides |= 1u << i;
		s += n + (s[n] == ' ');
	}
	if (!sides)
		luaL_argerror(L, idx, "no side");
	return sides;
}

static const struct store *check_store(lua_State *L, int idx,
				       enum store_kind kind)
{
	struct lx_store *ls = luaL_testudata(L, idx, STORE_MT);

	if (!ls || ls->st.kind != kind)
		luaL_typeerror(L, idx, kind == STORE_KIND_ARCHIVE ? "archive store"
					: "keyval store");
	return &ls->st;
}

static uint64_t limit(lua_State *L, int idx, const char *name)
{
	lua_Integer n;

	lua_getfield(L, idx, name);
	n = luaL_optinteger(L, -1, 0);
	lua_pop(L, 1);
	if (n < 0)
		luaL_argerror(L, idx, "limits are 0 or more");
	return (uint64_t)n;
}

static int l_gate(lua_State *L)
{
	static const char *const kinds[] = { "record", "carbons", "quota", NULL };
	int kind;
	unsigned sides;
	const struct store *st = NULL;
	uint64_t items = 0, bytes = 0;
	struct lx_gate *g;

	luaL_checktype(L, 1, LUA_TFUNCTION);
	kind = luaL_checkoption(L, 2, NULL, kinds);
	sides = check_sides(L, 3);
	if (kind == GATE_RECORD)
		st = check_store(L, 4, STORE_KIND_KEYVAL);
	else if (kind == GATE_QUOTA) {
		st = check_store(L, 4, STORE_KIND_ARCHIVE);
		luaL_checktype(L, 5, LUA_TTABLE);
		items = limit(L, 5, "items");
		bytes = limit(L, 5, "bytes");
	}
	g = xcalloc(1, sizeof(*g));
	gate_init(&g->gate, (enum gate_kind)kind, sides, st);
	g->gate.max_items = items;
	g->gate.max_bytes = bytes;
	lua_pushvalue(L, 1);
	g->fn = luaL_ref(L, LUA_REGISTRYINDEX);
	lx_native_push(L, call_gated, g, gate_ref, gate_unref);
	return 1;
}

void lx_gate_register(lua_State *L)
{
	lua_pushcfunction(L, l_gate);
	lua_setfield(L, -2, "gate");
}
