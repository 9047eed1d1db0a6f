/* lx_session.c - the "starling.session" userdata. */
#include "lx_session.h"
#include "csi.h"
#include "lx_csi.h"
#include "node.h"
#include "route.h"
#include "session.h"
#include "sm.h"
#include "tls.h"
#include "tls13.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char SESSION_MT[] = "starling.session";

struct lx_session {
	struct session *s;	/* NULL once the session ended */
};

static struct lx_session *check_ud(lua_State *L, int idx)
{
	return lx_checkudata(L, idx, SESSION_MT);
}

void lx_session_push(lua_State *L, struct session *s)
{
	if (s->lua_ref) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->lua_ref);
		return;
	}
	struct lx_session *u = lua_newuserdatauv(L, sizeof(*u), 1);
	u->s = s;
	lx_setmetatable(L, SESSION_MT);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	s->lua_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

struct session *lx_session_check(lua_State *L, int idx)
{
	return check_ud(L, idx)->s;
}

struct session *lx_session_test(lua_State *L, int idx)
{
	struct lx_session *u = lx_testudata(L, idx, SESSION_MT);

	return u ? u->s : NULL;
}

/* Forgets the userdata of a session that ended (session_forget_hook). */
static void detach(struct session *s)
{
	lua_State *L = lx_state();

	if (!L || !s->lua_ref)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->lua_ref);
	struct lx_session *u = lua_touserdata(L, -1);
	if (u)
		u->s = NULL;
	lua_pop(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, s->lua_ref);
	s->lua_ref = 0;
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

/* s:set_inactive(true, policy) or s:set_inactive(false): XEP-0352 state
 * (core/features/csi.h); going active sends what was held. */
static int l_set_inactive(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;

	if (!lua_toboolean(L, 2)) {
		if (s)
			csi_active(s);
		return 0;
	}
	struct csi_policy *p = lx_csi_check_policy(L, 3);
	if (s)
		csi_inactive(s, p);
	return 0;
}

/* s:pause_reading(seconds): nothing more is read from the client for
 * that long (core/xmpp/session.h). */
