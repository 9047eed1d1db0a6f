/* server.c - the log, TLS contexts, hosts' authentication and pid file
 * from the config. */
#include "server.h"
#include "config.h"
#include "conn.h"
#include "component.h"
#include "dns.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define MAX_LOG_SOURCES 64

static void (*options_reader)(void);
static char *pidfile_written;

const char *server_path(const char *path, char *buf, size_t n)
{
	const char *cfg = config_path();
	const char *slash = cfg ? strrchr(cfg, '/') : NULL;
	int len;

	if (!path || path[0] == '/' || !slash)
		return path;
	len = snprintf(buf, n, "%.*s/%s", (int)(slash - cfg), cfg, path);
	return len < 0 || (size_t)len >= n ? NULL : buf;
}

/* --- log ------------------------------------------------------------------ */

struct log_conf {
	const char *level, *dest;
	const char *names[MAX_LOG_SOURCES], *levels[MAX_LOG_SOURCES];
	size_t n;
};

static bool is_level(const char *s)
{
	return s && log_level_parse(s) >= 0;
}

/* log.modules = { roster = "debug", ["localhost:ping"] = "warn" } */
struct log_modules {
	struct log_conf *lc;
	struct sbuf *err;
};

static int add_log_module(void *ctx, const char *name, const char *level)
{
	struct log_modules *lm = ctx;
	struct log_conf *lc = lm->lc;

	if (!name || !is_level(level)) {
		sbuf_printf(lm->err, "option 'log': modules must map names to levels "
			    "(debug, info, warn, error)");
		return -EINVAL;
	}
	if (lc->n == MAX_LOG_SOURCES) {
		sbuf_printf(lm->err, "option 'log': more than %d module levels",
			    MAX_LOG_SOURCES);
		return -EINVAL;
	}
	lc->names[lc->n] = name;	/* owned by the config */
	lc->levels[lc->n++] = level;
	return 0;
}

static bool is_string_or_unset(const char *field)
{
	enum config_kind k = config_kind("*", "log", field);

	return k == CONFIG_STRING || k == CONFIG_UNSET;
}

static int read_log_table(struct log_conf *lc, struct sbuf *err)
{
	static const char *const lv[] = { "debug", "info", "warn", "error" };
	struct log_modules lm = { lc, err };
	const char *level;

	if (!is_string_or_unset("level") || !is_string_or_unset("to")) {
		sbuf_printf(err, "option 'log': level and to must be strings");
		return -EINVAL;
	}
	if ((level = config_field_string("*", "log", "level")))
		lc->level = level;
	lc->dest = config_field_string("*", "log", "to");
	/* Prosody's form: { info = "file.log" } - the lowest level given. */
	for (size_t i = 0; i < ARRAY_SIZE(lv) && !lc->dest; i++) {
		if ((lc->dest = config_field_string("*", "log", lv[i])))
			lc->level = lv[i];
	}
	if (!lc->dest)
		lc->dest = "stderr";
	switch (config_kind("*", "log", "modules")) {
	case CONFIG_TABLE:
		return config_each_pair("*", "log", "modules", add_log_module, &lm);
	case CONFIG_UNSET:
		return 0;
	default:
		sbuf_printf(err, "option 'log': modules must be a table");
		return -EINVAL;
	}
}

int server_apply_log(struct sbuf *err)
{
	struct log_conf lc = { .level = "info", .dest = "stderr" };
	enum config_kind kind = config_kind("*", "log", NULL);
	char buf[PATH_MAX];
	int r = 0;

	if (kind == CONFIG_STRING) {
		const char *v = config_string("*", "log", NULL);
		if (is_level(v))
			lc.level = v;
		else
			lc.dest = v;
	} else if (kind == CONFIG_TABLE) {
		r = read_log_table(&lc, err);
	} else if (kind != CONFIG_UNSET) {
		sbuf_printf(err, "option 'log' must be a level, a destination or a table");
		r = -EINVAL;
	}
	if (r == 0 && !is_level(lc.level)) {
		sbuf_printf(err, "option 'log': the level must be debug, info, warn or error");
		r = -EINVAL;
	}
	if (r == 0 && strcmp(lc.dest, "stderr") && strcmp(lc.dest, "*console") &&
	    strcmp(lc.dest, "syslog") && strcmp(lc.dest, "*syslog") &&
	    !(lc.dest = server_path(lc.dest, buf, sizeof(buf)))) {
		sbuf_printf(err, "option 'log': the file name is too long");
		r = -ENAMETOOLONG;
	}
	if (r == 0 && (r = log_setup(lc.level, lc.dest)) != 0)
		sbuf_printf(err, "option 'log': cannot open %s: %s", lc.dest, strerror(-r));
	if (r == 0 && (r = log_set_source_levels(lc.names, lc.levels, lc.n)) != 0)
		sbuf_printf(err, "option 'log': a module name is empty or too long");
	return r;
}

