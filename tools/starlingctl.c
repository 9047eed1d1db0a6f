/*
 * starlingctl - administration on the data directory: accounts, and
 * XEP-0227 export and import (lua/starling/pie.lua, run in starlingctl's
 * Lua state with the admin modules of lx_admin.h).
 *
 * Works whether or not the server runs: LMDB lets both processes use the
 * environment at once.
 */
#include "accounts.h"
#include "config.h"
#include "ctl_admin.h"
#include "ctl_migrate.h"
#include "jid.h"
#include "log.h"
#include "lx.h"
#include "lx_admin.h"
#include "sqlstore.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static char cfg_dir[PATH_MAX];

static void usage(FILE *f)
{
	fputs("usage: starlingctl [-c CONFIG] COMMAND ...\n"
	      "  register USER HOST PASSWORD  create or update an account\n"
	      "  register-many PREFIX FIRST LAST PASSWORD HOST\n"
	      "                               accounts PREFIX<FIRST>..PREFIX<LAST>,\n"
	      "                               one commit (benchmarks, load tests)\n"
	      "  adduser JID                  create an account (password prompted,\n"
	      "                               or read from stdin when not a terminal)\n"
	      "  passwd JID                   change a password (same input rules)\n"
	      "  deluser JID                  delete an account and all its data\n"
	      "                               (these three are user create|password|\n"
	      "                               delete: through the running server,\n"
	      "                               which closes a deleted account's\n"
	      "                               sessions, or on the data directory)\n"
	      "  list HOST                    list the accounts of a host\n"
	      "  export [-o FILE] [HOST...]   write accounts and user data (XEP-0227)\n"
	      "                               of the hosts (all when none) to FILE\n"
	      "                               (made mode 0600) or stdout\n"
	      "  import FILE...               read XEP-0227 files (with XInclude)\n"
	      "  import-prosody DATA_DIR      read a Prosody data directory (internal\n"
	      "                               storage: accounts with their passwords,\n"
	      "                               rosters, vCards, private XML, offline\n"
	      "                               messages, message archives)\n"
	      "  migrate --from lmdb --to sql copy every record (accounts, rosters,\n"
	      "                               offline, archives, rooms, PubSub...)\n"
	      "                               into the config's sql database; or\n"
	      "                               --from sql --to lmdb (data_path). The\n"
	      "                               target must be empty (or --replace: emptied\n"
	      "                               first); the server stopped\n", f);
	ctl_admin_usage(f);
}

static int fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "starlingctl: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 1;
}

bool ctl_local_host(const char *host)
{
	size_t pos = 0;
	const char *name, *type, *module;

	while (config_host_next(&pos, &name, &type, &module))
		if (strcmp(name, host) == 0 && (!type || strcmp(type, "local") == 0))
			return true;
	return false;
}

char *ctl_read_password(const char *prompt)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool tty = isatty(STDIN_FILENO);
	struct termios old, quiet;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	n = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int set_password(const char *host, const char *node, const char *pw)
{
	int r;

	if (!*pw)
		return fail("%sempty passwords are not allowed", "");
	r = accounts_set_password(host, node, pw, ACCOUNTS_DEFAULT_ITERATIONS);
	if (r == 0)
		r = store_commit();
	if (r != 0)
		return fail("cannot store the account: %s", strerror(-r));
	return 0;
}

/* PREFIX<first>..PREFIX<last> with one password, each with its own salt,
 * committed in batches: a benchmark's 19,000 accounts in one process. */
static int register_many(char **argv)
{
	char host[JID_PART_MAX], node[JID_PART_MAX], name[JID_PART_MAX + 24];
	char *end;
	long first = strtol(argv[2], &end, 10), last;
	int r = 0;

	if (*end || first < 0)
		return fail("'%s' is not a number", argv[2]);
	last = strtol(argv[3], &end, 10);
	if (*end || last < first)
		return fail("'%s' is not a number at least FIRST", argv[3]);
	if (!*argv[4])
		return fail("%sempty passwords are not allowed", "");
	if (jid_nameprep(argv[5], host) != 0 || !ctl_local_host(host))
		return fail("host '%s' is not a VirtualHost in the config", argv[5]);
	for (long i = first; i <= last && r == 0; i++) {
		snprintf(name, sizeof(name), "%s%ld", argv[1], i);
		if (jid_nodeprep(name, node) != 0 || !*node)
			return fail("'%s' is not a valid username", name);
		r = accounts_set_password(host, node, argv[4], ACCOUNTS_DEFAULT_ITERATIONS);
		if (r == 0 && (i - first) % 1000 == 999)
			r = store_commit();
	}
	if (r == 0)
		r = store_commit();
	if (r != 0)
		return fail("cannot store the accounts: %s", strerror(-r));
	fprintf(stderr, "starlingctl: %ld accounts on %s\n", last - first + 1, host);
	return 0;
}

static int print_user(void *ctx, const char *user)
{
	printf("%s@%s\n", user, (const char *)ctx);
	return 0;
}

/* ---- XEP-0227 export and import (lua/starling/pie.lua) ---- */

