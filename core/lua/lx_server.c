/* lx_server.c - starling.server: sessions, hosts and reload for admin.lua. */
#include "lx_server.h"
#include "component.h"
#include "conn.h"
#include "tls13.h"
#include "fast.h"
#include "listener.h"
#include "log.h"
#include "loopstat.h"
#include "lx_config.h"
#include "route.h"
#include "server.h"
#include "s2s.h"
#include "session.h"
#include "node.h"
#include "node_cluster.h"
#include "node_link.h"
#include "store.h"
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static bool is_live(const struct session *s)
{
	return !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD));
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static const char *session_state(const struct session *s)
{
	if (s->flags & SESS_F_HIBERNATING)
		return "hibernating";
	if (s->flags & SESS_F_BOUND)
		return "bound";
	if (s->flags & SESS_F_AUTHED)
		return "authenticated";
	return "negotiating";
}

static void push_session(lua_State *L, const struct session *s)
{
	const struct conn *c = s->conn;

	lua_createtable(L, 0, 14);
	set_str(L, "id", s->id);
	set_str(L, "jid", s->full_jid);
	set_str(L, "bare", s->bare_jid);
	set_str(L, "host", s->host);
	set_str(L, "state", session_state(s));
	set_str(L, "type", s->role->name);
	if (node_self)
		set_int(L, "node", node_of(s));
	if (s2s_is(s)) {
		char doms[512];
		set_str(L, "direction", s->flags & SESS_F_OUTGOING ? "outgoing" : "incoming");
		set_str(L, "peer", s->peer);
		if (!(s->flags & SESS_F_OUTGOING))
			set_str(L, "domains", s2s_in_domains(s, doms, sizeof(doms)));
		lua_pushboolean(L, (s->flags & SESS_F_AUTHED) != 0);
		lua_setfield(L, -2, "authenticated");
		set_str(L, "auth", s2s_auth_method(s));
		set_str(L, "certificate", s2s_cert_state(s));
	}
	set_num(L, "connected_at", s->connected_at);
	set_num(L, "idle", now_mono() - s->last_activity);
	lua_pushboolean(L, (s->flags & SESS_F_DIRECT_TLS) != 0);
	lua_setfield(L, -2, "direct_tls");
	if (!c)
		return;
	set_str(L, "ip", c->ip);
	set_int(L, "port", c->port);
	set_int(L, "bytes_in", (lua_Integer)c->bytes_in);
	set_int(L, "bytes_out", (lua_Integer)c->bytes_out);
	set_int(L, "queued", (lua_Integer)c->wq_bytes);
	if (conn_tls_version(c)) {
		set_str(L, "tls_version", conn_tls_version(c));
		set_str(L, "cipher", conn_tls_cipher(c));
	}
}

/* sessions([host]) -> array of tables, every live session (bound or not)
 * of host, or of every host. */
