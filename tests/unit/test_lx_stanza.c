/* test_lx_stanza.c - the stanza userdata and util.stanza, driven by Lua
 * snippets that assert what a module author would see. */
#include "lx.h"
#include "harness.h"

static lua_State *L;

static int traceback(lua_State *S)
{
	luaL_traceback(S, S, lua_tostring(S, 1), 1);
	return 1;
}

/* Runs a Lua chunk; false (and the error printed) when it fails. */
static bool run(const char *name, const char *code)
{
	int base = lua_gettop(L);
	bool ok;

	lua_pushcfunction(L, traceback);
	ok = luaL_loadbuffer(L, code, strlen(code), name) == LUA_OK &&
	     lua_pcall(L, 0, 0, base + 1) == LUA_OK;
	if (!ok)
		fprintf(stderr, "  %s: %s\n", name, lua_tostring(L, -1));
	lua_settop(L, base);
	return ok;
}

#define LUA_CHECK(code) do { \
	if (!run(__func__, "local st = require 'util.stanza'\n" code)) { \
		fprintf(stderr, "  %s:%d: Lua snippet failed\n", __FILE__, __LINE__); \
		h_cur_failed = 1; \
	} \
} while (0)

static void test_builder(void)
{
	LUA_CHECK(
	"local m = st.message({ to = 'juliet@example.com', type = 'chat' }, 'hi')\n"
	"  :tag('x', { xmlns = 'urn:x' }):tag('y'):text('a<b'):up():up()\n"
	"  :tag('thread'):text('t1'):text(''):text(nil):up()\n"
	"assert(tostring(m) == \"<message to='juliet@example.com' type='chat'>\"\n"
	"  .. \"<body>hi</body><x xmlns='urn:x'><y>a&lt;b</y></x>\"\n"
	"  .. \"<thread>t1</thread></message>\", tostring(m))\n"
	"assert(m.name == 'message' and #m == 3 and m[1].name == 'body')\n"
	"assert(m[1][1] == 'hi' and m[4] == nil and m:at_top())\n"
	"local p = st.presence():tag('show'):text('away')\n"
	"assert(not p:at_top())\n"
	"p:reset():tag('status'):text(\"it's & <done>\")\n"
	"assert(tostring(p) == \"<presence><show>away</show>\"\n"
	"  .. \"<status>it's &amp; &lt;done&gt;</status></presence>\", tostring(p))\n"
	"local s = st.stanza('iq', { type = 'get', id = 'a\\\"b' })\n"
	"assert(s:top_tag() == \"<iq id='a&quot;b' type='get'>\", s:top_tag())\n"
	"local q = st.iq({ type = 'result', id = '1' }):query('jabber:iq:version')\n"
	"  :text_tag('name', 'Starling'):text_tag('version', '1 & 2')\n"
	"assert(tostring(q) == \"<iq id='1' type='result'><query \"\n"
	"  .. \"xmlns='jabber:iq:version'><name>Starling</name>\"\n"
	"  .. \"<version>1 &amp; 2</version></query></iq>\", tostring(q))\n"
	"local ok, err = pcall(st.iq, { type = 'get' })\n"
	"assert(not ok and err:find('iq stanzas require an id attribute', 1, true))\n"
	"ok, err = pcall(st.message, { to = 5 })\n"
	"assert(not ok and err:find('invalid attribute value'))\n"
	"ok, err = pcall(function() st.message():text('a\\0b') end)\n"
	"assert(not ok and err:find('invalid text value'))\n"
	"ok, err = pcall(function() st.message():text('\\xff') end)\n"
	"assert(not ok)\n"
	"ok, err = pcall(function() st.message():tag('a b') end)\n"
	"assert(not ok and err:find('invalid tag name'))\n"
	"assert(st.is_stanza(m) and not st.is_stanza({}) and not st.is_stanza('x'))\n");
}

