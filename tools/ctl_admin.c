/* ctl_admin.c - starlingctl: the admin socket client, the shell, check. */
#include "ctl_admin.h"
#include "accounts.h"
#include "config.h"
#include "fast.h"
#include "jid.h"
#include "log.h"
#include "lx.h"
#include "server.h"
#include "sqlstore.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#define MAX_HEADER 64

struct ctl_conn {
	int fd;
	struct sbuf in;		/* bytes read and not yet consumed */
};

void ctl_admin_usage(FILE *f)
{
	fputs("commands for a running server (over its admin socket):\n"
	      "  status                       version, uptime, hosts, counts, memory,\n"
	      "                               storage\n"
	      "  metrics                      the counts, Prometheus text format\n"
	      "  invite HOST [USERNAME] | invite JID  an invitation link\n"
	      "  reload                       re-read the config and apply it\n"
	      "  module list [HOST]           loaded modules\n"
	      "  module load|unload|reload|info NAME [HOST]\n"
	      "  sessions [HOST]              bound sessions (JID, IP, TLS, since)\n"
	      "  kick JID [REASON]            close a session, or all of an account's\n"
	      "  s2s list                     server-to-server streams (direction, domains)\n"
	      "  components                   external components (XEP-0114): domain,\n"
	      "                               address, since\n"
	      "  s2s close DOMAIN             close every stream to and from DOMAIN\n"
	      "  cluster status               a cluster's nodes (name, id, link address,\n"
	      "                               alive, sessions) and this node's links\n"
	      "  user create|password JID [PASSWORD]  (prompted when not given)\n"
	      "  user delete JID              delete the account, close its sessions\n"
	      "  user revoke-tokens JID       end the account's FAST login tokens\n"
	      "                               (user works on the data directory when\n"
	      "                               the server is stopped)\n"
	      "  log reopen                   reopen the log file (like SIGUSR1)\n"
	      "  shell [CODE]                 Lua console inside the server\n"
	      "  check [CONFIG]               all of the checks below\n"
	      "  check config [CONFIG]        options, modules, data directory\n"
	      "  check certs [CONFIG]         each host's certificate: names, chain,\n"
	      "                               expiry\n"
	      "  check dns [CONFIG]           each host's SRV and A/AAAA records,\n"
	      "                               against this machine and its ports\n"
	      "  cert import DIR...           the hosts' certificates from DIR (a Let's\n"
	      "                               Encrypt live/ directory, HOST.crt and\n"
	      "                               HOST.key, fullchain.pem and privkey.pem)\n"
	      "                               into the certificates directory; a\n"
	      "                               running server reloads them\n", f);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("starlingctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* --- the socket -------------------------------------------------------------- */

/* Where the server listens: option admin_socket, or <data_path>/starling.sock.
 * -ENOENT when the config turns the socket off. */
static int socket_path(char *out, size_t n)
{
	char buf[PATH_MAX], data[PATH_MAX];
	const char *p;

	if (config_kind("*", "admin_socket", NULL) == CONFIG_BOOLEAN &&
	    !config_bool("*", "admin_socket", true))
		return -ENOENT;
	if ((p = config_string("*", "admin_socket", NULL))) {
		p = server_path(p, buf, sizeof(buf));
	} else {
		p = server_path(config_string("*", "data_path", "data"), data, sizeof(data));
		if (p && snprintf(buf, sizeof(buf), "%s/starling.sock", p) < (int)sizeof(buf))
			p = buf;
		else
			p = NULL;
	}
	if (!p || strlen(p) >= n)
		return -ENAMETOOLONG;
	memcpy(out, p, strlen(p) + 1);
	return 0;
}

/* 0, or -errno: -ENOENT/-ECONNREFUSED when no server runs there. */
static int ctl_connect(struct ctl_conn *c, char *path, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int r = socket_path(path, n);

	if (r != 0)
		return r;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	sbuf_init(&c->in);
	return 0;
}

static void ctl_disconnect(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sbuf_free(&c->in);
}

static int connect_or_explain(struct ctl_conn *c)
{
	char path[PATH_MAX];
	int r = ctl_connect(c, path, sizeof(path));

	if (r == -ENOENT || r == -ECONNREFUSED)
		return fail("the server is not running (no admin socket at %s)", path);
	if (r == -EACCES || r == -EPERM)
		return fail("%s: permission denied: run starlingctl as the server's user", path);
	if (r != 0)
		return fail("admin socket %s: %s", path, strerror(-r));
	return 0;
}

/* Bytes that would end a word or the line, and '%', percent-encoded. */
static void add_encoded(struct sbuf *b, const char *w)
{
	for (const unsigned char *p = (const unsigned char *)w; *p; p++) {
		if (*p <= ' ' || *p == '%' || *p == 0x7f)
			sbuf_printf(b, "%%%02X", *p);
		else
			sbuf_addc(b, (char)*p);
	}
}

/* A word of a request, after a space unless it is the first. */
static void add_word(struct sbuf *b, const char *w)
{
	if (b->len)
		sbuf_addc(b, ' ');
	add_encoded(b, w);
}

/* MSG_NOSIGNAL: a server that closed on us is an error to report, not
 * a SIGPIPE that ends starlingctl without a word. */
static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_more(struct ctl_conn *c)
{
	ssize_t n;

	sbuf_reserve(&c->in, 65536);
	do {
		n = read(c->fd, c->in.p + c->in.len, 65536);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	c->in.len += (size_t)n;
	c->in.p[c->in.len] = '\0';
	return 0;
}

/* Why a request got no answer, for the user. */
static const char *io_error(int r)
{
	if (r == -EPIPE || r == -ECONNRESET)
		return "the server closed the connection";
	if (r == -EPROTO)
		return "the answer is not in the admin protocol";
	return strerror(-r);
}

/* Reads one answer: "<status> <len>\n" and len bytes into body. */
static int read_answer(struct ctl_conn *c, char status[8], struct sbuf *body)
{
	char *nl;
	size_t len, hdr;
	int r;

	while (!c->in.len || !(nl = memchr(c->in.p, '\n', c->in.len))) {
		if (c->in.len > MAX_HEADER)
			return -EPROTO;
		if ((r = read_more(c)) != 0)
			return r;
	}
	if (sscanf(c->in.p, "%7s %zu", status, &len) != 2)
		return -EPROTO;
	hdr = (size_t)(nl - c->in.p) + 1;
	while (c->in.len - hdr < len)
		if ((r = read_more(c)) != 0)
			return r;
	sbuf_reset(body);
	sbuf_add(body, c->in.p + hdr, len);
	memmove(c->in.p, c->in.p + hdr + len, c->in.len - hdr - len);
	c->in.len -= hdr + len;
	return 0;
}

/* Sends the request line req and reads the answer into status and body.
 * 0 or -errno. A server that refuses us (a full admin socket, a request
 * too long) answers with an error and closes, possibly before or while
 * we write: its answer is still read and given back. */
static int ctl_request(struct ctl_conn *c, struct sbuf *req, char status[8],
		       struct sbuf *body)
{
	int w, r;

	sbuf_addc(req, '\n');
	w = write_all(c->fd, req->p, req->len);
	if (w != 0 && w != -EPIPE && w != -ECONNRESET)
		return w;
	r = read_answer(c, status, body);
	if (r != 0 && w != 0)
		return w;
	if (r == 0 && w != 0 && strcmp(status, "error") != 0)
		return w;	/* an answer, but not to all we sent */
	return r;
}

/* One request from words, its answer printed (stdout, or stderr for an
 * error). Exit code. */
static int simple(struct ctl_conn *c, int argc, char **argv)
{
	struct sbuf req, body;
	char status[8];
	int r;

	sbuf_init(&req);
	sbuf_init(&body);
	for (int i = 0; i < argc; i++)
		add_word(&req, argv[i]);
	r = ctl_request(c, &req, status, &body);
	if (r != 0) {
		fail("no answer: %s", io_error(r));
	} else {
		fwrite(body.p ? body.p : "", 1, body.len, strcmp(status, "ok") ? stderr : stdout);
		r = strcmp(status, "ok") ? 1 : 0;
	}
	sbuf_free(&req);
	sbuf_free(&body);
	return r ? 1 : 0;
}

/* --- the shell ----------------------------------------------------------------- */

static int eval(struct ctl_conn *c, const char *code, char status[8], bool show)
{
	struct sbuf req, body;
	int r;

	sbuf_init(&req);
	sbuf_init(&body);
	sbuf_adds(&req, "eval ");
	add_encoded(&req, code);
	r = ctl_request(c, &req, status, &body);
	if (r == 0 && show && body.len)
		fwrite(body.p, 1, body.len, strcmp(status, "error") ? stdout : stderr);
	fflush(stdout);
	sbuf_free(&req);
	sbuf_free(&body);
	return r;
}

static int shell(struct ctl_conn *c, int argc, char **argv)
{
	bool tty = isatty(STDIN_FILENO);
	char status[8], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int errors = 0, r;

	if (argc > 1) {
		struct sbuf code;
		sbuf_init(&code);
		for (int i = 1; i < argc; i++) {
			if (i > 1)
				sbuf_addc(&code, ' ');
			sbuf_adds(&code, argv[i]);
		}
		r = eval(c, code.p, status, true);
		sbuf_free(&code);
		if (r != 0)
			return fail("no answer: %s", io_error(r));
		return strcmp(status, "ok") ? 1 : 0;
	}
	if (tty)
		fputs("Starling shell: Lua inside the running server. Expressions are printed;\n"
		      "core, server, modules, config() are at hand. Ctrl-D or 'quit' leaves.\n", stdout);
	const char *prompt = "> ";
	for (;;) {
		if (tty) {
			fputs(prompt, stdout);
			fflush(stdout);
		}
		if ((n = getline(&line, &cap, stdin)) < 0)
			break;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (prompt[0] == '>' && prompt[1] == ' ' &&
		    (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0))
			break;
		if ((r = eval(c, line, status, true)) != 0) {
			free(line);
			return fail("no answer: %s", io_error(r));
		}
		prompt = strcmp(status, "more") == 0 ? ">> " : "> ";
		errors += strcmp(status, "error") == 0;
	}
	if (tty)
		fputc('\n', stdout);
	free(line);
	return errors && !tty ? 1 : 0;
}

/* --- users ----------------------------------------------------------------------- */

static int user_offline_change(const char *sub, const struct jid *j, const char *pw)
{
	bool exists = accounts_exists(j->domain, j->node);
	int r;

	if (strcmp(sub, "create") == 0 && exists)
		return fail("user %s@%s already exists", j->node, j->domain);
	if (strcmp(sub, "create") != 0 && !exists)
		return fail("no such user: %s@%s", j->node, j->domain);
	size_t n = 0;
	if (strcmp(sub, "delete") == 0)
		r = accounts_delete(j->domain, j->node);
	else if (strcmp(sub, "revoke-tokens") == 0)
		r = fast_revoke_user(j->domain, j->node, &n);
	else
		r = accounts_set_password(j->domain, j->node, pw, ACCOUNTS_DEFAULT_ITERATIONS);
	if (r == 0)
		r = store_commit();
	if (r != 0)
		return fail("cannot change the account: %s", strerror(-r));
	if (strcmp(sub, "revoke-tokens") == 0) {
		printf("revoked %zu login tokens of %s@%s (the server is not running)\n",
		       n, j->node, j->domain);
		return 0;
	}
	printf("%s %s@%s (the server is not running)\n",
	       strcmp(sub, "create") == 0 ? "created" :
	       strcmp(sub, "delete") == 0 ? "deleted" : "changed the password of",
	       j->node, j->domain);
	return 0;
}

static int open_store(void)
{
	char buf[PATH_MAX];
	const char *data = server_path(config_string("*", "data_path", "data"), buf, sizeof(buf));

	if (!data || store_open(data, (size_t)config_int("*", "storage_max_size", 1L << 30)) != 0)
		return fail("cannot open the data directory %s", data ? data : "(path too long)");
	if (sqlstore_open() != 0) {
		store_close();
		return fail("cannot open the sql database");
	}
	return 0;
}

/* user create|password|delete on the data directory: the server is not
 * running, so there are no sessions to close. */
static int user_offline(const char *sub, const char *jid, const char *pw)
{
	struct jid j;
	int r;

	if (jid_parse(jid, &j) != 0 || !j.has_node || j.has_resource)
		return fail("'%s' is not a user JID (user@host)", jid);
	if (!ctl_local_host(j.domain))
		return fail("host '%s' is not a VirtualHost of this server", j.domain);
	if (open_store() != 0)
		return 1;
	r = user_offline_change(sub, &j, pw);
	store_close();
	return r;
}

/* A password from stdin; asked twice on a terminal. NULL when none or
 * the two differ. */
static char *read_new_password(void)
{
	char *pw = ctl_read_password("Password: "), *again;

	if (!pw || !isatty(STDIN_FILENO))
		return pw;
	again = ctl_read_password("Again: ");
	if (!again || strcmp(pw, again) != 0) {
		fprintf(stderr, "starlingctl: the passwords differ\n");
		memset(pw, 0, strlen(pw));
		free(pw);
		pw = NULL;
	}
	if (again)
		memset(again, 0, strlen(again));
	free(again);
	return pw;
}

static int cmd_user(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	bool needs_pw = strcmp(sub, "create") == 0 || strcmp(sub, "password") == 0;
	char *pw = NULL, path[PATH_MAX];
	struct ctl_conn c;
	int r;

	bool by_jid = strcmp(sub, "delete") == 0 || strcmp(sub, "revoke-tokens") == 0;

	if (!(needs_pw && (argc == 3 || argc == 4)) && !(by_jid && argc == 3))
		return fail("usage: user create|password JID [PASSWORD]; "
			    "user delete|revoke-tokens JID") + 1;
	if (needs_pw) {
		pw = argc == 4 ? strdup(argv[3]) : read_new_password();
		if (!pw || !*pw) {
			free(pw);
			return fail("no password given (empty passwords are not allowed)");
		}
	}
	r = ctl_connect(&c, path, sizeof(path));
	if (r == -ENOENT || r == -ECONNREFUSED) {
		r = user_offline(sub, argv[2], pw);
	} else if (r != 0) {
		r = fail("admin socket %s: %s", path, strerror(-r));
	} else {
		char *words[] = { argv[0], argv[1], argv[2], pw };
		r = simple(&c, needs_pw ? 4 : 3, words);
		ctl_disconnect(&c);
	}
	if (pw)
		memset(pw, 0, strlen(pw));
	free(pw);
	return r;
}

/* --- dispatch -------------------------------------------------------------------- */

static const char *const socket_cmds[] = {
	"status", "metrics", "reload", "module", "sessions", "kick", "s2s", "log",
	"components", "cluster",
	"shell", "user", "invite",
	"adduser", "passwd", "deluser",
};

/* adduser, passwd, deluser JID: the user commands under their old names. */
static int cmd_user_alias(int argc, char **argv)
{
	const char *sub = strcmp(argv[0], "adduser") == 0 ? "create"
			: strcmp(argv[0], "passwd") == 0 ? "password" : "delete";
	char *words[] = { "user", (char *)sub, argc == 2 ? argv[1] : NULL };

	if (argc != 2)
		return fail("usage: %s JID", argv[0]) + 1;
	return cmd_user(3, words);
}

bool ctl_admin_handles(const char *cmd)
{
	if (strncmp(cmd, "mod_", 4) == 0 && cmd[4])
		return true;	/* a module's own command (module command) */
	for (size_t i = 0; i < ARRAY_SIZE(socket_cmds); i++)
		if (strcmp(cmd, socket_cmds[i]) == 0)
			return true;
	return false;
}

int ctl_admin_run(int argc, char **argv)
{
	struct ctl_conn c;
	int r;

	if (strcmp(argv[0], "user") == 0)
		return cmd_user(argc, argv);
	if (strcmp(argv[0], "adduser") == 0 || strcmp(argv[0], "passwd") == 0 ||
	    strcmp(argv[0], "deluser") == 0)
		return cmd_user_alias(argc, argv);
	if ((strcmp(argv[0], "status") == 0 || strcmp(argv[0], "reload") == 0 ||
	     strcmp(argv[0], "metrics") == 0) && argc != 1)
		return fail("usage: %s (no arguments)", argv[0]) + 1;
	if (connect_or_explain(&c) != 0)
		return 1;
	if (strncmp(argv[0], "mod_", 4) == 0) {
		/* mod_NAME ARGS: Prosody's form of module command NAME ARGS */
		char **words = xcalloc((size_t)argc + 2, sizeof(*words));

		words[0] = "module";
		words[1] = "command";
		words[2] = argv[0] + 4;
		for (int i = 1; i < argc; i++)
			words[i + 2] = argv[i];
		r = simple(&c, argc + 2, words);
		free(words);
		ctl_disconnect(&c);
		return r;
	}
	if (strcmp(argv[0], "shell") == 0)
		r = shell(&c, argc, argv);
	else
		r = simple(&c, argc, argv);
	ctl_disconnect(&c);
	return r;
}

int ctl_admin_reload(void)
{
	char path[PATH_MAX], pb[PATH_MAX];
	struct ctl_conn c;
	struct stat st;
	const char *pidfile;
	char *words[] = { "reload" };
	long pid = 0;
	FILE *f;
	int r;

	if (socket_path(path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
	    st.st_uid == geteuid() && ctl_connect(&c, path, sizeof(path)) == 0) {
		r = simple(&c, 1, words);
		ctl_disconnect(&c);
		return r;
	}
	pidfile = server_path(config_string("*", "pidfile", NULL), pb, sizeof(pb));
	if (!pidfile || !(f = fopen(pidfile, "r")))
		return -ENOENT;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	if (!pid || kill((pid_t)pid, 0) != 0)
		return -ENOENT;
	if (kill((pid_t)pid, SIGHUP) != 0)
		return fail("cannot signal the server (pid %ld): %s", pid, strerror(errno));
	printf("sent SIGHUP to the server (pid %ld): it reloads; its log says how it went\n", pid);
	return 0;
}

/* --- check ---------------------------------------------------------------------- */

static const char *ssl_reason(void)
{
	static char msg[256];
	unsigned long e = ERR_peek_last_error();

	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return e ? msg : "unknown error";
}


/* What the server would say about cert and key: the first error into
 * err (empty when none), a warning into warn (empty when none). */
static void tls_problem(const char *cert, const char *key, const char *host,
			char *err, size_t en, char *warn, size_t wn)
{
	struct stat st;
	SSL_CTX *ctx;
	X509 *x;

	err[0] = warn[0] = '\0';
	if (access(cert, R_OK) != 0) {
		snprintf(err, en, "certificate %s: %s", cert, strerror(errno));
		return;
	}
	if (stat(key, &st) != 0 || access(key, R_OK) != 0) {
		snprintf(err, en, "key %s: %s", key, strerror(errno));
		return;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, en, "key %s is readable by everyone (chmod o-r)", key);
		return;
	}
	if (st.st_mode & S_IRGRP)
		snprintf(warn, wn, "key %s is readable by its group", key);
	if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
		snprintf(err, en, "cannot create a TLS context: %s", ssl_reason());
		return;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		snprintf(err, en, "certificate %s: %s", cert, ssl_reason());
	else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		snprintf(err, en, "key %s: %s", key, ssl_reason());
	else if (SSL_CTX_check_private_key(ctx) != 1)
		snprintf(err, en, "key %s does not match certificate %s", key, cert);
	else if ((x = SSL_CTX_get0_certificate(ctx)) &&
		 X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		snprintf(err, en, "certificate %s has expired", cert);
	else if (host && x && X509_check_host(x, host, 0, 0, NULL) != 1)
		snprintf(err, en, "certificate %s does not name %s (the wrong certificate: "
			 "get one for %s, then starlingctl cert import DIR)", cert, host, host);
	else if (x && X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		snprintf(warn, wn, "certificate %s is not valid yet", cert);
	else if (x && X509_cmp_time(X509_get0_notAfter(x), &(time_t){ time(NULL) + 14 * 86400 }) < 0)
		snprintf(warn, wn, "certificate %s expires in less than 14 days (renew it, "
			 "then starlingctl cert import DIR)", cert);
	ERR_clear_error();
	SSL_CTX_free(ctx);
}

static int l_tls(lua_State *L)
{
	char err[2 * PATH_MAX + 512], warn[PATH_MAX + 128];

	tls_problem(luaL_checkstring(L, 1), luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL),
		    err, sizeof(err), warn, sizeof(warn));
	if (err[0])
		lua_pushstring(L, err);
	else
		lua_pushnil(L);
	if (warn[0])
		lua_pushstring(L, warn);
	else
		lua_pushnil(L);
	return 2;
}

static int l_is_dir(lua_State *L)
{
	struct stat st;

	lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
	return 1;
}

/* lua/ and modules/ the way the server finds them. */
static void find_dirs(char *lua_dir, char *modules_dir, size_t n)
{
	const char *home = getenv("STARLING_HOME");
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct stat st;

	if (home) {
		snprintf(lua_dir, n, "%s/lua", home);
		snprintf(modules_dir, n, "%s/modules", home);
		return;
	}
	if (len <= 0) {
		snprintf(lua_dir, n, "lua");
		snprintf(modules_dir, n, "modules");
		return;
	}
	exe[len] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(lua_dir, n, "%.*s/../lua", (int)(n - 16), exe);
	snprintf(modules_dir, n, "%.*s/../modules", (int)(n - 16), exe);
	if (stat(lua_dir, &st) == 0 && S_ISDIR(st.st_mode))
		return;
	snprintf(lua_dir, n, "%.*s/../share/starling/lua", (int)(n - 32), exe);
	snprintf(modules_dir, n, "%.*s/../share/starling/modules", (int)(n - 32), exe);
}

/* part: "config", "certs", "dns", or NULL for all of them. */
static int run_check(lua_State *L, const char *path, const char *part)
{
	int errors;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "starling.configcheck");
	if (lx_pcall(L, 1, 1, "check") != 0)
		return 1;
	lua_getfield(L, -1, "check");
	lua_pushstring(L, path);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, l_tls);
	lua_setfield(L, -2, "tls");
	lua_pushcfunction(L, l_is_dir);
	lua_setfield(L, -2, "is_dir");
	ctl_dns_helpers(L);
	if (part)
		lua_pushstring(L, part);
	else
		lua_pushnil(L);
	if (lx_pcall(L, 3, 1, "check") != 0)
		return 1;
	lua_getfield(L, -2, "format");
	lua_insert(L, -2);
	lua_pushstring(L, path);
	if (lx_pcall(L, 2, 2, "check") != 0)
		return 1;
	fputs(lua_tostring(L, -2), stdout);
	errors = (int)lua_tointeger(L, -1);
	lua_pop(L, 3);
	return errors ? 1 : 0;
}

int ctl_check(int argc, char **argv, const char *cfg_file)
{
	char real[PATH_MAX], lua_dir[PATH_MAX], modules_dir[PATH_MAX];
	const char *part = NULL, *file;
	int rc;

	if (argc > 1 && (strcmp(argv[1], "config") == 0 || strcmp(argv[1], "certs") == 0 ||
			 strcmp(argv[1], "dns") == 0)) {
		part = argv[1];
		argc--, argv++;
	}
	file = argc > 1 ? argv[1] : cfg_file;
	if (argc > 2)
		return fail("usage: check [config|certs|dns] [CONFIG]") + 1;
	if (!realpath(file, real)) {
		printf("error: cannot open %s: %s\n", file, strerror(errno));
		return 1;
	}
	find_dirs(lua_dir, modules_dir, sizeof(lua_dir));
	log_setup("warn", "stderr");
	lx_core_set_dirs(lua_dir, modules_dir);
	if (lx_init(lua_dir) != 0)
		return fail("cannot start Lua");
	rc = run_check(lx_state(), real, part);
	lx_close();
	lx_core_set_dirs(NULL, NULL);
	return rc;
}
