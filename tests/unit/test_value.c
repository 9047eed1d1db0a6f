/*
 * test_value.c - the stored-value encoding (value.c, lx_value.c): round
 * trips of every type, the errors encode reports, and corrupt input for
 * decode (every truncation and many random mutations of valid encodings:
 * -EINVAL or a value, never a crash or an over-read; run it under ASan);
 * stanzas encoded and decoded by C alone, in the bytes Lua's give.
 */
#include "harness.h"
#include "lx.h"
#include "log.h"
#include "value.h"

#include <errno.h>
#include <stdlib.h>

static lua_State *L;

/* enc(v) -> string | nil, errno;  dec(s) -> true, value | false, errno */
static int l_enc(lua_State *Ls)
{
	struct sbuf b;
	int top = lua_gettop(Ls), rc;

	sbuf_init(&b);
	sbuf_adds(&b, "junk");		/* must stay as it is on failure */
	rc = value_encode(Ls, 1, &b);
	if (lua_gettop(Ls) != top)
		return luaL_error(Ls, "encode changed the stack");
	if (rc) {
		bool kept = b.len == 4 && memcmp(b.p, "junk", 4) == 0;
		sbuf_free(&b);
		if (!kept)
			return luaL_error(Ls, "encode failed but changed out");
		lua_pushnil(Ls);
		lua_pushinteger(Ls, rc);
		return 2;
	}
	lua_pushlstring(Ls, b.p + 4, b.len - 4);
	sbuf_free(&b);
	return 1;
}

static int l_dec(lua_State *Ls)
{
	size_t len;
	const char *s = luaL_checklstring(Ls, 1, &len);
	int top = lua_gettop(Ls);
	int rc = value_decode(Ls, s, len);

	if (lua_gettop(Ls) != top + (rc ? 0 : 1))
		return luaL_error(Ls, "decode left the stack unbalanced");
	if (rc) {
		lua_pushboolean(Ls, 0);
		lua_pushinteger(Ls, rc);
		return 2;
	}
	lua_pushboolean(Ls, 1);
	lua_insert(Ls, -2);
	return 2;
}

static const char lua_helpers[] =
	"function deq(a, b)\n"
	"  if type(a) ~= type(b) then return false end\n"
	"  if type(a) == 'number' then\n"
	"    if math.type(a) ~= math.type(b) then return false end\n"
	"    if a ~= a then return b ~= b end\n"
	"    if a == 0 and b == 0 then return 1/a == 1/b end\n"
	"    return a == b\n"
	"  end\n"
	"  if type(a) == 'userdata' then return tostring(a) == tostring(b) end\n"
	"  if type(a) ~= 'table' then return a == b end\n"
	"  for k, v in pairs(a) do\n"
	"    local w = rawget(b, k)\n"
	"    if type(k) == 'table' or type(k) == 'userdata' then\n"
	"      w = nil\n"
	"      for k2, v2 in pairs(b) do\n"
	"        if type(k2) == type(k) and deq(k, k2) and deq(v, v2) then w = v2 end\n"
	"      end\n"
	"    end\n"
	"    if w == nil or not deq(v, w) then return false end\n"
	"  end\n"
	"  local na, nb = 0, 0\n"
	"  for _ in pairs(a) do na = na + 1 end\n"
	"  for _ in pairs(b) do nb = nb + 1 end\n"
	"  if na ~= nb then return false end\n"
	"  return true\n"
	"end\n"
	"function rt(v)\n"
	"  local s, err = enc(v)\n"
	"  assert(s, 'encode failed: ' .. tostring(err))\n"
	"  assert(s:byte(1) == 1, 'version byte')\n"
	"  local ok, w = dec(s)\n"
	"  assert(ok, 'decode failed')\n"
	"  assert(deq(v, w), 'round trip differs')\n"
	"  return w, s\n"
	"end\n";

static bool run(const char *what, const char *code)
{
	if (luaL_dostring(L, code) == 0)
		return true;
	fprintf(stderr, "  %s: %s\n", what, lua_tostring(L, -1));
	lua_pop(L, 1);
	return false;
}