static int l_sessions(lua_State *L)
{
	const char *host = luaL_optstring(L, 1, NULL);
	int i = 0;

	lua_newtable(L);
	for (struct session *s = session_first(); s; s = s->all_next) {
		if (!is_live(s) || (host && (!s->host || strcmp(s->host, host) != 0)))
			continue;
		push_session(L, s);
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static void set_kinds(lua_State *L, const char *k, const uint64_t v[3])
{
	lua_createtable(L, 0, 3);
	set_int(L, "message", (lua_Integer)v[0]);
	set_int(L, "presence", (lua_Integer)v[1]);
	set_int(L, "iq", (lua_Integer)v[2]);
	lua_setfield(L, -2, k);
}

/* Counts of the status command: connections, authenticated, bound;
 * client connections by transport (websocket: RFC 7395 framing; bosh:
 * XEP-0206 sessions, which count as connections while they last); the
 * stanzas in and out of every session since start, by kind. */
static int l_counts(lua_State *L)
{
	lua_Integer live = 0, authed = 0, hibernating = 0, s2s_in = 0, s2s_out = 0;
	lua_Integer websocket = 0, components = 0, bosh = 0;
	const struct session_stats *st = session_stats();

	for (struct session *s = session_first(); s; s = s->all_next) {
		if (!is_live(s))
			continue;
		if (s2s_is(s)) {
			s2s_in += !(s->flags & SESS_F_OUTGOING);
			s2s_out += (s->flags & SESS_F_OUTGOING) != 0;
			continue;
		}
		if (s->role == &component_role) {
			components += (s->flags & SESS_F_AUTHED) != 0;
			continue;
		}
		live++;
		if (s->conn && s->framing && strcmp(s->framing->name, "bosh") == 0)
			bosh++;
		else
			websocket += s->conn && s->framing;
		authed += (s->flags & SESS_F_AUTHED) != 0;
		hibernating += (s->flags & SESS_F_HIBERNATING) != 0;
	}
	lua_createtable(L, 0, 6);
	set_int(L, "connections", live);
	set_int(L, "authenticated", authed);
	set_int(L, "bound", (lua_Integer)route_session_count());
	set_int(L, "node", node_self);
	set_int(L, "node_links", node_link_up_count());
	set_int(L, "pid", (lua_Integer)getpid());
	set_int(L, "hibernating", hibernating);
	set_int(L, "listeners", (lua_Integer)listener_count());
	set_int(L, "hook_errors", (lua_Integer)hook_error_count());
	set_int(L, "s2s_in", s2s_in);
	set_int(L, "s2s_out", s2s_out);
	set_int(L, "websocket", websocket);
	set_int(L, "components", components);
	set_int(L, "bosh", bosh);
	set_kinds(L, "stanzas_in", st->in);
	set_kinds(L, "stanzas_out", st->out);
	return 1;
}

/* The loop's iterations (loopstat.h): { iterations, busy (seconds),
 * longest_10s, longest_60s (seconds), buckets = { { le, count }, ... } }
 * with the counts not cumulative and le = math.huge for the last. */
static int l_loop(lua_State *L)
{
	const struct loopstat *ls = loopstat_get();

	lua_createtable(L, 0, 5);
	set_int(L, "iterations", (lua_Integer)ls->iterations);
	set_num(L, "busy", ls->busy);
	set_num(L, "longest_10s", loopstat_longest(10));
	set_num(L, "longest_60s", loopstat_longest(60));
	lua_createtable(L, LOOPSTAT_BUCKETS, 0);
	for (int i = 0; i < LOOPSTAT_BUCKETS; i++) {
		lua_createtable(L, 2, 0);
		lua_pushnumber(L, loopstat_bounds[i]);
		lua_rawseti(L, -2, 1);
		lua_pushinteger(L, (lua_Integer)ls->buckets[i]);
		lua_rawseti(L, -2, 2);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "buckets");
	return 1;
}

/* s2s_close(domain) -> how many server-to-server streams were closed. */
static int l_s2s_close(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)s2s_close_domain(luaL_checkstring(L, 1)));
	return 1;
}

/* server.revoke_tokens(node, host): ends the account's FAST tokens; the
 * number revoked, or nil, error. */
static int l_revoke_tokens(lua_State *L)
{
	const char *node = luaL_checkstring(L, 1);
	const char *host = luaL_checkstring(L, 2);
	size_t n = 0;
	int rc = fast_revoke_user(host, node, &n);

	if (rc) {
		lua_pushnil(L);
		lua_pushstring(L, strerror(-rc));
		return 2;
	}
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* The storage's health (store.h): { ok, error, why, since, refused,
 * lost, failures }. */
static int l_storage(lua_State *L)
{
	const struct store_health *h = store_health();

	lua_createtable(L, 0, 7);
	lua_pushboolean(L, h->err == 0);
	lua_setfield(L, -2, "ok");
	if (h->err) {
		lua_pushstring(L, strerror(-h->err));
		lua_setfield(L, -2, "error");
		lua_pushstring(L, h->why ? h->why : "write");
		lua_setfield(L, -2, "why");
	}
	lua_pushnumber(L, h->since);
	lua_setfield(L, -2, "since");
	set_int(L, "refused", (lua_Integer)h->refused);
	set_int(L, "lost", (lua_Integer)h->lost);
	set_int(L, "failures", (lua_Integer)h->failures);
	return 1;
}

/* The route's hosts, sorted by the caller. */
static int l_hosts(lua_State *L)
{
	size_t pos = 0;
	struct host *h;
	int i = 0;

	lua_newtable(L);
	while (route_host_next(&pos, &h)) {
		lua_createtable(L, 0, 2);
		set_str(L, "name", h->name);
		set_str(L, "type", h->type == HOST_COMPONENT ? "component" : "local");
		lua_rawseti(L, -2, ++i);
	}
	return 1;
}

static int push_component(void *ctx, const struct component_info *ci)
{
	lua_State *L = ctx;

	lua_createtable(L, 0, 6);
	set_str(L, "domain", ci->domain);
	set_str(L, "ip", ci->ip);
	set_int(L, "port", ci->port);
	lua_pushnumber(L, ci->since);
	lua_setfield(L, -2, "since");
	set_int(L, "stanzas_in", (lua_Integer)ci->in);
	set_int(L, "stanzas_out", (lua_Integer)ci->out);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	return 0;
}

/* components() -> { { domain, ip, port, since, stanzas_in, stanzas_out } }:
 * the connected external components (XEP-0114). */