static int l_pause_reading(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	double seconds = luaL_checknumber(L, 2);

	if (s)
		session_pause_reading(s, seconds);
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

/* The fields a session shows, by the code __index finds for a name in
 * its table (upvalue 1) beside the methods. */
enum field {
	F_CLOSED = 1, F_TYPE, F_ID, F_USERNAME, F_HOST, F_RESOURCE, F_FULL_JID,
	F_BARE_JID, F_IP, F_SECURE, F_TLS_VERSION, F_CONNECTED_AT, F_SM_ID,
	F_SM_RESUMABLE, F_SM_QUEUED, F_INACTIVE, F_HELD_BYTES, F_HIBERNATING,
	F_IDLE, F_ANONYMOUS, F_DIRECTION, F_FROM_HOST, F_TO_HOST, F_NODE,
	F_AUTHENTICATED,
};

static const char *const field_names[] = {
	[F_CLOSED] = "closed", [F_TYPE] = "type", [F_ID] = "id",
	[F_USERNAME] = "username", [F_HOST] = "host",
	[F_RESOURCE] = "resource", [F_FULL_JID] = "full_jid",
	[F_BARE_JID] = "bare_jid", [F_IP] = "ip", [F_SECURE] = "secure",
	[F_TLS_VERSION] = "tls_version", [F_CONNECTED_AT] = "connected_at",
	[F_SM_ID] = "sm_id", [F_SM_RESUMABLE] = "sm_resumable",
	[F_SM_QUEUED] = "sm_queued", [F_INACTIVE] = "inactive",
	[F_HELD_BYTES] = "held_bytes", [F_HIBERNATING] = "hibernating",
	[F_IDLE] = "idle", [F_ANONYMOUS] = "anonymous",
	[F_DIRECTION] = "direction", [F_FROM_HOST] = "from_host",
	[F_TO_HOST] = "to_host", [F_NODE] = "node",
	[F_AUTHENTICATED] = "authenticated",
};

/* Pushes field f of s (nil for all but closed once s has ended). */
static void push_field(lua_State *L, struct session *s, enum field f)
{
	if (f == F_CLOSED) {
		lua_pushboolean(L, s == NULL);
		return;
	}
	if (!s) {
		lua_pushnil(L);
		return;
	}
	switch (f) {
	case F_TYPE:
		lua_pushstring(L, s->role->name);
		break;
	case F_DIRECTION:	/* as Prosody's s2s sessions */
		lua_pushstring(L, s->flags & SESS_F_OUTGOING ? "outgoing" : "incoming");
		break;
	case F_FROM_HOST:
		push_opt(L, s->flags & SESS_F_OUTGOING ? s->host : s->peer);
		break;
	case F_TO_HOST:
		push_opt(L, s->flags & SESS_F_OUTGOING ? s->peer : s->host);
		break;
	case F_ID:
		lua_pushstring(L, s->id);
		break;
	case F_USERNAME:
		push_opt(L, s->username);
		break;
	case F_HOST:
		push_opt(L, s->host);
		break;
	case F_RESOURCE:
		push_opt(L, s->resource);
		break;
	case F_FULL_JID:
		push_opt(L, s->full_jid);
		break;
	case F_BARE_JID:
		push_opt(L, s->bare_jid);
		break;
	case F_IP:
		push_opt(L, s->conn ? s->conn->ip : NULL);
		break;
	case F_SECURE:
		lua_pushboolean(L, (s->flags & SESS_F_TLS) != 0);
		break;
	case F_TLS_VERSION:
		push_opt(L, s->conn ? conn_tls_version(s->conn) : NULL);
		break;
	case F_CONNECTED_AT:
		lua_pushnumber(L, s->connected_at);
		break;
	case F_SM_ID:
		push_opt(L, s->sm ? s->sm->id : NULL);
		break;
	case F_SM_RESUMABLE:
		lua_pushboolean(L, s->sm && s->sm->pol.resume);
		break;
	case F_SM_QUEUED:
		lua_pushinteger(L, s->sm ? (lua_Integer)s->sm->queued : 0);
		break;
	case F_INACTIVE:
		lua_pushboolean(L, (s->flags & SESS_F_INACTIVE) != 0);
		break;
	case F_HELD_BYTES:
		lua_pushinteger(L, (lua_Integer)csi_held_bytes(s));
		break;
	case F_HIBERNATING:
		lua_pushboolean(L, (s->flags & SESS_F_HIBERNATING) != 0);
		break;
	case F_IDLE:
		lua_pushnumber(L, now_mono() - s->last_activity);
		break;
	case F_ANONYMOUS:
		lua_pushboolean(L, (s->flags & SESS_F_ANONYMOUS) != 0);
		break;
	case F_NODE:		/* 0 when the server is one process */
		lua_pushinteger(L, node_of(s));
		break;
	default:			/* F_AUTHENTICATED */
		lua_pushboolean(L, (s->flags & SESS_F_AUTHED) != 0);
		break;
	}
}

/* A field, a method, or what Lua code stored in the session. */
static int l_index(lua_State *L)
{
	struct lx_session *u = check_ud(L, 1);

	lua_pushvalue(L, 2);
	switch (lua_rawget(L, lua_upvalueindex(1))) {
	case LUA_TNUMBER:
		push_field(L, u->s, (enum field)lua_tointeger(L, -1));
		return 1;
	case LUA_TFUNCTION:
		return 1;
	default:
		break;
	}
	if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "send") == 0) {
		lx_session_push_send(L, 1);
		return 1;
	}
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	if (lua_rawget(L, -2) == LUA_TNIL && lua_type(L, 2) == LUA_TSTRING &&
	    strcmp(lua_tostring(L, 2), "log") == 0)
		lx_session_push_log(L, 1);
	return 1;
}

/* A session field's value as the other nodes get it: false for values
 * they cannot (tables, functions). */
static bool to_node_value(lua_State *L, int idx, struct node_value *v)
{
	memset(v, 0, sizeof(*v));
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		v->type = NV_NIL;
		return true;
	case LUA_TBOOLEAN:
		v->type = NV_BOOLEAN;
		v->b = lua_toboolean(L, idx);
		return true;
	case LUA_TNUMBER:
		v->type = NV_NUMBER;
		v->n = lua_tonumber(L, idx);
		return true;
	case LUA_TSTRING:
		v->type = NV_STRING;
		v->s = lua_tostring(L, idx);
		return true;
	default:
		v->type = NV_STANZA;
		return (v->stanza = lx_stanza_test(L, idx, NULL)) != NULL;
	}
}

