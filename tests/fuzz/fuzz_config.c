/*
 * fuzz_config.c - the config loader: lua/starling/config.lua run by
 * config_load() (config.c) on the input as the config file, then the
 * lookups the server makes (config_host_next, config_string/int/bool,
 * config_each).
 *
 * Input: the config file's bytes (any Lua, or not Lua at all). It is
 * written to starling.cfg in a private temporary directory, which also
 * holds inc.cfg and conf.d/{a,b}.cfg for Include to find, and probe.lua.
 *
 * Whatever the input, the process must not crash and the sandbox must
 * hold:
 *   - every global function of the real Lua environment (os.exit,
 *     os.execute, io.open, io.popen, load, dofile, require's loaders,
 *     debug.*, ...) is replaced, once config.lua has been required, by a
 *     trap that aborts: the config reaching any of them is a finding;
 *   - the shared library tables (string, table, math) and the string
 *     metatable must be unchanged after every load;
 *   - a fresh load of probe.lua after every input still sees the sandbox
 *     as it should be (nothing a config did carries over to the next).
 * config_host_next()'s strings are read after a full garbage collection
 * (they must be anchored in the config, not only on the Lua stack).
 * The harness (not the server) bounds what a config may cost: 64 MiB of
 * Lua memory, an instruction budget (a count hook raising an error),
 * string.rep counts up to 2^24 (string.rep("", 2e9) is 2e9 empty copies
 * inside one C call, where no hook runs), and loadfile / io.popen confined
 * to the temporary directory, so that `while true do end`,
 * `string.rep("x", 1e10)` or Include of a device end the load with an
 * error instead of hanging the fuzzer.
 */
#include "fuzz_common.h"
#include "config.h"
#include "lx.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#ifndef STARLING_FUZZ_LUA_DIR
#define STARLING_FUZZ_LUA_DIR "lua"
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define CF_MEM_LIMIT ((size_t)64 << 20)
#define CF_HOOK_EVERY 1000		/* instructions per count hook */
#define CF_HOOK_BUDGET 2000		/* hooks per load: 2M instructions */

struct cf_mem {
	size_t used;
	size_t limit;
};

static struct cf_mem cf_mem;
static unsigned cf_hooks;
static char cf_dir[512];
static char cf_path[PATH_MAX];
static char cf_probe[PATH_MAX];
static int cf_checker = LUA_NOREF;

static void *cf_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct cf_mem *m = ud;
	size_t old = ptr ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		m->used -= MIN(old, m->used);
		return NULL;
	}
	if (nsize > old && m->used + (nsize - old) > m->limit)
		return NULL;
	p = realloc(ptr, nsize);
	if (p)
		m->used = m->used - MIN(old, m->used) + nsize;
	return p;
}

/* The lines of config.lua that ran, as coverage libFuzzer can see (the
 * Lua interpreter itself is not instrumented): one counter per line. */
#define CF_LUA_LINES 1024
#ifdef STARLING_LIBFUZZER
__attribute__((section("__libfuzzer_extra_counters")))
#endif
static uint8_t cf_lua_lines[CF_LUA_LINES];

static bool cf_is_config_lua(const char *source)
{
	static const char tail[] = "/starling/config.lua";
	size_t n = strlen(source);

	return n >= sizeof(tail) - 1 &&
	       memcmp(source + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) == 0;
}

static void cf_hook(lua_State *L, lua_Debug *ar)
{
	if (ar->event == LUA_HOOKLINE) {
		if (lua_getinfo(L, "S", ar) && cf_is_config_lua(ar->source))
			cf_lua_lines[(unsigned)ar->currentline % CF_LUA_LINES]++;
		return;
	}
	if (++cf_hooks > CF_HOOK_BUDGET)
		luaL_error(L, "fuzz: instruction budget exhausted");
}

static int cf_trap(lua_State *L)
{
	fprintf(stderr, "sandbox escape: the config reached %s\n",
		lua_tostring(L, lua_upvalueindex(1)));
	abort();
	return 0;
}

static int cf_make_trap(lua_State *L)
{
	luaL_checkstring(L, 1);
	lua_settop(L, 1);
	lua_pushcclosure(L, cf_trap, 1);
	return 1;
}

/* Run once, given (make_trap, dir): confines loadfile and io.popen to
 * dir, silences print, bounds string.rep, requires starling.config (which captures what it
 * uses), then traps every other global function, and returns a checker
 * that reports a change of the shared library tables. */
