/*
 * ctl_dns.c - what `starlingctl check dns` (lua/starling/dnscheck.lua)
 * asks of C: a resolver set up like the server's (core/net/dnsprobe.h)
 * and this machine's addresses (getifaddrs).
 */
#include "ctl_admin.h"
#include "dnsprobe.h"
#include "lx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>

#define PROBE_MT "starlingctl.dns_probe"
#define MAX_RESOLVERS 16

static struct dns_probe **check_probe(lua_State *L)
{
	struct dns_probe **pp = luaL_checkudata(L, 1, PROBE_MT);

	if (!*pp)
		luaL_error(L, "the resolver is closed");
	return pp;
}

static const char *const type_names[] = { "A", "AAAA", "SRV", NULL };
static const int type_codes[] = { DNS_T_A, DNS_T_AAAA, DNS_T_SRV };

static void push_record(lua_State *L, int rrtype, const struct dns_rr *rr)
{
	if (rrtype != DNS_T_SRV) {
		lua_pushstring(L, rr->text);
		return;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, rr->prio);
	lua_setfield(L, -2, "priority");
	lua_pushinteger(L, rr->weight);
	lua_setfield(L, -2, "weight");
	lua_pushinteger(L, rr->port);
	lua_setfield(L, -2, "port");
	lua_pushstring(L, rr->text);
	lua_setfield(L, -2, "target");
}

/* probe:ask(name, "A"|"AAAA"|"SRV") -> { records = {...}, secure = bool,
 * nxdomain = bool, err = nil | text } */
static int l_ask(lua_State *L)
{
	struct dns_probe **pp = check_probe(L);
	const char *name = luaL_checkstring(L, 2);
	int rrtype = type_codes[luaL_checkoption(L, 3, NULL, type_names)];
	struct dns_answer a;

	dns_probe_ask(*pp, name, rrtype, &a);
	lua_createtable(L, 0, 4);
	lua_createtable(L, (int)a.n, 0);
	for (size_t i = 0; i < a.n; i++) {
		push_record(L, rrtype, &a.rr[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "records");
	lua_pushboolean(L, a.secure);
	lua_setfield(L, -2, "secure");
	lua_pushboolean(L, a.err == -ENOENT);
	lua_setfield(L, -2, "nxdomain");
	if (a.err != 0 && a.err != -ENOENT) {
		lua_pushstring(L, dns_answer_strerror(a.err));
		lua_setfield(L, -2, "err");
	}
	dns_answer_free(&a);
	return 1;
}

static int l_probe_gc(lua_State *L)
{
	struct dns_probe **pp = luaL_checkudata(L, 1, PROBE_MT);

	dns_probe_free(*pp);
	*pp = NULL;
	return 0;
}

/* resolver{ resolvers = {...}, hosts_file = false|path, trust_anchor =
 * path, timeout = seconds } -> probe, or nil, error text */
static int l_resolver(lua_State *L)
{
	const char *resolvers[MAX_RESOLVERS];
	struct dns_options o = { .resolvers = resolvers };
	struct dns_probe **pp;
	struct sbuf err;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "resolvers");
	for (lua_Integer i = 1; lua_istable(L, -1) && o.n_resolvers < MAX_RESOLVERS; i++) {
		if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
			lua_pop(L, 1);
			break;
		}
		resolvers[o.n_resolvers++] = lua_tostring(L, -1);
		lua_pop(L, 1);	/* the string stays referenced by the table */
	}
	lua_getfield(L, 1, "hosts_file");
	if (lua_type(L, -1) == LUA_TBOOLEAN)
		o.hosts_file = lua_toboolean(L, -1) ? NULL : "";
	else
		o.hosts_file = lua_tostring(L, -1);
	lua_getfield(L, 1, "trust_anchor");
	o.trust_anchor = lua_tostring(L, -1);
	lua_getfield(L, 1, "timeout");
	o.timeout = lua_tonumber(L, -1);
	pp = lua_newuserdatauv(L, sizeof(*pp), 0);
	*pp = NULL;
	if (luaL_newmetatable(L, PROBE_MT)) {
		lua_pushcfunction(L, l_probe_gc);
		lua_setfield(L, -2, "__gc");
		lua_newtable(L);
		lua_pushcfunction(L, l_ask);
		lua_setfield(L, -2, "ask");
		lua_pushcfunction(L, l_probe_gc);
		lua_setfield(L, -2, "close");
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	sbuf_init(&err);
	*pp = dns_probe_new(&o, &err);
	if (!*pp) {
		lua_pushnil(L);
		lua_pushstring(L, err.len ? err.p : "cannot set up a resolver");
		sbuf_free(&err);
		return 2;
	}
	sbuf_free(&err);
	return 1;
}

/* local_addresses() -> { "127.0.0.1", "::1", ... }: the addresses of this
 * machine's interfaces (IPv6 link-local ones left out). */
static int l_local_addresses(lua_State *L)
{
	struct ifaddrs *list, *i;
	char text[INET6_ADDRSTRLEN];
	int n = 0;

	lua_newtable(L);
	if (getifaddrs(&list) != 0)
		return 1;
	for (i = list; i; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;
		const void *a;
		if (!sa)
			continue;
		if (sa->sa_family == AF_INET) {
			a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		} else if (sa->sa_family == AF_INET6) {
			const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(a6))
				continue;
			a = a6;
		} else {
			continue;
		}
		if (inet_ntop(sa->sa_family, a, text, sizeof(text))) {
			lua_pushstring(L, text);
			lua_rawseti(L, -2, ++n);
		}
	}
	freeifaddrs(list);
	return 1;
}

void ctl_dns_helpers(lua_State *L)
{
	lua_pushcfunction(L, l_resolver);
	lua_setfield(L, -2, "resolver");
	lua_pushcfunction(L, l_local_addresses);
	lua_setfield(L, -2, "local_addresses");
}