/* Session fields C reads as flags: want_carbons (mod_carbons) is
 * SESS_F_CARBONS, so that a message to or from an account without a
 * carbons-enabled session need not enter Lua for it (core/features/
 * gate.h). */
static void field_flag(struct session *s, const char *k, bool on)
{
	if (!s || strcmp(k, "want_carbons") != 0)
		return;
	if (on)
		s->flags |= SESS_F_CARBONS;
	else
		s->flags &= ~SESS_F_CARBONS;
}

/* node_field_set_hook: another node's session changed a shared field;
 * its proxy here shows the new value. */
static void set_proxy_field(struct session *s, const char *name,
			    const struct node_value *v)
{
	lua_State *L = lx_state();
	struct st_doc *doc;

	if (!L)
		return;
	lx_session_push(L, s);
	lua_getiuservalue(L, -1, 1);
	switch (v->type) {
	case NV_BOOLEAN:
		lua_pushboolean(L, v->b);
		break;
	case NV_NUMBER:
		if (v->n == (lua_Integer)v->n)
			lua_pushinteger(L, (lua_Integer)v->n);
		else
			lua_pushnumber(L, v->n);
		break;
	case NV_STRING:
		lua_pushstring(L, v->s);
		break;
	case NV_STANZA:
		doc = st_clone(v->stanza);
		lx_stanza_push(L, doc, doc->root);
		st_doc_unref(doc);
		break;
	default:
		lua_pushnil(L);
		break;
	}
	field_flag(s, name, lua_toboolean(L, -1));
	lua_setfield(L, -2, name);
	lua_pop(L, 2);
}

/* node_fields_hook: the shared fields a local session has, for a node
 * that learns of it. */
static void each_shared_field(struct session *s,
			      void (*emit)(struct session *s, const char *name,
					   const struct node_value *v, void *ctx),
			      void *ctx)
{
	lua_State *L = lx_state();
	const char *k;
	struct node_value v;

	if (!L || !s->lua_ref)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->lua_ref);
	lua_getiuservalue(L, -1, 1);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING && node_field_shared(k = lua_tostring(L, -2)) &&
		    to_node_value(L, -1, &v))
			emit(s, k, &v, ctx);
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static int l_newindex(lua_State *L)
{
	struct session *s = check_ud(L, 1)->s;
	const char *k = lua_tostring(L, 2);

	if (k && strcmp(k, "send") == 0)
		return lx_session_set_send(L, 1, s, 3);

	if (k && (strcmp(k, "closed") == 0 || strcmp(k, "full_jid") == 0 ||
		  strcmp(k, "username") == 0 || strcmp(k, "host") == 0 ||
		  strcmp(k, "resource") == 0 || strcmp(k, "type") == 0))
		return luaL_error(L, "session field '%s' is read-only", k);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	if (k)
		field_flag(s, k, lua_toboolean(L, 3));
	if (s && k && node_self && node_field_shared(k)) {
		struct node_value v;
		if (to_node_value(L, 3, &v))
			node_field_changed(s, k, &v);
	}
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
		{ "__newindex", l_newindex },
		{ "__tostring", l_tostring },
		{ NULL, NULL },
	};
	static const luaL_Reg methods[] = {
		{ "send_nonza", l_send_nonza },
		{ "set_inactive", l_set_inactive },
		{ "pause_reading", l_pause_reading },
		{ "close", l_close },
		{ "sm_enable", l_sm_enable },
		{ "sm_resume", l_sm_resume },
		{ NULL, NULL },
	};

	session_forget_hook = detach;
	node_field_set_hook = set_proxy_field;
	node_fields_hook = each_shared_field;
	lx_newmetatable(L, SESSION_MT);
	luaL_setfuncs(L, meta, 0);
	luaL_newlib(L, methods);
	lx_session_out_register(L, lua_gettop(L));
	for (int f = F_CLOSED; f <= F_AUTHENTICATED; f++) {
		lua_pushinteger(L, f);
		lua_setfield(L, -2, field_names[f]);
	}
	lua_pushcclosure(L, l_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
