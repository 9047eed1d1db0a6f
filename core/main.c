/* main.c - start-up, signals, shutdown; the end of each loop iteration is
 * pipeline.c's. */
#include "admin.h"
#include "anon.h"
#include "bridge.h"
#include "conn.h"
#include "dns.h"
#include "ipstate.h"
#include "listener.h"
#include "log.h"
#include "loopstat.h"
#include "pipeline.h"
#include "config.h"
#include "route.h"
#include "server.h"
#include "c2s.h"
#include "component.h"
#include "http.h"
#include "http_route.h"
#include "bosh.h"
#include "websocket.h"
#include "s2s.h"
#include "sdnotify.h"
#include "sqlstore.h"
#include "store.h"
#include "tls.h"
#include "node.h"
#include "node_cluster.h"
#include "node_link.h"
#include "workers.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

static struct session_config c2s_cfg;
static struct s2s_config s2s_cfg;
static ev_signal sigint_w, sigterm_w, sighup_w, sigusr1_w;
static ev_timer shutdown_timer;
static ev_timer trim_timer;
static ev_timer gc_tune_timer;
static bool shutting_down;
static char lua_dir[PATH_MAX + 64], modules_dir[PATH_MAX + 64], cfg_dir[PATH_MAX];

static void usage(FILE *f)
{
	fprintf(f, "usage: starling [-c CONFIG]\n"
		"  -c CONFIG  the config file (default: %s)\n"
		"  -v         print the version\n", STARLING_DEFAULT_CONFIG);
}

static bool is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* lua/ and modules/ next to the binary's build dir, or installed. */
static void find_dirs(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *env = getenv("STARLING_HOME");

	if (env) {
		snprintf(lua_dir, sizeof(lua_dir), "%s/lua", env);
		snprintf(modules_dir, sizeof(modules_dir), "%s/modules", env);
		return;
	}
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(lua_dir, sizeof(lua_dir), "%s/../lua", exe);
		snprintf(modules_dir, sizeof(modules_dir), "%s/../modules", exe);
		if (is_dir(lua_dir))
			return;
		snprintf(lua_dir, sizeof(lua_dir), "%s/../share/starling/lua", exe);
		snprintf(modules_dir, sizeof(modules_dir), "%s/../share/starling/modules", exe);
		return;
	}
	snprintf(lua_dir, sizeof(lua_dir), "lua");
	snprintf(modules_dir, sizeof(modules_dir), "modules");
}

/* A config path relative to the config file's directory. */
static const char *resolve(const char *path, char *buf, size_t n)
{
	if (!path || path[0] == '/')
		return path;
	if ((size_t)snprintf(buf, n, "%.*s/%s", (int)(n / 2), cfg_dir, path) >= n)
		log_warn("path too long: %s", path);
	return buf;
}

static int setup_log(void)
{
	struct sbuf err;
	int r;

	sbuf_init(&err);
	if ((r = server_apply_log(&err)) != 0)
		fprintf(stderr, "starling: %s\n", err.p);
	sbuf_free(&err);
	return r;
}

static void load_secret(unsigned char secret[32])
{
	struct sbuf v;
	struct store s;

	store_init(&s, store_accounts_engine(), "", "server-secret", STORE_KIND_KEYVAL);
	sbuf_init(&v);
	if (store_get(&s, "", NULL, 0, &v) == 0 &&
	    v.len == 32) {
		memcpy(secret, v.p, 32);
	} else {
		random_bytes(secret, 32);
		store_put(&s, "", NULL, 0, secret, 32);
		store_commit();
	}
	sbuf_free(&v);
}

/* Temporary accounts a crash left on hosts of SASL ANONYMOUS. */
static void clean_anonymous_hosts(void)
{
	size_t pos = 0;
	const char *name, *type, *module;

	while (config_host_next(&pos, &name, &type, &module)) {
		struct host *h = route_host(name);
		if (h && h->auth == HOST_AUTH_ANONYMOUS)
			anon_cleanup(name);
	}
}

