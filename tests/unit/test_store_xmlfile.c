/*
 * test_store_xmlfile.c - the XML file reader of starlingctl's import
 * (lx_xmlfile.c): events in order, captured elements (empty ones too),
 * XInclude at the structure level and inside captured elements, and the
 * files it refuses.
 */
#include "harness.h"
#include "log.h"
#include "lx.h"
#include "lx_admin.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/starling-test-xmlfile-XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	f = fopen(path, "w");
	if (!f) {
		CHECK(0);
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* A handler that writes the events it gets into the global log, and
 * captures every element named "user". */
static const char handler_src[] =
	"local xf = require 'starling.xmlfile'\n"
	"local log = {}\n"
	"local function handler(ev, depth, a, b, c)\n"
	"  if ev == 'open' then\n"
	"    local keys = {}\n"
	"    for k, v in pairs(c) do keys[#keys + 1] = k .. '=' .. v end\n"
	"    table.sort(keys)\n"
	"    log[#log + 1] = ('open %d %s {%s} %s'):format(depth, a, b, table.concat(keys, ','))\n"
	"    return a == 'user'\n"
	"  elseif ev == 'close' then\n"
	"    log[#log + 1] = ('close %d %s'):format(depth, a)\n"
	"  else\n"
	"    log[#log + 1] = ('element %d %s'):format(depth, xf.serialize(a, 'urn:x'))\n"
	"  end\n"
	"end\n"
	"local ok, err = xf.read(PATH, handler)\n"
	"if not ok then return 'error: ' .. err end\n"
	"return table.concat(log, '\\n')\n";

static char result[8192];

static const char *read_events(const char *name)
{
	lua_State *L = lx_state();
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	lua_pushstring(L, path);
	lua_setglobal(L, "PATH");
	if (luaL_dostring(L, handler_src) != 0) {
		snprintf(result, sizeof(result), "lua: %s", lua_tostring(L, -1));
	} else {
		const char *r = lua_tostring(L, -1);
		/* paths in messages are shown from the file name on */
		const char *at = r ? strstr(r, base) : NULL;
		if (at)
			snprintf(result, sizeof(result), "%.*s%s", (int)(at - r), r,
				 at + strlen(base) + 1);
		else
			snprintf(result, sizeof(result), "%s", r ? r : "(nil)");
	}
	lua_settop(L, 0);
	return result;
}

static void test_events_and_capture(void)
{
	write_file("a.xml",
		   "<?xml version='1.0'?>\n<!-- a comment -->\n"
		   "<top xmlns='urn:x' xmlns:o='urn:o' v='1'>\n"
		   "  text that is ignored\n"
		   "  <host jid='h'><user name='e'/><user name='f' o:k='v' xml:lang='en'>"
		   "<vCard xmlns='vcard-temp'><FN>F &amp; G</FN></vCard>"
		   "<b/></user></host>\n"
		   "</top>\n");
	CHECK_STR(read_events("a.xml"),
		  "open 1 top {urn:x} v=1\n"
		  "open 2 host {urn:x} jid=h\n"
		  "open 3 user {urn:x} name=e\n"
		  "element 3 <user name='e'/>\n"
		  "open 3 user {urn:x} name=f,urn:o\1k=v,xml:lang=en\n"
		  "element 3 <user name='f' xmlns:ns1='urn:o' ns1:k='v' xml:lang='en'>"
		  "<vCard xmlns='vcard-temp'><FN>F &amp; G</FN></vCard><b/></user>\n"
		  "close 2 host\n"
		  "close 1 top");
}

static void test_xinclude(void)
{
	write_file("main.xml",
		   "<top xmlns='urn:x' xmlns:xi='http://www.w3.org/2001/XInclude'>"
		   "<xi:include href='sub/host.xml'><xi:fallback><x/></xi:fallback>"
		   "</xi:include></top>");
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/sub", base);
	mkdir(dir, 0700);
	write_file("sub/host.xml",
		   "<host xmlns='urn:x' xmlns:xi='http://www.w3.org/2001/XInclude' jid='h'>"
		   "<xi:include href='user.xml'/></host>");
	write_file("sub/user.xml",
		   "<user xmlns='urn:x' xmlns:xi='http://www.w3.org/2001/XInclude' name='u'>"
		   "<a/><xi:include href='part.xml'/><c/></user>");
	write_file("sub/part.xml", "<b xmlns='urn:p'><i>1</i></b>");
	CHECK_STR(read_events("main.xml"),
		  "open 1 top {urn:x} \n"
		  "open 2 host {urn:x} jid=h\n"
		  "open 3 user {urn:x} name=u\n"
		  "element 3 <user name='u'><a/><b xmlns='urn:p'><i>1</i></b><c/></user>\n"
		  "close 2 host\n"
		  "close 1 top");
}

static void test_refused(void)
{
	write_file("dtd.xml", "<!DOCTYPE top [<!ENTITY e 'x'>]><top/>");
	CHECK(strstr(read_events("dtd.xml"), "error: dtd.xml:1: a DOCTYPE is not allowed"));
	write_file("bad.xml", "<top>\n<a></b></top>");
	CHECK(strstr(read_events("bad.xml"), "error: bad.xml:2: mismatched tag"));
	CHECK(strstr(read_events("none.xml"), "error: none.xml: No such file"));
	write_file("self.xml", "<top xmlns:xi='http://www.w3.org/2001/XInclude'>"
			       "<xi:include href='self.xml'/></top>");
	CHECK(strstr(read_events("self.xml"), "nested deeper than 16"));
	write_file("parse.xml", "<top xmlns:xi='http://www.w3.org/2001/XInclude'>"
				"<xi:include href='a.xml' parse='text'/></top>");
	CHECK(strstr(read_events("parse.xml"), "no parse or xpointer"));
	write_file("url.xml", "<top xmlns:xi='http://www.w3.org/2001/XInclude'>"
			      "<xi:include href='http://example.com/a.xml'/></top>");
	CHECK(strstr(read_events("url.xml"), "no parse or xpointer"));
	/* a handler that raises ends the read with an error */
	CHECK(luaL_dostring(lx_state(),
		"local ok, err = require 'starling.xmlfile'.read(PATH,"
		" function() error('boom') end)\n"
		"assert(ok == nil and err:match('handler failed'))") == 0);
	lua_settop(lx_state(), 0);
}

static void test_serialize_escape(void)
{
	CHECK(luaL_dostring(lx_state(),
		"local xf = require 'starling.xmlfile'\n"
		"local st = require 'starling.stanza'\n"
		"local m = st.new('message', { to = 'a&b' })\n"
		"assert(xf.serialize(m) == \"<message to='a&amp;b'/>\")\n"
		"assert(xf.serialize(m, 'urn:other') == "
		"\"<message xmlns='jabber:client' to='a&amp;b'/>\")\n"
		"assert(xf.escape(\"<'&\\\">\") == '&lt;&apos;&amp;&quot;&gt;')\n"
		"assert(not pcall(xf.serialize, {}))") == 0);
	lua_settop(lx_state(), 0);
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(base) || lx_init(".") != 0)
		return 1;
	luaL_requiref(lx_state(), "starling.xmlfile", luaopen_starling_xmlfile, 0);
	lua_pop(lx_state(), 1);
	RUN(test_events_and_capture);
	RUN(test_xinclude);
	RUN(test_refused);
	RUN(test_serialize_escape);
	lx_close();
	h_rm_tree(base);
	TEST_END();
}
