/*
 * lx_admin_cmd.c - the admin socket's commands (admin.h) carried out by
 * lua/starling/admin.lua: each connection gets a Lua table for its shell
 * state (a registry ref this file owns), and each request line goes to
 * admin.handle(ctx, line), which returns the status and the text.
 */
#include "lx.h"
#include "admin.h"

#include <stdlib.h>

struct admin_shell {
	int ctx_ref;		/* Lua table: this connection's shell state */
};

static void *shell_open(void)
{
	lua_State *L = lx_state();
	struct admin_shell *sh = xcalloc(1, sizeof(*sh));

	lua_newtable(L);
	sh->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return sh;
}

static void shell_close(void *state)
{
	struct admin_shell *sh = state;
	lua_State *L = lx_state();

	if (L)
		luaL_unref(L, LUA_REGISTRYINDEX, sh->ctx_ref);
	free(sh);
}

/* The status as a string that outlives the Lua one. */
static const char *status_of(const char *s)
{
	static const char *const known[] = { "ok", "error", "more" };

	for (size_t i = 0; s && i < ARRAY_SIZE(known); i++)
		if (strcmp(s, known[i]) == 0)
			return known[i];
	return "error";
}

static const char *shell_run(void *state, const char *line, size_t len,
			     struct sbuf *body)
{
	struct admin_shell *sh = state;
	lua_State *L = lx_state();
	int top = lua_gettop(L);
	const char *status = "error";

	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.admin");
	if (lx_pcall(L, 1, 1, "admin") != 0) {
		sbuf_adds(body, "the admin code failed to load (see the log)\n");
		goto out;
	}
	lua_getfield(L, -1, "handle");
	lua_rawgeti(L, LUA_REGISTRYINDEX, sh->ctx_ref);
	lua_pushlstring(L, line, len);
	if (lx_pcall(L, 2, 2, "admin") != 0) {
		sbuf_adds(body, "the command failed (see the log)\n");
	} else {
		size_t blen = 0;
		const char *text = lua_tolstring(L, -1, &blen);

		status = status_of(lua_tostring(L, -2));
		if (text)
			sbuf_add(body, text, blen);
	}
out:
	lua_settop(L, top);
	return status;
}

const struct admin_commands lx_admin_commands = {
	.open = shell_open,
	.close = shell_close,
	.run = shell_run,
};
