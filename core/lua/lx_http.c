/* lx_http.c - starling.http: the HTTP server for Lua modules.
 *
 *   listen()                      options into the HTTP layer, ports open
 *   route(host, method, path, handler, owner[, cors]) -> route
 *                                 handler: a function, or a table
 *                                 { head = fn, handler = fn } whose head
 *                                 sees the request before its body;
 *                                 cors: { origins = true | { origin... },
 *                                 methods =, headers =, max_age =,
 *                                 credentials = } (http_route.h)
 *   unroute(route)
 *   remove(path), mkdir(path)     -> true | nil, error (files a module
 *                                    keeps, such as uploads)
 *   websocket{ consider_secure =, cross_domain = true|false|{origins} }
 *                                 -> the XMPP over WebSocket endpoint, a
 *                                    native handler for route()
 *   bosh{ consider_secure =, max_wait =, hold =, max_inactivity =,
 *         max_polling =, max_requests = }
 *                                 -> the BOSH endpoint, likewise
 *   stats()                       counts for metrics
 *
 * A Lua handler is called as Prosody's are: handler(event, rest) with
 * event.request (method, path, url = { path, query }, headers with
 * lowercase names, '-' as '_', body, ip, secure, host) and event.response
 * (status_code, headers, send(body)). It returns a body (string), a
 * status (number), a table of response fields, or true when it answers
 * later with response:send(); nil is 404. A response Lua drops without
 * answering is answered 500 when it is collected.
 *
 * A head handler gets the same event before the body is read (request
 * without body); answering refuses the request, and
 * response:body_to_file(path, limit) sends the body to a new file: the
 * handler then sees request.body_file and request.body_length, and must
 * call response:keep_body() to keep the file (else it is removed).
 * response:send_file(path[, offset, length]) answers with a file's bytes
 * (status_code and headers as for send). */
#include "lx.h"
#include "http.h"
#include "http_route.h"
#include "log.h"
#include "config.h"
#include "tls.h"
#include "bosh.h"
#include "websocket.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUTE_MT "starling.http.route"
#define RESPONSE_MT "starling.http.response"
#define NATIVE_MT "starling.http.native"

/* A route's Lua function. */
struct lx_route {
	int ref;
	int head_ref;			/* LUA_NOREF without a head handler */
	char *owner;
};

struct lx_route_ud {
	struct http_route *r;		/* NULL once removed */
};

struct lx_response {
	struct http_request *req;	/* NULL once the request is over */
};

/* A native endpoint's settings (WebSocket or BOSH), copied into each
 * route. */
struct lx_native {
	bool bosh;
	struct bosh_options bo;
	bool consider_secure, any_origin;
	char **origins;
	size_t n;
};

/* --- responses ------------------------------------------------------------ */

static void response_done(struct http_request *req, void *data)
{
	struct lx_response *resp = data;

	resp->req = NULL;
}

/* Header lines from the response's headers table (at idx): names as
 * Prosody writes them (content_type -> Content-Type). false when a name
 * or value could split the response. */
static bool header_lines(lua_State *L, int idx, struct sbuf *b)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		return true;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t nlen, vlen;
		const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &nlen) : NULL;
		const char *value = lua_isstring(L, -1) ? lua_tolstring(L, -1, &vlen) : NULL;
		if (!name || !value || !nlen || strpbrk(value, "\r\n") || vlen != strlen(value)) {
			lua_pop(L, 2);
			return false;
		}
		bool up = true;
		for (size_t i = 0; i < nlen; i++) {
			char c = name[i] == '_' ? '-' : name[i];
			if (!isalnum((unsigned char)c) && c != '-') {
				lua_pop(L, 2);
				return false;
			}
			sbuf_addc(b, up ? (char)toupper((unsigned char)c) : c);
			up = c == '-';
		}
		sbuf_adds(b, ": ");
		sbuf_add(b, value, vlen);
		sbuf_adds(b, "\r\n");
		lua_pop(L, 1);
	}
	return true;
}

