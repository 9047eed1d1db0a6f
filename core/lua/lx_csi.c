/* lx_csi.c - "starling.csi": XEP-0352 policies for Lua. */
#include "lx_csi.h"
#include "csi.h"

#include <stdlib.h>

static const char POLICY_MT[] = "starling.csi_policy";

struct lx_policy {
	struct csi_policy *p;
};

struct csi_policy *lx_csi_check_policy(lua_State *L, int idx)
{
	return ((struct lx_policy *)lx_checkudata(L, idx, POLICY_MT))->p;
}

/* csi.policy(namespaces): a policy under which messages with a body, a
 * subject or a payload in one of the namespaces matter. */
static int l_policy(lua_State *L)
{
	lua_Integer n;
	const char **ns;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = luaL_len(L, 1);
	if (n < 0 || n > 1024)
		return luaL_argerror(L, 1, "between 0 and 1024 namespaces");
	luaL_checkstack(L, (int)n, "namespaces");
	ns = xcalloc((size_t)n + 1, sizeof(*ns));
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		ns[i - 1] = lua_tostring(L, -1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			free(ns);
			return luaL_argerror(L, 1, "namespaces must be strings");
		}
	}
	struct lx_policy *u = lua_newuserdatauv(L, sizeof(*u), 0);
	u->p = csi_policy_new(ns, (size_t)n);	/* copies the strings */
	free(ns);
	lx_setmetatable(L, POLICY_MT);
	return 1;
}

static int policy_gc(lua_State *L)
{
	struct lx_policy *u = lx_checkudata(L, 1, POLICY_MT);

	csi_policy_unref(u->p);
	u->p = NULL;
	return 0;
}

int luaopen_starling_csi(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "policy", l_policy },
		{ NULL, NULL },
	};

	lx_gc_type(L, POLICY_MT, policy_gc);
	luaL_newlib(L, fns);
	return 1;
}
