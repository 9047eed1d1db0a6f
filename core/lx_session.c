/* lx_session.c - the "starling.session" userdata. */
#include "lx_session.h"
#include "route.h"
#include "session.h"
#include "tls.h"

#include <stdio.h>

#define SESSION_MT "starling.session"

struct lx_session {
	struct session *s;	/* NULL once the session ended */
};

static struct lx_session *check_ud(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SESSION_MT);
}

void lx_session_push(lua_State *L, struct session *s)
{
	if (s->ud_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->ud_ref);
		return;
	}
	struct lx_session *u = lua_newuserdatauv(L, sizeof(*u), 1);
	u->s = s;
	luaL_setmetatable(L, SESSION_MT);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	s->ud_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

struct session *lx_session_check(lua_State *L, int idx)
{
	return check_ud(L, idx)->s;
}

void lx_session_detach(struct session *s)
{
	lua_State *L = lx_state();

	if (!L || s->ud_ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ud_ref);
	struct lx_session *u = lua_touserdata(L, -1);
	if (u)
		u->s = NULL;
	lua_pop(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, s->ud_ref);
	s->ud_ref = LUA_NOREF;
}

void lx_session_fire(struct session *s, const char *event)
{
	lua_State *L = lx_state();
	struct host *h = s->host ? route_host(s->host) : NULL;
	struct hook_chain *ch;

	if (!h || !(ch = hook_find(&h->hooks, event)))
		return;
	lua_createtable(L, 0, 1);
	lx_session_push(L, s);
	lua_setfield(L, -2, "session");
	if (hook_fire(L, ch, -1))
		lua_pop(L, 1);
	lua_pop(L, 1);
}

void lx_session_fire_features(struct session *s, struct st_doc *d,
			      struct st_node *features)
{
	lua_State *L = lx_state();
	struct host *h = route_host(s->host);
	struct hook_chain *ch;

	if (!h || !(ch = hook_find(&h->hooks, "stream-features")))
		return;
	lua_createtable(L, 0, 2);
	lx_session_push(L, s);
	lua_setfield(L, -2, "origin");
	d->cursor = features;
	lx_stanza_push(L, d, features);
	lua_setfield(L, -2, "features");
	if (hook_fire(L, ch, -1))
		lua_pop(L, 1);
	lua_pop(L, 1);
}

bool lx_session_fire_preauth(struct session *s, struct st_doc *doc,
			     struct st_node *child)
{
	lua_State *L = lx_state();
	struct host *h = s->host ? route_host(s->host) : NULL;
	char name[512];
	struct hook_chain *ch;
	int n, handled;

	n = snprintf(name, sizeof(name), "pre-auth/iq-%s/%s:%s",
		     st_attr_get(doc->root, "type"), child->ns, child->name);
	if (!h || n < 0 || (size_t)n >= sizeof(name) ||
	    !(ch = hook_find(&h->hooks, name)))
		return false;
	lua_createtable(L, 0, 2);
	lx_session_push(L, s);
	lua_setfield(L, -2, "origin");
	lx_stanza_push(L, doc, doc->root);
	lua_setfield(L, -2, "stanza");
	handled = hook_fire(L, ch, -1);
	lua_pop(L, handled ? 2 : 1);
	return handled;
}

static int l_send(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	struct st_node *n = lx_stanza_check(L, 2, NULL);

	lua_pushboolean(L, s && session_send(s, n) == 0);
	return 1;
}

static int l_close(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	const char *cond = luaL_optstring(L, 2, NULL);
	const char *text = luaL_optstring(L, 3, NULL);

	if (s)
		session_close(s, cond, text);
	return 0;
}

static void push_opt(lua_State *L, const char *v)
{
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
}

static bool push_field(lua_State *L, struct session *s, const char *k)
{
	if (strcmp(k, "closed") == 0) {
		lua_pushboolean(L, s == NULL);
		return true;
	}
	if (!s)
		return false;
	if (strcmp(k, "type") == 0)
		lua_pushliteral(L, "c2s");
	else if (strcmp(k, "id") == 0)
		lua_pushstring(L, s->id);
	else if (strcmp(k, "username") == 0)
		push_opt(L, s->username);
	else if (strcmp(k, "host") == 0)
		push_opt(L, s->host);
	else if (strcmp(k, "resource") == 0)
		push_opt(L, s->resource);
	else if (strcmp(k, "full_jid") == 0)
		push_opt(L, s->full_jid);
	else if (strcmp(k, "bare_jid") == 0)
		push_opt(L, s->bare_jid);
	else if (strcmp(k, "ip") == 0)
		push_opt(L, s->conn ? s->conn->ip : NULL);
	else if (strcmp(k, "secure") == 0)
		lua_pushboolean(L, (s->flags & SESS_F_TLS) != 0);
	else if (strcmp(k, "tls_version") == 0)
		push_opt(L, s->conn && s->conn->ssl ? tls_version(s->conn->ssl) : NULL);
	else if (strcmp(k, "connected_at") == 0)
		lua_pushnumber(L, s->connected_at);
	else if (strcmp(k, "idle") == 0)
		lua_pushnumber(L, now_mono() - s->last_activity);
	else if (strcmp(k, "authenticated") == 0)
		lua_pushboolean(L, (s->flags & SESS_F_AUTHED) != 0);
	else
		return false;
	return true;
}

static int l_index(lua_State *L)
{
	struct lx_session *u = check_ud(L, 1);
	const char *k = lua_tostring(L, 2);

	if (k && push_field(L, u->s, k))
		return 1;
	if (k && luaL_getmetafield(L, 1, "__methods") == LUA_TTABLE) {
		lua_getfield(L, -1, k);
		if (!lua_isnil(L, -1))
			return 1;
		lua_pop(L, 2);
	}
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int l_newindex(lua_State *L)
{
	check_ud(L, 1);
	const char *k = lua_tostring(L, 2);

	if (k && (strcmp(k, "closed") == 0 || strcmp(k, "full_jid") == 0 ||
		  strcmp(k, "username") == 0 || strcmp(k, "host") == 0 ||
		  strcmp(k, "resource") == 0 || strcmp(k, "type") == 0))
		return luaL_error(L, "session field '%s' is read-only", k);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;

	if (!s)
		lua_pushliteral(L, "session (closed)");
	else
		lua_pushfstring(L, "session %s (%s)", s->id,
				s->full_jid ? s->full_jid : "unbound");
	return 1;
}

void lx_session_register(lua_State *L)
{
	static const luaL_Reg meta[] = {
		{ "__index", l_index },
		{ "__newindex", l_newindex },
		{ "__tostring", l_tostring },
		{ NULL, NULL },
	};
	static const luaL_Reg methods[] = {
		{ "send", l_send },
		{ "close", l_close },
		{ NULL, NULL },
	};

	luaL_newmetatable(L, SESSION_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__methods");
	lua_pop(L, 1);
}