static int l_components(lua_State *L)
{
	lua_newtable(L);
	component_each(push_component, L);
	return 1;
}

/* kick(jid, condition, text) -> n: closes the session of a full JID, or
 * every session of a bare JID, with a stream error. */
static int l_kick(lua_State *L)
{
	const char *jid = luaL_checkstring(L, 1);
	const char *cond = luaL_optstring(L, 2, "policy-violation");
	const char *text = luaL_optstring(L, 3, NULL);
	struct session *s = route_find_full(jid);
	lua_Integer n = 0;

	if (s && is_live(s)) {
		session_close(s, cond, text);
		n = 1;
	} else if (!s) {
		/* session_close unbinds: take the next one before. */
		for (s = route_find_bare(jid); s; ) {
			struct session *next = s->user_next;
			if (is_live(s)) {
				session_close(s, cond, text);
				n++;
			}
			s = next;
		}
	}
	lua_pushinteger(L, n);
	return 1;
}

/* close_host(host, condition, text) -> n: every session whose stream is
 * to host (a host being removed). */
static int l_close_host(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	const char *cond = luaL_optstring(L, 2, "host-gone");
	const char *text = luaL_optstring(L, 3, NULL);
	lua_Integer n = 0;

	for (struct session *s = session_first(); s; s = s->all_next) {
		if (is_live(s) && s->host && strcmp(s->host, host) == 0) {
			session_close(s, cond, text);
			n++;
		}
	}
	lua_pushinteger(L, n);
	return 1;
}

static int l_host_add(lua_State *L)
{
	static const char *const types[] = { "local", "component", NULL };
	const char *name = luaL_checkstring(L, 1);
	int type = luaL_checkoption(L, 2, "local", types);
	const char *module = luaL_optstring(L, 3, NULL);
	struct host *h;

	if (!*name || strcmp(name, "*") == 0)
		return luaL_argerror(L, 1, "not a host name");
	h = route_host_add(name, type == 1 ? HOST_COMPONENT : HOST_LOCAL);
	h->external = server_host_external(types[type], module);
	if (h->external && server_listen_components() != 0)
		return luaL_error(L, "cannot open the component ports (the log says why)");
	return 0;
}

static int push_errno(lua_State *L, int r, const char *what)
{
	if (r == 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", what, strerror(-r));
	return 2;
}

static int l_host_remove(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);

	return push_errno(L, route_host_remove(name), name);
}