/* --- TLS ------------------------------------------------------------------ */

struct tls_ctx_entry {
	char cert[PATH_MAX], key[PATH_MAX];
	SSL_CTX *ctx;
};

struct tls_build {
	struct tls_ctx_entry *ctxs;	/* unique certificate + key pairs */
	size_t n_ctx;
	char **hosts;			/* hosts[i] uses ctxs[host_ctx[i]] */
	size_t *host_ctx;
	size_t n_hosts;
	X509_STORE *trust;		/* the global ssl's cafile/capath */
	char **trust_hosts;		/* hosts with their own */
	X509_STORE **trust_stores;
	size_t n_trust;
};

static void tls_build_free(struct tls_build *b, bool free_ctx)
{
	for (size_t i = 0; free_ctx && i < b->n_ctx; i++)
		SSL_CTX_free(b->ctxs[i].ctx);
	if (b->trust)
		X509_STORE_free(b->trust);
	for (size_t i = 0; i < b->n_trust; i++) {
		X509_STORE_free(b->trust_stores[i]);
		free(b->trust_hosts[i]);
	}
	free(b->trust_stores);
	free(b->trust_hosts);
	for (size_t i = 0; i < b->n_hosts; i++)
		free(b->hosts[i]);
	free(b->ctxs);
	free(b->hosts);
	free(b->host_ctx);
	memset(b, 0, sizeof(*b));
}

/* Readable certificate, a key that is not world-readable. */
static int check_files(const char *host, const char *cert, const char *key,
		       struct sbuf *err)
{
	struct stat st;

	if (access(cert, R_OK) != 0) {
		sbuf_printf(err, "host %s: certificate %s: %s", host, cert, strerror(errno));
		return -errno;
	}
	if (stat(key, &st) != 0 || access(key, R_OK) != 0) {
		sbuf_printf(err, "host %s: key %s: %s", host, key, strerror(errno));
		return -errno;
	}
	if (st.st_mode & S_IROTH) {
		sbuf_printf(err, "host %s: key %s is readable by everyone (chmod o-r)", host, key);
		return -EPERM;
	}
	return 0;
}

/* The context for cert + key: an earlier one of this build, or a new one. */
static int build_ctx(struct tls_build *b, const char *host, const char *cert,
		     const char *key, struct sbuf *err)
{
	char cb[PATH_MAX], kb[PATH_MAX];
	size_t i;

	if (!(cert = server_path(cert, cb, sizeof(cb))) ||
	    !(key = server_path(key, kb, sizeof(kb)))) {
		sbuf_printf(err, "host %s: certificate or key path too long", host);
		return -ENAMETOOLONG;
	}
	for (i = 0; i < b->n_ctx; i++)
		if (!strcmp(b->ctxs[i].cert, cert) && !strcmp(b->ctxs[i].key, key))
			break;
	if (i == b->n_ctx) {
		int r = check_files(host, cert, key, err);
		if (r != 0)
			return r;
		SSL_CTX *ctx = tls_ctx_new(cert, key);
		if (!ctx) {
			sbuf_printf(err, "host %s: cannot use certificate %s with key %s "
				    "(the log says why)", host, cert, key);
			return -EINVAL;
		}
		b->ctxs = xrealloc(b->ctxs, (b->n_ctx + 1) * sizeof(*b->ctxs));
		snprintf(b->ctxs[i].cert, sizeof(b->ctxs[i].cert), "%s", cert);
		snprintf(b->ctxs[i].key, sizeof(b->ctxs[i].key), "%s", key);
		b->ctxs[i].ctx = ctx;
		b->n_ctx++;
	}
	b->hosts = xrealloc(b->hosts, (b->n_hosts + 1) * sizeof(*b->hosts));
	b->host_ctx = xrealloc(b->host_ctx, (b->n_hosts + 1) * sizeof(*b->host_ctx));
	b->hosts[b->n_hosts] = xstrdup(host);
	b->host_ctx[b->n_hosts++] = i;
	return 0;
}