static void test_scalars(void)
{
	CHECK(run("scalars",
		"rt(nil) rt(true) rt(false)\n"
		"for _, n in ipairs{0, 1, -1, 63, 64, -64, -65, 127, 128, 300, -300,\n"
		"    2^31, 2^32 + 1, 1 << 53, math.maxinteger, math.mininteger,\n"
		"    math.maxinteger - 1, math.mininteger + 1} do\n"
		"  rt(math.tointeger(n) or n)\n"
		"end\n"
		"assert(math.type(rt(5)) == 'integer')\n"
		"assert(math.type(rt(5.0)) == 'float')\n"
		"for _, f in ipairs{0.5, -0.5, 1e308, -1e-308, 4.9e-324, 2^63, 1/3} do rt(f) end\n"
		"rt(math.huge) rt(-math.huge)\n"
		"local nan = rt(0/0) assert(nan ~= nan)\n"
		"local z = rt(-0.0) assert(1/z == -math.huge)\n"
		"assert(1/rt(0.0) == math.huge)\n"
		"rt('') rt('hello') rt('a\\0b\\0') rt(('\\255\\0x'):rep(10000))\n"
		"local _, s = rt(math.mininteger) assert(#s <= 12)\n"
		"_, s = rt(1) assert(#s == 3)\n"
		"_, s = rt(-1) assert(#s == 3)\n"));
}

static void test_tables(void)
{
	CHECK(run("tables",
		"rt({}) rt({1, 2, 3}) rt({a = 1, b = 'x', [true] = false})\n"
		"rt({[1.5] = 'f', [-7] = 'i', [''] = 'e', ['a\\0'] = 'n'})\n"
		"rt({[{1}] = 'table key', [{k = 'v'}] = {nested = {deep = {1, 2}}}})\n"
		"local t = {} for i = 1, 1000 do t[i] = i * 3 end rt(t)\n"
		"local sparse = {[1] = 'a', [3] = 'c', [100000] = 'z'} rt(sparse)\n"
		"local roster = {\n"
		"  ['juliet@example.com'] = {name = 'Juliet', subscription = 'both',\n"
		"    groups = {Friends = true}, ask = nil},\n"
		"  [false] = {version = 42},\n"
		"}\n"
		"rt(roster)\n"
		"local shared = {x = 1} rt({a = shared, b = shared})\n"
		"local mt = setmetatable({v = 1}, {__index = function() return 9 end})\n"
		"local w = rt(mt) assert(getmetatable(w) == nil)\n"
		"local deep = {} local c = deep\n"
		"for i = 1, 63 do c.n = {} c = c.n end\n"
		"rt(deep)\n"));
}

static void test_encode_errors(void)
{
	CHECK(run("encode errors",
		"local EINVAL = select(2, enc(print))\n"
		"assert(EINVAL and EINVAL < 0)\n"
		"assert(select(2, enc(function() end)) == EINVAL)\n"
		"assert(select(2, enc(coroutine.create(print))) == EINVAL)\n"
		"assert(select(2, enc(io.stdout)) == EINVAL)\n"
		"assert(select(2, enc({1, 2, {f = print}})) == EINVAL)\n"
		"assert(select(2, enc({[print] = 1})) == EINVAL)\n"
		"local deep = {} local c = deep\n"
		"for i = 1, 64 do c.n = {} c = c.n end\n"
		"assert(select(2, enc(deep)) == EINVAL)\n"
		"local cyc = {} cyc.self = cyc\n"
		"assert(select(2, enc(cyc)) == EINVAL)\n"
		"local a, b = {}, {} a.b = b b.a = a\n"
		"assert(select(2, enc({a})) == EINVAL)\n"
		"local dag = {} for i = 1, 40 do dag = {dag, dag} end\n"
		"assert(select(2, enc(dag)) == EINVAL)\n"));
}