static void test_queries(void)
{
	LUA_CHECK(
	"local iq = st.iq({ type = 'set', id = 'r1' })\n"
	"  :tag('query', { xmlns = 'jabber:iq:roster', ver = 'v1' })\n"
	"  :tag('item', { jid = 'a@b', name = 'A' }):tag('group'):text('Friends'):up():up()\n"
	"  :tag('item', { jid = 'c@d' }):up()\n"
	"  :tag('x', { xmlns = 'urn:other' }):up()\n"
	"assert(iq:get_child('query') == nil)\n"
	"local q = iq:get_child('query', 'jabber:iq:roster')\n"
	"assert(q and q.name == 'query' and q.attr.ver == 'v1')\n"
	"assert(q.attr.xmlns == 'jabber:iq:roster')\n"
	"assert(iq:get_child(nil, 'jabber:iq:roster') == q)\n"
	"assert(q:get_child('item'):get_child_text('group') == 'Friends')\n"
	"assert(q:get_child('item'):get_child_text('nope') == nil)\n"
	"assert(iq:find('{jabber:iq:roster}query/item@jid') == 'a@b')\n"
	"assert(iq:find('{jabber:iq:roster}query/item/group#') == 'Friends')\n"
	"assert(iq:find('{jabber:iq:roster}query@ver') == 'v1')\n"
	"assert(iq:find('{jabber:iq:roster}query/nothing') == nil)\n"
	"assert(iq:find('@id') == 'r1')\n"
	"assert(q:child_with_name('x').attr.xmlns == 'urn:other')\n"
	"assert(q:child_with_ns('urn:other').name == 'x')\n"
	"assert(q:get_child_attr('item', nil, 'name') == 'A')\n"
	"local jids = {}\n"
	"for item in q:childtags('item') do jids[#jids + 1] = item.attr.jid end\n"
	"assert(#jids == 2 and jids[1] == 'a@b' and jids[2] == 'c@d')\n"
	"local n = 0\n"
	"for _ in q:childtags() do n = n + 1 end\n"
	"assert(n == 2)\n"
	"n = 0\n"
	"for _ in q:childtags(nil, 'urn:other') do n = n + 1 end\n"
	"assert(n == 1)\n"
	"local tags = q.tags\n"
	"assert(#tags == 3 and tags[3].name == 'x')\n"
	"local b = st.message():tag('body'):text('a'):up():text('mid'):tag('b'):up()\n"
	"local kinds = {}\n"
	"for c in b:children() do kinds[#kinds + 1] = type(c) == 'string' and c or c.name end\n"
	"assert(table.concat(kinds, ',') == 'body,mid,b')\n"
	"assert(b:get_text() == 'mid' and b:get_child('body'):get_text() == 'a')\n"
	"-- removing the current child while iterating\n"
	"for item in q:childtags('item') do q:remove_children('item') end\n"
	"assert(q:get_child('item') == nil and #q == 1)\n");
}

static void test_attr_proxy(void)
{
	LUA_CHECK(
	"local m = st.message({ to = 'a@b', type = 'chat' })\n"
	"local attr = m.attr\n"
	"assert(rawequal(attr, m.attr))\n"
	"assert(attr.to == 'a@b' and attr.from == nil and attr.xmlns == 'jabber:client')\n"
	"attr.from = 'c@d/e'\n"
	"attr.type = nil\n"
	"attr['xml:lang'] = 'en'\n"
	"assert(tostring(m) == \"<message to='a@b' from='c@d/e' xml:lang='en'/>\", tostring(m))\n"
	"local seen = {}\n"
	"for k, v in pairs(m.attr) do seen[#seen + 1] = k .. '=' .. v end\n"
	"assert(table.concat(seen, ' ') == 'xmlns=jabber:client to=a@b from=c@d/e xml:lang=en')\n"
	"attr.xmlns = 'jabber:server'\n"
	"assert(tostring(m) == \"<message xmlns='jabber:server' to='a@b' from='c@d/e' xml:lang='en'/>\")\n"
	"attr.xmlns = nil\n"
	"assert(tostring(m) == \"<message to='a@b' from='c@d/e' xml:lang='en'/>\")\n"
	"m:tag('x', { xmlns = 'urn:x' }):tag('y')\n"
	"local y = m:get_child('x', 'urn:x'):get_child('y')\n"
	"assert(y.attr.xmlns == 'urn:x')\n"
	"y.attr.xmlns = 'urn:y'\n"
	"assert(tostring(y) == \"<y xmlns='urn:y'/>\")\n"
	"y.attr.xmlns = nil\n"
	"assert(y.attr.xmlns == 'urn:x')\n"
	"-- copying attributes into a new stanza\n"
	"local c = st.stanza(m.name, m.attr)\n"
	"assert(tostring(c) == \"<message to='a@b' from='c@d/e' xml:lang='en'/>\", tostring(c))\n"
	"m.attr = { id = 'z' }\n"
	"assert(m:top_tag() == \"<message id='z'>\", m:top_tag())\n"
	"-- fields a module sets stay on that stanza object (Prosody's _flush)\n"
	"m._flush = true\n"
	"assert(m._flush == true and m:top_tag() == \"<message id='z'>\")\n"
	"m._flush = nil\n"
	"assert(m._flush == nil)\n"
	"local ok = pcall(function() m.tags = {} end)\n"
	"assert(not ok)\n"
	"ok = pcall(function() m.attr['bad name'] = 'x' end)\n"
	"assert(not ok)\n"
	"ok = pcall(function() m.attr.to = {} end)\n"
	"assert(not ok)\n");
}

