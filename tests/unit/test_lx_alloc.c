/* test_lx_alloc.c - the Lua state's allocator (core/lua/lx_alloc.c): what
 * a block holds survives every resize (within a size class, across
 * classes, to and from large blocks), a freed small block is handed out
 * again for its class, and a Lua state on it runs string, table and
 * collector work before and after a trim. */
#include "lx.h"
#include "harness.h"

#include <stdlib.h>

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

static bool same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7))
			return false;
	return true;
}

static void test_resizes_keep_content(void)
{
	/* sizes: a class, the same class, other classes, large, back small */
	static const size_t sizes[] = { 20, 30, 40, 17, 512, 513, 4000, 600, 100, 1, 0 };
	size_t old = 24;
	unsigned char *p = lx_alloc(NULL, NULL, LUA_TSTRING, old);

	CHECK(p != NULL);
	fill(p, old, 3);
	for (size_t i = 0; sizes[i]; i++) {
		size_t keep = old < sizes[i] ? old : sizes[i];

		p = lx_alloc(NULL, p, old, sizes[i]);
		CHECK(p != NULL);
		CHECK(same(p, keep, 3));
		fill(p, sizes[i], 3);	/* the whole new size is writable */
		old = sizes[i];
	}
	CHECK(lx_alloc(NULL, p, old, 0) == NULL);
	CHECK(lx_alloc(NULL, NULL, LUA_TTABLE, 0) == NULL);
}

static void test_small_blocks_reused(void)
{
	void *a = lx_alloc(NULL, NULL, LUA_TTABLE, 100);
	void *b;

	fill(a, 100, 9);
	lx_alloc(NULL, a, 100, 0);
	/* 97..112 bytes are one class: the block comes back (kept, unless
	 * AddressSanitizer is on, which must see every free) */
	b = lx_alloc(NULL, NULL, LUA_TTABLE, 112);
#ifndef __SANITIZE_ADDRESS__
	CHECK(b == a);
#endif
	fill(b, 112, 1);
	CHECK(same(b, 112, 1));
	lx_alloc(NULL, b, 112, 0);
	lx_alloc_trim();
}

static void test_many_frees_beyond_the_cap(void)
{
	enum { N = 40000 };	/* 40,000 * 256 bytes: past the 8 MiB kept */
	void **v = calloc(N, sizeof(*v));

	for (int i = 0; i < N; i++) {
		v[i] = lx_alloc(NULL, NULL, LUA_TUSERDATA, 256);
		fill(v[i], 256, (unsigned)i);
	}
	for (int i = 0; i < N; i++) {
		CHECK(same(v[i], 256, (unsigned)i));
		lx_alloc(NULL, v[i], 256, 0);
	}
	for (int i = 0; i < N; i++)	/* taken back, then from malloc */
		v[i] = lx_alloc(NULL, NULL, LUA_TUSERDATA, 250);
	for (int i = 0; i < N; i++)
		lx_alloc(NULL, v[i], 250, 0);
	free(v);
	lx_alloc_trim();
}

static void test_lua_state_on_it(void)
{
	static const char code[] =
		"local t = {}\n"
		"for i = 1, 20000 do t[i] = { n = i, s = ('x'):rep(i % 700) .. i } end\n"
		"for i = 1, 20000, 3 do t[i] = nil end\n"
		"collectgarbage()\n"
		"local sum = 0\n"
		"for i = 2, 20000, 3 do\n"
		"  assert(t[i].n == i and t[i].s == ('x'):rep(i % 700) .. i)\n"
		"  sum = sum + #t[i].s\n"
		"end\n"
		"local parts = {}\n"
		"for i = 1, 5000 do parts[#parts + 1] = tostring(i) end\n"
		"return sum, #table.concat(parts, ',')";
	for (int round = 0; round < 2; round++) {
		lua_State *L = lua_newstate(lx_alloc, NULL);

		CHECK(L != NULL);
		luaL_openlibs(L);
		lua_gc(L, LUA_GCGEN, 0, 0);
		CHECK(luaL_dostring(L, code) == LUA_OK);
		CHECK(lua_tointeger(L, -1) == 23892);
		CHECK(lua_tointeger(L, -2) > 0);
		lua_close(L);
		lx_alloc_trim();
	}
}

int main(void)
{
	RUN(test_resizes_keep_content);
	RUN(test_small_blocks_reused);
	RUN(test_many_frees_beyond_the_cap);
	RUN(test_lua_state_on_it);
	TEST_END();
}