/* Answers with the response's fields (status_code, headers) and body. */
static int send_response(lua_State *L, int resp_idx, const char *body, size_t len,
			 int status_override)
{
	struct lx_response *resp = lx_checkudata(L, resp_idx, RESPONSE_MT);
	struct http_request *req = resp->req;
	struct sbuf h;
	int status;

	if (!req)
		return luaL_error(L, "the request was answered already, or its connection is gone");
	lua_getiuservalue(L, resp_idx, 1);
	int t = lua_gettop(L);
	lua_getfield(L, t, "status_code");
	status = status_override ? status_override : (int)luaL_optinteger(L, -1, 200);
	lua_getfield(L, t, "headers");
	sbuf_init(&h);
	if (!header_lines(L, lua_gettop(L), &h)) {
		sbuf_free(&h);
		lua_settop(L, t - 1);
		return luaL_error(L, "a response header name or value is not allowed");
	}
	lua_settop(L, t - 1);
	if (status_override && !body) {
		char text[64];
		int n = snprintf(text, sizeof(text), "%d %s\n", status, http_reason(status));
		if (!strstr(h.p ? h.p : "", "Content-Type"))
			sbuf_adds(&h, "Content-Type: text/plain; charset=utf-8\r\n");
		http_respond(req, status, h.p, text, (size_t)n);
	} else {
		http_respond(req, status, h.p, body, len);
	}
	sbuf_free(&h);
	return 0;
}

/* The response's status_code (default 200) and header lines into *h;
 * raises on a header that is not allowed. */
static int response_head(lua_State *L, int resp_idx, struct sbuf *h)
{
	int status, t;

	lua_getiuservalue(L, resp_idx, 1);
	t = lua_gettop(L);
	lua_getfield(L, t, "status_code");
	status = (int)luaL_optinteger(L, -1, 200);
	lua_getfield(L, t, "headers");
	sbuf_init(h);
	if (!header_lines(L, lua_gettop(L), h)) {
		sbuf_free(h);
		lua_settop(L, t - 1);
		return luaL_error(L, "a response header name or value is not allowed");
	}
	lua_settop(L, t - 1);
	return status;
}

static int push_errno(lua_State *L, int e)
{
	lua_pushnil(L);
	lua_pushstring(L, strerror(e));
	return 2;
}

/* response:send_file(path[, offset[, length]]): true, or nil and why
 * (nothing is sent then). */
static int l_response_send_file(lua_State *L)
{
	struct lx_response *resp = lx_checkudata(L, 1, RESPONSE_MT);
	const char *path = luaL_checkstring(L, 2);
	lua_Integer off = luaL_optinteger(L, 3, 0);
	struct stat st;
	struct sbuf h;
	int fd, status;

	if (!resp->req)
		return luaL_error(L, "the request was answered already, or its connection is gone");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return push_errno(L, errno);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || off < 0 || off > st.st_size) {
		close(fd);
		return push_errno(L, S_ISREG(st.st_mode) ? ERANGE : EISDIR);
	}
	lua_Integer len = luaL_optinteger(L, 4, st.st_size - off);
	if (len < 0 || len > st.st_size - off) {
		close(fd);
		return push_errno(L, ERANGE);
	}
	status = response_head(L, 1, &h);
	http_respond_file(resp->req, status, h.p, fd, (uint64_t)off, (uint64_t)len);
	sbuf_free(&h);
	lua_pushboolean(L, 1);
	return 1;
}

/* response:body_to_file(path, limit), in a head handler: true, or nil
 * and why. */
