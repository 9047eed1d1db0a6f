/* test_jid.c - JID parsing and preparation (core/jid.c) and the Lua side
 * (core/lx_jid.c, lua/util/jid.lua). */
#include "harness.h"
#include "jid.h"
#include "lx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stringprep.h>

/* The full prepared form of s, or "(invalid)". */
static const char *prep(const char *s)
{
	static char out[3 * JID_PART_MAX + 3];
	struct jid j;

	if (jid_parse(s, &j) < 0)
		return "(invalid)";
	if (jid_format(&j, JID_FULL, out, sizeof(out)) < 0)
		return "(format failed)";
	return out;
}

static void test_rfc7622_valid(void)
{
	/* RFC 7622 section 3.5, with the stringprep (RFC 6122) results */
	CHECK_STR(prep("juliet@example.com"), "juliet@example.com");
	CHECK_STR(prep("juliet@example.com/foo"), "juliet@example.com/foo");
	CHECK_STR(prep("juliet@example.com/foo bar"),
		  "juliet@example.com/foo bar");
	CHECK_STR(prep("juliet@example.com/foo@bar"),
		  "juliet@example.com/foo@bar");
	CHECK_STR(prep("foo\\20bar@example.com"), "foo\\20bar@example.com");
	CHECK_STR(prep("fussball@example.com"), "fussball@example.com");
	CHECK_STR(prep("fu\xc3\x9f" "ball@example.com"),
		  "fussball@example.com");
	CHECK_STR(prep("\xcf\x80@example.com"), "\xcf\x80@example.com");
	CHECK_STR(prep("\xce\xa3@example.com/foo"), "\xcf\x83@example.com/foo");
	CHECK_STR(prep("\xcf\x83@example.com/foo"), "\xcf\x83@example.com/foo");
	CHECK_STR(prep("\xcf\x82@example.com/foo"), "\xcf\x83@example.com/foo");
	CHECK_STR(prep("king@example.com/\xe2\x99\x9a"),
		  "king@example.com/\xe2\x99\x9a");
	CHECK_STR(prep("example.com"), "example.com");
	CHECK_STR(prep("example.com/foobar"), "example.com/foobar");
	CHECK_STR(prep("a.example.com/b@example.net"),
		  "a.example.com/b@example.net");
	/* resources may hold '/' and '@' */
	CHECK_STR(prep("a@b/c/d@e"), "a@b/c/d@e");
	CHECK_STR(prep("b/c@d"), "b/c@d");
	/* an emoji in a resource: unassigned in Unicode 3.2, allowed */
	CHECK_STR(prep("a@b/phone \xf0\x9f\x93\xb1"),
		  "a@b/phone \xf0\x9f\x93\xb1");
}

static void test_rfc7622_invalid(void)
{
	static const char *const bad[] = {
		"\"juliet\"@example.com", "foo bar@example.com",
		"juliet@example.com/", "@example.com/", "@example.com",
		"juliet@", "/foobar", "", "@", "/", "@/", "a@/r",
		"a@b@c", "a&b@example.com", "a'b@example.com",
		"a:b@example.com", "a<b@example.com", "a>b@example.com",
		"\xc2\xad@example.com",		/* maps to nothing: empty */
		"a\x07@example.com", "a@b/c\x07", "a\xff@example.com",
		"a@exa mple.com", "a@example..com", "a@.example.com",
		"a@example.com..", "a@-example.com", "a@exa_mple.com",
		"a@[::1", "a@[::g]", "a@[]", "a@[1.2.3.4]", "a@ex<ample.com",
		"a@\xd8\xa7" "1.com",		/* bidi: RAL then L */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct jid j;
		int rc = jid_parse(bad[i], &j);
		if (rc != -EINVAL) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			h_cur_failed = 1;
		}
		CHECK(j.domain[0] == '\0' && !j.has_node && !j.has_resource);
	}
}

#define ARABIC "\xd8\xa7\xd8\xae\xd8\xaa\xd8\xa8\xd8\xa7\xd8\xb1"