static void test_namespaces(void)
{
	LUA_CHECK(
	"-- a stanza built without xmlns takes the namespace of where it goes\n"
	"local q = st.iq({ type = 'result', id = '1' }):query('jabber:iq:roster')\n"
	"q:add_child(st.stanza('item', { jid = 'a@b' }):tag('group'):text('g'))\n"
	"assert(tostring(q) == \"<iq id='1' type='result'><query xmlns='jabber:iq:roster'>\"\n"
	"  .. \"<item jid='a@b'><group>g</group></item></query></iq>\", tostring(q))\n"
	"assert(q:find('{jabber:iq:roster}query/item/group#') == 'g')\n"
	"-- an explicit namespace stays\n"
	"local fwd = st.message({ to = 'me@x' }):tag('forwarded', { xmlns = 'urn:xmpp:forward:0' })\n"
	"fwd:add_child(st.message({ xmlns = 'jabber:client', to = 'a@b' }, 'hi'))\n"
	"assert(tostring(fwd) == \"<message to='me@x'><forwarded xmlns='urn:xmpp:forward:0'>\"\n"
	"  .. \"<message xmlns='jabber:client' to='a@b'><body>hi</body></message>\"\n"
	"  .. \"</forwarded></message>\", tostring(fwd))\n"
	"local x = st.stanza('x', { xmlns = 'jabber:x:data', type = 'form' })\n"
	"q = st.iq({ type = 'set', id = '2' }):tag('command', { xmlns = 'urn:cmd' })\n"
	"q:add_child(x):up()\n"
	"assert(tostring(q) == \"<iq id='2' type='set'><command xmlns='urn:cmd'>\"\n"
	"  .. \"<x xmlns='jabber:x:data' type='form'/></command></iq>\", tostring(q))\n"
	"-- add_direct_child ignores the cursor; strings are text\n"
	"local m = st.message():tag('a'):tag('b')\n"
	"m:add_direct_child(st.stanza('c')):add_direct_child('t')\n"
	"assert(tostring(m) == '<message><a><b/></a><c/>t</message>', tostring(m))\n"
	"-- adding a stanza into itself copies a snapshot\n"
	"local s = st.stanza('s'):tag('t'):up()\n"
	"s:add_child(s)\n"
	"assert(tostring(s) == '<s><t/><s><t/></s></s>', tostring(s))\n");
}

static void test_replies(void)
{
	LUA_CHECK(
	"local m = st.message({ from = 'r@x/o', to = 'j@y', id = 'm1', type = 'chat' }, 'hi')\n"
	"local e = st.error_reply(m, 'cancel', 'service-unavailable', 'gone fishing', 'y')\n"
	"assert(tostring(e) == \"<message from='j@y' id='m1' to='r@x/o' type='error'>\"\n"
	"  .. \"<body>hi</body><error type='cancel' by='y'><service-unavailable \"\n"
	"  .. \"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text \"\n"
	"  .. \"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone fishing</text></error>\"\n"
	"  .. \"</message>\", tostring(e))\n"
	"local t, c, txt, extra = e:get_error()\n"
	"assert(t == 'cancel' and c == 'service-unavailable' and txt == 'gone fishing' and extra == nil)\n"
	"assert(m:get_error() == nil)\n"
	"local ok, err = pcall(st.error_reply, e, 'cancel', 'bad-request')\n"
	"assert(not ok and err:find('must not be replied to'))\n"
	"local iq = st.iq({ from = 'a@b/c', to = 'b', id = 'q1', type = 'get' })\n"
	"  :query('jabber:iq:version')\n"
	"local r = st.reply(iq)\n"
	"assert(tostring(r) == \"<iq to='a@b/c' from='b' id='q1' type='result'/>\", tostring(r))\n"
	"r = iq:error_reply('modify', 'bad-request', nil, 'b')\n"
	"  :tag('too-many', { xmlns = 'urn:app' }):up()\n"
	"assert(tostring(r) == \"<iq from='b' id='q1' to='a@b/c' type='error'><error type='modify'>\"\n"
	"  .. \"<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><too-many xmlns='urn:app'/>\"\n"
	"  .. \"</error></iq>\", tostring(r))\n"
	"local _, cond, _, app = r:get_error()\n"
	"assert(cond == 'bad-request' and app.name == 'too-many')\n"
	"r = st.error_reply(iq, { type = 'auth', condition = 'forbidden', text = 'no',\n"
	"  extra = { namespace = 'urn:app', condition = 'why' } })\n"
	"assert(tostring(r):find(\"<error type='auth'><forbidden\", 1, true))\n"
	"assert(r:find('error/{urn:app}why') and r:find('error/{urn:ietf:params:xml:ns:xmpp-stanzas}text#') == 'no')\n");
}