static int l_response_body_to_file(lua_State *L)
{
	struct lx_response *resp = lx_checkudata(L, 1, RESPONSE_MT);
	const char *path = luaL_checkstring(L, 2);
	lua_Integer limit = luaL_checkinteger(L, 3);
	int r;

	if (!resp->req || limit < 0)
		return push_errno(L, EINVAL);
	r = http_body_to_file(resp->req, path, (uint64_t)limit);
	if (r != 0)
		return push_errno(L, -r);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_response_keep_body(lua_State *L)
{
	struct lx_response *resp = lx_checkudata(L, 1, RESPONSE_MT);

	if (resp->req)
		http_body_keep(resp->req);
	return 0;
}

static int l_response_send(lua_State *L)
{
	size_t len = 0;
	const char *body = luaL_optlstring(L, 2, "", &len);

	send_response(L, 1, body, len, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_response_index(lua_State *L)
{
	lx_checkudata(L, 1, RESPONSE_MT);
	static const luaL_Reg methods[] = {
		{ "send", l_response_send },
		{ "send_file", l_response_send_file },
		{ "body_to_file", l_response_body_to_file },
		{ "keep_body", l_response_keep_body },
		{ NULL, NULL },
	};
	if (lua_type(L, 2) == LUA_TSTRING)
		for (const luaL_Reg *m = methods; m->name; m++)
			if (strcmp(lua_tostring(L, 2), m->name) == 0) {
				lua_pushcfunction(L, m->func);
				return 1;
			}
	if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "finished") == 0) {
		struct lx_response *resp = lua_touserdata(L, 1);
		lua_pushboolean(L, !resp->req || resp->req->answered);
		return 1;
	}
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int l_response_newindex(lua_State *L)
{
	lx_checkudata(L, 1, RESPONSE_MT);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

/* Collected with its request unanswered: nobody can answer it now. */
static int l_response_gc(lua_State *L)
{
	struct lx_response *resp = lua_touserdata(L, 1);
	struct http_request *req = resp->req;

	if (req) {
		req->done = NULL;
		resp->req = NULL;
		log_warn("HTTP %s %s: the handler dropped the request unanswered",
			 req->method, req->path);
		http_respond_status(req, 500, "the handler did not answer");
	}
	return 0;
}

static void push_response(lua_State *L, struct http_request *req)
{
	struct lx_response *resp = lua_newuserdatauv(L, sizeof(*resp), 1);

	resp->req = req;
	req->done = response_done;
	req->done_data = resp;
	lua_createtable(L, 0, 2);
	lua_newtable(L);
	lua_setfield(L, -2, "headers");
	lua_setiuservalue(L, -2, 1);
	lx_setmetatable(L, RESPONSE_MT);
}

/* --- requests ------------------------------------------------------------ */

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

static void push_headers(lua_State *L, const struct http_request *req)
{
	lua_createtable(L, 0, (int)req->n_headers);
	for (size_t i = 0; i < req->n_headers; i++) {
		char name[128];
		snprintf(name, sizeof(name), "%s", req->headers[i].name);
		for (char *c = name; *c; c++)
			if (*c == '-')
				*c = '_';
		if (lua_getfield(L, -1, name) == LUA_TSTRING) {	/* joined */
			lua_pushstring(L, ", ");
			lua_pushstring(L, req->headers[i].value);
			lua_concat(L, 3);
		} else {
			lua_pop(L, 1);
			lua_pushstring(L, req->headers[i].value);
		}
		lua_setfield(L, -2, name);
	}
}

static void push_request(lua_State *L, const struct http_request *req)
{
	lua_createtable(L, 0, 10);
	set_str(L, "method", req->method);
	set_str(L, "path", req->path);
	set_str(L, "host", req->host);
	set_str(L, "ip", req->ip);
	lua_pushinteger(L, req->port);
	lua_setfield(L, -2, "port");
	lua_pushboolean(L, req->secure);
	lua_setfield(L, -2, "secure");
	lua_pushlstring(L, req->body.p ? req->body.p : "", req->body.len);
	lua_setfield(L, -2, "body");
	set_str(L, "body_file", req->body_path);
	lua_pushinteger(L, (lua_Integer)req->body_length);
	lua_setfield(L, -2, "body_length");
	lua_createtable(L, 0, 2);
	set_str(L, "path", req->path);
	set_str(L, "query", req->query);
	lua_setfield(L, -2, "url");
	push_headers(L, req);
	lua_setfield(L, -2, "headers");
}

/* What the handler returned (at idx), as Prosody takes it. */
static void take_result(lua_State *L, int idx, int resp_idx, struct http_request *req)
{
	struct lx_response *resp = lua_touserdata(L, resp_idx);
	size_t len;
	const char *body;

	if (!resp->req)
		return;		/* answered (response:send) */
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			return;	/* it answers later */
		send_response(L, resp_idx, NULL, 0, 404);
		return;
	case LUA_TNUMBER:
		send_response(L, resp_idx, NULL, 0, (int)lua_tointeger(L, idx));
		return;
	case LUA_TSTRING:
		body = lua_tolstring(L, idx, &len);
		send_response(L, resp_idx, body, len, 0);
		return;
	case LUA_TTABLE:
		lua_getiuservalue(L, resp_idx, 1);
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			if (lua_type(L, -2) == LUA_TSTRING &&
			    strcmp(lua_tostring(L, -2), "headers") == 0 && lua_istable(L, -1)) {
				lua_getfield(L, -3, "headers");
				lua_pushnil(L);
				while (lua_next(L, -3)) {
					lua_pushvalue(L, -2);
					lua_insert(L, -2);
					lua_rawset(L, -4);
				}
				lua_pop(L, 2);
				continue;
			}
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		}
		lua_getfield(L, -1, "body");
		body = lua_tolstring(L, -1, &len);
		send_response(L, resp_idx, body ? body : "", body ? len : 0, 0);
		lua_pop(L, 2);
		return;
	default:
		send_response(L, resp_idx, NULL, 0, 404);
	}
}

/* (req, rest, fn, is_head): the handler with its event; a head handler
 * that did not answer leaves the request to the body's handler. */
static int call_route(lua_State *L)
{
	struct http_request *req = lua_touserdata(L, 1);
	const char *rest = lua_tostring(L, 2);
	int fn = 3;
	bool head = lua_toboolean(L, 4);

	lua_settop(L, 3);

	lua_createtable(L, 0, 2);		/* 4: event */
	push_request(L, req);
	lua_setfield(L, 4, "request");
	push_response(L, req);			/* 5 */
	lua_pushvalue(L, 5);
	lua_setfield(L, 4, "response");
	lua_pushvalue(L, fn);
	lua_pushvalue(L, 4);
	if (rest)
		lua_pushstring(L, rest);
	else
		lua_pushnil(L);
	lua_call(L, 2, 1);			/* inside lx_pcall below */
	if (head) {
		struct lx_response *resp = lua_touserdata(L, 5);
		int t = lua_type(L, -1);
		if (resp->req && (t == LUA_TNUMBER || t == LUA_TSTRING || t == LUA_TTABLE))
			take_result(L, lua_gettop(L), 5, req);
		if (resp->req) {	/* let go: the body's handler gets its own */
			resp->req = NULL;
			req->done = NULL;
			req->done_data = NULL;
		}
		return 0;
	}
	take_result(L, lua_gettop(L), 5, req);
	return 0;
}

/* Calls the route's Lua handler (ref): its head handler when head, with
 * the request and the path's rest; a failing handler's request gets a 500. */
static void call_lua_route(struct http_request *req, const char *rest,
			   struct lx_route *lr, int ref, bool head)
{
	lua_State *L = lx_state();
	int top = lua_gettop(L);

	lua_pushcfunction(L, call_route);
	lua_pushlightuserdata(L, req);
	if (rest)
		lua_pushstring(L, rest);
	else
		lua_pushnil(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_pushboolean(L, head);
	if (lx_pcall(L, 4, 0, lr->owner) != 0 && !req->answered)
		http_respond_status(req, 500, NULL);
	lua_settop(L, top);
}

static void lua_route(struct http_request *req, const char *rest,
		      const struct http_route *route, void *data)
{
	struct lx_route *lr = data;

	call_lua_route(req, rest, lr, lr->ref, false);
}

static void lua_route_head(struct http_request *req, const char *rest,
			   const struct http_route *route, void *data)
{
	struct lx_route *lr = data;

	call_lua_route(req, rest, lr, lr->head_ref, true);
}

static void free_lua_route(void *data)
{
	struct lx_route *lr = data;

	luaL_unref(lx_state(), LUA_REGISTRYINDEX, lr->ref);
	luaL_unref(lx_state(), LUA_REGISTRYINDEX, lr->head_ref);
	free(lr->owner);
	free(lr);
}

/* --- starling.http ------------------------------------------------------- */

static unsigned field_uint(lua_State *L, int t, const char *k, unsigned def,
			   unsigned max)
{
	lua_Integer v;

	lua_getfield(L, t, k);
	v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)def;
	lua_pop(L, 1);
	return v < 0 ? 0 : v > (lua_Integer)max ? max : (unsigned)v;
}

static const char *field_str(lua_State *L, int t, const char *k)
{
	const char *v;

	lua_getfield(L, t, k);
	v = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
	lua_pop(L, 1);		/* the string stays in the table */
	return v;
}

/* The route's CORS from the table at t (mod_http's reading of the
 * options); an origin with a line break is left out. */
static void set_cors(lua_State *L, int t, struct http_route *r)
{
	struct http_cors c = { 0 };
	const char **origins = NULL;
	size_t n = 0;

	lua_getfield(L, t, "origins");
	if (lua_istable(L, -1)) {
		size_t len = lua_rawlen(L, -1);
		origins = xcalloc(len + 1, sizeof(char *));
		for (size_t i = 1; i <= len; i++) {
			if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING &&
			    !strpbrk(lua_tostring(L, -1), "\r\n"))
				origins[n++] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	} else {
		c.any_origin = lua_toboolean(L, -1);
	}
	c.origins = origins;
	c.methods = field_str(L, t, "methods");
	c.headers = field_str(L, t, "headers");
	if ((c.methods && strpbrk(c.methods, "\r\n")) ||
	    (c.headers && strpbrk(c.headers, "\r\n")))
		c.methods = c.headers = NULL;
	c.max_age = field_uint(L, t, "max_age", 7200, 86400 * 365);
	lua_getfield(L, t, "credentials");
	c.credentials = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (c.any_origin || n)
		http_route_set_cors(r, &c);
	lua_pop(L, 1);		/* origins */
	free(origins);
}

static int l_route(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	const char *method = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	const char *owner = luaL_optstring(L, 5, host);
	struct lx_native *nat = lx_testudata(L, 4, NATIVE_MT);
	struct http_handler h = { 0 };
	struct http_route *r;

	if (nat && nat->bosh) {
		h.fn = bosh_serve;
		h.data = bosh_options_new(&nat->bo);
		h.free = bosh_options_free;
	} else if (nat) {
		h.fn = websocket_serve;
		h.data = websocket_options_new(nat->consider_secure, nat->any_origin,
					       (const char *const *)nat->origins, nat->n);
		h.free = websocket_options_free;
	} else {
		struct lx_route *lr;
		if (lua_istable(L, 4)) {
			lua_getfield(L, 4, "handler");
			lua_getfield(L, 4, "head");
			luaL_argexpected(L, lua_isfunction(L, -2), 4, "{ handler = function }");
			luaL_argexpected(L, lua_isnil(L, -1) || lua_isfunction(L, -1), 4,
					 "{ head = function }");
		} else {
			luaL_checktype(L, 4, LUA_TFUNCTION);
			lua_pushvalue(L, 4);
			lua_pushnil(L);
		}
		lr = xcalloc(1, sizeof(*lr));
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lr->head_ref = LUA_NOREF;
		} else {
			lr->head_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		}
		lr->ref = luaL_ref(L, LUA_REGISTRYINDEX);
		lr->owner = xstrdup(owner);
		if (lr->head_ref != LUA_NOREF)
			h.head = lua_route_head;
		h.fn = lua_route;
		h.data = lr;
		h.free = free_lua_route;
	}
	r = http_route_add(host, method, path, &h, owner);
	if (!r) {
		h.free(h.data);
		lua_pushnil(L);
		lua_pushfstring(L, "the route %s %s on %s is taken", method, path, host);
		return 2;
	}
	if (lua_istable(L, 6))
		set_cors(L, 6, r);
	struct lx_route_ud *ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	ud->r = r;
	lx_setmetatable(L, ROUTE_MT);
	return 1;
}