/* The trust store of ssl's cafile and capath (Prosody's names) in
 * host's section (or the global one, host "*"): *out stays NULL when
 * neither is set. */
static int build_trust(const char *host, X509_STORE **out, struct sbuf *err)
{
	const char *cafile, *capath;
	char fb[PATH_MAX], pb[PATH_MAX];

	*out = NULL;
	if (config_kind(host, "ssl", NULL) != CONFIG_TABLE)
		return 0;
	cafile = config_field_string(host, "ssl", "cafile");
	capath = config_field_string(host, "ssl", "capath");
	if (!cafile && !capath)
		return 0;
	if ((cafile && !(cafile = server_path(cafile, fb, sizeof(fb)))) ||
	    (capath && !(capath = server_path(capath, pb, sizeof(pb))))) {
		sbuf_printf(err, "host %s: cafile or capath path too long", host);
		return -ENAMETOOLONG;
	}
	if (!(*out = tls_trust_new(cafile, capath, err)))
		return -EINVAL;
	return 0;
}

/* path + name into out (n bytes): whether it fits and is a readable file. */
static bool cert_file(char *out, size_t n, const char *dir, const char *name,
		      const char *suffix)
{
	int len = snprintf(out, n, "%s/%s%s", dir, name, suffix);
	struct stat st;

	return len > 0 && (size_t)len < n && stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whether the certificate in path names host (a wildcard counts). */
static bool cert_names(const char *path, const char *host)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	bool ok = x && X509_check_host(x, host, 0, 0, NULL) == 1;

	if (f)
		fclose(f);
	X509_free(x);
	ERR_clear_error();
	return ok;
}

/* The certificate and key of host in the "certificates" directory
 * (Prosody's option, default "certs" beside the config): HOST.crt and
 * HOST.key, or HOST/fullchain.pem and HOST/privkey.pem (as Let's Encrypt
 * names them); for a subdomain, its parent's when that certificate names
 * it (a wildcard). 0, or -ENOENT. */
static int find_cert(const char *host, char *cert, char *key, size_t n)
{
	char db[PATH_MAX], sub[PATH_MAX];
	const char *dir = server_path(config_string(host, "certificates", "certs"), db,
				      sizeof(db));
	const char *name = host;

	for (int level = 0; dir && name && level < 2; level++) {
		snprintf(sub, sizeof(sub), "%s/", name);
		if (((cert_file(cert, n, dir, name, ".crt") && cert_file(key, n, dir, name, ".key")) ||
		     (cert_file(cert, n, dir, sub, "fullchain.pem") &&
		      cert_file(key, n, dir, sub, "privkey.pem"))) &&
		    (level == 0 || cert_names(cert, host)))
			return 0;
		name = strchr(name, '.');
		name = name && strchr(name + 1, '.') ? name + 1 : NULL;
	}
	return -ENOENT;
}

/* The "ssl" option of host: the certificate and key of a host that has
 * one, and its trust store when it names one of its own; without it,
 * the host's certificate in the certificates directory. */
