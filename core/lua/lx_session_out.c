/*
 * lx_session_out.c - what a session is sent, as Prosody modules see it:
 * `session.send` is a function of its own (called `session.send(st)` or
 * `session:send(st)`), a module may replace it, and util.filters' Lua
 * filters see every stanza the session is sent.
 *
 * override:  a function a module stored in `session.send`; every stanza
 *            delivered to the session goes to it instead. The function
 *            that was `session.send` before (the session's own send) sends
 *            past the override: through the Lua filters, then the core's
 *            filters (CSI) and out.
 * outgoing:  the Lua function util.filters installs (s:set_outgoing(fn)):
 *            fn(stanza, session) returns the stanza to send (the same, a
 *            new one) or nil to drop it.
 * trampoline: the one C filter (session.h) that runs both, first in the
 *            session's filter chain; present only while a session has an
 *            override or an outgoing function.
 *
 * A stanza a Lua function sends keeps its identity: the filter it passes
 * sees the same userdata (and the fields a module set on it); a stanza
 * from elsewhere reaches Lua as a copy.
 */
#include "lx_session.h"
#include "session.h"
#include "route.h"
#include "stanza.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char key_override = 'o';	/* user value keys (addresses) */
static const char key_wrapped = 'w';
static const char key_own = 's';
static const char key_outgoing = 'f';
static const char key_log = 'l';
static const char key_sending = 'n';	/* registry: the stanza Lua sends */

struct out {
	int depth;		/* trampoline calls under way */
	int no_override;	/* sends past the override under way */
	int no_lua;		/* sends past the whole trampoline under way */
	bool detached;		/* the session ended during a call */
};

static int trampoline(struct session *s, const struct st_node *n, void *data);
static void detach(struct session *s, void *data);

static const struct session_filter_ops out_ops = {
	.name = "lua", .filter = trampoline, .detach = detach,
};

static void detach(struct session *s, void *data)
{
	struct out *o = data;

	(void)s;
	if (o->depth > 0)
		o->detached = true;	/* freed when the outermost call ends */
	else
		free(o);
}

/* Pushes uservalue[key] of the session userdata at idx. */
static int get_hidden(lua_State *L, int idx, const char *key)
{
	lua_getiuservalue(L, idx, 1);
	int t = lua_rawgetp(L, -1, key);
	lua_remove(L, -2);
	return t;
}

static void set_hidden(lua_State *L, int idx, const char *key, int value_idx)
{
	value_idx = lua_absindex(L, value_idx);
	lua_getiuservalue(L, idx, 1);
	lua_pushvalue(L, value_idx);
	lua_rawsetp(L, -2, key);
	lua_pop(L, 1);
}

static bool has_hidden(lua_State *L, int idx, const char *key)
{
	bool yes = get_hidden(L, idx, key) != LUA_TNIL;

	lua_pop(L, 1);
	return yes;
}

/* Installs or removes the trampoline as the session's Lua side needs. */
static void update(lua_State *L, int idx, struct session *s)
{
	bool want = has_hidden(L, idx, &key_override) || has_hidden(L, idx, &key_outgoing);
	struct out *o = session_filter_data(s, &out_ops);

	if (want && !o)
		session_filter_add_first(s, &out_ops, xcalloc(1, sizeof(struct out)));
	else if (!want && o && o->depth == 0)
		session_filter_remove(s, &out_ops);
	/* else removed when the call under way ends */
}

/* Sends the stanza at st_idx to s with the userdata kept as the one its
 * filters see. */
static int send_keeping(lua_State *L, struct session *s, int st_idx)
{
	struct st_node *n = lx_stanza_check(L, st_idx, NULL);
	int r;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sending);	/* the previous one */
	lua_pushvalue(L, st_idx);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &key_sending);
	r = session_send(s, n);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &key_sending);
	return r;
}

/* The session's own send (upvalue 1: the session userdata): send(st) or
 * send(session, st); past the override, through the Lua filters. */
