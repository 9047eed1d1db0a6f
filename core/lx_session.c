/* lx_session.c - the "starling.session" userdata. */
#include "lx_session.h"
#include "route.h"
#include "session.h"
#include "sm.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

/* Fires the named event with { origin = s, stanza = doc's root } when it
 * has handlers: true when one took it. */
static bool fire_stanza_event(struct session *s, const char *name, int n,
			      struct st_doc *doc)
{
	lua_State *L = lx_state();
	struct host *h = s->host ? route_host(s->host) : NULL;
	struct hook_chain *ch;
	int handled;

	if (!h || n < 0 || (size_t)n >= 512 || !(ch = hook_find(&h->hooks, name)))
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

bool lx_session_fire_preauth(struct session *s, struct st_doc *doc,
			     struct st_node *child)
{
	char name[512];
	int n = snprintf(name, sizeof(name), "pre-auth/iq-%s/%s:%s",
			 st_attr_get(doc->root, "type"), child->ns, child->name);

	return fire_stanza_event(s, name, n, doc);
}

bool lx_session_fire_element(struct session *s, struct st_doc *doc)
{
	char name[512];
	int n = snprintf(name, sizeof(name), "stream-element/%s:%s",
			 doc->root->ns, doc->root->name);

	return fire_stanza_event(s, name, n, doc);
}

void lx_session_fire_unacked(struct session *s, struct st_doc **docs, size_t n)
{
	lua_State *L = lx_state();
	struct host *h = s->host ? route_host(s->host) : NULL;
	struct hook_chain *ch = h ? hook_find(&h->hooks, "smacks-unacked") : NULL;

	if (ch && n) {
		lua_createtable(L, 0, 2);
		lx_session_push(L, s);
		lua_setfield(L, -2, "session");
		lua_createtable(L, (int)n, 0);
		for (size_t i = 0; i < n; i++) {
			lx_stanza_push(L, docs[i], docs[i]->root);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		lua_setfield(L, -2, "stanzas");
		if (hook_fire(L, ch, -1))
			lua_pop(L, 1);
		lua_pop(L, 1);
	}
	for (size_t i = 0; i < n; i++)
		st_doc_unref(docs[i]);
	free(docs);
}

/* s:sm_enable{ resume=, max_queue=, ack_every=, ack_after=, hibernate= }
 * -> the stream management id, or nil and an error. */
static int l_sm_enable(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	struct sm_policy pol = { .max_queue = 500, .ack_every = 5,
				 .ack_after = 30, .hibernate = 600 };

	luaL_checktype(L, 2, LUA_TTABLE);
	if (!s || !(s->flags & SESS_F_BOUND))
		return luaL_error(L, "sm_enable needs a bound session");
	lua_getfield(L, 2, "resume");
	pol.resume = lua_toboolean(L, -1);
	lua_getfield(L, 2, "max_queue");
	pol.max_queue = (uint32_t)luaL_optinteger(L, -1, pol.max_queue);
	lua_getfield(L, 2, "ack_every");
	pol.ack_every = (uint32_t)luaL_optinteger(L, -1, pol.ack_every);
	lua_getfield(L, 2, "ack_after");
	pol.ack_after = luaL_optnumber(L, -1, pol.ack_after);
	lua_getfield(L, 2, "hibernate");
	pol.hibernate = luaL_optnumber(L, -1, pol.hibernate);
	lua_pop(L, 5);
	if (sm_enable(s, &pol) != 0) {
		lua_pushnil(L);
		lua_pushliteral(L, "stream management is already enabled");
		return 2;
	}
	lua_pushstring(L, s->sm->id);
	return 1;
}

/* s:sm_resume(previd, h) on a new authenticated session: true (the old
 * session has taken over this connection and sent <resumed/>), or nil
 * and "item-not-found" / "bad-request". */
static int l_sm_resume(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	const char *previd = luaL_checkstring(L, 2);
	const char *h = luaL_checkstring(L, 3);
	int r;

	if (!s || !(s->flags & SESS_F_AUTHED) || (s->flags & SESS_F_BOUND))
		return luaL_error(L, "sm_resume needs an authenticated, unbound session");
	r = sm_resume(s, previd, h);
	if (r == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushstring(L, r == -ENOENT ? "item-not-found" : "bad-request");
	return 2;
}

/* While the client is inactive (XEP-0352) the policy decides each
 * stanza's fate: "csi-outgoing" handlers return "send" (or nothing),
 * "flush" (everything held, then this), "hold", "hold:<key>" (replacing
 * a held stanza of the same key) or "drop". */
static int csi_send(lua_State *L, struct session *s, struct st_node *n)
{
	struct host *h = route_host(s->host);
	struct hook_chain *ch = h ? hook_find(&h->hooks, "csi-outgoing") : NULL;
	const char *action = NULL;
	int r;

	if (ch) {
		lua_createtable(L, 0, 2);
		lua_pushvalue(L, 1);
		lua_setfield(L, -2, "session");
		lua_pushvalue(L, 2);
		lua_setfield(L, -2, "stanza");
		if (hook_fire(L, ch, -1))
			action = lua_tostring(L, -1);
	}
	if (!action || strcmp(action, "send") == 0)
		r = session_send(s, n);
	else if (strcmp(action, "flush") == 0)
		r = session_flush_held(s) == 0 ? session_send(s, n) : -EPIPE;
	else if (strcmp(action, "drop") == 0)
		r = 0;
	else if (strncmp(action, "hold", 4) == 0)
		r = session_hold(s, n, action[4] == ':' ? action + 5 : NULL);
	else
		r = session_send(s, n);
	lua_settop(L, 2);
	return r;
}

static int l_send(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	struct st_node *n = lx_stanza_check(L, 2, NULL);
	int r = -EPIPE;

	if (s)
		r = (s->flags & SESS_F_INACTIVE) ? csi_send(L, s, n) : session_send(s, n);
	lua_pushboolean(L, r == 0);
	return 1;
}

/* s:set_inactive(bool): XEP-0352 state; going active flushes what was
 * held. */
static int l_set_inactive(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;

	if (!s)
		return 0;
	if (lua_toboolean(L, 2)) {
		s->flags |= SESS_F_INACTIVE;
	} else {
		s->flags &= ~SESS_F_INACTIVE;
		session_flush_held(s);
	}
	return 0;
}

static int l_send_nonza(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	struct st_node *n = lx_stanza_check(L, 2, NULL);

	lua_pushboolean(L, s && session_send_nonza(s, n) == 0);
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
	else if (strcmp(k, "sm_id") == 0)
		push_opt(L, s->sm ? s->sm->id : NULL);
	else if (strcmp(k, "sm_resumable") == 0)
		lua_pushboolean(L, s->sm && s->sm->pol.resume);
	else if (strcmp(k, "sm_queued") == 0)
		lua_pushinteger(L, s->sm ? (lua_Integer)s->sm->queued : 0);
	else if (strcmp(k, "inactive") == 0)
		lua_pushboolean(L, (s->flags & SESS_F_INACTIVE) != 0);
	else if (strcmp(k, "held_bytes") == 0)
		lua_pushinteger(L, (lua_Integer)s->held_bytes);
	else if (strcmp(k, "hibernating") == 0)
		lua_pushboolean(L, (s->flags & SESS_F_HIBERNATING) != 0);
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
		{ "send_nonza", l_send_nonza },
		{ "set_inactive", l_set_inactive },
		{ "close", l_close },
		{ "sm_enable", l_sm_enable },
		{ "sm_resume", l_sm_resume },
		{ NULL, NULL },
	};

	luaL_newmetatable(L, SESSION_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__methods");
	lua_pop(L, 1);
}