static void test_decode_errors(void)
{
	CHECK(run("decode errors",
		"local function bad(s) local ok, e = dec(s) assert(not ok and e < 0, ('%q'):format(s)) end\n"
		"bad('') bad('\\1') bad('\\2\\0') bad('\\0\\0')\n"
		"bad('\\1\\0\\0')\n"			/* trailing byte */
		"bad('\\1\\8') bad('\\1\\255')\n"	/* unknown tags */
		"bad('\\1\\3')\n"
		"bad('\\1\\3\\128\\128\\128\\128\\128\\128\\128\\128\\128\\2')\n"	/* > 64 bits */
		"bad('\\1\\3\\128\\128\\128\\128\\128\\128\\128\\128\\128\\128\\0')\n"	/* 11 bytes */
		"bad('\\1\\4\\0\\0\\0') bad('\\1\\5\\5abcd') bad('\\1\\5\\255\\255\\255\\255\\15')\n"
		"bad('\\1\\6\\1\\0\\2')\n"		/* nil key */
		"bad('\\1\\6\\1\\2\\0')\n"		/* nil value */
		"bad('\\1\\6\\1\\4\\127\\248\\0\\0\\0\\0\\0\\0\\2')\n"	/* NaN key */
		"bad('\\1\\6\\255\\255\\255\\255\\1\\2\\2')\n"	/* count beyond the bytes */
		"bad('\\1\\6\\2\\2\\2')\n"
		"bad('\\1\\7') bad('\\1\\7\\0\\0\\0\\0')\n"	/* stanza: empty name */
		"bad('\\1\\7\\1a\\5xx\\0\\0')\n"		/* ns past the end */
		"bad('\\1\\7\\2a\\0\\0\\0\\0')\n"		/* NUL in a name */
		"local deep = ('\\6\\1\\2'):rep(65) .. '\\2' bad('\\1' .. deep)\n"
		"local ok, v = dec('\\1' .. ('\\6\\1\\2'):rep(64) .. '\\2') assert(ok)\n"
		"ok, v = dec('\\1\\3\\255\\255\\255\\255\\255\\255\\255\\255\\255\\1')\n"
		"assert(ok and v == math.mininteger)\n"
		"ok, v = dec('\\1\\3\\254\\255\\255\\255\\255\\255\\255\\255\\255\\1')\n"
		"assert(ok and v == math.maxinteger)\n"
		"ok, v = dec('\\1\\6\\1\\5\\1k\\5\\1v') assert(ok and v.k == 'v')\n"));
}

/* ---- corruption ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Decodes data (a heap copy of exactly len bytes, so ASan sees any
 * over-read): 0 or -EINVAL, with the stack as it must be. */
static bool decode_sane(const char *data, size_t len, int *rc_out)
{
	char *copy = xmalloc(len ? len : 1);
	int top = lua_gettop(L), rc;
	bool ok;

	memcpy(copy, data, len);
	rc = value_decode(L, copy, len);
	ok = (rc == 0 && lua_gettop(L) == top + 1) ||
	     (rc == -EINVAL && lua_gettop(L) == top);
	lua_settop(L, top);
	free(copy);
	if (rc_out)
		*rc_out = rc;
	return ok;
}

/* The encoding of the Lua expression expr. */
static bool encode_expr(const char *expr, struct sbuf *out)
{
	struct sbuf code;
	bool ok;

	sbuf_init(&code);
	sbuf_printf(&code, "return %s", expr);
	ok = luaL_dostring(L, code.p) == 0 && value_encode(L, -1, out) == 0;
	lua_settop(L, 0);
	sbuf_free(&code);
	return ok;
}

static const char *const samples[] = {
	"{1, 2.5, 'three', {four = 4, [true] = false}, [-5] = math.mininteger}",
	"{name = 'juliet', groups = {'a', 'b', ('x'):rep(200)}, n = 1e300,"
	" [{k = 1}] = {{{}}}, z = -0.0}",
	"'a plain string with \\0 inside'",
	"math.maxinteger",
	"{[1.5] = {1, 2, 3, {4, 5, {6}}}, s = ('long'):rep(100)}",
	"sample_st",
	"{when = 1234567890, stanza = sample_st, [sample_st] = true}",
};

static void test_truncations(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		struct sbuf b;
		int rc, bad = 0;

		sbuf_init(&b);
		CHECK(encode_expr(samples[i], &b));
		CHECK(decode_sane(b.p, b.len, &rc) && rc == 0);
		for (size_t n = 0; n < b.len; n++)
			if (!decode_sane(b.p, n, &rc) || rc != -EINVAL)
				bad++;
		CHECK(bad == 0);
		sbuf_free(&b);
	}
}