static void test_case_and_domain(void)
{
	struct jid j;

	CHECK_STR(prep("JULIET@EXAMPLE.COM/Balcony"),
		  "juliet@example.com/Balcony");
	CHECK_STR(prep("Juliet@Example.Com/RESOURCE"),
		  "juliet@example.com/RESOURCE");
	/* one trailing dot goes, the full stops of IDNA are dots */
	CHECK_STR(prep("juliet@example.com./r"), "juliet@example.com/r");
	CHECK_STR(prep("example.com."), "example.com");
	CHECK_STR(prep("a@example\xe3\x80\x82" "com"), "a@example.com");
	CHECK_STR(prep("a@example\xef\xbc\x8e" "com"), "a@example.com");
	CHECK_STR(prep("a@M\xc3\x9c" "NCHEN.de"), "a@m\xc3\xbc" "nchen.de");
	CHECK_STR(prep("a@xn--mnchen-3ya.de"), "a@xn--mnchen-3ya.de");
	/* bidi rules hold per label: an Arabic label under .com */
	CHECK_STR(prep("a@" ARABIC ".com"), "a@" ARABIC ".com");
	/* IP literals */
	CHECK_STR(prep("a@127.0.0.1/r"), "a@127.0.0.1/r");
	CHECK_STR(prep("a@[::1]/r"), "a@[::1]/r");
	CHECK_STR(prep("a@[2001:DB8::A]"), "a@[2001:db8::a]");
	CHECK_STR(prep("[::1]."), "[::1]");
	/* formats */
	char out[16];
	CHECK(jid_parse("Node@Host/Res", &j) == 0);
	CHECK(j.has_node && j.has_resource);
	CHECK_STR(j.node, "node");
	CHECK_STR(j.domain, "host");
	CHECK_STR(j.resource, "Res");
	CHECK(jid_format(&j, JID_BARE, out, sizeof(out)) == 9);
	CHECK_STR(out, "node@host");
	CHECK(jid_format(&j, JID_DOMAIN, out, sizeof(out)) == 4);
	CHECK_STR(out, "host");
	CHECK(jid_format(&j, JID_FULL, out, sizeof(out)) == 13);
	CHECK_STR(out, "node@host/Res");
	CHECK(jid_format(&j, JID_FULL, out, 13) == -ENOSPC);
	CHECK_STR(out, "");
	CHECK(jid_parse("host", &j) == 0);
	CHECK(!j.has_node && !j.has_resource);
	CHECK(jid_format(&j, JID_FULL, out, sizeof(out)) == 4);
}

static void test_parts(void)
{
	char out[JID_PART_MAX];

	CHECK(jid_nodeprep("ROMEO", out) == 0);
	CHECK_STR(out, "romeo");
	CHECK(jid_nodeprep("ro@meo", out) == -EINVAL);
	CHECK(jid_nodeprep("", out) == -EINVAL);
	CHECK(jid_nameprep("EXAMPLE.org.", out) == 0);
	CHECK_STR(out, "example.org");
	CHECK(jid_nameprep("", out) == -EINVAL);
	CHECK(jid_nameprep(".", out) == -EINVAL);
	CHECK(jid_resourceprep("Home Office", out) == 0);
	CHECK_STR(out, "Home Office");
	CHECK(jid_resourceprep("a\x07", out) == -EINVAL);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

static void test_lengths(void)
{
	char *s;
	struct jid j;

	s = repeat("", 'n', 1023, "@example.com");
	CHECK(jid_parse(s, &j) == 0 && strlen(j.node) == 1023);
	free(s);
	s = repeat("", 'n', 1024, "@example.com");
	CHECK(jid_parse(s, &j) == -EINVAL);
	free(s);
	s = repeat("a@example.com/", 'r', 1023, "");
	CHECK(jid_parse(s, &j) == 0 && strlen(j.resource) == 1023);
	free(s);
	s = repeat("a@example.com/", 'r', 1024, "");
	CHECK(jid_parse(s, &j) == -EINVAL);
	free(s);
	/* preparation expands: 512 x U+00DF -> 1024 x "s" */
	s = malloc(1024 + 20);
	for (int i = 0; i < 512; i++)
		memcpy(s + 2 * i, "\xc3\x9f", 2);
	strcpy(s + 1024, "@example.com");
	CHECK(jid_parse(s, &j) == -EINVAL);
	s[1022] = '\0';		/* 511 of them: 1022 bytes */
	strcat(s, "@example.com");
	CHECK(jid_parse(s, &j) == 0 && strlen(j.node) == 1022);
	free(s);
	/* a domain of 63-octet labels up to 1023 bytes */
	s = malloc(2048);
	s[0] = '\0';
	for (int i = 0; i < 16; i++) {
		strcat(s, i ? "." : "");
		for (int k = 0; k < 63; k++)
			strcat(s, "d");
	}
	CHECK(strlen(s) == 1023 && jid_parse(s, &j) == 0);
	strcat(s, ".e");
	CHECK(jid_parse(s, &j) == -EINVAL);
	free(s);
	s = repeat("a@", 'l', 64, ".com");	/* a label over 63 */
	CHECK(jid_parse(s, &j) == -EINVAL);
	free(s);
	/* huge input is refused without work */
	s = repeat("a@example.com/", 'r', 100000, "");
	CHECK(jid_parse(s, &j) == -EINVAL);
	free(s);
}

/* ---- Lua ---- */

static lua_State *lua_setup(void)
{
	lua_State *L = luaL_newstate();
	const char *dir = getenv("STARLING_LUA_DIR");

	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_starling_jid);
	lua_setfield(L, -2, "starling.jid");
	lua_pop(L, 1);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua", dir ? dir : "lua");
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
	return L;
}