static int l_unroute(lua_State *L)
{
	struct lx_route_ud *ud = lx_checkudata(L, 1, ROUTE_MT);

	if (ud->r)
		http_route_remove(ud->r);
	ud->r = NULL;
	return 0;
}

/* A route stays until unroute() (mod_http keeps the handles). */
static int route_gc(lua_State *L)
{
	return 0;
}

static int native_gc(lua_State *L)
{
	struct lx_native *n = lua_touserdata(L, 1);

	for (size_t i = 0; i < n->n; i++)
		free(n->origins[i]);
	free(n->origins);
	n->origins = NULL;
	n->n = 0;
	return 0;
}

static int l_websocket(lua_State *L)
{
	struct lx_native *n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = lua_newuserdatauv(L, sizeof(*n), 0);
	memset(n, 0, sizeof(*n));
	lx_setmetatable(L, NATIVE_MT);
	lua_getfield(L, 1, "consider_secure");
	n->consider_secure = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "cross_domain");
	if (lua_istable(L, -1)) {
		size_t len = lua_rawlen(L, -1);
		n->origins = xcalloc(len + 1, sizeof(char *));
		for (size_t i = 1; i <= len; i++) {
			if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING)
				n->origins[n->n++] = xstrdup(lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	} else {
		n->any_origin = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return 1;
}

static int l_bosh(lua_State *L)
{
	struct lx_native *n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = lua_newuserdatauv(L, sizeof(*n), 0);
	memset(n, 0, sizeof(*n));
	lx_setmetatable(L, NATIVE_MT);
	n->bosh = true;
	lua_getfield(L, 1, "consider_secure");
	n->bo.consider_secure = lua_toboolean(L, -1);
	lua_pop(L, 1);
	n->bo.max_wait = field_uint(L, 1, "max_wait", 120, 3600);
	n->bo.max_hold = field_uint(L, 1, "hold", 1, 16);
	n->bo.max_inactivity = field_uint(L, 1, "max_inactivity", 60, 86400);
	n->bo.max_polling = field_uint(L, 1, "max_polling", 5, 3600);
	n->bo.max_requests = field_uint(L, 1, "max_requests", 2, 17);
	if (n->bo.max_inactivity < 1)
		n->bo.max_inactivity = 1;
	return 1;
}

static long opt_int(const char *key, long def)
{
	long v = config_int("*", key, def);

	return v > 0 ? v : def;
}

struct listen_ctx {
	bool tls;
	const char *ports_key;
	int def_port;
	const char *iface;
	int failed;
};

static int listen_port(void *ctx, const char *item)
{
	struct listen_ctx *lc = ctx;
	int port = config_port(lc->ports_key, item);

	if (!port)
		return lc->failed = 1;
	if (http_listen_port(lc->iface, port, lc->tls) != 0)
		lc->failed = 1;
	return lc->failed;
}

static int listen_iface(void *ctx, const char *iface)
{
	struct listen_ctx *lc = ctx;
	char def[16];

	lc->iface = iface;
	if (config_kind("*", lc->ports_key, NULL) != CONFIG_UNSET)
		return config_each("*", lc->ports_key, listen_port, lc);
	snprintf(def, sizeof(def), "%d", lc->def_port);
	return listen_port(lc, def);
}

/* Interfaces of key, else of fallback, else "*"; ports of ports_key. */
static int listen_all(struct listen_ctx *lc, const char *key, const char *fallback)
{
	if (config_kind("*", key, NULL) != CONFIG_UNSET)
		config_each("*", key, listen_iface, lc);
	else if (fallback && config_kind("*", fallback, NULL) != CONFIG_UNSET)
		config_each("*", fallback, listen_iface, lc);
	else if (config_kind("*", "interfaces", NULL) != CONFIG_UNSET)
		config_each("*", "interfaces", listen_iface, lc);
	else
		listen_iface(lc, "*");
	return lc->failed;
}

/* listen(): the options into the HTTP layer; http_ports and https_ports
 * open (once: a port open already stays). true, or nil and an error. */
static int l_listen(lua_State *L)
{
	struct http_config c = {
		.max_header_size = (size_t)opt_int("http_max_header_size", 16 * 1024),
		.max_headers = (unsigned)opt_int("http_max_headers", 100),
		.max_content_size = (size_t)opt_int("http_max_content_size", 10 * 1024 * 1024),
		.header_timeout = (double)opt_int("http_header_timeout", 10),
		.request_timeout = (double)opt_int("http_request_timeout", 60),
		.keepalive_timeout = (double)opt_int("http_keepalive_timeout", 20),
	};
	struct listen_ctx plain = { false, "http_ports", 5280, NULL, 0 };
	struct listen_ctx tls = { true, "https_ports", 5281, NULL, 0 };

	http_configure(&c);
	http_route_set_default_host(config_string("*", "http_default_host", NULL));
	if (listen_all(&plain, "http_interfaces", NULL) != 0) {
		lua_pushnil(L);
		lua_pushliteral(L, "cannot open the HTTP ports (http_ports)");
		return 2;
	}
	if (!tls_default_ctx()) {
		if (config_kind("*", "https_ports", NULL) != CONFIG_UNSET)
			log_warn("https_ports: no certificate configured, no HTTPS");
	} else if (listen_all(&tls, "https_interfaces", "http_interfaces") != 0) {
		lua_pushnil(L);
		lua_pushliteral(L, "cannot open the HTTPS ports (https_ports)");
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_remove(lua_State *L)
{
	if (unlink(luaL_checkstring(L, 1)) != 0)
		return push_errno(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

/* mkdir(path): true when it exists (made now or before). */
static int l_mkdir(lua_State *L)
{
	if (mkdir(luaL_checkstring(L, 1), 0750) != 0 && errno != EEXIST)
		return push_errno(L, errno);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_stats(lua_State *L)
{
	const struct http_stats *hs = http_stats();

	lua_createtable(L, 0, 8);
	lua_pushinteger(L, (lua_Integer)hs->connections);
	lua_setfield(L, -2, "connections");
	lua_pushinteger(L, (lua_Integer)hs->accepted);
	lua_setfield(L, -2, "accepted");
	lua_pushinteger(L, (lua_Integer)hs->requests);
	lua_setfield(L, -2, "requests");
	lua_pushinteger(L, (lua_Integer)hs->upgrades);
	lua_setfield(L, -2, "upgrades");
	lua_pushinteger(L, (lua_Integer)hs->files_sent);
	lua_setfield(L, -2, "files_sent");
	lua_pushinteger(L, (lua_Integer)hs->bodies_to_file);
	lua_setfield(L, -2, "bodies_to_file");
	lua_pushinteger(L, (lua_Integer)websocket_count());
	lua_setfield(L, -2, "websockets");
	lua_pushinteger(L, (lua_Integer)bosh_count());
	lua_setfield(L, -2, "bosh_sessions");
	lua_createtable(L, 5, 0);
	for (int i = 1; i <= 5; i++) {
		lua_pushinteger(L, (lua_Integer)hs->responses[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setfield(L, -2, "responses");
	lua_pushinteger(L, (lua_Integer)lua_gc(L, LUA_GCCOUNT) * 1024 +
			lua_gc(L, LUA_GCCOUNTB));
	lua_setfield(L, -2, "lua_memory");
	return 1;
}

static int luaopen_starling_http(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "listen", l_listen },
		{ "route", l_route },
		{ "unroute", l_unroute },
		{ "websocket", l_websocket },
		{ "bosh", l_bosh },
		{ "stats", l_stats },
		{ "remove", l_remove },
		{ "mkdir", l_mkdir },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}

void lx_http_register(void)
{
	lua_State *L = lx_state();

	lx_gc_type(L, ROUTE_MT, route_gc);
	lx_gc_type(L, NATIVE_MT, native_gc);
	if (lx_newmetatable(L, RESPONSE_MT)) {
		lua_pushcfunction(L, l_response_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_response_newindex);
		lua_setfield(L, -2, "__newindex");
		lua_pushcfunction(L, l_response_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "starling.http.response");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_starling_http);
	lua_setfield(L, -2, "starling.http");
	lua_pop(L, 1);
}