static void test_mutations(void)
{
	int insane = 0, decoded = 0, rejected = 0;

	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		struct sbuf b, m;

		sbuf_init(&b);
		sbuf_init(&m);
		CHECK(encode_expr(samples[i], &b));
		for (int round = 0; round < 4000; round++) {
			int rc;
			sbuf_reset(&m);
			sbuf_add(&m, b.p, b.len);
			int flips = 1 + (int)(next_rand() % 4);
			for (int f = 0; f < flips; f++) {
				size_t at = 1 + next_rand() % (m.len - 1);
				switch (next_rand() % 4) {
				case 0:		/* one bit */
					m.p[at] ^= (char)(1 << (next_rand() % 8));
					break;
				case 1:		/* a random byte */
					m.p[at] = (char)next_rand();
					break;
				case 2:		/* a boundary value */
					m.p[at] = (char)(next_rand() & 1 ? 0xff : 0x80);
					break;
				default:	/* cut the tail */
					m.len = at + 1;
					break;
				}
			}
			if (!decode_sane(m.p, m.len, &rc))
				insane++;
			else if (rc == 0)
				decoded++;
			else
				rejected++;
		}
		sbuf_free(&b);
		sbuf_free(&m);
	}
	CHECK(insane == 0);
	CHECK(decoded > 0 && rejected > 0);
}

/* Random bytes after the version byte. */
static void test_noise(void)
{
	char buf[64];
	int insane = 0;

	for (int round = 0; round < 20000; round++) {
		size_t len = 1 + next_rand() % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)next_rand();
		buf[0] = 1;
		if (len > 1 && round % 2)
			buf[1] = (char)(next_rand() % 8);	/* a real tag */
		if (!decode_sane(buf, len, NULL))
			insane++;
	}
	CHECK(insane == 0);
}

/* ---- stanzas ---- */

/* Calls the function below the argument on the stack, 0 when it ran. */
static int lx_pcall_free(lua_State *Ls)
{
	if (lua_pcall(Ls, 1, 0, 0) == 0)
		return 0;
	fprintf(stderr, "  lua: %s\n", lua_tostring(Ls, -1));
	lua_pop(Ls, 1);
	return -1;
}

static struct st_doc *sample_stanza(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *m = st_elem_new(d, NULL, "message", NS_CLIENT);
	struct st_node *body, *x, *deep;

	st_attr_set(d, m, "to", "juliet@example.com/balcony");
	st_attr_set(d, m, "type", "chat");
	st_attr_set(d, m, "xml:lang", "en");
	body = st_elem_new(d, m, "body", NULL);
	st_text_add(d, body, "Wherefore art thou <Romeo> & 'why'?", 35);
	x = st_elem_new(d, m, "delay", "urn:xmpp:delay");
	st_attr_set(d, x, "stamp", "2002-09-10T23:08:25Z");
	st_attr_set(d, x, "urn:other\1attr", "namespaced");
	st_text_add(d, m, "tail text", 9);
	deep = st_elem_new(d, m, "a", "");
	for (int i = 0; i < 30; i++)
		deep = st_elem_new(d, deep, "a", NULL);
	st_text_add(d, deep, "bottom", 6);
	st_elem_new(d, m, "empty", "urn:empty");
	return d;
}

static void serialize(const struct st_node *n, struct sbuf *out)
{
	sbuf_reset(out);
	st_serialize(n, NULL, out);
}

static bool same_tree(const struct st_node *a, const struct st_node *b)
{
	const struct st_node *ca, *cb;
	const struct st_attr *aa, *ab;

	if (!a->name || !b->name)
		return !a->name && !b->name && a->len == b->len &&
		       memcmp(a->text, b->text, a->len) == 0;
	if (strcmp(a->name, b->name) || strcmp(a->ns, b->ns))
		return false;
	for (aa = a->attrs, ab = b->attrs; aa && ab; aa = aa->next, ab = ab->next)
		if (strcmp(aa->name, ab->name) || strcmp(aa->value, ab->value))
			return false;
	if (aa || ab)
		return false;
	for (ca = a->first, cb = b->first; ca && cb; ca = ca->next, cb = cb->next)
		if (!same_tree(ca, cb) || cb->parent != b)
			return false;
	return !ca && !cb;
}