static const char cf_setup_lua[] =
	"local make_trap, dir = ...\n"
	"local pairs, type, rawget, tostring, getmetatable, ipairs ="
	"  pairs, type, rawget, tostring, getmetatable, ipairs\n"
	"local error = error\n"
	"local real_loadfile, real_popen, real_rep = loadfile, io.popen, string.rep\n"
	"local function inside(s, prefix)\n"
	"  return s:sub(1, #prefix) == prefix and not s:find('..', 1, true)\n"
	"end\n"
	"print = function() end\n"
	"string.rep = function(s, n, sep)\n"
	"  if type(n) == 'number' and n > 2^24 then error('fuzz: string.rep count bounded', 2) end\n"
	"  return real_rep(s, n, sep)\n"
	"end\n"
	"loadfile = function(file, mode, env)\n"
	"  if type(file) ~= 'string' or not inside(file, dir .. '/') then\n"
	"    return nil, 'fuzz: outside the fuzz directory'\n"
	"  end\n"
	"  return real_loadfile(file, mode, env)\n"
	"end\n"
	"io.popen = function(cmd, mode)\n"
	"  if type(cmd) ~= 'string' or not inside(cmd, \"for f in '\" .. dir .. '/') then\n"
	"    return nil, 'fuzz: outside the fuzz directory'\n"
	"  end\n"
	"  return real_popen(cmd, mode)\n"
	"end\n"
	"require 'starling.config'\n"
	"local libs = { string = string, table = table, math = math }\n"
	"local snap = {}\n"
	"for name, lib in pairs(libs) do\n"
	"  local t = {}\n"
	"  for k, v in pairs(lib) do t[k] = v end\n"
	"  snap[name] = t\n"
	"end\n"
	"local smt = getmetatable('')\n"
	"local smt_snap = {}\n"
	"for k, v in pairs(smt) do smt_snap[k] = v end\n"
	"local keep = { require = true, string = true, table = true,\n"
	"  math = true, _G = true, _VERSION = true }\n"
	"for k, v in pairs(_G) do\n"
	"  if not keep[k] then\n"
	"    if type(v) == 'function' then\n"
	"      _G[k] = make_trap(k)\n"
	"    elseif type(v) == 'table' and k ~= 'package' then\n"
	"      for kk, vv in pairs(v) do\n"
	"        if type(vv) == 'function' then v[kk] = make_trap(k .. '.' .. kk) end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"package.loadlib = make_trap('package.loadlib')\n"
	"package.searchpath = make_trap('package.searchpath')\n"
	"local function same(t, s, what)\n"
	"  for k, v in pairs(s) do\n"
	"    if rawget(t, k) ~= v then return what .. '.' .. tostring(k) .. ' was changed' end\n"
	"  end\n"
	"  for k in pairs(t) do\n"
	"    if s[k] == nil then return what .. '.' .. tostring(k) .. ' was added' end\n"
	"  end\n"
	"end\n"
	"return function()\n"
	"  for name, lib in pairs(libs) do\n"
	"    if rawget(_G, name) ~= lib then return name .. ' was replaced' end\n"
	"    local err = same(lib, snap[name], name)\n"
	"    if err then return err end\n"
	"  end\n"
	"  if getmetatable('') ~= smt then return 'the string metatable was replaced' end\n"
	"  return same(smt, smt_snap, 'string metatable')\n"
	"end\n";

/* Loaded after every input: a fresh load still sees the sandbox as it
 * should be (nothing a config did carries over into the next load). */
static const char cf_probe_lua[] =
	"probe_ok = type(os) == 'table' and os.getenv ~= nil\n"
	"  and os.time ~= nil and os.date ~= nil and os.exit == nil\n"
	"  and os.execute == nil and os.remove == nil and io == nil\n"
	"  and load == nil and loadfile == nil and dofile == nil\n"
	"  and require == nil and debug == nil and package == nil\n"
	"  and getmetatable == nil and setmetatable == nil and rawset == nil\n"
	"  and collectgarbage == nil and coroutine == nil and _G == nil\n"
	"  and string.rep ~= nil and string.format ~= nil\n"
	"  and table.concat ~= nil and math.floor ~= nil\n"
	"  and math.randomseed == nil and type(print) == 'function'\n";

static void cf_write(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", cf_dir, rel);
	f = fopen(path, "w");
	FUZZ_CHECK(f);
	fputs(text, f);
	FUZZ_CHECK(fclose(f) == 0);
}

static int cf_rm(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	return remove(path);
}

static void cf_cleanup(void)
{
	if (cf_dir[0])
		nftw(cf_dir, cf_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void cf_make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char sub[PATH_MAX];
	int n;

	if (!tmp || tmp[0] != '/' || strlen(tmp) > 256)
		tmp = "/tmp";
	n = snprintf(cf_dir, sizeof(cf_dir), "%s/starling-fuzz-config-XXXXXX",
		     tmp);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(cf_dir));
	FUZZ_CHECK(mkdtemp(cf_dir));
	atexit(cf_cleanup);
	snprintf(cf_path, sizeof(cf_path), "%s/starling.cfg", cf_dir);
	snprintf(sub, sizeof(sub), "%s/conf.d", cf_dir);
	FUZZ_CHECK(mkdir(sub, 0700) == 0);
	snprintf(cf_probe, sizeof(cf_probe), "%s/probe.lua", cf_dir);
	cf_write("probe.lua", cf_probe_lua);
	cf_write("inc.cfg", "included = \"yes\"\n"
		 "VirtualHost \"Included.Example\"\n"
		 "modules_enabled = { \"ping\"; \"disco\" }\n");
	cf_write("conf.d/a.cfg", "Component \"comp.example\" \"muc\"\n"
		 "c2s_timeout = 30\n");
	cf_write("conf.d/b.cfg", "VirtualHost \"b.example\"\n"
		 "c2s_require_encryption = false\n");
}