static int build_host(const char *host, struct tls_build *b, struct sbuf *err)
{
	const char *cert, *key;
	X509_STORE *st = NULL;
	int r;

	switch (config_kind(host, "ssl", NULL)) {
	case CONFIG_UNSET: {
		char cf[PATH_MAX], kf[PATH_MAX];
		if (find_cert(host, cf, kf, sizeof(cf)) != 0)
			return 0;
		return build_ctx(b, host, cf, kf, err);
	}
	case CONFIG_TABLE:
		cert = config_field_string(host, "ssl", "certificate");
		key = config_field_string(host, "ssl", "key");
		if ((r = build_trust(host, &st, err)) != 0)
			return r;
		if (st) {
			b->trust_hosts = xrealloc(b->trust_hosts, (b->n_trust + 1) * sizeof(char *));
			b->trust_stores = xrealloc(b->trust_stores,
						   (b->n_trust + 1) * sizeof(X509_STORE *));
			b->trust_hosts[b->n_trust] = xstrdup(host);
			b->trust_stores[b->n_trust++] = st;
		}
		if (!cert && !key) {	/* trust options only */
			char cf[PATH_MAX], kf[PATH_MAX];
			if (find_cert(host, cf, kf, sizeof(cf)) != 0)
				return 0;
			return build_ctx(b, host, cf, kf, err);
		}
		if (!cert || !key) {
			sbuf_printf(err, "host %s: ssl needs both certificate and key", host);
			return -EINVAL;
		}
		return build_ctx(b, host, cert, key, err);
	default:
		sbuf_printf(err, "host %s: ssl must be a table { certificate = ..., key = ... }",
			    host);
		return -EINVAL;
	}
}

/* The certificates in use, for status (server_certs). */
static struct server_cert *certs;
static size_t n_certs;

static void certs_free(void)
{
	for (size_t i = 0; i < n_certs; i++) {
		free(certs[i].host);
		free(certs[i].file);
	}
	free(certs);
	certs = NULL;
	n_certs = 0;
}

const struct server_cert *server_certs(size_t *n)
{
	*n = n_certs;
	return certs;
}

/* What the build's certificates are, the ones about to expire (option
 * certificate_expiry_warning, days, default 14) logged. */
static void note_certs(struct tls_build *b)
{
	long warn_days = config_int("*", "certificate_expiry_warning", 14);
	time_t now = time(NULL);

	certs_free();
	certs = xcalloc(b->n_hosts ? b->n_hosts : 1, sizeof(*certs));
	for (size_t i = 0; i < b->n_hosts; i++) {
		struct tls_ctx_entry *e = &b->ctxs[b->host_ctx[i]];
		X509 *x = SSL_CTX_get0_certificate(e->ctx);
		struct tm tm;

		if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
			continue;
		struct server_cert *c = &certs[n_certs++];
		c->host = xstrdup(b->hosts[i]);
		c->file = xstrdup(e->cert);
		c->not_after = timegm(&tm);
		double days = difftime(c->not_after, now) / 86400.;
		if (days < 0)
			log_error("host %s: certificate %s expired %.0f days ago", c->host,
				  c->file, -days);
		else if (days < (double)warn_days)
			log_warn("host %s: certificate %s expires in %.1f days", c->host,
				 c->file, days);
	}
}

void server_free_certs(void)
{
	certs_free();
}

int server_load_tls(struct sbuf *err, int *n_hosts)
{
	struct tls_build b = { 0 };
	const char *name, *type, *module;
	size_t pos = 0;
	int r = 0;

	r = build_trust("*", &b.trust, err);
	while (r == 0 && config_host_next(&pos, &name, &type, &module)) {
		if (!(type && strcmp(type, "component") == 0))
			r = build_host(name, &b, err);
	}
	if (r != 0) {
		tls_build_free(&b, true);
		return r;
	}
	note_certs(&b);
	/* The registry's references go; encrypted connections hold their own. */
	tls_free_all();
	for (size_t i = 0; i < b.n_hosts; i++)
		tls_register(b.hosts[i], b.ctxs[b.host_ctx[i]].ctx);
	if (b.trust)
		tls_register_trust(NULL, b.trust);
	for (size_t i = 0; i < b.n_trust; i++)
		tls_register_trust(b.trust_hosts[i], b.trust_stores[i]);
	if (n_hosts)
		*n_hosts = (int)b.n_hosts;
	tls_build_free(&b, false);
	return 0;
}

/* --- how each host's clients log in -------------------------------------- */