static int l_write(lua_State *L)
{
	FILE *f = lua_touserdata(L, lua_upvalueindex(1));
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);

	if (fwrite(s, 1, len, f) != len)
		return luaL_error(L, "write failed: %s", strerror(errno));
	return 0;
}

static int l_warn(lua_State *L)
{
	fprintf(stderr, "starlingctl: warning: %s\n", luaL_checkstring(L, 1));
	return 0;
}


static int l_known_host(lua_State *L)
{
	lua_pushboolean(L, ctl_local_host(luaL_checkstring(L, 1)));
	return 1;
}

static int l_commit(lua_State *L)
{
	int rc = store_commit();

	if (rc)
		return luaL_error(L, "cannot commit: %s", strerror(-rc));
	return 0;
}

/* Pushes the starling.pie module's function name. 0 or -1. */
static int pie_function(lua_State *L, const char *name)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_starling_accounts);
	lua_setfield(L, -2, "starling.accounts");
	lua_pushcfunction(L, luaopen_starling_xmlfile);
	lua_setfield(L, -2, "starling.xmlfile");
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.pie");
	if (lx_pcall(L, 1, 1, "starlingctl") != 0)
		return -1;
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	return 0;
}

/* Runs the function on the stack with nargs: true, or nil, err (printed). */
static int pie_call(lua_State *L, int nargs, const char *what)
{
	if (lx_pcall(L, nargs, 2, "starlingctl") != 0)
		return fail("%s failed (see above)", what);
	if (lua_isnil(L, -2)) {
		fail("%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "failed");
		lua_pop(L, 2);
		return 1;
	}
	return 0;
}

static FILE *open_output(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;

	if (fd < 0)
		return NULL;
	fchmod(fd, 0600);
	f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

static int cmd_export(int argc, char **argv)
{
	lua_State *L = lx_state();
	const char *out = NULL;
	FILE *f = stdout;
	int first = 1, n = 0, rc;

	if (argc >= 3 && strcmp(argv[1], "-o") == 0) {
		out = argv[2];
		first = 3;
	}
	if (pie_function(L, "export") != 0)
		return 1;
	lua_newtable(L);
	for (int i = first; i < argc; i++) {
		char host[JID_PART_MAX];
		if (jid_nameprep(argv[i], host) != 0 || !ctl_local_host(host))
			return fail("host '%s' is not a VirtualHost in the config", argv[i]);
		lua_pushstring(L, host);
		lua_rawseti(L, -2, ++n);
	}
	for (size_t pos = 0; first == argc; ) {
		const char *name, *type, *module;
		if (!config_host_next(&pos, &name, &type, &module))
			break;
		if (!type || strcmp(type, "local") == 0) {
			lua_pushstring(L, name);
			lua_rawseti(L, -2, ++n);
		}
	}
	if (out && !(f = open_output(out)))
		return fail("cannot create %s", out);
	lua_pushlightuserdata(L, f);
	lua_pushcclosure(L, l_write, 1);
	lua_pushcfunction(L, l_warn);
	rc = pie_call(L, 3, "export");
	if (fflush(f) != 0 || ferror(f))
		rc = fail("cannot write the export: %s", strerror(errno));
	if (out && fclose(f) != 0 && rc == 0)
		rc = fail("cannot write %s", out);
	return rc;
}

static int cmd_import(int argc, char **argv)
{
	lua_State *L = lx_state();
	int rc;

	if (pie_function(L, "import") != 0)
		return 1;
	lua_newtable(L);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, l_known_host);
	lua_setfield(L, -2, "known_host");
	lua_pushcfunction(L, l_commit);
	lua_setfield(L, -2, "commit");
	lua_pushcfunction(L, l_warn);
	lua_setfield(L, -2, "warn");
	rc = pie_call(L, 2, "import");
	if (rc == 0) {
		lua_getfield(L, -2, "users");
		lua_getfield(L, -3, "hosts");
		fprintf(stderr, "starlingctl: imported %lld users on %lld hosts\n",
			(long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
		lua_pop(L, 4);
		rc = store_commit() ? fail("%s", "cannot commit the import") : 0;
	}
	return rc;
}

/* list_dir(path) -> names (without . and ..), or nil, err. */
static int l_list_dir(lua_State *L)
{
	DIR *d = opendir(luaL_checkstring(L, 1));
	struct dirent *e;
	int n = 0;

	if (!d) {
		lua_pushnil(L);
		lua_pushstring(L, strerror(errno));
		return 2;
	}
	lua_newtable(L);
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	closedir(d);
	return 1;
}

/* What the import carried, one line a kind. */
static void print_prosody_counts(lua_State *L, int t)
{
	static const char *const kinds[][2] = {
		{ "hosts", "hosts" }, { "users", "users" },
		{ "accounts", "accounts (their passwords kept)" },
		{ "contacts", "roster items" }, { "vcards", "vCards" },
		{ "private", "private XML elements" }, { "offline", "offline messages" },
		{ "archive", "archived messages" }, { "pep_nodes", "PEP nodes" },
		{ "pep_items", "PEP items" },
	};

	printf("imported from Prosody:\n");
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		lua_getfield(L, t, kinds[i][0]);
		printf("  %lld %s\n", (long long)lua_tointeger(L, -1), kinds[i][1]);
		lua_pop(L, 1);
	}
	lua_getfield(L, t, "skipped");
	for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
		printf("  not carried: store %s (%lld files)\n", lua_tostring(L, -2),
		       (long long)lua_tointeger(L, -1));
	lua_pop(L, 1);
}

static int cmd_import_prosody(const char *dir)
{
	lua_State *L = lx_state();
	int rc;

	if (pie_function(L, "export") != 0)	/* registers the admin modules */
		return 1;
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.prosody_import");
	if (lx_pcall(L, 1, 1, "starlingctl") != 0)
		return 1;
	lua_getfield(L, -1, "import");
	lua_remove(L, -2);
	lua_pushstring(L, dir);
	lua_createtable(L, 0, 4);
	lua_pushcfunction(L, l_known_host);
	lua_setfield(L, -2, "known_host");
	lua_pushcfunction(L, l_commit);
	lua_setfield(L, -2, "commit");
	lua_pushcfunction(L, l_warn);
	lua_setfield(L, -2, "warn");
	lua_pushcfunction(L, l_list_dir);
	lua_setfield(L, -2, "list_dir");
	rc = pie_call(L, 2, "import-prosody");
	if (rc == 0) {
		print_prosody_counts(L, lua_gettop(L) - 1);
		lua_pop(L, 2);
		rc = store_commit() ? fail("%s", "cannot commit the import") : 0;
	}
	return rc;
}

static int run(int argc, char **argv)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "register") == 0 && argc == 4) {
		char node[JID_PART_MAX], host[JID_PART_MAX];
		if (jid_nodeprep(argv[1], node) != 0 || !*node)
			return fail("'%s' is not a valid username", argv[1]);
		if (jid_nameprep(argv[2], host) != 0 || !ctl_local_host(host))
			return fail("host '%s' is not a VirtualHost in the config", argv[2]);
		return set_password(host, node, argv[3]);
	}
	if (strcmp(cmd, "register-many") == 0 && argc == 6)
		return register_many(argv);
	if (strcmp(cmd, "list") == 0 && argc == 2) {
		char host[JID_PART_MAX];
		if (jid_nameprep(argv[1], host) != 0 || !ctl_local_host(host))
			return fail("host '%s' is not a VirtualHost in the config", argv[1]);
		return accounts_list(host, print_user, host) ? 1 : 0;
	}
	if (strcmp(cmd, "export") == 0)
		return cmd_export(argc, argv);
	if (strcmp(cmd, "import") == 0 && argc >= 2)
		return cmd_import(argc, argv);
	if (strcmp(cmd, "import-prosody") == 0 && argc == 2)
		return cmd_import_prosody(argv[1]);
	if (strcmp(cmd, "migrate") == 0)
		return ctl_migrate(argc, argv);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *cfg_file = STARLING_DEFAULT_CONFIG;
	char real[PATH_MAX], data[PATH_MAX * 2], lua_dir[PATH_MAX + 64];
	int opt, rc = 1;

	/* A peer that closes (the admin socket refusing us) must give an
	 * error message and exit 1, never a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		switch (opt) {
		case 'c': cfg_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[optind], "check") == 0)
		return ctl_check(argc - optind, argv + optind, cfg_file);
	if (!realpath(cfg_file, real))
		return fail("cannot open config %s", cfg_file);
	snprintf(cfg_dir, sizeof(cfg_dir), "%s", real);
	*strrchr(cfg_dir, '/') = '\0';

	const char *home = getenv("STARLING_HOME");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (home) {
		snprintf(lua_dir, sizeof(lua_dir), "%s/lua", home);
	} else if (n > 0) {
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(lua_dir, sizeof(lua_dir), "%s/../lua", exe);
		if (access(lua_dir, R_OK) != 0)
			snprintf(lua_dir, sizeof(lua_dir), "%s/../share/starling/lua", exe);
	}
	log_setup("warn", "stderr");
	if (lx_init(lua_dir) != 0 || config_load(real) != 0)
		goto out;
	if (strcmp(argv[optind], "cert") == 0) {
		rc = ctl_cert(argc - optind, argv + optind);
		goto out;
	}
	if (ctl_admin_handles(argv[optind])) {
		rc = ctl_admin_run(argc - optind, argv + optind);
		goto out;
	}
	const char *dp = config_string("*", "data_path", "data");
	if (dp[0] == '/')
		snprintf(data, sizeof(data), "%s", dp);
	else
		snprintf(data, sizeof(data), "%s/%s", cfg_dir, dp);
	if (store_open(data, (size_t)config_int("*", "storage_max_size", 1L << 30)) != 0) {
		fail("cannot open the data directory %s", data);
		goto out;
	}
	if (sqlstore_open() != 0) {
		fail("cannot open the sql database%s", "");
		store_close();
		goto out;
	}
	rc = run(argc - optind, argv + optind);
	store_close();
out:
	config_free();
	lx_close();
	return rc;
}