static void test_stanzas(void)
{
	struct st_doc *d = sample_stanza(), *d2;
	struct st_node *n;
	struct sbuf enc, s1, s2;

	sbuf_init(&enc);
	sbuf_init(&s1);
	sbuf_init(&s2);
	/* a stanza alone */
	lx_stanza_push(L, d, d->root);
	CHECK(value_encode(L, -1, &enc) == 0);
	lua_pop(L, 1);
	CHECK(value_decode(L, enc.p, enc.len) == 0);
	n = lx_stanza_test(L, -1, &d2);
	CHECK(n != NULL && d2 != NULL && d2 != d);
	if (n) {
		CHECK(n == d2->root && n->parent == NULL);
		CHECK(same_tree(d->root, n));
		serialize(d->root, &s1);
		serialize(n, &s2);
		CHECK_STR(s2.p, s1.p);
	}
	lua_pop(L, 1);
	/* every truncation of it, and a child view inside a table */
	for (size_t len = 0; len < enc.len; len++) {
		int rc;
		CHECK(decode_sane(enc.p, len, &rc) && rc == -EINVAL);
	}
	lua_newtable(L);
	lx_stanza_push(L, d, d->root->first->next);	/* <delay/> */
	lua_setfield(L, -2, "delay");
	lx_stanza_push(L, d, d->root);
	lua_rawseti(L, -2, 1);
	sbuf_reset(&enc);
	CHECK(value_encode(L, -1, &enc) == 0);
	lua_pop(L, 1);
	CHECK(value_decode(L, enc.p, enc.len) == 0);
	lua_getfield(L, -1, "delay");
	n = lx_stanza_test(L, -1, NULL);
	CHECK(n && n->parent == NULL && strcmp(n->name, "delay") == 0 &&
	      strcmp(n->ns, "urn:xmpp:delay") == 0 &&
	      same_tree(n, d->root->first->next));
	lua_pop(L, 1);
	lua_rawgeti(L, -1, 1);
	n = lx_stanza_test(L, -1, NULL);
	CHECK(n && same_tree(n, d->root));
	lua_pop(L, 2);
	/* a stanza as a table key */
	CHECK(luaL_dostring(L, "return function(st)\n"
			       "  local ok, t = dec(assert(enc({[st] = 'key'})))\n"
			       "  local k, v = next(t)\n"
			       "  assert(ok and type(k) == 'userdata' and v == 'key')\n"
			       "  assert(next(t, k) == nil)\n"
			       "end") == 0);
	lx_stanza_push(L, d, d->root);
	CHECK(lx_pcall_free(L) == 0);
	st_doc_unref(d);
	sbuf_free(&enc);
	sbuf_free(&s1);
	sbuf_free(&s2);
	CHECK(lua_gettop(L) == 0);
}

/* Stanzas built with the Lua API (starling.stanza). */
static void test_lua_stanzas(void)
{
	luaL_requiref(L, "starling.stanza", luaopen_starling_stanza, 0);
	lua_pop(L, 1);
	CHECK(run("lua stanzas",
		"local st = require 'starling.stanza'\n"
		"local m = st.new('message', { to = 'juliet@example.com', type = 'chat',\n"
		"    ['xml:lang'] = 'en', id = 'a&b' })\n"
		"  :tag('body'):text('<hi> & \\'bye\\''):up()\n"
		"  :tag('x', { xmlns = 'jabber:x:data', type = 'form' })\n"
		"    :tag('field', { var = 'a' }):tag('value'):text('1'):up():up():up()\n"
		"  :text('tail')\n"
		"local back = rt(m)\n"
		"assert(st.is_stanza(back) and back ~= m)\n"
		"assert(tostring(back) == tostring(m), tostring(back))\n"
		"assert(back:get_child_text('body') == '<hi> & \\'bye\\'')\n"
		"assert(back:get_child('x', 'jabber:x:data').attr.type == 'form')\n"
		"assert(back.attr.id == 'a&b')\n"
		"local x = m:get_child('x', 'jabber:x:data')\n"
		"local xb = rt(x)\n"
		"assert(tostring(xb) == tostring(x))\n"
		"local t = rt({ m, when = 5, [m] = 'key' })\n"
		"assert(tostring(t[1]) == tostring(m))\n"
		"local copy = back:clone()\n"
		"copy:tag('more'):up()\n"
		"assert(tostring(copy) ~= tostring(back))\n"));
}

