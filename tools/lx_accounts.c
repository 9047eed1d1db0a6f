/*
 * lx_accounts.c - the "starling.accounts" Lua module (lx_admin.h): the
 * accounts of a host with their SCRAM credentials, for starlingctl's
 * export and import. Functions, no userdata.
 *
 *   list(host)                   { user, ... } sorted | nil, err
 *   exists(host, user)           boolean
 *   get(host, user)              creds | nil (no account) | nil, err
 *   set(host, user, creds)       true | nil, err: creates or replaces
 *   set_password(host, user, password[, iterations])  true | nil, err
 *
 * creds: { ["SCRAM-SHA-1"] = c, ["SCRAM-SHA-256"] = c } (one or both),
 * c = { iterations = n, salt = b64, stored_key = b64, server_key = b64 }:
 * binary values in base64, as XEP-0227 and RFC 5803 write them. Users
 * and hosts are taken as given (the caller prepares them).
 */
#include "lx_admin.h"
#include "accounts.h"
#include "store.h"

#include <errno.h>
#include <openssl/crypto.h>

static const struct {
	const char *mech;
	enum sasl_hash hash;
	size_t key_len;
} hashes[] = {
	{ "SCRAM-SHA-1", SASL_HASH_SHA1, 20 },
	{ "SCRAM-SHA-256", SASL_HASH_SHA256, 32 },
};

static int fail(lua_State *L, const char *what, int rc)
{
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", what, strerror(-rc));
	return 2;
}

static const char *arg_part(lua_State *L, int idx)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	luaL_argcheck(L, strlen(s) == len && len > 0, idx,
		      "empty or contains a NUL");
	return s;
}

static int collect(void *ctx, const char *user)
{
	lua_State *L = ctx;

	lua_pushstring(L, user);
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
	return 0;
}

static int l_list(lua_State *L)
{
	const char *host = arg_part(L, 1);
	int rc;

	lua_newtable(L);
	rc = accounts_list(host, collect, L);
	return rc ? fail(L, "list", rc) : 1;
}

static int l_exists(lua_State *L)
{
	lua_pushboolean(L, accounts_exists(arg_part(L, 1), arg_part(L, 2)));
	return 1;
}

static void set_b64(lua_State *L, const char *field, const void *p, size_t n)
{
	struct sbuf b;

	sbuf_init(&b);
	b64_encode(&b, p, n);
	lua_pushlstring(L, b.p ? b.p : "", b.len);
	lua_setfield(L, -2, field);
	sbuf_free(&b);
}

static int l_get(lua_State *L)
{
	const char *host = arg_part(L, 1), *user = arg_part(L, 2);
	struct scram_creds c;
	int found = 0;

	if (!accounts_exists(host, user)) {
		lua_pushnil(L);
		return 1;
	}
	lua_newtable(L);
	for (size_t i = 0; i < ARRAY_SIZE(hashes); i++) {
		int rc = accounts_get(host, user, hashes[i].hash, &c);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return fail(L, "get", rc);
		lua_createtable(L, 0, 4);
		lua_pushinteger(L, (lua_Integer)c.iterations);
		lua_setfield(L, -2, "iterations");
		set_b64(L, "salt", c.salt, c.salt_len);
		set_b64(L, "stored_key", c.stored_key, hashes[i].key_len);
		set_b64(L, "server_key", c.server_key, hashes[i].key_len);
		lua_setfield(L, -2, hashes[i].mech);
		OPENSSL_cleanse(&c, sizeof(c));
		found++;
	}
	return found ? 1 : fail(L, "get", -EIO);
}

/* Decodes the base64 field of the table at -1 into out (max bytes,
 * exactly len unless len is 0): the byte count, or -1. */
static int get_b64(lua_State *L, const char *field, unsigned char *out,
		   size_t max, size_t len)
{
	struct sbuf b;
	size_t n;
	const char *s;
	int rc = -1;

	lua_getfield(L, -1, field);
	s = lua_tolstring(L, -1, &n);
	sbuf_init(&b);
	if (s && b64_decode(&b, s, n) == 0 && b.len > 0 && b.len <= max &&
	    (len == 0 || b.len == len)) {
		memcpy(out, b.p, b.len);
		rc = (int)b.len;
	}
	if (b.p)
		OPENSSL_cleanse(b.p, b.cap);
	sbuf_free(&b);
	lua_pop(L, 1);
	return rc;
}

/* The creds of one mechanism from the table at -1: 0 or a message. */
static const char *read_creds(lua_State *L, size_t i, struct scram_creds *c)
{
	lua_Integer it;
	int n;

	memset(c, 0, sizeof(*c));
	c->hash = hashes[i].hash;
	lua_getfield(L, -1, "iterations");
	it = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
	lua_pop(L, 1);
	if (it < 1 || it > INT32_MAX)
		return "bad iteration count";
	c->iterations = (unsigned)it;
	n = get_b64(L, "salt", c->salt, SASL_MAX_SALT, 0);
	if (n < 0)
		return "bad salt";
	c->salt_len = (size_t)n;
	if (get_b64(L, "stored_key", c->stored_key, SASL_MAX_KEY,
		    hashes[i].key_len) < 0)
		return "bad stored key";
	if (get_b64(L, "server_key", c->server_key, SASL_MAX_KEY,
		    hashes[i].key_len) < 0)
		return "bad server key";
	return NULL;
}

static int l_set(lua_State *L)
{
	const char *host = arg_part(L, 1), *user = arg_part(L, 2);
	struct scram_creds c[ARRAY_SIZE(hashes)];
	const char *why = NULL;
	size_t n = 0;
	int rc;

	luaL_checktype(L, 3, LUA_TTABLE);
	for (size_t i = 0; i < ARRAY_SIZE(hashes) && !why; i++) {
		lua_getfield(L, 3, hashes[i].mech);
		if (lua_istable(L, -1))
			why = read_creds(L, i, &c[n++]);
		else if (!lua_isnil(L, -1))
			why = "credentials must be tables";
		lua_pop(L, 1);
	}
	if (!why && n == 0)
		why = "no SCRAM-SHA-1 or SCRAM-SHA-256 credentials";
	rc = why ? 0 : accounts_set_creds(host, user, c, n);
	OPENSSL_cleanse(c, sizeof(c));
	if (why) {
		lua_pushnil(L);
		lua_pushstring(L, why);
		return 2;
	}
	if (rc)
		return fail(L, "set", rc);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_set_password(lua_State *L)
{
	const char *host = arg_part(L, 1), *user = arg_part(L, 2);
	const char *pw = luaL_checkstring(L, 3);
	lua_Integer it = luaL_optinteger(L, 4, ACCOUNTS_DEFAULT_ITERATIONS);
	int rc;

	luaL_argcheck(L, it > 0 && it <= INT32_MAX, 4, "bad iteration count");
	rc = accounts_set_password(host, user, pw, (unsigned)it);
	if (rc)
		return fail(L, "set_password", rc);
	lua_pushboolean(L, 1);
	return 1;
}

int luaopen_starling_accounts(lua_State *L)
{
	static const luaL_Reg lib[] = {
		{ "list", l_list },
		{ "exists", l_exists },
		{ "get", l_get },
		{ "set", l_set },
		{ "set_password", l_set_password },
		{ NULL, NULL },
	};

	luaL_newlib(L, lib);
	return 1;
}