static int setup_hosts(void)
{
	size_t pos = 0;
	const char *name, *type, *module;
	int n = 0;

	struct sbuf err;

	while (config_host_next(&pos, &name, &type, &module)) {
		bool comp = type && strcmp(type, "component") == 0;
		route_host_add(name, comp ? HOST_COMPONENT : HOST_LOCAL)->external =
			server_host_external(type, module);
		n++;
	}
	sbuf_init(&err);
	int r = server_apply_host_auth(&err);
	if (r == 0)
		r = server_load_tls(&err, NULL);
	if (r == 0)
		r = server_apply_dns(&err);
	if (r != 0)
		log_error("%s", err.p);
	sbuf_free(&err);
	if (r != 0)
		return r;
	clean_anonymous_hosts();
	if (!n)
		log_warn("no VirtualHost in the config: nobody can log in");
	if (!tls_default_ctx())
		log_warn("no TLS certificate configured: %s",
			 c2s_cfg.require_encryption ? "clients cannot authenticate"
						    : "streams are unencrypted");
	return 0;
}

/* "10kb/s", "1mb/s", "500b/s" or a number of bytes per second; "2s" or a
 * number of seconds for the burst. Negative on a bad value. */
static double parse_amount(const char *field, double def, bool seconds)
{
	const char *v;
	char *end;
	double n;

	switch (config_kind("*", "limits", field)) {
	case CONFIG_UNSET:
		return def;
	case CONFIG_NUMBER:
		config_field_number("*", "limits", field, &n);
		return n;
	case CONFIG_STRING:
		v = config_field_string("*", "limits", field);
		break;
	default:
		return -1;
	}
	n = strtod(v, &end);
	if (end == v || n < 0)
		return -1;
	while (*end == ' ')
		end++;
	if (seconds)
		return (*end == '\0' || strcmp(end, "s") == 0) ? n : -1;
	if (strncasecmp(end, "kb", 2) == 0)
		n *= 1024, end += 2;
	else if (strncasecmp(end, "mb", 2) == 0)
		n *= 1024 * 1024, end += 2;
	else if (*end == 'b' || *end == 'B')
		end++;
	return (*end == '\0' || strcmp(end, "/s") == 0) ? n : -1;
}

/* limits = { c2s = { rate = "100kb/s", burst = "5s" } }, as mod_limits. */
static void read_rate_limit(void)
{
	double rate = parse_amount("c2s.rate", 100 * 1024, false);
	double burst = parse_amount("c2s.burst", 5, true);

	if (rate < 0 || burst < 0) {
		log_warn("limits.c2s: bad rate or burst; using 100kb/s, 5s");
		rate = 100 * 1024;
		burst = 5;
	}
	c2s_cfg.rate = rate;
	c2s_cfg.burst = MAX(rate * burst, 4096.0);
}

/* Lua's collector. Generational by default: the garbage of each stanza
 * dies young and is collected without walking the heap every session and
 * module keeps (Lua's incremental default walks it all every cycle, which
 * made a server that had seen 19,000 logins a third slower at chat). */
static void read_gc_mode(void)
{
	const char *mode = config_string("*", "lua_gc_mode", "generational");
	bool inc = strcmp(mode, "incremental") == 0;

	if (!inc && strcmp(mode, "generational") != 0)
		log_warn("lua_gc_mode '%s' is neither generational nor "
			 "incremental: generational", mode);
	lx_gc_mode(inc);
}

static void read_s2s_config(void);