static void test_stanza_limits(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *n = st_elem_new(d, NULL, "deep", "urn:x");
	struct sbuf b;
	char name[16];

	sbuf_init(&b);
	for (int i = 0; i < 600; i++)
		n = st_elem_new(d, n, "deep", NULL);
	lx_stanza_push(L, d, d->root);
	CHECK(value_encode(L, -1, &b) == -EINVAL);
	lua_pop(L, 1);
	st_doc_unref(d);
	d = st_doc_new();
	n = st_elem_new(d, NULL, "many", "urn:x");
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		st_attr_set(d, n, name, "v");
	}
	lx_stanza_push(L, d, d->root);
	CHECK(value_encode(L, -1, &b) == -EINVAL);
	lua_pop(L, 1);
	st_doc_unref(d);
	/* a duplicate attribute in stored bytes is corrupt */
	static const char dup[] = "\1\7\1m\1\2\1a\1x\1a\1y\0";
	CHECK(decode_sane(dup, sizeof(dup) - 1, NULL));
	CHECK(value_decode(L, dup, sizeof(dup) - 1) == -EINVAL);
	static const char ok[] = "\1\7\1m\1\2\1a\1x\1b\1y\1t\2hi";
	CHECK(value_decode(L, ok, sizeof(ok) - 1) == 0);
	n = lx_stanza_test(L, -1, NULL);
	CHECK(n && strcmp(n->ns, "") == 0 && n->attrs && n->attrs->next &&
	      strcmp(n->attrs->next->value, "y") == 0 &&
	      n->first && n->first->len == 2);
	lua_pop(L, 1);
	sbuf_free(&b);
}

/* value_encode_stanza and value_decode_stanza, no Lua value involved:
 * the bytes are those value_encode makes for the stanza userdata. */
static void test_c_stanzas(void)
{
	struct st_doc *d = sample_stanza(), *d2 = NULL;
	struct sbuf enc, lenc, s1, s2;
	int rc;

	sbuf_init(&enc);
	sbuf_init(&lenc);
	sbuf_init(&s1);
	sbuf_init(&s2);
	sbuf_adds(&enc, "kept");
	CHECK(value_encode_stanza(d->root, &enc) == 0);
	CHECK(enc.len > 4 && memcmp(enc.p, "kept", 4) == 0);
	lx_stanza_push(L, d, d->root);
	CHECK(value_encode(L, -1, &lenc) == 0);
	lua_pop(L, 1);
	CHECK(enc.len - 4 == lenc.len && memcmp(enc.p + 4, lenc.p, lenc.len) == 0);

	CHECK(value_decode_stanza(enc.p + 4, enc.len - 4, &d2) == 0);
	CHECK(d2 && d2 != d && d2->root && d2->root->parent == NULL);
	if (d2 && d2->root) {
		CHECK(same_tree(d->root, d2->root));
		serialize(d->root, &s1);
		serialize(d2->root, &s2);
		CHECK_STR(s2.p, s1.p);
		st_doc_unref(d2);
	}
	/* every truncation, a byte too many, a value that is no stanza */
	for (size_t len = 0; len < lenc.len; len++) {
		d2 = NULL;
		CHECK(value_decode_stanza(lenc.p, len, &d2) == -EINVAL && !d2);
	}
	sbuf_addc(&lenc, 0);
	CHECK(value_decode_stanza(lenc.p, lenc.len, &d2) == -EINVAL);
	CHECK(value_decode_stanza("\1\5\0", 3, &d2) == -EINVAL);
	CHECK(value_decode_stanza("\2\7", 2, &d2) == -EINVAL);

	/* what cannot be stored leaves out as it was */
	sbuf_reset(&enc);
	sbuf_adds(&enc, "kept");
	struct st_node *deep = d->root;
	for (int i = 0; i <= VALUE_MAX_XML_DEPTH; i++)
		deep = st_elem_new(d, deep, "x", NULL);
	rc = value_encode_stanza(d->root, &enc);
	CHECK(rc == -EINVAL && enc.len == 4 && strcmp(enc.p, "kept") == 0);
	st_doc_unref(d);
	sbuf_free(&enc);
	sbuf_free(&lenc);
	sbuf_free(&s1);
	sbuf_free(&s2);
}

int main(void)
{
	log_setup("error", "stderr");
	L = luaL_newstate();
	luaL_openlibs(L);
	lua_register(L, "enc", l_enc);
	lua_register(L, "dec", l_dec);
	if (luaL_dostring(L, lua_helpers) != 0) {
		fprintf(stderr, "helpers: %s\n", lua_tostring(L, -1));
		return 1;
	}
	{
		struct st_doc *d = sample_stanza();
		lx_stanza_push(L, d, d->root);
		lua_setglobal(L, "sample_st");
		st_doc_unref(d);
	}
	RUN(test_scalars);
	RUN(test_tables);
	RUN(test_encode_errors);
	RUN(test_decode_errors);
	RUN(test_truncations);
	RUN(test_mutations);
	RUN(test_noise);
	RUN(test_stanzas);
	RUN(test_c_stanzas);
	RUN(test_stanza_limits);
	RUN(test_lua_stanzas);
	lua_close(L);
	TEST_END();
}