static void test_clone_maptags(void)
{
	LUA_CHECK(
	"local m = st.message({ to = 'a@b' }, 'one'):tag('x', { xmlns = 'urn:x' }):up()\n"
	"local c = m:clone()\n"
	"c.attr.to = 'c@d'\n"
	"c:get_child('body'):text(' two')\n"
	"c:tag('y')\n"
	"assert(tostring(m) == \"<message to='a@b'><body>one</body><x xmlns='urn:x'/></message>\")\n"
	"assert(tostring(c) == \"<message to='c@d'><body>one two</body><x xmlns='urn:x'/><y/></message>\", tostring(c))\n"
	"local c2 = st.clone(m)\n"
	"assert(tostring(c2) == tostring(m))\n"
	"m:maptags(function(tag)\n"
	"  if tag.name == 'body' then return st.stanza('subject'):text('s') end\n"
	"  if tag.attr.xmlns == 'urn:x' then return nil end\n"
	"  return tag\n"
	"end)\n"
	"assert(tostring(m) == \"<message to='a@b'><subject>s</subject></message>\", tostring(m))\n"
	"local ok, err = pcall(m.maptags, m, function() error('boom') end)\n"
	"assert(not ok and err:find('boom'))\n"
	"ok = pcall(m.maptags, m, function() return 1 end)\n"
	"assert(not ok)\n"
	"m:tag('a'):tag('b')\n"
	"m:remove_children('a')\n"
	"assert(m:at_top())\n"
	"m:tag('z')\n"
	"assert(tostring(m) == \"<message to='a@b'><subject>s</subject><z/></message>\", tostring(m))\n");
}

static void test_lifetime(void)
{
	LUA_CHECK(
	"local m = st.message({ to = 'a@b' }):tag('x', { xmlns = 'urn:x' }):tag('y'):text('deep')\n"
	"local y = m:get_child('x', 'urn:x'):get_child('y')\n"
	"local attr = m.attr\n"
	"local it = m:childtags(nil, 'urn:x')\n"
	"m = nil\n"
	"collectgarbage(); collectgarbage()\n"
	"assert(y:get_text() == 'deep' and tostring(y) == \"<y xmlns='urn:x'>deep</y>\")\n"
	"assert(attr.to == 'a@b')\n"
	"assert(it().name == 'x' and it() == nil)\n"
	"y = nil; attr = nil; it = nil\n"
	"collectgarbage(); collectgarbage()\n"
	"-- methods added from Lua\n"
	"local methods = require 'starling.stanza'.methods\n"
	"methods.shout = function(s) return s.name:upper() end\n"
	"assert(st.message():shout() == 'MESSAGE')\n"
	"methods.shout = nil\n");
}

/* A doc made in C, seen from Lua, and back. */
static void test_c_boundary(void)
{
	struct st_doc *d = st_doc_new(), *got = NULL;
	struct st_node *m = st_elem_new(d, NULL, "message", NS_CLIENT), *n;

	st_attr_set(d, m, "to", "a@b");
	st_text_add(d, st_elem_new(d, m, "body", NULL), "hello", 5);
	lx_stanza_push(L, d, m);
	CHECK(d->refs == 2);
	st_doc_unref(d);		/* Lua holds the last reference */
	lua_setglobal(L, "from_c");
	CHECK(run("c", "assert(from_c:get_child_text('body') == 'hello')\n"
		  "from_c:tag('x', { xmlns = 'urn:x' })\n"
		  "assert(tostring(from_c) == \"<message to='a@b'><body>hello</body>\"\n"
		  "  .. \"<x xmlns='urn:x'/></message>\")"));
	lua_getglobal(L, "from_c");
	n = lx_stanza_check(L, -1, &got);
	CHECK(n == m && got == d);
	lua_pushinteger(L, 1);
	CHECK(lx_stanza_test(L, -1, NULL) == NULL);
	lua_pop(L, 2);
	lua_pushnil(L);
	lua_setglobal(L, "from_c");
	lua_gc(L, LUA_GCCOLLECT);
}

int main(void)
{
	L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "starling.stanza", luaopen_starling_stanza, 0);
	lua_pop(L, 1);
	run("path", "package.path = 'lua/?.lua'");
	RUN(test_builder);
	RUN(test_queries);
	RUN(test_attr_proxy);
	RUN(test_namespaces);
	RUN(test_replies);
	RUN(test_clone_maptags);
	RUN(test_lifetime);
	RUN(test_c_boundary);
	lua_close(L);
	TEST_END();
}