static void read_session_config(void)
{
	c2s_cfg.require_encryption = config_bool("*", "c2s_require_encryption", true);
	c2s_cfg.allow_plain_unencrypted = config_bool("*", "allow_unencrypted_plain_auth", false);
	c2s_cfg.strict_channel_binding = config_bool("*", "c2s_strict_channel_binding", false);
	c2s_cfg.preauth_timeout = (double)config_int("*", "c2s_timeout", 60);
	c2s_cfg.idle_timeout = (double)config_int("*", "c2s_idle_timeout", 900);
	c2s_cfg.limits.max_stanza = (size_t)config_int("*", "c2s_stanza_size_limit", 256 * 1024);
	c2s_cfg.limits.max_depth = (unsigned)config_int("*", "c2s_stanza_depth_limit", 32);
	c2s_cfg.limits.max_attrs = (unsigned)config_int("*", "c2s_stanza_attribute_limit", 64);
	c2s_cfg.send_queue_limit = (size_t)config_int("*", "c2s_send_queue_limit", 4 * 1024 * 1024);
	c2s_cfg.max_auth_failures = (unsigned)config_int("*", "c2s_max_auth_failures", 3);
	c2s_cfg.max_resources = (unsigned)config_int("*", "max_resources_per_account", 32);
	c2s_cfg.max_held_bytes = (size_t)config_int("*", "csi_max_held_bytes", 256 * 1024);
	c2s_cfg.parser_release_after = (double)config_int("*", "c2s_parser_release_after", 2);
	c2s_cfg.tls_compact = config_bool("*", "c2s_tls_compact", true);
	c2s_cfg.max_unauth_per_ip = (unsigned)config_int("*", "c2s_max_unauthenticated_per_ip", 32);
	c2s_cfg.auth_failure_delay = (double)config_int("*", "c2s_auth_failure_delay", 8);
	/* Prosody's mod_sasl2_fast names; fast_token_expiry as well. */
	c2s_cfg.fast_token_ttl = (double)config_int("*", "sasl2_fast_token_ttl",
		config_int("*", "fast_token_expiry", 21 * 86400));
	c2s_cfg.fast_token_min_ttl = (double)config_int("*", "sasl2_fast_token_min_ttl",
		(long)(c2s_cfg.fast_token_ttl / 4));
	read_rate_limit();
	read_gc_mode();
	read_s2s_config();
	if (c2s_cfg.preauth_timeout <= 0)
		c2s_cfg.preauth_timeout = 60;
	if (c2s_cfg.idle_timeout <= 0)
		c2s_cfg.idle_timeout = 900;
}

struct domain_list {
	const char **v;
	size_t n;
};

static int add_domain(void *ctx, const char *item)
{
	struct domain_list *l = ctx;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(item);
	return 0;
}

static void free_domains(struct domain_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((char *)l->v[i]);
	free(l->v);
}

/* Who must authenticate with a valid certificate (Prosody's options):
 * s2s_secure_auth (default false), s2s_secure_domains,
 * s2s_insecure_domains (dialback is enough even with s2s_secure_auth). */
static void read_s2s_policy(void)
{
	struct domain_list sec = { 0 }, insec = { 0 };

	config_each("*", "s2s_secure_domains", add_domain, &sec);
	config_each("*", "s2s_insecure_domains", add_domain, &insec);
	s2s_set_policy(config_bool("*", "s2s_secure_auth", false), sec.v, sec.n,
		       insec.v, insec.n);
	free_domains(&sec);
	free_domains(&insec);
}

/* Server-to-server settings (Prosody's names where it has them):
 * s2s_timeout closes an idle stream, s2s_connect_timeout bounds making
 * one (resolve, connect, TLS, dialback) before what waits bounces. */
static void read_s2s_config(void)
{
	struct session_config *in = &s2s_cfg.in;
	long idle = config_int("*", "s2s_timeout", 900);
	long connect = config_int("*", "s2s_connect_timeout", 10);

	memset(&s2s_cfg, 0, sizeof(s2s_cfg));
	in->require_encryption = config_bool("*", "s2s_require_encryption", true);
	in->idle_timeout = idle > 0 ? (double)idle : 900;
	s2s_cfg.connect_timeout = connect > 0 ? (double)connect : 10;
	in->preauth_timeout = s2s_cfg.connect_timeout + 20;
	in->limits.max_stanza = (size_t)config_int("*", "s2s_stanza_size_limit", 512 * 1024);
	in->limits.max_depth = (unsigned)config_int("*", "s2s_stanza_depth_limit", 32);
	in->limits.max_attrs = (unsigned)config_int("*", "s2s_stanza_attribute_limit", 64);
	in->send_queue_limit = (size_t)config_int("*", "s2s_send_queue_limit", 16 * 1024 * 1024);
	in->parser_release_after = (double)config_int("*", "s2s_parser_release_after", 60);
	in->max_unauth_per_ip = (unsigned)config_int("*", "s2s_max_unauthenticated_per_ip", 16);
	s2s_cfg.out = *in;
	s2s_cfg.out.preauth_timeout = s2s_cfg.connect_timeout + 5;
	s2s_cfg.queue_max = (size_t)config_int("*", "s2s_queue_max", 500);
	if (!s2s_cfg.queue_max)
		s2s_cfg.queue_max = 1;
	s2s_configure(&s2s_cfg);
	read_s2s_policy();
}