/* The host's "authentication" into *out: 0, or -EINVAL with why in err. */
static int read_host_auth(const char *host, enum host_auth *out, struct sbuf *err)
{
	const char *v;

	switch (config_kind(host, "authentication", NULL)) {
	case CONFIG_UNSET:
		*out = HOST_AUTH_INTERNAL;
		return 0;
	case CONFIG_STRING:
		break;
	default:
		sbuf_printf(err, "host %s: option 'authentication' must be a string", host);
		return -EINVAL;
	}
	v = config_string(host, "authentication", NULL);
	if (strcmp(v, "internal_hashed") == 0) {
		*out = HOST_AUTH_INTERNAL;
	} else if (strcmp(v, "anonymous") == 0) {
		*out = HOST_AUTH_ANONYMOUS;
	} else if (strcmp(v, "insecure") == 0) {
		if (!config_bool(host, SERVER_INSECURE_FLAG, false)) {
			sbuf_printf(err, "host %s: authentication = \"insecure\" accepts any "
				    "password and creates the account: it is for tests only; "
				    "set %s = true on the host to use it on purpose",
				    host, SERVER_INSECURE_FLAG);
			return -EINVAL;
		}
		*out = HOST_AUTH_INSECURE;
	} else {
		sbuf_printf(err, "host %s: option 'authentication' is \"%s\"; it must be "
			    "\"internal_hashed\", \"anonymous\" or \"insecure\"", host, v);
		return -EINVAL;
	}
	return 0;
}

static int host_auth_pass(struct sbuf *err, bool apply)
{
	size_t pos = 0, n = 0;
	const char *name, *type, *module;
	struct { const char *name; enum host_auth auth; } set[256];

	while (config_host_next(&pos, &name, &type, &module)) {
		if (type && strcmp(type, "local") != 0)
			continue;
		if (n == ARRAY_SIZE(set)) {
			sbuf_printf(err, "more than %zu VirtualHosts", ARRAY_SIZE(set));
			return -EINVAL;
		}
		set[n].name = name;
		if (read_host_auth(name, &set[n].auth, err) != 0)
			return -EINVAL;
		n++;
	}
	for (size_t i = 0; apply && i < n; i++) {
		struct host *h = route_host(set[i].name);
		if (!h)
			continue;
		if (h->auth != set[i].auth && set[i].auth != HOST_AUTH_INTERNAL)
			log_warn("host %s: authentication = \"%s\"%s", set[i].name,
				 set[i].auth == HOST_AUTH_ANONYMOUS ? "anonymous" : "insecure",
				 set[i].auth == HOST_AUTH_INSECURE ?
				 ": any password logs in and creates its account (tests only)" :
				 ": SASL ANONYMOUS with temporary accounts");
		h->auth = set[i].auth;
	}
	return 0;
}

int server_check_host_auth(struct sbuf *err)
{
	return host_auth_pass(err, false);
}

int server_apply_host_auth(struct sbuf *err)
{
	return host_auth_pass(err, true);
}

/* --- DNS ------------------------------------------------------------------------ */

#define MAX_STATIC_HOSTS 1024
#define MAX_RESOLVERS 8

struct dns_conf {
	struct dns_static_host hosts[MAX_STATIC_HOSTS];
	size_t n_hosts;
	const char *resolvers[MAX_RESOLVERS];
	size_t n_resolvers;
	struct sbuf *err;
};

/* s2s_static_hosts = { ["example.net"] = "127.0.0.2:5269" } */
static int add_static_host(void *ctx, const char *name, const char *value)
{
	struct dns_conf *dc = ctx;

	if (!name || !value) {
		sbuf_printf(dc->err, "option 's2s_static_hosts' must map domains to "
			    "addresses (\"127.0.0.2:5269\")");
		return -EINVAL;
	}
	if (dc->n_hosts == MAX_STATIC_HOSTS) {
		sbuf_printf(dc->err, "option 's2s_static_hosts': more than %d domains",
			    MAX_STATIC_HOSTS);
		return -EINVAL;
	}
	dc->hosts[dc->n_hosts].domain = name;	/* owned by the config */
	dc->hosts[dc->n_hosts++].addr = value;
	return 0;
}