static int own_send(lua_State *L)
{
	int st_idx = 1;
	struct session *s = lx_session_check(L, lua_upvalueindex(1));

	if (lua_rawequal(L, 1, lua_upvalueindex(1)))
		st_idx = 2;
	lx_stanza_check(L, st_idx, NULL);
	if (!s) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (s->role->routes_sends) {
		/* a server's stream: the answer goes on our own stream */
		struct st_doc *doc;
		struct st_node *n = lx_stanza_check(L, st_idx, &doc);

		st_doc_ref(doc);
		route_stanza(doc, n, NULL);
		st_doc_unref(doc);
		lua_pushboolean(L, 1);
		return 1;
	}
	struct out *o = session_filter_data(s, &out_ops);
	int r;

	if (o)
		o->no_override++;
	r = send_keeping(L, s, st_idx);
	if (o && !o->detached && session_filter_data(s, &out_ops) == o)
		o->no_override--;
	lua_pushboolean(L, r == 0);
	return 1;
}

/* A module's send (upvalue 1: the session, 2: its function) called as
 * session:send(st) or session.send(st): the function gets (st, ...). */
static int wrapped_send(lua_State *L)
{
	if (lua_rawequal(L, 1, lua_upvalueindex(1)))
		lua_remove(L, 1);
	lua_pushvalue(L, lua_upvalueindex(2));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* session.send for the session userdata at idx. */
void lx_session_push_send(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (get_hidden(L, idx, &key_override) != LUA_TNIL) {
		if (get_hidden(L, idx, &key_wrapped) == LUA_TNIL) {
			lua_pop(L, 1);
			lua_pushvalue(L, idx);
			lua_pushvalue(L, -2);
			lua_pushcclosure(L, wrapped_send, 2);
			set_hidden(L, idx, &key_wrapped, -1);
		}
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	if (get_hidden(L, idx, &key_own) == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushvalue(L, idx);
		lua_pushcclosure(L, own_send, 1);
		set_hidden(L, idx, &key_own, -1);
	}
}

/* session.send = value: a function replaces the session's send; nil, the
 * session's own send or what reading session.send gave restores it. */
int lx_session_set_send(lua_State *L, int idx, struct session *s, int value_idx)
{
	idx = lua_absindex(L, idx);
	value_idx = lua_absindex(L, value_idx);
	bool restore = lua_isnil(L, value_idx);

	if (!restore && lua_type(L, value_idx) != LUA_TFUNCTION)
		return luaL_error(L, "session.send must be a function");
	if (!restore) {
		get_hidden(L, idx, &key_own);
		restore = lua_rawequal(L, -1, value_idx);
		get_hidden(L, idx, &key_wrapped);
		bool same = lua_rawequal(L, -1, value_idx);
		lua_pop(L, 2);
		if (same)
			return 0;	/* session.send = session.send */
	}
	lua_pushnil(L);
	set_hidden(L, idx, &key_wrapped, -1);
	set_hidden(L, idx, &key_override, restore ? -1 : value_idx);
	lua_pop(L, 1);
	if (s)
		update(L, idx, s);
	return 0;
}

/* s:set_outgoing(fn or nil): util.filters' function for what s is sent. */
static int l_set_outgoing(lua_State *L)
{
	struct session *s = lx_session_check(L, 1);

	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	set_hidden(L, 1, &key_outgoing, 2);
	if (s)
		update(L, 1, s);
	return 0;
}

/* Pushes the stanza Lua sees for n: the userdata being sent when it is
 * n's, else a copy. *copied tells which. */
static void push_view(lua_State *L, const struct st_node *n, bool *copied)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &key_sending);
	if (lx_stanza_test(L, -1, NULL) == n) {
		*copied = false;
		return;
	}
	lua_pop(L, 1);
	struct st_doc *doc = st_clone(n);

	lx_stanza_push(L, doc, doc->root);
	st_doc_unref(doc);
	*copied = true;
}

/* Sends n on past the trampoline (the Lua side is done with it). */
static int send_past(struct session *s, struct out *o, const struct st_node *n)
{
	int r;

	o->no_lua++;
	r = session_send(s, n);
	if (!o->detached)
		o->no_lua--;
	return r;
}