static struct session_listen c2s_listen = { &c2s_role, &c2s_cfg, false };
static struct session_listen s2s_listen = { &s2s_in_role, &s2s_cfg.in, false };
static struct session_listen c2s_tls_listen = { &c2s_role, &c2s_cfg, true };
static struct session_listen s2s_tls_listen = { &s2s_in_role, &s2s_cfg.in, true };
/* Client streams that arrive over WebSocket or BOSH (core/http/). */
static struct session_listen c2s_ws_listen = { &c2s_role, &c2s_cfg, false };

struct listen_ctx {
	const char *port_key;
	struct session_listen *sl;
	const char *iface;
	int failed;
};

static int listen_port(void *ctx, const char *item)
{
	struct listen_ctx *lc = ctx;
	int port = config_port(lc->port_key, item);

	if (!port) {
		lc->failed = 1;
		return 1;
	}
	const char *what = lc->sl == &s2s_listen ? "s2s, STARTTLS"
			 : lc->sl == &s2s_tls_listen ? "s2s, direct TLS"
			 : lc->sl->direct_tls ? "direct TLS" : "c2s, STARTTLS";

	if (listener_add(lc->iface, port, what, session_accept, lc->sl) != 0)
		lc->failed = 1;
	return lc->failed;
}

static int listen_iface(void *ctx, const char *iface)
{
	struct listen_ctx *lc = ctx;
	struct listen_ctx tls = { "c2s_direct_tls_ports", &c2s_tls_listen, iface, 0 };

	lc->iface = iface;
	if (config_kind("*", "c2s_ports", NULL) != CONFIG_UNSET)
		config_each("*", "c2s_ports", listen_port, lc);
	else
		listen_port(lc, "5222");
	if (!lc->failed)
		config_each("*", "c2s_direct_tls_ports", listen_port, &tls);
	lc->failed |= tls.failed;
	return lc->failed;
}

/* s2s_ports (default 5269) and s2s_direct_tls_ports (XEP-0368: TLS from
 * the first byte; none by default) on s2s_interfaces (default:
 * interfaces). */
static int listen_s2s_iface(void *ctx, const char *iface)
{
	struct listen_ctx *lc = ctx;
	struct listen_ctx tls = { "s2s_direct_tls_ports", &s2s_tls_listen, iface, 0 };

	lc->iface = iface;
	if (config_kind("*", "s2s_ports", NULL) != CONFIG_UNSET)
		config_each("*", "s2s_ports", listen_port, lc);
	else
		listen_port(lc, "5269");
	if (!lc->failed)
		config_each("*", "s2s_direct_tls_ports", listen_port, &tls);
	lc->failed |= tls.failed;
	return lc->failed;
}

static int is_s2s(void *ctx, const char *item)
{
	return strcmp(item, "s2s") == 0;
}

/* Federation is on unless the global modules_disabled names "s2s" (as
 * Prosody's does): then nothing listens for servers and a stanza to a
 * remote domain bounces with remote-server-not-found. */
static bool federating(void)
{
	return config_each("*", "modules_disabled", is_s2s, NULL) == 0;
}

static int setup_listeners(void)
{
	struct listen_ctx lc = { "c2s_ports", &c2s_listen, NULL, 0 };
	struct listen_ctx s2s = { "s2s_ports", &s2s_listen, NULL, 0 };
	const char *ifaces = config_kind("*", "s2s_interfaces", NULL) != CONFIG_UNSET ?
			     "s2s_interfaces" : "interfaces";

	if (config_kind("*", "interfaces", NULL) != CONFIG_UNSET)
		config_each("*", "interfaces", listen_iface, &lc);
	else
		listen_iface(&lc, "*");
	if (lc.failed)
		return -1;
	if (!federating())
		return 0;
	if (config_kind("*", ifaces, NULL) != CONFIG_UNSET)
		config_each("*", ifaces, listen_s2s_iface, &s2s);
	else
		listen_s2s_iface(&s2s, "*");
	return s2s.failed ? -1 : 0;
}

static void fire_global(const char *event)
{
	route_fire(route_global(), event, &(struct event){ 0 });
}

/* glibc keeps freed memory; give whole free pages back now and then, so
 * the memory of connections that went quiet or away really returns. */
static void on_gc_tune(struct ev_loop *loop, ev_timer *w, int revents)
{
	lx_gc_tune();
}

static void on_trim(struct ev_loop *loop, ev_timer *w, int revents)
{
	xs_trim();
	st_doc_pool_trim();
	lx_alloc_trim();
	malloc_trim(0);
}

