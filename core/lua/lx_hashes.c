/* lx_hashes.c - "starling.hashes": digests, HMACs and PBKDF2 from OpenSSL
 * for Lua, under the names Prosody's util.hashes uses (lua/util/hashes.lua
 * re-exports them). Every function returns the raw bytes, or lowercase
 * hex when its last argument is true. */
#include "lx.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits.h>
#include <string.h>

static int push_bytes(lua_State *L, const unsigned char *p, size_t n, bool hex)
{
	static const char digits[] = "0123456789abcdef";
	char out[2 * EVP_MAX_MD_SIZE];

	if (!hex) {
		lua_pushlstring(L, (const char *)p, n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	lua_pushlstring(L, out, 2 * n);
	return 1;
}

static const EVP_MD *md_of(lua_State *L)
{
	const EVP_MD *md = EVP_get_digestbyname(lua_tostring(L, lua_upvalueindex(1)));

	if (!md)
		luaL_error(L, "digest %s is not available", lua_tostring(L, lua_upvalueindex(1)));
	return md;
}

/* digest(data[, hex]) */
static int l_digest(lua_State *L)
{
	size_t len;
	const char *data = luaL_checklstring(L, 1, &len);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out, &n, md_of(L), NULL))
		return luaL_error(L, "digest failed");
	return push_bytes(L, out, n, lua_toboolean(L, 2));
}

/* hmac(key, data[, hex]) */
static int l_hmac(lua_State *L)
{
	size_t klen, dlen;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *data = luaL_checklstring(L, 2, &dlen);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!HMAC(md_of(L), key, (int)klen, (const unsigned char *)data, dlen, out, &n))
		return luaL_error(L, "hmac failed");
	return push_bytes(L, out, n, lua_toboolean(L, 3));
}

/* pbkdf2(password, salt, iterations[, hex]): as long as the digest. */
static int l_pbkdf2(lua_State *L)
{
	size_t plen, slen;
	const char *pass = luaL_checklstring(L, 1, &plen);
	const char *salt = luaL_checklstring(L, 2, &slen);
	lua_Integer iter = luaL_checkinteger(L, 3);
	const EVP_MD *md = md_of(L);
	unsigned char out[EVP_MAX_MD_SIZE];
	int n = EVP_MD_get_size(md);

	luaL_argcheck(L, iter >= 1 && iter <= 10000000, 3, "iterations out of range");
	if (!PKCS5_PBKDF2_HMAC(pass, (int)plen, (const unsigned char *)salt, (int)slen,
			       (int)iter, md, n, out))
		return luaL_error(L, "pbkdf2 failed");
	return push_bytes(L, out, (size_t)n, lua_toboolean(L, 4));
}

/* equals(a, b): compares in constant time for equal lengths. */
static int l_equals(lua_State *L)
{
	size_t alen, blen;
	const char *a = luaL_checklstring(L, 1, &alen);
	const char *b = luaL_checklstring(L, 2, &blen);

	lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
	return 1;
}

/* base64_encode(data): RFC 4648 base64 with padding. */
static int l_base64_encode(lua_State *L)
{
	size_t len;
	const char *in = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	unsigned char *out;
	int n;

	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return luaL_error(L, "base64_encode: the data is too long");
	out = (unsigned char *)luaL_buffinitsize(L, &b, (len + 2) / 3 * 4 + 1);
	n = EVP_EncodeBlock(out, (const unsigned char *)in, (int)len);
	luaL_pushresultsize(&b, (size_t)n);
	return 1;
}

/* base64_decode(text): the bytes, or nil when text is not base64 (with
 * padding, no white space). */
static int l_base64_decode(lua_State *L)
{
	size_t len;
	const char *in = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	unsigned char *out;
	int n, pad = 0;

	if (len % 4 != 0 || len > (size_t)INT_MAX) {
		lua_pushnil(L);
		return 1;
	}
	if (len && in[len - 1] == '=')
		pad++;
	if (len > 1 && in[len - 2] == '=')
		pad++;
	out = (unsigned char *)luaL_buffinitsize(L, &b, len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0 || strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			     "0123456789+/") < len - (size_t)pad) {
		lua_pushnil(L);
		return 1;
	}
	luaL_pushresultsize(&b, (size_t)(n - pad));
	return 1;
}

static void add(lua_State *L, const char *name, const char *md, lua_CFunction fn)
{
	lua_pushstring(L, md);
	lua_pushcclosure(L, fn, 1);
	lua_setfield(L, -2, name);
}

int luaopen_starling_hashes(lua_State *L)
{
	static const char *const digests[][2] = {
		{ "md5", "MD5" }, { "sha1", "SHA1" }, { "sha224", "SHA224" },
		{ "sha256", "SHA256" }, { "sha384", "SHA384" }, { "sha512", "SHA512" },
		{ "blake2s256", "BLAKE2s256" }, { "blake2b512", "BLAKE2b512" },
	};
	char name[32];

	lua_newtable(L);
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		add(L, digests[i][0], digests[i][1], l_digest);
		snprintf(name, sizeof(name), "hmac_%s", digests[i][0]);
		add(L, name, digests[i][1], l_hmac);
	}
	add(L, "pbkdf2_hmac_sha1", "SHA1", l_pbkdf2);
	add(L, "pbkdf2_hmac_sha256", "SHA256", l_pbkdf2);
	add(L, "pbkdf2_hmac_sha512", "SHA512", l_pbkdf2);
	lua_pushcfunction(L, l_equals);
	lua_setfield(L, -2, "equals");
	lua_pushcfunction(L, l_base64_encode);
	lua_setfield(L, -2, "base64_encode");
	lua_pushcfunction(L, l_base64_decode);
	lua_setfield(L, -2, "base64_decode");
	return 1;
}