static void cf_init(void)
{
	const char *lua_dir = getenv("STARLING_LUA_DIR");
	lua_State *L;

	fuzz_quiet_log();
	cf_make_dir();
	FUZZ_CHECK(lx_init(lua_dir ? lua_dir : STARLING_FUZZ_LUA_DIR) == 0);
	L = lx_state();
	FUZZ_CHECK(luaL_loadstring(L, cf_setup_lua) == LUA_OK);
	lua_pushcfunction(L, cf_make_trap);
	lua_pushstring(L, cf_dir);
	FUZZ_CHECK(lx_pcall(L, 2, 1, "fuzz") == LUA_OK);
	FUZZ_CHECK(lua_isfunction(L, -1));
	cf_checker = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_gc(L, LUA_GCCOLLECT);
	cf_mem.used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 +
		      (size_t)lua_gc(L, LUA_GCCOUNTB);
	cf_mem.limit = cf_mem.used + CF_MEM_LIMIT;
	lua_setallocf(L, cf_alloc, &cf_mem);
	lua_sethook(L, cf_hook, LUA_MASKCOUNT | LUA_MASKLINE, CF_HOOK_EVERY);
}

static int cf_item(void *ctx, const char *item)
{
	FUZZ_CHECK(item);
	(*(size_t *)ctx) += strlen(item) + 1;
	return 0;
}

static int cf_pair(void *ctx, const char *name, const char *value)
{
	(*(size_t *)ctx) += (name ? strlen(name) : 0) + (value ? strlen(value) : 0);
	return 0;
}

/* The lookups the server makes on a host ("*" or NULL: global). */
static void cf_lookups(const char *host)
{
	const char *s;
	size_t n = 0;
	double d;

	s = config_string(host, "data_path", NULL);
	FUZZ_CHECK(!s || strlen(s) < SIZE_MAX);
	(void)config_int(host, "c2s_timeout", 60);
	(void)config_bool(host, "c2s_require_encryption", true);
	(void)config_each(host, "modules_enabled", cf_item, &n);
	(void)config_each(host, "interfaces", cf_item, &n);
	(void)config_kind(host, "ssl", NULL);
	s = config_field_string(host, "ssl", "certificate");
	FUZZ_CHECK(!s || strlen(s) < SIZE_MAX);
	(void)config_field_number(host, "limits", "c2s.rate", &d);
	(void)config_each_pair(host, "log", "modules", cf_pair, &n);
}

#define CF_MAX_HOSTS 64

/* Hosts as main.c and lx_core.c walk them; the strings must stay valid
 * while Lua runs (allocates, collects) in between. */
static void cf_hosts(void)
{
	const char *names[CF_MAX_HOSTS], *types[CF_MAX_HOSTS];
	const char *mods[CF_MAX_HOSTS];
	size_t pos = 0, n = 0;
	const char *name, *type, *mod;

	while (n < CF_MAX_HOSTS && config_host_next(&pos, &name, &type, &mod)) {
		FUZZ_CHECK(name && name[0] && type);
		names[n] = name;
		types[n] = type;
		mods[n] = mod;
		n++;
		cf_lookups(name);
	}
	cf_lookups(NULL);
	lua_gc(lx_state(), LUA_GCCOLLECT);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(strcmp(types[i], "local") == 0 ||
			   strcmp(types[i], "component") == 0);
		for (const char *p = names[i]; *p; p++)
			FUZZ_CHECK(*p < 'A' || *p > 'Z');
		FUZZ_CHECK(!mods[i] || strlen(mods[i]) < SIZE_MAX);
	}
}

static void cf_check_sandbox(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, cf_checker);
	cf_hooks = 0;
	FUZZ_CHECK(lx_pcall(L, 0, 1, "fuzz") == LUA_OK);
	if (!lua_isnil(L, -1)) {
		fprintf(stderr, "sandbox: the config changed shared state: %s\n",
			lua_tostring(L, -1));
		FUZZ_CHECK(!"the sandbox held");
	}
	lua_pop(L, 1);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	lua_State *L;
	FILE *f;

	if (cf_checker == LUA_NOREF)
		cf_init();
	L = lx_state();
	f = fopen(cf_path, "wb");
	FUZZ_CHECK(f);
	FUZZ_CHECK(fwrite(data, 1, size, f) == size);
	FUZZ_CHECK(fclose(f) == 0);
	cf_hooks = 0;
	if (config_load(cf_path) == 0) {
		FUZZ_CHECK(config_path() && strcmp(config_path(), cf_path) == 0);
		cf_hooks = 0;
		cf_hosts();
	}
	FUZZ_CHECK(lua_gettop(L) == 0);
	config_free();
	cf_check_sandbox(L);
	cf_hooks = 0;
	FUZZ_CHECK(config_load(cf_probe) == 0);
	FUZZ_CHECK(config_bool(NULL, "probe_ok", false));
	config_free();
	FUZZ_CHECK(lua_gettop(L) == 0);
	lua_gc(L, LUA_GCCOLLECT);
	return 0;
}