static void on_shutdown_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	log_warn("%zu sessions did not close in time", session_count());
	ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (shutting_down)
		return;
	shutting_down = true;
	log_info("shutting down (signal %d)", w->signum);
	sdnotify("STOPPING=1");
	admin_close();
	fire_global("server-stopping");
	listener_close_all();
	http_close_all();
	/* Clients first: the unavailable presence of each goes out to its
	 * remote contacts over the s2s streams, which close after it. */
	node_leaving();
	session_close_all("system-shutdown", s2s_is);
	s2s_free_all();
	session_close_all("system-shutdown", NULL);
	node_cluster_stop();
	node_link_stop();
	pipeline_stop_when_idle();
	ev_timer_init(&shutdown_timer, on_shutdown_timeout, 3., 0.);
	ev_timer_start(loop, &shutdown_timer);
}

/* SIGHUP: the same reload as starlingctl reload; admin.lua logs how it
 * went. */
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (shutting_down)
		return;
	log_info("SIGHUP: reloading the config");
	sdnotify_reloading();
	lx_reload();
	sdnotify("READY=1\nSTATUS=running (reloaded)");
}

/* The master of workers on SIGHUP: the config file read again, so a
 * worker started from now on runs what the running ones reload. A file
 * that does not load leaves the previous config. */
static char cfg_real[PATH_MAX];

static void master_reload(void)
{
	if (config_load(cfg_real) != 0) {
		log_error("workers: the config does not load; a worker started "
			  "again runs the previous one");
		return;
	}
	setup_log();
	read_session_config();
}

/* SIGUSR1: the log file again (logrotate moved it). */
static void on_sigusr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	int r = log_reopen();

	if (r != 0)
		log_error("SIGUSR1: cannot reopen the log: %s", strerror(-r));
	else
		log_info("SIGUSR1: log reopened");
}

/* The admin socket: option admin_socket (a path, or false for none),
 * by default starling.sock in the data directory; worker 1 of several
 * has it, worker N the path with ".N" appended. */
static int setup_admin(const char *data, unsigned node)
{
	char def[PATH_MAX + 32], buf[PATH_MAX], mine[PATH_MAX + 48];
	const char *path;

	if (config_kind("*", "admin_socket", NULL) == CONFIG_BOOLEAN &&
	    !config_bool("*", "admin_socket", true))
		return 0;
	snprintf(def, sizeof(def), "%s/starling.sock", data);
	path = resolve(config_string("*", "admin_socket", def), buf, sizeof(buf));
	if (node > 1) {
		snprintf(mine, sizeof(mine), "%s.%u", path, node);
		path = mine;
	}
	return admin_open(path, &lx_admin_commands);
}

/* cluster = { ... }: this process is a node of a cluster (one process
 * per node: workers and cluster together are refused before the fork). */
static int start_cluster(void)
{
	if (config_kind("*", "sql", NULL) == CONFIG_UNSET)
		log_warn("cluster: no sql option: each node keeps its own data; the "
			 "nodes of a cluster share theirs with storage = \"sql\"");
	return node_cluster_start();
}