static int add_resolver(void *ctx, const char *item)
{
	struct dns_conf *dc = ctx;

	if (dc->n_resolvers == MAX_RESOLVERS) {
		sbuf_printf(dc->err, "option 'dns_resolver': more than %d addresses",
			    MAX_RESOLVERS);
		return -EINVAL;
	}
	dc->resolvers[dc->n_resolvers++] = item;	/* owned by the config */
	return 0;
}

int server_apply_dns(struct sbuf *err)
{
	static struct dns_conf dc;
	struct dns_options o = { 0 };
	char ta[PATH_MAX], hosts[PATH_MAX];
	struct sockaddr_storage ss;
	socklen_t sl;
	int r = 0;

	memset(&dc, 0, sizeof(dc));
	dc.err = err;
	switch (config_kind("*", "s2s_static_hosts", NULL)) {
	case CONFIG_UNSET:
		break;
	case CONFIG_TABLE:
		r = config_each_pair("*", "s2s_static_hosts", NULL, add_static_host, &dc);
		break;
	default:
		sbuf_printf(err, "option 's2s_static_hosts' must be a table");
		return -EINVAL;
	}
	for (size_t i = 0; r == 0 && i < dc.n_hosts; i++)
		if (dns_parse_addr(dc.hosts[i].addr, DNS_XMPP_PORT, &ss, &sl) != 0) {
			sbuf_printf(err, "option 's2s_static_hosts': '%s' must map to an IP "
				    "address with an optional port (\"127.0.0.2:5269\", "
				    "\"[::1]:5269\"), not '%s'", dc.hosts[i].domain,
				    dc.hosts[i].addr);
			r = -EINVAL;
		}
	if (r == 0 && config_kind("*", "dns_resolver", NULL) != CONFIG_UNSET)
		r = config_each("*", "dns_resolver", add_resolver, &dc);
	if (r != 0)
		return r;
	o.resolvers = dc.resolvers;
	o.n_resolvers = dc.n_resolvers;
	if (config_kind("*", "dns_hosts_file", NULL) == CONFIG_BOOLEAN)
		o.hosts_file = config_bool("*", "dns_hosts_file", true) ? NULL : "";
	else if ((o.hosts_file = config_string("*", "dns_hosts_file", NULL)) &&
		 !(o.hosts_file = server_path(o.hosts_file, hosts, sizeof(hosts))))
		r = -ENAMETOOLONG;
	if ((o.trust_anchor = config_string("*", "dns_trust_anchor", NULL)) &&
	    !(o.trust_anchor = server_path(o.trust_anchor, ta, sizeof(ta))))
		r = -ENAMETOOLONG;
	if (r != 0) {
		sbuf_printf(err, "option 'dns_hosts_file' or 'dns_trust_anchor': "
			    "the path is too long");
		return r;
	}
	o.timeout = (double)config_int("*", "dns_timeout", 10);
	if ((r = dns_start(conn_loop(), &o, err)) != 0)
		return r;
	return dns_set_static_hosts(dc.hosts, dc.n_hosts, err);
}

/* --- external components -------------------------------------------------------- */

static struct session_config comp_cfg;
static struct session_listen comp_listen = { &component_role, &comp_cfg, false };
static bool comp_listening;

bool server_host_external(const char *type, const char *module)
{
	return type && strcmp(type, "component") == 0 && !module;
}

static bool read_component_options(const char *domain, struct component_options *o)
{
	const char *name, *type, *module;
	size_t pos = 0;
	long n;

	while (config_host_next(&pos, &name, &type, &module))
		if (strcmp(name, domain) == 0)
			break;
	if (!name || strcmp(name, domain) != 0 || !server_host_external(type, module))
		return false;
	o->secret = config_string(domain, "component_secret", NULL);
	n = config_int(domain, "component_max_connections", 1);
	o->max_connections = n > 0 ? (unsigned)n : 1;
	n = config_int(domain, "component_queue", 0);
	o->queue = n > 0 ? (unsigned)n : 0;
	n = config_int(domain, "component_queue_timeout", 30);
	o->queue_timeout = n > 0 ? (double)n : 30;
	return true;
}