static int push_sbuf_result(lua_State *L, int r, struct sbuf *err)
{
	if (r == 0) {
		sbuf_free(err);
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushnil(L);
	if (err->len)
		lua_pushlstring(L, err->p, err->len);
	else
		lua_pushstring(L, strerror(-r));
	sbuf_free(err);
	return 2;
}

struct tls_try {
	struct sbuf *err;
	int *n;
};

static int try_tls(void *ctx)
{
	struct tls_try *t = ctx;

	return server_load_tls(t->err, t->n);
}

/* load_tls(cfg) -> true, n | nil, err: the TLS contexts of cfg, a config
 * that is not the server's yet (replace_config makes it so). */
static int l_load_tls(lua_State *L)
{
	struct sbuf err;
	int n = 0, r;
	struct tls_try t = { &err, &n };

	luaL_checktype(L, 1, LUA_TTABLE);
	sbuf_init(&err);
	r = lx_config_try(L, 1, try_tls, &t);
	if (r != 0)
		return push_sbuf_result(L, r, &err);
	sbuf_free(&err);
	lua_pushboolean(L, 1);
	lua_pushinteger(L, n);
	return 2;
}

static int try_host_auth(void *ctx)
{
	return server_check_host_auth(ctx);
}

/* check_host_auth(cfg) -> true | nil, err: whether every VirtualHost's
 * "authentication" of cfg (not the server's yet) is usable. */
static int l_check_host_auth(lua_State *L)
{
	struct sbuf err;
	int r;

	luaL_checktype(L, 1, LUA_TTABLE);
	sbuf_init(&err);
	r = lx_config_try(L, 1, try_host_auth, &err);
	return push_sbuf_result(L, r, &err);
}

/* apply_host_auth() -> true | nil, err: the current config's
 * "authentication" of each host, for new logins. */
static int l_apply_host_auth(lua_State *L)
{
	struct sbuf err;

	sbuf_init(&err);
	return push_sbuf_result(L, server_apply_host_auth(&err), &err);
}

/* replace_config(cfg): cfg becomes the config C and starling.core see. */
static int l_replace_config(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lx_config_replace(L, 1);
	return 0;
}

static int l_apply_log(lua_State *L)
{
	struct sbuf err;

	sbuf_init(&err);
	return push_sbuf_result(L, server_apply_log(&err), &err);
}

static int l_read_options(lua_State *L)
{
	server_read_options();
	return 0;
}

static int l_reopen_log(lua_State *L)
{
	return push_errno(L, log_reopen(), "cannot reopen the log");
}

/* certificates() -> { { host =, file =, not_after = (seconds) }, ... } */
static int l_certificates(lua_State *L)
{
	size_t n;
	const struct server_cert *c = server_certs(&n);

	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, c[i].host);
		lua_setfield(L, -2, "host");
		lua_pushstring(L, c[i].file);
		lua_setfield(L, -2, "file");
		lua_pushinteger(L, (lua_Integer)c[i].not_after);
		lua_setfield(L, -2, "not_after");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int l_has_default_tls(lua_State *L)
{
	lua_pushboolean(L, tls_default_ctx() != NULL);
	return 1;
}

/* commit(): the storage batch, now (before an answer that depends on it). */
static int l_commit(lua_State *L)
{
	return push_errno(L, store_commit(), "storage commit");
}

/* reload_others(): after a reload here, the other workers reload too. */
static int l_reload_others(lua_State *L)
{
	return push_errno(L, node_reload_others(), "reload of the other workers");
}

/* admin_others(line): an operator's module command, done here, for the
 * other workers. */
static int l_admin_others(lua_State *L)
{
	node_admin_others(luaL_checkstring(L, 1));
	return 0;
}

/* node_admin_hook: another worker's module command, run by
 * starling.admin's from_node(node, line). */
static void run_admin(unsigned node, const char *line)
{
	lua_State *L = lx_state();

	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.admin");
	if (lx_pcall(L, 1, 1, "admin") != 0)
		return;
	lua_getfield(L, -1, "from_node");
	lua_remove(L, -2);
	lua_pushinteger(L, (lua_Integer)node);
	lua_pushstring(L, line);
	lx_pcall(L, 2, 0, "admin");
}

/* cluster() -> nil (not a cluster's node), or { self = id, redis =
 * answered, nodes = { { id, name, address, pid, alive, sessions, link =
 * "self" | "up" | "down" }, ... } }: the directory at its last look. */
static int l_cluster(lua_State *L)
{
	unsigned self = node_cluster_self();
	int n = 0;

	if (!self)
		return 0;
	lua_createtable(L, 0, 3);
	set_int(L, "self", self);
	lua_pushboolean(L, node_cluster_redis_up());
	lua_setfield(L, -2, "redis");
	lua_newtable(L);
	for (unsigned id = 1; id <= NODE_MAX; id++) {
		const struct cluster_node *c = node_cluster_node(id);
		if (!c)
			continue;
		lua_createtable(L, 0, 7);
		set_int(L, "id", c->id);
		lua_pushstring(L, c->name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, c->address);
		lua_setfield(L, -2, "address");
		set_int(L, "pid", c->pid);
		lua_pushboolean(L, c->alive);
		lua_setfield(L, -2, "alive");
		set_int(L, "sessions", c->sessions);
		lua_pushstring(L, id == self ? "self" : node_link_is_up(id) ? "up" : "down");
		lua_setfield(L, -2, "link");
		lua_rawseti(L, -2, ++n);
	}
	lua_setfield(L, -2, "nodes");
	return 1;
}

int luaopen_starling_server(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "sessions", l_sessions },
		{ "counts", l_counts },
		{ "loop", l_loop },
		{ "storage", l_storage },
		{ "revoke_tokens", l_revoke_tokens },
		{ "s2s_close", l_s2s_close },
		{ "hosts", l_hosts },
		{ "components", l_components },
		{ "kick", l_kick },
		{ "close_host", l_close_host },
		{ "host_add", l_host_add },
		{ "host_remove", l_host_remove },
		{ "load_tls", l_load_tls },
		{ "check_host_auth", l_check_host_auth },
		{ "apply_host_auth", l_apply_host_auth },
		{ "replace_config", l_replace_config },
		{ "apply_log", l_apply_log },
		{ "read_options", l_read_options },
		{ "reopen_log", l_reopen_log },
		{ "has_default_tls", l_has_default_tls },
		{ "certificates", l_certificates },
		{ "commit", l_commit },
		{ "reload_others", l_reload_others },
		{ "admin_others", l_admin_others },
		{ "cluster", l_cluster },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}

void lx_server_register(void)
{
	lua_State *L = lx_state();

	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_starling_server);
	lua_setfield(L, -2, "starling.server");
	lua_pop(L, 1);
	node_admin_hook = run_admin;
}