static int traceback(lua_State *L)
{
	luaL_traceback(L, L, lua_tostring(L, 1), 1);
	return 1;
}

/* Runs a chunk of Lua test code; it raises on a failed assert. */
static void lua_run(lua_State *L, const char *name, const char *code)
{
	lua_pushcfunction(L, traceback);
	if (luaL_loadbuffer(L, code, strlen(code), name) != LUA_OK ||
	    lua_pcall(L, 0, 0, -2) != LUA_OK) {
		fprintf(stderr, "  %s: %s\n", name, lua_tostring(L, -1));
		h_cur_failed = 1;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static const char lua_split_code[] =
	"local jid = require 'util.jid'\n"
	"local function eq(s, x, y, z)\n"
	"  local a, b, c = jid.split(s)\n"
	"  assert(a == x and b == y and c == z, ('%s: got %s %s %s'):format(\n"
	"    tostring(s), tostring(a), tostring(b), tostring(c)))\n"
	"end\n"
	"eq('a@b/c', 'a', 'b', 'c')\n"
	"eq('a@b', 'a', 'b', nil)\n"
	"eq('b/c', nil, 'b', 'c')\n"
	"eq('b', nil, 'b', nil)\n"
	"eq('A@B/C/D@E', 'A', 'B', 'C/D@E')\n"
	"eq('b/c@d', nil, 'b', 'c@d')\n"
	"for _, bad in ipairs{ '', '@b', 'a@', 'a@/c', 'a@b/', '/c',\n"
	"    'a@b@c', 'a@b@c/d', '@' } do\n"
	"  eq(bad, nil, nil, nil)\n"
	"end\n"
	"eq(nil, nil, nil, nil)\n"
	"eq('a\\0b@c', nil, nil, nil)\n"
	"assert(jid.bare('a@b/c') == 'a@b')\n"
	"assert(jid.bare('a@b') == 'a@b')\n"
	"assert(jid.bare('b/c') == 'b')\n"
	"assert(jid.bare('a@b/') == nil)\n"
	"assert(jid.node('a@b/c') == 'a' and jid.node('b') == nil)\n"
	"assert(jid.host('a@b/c') == 'b' and jid.host('@') == nil)\n"
	"assert(jid.resource('a@b/c/d') == 'c/d')\n"
	"assert(jid.resource('a@b') == nil)\n"
	"assert(jid.join('a', 'b', 'c') == 'a@b/c')\n"
	"assert(jid.join('a', 'b') == 'a@b')\n"
	"assert(jid.join(nil, 'b', 'c') == 'b/c')\n"
	"assert(jid.join(nil, 'b') == 'b')\n"
	"assert(jid.join('a', nil, 'c') == nil)\n";

static const char lua_prep_code[] =
	"local jid = require 'util.jid'\n"
	"assert(jid.prep('Juliet@Example.COM./Balcony') ==\n"
	"  'juliet@example.com/Balcony')\n"
	"assert(jid.prep('\\u{3A3}@example.com') == '\\u{3C3}@example.com')\n"
	"assert(jid.prep('foo bar@example.com') == nil)\n"
	"assert(jid.prep('a@b/') == nil)\n"
	"assert(jid.prep(nil) == nil)\n"
	"local n, h, r = jid.prepped_split('ROMEO@Montague.LIT/Orchard')\n"
	"assert(n == 'romeo' and h == 'montague.lit' and r == 'Orchard')\n"
	"n, h, r = jid.prepped_split('montague.lit')\n"
	"assert(n == nil and h == 'montague.lit' and r == nil)\n"
	"assert(select('#', jid.prepped_split('a b@c')) == 3)\n"
	"assert(select('#', jid.split('@')) == 3)\n"
	"assert(select('#', jid.prep('@')) == 1)\n"
	"assert(jid.nodeprep('ROMEO') == 'romeo')\n"
	"assert(jid.nodeprep('a@b') == nil)\n"
	"assert(jid.nameprep('EXAMPLE.com') == 'example.com')\n"
	"assert(jid.resourceprep('Res') == 'Res')\n"
	"assert(not pcall(jid.prep, {}))\n";

static const char lua_compare_code[] =
	"local jid = require 'util.jid'\n"
	"assert(jid.compare('a@b/c', 'b'))\n"
	"assert(jid.compare('a@b/c', 'a@b'))\n"
	"assert(jid.compare('a@b/c', 'a@b/c'))\n"
	"assert(jid.compare('a@b/c', 'b/c'))\n"
	"assert(not jid.compare('a@b/c', 'x@b'))\n"
	"assert(not jid.compare('a@b/c', 'a@b/d'))\n"
	"assert(not jid.compare('a@b/c', 'c'))\n"
	"assert(not jid.compare('b', 'a@b'))\n"
	"assert(not jid.compare('a@b', 'a@'))\n"
	"assert(not jid.compare('a@b', '@'))\n"
	"assert(jid.escape([[space cadet]]) == [[space\\20cadet]])\n"
	"assert(jid.escape([[call me \"ishmael\"]]) ==\n"
	"  [[call\\20me\\20\\22ishmael\\22]])\n"
	"assert(jid.escape([[at&t guy]]) == [[at\\26t\\20guy]])\n"
	"assert(jid.escape([[d'artagnan]]) == [[d\\27artagnan]])\n"
	"assert(jid.escape([[/.fanboy]]) == [[\\2f.fanboy]])\n"
	"assert(jid.escape([[::foo::]]) == [[\\3a\\3afoo\\3a\\3a]])\n"
	"assert(jid.escape([[<foo>]]) == [[\\3cfoo\\3e]])\n"
	"assert(jid.escape([[user@host]]) == [[user\\40host]])\n"
	"assert(jid.escape([[c:\\net]]) == [[c\\3a\\net]])\n"
	"assert(jid.escape([[c:\\\\net]]) == [[c\\3a\\\\net]])\n"
	"assert(jid.escape([[c:\\cool stuff]]) == [[c\\3a\\cool\\20stuff]])\n"
	"assert(jid.escape([[c:\\5commas]]) == [[c\\3a\\5c5commas]])\n"
	"for _, s in ipairs{ 'space cadet', 'at&t guy', 'c:\\\\5commas',\n"
	"    'c:\\\\net', 'user@host', '\\\\20' } do\n"
	"  assert(jid.unescape(jid.escape(s)) == s, s)\n"
	"end\n"
	"assert(jid.unescape([[a\\2Fb\\zz]]) == [[a\\2Fb\\zz]])\n"
	"assert(jid.escape(nil) == nil and jid.unescape(nil) == nil)\n";

static void test_lua(void)
{
	lua_State *L = lua_setup();

	lua_run(L, "split", lua_split_code);
	lua_run(L, "prep", lua_prep_code);
	lua_run(L, "compare", lua_compare_code);
	lua_close(L);
}

/* The ASCII shortcut in jid.c must agree with libidn's tables for every
 * printable ASCII string: compare on random ones. */
static void test_ascii_fast_path_matches_stringprep(void)
{
	static const char *const profiles[] = { "Nodeprep", "Resourceprep" };
	char in[24], ours[JID_PART_MAX];
	unsigned seed = 12345;

	for (int k = 0; k < 20000; k++) {
		size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 20;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (char)(0x20 + (seed >> 16) % 95);
		}
		in[n] = '\0';
		for (int p = 0; p < 2; p++) {
			char *lib = NULL;
			int lrc = stringprep_profile(in, &lib, profiles[p], 0);
			int rc = p == 0 ? jid_nodeprep(in, ours) : jid_resourceprep(in, ours);
			bool lib_ok = lrc == STRINGPREP_OK && lib && *lib;
			CHECK((rc == 0) == lib_ok);
			if (rc == 0 && lib_ok && strcmp(ours, lib) != 0) {
				fprintf(stderr, "  %s(%s): %s vs %s\n", profiles[p], in, ours, lib);
				CHECK(0);
			}
			free(lib);
		}
	}
}

int main(void)
{
	RUN(test_rfc7622_valid);
	RUN(test_rfc7622_invalid);
	RUN(test_case_and_domain);
	RUN(test_parts);
	RUN(test_lengths);
	RUN(test_lua);
	RUN(test_ascii_fast_path_matches_stringprep);
	TEST_END();
}