int main(int argc, char **argv)
{
	const char *cfg_file = STARLING_DEFAULT_CONFIG;
	char real[PATH_MAX], buf[PATH_MAX];
	unsigned char secret[32];
	struct ev_loop *loop;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "c:hv")) != -1) {
		switch (opt) {
		case 'c': cfg_file = optarg; break;
		case 'v': puts("starling " STARLING_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!realpath(cfg_file, real)) {
		fprintf(stderr, "starling: cannot open config %s: %s\n", cfg_file, strerror(errno));
		return 1;
	}
	snprintf(cfg_dir, sizeof(cfg_dir), "%s", real);
	*strrchr(cfg_dir, '/') = '\0';
	find_dirs();
	loop = ev_default_loop(EVFLAG_AUTO);
	conn_global_init(loop);
	/* Signals during start-up wait for the loop: a SIGTERM then stops
	 * the server cleanly as soon as it runs. */
	ev_signal_init(&sigint_w, on_signal, SIGINT);
	ev_signal_init(&sigterm_w, on_signal, SIGTERM);
	ev_signal_init(&sighup_w, on_sighup, SIGHUP);
	ev_signal_init(&sigusr1_w, on_sigusr1, SIGUSR1);
	ev_signal_start(loop, &sigint_w);
	ev_signal_start(loop, &sigterm_w);
	ev_signal_start(loop, &sighup_w);
	ev_signal_start(loop, &sigusr1_w);
	lx_core_set_dirs(lua_dir, modules_dir);
	if (lx_init(lua_dir) != 0)
		return 1;
	lx_server_register();
	lx_http_register();
	websocket_init(&c2s_ws_listen);
	bosh_init(&c2s_ws_listen);
	server_set_options_reader(read_session_config);
	route_init();
	if (config_load(real) != 0 || setup_log() != 0)
		goto out;
	read_session_config();
	const char *data = resolve(config_string("*", "data_path", "data"), buf, sizeof(buf));
	long map_max = config_int("*", "storage_max_size", 1L << 30);
	unsigned node = 0, nodes = workers_count(
		config_kind("*", "workers", NULL) == CONFIG_STRING ?
		config_string("*", "workers", NULL) : NULL, config_int("*", "workers", 1));
	char node_dir[PATH_MAX + 16];
	snprintf(node_dir, sizeof(node_dir), "%s/nodes", data);
	if (nodes > 1 && node_cluster_configured()) {
		log_error("cluster: workers = %u and cluster together are not "
			  "supported: run one node per process (workers = 1), as many "
			  "nodes as cores", nodes);
		goto out;
	}
	if (nodes > 1) {
		if (mkdir(data, 0700) != 0 && errno != EEXIST) {
			log_error("cannot make the data directory %s: %s", data, strerror(errno));
			goto out;
		}
		if (server_write_pidfile() != 0)
			goto out;
		snprintf(cfg_real, sizeof(cfg_real), "%s", real);
		node = workers_run(nodes, node_dir, master_reload, server_remove_pidfile);
		server_forget_pidfile();
		ev_loop_fork(loop);
		log_info("worker %u of %u (pid %ld)", node, nodes, (long)getpid());
		listener_set_reuseport(true);
		store_set_shared(node == 1);
	}
	if (setup_admin(data, node) != 0)
		goto out;
	if (store_open(data, (size_t)map_max) != 0) {
		log_error("cannot open the data directory %s", data);
		goto out;
	}
	if (sqlstore_open() != 0)
		goto out;
	load_secret(secret);
	c2s_global_init(secret);
	if (federating())
		s2s_init(secret);
	else
		log_info("federation is off (modules_disabled has \"s2s\")");
	if (setup_hosts() != 0 || setup_listeners() != 0 ||
	    server_listen_components() != 0)
		goto out;
	if (node && node_link_start(node, nodes, node_dir) != 0)
		goto out;
	if (node_cluster_configured() && start_cluster() != 0)
		goto out;
	if (lx_modules("load_all") != 0)
		goto out;
	pipeline_start(loop);
	loopstat_start(loop);
	ev_timer_init(&trim_timer, on_trim, 30., 30.);
	ev_timer_start(loop, &trim_timer);
	ev_timer_init(&gc_tune_timer, on_gc_tune, 1., 1.);
	ev_timer_start(loop, &gc_tune_timer);
	ev_unref(loop);		/* the trim timer alone keeps nothing running */
	if (!node && server_write_pidfile() != 0)
		goto out;
	fire_global("server-started");
	log_info("Starling %s started (Lua from %s)", STARLING_VERSION, lua_dir);
	/* Listening, hosts and modules loaded: clients may come. */
	if ((rc = sdnotify("READY=1\nSTATUS=running")) != 0)
		log_warn("cannot tell the service manager we are ready: %s", strerror(-rc));
	rc = 1;
	ev_run(loop, 0);
	rc = 0;
	lx_modules("unload_all");
	pipeline_finish();
	log_info("stopped");
out:
	admin_close();
	node_cluster_stop();
	node_link_stop();
	node_cluster_free();
	server_remove_pidfile();
	listener_close_all();
	http_close_all();
	s2s_free_all();
	component_free_all();
	dns_stop();
	route_free();
	http_route_free_all();
	config_free();
	lx_close();
	store_close();
	tls_free_all();
	server_free_certs();
	ipstate_free_all();
	conn_global_free();
	ev_loop_destroy(loop);
	log_close();
	memset(secret, 0, sizeof(secret));
	return rc;
}