/* The Lua side of one stanza: the override takes it, or the outgoing
 * function passes (0), replaces (sent here) or drops it. Stack: [sess]. */
static int run_lua(lua_State *L, struct session *s, struct out *o,
		   const struct st_node *n)
{
	bool copied;

	if (!o->no_override) {
		if (get_hidden(L, -1, &key_override) == LUA_TFUNCTION) {
			push_view(L, n, &copied);
			if (lx_pcall(L, 1, 0, "session.send") == LUA_OK)
				return SESSION_FILTER_TAKEN;
			return SESSION_FILTER_PASS;	/* not lost to a broken module */
		}
		lua_pop(L, 1);
	}
	if (get_hidden(L, -1, &key_outgoing) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return SESSION_FILTER_PASS;
	}
	push_view(L, n, &copied);
	lua_pushvalue(L, -3);
	if (lx_pcall(L, 2, 1, "filters") != LUA_OK)
		return SESSION_FILTER_PASS;
	struct st_doc *doc;
	struct st_node *out = lx_stanza_test(L, -1, &doc);
	int r = SESSION_FILTER_TAKEN;

	if (out == n && !copied) {
		r = SESSION_FILTER_PASS;
	} else if (out) {
		st_doc_ref(doc);
		int sr = send_past(s, o, out);
		st_doc_unref(doc);
		if (sr < 0)
			r = sr;
	}
	lua_pop(L, 1);
	return r;
}

static int trampoline(struct session *s, const struct st_node *n, void *data)
{
	struct out *o = data;
	lua_State *L = lx_state();
	int top, r;

	if (o->no_lua || !L)
		return SESSION_FILTER_PASS;
	top = lua_gettop(L);
	o->depth++;
	lx_session_push(L, s);
	r = run_lua(L, s, o, n);
	o->depth--;
	lua_settop(L, top);
	if (o->detached) {
		if (o->depth == 0)
			free(o);
		return SESSION_FILTER_TAKEN;
	}
	if (o->depth == 0) {
		lx_session_push(L, s);
		bool want = has_hidden(L, -1, &key_override) || has_hidden(L, -1, &key_outgoing);
		lua_pop(L, 1);
		if (!want) {
			/* removed while it ran: the rest of the chain, without it */
			session_filter_remove(s, &out_ops);
			if (r == SESSION_FILTER_PASS) {
				int sr = session_send(s, n);
				return sr < 0 ? sr : SESSION_FILTER_TAKEN;
			}
		}
	}
	return r;
}

/* session.log(level, fmt, ...) (upvalue 1: the session userdata), as
 * Prosody's sessions have: a line with the session's id as its source. */
static int session_log(lua_State *L)
{
	struct session *s = lx_session_test(L, lua_upvalueindex(1));
	int level = log_level_parse(luaL_checkstring(L, 1));
	char source[32];

	if (level < 0)
		level = strcmp(lua_tostring(L, 1), "warning") == 0 ? LOG_WARN : LOG_INFO;
	snprintf(source, sizeof(source), "%s%s", s ? s->role->name : "session",
		 s ? s->id : "");
	if (!log_source_enabled((enum log_level)level, source))
		return 0;
	if (lua_gettop(L) > 2) {
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "format");
		lua_remove(L, -2);
		lua_insert(L, 2);
		lua_call(L, lua_gettop(L) - 2, 1);
	} else {
		luaL_tolstring(L, 2, NULL);
	}
	log_msg((enum log_level)level, source, "%s", lua_tostring(L, -1));
	return 0;
}

void lx_session_push_log(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (get_hidden(L, idx, &key_log) == LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushvalue(L, idx);
		lua_pushcclosure(L, session_log, 1);
		set_hidden(L, idx, &key_log, -1);
	}
}

void lx_session_out_register(lua_State *L, int methods_idx)
{
	lua_pushcfunction(L, l_set_outgoing);
	lua_setfield(L, methods_idx, "set_outgoing");
}