static bool has_external(void)
{
	const char *name, *type, *module;
	size_t pos = 0;

	while (config_host_next(&pos, &name, &type, &module))
		if (server_host_external(type, module))
			return true;
	return false;
}

struct comp_listen_ctx {
	const char *iface;
	int failed;
};

static int comp_port(void *ctx, const char *item)
{
	struct comp_listen_ctx *lc = ctx;
	int port = config_port("component_ports", item);

	if (!port || listener_add(lc->iface, port, "component", session_accept,
				  &comp_listen) != 0)
		lc->failed = 1;
	return lc->failed;
}

static int comp_iface(void *ctx, const char *iface)
{
	struct comp_listen_ctx *lc = ctx;

	lc->iface = iface;
	if (config_kind("*", "component_ports", NULL) != CONFIG_UNSET)
		config_each("*", "component_ports", comp_port, lc);
	else
		comp_port(lc, "5347");
	return lc->failed;
}

int server_listen_components(void)
{
	struct comp_listen_ctx lc = { NULL, 0 };

	component_options_hook = read_component_options;
	if (comp_listening || !has_external())
		return 0;
	/* The limits of server streams; the handshake within c2s_timeout. */
	comp_cfg.preauth_timeout = (double)config_int("*", "c2s_timeout", 60);
	if (comp_cfg.preauth_timeout <= 0)
		comp_cfg.preauth_timeout = 60;
	comp_cfg.idle_timeout = 900;
	comp_cfg.limits.max_stanza = (size_t)config_int("*", "component_stanza_size_limit",
		config_int("*", "s2s_stanza_size_limit", 512 * 1024));
	comp_cfg.limits.max_depth = (unsigned)config_int("*", "s2s_stanza_depth_limit", 32);
	comp_cfg.limits.max_attrs = (unsigned)config_int("*", "s2s_stanza_attribute_limit", 64);
	comp_cfg.send_queue_limit = (size_t)config_int("*", "component_send_queue_limit",
		16 * 1024 * 1024);
	comp_cfg.parser_release_after = 60;
	comp_cfg.max_unauth_per_ip = 16;
	if (config_kind("*", "component_interfaces", NULL) != CONFIG_UNSET) {
		config_each("*", "component_interfaces", comp_iface, &lc);
	} else {
		comp_iface(&lc, "127.0.0.1");
		/* ::1 where the machine has IPv6 */
		struct comp_listen_ctx v6 = { NULL, 0 };
		if (!lc.failed && access("/proc/net/if_inet6", F_OK) == 0)
			comp_iface(&v6, "::1");
	}
	comp_listening = !lc.failed;
	return lc.failed ? -1 : 0;
}

/* --- options and pid file ------------------------------------------------------ */

void server_set_options_reader(void (*fn)(void))
{
	options_reader = fn;
}

void server_read_options(void)
{
	struct sbuf err;

	if (options_reader)
		options_reader();
	sbuf_init(&err);
	if (server_apply_dns(&err) != 0)
		log_error("%s; the DNS settings stay as they were", err.p);
	sbuf_free(&err);
}

int server_write_pidfile(void)
{
	char buf[PATH_MAX], tmp[PATH_MAX + 16], line[32];
	const char *path = config_string("*", "pidfile", NULL);
	int fd, len, r = 0;

	if (!path)
		return 0;
	if (!(path = server_path(path, buf, sizeof(buf)))) {
		log_error("option 'pidfile': the path is too long");
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t)len) != len || fsync(fd) != 0)
		r = -errno;
	if (fd >= 0 && close(fd) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r != 0) {
		log_error("cannot write the pid file %s: %s", path, strerror(-r));
		unlink(tmp);
		return r;
	}
	free(pidfile_written);
	pidfile_written = xstrdup(path);
	return 0;
}

void server_forget_pidfile(void)
{
	free(pidfile_written);
	pidfile_written = NULL;
}

void server_remove_pidfile(void)
{
	if (pidfile_written && unlink(pidfile_written) != 0 && errno != ENOENT)
		log_warn("cannot remove the pid file %s: %s", pidfile_written, strerror(errno));
	free(pidfile_written);
	pidfile_written = NULL;
}
